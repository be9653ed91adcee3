//! Out of the project: a checkpoint's network as ONNX, for the private-inference frameworks
//! and runtimes that read it.

pub mod onnx;

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
    let (kept, total) = match &rep {
        Some(r) => (
            r.site_counts(model.as_ref())?.iter().map(|s| s.1).sum(),
            model.relu_total(),
        ),
        None => (model.relu_total(), model.relu_total()),
    };
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
