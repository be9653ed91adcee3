use crate::error::Result;
use crate::params::{GateGrad, GateParams};
use crate::pipelines::{Access::*, EntryPoint, Kernel};
use crate::recorder::grid;
use crate::uniforms::GateUniform as U;
use crate::{Gpu, GpuBuffer};

type K = Kernel<U>;
const fn kernel(entry: &'static str, bindings: &'static [crate::Access]) -> K {
    K::new(entry, bindings, [256, 1, 1])
}

const FORWARD: K = kernel("gate_forward", &[Read, Read, Read, ReadWrite]);
const GRAD_X: K = kernel("gate_grad_x", &[Read, Read, Read, Read, ReadWrite]);
const GRAD_MASK: K = kernel("gate_grad_mask", &[Read, Read, Read, Read, ReadWrite]);
const GRAD_COEF: K = kernel("gate_grad_coef", &[Read, Read, Read, Read, ReadWrite]);
const GRAD_H: K = kernel("gate_grad_h", &[Read, Read, Read, ReadWrite, Read]);
const HYSTERESIS: K = kernel("gate_hysteresis", &[Read, ReadWrite]);
const COUNT: K = kernel("gate_count", &[Read, ReadWrite]);
const COUNT_RESET: K = K::new("count_reset", &[ReadWrite], [1, 1, 1]);
pub(crate) const ENTRY_POINTS: &[EntryPoint] = &[
    FORWARD.entry,
    GRAD_X.entry,
    GRAD_MASK.entry,
    GRAD_COEF.entry,
    GRAD_H.entry,
    HYSTERESIS.entry,
    COUNT.entry,
    COUNT_RESET.entry,
];

/// The uniform block; fields the entry point ignores are zero.
fn params(p: &GateParams, budget: u64, penalty: f32, tau: f32, mode: u32) -> U {
    U {
        n: p.n() as u32,
        chw: p.chw() as u32,
        hw: p.hw as u32,
        group: p.group() as u32,
        batch: p.batch as u32,
        channels: p.channels as u32,
        gates: p.gates() as u32,
        budget: budget.min(u32::MAX as u64) as u32,
        s1: p.s1,
        s2: p.s2,
        penalty,
        tau,
        mode,
        weight: p.group() as u32,
        clip2: p.clip2,
    }
}

pub fn gate_forward(
    gpu: &Gpu,
    p: &GateParams,
    x: &GpuBuffer,
    mask: &GpuBuffer,
    coef: &GpuBuffer,
    y: &GpuBuffer,
) -> Result<()> {
    let prm = params(p, 0, 0.0, 0.0, 0);
    gpu.dispatch(
        &FORWARD,
        &[],
        &prm,
        &[x.into(), mask.into(), coef.into(), y.into()],
        FORWARD.groups_for(p.n()),
    )
}

#[allow(clippy::too_many_arguments)]
pub fn gate_grad_x(
    gpu: &Gpu,
    p: &GateParams,
    x: &GpuBuffer,
    g: &GpuBuffer,
    mask: &GpuBuffer,
    coef: &GpuBuffer,
    dx: &GpuBuffer,
) -> Result<()> {
    let prm = params(p, 0, 0.0, 0.0, 0);
    let b = [x.into(), mask.into(), coef.into(), g.into(), dx.into()];
    gpu.dispatch(&GRAD_X, &[], &prm, &b, GRAD_X.groups_for(p.n()))
}

pub fn gate_grad_mask(
    gpu: &Gpu,
    p: &GateParams,
    x: &GpuBuffer,
    g: &GpuBuffer,
    coef: &GpuBuffer,
    dm: &GpuBuffer,
) -> Result<()> {
    let prm = params(p, 0, 0.0, 0.0, 0);
    // Binding 2 (the mask) is declared by the family's layout but unused here: bind coef.
    let b = [x.into(), coef.into(), coef.into(), g.into(), dm.into()];
    gpu.dispatch(&GRAD_MASK, &[], &prm, &b, GRAD_MASK.groups_for(p.gates()))
}

#[allow(clippy::too_many_arguments)]
pub fn gate_grad_coef(
    gpu: &Gpu,
    p: &GateParams,
    x: &GpuBuffer,
    g: &GpuBuffer,
    mask: &GpuBuffer,
    coef: &GpuBuffer,
    dcoef: &GpuBuffer,
) -> Result<()> {
    let prm = params(p, 0, 0.0, 0.0, 0);
    let b = [x.into(), mask.into(), coef.into(), g.into(), dcoef.into()];
    gpu.dispatch(&GRAD_COEF, &[], &prm, &b, grid(p.channels as u32))
}

/// `count` is the device's u32 ReLU counter (see [`gate_count`]), read on the device so the
/// budget hinge needs no host round-trip. `loss_scale` holds the gradient backward started
/// from (1, or the loss scale under mixed precision), which the penalty terms are scaled by.
#[allow(clippy::too_many_arguments)]
pub fn gate_grad_h(
    gpu: &Gpu,
    p: &GateParams,
    mode: GateGrad,
    h: &GpuBuffer,
    dm: &GpuBuffer,
    count: &GpuBuffer,
    dh: &GpuBuffer,
    loss_scale: &GpuBuffer,
) -> Result<()> {
    let prm = match mode {
        GateGrad::Ste { penalty, budget } => params(p, budget, penalty, 0.0, 0),
        GateGrad::Snl { l1 } => params(p, 0, l1, 0.0, 1),
    };
    gpu.dispatch(
        &GRAD_H,
        &[],
        &prm,
        &[
            h.into(),
            dm.into(),
            count.into(),
            dh.into(),
            loss_scale.into(),
        ],
        GRAD_H.groups_for(p.gates()),
    )
}

pub fn gate_hysteresis(
    gpu: &Gpu,
    p: &GateParams,
    tau: f32,
    h: &GpuBuffer,
    mask: &GpuBuffer,
) -> Result<()> {
    let prm = params(p, 0, 0.0, tau, 0);
    gpu.dispatch(
        &HYSTERESIS,
        &[],
        &prm,
        &[h.into(), mask.into()],
        HYSTERESIS.groups_for(p.gates()),
    )
}

/// count\[0\] += weight · #{gates with mask > threshold}; `count` is one u32.
pub fn gate_count(
    gpu: &Gpu,
    p: &GateParams,
    threshold: f32,
    mask: &GpuBuffer,
    count: &GpuBuffer,
) -> Result<()> {
    let prm = params(p, 0, 0.0, threshold, 0);
    gpu.dispatch(
        &COUNT,
        &[],
        &prm,
        &[mask.into(), count.into()],
        COUNT.groups_for(p.gates()),
    )
}

/// count\[0\] = 0 (in stream order, unlike a host write).
pub fn count_reset(gpu: &Gpu, count: &GpuBuffer) -> Result<()> {
    gpu.dispatch(&COUNT_RESET, &[], &U::default(), &[count.into()], [1, 1, 1])
}
