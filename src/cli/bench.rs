//! `bench gemm`, `bench step` and `bench kernels`: speed, measured (never asserted).

use anyhow::Context;
use autorep::{bench, Device, DeviceChoice};

/// The training step `bench step` times and `tune` measures the convolutions of.
#[derive(clap::Args)]
pub struct StepArgs {
    #[arg(long, default_value = "resnet18_in")]
    pub model: String,
    #[arg(long, default_value_t = 128)]
    pub batch: usize,
    /// Image side (32: CIFAR; 64: Tiny-ImageNet; 224: ImageNet).
    #[arg(long, default_value_t = 32)]
    pub input: usize,
    /// Activation precision of the step (as for the training commands).
    #[arg(long, value_enum, default_value_t = autorep::train::Precision::F32)]
    pub precision: autorep::train::Precision,
}

impl StepArgs {
    /// The step on `device`, its arguments checked.
    pub fn spec(&self, device: &Device) -> anyhow::Result<bench::StepSpec<'_>> {
        if !(8..=1024).contains(&self.input) {
            anyhow::bail!(
                "--input {}: choose an image side from 8 to 1024",
                self.input
            );
        }
        autorep::train::check_batch("--batch", self.batch, 1, ", e.g. --batch 128")?;
        Ok(bench::StepSpec {
            precision: self.precision.resolve(device)?,
            ..bench::StepSpec::new(&self.model, self.batch, self.input)
        })
    }
}

#[derive(clap::Subcommand)]
pub enum BenchWhat {
    /// f32 GEMM throughput at 256³, 1024³ and resnet18_in's first conv as a GEMM.
    Gemm {
        /// Smaller shapes, for software adapters.
        #[arg(long)]
        quick: bool,
        /// Timed runs per shape (the median is reported).
        #[arg(long, default_value_t = 5, value_parser = at_least_one)]
        reps: usize,
        /// Measure this shape instead, as MxNxK (repeatable), e.g. --size 4096x4096x4096.
        #[arg(long = "size", value_parser = parse_gemm_size)]
        sizes: Vec<(usize, usize, usize)>,
        /// f16 stores A, B and C in half precision (f32 accumulation).
        #[arg(long, value_enum, default_value_t = autorep::train::Precision::F32)]
        precision: autorep::train::Precision,
    },
    /// Full training steps (forward, backward, optimizer) of a model; images per second.
    Step {
        #[command(flatten)]
        step: StepArgs,
        /// Timed steps (the median is reported).
        #[arg(long, default_value_t = 3)]
        steps: usize,
        /// Also print where a step's time goes: wall time per kernel on the CPU backend; on a
        /// GPU, device time per kernel and per layer pass (timestamp queries, from further
        /// steps that run each dispatch in a pass of its own).
        #[arg(long)]
        profile: bool,
        /// With a GPU: also write the profiled steps' timeline, one event per dispatch, as a
        /// Chrome trace (open in https://ui.perfetto.dev or chrome://tracing); implies --profile.
        #[arg(long, value_name = "FILE")]
        trace: Option<std::path::PathBuf>,
        /// Time the AutoReP stage's step instead: pixel-wise gates under this ReLU budget
        /// (e.g. 12.9k), DaPa statistics, gate parameters and coefficients trained.
        #[arg(long, value_name = "RELUS")]
        gated: Option<String>,
        /// With a GPU: also list the device buffers by size, how many were in use at the
        /// memory peak and how many the buffer pool holds.
        #[arg(long)]
        memory: bool,
    },
    /// The ImageNet input pipeline: training batches (RandomResizedCrop, flip) decoded from
    /// JPEG on every core, images per second, to set against `bench step`.
    Input {
        /// The ImageNet folder (train/<wnid>/*.JPEG).
        #[arg(long)]
        data: std::path::PathBuf,
        #[arg(long, default_value_t = 224)]
        image_size: usize,
        #[arg(long, default_value_t = 128)]
        batch: usize,
        /// Timed batches (after one warm-up batch).
        #[arg(long, default_value_t = 8)]
        batches: usize,
    },
    /// Every training kernel on the layer shapes of resnet18_in and WRN-22-8 at 32x32.
    Kernels {
        /// Batch size of the layer shapes.
        #[arg(long, default_value_t = 128)]
        batch: usize,
        /// Batch 8 and fewer runs, for software adapters.
        #[arg(long)]
        quick: bool,
        /// Only this model's shapes (resnet18_in, wrn22_8, or efficientnet_b2's 1x1 and stem
        /// convolutions at 224); resnet18_in and wrn22_8 by default.
        #[arg(long)]
        model: Option<String>,
        #[arg(long, default_value_t = 5, value_parser = at_least_one)]
        reps: usize,
        /// Also write the results as JSON to this file.
        #[arg(long)]
        json: Option<std::path::PathBuf>,
        /// f16 runs the convolutions and the reference GEMM on half-precision operands (f32
        /// accumulation; tensor cores where the adapter has them).
        #[arg(long, value_enum, default_value_t = autorep::train::Precision::F32)]
        precision: autorep::train::Precision,
    },
}

/// The tensor cores' ceiling next to the f16 GEMM figures.
fn print_coop_ceiling(device: &Device, reps: usize) -> anyhow::Result<()> {
    let Some(rows) = bench::coop_ceiling(device, reps)? else {
        let why = match device {
            Device::Gpu(g) if g.report().coop_emulated => "cooperative matrices emulated",
            _ => "no 16x16x16 f16 cooperative matrices on this adapter",
        };
        println!("tensor-core ceiling: not measured ({why})");
        return Ok(());
    };
    let rate = |want| {
        rows.iter()
            .find(|(l, _)| *l == want)
            .map_or(0.0, |(_, t)| *t)
    };
    use autorep_kernels::launch::PeakLoads::*;
    println!(
        "tensor-core ceiling (16x16x16 f16 -> f32, 8 accumulators per subgroup): {:.1} TFLOP/s with fragments in registers, {:.1} reloaded from workgroup memory, {:.1} from a storage buffer",
        rate(Registers),
        rate(Shared),
        rate(Global)
    );
    Ok(())
}

fn parse_gemm_size(s: &str) -> std::result::Result<(usize, usize, usize), String> {
    let dims: Vec<usize> = s
        .split('x')
        .map(|d| d.trim().parse::<usize>().ok().filter(|&v| v > 0))
        .collect::<Option<_>>()
        .ok_or_else(|| format!("'{s}' is not a GEMM shape: write MxNxK with positive integers, e.g. 1024x1024x1024"))?;
    match dims[..] {
        [m, n, k] => Ok((m, n, k)),
        _ => Err(format!(
            "'{s}' has {} dimensions: write MxNxK, e.g. 1024x1024x1024",
            dims.len()
        )),
    }
}

pub fn bench(choice: DeviceChoice, what: BenchWhat) -> anyhow::Result<()> {
    if let BenchWhat::Input {
        data,
        image_size,
        batch,
        batches,
    } = what
    {
        // CPU work only: no device is opened.
        let t = bench::input_pipeline(&data, image_size, batch, batches)?;
        println!(
            "{}: {} images decoded to {image_size}x{image_size} on {} threads in {:.2} s: {:.0} images/s",
            data.display(),
            t.images,
            t.threads,
            t.seconds,
            t.images_per_s
        );
        return Ok(());
    }
    let device = Device::open(choice)?;
    match what {
        BenchWhat::Input { .. } => unreachable!("handled above"),
        BenchWhat::Gemm {
            quick,
            reps,
            sizes,
            precision,
        } => {
            let act = precision.resolve(&device)?;
            println!("adapter: {}, {} operands", device.describe(), act.name());
            // Before the GEMM rows, so that the last line stays the last GEMM's (scripts read
            // it with `tail -1`).
            if act == autorep::Dtype::F16 {
                print_coop_ceiling(&device, reps)?;
            }
            let shapes = if sizes.is_empty() {
                bench::gemm_shapes(quick)
            } else {
                sizes
            };
            for &(m, n, k) in &shapes {
                bench::check_gemm_size(&device, m, n, k)?;
            }
            for (m, n, k) in shapes {
                let r = bench::gemm(&device, m, n, k, reps, act)
                    .with_context(|| format!("GEMM {m}x{n}x{k}"))?;
                println!(
                    "{:>22}  {:>9.3} ms  {:>8.2} GFLOP/s",
                    format!("{m}x{n}x{k}"),
                    r.median_s * 1e3,
                    r.gflops
                );
            }
            Ok(())
        }
        BenchWhat::Step {
            step,
            steps,
            profile,
            trace,
            gated,
            memory,
        } => {
            let profile = profile || trace.is_some();
            if memory && matches!(device, Device::Cpu) {
                anyhow::bail!("--memory lists a GPU's device buffers: use --device gpu (the CPU backend allocates from the heap)");
            }
            if trace.is_some() && matches!(device, Device::Cpu) {
                anyhow::bail!("--trace records a GPU timeline: use --device gpu (on the CPU backend --profile gives the time per kernel)");
            }
            if let Some(path) = &trace {
                super::writable_later(path, "--trace")?;
            }
            let base = step.spec(&device)?;
            if let (true, Device::Gpu(g)) = (profile, &device) {
                if !g.has_timestamps() {
                    anyhow::bail!("--profile times GPU kernels with timestamp queries, which this adapter lacks: profile the CPU backend with --device cpu");
                }
            }
            let gated = gated
                .map(|b| autorep::autorep::parse_count(&b))
                .transpose()?;
            let spec = bench::StepSpec {
                steps,
                profile,
                gated,
                ..base
            };
            let (model, batch, input, act) = (spec.model, spec.batch, spec.input, spec.precision);
            let t = bench::training_step(&device, &spec)?;
            println!("adapter: {}", device.describe());
            if profile {
                super::step_profile::print(&t, steps.max(1));
            }
            if memory {
                super::step_profile::print_buffers(&t.buffers);
            }
            if let Some(path) = &trace {
                let json = bench::chrome_trace(&t.gpu_profile);
                std::fs::write(path, serde_json::to_vec(&json)?)
                    .with_context(|| format!("writing the trace to {}", path.display()))?;
                println!(
                    "trace of {} dispatches: {} (open in https://ui.perfetto.dev)",
                    t.gpu_profile.events.len(),
                    path.display()
                );
            }
            // The headline stays the last line (device scripts read it with `tail -1`).
            super::step_profile::print_split(&t);
            let memory = t
                .device_bytes
                .map(|b| {
                    format!(
                        ", peak device memory {:.1} MiB",
                        b as f64 / (1 << 20) as f64
                    )
                })
                .unwrap_or_default();
            println!(
                "{model}{} batch {batch} at {input}x{input}, {} activations: {:.1} ms/step, {:.1} images/s (median of {steps}){memory}",
                gated.map(|b| format!(" gated ({b} ReLUs)")).unwrap_or_default(),
                act.name(),
                t.secs * 1e3,
                t.images_per_s
            );
            Ok(())
        }
        BenchWhat::Kernels {
            batch,
            quick,
            model,
            reps,
            json,
            precision,
        } => {
            let (batch, reps) = if quick {
                (8, reps.min(3))
            } else {
                (batch, reps)
            };
            // The largest layer's operands are made on the host first: far smaller than
            // MAX_BATCH keeps them within a machine's memory.
            if !(1..=4096).contains(&batch) {
                anyhow::bail!(
                    "--batch {batch}: bench kernels takes a batch from 1 to 4096, e.g. --batch 128"
                );
            }
            let act = precision.resolve(&device)?;
            bench_kernels(&device, batch, model, reps, json, act)
        }
    }
}

fn bench_kernels(
    device: &Device,
    batch: usize,
    model: Option<String>,
    reps: usize,
    json: Option<std::path::PathBuf>,
    act: autorep::Dtype,
) -> anyhow::Result<()> {
    if let Some(path) = &json {
        super::writable_later(path, "--json")?;
    }
    let models = match model.as_deref() {
        None => vec!["resnet18_in", "wrn22_8"],
        Some(m @ ("resnet18_in" | "wrn22_8" | "efficientnet_b2")) => vec![m],
        Some(other) => {
            anyhow::bail!("unknown model '{other}' for bench kernels: use resnet18_in, wrn22_8 or efficientnet_b2")
        }
    };
    println!(
        "adapter: {}  batch {batch}, median of {reps}, {} operands",
        device.describe(),
        act.name()
    );
    // The reference is the GEMM core's best figure on this adapter: 1024³ fills a software
    // adapter, a hardware GPU needs larger squares.
    let sides: &[usize] = if device.is_software() {
        &[1024]
    } else {
        &[1024, 4096, 8192]
    };
    let (mut gemm_peak, mut best_side) = (0.0, 0);
    for &s in sides {
        let r = bench::gemm(device, s, s, s, reps, act)?;
        if r.gflops > gemm_peak {
            (gemm_peak, best_side) = (r.gflops, s);
        }
    }
    println!(
        "GEMM core at {best_side}³: {gemm_peak:.2} GFLOP/s (its best here: the reference for conv fractions)"
    );
    let mut all = Vec::new();
    for m in models {
        println!("-- {m}");
        let rows = bench::conv_kernels(device, m, batch, reps, act)
            .with_context(|| format!("conv kernels of {m}"))?;
        for r in &rows {
            let g = r.gflops.unwrap_or(0.0);
            println!(
                "{:<20} {:<46} {:>9.3} ms {:>9.2} GFLOP/s  {:>5.0}% of GEMM",
                r.kernel,
                r.shape,
                r.median_s * 1e3,
                g,
                100.0 * g / gemm_peak
            );
        }
        all.extend(rows);
    }
    println!("-- memory-bound");
    let rows = bench::memory_kernels(device, batch, reps)?;
    for r in &rows {
        println!(
            "{:<20} {:<34} {:>9.3} ms {:>9.2} GB/s",
            r.kernel,
            r.shape,
            r.median_s * 1e3,
            r.gbps.unwrap_or(0.0)
        );
    }
    all.extend(rows);
    if let Some(path) = json {
        let body = serde_json::json!({
            "adapter": device.describe(),
            "batch": batch,
            "precision": act.name(),
            "gemm_reference_gflops": gemm_peak,
            "gemm_reference_side": best_side,
            "results": all.iter().map(|r| r.json()).collect::<Vec<_>>(),
        });
        let text = serde_json::to_string_pretty(&body)? + "\n";
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// A count of timed runs: a median needs one at least.
fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("0 timed runs measure nothing: give 1 or more".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}
