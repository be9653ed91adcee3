//! Whole training steps of a model.

use super::{median, ramp};
use crate::{Device, Result};
use autorep_kernels::cpu;
use std::time::Instant;

/// Full training steps (forward, backward, optimizer, one submit each) of `model` at `batch`
/// on synthetic CIFAR-shaped data: median seconds per step and images per second.
/// What `autorep bench step` measured.
pub struct StepTiming {
    /// Median seconds per step.
    pub secs: f64,
    pub images_per_s: f64,
    /// With `profile` on the CPU backend: (kernel, calls, seconds) summed over the timed steps,
    /// most time first, and the timed steps' total seconds.
    pub profile: Vec<(&'static str, u64, f64)>,
    pub timed_secs: f64,
    /// On a GPU: the bytes of device memory the engine's buffer pool holds after the steps.
    /// The pool keeps what it allocates for reuse and never returns it, so this is the step's
    /// peak (weights, activations, gradients, optimizer state and transients together).
    pub device_bytes: Option<u64>,
}

pub fn training_step(
    device: &Device,
    model_name: &str,
    batch: usize,
    input: usize,
    steps: usize,
    profile: bool,
    precision: crate::Dtype,
) -> Result<StepTiming> {
    use crate::nn::{ForwardCtx, Optimizer, OptimizerKind, ParamGroup};
    let model = crate::models::build(model_name, device, 3, input, 10, 0)?;
    let g = ParamGroup::new(device, "weights", model.params())?;
    let mut opt = Optimizer::new(device, OptimizerKind::sgd(0.9, 5e-4, false), vec![(g, 0.1)])?
        .with_precision(precision)?;
    let x = crate::Tensor::from_vec(
        device,
        &[batch, 3, input, input],
        ramp(batch * 3 * input * input, 251),
    )?;
    let labels: Vec<u32> = (0..batch as u32).map(|i| i % 10).collect();
    let y = std::rc::Rc::new(crate::Labels::new(device, &labels)?);
    let mut step = || -> Result<()> {
        opt.zero_grad()?;
        let loss = model
            .forward(&x.cast(precision)?, &ForwardCtx::train())?
            .cast(crate::Dtype::F32)?
            .cross_entropy(&y, 0.0)?
            .loss
            .mean()?;
        loss.backward_from(opt.loss_seed()?)?;
        opt.step(1.0)?;
        device.sync()
    };
    step()?;
    cpu::profile::enable(profile);
    let _ = cpu::profile::take();
    let mut times = Vec::with_capacity(steps);
    for _ in 0..steps.max(1) {
        let t = Instant::now();
        step()?;
        times.push(t.elapsed().as_secs_f64());
    }
    cpu::profile::enable(false);
    let s = median(times.clone());
    Ok(StepTiming {
        secs: s,
        images_per_s: batch as f64 / s,
        profile: if profile {
            cpu::profile::take()
        } else {
            Vec::new()
        },
        timed_secs: times.iter().sum(),
        device_bytes: match device {
            Device::Gpu(g) => Some(g.pool_stats().bytes_created),
            Device::Cpu => None,
        },
    })
}
