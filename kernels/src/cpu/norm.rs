//! BatchNorm2d over NCHW with PyTorch's semantics: statistics per channel over N·H·W.

use super::Real;

/// Shape of one batch-norm call: `n` images of `channels` planes of `hw` elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BnShape {
    pub n: usize,
    pub channels: usize,
    pub hw: usize,
}

impl BnShape {
    /// Elements behind each channel's statistics (N·H·W).
    pub fn count(&self) -> usize {
        self.n * self.hw
    }
    pub fn len(&self) -> usize {
        self.n * self.channels * self.hw
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn check(&self, x_len: usize, c_len: usize) {
        assert_eq!(x_len, self.len(), "batch norm: data length vs {self:?}");
        assert_eq!(
            c_len, self.channels,
            "batch norm: per-channel length vs {self:?}"
        );
    }
}

/// Flat indices of channel `c`'s elements, in the same order as the shader walks them.
fn channel(s: BnShape, c: usize) -> impl Iterator<Item = usize> {
    (0..s.n).flat_map(move |i| {
        let base = (i * s.channels + c) * s.hw;
        base..base + s.hw
    })
}

fn count<T: Real>(s: BnShape) -> T {
    T::from_usize(s.count().max(1)).unwrap()
}

fn invstd<T: Real>(var: T, eps: T) -> T {
    T::one() / (var + eps).sqrt()
}

/// Per-channel batch mean and biased variance. Two passes (mean, then Σ(x−mean)²): the
/// one-pass E[x²]−E[x]² cancels catastrophically once |mean| ≫ std, as after a ReLU.
pub fn bn_stats<T: Real>(s: BnShape, x: &[T], mean: &mut [T], var: &mut [T]) {
    s.check(x.len(), mean.len());
    assert_eq!(var.len(), s.channels);
    let k = count::<T>(s);
    for c in 0..s.channels {
        let mu = channel(s, c).map(|i| x[i]).sum::<T>() / k;
        mean[c] = mu;
        var[c] = channel(s, c).map(|i| (x[i] - mu) * (x[i] - mu)).sum::<T>() / k;
    }
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
    s.check(x.len(), mean.len());
    assert_eq!(y.len(), s.len());
    for c in 0..s.channels {
        let (g, b) = affine.map_or((T::one(), T::zero()), |(g, b)| (g[c], b[c]));
        let scale = invstd(var[c], eps) * g;
        for i in channel(s, c) {
            y[i] = (x[i] - mean[c]) * scale + b;
        }
    }
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
    s.check(x.len(), mean.len());
    assert_eq!(dy.len(), s.len());
    for c in 0..s.channels {
        let (mut sdy, mut sdyx) = (T::zero(), T::zero());
        for i in channel(s, c) {
            sdy = sdy + dy[i];
            sdyx = sdyx + dy[i] * (x[i] - mean[c]);
        }
        dbeta[c] = sdy;
        dgamma[c] = sdyx * invstd(var[c], eps);
    }
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
    s.check(x.len(), mean.len());
    assert_eq!(dx.len(), s.len());
    let k = count::<T>(s);
    for c in 0..s.channels {
        let is = invstd(var[c], eps);
        let scale = gamma.map_or(T::one(), |g| g[c]) * is;
        let (mb, mg) = (dbeta[c] / k, dgamma[c] / k);
        for i in channel(s, c) {
            let xhat = (x[i] - mean[c]) * is;
            dx[i] = scale * (dy[i] - mb - xhat * mg);
        }
    }
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
    s.check(dy.len(), var.len());
    assert_eq!(dx.len(), s.len());
    for c in 0..s.channels {
        let scale = gamma.map_or(T::one(), |g| g[c]) * invstd(var[c], eps);
        for i in channel(s, c) {
            dx[i] = dy[i] * scale;
        }
    }
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
