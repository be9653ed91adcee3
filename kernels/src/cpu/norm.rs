//! BatchNorm2d over NCHW with PyTorch's semantics: statistics per channel over N·H·W.

use super::parallel::par_chunks;
use super::Real;
use crate::params::BnShape;

/// Channel `c`'s plane of every image, in image order.
fn planes<T>(s: BnShape, x: &[T], c: usize) -> impl Iterator<Item = &[T]> {
    (0..s.n).map(move |i| &x[(i * s.channels + c) * s.hw..][..s.hw])
}

/// Σ f(a[i], b[i]) with eight interleaved partial sums, so the loop vectorises (the order is
/// fixed, so results do not depend on the machine).
fn lane_sum<T: Real>(a: &[T], b: &[T], f: impl Fn(T, T) -> T) -> T {
    let mut acc = [T::zero(); 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ta, tb) = (ca.remainder(), cb.remainder());
    for (xa, xb) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] = acc[l] + f(xa[l], xb[l]);
        }
    }
    let tail = ta.iter().zip(tb).fold(T::zero(), |t, (&u, &v)| t + f(u, v));
    acc.iter().fold(tail, |t, &v| t + v)
}

/// Per-channel pairs computed on all cores (channels are independent), then unzipped.
fn per_channel<T: Real>(
    channels: usize,
    f: impl Fn(usize) -> (T, T) + Sync,
    a: &mut [T],
    b: &mut [T],
) {
    let mut pairs = vec![(T::zero(), T::zero()); channels];
    let chunk = channels.div_ceil(super::parallel::threads()).max(1);
    par_chunks(&mut pairs, chunk, |item, out| {
        for (j, o) in out.iter_mut().enumerate() {
            *o = f(item * chunk + j);
        }
    });
    for (c, (u, v)) in pairs.into_iter().enumerate() {
        a[c] = u;
        b[c] = v;
    }
}

/// out[i] = f(c, x[i], dy[i]) for every element of channel c, on all cores (split by image).
fn per_element<T: Real>(
    s: BnShape,
    x: &[T],
    dy: &[T],
    out: &mut [T],
    f: impl Fn(usize, T, T) -> T + Sync,
) {
    let img = s.channels * s.hw;
    par_chunks(out, img.max(1), |i, o| {
        for (c, plane) in o.chunks_mut(s.hw.max(1)).enumerate() {
            let base = (i * s.channels + c) * s.hw;
            let (xs, ds) = (&x[base..base + s.hw], &dy[base..base + s.hw]);
            for ((v, &xv), &dv) in plane.iter_mut().zip(xs).zip(ds) {
                *v = f(c, xv, dv);
            }
        }
    });
}

fn count<T: Real>(s: BnShape) -> T {
    T::from_usize(s.count().max(1)).unwrap()
}

fn invstd<T: Real>(var: T, eps: T) -> T {
    T::one() / (var + eps).sqrt()
}

/// Per-channel batch mean and biased variance. Two passes (mean, then Σ(x−mean)²): the
/// one-pass E\[x²\]−E\[x\]² cancels catastrophically once |mean| ≫ std, as after a ReLU.
pub fn bn_stats<T: Real>(s: BnShape, x: &[T], mean: &mut [T], var: &mut [T]) {
    let _p = super::profile::span("bn_stats");
    s.check(x.len(), mean.len());
    assert_eq!(var.len(), s.channels);
    let k = count::<T>(s);
    let stats = |c| {
        let mu = planes(s, x, c).map(|p| lane_sum(p, p, |v, _| v)).sum::<T>() / k;
        let sq = planes(s, x, c).map(|p| lane_sum(p, p, |v, _| (v - mu) * (v - mu)));
        (mu, sq.sum::<T>() / k)
    };
    per_channel(s.channels, stats, mean, var);
}

/// Momentum update of the running statistics in place, as `torch.nn.BatchNorm2d` does in
/// training: the running variance tracks the unbiased variance (`count` = N·H·W). With
/// count = 1 the variance is kept biased (zero) instead of dividing by zero; PyTorch refuses
/// to train on one value per channel.
pub fn bn_update_running<T: Real>(
    channels: usize,
    count: usize,
    momentum: T,
    mean: &[T],
    var: &[T],
    running_mean: &mut [T],
    running_var: &mut [T],
) {
    let _p = super::profile::span("bn_update_running");
    for v in [mean.len(), var.len(), running_mean.len(), running_var.len()] {
        assert_eq!(v, channels, "bn_update_running: per-channel length");
    }
    let unbias = if count > 1 {
        T::from_usize(count).unwrap() / T::from_usize(count - 1).unwrap()
    } else {
        T::one()
    };
    let keep = T::one() - momentum;
    for c in 0..channels {
        running_mean[c] = keep * running_mean[c] + momentum * mean[c];
        running_var[c] = keep * running_var[c] + momentum * (var[c] * unbias);
    }
}

/// y = (x − mean)·invstd·γ + β per channel, invstd = 1/sqrt(var + eps). Batch statistics in
/// training, running statistics in evaluation; `affine = None` means γ = 1, β = 0.
#[allow(clippy::too_many_arguments)]
pub fn bn_forward<T: Real>(
    s: BnShape,
    eps: T,
    x: &[T],
    mean: &[T],
    var: &[T],
    affine: Option<(&[T], &[T])>,
    y: &mut [T],
) {
    let _p = super::profile::span("bn_forward");
    s.check(x.len(), mean.len());
    assert_eq!(y.len(), s.len());
    // (x − mean) first: folding the mean into the shift cancels catastrophically when
    // |mean|·scale ≫ |β|.
    let coef: Vec<(T, T, T)> = (0..s.channels)
        .map(|c| {
            let (g, b) = affine.map_or((T::one(), T::zero()), |(g, b)| (g[c], b[c]));
            (mean[c], invstd(var[c], eps) * g, b)
        })
        .collect();
    per_element(s, x, x, y, |c, v, _| {
        let (m, scale, b) = coef[c];
        (v - m) * scale + b
    });
}

/// Per-channel parameter gradients dγ = Σ dy·x̂ and dβ = Σ dy, with x̂ = (x − mean)·invstd,
/// in one pass (dγ is taken as invstd·Σ dy·(x − mean)). They are also the batch terms of the
/// training-mode input gradient, so they are needed even without affine parameters.
#[allow(clippy::too_many_arguments)]
pub fn bn_backward_reduce<T: Real>(
    s: BnShape,
    eps: T,
    x: &[T],
    mean: &[T],
    var: &[T],
    dy: &[T],
    dgamma: &mut [T],
    dbeta: &mut [T],
) {
    let _p = super::profile::span("bn_backward_reduce");
    s.check(x.len(), mean.len());
    assert_eq!(dy.len(), s.len());
    let sums = |c: usize| {
        let mu = mean[c];
        let (mut sdy, mut sdyx) = (T::zero(), T::zero());
        for (pd, px) in planes(s, dy, c).zip(planes(s, x, c)) {
            sdy = sdy + lane_sum(pd, pd, |d, _| d);
            sdyx = sdyx + lane_sum(pd, px, |d, v| d * (v - mu));
        }
        (sdyx * invstd(var[c], eps), sdy)
    };
    per_channel(s.channels, sums, dgamma, dbeta);
}

/// Training-mode input gradient dx = γ·invstd·(dy − dβ/n − x̂·dγ/n) from the sums of
/// [`bn_backward_reduce`], where the batch statistics depend on x.
#[allow(clippy::too_many_arguments)]
pub fn bn_backward_input<T: Real>(
    s: BnShape,
    eps: T,
    x: &[T],
    mean: &[T],
    var: &[T],
    gamma: Option<&[T]>,
    dy: &[T],
    dgamma: &[T],
    dbeta: &[T],
    dx: &mut [T],
) {
    let _p = super::profile::span("bn_backward_input");
    s.check(x.len(), mean.len());
    assert_eq!(dx.len(), s.len());
    let k = count::<T>(s);
    // Operation for operation as the shader, which the tests hold it to within 1e-5.
    let coef: Vec<[T; 5]> = (0..s.channels)
        .map(|c| {
            let is = invstd(var[c], eps);
            let scale = gamma.map_or(T::one(), |g| g[c]) * is;
            [mean[c], is, scale, dbeta[c] / k, dgamma[c] / k]
        })
        .collect();
    per_element(s, x, dy, dx, |c, v, d| {
        let [m, is, scale, mb, mg] = coef[c];
        let xhat = (v - m) * is;
        scale * (d - mb - xhat * mg)
    });
}

/// Evaluation-mode input gradient dx = dy·γ·invstd: the running statistics are constants.
pub fn bn_backward_input_eval<T: Real>(
    s: BnShape,
    eps: T,
    var: &[T],
    gamma: Option<&[T]>,
    dy: &[T],
    dx: &mut [T],
) {
    let _p = super::profile::span("bn_backward_input_eval");
    s.check(dy.len(), var.len());
    assert_eq!(dx.len(), s.len());
    let scale: Vec<T> = (0..s.channels)
        .map(|c| gamma.map_or(T::one(), |g| g[c]) * invstd(var[c], eps))
        .collect();
    per_element(s, dy, dy, dx, |c, d, _| d * scale[c]);
}

/// The whole training-mode backward: parameter gradients, then the input gradient.
#[allow(clippy::too_many_arguments)]
pub fn bn_backward<T: Real>(
    s: BnShape,
    eps: T,
    x: &[T],
    mean: &[T],
    var: &[T],
    gamma: Option<&[T]>,
    dy: &[T],
    dgamma: &mut [T],
    dbeta: &mut [T],
    dx: &mut [T],
) {
    bn_backward_reduce(s, eps, x, mean, var, dy, dgamma, dbeta);
    bn_backward_input(s, eps, x, mean, var, gamma, dy, dgamma, dbeta, dx);
}
