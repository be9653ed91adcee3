//! Whole training steps of a model.

use super::{median, ramp_values};
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
    /// Median seconds the host spends recording a step (building the graph, queueing every
    /// dispatch) before anything of it is submitted: with one submit per step and a wait at
    /// its end, as here, the device idles meanwhile.
    pub host_secs: f64,
    /// On a GPU with timestamp queries: median device seconds of a step's submit, first
    /// command to last.
    pub device_secs: Option<f64>,
    /// On a GPU: mean seconds per step of the same steps run back to back, each submitted
    /// without waiting (as training runs them), so that recording overlaps the device's work.
    pub back_to_back_secs: Option<f64>,
    /// With `profile` on a GPU: the device time of every kernel and the work of every labelled
    /// layer pass (see [`autorep_kernels::Profile`]), summed over `profiled_steps` further
    /// steps, each dispatch in a pass of its own.
    pub gpu_profile: autorep_kernels::Profile,
    pub profiled_steps: usize,
    /// On a GPU: the most bytes of device memory the engine's buffer pool held from the
    /// warm-up step on (see [`autorep_kernels::PoolStats::peak_held_bytes`]). The pool keeps
    /// what a step allocates for reuse, so this is the step's peak (weights, activations,
    /// gradients, optimizer state and transients together).
    pub device_bytes: Option<u64>,
    /// On a GPU: the most bytes of buffers in use at one time during the steps (see
    /// [`autorep_kernels::PoolStats::peak_live_bytes`]).
    pub live_bytes: Option<u64>,
    /// On a GPU: the buffers by size, at the memory peak and held by the pool.
    pub buffers: Vec<autorep_kernels::BufferCount>,
}

/// What `autorep bench step` times.
#[derive(Clone, Copy)]
pub struct StepSpec<'a> {
    pub model: &'a str,
    pub batch: usize,
    pub input: usize,
    pub steps: usize,
    /// Time the CPU backend's kernels too.
    pub profile: bool,
    pub precision: crate::Dtype,
    /// The AutoReP stage's step instead of a plain one: pixel-wise gates under this budget.
    pub gated: Option<usize>,
    /// Batch norm fused with the activation after it (see `ForwardCtx::fuse`).
    pub fuse: bool,
}

impl<'a> StepSpec<'a> {
    /// A plain f32 step of `model` with the default fusion.
    pub fn new(model: &'a str, batch: usize, input: usize) -> Self {
        StepSpec {
            model,
            batch,
            input,
            steps: 3,
            profile: false,
            precision: crate::Dtype::F32,
            gated: None,
            fuse: crate::nn::fusion_default(),
        }
    }
}

pub fn training_step(device: &Device, spec: &StepSpec) -> Result<StepTiming> {
    if spec.steps == 0 {
        // The median of no steps would be the warm-up's, reported as a timing.
        return Err(crate::Error::Invalid(
            "--steps 0: time at least one step, e.g. --steps 3".into(),
        ));
    }
    use crate::autorep::{ReplaceConfig, Replacement};
    use crate::nn::{ForwardCtx, Optimizer, OptimizerKind, ParamGroup};
    let (batch, input, precision) = (spec.batch, spec.input, spec.precision);
    let mut model = crate::models::build(spec.model, device, 3, input, 10, 0)?;
    let mut rep = match spec.gated {
        Some(budget) => Some(Replacement::install(
            model.as_mut(),
            ReplaceConfig::autorep(budget),
            device,
        )?),
        None => None,
    };
    // The replace stage's step: Adam over the weights and coefficients and over the gates,
    // and the all-ReLU teacher's forward for distillation (its DaPa refits, a few host round
    // trips in the first ~500 passes, are left out: the clean mode here has none). The
    // baseline's: SGD with momentum.
    let teacher = match &rep {
        Some(_) => Some(crate::models::build(spec.model, device, 3, input, 10, 0)?),
        None => None,
    };
    let mut opt = match &rep {
        Some(r) => {
            let mut weights = model.params();
            weights.extend(r.coef_params(model.as_ref()));
            let gates = r.gate_params(model.as_ref());
            Optimizer::new(
                device,
                OptimizerKind::adam(0.0),
                vec![
                    (ParamGroup::new(device, "weights", weights)?, 1e-3),
                    (ParamGroup::new(device, "gates", gates)?, 1e-3),
                ],
            )?
        }
        None => {
            let g = ParamGroup::new(device, "weights", model.params())?;
            Optimizer::new(device, OptimizerKind::sgd(0.9, 5e-4, false), vec![(g, 0.1)])?
        }
    }
    .with_precision(precision)?;
    let mut pixels = crate::tensor::try_zeroed_host(batch * 3 * input * input)?;
    for (v, r) in pixels.iter_mut().zip(ramp_values(251)) {
        *v = r;
    }
    let x = crate::Tensor::from_vec(device, &[batch, 3, input, input], pixels)?;
    let labels: Vec<u32> = (0..batch as u32).map(|i| i % 10).collect();
    let y = std::rc::Rc::new(crate::Labels::new(device, &labels)?);
    let timed_device = match device {
        Device::Gpu(g) if g.has_timestamps() => Some(g.clone()),
        _ => None,
    };
    // Records one step; returns the host seconds that took and, where timed, the device's.
    // Without `wait` it submits the step and returns at once (as training does), so the host
    // records the next step while the device runs this one.
    let mut step = |wait: bool| -> Result<(f64, Option<f64>)> {
        let start = Instant::now();
        opt.zero_grad()?;
        // The gated step also runs the stage's per-step work: hysteresis, the exact ReLU
        // count and the scheduled DaPa refits.
        let mut ctx = match &mut rep {
            Some(r) => r.begin_forward(model.as_ref(), true)?,
            None => ForwardCtx::train(),
        };
        ctx.fuse = spec.fuse;
        let xs = x.cast(precision)?;
        let logits = model.forward(&xs, &ctx)?.cast(crate::Dtype::F32)?;
        let mut loss = logits.cross_entropy(&y, 0.0)?.loss.mean()?;
        if let Some(t) = &teacher {
            let eval = ForwardCtx {
                fuse: spec.fuse,
                ..ForwardCtx::eval()
            };
            let t_logits = crate::no_grad(|| t.forward(&xs, &eval)?.cast(crate::Dtype::F32))?;
            let temperature = crate::train::config::defaults::KD_TEMPERATURE;
            loss = loss.add(&logits.distill(&t_logits, temperature)?.mean()?)?;
        }
        loss.backward_from(opt.loss_seed()?)?;
        opt.step(1.0)?;
        let host = start.elapsed().as_secs_f64();
        if !wait {
            device.flush()?;
            return Ok((host, None));
        }
        let busy = match &timed_device {
            Some(g) if !g.profiling() => Some(g.flush_timed()?),
            _ => None,
        };
        device.sync()?;
        Ok((host, busy))
    };
    // The memory figures are the steps', from the warm-up on, not the model's building.
    if let Device::Gpu(g) = device {
        g.reset_peaks();
    }
    step(true)?;
    cpu::profile::enable(spec.profile);
    let _ = cpu::profile::take();
    let (mut times, mut hosts, mut busy) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..spec.steps.max(1) {
        let t = Instant::now();
        let (host, device_secs) = step(true)?;
        times.push(t.elapsed().as_secs_f64());
        hosts.push(host);
        busy.extend(device_secs);
    }
    cpu::profile::enable(false);
    // On a GPU, the same steps back to back with one wait at the end: a training run's pace.
    let back_to_back_secs = match device {
        Device::Gpu(_) => {
            let t = Instant::now();
            for _ in 0..spec.steps.max(1) {
                step(false)?;
            }
            device.sync()?;
            Some(t.elapsed().as_secs_f64() / spec.steps.max(1) as f64)
        }
        Device::Cpu => None,
    };
    // The per-kernel profile of a GPU comes from further steps: profiling encodes them
    // differently (a pass and two timestamps per dispatch, a readback per submit).
    let profiled_steps = match device {
        Device::Gpu(g) if spec.profile => {
            g.set_profiling(true)?;
            for _ in 0..spec.steps.max(1) {
                step(true)?;
            }
            g.set_profiling(false)?;
            spec.steps.max(1)
        }
        _ => 0,
    };
    let pool = match device {
        Device::Gpu(g) => Some(g.pool_stats()),
        Device::Cpu => None,
    };
    let s = median(times.clone());
    Ok(StepTiming {
        secs: s,
        images_per_s: batch as f64 / s,
        profile: if spec.profile {
            cpu::profile::take()
        } else {
            Vec::new()
        },
        timed_secs: times.iter().sum(),
        host_secs: median(hosts),
        device_secs: (!busy.is_empty()).then(|| median(busy)),
        back_to_back_secs,
        gpu_profile: match device {
            Device::Gpu(g) if profiled_steps > 0 => g.take_profile()?,
            _ => Default::default(),
        },
        profiled_steps,
        device_bytes: pool.map(|p| p.peak_held_bytes),
        live_bytes: pool.map(|p| p.peak_live_bytes),
        buffers: match device {
            Device::Gpu(g) => g.buffer_census(),
            Device::Cpu => Vec::new(),
        },
    })
}
