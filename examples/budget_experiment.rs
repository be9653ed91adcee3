//! AutoReP vs SNL at the same ReLU budget on the authentic CIFAR-10 prefix (5,085 train,
//! 1,017 test images), with a small ResNet on the CPU device:
//! `cargo run --release --example budget_experiment [budget_fraction] [baseline_epochs] [stage_epochs]`.

use autorep::autorep::ReplaceConfig;
use autorep::data::{read_cifar10_files, CIFAR10_MEAN, CIFAR10_STD};
use autorep::models::{Model, ResNet, ResNetSpec};
use autorep::nn::{Module, Optimizer, OptimizerKind, ParamGroup};
use autorep::train::{
    autorep_stage, evaluate, snl_stage, train_epoch, DeviceSet, EpochPlan, StageConfig,
};
use autorep::Device;
use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let frac: f64 = args.get(1).map_or(Ok(0.1), |s| s.parse())?;
    let base_epochs: usize = args.get(2).map_or(Ok(4), |s| s.parse())?;
    let stage_epochs: usize = args.get(3).map_or(Ok(4), |s| s.parse())?;
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/cifar-10-partial-bin");
    let files: Vec<PathBuf> = (1..=5)
        .map(|i| dir.join(format!("data_batch_{i}.first1017.bin")))
        .collect();
    let refs: Vec<&std::path::Path> = files.iter().map(|p| p.as_path()).collect();
    let device = Device::Cpu;
    let train = DeviceSet::new(
        &device,
        read_cifar10_files(&refs)?,
        &CIFAR10_MEAN,
        &CIFAR10_STD,
        4,
    )?;
    let test = DeviceSet::new(
        &device,
        read_cifar10_files(&[&dir.join("test_batch.first1017.bin")])?,
        &CIFAR10_MEAN,
        &CIFAR10_STD,
        4,
    )?;
    let spec = ResNetSpec {
        name: "small8".into(),
        stem_relu: true,
        widths: vec![8, 16, 32],
        blocks: vec![1; 3],
        strides: vec![1, 2, 2],
    };
    let baseline = |seed| -> anyhow::Result<ResNet> {
        let model = ResNet::new(&device, spec.clone(), 3, 32, 10, seed)?;
        let g = ParamGroup::new(&device, "weights", model.params())?;
        let mut opt = Optimizer::new(&device, OptimizerKind::adam(0.0), vec![(g, 3e-3)])?;
        for e in 0..base_epochs {
            let s = train_epoch(
                &model,
                &mut opt,
                &train,
                EpochPlan::plain(64, 1, e as u64),
                &device,
            )?;
            eprintln!(
                "baseline epoch {e}: loss {:.3} acc {:.3} ({:.1} s)",
                s.loss, s.accuracy, s.seconds
            );
        }
        Ok(model)
    };
    let teacher = baseline(1)?;
    let base_acc = evaluate(&teacher, None, &test, 256)?.accuracy;
    let total = teacher.relu_total();
    let budget = (total as f64 * frac).round() as usize;
    println!(
        "baseline: {} ReLUs, test accuracy {:.2}%; budget {budget} ({:.1}%)",
        total,
        100.0 * base_acc,
        100.0 * frac
    );
    let stage = StageConfig {
        epochs: stage_epochs,
        batch: 64,
        weight_lr: 1e-3,
        gate_lr: 0.01,
        kd_temperature: 4.0,
        finetune_epochs: stage_epochs,
        finetune_lr: 0.01,
        seed: 2,
    };
    let log = |name: &'static str| {
        move |e: &autorep::train::StageEpoch| {
            eprintln!(
                "{name} epoch {}: loss {:.3} acc {:.3} count {} test {:.3} ({:.1} s)",
                e.epoch,
                e.train.loss,
                e.train.accuracy,
                e.count,
                e.test.map_or(0.0, |t| t.accuracy),
                e.train.seconds
            )
        }
    };
    let mut cfgs = vec![(
        "AutoReP (DaPa deg 2)",
        ReplaceConfig {
            lambda: 20.0,
            h_init: (0.0, 0.05),
            ..ReplaceConfig::autorep(budget)
        },
    )];
    cfgs.push((
        "AutoReP identity ablation",
        ReplaceConfig {
            lambda: 20.0,
            h_init: (0.0, 0.05),
            ..ReplaceConfig::identity(budget)
        },
    ));
    let mut rows = vec![];
    for (name, cfg) in cfgs {
        let mut student = baseline(1)?;
        let r = autorep_stage(
            &mut student,
            cfg,
            &stage,
            &train,
            Some(&test),
            Some(&teacher),
            &device,
            log(name),
        )?;
        rows.push((
            name,
            r.final_count,
            r.final_test.map_or(0.0, |t| t.accuracy),
            r.over_budget_epochs,
            r.projected,
        ));
    }
    let mut student = baseline(1)?;
    let snl_cfg = ReplaceConfig {
        lambda: 1e-4,
        ..ReplaceConfig::snl(budget)
    };
    let r = snl_stage(
        &mut student,
        snl_cfg,
        &StageConfig {
            gate_lr: 1e-3,
            epochs: 3 * stage_epochs,
            ..stage.clone()
        },
        &train,
        Some(&test),
        Some(&teacher),
        &device,
        log("SNL"),
    )?;
    rows.push((
        "SNL",
        r.final_count,
        r.final_test.map_or(0.0, |t| t.accuracy),
        r.over_budget_epochs,
        r.projected,
    ));
    println!(
        "{:<28} {:>8} {:>10} {:>12} {:>10}",
        "method", "ReLUs", "test acc", "over-budget", "projected"
    );
    for (name, count, acc, over, proj) in rows {
        println!(
            "{name:<28} {count:>8} {:>9.2}% {over:>12} {proj:>10}",
            100.0 * acc
        );
    }
    Ok(())
}
