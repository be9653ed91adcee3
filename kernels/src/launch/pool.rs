use crate::error::Result;
use crate::params::PoolParams;
use crate::pipelines::{Access::*, EntryPoint, Kernel};
use crate::uniforms::PoolUniform as U;
use crate::{Gpu, GpuBuffer};

type K = Kernel<U>;
const fn kernel(entry: &'static str, bindings: &'static [crate::Access]) -> K {
    K::new(entry, bindings, [256, 1, 1])
}

const AVG_POOL2D_FORWARD: K = kernel("avg_pool2d_forward", &[Read, ReadWrite]);
const AVG_POOL2D_BACKWARD: K = kernel("avg_pool2d_backward", &[Read, ReadWrite]);
const MAX_POOL2D_FORWARD: K = kernel("max_pool2d_forward", &[Read, ReadWrite, ReadWrite]);
const MAX_POOL2D_BACKWARD: K = kernel("max_pool2d_backward", &[Read, Read, ReadWrite]);

pub(crate) const ENTRY_POINTS: &[EntryPoint] = &[
    AVG_POOL2D_FORWARD.entry,
    AVG_POOL2D_BACKWARD.entry,
    MAX_POOL2D_FORWARD.entry,
    MAX_POOL2D_BACKWARD.entry,
];

fn params(p: &PoolParams) -> U {
    p.check();
    U {
        x_len: p.x_len() as u32,
        y_len: p.y_len() as u32,
        h: p.h as u32,
        w: p.w as u32,
        oh: p.oh() as u32,
        ow: p.ow() as u32,
        k: p.k as u32,
        stride: p.stride as u32,
        pad: p.pad as u32,
    }
}

/// Average pooling, count_include_pad = True (divide by k²).
pub fn avg_pool2d_forward(gpu: &Gpu, p: &PoolParams, x: &GpuBuffer, y: &GpuBuffer) -> Result<()> {
    let prm = params(p);
    gpu.dispatch(
        &AVG_POOL2D_FORWARD,
        &[],
        &prm,
        &[x.into(), y.into()],
        AVG_POOL2D_FORWARD.groups_for(p.y_len()),
    )
}

pub fn avg_pool2d_backward(
    gpu: &Gpu,
    p: &PoolParams,
    dy: &GpuBuffer,
    dx: &GpuBuffer,
) -> Result<()> {
    let prm = params(p);
    gpu.dispatch(
        &AVG_POOL2D_BACKWARD,
        &[],
        &prm,
        &[dy.into(), dx.into()],
        AVG_POOL2D_BACKWARD.groups_for(p.x_len()),
    )
}

/// Max pooling; `idx` (u32 per output) gets the maximum's position within its H×W plane.
pub fn max_pool2d_forward(
    gpu: &Gpu,
    p: &PoolParams,
    x: &GpuBuffer,
    y: &GpuBuffer,
    idx: &GpuBuffer,
) -> Result<()> {
    let prm = params(p);
    let binds = [x.into(), y.into(), idx.into()];
    gpu.dispatch(
        &MAX_POOL2D_FORWARD,
        &[],
        &prm,
        &binds,
        MAX_POOL2D_FORWARD.groups_for(p.y_len()),
    )
}

/// Routes dy to the argmax positions of [`max_pool2d_forward`], gathering per input element.
pub fn max_pool2d_backward(
    gpu: &Gpu,
    p: &PoolParams,
    dy: &GpuBuffer,
    idx: &GpuBuffer,
    dx: &GpuBuffer,
) -> Result<()> {
    let prm = params(p);
    let binds = [dy.into(), idx.into(), dx.into()];
    gpu.dispatch(
        &MAX_POOL2D_BACKWARD,
        &[],
        &prm,
        &binds,
        MAX_POOL2D_BACKWARD.groups_for(p.x_len()),
    )
}

/// [N, C, H, W] → [N, C] plane means: a row sum scaled by 1/(H·W), reusing the reduction.
pub fn global_avg_pool_forward(
    gpu: &Gpu,
    n: usize,
    channels: usize,
    hw: usize,
    x: &GpuBuffer,
    y: &GpuBuffer,
) -> Result<()> {
    let inv = 1.0 / hw.max(1) as f32;
    super::sum_rows(gpu, n * channels * hw, hw.max(1), inv, x, y)
}

/// dx[n, c, :, :] = dy[n, c] / (H·W): a broadcast, reusing expand_mid.
pub fn global_avg_pool_backward(
    gpu: &Gpu,
    n: usize,
    channels: usize,
    hw: usize,
    dy: &GpuBuffer,
    dx: &GpuBuffer,
) -> Result<()> {
    let inv = 1.0 / hw.max(1) as f32;
    super::expand_mid(gpu, n * channels, hw, 1, inv, dy, dx)
}
