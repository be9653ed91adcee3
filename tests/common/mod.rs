#![allow(dead_code)]
#[path = "cases.rs"]
pub mod cases;
use autorep::{Device, Tensor};
use autorep_kernels::Gpu;
use rand::{Rng, SeedableRng};

/// The test GPU device, or None (with a message) where no adapter exists. CI sets
/// AUTOREP_REQUIRE_GPU=1 so that a missing driver fails instead of skipping.
pub fn gpu() -> Option<Device> {
    match Gpu::open() {
        Ok(g) => Some(Device::Gpu(g)),
        Err(e) if std::env::var("AUTOREP_REQUIRE_GPU").as_deref() == Ok("1") => {
            panic!("AUTOREP_REQUIRE_GPU=1 but no GPU: {e}")
        }
        Err(e) => {
            eprintln!("skipping GPU part: {e}");
            None
        }
    }
}

pub fn rand_vec(seed: u64, n: usize) -> Vec<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

/// max |got - want| / max |want|
pub fn rel_err(got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
    got.iter().zip(want).fold(0f32, |m, (g, w)| m.max((g - w).abs())) / scale
}

pub fn vals(t: &Tensor) -> Vec<f32> {
    t.to_vec().unwrap()
}
