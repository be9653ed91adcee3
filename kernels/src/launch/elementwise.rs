use crate::error::Result;
use crate::pipelines::{Access::*, EntryPoint, Kernel};
use crate::uniforms::ElementwiseUniform as U;
use crate::{Dtype, Gpu, GpuBuffer};

type K = Kernel<U>;
const fn kernel(entry: &'static str, bindings: &'static [crate::Access]) -> K {
    K::new(entry, bindings, [256, 1, 1])
}

const AXPBY: K = kernel("axpby", &[Read, Read, ReadWrite]);
const MUL: K = kernel("mul", &[Read, Read, ReadWrite]);
const RELU_BACKWARD: K = kernel("relu_backward", &[Read, Read, ReadWrite]);
const BIAS_ADD: K = kernel("bias_add", &[Read, Read, ReadWrite]);
const SCALE: K = kernel("scale", &[Read, ReadWrite]);
const RELU: K = kernel("relu", &[Read, ReadWrite]);
const AXPY_INPLACE: K = kernel("axpy_inplace", &[Read, ReadWrite]);
const FILL: K = kernel("fill", &[ReadWrite]);
const CLAMP_RANGE: K = kernel("clamp_range", &[ReadWrite]);
const EXPAND_MID: K = kernel("expand_mid", &[Read, ReadWrite]);
const SILU: K = kernel("silu", &[Read, ReadWrite]);
const SILU_BACKWARD: K = kernel("silu_backward", &[Read, Read, ReadWrite]);
const SIGMOID: K = kernel("sigmoid", &[Read, ReadWrite]);
const SIGMOID_BACKWARD: K = kernel("sigmoid_backward", &[Read, Read, ReadWrite]);
const TO_ACT: K = kernel("to_act", &[Read, ReadWrite]);
const FROM_ACT: K = kernel("from_act", &[Read, ReadWrite]);

/// Every entry point of `elementwise.wgsl` (for the contract test).
pub(crate) const ENTRY_POINTS: &[EntryPoint] = &[
    AXPBY.entry,
    MUL.entry,
    RELU_BACKWARD.entry,
    BIAS_ADD.entry,
    SCALE.entry,
    RELU.entry,
    AXPY_INPLACE.entry,
    FILL.entry,
    CLAMP_RANGE.entry,
    EXPAND_MID.entry,
    SILU.entry,
    SILU_BACKWARD.entry,
    SIGMOID.entry,
    SIGMOID_BACKWARD.entry,
    TO_ACT.entry,
    FROM_ACT.entry,
];

/// Parameters over `n` elements; the rest default to one channel of one element.
fn over(n: usize) -> U {
    U {
        n: n as u32,
        inner: 1,
        channels: 1,
        ..U::default()
    }
}

fn binary(
    gpu: &Gpu,
    k: &K,
    params: U,
    x: &GpuBuffer,
    y: &GpuBuffer,
    out: &GpuBuffer,
) -> Result<()> {
    let n = params.n as usize;
    gpu.dispatch(
        k,
        &[],
        &params,
        &[x.into(), y.into(), out.into()],
        k.groups_for(n),
    )
}

fn unary(gpu: &Gpu, k: &K, n: usize, alpha: f32, x: &GpuBuffer, out: &GpuBuffer) -> Result<()> {
    let params = U { alpha, ..over(n) };
    gpu.dispatch(k, &[], &params, &[x.into(), out.into()], k.groups_for(n))
}

/// out = alpha*x + beta*y over `n` elements.
pub fn axpby(
    gpu: &Gpu,
    n: usize,
    alpha: f32,
    x: &GpuBuffer,
    beta: f32,
    y: &GpuBuffer,
    out: &GpuBuffer,
) -> Result<()> {
    binary(
        gpu,
        &AXPBY,
        U {
            alpha,
            beta,
            ..over(n)
        },
        x,
        y,
        out,
    )
}

pub fn mul(gpu: &Gpu, n: usize, x: &GpuBuffer, y: &GpuBuffer, out: &GpuBuffer) -> Result<()> {
    binary(gpu, &MUL, over(n), x, y, out)
}

pub fn relu_backward(
    gpu: &Gpu,
    n: usize,
    x: &GpuBuffer,
    g: &GpuBuffer,
    out: &GpuBuffer,
) -> Result<()> {
    binary(gpu, &RELU_BACKWARD, over(n), x, g, out)
}

/// out\[o, c, i\] = x\[o, c, i\] + bias\[c\] over `n` elements with `inner` per channel.
pub fn bias_add(
    gpu: &Gpu,
    n: usize,
    channels: usize,
    inner: usize,
    x: &GpuBuffer,
    bias: &GpuBuffer,
    out: &GpuBuffer,
) -> Result<()> {
    let params = U {
        inner: inner as u32,
        channels: channels as u32,
        ..over(n)
    };
    binary(gpu, &BIAS_ADD, params, x, bias, out)
}

/// SiLU: out = x·σ(x).
pub fn silu(gpu: &Gpu, n: usize, x: &GpuBuffer, out: &GpuBuffer) -> Result<()> {
    unary(gpu, &SILU, n, 0.0, x, out)
}

/// out = g·σ(x)·(1 + x·(1 − σ(x))).
pub fn silu_backward(
    gpu: &Gpu,
    n: usize,
    x: &GpuBuffer,
    g: &GpuBuffer,
    out: &GpuBuffer,
) -> Result<()> {
    binary(gpu, &SILU_BACKWARD, over(n), x, g, out)
}

/// out = σ(x).
pub fn sigmoid(gpu: &Gpu, n: usize, x: &GpuBuffer, out: &GpuBuffer) -> Result<()> {
    unary(gpu, &SIGMOID, n, 0.0, x, out)
}

/// out = g·σ(x)·(1 − σ(x)).
pub fn sigmoid_backward(
    gpu: &Gpu,
    n: usize,
    x: &GpuBuffer,
    g: &GpuBuffer,
    out: &GpuBuffer,
) -> Result<()> {
    binary(gpu, &SIGMOID_BACKWARD, over(n), x, g, out)
}

pub fn scale(gpu: &Gpu, n: usize, alpha: f32, x: &GpuBuffer, out: &GpuBuffer) -> Result<()> {
    unary(gpu, &SCALE, n, alpha, x, out)
}

/// out = alpha·x converted to `out`'s element type (f32 ↔ f16, or a scaled copy when both
/// are the same).
pub fn cast(gpu: &Gpu, n: usize, alpha: f32, x: &GpuBuffer, out: &GpuBuffer) -> Result<()> {
    let k = match (x.dtype(), out.dtype()) {
        (Dtype::F32, Dtype::F16) => &TO_ACT,
        (Dtype::F16, Dtype::F32) => &FROM_ACT,
        _ => &SCALE,
    };
    unary(gpu, k, n, alpha, x, out)
}

pub fn relu(gpu: &Gpu, n: usize, x: &GpuBuffer, out: &GpuBuffer) -> Result<()> {
    unary(gpu, &RELU, n, 0.0, x, out)
}

/// out += alpha * x
pub fn axpy_inplace(gpu: &Gpu, n: usize, alpha: f32, x: &GpuBuffer, out: &GpuBuffer) -> Result<()> {
    unary(gpu, &AXPY_INPLACE, n, alpha, x, out)
}

pub fn fill(gpu: &Gpu, n: usize, alpha: f32, out: &GpuBuffer) -> Result<()> {
    let params = U { alpha, ..over(n) };
    gpu.dispatch(&FILL, &[], &params, &[out.into()], FILL.groups_for(n))
}

/// out[i] = clamp(out[i], lo, hi) for i in `range`, in place.
pub fn clamp_range(
    gpu: &Gpu,
    range: std::ops::Range<usize>,
    lo: f32,
    hi: f32,
    out: &GpuBuffer,
) -> Result<()> {
    let n = range.len();
    if n == 0 {
        return Ok(());
    }
    let params = U {
        n: range.end as u32,
        inner: range.start as u32,
        alpha: lo,
        beta: hi,
        ..U::default()
    };
    gpu.dispatch(
        &CLAMP_RANGE,
        &[],
        &params,
        &[out.into()],
        CLAMP_RANGE.groups_for(n),
    )
}

/// y as [outer, inner] broadcast to out as [outer, len, inner], times alpha.
pub fn expand_mid(
    gpu: &Gpu,
    outer: usize,
    len: usize,
    inner: usize,
    alpha: f32,
    y: &GpuBuffer,
    out: &GpuBuffer,
) -> Result<()> {
    let n = outer * len * inner;
    let params = U {
        n: n as u32,
        inner: inner as u32,
        channels: len as u32,
        alpha,
        ..U::default()
    };
    let g = EXPAND_MID.groups_for(n);
    gpu.dispatch(&EXPAND_MID, &[], &params, &[y.into(), out.into()], g)
}
