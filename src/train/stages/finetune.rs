//! A gated network finetuned with its mask frozen: SGD on the weights (momentum 0.9, weight
//! decay 5e-4, cosine), with KD from an all-ReLU teacher when one is given.

use super::super::checkpoint::{Checkpoint, Phase, StartFrom};
use super::super::config::{defaults, FinetuneConfig, StageConfig};
use super::super::data::Data;
use super::super::eval::EvalStats;
use super::gated::{gated_stage_methods, GatedRun};
use super::{load_model, Stage, StageEpoch};
use crate::autorep::Replacement;
use crate::models::Model;
use crate::nn::{LrSchedule, Optimizer, OptimizerKind, Schedule};
use crate::{Device, Error, Result};
use std::path::Path;

pub struct FinetuneStage {
    config: StageConfig,
    epochs: usize,
    run: GatedRun,
}

impl FinetuneStage {
    /// `from` is a gated checkpoint (from replace or snl); `teacher` an all-ReLU one.
    pub fn new(
        device: &Device,
        from: (&Path, &Checkpoint),
        teacher: Option<&Checkpoint>,
        cfg: FinetuneConfig,
    ) -> Result<Self> {
        let config = StageConfig::Finetune(cfg.clone());
        config.validate()?;
        let unfit = |why: String| Error::Invalid(format!("{} {why}", from.0.display()));
        if let Some(why) = from.1.meta.unfit_to_start(StartFrom::Gated) {
            return Err(unfit(why));
        }
        let (model, rep) = load_model(device, from.1)?;
        let rep = rep.ok_or_else(|| unfit("has no gated sites".into()))?;
        let teacher = teacher
            .map(|t| load_model(device, t).map(|m| m.0))
            .transpose()?;
        if let Some(t) = &teacher {
            if t.name() != model.name() {
                return Err(Error::Invalid(format!(
                    "the teacher is a {} but the network is a {}: distil from its own baseline",
                    t.name(),
                    model.name()
                )));
            }
        }
        let opt = Optimizer::new(device, OptimizerKind::adam(0.0), vec![])?
            .with_precision(cfg.precision.resolve(device)?)?;
        let constant = LrSchedule::new(Schedule::Constant);
        let mut run = GatedRun::new(model, rep, opt, constant, teacher, &config, device);
        // The mask keeps the slack it was selected with: a best within the replacement's
        // budget plus its slack is finetuned as it is. A mask over it would have to be
        // projected, and a projected network is not finetuned (as above).
        if let StageConfig::Replace(r) = &from.1.meta.config {
            run.slack = r.budget_slack as u64;
        }
        run.rep.freeze(run.model.as_mut())?;
        let count = run.count()?;
        if count > run.budget() {
            let slack = match run.slack {
                0 => String::new(),
                s => format!(" plus its slack of {s}"),
            };
            return Err(Error::Invalid(format!(
                "{}'s mask keeps {count} ReLUs, over its budget of {}{slack}: finetune a checkpoint that met its budget (the run's best.safetensors), or replace for longer so the mask reaches it",
                from.0.display(),
                run.rep.cfg.budget
            )));
        }
        // Frozen, synced and within its budget: nothing to project.
        run.begin_finetune(cfg.lr, defaults::LR_FLOOR, cfg.epochs)?;
        Ok(FinetuneStage {
            config,
            epochs: cfg.epochs,
            run,
        })
    }
}

impl Stage for FinetuneStage {
    gated_stage_methods!();
    fn planned_epochs(&self, _epochs_done: usize) -> usize {
        self.epochs
    }
    fn phase(&self) -> Phase {
        Phase::Finetune
    }
    fn done(&self) -> bool {
        self.run.phase_epochs >= self.epochs
    }
    fn eligible(&self, e: &StageEpoch) -> bool {
        e.count <= self.run.budget() && self.run.projected == 0
    }
    fn resume(&mut self, ck: &Checkpoint) -> Result<()> {
        self.run.restore(ck)
    }
}
