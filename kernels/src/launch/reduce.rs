use crate::error::Result;
use crate::pipelines::{Access::*, EntryPoint, Kernel};
use crate::recorder::grid;
use crate::uniforms::ReduceUniform as U;
use crate::{Gpu, GpuBuffer};

const SUM_ROWS: Kernel<U> = Kernel::new("sum_rows", &[Read, ReadWrite], [256, 1, 1]);
const SUM_MID: Kernel<U> = Kernel::new("sum_mid", &[Read, ReadWrite], [256, 1, 1]);
const SUM_PLANES: Kernel<U> = Kernel::new("sum_planes", &[Read, ReadWrite], [256, 1, 1]);
pub(crate) const ENTRY_POINTS: &[EntryPoint] = &[SUM_ROWS.entry, SUM_MID.entry, SUM_PLANES.entry];

/// out\[r\] = alpha * sum of row r of x (rows of `len`, `n` valid elements in all).
pub fn sum_rows(
    gpu: &Gpu,
    n: usize,
    len: usize,
    alpha: f32,
    x: &GpuBuffer,
    out: &GpuBuffer,
) -> Result<()> {
    let rows = n.div_ceil(len.max(1));
    let params = U {
        n: n as u32,
        len: len as u32,
        alpha,
        ..U::default()
    };
    gpu.dispatch(
        &SUM_ROWS,
        &[],
        &params,
        &[x.into(), out.into()],
        grid(rows as u32),
    )
}

/// x as [outer, len, inner]: out[o, i] = alpha * sum_m x[o, m, i].
pub fn sum_mid(
    gpu: &Gpu,
    outer: usize,
    len: usize,
    inner: usize,
    alpha: f32,
    x: &GpuBuffer,
    out: &GpuBuffer,
) -> Result<()> {
    over_mid(gpu, &SUM_MID, [outer, len, inner], alpha, x, out)
}

/// One invocation per output of `kernel` over x as [outer, len, inner].
fn over_mid(
    gpu: &Gpu,
    kernel: &Kernel<U>,
    [outer, len, inner]: [usize; 3],
    alpha: f32,
    x: &GpuBuffer,
    out: &GpuBuffer,
) -> Result<()> {
    let n = outer * inner;
    let params = U {
        n: n as u32,
        len: len as u32,
        inner: inner as u32,
        alpha,
        ..U::default()
    };
    gpu.dispatch(
        kernel,
        &[],
        &params,
        &[x.into(), out.into()],
        kernel.groups_for(n),
    )
}

/// `len` f32 planes of `inner` elements summed into `out` (f32, or f16 rounded once): the
/// split-K partial sums of the convolutions. The CPU twin is [`crate::cpu::sum_mid`].
pub fn sum_planes(
    gpu: &Gpu,
    len: usize,
    inner: usize,
    planes: &GpuBuffer,
    out: &GpuBuffer,
) -> Result<()> {
    over_mid(gpu, &SUM_PLANES, [1, len, inner], 1.0, planes, out)
}

/// Chunk length for the first pass of a full sum: long enough that the second pass is one row.
pub fn sum_all_chunk(n: usize) -> usize {
    n.div_ceil(65_535).max(4096)
}

/// out\[0\] = alpha * sum of all n elements of x, in two deterministic passes through `scratch`
/// (which must hold `n.div_ceil(sum_all_chunk(n))` floats).
pub fn sum_all(
    gpu: &Gpu,
    n: usize,
    alpha: f32,
    x: &GpuBuffer,
    scratch: &GpuBuffer,
    out: &GpuBuffer,
) -> Result<()> {
    let chunk = sum_all_chunk(n);
    let rows = n.div_ceil(chunk);
    sum_rows(gpu, n, chunk, 1.0, x, scratch)?;
    sum_rows(gpu, rows, rows.max(1), alpha, scratch, out)
}
