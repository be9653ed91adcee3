//! What the gated stages share: the model with its gates, the optimizer and schedule, the
//! teacher, and one epoch of training under the mask.

use super::super::checkpoint::{Checkpoint, Phase};
use super::super::config::{defaults, StageConfig};
use super::super::data::Data;
use super::super::eval::{evaluate, EvalStats};
use super::super::{train_epoch, EpochPlan, StopAt};
use super::StageEpoch;
use crate::autorep::Replacement;
use crate::models::Model;
use crate::nn::{LrSchedule, Optimizer, OptimizerKind, ParamGroup, Schedule};
use crate::{Device, Result};

/// Evaluation batch size: large enough to fill a GPU, independent of the training batch.
pub const EVAL_BATCH: usize = 256;

pub struct GatedRun {
    pub model: Box<dyn Model>,
    pub rep: Replacement,
    pub opt: Optimizer,
    pub sched: LrSchedule,
    pub teacher: Option<Box<dyn Model>>,
    /// The distillation temperature and weight.
    pub kd: (f32, f32),
    pub phase: Phase,
    pub phase_epochs: usize,
    pub batch: usize,
    pub seed: u64,
    pub projected: usize,
    /// ReLUs above the budget still accepted (selection and projection).
    pub slack: u64,
    /// Training batches to re-estimate BatchNorm statistics over before evaluating (0: off).
    pub bn_recalib: usize,
    /// Selection checks the count this many times an epoch and stops once it meets the budget
    /// (0: only at the epoch's end).
    pub checks_per_epoch: usize,
    pub device: Device,
}

impl GatedRun {
    /// A run at its start, its batch, seed, slack and BN re-estimation taken from `config`.
    pub fn new(
        model: Box<dyn Model>,
        rep: Replacement,
        opt: Optimizer,
        sched: LrSchedule,
        teacher: Option<Box<dyn Model>>,
        config: &StageConfig,
        device: &Device,
    ) -> GatedRun {
        let (batch, seed, bn_recalib, slack, kd) = match config {
            StageConfig::Replace(c) => (
                c.batch,
                c.seed,
                c.bn_recalib,
                c.budget_slack as u64,
                (c.kd_temperature, c.kd_weight),
            ),
            StageConfig::Snl(c) => (
                c.batch,
                c.seed,
                c.bn_recalib,
                0,
                (c.kd_temperature, c.kd_weight),
            ),
            StageConfig::Finetune(c) => (
                c.batch,
                c.seed,
                c.bn_recalib,
                0,
                (c.kd_temperature, c.kd_weight),
            ),
            StageConfig::Train(c) => (
                c.batch,
                c.seed,
                0,
                0,
                (defaults::KD_TEMPERATURE, defaults::KD_WEIGHT),
            ),
        };
        GatedRun {
            model,
            rep,
            opt,
            sched,
            teacher,
            kd,
            phase: Phase::Main,
            phase_epochs: 0,
            batch,
            seed,
            projected: 0,
            slack,
            bn_recalib,
            checks_per_epoch: 0,
            device: device.clone(),
        }
    }

    /// One training epoch under the mask, then the mask brought up to date, counted and
    /// evaluated (the count, the evaluation and the checkpoint all see the same mask).
    pub fn epoch(
        &mut self,
        data: &Data,
        progress: Option<&indicatif::ProgressBar>,
    ) -> Result<StageEpoch> {
        let lr = self.sched.at(self.phase_epochs);
        let rates = self.opt.rates(lr);
        // A phase of its own shuffling: SNL's finetune epochs must not replay selection's.
        let offset = if self.phase == Phase::Finetune {
            1 << 20
        } else {
            0
        };
        let batches = super::super::batches_per_epoch(data.train.len(), self.batch);
        let stop_at = (self.phase == Phase::Main && self.checks_per_epoch > 0).then(|| StopAt {
            count: self.budget(),
            every: batches.div_ceil(self.checks_per_epoch),
        });
        let plan = EpochPlan {
            lr,
            batch_size: self.batch,
            augment: true,
            seed: self.seed,
            epoch: (self.phase_epochs + offset) as u64,
            replacement: Some(&mut self.rep),
            teacher: self.teacher.as_deref().map(|t| (t, self.kd.0, self.kd.1)),
            progress,
            stop_at,
        };
        let train = train_epoch(
            self.model.as_ref(),
            &mut self.opt,
            &data.train,
            plan,
            &self.device,
        )?;
        let (count, test) = self.evaluate(data)?;
        self.phase_epochs += 1;
        Ok(StageEpoch {
            phase: self.phase,
            train,
            count,
            test,
            lr: rates,
        })
    }

    /// Sync and count the mask, let the faithful refit clock see the evaluation's passes as
    /// the official code's does, and evaluate. A refit due during those passes is applied
    /// before them (the official code applies it partway through validation): the
    /// coefficients evaluated are then the ones saved with the epoch.
    pub fn evaluate(&mut self, data: &Data) -> Result<(u64, EvalStats)> {
        let count = self.count()?;
        self.recalibrate(data)?;
        // The official validation loader runs at the training batch size (CIFAR, batch 128:
        // 79 passes), whatever batch the evaluation here runs at.
        let passes = data.test.len().div_ceil(self.batch.max(1)) as u64;
        self.rep.advance_clock(self.model.as_ref(), passes)?;
        let test = evaluate(self.model.as_ref(), Some(&self.rep), &data.test, EVAL_BATCH)?;
        Ok((count, test))
    }

    /// The network exactly as it was saved, for a finished run that only reports: no BN
    /// re-estimation and no tick of the refit clock (the saved statistics and coefficients are
    /// the ones its last evaluation used, and either step could change them).
    pub fn report(&mut self, data: &Data) -> Result<(u64, EvalStats)> {
        let count = self.count()?;
        let test = evaluate(self.model.as_ref(), Some(&self.rep), &data.test, EVAL_BATCH)?;
        Ok((count, test))
    }

    /// Re-estimate every BatchNorm's running statistics as the plain average over the first
    /// `bn_recalib` centred training batches, with the mask as it is now. Nothing else moves:
    /// the DaPa statistics are held (momentum 0) and the refit clock does not tick.
    fn recalibrate(&mut self, data: &Data) -> Result<()> {
        let plan = data.train.plan(self.seed, 0, self.batch, false);
        for (k, samples) in plan.iter().take(self.bn_recalib).enumerate() {
            let mut ctx = self.rep.eval_ctx();
            ctx.train = true;
            ctx.stats_momentum = 0.0;
            ctx.bn_momentum = Some(1.0 / (k + 1) as f32);
            let x = data.train.batch(samples)?.0;
            crate::no_grad(|| self.model.forward(&x, &ctx))?;
        }
        Ok(())
    }

    /// Fix the mask and finetune the weights and polynomial coefficients with SGD (momentum
    /// 0.9, weight decay 5e-4 on all, cosine to `floor` over `epochs`), as the official
    /// finetunes: their optimizers take every weight but h. A mask over the budget plus the
    /// slack is projected to the budget first; returns how many gates that switched off.
    pub fn start_finetune(&mut self, lr: f32, floor: f32, epochs: usize) -> Result<usize> {
        // Projected before SNL's α are binarised: the projection switches off the smallest,
        // and once binarised every kept α is 1.
        let projected = self.project()?;
        self.rep.freeze(self.model.as_mut())?;
        self.begin_finetune(lr, floor, epochs)?;
        Ok(projected)
    }

    /// The finetune optimizer and schedule, for a mask already frozen and within its budget.
    pub fn begin_finetune(&mut self, lr: f32, floor: f32, epochs: usize) -> Result<()> {
        let mut weights = self.model.params();
        weights.extend(self.rep.coef_params(self.model.as_ref()));
        let precision = self.opt.precision();
        // The loss scale the replacement's steps settled at carries on into the finetune.
        let scale = self.opt.loss_scale()?;
        // The replacement's optimizer (Adam's flat buffers and moments) goes first, so that
        // building the new group gives its buffers back with the parameters' old ones.
        self.opt = Optimizer::new(&self.device, OptimizerKind::adam(0.0), vec![])?;
        let g = ParamGroup::new(&self.device, "weights", weights)?;
        self.opt = Optimizer::new(
            &self.device,
            OptimizerKind::sgd(defaults::MOMENTUM, defaults::WEIGHT_DECAY, false),
            vec![(g, lr)],
        )?
        .with_precision(precision)?
        .starting_at_scale(scale)?;
        self.sched = LrSchedule::new(Schedule::Cosine {
            total: epochs.max(1),
            floor,
        });
        self.phase = Phase::Finetune;
        self.phase_epochs = 0;
        Ok(())
    }

    /// The mask brought up to date with the gate parameters, and its ReLUs.
    pub fn count(&mut self) -> Result<u64> {
        self.rep.sync(self.model.as_ref())?;
        self.rep.count()
    }

    /// Project the mask to the exact budget when it is over the budget plus the slack.
    pub fn project(&mut self) -> Result<usize> {
        if self.count()? <= self.budget() {
            return Ok(0);
        }
        let n = self.rep.enforce_budget(self.model.as_ref())?;
        self.projected += n;
        Ok(n)
    }

    /// Weights, gates, coefficients, optimizer state and clocks from `ck` (the stage's phase
    /// already matches it).
    pub fn restore(&mut self, ck: &Checkpoint) -> Result<()> {
        ck.restore_model(self.model.as_ref(), true)?;
        ck.restore_optimizer(&mut self.opt)?;
        if let Some(g) = &ck.meta.replacement {
            self.rep.passes = g.passes;
        }
        self.phase_epochs = ck.meta.progress.phase_epochs;
        self.projected = ck.meta.progress.projected_gates;
        Ok(())
    }

    /// The count an epoch may end with and still be selected: the budget plus the slack.
    pub fn budget(&self) -> u64 {
        self.rep.cfg.budget as u64 + self.slack
    }
}

/// The `Stage` methods every gated stage answers from its [`GatedRun`] (a field `run`) and its
/// configuration (a field `config`).
macro_rules! gated_stage_methods {
    () => {
        fn config(&self) -> &StageConfig {
            &self.config
        }
        fn model(&self) -> &dyn Model {
            self.run.model.as_ref()
        }
        fn replacement(&self) -> Option<&Replacement> {
            Some(&self.run.rep)
        }
        fn optimizer(&self) -> &Optimizer {
            &self.run.opt
        }
        fn phase_epochs(&self) -> usize {
            self.run.phase_epochs
        }
        fn epoch(
            &mut self,
            data: &Data,
            progress: Option<&indicatif::ProgressBar>,
        ) -> Result<StageEpoch> {
            self.run.epoch(data, progress)
        }
        fn budget(&self) -> Option<u64> {
            Some(self.run.budget())
        }
        fn projected_gates(&self) -> usize {
            self.run.projected
        }
        fn project(&mut self) -> Result<usize> {
            self.run.project()
        }
        fn evaluate(&mut self, data: &Data) -> Result<(u64, EvalStats)> {
            self.run.evaluate(data)
        }
        fn count(&mut self) -> Result<u64> {
            self.run.count()
        }
        fn report(&mut self, data: &Data) -> Result<(u64, EvalStats)> {
            self.run.report(data)
        }
    };
}
pub(crate) use gated_stage_methods;
