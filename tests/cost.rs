//! Private-inference cost model: the presets carry the measured CrypTen constants and the
//! notes' Delphi ones (§7), and the estimate adds up communication, rounds and latency as
//! documented.

use autorep::cost::{
    estimate, estimate_sites, Protocol, SiteCount, LAN_BANDWIDTH_BYTES_PER_S, LAN_RTT_S,
    PRESET_NAMES,
};

#[test]
fn presets_carry_their_constants() {
    let c = Protocol::crypten();
    assert_eq!(c.relu_bytes, 464.0);
    assert_eq!(c.relu_rounds, 9.0);
    // A secret multiplication: 32 B in one round; degree 2 with secret coefficients takes two.
    assert_eq!((c.mult_bytes, c.mult_rounds, c.mults(2)), (32.0, 1.0, 2.0));
    assert!(
        c.notes.contains("CrypTen 0.4.1"),
        "the CrypTen constants name the measurement"
    );

    let d = Protocol::delphi();
    assert_eq!(d.offline_relu_bytes, 15_896.0);
    assert_eq!(d.relu_us, 52.0);
    assert_eq!((d.mult_bytes, d.mult_rounds, d.mults(2)), (32.0, 1.0, 1.0));
    assert_eq!(d.client_storage_relu_bytes, 18_248.0);
    assert_eq!(c.client_storage_relu_bytes, 0.0);

    assert_eq!(LAN_BANDWIDTH_BYTES_PER_S, 1e9);
    assert_eq!(LAN_RTT_S, 5e-4);
}

#[test]
fn by_name_finds_presets_and_lists_them_on_error() {
    assert_eq!(Protocol::by_name("crypten").unwrap(), Protocol::crypten());
    assert_eq!(Protocol::by_name("Delphi").unwrap(), Protocol::delphi());
    let e = Protocol::by_name("x").unwrap_err().to_string();
    assert!(e.contains("'x'"), "{e}");
    for name in PRESET_NAMES {
        assert!(e.contains(name), "{e}");
    }
}

#[test]
fn estimate_arithmetic_by_hand() {
    let p = Protocol {
        name: "toy".into(),
        relu_bytes: 100.0,
        relu_rounds: 5.0,
        relu_us: 2.0,
        mult_bytes: 10.0,
        mult_rounds: 1.0,
        mult_us: 0.5,
        offline_relu_bytes: 1000.0,
        client_storage_relu_bytes: 3000.0,
        // Plaintext coefficients: one multiplication for degree 2.
        secret_coefficients: false,
        notes: String::new(),
    };
    let r = estimate(&p, 1_000, 4_000, 2, 3, 2, 1e6, 0.01);
    // 1,000·100 + 4,000·10 = 140,000 B online; 1,000·1,000 B offline.
    assert_eq!(r.comm_bytes, 140_000.0);
    assert_eq!(r.offline_bytes, 1_000_000.0);
    assert_eq!(r.client_storage_bytes, 3_000_000.0);
    // 3 ReLU layers × 5 + 2 polynomial layers × 1.
    assert_eq!(r.rounds, 17.0);
    // 0.14 s transfer + 17 × 0.01 s + (1,000·2 + 4,000·0.5) µs = 0.14 + 0.17 + 0.004.
    assert!((r.latency_s - 0.314).abs() < 1e-12, "{}", r.latency_s);
    assert_eq!((r.relus, r.polys), (1_000, 4_000));

    let t = r.table();
    for needle in [
        "toy",
        "1,000",
        "4,000",
        "140.00 KB",
        "1.00 MB",
        "3.00 MB",
        "17",
        "0.3140 s",
    ] {
        assert!(t.contains(needle), "table lacks {needle}:\n{t}");
    }

    // No polynomial layers: no polynomial rounds or traffic.
    let r = estimate(&p, 10, 0, 2, 1, 0, 1e6, 0.01);
    assert_eq!((r.comm_bytes, r.rounds), (1_000.0, 5.0));
}

#[test]
fn polynomials_cost_their_multiplications_and_the_identity_nothing() {
    // CrypTen holds the coefficients secret: Horner's rule takes d multiplications, so degree
    // 1 is half the measured degree-2 cost (64 B, 2 rounds); Delphi's plaintext coefficients
    // need one for x² and none for a linear map.
    let (c, d) = (Protocol::crypten(), Protocol::delphi());
    assert_eq!([0, 1, 2].map(|k| c.mults(k)), [0.0, 1.0, 2.0], "CrypTen");
    assert_eq!([0, 1, 2].map(|k| d.mults(k)), [0.0, 0.0, 1.0], "Delphi");
    let site = |relus, degree| SiteCount {
        name: "s".into(),
        relus,
        total: 1_000,
        degree,
    };
    let cost = |degree| estimate_sites(&c, &[site(100, degree), site(0, degree)], 1e9, 0.0);
    // 100 ReLUs at 464 B in 9 rounds (one layer), 1,900 replaced elements.
    let (q, i, l) = (cost(2), cost(0), cost(1));
    assert_eq!(
        (q.comm_bytes, q.rounds),
        (46_400.0 + 1_900.0 * 64.0, 9.0 + 2.0 * 2.0)
    );
    assert_eq!(
        (l.comm_bytes, l.rounds),
        (46_400.0 + 1_900.0 * 32.0, 9.0 + 2.0)
    );
    assert_eq!((i.comm_bytes, i.rounds), (46_400.0, 9.0));
    assert_eq!((i.relus, i.polys, i.identities), (100, 0, 1_900));
    // The coefficient setting decides the multiplications, whichever preset it is applied to:
    // Delphi with secret coefficients pays two for degree 2, CrypTen with plaintext ones one.
    let secret = Protocol {
        secret_coefficients: true,
        ..d.clone()
    };
    let public = Protocol {
        secret_coefficients: false,
        ..c.clone()
    };
    let q = estimate_sites(&secret, &[site(0, 2)], 1e9, 0.0);
    assert_eq!((q.comm_bytes, q.rounds), (1_000.0 * 64.0, 2.0));
    let q = estimate_sites(&public, &[site(0, 2)], 1e9, 0.0);
    assert_eq!((q.comm_bytes, q.rounds), (1_000.0 * 32.0, 1.0));
}

#[test]
fn resnet18_budget_under_crypten() {
    // SNL/AutoReP ResNet-18 on CIFAR: 491,520 ReLUs over 16 activation layers (§4.1).
    let p = Protocol::crypten();
    let (total, layers) = (491_520u64, 16usize);
    let all_relu = estimate(
        &p,
        total,
        0,
        2,
        layers,
        0,
        LAN_BANDWIDTH_BYTES_PER_S,
        LAN_RTT_S,
    );
    let budget = 12_900u64;
    let mixed = estimate(
        &p,
        budget,
        total - budget,
        2,
        layers,
        layers,
        LAN_BANDWIDTH_BYTES_PER_S,
        LAN_RTT_S,
    );

    assert_eq!(all_relu.comm_bytes, 491_520.0 * 464.0);
    let expected_mixed = 12_900.0 * 464.0 + 478_620.0 * 64.0;
    assert_eq!(mixed.comm_bytes, expected_mixed);
    let reduction = all_relu.comm_bytes / mixed.comm_bytes;
    let expected = 491_520.0 * 464.0 / expected_mixed;
    assert!(
        (reduction - expected).abs() < 1e-9,
        "{reduction} vs {expected}"
    );
    // ≈ 6.2×: the 478,620 polynomials (64 B each) now cost five times the 12,900 ReLUs.
    assert!(reduction > 6.0 && reduction < 6.5, "{reduction}");

    // Rounds grow: polynomial layers add two rounds each on top of the ReLU layers'.
    assert_eq!(all_relu.rounds, 16.0 * 9.0);
    assert_eq!(mixed.rounds, 16.0 * 9.0 + 16.0 * 2.0);
    assert!(mixed.latency_s < all_relu.latency_s);
}

#[test]
fn an_assumed_mask_keeps_exactly_the_relus_asked_for() {
    use autorep::cost::assumed_sites;
    // ResNet-like site sizes, and EfficientNet's many small sites among large ones.
    let shapes: [Vec<usize>; 2] = [
        vec![
            65_536, 65_536, 32_768, 32_768, 16_384, 8_192, 4_096, 2_048, 512,
        ],
        (0..69).map(|i| 2 + (i * 7_919) % 50_000).collect(),
    ];
    for sizes in shapes {
        let named: Vec<(String, usize)> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| (format!("s{i}"), n))
            .collect();
        let total: usize = sizes.iter().sum();
        for relus in [
            0,
            1,
            15,
            68,
            69,
            70,
            12_950,
            total / 2,
            total - 70,
            total - 1,
            total,
        ] {
            let sites = assumed_sites(&named, relus, 2);
            let kept: usize = sites.iter().map(|s| s.relus).sum();
            assert_eq!(kept, relus, "{relus} of {total} over {} sites", sizes.len());
            for s in &sites {
                assert!(s.relus <= s.total, "{s:?}");
                if relus >= sizes.len() {
                    assert!(
                        s.relus >= 1,
                        "a site keeps a ReLU while enough are kept: {s:?}"
                    );
                }
                if total - relus >= sizes.len() {
                    assert!(
                        s.relus < s.total,
                        "a site keeps a polynomial while enough are replaced: {s:?}"
                    );
                }
            }
        }
    }
}
