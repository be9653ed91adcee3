//! The replacement stages as resumable runs: AutoReP (mask learning under a budget with a
//! polynomial replacement) and SNL (continuous α with a growing L1 weight, binarise,
//! finetune). A run advances one epoch at a time so callers can checkpoint between epochs.

use super::{evaluate, train_epoch, DeviceSet, EpochPlan, EpochStats};
use crate::autorep::{Method, Polynomial, ReplaceConfig, Replacement};
use crate::models::Model;
use crate::nn::{LrSchedule, Optimizer, OptimizerKind, ParamGroup, Schedule};
use crate::{Device, Result, Tensor};

/// Settings of one replacement run.
#[derive(Debug, Clone)]
pub struct StageConfig {
    pub epochs: usize,
    pub batch: usize,
    /// Adam learning rate of weights, BN affine and polynomial coefficients.
    pub weight_lr: f32,
    /// Adam learning rate of the gate parameters (h or α).
    pub gate_lr: f32,
    /// Distillation temperature when a teacher is given.
    pub kd_temperature: f32,
    /// SNL: epochs of finetuning after binarisation.
    pub finetune_epochs: usize,
    pub finetune_lr: f32,
    pub seed: u64,
}

/// One epoch of a stage, as logged.
#[derive(Debug, Clone)]
pub struct StageEpoch {
    pub epoch: usize,
    pub train: EpochStats,
    /// ReLU count after the epoch's last training batch.
    pub count: u64,
    pub test: Option<EpochStats>,
    pub lr_factor: f32,
}

pub struct StageResult {
    pub replacement: Replacement,
    pub epochs: Vec<StageEpoch>,
    /// Epochs that ended over budget.
    pub over_budget_epochs: usize,
    /// Gates switched off at the end to meet the budget exactly.
    pub projected: usize,
    pub final_count: u64,
    pub final_test: Option<EpochStats>,
}

/// Where an SNL run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnlPhase {
    Select,
    Finetune,
}

/// A replacement run in progress: the gates, the optimizer and the schedule.
pub struct Run {
    pub rep: Replacement,
    pub opt: Optimizer,
    pub sched: LrSchedule,
    /// Epochs completed in the current phase.
    pub epoch: usize,
    pub phase: SnlPhase,
    /// SNL: the lowest count seen in selection.
    pub lowest: u64,
}

impl Run {
    /// AutoReP (or its identity ablation): gate every site, fit DaPa (clean mode) on a few
    /// training batches, and set up Adam with one group for weights and coefficients and one
    /// for the gates.
    pub fn autorep(
        model: &mut dyn Model,
        cfg: ReplaceConfig,
        stage: &StageConfig,
        train: &DeviceSet,
        device: &Device,
    ) -> Result<Run> {
        let clean = cfg.polynomial == Polynomial::Clean && cfg.method == Method::AutoRep;
        let mut rep = Replacement::install(model, cfg, device)?;
        if clean {
            let calib: Vec<Tensor> = train
                .plan(stage.seed, 0, stage.batch.max(2), false)
                .iter()
                .take(4)
                .map(|b| Ok(train.batch(b)?.0))
                .collect::<Result<_>>()?;
            rep.fit_clean(model, &calib)?;
        }
        let mut weights = model.params();
        weights.extend(rep.coef_params(model));
        let mut groups = vec![(
            ParamGroup::new(device, "weights", weights)?,
            stage.weight_lr,
        )];
        let gates = rep.gate_params(model);
        if !gates.is_empty() {
            groups.push((ParamGroup::new(device, "gates", gates)?, stage.gate_lr));
        }
        let opt = Optimizer::new(device, OptimizerKind::adam(0.0), groups)?;
        let sched = LrSchedule::new(Schedule::Cosine {
            total: stage.epochs,
            base: stage.weight_lr,
            floor: 1e-5,
        });
        Ok(Run {
            rep,
            opt,
            sched,
            epoch: 0,
            phase: SnlPhase::Select,
            lowest: u64::MAX,
        })
    }

    /// SNL: α gates initialised to 1, Adam over weights and α at a constant rate.
    pub fn snl(
        model: &mut dyn Model,
        cfg: ReplaceConfig,
        stage: &StageConfig,
        device: &Device,
    ) -> Result<Run> {
        let rep = Replacement::install(
            model,
            ReplaceConfig {
                method: Method::Snl,
                ..cfg
            },
            device,
        )?;
        let mut params = model.params();
        params.extend(rep.gate_params(model));
        let g = ParamGroup::new(device, "all", params)?;
        let opt = Optimizer::new(device, OptimizerKind::adam(0.0), vec![(g, stage.gate_lr)])?;
        Ok(Run {
            rep,
            opt,
            sched: LrSchedule::new(Schedule::Constant),
            epoch: 0,
            phase: SnlPhase::Select,
            lowest: u64::MAX,
        })
    }

    /// A finetune of an already-gated model (`autorep finetune`): mask fixed, SGD on weights.
    pub fn finetune(
        model: &mut dyn Model,
        rep: Replacement,
        stage: &StageConfig,
        device: &Device,
    ) -> Result<Run> {
        let opt = Optimizer::new(device, OptimizerKind::adam(0.0), vec![])?;
        let mut run = Run {
            rep,
            opt,
            sched: LrSchedule::new(Schedule::Constant),
            epoch: 0,
            phase: SnlPhase::Select,
            lowest: u64::MAX,
        };
        run.start_finetune(model, stage, device)?;
        Ok(run)
    }

    /// Fix the mask and switch to finetuning the weights with SGD (SNL's second phase, or a
    /// finetune after AutoReP).
    pub fn start_finetune(
        &mut self,
        model: &mut dyn Model,
        stage: &StageConfig,
        device: &Device,
    ) -> Result<usize> {
        self.rep.freeze(model)?;
        let projected = self.rep.enforce_budget(model)?;
        let g = ParamGroup::new(device, "weights", model.params())?;
        self.opt = Optimizer::new(
            device,
            OptimizerKind::sgd(0.9, 5e-4, false),
            vec![(g, stage.finetune_lr)],
        )?;
        self.sched = LrSchedule::new(Schedule::Cosine {
            total: stage.finetune_epochs.max(1),
            base: stage.finetune_lr,
            floor: 1e-6,
        });
        self.phase = SnlPhase::Finetune;
        self.epoch = 0;
        Ok(projected)
    }

    /// Train one epoch, count the ReLUs after its last batch, and evaluate.
    #[allow(clippy::too_many_arguments)]
    pub fn epoch(
        &mut self,
        model: &dyn Model,
        stage: &StageConfig,
        train: &DeviceSet,
        test: Option<&DeviceSet>,
        teacher: Option<&dyn Model>,
        device: &Device,
        progress: Option<&indicatif::ProgressBar>,
    ) -> Result<StageEpoch> {
        let lr_factor = self.sched.factor(self.epoch);
        let plan = EpochPlan {
            lr_factor,
            batch_size: stage.batch,
            augment: true,
            seed: stage.seed,
            epoch: self.epoch as u64
                + if self.phase == SnlPhase::Finetune {
                    1 << 20
                } else {
                    0
                },
            replacement: Some(&mut self.rep),
            teacher: teacher.map(|t| (t, stage.kd_temperature)),
            progress,
        };
        let stats = train_epoch(model, &mut self.opt, train, plan, device)?;
        let count = self.rep.count()?;
        let test = test
            .map(|t| evaluate(model, Some(&mut self.rep), t, 256))
            .transpose()?;
        let e = StageEpoch {
            epoch: self.epoch,
            train: stats,
            count,
            test,
            lr_factor,
        };
        self.epoch += 1;
        Ok(e)
    }

    /// SNL's budget loop after a selection epoch: true once the count is within budget;
    /// otherwise λ₁ grows by 1.1 whenever an epoch (from the fifth on) fails to lower it.
    pub fn snl_control(&mut self, model: &mut dyn Model, e: &StageEpoch) -> bool {
        if e.count <= self.rep.cfg.budget as u64 {
            return true;
        }
        if e.count < self.lowest {
            self.lowest = e.count;
        } else if e.epoch >= 5 {
            let l1 = self.rep.cfg.lambda * 1.1;
            self.rep.set_snl_l1(model, l1);
        }
        false
    }

    /// Meet the budget exactly, recount, and evaluate.
    pub fn finish(
        &mut self,
        model: &dyn Model,
        test: Option<&DeviceSet>,
    ) -> Result<(usize, u64, Option<EpochStats>)> {
        let projected = self.rep.enforce_budget(model)?;
        self.rep.begin_forward(model, false)?;
        let count = self.rep.count()?;
        let test = test
            .map(|t| evaluate(model, Some(&mut self.rep), t, 256))
            .transpose()?;
        Ok((projected, count, test))
    }
}

fn result(
    run: Run,
    epochs: Vec<StageEpoch>,
    projected: usize,
    final_count: u64,
    final_test: Option<EpochStats>,
) -> StageResult {
    let budget = run.rep.cfg.budget as u64;
    let over_budget_epochs = epochs.iter().filter(|e| e.count > budget).count();
    StageResult {
        replacement: run.rep,
        epochs,
        over_budget_epochs,
        projected,
        final_count,
        final_test,
    }
}

/// AutoReP (or its identity ablation) on `model`, which keeps its trained weights.
#[allow(clippy::too_many_arguments)]
pub fn autorep_stage(
    model: &mut dyn Model,
    cfg: ReplaceConfig,
    stage: &StageConfig,
    train: &DeviceSet,
    test: Option<&DeviceSet>,
    teacher: Option<&dyn Model>,
    device: &Device,
    mut on_epoch: impl FnMut(&StageEpoch),
) -> Result<StageResult> {
    let mut run = Run::autorep(model, cfg, stage, train, device)?;
    let mut log = Vec::new();
    for _ in 0..stage.epochs {
        let e = run.epoch(model, stage, train, test, teacher, device, None)?;
        on_epoch(&e);
        log.push(e);
    }
    let (projected, count, final_test) = run.finish(model, test)?;
    Ok(result(run, log, projected, count, final_test))
}

/// SNL on `model`: α selection until the count meets the budget (at most `stage.epochs`
/// epochs), binarisation, then `finetune_epochs` of SGD with the mask fixed.
#[allow(clippy::too_many_arguments)]
pub fn snl_stage(
    model: &mut dyn Model,
    cfg: ReplaceConfig,
    stage: &StageConfig,
    train: &DeviceSet,
    test: Option<&DeviceSet>,
    teacher: Option<&dyn Model>,
    device: &Device,
    mut on_epoch: impl FnMut(&StageEpoch),
) -> Result<StageResult> {
    let mut run = Run::snl(model, cfg, stage, device)?;
    let mut log = Vec::new();
    for _ in 0..stage.epochs {
        let e = run.epoch(model, stage, train, test, teacher, device, None)?;
        on_epoch(&e);
        let done = run.snl_control(model, &e);
        log.push(e);
        if done {
            break;
        }
    }
    let mut projected = run.start_finetune(model, stage, device)?;
    let offset = log.len();
    for _ in 0..stage.finetune_epochs {
        let mut e = run.epoch(model, stage, train, test, teacher, device, None)?;
        e.epoch += offset;
        on_epoch(&e);
        log.push(e);
    }
    let (p, count, final_test) = run.finish(model, test)?;
    projected += p;
    Ok(result(run, log, projected, count, final_test))
}
