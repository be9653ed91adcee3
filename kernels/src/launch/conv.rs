use crate::cpu::ConvParams;
use crate::error::{KernelError, Result};
use crate::pipelines::{Access::*, Kernel};
use crate::{shaders::CONV, BufRef, Gpu, GpuBuffer};

const CONV_GEMM: Kernel = Kernel { shader: CONV, entry: "conv_gemm", bindings: &[Read, Read, ReadWrite] };
const TILE: usize = 64;
/// Weight-gradient K range per split: long enough to amortise a tile, short enough to spread
/// N·OH·OW (131,072 at batch 128 on 32x32) over many workgroups.
const K_PER_SPLIT: usize = 2048;
/// Cap on the weight-gradient partial planes (bytes), so split-K never costs much memory.
const MAX_PARTIAL_BYTES: usize = 64 << 20;

#[allow(clippy::too_many_arguments)]
fn params(p: &ConvParams, mode: u32, m: usize, n: usize, k: usize, k_split: usize, accumulate: bool, offs: [usize; 3]) -> [u32; 21] {
    [
        mode, m as u32, n as u32, k as u32,
        p.n as u32, p.cin as u32, p.h as u32, p.w as u32,
        p.cout as u32, p.oh() as u32, p.ow() as u32, p.kh as u32,
        p.kw as u32, p.stride as u32, p.pad as u32, (accumulate as u32) << 1,
        offs[0] as u32, offs[1] as u32, offs[2] as u32, k_split as u32, 0,
    ]
}

fn groups(m: usize, n: usize, z: usize) -> [u32; 3] {
    [n.div_ceil(TILE) as u32, m.div_ceil(TILE) as u32, z as u32]
}

/// [`super::window`] at this adapter's offset alignment.
fn window<'a>(gpu: &Gpu, buf: &'a GpuBuffer, first: usize, len: usize) -> (BufRef<'a>, usize) {
    super::window(buf, first, len, gpu.limits().min_storage_buffer_offset_alignment.max(4) as u64)
}

/// Images per dispatch so that no batched operand binding exceeds the device's limit
/// (128 MiB on most adapters): WRN-22-8's first group is exactly that at batch 256.
fn images_per_chunk(gpu: &Gpu, p: &ConvParams, whole: &[&GpuBuffer], per_image_floats: &[usize]) -> Result<usize> {
    let limit = gpu.max_binding();
    if let Some(big) = whole.iter().find(|b| BufRef::from(**b).size > limit) {
        return Err(KernelError::BindingTooLarge { bytes: BufRef::from(*big).size, limit });
    }
    let align = gpu.limits().min_storage_buffer_offset_alignment.max(4) as u64;
    let cap = limit.saturating_sub(align) / 4;
    let most = per_image_floats.iter().map(|&f| cap / f.max(1) as u64).min().unwrap_or(u64::MAX) as usize;
    if most == 0 {
        let bytes = *per_image_floats.iter().max().unwrap_or(&0) as u64 * 4;
        return Err(KernelError::BindingTooLarge { bytes, limit });
    }
    Ok(most.min(p.n).max(1))
}

/// The chunks of images: (first image, images).
fn chunks(n: usize, per: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..n).step_by(per.max(1)).map(move |i| (i, per.min(n - i)))
}

/// y = conv(x, w) as implicit GEMM, chunked over the batch where needed.
pub fn conv2d_forward(gpu: &Gpu, p: &ConvParams, x: &GpuBuffer, w: &GpuBuffer, y: &GpuBuffer) -> Result<()> {
    let (xi, yi) = (p.cin * p.h * p.w, p.cout * p.oh() * p.ow());
    let per = images_per_chunk(gpu, p, &[w], &[xi, yi])?;
    for (first, nb) in chunks(p.n, per) {
        let q = p.with_batch(nb);
        let (m, n, k) = (nb * p.oh() * p.ow(), p.cout, p.taps());
        let (xw, xo) = window(gpu, x, first * xi, nb * xi);
        let (yw, yo) = window(gpu, y, first * yi, nb * yi);
        let prm = params(&q, 0, m, n, k, k, false, [xo, 0, yo]);
        gpu.dispatch(&CONV_GEMM, &[], &prm, &[xw, w.into(), yw], groups(m, n, 1))?;
    }
    Ok(())
}

/// dx from dy and w (any stride) as implicit GEMM, chunked over the batch where needed.
pub fn conv2d_input_grad(gpu: &Gpu, p: &ConvParams, dy: &GpuBuffer, w: &GpuBuffer, dx: &GpuBuffer) -> Result<()> {
    let (xi, yi) = (p.cin * p.h * p.w, p.cout * p.oh() * p.ow());
    let per = images_per_chunk(gpu, p, &[w], &[xi, yi])?;
    for (first, nb) in chunks(p.n, per) {
        let q = p.with_batch(nb);
        let (m, n, k) = (nb * p.h * p.w, p.cin, p.cout * p.kh * p.kw);
        let (dyw, dyo) = window(gpu, dy, first * yi, nb * yi);
        let (dxw, dxo) = window(gpu, dx, first * xi, nb * xi);
        let prm = params(&q, 1, m, n, k, k, false, [dyo, 0, dxo]);
        gpu.dispatch(&CONV_GEMM, &[], &prm, &[dyw, w.into(), dxw], groups(m, n, 1))?;
    }
    Ok(())
}

/// How many K splits the weight gradient uses, and the scratch floats they need.
pub fn conv2d_weight_grad_splits(p: &ConvParams) -> (usize, usize) {
    let (m, n, k) = (p.cout, p.taps(), p.n * p.oh() * p.ow());
    let by_memory = (MAX_PARTIAL_BYTES / (m * n * 4)).max(1);
    let splits = k.div_ceil(K_PER_SPLIT).clamp(1, 64).min(by_memory);
    (splits, splits * m * n)
}

/// dw from x and dy: split-K partial planes into `scratch` (see
/// [`conv2d_weight_grad_splits`]), accumulated over batch chunks where needed, then a
/// fixed-order sum over the planes into dw.
pub fn conv2d_weight_grad(gpu: &Gpu, p: &ConvParams, x: &GpuBuffer, dy: &GpuBuffer, scratch: &GpuBuffer, dw: &GpuBuffer) -> Result<()> {
    let (m, n) = (p.cout, p.taps());
    let (xi, yi) = (p.cin * p.h * p.w, p.cout * p.oh() * p.ow());
    let (splits, _) = conv2d_weight_grad_splits(p);
    let per = images_per_chunk(gpu, p, &[scratch], &[xi, yi])?;
    for (c, (first, nb)) in chunks(p.n, per).enumerate() {
        let q = p.with_batch(nb);
        let k = nb * p.oh() * p.ow();
        // Every chunk writes all `splits` planes (trailing slices may be empty and add zero),
        // so the planes line up across chunks.
        let k_split = k.div_ceil(splits).div_ceil(16) * 16;
        let (dyw, dyo) = window(gpu, dy, first * yi, nb * yi);
        let (xw, xo) = window(gpu, x, first * xi, nb * xi);
        let prm = params(&q, 2, m, n, k, k_split, c > 0, [dyo, xo, 0]);
        gpu.dispatch(&CONV_GEMM, &[], &prm, &[dyw, xw, scratch.into()], groups(m, n, splits))?;
    }
    super::sum_mid(gpu, 1, splits, m * n, 1.0, scratch, dw)
}
