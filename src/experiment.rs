//! Whole experiments from a TOML file (`autorep run`) and budget sweeps (`autorep sweep`).
//!
//! An experiment file has an `[experiment]` table (name, out, model, dataset, data, seed,
//! batch, limit_train, limit_test) and optional stage tables run in this order, each in
//! `OUT/<stage>`: `[train]` (the all-ReLU baseline), `[replace]` (AutoReP or its identity
//! ablation), `[snl]` (the SNL baseline) and `[finetune]` (mask frozen). `replace` and `snl`
//! start from train's best checkpoint unless they name a `baseline`; `finetune` starts from
//! replace's best (else snl's) unless it names `from`. Every final best checkpoint is then
//! evaluated. Omitted keys take the CLI's defaults; unknown keys and wrong types are one-line
//! errors naming the file, the line and the key. Relative paths are relative to the working
//! directory, as on the command line.
//!
//! A sweep runs the replacement at several budgets from one baseline and writes
//! `sweep.csv`, `sweep.json` and `sweep.svg` (accuracy against ReLU count, log-x).

use crate::autorep::{parse_count, Granularity, Method, Polynomial, ReplaceConfig};
use crate::data::Dataset;
use crate::train::jobs::{self, Data, JobOptions};
use crate::train::StageConfig;
use crate::{Device, Error, Result};
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The stage tables, in the order they run.
pub const STAGES: [&str; 4] = ["train", "replace", "snl", "finetune"];

pub use crate::train::jobs::{default_data_dir, load_data};

/// A ReLU budget: a string such as `"12.9k"` or an integer, with the text kept for names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    pub relus: usize,
}

impl Budget {
    pub fn parse(s: &str) -> Result<Budget> {
        Ok(Budget {
            relus: parse_count(s)?,
        })
    }

    /// The budget as a short name: 5000 → `5k`, 12900 → `12.9k`, 1200000 → `1.2m`, 750 → `750`.
    pub fn label(&self) -> String {
        count_label(self.relus as f64)
    }
}

/// `v` with a k or m suffix and at most three significant decimals.
pub fn count_label(v: f64) -> String {
    let (x, suffix) = if v >= 1e6 {
        (v / 1e6, "m")
    } else if v >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let mut s = format!("{x:.3}");
    while s.contains('.') && (s.ends_with('0') || s.ends_with('.')) {
        s.pop();
    }
    format!("{s}{suffix}")
}

impl<'de> Deserialize<'de> for Budget {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Budget, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Budget;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a ReLU count such as \"12.9k\" or 12900")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> std::result::Result<Budget, E> {
                Budget::parse(s).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Budget, E> {
                if v < 0 {
                    return Err(E::custom(format!(
                        "a ReLU count must be non-negative, got {v}"
                    )));
                }
                Ok(Budget { relus: v as usize })
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<Budget, E> {
                Ok(Budget { relus: v as usize })
            }
        }
        d.deserialize_any(V)
    }
}

fn de_granularity<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Granularity, D::Error> {
    Granularity::from_name(&String::deserialize(d)?).map_err(de::Error::custom)
}

fn de_dapa<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Polynomial, D::Error> {
    Polynomial::from_name(&String::deserialize(d)?).map_err(de::Error::custom)
}

fn d_model() -> String {
    "resnet18_in".into()
}
fn d_dataset() -> String {
    "cifar10".into()
}
fn d_seed() -> u64 {
    2
}
fn d_batch() -> usize {
    128
}
fn d_epochs() -> usize {
    200
}
fn d_train_lr() -> f32 {
    0.1
}
fn d_momentum() -> f32 {
    0.9
}
fn d_weight_decay() -> f32 {
    5e-4
}
fn d_tau() -> f32 {
    0.003
}
fn d_degree() -> usize {
    2
}
fn d_s2() -> f32 {
    0.1
}
fn d_granularity() -> Granularity {
    Granularity::Pixel
}
fn d_dapa() -> Polynomial {
    Polynomial::Clean
}
fn d_adam_lr() -> f32 {
    1e-3
}
fn d_true() -> bool {
    true
}
fn d_snl_finetune_epochs() -> usize {
    100
}

/// A whole experiment, as read from its TOML file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub experiment: Experiment,
    pub train: Option<TrainStage>,
    pub replace: Option<ReplaceStage>,
    pub snl: Option<SnlStage>,
    pub finetune: Option<FinetuneStage>,
    /// Where the file came from (for messages), and its text (copied into the run folder).
    #[serde(skip)]
    pub origin: String,
    #[serde(skip)]
    pub source: String,
}

/// `[experiment]`: what every stage shares.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    pub name: String,
    /// Run folder; `runs/<name>` when omitted.
    pub out: Option<PathBuf>,
    #[serde(default = "d_model")]
    pub model: String,
    #[serde(default = "d_dataset")]
    pub dataset: String,
    /// Dataset folder; the CLI's default when omitted (see [`default_data_dir`]).
    pub data: Option<PathBuf>,
    #[serde(default = "d_seed")]
    pub seed: u64,
    /// Batch size of every stage that does not set its own.
    #[serde(default = "d_batch")]
    pub batch: usize,
    /// Use only the first N training images.
    pub limit_train: Option<usize>,
    /// Use only the first N test images.
    pub limit_test: Option<usize>,
}

/// `[train]`: the all-ReLU baseline (SGD, cosine to 1e-5), as `autorep train`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainStage {
    #[serde(default = "d_epochs")]
    pub epochs: usize,
    #[serde(default = "d_train_lr")]
    pub lr: f32,
    #[serde(default = "d_momentum")]
    pub momentum: f32,
    #[serde(default = "d_weight_decay")]
    pub weight_decay: f32,
    pub batch: Option<usize>,
}

/// `[replace]`: AutoReP (or, with `identity = true`, its ablation), as `autorep replace`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplaceStage {
    pub budget: Budget,
    /// λ; 140 when omitted.
    pub lambda: Option<f32>,
    #[serde(default = "d_tau")]
    pub tau: f32,
    #[serde(default = "d_degree")]
    pub degree: usize,
    #[serde(default = "d_s2")]
    pub s2: f32,
    #[serde(default = "d_granularity", deserialize_with = "de_granularity")]
    pub granularity: Granularity,
    #[serde(default = "d_dapa", deserialize_with = "de_dapa")]
    pub dapa: Polynomial,
    #[serde(default)]
    pub identity: bool,
    #[serde(default = "d_epochs")]
    pub epochs: usize,
    #[serde(default = "d_adam_lr")]
    pub weight_lr: f32,
    #[serde(default = "d_adam_lr")]
    pub mask_lr: f32,
    #[serde(default = "d_true")]
    pub kd: bool,
    pub batch: Option<usize>,
    /// All-ReLU checkpoint to start from; train's best when omitted.
    pub baseline: Option<PathBuf>,
    /// Range of the initial gate indicators h (default [0, 1]; not in the CLI).
    pub h_init: Option<[f32; 2]>,
}

/// `[snl]`: the SNL baseline, as `autorep snl`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnlStage {
    pub budget: Budget,
    /// Initial L1 weight λ₁; 1e-5 when omitted.
    pub lambda: Option<f32>,
    /// Selection epochs at most (selection stops at the budget).
    #[serde(default = "d_epochs")]
    pub epochs: usize,
    #[serde(default = "d_adam_lr")]
    pub lr: f32,
    #[serde(default = "d_snl_finetune_epochs")]
    pub finetune_epochs: usize,
    #[serde(default = "d_adam_lr")]
    pub finetune_lr: f32,
    #[serde(default = "d_granularity", deserialize_with = "de_granularity")]
    pub granularity: Granularity,
    #[serde(default = "d_true")]
    pub kd: bool,
    pub batch: Option<usize>,
    pub baseline: Option<PathBuf>,
}

/// `[finetune]`: mask frozen, SGD on the weights, as `autorep finetune`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinetuneStage {
    #[serde(default = "d_epochs")]
    pub epochs: usize,
    #[serde(default = "d_adam_lr")]
    pub lr: f32,
    pub batch: Option<usize>,
    /// Gated checkpoint to start from; replace's best (else snl's) when omitted.
    pub from: Option<PathBuf>,
    /// Distil from the baseline (the all-ReLU checkpoint of replace/snl).
    #[serde(default)]
    pub kd: bool,
}

/// A toml error as one line: the file, the line, the table and key, and serde's message.
fn toml_error(origin: &str, text: &str, e: &toml::de::Error) -> Error {
    let msg = e.message().trim().replace('\n', " ");
    let Some(span) = e.span() else {
        return Error::Invalid(format!("{origin}: {msg}"));
    };
    let start = span.start.min(text.len());
    let line_no = text[..start].matches('\n').count() + 1;
    let line = text.lines().nth(line_no - 1).unwrap_or("").trim();
    let header = |l: &str| -> Option<String> {
        let l = l.trim();
        if !l.starts_with('[') {
            return None;
        }
        let inner = l.trim_start_matches('[');
        Some(inner.split(']').next().unwrap_or("").trim().to_string())
    };
    let mut place = format!("{origin}, line {line_no}");
    if let Some(table) = header(line) {
        place.push_str(&format!(", table [{table}]"));
    } else {
        let table = text[..start].lines().rev().find_map(header);
        let key = line
            .split_once('=')
            .map(|(k, _)| k.trim().trim_matches('"').to_string())
            .filter(|k| !k.is_empty() && !k.starts_with('#'));
        match (table, key) {
            (Some(t), Some(k)) => place.push_str(&format!(", key `{t}.{k}`")),
            (None, Some(k)) => place.push_str(&format!(", key `{k}`")),
            (Some(t), None) => place.push_str(&format!(", table [{t}]")),
            (None, None) => {}
        }
    }
    Error::Invalid(format!("{place}: {msg}"))
}

fn invalid(origin: &str, msg: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("{origin}: {msg}"))
}

impl Config {
    /// Parse and validate an experiment; `origin` names the file in messages.
    pub fn from_toml(text: &str, origin: &str) -> Result<Config> {
        let mut cfg: Config = toml::from_str(text).map_err(|e| toml_error(origin, text, &e))?;
        cfg.origin = origin.to_string();
        cfg.source = text.to_string();
        cfg.validate()?;
        Ok(cfg)
    }

    /// Read, parse and validate an experiment file.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::Invalid(format!("experiment file {} not found", path.display()))
            } else {
                Error::Invalid(format!("cannot read {}: {e}", path.display()))
            }
        })?;
        Config::from_toml(&text, &path.display().to_string())
    }

    /// The run folder.
    pub fn out(&self) -> PathBuf {
        self.experiment
            .out
            .clone()
            .unwrap_or_else(|| PathBuf::from("runs").join(&self.experiment.name))
    }

    pub fn data_dir(&self) -> PathBuf {
        self.experiment
            .data
            .clone()
            .unwrap_or_else(|| default_data_dir(&self.experiment.dataset))
    }

    /// The stages this file runs, in order.
    pub fn stages(&self) -> Vec<&'static str> {
        let on = [
            self.train.is_some(),
            self.replace.is_some(),
            self.snl.is_some(),
            self.finetune.is_some(),
        ];
        STAGES
            .iter()
            .zip(on)
            .filter(|(_, on)| *on)
            .map(|(s, _)| *s)
            .collect()
    }

    fn stage_best(&self, stage: &str) -> PathBuf {
        self.out().join(stage).join("best.safetensors")
    }

    /// The all-ReLU checkpoint a stage starts from: its own `baseline`, else train's best.
    fn baseline_for(&self, own: Option<&PathBuf>) -> Option<PathBuf> {
        own.cloned()
            .or_else(|| self.train.as_ref().map(|_| self.stage_best("train")))
    }

    /// The gated checkpoint finetune starts from.
    fn finetune_from(&self) -> Option<PathBuf> {
        let f = self.finetune.as_ref()?;
        f.from.clone().or_else(|| {
            if self.replace.is_some() {
                Some(self.stage_best("replace"))
            } else if self.snl.is_some() {
                Some(self.stage_best("snl"))
            } else {
                None
            }
        })
    }

    /// The teacher of finetune (when `kd = true`): the baseline of replace or snl.
    fn finetune_teacher(&self) -> Option<PathBuf> {
        let own = self
            .replace
            .as_ref()
            .and_then(|r| r.baseline.as_ref())
            .or(self.snl.as_ref().and_then(|s| s.baseline.as_ref()));
        self.baseline_for(own)
    }

    /// Everything that can be checked without data: names, sizes, budgets against the
    /// model's ReLU count, and that every stage has a checkpoint to start from.
    pub fn validate(&self) -> Result<()> {
        let o = self.origin.as_str();
        let e = &self.experiment;
        if e.name.trim().is_empty() {
            return Err(invalid(o, "[experiment] name is empty"));
        }
        if !crate::models::MODEL_NAMES.contains(&e.model.as_str()) {
            return Err(invalid(
                o,
                format!(
                    "[experiment] model '{}': choose one of {}",
                    e.model,
                    crate::models::MODEL_NAMES.join(", ")
                ),
            ));
        }
        let ds = Dataset::from_name(&e.dataset).map_err(|err| invalid(o, err))?;
        let batch_ok = |b: usize, table: &str| {
            if b < 2 {
                Err(invalid(o, format!("[{table}] batch {b}: must be at least 2 (batch norm needs more than one sample)")))
            } else {
                Ok(())
            }
        };
        batch_ok(e.batch, "experiment")?;
        for (n, key) in [(e.limit_train, "limit_train"), (e.limit_test, "limit_test")] {
            if n == Some(0) {
                return Err(invalid(o, format!("[experiment] {key} must be at least 1")));
            }
        }
        if self.stages().is_empty() {
            return Err(invalid(
                o,
                "no stage to run: add a [train], [replace], [snl] or [finetune] table",
            ));
        }
        let positive = |v: f32, what: &str| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(invalid(o, format!("{what} must be positive, got {v}")))
            }
        };
        // The model's ReLU count, built once (on the CPU) when a budget needs it.
        let count = std::cell::OnceCell::new();
        let total = || -> Result<usize> {
            if let Some(t) = count.get() {
                return Ok(*t);
            }
            let t = crate::models::build(
                &e.model,
                &Device::Cpu,
                ds.channels(),
                ds.input_size(),
                ds.classes(),
                0,
            )?
            .relu_total();
            Ok(*count.get_or_init(|| t))
        };
        let check_budget = |b: &Budget, table: &str| -> Result<()> {
            let t = total()?;
            if b.relus > t {
                return Err(invalid(
                    o,
                    format!(
                        "[{table}] budget {} exceeds {}'s {t} ReLUs on {}",
                        b.relus,
                        e.model,
                        ds.name()
                    ),
                ));
            }
            Ok(())
        };
        let need_baseline = |own: Option<&PathBuf>, table: &str| {
            if self.baseline_for(own).is_none() {
                Err(invalid(o, format!("[{table}] needs an all-ReLU checkpoint: add a [train] table or set baseline = \"path/best.safetensors\"")))
            } else {
                Ok(())
            }
        };
        if let Some(t) = &self.train {
            batch_ok(t.batch.unwrap_or(e.batch), "train")?;
            positive(t.lr, "[train] lr")?;
        }
        if let Some(r) = &self.replace {
            batch_ok(r.batch.unwrap_or(e.batch), "replace")?;
            if !(1..=2).contains(&r.degree) {
                return Err(invalid(
                    o,
                    format!("[replace] degree {}: use 1 or 2", r.degree),
                ));
            }
            positive(r.weight_lr, "[replace] weight_lr")?;
            positive(r.mask_lr, "[replace] mask_lr")?;
            if let Some([a, b]) = r.h_init {
                if a.is_nan() || b.is_nan() || a > b {
                    return Err(invalid(
                        o,
                        format!(
                            "[replace] h_init [{a}, {b}]: the first must not exceed the second"
                        ),
                    ));
                }
            }
            check_budget(&r.budget, "replace")?;
            need_baseline(r.baseline.as_ref(), "replace")?;
        }
        if let Some(s) = &self.snl {
            batch_ok(s.batch.unwrap_or(e.batch), "snl")?;
            positive(s.lr, "[snl] lr")?;
            check_budget(&s.budget, "snl")?;
            need_baseline(s.baseline.as_ref(), "snl")?;
        }
        if let Some(f) = &self.finetune {
            batch_ok(f.batch.unwrap_or(e.batch), "finetune")?;
            positive(f.lr, "[finetune] lr")?;
            if self.finetune_from().is_none() {
                return Err(invalid(o, "[finetune] needs a gated checkpoint: add a [replace] or [snl] table or set from = \"path/best.safetensors\""));
            }
            if f.kd && self.finetune_teacher().is_none() {
                return Err(invalid(o, "[finetune] kd = true needs an all-ReLU teacher: add a [train] table or a baseline to [replace]"));
            }
        }
        Ok(())
    }

    /// What the experiment will do, one line per stage.
    pub fn plan(&self) -> String {
        let e = &self.experiment;
        let out = self.out();
        let mut s = format!(
            "experiment {}: {} on {} (data {}), seed {}, out {}\n",
            e.name,
            e.model,
            e.dataset,
            self.data_dir().display(),
            e.seed,
            out.display()
        );
        let show = |p: Option<PathBuf>| p.map_or("-".into(), |p| p.display().to_string());
        if let Some(t) = &self.train {
            let _ = writeln!(
                s,
                "  train:    {} epochs, batch {}, SGD lr {} momentum {} weight decay {}",
                t.epochs,
                t.batch.unwrap_or(e.batch),
                t.lr,
                t.momentum,
                t.weight_decay
            );
        }
        if let Some(r) = &self.replace {
            let _ = writeln!(
                s,
                "  replace:  {} at {} ReLUs, λ {}, τ {}, degree {} (s2 {}), {} epochs, batch {}, Adam {}/{}, KD {}, from {}",
                if r.identity { "identity" } else { "AutoReP" },
                r.budget.relus,
                r.lambda.unwrap_or(140.0),
                r.tau,
                r.degree,
                r.s2,
                r.epochs,
                r.batch.unwrap_or(e.batch),
                r.weight_lr,
                r.mask_lr,
                r.kd,
                show(self.baseline_for(r.baseline.as_ref()))
            );
        }
        if let Some(n) = &self.snl {
            let _ = writeln!(
                s,
                "  snl:      {} ReLUs, λ₁ {}, at most {} epochs (lr {}), then {} finetune epochs (lr {}), batch {}, from {}",
                n.budget.relus,
                n.lambda.unwrap_or(1e-5),
                n.epochs,
                n.lr,
                n.finetune_epochs,
                n.finetune_lr,
                n.batch.unwrap_or(e.batch),
                show(self.baseline_for(n.baseline.as_ref()))
            );
        }
        if let Some(f) = &self.finetune {
            let _ = writeln!(
                s,
                "  finetune: {} epochs, SGD lr {}, batch {}, from {}{}",
                f.epochs,
                f.lr,
                f.batch.unwrap_or(e.batch),
                show(self.finetune_from()),
                if f.kd {
                    format!(", KD from {}", show(self.finetune_teacher()))
                } else {
                    String::new()
                }
            );
        }
        s
    }
}

/// How `run` behaves beyond the file.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// No progress bars or per-epoch lines.
    pub quiet: bool,
    /// Continue every stage from its `last.safetensors`.
    pub resume: bool,
}

/// One evaluated final checkpoint.
#[derive(Debug, Clone)]
pub struct StageRow {
    pub stage: String,
    pub checkpoint: PathBuf,
    pub relus: u64,
    pub relu_total: usize,
    /// The stage's budget (gated stages).
    pub budget: Option<usize>,
    pub top1: f32,
    pub top5: f32,
}

/// What an experiment ends with.
#[derive(Debug, Clone)]
pub struct Summary {
    pub name: String,
    pub out: PathBuf,
    pub rows: Vec<StageRow>,
    pub seconds: f64,
}

impl Summary {
    /// One line per stage: ReLUs, kept %, budget, top-1, top-5, checkpoint.
    pub fn table(&self) -> String {
        let mut s = format!(
            "{:<10} {:>10} {:>8} {:>10} {:>8} {:>8}  checkpoint\n",
            "stage", "ReLUs", "kept", "budget", "top-1", "top-5"
        );
        for r in &self.rows {
            let _ = writeln!(
                s,
                "{:<10} {:>10} {:>7.2}% {:>10} {:>7.2}% {:>7.2}%  {}",
                r.stage,
                r.relus,
                100.0 * r.relus as f64 / r.relu_total.max(1) as f64,
                r.budget.map_or("-".into(), |b| b.to_string()),
                100.0 * r.top1,
                100.0 * r.top5,
                r.checkpoint.display()
            );
        }
        s
    }

    /// `stage,checkpoint,relus,relu_total,budget,top1,top5` (accuracies as fractions).
    pub fn csv(&self) -> String {
        let mut s = String::from("stage,checkpoint,relus,relu_total,budget,top1,top5\n");
        for r in &self.rows {
            let _ = writeln!(
                s,
                "{},{},{},{},{},{:.6},{:.6}",
                r.stage,
                csv_field(&r.checkpoint.display().to_string()),
                r.relus,
                r.relu_total,
                r.budget.map_or(String::new(), |b| b.to_string()),
                r.top1,
                r.top5
            );
        }
        s
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text)
        .map_err(|e| Error::Invalid(format!("cannot write {}: {e}", path.display())))
}

fn stage_config(
    epochs: usize,
    batch: usize,
    weight_lr: f32,
    gate_lr: f32,
    finetune_epochs: usize,
    finetune_lr: f32,
    seed: u64,
) -> StageConfig {
    StageConfig {
        epochs,
        batch,
        weight_lr,
        gate_lr,
        kd_temperature: 4.0,
        finetune_epochs,
        finetune_lr,
        seed,
    }
}

fn replace_cfg(r: &ReplaceStage, seed: u64) -> ReplaceConfig {
    let base = ReplaceConfig::autorep(r.budget.relus);
    ReplaceConfig {
        method: if r.identity {
            Method::Identity
        } else {
            Method::AutoRep
        },
        lambda: r.lambda.unwrap_or(140.0),
        tau: r.tau,
        degree: r.degree,
        s2: r.s2,
        granularity: r.granularity,
        polynomial: r.dapa,
        h_init: r.h_init.map_or(base.h_init, |[a, b]| (a, b)),
        seed,
        ..base
    }
}

fn snl_cfg(s: &SnlStage, seed: u64) -> ReplaceConfig {
    ReplaceConfig {
        lambda: s.lambda.unwrap_or(1e-5),
        granularity: s.granularity,
        seed,
        ..ReplaceConfig::snl(s.budget.relus)
    }
}

fn need_file(path: &Path, what: &str) -> Result<()> {
    if path.is_file() {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "{what} {} not found",
            path.display()
        )))
    }
}

/// Run every stage of `cfg` in order on `data` (see [`load_data`]), then evaluate each
/// stage's best checkpoint. Writes `OUT/config.toml` (the file as given) and
/// `OUT/summary.csv`.
pub fn run_with_data(
    device: &Device,
    cfg: &Config,
    data: &Data,
    opts: &RunOptions,
) -> Result<Summary> {
    cfg.validate()?;
    let start = std::time::Instant::now();
    let e = &cfg.experiment;
    let out = cfg.out();
    std::fs::create_dir_all(&out).map_err(|err| {
        Error::Invalid(format!(
            "cannot create output folder {}: {err}",
            out.display()
        ))
    })?;
    // Checkpoints named in the file must exist before any training starts.
    let named = [
        cfg.replace.as_ref().and_then(|r| r.baseline.clone()),
        cfg.snl.as_ref().and_then(|s| s.baseline.clone()),
    ];
    for p in named.iter().flatten() {
        need_file(p, "baseline checkpoint")?;
    }
    if let Some(p) = cfg.finetune.as_ref().and_then(|f| f.from.clone()) {
        need_file(&p, "[finetune] checkpoint")?;
    }
    if !cfg.source.is_empty() {
        write(&out.join("config.toml"), &cfg.source)?;
    }
    let say = |s: &str| {
        if !opts.quiet {
            println!("{s}");
        }
    };
    let job = |stage: &str, epochs: usize, batch: Option<usize>| JobOptions {
        model: e.model.clone(),
        epochs,
        batch: batch.unwrap_or(e.batch),
        seed: e.seed,
        out: out.join(stage),
        quiet: opts.quiet,
        resume: opts.resume,
        stop_after: None,
    };
    let mut finals: Vec<(&str, PathBuf, Option<usize>)> = Vec::new();
    if let Some(t) = &cfg.train {
        say(&format!("== [{}] train: {} epochs", e.name, t.epochs));
        let o = job("train", t.epochs, t.batch);
        jobs::train_baseline(device, &o, data, t.lr, t.momentum, t.weight_decay)?;
        finals.push(("train", cfg.stage_best("train"), None));
    }
    if let Some(r) = &cfg.replace {
        let base = cfg.baseline_for(r.baseline.as_ref()).expect("validated");
        say(&format!(
            "== [{}] replace: {} ReLUs, {} epochs, from {}",
            e.name,
            r.budget.relus,
            r.epochs,
            base.display()
        ));
        let o = job("replace", r.epochs, r.batch);
        let st = stage_config(r.epochs, o.batch, r.weight_lr, r.mask_lr, 0, 0.0, e.seed);
        jobs::replace(device, &o, data, &base, replace_cfg(r, e.seed), &st, r.kd)?;
        finals.push(("replace", cfg.stage_best("replace"), Some(r.budget.relus)));
    }
    if let Some(s) = &cfg.snl {
        let base = cfg.baseline_for(s.baseline.as_ref()).expect("validated");
        say(&format!(
            "== [{}] snl: {} ReLUs, at most {} epochs + {} finetune, from {}",
            e.name,
            s.budget.relus,
            s.epochs,
            s.finetune_epochs,
            base.display()
        ));
        let o = job("snl", s.epochs, s.batch);
        let st = stage_config(
            s.epochs,
            o.batch,
            s.lr,
            s.lr,
            s.finetune_epochs,
            s.finetune_lr,
            e.seed,
        );
        jobs::replace(device, &o, data, &base, snl_cfg(s, e.seed), &st, s.kd)?;
        finals.push(("snl", cfg.stage_best("snl"), Some(s.budget.relus)));
    }
    if let Some(f) = &cfg.finetune {
        let from = cfg.finetune_from().expect("validated");
        let teacher = if f.kd { cfg.finetune_teacher() } else { None };
        say(&format!(
            "== [{}] finetune: {} epochs from {}",
            e.name,
            f.epochs,
            from.display()
        ));
        let o = job("finetune", f.epochs, f.batch);
        let st = stage_config(f.epochs, o.batch, f.lr, f.lr, f.epochs, f.lr, e.seed);
        jobs::finetune(device, &o, data, &from, teacher.as_deref(), &st)?;
        let budget = crate::train::checkpoint::Checkpoint::load(&from)?
            .meta("rep.budget")
            .ok()
            .and_then(|b| b.parse().ok());
        finals.push(("finetune", cfg.stage_best("finetune"), budget));
    }
    let mut rows = Vec::new();
    for (stage, ck, budget) in finals {
        let r = jobs::eval(device, &ck, data)?;
        rows.push(StageRow {
            stage: stage.into(),
            checkpoint: ck,
            relus: r.relus,
            relu_total: r.relu_total,
            budget,
            top1: r.top1,
            top5: r.top5,
        });
    }
    let summary = Summary {
        name: e.name.clone(),
        out: out.clone(),
        rows,
        seconds: start.elapsed().as_secs_f64(),
    };
    write(&out.join("summary.csv"), &summary.csv())?;
    Ok(summary)
}

/// Load the experiment's data (its folder, limits) and run it: `autorep run`.
pub fn run(device: &Device, cfg: &Config, opts: &RunOptions) -> Result<Summary> {
    cfg.validate()?;
    let e = &cfg.experiment;
    let data = load_data(
        &e.dataset,
        &cfg.data_dir(),
        e.limit_train,
        e.limit_test,
        device,
    )?;
    if !opts.quiet {
        println!("{}", data.banner(device, Some(&e.model)));
    }
    run_with_data(device, cfg, &data, opts)
}

// ---------------------------------------------------------------------------------------
// Budget sweeps

/// A budget sweep: replacement (and optionally SNL) at each budget from one baseline.
#[derive(Debug, Clone)]
pub struct SweepConfig {
    pub baseline: PathBuf,
    pub budgets: Vec<Budget>,
    /// The replacement settings (its budget is replaced by each sweep budget; `identity`
    /// picks the ablation).
    pub replace: ReplaceStage,
    /// Also run SNL with these settings at each budget.
    pub snl: Option<SnlStage>,
    pub batch: usize,
    pub seed: u64,
    pub out: PathBuf,
    pub quiet: bool,
    pub resume: bool,
}

/// One point of a sweep (the baseline is the row with method `baseline`).
#[derive(Debug, Clone, PartialEq)]
pub struct SweepRow {
    pub method: String,
    pub budget: usize,
    pub relus: u64,
    pub relu_total: usize,
    pub top1: f32,
    pub top5: f32,
}

/// The sweep's run folder of one point: `OUT/<method>_<budget label>`.
pub fn sweep_dir(out: &Path, method: &str, budget: &Budget) -> PathBuf {
    out.join(format!("{method}_{}", budget.label()))
}

/// Run the sweep on `data`, evaluate the baseline and every best checkpoint, and write
/// `OUT/sweep.csv`, `OUT/sweep.json` and `OUT/sweep.svg`. Every budget is checked against
/// the model before anything trains.
pub fn sweep(device: &Device, data: &Data, cfg: &SweepConfig) -> Result<Vec<SweepRow>> {
    if cfg.budgets.is_empty() {
        return Err(Error::Invalid(
            "no budgets to sweep: pass e.g. --budgets 5k,10k,20k".into(),
        ));
    }
    need_file(&cfg.baseline, "baseline checkpoint")?;
    std::fs::create_dir_all(&cfg.out).map_err(|err| {
        Error::Invalid(format!(
            "cannot create output folder {}: {err}",
            cfg.out.display()
        ))
    })?;
    let base = jobs::eval(device, &cfg.baseline, data)?;
    let total = base.relu_total;
    for b in &cfg.budgets {
        if b.relus > total {
            return Err(Error::Invalid(format!(
                "budget {} exceeds the baseline's {total} ReLUs",
                b.relus
            )));
        }
    }
    let say = |s: &str| {
        if !cfg.quiet {
            println!("{s}");
        }
    };
    let mut rows = vec![SweepRow {
        method: "baseline".into(),
        budget: total,
        relus: base.relus,
        relu_total: total,
        top1: base.top1,
        top5: base.top5,
    }];
    let method = if cfg.replace.identity {
        "identity"
    } else {
        "autorep"
    };
    for b in &cfg.budgets {
        let mut runs: Vec<(&str, ReplaceConfig, StageConfig, bool, usize)> = vec![];
        let r = ReplaceStage {
            budget: b.clone(),
            ..cfg.replace.clone()
        };
        let rb = r.batch.unwrap_or(cfg.batch);
        runs.push((
            method,
            replace_cfg(&r, cfg.seed),
            stage_config(r.epochs, rb, r.weight_lr, r.mask_lr, 0, 0.0, cfg.seed),
            r.kd,
            r.epochs,
        ));
        if let Some(s) = &cfg.snl {
            let s = SnlStage {
                budget: b.clone(),
                ..s.clone()
            };
            let sb = s.batch.unwrap_or(cfg.batch);
            runs.push((
                "snl",
                snl_cfg(&s, cfg.seed),
                stage_config(
                    s.epochs,
                    sb,
                    s.lr,
                    s.lr,
                    s.finetune_epochs,
                    s.finetune_lr,
                    cfg.seed,
                ),
                s.kd,
                s.epochs,
            ));
        }
        for (m, rc, st, kd, epochs) in runs {
            let dir = sweep_dir(&cfg.out, m, b);
            say(&format!(
                "== sweep {m} at {} ReLUs ({:.2}% of {total}) in {}",
                b.relus,
                100.0 * b.relus as f64 / total.max(1) as f64,
                dir.display()
            ));
            let o = JobOptions {
                model: String::new(),
                epochs,
                batch: st.batch,
                seed: cfg.seed,
                out: dir.clone(),
                quiet: cfg.quiet,
                resume: cfg.resume,
                stop_after: None,
            };
            jobs::replace(device, &o, data, &cfg.baseline, rc, &st, kd)?;
            let e = jobs::eval(device, &dir.join("best.safetensors"), data)?;
            rows.push(SweepRow {
                method: m.into(),
                budget: b.relus,
                relus: e.relus,
                relu_total: e.relu_total,
                top1: e.top1,
                top5: e.top5,
            });
        }
    }
    write_sweep(
        &cfg.out,
        &rows,
        &format!("{} on {}", cfg.baseline.display(), data.name),
    )?;
    Ok(rows)
}

/// Write `sweep.csv`, `sweep.json` and `sweep.svg` into `out`.
pub fn write_sweep(out: &Path, rows: &[SweepRow], title: &str) -> Result<()> {
    write(&out.join("sweep.csv"), &sweep_csv(rows))?;
    write(&out.join("sweep.json"), &sweep_json(rows))?;
    write(&out.join("sweep.svg"), &sweep_svg(rows, title))
}

/// The sweep as a table, one line per point.
pub fn sweep_table(rows: &[SweepRow]) -> String {
    let mut s = format!(
        "{:<10} {:>10} {:>10} {:>8} {:>8} {:>8}\n",
        "method", "budget", "ReLUs", "kept", "top-1", "top-5"
    );
    for r in rows {
        let _ = writeln!(
            s,
            "{:<10} {:>10} {:>10} {:>7.2}% {:>7.2}% {:>7.2}%",
            r.method,
            r.budget,
            r.relus,
            100.0 * r.relus as f64 / r.relu_total.max(1) as f64,
            100.0 * r.top1,
            100.0 * r.top5
        );
    }
    s
}

/// `method,budget,relus,relu_total,top1,top5`, accuracies as fractions.
pub fn sweep_csv(rows: &[SweepRow]) -> String {
    let mut s = String::from("method,budget,relus,relu_total,top1,top5\n");
    for r in rows {
        let _ = writeln!(
            s,
            "{},{},{},{},{:.6},{:.6}",
            csv_field(&r.method),
            r.budget,
            r.relus,
            r.relu_total,
            r.top1,
            r.top5
        );
    }
    s
}

fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// An array of `{method, budget, relus, relu_total, top1, top5}` objects.
pub fn sweep_json(rows: &[SweepRow]) -> String {
    let items: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "  {{\"method\":{},\"budget\":{},\"relus\":{},\"relu_total\":{},\"top1\":{:.6},\"top5\":{:.6}}}",
                json_str(&r.method),
                r.budget,
                r.relus,
                r.relu_total,
                r.top1,
                r.top5
            )
        })
        .collect();
    format!("[\n{}\n]\n", items.join(",\n"))
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A step of 1, 2 or 5 × 10^k giving about `n` intervals over `span`.
fn nice_step(span: f64, n: f64) -> f64 {
    let raw = (span / n).max(1e-9);
    let p = 10f64.powf(raw.log10().floor());
    let f = raw / p;
    p * if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    }
}

/// 56448 → `56,448`.
fn thousands(v: u64) -> String {
    let d = v.to_string();
    let mut out = String::new();
    for (i, c) in d.chars().enumerate() {
        if i > 0 && (d.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

const PALETTE: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
];

/// Top-1 accuracy against ReLU count (log-x): one polyline with points per method, the
/// baseline (method `baseline`) as a dashed horizontal line, axes with ticks and labels, and a
/// legend. Hand-written SVG.
pub fn sweep_svg(rows: &[SweepRow], title: &str) -> String {
    let (w, h) = (880.0, 480.0);
    let (x0, x1, y0, y1) = (80.0, 560.0, 56.0, 410.0);
    let mut methods: Vec<&str> = Vec::new();
    for r in rows {
        if r.method != "baseline" && !methods.contains(&r.method.as_str()) {
            methods.push(&r.method);
        }
    }
    let points: Vec<&SweepRow> = rows.iter().filter(|r| r.method != "baseline").collect();
    let baseline = rows.iter().find(|r| r.method == "baseline");
    let xs: Vec<f64> = if points.is_empty() {
        rows.iter().map(|r| r.relus.max(1) as f64).collect()
    } else {
        points.iter().map(|r| r.relus.max(1) as f64).collect()
    };
    let lmin = xs
        .iter()
        .cloned()
        .fold(f64::INFINITY, f64::min)
        .max(1.0)
        .log10();
    let lmax = xs.iter().cloned().fold(0.0, f64::max).max(1.0).log10();
    let (lmin, lmax) = if xs.is_empty() {
        (0.0, 1.0)
    } else {
        (lmin, lmax)
    };
    let pad = ((lmax - lmin) * 0.08).max(0.15);
    let (lo, hi) = (lmin - pad, lmax + pad);
    let ys: Vec<f64> = rows.iter().map(|r| 100.0 * r.top1 as f64).collect();
    let ymin = ys.iter().cloned().fold(f64::INFINITY, f64::min);
    let ymax = ys.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let (ymin, ymax) = if ys.is_empty() {
        (0.0, 100.0)
    } else if ymax - ymin < 1.0 {
        (ymin - 1.0, ymax + 1.0)
    } else {
        (ymin, ymax)
    };
    let step = nice_step(ymax - ymin, 5.0);
    let ylo = ((ymin / step).floor() * step).max(0.0);
    let mut yhi = ((ymax / step).ceil() * step).min(100.0);
    if yhi <= ylo {
        yhi = ylo + step;
    }
    let px = |v: f64| x0 + (v.max(1.0).log10() - lo) / (hi - lo) * (x1 - x0);
    let py = |v: f64| y1 - (v - ylo) / (yhi - ylo) * (y1 - y0);
    let mut s = String::new();
    let _ = writeln!(s, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        s,
        r#"<rect x="0" y="0" width="{w}" height="{h}" fill="white"/>"#
    );
    let _ = writeln!(
        s,
        r#"<text x="{x0}" y="22" font-size="15">Top-1 accuracy vs ReLU count</text>"#
    );
    let subtitle: String = if title.chars().count() > 110 {
        let tail: String = title.chars().rev().take(109).collect();
        format!("…{}", tail.chars().rev().collect::<String>())
    } else {
        title.to_string()
    };
    let _ = writeln!(
        s,
        r##"<text x="{x0}" y="40" font-size="11" fill="#555">{}</text>"##,
        xml(&subtitle)
    );
    // Grid and ticks: x at 1, 2, 5 × 10^k inside the range; y at the nice step.
    let _ = writeln!(s, r##"<g class="x-axis" stroke="#888">"##);
    let mut k = lo.floor() as i32;
    while (k as f64) <= hi.ceil() {
        for m in [1.0, 2.0, 5.0] {
            let v = m * 10f64.powi(k);
            let l = v.log10();
            if l < lo || l > hi {
                continue;
            }
            let x = px(v);
            let major = m == 1.0;
            let _ = writeln!(
                s,
                r##"<line x1="{x:.1}" y1="{y0}" x2="{x:.1}" y2="{y1}" stroke="{}" stroke-width="1"/>"##,
                if major { "#ccc" } else { "#eee" }
            );
            let _ = writeln!(
                s,
                r#"<line x1="{x:.1}" y1="{y1}" x2="{x:.1}" y2="{}" stroke-width="1"/>"#,
                y1 + 5.0
            );
            let _ = writeln!(
                s,
                r#"<text x="{x:.1}" y="{}" text-anchor="middle" stroke="none" fill="black">{}</text>"#,
                y1 + 19.0,
                count_label(v)
            );
        }
        k += 1;
    }
    let _ = writeln!(s, "</g>");
    let _ = writeln!(s, r##"<g class="y-axis" stroke="#888">"##);
    let mut v = ylo;
    while v <= yhi + step * 1e-6 {
        let y = py(v);
        let _ = writeln!(
            s,
            r##"<line x1="{x0}" y1="{y:.1}" x2="{x1}" y2="{y:.1}" stroke="#eee" stroke-width="1"/>"##
        );
        let _ = writeln!(
            s,
            r#"<line x1="{}" y1="{y:.1}" x2="{x0}" y2="{y:.1}" stroke-width="1"/>"#,
            x0 - 5.0
        );
        let label = if step >= 1.0 {
            format!("{v:.0}")
        } else {
            format!("{v:.1}")
        };
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{:.1}" text-anchor="end" stroke="none" fill="black">{label}</text>"#,
            x0 - 8.0,
            y + 4.0
        );
        v += step;
    }
    let _ = writeln!(s, "</g>");
    let _ = writeln!(
        s,
        r#"<rect x="{x0}" y="{y0}" width="{}" height="{}" fill="none" stroke="black"/>"#,
        x1 - x0,
        y1 - y0
    );
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">ReLUs kept (log scale)</text>"#,
        (x0 + x1) / 2.0,
        y1 + 42.0
    );
    let _ = writeln!(
        s,
        r#"<text x="22" y="{}" text-anchor="middle" transform="rotate(-90 22 {})">top-1 accuracy (%)</text>"#,
        (y0 + y1) / 2.0,
        (y0 + y1) / 2.0
    );
    let mut legend: Vec<(String, String, bool)> = Vec::new();
    if let Some(b) = baseline {
        let y = py(100.0 * b.top1 as f64);
        let _ = writeln!(
            s,
            r##"<line class="baseline" x1="{x0}" y1="{y:.1}" x2="{x1}" y2="{y:.1}" stroke="#555" stroke-width="1.5" stroke-dasharray="6 4"/>"##
        );
        legend.push((
            format!(
                "all-ReLU baseline ({:.2}%, {} ReLUs)",
                100.0 * b.top1,
                thousands(b.relus)
            ),
            "#555".into(),
            true,
        ));
    }
    for (i, m) in methods.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let mut pts: Vec<&&SweepRow> = points.iter().filter(|r| r.method == *m).collect();
        pts.sort_by_key(|r| r.relus);
        let coords: Vec<String> = pts
            .iter()
            .map(|r| {
                format!(
                    "{:.1},{:.1}",
                    px(r.relus.max(1) as f64),
                    py(100.0 * r.top1 as f64)
                )
            })
            .collect();
        let _ = writeln!(s, r#"<g class="series" data-method="{}">"#, xml(m));
        let _ = writeln!(
            s,
            r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"/>"#,
            coords.join(" ")
        );
        for r in &pts {
            let _ = writeln!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="4" fill="{color}"><title>{}</title></circle>"#,
                px(r.relus.max(1) as f64),
                py(100.0 * r.top1 as f64),
                xml(&format!(
                    "{m}: {} ReLUs (budget {}), top-1 {:.2}%, top-5 {:.2}%",
                    r.relus,
                    r.budget,
                    100.0 * r.top1,
                    100.0 * r.top5
                ))
            );
        }
        let _ = writeln!(s, "</g>");
        legend.push((m.to_string(), color.to_string(), false));
    }
    let _ = writeln!(s, r#"<g class="legend">"#);
    for (i, (label, color, dashed)) in legend.iter().enumerate() {
        let y = y0 + 12.0 + 22.0 * i as f64;
        let lx = x1 + 16.0;
        let _ = writeln!(
            s,
            r#"<line x1="{lx}" y1="{y}" x2="{}" y2="{y}" stroke="{color}" stroke-width="2"{}/>"#,
            lx + 26.0,
            if *dashed {
                r#" stroke-dasharray="6 4""#
            } else {
                ""
            }
        );
        if !dashed {
            let _ = writeln!(
                s,
                r#"<circle cx="{}" cy="{y}" r="4" fill="{color}"/>"#,
                lx + 13.0
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}">{}</text>"#,
            lx + 32.0,
            y + 4.0,
            xml(label)
        );
    }
    let _ = writeln!(s, "</g>");
    let _ = writeln!(s, "</svg>");
    s
}
