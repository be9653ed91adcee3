use crate::error::{KernelError, Result};
use crate::pipelines::{Access::*, EntryPoint, Kernel};
use crate::uniforms::CoopPeakUniform;
use crate::{Dtype, Gpu, GpuBuffer};

type K = Kernel<CoopPeakUniform>;
const SHADER: crate::Shader = crate::shaders::COOP_PEAK;
const REGISTERS: K = K::in_shader(
    SHADER,
    "coop_peak_registers",
    &[Read, ReadWrite],
    [128, 1, 1],
);
const SHARED: K = K::in_shader(SHADER, "coop_peak_shared", &[Read, ReadWrite], [128, 1, 1]);
const GLOBAL: K = K::in_shader(SHADER, "coop_peak_global", &[Read, ReadWrite], [128, 1, 1]);
pub(crate) const ENTRY_POINTS: &[EntryPoint] = &[REGISTERS.entry, SHARED.entry, GLOBAL.entry];

/// f16 elements of the peak kernels' operands: two copies of A (64x16) and B (16x32).
pub const COOP_PEAK_SRC_LEN: usize = 2 * (64 * 16 + 16 * 32);
/// f32 elements each workgroup stores: 4 subgroups x 8 accumulators of 16x16.
pub const COOP_PEAK_OUT_PER_GROUP: usize = 4 * 8 * 256;

/// Where the peak kernels' fragments come from at each step (shaders/coop_peak.wgsl).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeakLoads {
    /// Loaded once before the loop: the multiply-add rate alone.
    Registers,
    /// Reloaded from workgroup memory, as the GEMM and convolution tiles do.
    Shared,
    /// Reloaded from the (cached) storage buffer, as the GEMM's direct loads do.
    Global,
}

/// Multiply-adds times two of one [`coop_peak`] dispatch.
pub fn coop_peak_flops(groups: usize, iters: usize) -> f64 {
    groups as f64 * 4.0 * iters as f64 * 8.0 * 2.0 * 16.0 * 16.0 * 16.0
}

/// `groups` workgroups of the tensor-core ceiling kernel, `iters` steps each, on the f16
/// operands `src` ([`COOP_PEAK_SRC_LEN`]) into `dst` (f32, [`COOP_PEAK_OUT_PER_GROUP`] per
/// workgroup); the CPU twin of one subgroup's result is [`crate::cpu::coop_peak`].
pub fn coop_peak(
    gpu: &Gpu,
    loads: PeakLoads,
    iters: usize,
    groups: usize,
    src: &GpuBuffer,
    dst: &GpuBuffer,
) -> Result<()> {
    if !gpu.report().coop_f16 {
        return Err(KernelError::NoCooperativeMatrix {
            adapter: gpu.report().name.clone(),
        });
    }
    assert!(src.dtype() == Dtype::F16 && src.len_bytes() >= COOP_PEAK_SRC_LEN as u64 * 2);
    assert!(
        dst.dtype() == Dtype::F32
            && dst.len_bytes() >= (groups * COOP_PEAK_OUT_PER_GROUP) as u64 * 4
    );
    let kernel = match loads {
        PeakLoads::Registers => &REGISTERS,
        PeakLoads::Shared => &SHARED,
        PeakLoads::Global => &GLOBAL,
    };
    let prm = CoopPeakUniform {
        iters: iters as u32,
        mask: 1,
        ..Default::default()
    };
    gpu.dispatch(
        kernel,
        &[],
        &prm,
        &[src.into(), dst.into()],
        [groups as u32, 1, 1],
    )
}
