//! Optimizer updates over a flat parameter group (every tensor of the group back to back in
//! one slice), with PyTorch's semantics and evaluation order so a run can be compared with it.

use super::Real;
use crate::params::{AdamParams, SgdParams};

fn lit<T: Real>(v: f32) -> T {
    T::from_f32(v).expect("representable")
}

/// The loss scaler's state as the updates read it (see [`crate::launch::AMP_LEN`]): `None`
/// when it flagged an inf/NaN gradient (the step is skipped), else the gradient's unscaling
/// factor and, under a scaler, the steps applied so far (which replace the host's count).
fn scaler(amp: &[f32]) -> Option<(f32, Option<u64>)> {
    (amp[2] == 0.0).then_some((amp[1], (amp[5] != 0.0).then_some(amp[4] as u64)))
}

/// One SGD step over a flat group. `momentum_buf` may be `None` only when momentum is 0.
/// `amp` is the loss scaler's state: the gradient is unscaled by it, a flagged step is
/// skipped, and under a scaler its applied steps decide the first step.
pub fn sgd_step<T: Real>(
    h: &SgdParams,
    grad: &[T],
    param: &mut [T],
    momentum_buf: Option<&mut [T]>,
    amp: &[f32],
) {
    let _p = super::profile::span("sgd_step");
    let Some((unscale, applied)) = scaler(amp) else {
        return;
    };
    let h = &SgdParams {
        grad_scale: h.grad_scale * unscale,
        first: applied.map_or(h.first, |t| t == 0),
        ..*h
    };
    assert_eq!(
        grad.len(),
        param.len(),
        "sgd_step: grad and param lengths differ"
    );
    let (lr, wd, scale) = (
        lit::<T>(h.lr),
        lit::<T>(h.weight_decay),
        lit::<T>(h.grad_scale),
    );
    if h.momentum == 0.0 {
        for (w, &g) in param.iter_mut().zip(grad) {
            *w = *w - lr * (g * scale + wd * *w);
        }
        return;
    }
    let buf = momentum_buf.expect("sgd_step: momentum != 0 needs a momentum buffer");
    assert_eq!(
        buf.len(),
        param.len(),
        "sgd_step: momentum buffer length differs"
    );
    let (mu, keep) = (lit::<T>(h.momentum), T::one() - lit::<T>(h.dampening));
    for ((w, &g), b) in param.iter_mut().zip(grad).zip(buf.iter_mut()) {
        let g = g * scale + wd * *w;
        *b = if h.first { g } else { mu * *b + keep * g };
        let step = if h.nesterov { g + mu * *b } else { *b };
        *w = *w - lr * step;
    }
}

/// One Adam / AdamW step over a flat group; `m` and `v` are the first and second moments;
/// `amp` as for [`sgd_step`] (under a scaler the bias corrections follow its applied steps).
pub fn adam_step<T: Real>(
    h: &AdamParams,
    grad: &[T],
    param: &mut [T],
    m: &mut [T],
    v: &mut [T],
    amp: &[f32],
) {
    let _p = super::profile::span("adam_step");
    let Some((unscale, applied)) = scaler(amp) else {
        return;
    };
    let h = AdamParams {
        grad_scale: h.grad_scale * unscale,
        ..*h
    };
    let h = &applied.map_or(h, |t| h.at_step(t + 1));
    let n = param.len();
    assert!(
        grad.len() == n && m.len() == n && v.len() == n,
        "adam_step: length mismatch"
    );
    let (lr, wd, scale) = (
        lit::<T>(h.lr),
        lit::<T>(h.weight_decay),
        lit::<T>(h.grad_scale),
    );
    let (b1, b2, eps) = (lit::<T>(h.beta1), lit::<T>(h.beta2), lit::<T>(h.eps));
    let step_size = lr / lit::<T>(h.bc1);
    let bc2_sqrt = lit::<T>(h.bc2).sqrt();
    let decay = T::one() - lr * wd;
    for (((w, &g), m), v) in param
        .iter_mut()
        .zip(grad)
        .zip(m.iter_mut())
        .zip(v.iter_mut())
    {
        let mut g = g * scale;
        if h.decoupled {
            *w = *w * decay;
        } else {
            g = g + wd * *w;
        }
        *m = b1 * *m + (T::one() - b1) * g;
        *v = b2 * *v + (T::one() - b2) * g * g;
        *w = *w - step_size * (*m / (v.sqrt() / bc2_sqrt + eps));
    }
}

/// Lookahead synchronisation: slow ← slow + α·(fast − slow); fast ← slow. Skipped with a
/// step `amp` flags; under a scaler (called every step) it runs only when the applied steps,
/// this one included, reach a multiple of `period`.
pub fn lookahead_sync<T: Real>(alpha: T, period: u64, fast: &mut [T], slow: &mut [T], amp: &[f32]) {
    let _p = super::profile::span("lookahead_sync");
    let alpha = match scaler(amp) {
        None => return,
        Some((_, Some(t))) if !(t + 1).is_multiple_of(period.max(1)) => return,
        // Under a scaler the first sync only starts the slow weights at the fast ones.
        Some((_, Some(t))) if t + 1 == period.max(1) => T::one(),
        Some(_) => alpha,
    };
    assert_eq!(fast.len(), slow.len(), "lookahead_sync: length mismatch");
    for (f, s) in fast.iter_mut().zip(slow.iter_mut()) {
        // alpha 1 copies exactly (slow + (fast − slow) need not round to fast).
        *s = if alpha == T::one() {
            *f
        } else {
            *s + alpha * (*f - *s)
        };
        *f = *s;
    }
}

/// Σ x² (the squared global gradient norm of a group).
pub fn sum_squares<T: Real>(x: &[T]) -> T {
    let _p = super::profile::span("sum_squares");
    x.iter().map(|&v| v * v).sum()
}

/// The loss scaler's finite check: amp\[2\] = 1 if any gradient is inf or NaN.
pub fn amp_check_finite(grad: &[f32], amp: &mut [f32]) {
    if grad.iter().any(|g| !g.is_finite()) {
        amp[2] = 1.0;
    }
}

/// The loss scaler's update after a step: halve on an overflow, double after
/// `growth_interval` clean steps, clear the flag, count an applied step; amp = [scale,
/// 1/scale, found, clean, applied, on].
pub fn amp_update(growth_interval: u32, amp: &mut [f32]) {
    let (mut scale, mut clean) = (amp[0], amp[3]);
    if amp[2] != 0.0 {
        scale *= 0.5;
        clean = 0.0;
    } else {
        amp[4] += 1.0;
        clean += 1.0;
        if clean >= growth_interval as f32 {
            // The scale stays at most 2^126, its inverse a normal f32 (shaders/optim.wgsl).
            if scale <= 2f32.powi(125) {
                scale *= 2.0;
            }
            clean = 0.0;
        }
    }
    amp[..4].copy_from_slice(&[scale, 1.0 / scale, 0.0, clean]);
}
