use super::Real;

/// out\[r\] = alpha * sum of x\[r*len .. (r+1)*len\] (the last row may be short).
pub fn sum_rows<T: Real>(x: &[T], len: usize, alpha: T, out: &mut [T]) {
    let _p = super::profile::span("sum_rows");
    for (o, row) in out.iter_mut().zip(x.chunks(len.max(1))) {
        *o = alpha * row.iter().copied().sum::<T>();
    }
}

/// x viewed as [outer, len, inner]: out[o, i] = alpha * sum_m x[o, m, i].
pub fn sum_mid<T: Real>(x: &[T], outer: usize, len: usize, inner: usize, alpha: T, out: &mut [T]) {
    let _p = super::profile::span("sum_mid");
    for o in 0..outer {
        for i in 0..inner {
            let mut acc = T::zero();
            for m in 0..len {
                acc = acc + x[(o * len + m) * inner + i];
            }
            out[o * inner + i] = alpha * acc;
        }
    }
}
