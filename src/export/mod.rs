//! In and out of the project: a checkpoint's network as ONNX, for the private-inference
//! frameworks and runtimes that read it, or as a PyTorch state dict; PyTorch state dicts
//! (torchvision's weights among them) in as checkpoints.

pub mod onnx;
pub mod state_dict;
pub mod torch;

use crate::data::Dataset;
use crate::error::Result;
use crate::train::checkpoint::Checkpoint;
use crate::train::stages::load_model;
use crate::Device;
use std::path::Path;

/// The ONNX bytes of the checkpoint at `path`, its eval-mode network with the masks as saved,
/// and the metadata a user needs to feed it (normalisation, input size, ReLU counts).
pub fn checkpoint_to_onnx(path: &Path) -> Result<Vec<u8>> {
    let ck = Checkpoint::load(path)?;
    let m = &ck.meta;
    let (model, rep) = load_model(&Device::Cpu, &ck)?;
    let kept: usize = crate::autorep::sites_of(model.as_ref(), rep.as_ref())?
        .iter()
        .map(|s| s.relus)
        .sum();
    let total = model.relu_total();
    let list = |v: &[f32]| {
        v.iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut props = vec![
        ("model".to_string(), m.model.clone()),
        ("dataset".to_string(), m.dataset.clone()),
        (
            "input".to_string(),
            format!(
                "float32 [batch, {}, {}, {}], NCHW",
                m.channels, m.input, m.input
            ),
        ),
        ("relus_kept".to_string(), kept.to_string()),
        ("relus_total".to_string(), total.to_string()),
    ];
    if let Ok(d) = Dataset::from_name(&m.dataset) {
        props.push((
            "normalisation".to_string(),
            "pixels / 255, then (x - mean) / std per channel".to_string(),
        ));
        props.push(("mean".to_string(), list(d.mean())));
        props.push(("std".to_string(), list(d.std())));
    }
    let info = onnx::ExportInfo {
        props,
        input: [m.channels, m.input, m.input],
    };
    onnx::export_onnx(model.as_ref(), rep.as_ref(), &info)
}

/// A gated site's polynomial in the units of its input, per channel: `[a0, a1, a2]` with
/// p(x) = a0 + a1·x + a2·x². The stored coefficients are the unscaled `[c0 | c1 | c2]` the
/// optimizer trains; the gate multiplies c1 by s1 and the (optionally clamped) c2 by s2.
pub fn polynomial(coef: &[f32], p: &autorep_kernels::params::GateParams) -> [Vec<f32>; 3] {
    let c = p.channels;
    let clip = |v: f32| {
        if p.clip2 > 0.0 {
            v.clamp(-p.clip2, p.clip2)
        } else {
            v
        }
    };
    [
        coef[..c].to_vec(),
        coef[c..2 * c].iter().map(|v| p.s1 * v).collect(),
        coef[2 * c..3 * c].iter().map(|&v| p.s2 * clip(v)).collect(),
    ]
}
