use super::f;
use crate::cpu::GemmParams;
use crate::error::Result;
use crate::pipelines::{Access::*, Kernel};
use crate::{shaders::GEMM, Gpu, GpuBuffer};

const GEMM_KERNEL: Kernel = Kernel { shader: GEMM, entry: "gemm", bindings: &[Read, Read, Read, ReadWrite] };
const TILE: usize = 64;

/// The register-tiled GEMM core; `bias` is read only when `p.bias_off` is set.
pub fn gemm(gpu: &Gpu, p: &GemmParams, a: &GpuBuffer, b: &GpuBuffer, bias: Option<&GpuBuffer>, c: &GpuBuffer) -> Result<()> {
    assert_eq!(p.c.cs, 1, "gemm: C must be row-major");
    let flags = p.bias_off.is_some() as u32 | (p.accumulate as u32) << 1;
    let params = [
        p.m, p.n, p.k, flags as usize,
        p.a.off, p.a.rs, p.a.cs, p.a.bs,
        p.b.off, p.b.rs, p.b.cs, p.b.bs,
        p.c.off, p.c.rs, p.c.bs, p.bias_off.unwrap_or(0),
    ]
    .map(|v| v as u32);
    let mut all = params.to_vec();
    all.push(f(p.alpha));
    let groups = [p.n.div_ceil(TILE) as u32, p.m.div_ceil(TILE) as u32, p.batch as u32];
    if groups.contains(&0) {
        return Ok(());
    }
    let bias = bias.unwrap_or(a);
    gpu.dispatch(&GEMM_KERNEL, &[], &all, &[a.into(), b.into(), bias.into(), c.into()], groups)
}
