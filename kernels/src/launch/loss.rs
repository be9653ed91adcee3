use super::{f, groups_for};
use crate::error::Result;
use crate::pipelines::{Access::*, Kernel};
use crate::{shaders::LOSS, Gpu, GpuBuffer};

const CE_FORWARD: Kernel = Kernel { shader: LOSS, entry: "ce_forward", bindings: &[Read, Read, ReadWrite, ReadWrite] };
const CE_BACKWARD: Kernel = Kernel { shader: LOSS, entry: "ce_backward", bindings: &[Read, Read, Read, ReadWrite] };

/// Per-row softmax cross-entropy (label smoothing `eps`) and top-1 correctness; labels are u32.
#[allow(clippy::too_many_arguments)]
pub fn ce_forward(gpu: &Gpu, rows: usize, classes: usize, eps: f32, logits: &GpuBuffer, labels: &GpuBuffer, loss: &GpuBuffer, correct: &GpuBuffer) -> Result<()> {
    let params = [rows as u32, classes as u32, 0, 0, f(eps)];
    gpu.dispatch(&CE_FORWARD, &[], &params, &[logits.into(), labels.into(), loss.into(), correct.into()], groups_for(rows, 64))
}

#[allow(clippy::too_many_arguments)]
pub fn ce_backward(gpu: &Gpu, rows: usize, classes: usize, eps: f32, logits: &GpuBuffer, labels: &GpuBuffer, gloss: &GpuBuffer, glogits: &GpuBuffer) -> Result<()> {
    let params = [rows as u32, classes as u32, 0, 0, f(eps)];
    gpu.dispatch(&CE_BACKWARD, &[], &params, &[logits.into(), labels.into(), gloss.into(), glogits.into()], groups_for(rows, 64))
}
