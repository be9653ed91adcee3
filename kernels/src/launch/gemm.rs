use super::window;
use crate::error::{KernelError, Result};
use crate::params::{GemmParams, Strided};
use crate::pipelines::{Access::*, EntryPoint, Kernel};
use crate::uniforms::GemmUniform;
use crate::{BufRef, Gpu, GpuBuffer};

const GEMM_KERNEL: Kernel<GemmUniform> =
    Kernel::new("gemm", &[Read, Read, Read, ReadWrite], [8, 16, 1]);
pub(crate) const ENTRY_POINTS: &[EntryPoint] = &[GEMM_KERNEL.entry];
const COOP_KERNEL: Kernel<GemmUniform> = Kernel::in_shader(
    crate::shaders::COOP_GEMM,
    "coop_gemm",
    &[Read, Read, Read, ReadWrite],
    [128, 1, 1],
);
pub(crate) const COOP_ENTRY_POINTS: &[EntryPoint] = &[COOP_KERNEL.entry];
/// Rows x columns of C per workgroup of the cooperative-matrix GEMM (CT_M, CT_N in
/// shaders/parts/coop_tile.wgsl).
pub(crate) const COOP_TILE_M: usize = 128;
pub(crate) const COOP_TILE_N: usize = 64;
/// Rows x columns of C per workgroup; must match BM and BN in shaders/gemm.wgsl.
const TILE_M: usize = 256;
const TILE_N: usize = 64;
/// Depth of the shader's K slices (BK): K chunks are multiples of it where possible.
const TILE_K: usize = 8;

/// The register-tiled GEMM core; `bias` is read only when `p.bias_off` is set.
///
/// Operands are bound whole when each fits the device's storage-binding limit
/// ([`Gpu::max_binding`], 128 MiB on most adapters). Otherwise the call is split, per batch,
/// into chunks of rows of M, binding for each only the aligned byte windows of A and C it
/// touches (the residual element offset goes through `a_off`/`c_off`). Where even one tile of
/// rows of A spans more than the limit (A stored transposed, so a row runs across the whole
/// buffer) the chunks also split K, accumulating into C. B and the bias are bound whole when
/// they fit and by the window the chunk reads otherwise.
pub fn gemm(
    gpu: &Gpu,
    p: &GemmParams,
    a: &GpuBuffer,
    b: &GpuBuffer,
    bias: Option<&GpuBuffer>,
    c: &GpuBuffer,
) -> Result<()> {
    assert_eq!(p.c.cs, 1, "gemm: C must be row-major");
    if p.m == 0 || p.n == 0 || p.batch == 0 {
        return Ok(());
    }
    let _label = gpu.profile_label(
        || match p.batch {
            1 => format!("gemm {}x{}x{}", p.m, p.n, p.k),
            b => format!("gemm {b} x {}x{}x{}", p.m, p.n, p.k),
        },
        p.flops(),
    );
    let bias = bias.unwrap_or(a);
    let limit = gpu.max_binding();
    let fits = |buf: &GpuBuffer| BufRef::from(buf).size <= limit;
    if super::on_tensor_cores(gpu, &[a, b, bias, c]) && [a, b, bias, c].into_iter().all(fits) {
        let coop_grid =
            p.m.div_ceil(COOP_TILE_M)
                .max(p.n.div_ceil(COOP_TILE_N))
                .max(p.batch);
        if coop_grid <= super::MAX_GROUPS {
            return dispatch(gpu, p, true, [a.into(), b.into(), bias.into(), c.into()]);
        }
    }
    let grid_ok = p.m.div_ceil(TILE_M) <= super::MAX_GROUPS && p.batch <= super::MAX_GROUPS;
    if grid_ok && [a, b, bias, c].into_iter().all(fits) {
        return dispatch(gpu, p, false, [a.into(), b.into(), bias.into(), c.into()]);
    }
    chunked(gpu, p, [a, b, bias, c], limit)
}

/// Params flag of the tensor-core GEMM: tiles inside C over aligned row-major operands may load
/// fragments from the buffers directly (shaders/coop_gemm.wgsl).
const DIRECT_LOADS: u32 = 4;

/// `AUTOREP_COOP_DIRECT=0` stages every tensor-core GEMM tile through workgroup memory (for
/// measuring the direct loads against staging on a new adapter).
fn direct_loads() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| crate::knobs::switch("AUTOREP_COOP_DIRECT").unwrap_or(true))
}

/// One dispatch over whole bindings: the tensor-core tile (128x64 of C per workgroup, the same
/// parameter block) where `coop`, else the SIMT tile.
fn dispatch(gpu: &Gpu, p: &GemmParams, coop: bool, bindings: [BufRef<'_>; 4]) -> Result<()> {
    let mut params = uniform(p);
    let (kernel, tile_m, tile_n) = if coop {
        if direct_loads() {
            params.flags |= DIRECT_LOADS;
        }
        (&COOP_KERNEL, COOP_TILE_M, COOP_TILE_N)
    } else {
        (&GEMM_KERNEL, TILE_M, TILE_N)
    };
    let groups = [
        p.n.div_ceil(tile_n) as u32,
        p.m.div_ceil(tile_m) as u32,
        p.batch as u32,
    ];
    // The tensor-core GEMM has no pipelined K loop.
    let constants = if coop {
        &[]
    } else {
        super::prefetch_constants(gpu)
    };
    gpu.dispatch(kernel, constants, &params, &bindings, groups)
}

fn uniform(p: &GemmParams) -> GemmUniform {
    let flags = p.bias_off.is_some() as u32 | (p.accumulate as u32) << 1;
    let u = |v: usize| v as u32;
    GemmUniform {
        m: u(p.m),
        n: u(p.n),
        k: u(p.k),
        flags,
        a_off: u(p.a.off),
        a_rs: u(p.a.rs),
        a_cs: u(p.a.cs),
        a_bs: u(p.a.bs),
        b_off: u(p.b.off),
        b_rs: u(p.b.rs),
        b_cs: u(p.b.cs),
        b_bs: u(p.b.bs),
        c_off: u(p.c.off),
        c_rs: u(p.c.rs),
        c_bs: u(p.c.bs),
        bias_off: u(p.bias_off.unwrap_or(0)),
        alpha: p.alpha,
    }
}

/// Elements from the first to the last that a `rows x cols` strided block touches.
fn span(rows: usize, cols: usize, rs: usize, cs: usize) -> usize {
    if rows == 0 || cols == 0 {
        0
    } else {
        (rows - 1) * rs + (cols - 1) * cs + 1
    }
}

/// The largest count for which a block spanning `base` elements at count 1, and `stride` more
/// per further step, stays within `cap` elements (0 if even count 1 does not).
fn most(cap: usize, base: usize, stride: usize) -> usize {
    if base > cap {
        0
    } else {
        (cap - base)
            .checked_div(stride)
            .map_or(usize::MAX, |steps| steps + 1)
    }
}

/// Chunk length for `total` items in the fewest chunks of at most `max`: equal chunks, rounded
/// up to a multiple of `unit` where that still fits.
fn chunk_len(total: usize, max: usize, unit: usize) -> usize {
    let max = max.min(total).max(1);
    let even = total.div_ceil(total.div_ceil(max));
    let rounded = even.div_ceil(unit) * unit;
    if rounded <= max {
        rounded
    } else {
        even
    }
}

fn chunked(gpu: &Gpu, p: &GemmParams, [a, b, bias, c]: [&GpuBuffer; 4], limit: u64) -> Result<()> {
    let align = gpu.limits().min_storage_buffer_offset_alignment.max(4) as u64;
    // Elements one window may span, leaving room for rounding its start down to `align`.
    let cap = (limit.saturating_sub(align - 4) / 4) as usize;
    let fits = |buf: &GpuBuffer| BufRef::from(buf).size <= limit;
    let (whole_b, whole_bias) = (fits(b), fits(bias));
    let too_large = |elems: usize| KernelError::BindingTooLarge {
        bytes: elems as u64 * 4,
        limit,
    };

    // Rows per chunk as far as C allows, then the deepest K slice that lets A (and B, if it
    // is windowed) fit with that many rows, then the rows A allows at that depth.
    let rows_c = most(cap, p.n, p.c.rs).min(super::MAX_GROUPS * TILE_M);
    if rows_c == 0 {
        return Err(too_large(p.n));
    }
    let kc = if p.k == 0 {
        1
    } else {
        let rows0 = p.m.min(TILE_M).min(rows_c);
        let mut kc = most(cap, span(rows0, 1, p.a.rs, p.a.cs), p.a.cs);
        if kc == 0 {
            kc = most(cap, 1, p.a.cs);
        }
        if !whole_b {
            kc = kc.min(most(cap, span(1, p.n, p.b.rs, p.b.cs), p.b.rs));
        }
        if kc == 0 {
            return Err(too_large(
                span(1, p.k, p.a.rs, p.a.cs).max(span(p.k, p.n, p.b.rs, p.b.cs)),
            ));
        }
        chunk_len(p.k, kc, TILE_K)
    };
    let rows_a = most(cap, span(1, kc.min(p.k), p.a.rs, p.a.cs), p.a.rs);
    let mc = chunk_len(p.m, rows_c.min(rows_a), TILE_M);
    if !whole_bias && p.bias_off.is_some() && p.n > cap {
        return Err(too_large(p.n));
    }

    for bi in 0..p.batch {
        for r0 in (0..p.m).step_by(mc) {
            let rows = mc.min(p.m - r0);
            let (cw, c_off) = window(
                c,
                p.c.off + bi * p.c.bs + r0 * p.c.rs,
                span(rows, p.n, p.c.rs, 1),
                align,
            );
            for k0 in (0..p.k.max(1)).step_by(kc) {
                let depth = kc.min(p.k - k0);
                let a_first = p.a.off + bi * p.a.bs + r0 * p.a.rs + k0 * p.a.cs;
                let (aw, a_off) = window(a, a_first, span(rows, depth, p.a.rs, p.a.cs), align);
                let b_first = p.b.off + bi * p.b.bs + k0 * p.b.rs;
                let (bw, b_off) = if whole_b {
                    (b.into(), b_first)
                } else {
                    window(b, b_first, span(depth, p.n, p.b.rs, p.b.cs), align)
                };
                // Bias and the caller's accumulate flag belong to the first K slice only; the
                // later slices add onto it.
                let first = k0 == 0;
                let (biasw, bias_off) = match p.bias_off {
                    Some(off) if first && whole_bias => (bias.into(), Some(off)),
                    Some(off) if first => {
                        let (w, o) = window(bias, off, p.n, align);
                        (w, Some(o))
                    }
                    _ => (aw, None),
                };
                let q = GemmParams {
                    m: rows,
                    n: p.n,
                    k: depth,
                    batch: 1,
                    a: Strided {
                        off: a_off,
                        bs: 0,
                        ..p.a
                    },
                    b: Strided {
                        off: b_off,
                        bs: 0,
                        ..p.b
                    },
                    c: Strided {
                        off: c_off,
                        bs: 0,
                        ..p.c
                    },
                    bias_off,
                    accumulate: p.accumulate || !first,
                    alpha: p.alpha,
                };
                dispatch(gpu, &q, false, [aw, bw, biasw, cw])?;
            }
        }
    }
    Ok(())
}
