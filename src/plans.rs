//! Where a GPU's measured conv plans come from: a file named on the command line, or the
//! adapter's own entry in the plans cache, which `autorep tune` fills by default so that every
//! later command on the same adapter runs by what was measured there.
//!
//! The cache holds one file per adapter, `<cache>/conv_plans/<name>-<hash>.txt`, named from the
//! adapter's fingerprint (name, backend, driver): another GPU, or the same GPU under another
//! driver, never reads plans it did not measure. `<cache>` is `AUTOREP_CACHE_DIR`, else
//! `$XDG_CACHE_HOME/autorep`, else `%LOCALAPPDATA%\autorep`, else `~/.cache/autorep`.

use crate::error::{Error, Result};
use autorep_kernels::{ConvPlans, Gpu};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// What the GPUs this process opens run their convolutions by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlansSource {
    /// The plans in this file (an error if it cannot be read or was measured elsewhere).
    File(PathBuf),
    /// The adapter's entry in the cache under this folder, if there is one (a damaged entry
    /// is a warning: the built-in rule runs).
    Cache(PathBuf),
    /// The built-in rule, whatever the cache holds (`--plans rule`).
    Rule,
}

static SOURCE: OnceLock<PlansSource> = OnceLock::new();
static WARNED: AtomicBool = AtomicBool::new(false);

/// Run the convolution passes of every GPU opened from now on by `source` (the CLI's
/// `--plans`); without a call, GPUs run by the built-in rule. A second call keeps the first.
pub fn use_plans(source: PlansSource) {
    let _ = SOURCE.set(source);
}

/// What [`use_plans`] chose, if anything.
pub fn source() -> Option<&'static PlansSource> {
    SOURCE.get()
}

/// The plans cache folder, from the environment (see the module's documentation); `None` when
/// no variable names one.
pub fn cache_dir() -> Option<PathBuf> {
    // Unset and empty alike; a relative XDG or home folder is ignored, as the XDG base
    // directory specification says, so the cache never depends on the working directory.
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let absolute = |k: &str| var(k).filter(|d| d.is_absolute());
    var("AUTOREP_CACHE_DIR")
        .or_else(|| absolute("XDG_CACHE_HOME").map(|d| d.join("autorep")))
        .or_else(|| absolute("LOCALAPPDATA").map(|d| d.join("autorep")))
        .or_else(|| absolute("HOME").map(|d| d.join(".cache").join("autorep")))
}

/// Why [`cache_dir`] found none, and the fix.
pub const NO_CACHE_DIR: &str = "no cache folder for conv plans (AUTOREP_CACHE_DIR is unset, and XDG_CACHE_HOME, LOCALAPPDATA and HOME are unset, empty or relative)";

/// The cache entry of the adapter with this fingerprint under `dir`: a readable slug of the
/// adapter's name and a hash of the whole fingerprint (FNV-1a, stable across builds).
pub fn cache_file(dir: &Path, fingerprint: &str) -> PathBuf {
    let hash = fingerprint.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    });
    let name = fingerprint.split('|').next().unwrap_or_default();
    let mut slug = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug: String = slug.chars().take(40).collect();
    let slug = match slug.trim_end_matches('-') {
        "" => "adapter",
        s => s,
    };
    dir.join("conv_plans")
        .join(format!("{slug}-{hash:016x}.txt"))
}

/// Read the plans file of the adapter with this fingerprint (a cache entry, an `--out` or a
/// `--plans` file); the error names the file and what is wrong with it: unreadable, malformed,
/// or measured on another adapter.
pub fn read_plans(file: &Path, fingerprint: &str) -> std::result::Result<ConvPlans, String> {
    if let Some(why) = crate::files::not_a_file(file) {
        return Err(format!(
            "the conv plans file {} {why}: pass one that `autorep tune --out FILE` wrote",
            file.display()
        ));
    }
    let text = crate::files::read_to_string(file)
        .map_err(|e| format!("cannot read the conv plans file {}: {e}", file.display()))?;
    let plans = ConvPlans::parse(&text, &file.display().to_string()).map_err(|e| e.to_string())?;
    if plans.adapter != fingerprint {
        return Err(format!(
            "{} was measured on '{}', not on this adapter",
            file.display(),
            plans.adapter
        ));
    }
    Ok(plans)
}

/// [`read_plans`] of a file that may not exist yet (a cache entry, a `tune --out`): `None`
/// when it does not.
pub fn read_existing(
    file: &Path,
    fingerprint: &str,
) -> std::result::Result<Option<ConvPlans>, String> {
    if !file.exists() {
        return Ok(None);
    }
    read_plans(file, fingerprint).map(Some)
}

/// What the convolutions of the adapter with this fingerprint run by under `source` (the CLI's
/// choice; `None`: the built-in rule), in a phrase for `autorep devices`.
pub fn describe_source(source: Option<&PlansSource>, fingerprint: &str) -> String {
    match source {
        None => format!("the built-in rule ({NO_CACHE_DIR})"),
        Some(PlansSource::Rule) => "the built-in rule (--plans rule)".to_string(),
        // Read, not just named: `devices` is where one checks that a file suits an adapter.
        Some(PlansSource::File(path)) => match read_plans(path, fingerprint) {
            Ok(p) => format!(
                "{} measured passes in {} (--plans)",
                p.plans.len(),
                path.display()
            ),
            Err(e) => format!("none: {e} (--plans)"),
        },
        Some(PlansSource::Cache(dir)) => {
            let file = cache_file(dir, fingerprint);
            match read_existing(&file, fingerprint) {
                Ok(None) => format!(
                    "the built-in rule (`autorep tune` on this adapter measures its plans into {})",
                    file.display()
                ),
                Ok(Some(p)) => format!("{} measured passes in {}", p.plans.len(), file.display()),
                Err(e) => format!("the built-in rule; the cached plans are damaged: {e}"),
            }
        }
    }
}

/// Under the CPU backend, which runs no plans: a `--plans` file that is not there is still an
/// error, as on a GPU, rather than a mistyped path nobody reads.
pub(crate) fn check_file() -> Result<()> {
    match SOURCE.get() {
        Some(PlansSource::File(path)) if !path.is_file() => Err(Error::Invalid(format!(
            "conv plans file {} not found (the CPU backend runs no plans, but it names none): write one with `autorep tune --out FILE` on the GPU, or pass --plans rule",
            path.display()
        ))),
        _ => Ok(()),
    }
}

/// Give a freshly opened GPU the plans [`use_plans`] chose.
pub(crate) fn apply(gpu: &Gpu) -> Result<()> {
    match SOURCE.get() {
        None | Some(PlansSource::Rule) => Ok(()),
        Some(PlansSource::File(path)) => {
            let plans = read_plans(path, &gpu.report().fingerprint()).map_err(|e| {
                match path.is_file() {
                    true => Error::Invalid(format!(
                        "{e}: measure this adapter's with `autorep tune --out {}`",
                        path.display()
                    )),
                    false => Error::Invalid(e),
                }
            })?;
            Ok(gpu.set_conv_plans(plans)?)
        }
        Some(PlansSource::Cache(dir)) => {
            let fingerprint = gpu.report().fingerprint();
            let loaded =
                read_existing(&cache_file(dir, &fingerprint), &fingerprint).and_then(|p| {
                    p.map_or(Ok(()), |plans| {
                        gpu.set_conv_plans(plans).map_err(|e| e.to_string())
                    })
                });
            // A damaged cache must not stop every command: say so once and keep the rule.
            if let Err(e) = loaded {
                if !WARNED.swap(true, Ordering::Relaxed) {
                    eprintln!(
                        "warning: running by the built-in conv rule, the cached plans are damaged ({e}); `autorep tune` measures them again"
                    );
                }
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_adapter_has_its_own_readable_cache_file() {
        let dir = Path::new("/cache");
        let a = cache_file(dir, "NVIDIA H100 80GB HBM3 | Vulkan | 580.95.05");
        assert_eq!(a.parent().unwrap(), dir.join("conv_plans"));
        let name = a.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with("nvidia-h100-80gb-hbm3-"), "{name}");
        assert!(name.ends_with(".txt") && name.len() == "nvidia-h100-80gb-hbm3-".len() + 20);
        // Stable across runs and builds, and another driver is another file.
        assert_eq!(
            a,
            cache_file(dir, "NVIDIA H100 80GB HBM3 | Vulkan | 580.95.05")
        );
        assert_ne!(
            a,
            cache_file(dir, "NVIDIA H100 80GB HBM3 | Vulkan | 575.57.08")
        );
        // Odd names stay inside the folder, as one plain file name.
        for odd in [
            "../../etc/passwd | Vulkan | x",
            "",
            " | Gl | ",
            "ÄÖ/\\:*? | Dx12 | 1",
        ] {
            let f = cache_file(dir, odd);
            assert_eq!(f.parent().unwrap(), dir.join("conv_plans"), "{odd}");
            let name = f.file_name().unwrap().to_str().unwrap();
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'),
                "{name}"
            );
            assert!(!name.starts_with('-'), "{name}");
        }
    }
}
