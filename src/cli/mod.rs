//! The command line: one file per command, each a thin handler over the library. Arguments
//! take their defaults from `autorep::train::config::defaults`, the same constants the TOML
//! reader uses.

mod bench;
mod cost;
mod demo;
mod export;
mod info;
mod run;
mod stages;
mod step_profile;
mod tune;

use autorep::plans::{use_plans, PlansSource};
use autorep::train::config::{defaults, Precision};
use autorep::{Device, DeviceChoice};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "autorep",
    version,
    about = "AutoReP ReLU replacement on a wgpu/WGSL training engine"
)]
pub struct Cli {
    /// Where to run: a hardware GPU, else a software adapter, else the CPU (auto); or force one.
    #[arg(long, global = true, env = "AUTOREP_DEVICE", default_value = "auto")]
    device: DeviceChoice,
    /// Run the convolutions by the plans in this file (written by `autorep tune --out FILE` on
    /// the same GPU) instead of the adapter's cached plans (what `autorep tune` measured here,
    /// if anything); `rule`: the built-in rule only (a file named rule: ./rule). Passes without
    /// a plan keep the rule.
    #[arg(long, global = true, env = "AUTOREP_PLANS", value_name = "FILE|rule")]
    plans: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List every GPU adapter with its limits and features, and say which one `auto` picks.
    Devices,
    /// The whole AutoReP pipeline on the embedded Fashion-MNIST subset: baseline, AutoReP and
    /// its identity ablation, SNL at the same ReLU budget, and a final comparison table.
    Demo(demo::DemoArgs),
    /// ReLUs of a model: one row per activation site in execution order, and the total.
    Count(info::CountArgs),
    /// DaPa: the least-squares polynomial fit of ReLU under N(mean, std²).
    Dapa(info::DapaArgs),
    /// Private-inference cost (communication, rounds, latency, client storage) of a model with
    /// some ReLUs replaced by polynomials, under the CrypTen and Delphi presets.
    Cost(cost::CostArgs),
    /// Train the all-ReLU baseline (SGD 0.1, momentum 0.9, weight decay 5e-4, cosine; 400
    /// epochs at batch 256 unless told otherwise, as the official script).
    Train(stages::TrainArgs),
    /// AutoReP: learn which ReLUs to keep under a budget and replace the rest with DaPa
    /// polynomials, starting from (and distilling from) a baseline checkpoint.
    Replace(stages::ReplaceArgs),
    /// The SNL baseline: continuous gates with a growing L1 weight until the budget is met,
    /// binarise, then finetune.
    Snl(stages::SnlArgs),
    /// Finetune a gated checkpoint with its mask frozen (SGD, optional KD).
    Finetune(stages::FinetuneArgs),
    /// Top-1/top-5 accuracy, loss, ReLU count, per-site kept fraction and cost of a checkpoint.
    Eval(stages::EvalArgs),
    /// Export a checkpoint's network: ONNX (opset 17) with its masks and polynomials, for
    /// private-inference frameworks and runtimes, or a PyTorch state dict.
    Export(export::ExportArgs),
    /// Import a PyTorch state dict (.pth or safetensors, e.g. torchvision's weights) as an
    /// all-ReLU checkpoint.
    Import(export::ImportArgs),
    /// Datasets: download the official archives.
    Data {
        #[command(subcommand)]
        what: info::DataWhat,
    },
    /// Measure every convolution pass of a model's training step under each tile, K split,
    /// prefetch and epilogue this GPU can run, and write the fastest per pass to a plans file.
    Tune(tune::TuneArgs),
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        what: bench::BenchWhat,
    },
    /// Run a whole experiment from a TOML file: [experiment], then [train], [replace], [snl]
    /// and [finetune] in that order (each optional), chaining checkpoints, and evaluate each
    /// stage's result (see assets/configs).
    Run(run::RunArgs),
    /// Replacement at several budgets from one baseline: OUT/<method>_<budget> per point, then
    /// OUT/sweep.csv, sweep.json and sweep.svg (top-1 against ReLU count).
    Sweep(run::SweepArgs),
}

/// What every training command shares.
#[derive(clap::Args, Clone)]
pub struct JobArgs {
    /// resnet18_in, resnet18, wrn22_8, efficientnet_b2 or small (train: resnet18_in; other
    /// stages: the checkpoint's, and a different one is an error).
    #[arg(long)]
    model: Option<String>,
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    schedule: ScheduleArgs,
    /// Run folder: checkpoints and metrics.jsonl (default runs/<command>: runs/train,
    /// runs/replace, runs/snl, runs/finetune).
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    folder: FolderArgs,
}

/// Epochs, batch and seed of a training command or a sweep.
#[derive(clap::Args, Clone)]
pub struct ScheduleArgs {
    /// Epochs [default: as the official scripts: train 400, replace 200, finetune 50; snl
    /// selection 200 (the paced schedule's; --schedule official, as SNL's code, needs up to 2000)]
    #[arg(long)]
    epochs: Option<usize>,
    /// Batch size [default: as the official scripts: train 256, the others 128]
    #[arg(long)]
    batch: Option<usize>,
    #[arg(long, default_value_t = defaults::SEED)]
    seed: u64,
    /// Activation precision: f16 stores activations and their gradients in half precision
    /// (f32 master weights, optimizer state, batch-norm statistics, gate math and loss, with
    /// dynamic loss scaling; needs a GPU with SHADER_F16); auto picks f16 on such a hardware
    /// GPU and f32 elsewhere. Evaluation runs in f32.
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    precision: Precision,
}

impl ScheduleArgs {
    /// `--epochs`, else this stage's default.
    fn epochs_or(&self, default: usize) -> usize {
        self.epochs.unwrap_or(default)
    }
    /// `--batch`, else this stage's default.
    fn batch_or(&self, default: usize) -> usize {
        self.batch.unwrap_or(default)
    }
}

/// The dataset of a training command or a sweep.
#[derive(clap::Args, Clone)]
pub struct DataArgs {
    /// cifar10, cifar100, tiny-imagenet, fashion-mnist or imagenet (train: cifar10;
    /// otherwise the checkpoint's).
    #[arg(long)]
    dataset: Option<String>,
    /// Dataset folder (default: ../shared/data/cifar-10-jpeg75-bin for cifar10 when it
    /// exists, else the dataset's folder in data/, where `autorep data fetch` puts it).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Use only the first N training images.
    #[arg(long)]
    limit_train: Option<usize>,
    /// Use only the first N test images.
    #[arg(long)]
    limit_test: Option<usize>,
    /// ImageNet only: the side of the crops the network sees (default 224).
    #[arg(long)]
    image_size: Option<usize>,
}

impl DataArgs {
    /// The dataset's name: the one given, else `fallback`.
    fn name<'a>(&'a self, fallback: &'a str) -> &'a str {
        self.dataset.as_deref().unwrap_or(fallback)
    }

    /// The dataset's folder: the one given, else the default for `fallback`'s dataset.
    fn dir(&self, fallback: &str) -> PathBuf {
        self.data
            .clone()
            .unwrap_or_else(|| autorep::train::default_data_dir(self.name(fallback)))
    }

    /// Both splits of the dataset (the given one, else `fallback`) on `device`.
    fn load(&self, fallback: &str, device: &Device) -> anyhow::Result<autorep::train::Data> {
        let dataset = self.name(fallback);
        let dir = self.dir(fallback);
        let side = match self.image_size {
            Some(side) => side,
            None => autorep::data::Dataset::from_name(dataset)?.input_size(),
        };
        Ok(autorep::train::load_data_sized(
            dataset,
            &dir,
            side,
            self.limit_train,
            self.limit_test,
            device,
        )?)
    }
}

/// What a command does with a run folder that already holds a run, and how it reports.
#[derive(clap::Args, Clone)]
pub struct FolderArgs {
    /// Continue from the last.safetensors of every stage (a finished stage only reports);
    /// stage options not given take the run's own values.
    #[arg(long, conflicts_with = "overwrite")]
    resume: bool,
    /// Delete an earlier run's checkpoints and metrics and start over.
    #[arg(long)]
    overwrite: bool,
    /// No progress bars or per-epoch lines (metrics.jsonl is still written).
    #[arg(long)]
    quiet: bool,
    /// replace, snl (and run, sweep): accept a mask that ends over the budget: its gates with
    /// the smallest indicator are switched off and that network is written as
    /// projected.safetensors (never best). Without it such a run fails, saying what would
    /// reach the budget. train and finetune have no budget to miss.
    #[arg(long)]
    project: bool,
}

impl FolderArgs {
    fn existing(&self) -> autorep::train::Existing {
        use autorep::train::Existing;
        match (self.resume, self.overwrite) {
            (true, _) => Existing::Resume,
            (_, true) => Existing::Overwrite,
            _ => Existing::Refuse,
        }
    }
}

/// `path` must be a file: a folder or a missing path is a one-line error naming `what` and
/// ending with `hint`.
fn existing_file(path: &std::path::Path, what: &str, hint: &str) -> anyhow::Result<()> {
    match autorep::files::not_a_file(path) {
        Some(why) => anyhow::bail!("{what} {} {why}: {hint}", path.display()),
        None => Ok(()),
    }
}

/// An output written only after a long measurement must have somewhere to go: checked first,
/// so a mistyped folder fails at once rather than after the work.
fn writable_later(out: &std::path::Path, option: &str) -> anyhow::Result<()> {
    if out.is_dir() {
        anyhow::bail!("{option} {} is a folder: name a file in it", out.display());
    }
    // A device or pipe (/dev/stdout) is written in place, or refused by a writer that renames
    // over regular files only. A regular file, new or replaced, may be written beside itself
    // and renamed into place, so its folder must take new files.
    if out.exists() && !out.is_file() {
        return Ok(());
    }
    usable_folder(out, folder_of(out), option)
}

/// The folder a path names a file in: its parent, or the working folder.
fn folder_of(path: &std::path::Path) -> &std::path::Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."))
}

/// `dir`, where `out` (given as `what`) goes, must be a folder that takes new files.
fn usable_folder(out: &std::path::Path, dir: &std::path::Path, what: &str) -> anyhow::Result<()> {
    let (out, shown) = (out.display(), dir.display());
    if dir.exists() && !dir.is_dir() {
        anyhow::bail!("{what} {out}: {shown} is a file, not a folder; choose another path");
    }
    if !dir.is_dir() {
        anyhow::bail!(
            "{what} {out}: the folder {shown} does not exist; create it or choose another path"
        );
    }
    can_write_in(dir).map_err(|e| {
        anyhow::anyhow!("{what} {out}: cannot write in {shown}: {e}; choose another path")
    })
}

/// Whether folder `dir` takes a new file (permissions, a read-only or virtual file system):
/// a probe file created and removed at once.
fn can_write_in(dir: &std::path::Path) -> std::io::Result<()> {
    let probe = dir.join(format!(".autorep-write-test.{}", std::process::id()));
    // Not create_new: a probe a killed process of the same pid left must not fail this one.
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&probe)?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// A run folder to be created later (an experiment's): its nearest existing ancestor must be
/// a folder that takes new files, so that a dry run finds what the run would fail on.
fn creatable_folder(out: &std::path::Path, what: &str) -> anyhow::Result<()> {
    // A relative path's last ancestor is the empty path: the working folder.
    let existing = out
        .ancestors()
        .find(|a| a.exists())
        .unwrap_or(std::path::Path::new("."));
    usable_folder(out, existing, what)
}

/// A file the command writes must have somewhere to go and, unless `overwrite`, must not
/// replace a regular file already there (it may be a checkpoint or an earlier result): checked
/// before the work. A device or pipe (`/dev/stdout`) is the writer's to take or refuse.
fn new_output(out: &std::path::Path, option: &str, overwrite: bool) -> anyhow::Result<()> {
    writable_later(out, option)?;
    if !overwrite && out.is_file() {
        anyhow::bail!(
            "{option} {} already exists: pass --overwrite to replace it, or choose another path",
            out.display()
        );
    }
    Ok(())
}

/// Output `out` (given as `option`) must not be the file `input` names: writing it would
/// destroy the input the command reads.
fn not_the_input(
    out: &std::path::Path,
    option: &str,
    input: &std::path::Path,
) -> anyhow::Result<()> {
    if autorep::files::same_file(out, input) {
        anyhow::bail!(
            "{option} {} is the input {} (or a link to it): writing it would destroy the input; choose another path",
            out.display(),
            input.display()
        );
    }
    Ok(())
}

/// The device a training or evaluation command runs on: `--device auto` skips a software
/// adapter (lavapipe, WARP), which is slower than the CPU backend, saying so unless `quiet`.
fn training_device(choice: DeviceChoice, quiet: bool) -> anyhow::Result<Device> {
    let device = Device::open(choice)?;
    if let Device::Gpu(g) = &device {
        if g.report().is_software() && choice == DeviceChoice::Auto {
            if !quiet {
                println!("{} is a software adapter, slower than the CPU backend for training: using the CPU (--device gpu forces it)", g.report().name);
            }
            return Ok(Device::Cpu);
        }
    }
    Ok(device)
}

impl Cli {
    /// The command line, parsed. Every option that takes a value accepts one that looks like
    /// a negative number, so `--epochs -1` or `--bandwidth -1` meets the option's own check
    /// ("invalid value '-1' for '--epochs'", "--bandwidth -1 is invalid") instead of being
    /// read as an unknown flag.
    pub fn parse_args() -> Cli {
        use clap::{CommandFactory, FromArgMatches};
        // clap names the option, not the variable, when the environment's value is wrong
        // (and reads it even where --device is given).
        if let Ok(v) = std::env::var("AUTOREP_DEVICE") {
            if <DeviceChoice as clap::ValueEnum>::from_str(&v, false).is_err() {
                eprintln!(
                    "error: AUTOREP_DEVICE={v}: expected auto, gpu or cpu (or leave it unset)"
                );
                std::process::exit(2)
            }
        }
        let matches = negative_values(Cli::command())
            .try_get_matches()
            .unwrap_or_else(|e| exit_in_one_line(e));
        if let Some((_, sub)) = matches.subcommand() {
            use clap::parser::ValueSource;
            let given = sub
                .ids()
                .filter(|id| {
                    matches!(
                        sub.value_source(id.as_str()),
                        Some(ValueSource::CommandLine | ValueSource::EnvVariable)
                    )
                })
                .map(|id| id.to_string())
                .collect();
            let _ = GIVEN.set(given);
        }
        Cli::from_arg_matches(&matches).unwrap_or_else(|e| exit_in_one_line(e))
    }
}

/// A command-line error in one line, as every other error (clap's own spans the usage and a
/// pointer to --help over five): what is wrong, any tip, then "see --help"; exit status 2.
/// Help and version requests print as clap prints them.
fn exit_in_one_line(e: clap::Error) -> ! {
    use clap::error::ErrorKind::*;
    if matches!(
        e.kind(),
        DisplayHelp | DisplayVersion | DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        e.exit()
    }
    let text = e.render().to_string();
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .filter(|l| !l.is_empty())
        .collect();
    let (tips, what): (Vec<&str>, Vec<&str>) =
        lines.into_iter().partition(|l| l.starts_with("tip:"));
    let mut line = what.join(" ");
    for tip in tips {
        line += &format!("; {tip}");
    }
    eprintln!("{line} (see --help)");
    std::process::exit(2)
}

/// The command's options that were given (on the command line or through the environment)
/// rather than left to their defaults, by name.
static GIVEN: std::sync::OnceLock<std::collections::HashSet<String>> = std::sync::OnceLock::new();

/// Whether the command gave option `id` (its field name: `epochs`, `kd_weight`, `teacher`):
/// `--resume` takes every other one from the run. Unknown (not parsed here): given.
fn given(id: &str) -> bool {
    GIVEN.get().is_none_or(|g| g.contains(id))
}

fn negative_values(cmd: clap::Command) -> clap::Command {
    // A command missing its subcommand (`autorep data`) is a one-line error naming them, not
    // the whole help.
    let cmd = if cmd.has_subcommands() {
        cmd.arg_required_else_help(false)
    } else {
        cmd
    };
    cmd.mut_args(|a| {
        let takes = a.get_action().takes_values();
        a.allow_negative_numbers(takes)
    })
    .mut_subcommands(negative_values)
}

/// Settings read from the environment outside the kernel layer's knobs: the command line's
/// (`env = …` in clap), the plans cache, and the test suite's.
const OTHER_SETTINGS: &[&str] = &[
    "AUTOREP_DEVICE",
    "AUTOREP_PLANS",
    "AUTOREP_CACHE_DIR",
    "AUTOREP_REQUIRE_GPU",
    "AUTOREP_REQUIRE_SPIRV_VAL",
    "AUTOREP_REQUIRE_TORCH",
    "AUTOREP_REQUIRE_ONNXRUNTIME",
    "AUTOREP_PYTHON",
    "AUTOREP_TORCH_PYTHON",
];

/// A tuning knob whose value no reader takes is an error; an `AUTOREP_` variable nothing
/// reads (a misspelt knob) is a warning, since the run would otherwise ignore it unseen.
fn check_environment() -> anyhow::Result<()> {
    autorep_kernels::knobs::check_env()?;
    let known: Vec<&str> = autorep_kernels::knobs::names()
        .chain(OTHER_SETTINGS.iter().copied())
        .collect();
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("AUTOREP_") && !known.contains(&name.as_ref()) {
            eprintln!(
                "warning: {name} is not a setting autorep reads (its settings: README, \"Tuning knobs\"); ignored"
            );
        }
    }
    Ok(())
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    check_environment()?;
    let choice = cli.device;
    match &cli.plans {
        Some(rule) if rule.as_os_str() == "rule" => use_plans(PlansSource::Rule),
        Some(path) => use_plans(PlansSource::File(path.clone())),
        None => {
            if let Some(dir) = autorep::plans::cache_dir() {
                use_plans(PlansSource::Cache(dir));
            }
        }
    }
    match cli.command {
        Command::Devices => info::devices(choice),
        Command::Demo(a) => demo::demo(choice, a),
        Command::Count(a) => info::count(a),
        Command::Dapa(a) => info::dapa(a),
        Command::Cost(a) => cost::cost(a),
        Command::Data { what } => info::data(what),
        Command::Train(a) => stages::train(choice, a),
        Command::Replace(a) => stages::replace(choice, a),
        Command::Snl(a) => stages::snl(choice, a),
        Command::Finetune(a) => stages::finetune(choice, a),
        Command::Eval(a) => stages::eval(choice, a),
        Command::Export(a) => export::export(a),
        Command::Import(a) => export::import(a),
        Command::Tune(a) => tune::tune(choice, a),
        Command::Bench { what } => bench::bench(choice, what),
        Command::Run(a) => run::run(choice, a),
        Command::Sweep(a) => run::sweep(choice, a),
    }
}
