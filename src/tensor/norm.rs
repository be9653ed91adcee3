//! BatchNorm2d on tensors, with PyTorch's semantics (biased batch variance for normalising,
//! unbiased for the running estimate, momentum 0.1 and eps 1e-5 by default).

use super::backend::{place, Placed};
use super::{Op, Storage, Tensor};
use crate::error::{Error, Result};
use autorep_kernels::{cpu, launch, params::BnShape};

/// Batch-norm hyperparameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BnConfig {
    pub momentum: f32,
    pub eps: f32,
}

impl Default for BnConfig {
    fn default() -> Self {
        BnConfig {
            momentum: 0.1,
            eps: 1e-5,
        }
    }
}

fn shape_of(x: &Tensor, channels: usize, layer: &str) -> Result<BnShape> {
    let sh = x.shape();
    if sh.len() < 2 || sh[1] != channels || x.numel() == 0 {
        return Err(Error::Invalid(format!(
            "{layer}: batch norm over {channels} channels cannot take input {sh:?}"
        )));
    }
    Ok(BnShape {
        n: sh[0],
        channels,
        hw: sh[2..].iter().product(),
    })
}

impl Tensor {
    /// Per-channel batch statistics (mean, biased variance), and the running estimates
    /// updated in place with the unbiased variance. No graph.
    pub fn bn_statistics(
        &self,
        running_mean: &Tensor,
        running_var: &Tensor,
        cfg: BnConfig,
        layer: &str,
    ) -> Result<(Tensor, Tensor)> {
        let s = shape_of(self, running_mean.numel(), layer)?;
        let dev = self.device();
        let (mean, var) = (
            Storage::alloc(&dev, s.channels)?,
            Storage::alloc(&dev, s.channels)?,
        );
        let (xs, rms, rvs) = (
            self.storage(),
            running_mean.storage(),
            running_var.storage(),
        );
        match place("batch_norm", [&*xs, &mean, &var, &*rms, &*rvs])? {
            Placed::Gpu(g, [x, m, v, rm, rv]) => {
                launch::bn_stats(g, s, x, m, v)?;
                launch::bn_update_running(g, s.channels, s.count(), cfg.momentum, m, v, rm, rv)?;
            }
            Placed::Cpu => {
                cpu::bn_stats(s, &xs.cpu(), &mut mean.cpu_mut(), &mut var.cpu_mut());
                cpu::bn_update_running(
                    s.channels,
                    s.count(),
                    cfg.momentum,
                    &mean.cpu(),
                    &var.cpu(),
                    &mut rms.cpu_mut(),
                    &mut rvs.cpu_mut(),
                );
            }
        }
        let c = vec![s.channels];
        Ok((
            Tensor::result(c.clone(), mean, &[], || unreachable!()),
            Tensor::result(c, var, &[], || unreachable!()),
        ))
    }

    /// Batch norm. In training mode the batch statistics normalise and the running ones are
    /// updated; in eval mode the running statistics normalise. `affine` is (γ, β).
    pub fn batch_norm(
        &self,
        affine: Option<(&Tensor, &Tensor)>,
        running_mean: &Tensor,
        running_var: &Tensor,
        train: bool,
        cfg: BnConfig,
        layer: &str,
    ) -> Result<Tensor> {
        let s = shape_of(self, running_mean.numel(), layer)?;
        let (mean, var) = if train {
            self.bn_statistics(running_mean, running_var, cfg, layer)?
        } else {
            (running_mean.detach(), running_var.detach())
        };
        let out = self.storage().alloc_like(s.len())?;
        let (gs, bs) = (affine.map(|a| a.0.storage()), affine.map(|a| a.1.storage()));
        let (xs, ms, vs) = (self.storage(), mean.storage(), var.storage());
        let aff = match (gs.as_deref(), bs.as_deref()) {
            (Some(ga), Some(be)) => Some(place("batch_norm", [&*xs, ga, be])?),
            _ => None,
        };
        match place("batch_norm", [&*xs, &*ms, &*vs, &out])? {
            Placed::Gpu(g, [x, m, v, y]) => {
                let aff = match aff {
                    Some(Placed::Gpu(_, [_, ga, be])) => Some((ga, be)),
                    _ => None,
                };
                launch::bn_forward(g, s, cfg.eps, x, m, v, aff, y)?
            }
            Placed::Cpu => {
                let (ga, be) = (
                    gs.as_deref().map(|t| t.cpu()),
                    bs.as_deref().map(|t| t.cpu()),
                );
                let aff = ga.as_deref().zip(be.as_deref());
                cpu::bn_forward(
                    s,
                    cfg.eps,
                    &xs.cpu(),
                    &ms.cpu(),
                    &vs.cpu(),
                    aff,
                    &mut out.cpu_mut(),
                )
            }
        }
        let mut inputs = vec![self];
        if let Some((g, b)) = affine {
            inputs.extend([g, b]);
        }
        Ok(Tensor::result(self.shape().to_vec(), out, &inputs, || {
            Op::BatchNorm {
                x: self.clone(),
                gamma: affine.map(|a| a.0.clone()),
                beta: affine.map(|a| a.1.clone()),
                mean,
                var,
                s,
                eps: cfg.eps,
                train,
            }
        }))
    }

    /// (dx, dγ, dβ) of batch norm given dy = self (no graph).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn batch_norm_backward(
        &self,
        x: &Tensor,
        gamma: Option<&Tensor>,
        mean: &Tensor,
        var: &Tensor,
        s: BnShape,
        eps: f32,
        train: bool,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let dev = self.device();
        let (dx, dg, db) = (
            self.storage().alloc_like(s.len())?,
            Storage::alloc(&dev, s.channels)?,
            Storage::alloc(&dev, s.channels)?,
        );
        let gs = gamma.map(|t| t.storage());
        let (xst, mst, vst, yst) = (x.storage(), mean.storage(), var.storage(), self.storage());
        let gamma_placed = match gs.as_deref() {
            Some(ga) => Some(place("batch_norm backward", [&*xst, ga])?),
            None => None,
        };
        match place(
            "batch_norm backward",
            [&*xst, &*mst, &*vst, &*yst, &dx, &dg, &db],
        )? {
            Placed::Gpu(g, [xb, m, v, dy, dxb, dgb, dbb]) => {
                let ga = match gamma_placed {
                    Some(Placed::Gpu(_, [_, b])) => Some(b),
                    _ => None,
                };
                if train {
                    launch::bn_backward(g, s, eps, xb, m, v, ga, dy, dgb, dbb, dxb)?;
                } else {
                    launch::bn_backward_reduce(g, s, eps, xb, m, v, dy, dgb, dbb)?;
                    launch::bn_backward_input_eval(g, s, eps, v, ga, dy, dxb)?;
                }
            }
            Placed::Cpu => {
                let ga = gs.as_deref().map(|t| t.cpu());
                let (xs, m, v, dy) = (xst.cpu(), mst.cpu(), vst.cpu(), yst.cpu());
                let (dxs, dgs, dbs) = (&dx, &dg, &db);
                if train {
                    cpu::bn_backward(
                        s,
                        eps,
                        &xs,
                        &m,
                        &v,
                        ga.as_deref(),
                        &dy,
                        &mut dgs.cpu_mut(),
                        &mut dbs.cpu_mut(),
                        &mut dxs.cpu_mut(),
                    );
                } else {
                    cpu::bn_backward_reduce(
                        s,
                        eps,
                        &xs,
                        &m,
                        &v,
                        &dy,
                        &mut dgs.cpu_mut(),
                        &mut dbs.cpu_mut(),
                    );
                    cpu::bn_backward_input_eval(s, eps, &v, ga.as_deref(), &dy, &mut dxs.cpu_mut());
                }
            }
        }
        let mk = |st: Storage, sh: Vec<usize>| Tensor::result(sh, st, &[], || unreachable!());
        Ok((
            mk(dx, x.shape().to_vec()),
            mk(dg, vec![s.channels]),
            mk(db, vec![s.channels]),
        ))
    }
}
