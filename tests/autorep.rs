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
