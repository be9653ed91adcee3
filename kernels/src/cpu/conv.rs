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

/// Images per work item. Fixed (not derived from the thread count) so that the weight
/// gradient, summed per item and then over items in order, is the same on every machine.
const IMAGES_PER_ITEM: usize = 4;

fn threads() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8)
}

/// Run `work(item, out_chunk)` for every item of `out` split into `chunk`-sized pieces, on
/// all cores; each item owns its output chunk, so no synchronisation is needed.
fn par_chunks<T: Send>(out: &mut [T], chunk: usize, work: impl Fn(usize, &mut [T]) + Sync) {
    let items: Vec<(usize, &mut [T])> = out.chunks_mut(chunk.max(1)).enumerate().collect();
    let per = items.len().div_ceil(threads()).max(1);
    let mut groups: Vec<Vec<(usize, &mut [T])>> = Vec::new();
    let mut it = items.into_iter().peekable();
    while it.peek().is_some() {
        groups.push(it.by_ref().take(per).collect());
    }
    std::thread::scope(|s| {
        for g in groups {
            let work = &work;
            s.spawn(move || g.into_iter().for_each(|(i, c)| work(i, c)));
        }
    });
}

/// y[n, co, oy, ox] = Σ_{ci,ky,kx} x[n, ci, oy·s−p+ky, ox·s−p+kx] · w[co, ci, ky, kx]
pub fn conv2d_forward<T: Real>(p: &ConvParams, x: &[T], w: &[T], y: &mut [T]) {
    let (k, pix, img) = (p.taps(), p.oh() * p.ow(), p.cin * p.h * p.w);
    let g = mat(
        p.cout,
        pix,
        k,
        Strided::matrix(p.cout, k, false),
        Strided::matrix(k, pix, false),
        false,
    );
    let y = &mut y[..p.n * p.cout * pix];
    par_chunks(y, IMAGES_PER_ITEM * p.cout * pix, |item, out| {
        let mut cols = vec![T::zero(); k * pix];
        for (j, yi) in out.chunks_mut(p.cout * pix).enumerate() {
            let i = item * IMAGES_PER_ITEM + j;
            im2col(p, &x[i * img..], &mut cols);
            gemm(&g, w, &cols, &[], yi);
        }
    });
}

/// dx = the adjoint of the forward pass applied to dy.
pub fn conv2d_input_grad<T: Real>(p: &ConvParams, dy: &[T], w: &[T], dx: &mut [T]) {
    let (k, pix, img) = (p.taps(), p.oh() * p.ow(), p.cin * p.h * p.w);
    // cols = Wᵀ[k, cout] · dy_n[cout, pix]
    let g = mat(
        k,
        pix,
        p.cout,
        Strided::matrix(p.cout, k, true),
        Strided::matrix(p.cout, pix, false),
        false,
    );
    let dx = &mut dx[..p.n * img];
    par_chunks(dx, IMAGES_PER_ITEM * img, |item, out| {
        let mut cols = vec![T::zero(); k * pix];
        for (j, dxi) in out.chunks_mut(img).enumerate() {
            let i = item * IMAGES_PER_ITEM + j;
            gemm(
                &g,
                w,
                &dy[i * p.cout * pix..(i + 1) * p.cout * pix],
                &[],
                &mut cols,
            );
            dxi.iter_mut().for_each(|v| *v = T::zero());
            col2im(p, &cols, dxi);
        }
    });
}

/// dw[co, ci, ky, kx] = Σ_{n, oy, ox} dy[n, co, oy, ox] · x[n, ci, oy·s−p+ky, ox·s−p+kx]
pub fn conv2d_weight_grad<T: Real>(p: &ConvParams, x: &[T], dy: &[T], dw: &mut [T]) {
    let (k, pix, img) = (p.taps(), p.oh() * p.ow(), p.cin * p.h * p.w);
    let wl = p.cout * k;
    // dw_item[cout, k] = Σ over the item's images of dy_n[cout, pix] · colsᵀ[pix, k]
    let g = mat(
        p.cout,
        k,
        pix,
        Strided::matrix(p.cout, pix, false),
        Strided::matrix(k, pix, true),
        true,
    );
    let items = p.n.div_ceil(IMAGES_PER_ITEM);
    let mut partial = vec![T::zero(); items * wl];
    par_chunks(&mut partial, wl, |item, part| {
        let mut cols = vec![T::zero(); k * pix];
        for i in item * IMAGES_PER_ITEM..((item + 1) * IMAGES_PER_ITEM).min(p.n) {
            im2col(p, &x[i * img..], &mut cols);
            gemm(
                &g,
                &dy[i * p.cout * pix..(i + 1) * p.cout * pix],
                &cols,
                &[],
                part,
            );
        }
    });
    let dw = &mut dw[..wl];
    dw.iter_mut().for_each(|v| *v = T::zero());
    for part in partial.chunks(wl) {
        for (d, &v) in dw.iter_mut().zip(part) {
            *d = *d + v;
        }
    }
}
