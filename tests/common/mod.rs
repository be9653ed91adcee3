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

/// The authentic CIFAR-10 prefix in ../shared/data (5,085 training and 1,017 test records) as
/// CPU datasets, or None, with a message, where it is absent.
pub fn cifar_prefix() -> Option<(autorep::train::DeviceSet, autorep::train::DeviceSet)> {
    use autorep::data::{read_cifar10_files, CIFAR10_MEAN, CIFAR10_STD};
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data/cifar-10-partial-bin");
    if !dir.join("test_batch.first1017.bin").exists() {
        eprintln!(
            "skipping: {} not found (the authentic CIFAR-10 prefix; see ../shared/data/README.md)",
            dir.display()
        );
        return None;
    }
    let set = |files: &[std::path::PathBuf]| {
        let refs: Vec<&std::path::Path> = files.iter().map(|p| p.as_path()).collect();
        autorep::train::DeviceSet::new(
            &Device::Cpu,
            read_cifar10_files(&refs).unwrap(),
            &CIFAR10_MEAN,
            &CIFAR10_STD,
            4,
        )
        .unwrap()
    };
    let train: Vec<_> = (1..=5)
        .map(|i| dir.join(format!("data_batch_{i}.first1017.bin")))
        .collect();
    Some((set(&train), set(&[dir.join("test_batch.first1017.bin")])))
}

/// The bundled Fashion-MNIST subset (assets/fashion-mnist-small), its first `train` and `test`
/// images, on the CPU: what the hermetic tests run on.
pub fn fashion(train: usize, test: usize) -> autorep::train::Data {
    let dir =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/fashion-mnist-small");
    autorep::train::load_data("fashion-mnist", &dir, Some(train), Some(test), &Device::Cpu).unwrap()
}

/// A fresh temporary folder for one test.
pub fn tmp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("autorep-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}
