//! Typed launchers: one function per WGSL entry point, with the same signature as its CPU
//! twin in [`crate::cpu`] except that data lives in [`GpuBuffer`]s.

mod elementwise;
mod gemm;
mod loss;
mod reduce;

pub use elementwise::*;
pub use gemm::*;
pub use loss::*;
pub use reduce::*;

use crate::recorder::grid;

/// Workgroups for `n` invocations at `per_group` per workgroup, split over x and y.
pub(crate) fn groups_for(n: usize, per_group: usize) -> [u32; 3] {
    grid(n.div_ceil(per_group) as u32)
}

pub(crate) fn f(v: f32) -> u32 {
    v.to_bits()
}
