//! Benchmarks run from the CLI (`autorep bench ...`) and from `cargo bench`: median of several
//! runs after a warm-up, timed with timestamp queries on adapters that have them.

mod conv;
mod input;
mod memory;
mod step;
mod trace;
mod tune;

pub use conv::{conv_kernels, conv_layers, KernelTiming};
pub use input::{input_pipeline, InputTiming};
pub use memory::memory_kernels;
pub use step::{training_step, StepSpec, StepTiming};
pub use trace::chrome_trace;
pub use tune::{step_conv_passes, tune_step};

use crate::{Device, Result};
use autorep_kernels::{cpu, launch, params::GemmParams, Gpu};
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Median device seconds of `f` (which only queues work), after one warm-up run.
fn time_gpu(g: &Gpu, reps: usize, f: impl FnMut() -> Result<()>) -> Result<f64> {
    g.median_secs(reps, f)
}

/// Median wall seconds of `f` on the CPU, after one warm-up run.
fn time_cpu(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    median(
        (0..reps.max(1))
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

/// One measured GEMM shape.
#[derive(Debug, Clone)]
pub struct GemmResult {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub median_s: f64,
    pub gflops: f64,
}

/// The shapes `autorep bench gemm` measures: two squares and the GEMM of resnet18_in's first
/// stage 3x3 convolution at batch 128 (M = 128·32·32 pixels, N = 64 channels, K = 64·9).
pub fn gemm_shapes(quick: bool) -> Vec<(usize, usize, usize)> {
    if quick {
        vec![(256, 256, 256), (512, 512, 512), (8192, 64, 576)]
    } else {
        vec![(256, 256, 256), (1024, 1024, 1024), (131_072, 64, 576)]
    }
}

fn ramp(n: usize, period: usize) -> Vec<f32> {
    ramp_values(period).take(n).collect()
}

/// The values of [`ramp`], endless.
fn ramp_values(period: usize) -> impl Iterator<Item = f32> {
    (0..period)
        .map(move |i| (i as f32 - (period / 2) as f32) * 0.01)
        .cycle()
}

/// Time C = A·B (row-major, f32).
/// Memory the machine can still give, from /proc/meminfo (None where unknown).
fn available_bytes() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Refuse a GEMM whose operands cannot be allocated, before allocating anything: each
/// operand must fit the adapter's largest buffer, and all three the host's free memory.
pub fn check_gemm_size(device: &Device, m: usize, n: usize, k: usize) -> Result<()> {
    let too_big = |what: String| {
        crate::Error::Invalid(format!("GEMM {m}x{n}x{k}: {what}: choose smaller sizes"))
    };
    let mut total = 0u64;
    for (name, a, b) in [("A", m, k), ("B", k, n), ("C", m, n)] {
        let bytes = (a as u64)
            .checked_mul(b as u64)
            .and_then(|e| e.checked_mul(4))
            .ok_or_else(|| {
                too_big(format!(
                    "operand {name} has more elements than memory can hold"
                ))
            })?;
        if let Device::Gpu(g) = device {
            let max = g.limits().max_buffer_size;
            if bytes > max {
                return Err(too_big(format!(
                    "operand {name} needs {} MiB, the adapter's largest buffer is {} MiB",
                    bytes >> 20,
                    max >> 20
                )));
            }
        }
        total = total.saturating_add(bytes);
    }
    if let Some(free) = available_bytes() {
        if total > free {
            return Err(too_big(format!(
                "the operands need {} MiB, the machine has {} MiB free",
                total >> 20,
                free >> 20
            )));
        }
    }
    Ok(())
}

/// `dtype` F16 stores A, B and C in half precision (f32 accumulation; GPU only).
pub fn gemm(
    device: &Device,
    m: usize,
    n: usize,
    k: usize,
    reps: usize,
    dtype: crate::Dtype,
) -> Result<GemmResult> {
    check_gemm_size(device, m, n, k)?;
    let p = GemmParams::dense(m, n, k, false, false);
    let (a, b) = (ramp(m * k, 17), ramp(k * n, 13));
    let median_s = match device {
        Device::Cpu => {
            let mut c = vec![0f32; m * n];
            time_cpu(reps, || cpu::gemm(&p, &a, &b, &[], &mut c))
        }
        Device::Gpu(g) => {
            let (ba, bb) = (g.upload_as(&a, dtype)?, g.upload_as(&b, dtype)?);
            let bc = g.alloc_elems(m * n, dtype)?;
            time_gpu(g, reps, || Ok(launch::gemm(g, &p, &ba, &bb, None, &bc)?))?
        }
    };
    Ok(GemmResult {
        m,
        n,
        k,
        median_s,
        gflops: p.flops() / median_s / 1e9,
    })
}

/// The tensor cores' ceiling along this path (shaders/coop_peak.wgsl): TFLOP/s of 16x16x16
/// f16 multiply-adds with fragments in registers, reloaded from workgroup memory, and reloaded
/// from a storage buffer; None where the adapter has no cooperative matrices, or emulates them
/// (no tensor core to measure, and 2048² emulated steps would take hours).
pub fn coop_ceiling(device: &Device, reps: usize) -> Result<Option<Vec<(launch::PeakLoads, f64)>>> {
    use launch::{PeakLoads, COOP_PEAK_OUT_PER_GROUP, COOP_PEAK_SRC_LEN};
    let Device::Gpu(g) = device else {
        return Ok(None);
    };
    if !g.report().coop_f16 || g.report().coop_emulated {
        return Ok(None);
    }
    // Enough workgroups for several waves of a large GPU, enough steps to dwarf the launch.
    let (groups, iters) = (2048, 2048);
    let src = g.upload_f16(&ramp(COOP_PEAK_SRC_LEN, 7))?;
    let dst = g.alloc_elems(groups * COOP_PEAK_OUT_PER_GROUP, crate::Dtype::F32)?;
    let mut out = Vec::new();
    for loads in [PeakLoads::Registers, PeakLoads::Shared, PeakLoads::Global] {
        let secs = time_gpu(g, reps, || {
            Ok(launch::coop_peak(g, loads, iters, groups, &src, &dst)?)
        })?;
        out.push((loads, launch::coop_peak_flops(groups, iters) / secs / 1e12));
    }
    Ok(Some(out))
}
