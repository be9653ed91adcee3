//! `autorep run`: every stage of an experiment file in order, each in `OUT/<stage>` through the
//! one stage driver, then every result evaluated into `OUT/summary.csv` and `summary.json`.

use super::config::Config;
use super::report::{self, Row};
use crate::train::config::StageConfig;
use crate::train::run_dir::FolderLock;
use crate::train::{load_data_sized, run_stage, Data, Existing, RunOptions as StageOptions};
use crate::{Device, Error, Result};
use std::path::PathBuf;

/// How `run` behaves beyond the file.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// No progress bars or per-epoch lines.
    pub quiet: bool,
    /// What to do with the stage folders of an earlier run: refuse (default), resume (a
    /// finished stage then only reports its result) or overwrite.
    pub existing: Existing,
    /// Accept a stage whose mask ends over budget (its projected network is reported).
    pub project: bool,
}

/// What an experiment ends with.
#[derive(Debug, Clone)]
pub struct Summary {
    pub name: String,
    pub out: PathBuf,
    pub rows: Vec<Row>,
    pub seconds: f64,
}

impl Summary {
    pub fn table(&self) -> String {
        report::table(&self.rows)
    }
}

/// The method a stage's row reports.
pub fn method(stage: &StageConfig) -> &'static str {
    match stage {
        StageConfig::Train(_) => "baseline",
        StageConfig::Replace(c) if c.identity => "identity",
        StageConfig::Replace(_) => "autorep",
        StageConfig::Snl(_) => "snl",
        StageConfig::Finetune(_) => "finetune",
    }
}

/// Run every stage of `cfg` in order on `data` (see [`crate::train::load_data`]), then evaluate each
/// stage's result. Writes `OUT/config.toml` (the file as given), `OUT/summary.csv` and
/// `OUT/summary.json`.
pub fn run_with_data(
    device: &Device,
    cfg: &Config,
    data: &Data,
    opts: &RunOptions,
) -> Result<Summary> {
    let resumed;
    let cfg = if opts.existing == Existing::Resume {
        let mut c = cfg.clone();
        c.adopt_resumed_options();
        resumed = c;
        &resumed
    } else {
        cfg
    };
    cfg.validate()?;
    let start = std::time::Instant::now();
    let e = &cfg.experiment;
    let out = cfg.out();
    let _lock = FolderLock::acquire(&out)?;
    cfg.check_checkpoints()?;
    if !cfg.source.is_empty() {
        report::write(&out.join("config.toml"), &cfg.source)?;
    }
    let mut rows = Vec::new();
    let mut outcomes: Vec<crate::train::Outcome> = Vec::new();
    for mut stage in cfg.resolved() {
        let name = stage.name();
        if let StageConfig::Finetune(f) = &mut stage {
            let from = f.from.clone().unwrap_or_default();
            let source = outcomes
                .iter()
                .find(|o| cfg.stage_dir(o.stage) == from.parent().unwrap_or(&from));
            // A last mask over its budget would have to be projected, and a projected network
            // is not finetuned: finetune starts from the best epoch within the budget instead,
            // and without one it cannot start.
            if let Some(o) = source.filter(|o| !from.is_file() || !o.reached_by_selection()) {
                let Some(best) = o.best_path.clone().filter(|b| *b != from) else {
                    return Err(Error::Invalid(format!(
                        "[finetune] cannot start: the {} stage's mask ended at {} ReLUs, over its budget of {}, and no epoch met it, so there is no best checkpoint (a projected network is not finetuned); give it more epochs or a larger mask_lr",
                        o.stage,
                        o.count_before_projection,
                        o.budget.unwrap_or_default()
                    )));
                };
                if !opts.quiet {
                    println!(
                        "[finetune] starts from {}: the {} stage's last mask ended at {} ReLUs, over its budget of {}",
                        best.display(),
                        o.stage,
                        o.count_before_projection,
                        o.budget.unwrap_or_default()
                    );
                }
                f.from = Some(best);
            }
        }
        if !opts.quiet {
            println!("== [{}] {name}", e.name);
        }
        let m = method(&stage);
        let o = StageOptions {
            out: cfg.stage_dir(name),
            existing: opts.existing,
            quiet: opts.quiet,
            stop_after: None,
            allow_projection: opts.project,
        };
        let outcome = run_stage(device, data, Some(&e.model), stage, &o)?;
        rows.push(report::row(device, data, m, &outcome)?);
        outcomes.push(outcome);
    }
    let summary = Summary {
        name: e.name.clone(),
        out: out.clone(),
        rows,
        seconds: start.elapsed().as_secs_f64(),
    };
    report::write(&out.join("summary.csv"), &report::csv(&summary.rows))?;
    report::write(&out.join("summary.json"), &report::json(&summary.rows))?;
    Ok(summary)
}

/// Load the experiment's data (its folder, limits) and run it: `autorep run`.
pub fn run(device: &Device, cfg: &Config, opts: &RunOptions) -> Result<Summary> {
    cfg.validate()?;
    cfg.check_data()?;
    let e = &cfg.experiment;
    let side = match e.image_size {
        Some(side) => side,
        None => crate::data::Dataset::from_name(&e.dataset)?.input_size(),
    };
    let data = load_data_sized(
        &e.dataset,
        &cfg.data_dir(),
        side,
        e.limit_train,
        e.limit_test,
        device,
    )?;
    if !opts.quiet {
        println!(
            "{}",
            data.banner_from(device, Some(&e.model), &cfg.data_dir())
        );
    }
    run_with_data(device, cfg, &data, opts)
}
