//! Optimizer hyperparameters of one step.

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

    /// ln β1 and ln β2 from the betas as written (as [`AdamParams::at_step`] reads them), for
    /// the kernel's bias corrections under a loss scaler, whose step count lives on the device.
    pub fn ln_betas(&self) -> (f32, f32) {
        let ln = |beta: f32| as_written(beta).ln() as f32;
        (ln(self.beta1), ln(self.beta2))
    }
}

/// The f64 nearest to the shortest decimal that round-trips to `v`.
fn as_written(v: f32) -> f64 {
    v.to_string()
        .parse()
        .expect("a float's Display output parses")
}
