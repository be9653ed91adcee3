use crate::error::Result;
use crate::pipelines::{Access::*, EntryPoint, Kernel};
use crate::uniforms::{CeUniform, KdUniform};
use crate::{Gpu, GpuBuffer};

const ROWS: [u32; 3] = [64, 1, 1];
const CE_FORWARD: Kernel<CeUniform> =
    Kernel::new("ce_forward", &[Read, Read, ReadWrite, ReadWrite], ROWS);
const CE_BACKWARD: Kernel<CeUniform> =
    Kernel::new("ce_backward", &[Read, Read, Read, ReadWrite], ROWS);
const KD_FORWARD: Kernel<KdUniform> = Kernel::new("kd_forward", &[Read, Read, ReadWrite], ROWS);
const KD_BACKWARD: Kernel<KdUniform> =
    Kernel::new("kd_backward", &[Read, Read, Read, ReadWrite], ROWS);
pub(crate) const ENTRY_POINTS: &[EntryPoint] = &[
    CE_FORWARD.entry,
    CE_BACKWARD.entry,
    KD_FORWARD.entry,
    KD_BACKWARD.entry,
];

fn ce(rows: usize, classes: usize, smoothing: f32) -> CeUniform {
    CeUniform {
        rows: rows as u32,
        classes: classes as u32,
        smoothing,
        ..CeUniform::default()
    }
}

fn kd(rows: usize, classes: usize, temperature: f32) -> KdUniform {
    KdUniform {
        rows: rows as u32,
        classes: classes as u32,
        temperature,
        ..KdUniform::default()
    }
}

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
    gpu.dispatch(
        &CE_FORWARD,
        &[],
        &ce(rows, classes, eps),
        &[logits.into(), labels.into(), loss.into(), correct.into()],
        CE_FORWARD.groups_for(rows),
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
    gpu.dispatch(
        &CE_BACKWARD,
        &[],
        &ce(rows, classes, eps),
        &[logits.into(), labels.into(), gloss.into(), glogits.into()],
        CE_BACKWARD.groups_for(rows),
    )
}

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
    gpu.dispatch(
        &KD_FORWARD,
        &[],
        &kd(rows, classes, temperature),
        &[student.into(), teacher.into(), loss.into()],
        KD_FORWARD.groups_for(rows),
    )
}

/// gstudent\[r, k\] = gloss\[r\] · T · (softmax(student\[r\]/T)_k − softmax(teacher\[r\]/T)_k).
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
    let params = kd(rows, classes, temperature);
    let bindings = [
        student.into(),
        teacher.into(),
        gloss.into(),
        gstudent.into(),
    ];
    gpu.dispatch(
        &KD_BACKWARD,
        &[],
        &params,
        &bindings,
        KD_BACKWARD.groups_for(rows),
    )
}
