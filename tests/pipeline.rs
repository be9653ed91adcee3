//! The pipeline jobs: resume reproduces an uninterrupted run exactly; bad input is rejected.

use autorep::autorep::ReplaceConfig;
use autorep::data::{read_cifar10_files, Dataset};
use autorep::train::checkpoint::Checkpoint;
use autorep::train::jobs::{self, Data, JobOptions};
use autorep::train::StageConfig;
use autorep::Device;
use std::path::{Path, PathBuf};

fn data() -> Option<Data> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/cifar-10-partial-bin");
    if !dir.join("test_batch.first1017.bin").exists() {
        eprintln!(
            "skipping: {} not found (see ../shared/data/README.md)",
            dir.display()
        );
        return None;
    }
    let train = read_cifar10_files(&[&dir.join("data_batch_1.first1017.bin")])
        .unwrap()
        .subset(..192);
    let test = read_cifar10_files(&[&dir.join("test_batch.first1017.bin")])
        .unwrap()
        .subset(..64);
    Some(Data::new(&Device::Cpu, Dataset::Cifar10, train, test).unwrap())
}

fn opts(out: &Path, stop_after: Option<usize>, resume: bool) -> JobOptions {
    JobOptions {
        model: "small".into(),
        epochs: 3,
        batch: 32,
        seed: 5,
        out: out.to_path_buf(),
        quiet: true,
        resume,
        stop_after,
    }
}

fn same_tensors(a: &Path, b: &Path) {
    let (a, b) = (Checkpoint::load(a).unwrap(), Checkpoint::load(b).unwrap());
    assert_eq!(a.tensors.len(), b.tensors.len());
    for (name, (shape, data)) in &a.tensors {
        let (shape_b, data_b) = &b.tensors[name];
        assert_eq!(shape, shape_b, "{name}");
        assert!(
            data == data_b,
            "{name} differs between the resumed and the uninterrupted run"
        );
    }
}

#[test]
fn resumed_runs_equal_uninterrupted_runs() {
    let Some(data) = data() else { return };
    let d = Device::Cpu;
    let tmp = std::env::temp_dir().join(format!("autorep-resume-{}", std::process::id()));
    let (full, killed) = (tmp.join("full"), tmp.join("killed"));
    jobs::train_baseline(&d, &opts(&full, None, false), &data, 0.05, 0.9, 5e-4).unwrap();
    // Killed after epoch 1 of 3, then resumed.
    let first =
        jobs::train_baseline(&d, &opts(&killed, Some(1), false), &data, 0.05, 0.9, 5e-4).unwrap();
    assert_eq!(first.epochs_run, 1);
    let rest =
        jobs::train_baseline(&d, &opts(&killed, None, true), &data, 0.05, 0.9, 5e-4).unwrap();
    assert_eq!(rest.epochs_run, 2);
    same_tensors(
        &full.join("last.safetensors"),
        &killed.join("last.safetensors"),
    );

    // The replacement stage too: gates, hysteresis state, DaPa coefficients, Adam moments.
    let baseline = full.join("last.safetensors");
    let budget = 7_000;
    let cfg = ReplaceConfig {
        lambda: 20.0,
        h_init: (0.0, 0.05),
        ..ReplaceConfig::autorep(budget)
    };
    let stage = StageConfig {
        epochs: 3,
        batch: 32,
        weight_lr: 1e-3,
        gate_lr: 0.01,
        kd_temperature: 4.0,
        finetune_epochs: 0,
        finetune_lr: 0.0,
        seed: 5,
    };
    let (rfull, rkilled) = (tmp.join("rfull"), tmp.join("rkilled"));
    jobs::replace(
        &d,
        &opts(&rfull, None, false),
        &data,
        &baseline,
        cfg.clone(),
        &stage,
        true,
    )
    .unwrap();
    jobs::replace(
        &d,
        &opts(&rkilled, Some(1), false),
        &data,
        &baseline,
        cfg.clone(),
        &stage,
        true,
    )
    .unwrap();
    let s = jobs::replace(
        &d,
        &opts(&rkilled, None, true),
        &data,
        &baseline,
        cfg,
        &stage,
        true,
    )
    .unwrap();
    assert!(
        s.relus <= budget as u64,
        "final count {} within budget",
        s.relus
    );
    same_tensors(
        &rfull.join("last.safetensors"),
        &rkilled.join("last.safetensors"),
    );
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn truncated_checkpoint_is_a_clear_error() {
    let tmp =
        std::env::temp_dir().join(format!("autorep-trunc-{}.safetensors", std::process::id()));
    std::fs::write(&tmp, b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":").unwrap();
    let e = Checkpoint::load(&tmp).err().unwrap().to_string();
    assert!(e.contains("not a valid safetensors checkpoint"), "{e}");
    let _ = std::fs::remove_file(&tmp);
    let e = Checkpoint::load(Path::new("/nonexistent/x.safetensors"))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("/nonexistent/x.safetensors"), "{e}");
}

#[test]
fn a_diverging_run_stops_with_a_clear_error_and_keeps_its_earlier_checkpoint() {
    let Some(data) = data() else { return };
    let d = Device::Cpu;
    let tmp = std::env::temp_dir().join(format!("autorep-diverge-{}", std::process::id()));
    // A learning rate of 1e12 overflows the weights within the first epoch.
    let e = jobs::train_baseline(&d, &opts(&tmp, None, false), &data, 1e12, 0.9, 5e-4)
        .expect_err("training at lr 1e12 must diverge")
        .to_string();
    assert!(
        e.contains("diverged in epoch 1") && e.contains("learning rate"),
        "{e}"
    );
    assert!(
        !tmp.join("last.safetensors").exists(),
        "a diverged epoch wrote a checkpoint"
    );
    let _ = std::fs::remove_dir_all(&tmp);
}
