//! Optimizers over parameter groups: each group is updated with ONE dispatch over its flat
//! parameter, gradient and state buffers.

use super::ParamGroup;
use crate::{no_grad, Device, Error, Result, Tensor};
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
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lookahead {
    pub k: u64,
    pub alpha: f32,
}

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
}

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
        })
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
        v
    }

    /// Zero every gradient: one dispatch per group.
    pub fn zero_grad(&self) -> Result<()> {
        self.groups.iter().try_for_each(|g| g.group.zero_grad())
    }

    /// The global L2 norm of all gradients (reads one value back per group).
    pub fn grad_norm(&self) -> Result<f32> {
        let mut total = 0f64;
        for g in &self.groups {
            total += g.group.grads.sum_squares()?;
        }
        Ok(total.sqrt() as f32)
    }

    /// One update of every group at learning rate base_lr · `lr_factor` (the schedule's value).
    pub fn step(&mut self, lr_factor: f32) -> Result<()> {
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
        no_grad(|| {
            for g in &self.groups {
                let lr = g.base_lr * lr_factor;
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
                        param.sgd_step_(grad, g.state1.as_ref(), &h)?
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
                        param.adam_step_(grad, m, v, &h)?
                    }
                }
                if let (Some(la), Some(slow)) = (self.lookahead, &g.slow) {
                    if t.is_multiple_of(la.k) {
                        param.lookahead_sync_(slow, la.alpha)?
                    }
                }
            }
            Ok(())
        })
    }
}
