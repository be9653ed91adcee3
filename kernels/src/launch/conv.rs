use crate::cpu::ConvParams;
use crate::error::Result;
use crate::pipelines::{Access::*, Kernel};
use crate::{shaders::CONV, Gpu, GpuBuffer};

const CONV_GEMM: Kernel = Kernel { shader: CONV, entry: "conv_gemm", bindings: &[Read, Read, ReadWrite] };
const TILE: usize = 64;
/// Weight-gradient K range per split: long enough to amortise a tile, short enough to spread
/// N·OH·OW (131,072 at batch 128 on 32x32) over many workgroups.
const K_PER_SPLIT: usize = 2048;
/// Cap on the weight-gradient partial planes (bytes), so split-K never costs much memory.
const MAX_PARTIAL_BYTES: usize = 64 << 20;

fn params(p: &ConvParams, mode: u32, m: usize, n: usize, k: usize, k_split: usize, accumulate: bool) -> [u32; 21] {
    [
        mode, m as u32, n as u32, k as u32,
        p.n as u32, p.cin as u32, p.h as u32, p.w as u32,
        p.cout as u32, p.oh() as u32, p.ow() as u32, p.kh as u32,
        p.kw as u32, p.stride as u32, p.pad as u32, (accumulate as u32) << 1,
        0, 0, 0, k_split as u32, 0,
    ]
}

fn groups(m: usize, n: usize, z: usize) -> [u32; 3] {
    [n.div_ceil(TILE) as u32, m.div_ceil(TILE) as u32, z as u32]
}

/// y = conv(x, w) as implicit GEMM.
pub fn conv2d_forward(gpu: &Gpu, p: &ConvParams, x: &GpuBuffer, w: &GpuBuffer, y: &GpuBuffer) -> Result<()> {
    let (m, n, k) = (p.n * p.oh() * p.ow(), p.cout, p.taps());
    let prm = params(p, 0, m, n, k, k, false);
    gpu.dispatch(&CONV_GEMM, &[], &prm, &[x.into(), w.into(), y.into()], groups(m, n, 1))
}

/// dx from dy and w (any stride) as implicit GEMM.
pub fn conv2d_input_grad(gpu: &Gpu, p: &ConvParams, dy: &GpuBuffer, w: &GpuBuffer, dx: &GpuBuffer) -> Result<()> {
    let (m, n, k) = (p.n * p.h * p.w, p.cin, p.cout * p.kh * p.kw);
    let prm = params(p, 1, m, n, k, k, false);
    gpu.dispatch(&CONV_GEMM, &[], &prm, &[dy.into(), w.into(), dx.into()], groups(m, n, 1))
}

/// How many K splits the weight gradient uses, and the scratch floats they need.
pub fn conv2d_weight_grad_splits(p: &ConvParams) -> (usize, usize) {
    let (m, n, k) = (p.cout, p.taps(), p.n * p.oh() * p.ow());
    let by_memory = (MAX_PARTIAL_BYTES / (m * n * 4)).max(1);
    let splits = k.div_ceil(K_PER_SPLIT).clamp(1, 64).min(by_memory);
    (splits, splits * m * n)
}

/// dw from x and dy: split-K partial planes into `scratch` (see
/// [`conv2d_weight_grad_splits`]), then a fixed-order sum over the planes into dw.
pub fn conv2d_weight_grad(gpu: &Gpu, p: &ConvParams, x: &GpuBuffer, dy: &GpuBuffer, scratch: &GpuBuffer, dw: &GpuBuffer) -> Result<()> {
    let (m, n, k) = (p.cout, p.taps(), p.n * p.oh() * p.ow());
    let (splits, _) = conv2d_weight_grad_splits(p);
    let k_split = k.div_ceil(splits).div_ceil(16) * 16;
    let splits = k.div_ceil(k_split);
    let prm = params(p, 2, m, n, k, k_split, false);
    gpu.dispatch(&CONV_GEMM, &[], &prm, &[dy.into(), x.into(), scratch.into()], groups(m, n, splits))?;
    super::sum_mid(gpu, 1, splits, m * n, 1.0, scratch, dw)
}
