//! Evaluation: a pure function of the model and its masks. It changes no mask, coefficient,
//! counter or running statistic, and one pass gives loss, top-1 and top-5.

use super::DeviceSet;
use crate::autorep::Replacement;
use crate::models::Model;
use crate::nn::ForwardCtx;
use crate::{no_grad, Result};

/// What one evaluation pass measured.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EvalStats {
    /// Mean cross-entropy over the images whose logits are finite.
    pub loss: f32,
    pub top1: f32,
    pub top5: f32,
    pub images: usize,
    /// Images whose logits hold a NaN or an infinity (counted as misses; callers refuse to
    /// report an accuracy when this is not zero).
    pub non_finite: usize,
    pub seconds: f64,
}

/// Where `label` ranks among `row` (0 = top-1), ties going to the lower index as argmax does.
fn rank(row: &[f32], label: usize) -> usize {
    let l = row[label];
    row.iter()
        .enumerate()
        .filter(|&(j, &v)| v > l || (v == l && j < label))
        .count()
}

/// Cross-entropy of one row of logits in f64.
fn cross_entropy(row: &[f32], label: usize) -> f64 {
    let max = row.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
    let sum: f64 = row.iter().map(|&v| (v as f64 - max).exp()).sum();
    max + sum.ln() - row[label] as f64
}

/// Per-image results of an evaluation, in test-set order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EvalOutputs {
    /// [images, classes] logits.
    pub logits: Vec<f32>,
    pub classes: usize,
    /// The normalised network inputs [images, C, H, W], when asked for (empty otherwise).
    pub inputs: Vec<f32>,
    pub labels: Vec<u32>,
}

impl EvalOutputs {
    /// The arg-max class of each image (ties to the lower index).
    pub fn predictions(&self) -> Vec<i64> {
        self.logits
            .chunks(self.classes.max(1))
            .map(|row| (0..row.len()).find(|&j| rank(row, j) == 0).unwrap_or(0) as i64)
            .collect()
    }
}

/// Loss, top-1 and top-5 over `data` in eval mode, in batches of `batch`. With gated sites,
/// the masks are used as they are: call [`Replacement::sync`] first after training.
pub fn evaluate(
    model: &dyn Model,
    rep: Option<&Replacement>,
    data: &DeviceSet,
    batch: usize,
) -> Result<EvalStats> {
    Ok(evaluate_outputs(model, rep, data, batch, false)?.0)
}

/// [`evaluate`], also returning every image's logits and label (and its normalised input when
/// `inputs`), in test-set order.
pub fn evaluate_outputs(
    model: &dyn Model,
    rep: Option<&Replacement>,
    data: &DeviceSet,
    batch: usize,
    inputs: bool,
) -> Result<(EvalStats, EvalOutputs)> {
    let start = std::time::Instant::now();
    let ctx = rep.map_or_else(ForwardCtx::eval, Replacement::eval_ctx);
    let plan = data.plan(0, 0, batch.max(1), false);
    let mut out = EvalOutputs::default();
    // Logits stay on the device until every batch is queued: one wait at the end.
    let logits = no_grad(|| {
        plan.iter()
            .enumerate()
            .map(|(i, samples)| {
                let x = data.batch(samples)?.0;
                data.prefetch(plan.get(i + 1));
                let y = model.forward(&x, &ctx)?;
                Ok((y, inputs.then_some(x)))
            })
            .collect::<Result<Vec<_>>>()
    })?;
    let (mut loss, mut top1, mut top5, mut bad) = (0f64, 0usize, 0usize, 0usize);
    for (samples, (t, x)) in plan.iter().zip(logits) {
        let values = t.to_vec()?;
        let classes = values.len() / samples.len().max(1);
        out.classes = classes;
        if let Some(x) = x {
            out.inputs.extend(x.to_vec()?);
        }
        out.logits.extend_from_slice(&values);
        for (row, s) in values.chunks(classes).zip(samples) {
            out.labels.push(data.set.labels[s[0] as usize]);
            let label = data.set.labels[s[0] as usize] as usize;
            if row.iter().any(|v| !v.is_finite()) {
                bad += 1;
                continue;
            }
            loss += cross_entropy(row, label);
            let r = rank(row, label);
            top1 += (r < 1) as usize;
            top5 += (r < 5) as usize;
        }
    }
    let n = data.len().max(1) as f64;
    let stats = EvalStats {
        loss: (loss / (data.len() - bad).max(1) as f64) as f32,
        top1: (top1 as f64 / n) as f32,
        top5: (top5 as f64 / n) as f32,
        images: data.len(),
        non_finite: bad,
        seconds: start.elapsed().as_secs_f64(),
    };
    Ok((stats, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_break_ties_like_argmax_and_nan_is_never_a_hit() {
        assert_eq!(rank(&[0.1, 0.5, 0.2], 1), 0);
        assert_eq!(rank(&[0.5, 0.5, 0.2], 1), 1);
        assert_eq!(rank(&[0.5, 0.5, 0.2], 0), 0);
        assert_eq!(rank(&[0.9, 0.8, 0.7, 0.6, 0.5, 0.4], 5), 5);
        let ce = cross_entropy(&[0.0, 0.0], 0);
        assert!((ce - std::f64::consts::LN_2).abs() < 1e-12);
    }
}
