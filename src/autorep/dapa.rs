//! DaPa: distribution-aware polynomial approximation of ReLU (AutoReP §2).
//!
//! A channel's pre-activation is modelled as x ~ N(u, v²) and ReLU is replaced by the polynomial
//! P that minimises E[(ReLU(x) − P(x))²] over the whole real line. This module computes that fit
//! exactly on the CPU in f64 (a site has only C channels, so there is nothing to gain from a GPU
//! erfc in f32), plus the two ways AutoReP installs it into the gate's per-channel coefficients:
//! [`clean_coeffs`] (the ideal fit) and [`faithful_coeffs`] (the official code's quirks, §2.3).
//!
//! Internally everything is evaluated in the standardised, centred variable t = (x − u)/v. The
//! fit and its error are the same least-squares problem in any polynomial basis, but the moment
//! matrix of t is that of N(0, 1) and stays well conditioned, whereas the raw moments E[x^n] grow
//! like |u|^n and would cost many digits for |u| ≫ v.

use crate::error::{Error, Result};

/// Highest polynomial degree [`fit`] supports.
pub const MAX_DEGREE: usize = 4;

/// Highest degree the GPU gate implements (P(x) = s₂·c₂·x² + c₁·x + c₀).
pub const MAX_GATE_DEGREE: usize = 2;

/// The official code's default lower clip of the running variance (`var_min`, §2.3 point 1).
pub const FAITHFUL_VAR_MIN: f64 = 0.5;
/// The official divisors of w₀ and w₂ (added on 2023-02-09, commit e855627).
pub const FAITHFUL_SHRINK: [f64; 2] = [5.0, 10.0];

/// Floor of the variance in clean mode. A channel whose pre-activation is constant has variance
/// 0, for which the Gaussian model degenerates (w₂ = φ(z)/(2σ) blows up at u = 0); flooring at
/// BatchNorm's ε keeps the coefficients bounded, as the normalised activations would be.
pub const CLEAN_VAR_FLOOR: f64 = 1e-5;

/// The least-squares polynomial fit of ReLU under a Gaussian.
#[derive(Debug, Clone, PartialEq)]
pub struct Fit {
    /// w₀..w_d, lowest power first: P(x) = Σ w_k x^k.
    pub coeffs: Vec<f64>,
    /// Expected squared error E[(ReLU(x) − P(x))²] under N(mean, std²).
    pub mse: f64,
}

/// DaPa fit of ReLU under x ~ N(mean, std²) with a polynomial of `degree` 1..=4.
///
/// Degrees 1–3 use the closed forms of the notes (§2.2); degree 4 solves the normal equations
/// Σ_j w_j E[x^{i+j}] = E[x^i ReLU(x)] with exact Gaussian moments.
pub fn fit(mean: f64, std: f64, degree: usize) -> Result<Fit> {
    check_gaussian(mean, std)?;
    check_degree(degree, MAX_DEGREE, "DaPa")?;
    let (u, v) = (mean, std);
    let z = u / v;
    let (phi, cdf) = (norm_pdf(z), norm_cdf(z));
    let coeffs = match degree {
        1 => vec![v * phi, cdf],
        2 => vec![
            phi * (u * u + v * v) / (2.0 * v),
            cdf - z * phi,
            phi / (2.0 * v),
        ],
        3 => vec![
            phi * (z.powi(4) / 6.0 + 0.5) * v,
            cdf - phi * z * (z * z + 1.0) / 2.0,
            phi * (z * z + 1.0) / (2.0 * v),
            -z * phi / (6.0 * v * v),
        ],
        _ => solve_normal_equations(u, v, degree)?,
    };
    if coeffs.iter().any(|c| !c.is_finite()) {
        return Err(Error::Invalid(format!(
            "DaPa of N({mean}, {std}²) overflows (coefficients {coeffs:?}): choose a mean and standard deviation of smaller magnitude"
        )));
    }
    let mse = expected_sq_error(u, v, &coeffs)?;
    Ok(Fit { coeffs, mse })
}

/// E[(ReLU(x) − P(x))²] for x ~ N(mean, std²) and any polynomial P (coefficients lowest power
/// first), computed exactly from Gaussian and truncated-Gaussian moments.
///
/// Useful beyond [`fit`]: it measures how far a damped or trained polynomial is from the optimum.
pub fn expected_sq_error(mean: f64, std: f64, coeffs: &[f64]) -> Result<f64> {
    check_gaussian(mean, std)?;
    if coeffs.is_empty() || coeffs.iter().any(|c| !c.is_finite()) {
        return Err(Error::Invalid(format!(
            "polynomial coefficients {coeffs:?} must be a non-empty list of finite numbers"
        )));
    }
    let z = mean / std;
    let a = to_centred_basis(coeffs, z, std);
    let d = a.len() - 1;
    // With ReLU(x) = v·r(t), r(t) = (z + t)·1(t > −z), and P(x) = v·Σ a_j t^j:
    // mse = v²·(E[r²] − 2 Σ a_i E[t^i r] + Σ a_i a_j E[t^{i+j}]).
    let tail = centred_truncated_moments(z, 2 * d + 1);
    let normal = standard_normal_moments(2 * d);
    let r2 = z * z * tail[0] + 2.0 * z * tail[1] + tail[2];
    let mut cross = 0.0;
    let mut quad = 0.0;
    for i in 0..=d {
        cross += a[i] * (z * tail[i] + tail[i + 1]);
        for j in 0..=d {
            quad += a[i] * a[j] * normal[i + j];
        }
    }
    // Rounding can leave a tiny negative where the fit is near perfect (|z| ≫ 1).
    Ok((std * std * (r2 - 2.0 * cross + quad)).max(0.0))
}

/// Raw moments E[x^n], n = 0..=n_max, of x ~ N(mean, std²).
///
/// Recursion: E[x^n] = u·E[x^{n−1}] + (n−1)·v²·E[x^{n−2}] (Stein's identity).
pub fn moments(mean: f64, std: f64, n_max: usize) -> Result<Vec<f64>> {
    check_gaussian(mean, std)?;
    let mut m = Vec::with_capacity(n_max + 1);
    for n in 0..=n_max {
        let value = match n {
            0 => 1.0,
            1 => mean,
            _ => mean * m[n - 1] + (n - 1) as f64 * std * std * m[n - 2],
        };
        m.push(value);
    }
    Ok(m)
}

/// Truncated moments E[x^n · 1(x > 0)], n = 0..=n_max, of x ~ N(mean, std²).
///
/// E[x^n ReLU(x)] is entry n + 1. Integrating x^{n−1}·(x − u)·p(x) by parts over (0, ∞), where
/// (x − u)·p = −v²·p′, gives T_n = u·T_{n−1} + (n−1)·v²·T_{n−2} + [n = 1]·v·φ(z), with
/// T_0 = Φ(z) and z = u/v.
pub fn truncated_moments(mean: f64, std: f64, n_max: usize) -> Result<Vec<f64>> {
    check_gaussian(mean, std)?;
    let z = mean / std;
    let mut t = Vec::with_capacity(n_max + 1);
    for n in 0..=n_max {
        let value = match n {
            0 => norm_cdf(z),
            1 => mean * t[0] + std * norm_pdf(z),
            _ => mean * t[n - 1] + (n - 1) as f64 * std * std * t[n - 2],
        };
        t.push(value);
    }
    Ok(t)
}

/// Per-channel gate coefficients [c₀, c₁, c₂] for clean mode: the exact DaPa fit under
/// N(mean, var), divided by the gate's scales so that the gate's polynomial equals the fit.
///
/// The gate computes P(x) = s₂·c₂·x² + c₁·x + c₀ (degree 2: its s₁ is 1) or
/// P(x) = s₁·c₁·x + c₀ (degree 1).
pub fn clean_coeffs(mean: f64, var: f64, degree: usize, s1: f64, s2: f64) -> Result<[f64; 3]> {
    check_degree(degree, MAX_GATE_DEGREE, "DaPa gate polynomial")?;
    check_variance(var, "variance")?;
    let std = var.max(CLEAN_VAR_FLOOR).sqrt();
    let w = fit(mean, std, degree)?.coeffs;
    Ok(match degree {
        1 => [w[0], w[1] / check_scale(s1, "s1 (scale_x1)")?, 0.0],
        _ => [w[0], w[1], w[2] / check_scale(s2, "s2 (scale_x2)")?],
    })
}

/// Per-channel gate coefficients [c₀, c₁, c₂] exactly as the official code installs them
/// (§2.3): v = max(running_var, var_min) is used where the formulas expect a standard deviation,
/// and the result is shrunk to c₀ = w₀/5, c₁ = w₁/s₁, c₂ = w₂/10 (`shrink` holds the 5 and
/// the 10).
///
/// Reproducing these quirks matters for fidelity runs: the effective x² coefficient is s₂·w₂/10,
/// so the installed polynomial is a damped DaPa unless s₂ = 10.
pub fn faithful_coeffs(
    mean: f64,
    running_var: f64,
    degree: usize,
    s1: f64,
    s2: f64,
    var_min: f64,
    shrink: [f64; 2],
) -> Result<[f64; 3]> {
    check_degree(degree, MAX_GATE_DEGREE, "DaPa gate polynomial")?;
    check_variance(running_var, "running variance")?;
    let [s0, s2_div] = [
        check_scale(shrink[0], "shrink of w0")?,
        check_scale(shrink[1], "shrink of w2")?,
    ];
    if !var_min.is_finite() || var_min <= 0.0 {
        return Err(Error::Invalid(format!(
            "var_min {var_min} must be a positive finite number (the official default is {FAITHFUL_VAR_MIN})"
        )));
    }
    // Deliberately the variance, not its square root: the official code's quirk.
    let v = running_var.max(var_min);
    let w = fit(mean, v, degree)?.coeffs;
    Ok(match degree {
        1 => [w[0] / s0, w[1] / check_scale(s1, "s1 (scale_x1)")?, 0.0],
        // The official code ignores s₂ when installing c₂ (the gate applies it in the forward),
        // which is why the effective x² coefficient is s₂·w₂/10; s₂ is only checked here.
        // c₁ = w₁/s₁ as the official code installs it for every degree (its degree-2 forward
        // applies no s₁, so the effective linear term is w₁/s₁; every script has s₁ = 1).
        _ => {
            check_scale(s2, "s2 (scale_x2)")?;
            [
                w[0] / s0,
                w[1] / check_scale(s1, "s1 (scale_x1)")?,
                w[2] / s2_div,
            ]
        }
    })
}

/// When the official code overwrites the coefficients with a fresh DaPa fit (§2.3 point 5).
///
/// The counter counts full forward passes, validation included, and stops at `limit`; a refit
/// happens in place, before the polynomial is applied, whenever counter % period == 0 and
/// counter < limit. With the defaults that is passes 10, 20, …, 500: 50 refits, none at 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefitSchedule {
    pub period: u64,
    pub limit: u64,
}

impl Default for RefitSchedule {
    fn default() -> Self {
        RefitSchedule {
            period: 10,
            limit: 508,
        }
    }
}

impl RefitSchedule {
    /// Whether the forward pass with this counter value refits the coefficients.
    pub fn refit_now(&self, pass_counter: u64) -> bool {
        self.period > 0
            && pass_counter > 0
            && pass_counter < self.limit
            && pass_counter.is_multiple_of(self.period)
    }
}

/// Standard normal density φ(z).
pub fn norm_pdf(z: f64) -> f64 {
    const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;
    INV_SQRT_2PI * (-0.5 * z * z).exp()
}

/// Standard normal distribution function Φ(z), accurate in relative terms in both tails
/// (Φ(−10) ≈ 7.6e−24 keeps its digits), which the truncated moments rely on.
pub fn norm_cdf(z: f64) -> f64 {
    0.5 * erfc(-z * std::f64::consts::FRAC_1_SQRT_2)
}

/// The complementary error function, to within about one ulp.
///
/// Port of FreeBSD's `s_erf.c` (as in musl and the `libm` crate), kept here so that the crate
/// needs no extra dependency for it:
///
/// Copyright (C) 1993 by Sun Microsystems, Inc. All rights reserved.
/// Developed at SunPro, a Sun Microsystems, Inc. business.
/// Permission to use, copy, modify, and distribute this software is freely granted, provided
/// that this notice is preserved.
// The constants keep the reference's published digits so they can be checked against it.
#[allow(clippy::excessive_precision)]
pub fn erfc(x: f64) -> f64 {
    // Rational approximations on [0, 0.84375], [0.84375, 1.25], [1.25, 1/0.35], [1/0.35, 28];
    // beyond 28, erfc underflows (x > 0) or is 2 (x < 0).
    const ERX: f64 = 8.450_629_115_104_675_292_97e-1;
    const PP: [f64; 5] = [
        1.283_791_670_955_125_585_61e-1,
        -3.250_421_072_470_014_993_70e-1,
        -2.848_174_957_559_851_047_66e-2,
        -5.770_270_296_489_441_591_57e-3,
        -2.376_301_665_665_016_260_84e-5,
    ];
    const QQ: [f64; 5] = [
        3.979_172_239_591_553_528_19e-1,
        6.502_224_998_876_729_444_85e-2,
        5.081_306_281_875_765_627_76e-3,
        1.324_947_380_043_216_445_26e-4,
        -3.960_228_278_775_368_123_20e-6,
    ];
    const PA: [f64; 7] = [
        -2.362_118_560_752_659_440_77e-3,
        4.148_561_186_837_483_316_66e-1,
        -3.722_078_760_357_013_238_47e-1,
        3.183_466_199_011_617_536_74e-1,
        -1.108_946_942_823_966_774_76e-1,
        3.547_830_432_561_823_593_71e-2,
        -2.166_375_594_868_790_843_00e-3,
    ];
    const QA: [f64; 6] = [
        1.064_208_804_008_442_282_86e-1,
        5.403_979_177_021_710_489_37e-1,
        7.182_865_441_419_626_628_68e-2,
        1.261_712_198_087_616_421_12e-1,
        1.363_708_391_202_905_073_62e-2,
        1.198_449_984_679_910_741_70e-2,
    ];
    const RA: [f64; 8] = [
        -9.864_944_034_847_148_227_05e-3,
        -6.938_585_727_071_817_643_72e-1,
        -1.055_862_622_532_329_098_14e1,
        -6.237_533_245_032_600_603_96e1,
        -1.623_966_694_625_734_703_55e2,
        -1.846_050_929_067_110_359_94e2,
        -8.128_743_550_630_659_342_46e1,
        -9.814_329_344_169_145_485_92,
    ];
    const SA: [f64; 8] = [
        1.965_127_166_743_925_712_92e1,
        1.376_577_541_435_190_426_00e2,
        4.345_658_774_752_292_288_21e2,
        6.453_872_717_332_678_803_36e2,
        4.290_081_400_275_678_333_86e2,
        1.086_350_055_417_794_351_34e2,
        6.570_249_770_319_281_701_35,
        -6.042_441_521_485_809_874_38e-2,
    ];
    const RB: [f64; 7] = [
        -9.864_942_924_700_099_285_97e-3,
        -7.992_832_376_805_230_065_74e-1,
        -1.775_795_491_775_475_198_89e1,
        -1.606_363_848_558_219_160_62e2,
        -6.375_664_433_683_896_277_22e2,
        -1.025_095_131_611_077_249_54e3,
        -4.835_191_916_086_513_970_19e2,
    ];
    const SB: [f64; 7] = [
        3.033_806_074_348_245_829_24e1,
        3.257_925_129_965_739_188_26e2,
        1.536_729_586_084_436_959_94e3,
        3.199_858_219_508_595_539_08e3,
        2.553_050_406_433_164_425_83e3,
        4.745_285_412_069_553_672_15e2,
        -2.244_095_244_658_581_833_62e1,
    ];
    // Horner with an implicit leading 1 (the denominators) or not (the numerators).
    fn poly(c: &[f64], s: f64) -> f64 {
        c.iter().rev().fold(0.0, |acc, &k| acc * s + k)
    }
    fn denom(c: &[f64], s: f64) -> f64 {
        1.0 + s * poly(c, s)
    }

    if x.is_nan() {
        return x;
    }
    let ax = x.abs();
    if ax < 0.84375 {
        if ax < 2f64.powi(-56) {
            return 1.0 - x;
        }
        let z = x * x;
        let y = poly(&PP, z) / denom(&QQ, z);
        return if x < 0.25 {
            1.0 - (x + x * y)
        } else {
            0.5 - (x - 0.5 + x * y)
        };
    }
    if ax < 1.25 {
        let s = ax - 1.0;
        let p = poly(&PA, s);
        let q = denom(&QA, s);
        return if x > 0.0 {
            1.0 - ERX - p / q
        } else {
            1.0 + (ERX + p / q)
        };
    }
    if ax >= 28.0 {
        return if x > 0.0 { 0.0 } else { 2.0 };
    }
    let s = 1.0 / (ax * ax);
    let (r, big_s) = if ax < 1.0 / 0.35 {
        (poly(&RA, s), denom(&SA, s))
    } else {
        (poly(&RB, s), denom(&SB, s))
    };
    // Splitting x² as hi² + (hi − x)(hi + x), with hi = x rounded to 32 significant bits, keeps
    // exp(−x²) accurate to the last ulp.
    let hi = f64::from_bits(ax.to_bits() & 0xffff_ffff_0000_0000);
    let tail = (-hi * hi - 0.5625).exp() * ((hi - ax) * (hi + ax) + r / big_s).exp() / ax;
    if x > 0.0 {
        tail
    } else {
        2.0 - tail
    }
}

/// Degree-d fit by the normal equations, solved in the basis t^j, t = (x − u)/v, and converted
/// back to powers of x.
fn solve_normal_equations(u: f64, v: f64, degree: usize) -> Result<Vec<f64>> {
    let z = u / v;
    let d = degree;
    let tail = centred_truncated_moments(z, d + 1);
    let normal = standard_normal_moments(2 * d);
    // ReLU(x) = v·(z + t)·1(t > −z); solve for P(x) = v·Σ a_j t^j.
    let mut m: Vec<Vec<f64>> = (0..=d)
        .map(|i| (0..=d).map(|j| normal[i + j]).collect())
        .collect();
    let mut b: Vec<f64> = (0..=d).map(|i| z * tail[i] + tail[i + 1]).collect();
    let a = solve_linear(&mut m, &mut b).ok_or_else(|| {
        Error::Invalid(format!(
            "DaPa degree {degree}: the normal equations are singular"
        ))
    })?;
    // t^j = Σ_k C(j, k)·(x/v)^k·(−z)^{j−k}, so w_k = v^{1−k}·Σ_{j≥k} a_j·C(j, k)·(−z)^{j−k}.
    Ok((0..=d)
        .map(|k| {
            let sum: f64 = (k..=d)
                .map(|j| a[j] * binom(j, k) * (-z).powi((j - k) as i32))
                .sum();
            sum * v.powi(1 - k as i32)
        })
        .collect())
}

/// Coefficients a_j with Σ_k w_k x^k = v·Σ_j a_j t^j for x = v·(z + t).
fn to_centred_basis(w: &[f64], z: f64, v: f64) -> Vec<f64> {
    let d = w.len() - 1;
    (0..=d)
        .map(|j| {
            (j..=d)
                .map(|k| w[k] * v.powi(k as i32 - 1) * binom(k, j) * z.powi((k - j) as i32))
                .sum()
        })
        .collect()
}

/// U_n = E[t^n · 1(t > −z)] for t ~ N(0, 1), n = 0..=n_max.
///
/// By parts: U_n = (n−1)·U_{n−2} + (−z)^{n−1}·φ(z), U_0 = Φ(z). For z < 0 every term is
/// non-negative, so the far tail, where all moments are tiny, loses no digits to cancellation.
fn centred_truncated_moments(z: f64, n_max: usize) -> Vec<f64> {
    let phi = norm_pdf(z);
    let mut m = Vec::with_capacity(n_max + 1);
    for n in 0..=n_max {
        let value = match n {
            0 => norm_cdf(z),
            1 => phi,
            _ => (n - 1) as f64 * m[n - 2] + (-z).powi(n as i32 - 1) * phi,
        };
        m.push(value);
    }
    m
}

/// E[t^n] for t ~ N(0, 1): 0 for odd n, (n−1)!! for even n.
fn standard_normal_moments(n_max: usize) -> Vec<f64> {
    let mut m = Vec::with_capacity(n_max + 1);
    for n in 0..=n_max {
        let value = match n {
            0 => 1.0,
            1 => 0.0,
            _ => (n - 1) as f64 * m[n - 2],
        };
        m.push(value);
    }
    m
}

fn binom(n: usize, k: usize) -> f64 {
    (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
}

/// Gaussian elimination with partial pivoting; None if the matrix is singular.
fn solve_linear(m: &mut [Vec<f64>], b: &mut [f64]) -> Option<Vec<f64>> {
    let n = b.len();
    for col in 0..n {
        let pivot = (col..n).max_by(|&i, &j| m[i][col].abs().total_cmp(&m[j][col].abs()))?;
        if m[pivot][col] == 0.0 {
            return None;
        }
        m.swap(col, pivot);
        b.swap(col, pivot);
        let (upper, lower) = m.split_at_mut(col + 1);
        let (b_upper, b_lower) = b.split_at_mut(col + 1);
        let pivot_row = &upper[col];
        for (row, rhs) in lower.iter_mut().zip(b_lower.iter_mut()) {
            let f = row[col] / pivot_row[col];
            for (x, p) in row[col..].iter_mut().zip(&pivot_row[col..]) {
                *x -= f * p;
            }
            *rhs -= f * b_upper[col];
        }
    }
    let mut x = vec![0.0; n];
    for row in (0..n).rev() {
        let s: f64 = (row + 1..n).map(|k| m[row][k] * x[k]).sum();
        x[row] = (b[row] - s) / m[row][row];
    }
    Some(x)
}

fn check_gaussian(mean: f64, std: f64) -> Result<()> {
    if !mean.is_finite() {
        return Err(Error::Invalid(format!(
            "DaPa mean {mean} is not a finite number"
        )));
    }
    if !std.is_finite() || std <= 0.0 {
        return Err(Error::Invalid(format!(
            "DaPa standard deviation {std} must be a positive finite number"
        )));
    }
    Ok(())
}

fn check_degree(degree: usize, max: usize, what: &str) -> Result<()> {
    if (1..=max).contains(&degree) {
        return Ok(());
    }
    let allowed = (1..=max).map(|d| d.to_string()).collect::<Vec<_>>();
    let (last, rest) = allowed.split_last().expect("max ≥ 1");
    Err(Error::Invalid(format!(
        "{what} degree {degree} is not supported: use {} or {last}",
        rest.join(", ")
    )))
}

fn check_variance(var: f64, what: &str) -> Result<()> {
    if !var.is_finite() || var < 0.0 {
        return Err(Error::Invalid(format!(
            "DaPa {what} {var} must be a finite number ≥ 0 (the channel's BatchNorm running variance)"
        )));
    }
    Ok(())
}

fn check_scale(s: f64, what: &str) -> Result<f64> {
    if !s.is_finite() || s == 0.0 {
        return Err(Error::Invalid(format!(
            "DaPa scale {what} = {s} must be a finite non-zero number (the coefficient is divided by it)"
        )));
    }
    Ok(s)
}
