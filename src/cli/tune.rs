//! `autorep tune`: measure every convolution pass of a model's training step under each plan
//! this GPU can run, and write the fastest to the adapter's plans cache (every later command on
//! the adapter runs by it) or to `--out FILE` (`--plans FILE` then uses it).

use anyhow::Context;
use autorep::plans::read_existing;
use autorep::{bench, Device, DeviceChoice};
use autorep_kernels::{launch::TunedPass, ConvPlans};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct TuneArgs {
    /// The training step whose convolutions are tuned (plans are per shape: tune at the batch
    /// you train with).
    #[command(flatten)]
    step: super::bench::StepArgs,
    /// Timed runs per candidate plan (the median counts).
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// Time every candidate plan (each tile and setting, prefetch or staged epilogue, at every
    /// K split), not only every split of the two best at the rule's split (about twice as long).
    #[arg(long)]
    exhaustive: bool,
    /// The plans file: passes already in it (from this adapter) are kept unless tuned again.
    /// Default: this adapter's entry in the plans cache, which every later command on this
    /// adapter runs by (`--plans rule` ignores it).
    #[arg(long)]
    out: Option<PathBuf>,
}

fn row(t: &TunedPass) -> String {
    let p = &t.key.shape;
    let gain = t.rule.secs / t.best.secs;
    let best = if t.best.plan == t.rule.plan {
        "rule kept".to_string()
    } else {
        format!("{} {:.3} ms ({gain:.2}x)", t.best.plan, t.best.secs * 1e3)
    };
    format!(
        "{:<11} {:<20} n{} {}: {} {:.3} ms -> {best}, {} tried{}",
        t.key.pass.name(),
        p.shape_label(),
        p.n,
        if t.key.f16 { "f16" } else { "f32" },
        t.rule.plan,
        t.rule.secs * 1e3,
        t.tried,
        if t.wrong.is_empty() {
            String::new()
        } else {
            format!(", {} WRONG (dropped)", t.wrong.len())
        }
    )
}

/// Write the plans measured by this run into `out`, merged with what it holds now (another
/// model's passes, or another tune's that finished meanwhile), through a temporary file of this
/// process's own; returns how many passes the file then holds.
fn save(mine: &ConvPlans, out: &Path) -> anyhow::Result<usize> {
    let mut merged = match read_existing(out, &mine.adapter) {
        Ok(Some(plans)) => plans,
        _ => ConvPlans::new(&mine.adapter),
    };
    merged
        .plans
        .extend(mine.plans.iter().map(|(k, p)| (*k, *p)));
    let mut tmp = out.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, merged.to_text())
        .and_then(|_| std::fs::rename(&tmp, out))
        .with_context(|| {
            format!(
                "writing the plans to {} (choose a writable file with --out FILE)",
                out.display()
            )
        })?;
    Ok(merged.plans.len())
}

pub fn tune(choice: DeviceChoice, a: TuneArgs) -> anyhow::Result<()> {
    let device = Device::open(choice)?;
    let spec = a.step.spec(&device)?;
    let Device::Gpu(g) = &device else {
        anyhow::bail!("tune measures GPU kernels and no GPU is in use: run it with --device gpu");
    };
    let fingerprint = g.report().fingerprint();
    let cached = a.out.is_none();
    let out = match a.out {
        Some(out) => {
            // Checked before the first pass is timed rather than when its plan is saved.
            let folder = out.parent().filter(|d| !d.as_os_str().is_empty());
            if folder.is_some_and(|d| !d.is_dir()) {
                anyhow::bail!(
                    "--out {}: its folder does not exist (create it or choose another file)",
                    out.display()
                );
            }
            out
        }
        None => {
            let dir = autorep::plans::cache_dir()
                .with_context(|| format!("{}: pass --out FILE", autorep::plans::NO_CACHE_DIR))?;
            let file = autorep::plans::cache_file(&dir, &fingerprint);
            if let Some(parent) = file.parent() {
                std::fs::create_dir_all(parent).with_context(|| {
                    format!(
                        "creating the plans cache {} (or pass --out FILE)",
                        parent.display()
                    )
                })?;
            }
            file
        }
    };
    autorep::files::replaceable(&out, "the plans file", "choose a file with --out FILE")?;
    // The passes already measured on this adapter (another model, batch or precision) stay. A
    // damaged cache entry is measured afresh (the other commands warn about it and run by the
    // rule); a damaged --out file is the user's to resolve.
    if let Err(e) = read_existing(&out, &fingerprint) {
        if !cached {
            anyhow::bail!("{e}: delete the file or choose another --out");
        }
        println!("replacing the damaged cache entry ({e})");
        std::fs::remove_file(&out)
            .with_context(|| format!("removing the damaged {}", out.display()))?;
    }
    let mut mine = ConvPlans::new(&fingerprint);
    let mut held = 0;
    println!(
        "adapter: {}; tuning the convolutions of a {} step, batch {} at {}x{}, {} activations, median of {} per plan",
        device.describe(),
        spec.model,
        spec.batch,
        spec.input,
        spec.input,
        spec.precision.name(),
        a.reps.max(1)
    );
    let (mut rule_secs, mut best_secs) = (0.0, 0.0);
    let tuned = bench::tune_step(&device, &spec, a.reps.max(1), a.exhaustive, |i, n, t| {
        println!("[{}/{n}] {}", i + 1, row(t));
        rule_secs += t.rule.secs;
        best_secs += t.best.secs;
        mine.plans.insert(t.key, t.best.plan);
        // Saved after every pass: a killed run keeps what it measured.
        held = save(&mine, &out).map_err(|e| autorep::Error::Invalid(format!("{e:#}")))?;
        Ok(())
    })?;
    let changed = tuned.iter().filter(|t| t.best.plan != t.rule.plan).count();
    let tried: usize = tuned.iter().map(|t| t.tried).sum();
    let using = if cached {
        "every command on this adapter runs by them; --plans rule ignores them".to_string()
    } else {
        format!("use them with --plans {} or AUTOREP_PLANS", out.display())
    };
    println!(
        "{} distinct conv passes, {tried} plans timed: {:.3} ms by the rule, {:.3} ms by the measured plans ({:.2}x); {changed} plans differ from the rule; {} plans in {} ({using})",
        tuned.len(),
        rule_secs * 1e3,
        best_secs * 1e3,
        rule_secs / best_secs.max(1e-12),
        held,
        out.display(),
    );
    Ok(())
}
