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
    (0..n)
        .map(|i| ((i % period) as f32 - (period / 2) as f32) * 0.01)
        .collect()
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

pub fn gemm(device: &Device, m: usize, n: usize, k: usize, reps: usize) -> Result<GemmResult> {
    check_gemm_size(device, m, n, k)?;
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
    Ok(GemmResult {
        m,
        n,
        k,
        median_s,
        gflops: p.flops() / median_s / 1e9,
    })
}

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
            let label = format!(
                "{}x{} {}->{} @{} s{}",
                p.kh, p.kw, p.cin, p.cout, p.h, p.stride
            );
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
        KernelTiming {
            kernel: kernel.into(),
            shape,
            median_s: s,
            gflops: Some(flops / s / 1e9),
            gbps: None,
        }
    }

    fn bytes(kernel: &str, shape: String, s: f64, bytes: f64) -> Self {
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

/// Time the three conv passes of every distinct conv of `model` at `batch`.
pub fn conv_kernels(
    device: &Device,
    model: &str,
    batch: usize,
    reps: usize,
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
        let mut shape = format!("{label} n{batch}");
        if let Device::Gpu(g) = device {
            let (f, d) = launch::conv2d_output_splits(g, &p)?;
            let w = launch::conv2d_weight_grad_splits(g, &p).0;
            if f * d > 1 || !g.report().is_software() {
                shape = format!("{shape} k/{f}/{d}/{w}");
            }
        }
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
                let (bx, bw, bdy) = (g.upload(&x)?, g.upload(&w)?, g.upload(&dy)?);
                let (by, bdx, bdw) = (
                    g.alloc(p.y_len() as u64 * 4)?,
                    g.alloc(p.x_len() as u64 * 4)?,
                    g.alloc(p.w_len() as u64 * 4)?,
                );
                let scratch = g.alloc(launch::conv2d_weight_grad_splits(g, &p).1 as u64 * 4)?;
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
        out.push(KernelTiming::flops(
            "conv2d_forward",
            shape.clone(),
            fwd,
            flops,
        ));
        // The input-gradient GEMM runs over every input pixel and tap (stride-2 taps off the
        // output grid read zeros), so its useful work equals the forward's.
        out.push(KernelTiming::flops(
            "conv2d_input_grad",
            shape.clone(),
            dgrad,
            flops,
        ));
        out.push(KernelTiming::flops(
            "conv2d_weight_grad",
            shape,
            wgrad,
            flops,
        ));
    }
    Ok(out)
}

/// Queues one kernel launch on a GPU.
type GpuLaunch<'a> = Box<dyn Fn(&Gpu) -> Result<()> + 'a>;

/// A memory-bound kernel: its name, the floats it reads plus writes, a GPU launch, a CPU run.
struct MemKernel<'a> {
    name: &'static str,
    floats: usize,
    gpu: GpuLaunch<'a>,
    cpu: Box<dyn FnMut() + 'a>,
}

/// Memory-bound kernels (elementwise, batch norm, pooling, the AutoReP gate, optimizers,
/// losses) at resnet18_in's first-stage size: [batch, 64, 32, 32].
pub fn memory_kernels(device: &Device, batch: usize, reps: usize) -> Result<Vec<KernelTiming>> {
    use autorep_kernels::cpu::{AdamParams, BnShape, GateParams, PoolParams, SgdParams};
    let (c, hw) = (64, 32 * 32);
    let n = batch * c * hw;
    let s = BnShape {
        n: batch,
        channels: c,
        hw,
    };
    let pool = PoolParams {
        n: batch,
        c,
        h: 32,
        w: 32,
        k: 2,
        stride: 2,
        pad: 0,
    };
    let gp = GateParams {
        batch,
        channels: c,
        hw,
        channel_wise: false,
        s1: 1.0,
        s2: 0.1,
    };
    let params = 11_173_962; // resnet18_in on CIFAR-10
    let (rows, classes) = (batch, 100);
    let x = ramp(n, 7);
    let y = ramp(n, 5);
    let ch = ramp(c, 3);
    let mask: Vec<f32> = (0..c * hw).map(|i| (i % 3 != 0) as u8 as f32).collect();
    let coef = ramp(3 * c, 5);
    let pv = ramp(params, 9);
    let logits = ramp(rows * classes, 13);
    let labels: Vec<u32> = (0..rows as u32).map(|i| i % classes as u32).collect();
    let shape = format!("n{batch}x64x32x32");
    let mut out = Vec::new();
    let mut push = |k: MemKernel<'_>, shape: &str| -> Result<()> {
        let secs = match device {
            Device::Gpu(g) => time_gpu(g, reps, || (k.gpu)(g))?,
            Device::Cpu => {
                let mut f = k.cpu;
                time_cpu(reps, &mut *f)
            }
        };
        out.push(KernelTiming::bytes(
            k.name,
            shape.to_string(),
            secs,
            (k.floats * 4) as f64,
        ));
        Ok(())
    };
    // Device copies of every input, made once (GPU) — the CPU closures use the host vectors.
    let g = match device {
        Device::Gpu(g) => Some(g.clone()),
        Device::Cpu => None,
    };
    let up = |v: &[f32]| -> Result<Option<autorep_kernels::GpuBuffer>> {
        g.as_ref()
            .map(|g| g.upload(v))
            .transpose()
            .map_err(Into::into)
    };
    let alloc = |floats: usize| -> Result<Option<autorep_kernels::GpuBuffer>> {
        g.as_ref()
            .map(|g| g.alloc(floats as u64 * 4))
            .transpose()
            .map_err(Into::into)
    };
    let (bx, by, bo) = (up(&x)?, up(&y)?, alloc(n)?);
    let (bm, bv, bg, bb) = (
        up(&ch)?,
        up(&ch.iter().map(|v| v.abs() + 1.0).collect::<Vec<_>>())?,
        up(&ch)?,
        up(&ch)?,
    );
    let (bmask, bcoef, bgates, bdcoef) = (up(&mask)?, up(&coef)?, alloc(c * hw)?, alloc(3 * c)?);
    let (bdg, bdb) = (alloc(c)?, alloc(c)?);
    let (bp, bgrad, bs1, bs2) = (up(&pv)?, up(&pv)?, up(&pv)?, up(&pv)?);
    let (bl, bcorrect, bloss) = (up(&logits)?, alloc(rows)?, alloc(rows)?);
    let blabels = g.as_ref().map(|g| g.upload(&labels)).transpose()?;
    let bidx = alloc(n / 4)?;
    let u = |b: &Option<autorep_kernels::GpuBuffer>| b.as_ref().expect("gpu buffer").clone();
    let mut host = vec![0f32; n];
    let mut small = vec![0f32; 3 * c];
    let var: Vec<f32> = ch.iter().map(|v| v.abs() + 1.0).collect();

    push(
        MemKernel {
            name: "relu",
            floats: 2 * n,
            gpu: Box::new(|g| Ok(launch::relu(g, n, &u(&bx), &u(&bo))?)),
            cpu: Box::new(|| cpu::relu(&x, &mut host)),
        },
        &shape,
    )?;
    let mut host2 = vec![0f32; n];
    push(
        MemKernel {
            name: "add (axpby)",
            floats: 3 * n,
            gpu: Box::new(|g| Ok(launch::axpby(g, n, 1.0, &u(&bx), 1.0, &u(&by), &u(&bo))?)),
            cpu: Box::new(|| cpu::axpby(1.0, &x, 1.0, &y, &mut host2)),
        },
        &shape,
    )?;
    let (mut m1, mut v1) = (vec![0f32; c], vec![0f32; c]);
    push(
        MemKernel {
            name: "bn_stats",
            floats: 2 * n,
            gpu: Box::new(|g| Ok(launch::bn_stats(g, s, &u(&bx), &u(&bm), &u(&bv))?)),
            cpu: Box::new(|| cpu::bn_stats(s, &x, &mut m1, &mut v1)),
        },
        &shape,
    )?;
    let mut host3 = vec![0f32; n];
    push(
        MemKernel {
            name: "bn_forward",
            floats: 2 * n,
            gpu: Box::new(|g| {
                Ok(launch::bn_forward(
                    g,
                    s,
                    1e-5,
                    &u(&bx),
                    &u(&bm),
                    &u(&bv),
                    Some((&u(&bg), &u(&bb))),
                    &u(&bo),
                )?)
            }),
            cpu: Box::new(|| cpu::bn_forward(s, 1e-5, &x, &ch, &var, Some((&ch, &ch)), &mut host3)),
        },
        &shape,
    )?;
    let (mut dg, mut db, mut host4) = (vec![0f32; c], vec![0f32; c], vec![0f32; n]);
    push(
        MemKernel {
            name: "bn_backward",
            floats: 5 * n,
            gpu: Box::new(|g| {
                Ok(launch::bn_backward(
                    g,
                    s,
                    1e-5,
                    &u(&bx),
                    &u(&bm),
                    &u(&bv),
                    Some(&u(&bg)),
                    &u(&by),
                    &u(&bdg),
                    &u(&bdb),
                    &u(&bo),
                )?)
            }),
            cpu: Box::new(|| {
                cpu::bn_backward(
                    s,
                    1e-5,
                    &x,
                    &ch,
                    &var,
                    Some(&ch),
                    &y,
                    &mut dg,
                    &mut db,
                    &mut host4,
                )
            }),
        },
        &shape,
    )?;
    let (mut host5, mut idx5) = (vec![0f32; n / 4], vec![0u32; n / 4]);
    push(
        MemKernel {
            name: "max_pool2d 2x2",
            floats: n + n / 2,
            gpu: Box::new(|g| {
                Ok(launch::max_pool2d_forward(
                    g,
                    &pool,
                    &u(&bx),
                    &u(&bo),
                    &u(&bidx),
                )?)
            }),
            cpu: Box::new(|| cpu::max_pool2d_forward(&pool, &x, &mut host5, &mut idx5)),
        },
        &shape,
    )?;
    let mut host6 = vec![0f32; n];
    push(
        MemKernel {
            name: "gate_forward",
            floats: 3 * n,
            gpu: Box::new(|g| {
                Ok(launch::gate_forward(
                    g,
                    &gp,
                    &u(&bx),
                    &u(&bmask),
                    &u(&bcoef),
                    &u(&bo),
                )?)
            }),
            cpu: Box::new(|| cpu::gate_forward(&gp, &x, &mask, &coef, &mut host6)),
        },
        &shape,
    )?;
    let mut host7 = vec![0f32; n];
    push(
        MemKernel {
            name: "gate_grad_x",
            floats: 4 * n,
            gpu: Box::new(|g| {
                Ok(launch::gate_grad_x(
                    g,
                    &gp,
                    &u(&bx),
                    &u(&by),
                    &u(&bmask),
                    &u(&bcoef),
                    &u(&bo),
                )?)
            }),
            cpu: Box::new(|| cpu::gate_grad_x(&gp, &x, &y, &mask, &coef, &mut host7)),
        },
        &shape,
    )?;
    let mut host8 = vec![0f32; c * hw];
    push(
        MemKernel {
            name: "gate_grad_mask",
            floats: 2 * n,
            gpu: Box::new(|g| {
                Ok(launch::gate_grad_mask(
                    g,
                    &gp,
                    &u(&bx),
                    &u(&by),
                    &u(&bcoef),
                    &u(&bgates),
                )?)
            }),
            cpu: Box::new(|| cpu::gate_grad_mask(&gp, &x, &y, &coef, &mut host8)),
        },
        &shape,
    )?;
    push(
        MemKernel {
            name: "gate_grad_coef",
            floats: 3 * n,
            gpu: Box::new(|g| {
                Ok(launch::gate_grad_coef(
                    g,
                    &gp,
                    &u(&bx),
                    &u(&by),
                    &u(&bmask),
                    &u(&bcoef),
                    &u(&bdcoef),
                )?)
            }),
            cpu: Box::new(|| cpu::gate_grad_coef(&gp, &x, &y, &mask, &mut small)),
        },
        &shape,
    )?;
    let pshape = format!("{params} params (resnet18_in)");
    let sgd = SgdParams {
        momentum: 0.9,
        weight_decay: 5e-4,
        first: false,
        ..SgdParams::new(0.1)
    };
    let (mut p1, mut b1) = (pv.clone(), pv.clone());
    push(
        MemKernel {
            name: "sgd_step (momentum)",
            floats: 5 * params,
            gpu: Box::new(|g| {
                Ok(launch::sgd_step(
                    g,
                    params,
                    &sgd,
                    &u(&bgrad),
                    &u(&bp),
                    Some(&u(&bs1)),
                )?)
            }),
            cpu: Box::new(|| cpu::sgd_step(&sgd, &pv, &mut p1, Some(&mut b1))),
        },
        &pshape,
    )?;
    let adam = AdamParams::new(1e-3).at_step(10);
    let (mut p2, mut m2, mut v2) = (
        pv.clone(),
        pv.clone(),
        pv.iter().map(|v| v.abs()).collect::<Vec<_>>(),
    );
    push(
        MemKernel {
            name: "adam_step",
            floats: 7 * params,
            gpu: Box::new(|g| {
                Ok(launch::adam_step(
                    g,
                    params,
                    &adam,
                    &u(&bgrad),
                    &u(&bp),
                    &u(&bs1),
                    &u(&bs2),
                )?)
            }),
            cpu: Box::new(|| cpu::adam_step(&adam, &pv, &mut p2, &mut m2, &mut v2)),
        },
        &pshape,
    )?;
    let lshape = format!("{rows}x{classes} logits");
    let (mut l1, mut c1) = (vec![0f32; rows], vec![0f32; rows]);
    push(
        MemKernel {
            name: "cross_entropy fwd",
            floats: rows * classes + 3 * rows,
            gpu: Box::new(|g| {
                Ok(launch::ce_forward(
                    g,
                    rows,
                    classes,
                    0.0,
                    &u(&bl),
                    &u(&blabels),
                    &u(&bloss),
                    &u(&bcorrect),
                )?)
            }),
            cpu: Box::new(|| cpu::ce_forward(&logits, &labels, classes, 0.0, &mut l1, &mut c1)),
        },
        &lshape,
    )?;
    let mut l2 = vec![0f32; rows];
    push(
        MemKernel {
            name: "kd fwd (T=4)",
            floats: 2 * rows * classes + rows,
            gpu: Box::new(|g| {
                Ok(launch::kd_forward(
                    g,
                    rows,
                    classes,
                    4.0,
                    &u(&bl),
                    &u(&bl),
                    &u(&bloss),
                )?)
            }),
            cpu: Box::new(|| cpu::kd_forward(&logits, &logits, classes, 4.0, &mut l2)),
        },
        &lshape,
    )?;
    Ok(out)
}

/// Full training steps (forward, backward, optimizer, one submit each) of `model` at `batch`
/// on synthetic CIFAR-shaped data: median seconds per step and images per second.
/// What `autorep bench step` measured.
pub struct StepTiming {
    /// Median seconds per step.
    pub secs: f64,
    pub images_per_s: f64,
    /// With `profile` on the CPU backend: (kernel, calls, seconds) summed over the timed steps,
    /// most time first, and the timed steps' total seconds.
    pub profile: Vec<(&'static str, u64, f64)>,
    pub timed_secs: f64,
}

pub fn training_step(
    device: &Device,
    model_name: &str,
    batch: usize,
    steps: usize,
    profile: bool,
) -> Result<StepTiming> {
    use crate::nn::{ForwardCtx, Optimizer, OptimizerKind, ParamGroup};
    let model = crate::models::build(model_name, device, 3, 32, 10, 0)?;
    let g = ParamGroup::new(device, "weights", model.params())?;
    let mut opt = Optimizer::new(device, OptimizerKind::sgd(0.9, 5e-4, false), vec![(g, 0.1)])?;
    let x = crate::Tensor::from_vec(device, &[batch, 3, 32, 32], ramp(batch * 3 * 32 * 32, 251))?;
    let labels: Vec<u32> = (0..batch as u32).map(|i| i % 10).collect();
    let y = std::rc::Rc::new(crate::Labels::new(device, &labels)?);
    let mut step = || -> Result<()> {
        opt.zero_grad()?;
        let loss = model
            .forward(&x, &ForwardCtx::train())?
            .cross_entropy(&y, 0.0)?
            .loss
            .mean()?;
        loss.backward()?;
        opt.step(1.0)?;
        device.sync()
    };
    step()?;
    cpu::profile::enable(profile);
    let _ = cpu::profile::take();
    let mut times = Vec::with_capacity(steps);
    for _ in 0..steps.max(1) {
        let t = Instant::now();
        step()?;
        times.push(t.elapsed().as_secs_f64());
    }
    cpu::profile::enable(false);
    let s = median(times.clone());
    Ok(StepTiming {
        secs: s,
        images_per_s: batch as f64 / s,
        profile: if profile {
            cpu::profile::take()
        } else {
            Vec::new()
        },
        timed_secs: times.iter().sum(),
    })
}
