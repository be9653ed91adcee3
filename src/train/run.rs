//! One stage from its configuration to its outcome: load what it starts from, check it
//! against the data and the requested model, build the stage and drive it.

use super::checkpoint::Checkpoint;
use super::config::StageConfig;
use super::data::Data;
use super::driver::{drive, Outcome, RunOptions};
use super::run_dir::writes_over;
use super::stages::{load_baseline, BaselineStage, FinetuneStage, ReplaceStage, SnlStage};
use crate::{Device, Error, Result};
use std::path::{Path, PathBuf};

fn need(path: &Option<PathBuf>, key: &str, hint: &str) -> Result<PathBuf> {
    let p = path
        .clone()
        .ok_or_else(|| Error::Invalid(format!("no {key} checkpoint given: {hint}")))?;
    if let Some(why) = crate::files::not_a_file(&p) {
        return Err(Error::Invalid(format!(
            "{key} checkpoint {} {why}: {hint}",
            p.display()
        )));
    }
    Ok(p)
}

/// A model named on the command line must be the checkpoint's.
fn same_model(model: Option<&str>, ck: &Checkpoint, path: &Path) -> Result<()> {
    match model {
        Some(m) if m != ck.meta.model => Err(Error::Invalid(format!(
            "--model {m} contradicts {}, a {} checkpoint: drop --model or pass --model {}",
            path.display(),
            ck.meta.model,
            ck.meta.model
        ))),
        _ => Ok(()),
    }
}

/// Run the stage `cfg` on `data` into `o.out`. `model` builds the baseline; for the other
/// stages it is optional and must match the checkpoint they start from.
pub fn run_stage(
    device: &Device,
    data: &Data,
    model: Option<&str>,
    cfg: StageConfig,
    o: &RunOptions,
) -> Result<Outcome> {
    const BASELINE: &str = "train one with `autorep train --out DIR` and pass DIR/best.safetensors";
    cfg.validate()?;
    let inputs = match &cfg {
        StageConfig::Train(_) => vec![],
        StageConfig::Replace(c) => vec![("baseline", &c.baseline)],
        StageConfig::Snl(c) => vec![("baseline", &c.baseline)],
        StageConfig::Finetune(c) => vec![("gated", &c.from), ("teacher", &c.teacher)],
    };
    for (key, path) in inputs {
        if let Some(p) = path.as_deref().filter(|p| writes_over(&o.out, p)) {
            return Err(Error::Invalid(format!(
                "the run folder {} holds the {key} checkpoint {} this run starts from, and the run would replace it: choose another --out",
                o.out.display(),
                p.display()
            )));
        }
    }
    match cfg {
        StageConfig::Train(c) => {
            let model = model.ok_or_else(|| Error::Invalid("train needs a model".into()))?;
            drive(&mut BaselineStage::new(device, data, model, c)?, data, o)
        }
        StageConfig::Replace(c) => {
            let path = need(&c.baseline, "baseline", BASELINE)?;
            let ck = load_baseline(&path, data)?;
            same_model(model, &ck, &path)?;
            drive(&mut ReplaceStage::new(device, data, &ck, c)?, data, o)
        }
        StageConfig::Snl(c) => {
            let path = need(&c.baseline, "baseline", BASELINE)?;
            let ck = load_baseline(&path, data)?;
            same_model(model, &ck, &path)?;
            drive(&mut SnlStage::new(device, &ck, c)?, data, o)
        }
        StageConfig::Finetune(c) => {
            let path = need(
                &c.from,
                "gated",
                "pass the best.safetensors of `autorep replace` or `autorep snl` with --from",
            )?;
            let ck = Checkpoint::load(&path)?;
            data.check(&ck.meta, &path)?;
            same_model(model, &ck, &path)?;
            let teacher = match &c.teacher {
                Some(t) => Some(load_baseline(
                    &need(&Some(t.clone()), "teacher", BASELINE)?,
                    data,
                )?),
                None => None,
            };
            let mut stage = FinetuneStage::new(device, (&path, &ck), teacher.as_ref(), c)?;
            drive(&mut stage, data, o)
        }
    }
}
