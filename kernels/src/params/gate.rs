//! The shape and scales of an activation site, and how its gate gradient is formed.

/// Shape and polynomial scales of one activation site.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GateParams {
    pub batch: usize,
    pub channels: usize,
    /// H·W (1 for a [B, C] site).
    pub hw: usize,
    /// One gate per channel (H·W ReLUs each) instead of one per pixel.
    pub channel_wise: bool,
    pub s1: f32,
    /// Scale of the x² term; 0 makes the polynomial degree 1.
    pub s2: f32,
    /// c2 is clamped to ±clip2 wherever it is used, passing no gradient when clamped (as
    /// torch.clamp); the official code's `--clip_x2` also clamps the stored c2 before every
    /// forward pass, which the caller does (`Replacement::begin_forward`). 0: off.
    pub clip2: f32,
}

impl GateParams {
    pub fn chw(&self) -> usize {
        self.channels * self.hw
    }
    pub fn n(&self) -> usize {
        self.batch * self.chw()
    }
    /// Elements per gate inside one image.
    pub fn group(&self) -> usize {
        if self.channel_wise {
            self.hw
        } else {
            1
        }
    }
    pub fn gates(&self) -> usize {
        self.chw() / self.group()
    }
}

/// How the gate parameter's gradient is formed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum GateGrad {
    /// AutoReP: dh = softplus(h)·(dm + penalty·weight·1\[count > budget\]) (the STE), with
    /// penalty = λ/N.
    Ste { penalty: f32, budget: u64 },
    /// SNL: α trained directly, dα = dm + λ₁·sign(α).
    Snl { l1: f32 },
}
