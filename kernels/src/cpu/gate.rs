//! CPU twin of `shaders/gate.wgsl`: AutoReP's gated ReLU/polynomial site.

use super::Real;
use crate::params::{GateGrad, GateParams};

/// The x² coefficient as the polynomial uses it (clamped to ±clip2 when clip2 > 0).
pub(super) fn c2<T: Real>(p: &GateParams, coef: &[T], c: usize) -> T {
    let v = coef[2 * p.channels + c];
    if p.clip2 > 0.0 {
        let m = T::lit(p.clip2 as f64);
        v.max(T::zero() - m).min(m)
    } else {
        v
    }
}

pub(super) fn poly<T: Real>(p: &GateParams, coef: &[T], x: T, c: usize) -> T {
    let ch = p.channels;
    T::lit(p.s2 as f64) * c2(p, coef, c) * x * x + T::lit(p.s1 as f64) * coef[ch + c] * x + coef[c]
}

fn relu<T: Real>(x: T) -> T {
    x.max(T::zero())
}

/// y = m·ReLU(x) + (1 − m)·P(x)
pub fn gate_forward<T: Real>(p: &GateParams, x: &[T], mask: &[T], coef: &[T], y: &mut [T]) {
    let _p = super::profile::span("gate_forward");
    for (i, (o, &v)) in y.iter_mut().zip(x).enumerate() {
        let j = i % p.chw();
        let m = mask[j / p.group()];
        *o = m * relu(v) + (T::one() - m) * poly(p, coef, v, j / p.hw);
    }
}

/// dx = g·(m·1\[x > 0\] + (1 − m)·P'(x))
pub fn gate_grad_x<T: Real>(
    p: &GateParams,
    x: &[T],
    g: &[T],
    mask: &[T],
    coef: &[T],
    dx: &mut [T],
) {
    let _p = super::profile::span("gate_grad_x");
    let ch = p.channels;
    for (i, o) in dx.iter_mut().enumerate() {
        let j = i % p.chw();
        let c = j / p.hw;
        let m = mask[j / p.group()];
        let slope = if x[i] > T::zero() {
            T::one()
        } else {
            T::zero()
        };
        let ps =
            T::lit(2.0 * p.s2 as f64) * c2(p, coef, c) * x[i] + T::lit(p.s1 as f64) * coef[ch + c];
        *o = g[i] * (m * slope + (T::one() - m) * ps);
    }
}

/// dm\[gate\] = Σ_{batch, gate's pixels} g·(ReLU(x) − P(x))
pub fn gate_grad_mask<T: Real>(p: &GateParams, x: &[T], g: &[T], coef: &[T], dm: &mut [T]) {
    let _p = super::profile::span("gate_grad_mask");
    for (gate, o) in dm.iter_mut().enumerate() {
        let mut acc = T::zero();
        for b in 0..p.batch {
            for e in 0..p.group() {
                let j = gate * p.group() + e;
                let i = b * p.chw() + j;
                acc = acc + g[i] * (relu(x[i]) - poly(p, coef, x[i], j / p.hw));
            }
        }
        *o = acc;
    }
}

/// Per channel: [Σ g(1−m) | s1·Σ g(1−m)x | s2·Σ g(1−m)x²], the last 0 where c2 is clamped.
pub fn gate_grad_coef<T: Real>(
    p: &GateParams,
    x: &[T],
    g: &[T],
    mask: &[T],
    coef: &[T],
    dcoef: &mut [T],
) {
    let _p = super::profile::span("gate_grad_coef");
    let ch = p.channels;
    dcoef.iter_mut().for_each(|v| *v = T::zero());
    for (i, &v) in x.iter().enumerate().take(p.n()) {
        let j = i % p.chw();
        let c = j / p.hw;
        let w = g[i] * (T::one() - mask[j / p.group()]);
        dcoef[c] = dcoef[c] + w;
        dcoef[ch + c] = dcoef[ch + c] + w * v;
        dcoef[2 * ch + c] = dcoef[2 * ch + c] + w * v * v;
    }
    for c in 0..ch {
        dcoef[ch + c] = dcoef[ch + c] * T::lit(p.s1 as f64);
        let raw = coef[2 * ch + c];
        let m = T::lit(p.clip2 as f64);
        let inside = p.clip2 <= 0.0 || (raw <= m && raw >= T::zero() - m);
        dcoef[2 * ch + c] = if inside {
            dcoef[2 * ch + c] * T::lit(p.s2 as f64)
        } else {
            T::zero()
        };
    }
}

fn softplus<T: Real>(v: T) -> T {
    if v > T::lit(20.0) {
        v
    } else {
        (T::one() + v.exp()).ln()
    }
}

/// The gate parameter's gradient from dm and the current exact ReLU `count`.
pub fn gate_grad_h<T: Real>(
    p: &GateParams,
    mode: GateGrad,
    h: &[T],
    dm: &[T],
    count: u64,
    dh: &mut [T],
    loss_scale: f32,
) {
    let scale = loss_scale as f64;
    let _p = super::profile::span("gate_grad_h");
    for ((o, &hv), &d) in dh.iter_mut().zip(h).zip(dm) {
        *o = match mode {
            GateGrad::Ste { penalty, budget } => {
                let pen = if count > budget {
                    T::lit(penalty as f64 * p.group() as f64 * scale)
                } else {
                    T::zero()
                };
                softplus(hv) * (d + pen)
            }
            GateGrad::Snl { l1 } => {
                let s = if hv > T::zero() {
                    T::one()
                } else if hv < T::zero() {
                    -T::one()
                } else {
                    T::zero()
                };
                d + T::lit(l1 as f64 * scale) * s
            }
        };
    }
}

/// m ← m·1\[h > −τ\] + (1 − m)·1\[h > τ\]
pub fn gate_hysteresis<T: Real>(tau: f32, h: &[T], mask: &mut [T]) {
    let _p = super::profile::span("gate_hysteresis");
    let tau = T::lit(tau as f64);
    for (m, &hv) in mask.iter_mut().zip(h) {
        let on = if hv > -tau { T::one() } else { T::zero() };
        let off_to_on = if hv > tau { T::one() } else { T::zero() };
        *m = *m * on + (T::one() - *m) * off_to_on;
    }
}

/// weight · #{gates with mask > threshold}, exactly.
pub fn gate_count<T: Real>(mask: &[T], threshold: f32, weight: u64) -> u64 {
    let _p = super::profile::span("gate_count");
    let t = T::lit(threshold as f64);
    mask.iter().filter(|&&m| m > t).count() as u64 * weight
}
