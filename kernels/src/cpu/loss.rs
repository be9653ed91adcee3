use super::Real;

fn log_sum_exp<T: Real>(row: &[T]) -> T {
    let m = row.iter().copied().fold(T::neg_infinity(), T::max);
    m + row.iter().map(|&z| (z - m).exp()).sum::<T>().ln()
}

/// Per-row softmax cross-entropy with label smoothing `eps`, and 1/0 top-1 correctness.
pub fn ce_forward<T: Real>(
    logits: &[T],
    labels: &[u32],
    classes: usize,
    eps: T,
    loss: &mut [T],
    correct: &mut [T],
) {
    let k = T::from_usize(classes).unwrap();
    for (r, row) in logits.chunks(classes).enumerate() {
        let lse = log_sum_exp(row);
        let y = labels[r] as usize;
        let mean = row.iter().copied().sum::<T>() / k;
        loss[r] = (T::one() - eps) * (lse - row[y]) + eps * (lse - mean);
        // First maximum wins, as in the shader.
        let mut best = 0;
        for (j, &z) in row.iter().enumerate() {
            if z > row[best] {
                best = j;
            }
        }
        correct[r] = if best == y { T::one() } else { T::zero() };
    }
}

/// glogits[r, k] = gloss[r] * (softmax(logits[r])_k - target_k)
pub fn ce_backward<T: Real>(
    logits: &[T],
    labels: &[u32],
    gloss: &[T],
    classes: usize,
    eps: T,
    glogits: &mut [T],
) {
    let uniform = eps / T::from_usize(classes).unwrap();
    for (r, (row, grow)) in logits.chunks(classes).zip(glogits.chunks_mut(classes)).enumerate() {
        let lse = log_sum_exp(row);
        let y = labels[r] as usize;
        for (j, (g, &z)) in grow.iter_mut().zip(row).enumerate() {
            let t = if j == y { T::one() - eps } else { T::zero() } + uniform;
            *g = gloss[r] * ((z - lse).exp() - t);
        }
    }
}
