use crate::error::Result;
use crate::params::BnShape;
use crate::pipelines::{Access::*, EntryPoint, Kernel};
use crate::recorder::grid;
use crate::uniforms::NormUniform as U;
use crate::{Gpu, GpuBuffer};

type K = Kernel<U>;
const fn kernel(entry: &'static str, bindings: &'static [crate::Access]) -> K {
    K::new(entry, bindings, [256, 1, 1])
}

// The partial passes leave the results alone (bound read-only); the finishing passes bind
// the parts and the results alone.
const BN_STATS: K = kernel("bn_stats", &[Read, Read, Read, ReadWrite]);
const BN_STATS_FINISH: K = kernel("bn_stats_finish", &[Read, ReadWrite, ReadWrite]);
const BN_UPDATE_RUNNING: K = kernel("bn_update_running", &[Read, Read, ReadWrite, ReadWrite]);
const BN_FORWARD: K = kernel("bn_forward", &[Read, Read, Read, Read, Read, ReadWrite]);
const BN_BACKWARD_REDUCE: K = kernel(
    "bn_backward_reduce",
    &[Read, Read, Read, Read, Read, Read, ReadWrite],
);
const BN_BACKWARD_REDUCE_FINISH: K = kernel(
    "bn_backward_reduce_finish",
    &[Read, Read, ReadWrite, ReadWrite],
);
const BN_BACKWARD_INPUT: K = kernel(
    "bn_backward_input",
    &[Read, Read, Read, Read, Read, Read, Read, ReadWrite],
);
const BN_BACKWARD_INPUT_EVAL: K = kernel("bn_backward_input_eval", &[Read, Read, Read, ReadWrite]);

pub(crate) const ENTRY_POINTS: &[EntryPoint] = &[
    BN_STATS.entry,
    BN_STATS_FINISH.entry,
    BN_UPDATE_RUNNING.entry,
    BN_FORWARD.entry,
    BN_BACKWARD_REDUCE.entry,
    BN_BACKWARD_REDUCE_FINISH.entry,
    BN_BACKWARD_INPUT.entry,
    BN_BACKWARD_INPUT_EVAL.entry,
];

fn params(s: BnShape, affine: bool, eps: f32, momentum: f32) -> U {
    U {
        n: s.n as u32,
        c: s.channels as u32,
        hw: s.hw as u32,
        affine: affine as u32,
        eps,
        momentum,
        split: s.split() as u32,
    }
}

/// Per-channel batch mean and biased variance of x: each channel split over workgroups
/// ([`BnShape::split`](crate::params::BnShape::split)), then the parts combined per channel.
pub fn bn_stats(
    gpu: &Gpu,
    s: BnShape,
    x: &GpuBuffer,
    mean: &GpuBuffer,
    var: &GpuBuffer,
) -> Result<()> {
    let prm = params(s, false, 0.0, 0.0);
    let part = parts(gpu, s, 2)?;
    let binds = [x.into(), mean.into(), var.into(), (&part).into()];
    gpu.dispatch(
        &BN_STATS,
        &[],
        &prm,
        &binds,
        grid(s.channels as u32 * prm.split),
    )?;
    bn_stats_finish(gpu, s, &part, mean, var)
}

/// mean and biased variance per channel from the parts (mean, Σ(x − mean)²) of a split
/// statistics pass (this one's or `bn_act_stats`'s), combined in order (Chan et al.).
pub(crate) fn bn_stats_finish(
    gpu: &Gpu,
    s: BnShape,
    part: &GpuBuffer,
    mean: &GpuBuffer,
    var: &GpuBuffer,
) -> Result<()> {
    let prm = params(s, false, 0.0, 0.0);
    let binds = [part.into(), mean.into(), var.into()];
    let finish = BN_STATS_FINISH.groups_for(s.channels);
    gpu.dispatch(&BN_STATS_FINISH, &[], &prm, &binds, finish)
}

/// Partial results of a split per-channel reduction: `per` floats per part.
pub(crate) fn parts(gpu: &Gpu, s: BnShape, per: usize) -> Result<GpuBuffer> {
    let n = s.channels * s.split() * per;
    gpu.alloc_scratch(n as u64 * 4)
}

/// PyTorch's momentum update of the running statistics in place; `count` = N·H·W of the batch
/// behind `mean` and `var` (the running variance tracks the unbiased variance).
#[allow(clippy::too_many_arguments)]
pub fn bn_update_running(
    gpu: &Gpu,
    channels: usize,
    count: usize,
    momentum: f32,
    mean: &GpuBuffer,
    var: &GpuBuffer,
    running_mean: &GpuBuffer,
    running_var: &GpuBuffer,
) -> Result<()> {
    let s = BnShape {
        n: count,
        channels,
        hw: 1,
    };
    let prm = params(s, false, 0.0, momentum);
    let binds = [
        mean.into(),
        var.into(),
        running_mean.into(),
        running_var.into(),
    ];
    gpu.dispatch(
        &BN_UPDATE_RUNNING,
        &[],
        &prm,
        &binds,
        BN_UPDATE_RUNNING.groups_for(channels),
    )
}

/// y = (x − mean)·invstd·γ + β; batch statistics in training, running ones in evaluation.
/// `affine = None` means γ = 1, β = 0 (mean stands in for the unbound buffers, unread).
#[allow(clippy::too_many_arguments)]
pub fn bn_forward(
    gpu: &Gpu,
    s: BnShape,
    eps: f32,
    x: &GpuBuffer,
    mean: &GpuBuffer,
    var: &GpuBuffer,
    affine: Option<(&GpuBuffer, &GpuBuffer)>,
    y: &GpuBuffer,
) -> Result<()> {
    let (g, b) = affine.unwrap_or((mean, mean));
    let prm = params(s, affine.is_some(), eps, 0.0);
    let binds = [
        x.into(),
        mean.into(),
        var.into(),
        g.into(),
        b.into(),
        y.into(),
    ];
    gpu.dispatch(
        &BN_FORWARD,
        &[],
        &prm,
        &binds,
        BN_FORWARD.groups_for(s.len()),
    )
}

/// dγ = Σ dy·x̂ and dβ = Σ dy per channel in one pass over the data (each channel split over
/// workgroups, then the parts summed per channel).
#[allow(clippy::too_many_arguments)]
pub fn bn_backward_reduce(
    gpu: &Gpu,
    s: BnShape,
    eps: f32,
    x: &GpuBuffer,
    mean: &GpuBuffer,
    var: &GpuBuffer,
    dy: &GpuBuffer,
    dgamma: &GpuBuffer,
    dbeta: &GpuBuffer,
) -> Result<()> {
    let prm = params(s, false, eps, 0.0);
    let part = parts(gpu, s, 2)?;
    let binds = [
        x.into(),
        mean.into(),
        var.into(),
        dy.into(),
        dgamma.into(),
        dbeta.into(),
        (&part).into(),
    ];
    gpu.dispatch(
        &BN_BACKWARD_REDUCE,
        &[],
        &prm,
        &binds,
        grid(s.channels as u32 * prm.split),
    )?;
    let binds = [(&part).into(), var.into(), dgamma.into(), dbeta.into()];
    let finish = BN_BACKWARD_REDUCE_FINISH.groups_for(s.channels);
    gpu.dispatch(&BN_BACKWARD_REDUCE_FINISH, &[], &prm, &binds, finish)
}

/// Training-mode dx from the sums of [`bn_backward_reduce`]; `gamma = None` means γ = 1.
#[allow(clippy::too_many_arguments)]
pub fn bn_backward_input(
    gpu: &Gpu,
    s: BnShape,
    eps: f32,
    x: &GpuBuffer,
    mean: &GpuBuffer,
    var: &GpuBuffer,
    gamma: Option<&GpuBuffer>,
    dy: &GpuBuffer,
    dgamma: &GpuBuffer,
    dbeta: &GpuBuffer,
    dx: &GpuBuffer,
) -> Result<()> {
    let prm = params(s, gamma.is_some(), eps, 0.0);
    let g = gamma.unwrap_or(mean);
    let binds = [
        x.into(),
        mean.into(),
        var.into(),
        g.into(),
        dy.into(),
        dgamma.into(),
        dbeta.into(),
        dx.into(),
    ];
    gpu.dispatch(
        &BN_BACKWARD_INPUT,
        &[],
        &prm,
        &binds,
        BN_BACKWARD_INPUT.groups_for(s.len()),
    )
}

/// Evaluation-mode dx = dy·γ·invstd over the running variance; `gamma = None` means γ = 1.
pub fn bn_backward_input_eval(
    gpu: &Gpu,
    s: BnShape,
    eps: f32,
    var: &GpuBuffer,
    gamma: Option<&GpuBuffer>,
    dy: &GpuBuffer,
    dx: &GpuBuffer,
) -> Result<()> {
    let prm = params(s, gamma.is_some(), eps, 0.0);
    let g = gamma.unwrap_or(var);
    let binds = [dy.into(), var.into(), g.into(), dx.into()];
    gpu.dispatch(
        &BN_BACKWARD_INPUT_EVAL,
        &[],
        &prm,
        &binds,
        BN_BACKWARD_INPUT_EVAL.groups_for(s.len()),
    )
}

/// The whole training-mode backward in two dispatches: dγ, dβ, then dx. dγ and dβ are written
/// even without affine parameters, since dx needs them.
#[allow(clippy::too_many_arguments)]
pub fn bn_backward(
    gpu: &Gpu,
    s: BnShape,
    eps: f32,
    x: &GpuBuffer,
    mean: &GpuBuffer,
    var: &GpuBuffer,
    gamma: Option<&GpuBuffer>,
    dy: &GpuBuffer,
    dgamma: &GpuBuffer,
    dbeta: &GpuBuffer,
    dx: &GpuBuffer,
) -> Result<()> {
    bn_backward_reduce(gpu, s, eps, x, mean, var, dy, dgamma, dbeta)?;
    bn_backward_input(gpu, s, eps, x, mean, var, gamma, dy, dgamma, dbeta, dx)
}
