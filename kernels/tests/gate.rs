//! The AutoReP gate kernels against their CPU twin, the hysteresis rule, and the exact count.

mod common;
use autorep_kernels::{cpu, launch, params::GateGrad, params::GateParams};
use common::{gpu, rand_vec, rel_err};

fn sites() -> Vec<GateParams> {
    let s = |batch, channels, hw, channel_wise, s2| GateParams {
        batch,
        channels,
        hw,
        channel_wise,
        s1: 1.0,
        s2,
        clip2: 0.0,
    };
    vec![
        s(1, 1, 1, false, 0.1),
        s(3, 7, 33, false, 0.1),
        s(2, 5, 9, true, 2.0),
        s(5, 13, 1, false, 0.0),
        // The official clamp of c2: most random c2 fall outside ±0.05.
        GateParams {
            clip2: 0.05,
            ..s(3, 6, 10, false, 1.0)
        },
        s(4, 3, 49, true, 0.0),
        s(2, 65, 16, false, 10.0),
    ]
}

/// A binary mask with both values present.
fn mask(n: usize) -> Vec<f32> {
    rand_vec(40, n)
        .iter()
        .map(|&v| if v > 0.0 { 1.0 } else { 0.0 })
        .collect()
}

#[test]
fn gate_passes_match_cpu() {
    let Some(g) = gpu() else { return };
    for p in sites() {
        let (x, gy, m) = (rand_vec(41, p.n()), rand_vec(42, p.n()), mask(p.gates()));
        let coef = rand_vec(43, 3 * p.channels);
        let h: Vec<f32> = rand_vec(44, p.gates()).iter().map(|v| 3.0 * v).collect();
        let up = |v: &[f32]| g.upload(v).unwrap();
        let (bx, bg, bm, bc, bh) = (up(&x), up(&gy), up(&m), up(&coef), up(&h));
        let out = |n: usize| g.alloc(n as u64 * 4).unwrap();
        let (by, bdx, bdm, bdc, bdh) = (
            out(p.n()),
            out(p.n()),
            out(p.gates()),
            out(3 * p.channels),
            out(p.gates()),
        );
        let count = g.upload(&[0u32]).unwrap();
        let one = g.upload(&[1.0f32]).unwrap();
        launch::gate_forward(&g, &p, &bx, &bm, &bc, &by).unwrap();
        launch::gate_grad_x(&g, &p, &bx, &bg, &bm, &bc, &bdx).unwrap();
        launch::gate_grad_mask(&g, &p, &bx, &bg, &bc, &bdm).unwrap();
        launch::gate_grad_coef(&g, &p, &bx, &bg, &bm, &bc, &bdc).unwrap();
        launch::count_reset(&g, &count).unwrap();
        launch::gate_count(&g, &p, 0.5, &bm, &count).unwrap();
        let want_count = cpu::gate_count(&m, 0.5, p.group() as u64);
        assert_eq!(g.read_u32(&count, 0, 1).unwrap()[0] as u64, want_count);
        let budget = want_count.saturating_sub(1); // over budget: the hinge is active
        let ste = GateGrad::Ste {
            penalty: 0.01,
            budget,
        };
        launch::gate_grad_h(&g, &p, ste, &bh, &bdm, &count, &bdh, &one).unwrap();
        let mut want = vec![0f32; p.n()];
        cpu::gate_forward(&p, &x, &m, &coef, &mut want);
        assert!(
            rel_err(&g.read_f32(&by, 0, p.n()).unwrap(), &want) <= 1e-5,
            "{p:?} forward"
        );
        cpu::gate_grad_x(&p, &x, &gy, &m, &coef, &mut want);
        assert!(
            rel_err(&g.read_f32(&bdx, 0, p.n()).unwrap(), &want) <= 1e-5,
            "{p:?} dx"
        );
        let mut dm = vec![0f32; p.gates()];
        cpu::gate_grad_mask(&p, &x, &gy, &coef, &mut dm);
        assert!(
            rel_err(&g.read_f32(&bdm, 0, p.gates()).unwrap(), &dm) <= 1e-4,
            "{p:?} dm"
        );
        let mut dc = vec![0f32; 3 * p.channels];
        cpu::gate_grad_coef(&p, &x, &gy, &m, &coef, &mut dc);
        assert!(
            rel_err(&g.read_f32(&bdc, 0, 3 * p.channels).unwrap(), &dc) <= 1e-4,
            "{p:?} dcoef"
        );
        let mut dh = vec![0f32; p.gates()];
        cpu::gate_grad_h(&p, ste, &h, &dm, want_count, &mut dh, 1.0);
        assert!(
            rel_err(&g.read_f32(&bdh, 0, p.gates()).unwrap(), &dh) <= 1e-4,
            "{p:?} dh"
        );
        let snl = GateGrad::Snl { l1: 0.3 };
        launch::gate_grad_h(&g, &p, snl, &bh, &bdm, &count, &bdh, &one).unwrap();
        cpu::gate_grad_h(&p, snl, &h, &dm, want_count, &mut dh, 1.0);
        assert!(
            rel_err(&g.read_f32(&bdh, 0, p.gates()).unwrap(), &dh) <= 1e-4,
            "{p:?} snl dα"
        );
        let mut m2 = m.clone();
        launch::gate_hysteresis(&g, &p, 0.5, &bh, &bm).unwrap();
        cpu::gate_hysteresis(0.5, &h, &mut m2);
        assert_eq!(
            g.read_f32(&bm, 0, p.gates()).unwrap(),
            m2,
            "{p:?} hysteresis"
        );
    }
}

/// x and c gradients against central differences of the f64 forward; h's gradient is the STE,
/// checked against its formula.
#[test]
fn gate_gradients_match_finite_differences() {
    for p in sites() {
        let f64s = |v: Vec<f32>| v.into_iter().map(|x| x as f64).collect::<Vec<f64>>();
        let x = f64s(rand_vec(51, p.n()))
            .into_iter()
            .map(|v| v + 0.05 * v.signum())
            .collect::<Vec<_>>();
        let m: Vec<f64> = f64s(mask(p.gates()));
        let coef = f64s(rand_vec(53, 3 * p.channels));
        let w = f64s(rand_vec(54, p.n()));
        let loss = |x: &[f64], coef: &[f64], m: &[f64]| {
            let mut y = vec![0.0; p.n()];
            cpu::gate_forward(&p, x, m, coef, &mut y);
            y.iter().zip(&w).map(|(a, b)| a * b).sum::<f64>()
        };
        let (mut dx, mut dc, mut dm) = (
            vec![0.0; p.n()],
            vec![0.0; 3 * p.channels],
            vec![0.0; p.gates()],
        );
        cpu::gate_grad_x(&p, &x, &w, &m, &coef, &mut dx);
        cpu::gate_grad_coef(&p, &x, &w, &m, &coef, &mut dc);
        cpu::gate_grad_mask(&p, &x, &w, &coef, &mut dm);
        let h = 1e-6;
        let fd = |f: &dyn Fn(f64) -> f64| (f(h) - f(-h)) / (2.0 * h);
        for i in 0..p.n() {
            let num = fd(&|e| {
                let mut xx = x.clone();
                xx[i] += e;
                loss(&xx, &coef, &m)
            });
            assert!(
                (num - dx[i]).abs() < 1e-6 * num.abs().max(1.0),
                "{p:?} dx[{i}]"
            );
        }
        for c in 0..3 * p.channels {
            let num = fd(&|e| {
                let mut cc = coef.clone();
                cc[c] += e;
                loss(&x, &cc, &m)
            });
            assert!(
                (num - dc[c]).abs() < 1e-6 * num.abs().max(1.0),
                "{p:?} dc[{c}]"
            );
        }
        // dm is the derivative with respect to a continuous mask.
        for gi in 0..p.gates() {
            let num = fd(&|e| {
                let mut mm = m.clone();
                mm[gi] += e;
                loss(&x, &coef, &mm)
            });
            assert!(
                (num - dm[gi]).abs() < 1e-6 * num.abs().max(1.0),
                "{p:?} dm[{gi}]"
            );
        }
        // STE: dh = softplus(h)·(dm + λ/N·weight·1[count > B])
        let hv: [f64; 5] = [-30.0, -2.0, 0.0, 2.0, 25.0];
        let dmv = [0.5, -1.0, 2.0, 0.0, 1.0];
        let mut dh = [0.0; 5];
        let pe = GateGrad::Ste {
            penalty: 0.1,
            budget: 10,
        };
        cpu::gate_grad_h(&p, pe, &hv, &dmv, 11, &mut dh, 1.0);
        for k in 0..5 {
            let sp = if hv[k] > 20.0 {
                hv[k]
            } else {
                (1.0f64 + hv[k].exp()).ln()
            };
            let want = sp * (dmv[k] + 0.1 * p.group() as f64);
            assert!((dh[k] - want).abs() < 1e-6 * want.abs().max(1.0));
        }
        cpu::gate_grad_h(&p, pe, &hv, &dmv, 10, &mut dh, 1.0); // at the budget: no hinge
        assert!((dh[0] - (1.0f64 + (-30.0f64).exp()).ln() * 0.5).abs() < 1e-12);
    }
}

#[test]
fn hysteresis_follows_the_threshold_loop() {
    let tau = 0.003;
    let mut m = vec![1.0f32];
    // ON stays ON down to −τ (inclusive above), turns OFF at h ≤ −τ, stays OFF up to τ,
    // turns ON only above τ.
    let seq: [(f32, f32); 9] = [
        (0.5, 1.0),
        (0.0, 1.0),
        (-0.002, 1.0),
        (-0.003, 0.0),
        (-0.001, 0.0),
        (0.0, 0.0),
        (0.003, 0.0),
        (0.0031, 1.0),
        (-0.0029, 1.0),
    ];
    for (h, want) in seq {
        cpu::gate_hysteresis(tau, &[h], &mut m);
        assert_eq!(m[0], want, "h = {h}");
    }
    if let Some(g) = gpu() {
        let p = GateParams {
            batch: 1,
            channels: 1,
            hw: 1,
            channel_wise: false,
            s1: 1.0,
            s2: 0.0,
            clip2: 0.0,
        };
        let bm = g.upload(&[1.0f32]).unwrap();
        for (h, want) in seq {
            launch::gate_hysteresis(&g, &p, tau, &g.upload(&[h]).unwrap(), &bm).unwrap();
            assert_eq!(g.read_f32(&bm, 0, 1).unwrap()[0], want, "gpu h = {h}");
        }
    }
}

/// f32 cannot count past 2^24 exactly; the integer count must.
#[test]
fn count_is_exact_beyond_f32_precision() {
    let Some(g) = gpu() else { return };
    let gates = 17_000_002; // leaves 16,983,001 gates on: odd and above 2^24
    let p = GateParams {
        batch: 1,
        channels: 1,
        hw: gates,
        channel_wise: false,
        s1: 1.0,
        s2: 0.0,
        clip2: 0.0,
    };
    // All on except every 1000th gate.
    let m: Vec<f32> = (0..gates)
        .map(|i| if i % 1000 == 0 { 0.0 } else { 1.0 })
        .collect();
    let want = (gates - gates.div_ceil(1000)) as u32;
    let count = g.upload(&[0u32]).unwrap();
    launch::count_reset(&g, &count).unwrap();
    launch::gate_count(&g, &p, 0.5, &g.upload(&m).unwrap(), &count).unwrap();
    assert_eq!(g.read_u32(&count, 0, 1).unwrap()[0], want);
    assert_ne!(
        (want as f32) as u32,
        want,
        "the test size must be beyond f32's exact range"
    );
}
