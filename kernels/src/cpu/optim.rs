//! Optimizer updates over a flat parameter group (every tensor of the group back to back in
//! one slice), with PyTorch's semantics and evaluation order so a run can be compared with it.

use super::Real;

/// Hyperparameters of one SGD step (PyTorch `torch.optim.SGD`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SgdParams {
    pub lr: f32,
    pub momentum: f32,
    pub dampening: f32,
    pub weight_decay: f32,
    pub nesterov: bool,
    /// True on the group's first step: PyTorch seeds the momentum buffer with the gradient
    /// itself, without dampening.
    pub first: bool,
    /// Multiplies the raw gradient before anything else (global grad-norm clipping; 1 if off).
    pub grad_scale: f32,
}

impl SgdParams {
    /// Plain SGD at learning rate `lr` (no momentum, no decay, no clipping).
    pub fn new(lr: f32) -> Self {
        SgdParams {
            lr,
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
            first: true,
            grad_scale: 1.0,
        }
    }
}

/// Hyperparameters of one Adam / AdamW step (PyTorch `torch.optim.Adam` / `AdamW`, amsgrad off).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamParams {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    /// AdamW: p ← p·(1 − lr·wd) instead of adding wd·p to the gradient.
    pub decoupled: bool,
    /// Bias corrections 1 − β1^t and 1 − β2^t for the 1-based step t; see [`AdamParams::at_step`].
    pub bc1: f32,
    pub bc2: f32,
    /// Multiplies the raw gradient before anything else (global grad-norm clipping; 1 if off).
    pub grad_scale: f32,
}

impl AdamParams {
    /// PyTorch's defaults (β = (0.9, 0.999), eps = 1e-8, no decay) at step 1.
    pub fn new(lr: f32) -> Self {
        AdamParams {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled: false,
            bc1: 0.0,
            bc2: 0.0,
            grad_scale: 1.0,
        }
        .at_step(1)
    }

    /// The same hyperparameters with the bias corrections of 1-based step `t`. Computed in f64
    /// from the decimal value the betas were written as (PyTorch keeps them as Python floats):
    /// widening 0.999f32 directly would shift 1 − β2 by 1.3e-5 relative.
    pub fn at_step(self, t: u64) -> Self {
        let t = t.clamp(1, i32::MAX as u64) as i32;
        let correction = |beta: f32| (1.0 - as_written(beta).powi(t)) as f32;
        AdamParams {
            bc1: correction(self.beta1),
            bc2: correction(self.beta2),
            ..self
        }
    }
}

/// The f64 nearest to the shortest decimal that round-trips to `v`.
fn as_written(v: f32) -> f64 {
    v.to_string()
        .parse()
        .expect("a float's Display output parses")
}

fn lit<T: Real>(v: f32) -> T {
    T::from_f32(v).expect("representable")
}

/// One SGD step over a flat group. `momentum_buf` may be `None` only when momentum is 0.
pub fn sgd_step<T: Real>(
    h: &SgdParams,
    grad: &[T],
    param: &mut [T],
    momentum_buf: Option<&mut [T]>,
) {
    let _p = super::profile::span("sgd_step");
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

/// One Adam / AdamW step over a flat group; `m` and `v` are the first and second moments.
pub fn adam_step<T: Real>(h: &AdamParams, grad: &[T], param: &mut [T], m: &mut [T], v: &mut [T]) {
    let _p = super::profile::span("adam_step");
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

/// Lookahead synchronisation: slow ← slow + α·(fast − slow); fast ← slow.
pub fn lookahead_sync<T: Real>(alpha: T, fast: &mut [T], slow: &mut [T]) {
    let _p = super::profile::span("lookahead_sync");
    assert_eq!(fast.len(), slow.len(), "lookahead_sync: length mismatch");
    for (f, s) in fast.iter_mut().zip(slow.iter_mut()) {
        *s = *s + alpha * (*f - *s);
        *f = *s;
    }
}

/// Σ x² (the squared global gradient norm of a group).
pub fn sum_squares<T: Real>(x: &[T]) -> T {
    let _p = super::profile::span("sum_squares");
    x.iter().map(|&v| v * v).sum()
}
