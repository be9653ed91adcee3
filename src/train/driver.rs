//! The one loop every stage runs in. It owns the epochs, the progress bar, `metrics.jsonl`,
//! the `best` and `last` checkpoints, resume, the divergence checks and the end-of-run
//! projection; stages only train, evaluate and say what may become `best`.
//!
//! Order within an epoch: train, evaluate, checks, checkpoints (`best`, then `last`), the
//! metrics line, and only then the line on stdout, so a closed stdout (which ends the program)
//! loses nothing.

use super::checkpoint::{
    Best, Checkpoint, GateState, Meta, Normalisation, Phase, Progress, FORMAT,
};
use super::data::Data;
use super::eval::EvalStats;
use super::run_dir::{Existing, RunDir};
use super::stages::{Stage, StageEpoch};
use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// How a stage runs beyond its configuration.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The run folder: checkpoints and metrics.
    pub out: PathBuf,
    /// What to do with an earlier run in `out`.
    pub existing: Existing,
    /// No progress bar or per-epoch lines (metrics.jsonl is still written).
    pub quiet: bool,
    /// Stop after this many epochs of this invocation (tests use it to simulate a kill).
    pub stop_after: Option<usize>,
    /// A gated stage whose mask ends over its budget writes the projected network either
    /// way; without this it then fails (the CLI's `--project` sets it).
    pub allow_projection: bool,
}

/// What a stage ended with.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub stage: &'static str,
    /// Epochs run by this invocation, and by the whole stage.
    pub epochs_run: usize,
    pub epochs_done: usize,
    /// Every epoch ran (not stopped by `stop_after`).
    pub finished: bool,
    pub relu_total: usize,
    pub budget: Option<u64>,
    /// The count of the last epoch's mask, before any projection.
    pub count_before_projection: u64,
    /// The count of the final network (after a projection, if one was needed).
    pub relus: u64,
    pub projected_gates: usize,
    pub over_budget_epochs: usize,
    /// The last evaluation (of the final network).
    pub last_test: Option<EvalStats>,
    pub best: Option<Best>,
    pub best_path: Option<PathBuf>,
    pub projected_path: Option<PathBuf>,
}

impl Outcome {
    /// The budget was met by the learned mask itself, with no gate switched off afterwards.
    pub fn reached_by_selection(&self) -> bool {
        self.budget
            .is_none_or(|b| self.count_before_projection <= b && self.projected_gates == 0)
    }

    /// The checkpoint to evaluate and report: `best`, else the projected network.
    pub fn result_path(&self) -> Option<&Path> {
        self.best_path.as_deref().or(self.projected_path.as_deref())
    }
}

fn say(quiet: bool, line: &str) {
    if !quiet {
        println!("{line}");
    }
}

/// The metadata of a checkpoint of `stage` now.
fn meta(stage: &dyn Stage, data: &Data, progress: &Progress) -> Meta {
    Meta {
        format: FORMAT,
        model: stage.model().name().to_string(),
        dataset: data.name.clone(),
        channels: data.channels,
        input: data.input,
        classes: data.classes,
        config: stage.config().clone(),
        progress: progress.clone(),
        images: Some([data.train.len(), data.test.len()]),
        replacement: stage.replacement().map(|r| GateState {
            config: r.cfg.clone(),
            passes: r.passes,
            frozen: r.frozen,
        }),
        optimizer_steps: None,
        checksums: Default::default(),
        normalisation: Some(Normalisation {
            mean: data.test.mean.clone(),
            std: data.test.std.clone(),
        }),
        sites: stage
            .model()
            .sites()
            .iter()
            .map(|s| s.name.clone())
            .collect(),
        imported_from: None,
        data: data.source.clone(),
        class_order: crate::data::Dataset::from_name(&data.name)
            .ok()
            .and_then(|d| d.class_order())
            .map(String::from),
    }
}

/// The model and optimizer of `stage` as a checkpoint; NaN or infinity anywhere (weights,
/// statistics, gates, coefficients, optimizer moments) stops the run like a NaN loss.
fn checkpoint(stage: &dyn Stage, data: &Data, progress: &Progress) -> Result<Checkpoint> {
    let mut ck = Checkpoint::new(meta(stage, data, progress));
    ck.put_model(stage.model())?;
    ck.put_optimizer(stage.optimizer())?;
    if let Some((name, v)) = ck.first_non_finite() {
        return Err(Error::Diverged {
            epoch: progress.epochs_done as u64,
            what: format!("tensor '{name}' holds {v}"),
        });
    }
    Ok(ck)
}

/// A resumed run must continue the same job: same model, data and configuration.
fn check_resume(ck: &Checkpoint, stage: &dyn Stage, data: &Data, path: &Path) -> Result<()> {
    data.check(&ck.meta, path)?;
    let m = &ck.meta;
    let ours = [data.train.len(), data.test.len()];
    if let Some(theirs) = m.images.filter(|t| *t != ours) {
        return Err(Error::Invalid(format!(
            "{} was trained on {} training and {} test images, but this run has {} and {}: pass the same --data, --limit-train and --limit-test, or --overwrite to start over",
            path.display(),
            theirs[0],
            theirs[1],
            ours[0],
            ours[1]
        )));
    }
    if m.model != stage.model().name() {
        return Err(Error::Invalid(format!(
            "{} is of model {}, but this run builds {}: pass the same options, or --overwrite to start over",
            path.display(),
            m.model,
            stage.model().name()
        )));
    }
    if m.config.name() != stage.config().name() {
        return Err(Error::Invalid(format!(
            "{} was written by stage {}, not {}: resume it with `autorep {}`",
            path.display(),
            m.config.name(),
            stage.config().name(),
            m.config.name()
        )));
    }
    if &m.config != stage.config() {
        let (theirs, ours) = (m.config.fields(), stage.config().fields());
        let key = ours
            .keys()
            .find(|k| theirs.get(*k) != ours.get(*k))
            .cloned()
            .unwrap_or_default();
        let show = |o: &serde_json::Map<String, serde_json::Value>| {
            o.get(&key).map_or("nothing".into(), |v| v.to_string())
        };
        return Err(Error::Invalid(format!(
            "{} was written with {key} = {}, but this run has {key} = {}: pass the same options to --resume, or --overwrite to start over",
            path.display(),
            show(&theirs),
            show(&ours)
        )));
    }
    Ok(())
}

fn metrics_line(
    stage: &str,
    epoch: usize,
    e: &StageEpoch,
    relu_total: usize,
    budget: Option<u64>,
) -> serde_json::Value {
    serde_json::json!({
        "stage": stage,
        "phase": e.phase,
        "epoch": epoch,
        "train_loss": e.train.loss,
        "train_acc": e.train.accuracy,
        "test_loss": e.test.loss,
        "test_top1": e.test.top1,
        "test_top5": e.test.top5,
        "relus": e.count,
        "relu_total": relu_total,
        "budget": budget,
        "lr": e.lr.iter().map(|(g, r)| (g.clone(), (*r).into())).collect::<serde_json::Map<_, _>>(),
        "seconds": e.train.seconds + e.test.seconds,
        "images_per_s": e.train.images as f64 / e.train.seconds.max(1e-9),
    })
}

fn epoch_line(stage: &str, epoch: usize, planned: usize, e: &StageEpoch) -> String {
    let phase = if stage == "snl" && e.phase == Phase::Finetune {
        "snl finetune"
    } else {
        stage
    };
    format!(
        "{phase} epoch {}/{planned}: loss {:.4}  train {:.2}%  test {:.2}% (loss {:.4})  ReLUs {}  {:.0} img/s",
        epoch + 1,
        e.train.loss,
        100.0 * e.train.accuracy,
        100.0 * e.test.top1,
        e.test.loss,
        e.count,
        e.train.images as f64 / e.train.seconds.max(1e-9)
    )
}

fn progress_bar(quiet: bool, batches: usize, label: String) -> Option<indicatif::ProgressBar> {
    if quiet {
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

/// What to do about a mask that ended over budget: the numbers, and the epochs or mask rate
/// that would reach it, estimated from the rate the count fell at in this run; `accept` says
/// how to take the projected network instead.
fn over_budget_advice(
    stage: &dyn Stage,
    projected_now: bool,
    count: u64,
    budget: u64,
    progress: &Progress,
    projected: &Path,
    accept: &str,
) -> String {
    let total = stage.model().relu_total();
    let epochs = progress.epochs_done.max(1);
    // SNL selects, then finetunes a projected mask: the rate is selection's, up to its
    // lowest count, and its knobs are the selection epochs, α's rate and λ₁.
    let (count_seen, epochs_seen, knobs) = match stage.snl_lowest() {
        Some(lowest) => (
            lowest,
            match progress.phase {
                Phase::Finetune => progress.epochs_done - progress.phase_epochs,
                Phase::Main => progress.epochs_done,
            }
            .max(1),
            (
                "selection epochs (--epochs)",
                "--alpha-lr",
                "--alpha-lr or --lambda",
            ),
        ),
        None => (count, epochs, ("epochs", "mask rate", "the mask rate or λ")),
    };
    let fell = total as f64 - count_seen as f64;
    let need = total as f64 - budget as f64;
    // SNL's α well above the threshold flickers back on: a higher rate would only make that
    // worse.
    let flicker = match stage.config() {
        super::config::StageConfig::Snl(c) => {
            super::stages::flickering_rate(c.alpha_lr).map(|safe| (c.alpha_lr, safe))
        }
        _ => None,
    };
    let estimate = if let Some((rate, safe)) = flicker {
        format!(
            "; α's rate (--alpha-lr {rate}) is several times the {} threshold, so switched-off gates flicker back on: lower --alpha-lr to about {safe} or less and give selection more epochs",
            crate::autorep::SNL_THRESHOLD
        )
    } else if fell > 0.0 {
        let factor = need / fell;
        // Just over the budget, one decimal would read "1.0x higher".
        let digits = if factor < 1.1 { 2 } else { 1 };
        format!(
            "; at this run's rate the budget needs about {:.0} {}, or a {} about {factor:.digits$}x higher",
            (epochs_seen as f64 * factor).ceil(),
            knobs.0,
            knobs.1,
        )
    } else {
        format!("; the count did not fall at all: raise {}", knobs.2)
    };
    let what = if projected_now {
        format!("mask ended at {count} ReLUs, over its budget of {budget}")
    } else {
        format!("selection ended over its budget of {budget}")
    };
    format!(
        "the {} stage's {what} ({} of {} epochs over budget){estimate}. The projected network ({} gates switched off by smallest indicator) is in {}; {accept}",
        stage.config().name(),
        progress.over_budget_epochs,
        epochs,
        progress.projected_gates,
        projected.display()
    )
}

/// Evaluate the stage's projected network, write it as `projected.safetensors` and say so:
/// `how` says what was switched off, `note` follows its accuracy.
fn write_projected(
    stage: &mut dyn Stage,
    data: &Data,
    progress: &Progress,
    dir: &RunDir,
    o: &RunOptions,
    how: &str,
    note: &str,
) -> Result<(u64, EvalStats)> {
    let (relus, t) = stage.evaluate(data)?;
    checkpoint(stage, data, progress)?.save(&dir.projected())?;
    say(
        o.quiet,
        &format!(
            "{}: {how}: that network (test {:.2}%{note}) is {}, not best",
            stage.config().name(),
            100.0 * t.top1,
            dir.projected().display()
        ),
    );
    Ok((relus, t))
}

/// Run `stage` on `data` into `o.out` until it is done (or `o.stop_after` epochs), resuming
/// from `last.safetensors` when `o.existing` says so.
pub fn drive(stage: &mut dyn Stage, data: &Data, o: &RunOptions) -> Result<Outcome> {
    let dir = RunDir::open(&o.out, o.existing)?;
    let name = stage.config().name();
    let mut progress = Progress::default();
    if o.existing == Existing::Resume && dir.last().exists() {
        let ck = Checkpoint::load(&dir.last())?;
        check_resume(&ck, stage, data, &dir.last())?;
        stage.resume(&ck)?;
        progress = ck.meta.progress.clone();
        say(
            o.quiet,
            &format!(
                "resuming {} after epoch {}",
                dir.last().display(),
                progress.epochs_done
            ),
        );
    } else if o.existing == Existing::Resume {
        say(
            o.quiet,
            &format!("nothing to resume in {}: starting the run", o.out.display()),
        );
    }
    dir.keep_metrics(progress.epochs_done)?;
    let batches = super::batches_per_epoch(data.train.len(), stage.config().batch());
    if progress.epochs_done == 0 {
        if let Some(w) = stage.forecast(batches) {
            eprintln!("warning: {w}");
        }
    }
    let relu_total = stage.model().relu_total();
    let budget = stage.budget();
    let mut ran = 0;
    let mut last: Option<(u64, EvalStats)> = None;
    while !stage.done() && o.stop_after.is_none_or(|s| ran < s) {
        // A mask projected during the run (SNL's selection ended over its budget) makes no
        // later epoch eligible for best: without --project the run fails before its next
        // epoch (the finetune), fresh or resumed. Its last checkpoint stays, so --resume
        // --project continues from here.
        if let Some(b) = budget.filter(|_| {
            !o.allow_projection && progress.projected_gates > 0 && progress.best.is_none()
        }) {
            let how = format!(
                "{} gates were switched off to meet the budget of {b}",
                progress.projected_gates
            );
            let (count, _) =
                write_projected(stage, data, &progress, &dir, o, &how, ", not finetuned")?;
            return Err(Error::OverBudget(over_budget_advice(
                stage,
                false,
                count,
                b,
                &progress,
                &dir.projected(),
                "--resume --project finetunes it and accepts it",
            )));
        }
        let epoch = progress.epochs_done;
        let planned = stage.planned_epochs(epoch);
        let bar = progress_bar(o.quiet, batches, format!("{name} {}/{planned}", epoch + 1));
        let e = stage
            .epoch(data, bar.as_ref())
            .map_err(|e| e.in_epoch(epoch as u64 + 1))?;
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        if e.test.non_finite > 0 {
            return Err(Error::Diverged {
                epoch: epoch as u64 + 1,
                what: format!(
                    "the logits of {} of {} test images are NaN or infinite",
                    e.test.non_finite, e.test.images
                ),
            });
        }
        let eligible = stage.eligible(&e);
        let note = stage.advance(&e)?;
        progress.epochs_done += 1;
        progress.phase = stage.phase();
        progress.phase_epochs = stage.phase_epochs();
        progress.over_budget_epochs += budget.is_some_and(|b| e.count > b) as usize;
        progress.snl_lowest = stage.snl_lowest();
        progress.projected_gates = stage.projected_gates();
        let better = eligible && progress.best.is_none_or(|b| e.test.top1 > b.top1);
        if better {
            progress.best = Some(Best {
                epoch,
                top1: e.test.top1,
            });
        }
        let ck = checkpoint(stage, data, &progress)?;
        if better {
            ck.weights_only().save(&dir.best())?;
        }
        ck.save(&dir.last())?;
        dir.log(&metrics_line(name, epoch, &e, relu_total, budget))?;
        say(o.quiet, &epoch_line(name, epoch, planned, &e));
        if let Some(n) = note {
            say(o.quiet, &n);
        }
        last = Some((e.count, e.test));
        ran += 1;
    }
    let finished = stage.done();
    // A finished run resumed ran no epoch here: its mask is counted, not evaluated, before a
    // projection, so the projected network is the one the run itself wrote (an evaluation
    // ticks the DaPa refit clock).
    let (count_before, mut test) = match last {
        Some((count, test)) => (count, Some(test)),
        None => (stage.count()?, None),
    };
    let mut relus = count_before;
    let mut projected_path = None;
    if let (true, Some(b)) = (finished, budget) {
        let now = stage.project()?;
        if now > 0 || stage.projected_gates() > 0 {
            progress.projected_gates = stage.projected_gates();
            let how = if now > 0 {
                format!("the mask ended with {count_before} ReLUs, over the budget of {b}; {now} gates with the smallest indicator were switched off to meet it")
            } else {
                format!(
                    "{} gates were switched off during the run to meet the budget of {b}",
                    progress.projected_gates
                )
            };
            let (r, t) = write_projected(stage, data, &progress, &dir, o, &how, "")?;
            (relus, test) = (r, Some(t));
            projected_path = Some(dir.projected());
            // With an earlier epoch within the budget, `best` is the run's result; only a run
            // with none fails.
            if !o.allow_projection && progress.best.is_none() {
                return Err(Error::OverBudget(over_budget_advice(
                    stage,
                    now > 0,
                    count_before,
                    b,
                    &progress,
                    &dir.projected(),
                    "pass --project to accept it",
                )));
            }
        } else if progress.best.is_none() && count_before <= b {
            // A stage whose last phase ran no epoch (SNL with no finetune): its final,
            // binarised network is the result.
            let (r, t) = stage.evaluate(data)?;
            (relus, test) = (r, Some(t));
            progress.best = Some(Best {
                epoch: progress.epochs_done.saturating_sub(1),
                top1: t.top1,
            });
            checkpoint(stage, data, &progress)?
                .weights_only()
                .save(&dir.best())?;
        }
    }
    let test = match test {
        Some(t) => t,
        None => stage.report(data)?.1,
    };
    let best_path = dir.best().exists().then(|| dir.best());
    Ok(Outcome {
        stage: name,
        epochs_run: ran,
        epochs_done: progress.epochs_done,
        finished,
        relu_total,
        budget,
        count_before_projection: count_before,
        relus,
        projected_gates: progress.projected_gates,
        over_budget_epochs: progress.over_budget_epochs,
        last_test: Some(test),
        best: progress.best,
        best_path,
        projected_path,
    })
}
