//! Optimizer and knowledge-distillation kernels: GPU against the CPU twins, the CPU twins
//! against PyTorch's formulas written out by hand, and the KD gradient against finite
//! differences of the KD loss.

mod common;
use autorep_kernels::params::{AdamParams, SgdParams};
use autorep_kernels::{cpu, launch, Gpu, GpuBuffer};
use common::{gpu, rand_vec, rel_err};

const SIZES: &[usize] = &[1, 7, 33, 1000, 70_001];
const STEPS: u64 = 5;

fn read(g: &Gpu, b: &GpuBuffer, n: usize) -> Vec<f32> {
    g.read_f32(b, 0, n).unwrap()
}

fn assert_close(got: &[f32], want: &[f32], tol: f32, what: &str) {
    let e = rel_err(got, want);
    assert!(e <= tol, "{what}: rel err {e} > {tol}");
}

fn sgd_configs() -> Vec<SgdParams> {
    let base = SgdParams {
        momentum: 0.9,
        ..SgdParams::new(0.05)
    };
    vec![
        SgdParams::new(0.1),
        SgdParams {
            weight_decay: 5e-4,
            grad_scale: 0.5,
            ..SgdParams::new(0.1)
        },
        base,
        SgdParams {
            dampening: 0.1,
            weight_decay: 1e-2,
            ..base
        },
        SgdParams {
            nesterov: true,
            weight_decay: 5e-4,
            grad_scale: 0.7,
            ..base
        },
    ]
}

#[test]
fn sgd_steps_track_cpu() {
    let Some(g) = gpu() else { return };
    let amp = no_amp(&g);
    for &n in SIZES {
        for (c, h) in sgd_configs().into_iter().enumerate() {
            let mut param = rand_vec(1, n);
            let mut buf = vec![0f32; n];
            let (bp, bb) = (g.upload(&param).unwrap(), g.upload(&buf).unwrap());
            for t in 0..STEPS {
                let grad = rand_vec(100 + t, n);
                let step = SgdParams { first: t == 0, ..h };
                launch::sgd_step(
                    &g,
                    n,
                    &step,
                    &g.upload(&grad).unwrap(),
                    &bp,
                    Some(&bb),
                    &amp,
                )
                .unwrap();
                cpu::sgd_step(&step, &grad, &mut param, Some(&mut buf), &launch::AMP_NONE);
                let what = format!("sgd config {c} n={n} step {t}");
                assert_close(&read(&g, &bp, n), &param, 1e-5, &format!("{what} param"));
                if h.momentum != 0.0 {
                    assert_close(&read(&g, &bb, n), &buf, 1e-5, &format!("{what} momentum"));
                }
            }
        }
    }
}

#[test]
fn sgd_without_momentum_needs_no_buffer() {
    let Some(g) = gpu() else { return };
    let amp = no_amp(&g);
    let n = 33;
    let (mut param, grad) = (rand_vec(2, n), rand_vec(3, n));
    let bp = g.upload(&param).unwrap();
    let h = SgdParams {
        weight_decay: 1e-3,
        ..SgdParams::new(0.1)
    };
    launch::sgd_step(&g, n, &h, &g.upload(&grad).unwrap(), &bp, None, &amp).unwrap();
    cpu::sgd_step(&h, &grad, &mut param, None, &launch::AMP_NONE);
    assert_close(&read(&g, &bp, n), &param, 1e-5, "plain sgd");
}

fn adam_configs() -> Vec<AdamParams> {
    let adam = AdamParams {
        weight_decay: 1e-2,
        ..AdamParams::new(1e-2)
    };
    vec![
        AdamParams::new(1e-3),
        adam,
        AdamParams {
            decoupled: true,
            ..adam
        },
        AdamParams {
            decoupled: true,
            grad_scale: 0.25,
            beta1: 0.8,
            beta2: 0.99,
            eps: 1e-6,
            ..adam
        },
    ]
}

#[test]
fn adam_steps_track_cpu() {
    let Some(g) = gpu() else { return };
    let amp = no_amp(&g);
    for &n in SIZES {
        for (c, h) in adam_configs().into_iter().enumerate() {
            let mut param = rand_vec(4, n);
            let (mut m, mut v) = (vec![0f32; n], vec![0f32; n]);
            let bp = g.upload(&param).unwrap();
            let (bm, bv) = (g.upload(&m).unwrap(), g.upload(&v).unwrap());
            for t in 1..=STEPS {
                let grad = rand_vec(200 + t, n);
                let step = h.at_step(t);
                launch::adam_step(&g, n, &step, &g.upload(&grad).unwrap(), &bp, &bm, &bv, &amp)
                    .unwrap();
                cpu::adam_step(&step, &grad, &mut param, &mut m, &mut v, &launch::AMP_NONE);
                let what = format!("adam config {c} n={n} step {t}");
                assert_close(&read(&g, &bp, n), &param, 1e-5, &format!("{what} param"));
                assert_close(&read(&g, &bm, n), &m, 1e-5, &format!("{what} m"));
                assert_close(&read(&g, &bv, n), &v, 1e-5, &format!("{what} v"));
            }
        }
    }
}

#[test]
fn lookahead_sync_matches_cpu() {
    let Some(g) = gpu() else { return };
    let amp = no_amp(&g);
    for &n in SIZES {
        let (mut fast, mut slow) = (rand_vec(5, n), rand_vec(6, n));
        let (bf, bs) = (g.upload(&fast).unwrap(), g.upload(&slow).unwrap());
        launch::lookahead_sync(&g, n, 0.5, 1, &bf, &bs, &amp).unwrap();
        cpu::lookahead_sync(0.5, 1, &mut fast, &mut slow, &launch::AMP_NONE);
        assert_close(
            &read(&g, &bs, n),
            &slow,
            1e-5,
            &format!("lookahead slow n={n}"),
        );
        assert_close(
            &read(&g, &bf, n),
            &fast,
            1e-5,
            &format!("lookahead fast n={n}"),
        );
    }
}

#[test]
fn sum_squares_matches_cpu_and_is_deterministic() {
    let Some(g) = gpu() else { return };
    for &n in SIZES.iter().chain(&[300_007]) {
        let x = rand_vec(7, n);
        let bx = g.upload(&x).unwrap();
        let scratch = g
            .alloc(launch::sum_squares_scratch_len(n) as u64 * 4)
            .unwrap();
        let out = g.alloc(4).unwrap();
        launch::sum_squares(&g, n, &bx, &scratch, &out).unwrap();
        let got = read(&g, &out, 1)[0];
        let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        let want = cpu::sum_squares(&x64) as f32;
        assert_close(&[got], &[want], 1e-4, &format!("sum_squares n={n} vs f64"));
        assert_close(
            &[cpu::sum_squares(&x)],
            &[want],
            1e-4,
            &format!("f32 twin n={n}"),
        );
        launch::sum_squares(&g, n, &bx, &scratch, &out).unwrap();
        assert_eq!(
            read(&g, &out, 1)[0].to_bits(),
            got.to_bits(),
            "sum_squares n={n} not repeatable"
        );
    }
    let out = g.upload(&[7f32]).unwrap();
    let dummy = g.alloc(4).unwrap();
    launch::sum_squares(&g, 0, &dummy, &dummy, &out).unwrap();
    assert_eq!(read(&g, &out, 1)[0], 0.0, "empty sum");
}

/// One step of each optimizer from a non-trivial state, against PyTorch's update rules written
/// out element by element in f64.
#[test]
fn single_steps_match_pytorch_formulas() {
    let p0 = [0.5f32, -1.25, 2.0, 0.0, -0.3];
    let grad = [0.1f32, -0.2, 0.3, 0.05, -1.5];
    let m0 = [0.01f32, 0.02, -0.03, 0.0, 0.4];
    let v0 = [1e-4f32, 4e-4, 9e-4, 0.0, 2e-2];
    let d = |x: f32| x as f64;

    // Adam / AdamW at step t = 3 with clipping scale 0.8; hyperparameters in f64 as PyTorch
    // holds them.
    let (lr, b1, b2, eps, wd, scale, t) = (0.01f64, 0.9f64, 0.999f64, 1e-8, 0.05, 0.8, 3);
    for decoupled in [false, true] {
        let h = AdamParams {
            lr: lr as f32,
            beta1: b1 as f32,
            beta2: b2 as f32,
            eps: eps as f32,
            weight_decay: wd as f32,
            decoupled,
            grad_scale: scale as f32,
            ..AdamParams::new(0.0)
        }
        .at_step(t);
        let (mut want, mut want_m, mut want_v) = ([0f32; 5], [0f32; 5], [0f32; 5]);
        for i in 0..5 {
            let (mut p, mut g) = (d(p0[i]), d(grad[i]) * scale);
            if decoupled {
                p *= 1.0 - lr * wd;
            } else {
                g += wd * p;
            }
            let m = b1 * d(m0[i]) + (1.0 - b1) * g;
            let v = b2 * d(v0[i]) + (1.0 - b2) * g * g;
            let (bc1, bc2) = (1.0 - b1.powi(t as i32), 1.0 - b2.powi(t as i32));
            want[i] = (p - lr / bc1 * m / ((v / bc2).sqrt() + eps)) as f32;
            (want_m[i], want_v[i]) = (m as f32, v as f32);
        }
        let (mut p, mut m, mut v) = (p0, m0, v0);
        cpu::adam_step(&h, &grad, &mut p, &mut m, &mut v, &launch::AMP_NONE);
        assert_close(&p, &want, 1e-6, &format!("cpu adam decoupled={decoupled}"));
        assert_close(&m, &want_m, 1e-6, "cpu adam m");
        assert_close(&v, &want_v, 1e-6, "cpu adam v");
        if let Some(g) = gpu() {
            let (bp, bm, bv) = (
                g.upload(&p0).unwrap(),
                g.upload(&m0).unwrap(),
                g.upload(&v0).unwrap(),
            );
            launch::adam_step(
                &g,
                5,
                &h,
                &g.upload(&grad).unwrap(),
                &bp,
                &bm,
                &bv,
                &no_amp(&g),
            )
            .unwrap();
            assert_close(
                &read(&g, &bp, 5),
                &want,
                1e-6,
                &format!("gpu adam decoupled={decoupled}"),
            );
        }
    }

    // SGD with momentum, dampening and weight decay on a later step, plain and Nesterov.
    let (lr, mu, damp, wd, scale) = (0.1f64, 0.9f64, 0.1f64, 1e-2f64, 0.5f64);
    for nesterov in [false, true] {
        let h = SgdParams {
            lr: lr as f32,
            momentum: mu as f32,
            dampening: damp as f32,
            weight_decay: wd as f32,
            nesterov,
            first: false,
            grad_scale: scale as f32,
        };
        let mut want = [0f32; 5];
        let mut want_buf = [0f32; 5];
        for i in 0..5 {
            let g = d(grad[i]) * scale + wd * d(p0[i]);
            let buf = mu * d(m0[i]) + (1.0 - damp) * g;
            let step = if nesterov { g + mu * buf } else { buf };
            want[i] = (d(p0[i]) - lr * step) as f32;
            want_buf[i] = buf as f32;
        }
        let (mut p, mut buf) = (p0, m0);
        cpu::sgd_step(&h, &grad, &mut p, Some(&mut buf), &launch::AMP_NONE);
        assert_close(&p, &want, 1e-6, &format!("cpu sgd nesterov={nesterov}"));
        assert_close(
            &buf,
            &want_buf,
            1e-6,
            &format!("cpu sgd buffer nesterov={nesterov}"),
        );
        if let Some(g) = gpu() {
            let (bp, bb) = (g.upload(&p0).unwrap(), g.upload(&m0).unwrap());
            launch::sgd_step(
                &g,
                5,
                &h,
                &g.upload(&grad).unwrap(),
                &bp,
                Some(&bb),
                &no_amp(&g),
            )
            .unwrap();
            assert_close(
                &read(&g, &bp, 5),
                &want,
                1e-6,
                &format!("gpu sgd nesterov={nesterov}"),
            );
            assert_close(
                &read(&g, &bb, 5),
                &want_buf,
                1e-6,
                &format!("gpu sgd buffer nesterov={nesterov}"),
            );
        }
    }

    // The first momentum step seeds the buffer with the gradient, ignoring dampening.
    let h = SgdParams {
        momentum: 0.9,
        dampening: 0.5,
        ..SgdParams::new(0.1)
    };
    let (mut p, mut buf) = (p0, [123f32; 5]);
    cpu::sgd_step(&h, &grad, &mut p, Some(&mut buf), &launch::AMP_NONE);
    assert_eq!(buf, grad);
    let want: Vec<f32> = p0
        .iter()
        .zip(&grad)
        .map(|(&w, &g)| (d(w) - 0.1 * d(g)) as f32)
        .collect();
    assert_close(&p, &want, 1e-6, "first sgd step");
}

#[test]
fn adam_bias_corrections_follow_the_step() {
    let h = AdamParams::new(1e-3);
    assert!((h.bc1 - 0.1).abs() < 1e-7 && (h.bc2 - 1e-3).abs() < 1e-9);
    let h10 = h.at_step(10);
    assert!((h10.bc1 as f64 - (1.0 - 0.9f64.powi(10))).abs() < 1e-7);
    assert!((h10.bc2 as f64 - (1.0 - 0.999f64.powi(10))).abs() < 1e-9);
}

#[test]
fn kd_matches_cpu() {
    let Some(g) = gpu() else { return };
    for &(rows, classes, temp) in &[
        (1, 2, 1.0),
        (7, 10, 4.0),
        (33, 100, 4.0),
        (129, 7, 2.0),
        (7, 1000, 1.0),
    ] {
        let s: Vec<f32> = rand_vec(8, rows * classes)
            .iter()
            .map(|v| v * 5.0)
            .collect();
        let t: Vec<f32> = rand_vec(9, rows * classes)
            .iter()
            .map(|v| v * 5.0)
            .collect();
        let gl = rand_vec(10, rows);
        let (bs, bt, bg) = (
            g.upload(&s).unwrap(),
            g.upload(&t).unwrap(),
            g.upload(&gl).unwrap(),
        );
        let loss = g.alloc(rows as u64 * 4).unwrap();
        let gs = g.alloc((rows * classes) as u64 * 4).unwrap();
        launch::kd_forward(&g, rows, classes, temp, &bs, &bt, &loss).unwrap();
        launch::kd_backward(&g, rows, classes, temp, &bs, &bt, &bg, &gs).unwrap();
        let (mut wl, mut wg) = (vec![0f32; rows], vec![0f32; rows * classes]);
        cpu::kd_forward(&s, &t, classes, temp, &mut wl);
        cpu::kd_backward(&s, &t, &gl, classes, temp, &mut wg);
        let what = format!("kd {rows}x{classes} T={temp}");
        assert!(wl.iter().all(|&l| l > 0.0), "{what}: KL must be positive");
        assert_close(
            &read(&g, &loss, rows),
            &wl,
            1e-5,
            &format!("{what} forward"),
        );
        assert_close(
            &read(&g, &gs, rows * classes),
            &wg,
            1e-5,
            &format!("{what} backward"),
        );
    }
}

#[test]
fn kd_loss_is_zero_when_student_equals_teacher() {
    let (rows, classes, temp) = (33, 100, 4.0f32);
    let s: Vec<f32> = rand_vec(11, rows * classes)
        .iter()
        .map(|v| v * 5.0)
        .collect();
    let mut loss = vec![1f32; rows];
    cpu::kd_forward(&s, &s, classes, temp, &mut loss);
    assert!(loss.iter().all(|&l| l == 0.0), "cpu: {loss:?}");
    let mut grad = vec![1f32; rows * classes];
    cpu::kd_backward(&s, &s, &vec![1.0; rows], classes, temp, &mut grad);
    assert!(grad.iter().all(|&v| v == 0.0), "cpu gradient");
    if let Some(g) = gpu() {
        let bs = g.upload(&s).unwrap();
        let out = g.upload(&vec![1f32; rows]).unwrap();
        launch::kd_forward(&g, rows, classes, temp, &bs, &bs, &out).unwrap();
        let got = read(&g, &out, rows);
        assert!(got.iter().all(|&l| l.abs() <= 1e-6), "gpu: {got:?}");
    }
}

/// d/ds Σ_r g_r·loss_r by central differences in f64 against kd_backward.
#[test]
fn kd_backward_matches_finite_differences() {
    let (rows, classes) = (3, 7);
    for temp in [1.0f64, 4.0] {
        let s: Vec<f64> = rand_vec(12, rows * classes)
            .iter()
            .map(|&v| v as f64 * 3.0)
            .collect();
        let t: Vec<f64> = rand_vec(13, rows * classes)
            .iter()
            .map(|&v| v as f64 * 3.0)
            .collect();
        let gl: Vec<f64> = rand_vec(14, rows).iter().map(|&v| v as f64).collect();
        let objective = |s: &[f64]| {
            let mut loss = vec![0.0; rows];
            cpu::kd_forward(s, &t, classes, temp, &mut loss);
            loss.iter().zip(&gl).map(|(l, g)| l * g).sum::<f64>()
        };
        let mut analytic = vec![0.0; rows * classes];
        cpu::kd_backward(&s, &t, &gl, classes, temp, &mut analytic);
        let h = 1e-5;
        for i in 0..s.len() {
            let (mut up, mut down) = (s.clone(), s.clone());
            up[i] += h;
            down[i] -= h;
            let numeric = (objective(&up) - objective(&down)) / (2.0 * h);
            let err = (numeric - analytic[i]).abs();
            assert!(
                err <= 1e-7 * (1.0 + analytic[i].abs()),
                "T={temp} i={i}: {numeric} vs {}",
                analytic[i]
            );
        }
    }
}

/// The loss scaler's neutral state: unscaled gradients, no step skipped.
fn no_amp(g: &autorep_kernels::Gpu) -> autorep_kernels::GpuBuffer {
    g.upload(&launch::AMP_NONE).unwrap()
}

/// The updates under a loss scaler against their twins, both reading the same scaler states:
/// the first applied step (SGD seeds its momentum, Adam's corrections at t = 1), a flagged step
/// (skipped: nothing moves), then applied steps 1, 2 and 3 (Lookahead syncs on its period 2
/// only: the first sync copies the fast weights, the second moves halfway). Gradients arrive
/// scaled by 1024.
#[test]
fn updates_under_a_loss_scaler_track_cpu() {
    let Some(g) = gpu() else { return };
    let n = 300;
    let state = |found: f32, applied: f32| {
        let mut a = launch::amp_start(1024.0);
        a[2] = found;
        a[4] = applied;
        a
    };
    let states = [
        state(0.0, 0.0),
        state(1.0, 1.0),
        state(0.0, 1.0),
        state(0.0, 2.0),
        state(0.0, 3.0),
    ];
    let sgd = SgdParams {
        momentum: 0.9,
        weight_decay: 1e-3,
        first: false, // the scaler's count decides
        ..SgdParams::new(0.1)
    };
    let adam = AdamParams {
        weight_decay: 1e-2,
        ..AdamParams::new(1e-2)
    };
    let mut p_sgd = rand_vec(7, n);
    let mut buf = vec![0f32; n];
    let mut p_adam = rand_vec(8, n);
    let (mut m, mut v) = (vec![0f32; n], vec![0f32; n]);
    let (mut fast, mut slow) = (rand_vec(9, n), rand_vec(10, n));
    let bs = [&p_sgd, &buf, &p_adam, &m, &v, &fast, &slow].map(|x| g.upload(x).unwrap());
    for (t, amp) in states.iter().enumerate() {
        let grad: Vec<f32> = rand_vec(300 + t as u64, n)
            .iter()
            .map(|x| x * 1024.0)
            .collect();
        let (bg, ba) = (g.upload(&grad).unwrap(), g.upload(amp).unwrap());
        let before = (p_sgd.clone(), p_adam.clone(), fast.clone());
        launch::sgd_step(&g, n, &sgd, &bg, &bs[0], Some(&bs[1]), &ba).unwrap();
        launch::adam_step(&g, n, &adam, &bg, &bs[2], &bs[3], &bs[4], &ba).unwrap();
        launch::lookahead_sync(&g, n, 0.5, 2, &bs[5], &bs[6], &ba).unwrap();
        cpu::sgd_step(&sgd, &grad, &mut p_sgd, Some(&mut buf), amp);
        cpu::adam_step(&adam, &grad, &mut p_adam, &mut m, &mut v, amp);
        cpu::lookahead_sync(0.5, 2, &mut fast, &mut slow, amp);
        if amp[2] != 0.0 {
            let after = (p_sgd.clone(), p_adam.clone(), fast.clone());
            assert_eq!(after, before, "a flagged step moved the parameters");
        }
        for (b, want, what) in [
            (&bs[0], &p_sgd, "sgd param"),
            (&bs[1], &buf, "sgd momentum"),
            (&bs[2], &p_adam, "adam param"),
            (&bs[3], &m, "adam m"),
            (&bs[4], &v, "adam v"),
            (&bs[5], &fast, "lookahead fast"),
            (&bs[6], &slow, "lookahead slow"),
        ] {
            assert_close(&read(&g, b, n), want, 1e-5, &format!("{what}, state {t}"));
        }
    }
}
