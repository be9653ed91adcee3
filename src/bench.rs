//! Benchmarks run from the CLI (`autorep bench ...`) and from `cargo bench`.

use crate::{Device, Result};
use autorep_kernels::{cpu, cpu::GemmParams, launch};
use std::time::Instant;

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

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Time C = A·B (row-major, f32) after one warm-up run; `reps` timed runs, median reported.
/// On a GPU each run is timed with timestamp queries when the adapter has them, else wall
/// clock around submit-and-wait.
pub fn gemm(device: &Device, m: usize, n: usize, k: usize, reps: usize) -> Result<GemmResult> {
    let p = GemmParams::dense(m, n, k, false, false);
    let a: Vec<f32> = (0..m * k).map(|i| ((i % 17) as f32 - 8.0) * 0.01).collect();
    let b: Vec<f32> = (0..k * n).map(|i| ((i % 13) as f32 - 6.0) * 0.01).collect();
    let mut times = Vec::with_capacity(reps);
    match device {
        Device::Cpu => {
            let mut c = vec![0f32; m * n];
            for i in 0..=reps {
                let t = Instant::now();
                cpu::gemm(&p, &a, &b, &[], &mut c);
                if i > 0 {
                    times.push(t.elapsed().as_secs_f64());
                }
            }
        }
        Device::Gpu(g) => {
            let (ba, bb) = (g.upload(&a)?, g.upload(&b)?);
            let bc = g.alloc((m * n) as u64 * 4)?;
            launch::gemm(g, &p, &ba, &bb, None, &bc)?;
            g.wait()?;
            for _ in 0..reps {
                let t = Instant::now();
                launch::gemm(g, &p, &ba, &bb, None, &bc)?;
                let secs = if g.has_timestamps() {
                    let s = g.flush_timed()?;
                    g.wait()?;
                    s
                } else {
                    g.wait()?;
                    t.elapsed().as_secs_f64()
                };
                times.push(secs);
            }
        }
    }
    let median_s = median(times);
    Ok(GemmResult { m, n, k, median_s, gflops: p.flops() / median_s / 1e9 })
}
