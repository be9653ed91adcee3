//! Convolution on the CPU: im2col per image, then one GEMM through the `matrixmultiply` crate.

use super::{gemm, GemmParams, Real, Strided};

/// Shape of one 2-D convolution (NCHW, groups = 1, square stride and padding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    /// The same convolution over `n` images.
    pub fn with_batch(&self, n: usize) -> Self {
        ConvParams { n, ..*self }
    }
}

/// cols[tap][pixel] of one image (taps = Cin·KH·KW, pixels = OH·OW).
fn im2col<T: Real>(p: &ConvParams, x: &[T], cols: &mut [T]) {
    let (oh, ow) = (p.oh(), p.ow());
    for ci in 0..p.cin {
        for ky in 0..p.kh {
            for kx in 0..p.kw {
                let row = ((ci * p.kh + ky) * p.kw + kx) * oh * ow;
                for oy in 0..oh {
                    let iy = (oy * p.stride + ky) as isize - p.pad as isize;
                    for ox in 0..ow {
                        let ix = (ox * p.stride + kx) as isize - p.pad as isize;
                        let inside =
                            iy >= 0 && ix >= 0 && (iy as usize) < p.h && (ix as usize) < p.w;
                        cols[row + oy * ow + ox] = if inside {
                            x[(ci * p.h + iy as usize) * p.w + ix as usize]
                        } else {
                            T::zero()
                        };
                    }
                }
            }
        }
    }
}

/// The adjoint of im2col: scatter-add cols back into one image.
fn col2im<T: Real>(p: &ConvParams, cols: &[T], dx: &mut [T]) {
    let (oh, ow) = (p.oh(), p.ow());
    for ci in 0..p.cin {
        for ky in 0..p.kh {
            for kx in 0..p.kw {
                let row = ((ci * p.kh + ky) * p.kw + kx) * oh * ow;
                for oy in 0..oh {
                    let iy = (oy * p.stride + ky) as isize - p.pad as isize;
                    for ox in 0..ow {
                        let ix = (ox * p.stride + kx) as isize - p.pad as isize;
                        if iy >= 0 && ix >= 0 && (iy as usize) < p.h && (ix as usize) < p.w {
                            let i = (ci * p.h + iy as usize) * p.w + ix as usize;
                            dx[i] = dx[i] + cols[row + oy * ow + ox];
                        }
                    }
                }
            }
        }
    }
}

fn mat(m: usize, n: usize, k: usize, a: Strided, b: Strided, accumulate: bool) -> GemmParams {
    GemmParams {
        m,
        n,
        k,
        batch: 1,
        a,
        b,
        c: Strided::matrix(m, n, false),
        bias_off: None,
        accumulate,
        alpha: 1.0,
    }
}

/// y[n, co, oy, ox] = Σ_{ci,ky,kx} x[n, ci, oy·s−p+ky, ox·s−p+kx] · w[co, ci, ky, kx]
pub fn conv2d_forward<T: Real>(p: &ConvParams, x: &[T], w: &[T], y: &mut [T]) {
    let (k, pix) = (p.taps(), p.oh() * p.ow());
    let mut cols = vec![T::zero(); k * pix];
    let g = mat(
        p.cout,
        pix,
        k,
        Strided::matrix(p.cout, k, false),
        Strided::matrix(k, pix, false),
        false,
    );
    for i in 0..p.n {
        im2col(p, &x[i * p.cin * p.h * p.w..], &mut cols);
        gemm(
            &g,
            w,
            &cols,
            &[],
            &mut y[i * p.cout * pix..(i + 1) * p.cout * pix],
        );
    }
}

/// dx = the adjoint of the forward pass applied to dy.
pub fn conv2d_input_grad<T: Real>(p: &ConvParams, dy: &[T], w: &[T], dx: &mut [T]) {
    let (k, pix, img) = (p.taps(), p.oh() * p.ow(), p.cin * p.h * p.w);
    let mut cols = vec![T::zero(); k * pix];
    // cols = Wᵀ[k, cout] · dy_n[cout, pix]
    let g = mat(
        k,
        pix,
        p.cout,
        Strided::matrix(p.cout, k, true),
        Strided::matrix(p.cout, pix, false),
        false,
    );
    for i in 0..p.n {
        gemm(
            &g,
            w,
            &dy[i * p.cout * pix..(i + 1) * p.cout * pix],
            &[],
            &mut cols,
        );
        let out = &mut dx[i * img..(i + 1) * img];
        out.iter_mut().for_each(|v| *v = T::zero());
        col2im(p, &cols, out);
    }
}

/// dw[co, ci, ky, kx] = Σ_{n, oy, ox} dy[n, co, oy, ox] · x[n, ci, oy·s−p+ky, ox·s−p+kx]
pub fn conv2d_weight_grad<T: Real>(p: &ConvParams, x: &[T], dy: &[T], dw: &mut [T]) {
    let (k, pix) = (p.taps(), p.oh() * p.ow());
    let mut cols = vec![T::zero(); k * pix];
    dw.iter_mut().for_each(|v| *v = T::zero());
    // dw[cout, k] += dy_n[cout, pix] · colsᵀ[pix, k]
    let g = mat(
        p.cout,
        k,
        pix,
        Strided::matrix(p.cout, pix, false),
        Strided::matrix(k, pix, true),
        true,
    );
    for i in 0..p.n {
        im2col(p, &x[i * p.cin * p.h * p.w..], &mut cols);
        gemm(
            &g,
            &dy[i * p.cout * pix..(i + 1) * p.cout * pix],
            &cols,
            &[],
            dw,
        );
    }
}
