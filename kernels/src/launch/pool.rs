use super::groups_for;
use crate::cpu::PoolParams;
use crate::error::Result;
use crate::pipelines::{Access::*, Kernel};
use crate::{shaders::POOL, Gpu, GpuBuffer};

const fn kernel(entry: &'static str, bindings: &'static [crate::Access]) -> Kernel {
    Kernel {
        shader: POOL,
        entry,
        bindings,
    }
}

const AVG_POOL2D_FORWARD: Kernel = kernel("avg_pool2d_forward", &[Read, ReadWrite]);
const AVG_POOL2D_BACKWARD: Kernel = kernel("avg_pool2d_backward", &[Read, ReadWrite]);
const MAX_POOL2D_FORWARD: Kernel = kernel("max_pool2d_forward", &[Read, ReadWrite, ReadWrite]);
const MAX_POOL2D_BACKWARD: Kernel = kernel("max_pool2d_backward", &[Read, Read, ReadWrite]);

fn params(p: &PoolParams) -> [u32; 9] {
    p.check();
    [
        p.x_len() as u32,
        p.y_len() as u32,
        p.h as u32,
        p.w as u32,
        p.oh() as u32,
        p.ow() as u32,
        p.k as u32,
        p.stride as u32,
        p.pad as u32,
    ]
}

/// Average pooling, count_include_pad = True (divide by k²).
pub fn avg_pool2d_forward(gpu: &Gpu, p: &PoolParams, x: &GpuBuffer, y: &GpuBuffer) -> Result<()> {
    let prm = params(p);
    gpu.dispatch(
        &AVG_POOL2D_FORWARD,
        &[],
        &prm,
        &[x.into(), y.into()],
        groups_for(p.y_len(), 256),
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
        groups_for(p.x_len(), 256),
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
        groups_for(p.y_len(), 256),
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
        groups_for(p.x_len(), 256),
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
