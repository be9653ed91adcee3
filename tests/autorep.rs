//! Gate installation, counting and projection (end-to-end learning under a budget is in
//! tests/stages.rs, on the bundled data).

use autorep::autorep::{parse_count, Granularity, Method, ReplaceConfig, Replacement};
use autorep::models::build;
use autorep::Device;

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
    // A budget counts whole ReLUs: a fraction is an error, not a silent 0.
    let e = parse_count("0.4").unwrap_err().to_string();
    assert!(e.contains("whole number"), "{e}");
    assert!(parse_count("1.23456k").is_err());
    assert_eq!(parse_count("0").unwrap(), 0);
    for bad in ["nan", "inf", "1e300"] {
        assert!(parse_count(bad).is_err(), "{bad}");
    }
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

/// The official `--clip_x2` clamps the stored c₂ before every forward pass: a c₂ past the
/// bound restarts from it and keeps its gradient (a clamp only where c₂ is used passes none
/// outside the bound, and the coefficient would stay pinned there for the rest of the run).
#[test]
fn clip_x2_projects_the_stored_coefficient_so_it_keeps_its_gradient() {
    use autorep::autorep::ReplaceConfig;
    use autorep::nn::SiteMode;
    use autorep::Tensor;
    let d = Device::Cpu;
    let mut m = build("small", &d, 1, 28, 10, 0).unwrap();
    let cfg = ReplaceConfig {
        clip_x2: 1.0,
        ..ReplaceConfig::autorep(0)
    };
    let mut rep = Replacement::install(m.as_mut(), cfg, &d).unwrap();
    rep.enforce_budget(m.as_ref()).unwrap();
    let coef = |m: &dyn autorep::models::Model| match &m.sites()[0].mode {
        SiteMode::Gated(g) => g.coef.clone(),
        SiteMode::Relu => unreachable!(),
    };
    let c = m.sites()[0].channels;
    let stored = coef(m.as_ref());
    let mut v = stored.to_vec().unwrap();
    for ch in 0..c {
        v[2 * c + ch] = [1.5, -3.0, 0.25][ch % 3];
    }
    stored.copy_from_host(&v).unwrap();
    let ctx = rep.begin_forward(m.as_ref(), true).unwrap();
    let after = stored.to_vec().unwrap();
    assert_eq!(after[..2 * c], v[..2 * c], "c0 and c1 are not clipped");
    for ch in 0..c {
        assert_eq!(after[2 * c + ch], [1.0, -1.0, 0.25][ch % 3], "channel {ch}");
    }
    // Every gate is off, so each c₂ reaches the loss: with the stored value on the bound,
    // every channel's c₂ has a gradient.
    let x = Tensor::from_vec(
        &d,
        &[2, 1, 28, 28],
        (0..2 * 784).map(|i| (i % 13) as f32 / 6.0 - 1.0).collect(),
    )
    .unwrap();
    m.forward(&x, &ctx)
        .unwrap()
        .sum()
        .unwrap()
        .backward()
        .unwrap();
    let g = stored.grad().expect("c is a parameter").to_vec().unwrap();
    let zero: Vec<usize> = (0..c).filter(|&ch| g[2 * c + ch] == 0.0).collect();
    assert!(zero.is_empty(), "channels {zero:?} of c₂ got no gradient");
}

/// The identity ablation replaces a ReLU by x itself, whatever s₁ a degree-1 run is given.
#[test]
fn the_identity_ablation_is_x_at_any_s1() {
    use autorep::autorep::ReplaceConfig;
    use autorep::Tensor;
    let d = Device::Cpu;
    let mut m = build("small", &d, 1, 28, 10, 0).unwrap();
    let cfg = ReplaceConfig {
        method: Method::Identity,
        degree: 1,
        s1: 2.0,
        ..ReplaceConfig::autorep(0)
    };
    let mut rep = Replacement::install(m.as_mut(), cfg, &d).unwrap();
    rep.enforce_budget(m.as_ref()).unwrap();
    let ctx = rep.begin_forward(m.as_ref(), false).unwrap();
    let site = &m.sites()[0];
    let n = 2 * site.channels * site.hw;
    let v: Vec<f32> = (0..n).map(|i| (i % 7) as f32 - 3.0).collect();
    let x = Tensor::from_vec(&d, &[2, site.channels, site.hw, 1], v.clone()).unwrap();
    assert_eq!(site.forward(&x, &ctx).unwrap().to_vec().unwrap(), v);
}

/// Clean DaPa's calibration passes measure the sites' inputs; they leave the network's batch
/// norm statistics as the baseline had them.
#[test]
fn clean_calibration_keeps_the_batch_norm_statistics() {
    use autorep::autorep::{Polynomial, ReplaceConfig};
    use autorep::Tensor;
    let d = Device::Cpu;
    let mut m = build("small", &d, 1, 28, 10, 0).unwrap();
    let running = |m: &dyn autorep::models::Model| -> Vec<Vec<f32>> {
        m.named_buffers()
            .iter()
            .filter(|(n, _)| n.ends_with("running_mean") || n.ends_with("running_var"))
            .map(|(_, t)| t.to_vec().unwrap())
            .collect()
    };
    let before = running(m.as_ref());
    assert!(!before.is_empty());
    let cfg = ReplaceConfig {
        polynomial: Polynomial::Clean,
        ..ReplaceConfig::autorep(1000)
    };
    let mut rep = Replacement::install(m.as_mut(), cfg, &d).unwrap();
    let x = Tensor::from_vec(
        &d,
        &[4, 1, 28, 28],
        (0..4 * 784).map(|i| (i % 17) as f32 / 4.0 - 2.0).collect(),
    )
    .unwrap();
    rep.fit_clean(m.as_ref(), &[x]).unwrap();
    assert_eq!(running(m.as_ref()), before);
}
