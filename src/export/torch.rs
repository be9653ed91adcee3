//! PyTorch both ways. `autorep import` turns a PyTorch state dict (torchvision's weights, or
//! any module with autorep's module paths) into an all-ReLU checkpoint; `autorep export
//! --format torch` writes a checkpoint's network as a safetensors state dict that loads with
//! `load_state_dict(strict=True)` into the modules of the `python/autorep_torch` package (and,
//! for an all-ReLU `efficientnet_b2`, into torchvision's own).
//!
//! The exported state dict is the checkpoint's tensors under their module paths, plus what
//! PyTorch's modules hold that autorep does not: every BatchNorm's `num_batches_tracked`
//! (int64, written as 0: PyTorch reads it only when its momentum is `None`), and the
//! squeeze-excitation layers as the 1×1 convolutions torchvision makes them. A gated site
//! becomes two buffers under its name: `mask` (1 = ReLU kept, 0 = polynomial), shaped
//! `[C, H, W]` for pixel gates and `[C, 1, 1]` for channel gates, and `poly` `[3, C]`, the
//! per-channel a0, a1, a2 of p(x) = a0 + a1·x + a2·x² in the units of the site's input
//! (the checkpoint's scale factors and x² clamp applied, as in the ONNX export).

use super::state_dict::{head_keys, load_into, read_state_dict, StateDict, TorchTensor, Values};
use crate::data::Dataset;
use crate::models::{build, Model};
use crate::nn::SiteMode;
use crate::train::checkpoint::{Checkpoint, Meta, Normalisation, Progress, FORMAT};
use crate::train::config::{StageConfig, TrainConfig};
use crate::train::stages::load_model;
use crate::{Device, Error, Result};
use safetensors::tensor::{Dtype, TensorView};
use std::collections::HashMap;
use std::path::Path;

/// The safetensors metadata key holding the export's description (model, classes, input,
/// normalisation), which `autorep_torch.load` reads to build the module.
pub const META_KEY: &str = "autorep_torch";

/// What `autorep import` builds.
#[derive(Debug, Clone)]
pub struct ImportSpec {
    pub model: String,
    /// The dataset the checkpoint will train or evaluate on: its channels, input size,
    /// class count and normalisation.
    pub dataset: String,
    /// Start a new classifier for the dataset instead of the file's (fine-tuning from
    /// weights trained on other classes, e.g. torchvision's ImageNet ones).
    pub reset_head: bool,
    /// Seeds the new classifier.
    pub seed: u64,
    /// ImageNet only: the input side (default 224; torchvision evaluates its B2 weights at 288).
    pub image_size: Option<usize>,
}

/// An all-ReLU checkpoint of `spec.model` holding the weights of the PyTorch state dict at
/// `path` (a `.pth` or safetensors file).
pub fn import_checkpoint(path: &Path, spec: &ImportSpec) -> Result<Checkpoint> {
    let dataset = Dataset::from_name(&spec.dataset)?;
    let input = match spec.image_size {
        Some(side) if dataset == Dataset::ImageNet => side,
        Some(side) if side != dataset.input_size() => {
            return Err(Error::Invalid(format!(
                "{} images are {}x{}: an image size of {side} applies to imagenet only",
                dataset.name(),
                dataset.input_size(),
                dataset.input_size()
            )))
        }
        _ => dataset.input_size(),
    };
    let (channels, classes) = (dataset.channels(), dataset.classes());
    let sd = read_state_dict(path)?;
    let model = build(
        &spec.model,
        &Device::Cpu,
        channels,
        input,
        classes,
        spec.seed,
    )?;
    let head = head_keys(model.as_ref());
    if let Some((k, t)) = super::state_dict::find(&sd, model.name(), &head[0]) {
        let theirs = t.shape.first().copied().unwrap_or(0);
        if theirs != classes && !spec.reset_head {
            return Err(Error::Invalid(format!(
                "{}: the classifier {k} has {theirs} outputs but {} has {classes} classes: pass --reset-head to start a new classifier (fine-tuning), or import for a dataset of {theirs} classes",
                path.display(),
                dataset.name()
            )));
        }
    }
    let skip = if spec.reset_head { head } else { vec![] };
    load_into(model.as_ref(), &sd, &skip, &path.display().to_string())?;
    let meta = Meta {
        format: FORMAT,
        model: model.name().to_string(),
        dataset: dataset.name().to_string(),
        channels,
        input,
        classes,
        config: StageConfig::Train(TrainConfig {
            epochs: 0,
            seed: spec.seed,
            ..TrainConfig::default()
        }),
        progress: Progress::default(),
        replacement: None,
        optimizer_steps: None,
        checksums: Default::default(),
        normalisation: Some(Normalisation {
            mean: dataset.mean().to_vec(),
            std: dataset.std().to_vec(),
        }),
        sites: model.sites().iter().map(|s| s.name.clone()).collect(),
        imported_from: Some(path.display().to_string()),
        images: None,
        // PyTorch's datasets number Tiny-ImageNet's classes as torchvision's ImageFolder does.
        class_order: dataset.class_order().map(String::from),
        data: None,
    };
    let mut ck = Checkpoint::new(meta);
    ck.put_model(model.as_ref())?;
    // A NaN weight behind a ReLU can still give finite logits, so evaluation would not catch
    // it, and training would call it divergence.
    if let Some((name, v)) = ck.first_non_finite() {
        return Err(Error::Invalid(format!(
            "{}: tensor '{name}' holds {v}: import a state dict of finite values (save it again from a model that trained without diverging)",
            path.display()
        )));
    }
    Ok(ck)
}

/// The shape PyTorch's module gives a tensor autorep stores as `shape`: torchvision's
/// squeeze-excitation layers are 1×1 convolutions where autorep's are linear.
fn torch_shape(model: &str, key: &str, shape: &[usize]) -> Vec<usize> {
    let se = key.ends_with(".fc1.weight") || key.ends_with(".fc2.weight");
    if model.starts_with("efficientnet") && se && shape.len() == 2 {
        return vec![shape[0], shape[1], 1, 1];
    }
    shape.to_vec()
}

/// The PyTorch state dict of `model` with its gates as they are.
pub fn torch_state_dict(model: &dyn Model) -> Result<StateDict> {
    let name = model.name();
    let mut sd = StateDict::new();
    for (k, t) in model.named_params() {
        let shape = torch_shape(name, &k, t.shape());
        sd.insert(k, TorchTensor::f32(shape, t.to_vec()?));
    }
    for (k, t) in model.named_buffers() {
        if let Some(bn) = k.strip_suffix(".running_var") {
            sd.insert(
                format!("{bn}.num_batches_tracked"),
                TorchTensor::i64(vec![], vec![0]),
            );
        }
        sd.insert(k, TorchTensor::f32(t.shape().to_vec(), t.to_vec()?));
    }
    for site in model.sites() {
        let SiteMode::Gated(g) = &site.mode else {
            continue;
        };
        let p = site
            .gate_params(1)
            .expect("a gated site has gate parameters");
        let side = (site.hw as f64).sqrt().round() as usize;
        if side * side != site.hw {
            return Err(Error::Invalid(format!(
                "export: site {} is not square ({} pixels)",
                site.name, site.hw
            )));
        }
        let mask_shape = if g.channel_wise {
            vec![site.channels, 1, 1]
        } else {
            vec![site.channels, side, side]
        };
        sd.insert(
            format!("{}.mask", site.name),
            TorchTensor::f32(mask_shape, g.mask.to_vec()?),
        );
        let poly = super::polynomial(&g.coef.to_vec()?, &p).concat();
        sd.insert(
            format!("{}.poly", site.name),
            TorchTensor::f32(vec![3, site.channels], poly),
        );
    }
    Ok(sd)
}

/// Serialise a state dict as safetensors (f32 and int64 tensors) with `metadata`.
pub fn state_dict_bytes(sd: &StateDict, metadata: HashMap<String, String>) -> Result<Vec<u8>> {
    let raw: Vec<(&String, &TorchTensor, Vec<u8>)> = sd
        .iter()
        .map(|(k, t)| {
            let bytes = match &t.values {
                Values::F32(v) => bytemuck::cast_slice(v).to_vec(),
                Values::I64(v) => bytemuck::cast_slice(v).to_vec(),
            };
            (k, t, bytes)
        })
        .collect();
    let views = raw
        .iter()
        .map(|(k, t, bytes)| {
            let dtype = match t.values {
                Values::F32(_) => Dtype::F32,
                Values::I64(_) => Dtype::I64,
            };
            let v = TensorView::new(dtype, t.shape.clone(), bytes)
                .map_err(|e| Error::Invalid(format!("export: tensor {k}: {e}")))?;
            Ok(((*k).clone(), v))
        })
        .collect::<Result<Vec<_>>>()?;
    safetensors::serialize(views, Some(metadata))
        .map_err(|e| Error::Invalid(format!("export: serialising safetensors: {e}")))
}

/// The safetensors bytes of the checkpoint at `path` as a PyTorch state dict, with the
/// description `autorep_torch.load` builds its module from.
pub fn checkpoint_to_torch(path: &Path) -> Result<Vec<u8>> {
    let ck = Checkpoint::load(path)?;
    let m = &ck.meta;
    let (model, _) = load_model(&Device::Cpu, &ck)?;
    let sd = torch_state_dict(model.as_ref())?;
    let normalisation = m.normalisation.clone().or_else(|| {
        Dataset::from_name(&m.dataset).ok().map(|d| Normalisation {
            mean: d.mean().to_vec(),
            std: d.std().to_vec(),
        })
    });
    let description = serde_json::json!({
        "model": m.model,
        "dataset": m.dataset,
        "channels": m.channels,
        "input": m.input,
        "classes": m.classes,
        "normalisation": normalisation,
        "sites": model.sites().iter().map(|s| s.name.clone()).collect::<Vec<_>>(),
    });
    let metadata: HashMap<String, String> = [
        ("format".to_string(), "pt".to_string()),
        (META_KEY.to_string(), description.to_string()),
    ]
    .into();
    state_dict_bytes(&sd, metadata)
}
