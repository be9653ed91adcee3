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

/// out[o, c, i] = x[o, c, i] + bias[c] with `inner` elements per channel.
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

/// y as [outer, inner] broadcast to out as [outer, len, inner], times alpha.
pub fn expand_mid<T: Real>(y: &[T], len: usize, inner: usize, alpha: T, out: &mut [T]) {
    let _p = super::profile::span("expand_mid");
    for (idx, o) in out.iter_mut().enumerate() {
        let outer = idx / (len * inner);
        *o = alpha * y[outer * inner + idx % inner];
    }
}
