//! AutoReP (or its identity ablation) from an all-ReLU baseline: every ReLU becomes a gated
//! site, DaPa polynomials replace the switched-off ones, the student distils from the
//! baseline, and Adam trains weights and coefficients at one rate and the gates at another.

use super::super::checkpoint::{Checkpoint, Phase};
use super::super::config::{defaults, ReplaceStageConfig, StageConfig};
use super::super::data::Data;
use super::super::eval::EvalStats;
use super::gated::{gated_stage_methods, GatedRun};
use super::{load_model, Stage, StageEpoch};
use crate::autorep::{Method, Polynomial, Replacement};
use crate::models::Model;
use crate::nn::{LrSchedule, Optimizer, OptimizerKind, ParamGroup, Schedule};
use crate::{Device, Result, Tensor};

pub struct ReplaceStage {
    config: StageConfig,
    cfg: ReplaceStageConfig,
    epochs: usize,
    run: GatedRun,
}

/// Whether a schedule can switch off enough gates: Adam moves each h by at most about its
/// rate per step, so after the whole schedule a gate that started at h₀ ~ U(lo, hi) can have
/// crossed −τ only if h₀ + τ ≤ Σ rate. Returns (the fraction that can, the fraction the
/// budget needs, the mask rate that would reach it) when the first is short of the second.
pub fn reachable(
    cfg: &ReplaceStageConfig,
    total: usize,
    batches_per_epoch: usize,
    factors: impl Iterator<Item = f32>,
) -> Option<(f64, f64, f64)> {
    let need = 1.0 - cfg.budget.relus as f64 / total.max(1) as f64;
    let steps: f64 = factors.map(|f| f as f64).sum::<f64>() * batches_per_epoch as f64;
    let travel = steps * cfg.mask_lr as f64;
    let [lo, hi] = cfg.h_init.map(|v| v as f64);
    let tau = cfg.tau as f64;
    let fraction = if hi > lo {
        ((travel - tau - lo) / (hi - lo)).clamp(0.0, 1.0)
    } else if travel >= lo + tau {
        1.0
    } else {
        0.0
    };
    if fraction >= need || steps == 0.0 {
        return None;
    }
    let wanted = tau + lo + need * (hi - lo).max(0.0);
    Some((
        fraction,
        need,
        cfg.mask_lr as f64 * wanted / travel.max(1e-12),
    ))
}

impl ReplaceStage {
    /// Gate every site of the baseline's model, fit DaPa (clean mode) on four training
    /// batches, and set up Adam with one group for weights and coefficients and one for the
    /// gates.
    pub fn new(
        device: &Device,
        data: &Data,
        baseline: &Checkpoint,
        cfg: ReplaceStageConfig,
    ) -> Result<Self> {
        let config = StageConfig::Replace(cfg.clone());
        config.validate()?;
        let gates = cfg.gates();
        let (mut model, _) = load_model(device, baseline)?;
        if let Some(why) = cfg.slack_covers_all(model.relu_total(), model.name()) {
            return Err(crate::Error::Invalid(why));
        }
        let teacher = if cfg.kd {
            Some(load_model(device, baseline)?.0)
        } else {
            None
        };
        let clean = gates.polynomial == Polynomial::Clean && gates.method == Method::AutoRep;
        let mut rep = Replacement::install(model.as_mut(), gates, device)?;
        if clean {
            let calib: Vec<Tensor> = data
                .train
                .plan(cfg.seed, 0, cfg.batch, false)
                .iter()
                .take(4)
                .map(|b| Ok(data.train.batch(b)?.0))
                .collect::<Result<_>>()?;
            rep.fit_clean(model.as_ref(), &calib)?;
        }
        let mut weights = model.params();
        weights.extend(rep.coef_params(model.as_ref()));
        let mut groups = vec![(ParamGroup::new(device, "weights", weights)?, cfg.weight_lr)];
        let h = rep.gate_params(model.as_ref());
        if !h.is_empty() {
            groups.push((ParamGroup::new(device, "gates", h)?, cfg.mask_lr));
        }
        let mut opt = Optimizer::new(device, OptimizerKind::adam(0.0), groups)?
            .with_precision(cfg.precision.resolve(device)?)?;
        if let Some(la) = cfg.lookahead() {
            opt = opt.with_lookahead(la)?;
        }
        let sched = LrSchedule::new(Schedule::Cosine {
            total: cfg.epochs,
            floor: defaults::LR_FLOOR,
        });
        let run = GatedRun::new(model, rep, opt, sched, teacher, &config, device);
        Ok(ReplaceStage {
            config,
            cfg: cfg.clone(),
            epochs: cfg.epochs,
            run,
        })
    }
}

impl Stage for ReplaceStage {
    gated_stage_methods!();
    fn planned_epochs(&self, _epochs_done: usize) -> usize {
        self.epochs
    }
    fn phase(&self) -> Phase {
        Phase::Main
    }
    fn done(&self) -> bool {
        self.run.phase_epochs >= self.epochs
    }
    fn eligible(&self, e: &StageEpoch) -> bool {
        e.count <= self.run.budget() && self.run.projected == 0
    }
    fn forecast(&self, batches_per_epoch: usize) -> Option<String> {
        let total = self.run.model.relu_total();
        let mask_lr = self.cfg.mask_lr;
        let factors = (0..self.epochs).map(|e| self.run.sched.at(e).of(mask_lr) / mask_lr);
        let (can, need, rate) = reachable(&self.cfg, total, batches_per_epoch, factors)?;
        Some(format!(
            "the budget needs {:.1}% of the gates off, but at mask rate {} over {} epochs of {batches_per_epoch} steps at most {:.1}% can cross -tau from h in [{}, {}]: a mask rate of about {rate:.2e} (or proportionally more epochs, or a lower --h-init) would reach it",
            100.0 * need,
            self.cfg.mask_lr,
            self.epochs,
            100.0 * can,
            self.cfg.h_init[0],
            self.cfg.h_init[1]
        ))
    }
    fn resume(&mut self, ck: &Checkpoint) -> Result<()> {
        self.run.restore(ck)
    }
}
