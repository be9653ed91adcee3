//! The f16 variants of the kernels against their CPU twins: inputs are rounded to f16 (what
//! the kernel reads), the twin computes in f32, and its output is rounded to f16 where the
//! kernel stores f16. Kernels accumulate in f32 (split passes in f32 planes too), so the only
//! difference left is that final rounding: a few f16 ulps.

mod common;
use autorep_kernels::params::{ConvParams, GateParams, GemmParams, PoolParams};
use autorep_kernels::{cpu, launch, Dtype, Gpu, GpuBuffer, KernelError};
use common::{as_stored, conv_twins, gpu, halves, rand_vec, rel_err};

/// The GPU, where it has SHADER_F16 (lavapipe does); else None with a message.
fn f16_gpu() -> Option<Gpu> {
    let g = gpu()?;
    if !g.report().f16 {
        eprintln!("skipping f16 test: {} has no SHADER_F16", g.report().name);
        return None;
    }
    Some(g)
}

fn up16(g: &Gpu, v: &[f32]) -> GpuBuffer {
    g.upload_f16(v).unwrap()
}

fn out16(g: &Gpu, n: usize) -> GpuBuffer {
    g.alloc_elems(n, Dtype::F16).unwrap()
}

fn read16(g: &Gpu, b: &GpuBuffer, n: usize) -> Vec<f32> {
    g.read_f16(b, 0, n).unwrap()
}

/// The twin's f32 result rounded as the kernel stores it.
fn stored(v: Vec<f32>) -> Vec<f32> {
    as_stored(v, Dtype::F16)
}

/// f16's unit roundoff is 2⁻¹¹ ≈ 4.9e-4 (relative to each value); normwise, a few of those.
const TOL: f32 = 2e-3;

#[test]
fn casts_round_to_nearest_and_widen_exactly() {
    let Some(g) = f16_gpu() else { return };
    let v: Vec<f32> = vec![0.1, -3.33337, 65504.0, 1e-8, 70000.0, -0.0, 2048.5];
    let wide = g.upload(&v).unwrap();
    let narrow = out16(&g, v.len());
    launch::cast(&g, v.len(), 1.0, &wide, &narrow).unwrap();
    let got = read16(&g, &narrow, v.len());
    let want = stored(v.clone());
    // From an odd element too (copies start on 4-byte boundaries).
    assert_eq!(g.read_f16(&narrow, 3, 3).unwrap(), got[3..6]);
    for (i, (a, b)) in got.iter().zip(&want).enumerate() {
        assert!(
            a == b || (a.is_infinite() && b.is_infinite()),
            "{i}: {a} vs {b}"
        );
    }
    // Back to f32 with a scale (the unscaling direction): exact.
    let back = g.alloc(v.len() as u64 * 4).unwrap();
    launch::cast(&g, v.len(), 0.5, &narrow, &back).unwrap();
    let got = g.read_f32(&back, 0, v.len()).unwrap();
    for (a, b) in got.iter().zip(&want) {
        assert!(*a == 0.5 * b || (a.is_infinite() && b.is_infinite()));
    }
}

#[test]
fn an_f32_buffer_bound_as_f16_is_refused() {
    let Some(g) = f16_gpu() else { return };
    let x = up16(&g, &halves(1, 64));
    let wrong = g.alloc(64 * 4).unwrap();
    let out = out16(&g, 64);
    let err = launch::axpby(&g, 64, 1.0, &x, 1.0, &wrong, &out).unwrap_err();
    assert!(
        matches!(err, KernelError::DtypeMismatch { binding: 2, .. }),
        "{err}"
    );
}

#[test]
fn elementwise_in_f16() {
    let Some(g) = f16_gpu() else { return };
    let n = 1000;
    let (x, y) = (halves(2, n), halves(3, n));
    let (bx, by, bo) = (up16(&g, &x), up16(&g, &y), out16(&g, n));
    launch::axpby(&g, n, 0.7, &bx, -1.3, &by, &bo).unwrap();
    let mut want = vec![0.0; n];
    cpu::axpby(0.7, &x, -1.3, &y, &mut want);
    assert!(rel_err(&read16(&g, &bo, n), &stored(want)) < TOL);
    launch::relu(&g, n, &bx, &bo).unwrap();
    let want: Vec<f32> = x.iter().map(|v| v.max(0.0)).collect();
    assert_eq!(read16(&g, &bo, n), want, "relu is exact in f16");
}

#[test]
fn gemm_in_f16_accumulates_in_f32() {
    let Some(g) = f16_gpu() else { return };
    for (m, n, k, ta, tb) in [
        (37, 29, 300, false, false),
        (64, 16, 72, true, false),
        (5, 130, 33, false, true),
    ] {
        let p = GemmParams::dense(m, n, k, ta, tb);
        let (a, b) = (halves(4, m * k), halves(5, k * n));
        let (ba, bb, bc) = (up16(&g, &a), up16(&g, &b), out16(&g, m * n));
        launch::gemm(&g, &p, &ba, &bb, None, &bc).unwrap();
        let mut want = vec![0.0; m * n];
        cpu::gemm(&p, &a, &b, &[], &mut want);
        let e = rel_err(&read16(&g, &bc, m * n), &stored(want));
        assert!(e < TOL, "{m}x{n}x{k}: {e}");
    }
}

#[test]
fn convolution_passes_in_f16() {
    let Some(g) = f16_gpu() else { return };
    for p in [
        ConvParams {
            n: 2,
            cin: 3,
            h: 9,
            w: 9,
            cout: 8,
            kh: 3,
            kw: 3,
            stride: 1,
            pad: 1,
        },
        ConvParams {
            n: 3,
            cin: 16,
            h: 8,
            w: 8,
            cout: 32,
            kh: 1,
            kw: 1,
            stride: 2,
            pad: 0,
        },
    ] {
        let (x, w, dy) = (
            halves(6, p.x_len()),
            halves(7, p.w_len()),
            halves(8, p.y_len()),
        );
        let (bx, bw, bdy) = (up16(&g, &x), up16(&g, &w), up16(&g, &dy));
        let [y, dx, dw] = conv_twins(&p, &x, &w, &dy).map(stored);

        let by = out16(&g, p.y_len());
        launch::conv2d_forward(&g, &p, &bx, &bw, &by).unwrap();
        assert!(
            rel_err(&read16(&g, &by, p.y_len()), &y) < TOL,
            "{p:?} forward"
        );

        let bdx = out16(&g, p.x_len());
        launch::conv2d_input_grad(&g, &p, &bdy, &bw, &bdx).unwrap();
        assert!(rel_err(&read16(&g, &bdx, p.x_len()), &dx) < TOL, "{p:?} dx");

        // Split over the batch (the hardware path) as well as whole.
        for split in [0, 1] {
            g.set_split_target_for_tests(split);
            let (_, scratch_len) = launch::conv2d_weight_grad_splits(&g, &p, Dtype::F16).unwrap();
            let scratch = g.alloc_elems(scratch_len.max(1), Dtype::F32).unwrap();
            let bdw = out16(&g, p.w_len());
            launch::conv2d_weight_grad(&g, &p, &bx, &bdy, &scratch, &bdw).unwrap();
            let e = rel_err(&read16(&g, &bdw, p.w_len()), &dw);
            assert!(e < 2.0 * TOL, "{p:?} dw (split target {split}): {e}");
        }
    }
}

/// An f16 pass's split-K partial sums stay f32 until the one rounding into its output: partial
/// weight gradients of +2049 (not an f16: it would round to 2048) and −2048 sum to 1, where
/// f16 planes would give 0. The same planes serve the forward and input-gradient splits.
#[test]
fn split_k_partial_sums_of_an_f16_pass_are_f32() {
    let Some(g) = f16_gpu() else { return };
    // A hardware GPU's split target would cut this weight gradient finer (its partials then
    // all exact in f16); the rule alone makes two splits.
    g.set_split_target_for_tests(0);
    // 1x1, one channel in and out: dw = Σ dy·x over N·H·W = 4,096, by the rule two splits of
    // 2,048 (the first two images, then the last two).
    let p = ConvParams {
        n: 4,
        cin: 1,
        h: 32,
        w: 32,
        cout: 1,
        kh: 1,
        kw: 1,
        stride: 1,
        pad: 0,
    };
    let (splits, scratch_len) = launch::conv2d_weight_grad_splits(&g, &p, Dtype::F16).unwrap();
    assert_eq!(
        splits, 2,
        "the rule's split of this weight gradient changed"
    );
    let x = vec![1.0f32; 4096];
    let mut dy = vec![1.0f32; 2048];
    dy[0] = 2.0;
    dy.extend(vec![-1.0f32; 2048]);
    let scratch = g.alloc_elems(scratch_len, Dtype::F32).unwrap();
    let bdw = out16(&g, 1);
    launch::conv2d_weight_grad(&g, &p, &up16(&g, &x), &up16(&g, &dy), &scratch, &bdw).unwrap();
    assert_eq!(read16(&g, &bdw, 1), [1.0]);
    // f16 scratch is refused, not silently used.
    let e = launch::conv2d_weight_grad(
        &g,
        &p,
        &up16(&g, &x),
        &up16(&g, &dy),
        &out16(&g, scratch_len),
        &bdw,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("f32 partial sums"), "{e}");
}

#[test]
fn gate_and_pooling_in_f16_keep_their_f32_parameters() {
    let Some(g) = f16_gpu() else { return };
    let p = GateParams {
        batch: 3,
        channels: 4,
        hw: 25,
        channel_wise: false,
        s1: 1.0,
        s2: 0.1,
        clip2: 0.0,
    };
    let x = halves(9, p.n());
    let mask: Vec<f32> = (0..p.gates()).map(|i| (i % 3 == 0) as u8 as f32).collect();
    let coef = rand_vec(10, 3 * p.channels);
    let (bx, by) = (up16(&g, &x), out16(&g, p.n()));
    let (bm, bc) = (g.upload(&mask).unwrap(), g.upload(&coef).unwrap());
    launch::gate_forward(&g, &p, &bx, &bm, &bc, &by).unwrap();
    let mut want = vec![0.0; p.n()];
    cpu::gate_forward(&p, &x, &mask, &coef, &mut want);
    assert!(rel_err(&read16(&g, &by, p.n()), &stored(want)) < TOL);

    let pp = PoolParams {
        n: 2,
        c: 3,
        h: 8,
        w: 8,
        k: 3,
        stride: 2,
        pad: 1,
    };
    let x = halves(11, pp.x_len());
    let (bx, by) = (up16(&g, &x), out16(&g, pp.y_len()));
    launch::avg_pool2d_forward(&g, &pp, &bx, &by).unwrap();
    let mut want = vec![0.0; pp.y_len()];
    cpu::avg_pool2d_forward(&pp, &x, &mut want);
    assert!(rel_err(&read16(&g, &by, pp.y_len()), &stored(want)) < TOL);
}

#[test]
fn loss_scaler_skips_and_halves_on_an_inf_then_grows() {
    let Some(g) = gpu() else { return };
    let amp = g.upload(&launch::amp_start(1024.0)).unwrap();
    let mut grads = vec![0.5f32; 300];
    grads[257] = f32::INFINITY;
    let bg = g.upload(&grads).unwrap();
    let (param, w0) = (g.upload(&vec![1.0f32; 300]).unwrap(), vec![1.0f32; 300]);
    let sgd = autorep_kernels::params::SgdParams::new(0.1);
    launch::amp_check_finite(&g, 300, &bg, &amp).unwrap();
    launch::sgd_step(&g, 300, &sgd, &bg, &param, None, &amp).unwrap();
    launch::amp_update(&g, 3, &amp).unwrap();
    assert_eq!(
        g.read_f32(&param, 0, 300).unwrap(),
        w0,
        "the step was skipped"
    );
    assert_eq!(
        g.read_f32(&amp, 0, 6).unwrap(),
        [512.0, 1.0 / 512.0, 0.0, 0.0, 0.0, 1.0]
    );

    // Clean steps: the update unscales (0.5 · 512 / 512), and the scale doubles after 3.
    let clean = g.upload(&vec![0.5f32 * 512.0; 300]).unwrap();
    let mut twin = [512.0f32, 1.0 / 512.0, 0.0, 0.0, 0.0, 1.0];
    for _ in 0..3 {
        launch::amp_check_finite(&g, 300, &clean, &amp).unwrap();
        launch::amp_update(&g, 3, &amp).unwrap();
        cpu::amp_check_finite(&[0.5 * 512.0], &mut twin);
        cpu::amp_update(3, &mut twin);
    }
    // Three applied steps counted, the skipped one not.
    let after = [1024.0, 1.0 / 1024.0, 0.0, 0.0, 3.0, 1.0];
    assert_eq!(g.read_f32(&amp, 0, 6).unwrap(), after);
    assert_eq!(twin, after);
    // The scale stops at 2^126 (its inverse the least normal f32; GradScaler stops where the
    // growth would overflow): the count restarts.
    let top = 2f32.powi(126);
    let mut twin = [top, 1.0 / top, 0.0, 2.0, 9.0, 1.0];
    let amp = g.upload(&twin).unwrap();
    launch::amp_update(&g, 3, &amp).unwrap();
    cpu::amp_update(3, &mut twin);
    let after = [top, 1.0 / top, 0.0, 0.0, 10.0, 1.0];
    assert_eq!(g.read_f32(&amp, 0, 6).unwrap(), after);
    assert_eq!(twin, after);
    let amp = g.upload(&launch::amp_start(512.0)).unwrap();
    launch::sgd_step(&g, 300, &sgd, &clean, &param, None, &amp).unwrap();
    let w = g.read_f32(&param, 0, 300).unwrap();
    assert!((w[0] - (1.0 - 0.1 * 0.5)).abs() < 1e-6, "{}", w[0]);
}
