use super::conv_rules::{conv_plan, phase_k, plan_of};
use crate::conv_plan::{ConvPass, ConvPlan, Tile};
use crate::error::{KernelError, Result};
use crate::params::ConvParams;
use crate::pipelines::{Access::*, EntryPoint, Kernel};
use crate::uniforms::ConvUniform;
use crate::{BufRef, Gpu, GpuBuffer};

type K = Kernel<ConvUniform>;
/// The two operands, the output and the f32 split-K planes (one of the last two is a stand-in).
const ABC: &[crate::Access] = &[Read, Read, ReadWrite, ReadWrite];
const CONV_GEMM: K = K::new("conv_gemm", ABC, [8, 16, 1]);
const CONV_GEMM_MID: K = K::new("conv_gemm_mid", ABC, [8, 8, 1]);
const CONV_GEMM_SMALL: K = K::new("conv_gemm_small", ABC, [8, 4, 1]);
const CONV_GEMM_TINY: K = K::new("conv_gemm_tiny", ABC, [8, 4, 1]);
const CONV_GEMM_NARROW: K = K::new("conv_gemm_narrow", ABC, [4, 32, 1]);
const CONV_INPUT_GRAD_DIRECT: K = K::new("conv_input_grad_direct", ABC, [DIRECT_WG as u32, 1, 1]);
/// The three passes on tensor cores (shaders/coop_conv.wgsl), where the adapter has 16x16x16
/// f16 x f16 -> f32 cooperative matrices and the operands are f16: 128 rows by 64 columns per
/// workgroup, or by [`COOP_WIDE_N`] where the pass has that many output columns.
const COOP_CONV: K = K::in_shader(crate::shaders::COOP_CONV, "coop_conv", ABC, [128, 1, 1]);
const COOP_CONV_WIDE: K = K::in_shader(
    crate::shaders::COOP_CONV,
    "coop_conv_wide",
    ABC,
    [128, 1, 1],
);
pub(crate) const COOP_ENTRY_POINTS: &[EntryPoint] = &[COOP_CONV.entry, COOP_CONV_WIDE.entry];
/// Columns of the wide tensor-core tile.
pub(super) const COOP_WIDE_N: usize = 128;
pub(crate) const ENTRY_POINTS: &[EntryPoint] = &[
    CONV_GEMM.entry,
    CONV_GEMM_MID.entry,
    CONV_GEMM_SMALL.entry,
    CONV_GEMM_TINY.entry,
    CONV_GEMM_NARROW.entry,
    CONV_INPUT_GRAD_DIRECT.entry,
];
/// Columns of the narrow SIMT tile.
pub(super) const NARROW_N: usize = 32;
pub(super) const TILE_N: usize = 64;
/// Depth of the shader's K slices: the weight gradient's split-K ranges are multiples of it.
pub(super) const TILE_K: usize = 8;
/// The direct input-gradient kernel: invocations per workgroup (DIRECT_WG) and pixels per
/// invocation (a 4x4 block); the channels and taps it takes: `conv_rules::direct_input_grad`.
const DIRECT_WG: usize = 64;
const DIRECT_BLOCK: usize = 4;
/// Params flag: add to the output (later batch chunks of the weight gradient).
const ACCUMULATE: u32 = 2;
/// Params flag: write the f32 split-K planes (binding 4), not the output.
const PLANES: u32 = 4;

/// Where a conv dispatch writes: the output itself, or the f32 split-K planes of an output of
/// the given type (every conv entry point declares both bindings; the one not written gets a
/// small stand-in of the type the variant expects).
enum Dst<'a> {
    Out(BufRef<'a>),
    Planes(&'a GpuBuffer, crate::Dtype),
}

#[allow(clippy::too_many_arguments)]
fn params(
    p: &ConvParams,
    mode: u32,
    m: usize,
    n: usize,
    k: usize,
    k_split: usize,
    flags: u32,
    offs: [usize; 3],
    plane: usize,
) -> ConvUniform {
    let u = |v: usize| v as u32;
    ConvUniform {
        mode,
        m: u(m),
        n: u(n),
        k: u(k),
        batch: u(p.n),
        cin: u(p.cin),
        h: u(p.h),
        w: u(p.w),
        cout: u(p.cout),
        oh: u(p.oh()),
        ow: u(p.ow()),
        kh: u(p.kh),
        kw: u(p.kw),
        stride: u(p.stride),
        pad: u(p.pad),
        flags,
        a_off: u(offs[0]),
        b_off: u(offs[1]),
        c_off: u(offs[2]),
        k_split: u(k_split),
        plane: u(plane),
    }
}

/// One dispatch of a pass's kernel, with the plan's pipeline constants.
fn dispatch(
    gpu: &Gpu,
    (kern, grid): (&K, [u32; 3]),
    plan: &ConvPlan,
    prm: &ConvUniform,
    [a, b]: [BufRef<'_>; 2],
    dst: Dst<'_>,
) -> Result<()> {
    let mut constants = Vec::with_capacity(2);
    if plan.prefetch {
        constants.push(("PREFETCH", 1.0));
    }
    if plan.staged {
        constants.push(("STAGED_STORE", 1.0));
    }
    match dst {
        Dst::Out(out) => {
            let unused = gpu.stand_in(crate::Dtype::F32)?;
            gpu.dispatch(kern, &constants, prm, &[a, b, out, (&unused).into()], grid)
        }
        Dst::Planes(planes, dtype) => {
            let unused = gpu.stand_in(dtype)?;
            let prm = ConvUniform {
                flags: prm.flags | PLANES,
                ..*prm
            };
            let bindings = [a, b, (&unused).into(), planes.into()];
            gpu.dispatch(kern, &constants, &prm, &bindings, grid)
        }
    }
}

/// A tile's entry point, rows and columns.
fn tile_kernel(tile: Tile) -> (&'static K, usize, usize) {
    match tile {
        Tile::Rows256 => (&CONV_GEMM, 256, TILE_N),
        Tile::Rows128 => (&CONV_GEMM_MID, 128, TILE_N),
        Tile::Rows64 => (&CONV_GEMM_SMALL, 64, TILE_N),
        Tile::Rows32 => (&CONV_GEMM_TINY, 32, TILE_N),
        Tile::Cols32 => (&CONV_GEMM_NARROW, 256, NARROW_N),
        Tile::Coop => (
            &COOP_CONV,
            super::gemm::COOP_TILE_M,
            super::gemm::COOP_TILE_N,
        ),
        Tile::CoopWide => (&COOP_CONV_WIDE, super::gemm::COOP_TILE_M, COOP_WIDE_N),
        Tile::Direct => (&CONV_INPUT_GRAD_DIRECT, DIRECT_WG, 1),
    }
}

/// The entry point and grid of a tiled `m x n` GEMM over `z` grid slices; where the plan's tile
/// would need more row tiles than a dispatch dimension holds, the 256-row tile, and an error
/// where even that would.
fn launch_grid(tile: Tile, m: usize, n: usize, z: usize) -> Result<(&'static K, [u32; 3])> {
    let (mut kern, mut rows, mut cols) = tile_kernel(tile);
    if m.div_ceil(rows) > super::MAX_GROUPS {
        (kern, rows, cols) = tile_kernel(Tile::Rows256);
    }
    let groups = [n.div_ceil(cols), m.div_ceil(rows), z];
    if let Some(&most) = groups.iter().find(|&&g| g > super::MAX_GROUPS) {
        return Err(KernelError::GridTooLarge {
            kernel: kern.entry.name.to_string(),
            groups: most,
        });
    }
    Ok((kern, groups.map(|g| g as u32)))
}

/// [`super::window`] at this adapter's offset alignment.
fn window<'a>(gpu: &Gpu, buf: &'a GpuBuffer, first: usize, len: usize) -> (BufRef<'a>, usize) {
    super::window(
        buf,
        first,
        len,
        gpu.limits().min_storage_buffer_offset_alignment.max(4) as u64,
    )
}

/// Images per dispatch so that no batched operand binding exceeds the device's limit
/// (128 MiB on most adapters): WRN-22-8's first group is exactly that at batch 256.
pub(super) fn images_per_chunk(
    gpu: &Gpu,
    p: &ConvParams,
    whole: &[&GpuBuffer],
    per_image_floats: &[usize],
) -> Result<usize> {
    let limit = gpu.max_binding();
    if let Some(big) = whole.iter().find(|b| BufRef::from(**b).size > limit) {
        return Err(KernelError::BindingTooLarge {
            bytes: BufRef::from(*big).size,
            limit,
        });
    }
    let align = gpu.limits().min_storage_buffer_offset_alignment.max(4) as u64;
    let cap = limit.saturating_sub(align) / 4;
    let most = per_image_floats
        .iter()
        .map(|&f| cap / f.max(1) as u64)
        .min()
        .unwrap_or(u64::MAX) as usize;
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

/// A forward or input-gradient pass split over K: every split writes its whole output (`len`
/// elements, laid out as `out`) into its own plane of a pooled scratch buffer, then the planes
/// are summed into `out` in a fixed order.
fn split_k_pass(
    gpu: &Gpu,
    launch: (&K, [u32; 3]),
    plan: &ConvPlan,
    prm: &ConvUniform,
    [a, b]: [&GpuBuffer; 2],
    out: &GpuBuffer,
    len: usize,
) -> Result<()> {
    let planes = gpu.alloc_scratch_elems(plan.splits * len, crate::Dtype::F32)?;
    let dst = Dst::Planes(&planes, out.dtype());
    dispatch(gpu, launch, plan, prm, [a.into(), b.into()], dst)?;
    super::sum_planes(gpu, plan.splits, len, &planes, out)
}

/// K elements per split, a whole number of the shader's slices.
fn k_per_split(k: usize, splits: usize) -> usize {
    k.div_ceil(splits).div_ceil(TILE_K) * TILE_K
}

/// y = conv(x, w) as implicit GEMM, chunked over the batch where needed, split over K where
/// the output is too small to fill a hardware GPU.
pub fn conv2d_forward(
    gpu: &Gpu,
    p: &ConvParams,
    x: &GpuBuffer,
    w: &GpuBuffer,
    y: &GpuBuffer,
) -> Result<()> {
    let plan = plan_of(gpu, ConvPass::Forward, p, [x, w, y])?;
    forward_by(gpu, p, [x, w, y], &plan)
}

pub(crate) fn forward_by(
    gpu: &Gpu,
    p: &ConvParams,
    [x, w, y]: [&GpuBuffer; 3],
    plan: &ConvPlan,
) -> Result<()> {
    let _label = gpu.profile_label(|| format!("conv forward {}", p.shape_label()), p.flops());
    let (xi, yi) = (p.cin * p.h * p.w, p.cout * p.oh() * p.ow());
    let per = images_per_chunk(gpu, p, &[w], &[xi, yi])?;
    let (m, n, k) = (p.n * p.oh() * p.ow(), p.cout, p.taps());
    if plan.splits > 1 {
        let k_split = k_per_split(k, plan.splits);
        let prm = params(p, 0, m, n, k, k_split, 0, [0, 0, 0], p.y_len());
        let launch = launch_grid(plan.tile, m, n, plan.splits)?;
        return split_k_pass(gpu, launch, plan, &prm, [x, w], y, p.y_len());
    }
    for (first, nb) in chunks(p.n, per) {
        let q = p.with_batch(nb);
        let (m, n, k) = (nb * p.oh() * p.ow(), p.cout, p.taps());
        let (xw, xo) = window(gpu, x, first * xi, nb * xi);
        let (yw, yo) = window(gpu, y, first * yi, nb * yi);
        let prm = params(&q, 0, m, n, k, k, 0, [xo, 0, yo], 0);
        let launch = launch_grid(plan.tile, m, n, 1)?;
        dispatch(gpu, launch, plan, &prm, [xw, w.into()], Dst::Out(yw))?;
    }
    Ok(())
}

/// dx from dy and w (any stride) as implicit GEMM, one stride phase per z-slice of the grid
/// (for at most four input channels, a direct convolution instead), chunked over the batch
/// where needed, split over K where dx is too small to fill a hardware GPU.
pub fn conv2d_input_grad(
    gpu: &Gpu,
    p: &ConvParams,
    dy: &GpuBuffer,
    w: &GpuBuffer,
    dx: &GpuBuffer,
) -> Result<()> {
    let plan = plan_of(gpu, ConvPass::InputGrad, p, [dy, w, dx])?;
    input_grad_by(gpu, p, [dy, w, dx], &plan)
}

pub(crate) fn input_grad_by(
    gpu: &Gpu,
    p: &ConvParams,
    [dy, w, dx]: [&GpuBuffer; 3],
    plan: &ConvPlan,
) -> Result<()> {
    let _label = gpu.profile_label(|| format!("conv input grad {}", p.shape_label()), p.flops());
    let (xi, yi) = (p.cin * p.h * p.w, p.cout * p.oh() * p.ow());
    let per = images_per_chunk(gpu, p, &[w], &[xi, yi])?;
    let s = p.stride;
    let (hp, wp) = (p.h.div_ceil(s), p.w.div_ceil(s));
    if plan.splits > 1 {
        let (m, k) = (p.n * p.h * p.w, p.cout * p.kh * p.kw);
        let k_split = k_per_split(phase_k(p), plan.splits);
        let prm = params(p, 1, m, p.cin, k, k_split, 0, [0, 0, 0], p.x_len());
        let launch = launch_grid(plan.tile, p.n * hp * wp, p.cin, s * s * plan.splits)?;
        return split_k_pass(gpu, launch, plan, &prm, [dy, w], dx, p.x_len());
    }
    for (first, nb) in chunks(p.n, per) {
        let q = p.with_batch(nb);
        let (m, n, k) = (nb * p.h * p.w, p.cin, p.cout * p.kh * p.kw);
        let (dyw, dyo) = window(gpu, dy, first * yi, nb * yi);
        let (dxw, dxo) = window(gpu, dx, first * xi, nb * xi);
        let prm = params(&q, 1, m, n, k, k, 0, [dyo, 0, dxo], 0);
        // One z-slice per stride phase (phases no tap reaches write zeros); the first phase has
        // the most rows.
        let launch = if plan.tile == Tile::Direct {
            let blocks = nb * hp.div_ceil(DIRECT_BLOCK) * wp.div_ceil(DIRECT_BLOCK);
            (
                &CONV_INPUT_GRAD_DIRECT,
                [1, blocks.div_ceil(DIRECT_WG) as u32, (s * s) as u32],
            )
        } else {
            launch_grid(plan.tile, nb * hp * wp, n, s * s)?
        };
        dispatch(gpu, launch, plan, &prm, [dyw, w.into()], Dst::Out(dxw))?;
    }
    Ok(())
}

/// How many K splits the weight gradient of operands of `dtype` uses on this adapter, and the
/// f32 scratch elements they need (see [`conv2d_weight_grad`]).
pub fn conv2d_weight_grad_splits(
    gpu: &Gpu,
    p: &ConvParams,
    dtype: crate::Dtype,
) -> Result<(usize, usize)> {
    let splits = conv_plan(gpu, ConvPass::WeightGrad, p, dtype)?.splits;
    Ok((splits, splits * p.w_len()))
}

/// dw from x and dy: split-K partial planes into the f32 `scratch` (see
/// [`conv2d_weight_grad_splits`]: by the rule one per 2,048 of N·OH·OW, at most 64, or more where
/// the adapter wants more work than that makes, [`Gpu::split_target`]), accumulated over batch
/// chunks where needed, then a fixed-order sum over the planes into dw, the one rounding to
/// dw's type.
pub fn conv2d_weight_grad(
    gpu: &Gpu,
    p: &ConvParams,
    x: &GpuBuffer,
    dy: &GpuBuffer,
    scratch: &GpuBuffer,
    dw: &GpuBuffer,
) -> Result<()> {
    let plan = plan_of(gpu, ConvPass::WeightGrad, p, [x, dy, dw])?;
    weight_grad_by(gpu, p, [x, dy, scratch, dw], &plan)
}

pub(crate) fn weight_grad_by(
    gpu: &Gpu,
    p: &ConvParams,
    [x, dy, scratch, dw]: [&GpuBuffer; 4],
    plan: &ConvPlan,
) -> Result<()> {
    let _label = gpu.profile_label(
        || format!("conv weight grad {}", p.shape_label()),
        p.flops(),
    );
    // The shader computes dwᵀ (rows = taps, columns = Cout) into planes laid out as dw.
    let (m, n) = (p.taps(), p.cout);
    let (xi, yi) = (p.cin * p.h * p.w, p.cout * p.oh() * p.ow());
    let splits = plan.splits;
    if scratch.dtype() != crate::Dtype::F32 {
        return Err(KernelError::Validation {
            context: "conv2d_weight_grad".into(),
            message:
                "the scratch holds f32 partial sums whatever the operands' type: allocate it as f32"
                    .into(),
        });
    }
    let held = scratch.len_bytes() / 4;
    if held < (splits * m * n) as u64 {
        return Err(KernelError::Validation {
            context: "conv2d_weight_grad".into(),
            message: format!(
                "scratch holds {held} elements, {splits} splits need {}: size it with conv2d_weight_grad_splits",
                splits * m * n
            ),
        });
    }
    let per = images_per_chunk(gpu, p, &[scratch], &[xi, yi])?;
    for (c, (first, nb)) in chunks(p.n, per).enumerate() {
        let q = p.with_batch(nb);
        let k = nb * p.oh() * p.ow();
        // Every chunk writes all `splits` planes (trailing slices may be empty and add zero),
        // so the planes line up across chunks.
        let k_split = k_per_split(k, splits);
        let (dyw, dyo) = window(gpu, dy, first * yi, nb * yi);
        let (xw, xo) = window(gpu, x, first * xi, nb * xi);
        let flags = if c > 0 { ACCUMULATE } else { 0 };
        let prm = params(&q, 2, m, n, k, k_split, flags, [dyo, xo, 0], m * n);
        let launch = launch_grid(plan.tile, m, n, splits)?;
        let dst = Dst::Planes(scratch, dw.dtype());
        dispatch(gpu, launch, plan, &prm, [dyw, xw], dst)?;
    }
    super::sum_planes(gpu, splits, m * n, scratch, dw)
}
