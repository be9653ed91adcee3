//! Measuring a convolution pass's plans on this device (`autorep tune`): every candidate
//! ([`conv_plan_candidates`]) runs on the pass's own shape, is checked against the rule's
//! result, and is timed; the fastest becomes the pass's plan where it beats the rule's clearly.

use super::conv::{forward_by, input_grad_by, weight_grad_by};
use super::conv_rules::conv_plan_candidates;
use crate::conv_plan::{ConvKey, ConvPass, ConvPlan};
use crate::error::Result;
use crate::{Dtype, Gpu, GpuBuffer};

/// A candidate must beat the rule's plan by this fraction to replace it: timing noise alone
/// should not rewrite plans.
const MIN_GAIN: f64 = 0.02;

/// One plan and its median seconds.
#[derive(Clone, Copy, Debug)]
pub struct PlanTiming {
    pub plan: ConvPlan,
    pub secs: f64,
}

/// What tuning one pass found.
#[derive(Clone, Debug)]
pub struct TunedPass {
    pub key: ConvKey,
    /// The launchers' rule on this device.
    pub rule: PlanTiming,
    /// The plan to run by: the fastest candidate, or the rule's where none beat it by 2 %.
    pub best: PlanTiming,
    /// Candidates timed (the rule's included).
    pub tried: usize,
    /// Candidates whose result disagreed with the rule's (dropped; a driver bug if ever
    /// non-zero).
    pub wrong: Vec<ConvPlan>,
}

/// The operands of one pass, filled with small deterministic values.
struct Operands {
    a: GpuBuffer,
    b: GpuBuffer,
    out: GpuBuffer,
    scratch: Option<GpuBuffer>,
    out_len: usize,
}

fn values(n: usize, seed: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 7 + seed) % 23) as f32 / 23.0 - 0.5)
        .collect()
}

fn operands(gpu: &Gpu, key: &ConvKey, most_splits: usize) -> Result<Operands> {
    let p = &key.shape;
    let dtype = if key.f16 { Dtype::F16 } else { Dtype::F32 };
    let up = |n: usize, seed: usize| gpu.upload_as(&values(n, seed), dtype);
    let (a, b, out_len) = match key.pass {
        ConvPass::Forward => (up(p.x_len(), 1)?, up(p.w_len(), 2)?, p.y_len()),
        ConvPass::InputGrad => (up(p.y_len(), 3)?, up(p.w_len(), 2)?, p.x_len()),
        ConvPass::WeightGrad => (up(p.x_len(), 1)?, up(p.y_len(), 3)?, p.w_len()),
    };
    let scratch = match key.pass {
        ConvPass::WeightGrad => Some(gpu.alloc_elems(most_splits * p.w_len(), Dtype::F32)?),
        _ => None,
    };
    Ok(Operands {
        a,
        b,
        out: gpu.alloc_elems(out_len, dtype)?,
        scratch,
        out_len,
    })
}

fn run(gpu: &Gpu, key: &ConvKey, o: &Operands, plan: &ConvPlan) -> Result<()> {
    let p = &key.shape;
    match key.pass {
        ConvPass::Forward => forward_by(gpu, p, [&o.a, &o.b, &o.out], plan),
        ConvPass::InputGrad => input_grad_by(gpu, p, [&o.a, &o.b, &o.out], plan),
        ConvPass::WeightGrad => {
            let scratch = o.scratch.as_ref().expect("weight grad scratch");
            weight_grad_by(gpu, p, [&o.a, &o.b, scratch, &o.out], plan)
        }
    }
}

/// The largest difference from `reference`, relative to its largest magnitude.
fn relative_error(got: &[f32], reference: &[f32]) -> f32 {
    let scale = reference.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
    got.iter()
        .zip(reference)
        .map(|(g, r)| (g - r).abs())
        .fold(
            0.0,
            |m, d| if d.is_nan() { f32::INFINITY } else { m.max(d) },
        )
        / scale
}

/// The candidates measured so far, against the first one's result.
struct Trials {
    tolerance: f32,
    reference: Option<Vec<f32>>,
    timed: Vec<PlanTiming>,
    wrong: Vec<ConvPlan>,
}

impl Trials {
    fn measure(
        &mut self,
        gpu: &Gpu,
        key: &ConvKey,
        o: &Operands,
        plan: ConvPlan,
        reps: usize,
    ) -> Result<()> {
        run(gpu, key, o, &plan)?;
        let result = gpu.read_values(&o.out, 0, o.out_len)?;
        match &self.reference {
            None => self.reference = Some(result),
            Some(r) if relative_error(&result, r) > self.tolerance => {
                self.wrong.push(plan);
                return Ok(());
            }
            Some(_) => {}
        }
        let secs = gpu.median_secs(reps, || run(gpu, key, o, &plan))?;
        self.timed.push(PlanTiming { plan, secs });
        Ok(())
    }
}

/// The plans to time, in order: every candidate where `exhaustive`; else, in two rounds,
/// each tile and prefetch setting at the K split nearest the rule's, then every split of the
/// two fastest of those (about a third of the candidates).
fn rounds(candidates: &[ConvPlan], exhaustive: bool) -> (Vec<ConvPlan>, Vec<ConvPlan>) {
    if exhaustive {
        return (candidates.to_vec(), Vec::new());
    }
    let rule = candidates[0];
    let distance = |c: &ConvPlan| (c.splits as f64 / rule.splits as f64).log2().abs();
    let mut first: Vec<ConvPlan> = vec![rule];
    for c in candidates {
        let same_kind = |f: &ConvPlan| f.kind() == c.kind();
        match first.iter().position(same_kind) {
            None => first.push(*c),
            Some(i) if i > 0 && distance(c) < distance(&first[i]) => first[i] = *c,
            Some(_) => {}
        }
    }
    (first, candidates.to_vec())
}

/// Time the candidate plans of `key` (median of `reps` after a warm-up each; every candidate
/// where `exhaustive`, else two rounds: each tile and setting (prefetch, staged epilogue) at the split
/// nearest the rule's, then every split of the two fastest) and pick the pass's plan. Each candidate's result is compared with the rule's first (f32:
/// 1e-3 of the largest output, f16: 2e-2), and one that disagrees is never picked.
pub fn tune_conv_pass(
    gpu: &Gpu,
    key: &ConvKey,
    reps: usize,
    exhaustive: bool,
) -> Result<TunedPass> {
    let candidates = conv_plan_candidates(gpu, key)?;
    let most_splits = candidates.iter().map(|c| c.splits).max().unwrap_or(1);
    let o = operands(gpu, key, most_splits)?;
    let mut st = Trials {
        tolerance: if key.f16 { 2e-2 } else { 1e-3 },
        reference: None,
        timed: Vec::new(),
        wrong: Vec::new(),
    };
    let (first, rest) = rounds(&candidates, exhaustive);
    for &plan in &first {
        st.measure(gpu, key, &o, plan, reps)?;
    }
    if !rest.is_empty() {
        // Every split of the two fastest tile and prefetch settings of the first round.
        let mut by_time = st.timed.clone();
        by_time.sort_by(|a, b| a.secs.total_cmp(&b.secs));
        let kinds: Vec<_> = by_time.iter().take(2).map(|t| t.plan.kind()).collect();
        for plan in rest {
            if kinds.contains(&plan.kind()) && !first.contains(&plan) {
                st.measure(gpu, key, &o, plan, reps)?;
            }
        }
    }
    let Trials { timed, wrong, .. } = st;
    // The rule's plan is the first candidate.
    let rule = timed[0];
    let fastest = *timed
        .iter()
        .min_by(|a, b| a.secs.total_cmp(&b.secs))
        .unwrap_or(&rule);
    let best = if fastest.secs < rule.secs * (1.0 - MIN_GAIN) {
        fastest
    } else {
        rule
    };
    Ok(TunedPass {
        key: *key,
        rule,
        best,
        tried: timed.len() + wrong.len(),
        wrong,
    })
}
