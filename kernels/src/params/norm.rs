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
    /// Workgroups a per-channel reduction splits each channel over: one per
    /// `AUTOREP_BN_PART` elements (default 8192, 32 per invocation), at most 64. One workgroup
    /// per channel ran the statistics of a 64-channel layer at batch 128 at 518 GB/s on an
    /// H100, a quarter of an elementwise kernel's rate (BENCHMARKS.md).
    pub fn split(&self) -> usize {
        static PART: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
        let part = *PART.get_or_init(|| {
            crate::knobs::count("AUTOREP_BN_PART")
                .filter(|&v| v > 0)
                .map_or(8192, |v| v as usize)
        });
        self.count().div_ceil(part).clamp(1, 64)
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
