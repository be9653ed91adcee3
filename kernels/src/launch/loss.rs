use super::{f, groups_for};
use crate::error::Result;
use crate::pipelines::{Access::*, Kernel};
use crate::{shaders::LOSS, Gpu, GpuBuffer};

const CE_FORWARD: Kernel = Kernel {
    shader: LOSS,
    entry: "ce_forward",
    bindings: &[Read, Read, ReadWrite, ReadWrite],
};
const CE_BACKWARD: Kernel = Kernel {
    shader: LOSS,
    entry: "ce_backward",
    bindings: &[Read, Read, Read, ReadWrite],
};

/// Per-row softmax cross-entropy (label smoothing `eps`) and top-1 correctness; labels are u32.
#[allow(clippy::too_many_arguments)]
pub fn ce_forward(
    gpu: &Gpu,
    rows: usize,
    classes: usize,
    eps: f32,
    logits: &GpuBuffer,
    labels: &GpuBuffer,
    loss: &GpuBuffer,
    correct: &GpuBuffer,
) -> Result<()> {
    let params = [rows as u32, classes as u32, 0, 0, f(eps)];
    gpu.dispatch(
        &CE_FORWARD,
        &[],
        &params,
        &[logits.into(), labels.into(), loss.into(), correct.into()],
        groups_for(rows, 64),
    )
}

#[allow(clippy::too_many_arguments)]
pub fn ce_backward(
    gpu: &Gpu,
    rows: usize,
    classes: usize,
    eps: f32,
    logits: &GpuBuffer,
    labels: &GpuBuffer,
    gloss: &GpuBuffer,
    glogits: &GpuBuffer,
) -> Result<()> {
    let params = [rows as u32, classes as u32, 0, 0, f(eps)];
    gpu.dispatch(
        &CE_BACKWARD,
        &[],
        &params,
        &[logits.into(), labels.into(), gloss.into(), glogits.into()],
        groups_for(rows, 64),
    )
}

const KD_FORWARD: Kernel = Kernel {
    shader: LOSS,
    entry: "kd_forward",
    bindings: &[Read, Read, ReadWrite],
};
const KD_BACKWARD: Kernel = Kernel {
    shader: LOSS,
    entry: "kd_backward",
    bindings: &[Read, Read, Read, ReadWrite],
};

/// Per-row distillation loss T²·KL(softmax(teacher/T) ‖ softmax(student/T)); the caller
/// averages over rows ("batchmean").
pub fn kd_forward(
    gpu: &Gpu,
    rows: usize,
    classes: usize,
    temperature: f32,
    student: &GpuBuffer,
    teacher: &GpuBuffer,
    loss: &GpuBuffer,
) -> Result<()> {
    let params = [rows as u32, classes as u32, 0, 0, f(temperature)];
    gpu.dispatch(
        &KD_FORWARD,
        &[],
        &params,
        &[student.into(), teacher.into(), loss.into()],
        groups_for(rows, 64),
    )
}

/// gstudent[r, k] = gloss[r] · T · (softmax(student[r]/T)_k − softmax(teacher[r]/T)_k).
#[allow(clippy::too_many_arguments)]
pub fn kd_backward(
    gpu: &Gpu,
    rows: usize,
    classes: usize,
    temperature: f32,
    student: &GpuBuffer,
    teacher: &GpuBuffer,
    gloss: &GpuBuffer,
    gstudent: &GpuBuffer,
) -> Result<()> {
    let params = [rows as u32, classes as u32, 0, 0, f(temperature)];
    let bindings = [
        student.into(),
        teacher.into(),
        gloss.into(),
        gstudent.into(),
    ];
    gpu.dispatch(&KD_BACKWARD, &[], &params, &bindings, groups_for(rows, 64))
}
