//! The shape of a batch-norm call.

/// Shape of one batch-norm call: `n` images of `channels` planes of `hw` elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BnShape {
    pub n: usize,
    pub channels: usize,
    pub hw: usize,
}

impl BnShape {
    /// Elements behind each channel's statistics (N·H·W).
    pub fn count(&self) -> usize {
        self.n * self.hw
    }
    pub fn len(&self) -> usize {
        self.n * self.channels * self.hw
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub(crate) fn check(&self, x_len: usize, c_len: usize) {
        assert_eq!(x_len, self.len(), "batch norm: data length vs {self:?}");
        assert_eq!(
            c_len, self.channels,
            "batch norm: per-channel length vs {self:?}"
        );
    }
}
