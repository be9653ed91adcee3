//! An activation site: one ReLU (or SiLU) of a model, in execution order. AutoReP turns a
//! site into a gated ReLU/polynomial; until then it is a plain ReLU, or SiLU where the model
//! uses it (EfficientNet; gated, its kept branch is ReLU, as the official code replaces it).

use super::BatchNorm2d;
use crate::tensor::{GateState, ReluCounter, SiteAct, SiteStats};
use crate::{Result, Tensor};
use autorep_kernels::params::{GateGrad, GateParams};
use std::rc::Rc;

/// The state of a gated site (see `autorep` for how it is trained).
pub struct Gated {
    /// The trainable gate parameter: AutoReP's indicator h, or SNL's α (then also the mask).
    pub gate: Tensor,
    /// The binary mask (AutoReP) or α itself (SNL).
    pub mask: Tensor,
    /// Per-channel [c0 | c1 | c2]; a parameter unless the replacement is fixed (identity).
    pub coef: Tensor,
    pub channel_wise: bool,
    pub s1: f32,
    pub s2: f32,
    /// c2 clamped to ±clip2 in every forward (0: off).
    pub clip2: f32,
    pub grad: GateGrad,
    /// Running per-channel mean and variance of the site's input (DaPa statistics).
    pub stats: Option<(Tensor, Tensor)>,
}

pub enum SiteMode {
    Relu,
    Gated(Gated),
}

pub struct ActivationSite {
    pub name: String,
    pub channels: usize,
    /// H·W of the site's input (1 after a linear layer).
    pub hw: usize,
    pub mode: SiteMode,
    /// The ungated activation is SiLU rather than ReLU.
    pub silu: bool,
}

/// What a forward pass needs beyond the input.
#[derive(Clone)]
pub struct ForwardCtx {
    pub train: bool,
    /// The model's exact ReLU counter (gated sites read it in their backward pass).
    pub counter: Option<Rc<ReluCounter>>,
    /// Momentum of the DaPa statistics gated sites keep of their input.
    pub stats_momentum: f32,
    /// Overrides every BatchNorm's momentum (re-estimating running statistics: 1/k at batch k
    /// gives their plain average).
    pub bn_momentum: Option<f32>,
    /// Seeds this training step's random regularisers (dropout, stochastic depth), drawn from
    /// (run seed, epoch, step) so a resumed run draws the same; `None` applies none.
    pub noise_seed: Option<u64>,
    /// Batch norms and the activation sites after them run as one fused op on a GPU (see
    /// [`ActivationSite::forward_bn`]); `AUTOREP_FUSE=0` turns it off, for measuring.
    pub fuse: bool,
}

/// Whether forward passes fuse batch norm with the activation after it, unless a context
/// says otherwise: on, unless the environment sets `AUTOREP_FUSE=0`.
pub fn fusion_default() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| autorep_kernels::knobs::switch("AUTOREP_FUSE").unwrap_or(true))
}

impl ForwardCtx {
    pub fn train() -> Self {
        ForwardCtx {
            train: true,
            counter: None,
            stats_momentum: 0.1,
            bn_momentum: None,
            noise_seed: None,
            fuse: fusion_default(),
        }
    }
    pub fn eval() -> Self {
        ForwardCtx {
            train: false,
            counter: None,
            stats_momentum: 0.1,
            bn_momentum: None,
            noise_seed: None,
            fuse: fusion_default(),
        }
    }

    /// The model's ReLU counter, or a fresh one for a pass that has none (a gated site's
    /// backward reads one).
    fn relu_counter(&self, device: &crate::Device) -> Result<Rc<ReluCounter>> {
        Ok(match &self.counter {
            Some(c) => c.clone(),
            None => Rc::new(ReluCounter::new(device)?),
        })
    }

    /// The generator of this training step's random regularisers, when it has a noise seed.
    pub fn noise(&self) -> Option<crate::data::SplitMix64> {
        let seed = self.noise_seed.filter(|_| self.train)?;
        Some(crate::data::SplitMix64::new(seed))
    }
}

impl ActivationSite {
    pub fn new(name: &str, channels: usize, hw: usize) -> Self {
        ActivationSite {
            name: name.to_string(),
            channels,
            hw,
            mode: SiteMode::Relu,
            silu: false,
        }
    }

    /// A site whose ungated activation is SiLU (EfficientNet).
    pub fn new_silu(name: &str, channels: usize, hw: usize) -> Self {
        ActivationSite {
            silu: true,
            ..ActivationSite::new(name, channels, hw)
        }
    }

    /// ReLUs this site evaluates per image while every gate is on.
    pub fn relus(&self) -> usize {
        self.channels * self.hw
    }

    pub fn gate_params(&self, batch: usize) -> Option<GateParams> {
        match &self.mode {
            SiteMode::Relu => None,
            SiteMode::Gated(g) => Some(GateParams {
                batch,
                channels: self.channels,
                hw: self.hw,
                channel_wise: g.channel_wise,
                s1: g.s1,
                s2: g.s2,
                clip2: g.clip2,
            }),
        }
    }

    pub fn forward(&self, x: &Tensor, ctx: &ForwardCtx) -> Result<Tensor> {
        match &self.mode {
            SiteMode::Relu if self.silu => x.silu(),
            SiteMode::Relu => x.relu(),
            SiteMode::Gated(g) => {
                if ctx.train {
                    if let Some((mean, var)) = &g.stats {
                        // The affine-free statistics DaPa fits to (the official code's private
                        // BatchNorm, whose output is discarded).
                        let cfg = crate::tensor::BnConfig {
                            momentum: ctx.stats_momentum,
                            ..Default::default()
                        };
                        crate::no_grad(|| x.bn_statistics(mean, var, cfg, &self.name))?;
                    }
                }
                let p = self.gate_params(x.shape()[0]).expect("gated");
                let counter = ctx.relu_counter(&x.device())?;
                x.gate(&g.mask, &g.coef, &g.gate, p, g.grad, &counter)
            }
        }
    }

    /// The site applied to bn(x) + residual. On a GPU (unless `ctx.fuse` is off) this is one
    /// fused op that neither writes nor keeps the batch norm's output or the sum; elsewhere
    /// it is the batch norm, the add and [`ActivationSite::forward`], whose CPU kernels are
    /// threaded and vectorised where the fused twins are the plain reference.
    pub fn forward_bn(
        &self,
        bn: &BatchNorm2d,
        x: &Tensor,
        residual: Option<&Tensor>,
        ctx: &ForwardCtx,
    ) -> Result<Tensor> {
        if !ctx.fuse || !x.device().is_gpu() {
            let y = bn.forward(x, ctx)?;
            let y = match residual {
                Some(r) => y.add(r)?,
                None => y,
            };
            return self.forward(&y, ctx);
        }
        let (act, stats) = match &self.mode {
            SiteMode::Relu if self.silu => (SiteAct::Silu, None),
            SiteMode::Relu => (SiteAct::Relu, None),
            SiteMode::Gated(g) => {
                let counter = ctx.relu_counter(&x.device())?;
                let act = SiteAct::Gate(GateState {
                    mask: g.mask.detach(),
                    coef: g.coef.clone(),
                    gate: g.gate.clone(),
                    p: self.gate_params(x.shape()[0]).expect("gated"),
                    grad: g.grad,
                    counter,
                });
                // The affine-free statistics DaPa fits to, of the site's input.
                let stats = g.stats.as_ref().map(|(mean, var)| SiteStats {
                    mean,
                    var,
                    momentum: ctx.stats_momentum,
                });
                (act, stats)
            }
        };
        x.batch_norm_act(bn.params(ctx), residual, act, ctx.train, stats, &bn.name)
    }

    /// The site's trainable tensors (gate parameter and coefficients when gated).
    pub fn params(&self) -> Vec<Tensor> {
        match &self.mode {
            SiteMode::Relu => vec![],
            SiteMode::Gated(g) => {
                let mut v = vec![];
                if g.gate.requires_grad() {
                    v.push(g.gate.clone());
                }
                if g.coef.requires_grad() {
                    v.push(g.coef.clone());
                }
                v
            }
        }
    }
}
