//! Stage 0: the all-ReLU baseline. SGD with momentum and weight decay, cosine to 1e-5.

use super::super::checkpoint::{Checkpoint, Phase};
use super::super::config::{defaults, StageConfig, TrainConfig};
use super::super::data::Data;
use super::super::eval::{evaluate, EvalStats};
use super::super::{train_epoch, EpochPlan};
use super::gated::EVAL_BATCH;
use super::{Stage, StageEpoch};
use crate::autorep::Replacement;
use crate::models::{build, Model};
use crate::nn::{LrSchedule, Optimizer, OptimizerKind, ParamGroup, Schedule};
use crate::{Device, Result};

pub struct BaselineStage {
    config: StageConfig,
    cfg: TrainConfig,
    model: Box<dyn Model>,
    opt: Optimizer,
    sched: LrSchedule,
    epochs_done: usize,
    device: Device,
}

impl BaselineStage {
    /// A fresh `model` for `data`, initialised from the config's seed.
    pub fn new(device: &Device, data: &Data, model: &str, cfg: TrainConfig) -> Result<Self> {
        let config = StageConfig::Train(cfg.clone());
        config.validate()?;
        let model = build(
            model,
            device,
            data.channels,
            data.input,
            data.classes,
            cfg.seed,
        )?;
        let g = ParamGroup::new(device, "weights", model.params())?;
        let opt = Optimizer::new(
            device,
            OptimizerKind::sgd(cfg.momentum, cfg.weight_decay, false),
            vec![(g, cfg.lr)],
        )?
        .with_precision(cfg.precision.resolve(device)?)?;
        let sched = LrSchedule::new(Schedule::Cosine {
            total: cfg.epochs,
            floor: defaults::LR_FLOOR,
        });
        Ok(BaselineStage {
            config,
            cfg,
            model,
            opt,
            sched,
            epochs_done: 0,
            device: device.clone(),
        })
    }
}

impl Stage for BaselineStage {
    fn config(&self) -> &StageConfig {
        &self.config
    }
    fn model(&self) -> &dyn Model {
        self.model.as_ref()
    }
    fn replacement(&self) -> Option<&Replacement> {
        None
    }
    fn optimizer(&self) -> &Optimizer {
        &self.opt
    }
    fn planned_epochs(&self, _epochs_done: usize) -> usize {
        self.cfg.epochs
    }
    fn phase(&self) -> Phase {
        Phase::Main
    }
    fn phase_epochs(&self) -> usize {
        self.epochs_done
    }
    fn done(&self) -> bool {
        self.epochs_done >= self.cfg.epochs
    }

    fn epoch(
        &mut self,
        data: &Data,
        progress: Option<&indicatif::ProgressBar>,
    ) -> Result<StageEpoch> {
        let lr = self.sched.at(self.epochs_done);
        let rates = self.opt.rates(lr);
        let plan = EpochPlan {
            lr,
            progress,
            ..EpochPlan::plain(self.cfg.batch, self.cfg.seed, self.epochs_done as u64)
        };
        let train = train_epoch(
            self.model.as_ref(),
            &mut self.opt,
            &data.train,
            plan,
            &self.device,
        )?;
        let (count, test) = self.evaluate(data)?;
        self.epochs_done += 1;
        Ok(StageEpoch {
            phase: Phase::Main,
            train,
            count,
            test,
            lr: rates,
        })
    }

    fn eligible(&self, _e: &StageEpoch) -> bool {
        true
    }

    fn resume(&mut self, ck: &Checkpoint) -> Result<()> {
        ck.restore_model(self.model.as_ref(), false)?;
        ck.restore_optimizer(&mut self.opt)?;
        self.epochs_done = ck.meta.progress.phase_epochs;
        Ok(())
    }

    fn evaluate(&mut self, data: &Data) -> Result<(u64, EvalStats)> {
        let test = evaluate(self.model.as_ref(), None, &data.test, EVAL_BATCH)?;
        Ok((self.model.relu_total() as u64, test))
    }
}
