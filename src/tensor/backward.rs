//! Reverse-mode differentiation: one `match` with the gradient rule of every op.

use super::bn_act::BnActSaved;
use super::ops::Pointwise;
use super::SiteAct;
use super::{no_grad, Op, Tensor};
use crate::error::{Error, Result};
use std::collections::{HashMap, HashSet};

impl Op {
    fn inputs(&self) -> Vec<&Tensor> {
        match self {
            Op::Axpby(a, _, b, _) | Op::Mul(a, b) => vec![a, b],
            Op::ChannelScale { x, s } => vec![x, s],
            Op::Matmul { a, b, .. } => vec![a, b],
            Op::Conv2d { x, w, .. } | Op::DwConv { x, w, .. } => vec![x, w],
            Op::BiasAdd { x, bias, .. } => vec![x, bias],
            Op::Cast(a)
            | Op::Scale(a, _)
            | Op::Relu(a)
            | Op::Silu(a)
            | Op::Sigmoid(a)
            | Op::Reshape(a) => {
                vec![a]
            }
            Op::SumMid { x, .. } => vec![x],
            Op::CrossEntropy { logits, .. } => vec![logits],
            Op::Distill { student, .. } => vec![student],
            Op::Gate { x, gate, coef, .. } => vec![x, gate, coef],
            Op::BatchNorm { x, gamma, beta, .. } => {
                let mut v = vec![x];
                v.extend(gamma.iter().chain(beta.iter()));
                v
            }
            Op::BnAct {
                x,
                gamma,
                beta,
                residual,
                act,
                ..
            } => {
                let mut v = vec![x, gamma, beta];
                v.extend(residual.iter());
                if let SiteAct::Gate(g) = act {
                    v.extend([&g.gate, &g.coef]);
                }
                v
            }
            Op::AvgPool { x, .. } | Op::MaxPool { x, .. } | Op::GlobalAvgPool { x } => vec![x],
        }
    }

    /// Gradients of the inputs (in `inputs()` order; None where not needed) given the
    /// output's gradient `g`.
    /// The gradients of the inputs given the output's `g`; `seed` is the gradient the backward
    /// pass started from (1, or the loss scale under mixed precision): gradient terms added
    /// outside the loss graph (AutoReP's budget penalty, SNL's L1 term, in the gate's backward)
    /// are multiplied by it so that unscaling treats them like the rest.
    fn grads(&self, g: &Tensor, seed: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let want = |t: &Tensor| t.requires_grad();
        Ok(match self {
            // A unit coefficient passes g on as it is (gradients are never written in
            // place), rather than copying it: an add's backward reads nothing.
            Op::Axpby(a, alpha, b, beta) => {
                let scaled = |c: f32| if c == 1.0 { Ok(g.clone()) } else { g.scale(c) };
                vec![
                    want(a).then(|| scaled(*alpha)).transpose()?,
                    want(b).then(|| scaled(*beta)).transpose()?,
                ]
            }
            Op::Mul(a, b) => vec![
                want(a).then(|| g.mul(b)).transpose()?,
                want(b).then(|| g.mul(a)).transpose()?,
            ],
            Op::Scale(_, alpha) => vec![Some(g.scale(*alpha)?)],
            Op::Cast(a) => vec![Some(g.cast(a.dtype())?)],
            Op::ChannelScale { x, s } => {
                let (nc, hw) = (s.numel(), x.numel() / s.numel().max(1));
                let dx = want(x)
                    .then(|| g.mul(&s.expand_mid(nc, hw, 1, 1.0, x.shape().to_vec())?))
                    .transpose()?;
                let ds = want(s)
                    .then(|| g.mul(x)?.sum_mid(nc, hw, 1, 1.0, s.shape().to_vec()))
                    .transpose()?;
                vec![dx, ds]
            }
            Op::Relu(a) => vec![Some(a.relu_mask(g)?)],
            Op::Silu(a) => vec![Some(a.pointwise_grad(g, Pointwise::Silu)?)],
            Op::Sigmoid(a) => vec![Some(a.pointwise_grad(g, Pointwise::Sigmoid)?)],
            Op::Reshape(a) => vec![Some(g.reshape(a.shape())?)],
            Op::Matmul { a, b, ta, tb } => {
                // C = op(A)·op(B). dop(A) = dC·op(B)ᵀ and dop(B) = op(A)ᵀ·dC, transposed back
                // into the stored layout where the operand was read transposed.
                let da = want(a)
                    .then(|| match (ta, tb) {
                        (false, false) => g.matmul_t(b, false, true),
                        (false, true) => g.matmul_t(b, false, false),
                        (true, false) => b.matmul_t(g, false, true),
                        (true, true) => b.matmul_t(g, true, true),
                    })
                    .transpose()?;
                let db = want(b)
                    .then(|| match (ta, tb) {
                        (false, false) => a.matmul_t(g, true, false),
                        (false, true) => g.matmul_t(a, true, false),
                        (true, false) => a.matmul_t(g, false, false),
                        (true, true) => g.matmul_t(a, true, true),
                    })
                    .transpose()?;
                vec![da, db]
            }
            Op::BiasAdd { x, bias, inner } => {
                let db = if want(bias) {
                    let (outer, c) = (x.shape()[0], x.shape()[1]);
                    let per_row = g.sum_mid(outer * c, *inner, 1, 1.0, vec![outer, c])?;
                    Some(per_row.sum_mid(1, outer, c, 1.0, vec![c])?)
                } else {
                    None
                };
                vec![want(x).then(|| g.clone()), db]
            }
            Op::DwConv { x, w, p } => g
                .depthwise_conv2d_backward(x, w, p, [want(x), want(w)])?
                .into(),
            Op::Conv2d { x, w, p } => vec![
                want(x).then(|| g.conv2d_input_grad(w, p)).transpose()?,
                want(w).then(|| x.conv2d_weight_grad(g, p)).transpose()?,
            ],
            Op::SumMid {
                x,
                outer,
                len,
                inner,
                alpha,
            } => {
                vec![Some(g.expand_mid(
                    *outer,
                    *len,
                    *inner,
                    *alpha,
                    x.shape().to_vec(),
                )?)]
            }
            Op::BatchNorm {
                x,
                gamma,
                mean,
                var,
                s,
                eps,
                train,
                ..
            } => {
                let (dx, dg, db) =
                    g.batch_norm_backward(x, gamma.as_ref(), mean, var, *s, *eps, *train)?;
                let mut v = vec![Some(dx)];
                if gamma.is_some() {
                    v.extend([Some(dg), Some(db)]);
                }
                v
            }
            Op::BnAct {
                x,
                gamma,
                residual,
                mean,
                var,
                fold,
                a,
                act,
                ..
            } => {
                let want_gate = match act {
                    SiteAct::Gate(gt) => [want(&gt.gate), want(&gt.coef)],
                    _ => [false; 2],
                };
                let saved = BnActSaved {
                    x,
                    residual: residual.as_ref(),
                    mean,
                    var,
                    gamma,
                    fold,
                    a,
                    act,
                };
                let gr = g.batch_norm_act_backward(saved, want_gate, seed)?;
                let mut v = vec![Some(gr.dx), Some(gr.dgamma), Some(gr.dbeta)];
                if residual.is_some() {
                    v.push(gr.dresidual);
                }
                if matches!(act, SiteAct::Gate(_)) {
                    v.extend([gr.dgate, gr.dcoef]);
                }
                v
            }
            Op::AvgPool { .. } | Op::MaxPool { .. } | Op::GlobalAvgPool { .. } => {
                vec![Some(g.pool_backward(self)?)]
            }
            Op::Gate {
                x,
                gate,
                coef,
                mask,
                p,
                grad,
                counter,
            } => {
                let want = [want(x), want(gate), want(coef)];
                g.gate_backward(x, mask, coef, gate, p, *grad, counter, want, seed)?
                    .into()
            }
            Op::Distill {
                student,
                teacher,
                temperature,
            } => {
                vec![Some(student.distill_backward(teacher, *temperature, g)?)]
            }
            Op::CrossEntropy {
                logits,
                labels,
                smoothing,
            } => {
                vec![Some(logits.cross_entropy_backward(labels, *smoothing, g)?)]
            }
        })
    }
}

/// `acc + g`, or `g` when nothing was accumulated yet.
fn accumulate(acc: Option<Tensor>, g: Tensor) -> Result<Tensor> {
    match acc {
        Some(a) => a.add(&g),
        None => Ok(g),
    }
}

impl Tensor {
    /// The parameter this tensor is a cast of (its half-precision copy), if it is one.
    fn cast_parameter(&self) -> Option<Tensor> {
        match &*self.op() {
            Some(Op::Cast(a)) if a.op().is_none() && a.requires_grad() => Some(a.clone()),
            _ => None,
        }
    }

    /// Tensors reachable from self through recorded ops, inputs before users.
    fn topo_order(&self) -> Vec<Tensor> {
        let mut order = Vec::new();
        let mut seen = HashSet::new();
        // Iterative DFS: (node, inputs already pushed?)
        let mut stack = vec![(self.clone(), false)];
        while let Some((t, expanded)) = stack.pop() {
            if expanded {
                order.push(t);
                continue;
            }
            if !seen.insert(t.id()) {
                continue;
            }
            stack.push((t.clone(), true));
            if let Some(op) = &*t.op() {
                for i in op.inputs() {
                    if i.requires_grad() && !seen.contains(&i.id()) {
                        stack.push((i.clone(), false));
                    }
                }
            }
        }
        order
    }

    /// Back-propagate from this one-element tensor; every parameter it depends on gets its
    /// gradient added to [`Tensor::grad`] (gradients accumulate across calls until zeroed).
    /// The pass consumes the graph, releasing what each op saved as it goes: differentiating
    /// the same graph again is an error (run the forward pass again).
    pub fn backward(&self) -> Result<()> {
        let seed = no_grad(|| Tensor::full(&self.device(), self.shape(), 1.0))?;
        self.backward_from(seed)
    }

    /// [`Tensor::backward`] starting from the gradient `seed` instead of 1 (a loss scale that
    /// lives on the device).
    pub fn backward_from(&self, seed: Tensor) -> Result<()> {
        if self.numel() != 1 {
            return Err(Error::Invalid(format!(
                "backward() needs a one-element loss, got shape {:?}",
                self.shape()
            )));
        }
        if !self.requires_grad() {
            return Err(Error::Invalid(
                "backward() on a tensor that depends on no parameter".into(),
            ));
        }
        let seed = match seed.shape() == self.shape() {
            true => seed,
            false => no_grad(|| seed.reshape(self.shape()))?,
        };
        no_grad(|| {
            let mut grads: HashMap<usize, Tensor> = HashMap::from([(self.id(), seed.clone())]);
            // Consumed in reverse order: once a node's gradient has gone to its inputs, the
            // node, its op and what the op saved are dropped (unless held elsewhere), so
            // memory falls through the pass instead of holding every activation to its end.
            let order = self.topo_order();
            // Refused before any gradient moves, so that a refused pass changes nothing.
            if order.iter().any(|t| t.0.spent.get()) {
                return Err(Error::Invalid(
                    "backward() through a graph a backward pass has already consumed: \
                     run the forward pass again"
                        .into(),
                ));
            }
            for t in order.into_iter().rev() {
                let Some(g) = grads.remove(&t.id()) else {
                    continue;
                };
                let op = t.0.op.borrow_mut().take();
                let Some(op) = op else {
                    t.add_to_grad(g)?;
                    continue;
                };
                t.0.spent.set(true);
                for (input, gi) in op.inputs().into_iter().zip(op.grads(&g, &seed)?) {
                    let Some(gi) = gi.filter(|_| input.requires_grad()) else {
                        continue;
                    };
                    // A parameter's gradient goes to its slot at once rather than waiting
                    // for the parameter's turn in the order (it would only be added there).
                    // So does that of a parameter's half-precision copy (mixed precision):
                    // the copy is made where the forward pass first used it, so its turn
                    // would come only after the backward pass of every layer before that
                    // one, holding the gradient of every weight in f16 until the end.
                    if input.op().is_none() {
                        input.add_to_grad(gi)?;
                    } else if let Some(param) = input.cast_parameter() {
                        input.0.spent.set(true);
                        param.add_to_grad(gi.cast(param.dtype())?)?;
                    } else {
                        let prev = grads.remove(&input.id());
                        grads.insert(input.id(), accumulate(prev, gi)?);
                    }
                }
            }
            Ok(())
        })
    }
}
