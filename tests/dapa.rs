//! DaPa: the closed forms and the exact-moment solve agree with an independent numerical
//! quadrature of the same objective; the installed gate coefficients follow the clean and
//! faithful recipes; the refit schedule and the input checks behave as the notes say.

use autorep::autorep::dapa::{
    clean_coeffs, erfc, expected_sq_error, faithful_coeffs, fit, moments, norm_cdf, norm_pdf,
    truncated_moments, RefitSchedule, FAITHFUL_SHRINK, FAITHFUL_VAR_MIN,
};
use std::f64::consts::PI;

/// ∫ f(x) N(x; u, v²) dx over u ± 14v by composite 5-point Gauss–Legendre, with a panel edge at
/// the ReLU kink x = 0 so that every panel integrates a smooth function.
fn gauss_expect(u: f64, v: f64, f: impl Fn(f64) -> f64) -> f64 {
    const NODES: [f64; 5] = [
        -0.906_179_845_938_664,
        -0.538_469_310_105_683_1,
        0.0,
        0.538_469_310_105_683_1,
        0.906_179_845_938_664,
    ];
    const WEIGHTS: [f64; 5] = [
        0.236_926_885_056_189_1,
        0.478_628_670_499_366_5,
        0.568_888_888_888_888_9,
        0.478_628_670_499_366_5,
        0.236_926_885_056_189_1,
    ];
    let (lo, hi) = (u - 14.0 * v, u + 14.0 * v);
    let mut edges = vec![lo];
    if lo < 0.0 && 0.0 < hi {
        edges.push(0.0);
    }
    edges.push(hi);
    let density = |x: f64| (-0.5 * ((x - u) / v).powi(2)).exp() / (v * (2.0 * PI).sqrt());
    let mut total = 0.0;
    for seg in edges.windows(2) {
        let panels = (((seg[1] - seg[0]) / (v / 20.0)).ceil() as usize).max(1);
        let h = (seg[1] - seg[0]) / panels as f64;
        for p in 0..panels {
            let mid = seg[0] + (p as f64 + 0.5) * h;
            for (t, w) in NODES.iter().zip(WEIGHTS) {
                let x = mid + 0.5 * h * t;
                total += 0.5 * h * w * f(x) * density(x);
            }
        }
    }
    total
}

fn relu(x: f64) -> f64 {
    x.max(0.0)
}

fn poly(w: &[f64], x: f64) -> f64 {
    w.iter().rev().fold(0.0, |acc, &c| acc * x + c)
}

fn binom(n: usize, k: usize) -> f64 {
    (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
}

fn solve(mut m: Vec<Vec<f64>>, mut b: Vec<f64>) -> Vec<f64> {
    let n = b.len();
    for c in 0..n {
        let p = (c..n)
            .max_by(|&i, &j| m[i][c].abs().total_cmp(&m[j][c].abs()))
            .unwrap();
        m.swap(c, p);
        b.swap(c, p);
        let (pivot_row, pivot_rhs) = (m[c].clone(), b[c]);
        for (r, (row, rhs)) in m.iter_mut().zip(b.iter_mut()).enumerate() {
            if r != c {
                let f = row[c] / pivot_row[c];
                for (x, p) in row.iter_mut().zip(&pivot_row).skip(c) {
                    *x -= f * p;
                }
                *rhs -= f * pivot_rhs;
            }
        }
    }
    (0..n).map(|i| b[i] / m[i][i]).collect()
}

/// The least-squares fit by quadrature alone: the normal equations in the centred basis
/// t = (x − u)/v (well conditioned even for |u| ≫ v), converted to powers of x.
fn quadrature_fit(u: f64, v: f64, degree: usize) -> Vec<f64> {
    let d = degree;
    let t = |x: f64| (x - u) / v;
    let m: Vec<Vec<f64>> = (0..=d)
        .map(|i| {
            (0..=d)
                .map(|j| gauss_expect(u, v, |x| t(x).powi((i + j) as i32)))
                .collect()
        })
        .collect();
    let b: Vec<f64> = (0..=d)
        .map(|i| gauss_expect(u, v, |x| t(x).powi(i as i32) * relu(x)))
        .collect();
    let a = solve(m, b);
    // Σ_j a_j t^j with t = x/v − u/v.
    (0..=d)
        .map(|k| {
            (k..=d)
                .map(|j| a[j] * binom(j, k) * (-u / v).powi((j - k) as i32))
                .sum::<f64>()
                / v.powi(k as i32)
        })
        .collect()
}

fn cases() -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    for v in [0.3, 1.0, 2.5] {
        for k in [-3.0, -1.0, 0.0, 0.5, 3.0] {
            out.push((k * v, v));
        }
    }
    out
}

#[test]
fn fit_matches_quadrature_for_all_degrees() {
    for (u, v) in cases() {
        for degree in 1..=4 {
            let f = fit(u, v, degree).unwrap();
            let q = quadrature_fit(u, v, degree);
            assert_eq!(f.coeffs.len(), degree + 1);
            for (k, (&w, &wq)) in f.coeffs.iter().zip(&q).enumerate() {
                // Relative to the coefficient, with a floor at its natural scale v^{1−k} for
                // coefficients that vanish (odd powers at u = 0).
                let tol = 1e-6 * wq.abs() + 1e-12 * v.powi(1 - k as i32);
                assert!(
                    (w - wq).abs() <= tol,
                    "u={u} v={v} degree {degree} w{k}: closed form {w} vs quadrature {wq}"
                );
            }
            let mse_q = gauss_expect(u, v, |x| (relu(x) - poly(&f.coeffs, x)).powi(2));
            assert!(
                (f.mse - mse_q).abs() <= 1e-6 * mse_q + 1e-12 * v * v,
                "u={u} v={v} degree {degree}: mse {} vs quadrature {mse_q}",
                f.mse
            );
        }
    }
}

#[test]
fn fit_is_the_minimum() {
    // Perturbing any coefficient of the optimum raises the expected error.
    for (u, v) in cases() {
        for degree in 1..=4 {
            let f = fit(u, v, degree).unwrap();
            for k in 0..=degree {
                for sign in [-1.0, 1.0] {
                    let mut w = f.coeffs.clone();
                    w[k] += sign * 1e-3 * v.powi(1 - k as i32);
                    let worse = expected_sq_error(u, v, &w).unwrap();
                    assert!(worse > f.mse, "u={u} v={v} degree {degree} w{k}{sign:+}");
                }
            }
        }
    }
}

#[test]
fn mse_matches_the_notes_loss_formulas() {
    // §2.2: L₁*, L₂* from approx_torch.py, with E = erfc(z/√2).
    for (u, v) in cases() {
        let z = u / v;
        let e = erfc(z / 2f64.sqrt());
        let phi = norm_pdf(z);
        let common = -u * u * e * e / 4.0 + u * u * e / 2.0 + u * v * phi * e
            - u * v * phi
            - v * v * e * e / 4.0
            + v * v * e / 2.0;
        let l1 = common - v * v * (-z * z).exp() / (2.0 * PI);
        let l2 = common - 3.0 * v * v * (-z * z).exp() / (4.0 * PI);
        for (degree, expected) in [(1, l1), (2, l2)] {
            let mse = fit(u, v, degree).unwrap().mse;
            assert!(
                (mse - expected).abs() <= 1e-12 * v * v,
                "u={u} v={v} degree {degree}: mse {mse} vs L* {expected}"
            );
        }
    }
}

#[test]
fn mse_decreases_with_degree() {
    for (u, v) in cases() {
        let mses: Vec<f64> = (1..=4).map(|d| fit(u, v, d).unwrap().mse).collect();
        for d in 1..4 {
            assert!(mses[d] <= mses[d - 1] + 1e-15, "u={u} v={v}: {mses:?}");
        }
    }
}

#[test]
fn notes_values_at_standard_normal() {
    let close = |a: f64, b: f64, tol: f64| (a - b).abs() <= tol;
    let d2 = fit(0.0, 1.0, 2).unwrap();
    for (w, e) in d2.coeffs.iter().zip([0.19947, 0.5, 0.19947]) {
        assert!(close(*w, e, 5e-6), "degree 2: {:?}", d2.coeffs);
    }
    assert!(
        close(d2.mse, 0.25 - 3.0 / (4.0 * PI), 1e-14),
        "degree 2 mse {}",
        d2.mse
    );
    assert!(close(d2.mse, 0.0113, 5e-5));

    let d1 = fit(0.0, 1.0, 1).unwrap();
    for (w, e) in d1.coeffs.iter().zip([0.39894, 0.5]) {
        assert!(close(*w, e, 5e-6), "degree 1: {:?}", d1.coeffs);
    }
    assert!(
        close(d1.mse, 0.25 - 1.0 / (2.0 * PI), 1e-14),
        "degree 1 mse {}",
        d1.mse
    );
    assert!(close(d1.mse, 0.0908, 5e-5));

    // The identity replacement (SNL-style) for comparison: 0.5.
    assert!(close(
        expected_sq_error(0.0, 1.0, &[0.0, 1.0]).unwrap(),
        0.5,
        1e-14
    ));
}

#[test]
fn moments_match_quadrature() {
    for (u, v) in cases() {
        let m = moments(u, v, 8).unwrap();
        let t = truncated_moments(u, v, 9).unwrap();
        // Tolerance relative to the moment's natural scale (|u| + v)^n.
        let scale = |n: usize| 1e-10 * (u.abs() + v).powi(n as i32);
        for (n, &mn) in m.iter().enumerate() {
            let q = gauss_expect(u, v, |x| x.powi(n as i32));
            assert!(
                (mn - q).abs() <= scale(n),
                "E[x^{n}] u={u} v={v}: {mn} vs {q}"
            );
        }
        for (n, &tn) in t.iter().enumerate() {
            let q = gauss_expect(u, v, |x| if x > 0.0 { x.powi(n as i32) } else { 0.0 });
            assert!(
                (tn - q).abs() <= scale(n),
                "E[x^{n} 1(x>0)] u={u} v={v}: {tn} vs {q}"
            );
        }
    }
}

#[test]
fn erfc_and_normal_cdf_reference_values() {
    let refs = [
        (0.0, 1.0),
        (0.1, 0.887_537_083_981_715),
        (0.5, 0.479_500_122_186_953_5),
        (1.0, 0.157_299_207_050_285_13),
        (2.0, 4.677_734_981_047_266e-3),
        (3.0, 2.209_049_699_858_544e-5),
        (5.0, 1.537_459_794_428_035e-12),
        (10.0, 2.088_487_583_762_545e-45),
        (-1.0, 1.842_700_792_949_715),
    ];
    for (x, e) in refs {
        let got = erfc(x);
        assert!(
            (got - e).abs() <= 1e-14 * e,
            "erfc({x}) = {got}, expected {e}"
        );
    }
    assert!((norm_cdf(0.0) - 0.5).abs() < 1e-16);
    assert!((norm_cdf(1.959_963_984_540_054) - 0.975).abs() < 1e-15);
    // The far tail keeps its relative accuracy: Φ(−10) = erfc(10/√2)/2 ≈ 7.619853e−24.
    assert!((norm_cdf(-10.0) / 7.619_853_024_160_527e-24 - 1.0).abs() < 1e-13);
}

#[test]
fn extreme_means_stay_finite_and_sensible() {
    // Far below zero ReLU is ≈ 0; far above it is ≈ x.
    for degree in 1..=4 {
        let low = fit(-40.0, 1.0, degree).unwrap();
        assert!(
            low.coeffs.iter().all(|c| c.abs() < 1e-12),
            "{:?}",
            low.coeffs
        );
        assert!(low.mse < 1e-12);
        let high = fit(40.0, 1.0, degree).unwrap();
        let mut identity = vec![0.0; degree + 1];
        identity[1] = 1.0;
        for (w, e) in high.coeffs.iter().zip(&identity) {
            assert!((w - e).abs() < 1e-9, "degree {degree}: {:?}", high.coeffs);
        }
        assert!(high.mse < 1e-9);
    }
}

#[test]
fn clean_coeffs_undo_the_gate_scales() {
    let (u, var) = (0.3, 2.25);
    let w2 = fit(u, 1.5, 2).unwrap().coeffs;
    let c = clean_coeffs(u, var, 2, 7.0, 0.1).unwrap();
    assert_eq!(c[0], w2[0]);
    assert_eq!(c[1], w2[1]);
    assert!((0.1 * c[2] - w2[2]).abs() < 1e-15);

    let w1 = fit(u, 1.5, 1).unwrap().coeffs;
    let c = clean_coeffs(u, var, 1, 2.0, 0.1).unwrap();
    assert_eq!(c[0], w1[0]);
    assert!((2.0 * c[1] - w1[1]).abs() < 1e-15);
    assert_eq!(c[2], 0.0);

    // A constant channel (variance 0) is floored, not rejected, and gives bounded coefficients.
    let c = clean_coeffs(0.0, 0.0, 2, 1.0, 1.0).unwrap();
    assert!(c.iter().all(|x| x.is_finite() && x.abs() < 1e3), "{c:?}");
}

#[test]
fn faithful_coeffs_reproduce_the_official_quirks() {
    // §2.3 table at u = 0, running var = 1: the installed polynomial is c₀ + c₁x + s₂c₂x²,
    // with c₀ = w₀/5 and the effective x² coefficient s₂·w₂/10.
    let w = fit(0.0, 1.0, 2).unwrap().coeffs;
    for (s2, mse_table) in [(0.1, 0.217), (0.2, 0.214), (2.0, 0.164), (10.0, 0.037)] {
        let c = faithful_coeffs(0.0, 1.0, 2, 1.0, s2, FAITHFUL_VAR_MIN, FAITHFUL_SHRINK).unwrap();
        assert!((c[0] - w[0] / 5.0).abs() < 1e-15);
        assert_eq!(c[1], w[1]);
        assert!((s2 * c[2] - s2 * w[2] / 10.0).abs() < 1e-15);
        let mse = expected_sq_error(0.0, 1.0, &[c[0], c[1], s2 * c[2]]).unwrap();
        assert!(
            (mse - mse_table).abs() < 5e-4,
            "s2={s2}: mse {mse} vs table {mse_table}"
        );
    }

    // The variance is used as the standard deviation: var 4 fits as σ = 4, not 2.
    let c = faithful_coeffs(0.7, 4.0, 2, 1.0, 1.0, FAITHFUL_VAR_MIN, FAITHFUL_SHRINK).unwrap();
    let w = fit(0.7, 4.0, 2).unwrap().coeffs;
    assert_eq!(c, [w[0] / 5.0, w[1], w[2] / 10.0]);

    // Below var_min the variance is clipped to it.
    let c = faithful_coeffs(0.7, 0.1, 1, 2.0, 1.0, 0.5, FAITHFUL_SHRINK).unwrap();
    let w = fit(0.7, 0.5, 1).unwrap().coeffs;
    assert_eq!(c, [w[0] / 5.0, w[1] / 2.0, 0.0]);

    // With no shrinkage the installed coefficients are the fit itself (variance as σ).
    let w = fit(0.7, 4.0, 2).unwrap().coeffs;
    let plain = faithful_coeffs(0.7, 4.0, 2, 1.0, 1.0, FAITHFUL_VAR_MIN, [1.0, 1.0]).unwrap();
    assert_eq!(plain, [w[0], w[1], w[2]]);
}

#[test]
fn refit_schedule_gives_fifty_refits() {
    let s = RefitSchedule::default();
    assert_eq!(
        s,
        RefitSchedule {
            period: 10,
            limit: 508
        }
    );
    let refits: Vec<u64> = (0..1000).filter(|&n| s.refit_now(n)).collect();
    assert_eq!(refits.len(), 50);
    assert_eq!(refits, (1..=50).map(|k| 10 * k).collect::<Vec<_>>());
    assert!(!s.refit_now(0));
    assert!((508..100_000).all(|n| !s.refit_now(n)));
}

fn err_text<T: std::fmt::Debug>(r: autorep::Result<T>) -> String {
    r.expect_err("expected an error").to_string()
}

#[test]
fn bad_inputs_name_the_problem() {
    let e = err_text(fit(0.0, 1.0, 5));
    assert!(e.contains("degree 5") && e.contains("1, 2, 3 or 4"), "{e}");
    let e = err_text(fit(0.0, 1.0, 0));
    assert!(e.contains("degree 0"), "{e}");
    for std in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let e = err_text(fit(0.0, std, 2));
        assert!(e.contains("standard deviation"), "{e}");
    }
    for mean in [f64::NAN, f64::NEG_INFINITY] {
        let e = err_text(fit(mean, 1.0, 2));
        assert!(e.contains("mean"), "{e}");
    }
    let e = err_text(expected_sq_error(0.0, 1.0, &[]));
    assert!(e.contains("coefficients"), "{e}");

    let e = err_text(clean_coeffs(0.0, 1.0, 3, 1.0, 1.0));
    assert!(e.contains("degree 3") && e.contains("1 or 2"), "{e}");
    let e = err_text(faithful_coeffs(0.0, 1.0, 4, 1.0, 1.0, 0.5, FAITHFUL_SHRINK));
    assert!(e.contains("degree 4") && e.contains("1 or 2"), "{e}");
    let e = err_text(clean_coeffs(0.0, -1.0, 2, 1.0, 1.0));
    assert!(e.contains("variance"), "{e}");
    let e = err_text(clean_coeffs(0.0, 1.0, 2, 1.0, 0.0));
    assert!(e.contains("s2"), "{e}");
    let e = err_text(clean_coeffs(0.0, 1.0, 1, f64::NAN, 1.0));
    assert!(e.contains("s1"), "{e}");
    let e = err_text(faithful_coeffs(0.0, 1.0, 2, 1.0, 1.0, 0.0, FAITHFUL_SHRINK));
    assert!(e.contains("var_min"), "{e}");
    let e = err_text(faithful_coeffs(
        0.0,
        f64::NAN,
        2,
        1.0,
        1.0,
        0.5,
        FAITHFUL_SHRINK,
    ));
    assert!(e.contains("running variance"), "{e}");
}
