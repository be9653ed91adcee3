//! The stages a run is made of: the all-ReLU baseline, the replacement (AutoReP and its
//! identity ablation), SNL (selection, then finetune) and a finetune of a gated network. Each
//! advances one epoch at a time and knows how to resume; the driver owns everything else.

mod baseline;
mod finetune;
mod gated;
mod replace;
mod snl;

pub use baseline::BaselineStage;
pub use finetune::FinetuneStage;
pub use replace::ReplaceStage;
pub use snl::{flickering_rate, SnlStage};

use super::checkpoint::{Checkpoint, Phase, StartFrom};
use super::config::StageConfig;
use super::data::Data;
use super::eval::EvalStats;
use super::EpochStats;
use crate::autorep::Replacement;
use crate::models::{build, Model};
use crate::nn::Optimizer;
use crate::{Device, Error, Result};
use std::path::Path;

/// One epoch of a stage, as logged.
#[derive(Debug, Clone)]
pub struct StageEpoch {
    pub phase: Phase,
    pub train: EpochStats,
    /// ReLUs of the mask that is evaluated and saved (the model's total without gates).
    pub count: u64,
    pub test: EvalStats,
    /// Each parameter group's learning rate during the epoch.
    pub lr: Vec<(String, f32)>,
}

/// A stage the driver can run, checkpoint and resume.
pub trait Stage {
    fn config(&self) -> &StageConfig;
    fn model(&self) -> &dyn Model;
    fn replacement(&self) -> Option<&Replacement>;
    fn optimizer(&self) -> &Optimizer;
    /// Epochs the stage runs at most over all phases, `epochs_done` of them run (for progress
    /// lines: a phase that ends early shortens the stage).
    fn planned_epochs(&self, epochs_done: usize) -> usize;
    fn phase(&self) -> Phase;
    /// Epochs completed in the current phase.
    fn phase_epochs(&self) -> usize;
    /// No epoch remains.
    fn done(&self) -> bool;
    /// Train one epoch, bring the mask up to date, count it and evaluate.
    fn epoch(
        &mut self,
        data: &Data,
        progress: Option<&indicatif::ProgressBar>,
    ) -> Result<StageEpoch>;
    /// Whether this epoch may become `best`.
    fn eligible(&self, e: &StageEpoch) -> bool;
    /// What follows an epoch before it is saved (SNL: the L1 weight, binarisation). Returns a
    /// line to print, if any.
    fn advance(&mut self, _e: &StageEpoch) -> Result<Option<String>> {
        Ok(None)
    }
    /// The ReLU budget of a gated stage.
    fn budget(&self) -> Option<u64> {
        None
    }
    /// Gates switched off so far to meet the budget.
    fn projected_gates(&self) -> usize {
        0
    }
    /// Switch off the gates with the smallest indicator until the mask meets the budget;
    /// returns how many.
    fn project(&mut self) -> Result<usize> {
        Ok(0)
    }
    /// Before the first epoch: a warning when the schedule cannot reach the budget.
    fn forecast(&self, _batches_per_epoch: usize) -> Option<String> {
        None
    }
    /// SNL selection's lowest count so far.
    fn snl_lowest(&self) -> Option<u64> {
        None
    }
    /// Continue from a checkpoint this stage wrote (its configuration already checked).
    fn resume(&mut self, ck: &Checkpoint) -> Result<()>;
    /// Evaluate the model as it is now (after a projection, say).
    fn evaluate(&mut self, data: &Data) -> Result<(u64, EvalStats)>;
    /// Evaluate a finished run's network exactly as it was saved, for its report: as
    /// [`Stage::evaluate`], but without re-estimating BN statistics or moving the DaPa refit
    /// clock.
    fn report(&mut self, data: &Data) -> Result<(u64, EvalStats)> {
        self.evaluate(data)
    }
    /// The ReLUs the mask keeps now, without evaluating (an evaluation moves a gated
    /// stage's DaPa refit clock, and its BN re-estimation, so it is not a read).
    fn count(&mut self) -> Result<u64> {
        Ok(self.model().relu_total() as u64)
    }
}

/// Rebuild a model (and its gates, if it has any) from a checkpoint.
pub fn load_model(
    device: &Device,
    ck: &Checkpoint,
) -> Result<(Box<dyn Model>, Option<Replacement>)> {
    let m = &ck.meta;
    let mut model = build(&m.model, device, m.channels, m.input, m.classes, 0)?;
    let rep = match &m.replacement {
        Some(g) => {
            let mut rep = Replacement::install(model.as_mut(), g.config.clone(), device)?;
            rep.passes = g.passes;
            if g.frozen {
                rep.freeze(model.as_mut())?;
            }
            Some(rep)
        }
        None => None,
    };
    ck.restore_model(model.as_ref(), rep.is_some())?;
    Ok((model, rep))
}

/// An all-ReLU checkpoint to start a replacement from (and distil from), checked against the
/// data.
pub fn load_baseline(path: &Path, data: &Data) -> Result<Checkpoint> {
    let ck = Checkpoint::load(path)?;
    data.check(&ck.meta, path)?;
    if let Some(why) = ck.meta.unfit_to_start(StartFrom::AllRelu) {
        return Err(Error::Invalid(format!("{} {why}", path.display())));
    }
    Ok(ck)
}
