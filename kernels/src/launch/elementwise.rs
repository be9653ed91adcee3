use super::{f, groups_for};
use crate::error::Result;
use crate::pipelines::{Access::*, Kernel};
use crate::{shaders::ELEMENTWISE, Gpu, GpuBuffer};

const fn kernel(entry: &'static str, bindings: &'static [crate::Access]) -> Kernel {
    Kernel {
        shader: ELEMENTWISE,
        entry,
        bindings,
    }
}

const AXPBY: Kernel = kernel("axpby", &[Read, Read, ReadWrite]);
const MUL: Kernel = kernel("mul", &[Read, Read, ReadWrite]);
const RELU_BACKWARD: Kernel = kernel("relu_backward", &[Read, Read, ReadWrite]);
const BIAS_ADD: Kernel = kernel("bias_add", &[Read, Read, ReadWrite]);
const SCALE: Kernel = kernel("scale", &[Read, ReadWrite]);
const RELU: Kernel = kernel("relu", &[Read, ReadWrite]);
const AXPY_INPLACE: Kernel = kernel("axpy_inplace", &[Read, ReadWrite]);
const FILL: Kernel = kernel("fill", &[ReadWrite]);
const EXPAND_MID: Kernel = kernel("expand_mid", &[Read, ReadWrite]);

fn binary(
    gpu: &Gpu,
    k: &Kernel,
    params: [u32; 6],
    x: &GpuBuffer,
    y: &GpuBuffer,
    out: &GpuBuffer,
) -> Result<()> {
    let n = params[0] as usize;
    gpu.dispatch(
        k,
        &[],
        &params,
        &[x.into(), y.into(), out.into()],
        groups_for(n, 256),
    )
}

fn unary(
    gpu: &Gpu,
    k: &Kernel,
    n: usize,
    alpha: f32,
    x: &GpuBuffer,
    out: &GpuBuffer,
) -> Result<()> {
    let params = [n as u32, 1, 1, 0, f(alpha), 0];
    gpu.dispatch(k, &[], &params, &[x.into(), out.into()], groups_for(n, 256))
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
        [n as u32, 1, 1, 0, f(alpha), f(beta)],
        x,
        y,
        out,
    )
}

pub fn mul(gpu: &Gpu, n: usize, x: &GpuBuffer, y: &GpuBuffer, out: &GpuBuffer) -> Result<()> {
    binary(gpu, &MUL, [n as u32, 1, 1, 0, 0, 0], x, y, out)
}

pub fn relu_backward(
    gpu: &Gpu,
    n: usize,
    x: &GpuBuffer,
    g: &GpuBuffer,
    out: &GpuBuffer,
) -> Result<()> {
    binary(gpu, &RELU_BACKWARD, [n as u32, 1, 1, 0, 0, 0], x, g, out)
}

/// out[o, c, i] = x[o, c, i] + bias[c] over `n` elements with `inner` per channel.
pub fn bias_add(
    gpu: &Gpu,
    n: usize,
    channels: usize,
    inner: usize,
    x: &GpuBuffer,
    bias: &GpuBuffer,
    out: &GpuBuffer,
) -> Result<()> {
    binary(
        gpu,
        &BIAS_ADD,
        [n as u32, inner as u32, channels as u32, 0, 0, 0],
        x,
        bias,
        out,
    )
}

pub fn scale(gpu: &Gpu, n: usize, alpha: f32, x: &GpuBuffer, out: &GpuBuffer) -> Result<()> {
    unary(gpu, &SCALE, n, alpha, x, out)
}

pub fn relu(gpu: &Gpu, n: usize, x: &GpuBuffer, out: &GpuBuffer) -> Result<()> {
    unary(gpu, &RELU, n, 0.0, x, out)
}

/// out += alpha * x
pub fn axpy_inplace(gpu: &Gpu, n: usize, alpha: f32, x: &GpuBuffer, out: &GpuBuffer) -> Result<()> {
    unary(gpu, &AXPY_INPLACE, n, alpha, x, out)
}

pub fn fill(gpu: &Gpu, n: usize, alpha: f32, out: &GpuBuffer) -> Result<()> {
    let params = [n as u32, 1, 1, 0, f(alpha), 0];
    gpu.dispatch(&FILL, &[], &params, &[out.into()], groups_for(n, 256))
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
    let params = [n as u32, inner as u32, len as u32, 0, f(alpha), 0];
    gpu.dispatch(
        &EXPAND_MID,
        &[],
        &params,
        &[y.into(), out.into()],
        groups_for(n, 256),
    )
}
