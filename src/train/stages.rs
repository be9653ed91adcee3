//! The replacement stages: AutoReP (mask learning under a budget, polynomial replacement) and
//! SNL (continuous α with a growing L1 weight, binarise, finetune).

use super::{evaluate, train_epoch, EpochPlan, EpochStats};
use crate::autorep::{Method, Polynomial, ReplaceConfig, Replacement};
use crate::data::CifarSet;
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
    pub norm: ([f32; 3], [f32; 3]),
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

fn group(device: &Device, name: &str, params: Vec<Tensor>) -> Result<Option<(ParamGroup, usize)>> {
    if params.is_empty() {
        return Ok(None);
    }
    let n = params.len();
    Ok(Some((ParamGroup::new(device, name, params)?, n)))
}

/// AutoReP (or its identity ablation) on `model`, which keeps its trained weights.
pub fn autorep_stage(
    model: &mut dyn Model,
    cfg: ReplaceConfig,
    stage: &StageConfig,
    train: &CifarSet,
    test: Option<&CifarSet>,
    teacher: Option<&dyn Model>,
    device: &Device,
    mut on_epoch: impl FnMut(&StageEpoch),
) -> Result<StageResult> {
    let clean = cfg.polynomial == Polynomial::Clean && cfg.method == Method::AutoRep;
    let mut rep = Replacement::install(model, cfg, device)?;
    if clean {
        let calib: Vec<Tensor> = (0..4.min(train.len() / stage.batch.max(1)))
            .map(|b| {
                let idx: Vec<usize> = (b * stage.batch..(b + 1) * stage.batch).collect();
                Tensor::from_vec(device, &[idx.len(), 3, 32, 32], train.normalized(&idx, stage.norm.0, stage.norm.1))
            })
            .collect::<Result<_>>()?;
        rep.fit_clean(model, &calib)?;
    }
    let mut weights = model.params();
    weights.extend(rep.coef_params(model));
    let mut groups = vec![];
    if let Some((g, _)) = group(device, "weights", weights)? {
        groups.push((g, stage.weight_lr));
    }
    if let Some((g, _)) = group(device, "gates", rep.gate_params(model))? {
        groups.push((g, stage.gate_lr));
    }
    let mut opt = Optimizer::new(device, OptimizerKind::adam(0.0), groups)?;
    let sched = LrSchedule::new(Schedule::Cosine { total: stage.epochs, base: stage.weight_lr, floor: 1e-5 });
    run_epochs(model, &mut rep, &mut opt, &sched, stage, train, test, teacher, device, stage.epochs, |_, _, _, _| Ok(false), &mut on_epoch)
}

/// SNL on `model`: α selection until the count meets the budget (at most `stage.epochs`
/// epochs), binarisation, then `finetune_epochs` of SGD with the mask fixed.
pub fn snl_stage(
    model: &mut dyn Model,
    cfg: ReplaceConfig,
    stage: &StageConfig,
    train: &CifarSet,
    test: Option<&CifarSet>,
    teacher: Option<&dyn Model>,
    device: &Device,
    mut on_epoch: impl FnMut(&StageEpoch),
) -> Result<StageResult> {
    let mut rep = Replacement::install(model, ReplaceConfig { method: Method::Snl, ..cfg }, device)?;
    let mut params = model.params();
    params.extend(rep.gate_params(model));
    let g = ParamGroup::new(device, "all", params)?;
    let mut opt = Optimizer::new(device, OptimizerKind::adam(0.0), vec![(g, stage.gate_lr)])?;
    let mut lowest = u64::MAX;
    let mut l1 = rep.cfg.lambda;
    let budget = rep.cfg.budget as u64;
    // SNL's budget loop: stop once the count is within budget; otherwise grow λ₁ by 1.1
    // whenever an epoch (from the fifth on) fails to lower the count.
    let control = |epoch: usize, count: u64, rep: &mut Replacement, model: &mut dyn Model| -> Result<bool> {
        if count <= budget {
            return Ok(true);
        }
        if count < lowest {
            lowest = count;
        } else if epoch >= 5 {
            l1 *= 1.1;
            rep.set_snl_l1(model, l1);
        }
        Ok(false)
    };
    let constant = LrSchedule::new(Schedule::Constant);
    let mut result = run_epochs(model, &mut rep, &mut opt, &constant, stage, train, test, teacher, device, stage.epochs, control, &mut on_epoch)?;
    let mut rep = result.replacement;
    rep.freeze(model)?;
    let projected = rep.enforce_budget(model)?;
    // Finetune with the mask fixed: SGD over the weights only.
    let g = ParamGroup::new(device, "weights", model.params())?;
    let mut opt = Optimizer::new(device, OptimizerKind::sgd(0.9, 5e-4, false), vec![(g, stage.finetune_lr)])?;
    let sched = LrSchedule::new(Schedule::Cosine { total: stage.finetune_epochs.max(1), base: stage.finetune_lr, floor: 1e-6 });
    let offset = result.epochs.len();
    let fin = run_epochs(model, &mut rep, &mut opt, &sched, stage, train, test, teacher, device, stage.finetune_epochs, |_, _, _, _| Ok(false), &mut |e: &StageEpoch| {
        on_epoch(&StageEpoch { epoch: e.epoch + offset, ..e.clone() })
    })?;
    result.epochs.extend(fin.epochs.into_iter().map(|e| StageEpoch { epoch: e.epoch + offset, ..e }));
    result.projected += projected + fin.projected;
    result.final_count = fin.final_count;
    result.final_test = fin.final_test;
    result.replacement = fin.replacement;
    Ok(result)
}

#[allow(clippy::too_many_arguments)]
fn run_epochs(
    model: &mut dyn Model,
    rep: &mut Replacement,
    opt: &mut Optimizer,
    sched: &LrSchedule,
    stage: &StageConfig,
    train: &CifarSet,
    test: Option<&CifarSet>,
    teacher: Option<&dyn Model>,
    device: &Device,
    epochs: usize,
    mut stop: impl FnMut(usize, u64, &mut Replacement, &mut dyn Model) -> Result<bool>,
    on_epoch: &mut dyn FnMut(&StageEpoch),
) -> Result<StageResult> {
    let mut log = Vec::new();
    let mut over = 0;
    let budget = rep.cfg.budget as u64;
    for epoch in 0..epochs {
        let plan = EpochPlan {
            lr_factor: sched.factor(epoch),
            batch_size: stage.batch,
            norm: stage.norm,
            seed: stage.seed.wrapping_add(epoch as u64),
            replacement: Some(&mut *rep),
            teacher: teacher.map(|t| (t, stage.kd_temperature)),
        };
        let stats = train_epoch(&*model, opt, train, plan, device)?;
        let count = rep.count()?;
        over += (count > budget) as usize;
        let test_stats = test.map(|t| evaluate(&*model, Some(&mut *rep), t, 256, stage.norm, device)).transpose()?;
        let e = StageEpoch { epoch, train: stats, count, test: test_stats };
        on_epoch(&e);
        log.push(e);
        if stop(epoch, count, rep, model)? {
            break;
        }
    }
    let projected = rep.enforce_budget(&*model)?;
    rep.begin_forward(&*model, false)?;
    let final_count = rep.count()?;
    let final_test = test.map(|t| evaluate(&*model, Some(&mut *rep), t, 256, stage.norm, device)).transpose()?;
    // Move the replacement out; the caller owns it from here.
    let replacement = std::mem::replace(rep, placeholder(rep, device)?);
    Ok(StageResult { replacement, epochs: log, over_budget_epochs: over, projected, final_count, final_test })
}

/// An inert stand-in left behind when a stage hands its replacement to the caller.
fn placeholder(rep: &Replacement, device: &Device) -> Result<Replacement> {
    Ok(Replacement {
        cfg: rep.cfg.clone(),
        counter: std::rc::Rc::new(crate::tensor::ReluCounter::new(device)?),
        total: rep.total,
        passes: rep.passes,
        frozen: rep.frozen,
        stats_momentum: 0.1,
    })
}
