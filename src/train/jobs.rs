//! The jobs behind the CLI. Each runs one stage end to end: loads data, builds or restores the
//! model, trains epoch by epoch with a checkpoint (`last.safetensors`, and `best.safetensors`
//! for the best eligible epoch) and a JSON line in `metrics.jsonl` after every epoch, and
//! resumes from `last.safetensors` when asked.

use super::checkpoint::Checkpoint;
use super::stages::{Run, SnlPhase, StageConfig, StageEpoch};
use super::{evaluate, train_epoch, DeviceSet, EpochPlan, EpochStats};
use crate::autorep::{Granularity, Method, Polynomial, ReplaceConfig, Replacement};
use crate::data::{Dataset, Split};
use crate::models::{build, Model};
use crate::nn::{LrSchedule, Optimizer, OptimizerKind, ParamGroup, Schedule};
use crate::{Device, Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A loaded dataset with what the models need to know about it.
pub struct Data {
    pub name: String,
    pub train: DeviceSet,
    pub test: DeviceSet,
    pub channels: usize,
    pub input: usize,
    pub classes: usize,
}

impl Data {
    /// The line a run prints first: device, dataset and its sizes (and the model, if given).
    pub fn banner(&self, device: &Device, model: Option<&str>) -> String {
        let model = model.map(|m| format!("; model {m}")).unwrap_or_default();
        format!(
            "device: {}; {} ({} train, {} test images){model}",
            device.describe(),
            self.name,
            self.train.len(),
            self.test.len()
        )
    }

    /// Train and test splits of `dataset`, placed on `device`.
    pub fn new(
        device: &Device,
        dataset: Dataset,
        train: crate::data::ImageSet,
        test: crate::data::ImageSet,
    ) -> Result<Data> {
        let (mean, std) = (dataset.mean(), dataset.std());
        let (channels, input, classes) = (train.channels, train.height, train.classes);
        Ok(Data {
            name: dataset.name().to_string(),
            train: DeviceSet::new(device, train, mean, std, dataset.pad())?,
            test: DeviceSet::new(device, test, mean, std, dataset.pad())?,
            channels,
            input,
            classes,
        })
    }
}

/// The default dataset folder: `../shared/data/cifar-10-jpeg75-bin` for cifar10 when it
/// exists, else `data/<dataset>`.
pub fn default_data_dir(dataset: &str) -> PathBuf {
    let shared = PathBuf::from("../shared/data/cifar-10-jpeg75-bin");
    if dataset == "cifar10" && shared.is_dir() {
        shared
    } else {
        PathBuf::from(format!("data/{dataset}"))
    }
}

/// Load a dataset by name from `dir` (train and test splits) onto `device`, keeping only the
/// first `limit_train` / `limit_test` images when given.
pub fn load_data(
    name: &str,
    dir: &Path,
    limit_train: Option<usize>,
    limit_test: Option<usize>,
    device: &Device,
) -> Result<Data> {
    let dataset = Dataset::from_name(name)?;
    let mut train = dataset.load(dir, Split::Train)?;
    let mut test = dataset.load(dir, Split::Test)?;
    if let Some(n) = limit_train {
        train = train.subset(..n.min(train.len()));
    }
    if let Some(n) = limit_test {
        test = test.subset(..n.min(test.len()));
    }
    Data::new(device, dataset, train, test)
}

/// Options every job shares.
#[derive(Debug, Clone)]
pub struct JobOptions {
    pub model: String,
    pub epochs: usize,
    pub batch: usize,
    pub seed: u64,
    pub out: PathBuf,
    pub quiet: bool,
    pub resume: bool,
    /// Stop after this many epochs of this invocation (tests use it to simulate a kill).
    pub stop_after: Option<usize>,
}

/// What a job ends with.
#[derive(Debug, Clone)]
pub struct JobSummary {
    pub stage: String,
    pub epochs_run: usize,
    pub final_test: EpochStats,
    pub relus: u64,
    pub relu_total: usize,
    pub best: Option<PathBuf>,
    pub over_budget_epochs: usize,
}

/// The run folder: checkpoints and the metrics log.
struct RunDir {
    out: PathBuf,
    quiet: bool,
}

impl RunDir {
    fn new(out: &Path, quiet: bool) -> Result<RunDir> {
        std::fs::create_dir_all(out).map_err(|e| {
            Error::Invalid(format!(
                "cannot create output folder {}: {e}",
                out.display()
            ))
        })?;
        Ok(RunDir {
            out: out.to_path_buf(),
            quiet,
        })
    }
    fn last(&self) -> PathBuf {
        self.out.join("last.safetensors")
    }
    fn best(&self) -> PathBuf {
        self.out.join("best.safetensors")
    }
    fn log(&self, line: &str) -> Result<()> {
        let path = self.out.join("metrics.jsonl");
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
        writeln!(f, "{line}").map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))
    }
    fn progress(&self, batches: usize, label: String) -> Option<indicatif::ProgressBar> {
        if self.quiet {
            return None;
        }
        let bar = indicatif::ProgressBar::new(batches as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{prefix} [{bar:30}] {pos}/{len} batches {elapsed} eta {eta}",
            )
            .expect("template")
            .progress_chars("=> "),
        );
        bar.set_prefix(label);
        Some(bar)
    }
    fn say(&self, line: &str) {
        if !self.quiet {
            println!("{line}");
        }
    }
}

fn epoch_json(stage: &str, e: &StageEpoch, relu_total: usize) -> String {
    let test = e
        .test
        .map_or("null".into(), |t| format!("{:.6}", t.accuracy));
    format!(
        "{{\"stage\":\"{stage}\",\"epoch\":{},\"train_loss\":{:.6},\"train_acc\":{:.6},\"test_acc\":{test},\"relus\":{},\"relu_total\":{relu_total},\"lr_factor\":{:.6},\"seconds\":{:.3},\"images_per_s\":{:.1}}}",
        e.epoch,
        e.train.loss,
        e.train.accuracy,
        e.count,
        e.lr_factor,
        e.train.seconds,
        e.train.images as f64 / e.train.seconds.max(1e-9)
    )
}

fn epoch_line(stage: &str, e: &StageEpoch, epochs: usize) -> String {
    let test = e.test.map_or(String::new(), |t| {
        format!("  test {:.2}%", 100.0 * t.accuracy)
    });
    format!(
        "{stage} epoch {}/{epochs}: loss {:.4}  train {:.2}%{test}  ReLUs {}  {:.0} img/s",
        e.epoch + 1,
        e.train.loss,
        100.0 * e.train.accuracy,
        e.count,
        e.train.images as f64 / e.train.seconds.max(1e-9)
    )
}

fn put_data_meta(ck: &mut Checkpoint, data: &Data, stage: &str, epoch: usize, seed: u64) {
    for (k, v) in [
        ("dataset", data.name.clone()),
        ("channels", data.channels.to_string()),
        ("input", data.input.to_string()),
        ("classes", data.classes.to_string()),
        ("stage", stage.to_string()),
        ("epoch", epoch.to_string()),
        ("seed", seed.to_string()),
    ] {
        ck.meta.insert(k.into(), v);
    }
}

fn meta_usize(ck: &Checkpoint, key: &str) -> Result<usize> {
    ck.meta(key)?
        .parse()
        .map_err(|_| Error::Invalid(format!("checkpoint metadata '{key}' is not a number")))
}

/// The gates' configuration and state, as checkpoint metadata.
fn put_replacement(ck: &mut Checkpoint, rep: &Replacement) {
    let c = &rep.cfg;
    let method = match c.method {
        Method::AutoRep => "autorep",
        Method::Identity => "identity",
        Method::Snl => "snl",
    };
    for (k, v) in [
        ("rep.method", method.to_string()),
        ("rep.budget", c.budget.to_string()),
        ("rep.lambda", c.lambda.to_string()),
        ("rep.tau", c.tau.to_string()),
        ("rep.degree", c.degree.to_string()),
        ("rep.s1", c.s1.to_string()),
        ("rep.s2", c.s2.to_string()),
        (
            "rep.granularity",
            if c.granularity == Granularity::Channel {
                "channel"
            } else {
                "pixel"
            }
            .into(),
        ),
        (
            "rep.polynomial",
            if c.polynomial == Polynomial::Faithful {
                "faithful"
            } else {
                "clean"
            }
            .into(),
        ),
        ("rep.var_min", c.var_min.to_string()),
        ("rep.h0", c.h_init.0.to_string()),
        ("rep.h1", c.h_init.1.to_string()),
        ("rep.snl_threshold", c.snl_threshold.to_string()),
        ("rep.seed", c.seed.to_string()),
        ("rep.passes", rep.passes.to_string()),
        ("rep.frozen", rep.frozen.to_string()),
    ] {
        ck.meta.insert(k.into(), v);
    }
}

fn replace_config(ck: &Checkpoint) -> Result<Option<(ReplaceConfig, u64, bool)>> {
    let Some(method) = ck.meta.get("rep.method") else {
        return Ok(None);
    };
    let f = |k: &str| -> Result<f64> {
        ck.meta(k)?
            .parse()
            .map_err(|_| Error::Invalid(format!("checkpoint metadata '{k}' is not a number")))
    };
    let method = match method.as_str() {
        "autorep" => Method::AutoRep,
        "identity" => Method::Identity,
        _ => Method::Snl,
    };
    let cfg = ReplaceConfig {
        method,
        budget: f("rep.budget")? as usize,
        lambda: f("rep.lambda")? as f32,
        tau: f("rep.tau")? as f32,
        degree: f("rep.degree")? as usize,
        s1: f("rep.s1")? as f32,
        s2: f("rep.s2")? as f32,
        granularity: if ck.meta("rep.granularity")? == "channel" {
            Granularity::Channel
        } else {
            Granularity::Pixel
        },
        polynomial: if ck.meta("rep.polynomial")? == "faithful" {
            Polynomial::Faithful
        } else {
            Polynomial::Clean
        },
        var_min: f("rep.var_min")?,
        h_init: (f("rep.h0")? as f32, f("rep.h1")? as f32),
        refit: Default::default(),
        snl_threshold: f("rep.snl_threshold")? as f32,
        seed: f("rep.seed")? as u64,
    };
    Ok(Some((
        cfg,
        f("rep.passes")? as u64,
        ck.meta("rep.frozen")? == "true",
    )))
}

/// Rebuild a model (and its gates, if it has any) from a checkpoint.
pub fn load_model(
    device: &Device,
    ck: &Checkpoint,
) -> Result<(Box<dyn Model>, Option<Replacement>)> {
    let mut model = build(
        ck.meta("model")?,
        device,
        meta_usize(ck, "channels")?,
        meta_usize(ck, "input")?,
        meta_usize(ck, "classes")?,
        0,
    )?;
    let rep = match replace_config(ck)? {
        Some((cfg, passes, frozen)) => {
            let mut rep = Replacement::install(model.as_mut(), cfg, device)?;
            rep.passes = passes;
            if frozen {
                rep.freeze(model.as_mut())?;
            }
            Some(rep)
        }
        None => None,
    };
    ck.restore_model(model.as_ref(), rep.is_some())?;
    Ok((model, rep))
}

fn check_data(ck: &Checkpoint, data: &Data) -> Result<()> {
    let name = ck.meta("dataset")?;
    if name != data.name || meta_usize(ck, "classes")? != data.classes {
        return Err(Error::Invalid(format!(
            "the checkpoint was trained on {name}, not {}: pass --dataset {name}",
            data.name
        )));
    }
    Ok(())
}

/// Stage 0: the all-ReLU baseline. SGD with momentum and weight decay, cosine to 1e-5.
pub fn train_baseline(
    device: &Device,
    o: &JobOptions,
    data: &Data,
    lr: f32,
    momentum: f32,
    weight_decay: f32,
) -> Result<JobSummary> {
    let dir = RunDir::new(&o.out, o.quiet)?;
    let model = build(
        &o.model,
        device,
        data.channels,
        data.input,
        data.classes,
        o.seed,
    )?;
    let g = ParamGroup::new(device, "weights", model.params())?;
    let mut opt = Optimizer::new(
        device,
        OptimizerKind::sgd(momentum, weight_decay, false),
        vec![(g, lr)],
    )?;
    let sched = LrSchedule::new(Schedule::Cosine {
        total: o.epochs,
        base: lr,
        floor: 1e-5,
    });
    let mut start = 0;
    let mut best_acc = -1.0f32;
    if o.resume && dir.last().exists() {
        let ck = Checkpoint::load(&dir.last())?;
        check_data(&ck, data)?;
        ck.restore_model(model.as_ref(), false)?;
        ck.restore_optimizer(&mut opt)?;
        start = meta_usize(&ck, "epoch")? + 1;
        best_acc = ck
            .meta("best_acc")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(-1.0);
        dir.say(&format!(
            "resuming {} after epoch {start}",
            dir.last().display()
        ));
    }
    let total = model.relu_total();
    let mut ran = 0;
    let mut last = EpochStats::default();
    for epoch in start..o.epochs {
        if o.stop_after.is_some_and(|s| ran >= s) {
            break;
        }
        let bar = dir.progress(
            data.train.len() / o.batch.max(2),
            format!("train {}/{}", epoch + 1, o.epochs),
        );
        let plan = EpochPlan {
            lr_factor: sched.factor(epoch),
            progress: bar.as_ref(),
            ..EpochPlan::plain(o.batch, o.seed, epoch as u64)
        };
        let stats = train_epoch(model.as_ref(), &mut opt, &data.train, plan, device)?;
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        let test = evaluate(model.as_ref(), None, &data.test, 256)?;
        let e = StageEpoch {
            epoch,
            train: stats,
            count: total as u64,
            test: Some(test),
            lr_factor: sched.factor(epoch),
        };
        dir.say(&epoch_line("train", &e, o.epochs));
        dir.log(&epoch_json("train", &e, total))?;
        let mut ck = Checkpoint::default();
        ck.put_model(model.as_ref())?;
        ck.put_optimizer(&opt)?;
        put_data_meta(&mut ck, data, "baseline", epoch, o.seed);
        if test.accuracy > best_acc {
            best_acc = test.accuracy;
            ck.meta.insert("best_acc".into(), best_acc.to_string());
            ck.save(&dir.best())?;
        }
        ck.meta.insert("best_acc".into(), best_acc.to_string());
        ck.save(&dir.last())?;
        last = test;
        ran += 1;
    }
    Ok(JobSummary {
        stage: "train".into(),
        epochs_run: ran,
        final_test: last,
        relus: total as u64,
        relu_total: total,
        best: Some(dir.best()),
        over_budget_epochs: 0,
    })
}

/// AutoReP replacement (or its identity ablation, or SNL) starting from a baseline
/// checkpoint, with KD from that baseline when `kd` is set. The best checkpoint is the best
/// test accuracy among epochs whose count is within the budget (exactly).
#[allow(clippy::too_many_arguments)]
pub fn replace(
    device: &Device,
    o: &JobOptions,
    data: &Data,
    baseline: &Path,
    cfg: ReplaceConfig,
    stage: &StageConfig,
    kd: bool,
) -> Result<JobSummary> {
    let dir = RunDir::new(&o.out, o.quiet)?;
    let base = Checkpoint::load(baseline)?;
    check_data(&base, data)?;
    if base.meta.contains_key("rep.method") {
        return Err(Error::Invalid(format!(
            "{} already has gated sites: pass an all-ReLU baseline from `autorep train`",
            baseline.display()
        )));
    }
    let (teacher, _) = load_model(device, &base)?;
    let (mut model, _) = load_model(device, &base)?;
    let snl = cfg.method == Method::Snl;
    let stage_name = if snl { "snl" } else { "replace" };
    let mut run = if snl {
        Run::snl(model.as_mut(), cfg, stage, device)?
    } else {
        Run::autorep(model.as_mut(), cfg, stage, &data.train, device)?
    };
    let mut best_acc = -1.0f32;
    let mut over = 0;
    let mut resumed_epochs = 0;
    if o.resume && dir.last().exists() {
        let ck = Checkpoint::load(&dir.last())?;
        check_data(&ck, data)?;
        if ck.meta("snl.phase").ok() == Some("finetune") {
            run.start_finetune(model.as_mut(), stage, device)?;
        }
        ck.restore_model(model.as_ref(), true)?;
        ck.restore_optimizer(&mut run.opt)?;
        if let Some((c, passes, _)) = replace_config(&ck)? {
            run.rep.passes = passes;
            if snl {
                run.rep.set_snl_l1(model.as_mut(), c.lambda);
            }
        }
        run.epoch = meta_usize(&ck, "phase_epoch")?;
        run.lowest = ck
            .meta("snl.lowest")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(u64::MAX);
        best_acc = ck
            .meta("best_acc")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(-1.0);
        over = meta_usize(&ck, "over_budget_epochs").unwrap_or(0);
        resumed_epochs = meta_usize(&ck, "epoch")? + 1;
        dir.say(&format!(
            "resuming {} after epoch {resumed_epochs}",
            dir.last().display()
        ));
    }
    let total = model.relu_total();
    let budget = run.rep.cfg.budget as u64;
    let teacher = kd.then_some(teacher.as_ref());
    let mut ran = 0;
    let mut global = resumed_epochs;
    loop {
        let phase_epochs = if run.phase == SnlPhase::Finetune {
            stage.finetune_epochs
        } else {
            stage.epochs
        };
        if run.epoch >= phase_epochs {
            if snl && run.phase == SnlPhase::Select {
                run.start_finetune(model.as_mut(), stage, device)?;
                continue;
            }
            break;
        }
        if o.stop_after.is_some_and(|s| ran >= s) {
            break;
        }
        let label = format!("{stage_name} {}/{}", run.epoch + 1, phase_epochs);
        let bar = dir.progress(data.train.len() / stage.batch.max(2), label);
        let mut e = run.epoch(
            model.as_ref(),
            stage,
            &data.train,
            Some(&data.test),
            teacher,
            device,
            bar.as_ref(),
        )?;
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        e.epoch = global;
        let phase = if run.phase == SnlPhase::Finetune {
            "finetune"
        } else {
            stage_name
        };
        dir.say(&epoch_line(
            phase,
            &e,
            stage.epochs + if snl { stage.finetune_epochs } else { 0 },
        ));
        dir.log(&epoch_json(phase, &e, total))?;
        over += (e.count > budget) as usize;
        let selection_done =
            snl && run.phase == SnlPhase::Select && run.snl_control(model.as_mut(), &e);
        let mut ck = Checkpoint::default();
        ck.put_model(model.as_ref())?;
        ck.put_optimizer(&run.opt)?;
        put_data_meta(&mut ck, data, stage_name, global, o.seed);
        put_replacement(&mut ck, &run.rep);
        ck.meta.insert("phase_epoch".into(), run.epoch.to_string());
        ck.meta.insert(
            "snl.phase".into(),
            if run.phase == SnlPhase::Finetune {
                "finetune"
            } else {
                "select"
            }
            .into(),
        );
        ck.meta.insert("snl.lowest".into(), run.lowest.to_string());
        ck.meta
            .insert("over_budget_epochs".into(), over.to_string());
        let acc = e.test.map_or(0.0, |t| t.accuracy);
        if e.count <= budget && acc > best_acc {
            best_acc = acc;
            ck.meta.insert("best_acc".into(), best_acc.to_string());
            ck.save(&dir.best())?;
        }
        ck.meta.insert("best_acc".into(), best_acc.to_string());
        ck.save(&dir.last())?;
        ran += 1;
        global += 1;
        if selection_done {
            run.start_finetune(model.as_mut(), stage, device)?;
            if stage.finetune_epochs == 0 {
                break;
            }
        }
    }
    let finished = o.stop_after.is_none_or(|s| ran < s);
    let (relus, final_test) = if finished {
        let (projected, count, test) = run.finish(model.as_ref(), Some(&data.test))?;
        if projected > 0 {
            dir.say(&format!("switched off {projected} gates with the smallest indicator to meet the budget of {budget} exactly"));
        }
        let test = test.unwrap_or_default();
        if count <= budget && (test.accuracy > best_acc || !dir.best().exists()) {
            let mut ck = Checkpoint::default();
            ck.put_model(model.as_ref())?;
            put_data_meta(&mut ck, data, stage_name, global.saturating_sub(1), o.seed);
            put_replacement(&mut ck, &run.rep);
            ck.meta.insert("best_acc".into(), test.accuracy.to_string());
            ck.save(&dir.best())?;
        }
        (count, test)
    } else {
        (run.rep.count()?, EpochStats::default())
    };
    Ok(JobSummary {
        stage: stage_name.into(),
        epochs_run: ran,
        final_test,
        relus,
        relu_total: total,
        best: Some(dir.best()),
        over_budget_epochs: over,
    })
}

/// Finetune a gated checkpoint with its mask frozen: SGD (momentum 0.9, weight decay 5e-4,
/// cosine) on the weights, with KD from `teacher` (an all-ReLU checkpoint) when given.
pub fn finetune(
    device: &Device,
    o: &JobOptions,
    data: &Data,
    from: &Path,
    teacher: Option<&Path>,
    stage: &StageConfig,
) -> Result<JobSummary> {
    let dir = RunDir::new(&o.out, o.quiet)?;
    let ck = Checkpoint::load(from)?;
    check_data(&ck, data)?;
    let (mut model, rep) = load_model(device, &ck)?;
    let rep = rep.ok_or_else(|| {
        Error::Invalid(format!(
            "{} has no gated sites: finetune a checkpoint from `autorep replace` or `autorep snl`",
            from.display()
        ))
    })?;
    let teacher = teacher
        .map(|t| Checkpoint::load(t).and_then(|c| load_model(device, &c)))
        .transpose()?;
    let mut run = Run::finetune(model.as_mut(), rep, stage, device)?;
    let total = model.relu_total();
    let budget = run.rep.cfg.budget as u64;
    let mut best_acc = -1.0;
    let mut last = EpochStats::default();
    let mut ran = 0;
    while run.epoch < stage.finetune_epochs && o.stop_after.is_none_or(|s| ran < s) {
        let bar = dir.progress(
            data.train.len() / stage.batch.max(2),
            format!("finetune {}/{}", run.epoch + 1, stage.finetune_epochs),
        );
        let e = run.epoch(
            model.as_ref(),
            stage,
            &data.train,
            Some(&data.test),
            teacher.as_ref().map(|t| t.0.as_ref()),
            device,
            bar.as_ref(),
        )?;
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        dir.say(&epoch_line("finetune", &e, stage.finetune_epochs));
        dir.log(&epoch_json("finetune", &e, total))?;
        let mut out = Checkpoint::default();
        out.put_model(model.as_ref())?;
        put_data_meta(&mut out, data, "finetune", e.epoch, o.seed);
        put_replacement(&mut out, &run.rep);
        last = e.test.unwrap_or_default();
        if e.count <= budget && last.accuracy > best_acc {
            best_acc = last.accuracy;
            out.save(&dir.best())?;
        }
        out.save(&dir.last())?;
        ran += 1;
    }
    let relus = run.rep.count()?;
    Ok(JobSummary {
        stage: "finetune".into(),
        epochs_run: ran,
        final_test: last,
        relus,
        relu_total: total,
        best: Some(dir.best()),
        over_budget_epochs: 0,
    })
}

/// Evaluate a checkpoint: top-1 and top-5 accuracy, ReLU count and per-site kept fractions.
pub struct EvalReport {
    pub top1: f32,
    pub top5: f32,
    pub relus: u64,
    pub relu_total: usize,
    /// (site, kept, total)
    pub sites: Vec<(String, usize, usize)>,
}

pub fn eval(device: &Device, checkpoint: &Path, data: &Data) -> Result<EvalReport> {
    let ck = Checkpoint::load(checkpoint)?;
    check_data(&ck, data)?;
    let (model, mut rep) = load_model(device, &ck)?;
    let stats = evaluate(model.as_ref(), rep.as_mut(), &data.test, 256)?;
    let top5 = super::top_k(model.as_ref(), rep.as_mut(), &data.test, 5)?;
    let total = model.relu_total();
    let (relus, sites) = match &mut rep {
        Some(r) => {
            r.begin_forward(model.as_ref(), false)?;
            (r.count()?, r.site_counts(model.as_ref())?)
        }
        None => (
            total as u64,
            model
                .sites()
                .iter()
                .map(|s| (s.name.clone(), s.relus(), s.relus()))
                .collect(),
        ),
    };
    Ok(EvalReport {
        top1: stats.accuracy,
        top5,
        relus,
        relu_total: total,
        sites,
    })
}
