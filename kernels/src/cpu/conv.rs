//! Convolution on the CPU: im2col, then GEMMs through the `matrixmultiply` crate. Images are
//! processed in fixed groups (items) on all cores; the columns of an item's images sit side by
//! side, so each pass is one GEMM per item and the weights are packed once per item rather than
//! once per image (packing dominated the late layers, whose images have only 16-64 pixels).

use super::parallel::par_chunks;
use super::scratch::Scratch;
use super::{gemm, Real};
use crate::params::{ConvParams, GemmParams, Strided};

/// The range of output columns `o` whose input column `o·stride + k − pad` lies inside
/// `0..len`, and the input column of the first (valid when the range is not empty).
fn inside(o_len: usize, len: usize, k: usize, stride: usize, pad: usize) -> (usize, usize, usize) {
    let lo = pad.saturating_sub(k).div_ceil(stride).min(o_len);
    let hi = if len + pad > k {
        ((len - 1 + pad - k) / stride + 1).min(o_len)
    } else {
        0
    }
    .max(lo);
    (lo, hi, (lo * stride + k).saturating_sub(pad))
}

/// Image `x` ([Cin, H, W]) as columns: cols[tap · ld + col0 + pixel] for taps = Cin·KH·KW
/// and pixels = OH·OW.
fn im2col<T: Real>(p: &ConvParams, x: &[T], cols: &mut [T], ld: usize, col0: usize) {
    let (oh, ow, s) = (p.oh(), p.ow(), p.stride);
    for ci in 0..p.cin {
        for ky in 0..p.kh {
            let (ylo, yhi, iy0) = inside(oh, p.h, ky, s, p.pad);
            for kx in 0..p.kw {
                let (xlo, xhi, ix0) = inside(ow, p.w, kx, s, p.pad);
                let row = ((ci * p.kh + ky) * p.kw + kx) * ld + col0;
                let dst = &mut cols[row..row + oh * ow];
                dst[..ylo * ow].fill(T::zero());
                dst[yhi * ow..].fill(T::zero());
                for oy in ylo..yhi {
                    let src = &x[(ci * p.h + iy0 + (oy - ylo) * s) * p.w..][..p.w];
                    let d = &mut dst[oy * ow..(oy + 1) * ow];
                    d[..xlo].fill(T::zero());
                    d[xhi..].fill(T::zero());
                    if s == 1 && xhi > xlo {
                        d[xlo..xhi].copy_from_slice(&src[ix0..ix0 + (xhi - xlo)]);
                    } else {
                        for (v, ix) in d[xlo..xhi].iter_mut().zip((ix0..).step_by(s)) {
                            *v = src[ix];
                        }
                    }
                }
            }
        }
    }
}

/// The adjoint of im2col: scatter-add the columns back into one image `dx`.
fn col2im<T: Real>(p: &ConvParams, cols: &[T], ld: usize, col0: usize, dx: &mut [T]) {
    let (oh, ow, s) = (p.oh(), p.ow(), p.stride);
    for ci in 0..p.cin {
        for ky in 0..p.kh {
            let (ylo, yhi, iy0) = inside(oh, p.h, ky, s, p.pad);
            for kx in 0..p.kw {
                let (xlo, xhi, ix0) = inside(ow, p.w, kx, s, p.pad);
                let row = ((ci * p.kh + ky) * p.kw + kx) * ld + col0;
                for oy in ylo..yhi {
                    let dst = &mut dx[(ci * p.h + iy0 + (oy - ylo) * s) * p.w..][..p.w];
                    let src = &cols[row + oy * ow + xlo..row + oy * ow + xhi];
                    if s == 1 && !src.is_empty() {
                        let d = &mut dst[ix0..ix0 + src.len()];
                        d.iter_mut().zip(src).for_each(|(d, &v)| *d = *d + v);
                    } else {
                        for (&v, ix) in src.iter().zip((ix0..).step_by(s)) {
                            dst[ix] = dst[ix] + v;
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

/// Bytes of im2col columns one GEMM may use: an item's images share a GEMM (and one packing
/// of the weights) while their columns stay within it, so late layers (16-64 pixels per
/// image) batch all four and the first stages, whose columns are megabytes per image, do not
/// spill every cache level. Fixed, like the items, so results do not depend on the machine;
/// `AUTOREP_CPU_COLS_BYTES` overrides it for tuning.
const COLS_BYTES: usize = 4 << 20;

fn cols_budget() -> usize {
    static BUDGET: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *BUDGET.get_or_init(|| {
        crate::knobs::count("AUTOREP_CPU_COLS_BYTES").map_or(COLS_BYTES, |v| v as usize)
    })
}

/// The GEMM groups of an item of `imgs` images: (first image within the item, images).
fn groups<T>(p: &ConvParams, imgs: usize) -> impl Iterator<Item = (usize, usize)> {
    let per_image = p.taps() * p.oh() * p.ow() * std::mem::size_of::<T>();
    let per = (cols_budget() / per_image.max(1)).clamp(1, IMAGES_PER_ITEM);
    (0..imgs).step_by(per).map(move |j| (j, per.min(imgs - j)))
}

/// Copy `imgs` planes of `rows x pix` from `[img][row][pix]` to `[row][img · pix]`, or back.
fn interleave<T: Real>(src: &[T], dst: &mut [T], imgs: usize, rows: usize, pix: usize, back: bool) {
    let ld = imgs * pix;
    for j in 0..imgs {
        for r in 0..rows {
            let (a, b) = ((j * rows + r) * pix, r * ld + j * pix);
            if back {
                dst[a..a + pix].copy_from_slice(&src[b..b + pix]);
            } else {
                dst[b..b + pix].copy_from_slice(&src[a..a + pix]);
            }
        }
    }
}

/// y[n, co, oy, ox] = Σ_{ci,ky,kx} x[n, ci, oy·s−p+ky, ox·s−p+kx] · w[co, ci, ky, kx]
pub fn conv2d_forward<T: Real>(p: &ConvParams, x: &[T], w: &[T], y: &mut [T]) {
    let _p = super::profile::span("conv2d_forward");
    let (k, pix) = (p.taps(), p.oh() * p.ow());
    let plane = p.cout * pix;
    let y = &mut y[..p.n * plane];
    par_chunks(y, IMAGES_PER_ITEM * plane, |item, out| {
        let first = item * IMAGES_PER_ITEM;
        for (j0, gn) in groups::<T>(p, out.len() / plane) {
            let ld = gn * pix;
            let mut cols = group_cols(p, x, first + j0, gn);
            let cols = cols.slice(k * ld);
            // Y_group[cout, gn·pix] = W[cout, k] · cols[k, gn·pix], then back to NCHW.
            let g = mat(
                p.cout,
                ld,
                k,
                Strided::matrix(p.cout, k, false),
                Strided::matrix(k, ld, false),
                false,
            );
            let out = &mut out[j0 * plane..(j0 + gn) * plane];
            if gn == 1 {
                gemm(&g, w, cols, &[], out);
                continue;
            }
            let mut tmp = Scratch::take::<T>(p.cout * ld);
            let tmp = tmp.slice(p.cout * ld);
            gemm(&g, w, cols, &[], tmp);
            interleave(tmp, out, gn, p.cout, pix, true);
        }
    });
}

/// The columns of `imgs` images from `first`, side by side: `[taps, imgs · pix]`.
fn group_cols<T: Real>(p: &ConvParams, x: &[T], first: usize, imgs: usize) -> Scratch {
    let (k, pix, img) = (p.taps(), p.oh() * p.ow(), p.cin * p.h * p.w);
    let ld = imgs * pix;
    let mut cols = Scratch::take::<T>(k * ld);
    let c = cols.slice(k * ld);
    for j in 0..imgs {
        im2col(p, &x[(first + j) * img..], c, ld, j * pix);
    }
    cols
}

/// dy of `imgs` images from `first` as `[cout, imgs · pix]`, in `buf` (or in place when one
/// image).
fn group_dy<'a, T: Real>(
    p: &ConvParams,
    dy: &'a [T],
    first: usize,
    imgs: usize,
    buf: &'a mut Scratch,
) -> &'a [T] {
    let (pix, plane) = (p.oh() * p.ow(), p.cout * p.oh() * p.ow());
    let src = &dy[first * plane..(first + imgs) * plane];
    if imgs == 1 {
        return src;
    }
    let dst = buf.slice(imgs * plane);
    interleave(src, dst, imgs, p.cout, pix, false);
    dst
}

/// dx = the adjoint of the forward pass applied to dy.
pub fn conv2d_input_grad<T: Real>(p: &ConvParams, dy: &[T], w: &[T], dx: &mut [T]) {
    let _p = super::profile::span("conv2d_input_grad");
    let (k, pix, img) = (p.taps(), p.oh() * p.ow(), p.cin * p.h * p.w);
    let dx = &mut dx[..p.n * img];
    par_chunks(dx, IMAGES_PER_ITEM * img, |item, out| {
        let first = item * IMAGES_PER_ITEM;
        out.fill(T::zero());
        for (j0, gn) in groups::<T>(p, out.len() / img) {
            let ld = gn * pix;
            let mut buf = Scratch::take::<T>(p.cout * ld);
            let dyg = group_dy(p, dy, first + j0, gn, &mut buf);
            // cols[k, gn·pix] = Wᵀ[k, cout] · dy_group[cout, gn·pix]
            let mut cols = Scratch::take::<T>(k * ld);
            let cols = cols.slice(k * ld);
            let g = mat(
                k,
                ld,
                p.cout,
                Strided::matrix(p.cout, k, true),
                Strided::matrix(p.cout, ld, false),
                false,
            );
            gemm(&g, w, dyg, &[], cols);
            for j in 0..gn {
                let dxi = &mut out[(j0 + j) * img..(j0 + j + 1) * img];
                col2im(p, cols, ld, j * pix, dxi);
            }
        }
    });
}

/// dw[co, ci, ky, kx] = Σ_{n, oy, ox} dy[n, co, oy, ox] · x[n, ci, oy·s−p+ky, ox·s−p+kx]
pub fn conv2d_weight_grad<T: Real>(p: &ConvParams, x: &[T], dy: &[T], dw: &mut [T]) {
    let _p = super::profile::span("conv2d_weight_grad");
    let (k, pix) = (p.taps(), p.oh() * p.ow());
    let wl = p.cout * k;
    let items = p.n.div_ceil(IMAGES_PER_ITEM);
    let mut partials = Scratch::take::<T>(items * wl);
    let partial = partials.slice(items * wl);
    par_chunks(partial, wl, |item, part| {
        let first = item * IMAGES_PER_ITEM;
        let imgs = IMAGES_PER_ITEM.min(p.n - first);
        for (j0, gn) in groups::<T>(p, imgs) {
            let ld = gn * pix;
            let mut buf = Scratch::take::<T>(p.cout * ld);
            let dyg = group_dy(p, dy, first + j0, gn, &mut buf);
            let mut cols = group_cols(p, x, first + j0, gn);
            let cols = cols.slice(k * ld);
            // dw_item[cout, k] (+)= dy_group[cout, gn·pix] · colsᵀ[gn·pix, k]; the first group
            // overwrites the (reused, arbitrary) partial.
            let g = mat(
                p.cout,
                k,
                ld,
                Strided::matrix(p.cout, ld, false),
                Strided::matrix(k, ld, true),
                j0 > 0,
            );
            gemm(&g, dyg, cols, &[], part);
        }
    });
    let dw = &mut dw[..wl];
    dw.fill(T::zero());
    for part in partial.chunks(wl) {
        for (d, &v) in dw.iter_mut().zip(part) {
            *d = *d + v;
        }
    }
}
