//! CPU twin of `shaders/bn_act.wgsl`: batch norm, an optional residual add and the activation
//! site after it, with the site's input recomputed rather than stored. Operation for
//! operation as the shader; the CPU device itself keeps the threaded unfused kernels (see
//! `norm.rs`), so these are the reference the GPU kernels are tested against.

use super::Real;
use crate::params::{BnAct, BnShape, FusedAct};

/// The operands the fused kernels share: x, the residual r, fold and the gate's mask and
/// coefficients.
pub struct BnActSlices<'a, T> {
    pub x: &'a [T],
    pub r: Option<&'a [T]>,
    /// [γ·invstd | β | μ | invstd] (4C) from [`bn_fold`].
    pub fold: &'a [T],
    pub gate: Option<(&'a [T], &'a [T])>,
}

/// fold = [γ·invstd | β | μ | invstd] per channel.
pub fn bn_fold<T: Real>(
    s: BnShape,
    eps: T,
    mean: &[T],
    var: &[T],
    gamma: &[T],
    beta: &[T],
    fold: &mut [T],
) {
    let c = s.channels;
    assert_eq!(fold.len(), 4 * c, "bn_fold: fold holds 4C values");
    for ch in 0..c {
        let is = T::one() / (var[ch] + eps).sqrt();
        fold[ch] = gamma[ch] * is;
        fold[c + ch] = beta[ch];
        fold[2 * c + ch] = mean[ch];
        fold[3 * c + ch] = is;
    }
}

impl<T: Real> BnActSlices<'_, T> {
    fn check(&self, a: &BnAct) {
        a.check();
        assert_eq!(
            self.x.len(),
            a.s.len(),
            "fused batch norm: x length vs {a:?}"
        );
        assert_eq!(
            self.r.is_some(),
            a.residual,
            "fused batch norm: residual vs {a:?}"
        );
        if let Some(r) = self.r {
            assert_eq!(r.len(), a.s.len(), "fused batch norm: residual length");
        }
        assert_eq!(self.fold.len(), 4 * a.s.channels);
    }

    fn xhat(&self, a: &BnAct, i: usize, c: usize) -> T {
        let ch = a.s.channels;
        (self.x[i] - self.fold[2 * ch + c]) * self.fold[3 * ch + c]
    }

    fn site_input(&self, a: &BnAct, i: usize, c: usize) -> T {
        let ch = a.s.channels;
        let s = (self.x[i] - self.fold[2 * ch + c]) * self.fold[c] + self.fold[ch + c];
        self.r.map_or(s, |r| s + r[i])
    }

    fn mask(&self, a: &BnAct, i: usize) -> T {
        let g = a.gate().expect("a gate");
        let (m, _) = self.gate.expect("a gate's mask");
        m[(i % g.chw()) / g.group()]
    }

    fn poly(&self, a: &BnAct, s: T, c: usize) -> T {
        let (g, (_, coef)) = (a.gate().expect("a gate"), self.gate.expect("a gate's coef"));
        super::gate::poly(g, coef, s, c)
    }

    fn activate(&self, a: &BnAct, s: T, i: usize, c: usize) -> T {
        match a.act {
            FusedAct::Relu => s.max(T::zero()),
            FusedAct::Silu => s * super::sigmoid_of(s),
            FusedAct::Gate(_) => {
                let m = self.mask(a, i);
                m * s.max(T::zero()) + (T::one() - m) * self.poly(a, s, c)
            }
        }
    }

    fn activate_grad(&self, a: &BnAct, g: T, s: T, i: usize, c: usize) -> T {
        let relu_slope = if s > T::zero() { T::one() } else { T::zero() };
        match a.act {
            FusedAct::Relu => g * relu_slope,
            FusedAct::Silu => {
                let sg = super::sigmoid_of(s);
                g * sg * (T::one() + s * (T::one() - sg))
            }
            FusedAct::Gate(p) => {
                let m = self.mask(a, i);
                let (_, coef) = self.gate.unwrap();
                let slope = T::lit(2.0 * p.s2 as f64) * super::gate::c2(&p, coef, c) * s
                    + T::lit(p.s1 as f64) * coef[p.channels + c];
                g * (m * relu_slope + (T::one() - m) * slope)
            }
        }
    }
}

fn channel(s: BnShape, i: usize) -> usize {
    (i / s.hw) % s.channels
}

/// Element indices of channel c, image-major.
fn channel_elements(s: BnShape, c: usize) -> impl Iterator<Item = usize> {
    (0..s.n).flat_map(move |b| {
        let base = (b * s.channels + c) * s.hw;
        base..base + s.hw
    })
}

/// z = act(BN(x) (+ r)).
pub fn bn_act_forward<T: Real>(a: &BnAct, inp: &BnActSlices<T>, z: &mut [T]) {
    let _p = super::profile::span("bn_act_forward");
    inp.check(a);
    for (i, o) in z.iter_mut().enumerate() {
        let c = channel(a.s, i);
        *o = inp.activate(a, inp.site_input(a, i, c), i, c);
    }
}

/// Per-channel mean and biased variance of s = BN(x) (+ r), two passes as `bn_stats`.
pub fn bn_act_stats<T: Real>(a: &BnAct, inp: &BnActSlices<T>, mean: &mut [T], var: &mut [T]) {
    let _p = super::profile::span("bn_act_stats");
    inp.check(a);
    let k = T::from_usize(a.s.count().max(1)).unwrap();
    for c in 0..a.s.channels {
        let s = |i| inp.site_input(a, i, c);
        let mu = channel_elements(a.s, c).map(s).sum::<T>() / k;
        let sq = channel_elements(a.s, c).map(|i| (s(i) - mu) * (s(i) - mu));
        mean[c] = mu;
        var[c] = sq.sum::<T>() / k;
    }
}

/// sums = [dβ | dγ | dcoef] at 0, stride and 2·stride from dz = `g`; dL/ds into `dy` when
/// given.
pub fn bn_act_backward_reduce<T: Real>(
    a: &BnAct,
    inp: &BnActSlices<T>,
    g: &[T],
    sums: &mut [T],
    mut dy: Option<&mut [T]>,
) {
    let _p = super::profile::span("bn_act_backward_reduce");
    inp.check(a);
    assert_eq!(sums.len(), a.sums_len(), "fused batch norm: sums length");
    let (ch, stride) = (a.s.channels, a.stride());
    for c in 0..ch {
        let (mut sdy, mut sdyx) = (T::zero(), T::zero());
        let mut w = [T::zero(); 3];
        for i in channel_elements(a.s, c) {
            let s = inp.site_input(a, i, c);
            let d = inp.activate_grad(a, g[i], s, i, c);
            if let Some(dy) = dy.as_deref_mut() {
                dy[i] = d;
            }
            sdy = sdy + d;
            sdyx = sdyx + d * inp.xhat(a, i, c);
            if a.gate().is_some() {
                let wi = g[i] * (T::one() - inp.mask(a, i));
                w = [w[0] + wi, w[1] + wi * s, w[2] + wi * s * s];
            }
        }
        sums[c] = sdy;
        sums[stride + c] = sdyx;
        if let Some(p) = a.gate() {
            let (_, coef) = inp.gate.unwrap();
            let base = 2 * stride;
            sums[base + c] = w[0];
            sums[base + ch + c] = T::lit(p.s1 as f64) * w[1];
            let raw = coef[2 * ch + c];
            let inside = p.clip2 <= 0.0 || raw.abs() <= T::lit(p.clip2 as f64);
            sums[base + 2 * ch + c] = if inside {
                T::lit(p.s2 as f64) * w[2]
            } else {
                T::zero()
            };
        }
    }
}

/// dx from dz = `g` and the sums of [`bn_act_backward_reduce`], recomputing dL/ds.
pub fn bn_act_backward_input<T: Real>(
    a: &BnAct,
    inp: &BnActSlices<T>,
    g: &[T],
    sums: &[T],
    dx: &mut [T],
) {
    let _p = super::profile::span("bn_act_backward_input");
    inp.check(a);
    let k = T::from_usize(a.s.count().max(1)).unwrap();
    let stride = a.stride();
    for (i, o) in dx.iter_mut().enumerate() {
        let c = channel(a.s, i);
        let d = inp.activate_grad(a, g[i], inp.site_input(a, i, c), i, c);
        let v = if a.train {
            d - sums[c] / k - inp.xhat(a, i, c) * (sums[stride + c] / k)
        } else {
            d
        };
        *o = inp.fold[c] * v;
    }
}

/// dm\[gate\] = Σ g·(ReLU(s) − P(s)) over the batch and the gate's pixels.
pub fn bn_act_grad_mask<T: Real>(a: &BnAct, inp: &BnActSlices<T>, g: &[T], dm: &mut [T]) {
    let _p = super::profile::span("bn_act_grad_mask");
    inp.check(a);
    let p = *a.gate().expect("bn_act_grad_mask needs a gate");
    for (gt, o) in dm.iter_mut().enumerate() {
        let mut acc = T::zero();
        for b in 0..p.batch {
            for e in 0..p.group() {
                let j = gt * p.group() + e;
                let i = b * p.chw() + j;
                let c = j / p.hw;
                let s = inp.site_input(a, i, c);
                acc = acc + g[i] * (s.max(T::zero()) - inp.poly(a, s, c));
            }
        }
        *o = acc;
    }
}
