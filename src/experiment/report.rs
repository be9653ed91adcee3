//! Results that others read: one row per evaluated network, as a table, CSV and JSON
//! (`summary.json` of `run` and `demo`, `sweep.json` of `sweep`).

use crate::train::{eval_checkpoint, Data, Outcome};
use crate::{Device, Error, Result};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// One evaluated network.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// The stage that produced it: train, replace, snl, finetune (or baseline in a sweep).
    pub stage: String,
    /// baseline, autorep, identity, snl or finetune.
    pub method: String,
    pub budget: Option<usize>,
    pub relus: u64,
    pub relu_total: usize,
    /// The budget was met by the learned mask, with no gate switched off afterwards.
    pub reached_by_selection: bool,
    pub projected_gates: usize,
    pub top1: f32,
    pub top5: f32,
    pub epochs: usize,
    pub checkpoint: PathBuf,
}

/// Evaluate a stage's result (its best checkpoint, else its projected network) as a row.
pub fn row(device: &Device, data: &Data, method: &str, o: &Outcome) -> Result<Row> {
    let path = o.result_path().ok_or_else(|| {
        Error::Invalid(format!(
            "the {} stage left no checkpoint to evaluate",
            o.stage
        ))
    })?;
    let mut r = checkpoint_row(device, data, o.stage, method, path)?;
    r.budget = o.budget.map(|b| b as usize);
    r.epochs = o.epochs_done;
    // `best` is only ever a within-budget epoch of a learned mask; anything else reported is
    // the projected network.
    r.reached_by_selection = o.best_path.is_some() && r.projected_gates == 0;
    Ok(r)
}

/// Evaluate any checkpoint as a row.
pub fn checkpoint_row(
    device: &Device,
    data: &Data,
    stage: &str,
    method: &str,
    path: &Path,
) -> Result<Row> {
    let e = eval_checkpoint(device, path, data, false)?;
    if e.test.non_finite > 0 {
        return Err(non_finite(path, &e.test));
    }
    let m = &e.checkpoint.meta;
    Ok(Row {
        stage: stage.into(),
        method: method.into(),
        budget: m.replacement.as_ref().map(|g| g.config.budget),
        relus: e.relus,
        relu_total: e.relu_total,
        reached_by_selection: e.projected_gates == 0,
        projected_gates: e.projected_gates,
        top1: e.test.top1,
        top5: e.test.top5,
        epochs: m.progress.epochs_done,
        checkpoint: path.to_path_buf(),
    })
}

/// Logits that are NaN or infinite: never reported as an accuracy.
pub fn non_finite(path: &Path, t: &crate::train::EvalStats) -> Error {
    Error::Invalid(format!(
        "{} gives NaN or infinite logits for {} of {} test images: its weights are broken, so no accuracy is reported",
        path.display(),
        t.non_finite,
        t.images
    ))
}

/// One line per row: method, budget, ReLUs, kept %, how the budget was reached, top-1, top-5.
pub fn table(rows: &[Row]) -> String {
    let mut s = format!(
        "{:<10} {:<9} {:>9} {:>9} {:>8} {:<17} {:>8} {:>8}\n",
        "stage", "method", "budget", "ReLUs", "kept", "reached", "top-1", "top-5"
    );
    for r in rows {
        let reached = match (r.budget, r.reached_by_selection) {
            (None, _) => "-".to_string(),
            (Some(_), true) => "selection".to_string(),
            (Some(_), false) => format!("projected ({})", r.projected_gates),
        };
        let _ = writeln!(
            s,
            "{:<10} {:<9} {:>9} {:>9} {:>7.2}% {:<17} {:>7.2}% {:>7.2}%",
            r.stage,
            r.method,
            r.budget.map_or("-".into(), |b| b.to_string()),
            r.relus,
            100.0 * r.relus as f64 / r.relu_total.max(1) as f64,
            reached,
            100.0 * r.top1,
            100.0 * r.top5
        );
    }
    s
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// `stage,method,budget,relus,relu_total,reached_by_selection,projected_gates,top1,top5,epochs,checkpoint`
/// (accuracies as fractions).
pub fn csv(rows: &[Row]) -> String {
    let mut s = String::from(
        "stage,method,budget,relus,relu_total,reached_by_selection,projected_gates,top1,top5,epochs,checkpoint\n",
    );
    for r in rows {
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{:.6},{:.6},{},{}",
            csv_field(&r.stage),
            csv_field(&r.method),
            r.budget.map_or(String::new(), |b| b.to_string()),
            r.relus,
            r.relu_total,
            r.reached_by_selection,
            r.projected_gates,
            r.top1,
            r.top5,
            r.epochs,
            csv_field(&r.checkpoint.display().to_string())
        );
    }
    s
}

/// The rows as a JSON array of objects.
pub fn json(rows: &[Row]) -> String {
    serde_json::to_string_pretty(rows).expect("rows serialise") + "\n"
}

pub fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text)
        .map_err(|e| Error::Invalid(format!("cannot write {}: {e}", path.display())))
}
