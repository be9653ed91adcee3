//! `run CONFIG.toml` and `sweep`: whole experiments through the stage driver.

use super::stages::GateOpts;
use super::{training_device, DataArgs, FolderArgs, ScheduleArgs};
use anyhow::Context;
use autorep::autorep::Budget;
use autorep::experiment::{self, Config};
use autorep::train::config::{defaults, SnlConfig};
use autorep::train::StageConfig;
use autorep::DeviceChoice;
use std::collections::BTreeSet;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct RunArgs {
    /// The experiment file, e.g. assets/configs/cpu_small.toml.
    config: PathBuf,
    /// Run folder (default: the file's `out`, else runs/<name>).
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    folder: FolderArgs,
    /// Check the file and print the plan without training.
    #[arg(long)]
    dry_run: bool,
}

pub fn run(choice: DeviceChoice, a: RunArgs) -> anyhow::Result<()> {
    let mut cfg = Config::load(&a.config)?;
    if a.out.is_some() {
        cfg.experiment.out = a.out;
    }
    // Without `out`, the name is a folder under runs/, which it must not leave.
    let name = std::path::Path::new(&cfg.experiment.name);
    let inside = name
        .components()
        .all(|c| matches!(c, std::path::Component::Normal(_)));
    if cfg.experiment.out.is_none() && !inside {
        anyhow::bail!(
            "{}: [experiment] name '{}' leaves runs/: name the experiment without '..' or a leading '/', or set out = \"FOLDER\" (or --out)",
            a.config.display(),
            cfg.experiment.name
        );
    }
    if a.folder.resume {
        for (stage, keys) in cfg.adopt_resumed_options() {
            println!(
                "[{stage}] resumes with the run's own {} (not in the file; the defaults differ)",
                keys.join(", ")
            );
        }
    }
    print!("{}", cfg.plan());
    cfg.check_data()?;
    cfg.check_checkpoints()?;
    super::creatable_folder(&cfg.out(), "the experiment's folder")?;
    if a.dry_run {
        return Ok(());
    }
    let device = training_device(choice, a.folder.quiet)?;
    let opts = experiment::RunOptions {
        quiet: a.folder.quiet,
        existing: a.folder.existing(),
        project: a.folder.project,
    };
    let s = experiment::run(&device, &cfg, &opts)
        .with_context(|| format!("experiment {}", a.config.display()))?;
    println!("\n{}", s.table());
    println!(
        "{}: summary in {} and summary.json ({:.0} s)",
        s.name,
        s.out.join("summary.csv").display(),
        s.seconds
    );
    Ok(())
}

#[derive(clap::Args)]
pub struct SweepArgs {
    /// All-ReLU baseline checkpoint (from `autorep train`).
    #[arg(long)]
    baseline: PathBuf,
    /// Budgets, comma-separated, e.g. 5k,10k,20k.
    #[arg(
        long,
        value_delimiter = ',',
        required = true,
        allow_hyphen_values = true
    )]
    budgets: Vec<String>,
    /// Also run SNL at each budget.
    #[arg(long)]
    snl: bool,
    /// Sweep folder.
    #[arg(long, default_value = "runs/sweep")]
    out: PathBuf,
    #[command(flatten)]
    data: DataArgs,
    /// Replacement epochs (and SNL's selection epochs unless --snl-epochs), batch and seed at
    /// each budget.
    #[command(flatten)]
    schedule: ScheduleArgs,
    #[command(flatten)]
    folder: FolderArgs,
    #[command(flatten)]
    gates: GateOpts,
    /// SNL: initial L1 weight λ₁.
    #[arg(long, default_value_t = defaults::SNL_LAMBDA)]
    snl_lambda: f32,
    /// SNL: selection epochs at most (default: --epochs).
    #[arg(long)]
    snl_epochs: Option<usize>,
    #[arg(long, default_value_t = defaults::ADAM_LR)]
    snl_lr: f32,
    /// SNL: Adam rate of α.
    #[arg(long, default_value_t = defaults::ADAM_LR)]
    snl_alpha_lr: f32,
    /// SNL: paced or official λ₁ growth.
    #[arg(long, default_value = "paced")]
    snl_schedule: autorep::train::config::SnlSchedule,
    #[arg(long, default_value_t = defaults::SNL_FINETUNE_EPOCHS)]
    finetune_epochs: usize,
    #[arg(long, default_value_t = defaults::FINETUNE_LR)]
    finetune_lr: f32,
}

pub fn sweep(choice: DeviceChoice, a: SweepArgs) -> anyhow::Result<()> {
    let budgets = a
        .budgets
        .iter()
        .filter(|b| !b.trim().is_empty())
        .map(|b| Budget::parse(b))
        .collect::<autorep::Result<Vec<_>>>()?;
    if budgets.is_empty() {
        anyhow::bail!("--budgets is empty: pass e.g. --budgets 5k,10k,20k");
    }
    let replace = a.gates.config(budgets[0], &a.schedule)?;
    let granularity = replace.granularity;
    let snl = a.snl.then(|| SnlConfig {
        epochs: a.snl_epochs.unwrap_or(replace.epochs),
        batch: replace.batch,
        seed: a.schedule.seed,
        lambda: a.snl_lambda,
        lr: a.snl_lr,
        alpha_lr: a.snl_alpha_lr,
        schedule: a.snl_schedule,
        finetune_epochs: a.finetune_epochs,
        finetune_lr: a.finetune_lr,
        granularity,
        kd: a.gates.kd,
        kd_temperature: a.gates.distill.kd_temperature,
        kd_weight: a.gates.distill.kd_weight,
        bn_recalib: a.gates.bn_recalib,
        precision: a.schedule.precision,
        ..SnlConfig::new(budgets[0].relus)
    });
    // Every option checked before the baseline or any data is read.
    if let Some(s) = &snl {
        autorep::train::StageConfig::Snl(s.clone()).validate()?;
    }
    super::existing_file(
        &a.baseline,
        "baseline checkpoint",
        "train one with `autorep train --out DIR` and pass DIR/best.safetensors",
    )?;
    let recorded = match &a.data.dataset {
        Some(_) => String::new(),
        None => autorep::train::checkpoint::Checkpoint::read_meta(&a.baseline)?
            .dataset
            .clone(),
    };
    let device = training_device(choice, a.folder.quiet)?;
    let data = a.data.load(&recorded, &device)?;
    if !a.folder.quiet {
        println!(
            "{}",
            data.banner_from(&device, None, &a.data.dir(&recorded))
        );
    }
    let (replace_cfg, snl_cfg) = (replace.clone(), snl.clone());
    let cfg = experiment::SweepConfig {
        baseline: a.baseline,
        budgets,
        replace,
        snl,
        out: a.out,
        quiet: a.folder.quiet,
        existing: a.folder.existing(),
        project: a.folder.project,
        given: experiment::Given {
            replace: Some(given_keys(&StageConfig::Replace(replace_cfg), super::given)),
            snl: snl_cfg.map(|c| given_keys(&StageConfig::Snl(c), snl_given)),
        },
    };
    let start = std::time::Instant::now();
    let rows = experiment::sweep(&device, &data, &cfg)?;
    println!("\n{}", experiment::report::table(&rows));
    println!(
        "wrote {}, sweep.json, summary.json and sweep.svg ({:.0} s)",
        cfg.out.join("sweep.csv").display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The keys of `cfg` the command gave (`given` is asked by key).
fn given_keys(cfg: &StageConfig, given: fn(&str) -> bool) -> BTreeSet<String> {
    cfg.fields()
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| given(k))
        .collect()
}

/// Whether the sweep's command gave SNL's option `key`.
fn snl_given(key: &str) -> bool {
    snl_options(key).iter().any(|o| super::given(o))
}

/// The sweep's options that set SNL's key `key`: SNL's own where the replacement has one of
/// the name, and its epochs by either.
fn snl_options(key: &str) -> Vec<String> {
    match key {
        "epochs" => vec!["snl_epochs".into(), "epochs".into()],
        "lambda" | "lr" | "alpha_lr" | "schedule" => vec![format!("snl_{key}")],
        k => vec![k.to_string()],
    }
}

#[cfg(test)]
mod tests {
    use autorep::train::config::{
        FinetuneConfig, ReplaceStageConfig, SnlConfig, StageConfig, TrainConfig,
    };
    use std::collections::BTreeSet;

    /// The configuration keys of a stage.
    fn keys(cfg: StageConfig) -> Vec<String> {
        let keys: Vec<String> = cfg.fields().into_iter().map(|(k, _)| k).collect();
        assert!(!keys.is_empty());
        keys
    }

    fn arg_ids(command: &str) -> BTreeSet<String> {
        use clap::CommandFactory;
        let cmd = super::super::Cli::command();
        let sub = cmd.find_subcommand(command).unwrap();
        sub.get_arguments()
            .chain(cmd.get_arguments())
            .map(|a| a.get_id().to_string())
            .collect()
    }

    /// `--resume` asks whether each configuration key was given by the option of that id
    /// (`super::super::given`): a key without one would always be taken from the run, even
    /// where the command gave its value under another name.
    #[test]
    fn every_stage_key_is_an_option_of_its_command() {
        let stages = [
            ("train", StageConfig::Train(TrainConfig::default()), vec![]),
            (
                "replace",
                StageConfig::Replace(ReplaceStageConfig::new(1)),
                vec![],
            ),
            ("snl", StageConfig::Snl(SnlConfig::new(1)), vec![]),
            // Set by --teacher (keep_resumed_options asks for it).
            (
                "finetune",
                StageConfig::Finetune(FinetuneConfig::default()),
                vec!["kd"],
            ),
        ];
        for (command, cfg, derived) in stages {
            let ids = arg_ids(command);
            for k in keys(cfg) {
                assert!(
                    ids.contains(&k) || derived.contains(&k.as_str()),
                    "`{command}` has no option for its key {k}"
                );
            }
        }
        // A sweep: the replacement's keys by their own options (the budget and baseline are
        // the sweep's), SNL's through snl_options.
        let ids = arg_ids("sweep");
        for k in keys(StageConfig::Replace(ReplaceStageConfig::new(1))) {
            assert!(
                ids.contains(&k) || k == "budget",
                "`sweep` has no option for {k}"
            );
        }
        for k in keys(StageConfig::Snl(SnlConfig::new(1))) {
            let options = super::snl_options(&k);
            assert!(
                options.iter().all(|o| ids.contains(o)) || k == "budget",
                "`sweep` sets SNL's {k} by {options:?}, which are not all its options"
            );
        }
    }
}
