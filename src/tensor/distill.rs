//! Knowledge distillation (Hinton et al.; AutoReP/SNL's SoftTarget): per sample
//! T² · KL(softmax(teacher/T) ‖ softmax(student/T)).

use super::backend::{place, Placed};
use super::{Op, Storage, Tensor};
use crate::error::{Error, Result};
use autorep_kernels::{cpu, launch};

impl Tensor {
    /// Per-sample distillation loss of these [batch, classes] student logits against the
    /// teacher's (taken as constants); `.mean()` gives PyTorch's "batchmean" reduction.
    pub fn distill(&self, teacher: &Tensor, temperature: f32) -> Result<Tensor> {
        if self.shape().len() != 2 || self.shape() != teacher.shape() {
            return Err(Error::Shape {
                op: "distill",
                left: self.shape().to_vec(),
                right: teacher.shape().to_vec(),
            });
        }
        if temperature <= 0.0 {
            return Err(Error::Invalid(format!(
                "distillation temperature must be positive, got {temperature}"
            )));
        }
        let (rows, classes) = (self.shape()[0], self.shape()[1]);
        let teacher = teacher.detach();
        let out = Storage::alloc(&self.device(), rows)?;
        let (ss, ts) = (self.storage(), teacher.storage());
        match place("distill", [&*ss, &*ts, &out])? {
            Placed::Gpu(g, [s, t, l]) => {
                launch::kd_forward(g, rows, classes, temperature, s, t, l)?
            }
            Placed::Cpu => cpu::kd_forward(
                &ss.cpu(),
                &ts.cpu(),
                classes,
                temperature,
                &mut out.cpu_mut(),
            ),
        }
        Ok(Tensor::result(vec![rows], out, &[self], || Op::Distill {
            student: self.clone(),
            teacher,
            temperature,
        }))
    }

    /// d(loss rows)/d(student) scaled by the upstream per-row gradient (no graph).
    pub(crate) fn distill_backward(
        &self,
        teacher: &Tensor,
        temperature: f32,
        gloss: &Tensor,
    ) -> Result<Tensor> {
        let (rows, classes) = (self.shape()[0], self.shape()[1]);
        let out = Storage::alloc(&self.device(), rows * classes)?;
        let (ss, ts, gs) = (self.storage(), teacher.storage(), gloss.storage());
        match place("distill backward", [&*ss, &*ts, &*gs, &out])? {
            Placed::Gpu(g, [s, t, gl, o]) => {
                launch::kd_backward(g, rows, classes, temperature, s, t, gl, o)?
            }
            Placed::Cpu => cpu::kd_backward(
                &ss.cpu(),
                &ts.cpu(),
                &gs.cpu(),
                classes,
                temperature,
                &mut out.cpu_mut(),
            ),
        }
        Ok(Tensor::result(
            self.shape().to_vec(),
            out,
            &[],
            || unreachable!(),
        ))
    }
}
