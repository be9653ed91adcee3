//! Which plan a convolution pass runs by (see [`ConvPlan`]): the rule's — the SIMT tile of
//! least measured cost, or the tensor-core tile, split K where the output alone leaves a
//! hardware GPU idle — or one measured on this device by `autorep tune`, and the candidates
//! that measurement tries.

use super::conv::{images_per_chunk, COOP_WIDE_N, NARROW_N, TILE_K, TILE_N};
use crate::conv_plan::{ConvKey, ConvPass, ConvPlan, Tile};
use crate::error::Result;
use crate::params::ConvParams;
use crate::{Gpu, GpuBuffer};

/// The direct input-gradient kernel's limits: the most input channels and taps per phase.
const DIRECT_MAX_CIN: usize = 4;
const DIRECT_MAX_TAPS: usize = 3;

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
const NARROW_COST: f64 = 1.8;
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

/// `AUTOREP_COOP_WIDE=0` keeps every tensor-core pass on the 64-column tile (for measuring the
/// wide one against it on a new adapter).
fn wide_coop_tile() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| crate::knobs::switch("AUTOREP_COOP_WIDE").unwrap_or(true))
}

/// The row counts of the SIMT conv tiles, which `AUTOREP_CONV_TILE` may force.
pub fn simt_tile_rows() -> Vec<u64> {
    let mut rows: Vec<u64> = TILES.iter().map(|t| t.1[0] as u64).collect();
    rows.sort_unstable_by(|a, b| b.cmp(a));
    rows.dedup();
    rows
}

/// `AUTOREP_CONV_TILE=256|128|64|32` forces one tile (for tuning on a new adapter).
fn forced_tile() -> Option<usize> {
    static FORCED: std::sync::OnceLock<Option<usize>> = std::sync::OnceLock::new();
    *FORCED.get_or_init(|| {
        let rows = crate::knobs::count("AUTOREP_CONV_TILE")?;
        simt_tile_rows().contains(&rows).then_some(rows as usize)
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
pub(super) fn phase_k(p: &ConvParams) -> usize {
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
        staged: false,
    })
}

/// Whether this device can run `plan` for the pass.
fn runnable(gpu: &Gpu, key: &ConvKey, coop: bool, plan: &ConvPlan) -> Result<bool> {
    let p = &key.shape;
    let tile_ok = match plan.tile {
        Tile::Coop | Tile::CoopWide => coop && !plan.staged,
        Tile::Direct => {
            key.pass == ConvPass::InputGrad
                && direct_input_grad(p)
                && plan.splits == 1
                && !plan.staged
                && !plan.prefetch
        }
        _ => true,
    };
    Ok(tile_ok && plan.splits >= 1 && plan.splits <= max_splits(gpu, key.pass, p)?)
}

/// The key of a pass whose activations are stored as `dtype`.
fn key(pass: ConvPass, p: &ConvParams, dtype: crate::Dtype) -> ConvKey {
    ConvKey {
        pass,
        shape: *p,
        f16: dtype == crate::Dtype::F16,
    }
}

/// Whether the pass's operands may go to tensor cores (f16 activations, and so f16 weights).
fn coop_for(gpu: &Gpu, key: &ConvKey) -> bool {
    gpu.uses_coop_f16() && key.f16
}

/// The plan a pass runs by, on tensor cores or not: the one measured on this device where it
/// has one it can run ([`Gpu::set_conv_plans`]), else the rule's.
fn plan_for(gpu: &Gpu, key: &ConvKey, coop: bool) -> Result<ConvPlan> {
    match gpu.tuned_plan(key) {
        Some(plan) if runnable(gpu, key, coop, &plan)? => Ok(plan),
        _ => rule_plan(gpu, key, coop),
    }
}

/// The plan of a launch over these operands (the first an activation).
pub(super) fn plan_of(
    gpu: &Gpu,
    pass: ConvPass,
    p: &ConvParams,
    operands: [&GpuBuffer; 3],
) -> Result<ConvPlan> {
    let coop = super::on_tensor_cores(gpu, &operands);
    plan_for(gpu, &key(pass, p, operands[0].dtype()), coop)
}

/// The plan the launchers run a pass by on operands of `dtype` (tuned or the rule's): what
/// benchmarks print beside their figures, and what sizes the weight gradient's scratch.
pub fn conv_plan(
    gpu: &Gpu,
    pass: ConvPass,
    p: &ConvParams,
    dtype: crate::Dtype,
) -> Result<ConvPlan> {
    let key = key(pass, p, dtype);
    plan_for(gpu, &key, coop_for(gpu, &key))
}

/// The plans worth measuring for a pass on this device (`autorep tune`): every tile it can
/// run, with and without prefetch, at no split and at power-of-two splits that leave each
/// range at least four slices of K; the rule's plan first.
pub fn conv_plan_candidates(gpu: &Gpu, key: &ConvKey) -> Result<Vec<ConvPlan>> {
    let p = &key.shape;
    let coop = coop_for(gpu, key);
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
        // (prefetch, staged), where the tile has them (`runnable`); the two together are not
        // tried (each is a candidate alone) until a GPU has shown that either pays.
        for (prefetch, staged) in [(false, false), (true, false), (false, true)] {
            for &splits in &splits {
                let plan = ConvPlan {
                    tile,
                    splits,
                    prefetch,
                    staged,
                };
                if !out.contains(&plan) && runnable(gpu, key, coop, &plan)? {
                    out.push(plan);
                }
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

/// The weight gradient's split-K target as a multiple of [`Gpu::split_target`], and its
/// shortest K range per split; `AUTOREP_WGRAD_SPLIT=FACTOR,MIN_K` overrides them (tuning).
fn wgrad_split_tuning() -> (usize, usize) {
    static TUNING: std::sync::OnceLock<(usize, usize)> = std::sync::OnceLock::new();
    *TUNING.get_or_init(|| {
        crate::knobs::pair("AUTOREP_WGRAD_SPLIT")
            .map_or((WGRAD_SPLIT_FACTOR, WGRAD_MIN_K_PER_SPLIT), |(f, k)| {
                (f as usize, (k as usize).max(TILE_K))
            })
    })
}
