//! SNL (Cho et al., 2022): continuous α per gate with an L1 weight λ₁ that grows ×1.1 whenever
//! an epoch (from the sixth) fails to lower the count; once the count meets the budget, α is
//! binarised and the weights are finetuned with SGD.

use super::super::checkpoint::{Checkpoint, Phase};
use super::super::config::{SnlConfig, SnlSchedule, StageConfig};
use super::super::data::Data;
use super::super::eval::EvalStats;
use super::gated::{gated_stage_methods, GatedRun};
use super::{load_model, Stage, StageEpoch};
use crate::autorep::Replacement;
use crate::models::Model;
use crate::nn::{LrSchedule, Optimizer, OptimizerKind, ParamGroup, Schedule};
use crate::{Device, Result};

/// The paced schedule's count after `done` of `epochs` selection epochs: geometric from the
/// total `n` to 70 % of the budget `b` (a margin: the last gates resist), reached at 75 % of
/// the epochs.
pub fn paced_target(n: f64, b: f64, done: usize, epochs: usize) -> f64 {
    let t = (done as f64 / (0.75 * epochs as f64).max(1.0)).min(1.0);
    n * ((0.7 * b).max(1.0) / n.max(1.0)).powf(t)
}

/// The α rate above which SNL's switched-off gates flicker back on, when `alpha_lr` is above
/// it. The L1 term pulls α to 0 from either side, so a switched-off α hovers about 0 by up
/// to a step; well above the threshold the hovering ones flicker back on and the count
/// stalls. Measured on the small ResNet (1,024 images, 32 steps an epoch, 6 epochs, budget
/// 2.8K of 56K): it stalled at 13-16K at 0.05 and 21-26K at 0.1, and reached the budget at
/// 0.02 and (in 7 epochs) at 0.005.
pub fn flickering_rate(alpha_lr: f32) -> Option<f32> {
    let safe = 2.0 * crate::autorep::SNL_THRESHOLD;
    (alpha_lr > safe).then_some(safe)
}

/// The paced schedule grows λ₁ up to 30× an epoch, and a count can cross the budget and fall
/// far below it within one epoch; checking it ten times an epoch stops selection near the
/// budget, as the official per-epoch check does under its ×1.1 growth.
pub const PACED_CHECKS_PER_EPOCH: usize = 10;

/// SNL's epochs at most: all selection epochs and the finetune; once selection has ended
/// (often early, when the count meets the budget), the selection epochs it ran.
fn snl_planned_epochs(
    cfg: &SnlConfig,
    phase: Phase,
    epochs_done: usize,
    phase_epochs: usize,
) -> usize {
    match phase {
        Phase::Finetune => epochs_done.saturating_sub(phase_epochs) + cfg.finetune_epochs,
        Phase::Main => cfg.epochs + cfg.finetune_epochs,
    }
}

pub struct SnlStage {
    config: StageConfig,
    cfg: SnlConfig,
    run: GatedRun,
    /// The lowest count seen in selection.
    lowest: Option<u64>,
}

impl SnlStage {
    /// α gates initialised to 1; Adam over weights and α at a constant rate.
    pub fn new(device: &Device, baseline: &Checkpoint, cfg: SnlConfig) -> Result<Self> {
        let config = StageConfig::Snl(cfg.clone());
        config.validate()?;
        let (mut model, _) = load_model(device, baseline)?;
        let teacher = if cfg.kd {
            Some(load_model(device, baseline)?.0)
        } else {
            None
        };
        let rep = Replacement::install(model.as_mut(), cfg.gates(), device)?;
        let weights = ParamGroup::new(device, "weights", model.params())?;
        let alpha = ParamGroup::new(device, "alpha", rep.gate_params(model.as_ref()))?;
        let opt = Optimizer::new(
            device,
            OptimizerKind::adam(0.0),
            vec![(weights, cfg.lr), (alpha, cfg.alpha_lr)],
        )?
        .with_precision(cfg.precision.resolve(device)?)?;
        let constant = LrSchedule::new(Schedule::Constant);
        let mut run = GatedRun::new(model, rep, opt, constant, teacher, &config, device);
        if cfg.schedule == SnlSchedule::Paced {
            run.checks_per_epoch = PACED_CHECKS_PER_EPOCH;
        }
        Ok(SnlStage {
            config,
            run,
            cfg,
            lowest: None,
        })
    }

    fn start_finetune(&mut self) -> Result<usize> {
        // SNL's finetune anneals to 0 (CosineAnnealingLR's default eta_min).
        self.run
            .start_finetune(self.cfg.finetune_lr, 0.0, self.cfg.finetune_epochs)
    }
}

impl Stage for SnlStage {
    gated_stage_methods!();
    fn planned_epochs(&self, epochs_done: usize) -> usize {
        snl_planned_epochs(
            &self.cfg,
            self.run.phase,
            epochs_done,
            self.run.phase_epochs,
        )
    }
    fn phase(&self) -> Phase {
        self.run.phase
    }
    fn done(&self) -> bool {
        self.run.phase == Phase::Finetune && self.run.phase_epochs >= self.cfg.finetune_epochs
    }
    /// Only binarised networks: a selection epoch's continuous α is not an SNL network.
    fn eligible(&self, e: &StageEpoch) -> bool {
        e.phase == Phase::Finetune && e.count <= self.run.budget() && self.run.projected == 0
    }

    fn advance(&mut self, e: &StageEpoch) -> Result<Option<String>> {
        if e.phase != Phase::Main {
            return Ok(None);
        }
        let budget = self.run.budget();
        let reached = e.count <= budget;
        if !reached {
            let lowered = self.lowest.is_none_or(|l| e.count < l);
            if lowered {
                self.lowest = Some(e.count);
            }
            let growth = match self.cfg.schedule {
                // The official check, `epoch >= 5` on the 0-based epoch just run: from the
                // sixth epoch on (phase_epochs already counts this one).
                SnlSchedule::Official => (!lowered && self.run.phase_epochs >= 6).then_some(1.1),
                SnlSchedule::Paced => {
                    // Aim at the path's next point. Measured on the small ResNet, the count
                    // falls less than in proportion to λ₁'s growth near the budget, so λ₁
                    // grows by the square of the ratio.
                    let path = paced_target(
                        self.run.model.relu_total() as f64,
                        budget as f64,
                        self.run.phase_epochs + 1,
                        self.cfg.epochs,
                    );
                    let ratio = e.count as f64 / path;
                    (ratio > 1.0).then_some((ratio * ratio).clamp(1.5, 30.0) as f32)
                }
            };
            if let Some(g) = growth {
                let l1 = self.run.rep.cfg.lambda * g;
                self.run.rep.set_snl_l1(self.run.model.as_mut(), l1);
            }
        }
        if reached || self.run.phase_epochs >= self.cfg.epochs {
            let projected = self.start_finetune()?;
            let how = if projected > 0 {
                format!(
                    "selection ended over the budget ({} > {budget}): {projected} gates with the smallest α switched off",
                    e.count
                )
            } else {
                format!("selection reached the budget ({} ≤ {budget})", e.count)
            };
            return Ok(Some(format!("snl: {how}; α binarised, finetuning")));
        }
        Ok(None)
    }

    fn forecast(&self, batches_per_epoch: usize) -> Option<String> {
        // Adam moves α by about alpha_lr per step; α starts at 1 and counts as off below 0.01.
        let steps = (self.cfg.epochs * batches_per_epoch).max(1) as f64;
        let travel = steps * self.cfg.alpha_lr as f64;
        if travel < 0.99 {
            return Some(format!(
                "SNL cannot switch any gate off: α starts at 1 and moves at most alpha_lr = {} per step, {travel:.2} over {} selection epochs of {batches_per_epoch} steps; it needs an alpha_lr of at least about {:.1e}, or proportionally more epochs",
                self.cfg.alpha_lr,
                self.cfg.epochs,
                2.0 / steps
            ));
        }
        flickering_rate(self.cfg.alpha_lr).map(|safe| {
            format!(
                "SNL's α moves by about alpha_lr = {} per step, several times the {} threshold below which a gate counts as off: switched-off α hover about 0 by up to that much and flicker back on, so the count can stall far above the budget; an alpha_lr of at most about {safe} with epochs × steps × alpha_lr ≳ 1 (here about {:.0} selection epochs) avoids it",
                self.cfg.alpha_lr,
                crate::autorep::SNL_THRESHOLD,
                (2.0 / (safe as f64 * batches_per_epoch.max(1) as f64)).ceil()
            )
        })
    }
    fn snl_lowest(&self) -> Option<u64> {
        self.lowest
    }

    fn resume(&mut self, ck: &Checkpoint) -> Result<()> {
        if ck.meta.progress.phase == Phase::Finetune {
            self.start_finetune()?;
        }
        self.run.restore(ck)?;
        if let Some(g) = &ck.meta.replacement {
            self.run
                .rep
                .set_snl_l1(self.run.model.as_mut(), g.config.lambda);
        }
        self.lowest = ck.meta.progress.snl_lowest;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_that_ends_early_shortens_the_planned_epochs() {
        let cfg = SnlConfig {
            epochs: 4,
            finetune_epochs: 2,
            ..SnlConfig::new(100)
        };
        assert_eq!(snl_planned_epochs(&cfg, Phase::Main, 0, 0), 6);
        assert_eq!(snl_planned_epochs(&cfg, Phase::Main, 2, 2), 6);
        // Selection reached the budget after 3 epochs: the finetune's are the 4th and 5th of 5.
        assert_eq!(snl_planned_epochs(&cfg, Phase::Finetune, 3, 0), 5);
        assert_eq!(snl_planned_epochs(&cfg, Phase::Finetune, 4, 1), 5);
        // Selection ran all its epochs.
        assert_eq!(snl_planned_epochs(&cfg, Phase::Finetune, 5, 1), 6);
    }
}
