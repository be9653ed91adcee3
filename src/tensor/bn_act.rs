//! Batch norm, an optional residual add and the activation site after it as one op (see
//! `shaders/bn_act.wgsl`): one pass over the activations forward instead of three, two or
//! three backward instead of five, and neither the normalised tensor nor the site's input
//! kept for the backward pass.

use super::backend::{place, Placed};
use super::{BnConfig, Op, ReluCounter, Storage, Tensor};
use crate::error::{Error, Result};
use autorep_kernels::cpu::{self, BnActSlices};
use autorep_kernels::launch::{self, BnActInputs};
use autorep_kernels::params::{BnAct, BnShape, FusedAct, GateGrad, GateParams};
use std::rc::Rc;

/// The activation after the batch norm, with a gate's state.
#[derive(Clone)]
pub enum SiteAct {
    Relu,
    Silu,
    Gate(GateState),
}

/// What a gated site's forward and backward read (see `Tensor::gate`).
#[derive(Clone)]
pub struct GateState {
    pub mask: Tensor,
    pub coef: Tensor,
    /// The trainable gate parameter (h, or SNL's α).
    pub gate: Tensor,
    pub p: GateParams,
    pub grad: GateGrad,
    pub counter: Rc<ReluCounter>,
}

/// The batch norm's parameters and running statistics.
pub struct BnParams<'a> {
    pub gamma: &'a Tensor,
    pub beta: &'a Tensor,
    pub running_mean: &'a Tensor,
    pub running_var: &'a Tensor,
    pub cfg: BnConfig,
}

/// Running statistics of the site's input to update (AutoReP's DaPa statistics).
pub struct SiteStats<'a> {
    pub mean: &'a Tensor,
    pub var: &'a Tensor,
    pub momentum: f32,
}

/// The tensors of one call laid out as the kernels take them.
struct Operands {
    x: Rc<Storage>,
    r: Option<Rc<Storage>>,
    fold: Rc<Storage>,
    gate: Option<(Rc<Storage>, Rc<Storage>)>,
}

impl Operands {
    fn new(x: &Tensor, r: Option<&Tensor>, fold: &Tensor, act: &SiteAct) -> Operands {
        Operands {
            x: x.storage(),
            r: r.map(|r| r.storage()),
            fold: fold.storage(),
            gate: match act {
                SiteAct::Gate(g) => Some((g.mask.storage(), g.coef.storage())),
                _ => None,
            },
        }
    }

    /// Runs `gpu` with the kernels' view of the operands and `outs` (every storage on one
    /// GPU), or `host` with host slices.
    fn run<const N: usize>(
        &self,
        op: &'static str,
        outs: [&Storage; N],
        gpu: impl FnOnce(
            &autorep_kernels::Gpu,
            &BnActInputs,
            [&autorep_kernels::GpuBuffer; N],
        ) -> Result<()>,
        host: impl FnOnce(&BnActSlices<f32>) -> Result<()>,
    ) -> Result<()> {
        let r = self.r.as_deref().unwrap_or(&self.x);
        let (m, c) = match &self.gate {
            Some((m, c)) => (&**m, &**c),
            None => (&*self.fold, &*self.fold),
        };
        let ins = [&*self.x, r, &*self.fold, m, c];
        match (place(op, ins)?, place(op, outs)?) {
            (Placed::Gpu(g, b), Placed::Gpu(g2, o)) if g.same_device(g2) => {
                let inp = BnActInputs {
                    x: b[0],
                    r: self.r.as_ref().map(|_| b[1]),
                    fold: b[2],
                    gate: self.gate.as_ref().map(|_| (b[3], b[4])),
                };
                gpu(g, &inp, o)
            }
            (Placed::Gpu(..), _) | (_, Placed::Gpu(..)) => Err(Error::DeviceMismatch {
                op,
                left: self.x.device().describe(),
                right: outs
                    .iter()
                    .map(|o| o.device().describe())
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
            (Placed::Cpu, Placed::Cpu) => {
                let (x, fold) = (self.x.cpu(), self.fold.cpu());
                let r = self.r.as_ref().map(|r| r.cpu());
                let gate = self.gate.as_ref().map(|(m, c)| (m.cpu(), c.cpu()));
                host(&BnActSlices {
                    x: &x,
                    r: r.as_deref(),
                    fold: &fold,
                    gate: gate.as_ref().map(|(m, c)| (&m[..], &c[..])),
                })
            }
        }
    }
}

fn constant(shape: Vec<usize>, s: Storage) -> Tensor {
    Tensor::result(shape, s, &[], || unreachable!())
}

impl Tensor {
    /// act(BN(self) + residual): batch statistics (updating the running ones) in training,
    /// the running ones in evaluation, as [`Tensor::batch_norm`] followed by an add and
    /// [`Tensor::relu`], [`Tensor::silu`] or [`Tensor::gate`], in one pass.
    pub fn batch_norm_act(
        &self,
        bn: BnParams,
        residual: Option<&Tensor>,
        act: SiteAct,
        train: bool,
        site_stats: Option<SiteStats>,
        layer: &str,
    ) -> Result<Tensor> {
        if let Some(r) = residual.filter(|r| r.dtype() != self.dtype()) {
            // Both in one type, f16 if either is (as `add` takes them).
            let (x, r) = self.autocast_pair(r)?;
            return x.batch_norm_act(bn, Some(&r), act, train, site_stats, layer);
        }
        let sh = self.shape();
        let channels = bn.running_mean.numel();
        if sh.len() < 2 || sh[1] != channels || self.numel() == 0 {
            return Err(Error::Invalid(format!(
                "{layer}: batch norm over {channels} channels cannot take input {sh:?}"
            )));
        }
        let s = BnShape {
            n: sh[0],
            channels,
            hw: sh[2..].iter().product(),
        };
        let residual = match residual {
            Some(r) if r.shape() != sh => {
                return Err(Error::Shape {
                    op: "batch_norm_act residual",
                    left: sh.to_vec(),
                    right: r.shape().to_vec(),
                })
            }
            Some(r) => Some(r.clone()),
            None => None,
        };
        let fused = match &act {
            SiteAct::Relu => FusedAct::Relu,
            SiteAct::Silu => FusedAct::Silu,
            SiteAct::Gate(g) => {
                let p = g.p;
                if (p.batch, p.channels, p.hw) != (s.n, s.channels, s.hw) {
                    return Err(Error::Invalid(format!(
                        "activation site expects [{}, {}, {} pixels] but got {sh:?}",
                        p.batch, p.channels, p.hw
                    )));
                }
                FusedAct::Gate(p)
            }
        };
        let a = BnAct {
            s,
            eps: bn.cfg.eps,
            residual: residual.is_some(),
            train,
            act: fused,
        };
        let (mean, var) = if train {
            self.bn_statistics(bn.running_mean, bn.running_var, bn.cfg, layer)?
        } else {
            (bn.running_mean.detach(), bn.running_var.detach())
        };
        let fold = Storage::alloc(&self.device(), 4 * channels)?;
        let (ms, vs, gs, bs) = (
            mean.storage(),
            var.storage(),
            bn.gamma.storage(),
            bn.beta.storage(),
        );
        match place("batch_norm_act", [&*ms, &*vs, &*gs, &*bs, &fold])? {
            Placed::Gpu(g, [m, v, ga, be, f]) => launch::bn_fold(g, s, a.eps, m, v, ga, be, f)?,
            Placed::Cpu => cpu::bn_fold(
                s,
                a.eps,
                &ms.cpu(),
                &vs.cpu(),
                &gs.cpu(),
                &bs.cpu(),
                &mut fold.cpu_mut(),
            ),
        }
        let fold = constant(vec![4 * channels], fold);
        let ops = Operands::new(self, residual.as_ref(), &fold, &act);
        if let (Some(st), true) = (site_stats, train) {
            let (m, v) = (
                Storage::alloc(&self.device(), channels)?,
                Storage::alloc(&self.device(), channels)?,
            );
            let (rm, rv) = (st.mean.storage(), st.var.storage());
            ops.run(
                "site statistics",
                [&m, &v, &*rm, &*rv],
                |g, inp, [m, v, rm, rv]| {
                    launch::bn_act_stats(g, &a, inp, m, v)?;
                    Ok(launch::bn_update_running(
                        g,
                        channels,
                        s.count(),
                        st.momentum,
                        m,
                        v,
                        rm,
                        rv,
                    )?)
                },
                |inp| {
                    cpu::bn_act_stats(&a, inp, &mut m.cpu_mut(), &mut v.cpu_mut());
                    cpu::bn_update_running(
                        channels,
                        s.count(),
                        st.momentum,
                        &m.cpu(),
                        &v.cpu(),
                        &mut rm.cpu_mut(),
                        &mut rv.cpu_mut(),
                    );
                    Ok(())
                },
            )?;
        }
        let out = self.storage().alloc_like(s.len())?;
        ops.run(
            "batch_norm_act",
            [&out],
            |g, inp, [z]| Ok(launch::bn_act_forward(g, &a, inp, z)?),
            |inp| {
                cpu::bn_act_forward(&a, inp, &mut out.cpu_mut());
                Ok(())
            },
        )?;
        let gate_params = match &act {
            SiteAct::Gate(g) => vec![g.gate.clone(), g.coef.clone()],
            _ => vec![],
        };
        let mut inputs = vec![self, bn.gamma, bn.beta];
        inputs.extend(residual.iter().chain(&gate_params));
        Ok(Tensor::result(sh.to_vec(), out, &inputs, || Op::BnAct {
            x: self.clone(),
            gamma: bn.gamma.clone(),
            beta: bn.beta.clone(),
            residual: residual.clone(),
            mean,
            var,
            fold,
            a,
            act,
        }))
    }
}

/// Everything [`Op::BnAct`] keeps for its backward pass.
pub(crate) struct BnActSaved<'a> {
    pub x: &'a Tensor,
    pub residual: Option<&'a Tensor>,
    pub mean: &'a Tensor,
    pub var: &'a Tensor,
    pub gamma: &'a Tensor,
    pub fold: &'a Tensor,
    pub a: &'a BnAct,
    pub act: &'a SiteAct,
}

/// The gradients of [`Tensor::batch_norm_act`]'s inputs.
pub(crate) struct BnActGrads {
    pub dx: Tensor,
    pub dgamma: Tensor,
    pub dbeta: Tensor,
    pub dresidual: Option<Tensor>,
    /// (dgate, dcoef) of a gated site, each when wanted.
    pub dgate: Option<Tensor>,
    pub dcoef: Option<Tensor>,
}

impl Tensor {
    /// The gradients of a fused batch norm + activation given dz = self; `seed` scales the
    /// gate's budget penalty (see `Op::grads`), `want_gate` = (gate parameter, coefficients).
    pub(crate) fn batch_norm_act_backward(
        &self,
        sv: BnActSaved,
        want_gate: [bool; 2],
        seed: &Tensor,
    ) -> Result<BnActGrads> {
        let (a, x) = (sv.a, sv.x);
        let (c, st, dev) = (a.s.channels, a.stride(), self.device());
        let ops = Operands::new(x, sv.residual, sv.fold, sv.act);
        let sums = Storage::alloc(&dev, a.sums_len())?;
        let dx = self.storage().alloc_like(a.s.len())?;
        let dy = match a.residual {
            true => Some(self.storage().alloc_like(a.s.len())?),
            false => None,
        };
        let gs = self.storage();
        // dβ and dγ are the first two sections of the sums, dcoef the third (views).
        let view = |off: usize, len: usize, shape: Vec<usize>| {
            Tensor::result_shared(shape, Rc::new(sums.view(off, len)), &[], || unreachable!())
        };
        let (ms, vs, gam) = (sv.mean.storage(), sv.var.storage(), sv.gamma.storage());
        let dy_or_dx = dy.as_ref().unwrap_or(&dx);
        ops.run(
            "batch_norm_act backward",
            [&*gs, &sums, dy_or_dx, &dx, &*ms, &*vs, &*gam],
            |g, inp, [gb, sb, dyb, dxb, m, v, ga]| {
                let (db, dg) = (
                    sb.view(0, c as u64 * 4),
                    sb.view(st as u64 * 4, c as u64 * 4),
                );
                if a.residual {
                    launch::bn_act_backward_reduce(g, a, inp, gb, sb, Some(dyb), dxb)?;
                    if a.train {
                        launch::bn_backward_input(
                            g,
                            a.s,
                            a.eps,
                            inp.x,
                            m,
                            v,
                            Some(ga),
                            dyb,
                            &dg,
                            &db,
                            dxb,
                        )?;
                    } else {
                        launch::bn_backward_input_eval(g, a.s, a.eps, v, Some(ga), dyb, dxb)?;
                    }
                } else {
                    launch::bn_act_backward_reduce(g, a, inp, gb, sb, None, dxb)?;
                    launch::bn_act_backward_input(g, a, inp, gb, sb, dxb)?;
                }
                Ok(())
            },
            |inp| {
                let gv = gs.cpu();
                let mut sums_v = sums.cpu_mut();
                let mut dyv = dy.as_ref().map(|d| d.cpu_mut());
                cpu::bn_act_backward_reduce(a, inp, &gv, &mut sums_v, dyv.as_deref_mut());
                cpu::bn_act_backward_input(a, inp, &gv, &sums_v, &mut dx.cpu_mut());
                Ok(())
            },
        )?;
        let (mut dgate, mut dcoef) = (None, None);
        if let SiteAct::Gate(gt) = sv.act {
            if want_gate[0] {
                dgate = Some(gate_param_grad(self, &ops, a, gt, seed)?);
            }
            if want_gate[1] {
                dcoef = Some(view(2 * st, 3 * c, gt.coef.shape().to_vec()));
            }
        }
        Ok(BnActGrads {
            dx: constant(x.shape().to_vec(), dx),
            dgamma: view(st, c, vec![c]),
            dbeta: view(0, c, vec![c]),
            dresidual: dy.map(|d| constant(x.shape().to_vec(), d)),
            dgate,
            dcoef,
        })
    }
}

/// The gate parameter's gradient: dm from the recomputed site input, then AutoReP's STE (or
/// SNL's rule) with the budget penalty, as `Tensor::gate_backward`.
fn gate_param_grad(
    dz: &Tensor,
    ops: &Operands,
    a: &BnAct,
    gt: &GateState,
    seed: &Tensor,
) -> Result<Tensor> {
    let dev = dz.device();
    let gates = gt.p.gates();
    let (dm, dh) = (Storage::alloc(&dev, gates)?, Storage::alloc(&dev, gates)?);
    let (gs, hs, ss) = (dz.storage(), gt.gate.storage(), seed.storage());
    ops.run(
        "gate backward",
        [&*gs, &dm, &dh, &*hs, &*ss],
        |g, inp, [gb, dmb, dhb, h, sb]| match &*gt.counter {
            ReluCounter::Gpu(_, cnt) => {
                launch::bn_act_grad_mask(g, a, inp, gb, dmb)?;
                Ok(launch::gate_grad_h(
                    g, &gt.p, gt.grad, h, dmb, cnt, dhb, sb,
                )?)
            }
            ReluCounter::Cpu(_) => Err(Error::Invalid(
                "the ReLU counter lives on another device than its site".into(),
            )),
        },
        |inp| match &*gt.counter {
            ReluCounter::Cpu(cnt) => {
                cpu::bn_act_grad_mask(a, inp, &gs.cpu(), &mut dm.cpu_mut());
                let scale = ss.cpu()[0];
                cpu::gate_grad_h(
                    &gt.p,
                    gt.grad,
                    &hs.cpu(),
                    &dm.cpu(),
                    cnt.get(),
                    &mut dh.cpu_mut(),
                    scale,
                );
                Ok(())
            }
            ReluCounter::Gpu(..) => Err(Error::Invalid(
                "the ReLU counter lives on another device than its site".into(),
            )),
        },
    )?;
    Ok(constant(gt.gate.shape().to_vec(), dh))
}
