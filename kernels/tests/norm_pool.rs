//! Batch norm and pooling: GPU launchers against their CPU twins (in f32 and in f16), the
//! running statistics against PyTorch's update rule, and every backward twin against finite
//! differences in f64.

mod common;
use autorep_kernels::{cpu, launch, params::BnShape, params::PoolParams, Gpu, GpuBuffer};
use common::{as_stored, assert_grad, dtypes, gpu, numeric_grad, rand_vec, rel_err, tolerance};
use rand::{Rng, SeedableRng};

const BN_SHAPES: &[(usize, usize, usize)] = &[
    (3, 7, 45),
    (1, 1, 1),
    (2, 5, 1),
    (4, 3, 331),
    (1, 13, 7),
    (2, 3, 700),
    // Channels of more than 8192 elements split over workgroups (parts of 6001, 6001, 6000).
    (2, 3, 9001),
];
const POOL_SHAPES: &[(usize, usize, usize, usize)] = &[
    (3, 7, 9, 5),
    (1, 1, 1, 1),
    (2, 3, 8, 8),
    (1, 5, 7, 11),
    (2, 2, 2, 3),
];

fn up(g: &Gpu, v: &[f32]) -> GpuBuffer {
    g.upload(v).unwrap()
}

fn read(g: &Gpu, b: &GpuBuffer, n: usize) -> Vec<f32> {
    g.read_f32(b, 0, n).unwrap()
}

fn assert_close(got: &[f32], want: &[f32], tol: f32, what: &str) {
    let e = rel_err(got, want);
    assert!(e <= tol, "{what}: rel err {e} > {tol}");
}

/// Data with a large common offset, so a one-pass variance would fail the tolerance.
fn offset_vec(seed: u64, n: usize, offset: f32) -> Vec<f32> {
    rand_vec(seed, n).iter().map(|v| v * 2.0 + offset).collect()
}

fn positive_vec(seed: u64, n: usize) -> Vec<f32> {
    rand_vec(seed, n).iter().map(|v| v.abs() + 0.5).collect()
}

/// An activation buffer of `dtype` against the twin's f32 values, rounded as the kernel stores
/// them.
fn act_close(g: &Gpu, b: &GpuBuffer, want: &[f32], tol: f32, what: &str) {
    let dtype = b.dtype();
    let got = g.read_values(b, 0, want.len()).unwrap();
    let want = as_stored(want.to_vec(), dtype);
    assert_close(
        &got,
        &want,
        tolerance(dtype, tol),
        &format!("{what} {dtype:?}"),
    );
}

/// Statistics, parameters and their gradients stay f32 in both variants; activations and
/// their gradients are of the variant's type.
#[test]
fn bn_kernels_match_cpu() {
    let Some(g) = gpu() else { return };
    for dtype in dtypes(&g) {
        bn_kernels_match_cpu_in(g.clone(), dtype);
    }
}

fn bn_kernels_match_cpu_in(g: Gpu, dtype: autorep_kernels::Dtype) {
    let eps = 1e-5;
    let upa = |v: &[f32]| g.upload_as(v, dtype).unwrap();
    for &(n, channels, hw) in BN_SHAPES {
        let s = BnShape { n, channels, hw };
        let what = |k: &str| format!("{k} {n}x{channels}x{hw}");
        let (len, c) = (s.len(), channels);
        let x = as_stored(offset_vec(1, len, 3.0), dtype);
        let dy = as_stored(rand_vec(2, len), dtype);
        let (gamma, beta) = (rand_vec(3, c), rand_vec(4, c));
        let (bx, bdy, bg, bb) = (upa(&x), upa(&dy), up(&g, &gamma), up(&g, &beta));

        let (bmean, bvar) = (
            g.alloc(c as u64 * 4).unwrap(),
            g.alloc(c as u64 * 4).unwrap(),
        );
        launch::bn_stats(&g, s, &bx, &bmean, &bvar).unwrap();
        let (mut mean, mut var) = (vec![0f32; c], vec![0f32; c]);
        cpu::bn_stats(s, &x, &mut mean, &mut var);
        assert_close(&read(&g, &bmean, c), &mean, 1e-4, &what("bn_stats mean"));
        assert_close(&read(&g, &bvar, c), &var, 1e-4, &what("bn_stats var"));
        // Later kernels read the CPU statistics so each comparison isolates one kernel.
        let (bmean, bvar) = (up(&g, &mean), up(&g, &var));

        let (rm0, rv0) = (rand_vec(5, c), positive_vec(6, c));
        let (brm, brv) = (up(&g, &rm0), up(&g, &rv0));
        launch::bn_update_running(&g, c, s.count(), 0.1, &bmean, &bvar, &brm, &brv).unwrap();
        let (mut rm, mut rv) = (rm0.clone(), rv0.clone());
        cpu::bn_update_running(c, s.count(), 0.1, &mean, &var, &mut rm, &mut rv);
        assert_close(
            &read(&g, &brm, c),
            &rm,
            1e-5,
            &what("bn_update_running mean"),
        );
        assert_close(
            &read(&g, &brv, c),
            &rv,
            1e-5,
            &what("bn_update_running var"),
        );

        let by = g.alloc_elems(len, dtype).unwrap();
        let mut y = vec![0f32; len];
        for affine in [true, false] {
            let (ga, ca) = (
                affine.then_some((&bg, &bb)),
                affine.then_some((&gamma[..], &beta[..])),
            );
            launch::bn_forward(&g, s, eps, &bx, &bmean, &bvar, ga, &by).unwrap();
            cpu::bn_forward(s, eps, &x, &mean, &var, ca, &mut y);
            act_close(
                &g,
                &by,
                &y,
                1e-5,
                &what(&format!("bn_forward affine={affine}")),
            );
        }

        let (bdg, bdb) = (
            g.alloc(c as u64 * 4).unwrap(),
            g.alloc(c as u64 * 4).unwrap(),
        );
        let bdx = g.alloc_elems(len, dtype).unwrap();
        let (mut dg, mut db, mut dx) = (vec![0f32; c], vec![0f32; c], vec![0f32; len]);
        launch::bn_backward_reduce(&g, s, eps, &bx, &bmean, &bvar, &bdy, &bdg, &bdb).unwrap();
        cpu::bn_backward_reduce(s, eps, &x, &mean, &var, &dy, &mut dg, &mut db);
        assert_close(
            &read(&g, &bdg, c),
            &dg,
            1e-4,
            &what("bn_backward_reduce dgamma"),
        );
        assert_close(
            &read(&g, &bdb, c),
            &db,
            1e-4,
            &what("bn_backward_reduce dbeta"),
        );
        let (bdg, bdb) = (up(&g, &dg), up(&g, &db));
        for affine in [true, false] {
            let (ga, ca) = (affine.then_some(&bg), affine.then_some(&gamma[..]));
            launch::bn_backward_input(&g, s, eps, &bx, &bmean, &bvar, ga, &bdy, &bdg, &bdb, &bdx)
                .unwrap();
            cpu::bn_backward_input(s, eps, &x, &mean, &var, ca, &dy, &dg, &db, &mut dx);
            let what_dx = what(&format!("bn_backward_input affine={affine}"));
            act_close(&g, &bdx, &dx, 1e-5, &what_dx);
            launch::bn_backward_input_eval(&g, s, eps, &up(&g, &rv), ga, &bdy, &bdx).unwrap();
            cpu::bn_backward_input_eval(s, eps, &rv, ca, &dy, &mut dx);
            let what_dx = what(&format!("bn_backward_input_eval affine={affine}"));
            act_close(&g, &bdx, &dx, 1e-5, &what_dx);
        }

        // The fused pair end to end, against the fused CPU twin.
        let (bdg2, bdb2) = (
            g.alloc(c as u64 * 4).unwrap(),
            g.alloc(c as u64 * 4).unwrap(),
        );
        launch::bn_backward(
            &g,
            s,
            eps,
            &bx,
            &bmean,
            &bvar,
            Some(&bg),
            &bdy,
            &bdg2,
            &bdb2,
            &bdx,
        )
        .unwrap();
        cpu::bn_backward(
            s,
            eps,
            &x,
            &mean,
            &var,
            Some(&gamma),
            &dy,
            &mut dg,
            &mut db,
            &mut dx,
        );
        act_close(&g, &bdx, &dx, 1e-4, &what("bn_backward dx"));
        assert_close(&read(&g, &bdg2, c), &dg, 1e-4, &what("bn_backward dgamma"));
    }
}

/// Three training steps of BatchNorm2d(momentum=0.1, eps=1e-5) from the default running
/// statistics (mean 0, var 1), checked against torch.nn.BatchNorm2d's documented rule computed
/// here in f64: running = (1 − momentum)·running + momentum·batch, with the unbiased batch
/// variance; then the eval-mode output over the running statistics.
#[test]
fn bn_running_stats_follow_pytorch_rule() {
    let (n, c, hw) = (4, 3, 10);
    let s = BnShape { n, channels: c, hw };
    let (momentum, eps) = (0.1f64, 1e-5f64);
    let batches: Vec<Vec<f32>> = (0..3)
        .map(|b| offset_vec(10 + b, s.len(), b as f32 - 1.0))
        .collect();

    let (mut want_mean, mut want_var) = (vec![0f64; c], vec![1f64; c]);
    for x in &batches {
        for ch in 0..c {
            let vals: Vec<f64> = (0..n)
                .flat_map(|i| (0..hw).map(move |j| (i * c + ch) * hw + j))
                .map(|i| x[i] as f64)
                .collect();
            let m = vals.iter().sum::<f64>() / vals.len() as f64;
            let unbiased =
                vals.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (vals.len() - 1) as f64;
            want_mean[ch] = (1.0 - momentum) * want_mean[ch] + momentum * m;
            want_var[ch] = (1.0 - momentum) * want_var[ch] + momentum * unbiased;
        }
    }
    let to32 = |v: &[f64]| v.iter().map(|&v| v as f32).collect::<Vec<_>>();
    let (want_mean32, want_var32) = (to32(&want_mean), to32(&want_var));
    let probe = &batches[0];
    let want_eval: Vec<f32> = (0..s.len())
        .map(|i| {
            let ch = (i / hw) % c;
            ((probe[i] as f64 - want_mean[ch]) / (want_var[ch] + eps).sqrt()) as f32
        })
        .collect();

    // CPU twin.
    let (mut rm, mut rv) = (vec![0f32; c], vec![1f32; c]);
    let (mut mean, mut var) = (vec![0f32; c], vec![0f32; c]);
    for x in &batches {
        cpu::bn_stats(s, x, &mut mean, &mut var);
        cpu::bn_update_running(c, s.count(), momentum as f32, &mean, &var, &mut rm, &mut rv);
    }
    assert_close(&rm, &want_mean32, 1e-5, "cpu running mean");
    assert_close(&rv, &want_var32, 1e-5, "cpu running var");
    let mut y = vec![0f32; s.len()];
    cpu::bn_forward(s, eps as f32, probe, &rm, &rv, None, &mut y);
    assert_close(&y, &want_eval, 1e-5, "cpu eval forward");

    // GPU.
    let Some(g) = gpu() else { return };
    let (brm, brv) = (up(&g, &vec![0f32; c]), up(&g, &vec![1f32; c]));
    let (bmean, bvar) = (
        g.alloc(c as u64 * 4).unwrap(),
        g.alloc(c as u64 * 4).unwrap(),
    );
    for x in &batches {
        launch::bn_stats(&g, s, &up(&g, x), &bmean, &bvar).unwrap();
        launch::bn_update_running(&g, c, s.count(), momentum as f32, &bmean, &bvar, &brm, &brv)
            .unwrap();
    }
    assert_close(&read(&g, &brm, c), &want_mean32, 1e-5, "gpu running mean");
    assert_close(&read(&g, &brv, c), &want_var32, 1e-5, "gpu running var");
    let by = g.alloc(s.len() as u64 * 4).unwrap();
    launch::bn_forward(&g, s, eps as f32, &up(&g, probe), &brm, &brv, None, &by).unwrap();
    assert_close(
        &read(&g, &by, s.len()),
        &want_eval,
        1e-5,
        "gpu eval forward",
    );
}

fn pool_cases() -> Vec<PoolParams> {
    let mut out = Vec::new();
    for &(n, c, h, w) in POOL_SHAPES {
        for k in [2, 3] {
            for stride in [1, 2] {
                for pad in [0, 1] {
                    let p = PoolParams {
                        n,
                        c,
                        h,
                        w,
                        k,
                        stride,
                        pad,
                    };
                    if p.is_valid() {
                        out.push(p);
                    }
                }
            }
        }
    }
    out
}

#[test]
fn pool_kernels_match_cpu() {
    let Some(g) = gpu() else { return };
    let cases = pool_cases();
    assert!(cases.len() > 30, "too few pooling cases: {}", cases.len());
    assert!(
        cases.iter().any(|p| p.h == 1 && p.w == 1),
        "the 1x1 input must be covered"
    );
    for (dtype, p) in dtypes(&g)
        .into_iter()
        .flat_map(|d| cases.iter().map(move |p| (d, p)))
    {
        let (xl, yl) = (p.x_len(), p.y_len());
        let x = as_stored(rand_vec(20, xl), dtype);
        let dy = as_stored(rand_vec(21, yl), dtype);
        let upa = |v: &[f32]| g.upload_as(v, dtype).unwrap();
        let (bx, bdy) = (upa(&x), upa(&dy));
        let (by, bidx) = (
            g.alloc_elems(yl, dtype).unwrap(),
            g.alloc(yl as u64 * 4).unwrap(),
        );
        let bdx = g.alloc_elems(xl, dtype).unwrap();
        let (mut y, mut idx, mut dx) = (vec![0f32; yl], vec![0u32; yl], vec![0f32; xl]);

        launch::avg_pool2d_forward(&g, p, &bx, &by).unwrap();
        cpu::avg_pool2d_forward(p, &x, &mut y);
        act_close(&g, &by, &y, 1e-5, &format!("avg_pool2d_forward {p:?}"));
        launch::avg_pool2d_backward(&g, p, &bdy, &bdx).unwrap();
        cpu::avg_pool2d_backward(p, &dy, &mut dx);
        act_close(&g, &bdx, &dx, 1e-5, &format!("avg_pool2d_backward {p:?}"));

        launch::max_pool2d_forward(&g, p, &bx, &by, &bidx).unwrap();
        cpu::max_pool2d_forward(p, &x, &mut y, &mut idx);
        act_close(&g, &by, &y, 1e-5, &format!("max_pool2d_forward {p:?}"));
        assert_eq!(
            g.read_u32(&bidx, 0, yl).unwrap(),
            idx,
            "max_pool2d_forward argmax {p:?}"
        );
        launch::max_pool2d_backward(&g, p, &bdy, &bidx, &bdx).unwrap();
        cpu::max_pool2d_backward(p, &dy, &idx, &mut dx);
        act_close(&g, &bdx, &dx, 1e-5, &format!("max_pool2d_backward {p:?}"));
    }
}

#[test]
fn max_pool_ties_pick_first_and_padding_never_wins() {
    // All-negative input with padding: a zero pad must not win. Equal values everywhere: the
    // first position in row-major window order wins.
    let p = PoolParams {
        n: 1,
        c: 1,
        h: 3,
        w: 3,
        k: 3,
        stride: 2,
        pad: 1,
    };
    let x = vec![-1f32; 9];
    let (mut y, mut idx) = (vec![0f32; p.y_len()], vec![0u32; p.y_len()]);
    cpu::max_pool2d_forward(&p, &x, &mut y, &mut idx);
    assert_eq!(y, vec![-1.0; 4]);
    assert_eq!(idx, vec![0, 1, 3, 4]);
    let Some(g) = gpu() else { return };
    let (by, bidx) = (g.alloc(16).unwrap(), g.alloc(16).unwrap());
    launch::max_pool2d_forward(&g, &p, &up(&g, &x), &by, &bidx).unwrap();
    assert_eq!(read(&g, &by, 4), y);
    assert_eq!(g.read_u32(&bidx, 0, 4).unwrap(), idx);
}

#[test]
fn global_avg_pool_matches_cpu() {
    let Some(g) = gpu() else { return };
    for &(n, c, hw) in &[
        (3, 7, 45),
        (1, 1, 1),
        (2, 5, 16),
        (1, 3, 1000),
        (4, 300, 64),
    ] {
        let (xl, yl) = (n * c * hw, n * c);
        let x = rand_vec(30, xl);
        let dy = rand_vec(31, yl);
        let (by, bdx) = (
            g.alloc(yl as u64 * 4).unwrap(),
            g.alloc(xl as u64 * 4).unwrap(),
        );
        let (mut y, mut dx) = (vec![0f32; yl], vec![0f32; xl]);
        launch::global_avg_pool_forward(&g, n, c, hw, &up(&g, &x), &by).unwrap();
        cpu::global_avg_pool_forward(n, c, hw, &x, &mut y);
        assert_close(
            &read(&g, &by, yl),
            &y,
            1e-4,
            &format!("global_avg_pool_forward {n}x{c}x{hw}"),
        );
        launch::global_avg_pool_backward(&g, n, c, hw, &up(&g, &dy), &bdx).unwrap();
        cpu::global_avg_pool_backward(n, c, hw, &dy, &mut dx);
        assert_close(
            &read(&g, &bdx, xl),
            &dx,
            1e-5,
            &format!("global_avg_pool_backward {n}x{c}x{hw}"),
        );
    }
}

// ---- finite differences in f64 on the CPU twins

fn rand64(seed: u64, n: usize) -> Vec<f64> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(a, b)| a * b).sum()
}

/// Training-mode BatchNorm2d as a function of x, γ, β: batch statistics, then normalise.
fn bn_train(s: BnShape, eps: f64, x: &[f64], gamma: &[f64], beta: &[f64]) -> Vec<f64> {
    let (mut mean, mut var) = (vec![0.0; s.channels], vec![0.0; s.channels]);
    cpu::bn_stats(s, x, &mut mean, &mut var);
    let mut y = vec![0.0; s.len()];
    cpu::bn_forward(s, eps, x, &mean, &var, Some((gamma, beta)), &mut y);
    y
}

#[test]
fn bn_backward_matches_finite_differences() {
    let eps = 1e-5;
    for &(n, channels, hw) in &[(3, 4, 5), (2, 3, 1), (1, 2, 7)] {
        let s = BnShape { n, channels, hw };
        let c = channels;
        let x = rand64(40, s.len());
        let w = rand64(41, s.len());
        let gamma: Vec<f64> = rand64(42, c).iter().map(|v| v + 1.5).collect();
        let beta = rand64(43, c);
        let (mut mean, mut var) = (vec![0.0; c], vec![0.0; c]);
        cpu::bn_stats(s, &x, &mut mean, &mut var);

        // Training mode: dy = w for loss = Σ w ⊙ y.
        let (mut dg, mut db, mut dx) = (vec![0.0; c], vec![0.0; c], vec![0.0; s.len()]);
        cpu::bn_backward(
            s,
            eps,
            &x,
            &mean,
            &var,
            Some(&gamma),
            &w,
            &mut dg,
            &mut db,
            &mut dx,
        );
        let what = format!("bn train {n}x{c}x{hw}");
        assert_grad(
            &dx,
            &numeric_grad(&x, |x| dot(&w, &bn_train(s, eps, x, &gamma, &beta))),
            &format!("{what} dx"),
        );
        assert_grad(
            &dg,
            &numeric_grad(&gamma, |g| dot(&w, &bn_train(s, eps, &x, g, &beta))),
            &format!("{what} dgamma"),
        );
        assert_grad(
            &db,
            &numeric_grad(&beta, |b| dot(&w, &bn_train(s, eps, &x, &gamma, b))),
            &format!("{what} dbeta"),
        );

        // Without affine parameters the input gradient still carries the batch-stat terms.
        cpu::bn_backward(s, eps, &x, &mean, &var, None, &w, &mut dg, &mut db, &mut dx);
        let ones = vec![1.0; c];
        let zeros = vec![0.0; c];
        assert_grad(
            &dx,
            &numeric_grad(&x, |x| dot(&w, &bn_train(s, eps, x, &ones, &zeros))),
            &format!("{what} dx (no affine)"),
        );

        // Evaluation mode: fixed running statistics.
        let rm = rand64(44, c);
        let rv: Vec<f64> = rand64(45, c).iter().map(|v| v.abs() + 0.5).collect();
        let eval = |x: &[f64]| {
            let mut y = vec![0.0; s.len()];
            cpu::bn_forward(s, eps, x, &rm, &rv, Some((&gamma, &beta)), &mut y);
            dot(&w, &y)
        };
        cpu::bn_backward_input_eval(s, eps, &rv, Some(&gamma), &w, &mut dx);
        assert_grad(
            &dx,
            &numeric_grad(&x, eval),
            &format!("bn eval {n}x{c}x{hw} dx"),
        );
        // Its parameter gradients come from the same reduction over the running statistics.
        cpu::bn_backward_reduce(s, eps, &x, &rm, &rv, &w, &mut dg, &mut db);
        let eval_g = |g: &[f64]| {
            let mut y = vec![0.0; s.len()];
            cpu::bn_forward(s, eps, &x, &rm, &rv, Some((g, &beta)), &mut y);
            dot(&w, &y)
        };
        assert_grad(
            &dg,
            &numeric_grad(&gamma, eval_g),
            &format!("bn eval {n}x{c}x{hw} dgamma"),
        );
    }
}

#[test]
fn pool_backward_matches_finite_differences() {
    for p in pool_cases().iter().filter(|p| p.x_len() <= 400) {
        let (xl, yl) = (p.x_len(), p.y_len());
        let w = rand64(50, yl);

        let x = rand64(51, xl);
        let mut dx = vec![0.0; xl];
        cpu::avg_pool2d_backward(p, &w, &mut dx);
        let avg = |x: &[f64]| {
            let mut y = vec![0.0; yl];
            cpu::avg_pool2d_forward(p, x, &mut y);
            dot(&w, &y)
        };
        assert_grad(&dx, &numeric_grad(&x, avg), &format!("avg_pool2d {p:?}"));

        // Distinct values at least 1e-3 apart (≫ h), so no perturbation changes an argmax.
        let mut rng = rand::rngs::StdRng::seed_from_u64(52);
        let mut x: Vec<f64> = (0..xl).map(|i| i as f64 * 1e-3).collect();
        for i in (1..xl).rev() {
            x.swap(i, rng.random_range(0..=i));
        }
        let (mut y, mut idx) = (vec![0.0; yl], vec![0u32; yl]);
        cpu::max_pool2d_forward(p, &x, &mut y, &mut idx);
        cpu::max_pool2d_backward(p, &w, &idx, &mut dx);
        let max = |x: &[f64]| {
            let (mut y, mut idx) = (vec![0.0; yl], vec![0u32; yl]);
            cpu::max_pool2d_forward(p, x, &mut y, &mut idx);
            dot(&w, &y)
        };
        assert_grad(&dx, &numeric_grad(&x, max), &format!("max_pool2d {p:?}"));
    }
}

#[test]
fn global_avg_pool_backward_matches_finite_differences() {
    for &(n, c, hw) in &[(2, 3, 5), (1, 1, 1), (3, 2, 16)] {
        let x = rand64(60, n * c * hw);
        let w = rand64(61, n * c);
        let mut dx = vec![0.0; x.len()];
        cpu::global_avg_pool_backward(n, c, hw, &w, &mut dx);
        let f = |x: &[f64]| {
            let mut y = vec![0.0; n * c];
            cpu::global_avg_pool_forward(n, c, hw, x, &mut y);
            dot(&w, &y)
        };
        assert_grad(
            &dx,
            &numeric_grad(&x, f),
            &format!("global_avg_pool {n}x{c}x{hw}"),
        );
    }
}
