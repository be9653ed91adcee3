use crate::conv_plan::{ConvKey, ConvPass, ConvPlan, Tile};
use crate::error::{KernelError, Result};
use crate::params::ConvParams;
use crate::pipelines::{Access::*, EntryPoint, Kernel};
use crate::uniforms::ConvUniform;
use crate::{BufRef, Gpu, GpuBuffer};

type K = Kernel<ConvUniform>;
const ABC: &[crate::Access] = &[Read, Read, ReadWrite];
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
const COOP_WIDE_N: usize = 128;
pub(crate) const ENTRY_POINTS: &[EntryPoint] = &[
    CONV_GEMM.entry,
    CONV_GEMM_MID.entry,
    CONV_GEMM_SMALL.entry,
    CONV_GEMM_TINY.entry,
    CONV_GEMM_NARROW.entry,
    CONV_INPUT_GRAD_DIRECT.entry,
];
/// The SIMT tiles: rows and columns per tile (must match shaders/conv.wgsl) and the cost of
/// an output element relative to the 256-row tile's on a software adapter (lavapipe) and on a
/// hardware GPU, as measured (BENCHMARKS.md): smaller tiles stage more loads per multiply-add,
/// and on a GPU their 32-invocation workgroups also hide less latency (an H100 ran every conv
/// pass ~1.7x slower on the 64-row tile). The rule picks the cheapest after rounding M and N up
/// to whole tiles. The 128-row and narrow tiles have not run on a hardware GPU yet: there only
/// `autorep tune` picks them.
const TILES: [(Tile, [usize; 2], [f64; 2]); 5] = [
    (Tile::Rows256, [256, TILE_N], [1.0, 1.0]),
    (Tile::Rows128, [128, TILE_N], [MID_COST, f64::INFINITY]),
    (Tile::Rows64, [64, TILE_N], [1.25, 1.7]),
    (Tile::Rows32, [32, TILE_N], [1.6, 2.5]),
    (Tile::Cols32, [256, NARROW_N], [NARROW_COST, f64::INFINITY]),
];
/// The 128-row tile's cost per output element on lavapipe: 1.03-1.07 in forward passes of
/// 64 to 256 channels (BENCHMARKS.md).
const MID_COST: f64 = 1.07;
/// Columns of the narrow SIMT tile, and its cost per output element on lavapipe: 1.7-1.9 in
/// forward passes with 16, 24, 32 and 88 output columns (BENCHMARKS.md), so that it wins only
/// where the 64-column tile would idle half its columns or more, by about 10 %.
const NARROW_N: usize = 32;
const NARROW_COST: f64 = 1.8;
const TILE_N: usize = 64;
/// Depth of the shader's K slices: the weight gradient's split-K ranges are multiples of it.
const TILE_K: usize = 8;
/// The direct input-gradient kernel: invocations per workgroup (DIRECT_WG), pixels per
/// invocation (a 4x4 block), and the most input channels and taps per phase it takes.
const DIRECT_WG: usize = 64;
const DIRECT_BLOCK: usize = 4;
const DIRECT_MAX_CIN: usize = 4;
const DIRECT_MAX_TAPS: usize = 3;
/// Params flag: add to the output (later batch chunks of the weight gradient).
const ACCUMULATE: u32 = 2;
/// Weight-gradient K range per split: long enough to amortise a tile, short enough to spread
/// N·OH·OW (131,072 at batch 128 on 32x32) over many workgroups.
const K_PER_SPLIT: usize = 2048;
/// Cap on the split-K partial planes (bytes), so a split never costs much memory.
const MAX_PARTIAL_BYTES: usize = 64 << 20;
/// The shortest K range a split may own on a hardware GPU (shorter ones cost more in planes
/// written and reduced than the parallelism they add).
const MIN_K_PER_SPLIT: usize = 128;
/// The weight gradient's split-K target relative to [`Gpu::split_target`] and its shortest K
/// range per split (see [`wgrad_split_tuning`]). On an H100 a 4x target took the weight
/// gradients of both models from 16.9 to 14.3 ms and a resnet18_in step from 3,800 to 4,200
/// images/s; 8x and 16x (with 512-long ranges) gave the same passes and slower steps.
const WGRAD_SPLIT_FACTOR: usize = 4;
const WGRAD_MIN_K_PER_SPLIT: usize = 128;

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
    bindings: &[crate::BufRef<'_>],
) -> Result<()> {
    let constants: &[(&str, f64)] = if plan.prefetch {
        &[("PREFETCH", 1.0)]
    } else {
        &[]
    };
    gpu.dispatch(kern, constants, prm, bindings, grid)
}

/// `AUTOREP_COOP_WIDE=0` keeps every tensor-core pass on the 64-column tile (for measuring the
/// wide one against it on a new adapter).
fn wide_coop_tile() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("AUTOREP_COOP_WIDE").map_or(true, |v| v != "0"))
}

/// `AUTOREP_CONV_TILE=256|128|64|32` forces one tile (for tuning on a new adapter).
fn forced_tile() -> Option<usize> {
    static FORCED: std::sync::OnceLock<Option<usize>> = std::sync::OnceLock::new();
    *FORCED.get_or_init(|| {
        let rows = std::env::var("AUTOREP_CONV_TILE")
            .ok()?
            .trim()
            .parse()
            .ok()?;
        TILES.iter().any(|t| t.1[0] == rows).then_some(rows)
    })
}

/// The rule's tile for an `m x n` GEMM: the tensor-core tile where `coop` (wide where the pass
/// has [`COOP_WIDE_N`] columns), else the SIMT tile of least cost after rounding M up to whole
/// tiles.
fn rule_tile(gpu: &Gpu, m: usize, n: usize, coop: bool) -> Tile {
    if coop {
        return if n >= COOP_WIDE_N && wide_coop_tile() {
            Tile::CoopWide
        } else {
            Tile::Coop
        };
    }
    let hw = usize::from(!gpu.report().is_software());
    let cost = |&(_, [rows, cols], c): &(Tile, [usize; 2], [f64; 2])| {
        (m.div_ceil(rows) * rows * n.div_ceil(cols) * cols) as f64 * c[hw]
    };
    TILES
        .iter()
        .filter(|t| forced_tile().is_none_or(|r| r == t.1[0] && t.1[1] == TILE_N))
        .min_by(|a, b| cost(a).total_cmp(&cost(b)))
        .unwrap()
        .0
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
fn images_per_chunk(
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

/// Whether the input gradient takes the direct kernel (a stem: few input channels and at most
/// 3x3 taps per stride phase).
fn direct_input_grad(p: &ConvParams) -> bool {
    let s = p.stride;
    p.cin <= DIRECT_MAX_CIN
        && p.kh.div_ceil(s) <= DIRECT_MAX_TAPS
        && p.kw.div_ceil(s) <= DIRECT_MAX_TAPS
}

/// The longest stride phase's K in the input gradient (a phase whose first tap is tap 0 has
/// every s-th tap).
fn phase_k(p: &ConvParams) -> usize {
    p.cout * p.kh.div_ceil(p.stride) * p.kw.div_ceil(p.stride)
}

/// Whether the whole batch fits one dispatch (where modes 0 and 1 may split K).
fn whole_batch(gpu: &Gpu, p: &ConvParams) -> Result<bool> {
    let (xi, yi) = (p.cin * p.h * p.w, p.cout * p.oh() * p.ow());
    Ok(images_per_chunk(gpu, p, &[], &[xi, yi])? >= p.n)
}

/// A pass's GEMM: rows, columns, the K range a split divides (mode 1: the longest phase's),
/// the output elements of one split plane, and the grid slices per split (stride phases).
struct PassGemm {
    m: usize,
    n: usize,
    k: usize,
    plane: usize,
    phases: usize,
}

fn pass_gemm(pass: ConvPass, p: &ConvParams) -> PassGemm {
    let s = p.stride;
    match pass {
        ConvPass::Forward => PassGemm {
            m: p.n * p.oh() * p.ow(),
            n: p.cout,
            k: p.taps(),
            plane: p.y_len(),
            phases: 1,
        },
        ConvPass::InputGrad => PassGemm {
            m: p.n * p.h.div_ceil(s) * p.w.div_ceil(s),
            n: p.cin,
            k: phase_k(p),
            plane: p.x_len(),
            phases: s * s,
        },
        // The shader computes dwᵀ: rows = taps, columns = Cout.
        ConvPass::WeightGrad => PassGemm {
            m: p.taps(),
            n: p.cout,
            k: p.n * p.oh() * p.ow(),
            plane: p.w_len(),
            phases: 1,
        },
    }
}

/// The most split planes a pass may write: within [`MAX_PARTIAL_BYTES`] and one binding, and
/// for modes 0 and 1 only where the whole batch fits one dispatch.
fn max_splits(gpu: &Gpu, pass: ConvPass, p: &ConvParams) -> Result<usize> {
    let g = pass_gemm(pass, p);
    if pass != ConvPass::WeightGrad && !whole_batch(gpu, p)? {
        return Ok(1);
    }
    let by_memory = (MAX_PARTIAL_BYTES as u64).min(gpu.max_binding()) as usize / (g.plane * 4);
    Ok(by_memory.min(super::MAX_GROUPS / g.phases).max(1))
}

/// The rule's plan for a pass (see [`ConvPlan`]): the tile of least cost, split K where the
/// output alone makes too few workgroups for the adapter, prefetch as [`Gpu::prefetch`].
fn rule_plan(gpu: &Gpu, key: &ConvKey, coop: bool) -> Result<ConvPlan> {
    let p = &key.shape;
    let g = pass_gemm(key.pass, p);
    let most = max_splits(gpu, key.pass, p)?;
    let (tile, splits) = match key.pass {
        ConvPass::InputGrad if direct_input_grad(p) => (Tile::Direct, 1),
        ConvPass::WeightGrad => {
            let (factor, min_k) = wgrad_split_tuning();
            let want = (gpu.split_target() * factor)
                .div_ceil(g.m * g.n)
                .min(g.k / min_k);
            let splits = g.k.div_ceil(K_PER_SPLIT).clamp(1, 64).max(want);
            (rule_tile(gpu, g.m, g.n, coop), splits.min(most))
        }
        _ => {
            let want = gpu.split_target().div_ceil(g.plane.max(1));
            let splits = want.min(g.k / MIN_K_PER_SPLIT).max(1);
            (rule_tile(gpu, g.m, g.n, coop), splits.min(most))
        }
    };
    Ok(ConvPlan {
        tile,
        splits,
        prefetch: gpu.prefetch() && tile != Tile::Direct,
    })
}

/// Whether this device can run `plan` for the pass.
fn runnable(gpu: &Gpu, key: &ConvKey, coop: bool, plan: &ConvPlan) -> Result<bool> {
    let p = &key.shape;
    let tile_ok = match plan.tile {
        Tile::Coop | Tile::CoopWide => coop,
        Tile::Direct => key.pass == ConvPass::InputGrad && direct_input_grad(p) && plan.splits == 1,
        _ => true,
    };
    Ok(tile_ok && plan.splits >= 1 && plan.splits <= max_splits(gpu, key.pass, p)?)
}

/// The key of a pass over these operands (the first is an activation).
fn key_of(pass: ConvPass, p: &ConvParams, act: &GpuBuffer) -> ConvKey {
    ConvKey {
        pass,
        shape: *p,
        f16: act.dtype() == crate::Dtype::F16,
    }
}

/// The plan a pass runs by, on tensor cores or not: the one measured on this device where it
/// has one it can run ([`Gpu::set_conv_plans`]), else the rule's.
fn plan_for(gpu: &Gpu, key: &ConvKey, coop: bool) -> Result<ConvPlan> {
    match gpu.tuned_plan(key) {
        Some(plan) if runnable(gpu, key, coop, &plan)? => Ok(plan),
        _ => rule_plan(gpu, key, coop),
    }
}

/// The plan the launchers run a pass by on operands of `dtype` (tuned or the rule's): what
/// benchmarks print beside their figures, and what sizes the weight gradient's scratch.
pub fn conv_plan(
    gpu: &Gpu,
    pass: ConvPass,
    p: &ConvParams,
    dtype: crate::Dtype,
) -> Result<ConvPlan> {
    let f16 = dtype == crate::Dtype::F16;
    let key = ConvKey {
        pass,
        shape: *p,
        f16,
    };
    plan_for(gpu, &key, gpu.uses_coop_f16() && f16)
}

/// The plans worth measuring for a pass on this device (`autorep tune`): every tile it can
/// run, with and without prefetch, at no split and at power-of-two splits that leave each
/// range at least four slices of K; the rule's plan first.
pub fn conv_plan_candidates(gpu: &Gpu, key: &ConvKey) -> Result<Vec<ConvPlan>> {
    let p = &key.shape;
    let coop = gpu.uses_coop_f16() && key.f16;
    let g = pass_gemm(key.pass, p);
    let mut tiles = vec![Tile::Rows256, Tile::Rows128, Tile::Rows64, Tile::Rows32];
    if g.n.div_ceil(NARROW_N) * NARROW_N < g.n.div_ceil(TILE_N) * TILE_N {
        tiles.push(Tile::Cols32);
    }
    if coop {
        tiles.push(Tile::Coop);
        if g.n >= COOP_WIDE_N {
            tiles.push(Tile::CoopWide);
        }
    }
    if key.pass == ConvPass::InputGrad && direct_input_grad(p) {
        tiles.push(Tile::Direct);
    }
    let most = max_splits(gpu, key.pass, p)?.min(g.k / (4 * TILE_K)).max(1);
    let splits: Vec<usize> = std::iter::successors(Some(1), |s| Some(s * 2))
        .take_while(|&s| s <= most)
        .collect();
    let mut out = vec![rule_plan(gpu, key, coop)?];
    for &tile in &tiles {
        for prefetch in [false, true] {
            for &splits in &splits {
                let plan = ConvPlan {
                    tile,
                    splits,
                    prefetch,
                };
                if !out.contains(&plan) && runnable(gpu, key, coop, &plan)? {
                    out.push(plan);
                }
                if tile == Tile::Direct {
                    break;
                }
            }
            if tile == Tile::Direct {
                break;
            }
        }
    }
    Ok(out)
}

/// The K splits of the forward and input-gradient passes on operands of `dtype` (1 = none).
pub fn conv2d_output_splits(
    gpu: &Gpu,
    p: &ConvParams,
    dtype: crate::Dtype,
) -> Result<(usize, usize)> {
    Ok((
        conv_plan(gpu, ConvPass::Forward, p, dtype)?.splits,
        conv_plan(gpu, ConvPass::InputGrad, p, dtype)?.splits,
    ))
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
    let e = out.dtype().bytes();
    let planes = gpu
        .alloc((plan.splits * len) as u64 * e)?
        .typed(out.dtype());
    dispatch(
        gpu,
        launch,
        plan,
        prm,
        &[a.into(), b.into(), (&planes).into()],
    )?;
    super::sum_mid(gpu, 1, plan.splits, len, 1.0, &planes, out)
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
    let key = key_of(ConvPass::Forward, p, x);
    let plan = plan_for(gpu, &key, super::on_tensor_cores(gpu, &[x, w, y]))?;
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
        dispatch(gpu, launch, plan, &prm, &[xw, w.into(), yw])?;
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
    let key = key_of(ConvPass::InputGrad, p, dy);
    let plan = plan_for(gpu, &key, super::on_tensor_cores(gpu, &[dy, w, dx]))?;
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
        dispatch(gpu, launch, plan, &prm, &[dyw, w.into(), dxw])?;
    }
    Ok(())
}

/// The weight gradient's split-K target as a multiple of [`Gpu::split_target`], and its
/// shortest K range per split; `AUTOREP_WGRAD_SPLIT=FACTOR,MIN_K` overrides them (tuning).
fn wgrad_split_tuning() -> (usize, usize) {
    static TUNING: std::sync::OnceLock<(usize, usize)> = std::sync::OnceLock::new();
    *TUNING.get_or_init(|| {
        let parsed = std::env::var("AUTOREP_WGRAD_SPLIT").ok().and_then(|v| {
            let (f, k) = v.split_once(',')?;
            Some((
                f.trim().parse().ok()?,
                k.trim().parse::<usize>().ok()?.max(TILE_K),
            ))
        });
        parsed.unwrap_or((WGRAD_SPLIT_FACTOR, WGRAD_MIN_K_PER_SPLIT))
    })
}

/// How many K splits the weight gradient of operands of `dtype` uses on this adapter, and the
/// scratch elements they need (see [`conv2d_weight_grad`]).
pub fn conv2d_weight_grad_splits(
    gpu: &Gpu,
    p: &ConvParams,
    dtype: crate::Dtype,
) -> Result<(usize, usize)> {
    let splits = conv_plan(gpu, ConvPass::WeightGrad, p, dtype)?.splits;
    Ok((splits, splits * p.w_len()))
}

/// dw from x and dy: split-K partial planes into `scratch` (see
/// [`conv2d_weight_grad_splits`]: one per [`K_PER_SPLIT`] of N·OH·OW, at most 64, or more where
/// the adapter wants more work than that makes, [`Gpu::split_target`]), accumulated over batch
/// chunks where needed, then a fixed-order sum over the planes into dw.
pub fn conv2d_weight_grad(
    gpu: &Gpu,
    p: &ConvParams,
    x: &GpuBuffer,
    dy: &GpuBuffer,
    scratch: &GpuBuffer,
    dw: &GpuBuffer,
) -> Result<()> {
    let key = key_of(ConvPass::WeightGrad, p, x);
    let plan = plan_for(gpu, &key, super::on_tensor_cores(gpu, &[x, dy, scratch]))?;
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
    let held = scratch.len_bytes() / scratch.dtype().bytes();
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
        dispatch(gpu, launch, plan, &prm, &[dyw, xw, scratch.into()])?;
    }
    super::sum_mid(gpu, 1, splits, m * n, 1.0, scratch, dw)
}
