//! The shape of a 2-D convolution.

/// Shape of one 2-D convolution (NCHW, groups = 1, square stride and padding).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConvParams {
    pub n: usize,
    pub cin: usize,
    pub h: usize,
    pub w: usize,
    pub cout: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub pad: usize,
}

impl ConvParams {
    pub fn oh(&self) -> usize {
        (self.h + 2 * self.pad - self.kh) / self.stride + 1
    }
    pub fn ow(&self) -> usize {
        (self.w + 2 * self.pad - self.kw) / self.stride + 1
    }
    /// Taps per output: Cin·KH·KW, the GEMM's K in the forward pass.
    pub fn taps(&self) -> usize {
        self.cin * self.kh * self.kw
    }
    pub fn x_len(&self) -> usize {
        self.n * self.cin * self.h * self.w
    }
    pub fn y_len(&self) -> usize {
        self.n * self.cout * self.oh() * self.ow()
    }
    pub fn w_len(&self) -> usize {
        self.cout * self.taps()
    }
    /// Multiply-adds of the forward pass, times two.
    pub fn flops(&self) -> f64 {
        2.0 * (self.n * self.oh() * self.ow()) as f64 * self.cout as f64 * self.taps() as f64
    }
    /// The layer in a line, as benchmarks and profiles print it: "3x3 64->128 @32 s2" (kernel,
    /// channels, input side or HxW, stride).
    pub fn shape_label(&self) -> String {
        let side = if self.h == self.w {
            self.h.to_string()
        } else {
            format!("{}x{}", self.h, self.w)
        };
        format!(
            "{}x{} {}->{} @{side} s{}",
            self.kh, self.kw, self.cin, self.cout, self.stride
        )
    }
    /// The same convolution over `n` images.
    pub fn with_batch(&self, n: usize) -> Self {
        ConvParams { n, ..*self }
    }
}
