#![allow(dead_code, unused_imports)]
#[path = "cases.rs"]
pub mod cases;
#[path = "../../kernels/tests/common.rs"]
mod kernel_common;

use autorep::{Device, Tensor};
pub use kernel_common::{coop_gpu, rand_vec, rel_err};
use std::process::Command;

/// The test GPU device, or None (with a message) where no adapter exists; CI's
/// AUTOREP_REQUIRE_GPU=1 turns a missing driver into a failure (see the kernel tests' helper).
pub fn gpu() -> Option<Device> {
    kernel_common::gpu().map(Device::Gpu)
}

pub fn vals(t: &Tensor) -> Vec<f32> {
    t.to_vec().unwrap()
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

/// The epochs of a run folder's metrics.jsonl, in order.
pub fn logged_epochs(dir: &std::path::Path) -> Vec<u64> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["epoch"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

/// The Python of `env` (default `python3`) when it imports `modules`; else skipped with a
/// message, or a failure when `require` is set to 1.
pub fn python_with(env: &str, modules: &str, require: &str, hint: &str) -> Option<String> {
    let py = std::env::var(env).unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&py)
        .args(["-c", &format!("import {modules}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(py);
    }
    assert!(
        std::env::var(require).as_deref() != Ok("1"),
        "{require}=1 but {py} cannot import {modules}"
    );
    eprintln!("skipped: {py} cannot import {modules} ({hint})");
    None
}

/// The mean cross-entropy of `logits` against `labels`, backpropagated.
pub fn backward_from_loss(logits: &Tensor, labels: &std::rc::Rc<autorep::Labels>) -> Tensor {
    let loss = logits
        .cross_entropy(labels, 0.0)
        .unwrap()
        .loss
        .mean()
        .unwrap();
    loss.backward().unwrap();
    loss
}
