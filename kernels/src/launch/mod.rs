//! Typed launchers: one function per WGSL entry point, with the same signature as its CPU
//! twin in [`crate::cpu`] except that data lives in [`GpuBuffer`]s.

mod conv;
mod elementwise;
mod gate;
mod gemm;
mod loss;
mod norm;
mod optim;
mod pool;
mod reduce;

pub use conv::*;
pub use elementwise::*;
pub use gate::*;
pub use gemm::*;
pub use loss::*;
pub use norm::*;
pub use optim::*;
pub use pool::*;
pub use reduce::*;

use crate::recorder::grid;

/// Workgroups for `n` invocations at `per_group` per workgroup, split over x and y.
pub(crate) fn groups_for(n: usize, per_group: usize) -> [u32; 3] {
    grid(n.div_ceil(per_group) as u32)
}

pub(crate) fn f(v: f32) -> u32 {
    v.to_bits()
}
