//! 2-D pooling over NCHW with PyTorch's semantics (square windows, floor mode). Backward
//! passes gather per input element, exactly as the shaders do, so the summation order (and
//! hence the result) is the same on both devices.

use super::Real;
use crate::params::PoolParams;

/// Average pooling with count_include_pad = True: every window sum is divided by k².
pub fn avg_pool2d_forward<T: Real>(p: &PoolParams, x: &[T], y: &mut [T]) {
    let _p = super::profile::span("avg_pool2d_forward");
    p.check();
    assert_eq!((x.len(), y.len()), (p.x_len(), p.y_len()));
    let (oh, ow) = (p.oh(), p.ow());
    let area = T::from_usize(p.k * p.k).unwrap();
    for plane in 0..p.n * p.c {
        let xp = &x[plane * p.h * p.w..][..p.h * p.w];
        for oy in 0..oh {
            for ox in 0..ow {
                let acc = p
                    .window(oy, ox)
                    .fold(T::zero(), |a, (iy, ix)| a + xp[iy * p.w + ix]);
                y[(plane * oh + oy) * ow + ox] = acc / area;
            }
        }
    }
}

/// dx\[i\] = Σ dy over the windows covering i, divided by k².
pub fn avg_pool2d_backward<T: Real>(p: &PoolParams, dy: &[T], dx: &mut [T]) {
    let _p = super::profile::span("avg_pool2d_backward");
    p.check();
    assert_eq!((dx.len(), dy.len()), (p.x_len(), p.y_len()));
    let (oh, ow) = (p.oh(), p.ow());
    let area = T::from_usize(p.k * p.k).unwrap();
    for plane in 0..p.n * p.c {
        let dyp = &dy[plane * oh * ow..][..oh * ow];
        for iy in 0..p.h {
            for ix in 0..p.w {
                let mut acc = T::zero();
                for oy in p.covering(iy, oh) {
                    for ox in p.covering(ix, ow) {
                        acc = acc + dyp[oy * ow + ox];
                    }
                }
                dx[(plane * p.h + iy) * p.w + ix] = acc / area;
            }
        }
    }
}

/// Max pooling; `idx` gets each maximum's position within its H×W plane (PyTorch's indices).
/// Padding is never the maximum, and ties go to the first maximum in row-major window order.
pub fn max_pool2d_forward<T: Real>(p: &PoolParams, x: &[T], y: &mut [T], idx: &mut [u32]) {
    let _p = super::profile::span("max_pool2d_forward");
    p.check();
    assert_eq!(
        (x.len(), y.len(), idx.len()),
        (p.x_len(), p.y_len(), p.y_len())
    );
    let (oh, ow) = (p.oh(), p.ow());
    for plane in 0..p.n * p.c {
        let xp = &x[plane * p.h * p.w..][..p.h * p.w];
        for oy in 0..oh {
            for ox in 0..ow {
                let mut best: Option<(T, usize)> = None;
                for (iy, ix) in p.window(oy, ox) {
                    let v = xp[iy * p.w + ix];
                    if best.is_none_or(|(b, _)| v > b) {
                        best = Some((v, iy * p.w + ix));
                    }
                }
                let (v, at) = best.expect("a valid window holds a real element");
                let o = (plane * oh + oy) * ow + ox;
                y[o] = v;
                idx[o] = at as u32;
            }
        }
    }
}

/// dx\[i\] = Σ dy over the outputs whose maximum is i: a gather, so no two writers collide.
pub fn max_pool2d_backward<T: Real>(p: &PoolParams, dy: &[T], idx: &[u32], dx: &mut [T]) {
    let _p = super::profile::span("max_pool2d_backward");
    p.check();
    assert_eq!(
        (dx.len(), dy.len(), idx.len()),
        (p.x_len(), p.y_len(), p.y_len())
    );
    let (oh, ow) = (p.oh(), p.ow());
    for plane in 0..p.n * p.c {
        let (dyp, ip) = (
            &dy[plane * oh * ow..][..oh * ow],
            &idx[plane * oh * ow..][..oh * ow],
        );
        for iy in 0..p.h {
            for ix in 0..p.w {
                let me = (iy * p.w + ix) as u32;
                let mut acc = T::zero();
                for oy in p.covering(iy, oh) {
                    for ox in p.covering(ix, ow) {
                        if ip[oy * ow + ox] == me {
                            acc = acc + dyp[oy * ow + ox];
                        }
                    }
                }
                dx[(plane * p.h + iy) * p.w + ix] = acc;
            }
        }
    }
}

/// [N, C, H, W] → [N, C]: the mean of each plane of `hw` elements.
pub fn global_avg_pool_forward<T: Real>(
    n: usize,
    channels: usize,
    hw: usize,
    x: &[T],
    y: &mut [T],
) {
    let _p = super::profile::span("global_avg_pool_forward");
    assert_eq!((x.len(), y.len()), (n * channels * hw, n * channels));
    let inv = T::one() / T::from_usize(hw.max(1)).unwrap();
    for (o, plane) in y.iter_mut().zip(x.chunks(hw.max(1))) {
        *o = inv * plane.iter().copied().sum::<T>();
    }
}

/// dx[n, c, :, :] = dy[n, c] / (H·W).
pub fn global_avg_pool_backward<T: Real>(
    n: usize,
    channels: usize,
    hw: usize,
    dy: &[T],
    dx: &mut [T],
) {
    let _p = super::profile::span("global_avg_pool_backward");
    assert_eq!((dx.len(), dy.len()), (n * channels * hw, n * channels));
    let inv = T::one() / T::from_usize(hw.max(1)).unwrap();
    for (plane, &g) in dx.chunks_mut(hw.max(1)).zip(dy) {
        plane.iter_mut().for_each(|d| *d = inv * g);
    }
}
