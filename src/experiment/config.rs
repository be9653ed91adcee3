//! The experiment file: an `[experiment]` table and the stage tables, parsed into the stages'
//! own typed configurations (so a key means the same in a file and on the command line),
//! checked before anything trains, and shown as a plan.

use crate::data::Dataset;
use crate::train::checkpoint::StartFrom;
use crate::train::config::{
    FinetuneConfig, ReplaceStageConfig, SnlConfig, StageConfig, TrainConfig,
};
use crate::train::default_data_dir;
use crate::train::report::epochs;
use crate::{Device, Error, Result};
use serde::Deserialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The stage tables, in the order they run.
pub const STAGES: [&str; 4] = ["train", "replace", "snl", "finetune"];

/// A whole experiment, as read from its TOML file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub experiment: Experiment,
    pub train: Option<TrainConfig>,
    pub replace: Option<ReplaceStageConfig>,
    pub snl: Option<SnlConfig>,
    pub finetune: Option<FinetuneConfig>,
    /// Where the file came from (for messages), and its text (copied into the run folder).
    #[serde(skip)]
    pub origin: String,
    #[serde(skip)]
    pub source: String,
    /// Per stage table, the keys the file gives (its own, `[experiment] batch` and `seed`,
    /// and the checkpoints it chains): the others are defaults, which a resumed run replaces
    /// by its own.
    #[serde(skip)]
    pub given: std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
}

fn d_model() -> String {
    "resnet18_in".into()
}
fn d_dataset() -> String {
    "cifar10".into()
}
fn d_seed() -> u64 {
    crate::train::config::defaults::SEED
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
    /// Seed of every stage that does not set its own.
    #[serde(default = "d_seed")]
    pub seed: u64,
    /// Batch size of every stage that does not set its own; when omitted, each stage keeps
    /// its own default (train 256, the others 128, as the official scripts).
    pub batch: Option<usize>,
    /// Use only the first N training images.
    pub limit_train: Option<usize>,
    /// Use only the first N test images.
    pub limit_test: Option<usize>,
    /// ImageNet only: the side of the crops the network sees (default 224).
    pub image_size: Option<usize>,
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
        // A stage without its own batch or seed takes the experiment's.
        let raw: toml::Table = toml::from_str(text).map_err(|e| toml_error(origin, text, &e))?;
        let own = |table: &str, key: &str| {
            raw.get(table)
                .and_then(|t| t.as_table())
                .is_some_and(|t| t.contains_key(key))
        };
        let (batch, seed) = (cfg.experiment.batch, cfg.experiment.seed);
        macro_rules! inherit {
            ($field:ident, $name:literal) => {
                if let Some(c) = cfg.$field.as_mut() {
                    if let (false, Some(b)) = (own($name, "batch"), batch) {
                        c.batch = b;
                    }
                    if !own($name, "seed") {
                        c.seed = seed;
                    }
                }
            };
        }
        inherit!(train, "train");
        inherit!(replace, "replace");
        inherit!(snl, "snl");
        inherit!(finetune, "finetune");
        for name in STAGES {
            let table = raw.get(name).and_then(|t| t.as_table());
            let mut given: std::collections::BTreeSet<String> =
                table.into_iter().flat_map(|t| t.keys().cloned()).collect();
            given.extend(
                ["batch", "seed"]
                    .into_iter()
                    .filter(|k| own("experiment", k))
                    .map(String::from),
            );
            // The checkpoints a stage starts from are the file's to name (a moved run folder
            // must not resume from the old place).
            given.extend(["baseline", "from", "teacher"].map(String::from));
            cfg.given.insert(name.to_string(), given);
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// Read, parse and validate an experiment file.
    pub fn load(path: &Path) -> Result<Config> {
        let text = crate::files::read_to_string(path).map_err(|e| {
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

    /// For a resumed experiment: each stage whose folder holds a run continues with that
    /// run's value of every key the file leaves to the defaults, which may have changed since
    /// it started. Returns the adopted keys by stage.
    pub fn adopt_resumed_options(&mut self) -> Vec<(String, Vec<String>)> {
        let mut adopted = Vec::new();
        macro_rules! adopt {
            ($field:ident, $variant:ident, $name:literal) => {
                if let Some(c) = self.$field.clone() {
                    // A configuration not read from a file is taken as it is.
                    let given = self.given.get($name);
                    let given = |k: &str| given.is_none_or(|g| g.contains(k));
                    let mut stage = StageConfig::$variant(c);
                    let keys = crate::train::run_dir::resumed_meta(&self.stage_dir($name), $name)
                        .map(|m| {
                            crate::train::run_dir::adopt_resumed_options(
                                &mut stage, &m.config, &given,
                            )
                        })
                        .unwrap_or_default();
                    if let StageConfig::$variant(n) = stage {
                        self.$field = Some(n);
                    }
                    if !keys.is_empty() {
                        adopted.push(($name.to_string(), keys));
                    }
                }
            };
        }
        adopt!(train, Train, "train");
        adopt!(replace, Replace, "replace");
        adopt!(snl, Snl, "snl");
        adopt!(finetune, Finetune, "finetune");
        adopted
    }

    /// Checkpoints named in the file (not written by its own stages) must exist and suit their
    /// stage (dataset; all-ReLU or gated; not projected) before any training starts;
    /// `from = "best"` or `"last"` names the replacement's own.
    pub fn check_checkpoints(&self) -> Result<()> {
        let from = self
            .finetune
            .as_ref()
            .and_then(|f| f.from.clone())
            .filter(|p| !["best", "last"].contains(&p.to_str().unwrap_or_default()));
        let named = [
            (
                "[replace] baseline",
                self.replace.as_ref().and_then(|r| r.baseline.clone()),
            ),
            (
                "[snl] baseline",
                self.snl.as_ref().and_then(|s| s.baseline.clone()),
            ),
            ("[finetune] from", from),
            (
                "[finetune] teacher",
                self.finetune.as_ref().and_then(|f| f.teacher.clone()),
            ),
        ];
        for (key, p) in named.iter().filter_map(|(k, p)| Some((k, p.as_ref()?))) {
            if let Some(why) = crate::files::not_a_file(p) {
                return Err(Error::Invalid(format!(
                    "{}: {key} {} {why}{}",
                    self.origin,
                    p.display(),
                    relative_hint(p)
                )));
            }
            // A checkpoint of this experiment's own stages is the run's to choose (it takes a
            // stage's best for a projected last, as for `from = "last"`).
            if p.starts_with(self.out()) {
                continue;
            }
            self.check_header(key, p)?;
        }
        Ok(())
    }

    /// What the stage refuses when it starts, from the checkpoint's header alone, so that a
    /// dry run (and the run, before its first stage) finds it instead of the stage, hours in.
    fn check_header(&self, key: &str, p: &Path) -> Result<()> {
        let bad =
            |why: String| Error::Invalid(format!("{}: {key} {}: {why}", self.origin, p.display()));
        let m =
            crate::train::checkpoint::Checkpoint::read_meta(p).map_err(|e| bad(e.to_string()))?;
        let e = &self.experiment;
        let same = |a: &str, b: &str| match (Dataset::from_name(a), Dataset::from_name(b)) {
            (Ok(x), Ok(y)) => x == y,
            _ => a == b,
        };
        if !same(&m.dataset, &e.dataset) {
            return Err(bad(format!(
                "a {} checkpoint, but the experiment trains on {}: name a checkpoint of {}",
                m.dataset, e.dataset, e.dataset
            )));
        }
        if m.model != e.model {
            return Err(bad(format!(
                "a {} checkpoint, but the experiment's model is {}: name a {} checkpoint or set model",
                m.model, e.model, e.model
            )));
        }
        let from = match key {
            "[finetune] from" => StartFrom::Gated,
            _ => StartFrom::AllRelu,
        };
        m.unfit_to_start(from).map_or(Ok(()), |why| Err(bad(why)))
    }

    /// The data folder must exist (checked before the plan is trusted).
    pub fn check_data(&self) -> Result<()> {
        let dir = self.data_dir();
        if dir.is_dir() {
            return Ok(());
        }
        Err(Error::Invalid(format!(
            "{}: data folder {} not found{}: set `data` in [experiment] to the {} folder",
            self.origin,
            dir.display(),
            relative_hint(&dir),
            self.experiment.dataset
        )))
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

    pub fn stage_dir(&self, stage: &str) -> PathBuf {
        self.out().join(stage)
    }

    fn stage_best(&self, stage: &str) -> PathBuf {
        self.stage_dir(stage).join(crate::train::run_dir::BEST)
    }

    /// The all-ReLU checkpoint a stage starts from: its own `baseline`, else train's best.
    fn baseline_for(&self, own: Option<&PathBuf>) -> Option<PathBuf> {
        own.cloned()
            .or_else(|| self.train.as_ref().map(|_| self.stage_best("train")))
    }

    /// The gated checkpoint finetune starts from.
    ///
    /// As the official code, finetune continues from the replacement's last state by
    /// default; `from = "best"` takes its best checkpoint, any other value is a path.
    fn finetune_from(&self) -> Option<PathBuf> {
        let f = self.finetune.as_ref()?;
        let which = match f.from.as_deref().and_then(|p| p.to_str()) {
            None | Some("last") => crate::train::run_dir::LAST,
            Some("best") => crate::train::run_dir::BEST,
            Some(_) => return f.from.clone(),
        };
        ["replace", "snl"]
            .into_iter()
            .find(|s| self.stages().contains(s))
            .map(|s| self.stage_dir(s).join(which))
    }

    /// The teacher of finetune: its own, else (with `kd`, the default) the baseline of replace
    /// or snl, when there is one.
    fn finetune_teacher(&self) -> Option<PathBuf> {
        let f = self.finetune.as_ref()?;
        if f.teacher.is_some() {
            return f.teacher.clone();
        }
        if !f.kd {
            return None;
        }
        let own = self
            .replace
            .as_ref()
            .and_then(|r| r.baseline.as_ref())
            .or(self.snl.as_ref().and_then(|s| s.baseline.as_ref()));
        self.baseline_for(own)
    }

    /// The stages with every checkpoint they start from filled in, in order.
    pub fn resolved(&self) -> Vec<StageConfig> {
        let mut v = Vec::new();
        if let Some(t) = &self.train {
            v.push(StageConfig::Train(t.clone()));
        }
        if let Some(r) = &self.replace {
            v.push(StageConfig::Replace(ReplaceStageConfig {
                baseline: self.baseline_for(r.baseline.as_ref()),
                ..r.clone()
            }));
        }
        if let Some(s) = &self.snl {
            v.push(StageConfig::Snl(SnlConfig {
                baseline: self.baseline_for(s.baseline.as_ref()),
                ..s.clone()
            }));
        }
        if let Some(f) = &self.finetune {
            v.push(StageConfig::Finetune(FinetuneConfig {
                from: self.finetune_from(),
                teacher: self.finetune_teacher(),
                ..f.clone()
            }));
        }
        v
    }

    /// Everything that can be checked without data: names, sizes, every number in range,
    /// budgets against the model's ReLU count, and that every stage has a checkpoint to
    /// start from.
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
        if let Some(b @ 0..=1) = e.batch {
            return Err(invalid(o, format!("[experiment] batch {b}: must be at least 2 (batch norm needs more than one sample)")));
        }
        if let Some(side) = e.image_size {
            if ds != Dataset::ImageNet && side != ds.input_size() {
                return Err(invalid(o, format!("[experiment] image_size {side}: {} images are {}x{}; image_size applies to imagenet only", ds.name(), ds.input_size(), ds.input_size())));
            }
        }
        crate::train::check_limits(e.limit_train, e.limit_test)
            .map_err(|err| invalid(o, format!("[experiment] {err}")))?;
        if self.stages().is_empty() {
            return Err(invalid(
                o,
                "no stage to run: add a [train], [replace], [snl] or [finetune] table",
            ));
        }
        for stage in self.resolved() {
            stage
                .validate()
                .map_err(|err| invalid(o, format!("[{}] {err}", stage.name())))?;
        }
        // The model's ReLU count, built once (on the CPU) when a budget needs it.
        let total = std::cell::OnceCell::new();
        let relu_total = || {
            *total.get_or_init(|| {
                crate::models::build(
                    &e.model,
                    &Device::Cpu,
                    ds.channels(),
                    ds.input_size(),
                    ds.classes(),
                    0,
                )
                .map_or(0, |m| m.relu_total())
            })
        };
        let check_budget = |b: usize, table: &str| -> Result<()> {
            let t = relu_total();
            if b > t {
                return Err(invalid(
                    o,
                    format!(
                        "[{table}] budget {b} exceeds {}'s {t} ReLUs on {}",
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
        if let Some(r) = &self.replace {
            check_budget(r.budget.relus, "replace")?;
            if let Some(why) = r.slack_covers_all(relu_total(), &e.model) {
                return Err(invalid(o, format!("[replace] {why}")));
            }
            need_baseline(r.baseline.as_ref(), "replace")?;
        }
        if let Some(s) = &self.snl {
            check_budget(s.budget.relus, "snl")?;
            need_baseline(s.baseline.as_ref(), "snl")?;
        }
        if let Some(f) = &self.finetune {
            if self.finetune_from().is_none() {
                return Err(invalid(o, "[finetune] needs a gated checkpoint: add a [replace] or [snl] table or set from = \"path/best.safetensors\""));
            }
            if f.teacher.is_some() && !f.kd {
                return Err(invalid(
                    o,
                    "[finetune] teacher is set but kd = false: drop one",
                ));
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
                "  train:    {}, batch {}, SGD lr {} momentum {} weight decay {}",
                epochs(t.epochs),
                t.batch,
                t.lr,
                t.momentum,
                t.weight_decay
            );
        }
        if let Some(r) = &self.replace {
            let _ = writeln!(
                s,
                "  replace:  {} at {} ReLUs, λ {}, τ {}, degree {} (s2 {}), {} DaPa, {}, batch {}, Adam {}/{}{}, KD {}, from {}",
                if r.identity { "identity" } else { "AutoReP" },
                r.budget.relus,
                r.lambda,
                r.tau,
                r.degree,
                r.s2,
                r.dapa.name(),
                epochs(r.epochs),
                r.batch,
                r.weight_lr,
                r.mask_lr,
                r.lookahead()
                    .map_or(String::new(), |l| format!(" in Lookahead (k {}, α {})", l.k, l.alpha)),
                kd_label(r.kd, r.kd_temperature, r.kd_weight),
                show(self.baseline_for(r.baseline.as_ref()))
            );
        }
        if let Some(n) = &self.snl {
            let _ = writeln!(
                s,
                "  snl:      {} ReLUs, λ₁ {}, at most {} (lr {}), then {} of finetuning (lr {}), batch {}, from {}",
                n.budget.relus,
                n.lambda,
                epochs(n.epochs),
                n.lr,
                epochs(n.finetune_epochs),
                n.finetune_lr,
                n.batch,
                show(self.baseline_for(n.baseline.as_ref()))
            );
        }
        if let Some(f) = &self.finetune {
            let _ = writeln!(
                s,
                "  finetune: {}, SGD lr {}, batch {}, from {}{}",
                epochs(f.epochs),
                f.lr,
                f.batch,
                show(self.finetune_from()),
                if self.finetune_teacher().is_some() {
                    format!(", KD from {}", show(self.finetune_teacher()))
                } else {
                    String::new()
                }
            );
        }
        s
    }
}

/// "true (T 4, weight 1)" or "false".
fn kd_label(on: bool, temperature: f32, weight: f32) -> String {
    if on {
        format!("true (T {temperature}, weight {weight})")
    } else {
        "false".into()
    }
}

/// For a relative path that is missing: where it was looked for.
fn relative_hint(p: &Path) -> String {
    match std::env::current_dir() {
        Ok(cwd) if p.is_relative() => format!(
            " (paths in an experiment file are relative to the folder autorep runs in, here {})",
            cwd.display()
        ),
        _ => String::new(),
    }
}
