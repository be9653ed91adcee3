//! Pooling on tensors (NCHW).

use super::backend::{place, Placed};
use super::{Labels, Op, Tensor};
use crate::error::{Error, Result};
use autorep_kernels::{cpu, launch, params::PoolParams};
use std::rc::Rc;

impl Tensor {
    fn pool_params(&self, k: usize, stride: usize, pad: usize, what: &str) -> Result<PoolParams> {
        let &[n, c, h, w] = self.shape() else {
            return Err(Error::Invalid(format!(
                "{what} needs a 4-D input, got {:?}",
                self.shape()
            )));
        };
        let p = PoolParams {
            n,
            c,
            h,
            w,
            k,
            stride,
            pad,
        };
        if !p.is_valid() || self.numel() == 0 {
            return Err(Error::Invalid(format!(
                "{what}: window {k}, stride {stride}, padding {pad} does not fit input {:?} (padding at most half the window, window within the padded input)",
                self.shape()
            )));
        }
        Ok(p)
    }

    /// Average pooling with window k, stride s, zero padding p (padding counts in the mean).
    pub fn avg_pool2d(&self, k: usize, stride: usize, pad: usize) -> Result<Tensor> {
        let p = self.pool_params(k, stride, pad, "avg_pool2d")?;
        let out = self.storage().alloc_like(p.n * p.c * p.oh() * p.ow())?;
        let xs = self.storage();
        match place("avg_pool2d", [&*xs, &out])? {
            Placed::Gpu(g, [x, y]) => launch::avg_pool2d_forward(g, &p, x, y)?,
            Placed::Cpu => cpu::avg_pool2d_forward(&p, &xs.cpu(), &mut out.cpu_mut()),
        }
        Ok(Tensor::result(
            vec![p.n, p.c, p.oh(), p.ow()],
            out,
            &[self],
            || Op::AvgPool { x: self.clone(), p },
        ))
    }

    /// Max pooling with window k, stride s, padding p (padding never wins).
    pub fn max_pool2d(&self, k: usize, stride: usize, pad: usize) -> Result<Tensor> {
        let p = self.pool_params(k, stride, pad, "max_pool2d")?;
        let n_out = p.n * p.c * p.oh() * p.ow();
        let out = self.storage().alloc_like(n_out)?;
        let xs = self.storage();
        let idx = match place("max_pool2d", [&*xs, &out])? {
            Placed::Gpu(g, [x, y]) => {
                let idx = g.alloc(n_out as u64 * 4)?;
                launch::max_pool2d_forward(g, &p, x, y, &idx)?;
                Labels::Gpu(g.clone(), idx, n_out)
            }
            Placed::Cpu => {
                let mut idx = vec![0u32; n_out];
                cpu::max_pool2d_forward(&p, &xs.cpu(), &mut out.cpu_mut(), &mut idx);
                Labels::Cpu(idx)
            }
        };
        Ok(Tensor::result(
            vec![p.n, p.c, p.oh(), p.ow()],
            out,
            &[self],
            || Op::MaxPool {
                x: self.clone(),
                p,
                idx: Rc::new(idx),
            },
        ))
    }

    /// Mean over H·W: [N, C, H, W] → [N, C].
    pub fn global_avg_pool(&self) -> Result<Tensor> {
        let &[n, c, h, w] = self.shape() else {
            return Err(Error::Invalid(format!(
                "global_avg_pool needs a 4-D input, got {:?}",
                self.shape()
            )));
        };
        let out = self.storage().alloc_like(n * c)?;
        let xs = self.storage();
        match place("global_avg_pool", [&*xs, &out])? {
            Placed::Gpu(g, [x, y]) => launch::global_avg_pool_forward(g, n, c, h * w, x, y)?,
            Placed::Cpu => cpu::global_avg_pool_forward(n, c, h * w, &xs.cpu(), &mut out.cpu_mut()),
        }
        Ok(Tensor::result(vec![n, c], out, &[self], || {
            Op::GlobalAvgPool { x: self.clone() }
        }))
    }

    /// Gradients of the pools given dy = self (no graph).
    pub(crate) fn pool_backward(&self, op: &Op) -> Result<Tensor> {
        let (x, n_in) = match op {
            Op::AvgPool { x, .. } | Op::MaxPool { x, .. } | Op::GlobalAvgPool { x } => {
                (x, x.numel())
            }
            _ => unreachable!("not a pool"),
        };
        let dx = self.storage().alloc_like(n_in)?;
        let sh = x.shape();
        let ys = self.storage();
        let placed = place("pool backward", [&*ys, &dx])?;
        let hw = sh.iter().skip(2).product();
        match (op, placed) {
            (Op::AvgPool { p, .. }, Placed::Gpu(g, [dy, o])) => {
                launch::avg_pool2d_backward(g, p, dy, o)?
            }
            (Op::AvgPool { p, .. }, Placed::Cpu) => {
                cpu::avg_pool2d_backward(p, &ys.cpu(), &mut dx.cpu_mut())
            }
            (Op::MaxPool { p, idx, .. }, placed) => match (placed, idx.as_ref()) {
                (Placed::Gpu(g, [dy, o]), Labels::Gpu(_, ib, _)) => {
                    launch::max_pool2d_backward(g, p, dy, ib, o)?
                }
                (Placed::Cpu, Labels::Cpu(iv)) => {
                    cpu::max_pool2d_backward(p, &ys.cpu(), iv, &mut dx.cpu_mut())
                }
                _ => {
                    return Err(Error::Invalid(
                        "max_pool2d backward: the gradient and the argmax indices live on different devices".into(),
                    ))
                }
            },
            (_, Placed::Gpu(g, [dy, o])) => {
                launch::global_avg_pool_backward(g, sh[0], sh[1], hw, dy, o)?
            }
            (_, Placed::Cpu) => {
                cpu::global_avg_pool_backward(sh[0], sh[1], hw, &ys.cpu(), &mut dx.cpu_mut())
            }
        }
        Ok(Tensor::result(sh.to_vec(), dx, &[], || unreachable!()))
    }
}
