//! Forward ops. Each picks the CPU twin or the GPU launcher for its storage and, when a
//! gradient is wanted, records the op that made the result.

use super::backend::{place, Placed};
use super::{grad_enabled, Labels, Op, Storage, Tensor};
use crate::error::{Error, Result};
use autorep_kernels::{cpu, launch, params::GemmParams, Gpu, GpuBuffer};
use std::rc::Rc;

type KResult = autorep_kernels::Result<()>;

/// Smooth pointwise activations whose backward reads the input.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Pointwise {
    Silu,
    Sigmoid,
}

/// Per-sample results of [`Tensor::cross_entropy`].
pub struct CrossEntropy {
    /// Loss per sample, differentiable; `.mean()` gives the usual batch loss.
    pub loss: Tensor,
    /// 1 where the arg-max logit is the label, else 0 (no gradient).
    pub correct: Tensor,
}

fn check_device(op: &'static str, a: &Tensor, b: &Tensor) -> Result<()> {
    if a.device().same(&b.device()) {
        Ok(())
    } else {
        Err(Error::DeviceMismatch {
            op,
            left: a.device().describe(),
            right: b.device().describe(),
        })
    }
}

fn check_same_shape(op: &'static str, a: &Tensor, b: &Tensor) -> Result<()> {
    check_device(op, a, b)?;
    if a.shape() != b.shape() {
        return Err(Error::Shape {
            op,
            left: a.shape().to_vec(),
            right: b.shape().to_vec(),
        });
    }
    Ok(())
}

/// Run a one-input kernel into fresh storage of `n` floats.
fn kernel1(
    x: &Tensor,
    n: usize,
    cpu: impl FnOnce(&[f32], &mut [f32]),
    gpu: impl FnOnce(&Gpu, &GpuBuffer, &GpuBuffer) -> KResult,
) -> Result<Storage> {
    let out = x.storage().alloc_like(n)?;
    let xs = x.storage();
    match place("kernel1", [&*xs, &out])? {
        Placed::Gpu(g, [bx, bo]) => gpu(g, bx, bo)?,
        Placed::Cpu => cpu(&xs.cpu(), &mut out.cpu_mut()),
    }
    Ok(out)
}

/// Run a two-input kernel into fresh storage of `n` floats.
fn kernel2(
    x: &Tensor,
    y: &Tensor,
    n: usize,
    cpu: impl FnOnce(&[f32], &[f32], &mut [f32]),
    gpu: impl FnOnce(&Gpu, &GpuBuffer, &GpuBuffer, &GpuBuffer) -> KResult,
) -> Result<Storage> {
    let out = x.storage().alloc_like(n)?;
    let (xs, ys) = (x.storage(), y.storage());
    match place("kernel2", [&*xs, &*ys, &out])? {
        Placed::Gpu(g, [bx, by, bo]) => gpu(g, bx, by, bo)?,
        Placed::Cpu => cpu(&xs.cpu(), &ys.cpu(), &mut out.cpu_mut()),
    }
    Ok(out)
}

impl Tensor {
    /// Wrap a result, recording `op` only when some input wants a gradient.
    pub(crate) fn result(
        shape: Vec<usize>,
        storage: Storage,
        inputs: &[&Tensor],
        op: impl FnOnce() -> Op,
    ) -> Tensor {
        Tensor::result_shared(shape, Rc::new(storage), inputs, op)
    }

    /// [`Tensor::result`] over storage another tensor already holds.
    pub(crate) fn result_shared(
        shape: Vec<usize>,
        storage: Rc<Storage>,
        inputs: &[&Tensor],
        op: impl FnOnce() -> Op,
    ) -> Tensor {
        let track = grad_enabled() && inputs.iter().any(|t| t.requires_grad());
        let op = track.then(op);
        Tensor::make(shape, storage, op, track)
    }

    /// Squeeze-excitation's channel-wise scale: self [N, C, H, W] times `s` [N, C], broadcast
    /// over H·W (composed of the broadcast and multiply kernels).
    pub fn channel_scale(&self, s: &Tensor) -> Result<Tensor> {
        let (&[n, c, ..], true) = (self.shape(), self.shape().len() >= 2) else {
            return Err(Error::Shape {
                op: "channel_scale",
                left: self.shape().to_vec(),
                right: s.shape().to_vec(),
            });
        };
        if s.shape() != [n, c] {
            return Err(Error::Shape {
                op: "channel_scale",
                left: self.shape().to_vec(),
                right: s.shape().to_vec(),
            });
        }
        let hw = self.numel() / (n * c).max(1);
        let y = crate::no_grad(|| {
            let full = s.expand_mid(n * c, hw, 1, 1.0, self.shape().to_vec())?;
            self.mul(&full)
        })?;
        Ok(Tensor::result_shared(
            self.shape().to_vec(),
            y.storage(),
            &[self, s],
            || Op::ChannelScale {
                x: self.clone(),
                s: s.clone(),
            },
        ))
    }

    /// alpha*self + beta*other
    pub fn axpby(&self, alpha: f32, other: &Tensor, beta: f32) -> Result<Tensor> {
        check_same_shape("axpby", self, other)?;
        if self.dtype() != other.dtype() {
            let (a, b) = self.autocast_pair(other)?;
            return a.axpby(alpha, &b, beta);
        }
        let n = self.numel();
        let s = kernel2(
            self,
            other,
            n,
            |x, y, o| cpu::axpby(alpha, x, beta, y, o),
            |g, x, y, o| launch::axpby(g, n, alpha, x, beta, y, o),
        )?;
        Ok(Tensor::result(
            self.shape().to_vec(),
            s,
            &[self, other],
            || Op::Axpby(self.clone(), alpha, other.clone(), beta),
        ))
    }

    pub fn add(&self, other: &Tensor) -> Result<Tensor> {
        self.axpby(1.0, other, 1.0)
    }

    pub fn sub(&self, other: &Tensor) -> Result<Tensor> {
        self.axpby(1.0, other, -1.0)
    }

    pub fn mul(&self, other: &Tensor) -> Result<Tensor> {
        check_same_shape("mul", self, other)?;
        if self.dtype() != other.dtype() {
            let (a, b) = self.autocast_pair(other)?;
            return a.mul(&b);
        }
        let n = self.numel();
        let s = kernel2(self, other, n, cpu::mul, |g, x, y, o| {
            launch::mul(g, n, x, y, o)
        })?;
        Ok(Tensor::result(
            self.shape().to_vec(),
            s,
            &[self, other],
            || Op::Mul(self.clone(), other.clone()),
        ))
    }

    pub fn scale(&self, alpha: f32) -> Result<Tensor> {
        let n = self.numel();
        let s = kernel1(
            self,
            n,
            |x, o| cpu::scale(alpha, x, o),
            |g, x, o| launch::scale(g, n, alpha, x, o),
        )?;
        Ok(Tensor::result(self.shape().to_vec(), s, &[self], || {
            Op::Scale(self.clone(), alpha)
        }))
    }

    pub fn relu(&self) -> Result<Tensor> {
        let n = self.numel();
        let s = kernel1(self, n, cpu::relu, |g, x, o| launch::relu(g, n, x, o))?;
        Ok(Tensor::result(self.shape().to_vec(), s, &[self], || {
            Op::Relu(self.clone())
        }))
    }

    /// SiLU (swish): x·σ(x).
    pub fn silu(&self) -> Result<Tensor> {
        let n = self.numel();
        let s = kernel1(self, n, cpu::silu, |g, x, o| launch::silu(g, n, x, o))?;
        Ok(Tensor::result(self.shape().to_vec(), s, &[self], || {
            Op::Silu(self.clone())
        }))
    }

    /// The logistic function σ(x) = 1 / (1 + e^(−x)).
    pub fn sigmoid(&self) -> Result<Tensor> {
        let n = self.numel();
        let s = kernel1(self, n, cpu::sigmoid, |g, x, o| launch::sigmoid(g, n, x, o))?;
        Ok(Tensor::result(self.shape().to_vec(), s, &[self], || {
            Op::Sigmoid(self.clone())
        }))
    }

    /// The input gradient of a pointwise op applied to self, given the output's gradient `g`
    /// (no graph).
    pub(crate) fn pointwise_grad(&self, g: &Tensor, op: Pointwise) -> Result<Tensor> {
        let n = self.numel();
        let s = match op {
            Pointwise::Silu => kernel2(self, g, n, cpu::silu_backward, |gpu, x, y, o| {
                launch::silu_backward(gpu, n, x, y, o)
            })?,
            Pointwise::Sigmoid => kernel2(self, g, n, cpu::sigmoid_backward, |gpu, x, y, o| {
                launch::sigmoid_backward(gpu, n, x, y, o)
            })?,
        };
        Ok(Tensor::result(
            self.shape().to_vec(),
            s,
            &[],
            || unreachable!(),
        ))
    }

    /// g where self > 0, else 0 (the ReLU backward; no graph).
    pub(crate) fn relu_mask(&self, g: &Tensor) -> Result<Tensor> {
        let n = self.numel();
        let s = kernel2(self, g, n, cpu::relu_backward, |gpu, x, y, o| {
            launch::relu_backward(gpu, n, x, y, o)
        })?;
        Ok(Tensor::result(
            self.shape().to_vec(),
            s,
            &[],
            || unreachable!(),
        ))
    }

    /// op(self) · op(other) for 2-D tensors, `ta`/`tb` reading an operand transposed.
    pub fn matmul_t(&self, other: &Tensor, ta: bool, tb: bool) -> Result<Tensor> {
        check_device("matmul", self, other)?;
        let bad = || Error::Shape {
            op: "matmul",
            left: self.shape().to_vec(),
            right: other.shape().to_vec(),
        };
        let ([ra, ca], [rb, cb]) = (self.shape(), other.shape()) else {
            return Err(bad());
        };
        let (m, k) = if ta { (*ca, *ra) } else { (*ra, *ca) };
        let (k2, n) = if tb { (*cb, *rb) } else { (*rb, *cb) };
        if k != k2 {
            return Err(bad());
        }
        let p = GemmParams::dense(m, n, k, ta, tb);
        let (a, b) = self.autocast_pair(other)?;
        let (a, b) = (&a, &b);
        let s = kernel2(
            a,
            b,
            m * n,
            |a, b, c| cpu::gemm(&p, a, b, &[], c),
            |g, a, b, c| launch::gemm(g, &p, a, b, None, c),
        )?;
        Ok(Tensor::result(vec![m, n], s, &[a, b], || Op::Matmul {
            a: a.clone(),
            b: b.clone(),
            ta,
            tb,
        }))
    }

    pub fn matmul(&self, other: &Tensor) -> Result<Tensor> {
        self.matmul_t(other, false, false)
    }

    /// self\[o, c, ...\] + bias\[c\]: a bias along axis 1 (features of a matrix, channels of NCHW).
    pub fn bias_add(&self, bias: &Tensor) -> Result<Tensor> {
        check_device("bias_add", self, bias)?;
        if self.shape().len() < 2 || bias.shape() != [self.shape()[1]] {
            return Err(Error::Shape {
                op: "bias_add",
                left: self.shape().to_vec(),
                right: bias.shape().to_vec(),
            });
        }
        if self.dtype() != bias.dtype() {
            let (x, b) = self.autocast_pair(bias)?;
            return x.bias_add(&b);
        }
        let (n, c) = (self.numel(), self.shape()[1]);
        let inner = self.shape()[2..].iter().product();
        let s = kernel2(
            self,
            bias,
            n,
            |x, b, o| cpu::bias_add(x, b, inner, o),
            |g, x, b, o| launch::bias_add(g, n, c, inner, x, b, o),
        )?;
        Ok(Tensor::result(
            self.shape().to_vec(),
            s,
            &[self, bias],
            || Op::BiasAdd {
                x: self.clone(),
                bias: bias.clone(),
                inner,
            },
        ))
    }

    /// Sum over the middle axis of self viewed as [outer, len, inner], times alpha.
    pub(crate) fn sum_mid(
        &self,
        outer: usize,
        len: usize,
        inner: usize,
        alpha: f32,
        shape: Vec<usize>,
    ) -> Result<Tensor> {
        let out_n = outer * inner;
        let n = self.numel();
        let s = if out_n == 1 && self.device().is_gpu() {
            // One output: a two-pass tree over all elements instead of one serial thread.
            let out = self.storage().alloc_like(1)?;
            let scratch = self
                .storage()
                .alloc_like(n.div_ceil(launch::sum_all_chunk(n)))?;
            let xs = self.storage();
            if let Placed::Gpu(g, [x, scratch, o]) = place("sum", [&*xs, &scratch, &out])? {
                launch::sum_all(g, n, alpha, x, scratch, o)?;
            }
            out
        } else {
            kernel1(
                self,
                out_n,
                |x, o| cpu::sum_mid(x, outer, len, inner, alpha, o),
                |g, x, o| launch::sum_mid(g, outer, len, inner, alpha, x, o),
            )?
        };
        Ok(Tensor::result(shape, s, &[self], || Op::SumMid {
            x: self.clone(),
            outer,
            len,
            inner,
            alpha,
        }))
    }

    /// y as [outer, inner] broadcast over a middle axis of `len` (no graph: used by backward).
    pub(crate) fn expand_mid(
        &self,
        outer: usize,
        len: usize,
        inner: usize,
        alpha: f32,
        shape: Vec<usize>,
    ) -> Result<Tensor> {
        let n = outer * len * inner;
        let s = kernel1(
            self,
            n,
            |y, o| cpu::expand_mid(y, len, inner, alpha, o),
            |g, y, o| launch::expand_mid(g, outer, len, inner, alpha, y, o),
        )?;
        Ok(Tensor::result(shape, s, &[], || unreachable!()))
    }

    fn axis_split(&self, axis: usize) -> Result<(usize, usize, usize)> {
        let sh = self.shape();
        if axis >= sh.len() {
            return Err(Error::Invalid(format!(
                "axis {axis} is out of range for shape {sh:?}"
            )));
        }
        Ok((
            sh[..axis].iter().product(),
            sh[axis],
            sh[axis + 1..].iter().product(),
        ))
    }

    /// Sum of all elements (a one-element tensor of shape []).
    pub fn sum(&self) -> Result<Tensor> {
        self.sum_mid(1, self.numel(), 1, 1.0, vec![])
    }

    pub fn mean(&self) -> Result<Tensor> {
        self.sum_mid(1, self.numel(), 1, 1.0 / self.numel().max(1) as f32, vec![])
    }

    /// Sum over `axis`, which is removed from the shape.
    pub fn sum_axis(&self, axis: usize) -> Result<Tensor> {
        let (o, l, i) = self.axis_split(axis)?;
        let mut shape = self.shape().to_vec();
        shape.remove(axis);
        self.sum_mid(o, l, i, 1.0, shape)
    }

    pub fn mean_axis(&self, axis: usize) -> Result<Tensor> {
        let (o, l, i) = self.axis_split(axis)?;
        let mut shape = self.shape().to_vec();
        shape.remove(axis);
        self.sum_mid(o, l, i, 1.0 / l.max(1) as f32, shape)
    }

    /// The same data under another shape with as many elements (shares storage).
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        if shape.iter().product::<usize>() != self.numel() {
            return Err(Error::Shape {
                op: "reshape",
                left: self.shape().to_vec(),
                right: shape.to_vec(),
            });
        }
        let track = grad_enabled() && self.requires_grad();
        Ok(Tensor::make(
            shape.to_vec(),
            self.storage(),
            track.then(|| Op::Reshape(self.clone())),
            track,
        ))
    }

    /// Softmax cross-entropy of [batch, classes] logits against class labels, with label
    /// smoothing `smoothing` (0 for none).
    pub fn cross_entropy(&self, labels: &Rc<Labels>, smoothing: f32) -> Result<CrossEntropy> {
        let &[rows, classes] = self.shape() else {
            return Err(Error::Shape {
                op: "cross_entropy",
                left: self.shape().to_vec(),
                right: vec![labels.len()],
            });
        };
        if labels.len() != rows {
            return Err(Error::Shape {
                op: "cross_entropy",
                left: self.shape().to_vec(),
                right: vec![labels.len()],
            });
        }
        let dev = self.device();
        let loss = Storage::alloc(&dev, rows)?;
        let correct = Storage::alloc(&dev, rows)?;
        let zs = self.storage();
        match (
            place("cross_entropy", [&*zs, &loss, &correct])?,
            labels.as_ref(),
        ) {
            (Placed::Gpu(g, [z, l, c]), Labels::Gpu(_, y, _)) => {
                launch::ce_forward(g, rows, classes, smoothing, z, y, l, c)?
            }
            (Placed::Cpu, Labels::Cpu(y)) => {
                Labels::check_range(y, classes)?;
                cpu::ce_forward(
                    &zs.cpu(),
                    y,
                    classes,
                    smoothing,
                    &mut loss.cpu_mut(),
                    &mut correct.cpu_mut(),
                )
            }
            _ => {
                return Err(Error::Invalid(
                    "cross_entropy: logits and labels live on different devices".into(),
                ))
            }
        }
        let loss = Tensor::result(vec![rows], loss, &[self], || Op::CrossEntropy {
            logits: self.clone(),
            labels: labels.clone(),
            smoothing,
        });
        let correct = Tensor::result(vec![rows], correct, &[], || unreachable!());
        Ok(CrossEntropy { loss, correct })
    }

    /// d(loss rows)/d(logits) scaled by the upstream per-row gradient (no graph).
    pub(crate) fn cross_entropy_backward(
        &self,
        labels: &Labels,
        smoothing: f32,
        gloss: &Tensor,
    ) -> Result<Tensor> {
        let (rows, classes) = (self.shape()[0], self.shape()[1]);
        let out = Storage::alloc(&self.device(), rows * classes)?;
        let (zs, gs) = (self.storage(), gloss.storage());
        match (place("cross_entropy", [&*zs, &*gs, &out])?, labels) {
            (Placed::Gpu(g, [z, gl, o]), Labels::Gpu(_, y, _)) => {
                launch::ce_backward(g, rows, classes, smoothing, z, y, gl, o)?
            }
            (Placed::Cpu, Labels::Cpu(y)) => cpu::ce_backward(
                &zs.cpu(),
                y,
                &gs.cpu(),
                classes,
                smoothing,
                &mut out.cpu_mut(),
            ),
            _ => return Err(Error::Invalid("cross_entropy: mixed devices".into())),
        }
        Ok(Tensor::result(
            self.shape().to_vec(),
            out,
            &[],
            || unreachable!(),
        ))
    }

    /// In place: self = value everywhere (no graph).
    pub fn fill_(&self, value: f32) -> Result<()> {
        let n = self.numel();
        let s = self.storage();
        match place("fill_", [&*s])? {
            Placed::Gpu(g, [b]) => launch::fill(g, n, value, b)?,
            Placed::Cpu => cpu::fill(value, &mut s.cpu_mut()[..n]),
        }
        Ok(())
    }

    /// In place: elements `range` of self clamped to [lo, hi] (no graph; a projection of a
    /// parameter onto its allowed interval).
    pub fn clamp_range_(&self, range: std::ops::Range<usize>, lo: f32, hi: f32) -> Result<()> {
        if range.end > self.numel() || range.start > range.end {
            return Err(Error::Invalid(format!(
                "clamp_range_: {range:?} is outside a tensor of {} elements",
                self.numel()
            )));
        }
        let s = self.storage();
        match place("clamp_range_", [&*s])? {
            Placed::Gpu(g, [b]) => launch::clamp_range(g, range, lo, hi, b)?,
            Placed::Cpu => cpu::clamp(lo, hi, &mut s.cpu_mut()[range]),
        }
        Ok(())
    }

    /// In place: self += alpha * other (no graph; optimizer updates).
    pub fn axpy_(&self, alpha: f32, other: &Tensor) -> Result<()> {
        check_same_shape("axpy_", self, other)?;
        let n = self.numel();
        let (s, o) = (self.storage(), other.storage());
        match place("axpy_", [&*s, &*o])? {
            Placed::Gpu(g, [b, x]) => launch::axpy_inplace(g, n, alpha, x, b)?,
            Placed::Cpu if s.shares_memory(&o) => {
                let src = o.cpu().to_vec();
                cpu::axpy_inplace(alpha, &src, &mut s.cpu_mut()[..n])
            }
            Placed::Cpu => cpu::axpy_inplace(alpha, &o.cpu(), &mut s.cpu_mut()[..n]),
        }
        Ok(())
    }
}
