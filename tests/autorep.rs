//! AutoReP end to end on real images: a small CNN trained under a 10% ReLU budget ends within
//! the budget, well above chance.

mod common;

use autorep::autorep::{parse_count, Granularity, Method, ReplaceConfig, Replacement};
use autorep::models::{build, Model, ResNet, ResNetSpec};
use autorep::nn::{Module, Optimizer, OptimizerKind, ParamGroup};
use autorep::train::{autorep_stage, train_epoch, EpochPlan, StageConfig};
use autorep::Device;

#[test]
fn small_cnn_meets_a_ten_percent_budget_and_learns() {
    let Some((train, test)) = common::cifar_prefix() else {
        return;
    };
    let device = Device::Cpu;
    let spec = ResNetSpec {
        name: "cnn".into(),
        stem_relu: true,
        widths: vec![8, 16, 32],
        blocks: vec![1; 3],
        strides: vec![1, 2, 2],
    };
    let mut model = ResNet::new(&device, spec, 3, 32, 10, 1).unwrap();
    // AutoReP starts from a trained all-ReLU baseline.
    let group = ParamGroup::new(&device, "weights", model.params()).unwrap();
    let mut opt = Optimizer::new(&device, OptimizerKind::adam(0.0), vec![(group, 3e-3)]).unwrap();
    for e in 0..2 {
        train_epoch(
            &model,
            &mut opt,
            &train,
            EpochPlan::plain(64, 1, e),
            &device,
        )
        .unwrap();
    }
    let budget = model.relu_total() / 10;
    let cfg = ReplaceConfig {
        lambda: 20.0,
        h_init: (0.0, 0.05),
        ..ReplaceConfig::autorep(budget)
    };
    let stage = StageConfig {
        epochs: 2,
        batch: 64,
        weight_lr: 1e-3,
        gate_lr: 0.01,
        kd_temperature: 4.0,
        finetune_epochs: 0,
        finetune_lr: 0.0,
        seed: 2,
    };
    let r = autorep_stage(&mut model, cfg, &stage, &train, None, None, &device, |e| {
        eprintln!(
            "epoch {}: loss {:.3} acc {:.3} count {}",
            e.epoch, e.train.loss, e.train.accuracy, e.count
        )
    })
    .unwrap();
    let acc = autorep::train::evaluate(&model, None, &test, 256)
        .unwrap()
        .accuracy;
    eprintln!(
        "final count {} (budget {budget}), test accuracy {acc:.3}",
        r.final_count
    );
    assert!(
        r.final_count as usize <= budget,
        "count {} over budget {budget}",
        r.final_count
    );
    assert!(r.final_count > 0);
    assert!(
        acc >= 0.25,
        "test accuracy {acc} is not well above chance (0.10)"
    );
    let sites = r.replacement.site_counts(&model).unwrap();
    assert_eq!(
        sites.iter().map(|s| s.1).sum::<usize>(),
        r.final_count as usize,
        "per-site counts add up"
    );
}

#[test]
fn bad_budgets_and_degrees_are_clear_errors() {
    let d = Device::Cpu;
    let mut m = build("resnet18_in", &d, 3, 32, 10, 0).unwrap();
    let e = Replacement::install(m.as_mut(), ReplaceConfig::autorep(600_000), &d)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("600000") && e.contains("491520"), "{e}");
    let e = Replacement::install(
        m.as_mut(),
        ReplaceConfig {
            degree: 3,
            ..ReplaceConfig::autorep(1000)
        },
        &d,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("degree 3"), "{e}");
    assert!(parse_count("-5")
        .unwrap_err()
        .to_string()
        .contains("non-negative"));
    assert!(parse_count("lots").is_err());
    assert_eq!(parse_count("12.9k").unwrap(), 12_900);
}

/// Channel-wise gates count H·W ReLUs each, and SNL counts α above its threshold.
#[test]
fn gate_granularity_and_methods_count_exactly() {
    let d = Device::Cpu;
    for (method, gran) in [
        (Method::AutoRep, Granularity::Channel),
        (Method::Snl, Granularity::Pixel),
        (Method::Identity, Granularity::Pixel),
    ] {
        let mut m = build("resnet18_in", &d, 3, 32, 10, 0).unwrap();
        let cfg = ReplaceConfig {
            method,
            granularity: gran,
            ..ReplaceConfig::autorep(1000)
        };
        let mut rep = Replacement::install(m.as_mut(), cfg, &d).unwrap();
        rep.begin_forward(m.as_ref(), false).unwrap();
        assert_eq!(
            rep.count().unwrap(),
            491_520,
            "{method:?}: every gate starts on"
        );
        rep.enforce_budget(m.as_ref()).unwrap();
        rep.begin_forward(m.as_ref(), false).unwrap();
        let c = rep.count().unwrap();
        assert!(c <= 1000, "{method:?} {gran:?}: {c} after projection");
        if gran == Granularity::Channel {
            assert_eq!(c % 16, 0, "channel gates count whole planes");
        }
    }
}
