use super::Real;

/// out = alpha*x + beta*y
pub fn axpby<T: Real>(alpha: T, x: &[T], beta: T, y: &[T], out: &mut [T]) {
    let _p = super::profile::span("axpby");
    for ((o, &a), &b) in out.iter_mut().zip(x).zip(y) {
        *o = alpha * a + beta * b;
    }
}

pub fn mul<T: Real>(x: &[T], y: &[T], out: &mut [T]) {
    let _p = super::profile::span("mul");
    for ((o, &a), &b) in out.iter_mut().zip(x).zip(y) {
        *o = a * b;
    }
}

/// out = g where x > 0, else 0 (the derivative at 0 is taken as 0).
pub fn relu_backward<T: Real>(x: &[T], g: &[T], out: &mut [T]) {
    let _p = super::profile::span("relu_backward");
    for ((o, &a), &b) in out.iter_mut().zip(x).zip(g) {
        *o = if a > T::zero() { b } else { T::zero() };
    }
}

/// σ(v), through exp of a negative argument only (no overflow for large |v|).
pub fn sigmoid_of<T: Real>(v: T) -> T {
    let e = (-v.abs()).exp();
    if v >= T::zero() {
        T::one() / (T::one() + e)
    } else {
        e / (T::one() + e)
    }
}

/// SiLU (swish): out = x·σ(x).
pub fn silu<T: Real>(x: &[T], out: &mut [T]) {
    let _p = super::profile::span("silu");
    for (o, &a) in out.iter_mut().zip(x) {
        *o = a * sigmoid_of(a);
    }
}

/// out = g·σ(x)·(1 + x·(1 − σ(x))), the SiLU backward.
pub fn silu_backward<T: Real>(x: &[T], g: &[T], out: &mut [T]) {
    let _p = super::profile::span("silu_backward");
    for ((o, &a), &b) in out.iter_mut().zip(x).zip(g) {
        let s = sigmoid_of(a);
        *o = b * s * (T::one() + a * (T::one() - s));
    }
}

/// out = σ(x).
pub fn sigmoid<T: Real>(x: &[T], out: &mut [T]) {
    let _p = super::profile::span("sigmoid");
    for (o, &a) in out.iter_mut().zip(x) {
        *o = sigmoid_of(a);
    }
}

/// out = g·σ(x)·(1 − σ(x)), the sigmoid backward.
pub fn sigmoid_backward<T: Real>(x: &[T], g: &[T], out: &mut [T]) {
    let _p = super::profile::span("sigmoid_backward");
    for ((o, &a), &b) in out.iter_mut().zip(x).zip(g) {
        let s = sigmoid_of(a);
        *o = b * s * (T::one() - s);
    }
}

/// out\[o, c, i\] = x\[o, c, i\] + bias\[c\] with `inner` elements per channel.
pub fn bias_add<T: Real>(x: &[T], bias: &[T], inner: usize, out: &mut [T]) {
    let _p = super::profile::span("bias_add");
    let channels = bias.len();
    for (idx, (o, &v)) in out.iter_mut().zip(x).enumerate() {
        *o = v + bias[(idx / inner) % channels];
    }
}

pub fn scale<T: Real>(alpha: T, x: &[T], out: &mut [T]) {
    let _p = super::profile::span("scale");
    for (o, &a) in out.iter_mut().zip(x) {
        *o = alpha * a;
    }
}

pub fn relu<T: Real>(x: &[T], out: &mut [T]) {
    let _p = super::profile::span("relu");
    for (o, &a) in out.iter_mut().zip(x) {
        *o = a.max(T::zero());
    }
}

/// out += alpha * x
pub fn axpy_inplace<T: Real>(alpha: T, x: &[T], out: &mut [T]) {
    let _p = super::profile::span("axpy_inplace");
    for (o, &a) in out.iter_mut().zip(x) {
        *o = *o + alpha * a;
    }
}

pub fn fill<T: Real>(alpha: T, out: &mut [T]) {
    let _p = super::profile::span("fill");
    out.iter_mut().for_each(|o| *o = alpha);
}

/// out = clamp(out, lo, hi), in place.
pub fn clamp<T: Real>(lo: T, hi: T, out: &mut [T]) {
    let _p = super::profile::span("clamp_range");
    out.iter_mut().for_each(|o| *o = o.max(lo).min(hi));
}

/// y as [outer, inner] broadcast to out as [outer, len, inner], times alpha.
pub fn expand_mid<T: Real>(y: &[T], len: usize, inner: usize, alpha: T, out: &mut [T]) {
    let _p = super::profile::span("expand_mid");
    for (idx, o) in out.iter_mut().enumerate() {
        let outer = idx / (len * inner);
        *o = alpha * y[outer * inner + idx % inner];
    }
}
