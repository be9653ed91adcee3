//! In-place optimizer updates over flat tensors (a parameter group's parameters, gradients
//! and state), one kernel each; no graph.

use super::backend::{place, Placed};
use super::Tensor;
use crate::error::Result;
use autorep_kernels::params::{AdamParams, SgdParams};
use autorep_kernels::{cpu, launch};

impl Tensor {
    /// One SGD step on self (the parameters) from `grad`; `momentum` is the momentum buffer
    /// (needed when `h.momentum` is not 0); `amp` the loss scaler's state (see
    /// [`launch::AMP_NONE`]): the gradient is unscaled by it, a step it flags is skipped, and
    /// under a scaler its count of applied steps decides the first step.
    pub fn sgd_step_(
        &self,
        grad: &Tensor,
        momentum: Option<&Tensor>,
        h: &SgdParams,
        amp: &Tensor,
    ) -> Result<()> {
        let n = self.numel();
        let (ps, gs, am) = (self.storage(), grad.storage(), amp.storage());
        match momentum.map(|b| b.storage()).as_deref() {
            None => match place("sgd step", [&*ps, &*gs, &*am])? {
                Placed::Gpu(g, [p, gr, a]) => launch::sgd_step(g, n, h, gr, p, None, a)?,
                Placed::Cpu => cpu::sgd_step(h, &gs.cpu(), &mut ps.cpu_mut(), None, &am.cpu()),
            },
            Some(bs) => match place("sgd step", [&*ps, &*gs, bs, &*am])? {
                Placed::Gpu(g, [p, gr, buf, a]) => launch::sgd_step(g, n, h, gr, p, Some(buf), a)?,
                Placed::Cpu => {
                    let buf = Some(&mut bs.cpu_mut()[..]);
                    cpu::sgd_step(h, &gs.cpu(), &mut ps.cpu_mut(), buf, &am.cpu())
                }
            },
        }
        Ok(())
    }

    /// One Adam / AdamW step on self (the parameters) from `grad`, with moments `m` and `v`
    /// and the loss scaler's state `amp` (as in [`Tensor::sgd_step_`]; under a scaler the bias
    /// corrections follow its count of applied steps).
    pub fn adam_step_(
        &self,
        grad: &Tensor,
        m: &Tensor,
        v: &Tensor,
        h: &AdamParams,
        amp: &Tensor,
    ) -> Result<()> {
        let n = self.numel();
        let (ps, gs, ms, vs) = (self.storage(), grad.storage(), m.storage(), v.storage());
        let am = amp.storage();
        match place("adam step", [&*ps, &*gs, &*ms, &*vs, &*am])? {
            Placed::Gpu(g, [p, gr, m, v, a]) => launch::adam_step(g, n, h, gr, p, m, v, a)?,
            Placed::Cpu => cpu::adam_step(
                h,
                &gs.cpu(),
                &mut ps.cpu_mut(),
                &mut ms.cpu_mut(),
                &mut vs.cpu_mut(),
                &am.cpu(),
            ),
        }
        Ok(())
    }

    /// Lookahead's synchronisation, self being the fast weights: slow ← slow + α·(fast −
    /// slow); fast ← slow. Skipped with the step when `amp` flags it; under a scaler, called
    /// every step and run when its applied steps (this one included) reach a multiple of
    /// `period`.
    pub fn lookahead_sync_(
        &self,
        slow: &Tensor,
        alpha: f32,
        period: u64,
        amp: &Tensor,
    ) -> Result<()> {
        let n = self.numel();
        let (fs, ss, am) = (self.storage(), slow.storage(), amp.storage());
        match place("lookahead", [&*fs, &*ss, &*am])? {
            Placed::Gpu(g, [f, s, a]) => launch::lookahead_sync(g, n, alpha, period, f, s, a)?,
            Placed::Cpu => {
                let (f, sl) = (&mut fs.cpu_mut(), &mut ss.cpu_mut());
                cpu::lookahead_sync(alpha, period, f, sl, &am.cpu())
            }
        }
        Ok(())
    }

    /// Loss scaler, self being its state: flag the step if any of `grad` is inf or NaN.
    pub fn amp_check_finite_(&self, grad: &Tensor) -> Result<()> {
        let n = grad.numel();
        let (am, gs) = (self.storage(), grad.storage());
        match place("loss-scale check", [&*gs, &*am])? {
            Placed::Gpu(g, [gr, a]) => launch::amp_check_finite(g, n, gr, a)?,
            Placed::Cpu => cpu::amp_check_finite(&gs.cpu(), &mut am.cpu_mut()),
        }
        Ok(())
    }

    /// Loss scaler, self being its state: halve after a flagged step, double after
    /// `growth_interval` clean ones, clear the flag.
    pub fn amp_update_(&self, growth_interval: u32) -> Result<()> {
        let am = self.storage();
        match place("loss-scale update", [&*am])? {
            Placed::Gpu(g, [a]) => launch::amp_update(g, growth_interval, a)?,
            Placed::Cpu => cpu::amp_update(growth_interval, &mut am.cpu_mut()),
        }
        Ok(())
    }

    /// Σ x² over self, on the host (one readback on a GPU).
    pub fn sum_squares(&self) -> Result<f64> {
        let n = self.numel();
        let xs = self.storage();
        Ok(match place("sum of squares", [&*xs])? {
            Placed::Gpu(g, [x]) => {
                let scratch = g.alloc(launch::sum_squares_scratch_len(n) as u64 * 4)?;
                let out = g.alloc(4)?;
                launch::sum_squares(g, n, x, &scratch, &out)?;
                g.read_f32(&out, 0, 1)?[0] as f64
            }
            Placed::Cpu => cpu::sum_squares(&xs.cpu()) as f64,
        })
    }
}
