//! Optimizers over parameter groups: each group is updated with ONE dispatch over its flat
//! parameter, gradient and state buffers.

use super::{Lr, ParamGroup};
use crate::{no_grad, Device, Dtype, Error, Result, Tensor};
use autorep_kernels::launch::{amp_start, AMP_LEN, AMP_NONE};
use autorep_kernels::params::{AdamParams, SgdParams};

/// The update rule and its hyperparameters (PyTorch semantics).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OptimizerKind {
    Sgd {
        momentum: f32,
        dampening: f32,
        nesterov: bool,
        weight_decay: f32,
    },
    /// Adam; `decoupled` makes it AdamW.
    Adam {
        beta1: f32,
        beta2: f32,
        eps: f32,
        weight_decay: f32,
        decoupled: bool,
    },
}

impl OptimizerKind {
    pub fn sgd(momentum: f32, weight_decay: f32, nesterov: bool) -> Self {
        OptimizerKind::Sgd {
            momentum,
            dampening: 0.0,
            nesterov,
            weight_decay,
        }
    }

    pub fn adam(weight_decay: f32) -> Self {
        OptimizerKind::Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay,
            decoupled: false,
        }
    }

    pub fn adamw(weight_decay: f32) -> Self {
        OptimizerKind::Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay,
            decoupled: true,
        }
    }
}

/// Lookahead (Zhang et al. 2019): every `k` steps, slow ← slow + α(fast − slow), fast ← slow.
/// As in the official code's (timm's) implementation, the slow weights start at the fast ones
/// at the first sync (step k), not at the initial weights, so that sync moves nothing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lookahead {
    pub k: u64,
    pub alpha: f32,
}

/// The name of the loss scaler's state among [`Optimizer::state_tensors`].
pub const LOSS_SCALE_STATE: &str = "loss_scale";

struct GroupState {
    group: ParamGroup,
    base_lr: f32,
    /// SGD momentum buffer, or Adam's first moment.
    state1: Option<Tensor>,
    /// Adam's second moment.
    state2: Option<Tensor>,
    /// Lookahead's slow weights.
    slow: Option<Tensor>,
}

pub struct Optimizer {
    pub kind: OptimizerKind,
    groups: Vec<GroupState>,
    steps: u64,
    pub lookahead: Option<Lookahead>,
    /// Clip the global gradient norm (over all groups) to this value. Needs the norm on the
    /// host, so it costs one readback per step.
    pub clip_norm: Option<f32>,
    device: Device,
    /// The loss scaler's state on the device ([scale, 1/scale, found, clean steps, applied
    /// steps, on]: `launch::AMP_LEN`); every update reads it. `launch::AMP_NONE` and never
    /// changed without loss scaling.
    amp: Tensor,
    /// Dynamic loss scaling: the growth interval when on.
    scaler: Option<u32>,
    /// The activation type of the steps this optimizer takes.
    precision: Dtype,
}

/// PyTorch GradScaler's defaults: start at 2¹⁶, halve on an overflow, double after 2,000
/// clean steps.
pub const LOSS_SCALE_INIT: f32 = 65536.0;
pub const LOSS_SCALE_GROWTH_INTERVAL: u32 = 2000;

impl Optimizer {
    /// An optimizer over `groups`, each with its own base learning rate.
    pub fn new(
        device: &Device,
        kind: OptimizerKind,
        groups: Vec<(ParamGroup, f32)>,
    ) -> Result<Optimizer> {
        let mut states = Vec::new();
        for (group, base_lr) in groups {
            let zeros = || Tensor::zeros(device, &[group.len()]);
            let (state1, state2) = match kind {
                OptimizerKind::Sgd { momentum, .. } => {
                    ((momentum != 0.0).then(zeros).transpose()?, None)
                }
                OptimizerKind::Adam { .. } => (Some(zeros()?), Some(zeros()?)),
            };
            states.push(GroupState {
                group,
                base_lr,
                state1,
                state2,
                slow: None,
            });
        }
        Ok(Optimizer {
            kind,
            groups: states,
            steps: 0,
            lookahead: None,
            clip_norm: None,
            device: device.clone(),
            amp: Tensor::from_vec(device, &[AMP_LEN], AMP_NONE.to_vec())?,
            scaler: None,
            precision: Dtype::F32,
        })
    }

    /// Train in `precision`: f16 turns on dynamic loss scaling with PyTorch GradScaler's
    /// constants (`LOSS_SCALE_INIT`, `LOSS_SCALE_GROWTH_INTERVAL`); f32 changes nothing.
    pub fn with_precision(self, precision: Dtype) -> Result<Self> {
        let mut opt = match precision {
            Dtype::F16 => self.with_loss_scaling(LOSS_SCALE_INIT, LOSS_SCALE_GROWTH_INTERVAL)?,
            Dtype::F32 => self,
        };
        opt.precision = precision;
        Ok(opt)
    }

    /// The activation type of a training step with this optimizer.
    pub fn precision(&self) -> Dtype {
        self.precision
    }

    /// Dynamic loss scaling for f16 training: backward starts from [`Optimizer::loss_seed`],
    /// the updates unscale the gradients, and a step with an inf or NaN gradient is skipped
    /// and halves the scale — decided on the device, with no readback.
    pub fn with_loss_scaling(mut self, init: f32, growth_interval: u32) -> Result<Self> {
        self.amp = Tensor::from_vec(&self.device, &[AMP_LEN], amp_start(init).to_vec())?;
        self.scaler = Some(growth_interval.max(1));
        Ok(self)
    }

    /// The gradient backward starts from: the current loss scale (a device copy), or 1
    /// without loss scaling.
    pub fn loss_seed(&self) -> Result<Tensor> {
        let scale = Tensor::from_storage(&[1], self.amp.storage().view(0, 1));
        no_grad(|| scale.scale(1.0))
    }

    /// The loss scale its scaler has reached (reads it back), or `None` without loss scaling.
    pub fn loss_scale(&self) -> Result<Option<f32>> {
        match self.scaler {
            Some(_) => Ok(Some(self.loss_scale_state()?[0])),
            None => Ok(None),
        }
    }

    /// Start the loss scaler at `scale` (where it scales and a scale is given): a phase that
    /// replaces the optimizer keeps the scale the run settled at instead of overflowing its way
    /// down from 2¹⁶ again, as one GradScaler over a whole run does. Its own counts (clean and
    /// applied steps) start at 0.
    pub fn starting_at_scale(self, scale: Option<f32>) -> Result<Self> {
        match (self.scaler, scale) {
            (Some(interval), Some(s)) => self.with_loss_scaling(s, interval),
            _ => Ok(self),
        }
    }

    /// The loss scaler's state [scale, 1/scale, found, clean steps, applied steps, on]
    /// (reads it back).
    pub fn loss_scale_state(&self) -> Result<Vec<f32>> {
        self.amp.to_vec()
    }

    pub fn with_lookahead(mut self, la: Lookahead) -> Result<Self> {
        if la.k == 0 {
            return Err(Error::Invalid("lookahead k must be at least 1".into()));
        }
        for g in &mut self.groups {
            g.slow = Some(Tensor::from_vec(
                &self.device,
                &[g.group.len()],
                g.group.flat.to_vec()?,
            )?);
        }
        self.lookahead = Some(la);
        Ok(self)
    }

    pub fn with_clip_norm(mut self, max_norm: f32) -> Self {
        self.clip_norm = Some(max_norm);
        self
    }

    pub fn groups(&self) -> impl Iterator<Item = &ParamGroup> {
        self.groups.iter().map(|g| &g.group)
    }

    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Resume at a step count (bias corrections, Lookahead's period).
    pub fn set_steps(&mut self, steps: u64) {
        self.steps = steps;
    }

    /// A loss scaler whose state a checkpoint did not hold (its run trained in f32): it keeps
    /// its initial scale and counts `steps` applied steps, from which the device takes SGD's
    /// first step, Adam's bias corrections and Lookahead's period under a scaler.
    pub fn restart_scaler_after(&mut self, steps: u64) -> Result<()> {
        if self.scaler.is_some() {
            let mut state = self.amp.to_vec()?; // [scale, 1/scale, found, clean, applied, on]
            (state[2], state[3], state[4]) = (0.0, 0.0, steps as f32);
            self.amp.copy_from_host(&state)?;
        }
        Ok(())
    }

    /// Every state tensor with a stable name, for checkpoints.
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        let mut v = Vec::new();
        for (i, g) in self.groups.iter().enumerate() {
            for (what, t) in [
                ("state1", &g.state1),
                ("state2", &g.state2),
                ("slow", &g.slow),
            ] {
                if let Some(t) = t {
                    v.push((format!("{i}.{}.{what}", g.group.name), t.clone()));
                }
            }
        }
        // The loss scaler's state, so that a resumed f16 run scales and skips as the
        // uninterrupted one does.
        if self.scaler.is_some() {
            v.push((LOSS_SCALE_STATE.into(), self.amp.clone()));
        }
        v
    }

    /// Zero every gradient: one dispatch per group.
    pub fn zero_grad(&self) -> Result<()> {
        self.groups.iter().try_for_each(|g| g.group.zero_grad())
    }

    /// The global L2 norm of all gradients, unscaled under loss scaling (reads one value back
    /// per group; infinite after an overflow, a step the scaler then skips).
    pub fn grad_norm(&self) -> Result<f32> {
        let mut total = 0f64;
        for g in &self.groups {
            total += g.group.grads.sum_squares()?;
        }
        let inv = match self.scaler {
            Some(_) => self.amp.to_vec()?[1] as f64,
            None => 1.0,
        };
        Ok((total.sqrt() * inv) as f32)
    }

    /// Each group's name and learning rate under `lr`.
    pub fn rates(&self, lr: Lr) -> Vec<(String, f32)> {
        self.groups
            .iter()
            .map(|g| (g.group.name.clone(), lr.of(g.base_lr)))
            .collect()
    }

    /// One update of every group at its rate under `lr` (the schedule's value, or a factor of
    /// every base rate).
    pub fn step(&mut self, lr: impl Into<Lr>) -> Result<()> {
        let lr: Lr = lr.into();
        self.steps += 1;
        let t = self.steps;
        let grad_scale = match self.clip_norm {
            Some(max) => {
                let norm = self.grad_norm()?;
                if norm > max {
                    max / (norm + 1e-6)
                } else {
                    1.0
                }
            }
            None => 1.0,
        };
        let amp = &self.amp;
        no_grad(|| {
            if self.scaler.is_some() {
                for g in &self.groups {
                    amp.amp_check_finite_(&g.group.grads)?;
                }
            }
            for g in &self.groups {
                let lr = lr.of(g.base_lr);
                let (param, grad) = (&g.group.flat, &g.group.grads);
                match self.kind {
                    OptimizerKind::Sgd {
                        momentum,
                        dampening,
                        nesterov,
                        weight_decay,
                    } => {
                        let h = SgdParams {
                            lr,
                            momentum,
                            dampening,
                            weight_decay,
                            nesterov,
                            first: t == 1,
                            grad_scale,
                        };
                        param.sgd_step_(grad, g.state1.as_ref(), &h, amp)?
                    }
                    OptimizerKind::Adam {
                        beta1,
                        beta2,
                        eps,
                        weight_decay,
                        decoupled,
                    } => {
                        let h = AdamParams {
                            lr,
                            beta1,
                            beta2,
                            eps,
                            weight_decay,
                            decoupled,
                            bc1: 0.0,
                            bc2: 0.0,
                            grad_scale,
                        }
                        .at_step(t);
                        let (Some(m), Some(v)) = (&g.state1, &g.state2) else {
                            return Err(Error::Invalid(
                                "Adam needs both moments; the optimizer was built without them"
                                    .into(),
                            ));
                        };
                        param.adam_step_(grad, m, v, &h, amp)?
                    }
                }
                if let (Some(la), Some(slow)) = (self.lookahead, &g.slow) {
                    // Under a scaler the device decides, from the steps it applied. The first
                    // sync only starts the slow weights at the fast ones (alpha 1), as timm's
                    // Lookahead in the official code creates them then: it moves nothing.
                    if self.scaler.is_some() || t.is_multiple_of(la.k) {
                        let alpha = if self.scaler.is_none() && t == la.k {
                            1.0
                        } else {
                            la.alpha
                        };
                        param.lookahead_sync_(slow, alpha, la.k, amp)?
                    }
                }
            }
            if let Some(interval) = self.scaler {
                amp.amp_update_(interval)?;
            }
            Ok(())
        })
    }
}
