//! The three conv passes of every distinct convolution of a model.

use super::{ramp, time_cpu, time_gpu};
use crate::{Device, Result};
use autorep_kernels::{cpu, launch, params::ConvParams};

/// The distinct convolutions of a model at 32x32 (label, shape at batch 1).
pub fn conv_layers(model: &str) -> Vec<(String, ConvParams)> {
    let c = |cin, cout, h, k, stride| ConvParams {
        n: 1,
        cin,
        h,
        w: h,
        cout,
        kh: k,
        kw: k,
        stride,
        pad: k / 2,
    };
    let list = match model {
        // EfficientNet-B2 at 224: the stem, and each stage's first 1x1 expansion and projection
        // (a projection reads the depthwise output, after its stride).
        "efficientnet_b2" => vec![
            c(3, 32, 224, 3, 2),
            c(16, 96, 112, 1, 1),
            c(96, 24, 56, 1, 1),
            c(24, 144, 56, 1, 1),
            c(144, 48, 28, 1, 1),
            c(48, 288, 28, 1, 1),
            c(288, 88, 14, 1, 1),
            c(88, 528, 14, 1, 1),
            c(528, 120, 14, 1, 1),
            c(120, 720, 14, 1, 1),
            c(720, 208, 7, 1, 1),
            c(208, 1248, 7, 1, 1),
            c(1248, 352, 7, 1, 1),
            c(352, 1408, 7, 1, 1),
        ],
        "wrn22_8" => vec![
            c(3, 16, 32, 3, 1),
            c(16, 128, 32, 3, 1),
            c(128, 128, 32, 3, 1),
            c(16, 128, 32, 1, 1),
            c(128, 256, 32, 3, 2),
            c(256, 256, 16, 3, 1),
            c(128, 256, 32, 1, 2),
            c(256, 512, 16, 3, 2),
            c(512, 512, 8, 3, 1),
            c(256, 512, 16, 1, 2),
        ],
        _ => vec![
            c(3, 64, 32, 3, 1),
            c(64, 64, 32, 3, 1),
            c(64, 128, 32, 3, 2),
            c(128, 128, 16, 3, 1),
            c(64, 128, 32, 1, 2),
            c(128, 256, 16, 3, 2),
            c(256, 256, 8, 3, 1),
            c(128, 256, 16, 1, 2),
            c(256, 512, 8, 3, 2),
            c(512, 512, 4, 3, 1),
            c(256, 512, 8, 1, 2),
        ],
    };
    list.into_iter().map(|p| (p.shape_label(), p)).collect()
}

/// One kernel timing on one shape.
#[derive(Debug, Clone)]
pub struct KernelTiming {
    pub kernel: String,
    pub shape: String,
    pub median_s: f64,
    /// Arithmetic rate where the kernel is compute-bound (GEMM-like).
    pub gflops: Option<f64>,
    /// Memory rate (bytes read + written) for memory-bound kernels.
    pub gbps: Option<f64>,
}

impl KernelTiming {
    fn flops(kernel: &str, shape: String, s: f64, flops: f64) -> Self {
        KernelTiming {
            kernel: kernel.into(),
            shape,
            median_s: s,
            gflops: Some(flops / s / 1e9),
            gbps: None,
        }
    }

    pub(super) fn bytes(kernel: &str, shape: String, s: f64, bytes: f64) -> Self {
        KernelTiming {
            kernel: kernel.into(),
            shape,
            median_s: s,
            gflops: None,
            gbps: Some(bytes / s / 1e9),
        }
    }

    /// The row as a JSON object (milliseconds, GFLOP/s, GB/s).
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "kernel": self.kernel,
            "shape": self.shape,
            "median_ms": self.median_s * 1e3,
            "gflops": self.gflops,
            "gbps": self.gbps,
        })
    }
}

/// Time the three conv passes of every distinct conv of `model` at `batch`, on operands of
/// `dtype` (F16: GPU only).
pub fn conv_kernels(
    device: &Device,
    model: &str,
    batch: usize,
    reps: usize,
    dtype: crate::Dtype,
) -> Result<Vec<KernelTiming>> {
    let mut out = Vec::new();
    for (label, p1) in conv_layers(model) {
        let p = p1.with_batch(batch);
        let (x, w, dy) = (
            ramp(p.x_len(), 17),
            ramp(p.w_len(), 13),
            ramp(p.y_len(), 11),
        );
        let flops = p.flops();
        // On a GPU each row names the plan its pass ran by: tile/K splits, +pf where the K loop
        // is pipelined.
        let shape = |pass| -> Result<String> {
            Ok(match device {
                Device::Gpu(g) => {
                    let plan = launch::conv_plan(g, pass, &p, dtype)?;
                    let pf = if plan.prefetch { "+pf" } else { "" };
                    let st = if plan.staged { "+st" } else { "" };
                    format!(
                        "{label} n{batch} {}/{}{pf}{st}",
                        plan.tile.name(),
                        plan.splits
                    )
                }
                Device::Cpu => format!("{label} n{batch}"),
            })
        };
        let (fwd, dgrad, wgrad) = match device {
            Device::Cpu => {
                let (mut y, mut dx, mut dw) = (
                    vec![0f32; p.y_len()],
                    vec![0f32; p.x_len()],
                    vec![0f32; p.w_len()],
                );
                (
                    time_cpu(reps, || cpu::conv2d_forward(&p, &x, &w, &mut y)),
                    time_cpu(reps, || cpu::conv2d_input_grad(&p, &dy, &w, &mut dx)),
                    time_cpu(reps, || cpu::conv2d_weight_grad(&p, &x, &dy, &mut dw)),
                )
            }
            Device::Gpu(g) => {
                let up = |v: &[f32]| g.upload_as(v, dtype);
                let out = |n: usize| g.alloc_elems(n, dtype);
                let (bx, bw, bdy) = (up(&x)?, up(&w)?, up(&dy)?);
                let (by, bdx, bdw) = (out(p.y_len())?, out(p.x_len())?, out(p.w_len())?);
                let splits = launch::conv2d_weight_grad_splits(g, &p, dtype)?.1;
                let scratch = g.alloc_elems(splits, autorep_kernels::Dtype::F32)?;
                (
                    time_gpu(g, reps, || {
                        Ok(launch::conv2d_forward(g, &p, &bx, &bw, &by)?)
                    })?,
                    time_gpu(g, reps, || {
                        Ok(launch::conv2d_input_grad(g, &p, &bdy, &bw, &bdx)?)
                    })?,
                    time_gpu(g, reps, || {
                        Ok(launch::conv2d_weight_grad(
                            g, &p, &bx, &bdy, &scratch, &bdw,
                        )?)
                    })?,
                )
            }
        };
        use autorep_kernels::ConvPass;
        out.push(KernelTiming::flops(
            "conv2d_forward",
            shape(ConvPass::Forward)?,
            fwd,
            flops,
        ));
        // The input-gradient GEMM runs over every input pixel and tap (stride-2 taps off the
        // output grid read zeros), so its useful work equals the forward's.
        out.push(KernelTiming::flops(
            "conv2d_input_grad",
            shape(ConvPass::InputGrad)?,
            dgrad,
            flops,
        ));
        out.push(KernelTiming::flops(
            "conv2d_weight_grad",
            shape(ConvPass::WeightGrad)?,
            wgrad,
            flops,
        ));
    }
    Ok(out)
}
