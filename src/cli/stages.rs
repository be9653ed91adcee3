//! `train`, `replace`, `snl`, `finetune` and `eval`: build the stage's typed configuration from
//! the arguments, check it before any data is read, and hand it to the stage driver.

use super::{training_device, JobArgs, ScheduleArgs};
use anyhow::Context;
use autorep::autorep::{Budget, Granularity, Polynomial};
use autorep::train::checkpoint::{Checkpoint, Meta};
use autorep::train::config::{
    defaults, FinetuneConfig, ReplaceStageConfig, SnlConfig, StageConfig, TrainConfig,
};
use autorep::train::report::epochs;
use autorep::train::{default_data_dir, run_stage, Data, Outcome, RunOptions};
use autorep::{Device, DeviceChoice};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct TrainArgs {
    #[command(flatten)]
    job: JobArgs,
    #[arg(long, default_value_t = defaults::TRAIN_LR)]
    lr: f32,
    #[arg(long, default_value_t = defaults::MOMENTUM)]
    momentum: f32,
    #[arg(long, default_value_t = defaults::WEIGHT_DECAY)]
    weight_decay: f32,
}

/// Distillation from the all-ReLU baseline (replace, snl, finetune, sweep).
#[derive(clap::Args)]
pub struct KdOpts {
    /// Distillation temperature T.
    #[arg(long, default_value_t = defaults::KD_TEMPERATURE)]
    pub kd_temperature: f32,
    /// Weight of the distillation term: loss = CE + weight · T²·KL.
    #[arg(long, default_value_t = defaults::KD_WEIGHT)]
    pub kd_weight: f32,
}

/// How AutoReP's gates are learned and what replaces a switched-off ReLU (replace, sweep).
#[derive(clap::Args)]
pub struct GateOpts {
    /// Budget penalty weight λ.
    #[arg(long, default_value_t = defaults::AUTOREP_LAMBDA, allow_hyphen_values = true)]
    lambda: f32,
    /// Hysteresis threshold τ.
    #[arg(long, default_value_t = defaults::TAU, allow_hyphen_values = true)]
    tau: f32,
    /// Polynomial degree (1 or 2).
    #[arg(long, default_value_t = defaults::DEGREE)]
    degree: usize,
    /// Scale of the x² term.
    #[arg(long, default_value_t = defaults::S2, allow_hyphen_values = true)]
    s2: f32,
    /// pixel (one gate per activation, the paper) or channel (one per channel).
    #[arg(long, default_value = defaults::GRANULARITY)]
    pub granularity: String,
    /// faithful (the official code's refits and shrinkage) or clean (exact DaPa fit, then
    /// trained; pair it with --clip-x2 on residual networks).
    #[arg(long, default_value = defaults::DAPA)]
    dapa: String,
    /// Distil from the baseline (--kd-temperature, --kd-weight).
    #[arg(long, default_value_t = defaults::KD, action = clap::ArgAction::Set)]
    pub kd: bool,
    #[command(flatten)]
    pub distill: KdOpts,
    /// Scale of x in a degree-1 gate (the official --scale_x1).
    #[arg(long, default_value_t = defaults::S1)]
    s1: f32,
    /// Faithful DaPa: the floor of the running variance (the official --var_min).
    #[arg(long, default_value_t = defaults::VAR_MIN)]
    var_min: f64,
    /// Faithful DaPa: refit every N forward passes (evaluation included)...
    #[arg(long, default_value_t = defaults::REFIT_PERIOD, value_name = "N")]
    refit_period: u64,
    /// ...until this pass (the official 508: 50 refits).
    #[arg(long, default_value_t = defaults::REFIT_LIMIT, value_name = "PASS")]
    refit_limit: u64,
    /// Faithful DaPa: the divisors of the fit's w0 and w2, as W0,W2 (the official 5,10).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "5,10",
        allow_hyphen_values = true
    )]
    shrink: Vec<f64>,
    /// Replace switched-off ReLUs by x instead of a polynomial (the ablation).
    #[arg(long)]
    identity: bool,
    /// Adam rate of weights and polynomial coefficients.
    #[arg(long, default_value_t = defaults::ADAM_LR)]
    weight_lr: f32,
    /// Adam rate of the gate indicators h.
    #[arg(long, default_value_t = defaults::ADAM_LR)]
    mask_lr: f32,
    /// Range of the initial gate indicators h, as LO,HI (smaller values reach a small budget
    /// in fewer epochs).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "0,1",
        allow_hyphen_values = true
    )]
    h_init: Vec<f32>,
    /// ReLUs above the budget an epoch may keep and still be selected (the official code:
    /// 2k); 0 keeps the budget exact.
    #[arg(long, default_value = "0")]
    budget_slack: String,
    /// Re-estimate the BatchNorm statistics over N training batches with the current mask
    /// before each evaluation (0: off).
    #[arg(long, default_value_t = 0)]
    pub bn_recalib: usize,
    /// Clamp the stored x² coefficient to ±C before every forward pass (the official
    /// --clip_x2; the Tiny recipe uses 1); 0: off.
    #[arg(long, default_value_t = 0.0)]
    clip_x2: f32,
    /// Wrap Adam in Lookahead with period K (the official Tiny-ImageNet script: 6): every K
    /// steps the slow weights move --lookahead-alpha of the way to the fast ones, which restart
    /// from them (the first sync starts the slow weights there, as the official code's); 0: off.
    #[arg(long, default_value_t = 0, value_name = "K")]
    lookahead: u64,
    /// Lookahead's interpolation weight, in (0, 1].
    #[arg(long, default_value_t = defaults::LOOKAHEAD_ALPHA)]
    lookahead_alpha: f32,
}

impl GateOpts {
    /// The replacement at `budget` with these gates and the job's epochs, batch and seed.
    pub fn config(
        &self,
        budget: Budget,
        schedule: &ScheduleArgs,
    ) -> anyhow::Result<ReplaceStageConfig> {
        let [lo, hi] = pair(&self.h_init, "--h-init", "LO,HI", "0,1")?;
        let [w0, w2] = pair(&self.shrink, "--shrink", "W0,W2", "5,10")?;
        let cfg = ReplaceStageConfig {
            baseline: None,
            budget,
            epochs: schedule.epochs_or(defaults::EPOCHS),
            batch: schedule.batch_or(defaults::BATCH),
            seed: schedule.seed,
            lambda: self.lambda,
            tau: self.tau,
            degree: self.degree,
            s2: self.s2,
            granularity: Granularity::from_name(&self.granularity)?,
            dapa: Polynomial::from_name(&self.dapa)?,
            identity: self.identity,
            weight_lr: self.weight_lr,
            mask_lr: self.mask_lr,
            kd: self.kd,
            kd_temperature: self.distill.kd_temperature,
            kd_weight: self.distill.kd_weight,
            s1: self.s1,
            var_min: self.var_min,
            refit_period: self.refit_period,
            refit_limit: self.refit_limit,
            shrink: [w0, w2],
            h_init: [lo, hi],
            budget_slack: autorep::autorep::parse_count(&self.budget_slack)
                .map_err(|e| anyhow::anyhow!("--budget-slack: {e}"))?,
            bn_recalib: self.bn_recalib,
            clip_x2: self.clip_x2,
            lookahead: self.lookahead,
            lookahead_alpha: self.lookahead_alpha,
            precision: schedule.precision,
        };
        StageConfig::Replace(cfg.clone()).validate()?;
        Ok(cfg)
    }
}

/// The two numbers of a comma-separated option such as `--h-init 0,1`.
fn pair<T: Copy>(v: &[T], flag: &str, form: &str, example: &str) -> anyhow::Result<[T; 2]> {
    match v {
        &[a, b] => Ok([a, b]),
        _ => anyhow::bail!("{flag} takes two numbers, {form} (e.g. {example})"),
    }
}

/// What a replacement starts from and aims at.
#[derive(clap::Args)]
pub struct BaselineBudget {
    /// Baseline checkpoint (from `autorep train`).
    #[arg(long)]
    baseline: PathBuf,
    /// ReLUs to keep, e.g. 12.9k (a whole number).
    #[arg(long, allow_hyphen_values = true)]
    budget: String,
}

#[derive(clap::Args)]
pub struct ReplaceArgs {
    #[command(flatten)]
    job: JobArgs,
    #[command(flatten)]
    from: BaselineBudget,
    #[command(flatten)]
    gates: GateOpts,
}

#[derive(clap::Args)]
pub struct SnlArgs {
    #[command(flatten)]
    job: JobArgs,
    #[command(flatten)]
    from: BaselineBudget,
    /// Initial L1 weight λ₁.
    #[arg(long, default_value_t = defaults::SNL_LAMBDA)]
    lambda: f32,
    /// pixel or channel.
    #[arg(long, default_value = defaults::GRANULARITY)]
    granularity: String,
    /// Distil from the baseline (--kd-temperature, --kd-weight).
    #[arg(long, default_value_t = defaults::KD, action = clap::ArgAction::Set)]
    kd: bool,
    #[command(flatten)]
    distill: KdOpts,
    /// Adam rate of the weights during selection (at most --epochs epochs).
    #[arg(long, default_value_t = defaults::ADAM_LR)]
    lr: f32,
    /// Adam rate of α (the official code: the same as --lr). Selection needs epochs × steps ×
    /// alpha-lr ≳ 1.
    #[arg(long, default_value_t = defaults::ADAM_LR)]
    alpha_lr: f32,
    /// How λ₁ grows: paced (to reach the budget within --epochs) or official (×1.1 on a
    /// stalled epoch from the sixth; SNL's code allows it 2000 epochs: pass --epochs 2000).
    #[arg(long, default_value = "paced")]
    schedule: autorep::train::config::SnlSchedule,
    #[arg(long, default_value_t = defaults::SNL_FINETUNE_EPOCHS)]
    finetune_epochs: usize,
    #[arg(long, default_value_t = defaults::FINETUNE_LR)]
    finetune_lr: f32,
    /// Re-estimate the BatchNorm statistics over N training batches with the current mask
    /// before each evaluation (0: off).
    #[arg(long, default_value_t = 0)]
    bn_recalib: usize,
}

#[derive(clap::Args)]
pub struct FinetuneArgs {
    #[command(flatten)]
    job: JobArgs,
    /// Checkpoint from `replace` or `snl`, or its run folder (then its last.safetensors: the
    /// official finetune continues from the last state).
    #[arg(long)]
    from: PathBuf,
    /// All-ReLU checkpoint to distil from.
    #[arg(long)]
    teacher: Option<PathBuf>,
    #[command(flatten)]
    distill: KdOpts,
    #[arg(long, default_value_t = defaults::FINETUNE_LR)]
    lr: f32,
    /// Re-estimate the BatchNorm statistics over N training batches with the current mask
    /// before each evaluation (0: off).
    #[arg(long, default_value_t = 0)]
    bn_recalib: usize,
}

#[derive(clap::Args)]
pub struct EvalArgs {
    /// The checkpoint to evaluate: any stage's best.safetensors, last.safetensors or
    /// projected.safetensors, or an imported one.
    #[arg(long)]
    checkpoint: PathBuf,
    /// Dataset (default: the checkpoint's).
    #[arg(long)]
    dataset: Option<String>,
    /// Dataset folder; only its test split is read (default: the folder the checkpoint's run
    /// trained on while it exists, else as the training commands; a checkpoint of `autorep
    /// demo` uses the subset embedded in the binary when that folder is absent).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Use only the first N test images.
    #[arg(long)]
    limit_test: Option<usize>,
    /// Write every test image's logits, [images, classes] f32, in test-set order, as a NumPy
    /// .npy file (`numpy.load`).
    #[arg(long, value_name = "FILE")]
    logits: Option<PathBuf>,
    /// Write every test image's predicted class (arg-max, ties to the lower index), [images]
    /// int64, as .npy.
    #[arg(long, value_name = "FILE")]
    predictions: Option<PathBuf>,
    /// Write the normalised network inputs, [images, C, H, W] f32, as .npy: with --logits,
    /// what another framework needs to reproduce them.
    #[arg(long, value_name = "FILE")]
    inputs: Option<PathBuf>,
    /// Write the test labels, [images] int64, as .npy.
    #[arg(long, value_name = "FILE")]
    labels: Option<PathBuf>,
    /// Replace files already at the paths of --logits, --predictions, --inputs and --labels
    /// (refused without it: a mistyped path could name a checkpoint).
    #[arg(long)]
    overwrite: bool,
}

/// The metadata of the checkpoint a command starts from, to learn its dataset: its header
/// only. A file whose tensors are cut short or altered is refused when the stage (or `eval`)
/// loads the whole of it, after the data is read.
fn source(path: &Path, what: &str, hint: &str) -> anyhow::Result<Meta> {
    super::existing_file(path, &format!("{what} checkpoint"), hint)?;
    Ok(Checkpoint::read_meta(path)?)
}

const BASELINE_HINT: &str =
    "train one with `autorep train --out DIR` and pass DIR/best.safetensors";

/// Load the data of a job: its dataset (the given one, else `fallback`), folder and limits.
fn job_data(job: &JobArgs, fallback: &str, device: &Device) -> anyhow::Result<Data> {
    let data = job.data.load(fallback, device)?;
    if !job.folder.quiet {
        let dir = job.data.dir(fallback);
        println!("{}", data.banner_from(device, job.model.as_deref(), &dir));
    }
    Ok(data)
}

/// Check the configuration, load the data, run the stage, report.
fn execute(
    choice: DeviceChoice,
    job: &JobArgs,
    dataset: &str,
    mut cfg: StageConfig,
) -> anyhow::Result<()> {
    let out = job
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(cfg.name()));
    let mut job = job.clone();
    keep_resumed_options(&mut cfg, &mut job, &out)?;
    let job = &job;
    cfg.validate()?;
    if let (false, Some(d)) = (matches!(cfg, StageConfig::Train(_)), &job.data.dataset) {
        let name = autorep::data::Dataset::from_name(d)?.name();
        if name != dataset {
            anyhow::bail!(
                "--dataset {name} contradicts the checkpoint, trained with dataset {dataset}: drop --dataset or pass --dataset {dataset}"
            );
        }
    }
    if let Some(m) = &job.model {
        if !autorep::models::MODEL_NAMES.contains(&m.as_str()) {
            anyhow::bail!(
                "unknown model '{m}': choose one of {}",
                autorep::models::MODEL_NAMES.join(", ")
            );
        }
    }
    let device = training_device(choice, job.folder.quiet)?;
    // Before any data is read: f16 where the device has none is a one-line error.
    cfg.precision().resolve(&device)?;
    let data = job_data(job, dataset, &device)?;
    let opts = RunOptions {
        out,
        existing: job.folder.existing(),
        quiet: job.folder.quiet,
        stop_after: None,
        allow_projection: job.folder.project,
    };
    let model = match &cfg {
        StageConfig::Train(_) => Some(job.model.as_deref().unwrap_or("resnet18_in")),
        _ => job.model.as_deref(),
    };
    let o = run_stage(&device, &data, model, cfg, &opts)?;
    println!("{}", summary(&o));
    Ok(())
}

/// `--resume` continues the run in `out` with its own value of every option not given here:
/// the stage's options, the model, and the data (dataset, folder and limits as the run read
/// them).
fn keep_resumed_options(
    cfg: &mut StageConfig,
    job: &mut JobArgs,
    out: &Path,
) -> anyhow::Result<()> {
    if !job.folder.resume {
        return Ok(());
    }
    // Finetune's distillation is switched by --teacher; every other key is its option's id.
    let finetune = matches!(cfg, StageConfig::Finetune(_));
    let given = |key: &str| match key {
        "kd" if finetune => super::given("teacher"),
        k => super::given(k),
    };
    let Some(m) = autorep::train::run_dir::resumable(out, cfg.name())? else {
        return Ok(());
    };
    let mut adopted = autorep::train::run_dir::adopt_resumed_options(cfg, &m.config, &given);
    let d = &mut job.data;
    let mut take = |slot: bool, name: &str| {
        if slot {
            adopted.push(name.to_string());
        }
    };
    // The other stages take their model and dataset from the checkpoint they start from,
    // and check the run's against it.
    if matches!(cfg, StageConfig::Train(_)) {
        take(job.model.is_none(), "model");
        job.model.get_or_insert(m.model.clone());
        take(d.dataset.is_none(), "dataset");
        d.dataset.get_or_insert(m.dataset.clone());
    }
    // The folder and limits of the run's own dataset (another one given is refused
    // against the checkpoint, naming both).
    let same_dataset = d.dataset.as_ref().is_none_or(|g| *g == m.dataset);
    if let (true, Some(src)) = (same_dataset, m.data) {
        if m.dataset == "imagenet" && d.image_size.is_none() {
            take(true, "image size");
            d.image_size = Some(m.input);
        }
        match &d.data {
            None => {
                take(true, "data folder");
                d.data = Some(src.dir);
            }
            Some(given) if !job.folder.quiet && !autorep::train::same_folder(given, &src.dir) => {
                println!(
                    "note: the run read its data from {}; this resume reads {}",
                    src.dir.display(),
                    given.display()
                )
            }
            Some(_) => {}
        }
        if d.limit_train.is_none() && src.limit_train.is_some() {
            take(true, "training limit");
            d.limit_train = src.limit_train;
        }
        if d.limit_test.is_none() && src.limit_test.is_some() {
            take(true, "test limit");
            d.limit_test = src.limit_test;
        }
    }
    if !adopted.is_empty() && !job.folder.quiet {
        println!(
            "resuming with the run's own {} (not given here)",
            adopted.join(", ")
        );
    }
    Ok(())
}

/// The line a stage ends with.
pub fn summary(o: &Outcome) -> String {
    let test = o.last_test.unwrap_or_default();
    let mut s = format!(
        "{} done: {} ({} this run), test top-1 {:.2}% top-5 {:.2}%, {} of {} ReLUs ({:.2}%)",
        o.stage,
        epochs(o.epochs_done),
        o.epochs_run,
        100.0 * test.top1,
        100.0 * test.top5,
        o.relus,
        o.relu_total,
        100.0 * o.relus as f64 / o.relu_total.max(1) as f64
    );
    if o.over_budget_epochs > 0 {
        s += &format!(", {} ended over budget", epochs(o.over_budget_epochs));
    }
    match (&o.best, &o.best_path) {
        (Some(b), Some(p)) => {
            s += &format!(
                "; best {} (epoch {}, top-1 {:.2}%)",
                p.display(),
                b.epoch + 1,
                100.0 * b.top1
            )
        }
        _ if o.budget.is_some() => {
            s += "; no epoch met the budget by selection, so there is no best checkpoint"
        }
        _ => {}
    }
    if let Some(p) = &o.projected_path {
        s += &format!("; projected network in {}", p.display());
    }
    s
}

fn budget(s: &str) -> anyhow::Result<Budget> {
    Budget::parse(s).with_context(|| "--budget")
}

pub fn train(choice: DeviceChoice, a: TrainArgs) -> anyhow::Result<()> {
    let cfg = TrainConfig {
        epochs: a.job.schedule.epochs_or(defaults::TRAIN_EPOCHS),
        batch: a.job.schedule.batch_or(defaults::TRAIN_BATCH),
        seed: a.job.schedule.seed,
        lr: a.lr,
        momentum: a.momentum,
        weight_decay: a.weight_decay,
        precision: a.job.schedule.precision,
    };
    execute(choice, &a.job, "cifar10", StageConfig::Train(cfg))
}

pub fn replace(choice: DeviceChoice, a: ReplaceArgs) -> anyhow::Result<()> {
    let cfg = ReplaceStageConfig {
        baseline: Some(a.from.baseline.clone()),
        ..a.gates.config(budget(&a.from.budget)?, &a.job.schedule)?
    };
    let base = source(&a.from.baseline, "baseline", BASELINE_HINT)?;
    execute(choice, &a.job, &base.dataset, StageConfig::Replace(cfg))
}

pub fn snl(choice: DeviceChoice, a: SnlArgs) -> anyhow::Result<()> {
    let budget = budget(&a.from.budget)?;
    let cfg = SnlConfig {
        baseline: Some(a.from.baseline.clone()),
        budget,
        epochs: a.job.schedule.epochs_or(defaults::EPOCHS),
        batch: a.job.schedule.batch_or(defaults::BATCH),
        seed: a.job.schedule.seed,
        lambda: a.lambda,
        lr: a.lr,
        alpha_lr: a.alpha_lr,
        schedule: a.schedule,
        finetune_epochs: a.finetune_epochs,
        finetune_lr: a.finetune_lr,
        granularity: Granularity::from_name(&a.granularity)?,
        kd: a.kd,
        kd_temperature: a.distill.kd_temperature,
        kd_weight: a.distill.kd_weight,
        bn_recalib: a.bn_recalib,
        precision: a.job.schedule.precision,
    };
    StageConfig::Snl(cfg.clone()).validate()?;
    let base = source(&a.from.baseline, "baseline", BASELINE_HINT)?;
    execute(choice, &a.job, &base.dataset, StageConfig::Snl(cfg))
}

pub fn finetune(choice: DeviceChoice, mut a: FinetuneArgs) -> anyhow::Result<()> {
    if a.from.is_dir() {
        a.from = a.from.join(autorep::train::run_dir::LAST);
    }
    let cfg = FinetuneConfig {
        from: Some(a.from.clone()),
        teacher: a.teacher.clone(),
        kd: a.teacher.is_some(),
        kd_temperature: a.distill.kd_temperature,
        kd_weight: a.distill.kd_weight,
        epochs: a.job.schedule.epochs_or(defaults::FINETUNE_EPOCHS),
        batch: a.job.schedule.batch_or(defaults::BATCH),
        seed: a.job.schedule.seed,
        lr: a.lr,
        bn_recalib: a.bn_recalib,
        precision: a.job.schedule.precision,
    };
    StageConfig::Finetune(cfg.clone()).validate()?;
    let from = source(
        &a.from,
        "gated",
        "pass the best.safetensors of `autorep replace` or `autorep snl`",
    )?;
    execute(choice, &a.job, &from.dataset, StageConfig::Finetune(cfg))
}

/// The per-image files `eval` was asked for (written even when some logits are not finite:
/// they are what shows where).
fn write_outputs(a: &EvalArgs, data: &Data, o: &autorep::train::EvalOutputs) -> anyhow::Result<()> {
    use autorep::data::write_npy;
    let n = o.labels.len();
    let ctx = |p: &Path| format!("writing {}", p.display());
    if let Some(p) = &a.logits {
        write_npy(p, &[n, o.classes], &o.logits).with_context(|| ctx(p))?;
    }
    if let Some(p) = &a.predictions {
        write_npy(p, &[n], &o.predictions()).with_context(|| ctx(p))?;
    }
    if let Some(p) = &a.labels {
        let labels: Vec<i64> = o.labels.iter().map(|&l| l as i64).collect();
        write_npy(p, &[n], &labels).with_context(|| ctx(p))?;
    }
    if let Some(p) = &a.inputs {
        let s = &data.test.set;
        write_npy(p, &[n, s.channels, s.height, s.width], &o.inputs).with_context(|| ctx(p))?;
    }
    Ok(())
}

pub fn eval(choice: DeviceChoice, a: EvalArgs) -> anyhow::Result<()> {
    let meta = source(
        &a.checkpoint,
        "the",
        "pass a best.safetensors or last.safetensors",
    )?;
    let outputs: Vec<(&str, &PathBuf)> = [
        ("--logits", &a.logits),
        ("--predictions", &a.predictions),
        ("--inputs", &a.inputs),
        ("--labels", &a.labels),
    ]
    .into_iter()
    .filter_map(|(option, out)| Some((option, out.as_ref()?)))
    .collect();
    for (i, (option, out)) in outputs.iter().enumerate() {
        super::not_the_input(out, option, &a.checkpoint)?;
        super::new_output(out, option, a.overwrite)?;
        if let Some((first, _)) = outputs[..i].iter().find(|(_, o)| o == out) {
            anyhow::bail!(
                "{option} and {first} both name {}: give each output its own file",
                out.display()
            );
        }
    }
    let dataset = a.dataset.as_deref().unwrap_or(&meta.dataset);
    let device = super::training_device(choice, false)?;
    // Without --data, the folder the run trained on (checkpoints record it), while it exists.
    let recorded = meta
        .data
        .as_ref()
        .filter(|src| a.data.is_none() && dataset == meta.dataset && src.dir.is_dir())
        .map(|src| src.dir.clone());
    if let Some(dir) = &recorded {
        println!(
            "data: {} (the folder the run trained on; --data chooses another)",
            dir.display()
        );
    }
    let dir = a
        .data
        .clone()
        .or(recorded)
        .unwrap_or_else(|| default_data_dir(dataset));
    let side = match autorep::data::Dataset::from_name(dataset)? {
        autorep::data::Dataset::ImageNet => meta.input,
        d => d.input_size(),
    };
    // A checkpoint of `autorep demo` evaluates on the subset embedded in this binary when no
    // folder is given and the default one is absent.
    let embedded = a.data.is_none()
        && dataset == "fashion-mnist"
        && !dir.exists()
        && meta.images == Some(autorep::demo::EMBEDDED_IMAGES);
    let data = if embedded {
        println!(
            "data: the Fashion-MNIST subset `autorep demo` trains on, embedded in this binary ({} test images)",
            a.limit_test.map_or(autorep::demo::EMBEDDED_IMAGES[1], |n| n.min(autorep::demo::EMBEDDED_IMAGES[1]))
        );
        autorep::demo::embedded_data(&device, a.limit_test.map(|n| (2, n)))?
    } else {
        autorep::train::load_test_data(dataset, &dir, side, a.limit_test, &device)?
    };
    let r = autorep::train::eval_checkpoint(&device, &a.checkpoint, &data, a.inputs.is_some())?;
    write_outputs(&a, &data, &r.outputs)?;
    if r.test.non_finite > 0 {
        return Err(autorep::experiment::report::non_finite(&a.checkpoint, &r.test).into());
    }
    println!(
        "{}: top-1 {:.2}%  top-5 {:.2}%  loss {:.4}  ReLUs {} of {} ({:.2}%){}",
        a.checkpoint.display(),
        100.0 * r.test.top1,
        100.0 * r.test.top5,
        r.test.loss,
        r.relus,
        r.relu_total,
        100.0 * r.relus as f64 / r.relu_total.max(1) as f64,
        if r.projected_gates > 0 {
            format!(
                " (a projected network: {} gates switched off after training)",
                r.projected_gates
            )
        } else {
            String::new()
        }
    );
    println!("{:<22} {:>9} {:>9} {:>7}", "site", "kept", "total", "kept%");
    for s in &r.sites {
        println!(
            "{:<22} {:>9} {:>9} {:>6.2}%",
            s.name,
            s.relus,
            s.total,
            100.0 * s.relus as f64 / s.total.max(1) as f64
        );
    }
    let c = autorep::cost::estimate_sites(
        &autorep::cost::Protocol::crypten(),
        &r.sites,
        autorep::cost::LAN_BANDWIDTH_BYTES_PER_S,
        autorep::cost::LAN_RTT_S,
    );
    println!("{}", c.table());
    Ok(())
}
