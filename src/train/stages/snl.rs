//! SNL (Cho et al., 2022): continuous α per gate with an L1 weight λ₁ that grows ×1.1 whenever
//! an epoch (from the fifth) fails to lower the count; once the count meets the budget, α is
//! binarised and the weights are finetuned with SGD.

use super::super::checkpoint::{Checkpoint, Phase};
use super::super::config::{SnlConfig, StageConfig};
use super::super::data::Data;
use super::super::eval::EvalStats;
use super::gated::{gated_stage_methods, GatedRun};
use super::{load_model, Stage, StageEpoch};
use crate::autorep::Replacement;
use crate::models::Model;
use crate::nn::{LrSchedule, Optimizer, OptimizerKind, ParamGroup, Schedule};
use crate::{Device, Result};

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
        let mut params = model.params();
        params.extend(rep.gate_params(model.as_ref()));
        let g = ParamGroup::new(device, "all", params)?;
        let opt = Optimizer::new(device, OptimizerKind::adam(0.0), vec![(g, cfg.lr)])?;
        Ok(SnlStage {
            config,
            run: GatedRun {
                model,
                rep,
                opt,
                sched: LrSchedule::new(Schedule::Constant),
                teacher,
                phase: Phase::Main,
                phase_epochs: 0,
                batch: cfg.batch,
                seed: cfg.seed,
                projected: 0,
                device: device.clone(),
            },
            cfg,
            lowest: None,
        })
    }

    fn start_finetune(&mut self) -> Result<usize> {
        self.run
            .start_finetune(self.cfg.finetune_lr, self.cfg.finetune_epochs)
    }
}

impl Stage for SnlStage {
    gated_stage_methods!();
    fn planned_epochs(&self) -> usize {
        self.cfg.epochs + self.cfg.finetune_epochs
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
            if self.lowest.is_none_or(|l| e.count < l) {
                self.lowest = Some(e.count);
            } else if self.run.phase_epochs >= 5 {
                let l1 = self.run.rep.cfg.lambda * 1.1;
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
