//! A checkpoint evaluated: accuracy, ReLU count and per-site kept fractions.

use super::checkpoint::Checkpoint;
use super::data::Data;
use super::eval::{evaluate_outputs, EvalOutputs, EvalStats};
use super::stages::load_model;
use crate::{Device, Result};
use std::path::Path;

pub struct EvalReport {
    pub test: EvalStats,
    pub relus: u64,
    pub relu_total: usize,
    /// Per site: ReLUs kept, activations, and the degree of their replacement.
    pub sites: Vec<crate::cost::SiteCount>,
    /// Gates switched off after training to meet the budget (0 for a learned mask).
    pub projected_gates: usize,
    pub checkpoint: Checkpoint,
    /// Per-image logits and labels (inputs too when asked for).
    pub outputs: EvalOutputs,
}

/// Evaluate the checkpoint at `path` on `data`'s test split, keeping the normalised inputs
/// when `inputs`. Pure: the checkpoint's masks are used exactly as saved.
pub fn eval_checkpoint(
    device: &Device,
    path: &Path,
    data: &Data,
    inputs: bool,
) -> Result<EvalReport> {
    let ck = Checkpoint::load(path)?;
    data.check(&ck.meta, path)?;
    let (model, rep) = load_model(device, &ck)?;
    let (test, outputs) = evaluate_outputs(model.as_ref(), rep.as_ref(), &data.test, 256, inputs)?;
    let sites = crate::autorep::sites_of(model.as_ref(), rep.as_ref())?;
    Ok(EvalReport {
        test,
        relus: sites.iter().map(|s| s.relus as u64).sum(),
        relu_total: model.relu_total(),
        sites,
        projected_gates: ck.meta.progress.projected_gates,
        checkpoint: ck,
        outputs,
    })
}

/// "1 epoch", "3 epochs": how experiment plans and stage summaries count epochs.
pub fn epochs(n: usize) -> String {
    format!("{n} epoch{}", if n == 1 { "" } else { "s" })
}
