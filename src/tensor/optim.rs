//! In-place optimizer updates over flat tensors (a parameter group's parameters, gradients
//! and state), one kernel each; no graph.

use super::backend::{place, Placed};
use super::Tensor;
use crate::error::Result;
use autorep_kernels::params::{AdamParams, SgdParams};
use autorep_kernels::{cpu, launch};

impl Tensor {
    /// One SGD step on self (the parameters) from `grad`; `momentum` is the momentum buffer
    /// (needed when `h.momentum` is not 0).
    pub fn sgd_step_(&self, grad: &Tensor, momentum: Option<&Tensor>, h: &SgdParams) -> Result<()> {
        let n = self.numel();
        let (ps, gs) = (self.storage(), grad.storage());
        match momentum.map(|b| b.storage()).as_deref() {
            None => match place("sgd step", [&*ps, &*gs])? {
                Placed::Gpu(g, [p, gr]) => launch::sgd_step(g, n, h, gr, p, None)?,
                Placed::Cpu => cpu::sgd_step(h, &gs.cpu(), &mut ps.cpu_mut(), None),
            },
            Some(bs) => match place("sgd step", [&*ps, &*gs, bs])? {
                Placed::Gpu(g, [p, gr, buf]) => launch::sgd_step(g, n, h, gr, p, Some(buf))?,
                Placed::Cpu => {
                    cpu::sgd_step(h, &gs.cpu(), &mut ps.cpu_mut(), Some(&mut bs.cpu_mut()))
                }
            },
        }
        Ok(())
    }

    /// One Adam / AdamW step on self (the parameters) from `grad`, with moments `m` and `v`.
    pub fn adam_step_(&self, grad: &Tensor, m: &Tensor, v: &Tensor, h: &AdamParams) -> Result<()> {
        let n = self.numel();
        let (ps, gs, ms, vs) = (self.storage(), grad.storage(), m.storage(), v.storage());
        match place("adam step", [&*ps, &*gs, &*ms, &*vs])? {
            Placed::Gpu(g, [p, gr, m, v]) => launch::adam_step(g, n, h, gr, p, m, v)?,
            Placed::Cpu => cpu::adam_step(
                h,
                &gs.cpu(),
                &mut ps.cpu_mut(),
                &mut ms.cpu_mut(),
                &mut vs.cpu_mut(),
            ),
        }
        Ok(())
    }

    /// Lookahead's synchronisation, self being the fast weights: slow ← slow + α·(fast −
    /// slow); fast ← slow.
    pub fn lookahead_sync_(&self, slow: &Tensor, alpha: f32) -> Result<()> {
        let n = self.numel();
        let (fs, ss) = (self.storage(), slow.storage());
        match place("lookahead", [&*fs, &*ss])? {
            Placed::Gpu(g, [f, s]) => launch::lookahead_sync(g, n, alpha, f, s)?,
            Placed::Cpu => cpu::lookahead_sync(alpha, &mut fs.cpu_mut(), &mut ss.cpu_mut()),
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
