//! PyTorch state dicts in: the `.pth` files `torch.save` writes (the zip container of PyTorch
//! 1.6 and later, and the legacy pickle stream before it, both read by the `pytorch-reader`
//! crate, which runs no Python and executes nothing from the file) and safetensors files.
//! Tensors come back by name as f32 (floating point) or i64 (integer: BatchNorm's
//! `num_batches_tracked`), and are mapped by module path onto a model.

use crate::models::Model;
use crate::{Error, Result};
use safetensors::tensor::Dtype;
use std::collections::BTreeMap;
use std::path::Path;

/// The values of one stored tensor.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    F32(Vec<f32>),
    I64(Vec<i64>),
}

/// One tensor of a state dict: its shape, its values, and the dtype the file stored
/// (`float32`, `float16`, `int64`, … as PyTorch names them).
#[derive(Debug, Clone, PartialEq)]
pub struct TorchTensor {
    pub shape: Vec<usize>,
    pub values: Values,
    pub dtype: &'static str,
}

impl TorchTensor {
    pub fn f32(shape: Vec<usize>, data: Vec<f32>) -> TorchTensor {
        TorchTensor {
            shape,
            values: Values::F32(data),
            dtype: "float32",
        }
    }

    pub fn i64(shape: Vec<usize>, data: Vec<i64>) -> TorchTensor {
        TorchTensor {
            shape,
            values: Values::I64(data),
            dtype: "int64",
        }
    }

    /// The values as f64, whatever their type (for sums and comparisons).
    pub fn as_f64(&self) -> Vec<f64> {
        match &self.values {
            Values::F32(v) => v.iter().map(|&x| x as f64).collect(),
            Values::I64(v) => v.iter().map(|&x| x as f64).collect(),
        }
    }
}

/// A state dict: tensor name → tensor, in name order.
pub type StateDict = BTreeMap<String, TorchTensor>;

/// Read a PyTorch state dict from a `.pth`/`.pt` file (zip or legacy) or a safetensors file,
/// told apart by their bytes, not their names. A dict saved under `state_dict` or `model`
/// (beside an optimizer's state, say) is taken from there, and a `module.` prefix on every key
/// (`nn.DataParallel`) is dropped.
pub fn read_state_dict(path: &Path) -> Result<StateDict> {
    let bytes = crate::files::read(path)
        .map_err(|e| Error::Invalid(format!("cannot read {}: {e}", path.display())))?;
    let mut sd = if looks_like_safetensors(&bytes) {
        read_safetensors(&bytes, path)?
    } else {
        read_pth(path)?
    };
    // A training checkpoint ({"model": …, "optimizer": …, "epoch": …}, as torchvision's
    // reference scripts save it) keeps its weights under one key: take that subtree.
    for wrapper in ["state_dict.", "model."] {
        if sd.keys().any(|k| k.starts_with(wrapper)) {
            sd = sd
                .into_iter()
                .filter_map(|(k, v)| Some((k.strip_prefix(wrapper)?.to_string(), v)))
                .collect();
            break;
        }
    }
    if !sd.is_empty() && sd.keys().all(|k| k.starts_with("module.")) {
        sd = sd
            .into_iter()
            .map(|(k, v)| (k["module.".len()..].to_string(), v))
            .collect();
    }
    if sd.is_empty() {
        return Err(Error::Invalid(format!(
            "{} holds no tensors: pass a file written by torch.save(model.state_dict(), …) or safetensors",
            path.display()
        )));
    }
    Ok(sd)
}

/// A safetensors file starts with the little-endian length of its JSON header, then `{`.
fn looks_like_safetensors(bytes: &[u8]) -> bool {
    bytes.len() > 9 && {
        let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
        n >= 2 && n < bytes.len() as u64 && bytes[8] == b'{'
    }
}

fn read_safetensors(bytes: &[u8], path: &Path) -> Result<StateDict> {
    let st = safetensors::SafeTensors::deserialize(bytes).map_err(|e| {
        Error::Invalid(format!(
            "{} is not a valid safetensors file: {e}",
            path.display()
        ))
    })?;
    let mut sd = StateDict::new();
    for (name, view) in st.tensors() {
        let kind = match view.dtype() {
            Dtype::F32 => Kind::F32,
            Dtype::F64 => Kind::F64,
            Dtype::F16 => Kind::F16,
            Dtype::BF16 => Kind::BF16,
            Dtype::I64 => Kind::I64,
            Dtype::I32 => Kind::I32,
            Dtype::U8 | Dtype::BOOL => Kind::U8,
            other => return Err(unsupported(path, &name, &other)),
        };
        let t = kind.convert(view.shape().to_vec(), view.data());
        sd.insert(name, t);
    }
    Ok(sd)
}

fn read_pth(path: &Path) -> Result<StateDict> {
    use pytorch_reader::DType as D;
    let reader = pytorch_reader::PytorchReader::new(path).map_err(|e| {
        Error::Invalid(format!(
            "{} is neither a PyTorch .pth file (zip or legacy) nor safetensors: {e}",
            path.display()
        ))
    })?;
    let mut sd = StateDict::new();
    for (name, t) in reader.tensors() {
        let kind = match t.dtype() {
            D::F32 => Kind::F32,
            D::F64 => Kind::F64,
            D::F16 => Kind::F16,
            D::BF16 => Kind::BF16,
            D::I64 => Kind::I64,
            D::I32 => Kind::I32,
            D::U8 | D::Bool => Kind::U8,
            other => return Err(unsupported(path, name, &other)),
        };
        let bytes = t
            .read()
            .map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
        sd.insert(name.clone(), kind.convert(t.shape().to_vec(), &bytes));
    }
    Ok(sd)
}

fn unsupported(path: &Path, name: &str, dtype: &dyn std::fmt::Debug) -> Error {
    Error::Invalid(format!(
        "{}: tensor {name} is {dtype:?}; a state dict holds floating-point weights and integer counters",
        path.display()
    ))
}

/// The element types read, both containers being little-endian.
#[derive(Clone, Copy)]
enum Kind {
    F32,
    F64,
    F16,
    BF16,
    I64,
    I32,
    U8,
}

impl Kind {
    fn convert(self, shape: Vec<usize>, b: &[u8]) -> TorchTensor {
        fn each<T>(b: &[u8], w: usize, f: impl Fn(&[u8]) -> T) -> Vec<T> {
            b.chunks_exact(w).map(f).collect()
        }
        let (values, dtype) = match self {
            Kind::F32 => (Values::F32(bytemuck::pod_collect_to_vec(b)), "float32"),
            Kind::F64 => (
                Values::F32(each(b, 8, |c| {
                    f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32
                })),
                "float64",
            ),
            Kind::F16 => (Values::F32(autorep_kernels::from_f16_bytes(b)), "float16"),
            Kind::BF16 => (
                Values::F32(each(b, 2, |c| {
                    half::bf16::from_le_bytes([c[0], c[1]]).to_f32()
                })),
                "bfloat16",
            ),
            Kind::I64 => (Values::I64(bytemuck::pod_collect_to_vec(b)), "int64"),
            Kind::I32 => (
                Values::I64(each(b, 4, |c| {
                    i32::from_le_bytes(c.try_into().expect("4 bytes")) as i64
                })),
                "int32",
            ),
            Kind::U8 => (Values::I64(each(b, 1, |c| c[0] as i64)), "uint8"),
        };
        TorchTensor {
            shape,
            values,
            dtype,
        }
    }
}

/// Other names a model's tensor goes by in PyTorch code: torchvision's ResNets call the
/// projection shortcut `downsample` and the classifier `fc` where the SNL/AutoReP CIFAR
/// ResNets (whose names autorep uses) say `shortcut` and `linear`.
fn aliases(model: &str, key: &str) -> Vec<String> {
    let mut v = vec![key.to_string()];
    if matches!(model, "resnet18" | "resnet18_in" | "small") {
        let alt = key.replace(".shortcut.", ".downsample.");
        let alt = match alt.strip_prefix("linear.") {
            Some(rest) => format!("fc.{rest}"),
            None => alt,
        };
        if alt != key {
            v.push(alt);
        }
    }
    v
}

/// Equal, or equal after dropping trailing 1s: a 1×1 convolution stored for a linear layer
/// (torchvision's squeeze-excitation `fc1`/`fc2` are `[out, in, 1, 1]`).
fn shapes_fit(file: &[usize], model: &[usize]) -> bool {
    file == model
        || (file.len() > model.len()
            && file[..model.len()] == *model
            && file[model.len()..].iter().all(|&d| d == 1))
}

/// The file key holding `key` of `model`, when the file has one.
pub fn find<'a>(sd: &'a StateDict, model: &str, key: &str) -> Option<(&'a str, &'a TorchTensor)> {
    aliases(model, key)
        .into_iter()
        .find_map(|k| sd.get_key_value(&k).map(|(k, t)| (k.as_str(), t)))
}

/// The names of the classifier's weight and bias: the last layer of every model.
pub fn head_keys(model: &dyn Model) -> Vec<String> {
    let p = model.named_params();
    p[p.len().saturating_sub(2)..]
        .iter()
        .map(|(k, _)| k.clone())
        .collect()
}

/// Copy the state dict's weights and BatchNorm statistics into `model` by module path.
/// BatchNorm's `num_batches_tracked` is not used (autorep's momentum is fixed); the names in
/// `skip` (a classifier being replaced) are left as the model has them. Every other tensor
/// of the model must be in the file with its shape, and every tensor of the file must be
/// used: the error names the missing, unexpected and mis-shaped ones.
pub fn load_into(model: &dyn Model, sd: &StateDict, skip: &[String], what: &str) -> Result<()> {
    let name = model.name().to_string();
    let mut used: Vec<&str> = Vec::new();
    let (mut missing, mut misshaped) = (Vec::new(), Vec::new());
    for (key, t) in model
        .named_params()
        .into_iter()
        .chain(model.named_buffers())
    {
        let Some((fkey, ft)) = find(sd, &name, &key) else {
            if !skip.contains(&key) {
                missing.push(key);
            }
            continue;
        };
        used.push(fkey);
        if skip.contains(&key) {
            continue;
        }
        if !shapes_fit(&ft.shape, t.shape()) {
            misshaped.push(format!(
                "{fkey}: file {:?}, model {:?}",
                ft.shape,
                t.shape()
            ));
            continue;
        }
        match &ft.values {
            Values::F32(v) => t.copy_from_host(v)?,
            Values::I64(_) => misshaped.push(format!("{fkey}: {} holds integers", ft.dtype)),
        }
    }
    let gated: Vec<&String> = sd
        .keys()
        .filter(|k| k.ends_with(".mask") || k.ends_with(".poly"))
        .collect();
    if let Some(k) = gated.first() {
        return Err(Error::Invalid(format!(
            "{what} holds gated sites ({k} …): import takes all-ReLU (baseline) weights; a gated network moves as an autorep checkpoint"
        )));
    }
    let unexpected: Vec<&String> = sd
        .keys()
        .filter(|k| !used.contains(&k.as_str()) && !k.ends_with(".num_batches_tracked"))
        .collect();
    if missing.is_empty() && unexpected.is_empty() && misshaped.is_empty() {
        return Ok(());
    }
    let list = |v: Vec<String>, what: &str| -> Option<String> {
        if v.is_empty() {
            return None;
        }
        let n = v.len();
        let shown: Vec<String> = v.into_iter().take(4).collect();
        let more = if n > 4 { ", …" } else { "" };
        Some(format!("{n} {what} ({}{more})", shown.join("; ")))
    };
    let parts: Vec<String> = [
        list(misshaped, "mis-shaped"),
        list(missing, "missing"),
        list(unexpected.into_iter().cloned().collect(), "unexpected"),
    ]
    .into_iter()
    .flatten()
    .collect();
    let stem_hint = match find(sd, &name, "conv1.weight") {
        Some((_, t)) if t.shape.len() == 4 && t.shape[2] == 7 => {
            ": this is torchvision's ImageNet ResNet (7×7 stem and max-pool); autorep's ResNets are the CIFAR ones (3×3 stem, no max-pool)"
        }
        _ => "",
    };
    Err(Error::Invalid(format!(
        "{what} does not fit {name}: {}{stem_hint}",
        parts.join(", ")
    )))
}
