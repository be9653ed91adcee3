//! Checkpoints in safetensors: every tensor of a run (weights, BN statistics, gate state,
//! optimizer state) plus one typed metadata value ([`Meta`]: model, dataset, the stage's whole
//! configuration, progress, checksums). Written to a
//! temporary file and renamed, so a killed run never leaves a torn checkpoint.

use super::config::StageConfig;
use crate::autorep::ReplaceConfig;
use crate::models::Model;
use crate::nn::{Optimizer, SiteMode};
use crate::{Error, Result, Tensor};
use safetensors::tensor::{Dtype, TensorView};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;

/// The version written. Format 3 names tensors by module path (PyTorch's `state_dict` keys:
/// `layer1.0.conv1.weight`, `layer1.0.bn1.running_mean`, a gated site's `<site>.mask` …);
/// format 2 named them by position (`param.0000`, `buffer.0000`, `site.00.mask`) and is still
/// read. Any other is refused by name.
pub const FORMAT: u32 = 3;
const OLDEST_READ: u32 = 2;
/// The one safetensors metadata key this program writes: [`Meta`] as JSON.
pub const META_KEY: &str = "autorep";

/// Everything about a checkpoint besides its tensors, stored as one JSON value and read back
/// strictly: an unknown, missing or malformed field is an error naming it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    pub format: u32,
    pub model: String,
    pub dataset: String,
    pub channels: usize,
    pub input: usize,
    pub classes: usize,
    /// The stage that wrote it, with its whole configuration.
    pub config: StageConfig,
    pub progress: Progress,
    /// The gates' configuration and state, when the model has gated sites.
    pub replacement: Option<GateState>,
    /// Optimizer steps taken (with the `opt.*` tensors), in `last` checkpoints.
    pub optimizer_steps: Option<u64>,
    /// FNV-1a 64 of every tensor's bytes, verified on load.
    #[serde(default)]
    pub checksums: BTreeMap<String, String>,
    /// How the network's input is normalised: (pixels / 255 − mean) / std per channel.
    #[serde(default)]
    pub normalisation: Option<Normalisation>,
    /// The activation sites in execution order (their tensors are `<site>.gate` etc.).
    #[serde(default)]
    pub sites: Vec<String>,
    /// The PyTorch file an `autorep import` read, when this checkpoint came from one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imported_from: Option<String>,
    /// Training and test images of the run that wrote it (a resume must see the same).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<[usize; 2]>,
    /// How the dataset's class ids were numbered, where that changed: see
    /// [`crate::data::Dataset::class_order`]. Absent in Tiny-ImageNet checkpoints written
    /// before it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_order: Option<String>,
    /// The folder and limits the run read its data with, for `--resume` (absent in
    /// checkpoints written before, and for data not read from a folder).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<super::data::DataSource>,
}

/// What a stage starts from: an all-ReLU network (the baseline a replacement starts and
/// distils from, a finetune's teacher) or a gated one (a finetune's network).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartFrom {
    AllRelu,
    Gated,
}

impl Meta {
    /// Why a checkpoint with this header cannot start a stage as `from`, if it cannot: the
    /// stages refuse it by this, and `run --dry-run` before any of them runs.
    pub fn unfit_to_start(&self, from: StartFrom) -> Option<String> {
        let projected = self.progress.projected_gates;
        match (from, self.replacement.is_some()) {
            (StartFrom::AllRelu, true) => Some(
                "already has gated sites: pass an all-ReLU baseline from `autorep train`".into(),
            ),
            (StartFrom::Gated, false) => Some(
                "has no gated sites: finetune a checkpoint from `autorep replace` or `autorep snl`"
                    .into(),
            ),
            (StartFrom::Gated, true) if projected > 0 => Some(format!(
                "is a projected network ({projected} gates switched off after training, not learned): finetune a best.safetensors, or replace for longer so the mask reaches the budget"
            )),
            _ => None,
        }
    }
}

/// Per-channel input normalisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Normalisation {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

/// A model's tensors with their checkpoint keys in `format`: (parameters, buffers, the key
/// prefix of each site's tensors).
#[allow(clippy::type_complexity)]
fn model_keys(
    model: &dyn Model,
    format: u32,
) -> (Vec<(String, Tensor)>, Vec<(String, Tensor)>, Vec<String>) {
    if format >= 3 {
        let sites = model.sites().iter().map(|s| s.name.clone()).collect();
        return (model.named_params(), model.named_buffers(), sites);
    }
    let numbered = |v: Vec<Tensor>, what: &str| -> Vec<(String, Tensor)> {
        v.into_iter()
            .enumerate()
            .map(|(i, t)| (format!("{what}.{i:04}"), t))
            .collect()
    };
    let sites = (0..model.sites().len())
        .map(|i| format!("site.{i:02}"))
        .collect();
    (
        numbered(model.params(), "param"),
        numbered(model.buffers(), "buffer"),
        sites,
    )
}

/// How gated sites were installed, and their clocks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateState {
    pub config: ReplaceConfig,
    /// Forward passes so far (the faithful DaPa refit clock).
    pub passes: u64,
    /// Masks fixed (finetuning; SNL's α binarised).
    pub frozen: bool,
}

/// Which part of a stage an epoch belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Training, replacement or SNL selection.
    Main,
    /// SNL's finetune after binarisation.
    Finetune,
}

/// The best epoch so far.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Best {
    pub epoch: usize,
    pub top1: f32,
}

/// Where a stage is: what its driver needs to resume it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Progress {
    /// Epochs completed, over all phases.
    pub epochs_done: usize,
    pub phase: Phase,
    /// Epochs completed in the current phase.
    pub phase_epochs: usize,
    pub best: Option<Best>,
    /// Epochs whose mask ended over the budget.
    pub over_budget_epochs: usize,
    /// SNL selection: the lowest count so far.
    pub snl_lowest: Option<u64>,
    /// Gates switched off by a projection to meet the budget (a projected network).
    pub projected_gates: usize,
}

impl Default for Progress {
    fn default() -> Self {
        Progress {
            epochs_done: 0,
            phase: Phase::Main,
            phase_epochs: 0,
            best: None,
            over_budget_epochs: 0,
            snl_lowest: None,
            projected_gates: 0,
        }
    }
}

/// The one metadata value of a checkpoint header, checked: only our key, a known format.
fn parse_meta(raw: HashMap<String, String>, path: &Path) -> Result<Meta> {
    if let Some(k) = raw.keys().find(|k| k.as_str() != META_KEY) {
        return Err(Error::Invalid(format!(
            "{}: unknown metadata key '{k}': not a checkpoint of this version of autorep",
            path.display()
        )));
    }
    let json = raw.get(META_KEY).ok_or_else(|| {
        Error::Invalid(format!(
            "{}: no '{META_KEY}' metadata: not a checkpoint written by this version of autorep",
            path.display()
        ))
    })?;
    let meta: Meta = serde_json::from_str(json)
        .map_err(|e| Error::Invalid(format!("{}: checkpoint metadata: {e}", path.display())))?;
    if !(OLDEST_READ..=FORMAT).contains(&meta.format) {
        return Err(Error::Invalid(format!(
            "{}: checkpoint format {} (this autorep reads {OLDEST_READ} to {FORMAT})",
            path.display(),
            meta.format
        )));
    }
    Ok(meta)
}

/// FNV-1a over 64 bits: detects a flipped byte, needs no dependency, ~1 GB/s.
pub fn checksum(data: &[f32]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytemuck::cast_slice::<f32, u8>(data) {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

#[derive(Debug, Clone)]
pub struct Checkpoint {
    pub tensors: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
    pub meta: Meta,
}

impl Checkpoint {
    pub fn new(meta: Meta) -> Checkpoint {
        Checkpoint {
            tensors: BTreeMap::new(),
            meta,
        }
    }

    pub fn put(&mut self, name: &str, t: &Tensor) -> Result<()> {
        self.tensors
            .insert(name.to_string(), (t.shape().to_vec(), t.to_vec()?));
        Ok(())
    }

    /// Copy the stored tensor `name` into `t` (same shape required).
    pub fn restore(&self, name: &str, t: &Tensor) -> Result<()> {
        let (shape, data) = self.tensors.get(name).ok_or_else(|| {
            Error::Invalid(format!(
                "checkpoint has no tensor '{name}': was it written by another model or stage?"
            ))
        })?;
        if shape != t.shape() {
            return Err(Error::Invalid(format!(
                "checkpoint tensor '{name}' has shape {shape:?} but the model expects {:?}",
                t.shape()
            )));
        }
        t.copy_from_host(data)
    }

    /// The same checkpoint without the optimizer's state (what `best` holds: the network, not
    /// a point to resume from; about half the size under Adam).
    pub fn weights_only(&self) -> Checkpoint {
        let mut ck = self.clone();
        ck.tensors.retain(|name, _| !name.starts_with("opt."));
        ck.meta.optimizer_steps = None;
        ck
    }

    /// The first tensor holding a NaN or an infinity, with the offending value.
    pub fn first_non_finite(&self) -> Option<(&str, f32)> {
        self.tensors.iter().find_map(|(name, (_, data))| {
            data.iter()
                .find(|v| !v.is_finite())
                .map(|&v| (name.as_str(), v))
        })
    }

    /// Write atomically: a temporary file of this process in the same folder, flushed, then
    /// renamed, so a killed run never leaves a torn checkpoint and two writers never share a
    /// temporary name.
    pub fn save(&self, path: &Path) -> Result<()> {
        let views: Vec<(String, TensorView<'_>)> = self
            .tensors
            .iter()
            .map(|(k, (shape, data))| {
                let v = TensorView::new(Dtype::F32, shape.clone(), bytemuck::cast_slice(data))
                    .map_err(|e| Error::Invalid(format!("checkpoint tensor {k}: {e}")))?;
                Ok((k.clone(), v))
            })
            .collect::<Result<_>>()?;
        let mut meta = self.meta.clone();
        meta.checksums = self
            .tensors
            .iter()
            .map(|(k, (_, d))| (k.clone(), checksum(d)))
            .collect();
        let json = serde_json::to_string(&meta)
            .map_err(|e| Error::Invalid(format!("serialising checkpoint metadata: {e}")))?;
        let meta: HashMap<String, String> = [(META_KEY.to_string(), json)].into();
        let bytes = safetensors::serialize(views, Some(meta))
            .map_err(|e| Error::Invalid(format!("serialising checkpoint: {e}")))?;
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| Error::Invalid(format!("cannot create {}: {e}", dir.display())))?;
            }
        }
        crate::files::replaceable(path, "checkpoint", "write it to a file path instead")?;
        static SAVES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = SAVES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".{}.{n}.tmp", std::process::id()));
        let tmp = std::path::PathBuf::from(tmp);
        let io = |e: std::io::Error| {
            Error::Invalid(format!("writing checkpoint {}: {e}", path.display()))
        };
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io(e)
        })
    }

    /// Only the metadata, from the file's header: what a command needs to know before it
    /// starts (the dataset, the stage's schedule) without reading every tensor. The tensors
    /// and their checksums are checked when the file is loaded.
    pub fn read_meta(path: &Path) -> Result<Meta> {
        use std::io::Read;
        let cannot = |e: std::io::Error| {
            Error::Invalid(format!("cannot read checkpoint {}: {e}", path.display()))
        };
        let corrupt = |why: &str| {
            Error::Invalid(format!(
                "{} is not a valid safetensors checkpoint (truncated or corrupt?): {why}",
                path.display()
            ))
        };
        crate::files::readable(path).map_err(cannot)?;
        let mut f = std::fs::File::open(path).map_err(cannot)?;
        let file_len = f.metadata().map_err(cannot)?.len();
        let mut len = [0u8; 8];
        let short = |e: std::io::Error| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => corrupt("shorter than its 8-byte header length"),
            _ => cannot(e),
        };
        f.read_exact(&mut len).map_err(short)?;
        let len = u64::from_le_bytes(len);
        // safetensors caps its header at 100 MB.
        if len > 100_000_000 || len > file_len.saturating_sub(8) {
            return Err(corrupt("header length past the end of the file"));
        }
        let mut header = vec![0u8; len as usize];
        f.read_exact(&mut header).map_err(cannot)?;
        #[derive(Deserialize)]
        struct Header {
            #[serde(rename = "__metadata__", default)]
            metadata: HashMap<String, String>,
        }
        let h: Header =
            serde_json::from_slice(&header).map_err(|e| corrupt(&format!("header: {e}")))?;
        parse_meta(h.metadata, path)
    }

    pub fn load(path: &Path) -> Result<Checkpoint> {
        let bytes = crate::files::read(path).map_err(|e| {
            Error::Invalid(format!("cannot read checkpoint {}: {e}", path.display()))
        })?;
        let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| {
            Error::Invalid(format!(
                "{} is not a valid safetensors checkpoint (truncated or corrupt?): {e}",
                path.display()
            ))
        })?;
        let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)
            .map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
        let meta = parse_meta(header.metadata().clone().unwrap_or_default(), path)?;
        let mut ck = Checkpoint::new(meta);
        for (name, view) in st.tensors() {
            if view.dtype() != Dtype::F32 {
                return Err(Error::Invalid(format!(
                    "{}: tensor {name} is {:?}, expected F32",
                    path.display(),
                    view.dtype()
                )));
            }
            let data: Vec<f32> = bytemuck::pod_collect_to_vec(view.data());
            match ck.meta.checksums.get(&name) {
                Some(sum) if *sum == checksum(&data) => {}
                Some(_) => {
                    return Err(Error::Invalid(format!(
                        "{}: tensor '{name}' does not match its checksum: the file is corrupt",
                        path.display()
                    )))
                }
                None => {
                    return Err(Error::Invalid(format!(
                        "{}: tensor '{name}' has no checksum: the file was altered",
                        path.display()
                    )))
                }
            }
            ck.tensors.insert(name, (view.shape().to_vec(), data));
        }
        if let Some(name) = ck
            .meta
            .checksums
            .keys()
            .find(|k| !ck.tensors.contains_key(*k))
        {
            return Err(Error::Invalid(format!(
                "{}: tensor '{name}' is missing: the file was altered",
                path.display()
            )));
        }
        ck.check_values(path)?;
        Ok(ck)
    }

    /// What no run writes, though the checksums hold (they cover the tensors, not the
    /// header): a NaN or infinite value (a NaN weight behind a ReLU can still give finite
    /// logits, so evaluation alone would not catch it), or gate tensors in a checkpoint whose
    /// header says it is not gated (they would be ignored).
    fn check_values(&self, path: &Path) -> Result<()> {
        let altered = |what: String| {
            Error::Invalid(format!(
                "{}: {what}: autorep never writes that, so the file was altered; use the run's own checkpoint",
                path.display()
            ))
        };
        if let Some((name, v)) = self.first_non_finite() {
            return Err(altered(format!("tensor '{name}' holds {v}")));
        }
        if !self.is_gated() {
            let gate = [".gate", ".mask", ".coef"];
            if let Some(name) = self
                .tensors
                .keys()
                .find(|k| gate.iter().any(|g| k.ends_with(g)))
            {
                return Err(altered(format!(
                    "tensor '{name}' belongs to a gated site, but the header says the network is not gated"
                )));
            }
        }
        Ok(())
    }

    /// The gates' configuration, when the model is gated.
    pub fn is_gated(&self) -> bool {
        self.meta.replacement.is_some()
    }

    /// Weights, BN statistics and every gated site's state, under the keys of this
    /// checkpoint's format.
    pub fn put_model(&mut self, model: &dyn Model) -> Result<()> {
        let (params, buffers, sites) = model_keys(model, self.meta.format);
        for (k, t) in params.iter().chain(&buffers) {
            self.put(k, t)?;
        }
        for (s, prefix) in model.sites().iter().zip(&sites) {
            if let SiteMode::Gated(g) = &s.mode {
                self.put(&format!("{prefix}.gate"), &g.gate)?;
                self.put(&format!("{prefix}.mask"), &g.mask)?;
                self.put(&format!("{prefix}.coef"), &g.coef)?;
                if let Some((m, v)) = &g.stats {
                    self.put(&format!("{prefix}.mean"), m)?;
                    self.put(&format!("{prefix}.var"), v)?;
                }
            }
        }
        Ok(())
    }

    /// Restore weights and BN statistics; gated sites too when `sites` (they must already be
    /// installed with the same configuration).
    pub fn restore_model(&self, model: &dyn Model, sites: bool) -> Result<()> {
        if self.meta.model != model.name() {
            return Err(Error::Invalid(format!(
                "checkpoint is of model {}, not {}",
                self.meta.model,
                model.name()
            )));
        }
        let (params, buffers, prefixes) = model_keys(model, self.meta.format);
        for (k, t) in params.iter().chain(&buffers) {
            self.restore(k, t)?;
        }
        if sites {
            for (s, prefix) in model.sites().iter().zip(&prefixes) {
                if let SiteMode::Gated(g) = &s.mode {
                    self.restore(&format!("{prefix}.gate"), &g.gate)?;
                    if !std::ptr::eq(g.gate.storage().as_ref(), g.mask.storage().as_ref()) {
                        self.restore(&format!("{prefix}.mask"), &g.mask)?;
                    }
                    self.restore(&format!("{prefix}.coef"), &g.coef)?;
                    if let Some((m, v)) = &g.stats {
                        self.restore(&format!("{prefix}.mean"), m)?;
                        self.restore(&format!("{prefix}.var"), v)?;
                    }
                }
            }
        }
        Ok(())
    }

    pub fn put_optimizer(&mut self, opt: &Optimizer) -> Result<()> {
        for (name, t) in opt.state_tensors() {
            self.put(&format!("opt.{name}"), &t)?;
        }
        self.meta.optimizer_steps = Some(opt.steps());
        Ok(())
    }

    pub fn restore_optimizer(&self, opt: &mut Optimizer) -> Result<()> {
        let mut fresh_scaler = false;
        for (name, t) in opt.state_tensors() {
            let key = format!("opt.{name}");
            // A run that trained in f32 and resumes in f16 (`--precision auto` on an adapter
            // with f16) has no scaler state to take: its scaler starts afresh.
            if name == crate::nn::LOSS_SCALE_STATE && !self.tensors.contains_key(&key) {
                fresh_scaler = true;
                continue;
            }
            self.restore(&key, &t)?;
        }
        let steps = self.meta.optimizer_steps.ok_or_else(|| {
            Error::Invalid(
                "checkpoint has no optimizer state: resume from a last.safetensors".into(),
            )
        })?;
        opt.set_steps(steps);
        if fresh_scaler {
            // Its step count is the run's, not 0: the restored momentum and moments go on.
            opt.restart_scaler_after(steps)?;
        }
        Ok(())
    }
}
