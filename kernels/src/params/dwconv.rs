//! The shape of a depthwise convolution.

/// A depthwise 2-D convolution (groups = channels, one filter per channel): `n` images of `c`
/// planes of `h`×`w`, a `kh`×`kw` window, square stride and zero padding; weights [C, 1, KH, KW]
/// as PyTorch stores them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DwConvParams {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub pad: usize,
}

impl DwConvParams {
    /// A window within the padded input, a stride of at least 1.
    pub fn is_valid(&self) -> bool {
        self.kh > 0
            && self.kw > 0
            && self.stride > 0
            && self.h + 2 * self.pad >= self.kh
            && self.w + 2 * self.pad >= self.kw
    }
    pub fn oh(&self) -> usize {
        (self.h + 2 * self.pad - self.kh) / self.stride + 1
    }
    pub fn ow(&self) -> usize {
        (self.w + 2 * self.pad - self.kw) / self.stride + 1
    }
    pub fn x_len(&self) -> usize {
        self.n * self.c * self.h * self.w
    }
    pub fn y_len(&self) -> usize {
        self.n * self.c * self.oh() * self.ow()
    }
    pub fn w_len(&self) -> usize {
        self.c * self.kh * self.kw
    }
}
