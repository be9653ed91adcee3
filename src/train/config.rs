//! One typed configuration per stage. Defaults live in [`defaults`] and nowhere else: the CLI's
//! `default_value_t`s and the TOML reader's serde defaults both name these constants. A
//! configuration is stored whole in every checkpoint of its stage (as JSON) and read back
//! strictly, so a resumed run can check that it continues the same job.

use crate::autorep::dapa::RefitSchedule;
use crate::autorep::{Budget, Granularity, Method, Polynomial, ReplaceConfig};
use crate::nn::Lookahead;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Every default of every stage.
pub mod defaults {
    pub const SEED: u64 = 2;
    /// Replacement: the official AutoReP scripts (notes §3.3); SNL's selection takes the same
    /// (its paced schedule's; the official SNL loop runs until the budget, at most 2,000).
    pub const BATCH: usize = 128;
    pub const EPOCHS: usize = 200;
    /// The all-ReLU baseline: the official baseline script's 400 epochs at its default batch
    /// 256 (notes §3.2).
    pub const TRAIN_EPOCHS: usize = 400;
    pub const TRAIN_BATCH: usize = 256;
    /// A separate finetune: the one official AutoReP recipe that ran one (50 epochs, notes
    /// §3.4); the final scripts select the mask-training checkpoint instead.
    pub const FINETUNE_EPOCHS: usize = 50;
    /// Baseline: SGD with momentum and weight decay, cosine to [`LR_FLOOR`].
    pub const TRAIN_LR: f32 = 0.1;
    pub const MOMENTUM: f32 = 0.9;
    pub const WEIGHT_DECAY: f32 = 5e-4;
    /// The floor of every cosine schedule.
    pub const LR_FLOOR: f32 = 1e-5;
    /// AutoReP's budget penalty λ (CIFAR recipe, notes §3.3).
    pub const AUTOREP_LAMBDA: f32 = 140.0;
    /// SNL's initial L1 weight λ₁.
    pub const SNL_LAMBDA: f32 = 1e-5;
    pub const TAU: f32 = 0.003;
    pub const DEGREE: usize = 2;
    pub const S2: f32 = 0.1;
    pub const GRANULARITY: &str = "pixel";
    /// The official code's refits and shrinkage (notes §2.3): the exact ("clean") fit installs
    /// an x² term about 100× larger, which compounds through a residual stream whose gates are
    /// mostly off (a replaced resnet18_in overflowed by its third stage) unless c₂ is clipped.
    pub const DAPA: &str = "faithful";
    /// Adam rate of weights and coefficients, of gates, and of SNL; finetune's SGD rate.
    pub const ADAM_LR: f32 = 1e-3;
    pub const FINETUNE_LR: f32 = 1e-3;
    pub const SNL_FINETUNE_EPOCHS: usize = 100;
    pub const KD: bool = true;
    pub const KD_TEMPERATURE: f32 = 4.0;
    /// The weight of the distillation term: loss = CE + weight · T²·KL.
    pub const KD_WEIGHT: f32 = 1.0;
    /// Faithful DaPa (notes §2.3): the scale of x in a degree-1 gate, the variance floor, the
    /// refit period and limit (forward passes), and the divisors of w₀ and w₂.
    pub const S1: f32 = 1.0;
    pub const VAR_MIN: f64 = crate::autorep::dapa::FAITHFUL_VAR_MIN;
    pub const REFIT_PERIOD: u64 = 10;
    pub const REFIT_LIMIT: u64 = 508;
    pub const SHRINK: [f64; 2] = crate::autorep::dapa::FAITHFUL_SHRINK;
    pub const H_INIT: [f32; 2] = [0.0, 1.0];
    /// Lookahead's interpolation weight (the official Tiny-ImageNet script's 0.5).
    pub const LOOKAHEAD_ALPHA: f32 = 0.5;
}

mod serde_defaults {
    use super::defaults as d;
    use crate::autorep::{Granularity, Polynomial};
    pub fn seed() -> u64 {
        d::SEED
    }
    pub fn batch() -> usize {
        d::BATCH
    }
    pub fn epochs() -> usize {
        d::EPOCHS
    }
    pub fn train_batch() -> usize {
        d::TRAIN_BATCH
    }
    pub fn train_epochs() -> usize {
        d::TRAIN_EPOCHS
    }
    pub fn finetune_epochs() -> usize {
        d::FINETUNE_EPOCHS
    }
    pub fn train_lr() -> f32 {
        d::TRAIN_LR
    }
    pub fn momentum() -> f32 {
        d::MOMENTUM
    }
    pub fn weight_decay() -> f32 {
        d::WEIGHT_DECAY
    }
    pub fn autorep_lambda() -> f32 {
        d::AUTOREP_LAMBDA
    }
    pub fn snl_lambda() -> f32 {
        d::SNL_LAMBDA
    }
    pub fn tau() -> f32 {
        d::TAU
    }
    pub fn degree() -> usize {
        d::DEGREE
    }
    pub fn s2() -> f32 {
        d::S2
    }
    pub fn lookahead_alpha() -> f32 {
        d::LOOKAHEAD_ALPHA
    }
    pub fn granularity() -> Granularity {
        Granularity::from_name(d::GRANULARITY).expect("default granularity")
    }
    pub fn dapa() -> Polynomial {
        Polynomial::from_name(d::DAPA).expect("default DaPa mode")
    }
    pub fn adam_lr() -> f32 {
        d::ADAM_LR
    }
    pub fn finetune_lr() -> f32 {
        d::FINETUNE_LR
    }
    pub fn snl_finetune_epochs() -> usize {
        d::SNL_FINETUNE_EPOCHS
    }
    pub fn kd() -> bool {
        d::KD
    }
    pub fn snl_schedule() -> super::SnlSchedule {
        super::SnlSchedule::Paced
    }
    pub fn h_init() -> [f32; 2] {
        d::H_INIT
    }
    pub fn kd_temperature() -> f32 {
        d::KD_TEMPERATURE
    }
    pub fn kd_weight() -> f32 {
        d::KD_WEIGHT
    }
    pub fn s1() -> f32 {
        d::S1
    }
    pub fn var_min() -> f64 {
        d::VAR_MIN
    }
    pub fn refit_period() -> u64 {
        d::REFIT_PERIOD
    }
    pub fn refit_limit() -> u64 {
        d::REFIT_LIMIT
    }
    pub fn shrink() -> [f64; 2] {
        d::SHRINK
    }
}
use serde_defaults as sd;

/// The all-ReLU baseline: SGD with momentum and weight decay, cosine to 1e-5.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    #[serde(default = "sd::train_epochs")]
    pub epochs: usize,
    #[serde(default = "sd::train_batch")]
    pub batch: usize,
    #[serde(default = "sd::seed")]
    pub seed: u64,
    #[serde(default = "sd::train_lr")]
    pub lr: f32,
    #[serde(default = "sd::momentum")]
    pub momentum: f32,
    #[serde(default = "sd::weight_decay")]
    pub weight_decay: f32,
    /// Activation precision of the training step (f32 master weights either way).
    #[serde(default)]
    pub precision: Precision,
}

/// A pair from a list of exactly two: serde fills a `[T; 2]` from the first two of a longer
/// list and drops the rest without a word.
fn pair<'de, D, T>(d: D) -> std::result::Result<[T; 2], D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    let v: Vec<T> = Vec::deserialize(d)?;
    let n = v.len();
    <[T; 2]>::try_from(v)
        .map_err(|_| serde::de::Error::custom(format!("expected a list of two numbers, got {n}")))
}

/// The largest batch any command takes: far past what one device trains with, and small
/// enough that a batch's sizes cannot overflow (a larger value is a typo, refused in one line
/// rather than attempted until the allocator aborts).
pub const MAX_BATCH: usize = 65_536;

/// `batch` within `min..=MAX_BATCH`, else a one-line error naming `option` and why `min`.
pub fn check_batch(option: &str, batch: usize, min: usize, why_min: &str) -> Result<()> {
    if batch < min {
        return Err(Error::Invalid(format!(
            "{option} {batch}: must be at least {min}{why_min}"
        )));
    }
    if batch > MAX_BATCH {
        return Err(Error::Invalid(format!(
            "{option} {batch}: must be at most {MAX_BATCH}; choose a batch that fits the device, e.g. 128"
        )));
    }
    Ok(())
}

/// What a training step stores activations and their gradients in. `F16` keeps f32 master
/// weights, optimizer state, batch-norm statistics, AutoReP's gate math and the loss, with
/// dynamic loss scaling on the device; `Auto` is f16 on a hardware GPU with SHADER_F16 and
/// f32 elsewhere (the CPU reference, software adapters, GPUs without f16).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    F32,
    F16,
    Auto,
}

impl Precision {
    /// The activation type on `device`; f16 where the device cannot is a one-line error.
    pub fn resolve(self, device: &crate::Device) -> Result<crate::Dtype> {
        let gpu_f16 = match device {
            crate::Device::Gpu(g) => g.report().f16.then_some(g.report().is_software()),
            crate::Device::Cpu => None,
        };
        Ok(match (self, gpu_f16) {
            (Precision::F32, _) | (Precision::Auto, None | Some(true)) => crate::Dtype::F32,
            (Precision::F16, Some(_)) | (Precision::Auto, Some(false)) => {
                device.check_tensor_cores();
                crate::Dtype::F16
            }
            (Precision::F16, None) => {
                return Err(Error::Invalid(format!(
                    "--precision f16 needs a GPU with SHADER_F16, and {} has none; use --precision f32 or auto (or --device gpu where --device auto chose the CPU over a software adapter)",
                    device.describe()
                )))
            }
        })
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: defaults::TRAIN_EPOCHS,
            batch: defaults::TRAIN_BATCH,
            seed: defaults::SEED,
            lr: defaults::TRAIN_LR,
            momentum: defaults::MOMENTUM,
            weight_decay: defaults::WEIGHT_DECAY,
            precision: Precision::F32,
        }
    }
}

/// AutoReP (or, with `identity`, its ablation with P(x) = x) from an all-ReLU baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplaceStageConfig {
    /// The all-ReLU checkpoint to start from (and distil from); `run` fills in train's best.
    #[serde(default)]
    pub baseline: Option<PathBuf>,
    pub budget: Budget,
    #[serde(default = "sd::epochs")]
    pub epochs: usize,
    #[serde(default = "sd::batch")]
    pub batch: usize,
    #[serde(default = "sd::seed")]
    pub seed: u64,
    #[serde(default = "sd::autorep_lambda")]
    pub lambda: f32,
    #[serde(default = "sd::tau")]
    pub tau: f32,
    #[serde(default = "sd::degree")]
    pub degree: usize,
    #[serde(default = "sd::s2")]
    pub s2: f32,
    #[serde(default = "sd::granularity")]
    pub granularity: Granularity,
    #[serde(default = "sd::dapa")]
    pub dapa: Polynomial,
    #[serde(default)]
    pub identity: bool,
    #[serde(default = "sd::adam_lr")]
    pub weight_lr: f32,
    #[serde(default = "sd::adam_lr")]
    pub mask_lr: f32,
    #[serde(default = "sd::kd")]
    pub kd: bool,
    /// Distillation temperature T and weight: loss = CE + weight · T²·KL.
    #[serde(default = "sd::kd_temperature")]
    pub kd_temperature: f32,
    #[serde(default = "sd::kd_weight")]
    pub kd_weight: f32,
    /// Scale of x in a degree-1 gate (the official `scale_x1`).
    #[serde(default = "sd::s1")]
    pub s1: f32,
    /// Faithful DaPa: the floor of the running variance (the official `var_min`), the refit
    /// period and the forward pass from which refits stop, and the divisors of w₀ and w₂
    /// (the official 5 and 10).
    #[serde(default = "sd::var_min")]
    pub var_min: f64,
    #[serde(default = "sd::refit_period")]
    pub refit_period: u64,
    #[serde(default = "sd::refit_limit")]
    pub refit_limit: u64,
    #[serde(default = "sd::shrink", deserialize_with = "pair")]
    pub shrink: [f64; 2],
    /// Range of the initial gate indicators h.
    #[serde(default = "sd::h_init", deserialize_with = "pair")]
    pub h_init: [f32; 2],
    /// ReLUs above the budget an epoch may keep and still be selected (the official code
    /// accepts B + 2K); 0 keeps the budget exact.
    #[serde(default)]
    pub budget_slack: usize,
    /// Re-estimate the BatchNorm running statistics over this many training batches with
    /// the current mask before each evaluation (0: off). A moving mask shifts every later
    /// layer's input, and statistics averaged over past masks can misjudge the network.
    #[serde(default)]
    pub bn_recalib: usize,
    /// Clamp the x² coefficient to ±clip_x2 before every forward pass, in place (the
    /// official `--clip_x2`, 1 in the Tiny-ImageNet script): a guard against the growth of a
    /// large x² term through the residual stream. 0: off.
    #[serde(default)]
    pub clip_x2: f32,
    /// Wrap Adam in Lookahead with this period k (the official Tiny-ImageNet script's 6):
    /// every k steps the slow weights move `lookahead_alpha` of the way to the fast ones, which
    /// restart from them. 0: off.
    #[serde(default)]
    pub lookahead: u64,
    #[serde(default = "sd::lookahead_alpha")]
    pub lookahead_alpha: f32,
    /// As [`TrainConfig::precision`].
    #[serde(default)]
    pub precision: Precision,
}

impl ReplaceStageConfig {
    /// A slack that, with the budget, covers all `total` ReLUs of `model` accepts every mask,
    /// which makes the run meaningless: the reason, else None.
    pub fn slack_covers_all(&self, total: usize, model: &str) -> Option<String> {
        let covered = self.budget.relus.saturating_add(self.budget_slack);
        (self.budget_slack > 0 && covered >= total).then(|| {
            format!(
                "budget_slack {} (--budget-slack): with the budget of {} it accepts every mask of {model}'s {total} ReLUs; choose a slack below {}",
                self.budget_slack,
                self.budget.relus,
                total.saturating_sub(self.budget.relus)
            )
        })
    }

    /// Every default, at this budget.
    pub fn new(budget: usize) -> Self {
        ReplaceStageConfig {
            baseline: None,
            budget: Budget { relus: budget },
            epochs: defaults::EPOCHS,
            batch: defaults::BATCH,
            seed: defaults::SEED,
            lambda: defaults::AUTOREP_LAMBDA,
            tau: defaults::TAU,
            degree: defaults::DEGREE,
            s2: defaults::S2,
            granularity: sd::granularity(),
            dapa: sd::dapa(),
            identity: false,
            weight_lr: defaults::ADAM_LR,
            mask_lr: defaults::ADAM_LR,
            kd: defaults::KD,
            kd_temperature: defaults::KD_TEMPERATURE,
            kd_weight: defaults::KD_WEIGHT,
            s1: defaults::S1,
            var_min: defaults::VAR_MIN,
            refit_period: defaults::REFIT_PERIOD,
            refit_limit: defaults::REFIT_LIMIT,
            shrink: defaults::SHRINK,
            h_init: defaults::H_INIT,
            budget_slack: 0,
            bn_recalib: 0,
            clip_x2: 0.0,
            lookahead: 0,
            lookahead_alpha: defaults::LOOKAHEAD_ALPHA,
            precision: Precision::F32,
        }
    }

    /// Lookahead around the optimizer, when on.
    pub fn lookahead(&self) -> Option<Lookahead> {
        (self.lookahead > 0).then_some(Lookahead {
            k: self.lookahead,
            alpha: self.lookahead_alpha,
        })
    }

    /// The gates' configuration; `seed` seeds the initial h.
    pub fn gates(&self) -> ReplaceConfig {
        ReplaceConfig {
            method: if self.identity {
                Method::Identity
            } else {
                Method::AutoRep
            },
            lambda: self.lambda,
            tau: self.tau,
            degree: self.degree,
            s2: self.s2,
            granularity: self.granularity,
            polynomial: self.dapa,
            h_init: (self.h_init[0], self.h_init[1]),
            clip_x2: self.clip_x2,
            s1: self.s1,
            var_min: self.var_min,
            refit: RefitSchedule {
                period: self.refit_period,
                limit: self.refit_limit,
            },
            shrink: self.shrink,
            seed: self.seed,
            ..ReplaceConfig::autorep(self.budget.relus)
        }
    }
}

/// How SNL's L1 weight λ₁ grows during selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SnlSchedule {
    /// The official code: ×1.1 whenever an epoch (from the sixth) fails to lower the count.
    /// It reaches a budget only over hundreds of epochs.
    Official,
    /// Paced to the selection epochs: the count should fall geometrically from N to 70 % of
    /// the budget by 75 % of them; after an epoch above that path λ₁ grows by the square of
    /// the ratio of the count to the path's next point (×1.5 to ×30), so selection ends at
    /// the budget within the epochs given (once epochs × steps × alpha_lr ≳ 1). The count is
    /// checked ten times an epoch and selection stops as soon as it meets the budget.
    Paced,
}

impl std::str::FromStr for SnlSchedule {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "official" => Ok(SnlSchedule::Official),
            "paced" => Ok(SnlSchedule::Paced),
            other => Err(Error::Invalid(format!(
                "unknown SNL schedule '{other}': use paced or official"
            ))),
        }
    }
}

/// SNL: continuous α with a growing L1 weight until the budget, binarise, finetune.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnlConfig {
    #[serde(default)]
    pub baseline: Option<PathBuf>,
    pub budget: Budget,
    /// Selection epochs at most (selection stops at the budget).
    #[serde(default = "sd::epochs")]
    pub epochs: usize,
    #[serde(default = "sd::batch")]
    pub batch: usize,
    #[serde(default = "sd::seed")]
    pub seed: u64,
    /// Initial L1 weight λ₁.
    #[serde(default = "sd::snl_lambda")]
    pub lambda: f32,
    #[serde(default = "sd::adam_lr")]
    pub lr: f32,
    /// Adam rate of α (the official code: the same as `lr`). Adam moves α by about this per
    /// step, so selection needs epochs × steps × alpha_lr ≳ 1 to switch a gate off.
    #[serde(default = "sd::adam_lr")]
    pub alpha_lr: f32,
    #[serde(default = "sd::snl_schedule")]
    pub schedule: SnlSchedule,
    #[serde(default = "sd::snl_finetune_epochs")]
    pub finetune_epochs: usize,
    #[serde(default = "sd::finetune_lr")]
    pub finetune_lr: f32,
    #[serde(default = "sd::granularity")]
    pub granularity: Granularity,
    #[serde(default = "sd::kd")]
    pub kd: bool,
    /// As [`ReplaceStageConfig::kd_temperature`] and `kd_weight`.
    #[serde(default = "sd::kd_temperature")]
    pub kd_temperature: f32,
    #[serde(default = "sd::kd_weight")]
    pub kd_weight: f32,
    /// As [`ReplaceStageConfig::bn_recalib`].
    #[serde(default)]
    pub bn_recalib: usize,
    /// As [`TrainConfig::precision`].
    #[serde(default)]
    pub precision: Precision,
}

impl SnlConfig {
    pub fn new(budget: usize) -> Self {
        SnlConfig {
            baseline: None,
            budget: Budget { relus: budget },
            epochs: defaults::EPOCHS,
            batch: defaults::BATCH,
            seed: defaults::SEED,
            lambda: defaults::SNL_LAMBDA,
            lr: defaults::ADAM_LR,
            alpha_lr: defaults::ADAM_LR,
            schedule: SnlSchedule::Paced,
            finetune_epochs: defaults::SNL_FINETUNE_EPOCHS,
            finetune_lr: defaults::FINETUNE_LR,
            granularity: sd::granularity(),
            kd: defaults::KD,
            kd_temperature: defaults::KD_TEMPERATURE,
            kd_weight: defaults::KD_WEIGHT,
            bn_recalib: 0,
            precision: Precision::F32,
        }
    }

    pub fn gates(&self) -> ReplaceConfig {
        ReplaceConfig {
            lambda: self.lambda,
            granularity: self.granularity,
            seed: self.seed,
            ..ReplaceConfig::snl(self.budget.relus)
        }
    }
}

/// A gated checkpoint finetuned with its mask frozen: SGD on the weights, KD from `teacher`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinetuneConfig {
    /// The gated checkpoint to start from; `run` fills in replace's (else snl's) best.
    #[serde(default)]
    pub from: Option<PathBuf>,
    /// The all-ReLU checkpoint to distil from (the CLI's `--teacher`).
    #[serde(default)]
    pub teacher: Option<PathBuf>,
    /// `run` only: distil from the replace or snl stage's baseline when there is one (as the
    /// official finetune does).
    #[serde(default = "sd::kd")]
    pub kd: bool,
    /// As [`ReplaceStageConfig::kd_temperature`] and `kd_weight`.
    #[serde(default = "sd::kd_temperature")]
    pub kd_temperature: f32,
    #[serde(default = "sd::kd_weight")]
    pub kd_weight: f32,
    #[serde(default = "sd::finetune_epochs")]
    pub epochs: usize,
    #[serde(default = "sd::batch")]
    pub batch: usize,
    #[serde(default = "sd::seed")]
    pub seed: u64,
    #[serde(default = "sd::finetune_lr")]
    pub lr: f32,
    /// As [`ReplaceStageConfig::bn_recalib`].
    #[serde(default)]
    pub bn_recalib: usize,
    /// As [`TrainConfig::precision`].
    #[serde(default)]
    pub precision: Precision,
}

impl Default for FinetuneConfig {
    fn default() -> Self {
        FinetuneConfig {
            from: None,
            teacher: None,
            kd: defaults::KD,
            kd_temperature: defaults::KD_TEMPERATURE,
            kd_weight: defaults::KD_WEIGHT,
            epochs: defaults::FINETUNE_EPOCHS,
            batch: defaults::BATCH,
            seed: defaults::SEED,
            lr: defaults::FINETUNE_LR,
            bn_recalib: 0,
            precision: Precision::F32,
        }
    }
}

/// The configuration of any stage, as stored in its checkpoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum StageConfig {
    Train(TrainConfig),
    Replace(ReplaceStageConfig),
    Snl(SnlConfig),
    Finetune(FinetuneConfig),
}

/// A stage configuration's fields by key, as JSON values (the keys of its table in an
/// experiment file and, on the command line, its options' ids).
pub type Fields = serde_json::Map<String, serde_json::Value>;

impl StageConfig {
    /// Its fields by key (it is stored externally tagged: `{"replace": {"lambda": …}}`).
    pub fn fields(&self) -> Fields {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(o)) => o
                .into_iter()
                .next()
                .and_then(|(_, v)| v.as_object().cloned())
                .unwrap_or_default(),
            _ => Fields::new(),
        }
    }

    /// The configuration of this stage with `fields` (see [`StageConfig::fields`]).
    pub fn with_fields(&self, fields: Fields) -> Result<StageConfig> {
        let tagged = serde_json::Value::Object(
            [(self.name().to_string(), serde_json::Value::Object(fields))]
                .into_iter()
                .collect(),
        );
        serde_json::from_value(tagged)
            .map_err(|e| Error::Invalid(format!("[{}] configuration: {e}", self.name())))
    }

    /// The activation precision the stage trains in.
    pub fn precision(&self) -> Precision {
        match self {
            StageConfig::Train(c) => c.precision,
            StageConfig::Replace(c) => c.precision,
            StageConfig::Snl(c) => c.precision,
            StageConfig::Finetune(c) => c.precision,
        }
    }

    /// `train`, `replace`, `snl` or `finetune`: the stage's name in logs and run folders.
    pub fn name(&self) -> &'static str {
        match self {
            StageConfig::Train(_) => "train",
            StageConfig::Replace(_) => "replace",
            StageConfig::Snl(_) => "snl",
            StageConfig::Finetune(_) => "finetune",
        }
    }

    pub fn batch(&self) -> usize {
        match self {
            StageConfig::Train(c) => c.batch,
            StageConfig::Replace(c) => c.batch,
            StageConfig::Snl(c) => c.batch,
            StageConfig::Finetune(c) => c.batch,
        }
    }

    /// Every value in range, before any work starts: one line naming the option.
    pub fn validate(&self) -> Result<()> {
        let common = |epochs: usize, batch: usize| -> Result<()> {
            if epochs == 0 {
                return Err(Error::Invalid(
                    "epochs 0: a stage needs at least one epoch".into(),
                ));
            }
            check_batch(
                "batch",
                batch,
                2,
                " (batch norm needs more than one sample)",
            )
        };
        match self {
            StageConfig::Train(c) => {
                common(c.epochs, c.batch)?;
                positive("lr", c.lr)?;
                unit("momentum", c.momentum)?;
                non_negative("weight_decay", c.weight_decay)
            }
            StageConfig::Replace(c) => {
                common(c.epochs, c.batch)?;
                positive("weight_lr", c.weight_lr)?;
                positive("mask_lr", c.mask_lr)?;
                distillation(c.kd_temperature, c.kd_weight)?;
                // Checked even without Lookahead: a bad value is a mistake either way.
                if !(c.lookahead_alpha > 0.0 && c.lookahead_alpha <= 1.0) {
                    return Err(Error::Invalid(format!(
                        "lookahead_alpha must lie in (0, 1], got {}",
                        c.lookahead_alpha
                    )));
                }
                c.gates().validate()
            }
            StageConfig::Snl(c) => {
                common(c.epochs, c.batch)?;
                positive("lr", c.lr)?;
                positive("alpha_lr", c.alpha_lr)?;
                distillation(c.kd_temperature, c.kd_weight)?;
                if c.finetune_epochs > 0 {
                    positive("finetune_lr", c.finetune_lr)?;
                }
                c.gates().validate()
            }
            StageConfig::Finetune(c) => {
                common(c.epochs, c.batch)?;
                distillation(c.kd_temperature, c.kd_weight)?;
                positive("lr", c.lr)
            }
        }
    }
}

/// A learning rate: finite and above zero (a rate of 0 trains nothing, and a NaN trains NaN).
pub fn positive(what: &str, v: f32) -> Result<()> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "{what} {v} is invalid: it must be a finite number above 0"
        )))
    }
}

/// The distillation temperature (above 0) and weight (0 or more).
fn distillation(temperature: f32, weight: f32) -> Result<()> {
    positive("kd_temperature", temperature)?;
    non_negative("kd_weight", weight)
}

fn non_negative(what: &str, v: f32) -> Result<()> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "{what} {v} is invalid: it must be a finite number ≥ 0"
        )))
    }
}

fn unit(what: &str, v: f32) -> Result<()> {
    if v.is_finite() && (0.0..1.0).contains(&v) {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "{what} {v} is invalid: it must be in [0, 1)"
        )))
    }
}
