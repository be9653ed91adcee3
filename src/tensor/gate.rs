//! The AutoReP gated activation as a differentiable op, and the exact ReLU counter it reads.

use super::backend::{place, Placed};
use super::{Op, Storage, Tensor};
use crate::device::Device;
use crate::error::{Error, Result};
use autorep_kernels::{cpu, launch, params::GateGrad, params::GateParams, Gpu, GpuBuffer};
use std::cell::Cell;

/// The model's exact ReLU count, where the gate-gradient kernels read it: a u32 on the
/// device (so the budget hinge needs no host round-trip), or a host integer.
pub enum ReluCounter {
    Cpu(Cell<u64>),
    Gpu(Gpu, GpuBuffer),
}

impl ReluCounter {
    pub fn new(device: &Device) -> Result<ReluCounter> {
        Ok(match device {
            Device::Cpu => ReluCounter::Cpu(Cell::new(0)),
            Device::Gpu(g) => ReluCounter::Gpu(g.clone(), g.upload(&[0u32])?),
        })
    }

    /// Zero the count (in stream order on a GPU).
    pub fn reset(&self) -> Result<()> {
        match self {
            ReluCounter::Cpu(c) => c.set(0),
            ReluCounter::Gpu(g, b) => launch::count_reset(g, b)?,
        }
        Ok(())
    }

    /// Add `weight` per gate of `mask` above `threshold`.
    pub fn add(&self, p: &GateParams, mask: &Tensor, threshold: f32) -> Result<()> {
        let ms = mask.storage();
        match (self, place("relu count", [&*ms])?) {
            (ReluCounter::Gpu(g, b), Placed::Gpu(_, [m])) => {
                launch::gate_count(g, p, threshold, m, b)?
            }
            (ReluCounter::Cpu(c), Placed::Cpu) => {
                c.set(c.get() + cpu::gate_count(&ms.cpu(), threshold, p.group() as u64))
            }
            _ => {
                return Err(Error::Invalid(
                    "ReLU counter and mask live on different devices".into(),
                ))
            }
        }
        Ok(())
    }

    /// The count on the host (a readback on a GPU).
    pub fn read(&self) -> Result<u64> {
        Ok(match self {
            ReluCounter::Cpu(c) => c.get(),
            ReluCounter::Gpu(g, b) => g.read_u32(b, 0, 1)?[0] as u64,
        })
    }
}

impl Tensor {
    /// In place: mask ← mask·1\[h > −τ\] + (1 − mask)·1\[h > τ\], with h = self (no graph).
    pub fn gate_hysteresis(&self, mask: &Tensor, tau: f32) -> Result<()> {
        let p = GateParams {
            batch: 1,
            channels: 1,
            hw: self.numel(),
            channel_wise: false,
            s1: 1.0,
            s2: 0.0,
            clip2: 0.0,
        };
        let (hs, ms) = (self.storage(), mask.storage());
        match place("gate_hysteresis", [&*hs, &*ms])? {
            Placed::Gpu(g, [h, m]) => launch::gate_hysteresis(g, &p, tau, h, m)?,
            Placed::Cpu => cpu::gate_hysteresis(tau, &hs.cpu(), &mut ms.cpu_mut()),
        }
        Ok(())
    }

    /// y = m·ReLU(x) + (1 − m)·P(x) for x [B, C, H, W] or [B, C]. `gate` is the trainable
    /// gate parameter (h under AutoReP, α under SNL, where it is also the mask); gradients
    /// reach x, `coef` (when it is a parameter) and `gate` through `grad`.
    pub fn gate(
        &self,
        mask: &Tensor,
        coef: &Tensor,
        gate: &Tensor,
        p: GateParams,
        grad: GateGrad,
        counter: &std::rc::Rc<ReluCounter>,
    ) -> Result<Tensor> {
        let sh = self.shape();
        let (b, c, hw) = (
            sh.first().copied().unwrap_or(0),
            sh.get(1).copied().unwrap_or(0),
            sh.iter().skip(2).product::<usize>(),
        );
        if sh.len() < 2 || b != p.batch || c != p.channels || hw != p.hw {
            return Err(Error::Invalid(format!(
                "activation site expects [{}, {}, {} pixels] but got {sh:?}",
                p.batch, p.channels, p.hw
            )));
        }
        if mask.numel() != p.gates() || gate.numel() != p.gates() || coef.numel() != 3 * p.channels
        {
            return Err(Error::Invalid(
                "activation site state does not match its shape".into(),
            ));
        }
        let out = self.storage().alloc_like(p.n())?;
        let (xs, ms, cs) = (self.storage(), mask.storage(), coef.storage());
        match place("gate", [&*xs, &*ms, &*cs, &out])? {
            Placed::Gpu(g, [x, m, cf, y]) => launch::gate_forward(g, &p, x, m, cf, y)?,
            Placed::Cpu => {
                cpu::gate_forward(&p, &xs.cpu(), &ms.cpu(), &cs.cpu(), &mut out.cpu_mut())
            }
        }
        Ok(Tensor::result(
            sh.to_vec(),
            out,
            &[self, gate, coef],
            || Op::Gate {
                x: self.clone(),
                gate: gate.clone(),
                coef: coef.clone(),
                mask: mask.detach(),
                p,
                grad,
                counter: counter.clone(),
            },
        ))
    }

    /// Gradients of the gate op given dy = self: (dx, dgate, dcoef), each only when wanted;
    /// the budget penalty is scaled by the backward pass's `seed` (see `Op::grads`).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn gate_backward(
        &self,
        x: &Tensor,
        mask: &Tensor,
        coef: &Tensor,
        gate: &Tensor,
        p: &GateParams,
        grad: GateGrad,
        counter: &ReluCounter,
        want: [bool; 3],
        seed: &Tensor,
    ) -> Result<[Option<Tensor>; 3]> {
        let dev = self.device();
        let shape = x.shape().to_vec();
        let mk = |s: Storage, shape: Vec<usize>| Tensor::result(shape, s, &[], || unreachable!());
        let (dx, dm, dc, dh) = (
            self.storage().alloc_like(p.n())?,
            Storage::alloc(&dev, p.gates())?,
            Storage::alloc(&dev, 3 * p.channels)?,
            Storage::alloc(&dev, p.gates())?,
        );
        let (xst, yst, mst, cst, hst, sst) = (
            x.storage(),
            self.storage(),
            mask.storage(),
            coef.storage(),
            gate.storage(),
            seed.storage(),
        );
        let placed = place(
            "gate backward",
            [&*xst, &*yst, &*mst, &*cst, &*hst, &dx, &dm, &dc, &dh, &*sst],
        )?;
        match (placed, counter) {
            (
                Placed::Gpu(g, [xb, gy, m, cf, h, dxb, dmb, dcb, dhb, sb]),
                ReluCounter::Gpu(_, cnt),
            ) => {
                if want[0] {
                    launch::gate_grad_x(g, p, xb, gy, m, cf, dxb)?;
                }
                if want[1] {
                    launch::gate_grad_mask(g, p, xb, gy, cf, dmb)?;
                    launch::gate_grad_h(g, p, grad, h, dmb, cnt, dhb, sb)?;
                }
                if want[2] {
                    launch::gate_grad_coef(g, p, xb, gy, m, cf, dcb)?;
                }
            }
            (Placed::Cpu, ReluCounter::Cpu(cnt)) => {
                let (xs, gy, m, cf, h) = (xst.cpu(), yst.cpu(), mst.cpu(), cst.cpu(), &hst);
                if want[0] {
                    cpu::gate_grad_x(p, &xs, &gy, &m, &cf, &mut dx.cpu_mut());
                }
                if want[1] {
                    cpu::gate_grad_mask(p, &xs, &gy, &cf, &mut dm.cpu_mut());
                    let scale = sst.cpu()[0];
                    let (hv, dmv) = (h.cpu(), dm.cpu());
                    cpu::gate_grad_h(p, grad, &hv, &dmv, cnt.get(), &mut dh.cpu_mut(), scale);
                }
                if want[2] {
                    cpu::gate_grad_coef(p, &xs, &gy, &m, &cf, &mut dc.cpu_mut());
                }
            }
            _ => {
                return Err(Error::Invalid(
                    "activation site state lives on another device".into(),
                ))
            }
        }
        Ok([
            want[0].then(|| mk(dx, shape)),
            want[1].then(|| mk(dh, gate.shape().to_vec())),
            want[2].then(|| mk(dc, coef.shape().to_vec())),
        ])
    }
}
