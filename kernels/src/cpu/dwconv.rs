//! Depthwise convolution on the CPU. As in the shader, each output (forward), input element
//! (input gradient: a gather over the outputs whose windows cover it, no scatter) and weight
//! (weight gradient) is one sum of the same terms; the shader adds a weight's terms in a
//! workgroup tree rather than in order.

use super::Real;
use crate::params::DwConvParams;

/// The input position a tap reads for output position `o`, if it lies inside `0..len`.
fn tap(o: usize, k: usize, stride: usize, pad: usize, len: usize) -> Option<usize> {
    (o * stride + k).checked_sub(pad).filter(|&i| i < len)
}

/// y[n, c, oy, ox] = Σ_{ky, kx} x[n, c, oy·s − p + ky, ox·s − p + kx] · w[c, 0, ky, kx]
pub fn dwconv2d_forward<T: Real>(p: &DwConvParams, x: &[T], w: &[T], y: &mut [T]) {
    let _p = super::profile::span("dwconv2d_forward");
    assert_eq!(
        (x.len(), w.len(), y.len()),
        (p.x_len(), p.w_len(), p.y_len())
    );
    let (oh, ow) = (p.oh(), p.ow());
    for plane in 0..p.n * p.c {
        let (xp, wc) = (
            &x[plane * p.h * p.w..][..p.h * p.w],
            &w[(plane % p.c) * p.kh * p.kw..],
        );
        for oy in 0..oh {
            for ox in 0..ow {
                let mut acc = T::zero();
                for ky in 0..p.kh {
                    let Some(iy) = tap(oy, ky, p.stride, p.pad, p.h) else {
                        continue;
                    };
                    for kx in 0..p.kw {
                        if let Some(ix) = tap(ox, kx, p.stride, p.pad, p.w) {
                            acc = acc + xp[iy * p.w + ix] * wc[ky * p.kw + kx];
                        }
                    }
                }
                y[(plane * oh + oy) * ow + ox] = acc;
            }
        }
    }
}

/// dx[n, c, iy, ix] = Σ over the taps (ky, kx) and outputs (oy, ox) with
/// oy·s − p + ky = iy and ox·s − p + kx = ix of dy[n, c, oy, ox] · w[c, 0, ky, kx].
pub fn dwconv2d_input_grad<T: Real>(p: &DwConvParams, dy: &[T], w: &[T], dx: &mut [T]) {
    let _p = super::profile::span("dwconv2d_input_grad");
    assert_eq!(
        (dx.len(), w.len(), dy.len()),
        (p.x_len(), p.w_len(), p.y_len())
    );
    let (oh, ow) = (p.oh(), p.ow());
    // The output along one axis that tap k of position i belongs to, if any.
    let out = |i: usize, k: usize, len: usize| {
        let t = (i + p.pad).checked_sub(k)?;
        (t % p.stride == 0 && t / p.stride < len).then_some(t / p.stride)
    };
    for plane in 0..p.n * p.c {
        let (gp, wc) = (
            &dy[plane * oh * ow..][..oh * ow],
            &w[(plane % p.c) * p.kh * p.kw..],
        );
        for iy in 0..p.h {
            for ix in 0..p.w {
                let mut acc = T::zero();
                for ky in 0..p.kh {
                    let Some(oy) = out(iy, ky, oh) else { continue };
                    for kx in 0..p.kw {
                        if let Some(ox) = out(ix, kx, ow) {
                            acc = acc + gp[oy * ow + ox] * wc[ky * p.kw + kx];
                        }
                    }
                }
                dx[(plane * p.h + iy) * p.w + ix] = acc;
            }
        }
    }
}

/// dw[c, 0, ky, kx] = Σ_{n, oy, ox} dy[n, c, oy, ox] · x[n, c, oy·s − p + ky, ox·s − p + kx].
pub fn dwconv2d_weight_grad<T: Real>(p: &DwConvParams, x: &[T], dy: &[T], dw: &mut [T]) {
    let _p = super::profile::span("dwconv2d_weight_grad");
    assert_eq!(
        (x.len(), dw.len(), dy.len()),
        (p.x_len(), p.w_len(), p.y_len())
    );
    let (oh, ow) = (p.oh(), p.ow());
    for c in 0..p.c {
        for ky in 0..p.kh {
            for kx in 0..p.kw {
                let mut acc = T::zero();
                for n in 0..p.n {
                    let plane = n * p.c + c;
                    let (xp, gp) = (&x[plane * p.h * p.w..], &dy[plane * oh * ow..]);
                    for oy in 0..oh {
                        let Some(iy) = tap(oy, ky, p.stride, p.pad, p.h) else {
                            continue;
                        };
                        for ox in 0..ow {
                            if let Some(ix) = tap(ox, kx, p.stride, p.pad, p.w) {
                                acc = acc + gp[oy * ow + ox] * xp[iy * p.w + ix];
                            }
                        }
                    }
                }
                dw[(c * p.kh + ky) * p.kw + kx] = acc;
            }
        }
    }
}
