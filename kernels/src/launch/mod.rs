//! Typed launchers: one function per WGSL entry point, with the same signature as its CPU
//! twin in [`crate::cpu`] except that data lives in [`GpuBuffer`]s.

mod augment;
mod bn_act;
mod conv;
mod conv_rules;
mod conv_tune;
mod coop_peak;
mod dwconv;
mod elementwise;
mod gate;
mod gemm;
mod loss;
mod norm;
mod optim;
mod pool;
mod reduce;

pub use augment::*;
pub use bn_act::*;
pub use conv::*;
pub use conv_rules::*;
pub use conv_tune::*;
pub use coop_peak::*;
pub use dwconv::*;
pub use elementwise::*;
pub use gate::*;
pub use gemm::*;
pub use loss::*;
pub use norm::*;
pub use optim::*;
pub use pool::*;
pub use reduce::*;

use crate::{BufRef, EntryPoint, GpuBuffer};

/// Workgroups per dispatch dimension.
pub(crate) const MAX_GROUPS: usize = 65_535;

/// Whether a pass over these operands runs on tensor cores: f16 data on an adapter that has
/// them (see [`crate::Gpu::uses_coop_f16`]).
pub(crate) fn on_tensor_cores(gpu: &crate::Gpu, operands: &[&GpuBuffer]) -> bool {
    gpu.uses_coop_f16() && operands.iter().all(|b| b.dtype() == crate::Dtype::F16)
}

/// Pipeline constants of a SIMT GEMM or convolution tile (gemm.wgsl, conv.wgsl) or a
/// tensor-core convolution tile (coop_conv.wgsl): PREFETCH where the device runs their K loop
/// pipelined ([`crate::Gpu::prefetch`]).
pub(crate) fn prefetch_constants(gpu: &crate::Gpu) -> &'static [(&'static str, f64)] {
    if gpu.prefetch() {
        &[("PREFETCH", 1.0)]
    } else {
        &[]
    }
}

/// The entry points of the cooperative-matrix shaders ([`crate::shaders::COOP`]), checked the
/// same way against their f16 variant.
pub fn coop_entry_points() -> Vec<EntryPoint> {
    [
        gemm::COOP_ENTRY_POINTS,
        conv::COOP_ENTRY_POINTS,
        coop_peak::ENTRY_POINTS,
    ]
    .concat()
}

/// Every entry point a launcher dispatches, with its bindings, workgroup size and parameter
/// block: what `tests/contract.rs` checks against the shaders.
pub fn entry_points() -> Vec<EntryPoint> {
    [
        augment::ENTRY_POINTS,
        bn_act::ENTRY_POINTS,
        conv::ENTRY_POINTS,
        dwconv::ENTRY_POINTS,
        elementwise::ENTRY_POINTS,
        gate::ENTRY_POINTS,
        gemm::ENTRY_POINTS,
        loss::ENTRY_POINTS,
        norm::ENTRY_POINTS,
        optim::ENTRY_POINTS,
        pool::ENTRY_POINTS,
        reduce::ENTRY_POINTS,
    ]
    .concat()
}

/// The byte window of `buf` holding `len` elements from element `first`, its start rounded
/// down to `align`, and the element offset of `first` inside it: how a launcher binds part of
/// an operand larger than the storage-binding limit.
pub(crate) fn window(buf: &GpuBuffer, first: usize, len: usize, align: u64) -> (BufRef<'_>, usize) {
    let e = buf.dtype().bytes();
    let start = first as u64 * e;
    let base = start / align * align;
    let size = (start - base + len.max(1) as u64 * e).div_ceil(4) * 4;
    (
        BufRef {
            buf,
            offset: buf.offset_bytes() + base,
            size,
        },
        ((start - base) / e) as usize,
    )
}
