#![allow(dead_code, unused_imports)]
#[path = "cases.rs"]
pub mod cases;
#[path = "../../kernels/tests/common.rs"]
mod kernel_common;

use autorep::{Device, Tensor};
pub use kernel_common::{rand_vec, rel_err};

/// The test GPU device, or None (with a message) where no adapter exists; CI's
/// AUTOREP_REQUIRE_GPU=1 turns a missing driver into a failure (see the kernel tests' helper).
pub fn gpu() -> Option<Device> {
    kernel_common::gpu().map(Device::Gpu)
}

pub fn vals(t: &Tensor) -> Vec<f32> {
    t.to_vec().unwrap()
}
