//! `autorep tune`: the convolution passes of a model's training step, each measured under
//! every plan this device can run (see `autorep_kernels::launch::tune_conv_pass`).

use super::{training_step, StepSpec};
use crate::{Device, Error, Result};
use autorep_kernels::launch::{tune_conv_pass, TunedPass};
use autorep_kernels::{ConvKey, Gpu};

/// The distinct convolution passes of one training step of `spec`'s model, in the order the
/// step first plans them.
pub fn step_conv_passes(g: &Gpu, spec: &StepSpec) -> Result<Vec<ConvKey>> {
    let one = StepSpec { steps: 1, ..*spec };
    g.collect_conv_passes(true);
    let ran = training_step(&Device::Gpu(g.clone()), &one);
    let keys = g.collect_conv_passes(false);
    ran?;
    Ok(keys)
}

/// Tune every convolution pass of `spec`'s training step (every candidate plan where
/// `exhaustive`, else a two-round search); `each` sees every result as it
/// comes (to print it and save the plans so far).
pub fn tune_step(
    device: &Device,
    spec: &StepSpec,
    reps: usize,
    exhaustive: bool,
    mut each: impl FnMut(usize, usize, &TunedPass) -> Result<()>,
) -> Result<Vec<TunedPass>> {
    let Device::Gpu(g) = device else {
        return Err(Error::Invalid(
            "tune measures GPU kernels, and the CPU backend has no plans to choose: use --device gpu"
                .into(),
        ));
    };
    let keys = step_conv_passes(g, spec)?;
    let mut out = Vec::with_capacity(keys.len());
    for (i, key) in keys.iter().enumerate() {
        let t = tune_conv_pass(g, key, reps, exhaustive)?;
        each(i, keys.len(), &t)?;
        out.push(t);
    }
    Ok(out)
}
