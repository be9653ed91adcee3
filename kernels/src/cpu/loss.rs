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
    let _p = super::profile::span("ce_forward");
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

/// glogits\[r, k\] = gloss\[r\] * (softmax(logits\[r\])_k - target_k)
pub fn ce_backward<T: Real>(
    logits: &[T],
    labels: &[u32],
    gloss: &[T],
    classes: usize,
    eps: T,
    glogits: &mut [T],
) {
    let _p = super::profile::span("ce_backward");
    let uniform = eps / T::from_usize(classes).unwrap();
    for (r, (row, grow)) in logits
        .chunks(classes)
        .zip(glogits.chunks_mut(classes))
        .enumerate()
    {
        let lse = log_sum_exp(row);
        let y = labels[r] as usize;
        for (j, (g, &z)) in grow.iter_mut().zip(row).enumerate() {
            let t = if j == y { T::one() - eps } else { T::zero() } + uniform;
            *g = gloss[r] * ((z - lse).exp() - t);
        }
    }
}

/// log-sum-exp of `row / temperature`, given 1/temperature.
fn scaled_log_sum_exp<T: Real>(row: &[T], inv_t: T) -> T {
    let m = row.iter().fold(T::neg_infinity(), |m, &z| m.max(z * inv_t));
    m + row.iter().map(|&z| (z * inv_t - m).exp()).sum::<T>().ln()
}

/// Per-row distillation loss T²·KL(softmax(teacher/T) ‖ softmax(student/T)) (SoftTarget); the
/// caller averages over rows ("batchmean").
pub fn kd_forward<T: Real>(
    student: &[T],
    teacher: &[T],
    classes: usize,
    temperature: T,
    loss: &mut [T],
) {
    let _p = super::profile::span("kd_forward");
    let inv_t = T::one() / temperature;
    for ((s, t), l) in student
        .chunks(classes)
        .zip(teacher.chunks(classes))
        .zip(loss.iter_mut())
    {
        let (lse_s, lse_t) = (scaled_log_sum_exp(s, inv_t), scaled_log_sum_exp(t, inv_t));
        // Per-term differences of log-probabilities so that student == teacher gives exactly 0.
        let kl: T = s
            .iter()
            .zip(t)
            .map(|(&zs, &zt)| {
                let (log_pt, log_ps) = (zt * inv_t - lse_t, zs * inv_t - lse_s);
                log_pt.exp() * (log_pt - log_ps)
            })
            .sum();
        *l = temperature * temperature * kl;
    }
}

/// gstudent\[r, k\] = gloss\[r\] · T · (softmax(student\[r\]/T)_k − softmax(teacher\[r\]/T)_k).
pub fn kd_backward<T: Real>(
    student: &[T],
    teacher: &[T],
    gloss: &[T],
    classes: usize,
    temperature: T,
    gstudent: &mut [T],
) {
    let _p = super::profile::span("kd_backward");
    let inv_t = T::one() / temperature;
    let rows = student
        .chunks(classes)
        .zip(teacher.chunks(classes))
        .zip(gstudent.chunks_mut(classes));
    for (((s, t), gs), &gl) in rows.zip(gloss) {
        let (lse_s, lse_t) = (scaled_log_sum_exp(s, inv_t), scaled_log_sum_exp(t, inv_t));
        let g = gl * temperature;
        for ((o, &zs), &zt) in gs.iter_mut().zip(s).zip(t) {
            *o = g * ((zs * inv_t - lse_s).exp() - (zt * inv_t - lse_t).exp());
        }
    }
}
