use super::{sum_all_chunk, sum_rows};
use crate::error::Result;
use crate::params::{AdamParams, SgdParams};
use crate::pipelines::{Access::*, EntryPoint, Kernel};
use crate::recorder::grid;
use crate::uniforms::OptimUniform as Params;
use crate::{Gpu, GpuBuffer};

type K = Kernel<Params>;
const fn kernel(entry: &'static str, bindings: &'static [crate::Access]) -> K {
    K::new(entry, bindings, [256, 1, 1])
}

const SGD_STEP_PLAIN: K = kernel("sgd_step_plain", &[Read, ReadWrite, Read]);
const SGD_STEP: K = kernel("sgd_step", &[Read, ReadWrite, ReadWrite, Read]);
const ADAM_STEP: K = kernel("adam_step", &[Read, ReadWrite, ReadWrite, ReadWrite, Read]);
const LOOKAHEAD_SYNC: K = kernel("lookahead_sync", &[ReadWrite, ReadWrite, Read]);
const SUM_SQUARES_ROWS: K = kernel("sum_squares_rows", &[Read, ReadWrite]);
const AMP_CHECK_FINITE: K = kernel("amp_check_finite", &[Read, ReadWrite]);
const AMP_UPDATE: K = K::new("amp_update", &[ReadWrite], [1, 1, 1]);

// Must match the flag constants in optim.wgsl.
const FIRST: u32 = 1;
const NESTEROV: u32 = 2;
const DECOUPLED: u32 = 4;

pub(crate) const ENTRY_POINTS: &[EntryPoint] = &[
    SGD_STEP_PLAIN.entry,
    SGD_STEP.entry,
    ADAM_STEP.entry,
    LOOKAHEAD_SYNC.entry,
    SUM_SQUARES_ROWS.entry,
    AMP_CHECK_FINITE.entry,
    AMP_UPDATE.entry,
];

/// The loss scaler's state: [scale, 1/scale, found (1.0 after an inf/NaN gradient), clean
/// steps, applied steps, on]. An optimizer without a scaler binds [`AMP_NONE`] (scale 1,
/// nothing found, off: the updates use the host's step values).
pub const AMP_LEN: usize = 6;
pub const AMP_NONE: [f32; AMP_LEN] = [1.0, 1.0, 0.0, 0.0, 0.0, 0.0];

/// A fresh scaler's state at `scale`.
pub fn amp_start(scale: f32) -> [f32; AMP_LEN] {
    [scale, 1.0 / scale, 0.0, 0.0, 0.0, 1.0]
}

/// Mark `amp` found if any of the `n` gradients is inf or NaN.
pub fn amp_check_finite(gpu: &Gpu, n: usize, grad: &GpuBuffer, amp: &GpuBuffer) -> Result<()> {
    let params = Params {
        n: n as u32,
        ..Default::default()
    };
    let k = &AMP_CHECK_FINITE;
    gpu.dispatch(k, &[], &params, &[grad.into(), amp.into()], k.groups_for(n))
}

/// After the updates: halve the scale if found (the step was skipped), double it after
/// `growth_interval` clean steps, clear the flag.
pub fn amp_update(gpu: &Gpu, growth_interval: u32, amp: &GpuBuffer) -> Result<()> {
    let params = Params {
        len: growth_interval,
        ..Default::default()
    };
    gpu.dispatch(&AMP_UPDATE, &[], &params, &[amp.into()], [1, 1, 1])
}

fn flag(on: bool, bit: u32) -> u32 {
    if on {
        bit
    } else {
        0
    }
}

/// One SGD step over a flat group of `n` elements, in place on `param` (and `momentum_buf`).
/// `momentum_buf` may be `None` only when `h.momentum` is 0; it is ignored then.
pub fn sgd_step(
    gpu: &Gpu,
    n: usize,
    h: &SgdParams,
    grad: &GpuBuffer,
    param: &GpuBuffer,
    momentum_buf: Option<&GpuBuffer>,
    amp: &GpuBuffer,
) -> Result<()> {
    let params = Params {
        n: n as u32,
        flags: flag(h.first, FIRST) | flag(h.nesterov, NESTEROV),
        lr: h.lr,
        weight_decay: h.weight_decay,
        grad_scale: h.grad_scale,
        momentum: h.momentum,
        dampening: h.dampening,
        ..Default::default()
    };
    if h.momentum == 0.0 {
        return gpu.dispatch(
            &SGD_STEP_PLAIN,
            &[],
            &params,
            &[grad.into(), param.into(), amp.into()],
            SGD_STEP_PLAIN.groups_for(n),
        );
    }
    let buf = momentum_buf.expect("sgd_step: momentum != 0 needs a momentum buffer");
    gpu.dispatch(
        &SGD_STEP,
        &[],
        &params,
        &[grad.into(), param.into(), buf.into(), amp.into()],
        SGD_STEP.groups_for(n),
    )
}

/// One Adam / AdamW step over a flat group of `n` elements, in place on `param`, `m` and `v`.
#[allow(clippy::too_many_arguments)]
pub fn adam_step(
    gpu: &Gpu,
    n: usize,
    h: &AdamParams,
    grad: &GpuBuffer,
    param: &GpuBuffer,
    m: &GpuBuffer,
    v: &GpuBuffer,
    amp: &GpuBuffer,
) -> Result<()> {
    let (ln_beta1, ln_beta2) = h.ln_betas();
    let params = Params {
        n: n as u32,
        flags: flag(h.decoupled, DECOUPLED),
        lr: h.lr,
        weight_decay: h.weight_decay,
        grad_scale: h.grad_scale,
        beta1: h.beta1,
        beta2: h.beta2,
        eps: h.eps,
        bc1: h.bc1,
        bc2: h.bc2,
        ln_beta1,
        ln_beta2,
        ..Default::default()
    };
    let bindings = [grad.into(), param.into(), m.into(), v.into(), amp.into()];
    gpu.dispatch(&ADAM_STEP, &[], &params, &bindings, ADAM_STEP.groups_for(n))
}

/// Lookahead synchronisation over `n` elements: slow ← slow + α·(fast − slow); fast ← slow.
/// Under a loss scaler it runs only when the applied steps reach a multiple of `period`
/// (dispatched every step); otherwise the host dispatches it on its period.
pub fn lookahead_sync(
    gpu: &Gpu,
    n: usize,
    alpha: f32,
    period: u64,
    fast: &GpuBuffer,
    slow: &GpuBuffer,
    amp: &GpuBuffer,
) -> Result<()> {
    let params = Params {
        n: n as u32,
        alpha,
        len: period.min(u32::MAX as u64) as u32,
        ..Default::default()
    };
    gpu.dispatch(
        &LOOKAHEAD_SYNC,
        &[],
        &params,
        &[fast.into(), slow.into(), amp.into()],
        LOOKAHEAD_SYNC.groups_for(n),
    )
}

/// Floats the `scratch` buffer of [`sum_squares`] must hold for `n` elements.
pub fn sum_squares_scratch_len(n: usize) -> usize {
    n.div_ceil(sum_all_chunk(n)).max(1)
}

/// out\[0\] = Σ x² over `n` elements, in two deterministic passes through `scratch`
/// (which must hold [`sum_squares_scratch_len`]`(n)` floats).
pub fn sum_squares(
    gpu: &Gpu,
    n: usize,
    x: &GpuBuffer,
    scratch: &GpuBuffer,
    out: &GpuBuffer,
) -> Result<()> {
    if n == 0 {
        return super::fill(gpu, 1, 0.0, out);
    }
    let chunk = sum_all_chunk(n);
    let rows = n.div_ceil(chunk);
    let params = Params {
        n: n as u32,
        len: chunk as u32,
        ..Default::default()
    };
    gpu.dispatch(
        &SUM_SQUARES_ROWS,
        &[],
        &params,
        &[x.into(), scratch.into()],
        grid(rows as u32),
    )?;
    sum_rows(gpu, rows, rows, 1.0, scratch, out)
}
