//! `autorep sweep`: the replacement (and optionally SNL) at several budgets from one
//! baseline, each point in `OUT/<method>_<budget>`, then `sweep.csv`, `sweep.json` (also as
//! `summary.json`) and `sweep.svg`.

use super::plot::sweep_svg;
use super::report::{self, Row};
use crate::autorep::Budget;
use crate::train::config::{ReplaceStageConfig, SnlConfig, StageConfig};
use crate::train::run_dir::FolderLock;
use crate::train::{run_stage, Data, Existing, RunOptions};
use crate::{Device, Error, Result};
use std::path::{Path, PathBuf};

/// A budget sweep from one baseline.
#[derive(Debug, Clone)]
pub struct SweepConfig {
    pub baseline: PathBuf,
    pub budgets: Vec<Budget>,
    /// The replacement at each budget (its budget and baseline are the sweep's).
    pub replace: ReplaceStageConfig,
    /// Also SNL at each budget.
    pub snl: Option<SnlConfig>,
    pub out: PathBuf,
    pub quiet: bool,
    pub existing: Existing,
    /// Accept points whose mask ends over budget (their projected networks are reported).
    pub project: bool,
    /// The options the command gave, by configuration key, for each method: a resumed point
    /// takes every other one from its run.
    pub given: Given,
}

/// The configuration keys a sweep's command gave, for the replacement and for SNL; `None`
/// (the default) is all of them: a sweep configured in code resumes with exactly its values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Given {
    pub replace: Option<std::collections::BTreeSet<String>>,
    pub snl: Option<std::collections::BTreeSet<String>>,
}

/// The run folder of one point: `OUT/<method>_<budget label>`.
pub fn sweep_dir(out: &Path, method: &str, budget: &Budget) -> PathBuf {
    out.join(format!("{method}_{}", budget.label()))
}

/// Run the sweep on `data`, evaluate the baseline and every point, and write the files.
/// Every budget is checked against the model before anything trains.
pub fn sweep(device: &Device, data: &Data, cfg: &SweepConfig) -> Result<Vec<Row>> {
    if cfg.budgets.is_empty() {
        return Err(Error::Invalid(
            "no budgets to sweep: pass e.g. --budgets 5k,10k,20k".into(),
        ));
    }
    // Two points of one label would share a run folder (5k and 5000 are one budget).
    for (i, b) in cfg.budgets.iter().enumerate() {
        if let Some(a) = cfg.budgets[..i].iter().find(|a| a.label() == b.label()) {
            return Err(Error::Invalid(format!(
                "budgets {} and {} would share the run folder of budget {}: list each budget once (at least 1k apart from 1m up)",
                a.relus,
                b.relus,
                b.label()
            )));
        }
    }
    if !cfg.baseline.is_file() {
        return Err(Error::Invalid(format!(
            "baseline checkpoint {} not found: train one with `autorep train --out DIR` and pass DIR/best.safetensors",
            cfg.baseline.display()
        )));
    }
    // Budgets against the baseline's ReLUs before the folder is locked or anything runs.
    let m = crate::train::checkpoint::Checkpoint::read_meta(&cfg.baseline)?;
    let total = crate::models::build(&m.model, &Device::Cpu, m.channels, m.input, m.classes, 0)?
        .relu_total();
    if let Some(b) = cfg.budgets.iter().find(|b| b.relus > total) {
        return Err(Error::Invalid(format!(
            "budget {} exceeds the baseline's {total} ReLUs: choose budgets of at most {total}",
            b.relus
        )));
    }
    let _lock = FolderLock::acquire(&cfg.out)?;
    let base = report::checkpoint_row(device, data, "baseline", "baseline", &cfg.baseline)?;
    let mut stages = Vec::new();
    for &budget in &cfg.budgets {
        stages.push(StageConfig::Replace(ReplaceStageConfig {
            budget,
            baseline: Some(cfg.baseline.clone()),
            ..cfg.replace.clone()
        }));
        if let Some(s) = &cfg.snl {
            stages.push(StageConfig::Snl(SnlConfig {
                budget,
                baseline: Some(cfg.baseline.clone()),
                ..s.clone()
            }));
        }
    }
    for s in &stages {
        s.validate()?;
    }
    let mut rows = vec![base];
    for mut stage in stages {
        let budget = match &stage {
            StageConfig::Replace(c) => c.budget,
            StageConfig::Snl(c) => c.budget,
            _ => unreachable!("a sweep runs replace and snl"),
        };
        let method = super::run::method(&stage);
        let dir = sweep_dir(&cfg.out, method, &budget);
        if !cfg.quiet {
            println!(
                "== sweep {method} at {} ReLUs ({:.2}% of {total}) in {}",
                budget.relus,
                100.0 * budget.relus as f64 / total.max(1) as f64,
                dir.display()
            );
        }
        let o = RunOptions {
            out: dir,
            existing: cfg.existing,
            quiet: cfg.quiet,
            stop_after: None,
            allow_projection: cfg.project,
        };
        if cfg.existing == Existing::Resume {
            let keys = match stage {
                StageConfig::Snl(_) => &cfg.given.snl,
                _ => &cfg.given.replace,
            };
            // The point's budget and baseline are the sweep's own.
            let given = |key: &str| {
                ["budget", "baseline"].contains(&key)
                    || keys.as_ref().is_none_or(|k| k.contains(key))
            };
            let adopted = crate::train::run_dir::resumed_meta(&o.out, stage.name())
                .map(|m| {
                    crate::train::run_dir::adopt_resumed_options(&mut stage, &m.config, &given)
                })
                .unwrap_or_default();
            if !cfg.quiet && !adopted.is_empty() {
                println!(
                    "resuming with the run's own {} (not given here; the defaults differ)",
                    adopted.join(", ")
                );
            }
        }
        let outcome = run_stage(device, data, None, stage, &o)?;
        rows.push(report::row(device, data, method, &outcome)?);
    }
    write_sweep(
        &cfg.out,
        &rows,
        &format!("{} on {}", cfg.baseline.display(), data.name),
    )?;
    Ok(rows)
}

/// Write `sweep.csv`, `sweep.json`, `summary.json` and `sweep.svg` into `out`.
pub fn write_sweep(out: &Path, rows: &[Row], title: &str) -> Result<()> {
    report::write(&out.join("sweep.csv"), &report::csv(rows))?;
    report::write(&out.join("sweep.json"), &report::json(rows))?;
    report::write(&out.join("summary.json"), &report::json(rows))?;
    report::write(&out.join("sweep.svg"), &sweep_svg(rows, title))
}
