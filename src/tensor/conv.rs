//! Convolution on tensors (NCHW): dense (groups = 1) and depthwise (groups = channels).

use super::backend::{place, Placed};
use super::{Op, Tensor};
use crate::error::{Error, Result};
use autorep_kernels::params::{ConvParams, DwConvParams};
use autorep_kernels::{cpu, launch};

impl Tensor {
    /// conv2d(self [N, Cin, H, W], weight [Cout, Cin, KH, KW]) with zero padding `pad`;
    /// `layer` names the caller in errors.
    pub fn conv2d(
        &self,
        weight: &Tensor,
        stride: usize,
        pad: usize,
        layer: &str,
    ) -> Result<Tensor> {
        let bad = |why: &str| {
            Error::Invalid(format!(
                "{layer}: {why} (input {:?}, weight {:?}, stride {stride}, padding {pad})",
                self.shape(),
                weight.shape()
            ))
        };
        let (&[n, cin, h, w], &[cout, wcin, kh, kw]) = (self.shape(), weight.shape()) else {
            return Err(bad("conv2d needs a 4-D input and a 4-D weight"));
        };
        if cin != wcin {
            return Err(bad("input channels differ from the weight's"));
        }
        if stride == 0 || self.numel() == 0 || weight.numel() == 0 {
            return Err(bad("zero-sized dimension or stride"));
        }
        if kh > h + 2 * pad || kw > w + 2 * pad {
            return Err(bad("kernel larger than the padded input"));
        }
        let p = ConvParams {
            n,
            cin,
            h,
            w,
            cout,
            kh,
            kw,
            stride,
            pad,
        };
        let weight = &weight.autocast(self.dtype())?;
        let out = self.storage().alloc_like(p.y_len())?;
        let (xs, ws) = (self.storage(), weight.storage());
        match place("conv2d", [&*xs, &*ws, &out])? {
            Placed::Gpu(g, [x, wb, y]) => launch::conv2d_forward(g, &p, x, wb, y)?,
            Placed::Cpu => cpu::conv2d_forward(&p, &xs.cpu(), &ws.cpu(), &mut out.cpu_mut()),
        }
        Ok(Tensor::result(
            vec![n, cout, p.oh(), p.ow()],
            out,
            &[self, weight],
            || Op::Conv2d {
                x: self.clone(),
                w: weight.clone(),
                p,
            },
        ))
    }

    /// dx given dy = self (no graph).
    pub(crate) fn conv2d_input_grad(&self, weight: &Tensor, p: &ConvParams) -> Result<Tensor> {
        let out = self.storage().alloc_like(p.x_len())?;
        let (ys, ws) = (self.storage(), weight.storage());
        match place("conv2d backward", [&*ys, &*ws, &out])? {
            Placed::Gpu(g, [dy, w, dx]) => launch::conv2d_input_grad(g, p, dy, w, dx)?,
            Placed::Cpu => cpu::conv2d_input_grad(p, &ys.cpu(), &ws.cpu(), &mut out.cpu_mut()),
        }
        Ok(Tensor::result(
            vec![p.n, p.cin, p.h, p.w],
            out,
            &[],
            || unreachable!(),
        ))
    }

    /// dw given x = self and dy (no graph).
    pub(crate) fn conv2d_weight_grad(&self, dy: &Tensor, p: &ConvParams) -> Result<Tensor> {
        let out = self.storage().alloc_like(p.w_len())?;
        let (xs, ys) = (self.storage(), dy.storage());
        match place("conv2d backward", [&*xs, &*ys, &out])? {
            Placed::Gpu(g, [x, gy, dw]) => {
                let (_, scratch_len) = launch::conv2d_weight_grad_splits(g, p, dw.dtype())?;
                let scratch = g.alloc_scratch_elems(scratch_len, autorep_kernels::Dtype::F32)?;
                launch::conv2d_weight_grad(g, p, x, gy, &scratch, dw)?
            }
            Placed::Cpu => cpu::conv2d_weight_grad(p, &xs.cpu(), &ys.cpu(), &mut out.cpu_mut()),
        }
        Ok(Tensor::result(
            vec![p.cout, p.cin, p.kh, p.kw],
            out,
            &[],
            || unreachable!(),
        ))
    }

    /// Depthwise convolution (groups = channels): self [N, C, H, W], `weight` [C, 1, KH, KW]
    /// as PyTorch stores it, square stride and zero padding; `layer` names it in errors.
    pub fn depthwise_conv2d(
        &self,
        weight: &Tensor,
        stride: usize,
        pad: usize,
        layer: &str,
    ) -> Result<Tensor> {
        let (&[n, c, h, w], &[wc, one, kh, kw]) = (self.shape(), weight.shape()) else {
            return Err(Error::Invalid(format!(
                "{layer}: depthwise convolution needs input [N, C, H, W] and weight [C, 1, KH, KW], got {:?} and {:?}",
                self.shape(),
                weight.shape()
            )));
        };
        let p = DwConvParams {
            n,
            c,
            h,
            w,
            kh,
            kw,
            stride,
            pad,
        };
        if wc != c || one != 1 || !p.is_valid() {
            return Err(Error::Invalid(format!(
                "{layer}: depthwise weight {:?} does not fit input {:?} with stride {stride}, padding {pad}",
                weight.shape(),
                self.shape()
            )));
        }
        let weight = &weight.autocast(self.dtype())?;
        let out = self.storage().alloc_like(p.y_len())?;
        let (xs, ws) = (self.storage(), weight.storage());
        match place("depthwise_conv2d", [&*xs, &*ws, &out])? {
            Placed::Gpu(g, [x, wb, y]) => launch::dwconv2d_forward(g, &p, x, wb, y)?,
            Placed::Cpu => cpu::dwconv2d_forward(&p, &xs.cpu(), &ws.cpu(), &mut out.cpu_mut()),
        }
        Ok(Tensor::result(
            vec![n, c, p.oh(), p.ow()],
            out,
            &[self, weight],
            || Op::DwConv {
                x: self.clone(),
                w: weight.clone(),
                p,
            },
        ))
    }

    /// (dx, dw) of a depthwise convolution given dy = self, each only when wanted (no graph).
    pub(crate) fn depthwise_conv2d_backward(
        &self,
        x: &Tensor,
        w: &Tensor,
        p: &DwConvParams,
        want: [bool; 2],
    ) -> Result<[Option<Tensor>; 2]> {
        let ys = self.storage();
        // Each gradient: one kernel over dy and another operand (w for dx, x for dw).
        let grad = |other: &Tensor, len: usize, shape: &[usize], weight: bool| -> Result<Tensor> {
            let (os, out) = (other.storage(), ys.alloc_like(len)?);
            let (a, b) = if weight { (&*os, &*ys) } else { (&*ys, &*os) };
            match place("depthwise_conv2d backward", [a, b, &out])? {
                Placed::Gpu(g, [a, b, o]) if weight => launch::dwconv2d_weight_grad(g, p, a, b, o)?,
                Placed::Gpu(g, [a, b, o]) => launch::dwconv2d_input_grad(g, p, a, b, o)?,
                Placed::Cpu if weight => {
                    cpu::dwconv2d_weight_grad(p, &a.cpu(), &b.cpu(), &mut out.cpu_mut())
                }
                Placed::Cpu => cpu::dwconv2d_input_grad(p, &a.cpu(), &b.cpu(), &mut out.cpu_mut()),
            }
            Ok(Tensor::result(shape.to_vec(), out, &[], || unreachable!()))
        };
        let dx = want[0]
            .then(|| grad(w, p.x_len(), x.shape(), false))
            .transpose()?;
        let dw = want[1]
            .then(|| grad(x, p.w_len(), w.shape(), true))
            .transpose()?;
        Ok([dx, dw])
    }
}
