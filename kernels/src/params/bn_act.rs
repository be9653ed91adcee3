//! The shape and activation of a fused batch norm + (residual add) + activation call.

use super::{BnShape, GateParams};

/// Partial sums per part of a channel in the backward reduction: Σ dy, Σ dy·x̂ and the gate's
/// three coefficient sums.
const PARTIAL_SUMS: usize = 5;

/// The activation after the batch norm.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FusedAct {
    Relu,
    Silu,
    /// AutoReP's gated ReLU/polynomial site; its batch, channels and H·W match the batch norm's.
    Gate(GateParams),
}

/// One fused call: s = BN(x) (+ r), z = act(s).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BnAct {
    pub s: BnShape,
    pub eps: f32,
    /// A residual r (same shape as x) is added before the activation.
    pub residual: bool,
    /// Batch statistics normalise (training); else the running ones (their gradient is then
    /// the plain γ·invstd·dy).
    pub train: bool,
    pub act: FusedAct,
}

impl BnAct {
    /// Elements between the sections of the backward sums [dβ | dγ | dcoef]: the channel
    /// count rounded up to 64 floats (256 bytes), so each section is a view a kernel can bind.
    pub fn stride(&self) -> usize {
        self.s.channels.div_ceil(64) * 64
    }

    /// Length of the backward sums: dβ and dγ sections, dcoef's 3C, then the GPU reduction's
    /// partial sums (five per part of a channel, see `BnShape::split`).
    pub fn sums_len(&self) -> usize {
        self.parts_offset() + PARTIAL_SUMS * self.s.channels * self.s.split()
    }

    /// Where the partial sums start in the backward sums.
    pub fn parts_offset(&self) -> usize {
        2 * self.stride() + 3 * self.s.channels
    }

    /// The gate's parameters, when the activation is a gate.
    pub fn gate(&self) -> Option<&GateParams> {
        match &self.act {
            FusedAct::Gate(g) => Some(g),
            _ => None,
        }
    }

    pub(crate) fn check(&self) {
        if let Some(g) = self.gate() {
            assert_eq!(
                (g.batch, g.channels, g.hw),
                (self.s.n, self.s.channels, self.s.hw),
                "fused batch norm + gate: gate shape vs {self:?}"
            );
        }
    }
}
