//! The shape of a pooling window.

/// Shape of one square-window pooling: `n` images of `c` planes of `h`×`w`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolParams {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub k: usize,
    pub stride: usize,
    pub pad: usize,
}

impl PoolParams {
    /// PyTorch's limits: padding at most half the window (so no window lies entirely in the
    /// padding and max pooling always finds a real element), and the padded input at least
    /// one window wide.
    pub fn is_valid(&self) -> bool {
        self.k > 0
            && self.stride > 0
            && 2 * self.pad <= self.k
            && self.h + 2 * self.pad >= self.k
            && self.w + 2 * self.pad >= self.k
    }
    pub(crate) fn check(&self) {
        assert!(self.is_valid(), "invalid pooling {self:?}");
    }
    pub fn oh(&self) -> usize {
        (self.h + 2 * self.pad - self.k) / self.stride + 1
    }
    pub fn ow(&self) -> usize {
        (self.w + 2 * self.pad - self.k) / self.stride + 1
    }
    pub fn x_len(&self) -> usize {
        self.n * self.c * self.h * self.w
    }
    pub fn y_len(&self) -> usize {
        self.n * self.c * self.oh() * self.ow()
    }

    /// In-bounds (row, col) positions of output (oy, ox)'s window, row-major.
    pub(crate) fn window(&self, oy: usize, ox: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
        let y0 = (oy * self.stride) as isize - self.pad as isize;
        let x0 = (ox * self.stride) as isize - self.pad as isize;
        let k = self.k as isize;
        (y0..y0 + k)
            .filter(|&iy| iy >= 0 && (iy as usize) < self.h)
            .flat_map(move |iy| {
                (x0..x0 + k)
                    .filter(|&ix| ix >= 0 && (ix as usize) < self.w)
                    .map(move |ix| (iy as usize, ix as usize))
            })
    }

    /// Outputs along one axis whose windows cover input position `i`, as a range.
    pub(crate) fn covering(&self, i: usize, out: usize) -> std::ops::Range<usize> {
        let lo = (i + self.pad + 1)
            .saturating_sub(self.k)
            .div_ceil(self.stride);
        let hi = ((i + self.pad) / self.stride + 1).min(out);
        lo..hi.max(lo)
    }
}
