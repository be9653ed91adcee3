//! Shape, padding and normalisation of an augmented batch.

/// Most channels the augmentation kernel normalises (one mean/std pair each).
pub const AUGMENT_MAX_CHANNELS: usize = 3;

/// Shape, padding and normalisation of one augmented batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AugmentParams {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    /// Zero padding on every side before the crop (4 for CIFAR); at most 127.
    pub pad: usize,
    pub batch: usize,
    /// Images in the packed dataset; a sample whose index is not below this yields zeros.
    pub count: usize,
    /// Per-channel mean and std (entries past `channels` are ignored).
    pub mean: [f32; AUGMENT_MAX_CHANNELS],
    pub std: [f32; AUGMENT_MAX_CHANNELS],
}

impl AugmentParams {
    pub fn hw(&self) -> usize {
        self.height * self.width
    }
    pub fn chw(&self) -> usize {
        self.channels * self.hw()
    }
    /// Output elements: batch x C x H x W.
    pub fn n(&self) -> usize {
        self.batch * self.chw()
    }
    pub(crate) fn check(&self) {
        assert!(
            (1..=AUGMENT_MAX_CHANNELS).contains(&self.channels),
            "augment_batch: {} channels, the kernel handles 1..={AUGMENT_MAX_CHANNELS}",
            self.channels
        );
        assert!(self.pad <= 127, "augment_batch: pad {} > 127", self.pad);
    }
}
