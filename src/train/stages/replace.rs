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
    epochs: usize,
    run: GatedRun,
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
        let opt = Optimizer::new(device, OptimizerKind::adam(0.0), groups)?;
        let sched = LrSchedule::new(Schedule::Cosine {
            total: cfg.epochs,
            base: cfg.weight_lr,
            floor: defaults::LR_FLOOR.min(cfg.weight_lr),
        });
        Ok(ReplaceStage {
            config,
            epochs: cfg.epochs,
            run: GatedRun {
                model,
                rep,
                opt,
                sched,
                teacher,
                phase: Phase::Main,
                phase_epochs: 0,
                batch: cfg.batch,
                seed: cfg.seed,
                projected: 0,
                device: device.clone(),
            },
        })
    }
}

impl Stage for ReplaceStage {
    gated_stage_methods!();
    fn planned_epochs(&self) -> usize {
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
    fn resume(&mut self, ck: &Checkpoint) -> Result<()> {
        self.run.restore(ck)
    }
}
