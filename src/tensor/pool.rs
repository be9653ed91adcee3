//! Pooling on tensors (NCHW).

use super::{Labels, Op, Storage, Tensor};
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
        let out = Storage::alloc(&self.device(), p.n * p.c * p.oh() * p.ow())?;
        match (&*self.storage(), &out) {
            (Storage::Gpu(g, x), Storage::Gpu(_, y)) => launch::avg_pool2d_forward(g, &p, x, y)?,
            (x, y) => cpu::avg_pool2d_forward(&p, &x.cpu(), &mut y.cpu_mut()),
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
        let out = Storage::alloc(&self.device(), n_out)?;
        let idx = match (&*self.storage(), &out) {
            (Storage::Gpu(g, x), Storage::Gpu(_, y)) => {
                let idx = g.alloc(n_out as u64 * 4)?;
                launch::max_pool2d_forward(g, &p, x, y, &idx)?;
                Labels::Gpu(g.clone(), idx, n_out)
            }
            (x, y) => {
                let mut idx = vec![0u32; n_out];
                cpu::max_pool2d_forward(&p, &x.cpu(), &mut y.cpu_mut(), &mut idx);
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
        let out = Storage::alloc(&self.device(), n * c)?;
        match (&*self.storage(), &out) {
            (Storage::Gpu(g, x), Storage::Gpu(_, y)) => {
                launch::global_avg_pool_forward(g, n, c, h * w, x, y)?
            }
            (x, y) => cpu::global_avg_pool_forward(n, c, h * w, &x.cpu(), &mut y.cpu_mut()),
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
        let dx = Storage::alloc(&self.device(), n_in)?;
        let sh = x.shape();
        match (op, &*self.storage(), &dx) {
            (Op::AvgPool { p, .. }, Storage::Gpu(g, dy), Storage::Gpu(_, o)) => {
                launch::avg_pool2d_backward(g, p, dy, o)?
            }
            (Op::AvgPool { p, .. }, dy, o) => {
                cpu::avg_pool2d_backward(p, &dy.cpu(), &mut o.cpu_mut())
            }
            (Op::MaxPool { p, idx, .. }, Storage::Gpu(g, dy), Storage::Gpu(_, o)) => {
                let Labels::Gpu(_, ib, _) = idx.as_ref() else {
                    unreachable!()
                };
                launch::max_pool2d_backward(g, p, dy, ib, o)?
            }
            (Op::MaxPool { p, idx, .. }, dy, o) => {
                let Labels::Cpu(iv) = idx.as_ref() else {
                    unreachable!()
                };
                cpu::max_pool2d_backward(p, &dy.cpu(), iv, &mut o.cpu_mut())
            }
            (Op::GlobalAvgPool { .. }, Storage::Gpu(g, dy), Storage::Gpu(_, o)) => {
                launch::global_avg_pool_backward(g, sh[0], sh[1], sh[2] * sh[3], dy, o)?
            }
            (_, dy, o) => cpu::global_avg_pool_backward(
                sh[0],
                sh[1],
                sh[2] * sh[3],
                &dy.cpu(),
                &mut o.cpu_mut(),
            ),
        }
        Ok(Tensor::result(sh.to_vec(), dx, &[], || unreachable!()))
    }
}
