//! Where tensors live: the CPU reference backend or an opened wgpu device.

use crate::error::{Error, Result};
use autorep_kernels::{CoopCheck, Gpu};

#[derive(Clone, Debug)]
pub enum Device {
    Cpu,
    Gpu(Gpu),
}

/// What the user asked for with `--device` / `AUTOREP_DEVICE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DeviceChoice {
    /// A hardware GPU, else a software adapter, else the CPU.
    Auto,
    /// A wgpu adapter (hardware or software); an error when none exists.
    Gpu,
    /// The CPU reference backend.
    Cpu,
}

impl std::str::FromStr for DeviceChoice {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "gpu" => Ok(Self::Gpu),
            "cpu" => Ok(Self::Cpu),
            other => Err(Error::Invalid(format!(
                "unknown device '{other}': use auto, gpu or cpu"
            ))),
        }
    }
}

fn describe_coop_check(check: &CoopCheck) -> String {
    match check {
        CoopCheck::Passed { worst } => {
            format!("checked against the CPU twins (worst relative error {worst:.1e})")
        }
        CoopCheck::Failed { what } => format!("off: failed their check ({what})"),
    }
}

/// The line to warn with when `g`'s tensor cores failed their check, so that f16 runs on
/// the SIMT tiles: slower, but right.
fn coop_warning(g: &Gpu) -> Option<String> {
    let CoopCheck::Failed { what } = g.coop_check()? else {
        return None;
    };
    Some(format!(
        "the tensor-core path of {} failed its check ({what}), so f16 runs on the SIMT tiles (AUTOREP_COOP=0 skips the check; `autorep devices` shows it)",
        g.report().name
    ))
}

impl Device {
    pub fn open(choice: DeviceChoice) -> Result<Device> {
        let device = match choice {
            DeviceChoice::Cpu => Device::Cpu,
            DeviceChoice::Gpu => Device::Gpu(Gpu::open()?),
            DeviceChoice::Auto => Gpu::open().map(Device::Gpu).unwrap_or(Device::Cpu),
        };
        match &device {
            Device::Gpu(g) => crate::plans::apply(g)?,
            Device::Cpu => crate::plans::check_file()?,
        }
        Ok(device)
    }

    /// Before f16 work: check the tensor-core path once ([`Gpu::ensure_coop_checked`]), and
    /// warn once when it failed (f16 then runs on the SIMT tiles).
    pub fn check_tensor_cores(&self) {
        static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        if let Device::Gpu(g) = self {
            g.ensure_coop_checked();
            if let Some(warning) = coop_warning(g) {
                if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
                    eprintln!("warning: {warning}");
                }
            }
        }
    }

    /// What the tensor-core check found, in words, for `devices`: None where it did not run
    /// (no tensor cores, `AUTOREP_COOP=0`, emulated, or no f16 work yet).
    pub fn coop_check(&self) -> Option<String> {
        let Device::Gpu(g) = self else { return None };
        Some(describe_coop_check(&g.coop_check()?))
    }

    pub fn is_gpu(&self) -> bool {
        matches!(self, Device::Gpu(_))
    }

    /// The CPU backend or a software adapter (lavapipe): small shapes saturate it.
    pub fn is_software(&self) -> bool {
        match self {
            Device::Cpu => true,
            Device::Gpu(g) => g.report().is_software(),
        }
    }

    /// A short human description: "cpu" or the adapter name and backend.
    pub fn describe(&self) -> String {
        match self {
            Device::Cpu => "cpu (reference backend)".to_string(),
            Device::Gpu(g) => {
                let r = g.report();
                let kind = if r.is_software() {
                    "software"
                } else {
                    "hardware"
                };
                let tuned = g.conv_plans().plans.len();
                let plans = if tuned > 0 {
                    format!(", {tuned} measured conv plans")
                } else {
                    String::new()
                };
                let emulated = if r.coop_emulated {
                    ", tensor-core shaders emulated (AUTOREP_COOP=emulate: slow, for checking them)"
                } else {
                    ""
                };
                format!("{} ({:?}, {kind}{plans}{emulated})", r.name, r.backend)
            }
        }
    }

    /// Submit everything recorded so far (one submit per training step).
    pub fn flush(&self) -> Result<()> {
        if let Device::Gpu(g) = self {
            g.flush()?;
        }
        Ok(())
    }

    /// Wait for the device to finish all submitted work.
    pub fn sync(&self) -> Result<()> {
        if let Device::Gpu(g) = self {
            g.wait()?;
        }
        Ok(())
    }

    pub(crate) fn same(&self, other: &Device) -> bool {
        match (self, other) {
            (Device::Cpu, Device::Cpu) => true,
            (Device::Gpu(a), Device::Gpu(b)) => a.same_device(b),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tensor_core_check_reads_as_a_line() {
        let passed = describe_coop_check(&CoopCheck::Passed { worst: 3.2e-4 });
        assert_eq!(
            passed,
            "checked against the CPU twins (worst relative error 3.2e-4)"
        );
        let what = "conv forward 3x3 16->64 s2 is off by 8.10e-1 of its largest value".to_string();
        let failed = describe_coop_check(&CoopCheck::Failed { what: what.clone() });
        assert_eq!(failed, format!("off: failed their check ({what})"));
    }
}
