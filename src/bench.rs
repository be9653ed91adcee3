//! Benchmarks run from the CLI (`autorep bench ...`) and from `cargo bench`: median of several
//! runs after a warm-up, timed with timestamp queries on adapters that have them.

use crate::{Device, Result};
use autorep_kernels::{cpu, cpu::ConvParams, cpu::GemmParams, launch, Gpu};
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Median device seconds of `f` (which only queues work), after one warm-up run.
fn time_gpu(g: &Gpu, reps: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    f()?;
    g.wait()?;
    let mut times = Vec::with_capacity(reps);
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        f()?;
        let secs = if g.has_timestamps() {
            g.flush_timed()?
        } else {
            g.wait()?;
            t.elapsed().as_secs_f64()
        };
        g.wait()?;
        times.push(secs);
    }
    Ok(median(times))
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
    (0..n).map(|i| ((i % period) as f32 - (period / 2) as f32) * 0.01).collect()
}

/// Time C = A·B (row-major, f32).
pub fn gemm(device: &Device, m: usize, n: usize, k: usize, reps: usize) -> Result<GemmResult> {
    let p = GemmParams::dense(m, n, k, false, false);
    let (a, b) = (ramp(m * k, 17), ramp(k * n, 13));
    let median_s = match device {
        Device::Cpu => {
            let mut c = vec![0f32; m * n];
            time_cpu(reps, || cpu::gemm(&p, &a, &b, &[], &mut c))
        }
        Device::Gpu(g) => {
            let (ba, bb) = (g.upload(&a)?, g.upload(&b)?);
            let bc = g.alloc((m * n) as u64 * 4)?;
            time_gpu(g, reps, || Ok(launch::gemm(g, &p, &ba, &bb, None, &bc)?))?
        }
    };
    Ok(GemmResult { m, n, k, median_s, gflops: p.flops() / median_s / 1e9 })
}

/// The distinct convolutions of a model at 32x32 (label, shape at batch 1).
pub fn conv_layers(model: &str) -> Vec<(String, ConvParams)> {
    let c = |cin, cout, h, k, stride| ConvParams { n: 1, cin, h, w: h, cout, kh: k, kw: k, stride, pad: k / 2 };
    let list = match model {
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
    list.into_iter()
        .map(|p| {
            let label = format!("{}x{} {}->{} @{} s{}", p.kh, p.kw, p.cin, p.cout, p.h, p.stride);
            (label, p)
        })
        .collect()
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
        KernelTiming { kernel: kernel.into(), shape, median_s: s, gflops: Some(flops / s / 1e9), gbps: None }
    }

    fn bytes(kernel: &str, shape: String, s: f64, bytes: f64) -> Self {
        KernelTiming { kernel: kernel.into(), shape, median_s: s, gflops: None, gbps: Some(bytes / s / 1e9) }
    }

    pub fn json(&self) -> String {
        let num = |v: Option<f64>| v.map_or("null".to_string(), |v| format!("{v:.4}"));
        format!(
            "{{\"kernel\":\"{}\",\"shape\":\"{}\",\"median_ms\":{:.6},\"gflops\":{},\"gbps\":{}}}",
            self.kernel,
            self.shape,
            self.median_s * 1e3,
            num(self.gflops),
            num(self.gbps)
        )
    }
}

/// Time the three conv passes of every distinct conv of `model` at `batch`.
pub fn conv_kernels(device: &Device, model: &str, batch: usize, reps: usize) -> Result<Vec<KernelTiming>> {
    let mut out = Vec::new();
    for (label, p1) in conv_layers(model) {
        let p = p1.with_batch(batch);
        let (x, w, dy) = (ramp(p.x_len(), 17), ramp(p.w_len(), 13), ramp(p.y_len(), 11));
        let flops = p.flops();
        let shape = format!("{label} n{batch}");
        let (fwd, dgrad, wgrad) = match device {
            Device::Cpu => {
                let (mut y, mut dx, mut dw) = (vec![0f32; p.y_len()], vec![0f32; p.x_len()], vec![0f32; p.w_len()]);
                (
                    time_cpu(reps, || cpu::conv2d_forward(&p, &x, &w, &mut y)),
                    time_cpu(reps, || cpu::conv2d_input_grad(&p, &dy, &w, &mut dx)),
                    time_cpu(reps, || cpu::conv2d_weight_grad(&p, &x, &dy, &mut dw)),
                )
            }
            Device::Gpu(g) => {
                let (bx, bw, bdy) = (g.upload(&x)?, g.upload(&w)?, g.upload(&dy)?);
                let (by, bdx, bdw) = (g.alloc(p.y_len() as u64 * 4)?, g.alloc(p.x_len() as u64 * 4)?, g.alloc(p.w_len() as u64 * 4)?);
                let scratch = g.alloc(launch::conv2d_weight_grad_splits(&p).1 as u64 * 4)?;
                (
                    time_gpu(g, reps, || Ok(launch::conv2d_forward(g, &p, &bx, &bw, &by)?))?,
                    time_gpu(g, reps, || Ok(launch::conv2d_input_grad(g, &p, &bdy, &bw, &bdx)?))?,
                    time_gpu(g, reps, || Ok(launch::conv2d_weight_grad(g, &p, &bx, &bdy, &scratch, &bdw)?))?,
                )
            }
        };
        out.push(KernelTiming::flops("conv2d_forward", shape.clone(), fwd, flops));
        // The input-gradient GEMM runs over every input pixel and tap (stride-2 taps off the
        // output grid read zeros), so its useful work equals the forward's.
        out.push(KernelTiming::flops("conv2d_input_grad", shape.clone(), dgrad, flops));
        out.push(KernelTiming::flops("conv2d_weight_grad", shape, wgrad, flops));
    }
    Ok(out)
}

/// Memory-bound kernels at the size of resnet18_in's first stage activation.
pub fn elementwise_kernels(device: &Device, batch: usize, reps: usize) -> Result<Vec<KernelTiming>> {
    let n = batch * 64 * 32 * 32;
    let shape = format!("{n} floats (n{batch}x64x32x32)");
    let (x, y) = (ramp(n, 7), ramp(n, 5));
    let (relu, add) = match device {
        Device::Cpu => {
            let mut o = vec![0f32; n];
            (time_cpu(reps, || cpu::relu(&x, &mut o)), time_cpu(reps, || cpu::axpby(1.0, &x, 1.0, &y, &mut o)))
        }
        Device::Gpu(g) => {
            let (bx, by, bo) = (g.upload(&x)?, g.upload(&y)?, g.alloc(n as u64 * 4)?);
            (
                time_gpu(g, reps, || Ok(launch::relu(g, n, &bx, &bo)?))?,
                time_gpu(g, reps, || Ok(launch::axpby(g, n, 1.0, &bx, 1.0, &by, &bo)?))?,
            )
        }
    };
    let b = (n * 4) as f64;
    Ok(vec![
        KernelTiming::bytes("relu", shape.clone(), relu, 2.0 * b),
        KernelTiming::bytes("add (axpby)", shape, add, 3.0 * b),
    ])
}
