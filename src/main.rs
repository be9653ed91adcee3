use anyhow::Context;
use autorep::train::jobs;
use autorep::{bench, demo, Device, DeviceChoice};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "autorep",
    version,
    about = "AutoReP ReLU replacement on a wgpu/WGSL training engine"
)]
struct Cli {
    /// Where to run: a hardware GPU, else a software adapter, else the CPU (auto); or force one.
    #[arg(long, global = true, env = "AUTOREP_DEVICE", default_value = "auto")]
    device: DeviceChoice,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List every GPU adapter with its limits and features, and say which one `auto` picks.
    Devices,
    /// The whole AutoReP pipeline on the embedded Fashion-MNIST subset: baseline, AutoReP and
    /// its identity ablation, SNL at the same ReLU budget, and a final comparison table.
    Demo {
        /// Run folder for the demo's checkpoints and metrics.
        #[arg(long, default_value = "runs/demo")]
        out: std::path::PathBuf,
        /// Fraction of ReLUs to keep.
        #[arg(long, default_value_t = 0.05)]
        budget: f64,
        /// Epochs of each stage (baseline, replacement, SNL selection).
        #[arg(long, default_value_t = 4)]
        epochs: usize,
        #[arg(long)]
        quiet: bool,
        /// Instead, train the engine demo: a two-layer MLP on a 2-D problem.
        #[arg(long)]
        engine: bool,
        /// Engine demo: training steps (full batch).
        #[arg(long, default_value_t = 600)]
        steps: usize,
    },
    /// ReLUs of a model: one row per activation site in execution order, and the total.
    Count {
        #[arg(long, default_value = "resnet18_in")]
        model: String,
        /// Input side in pixels (32 for CIFAR, 64 for Tiny-ImageNet).
        #[arg(long, default_value_t = 32)]
        input: usize,
    },
    /// DaPa: the least-squares polynomial fit of ReLU under N(mean, std²).
    Dapa {
        #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
        mean: f64,
        #[arg(long, default_value_t = 1.0, allow_hyphen_values = true)]
        std: f64,
        /// 1 to 4 (the gate runs 1 or 2).
        #[arg(long, default_value_t = 2)]
        degree: usize,
    },
    /// Private-inference cost of a model with some ReLUs replaced by degree-2 polynomials.
    Cost(CostArgs),
    /// Train the all-ReLU baseline (SGD 0.1, momentum 0.9, weight decay 5e-4, cosine).
    Train {
        #[command(flatten)]
        job: JobArgs,
        #[arg(long, default_value_t = 0.1)]
        lr: f32,
        #[arg(long, default_value_t = 0.9)]
        momentum: f32,
        #[arg(long, default_value_t = 5e-4)]
        weight_decay: f32,
    },
    /// AutoReP: learn which ReLUs to keep under a budget and replace the rest with DaPa
    /// polynomials, starting from (and distilling from) a baseline checkpoint.
    Replace {
        #[command(flatten)]
        job: JobArgs,
        #[command(flatten)]
        rep: ReplaceArgs,
        /// Replace switched-off ReLUs by x instead of a polynomial (the ablation).
        #[arg(long)]
        identity: bool,
        /// Adam rate of weights and polynomial coefficients.
        #[arg(long, default_value_t = 1e-3)]
        weight_lr: f32,
        /// Adam rate of the gate indicators h.
        #[arg(long, default_value_t = 1e-3)]
        mask_lr: f32,
    },
    /// The SNL baseline: continuous gates with a growing L1 weight until the budget is met,
    /// binarise, then finetune.
    Snl {
        #[command(flatten)]
        job: JobArgs,
        #[command(flatten)]
        rep: ReplaceArgs,
        #[arg(long, default_value_t = 1e-3)]
        lr: f32,
        #[arg(long, default_value_t = 100)]
        finetune_epochs: usize,
        #[arg(long, default_value_t = 1e-3)]
        finetune_lr: f32,
    },
    /// Finetune a gated checkpoint with its mask frozen (SGD, optional KD).
    Finetune {
        #[command(flatten)]
        job: JobArgs,
        /// Checkpoint from `replace` or `snl`.
        #[arg(long)]
        from: std::path::PathBuf,
        /// All-ReLU checkpoint to distil from.
        #[arg(long)]
        teacher: Option<std::path::PathBuf>,
        #[arg(long, default_value_t = 1e-3)]
        lr: f32,
    },
    /// Top-1/top-5 accuracy, ReLU count, per-site kept fraction and cost of a checkpoint.
    Eval {
        #[arg(long)]
        checkpoint: std::path::PathBuf,
        #[arg(long, default_value = "cifar10")]
        dataset: String,
        #[arg(long)]
        data: Option<std::path::PathBuf>,
    },
    /// Datasets: download the official archives.
    Data {
        #[command(subcommand)]
        what: DataWhat,
    },
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        what: BenchWhat,
    },
    /// Run a whole experiment from a TOML file: [experiment], then [train], [replace], [snl]
    /// and [finetune] in that order (each optional), chaining checkpoints, and evaluate each
    /// stage's best checkpoint (see assets/configs).
    Run {
        /// The experiment file, e.g. assets/configs/cpu_small.toml.
        config: std::path::PathBuf,
        /// Run folder (default: the file's `out`, else runs/<name>).
        #[arg(long)]
        out: Option<std::path::PathBuf>,
        /// Continue every stage from its OUT/<stage>/last.safetensors.
        #[arg(long)]
        resume: bool,
        /// No progress bars or per-epoch lines (metrics.jsonl is still written).
        #[arg(long)]
        quiet: bool,
        /// Check the file and print the plan without training.
        #[arg(long)]
        dry_run: bool,
    },
    /// Replacement at several budgets from one baseline: OUT/<method>_<budget> per point, then
    /// OUT/sweep.csv, sweep.json and sweep.svg (top-1 against ReLU count).
    Sweep(SweepArgs),
}

#[derive(clap::Args)]
struct JobArgs {
    #[arg(long, default_value = "resnet18_in")]
    model: String,
    /// cifar10, cifar100, tiny-imagenet or fashion-mnist.
    #[arg(long, default_value = "cifar10")]
    dataset: String,
    /// Dataset folder (default: ../shared/data/cifar-10-jpeg75-bin when it exists).
    #[arg(long)]
    data: Option<std::path::PathBuf>,
    #[arg(long, default_value_t = 200)]
    epochs: usize,
    #[arg(long, default_value_t = 128)]
    batch: usize,
    #[arg(long, default_value_t = 2)]
    seed: u64,
    /// Run folder: checkpoints and metrics.jsonl.
    #[arg(long, default_value = "runs/latest")]
    out: std::path::PathBuf,
    /// Continue from OUT/last.safetensors.
    #[arg(long)]
    resume: bool,
    /// No progress bars or per-epoch lines (metrics.jsonl is still written).
    #[arg(long)]
    quiet: bool,
}

#[derive(clap::Args)]
struct ReplaceArgs {
    /// Baseline checkpoint (from `autorep train`).
    #[arg(long)]
    baseline: std::path::PathBuf,
    /// ReLUs to keep, e.g. 12.9k.
    #[arg(long)]
    budget: String,
    #[command(flatten)]
    gates: GateArgs,
}

/// How gates are learned and what replaces a switched-off ReLU (replace, snl, sweep).
#[derive(clap::Args)]
struct GateArgs {
    /// Budget penalty weight λ (AutoReP) or initial L1 weight λ₁ (SNL).
    #[arg(long)]
    lambda: Option<f32>,
    /// Hysteresis threshold τ.
    #[arg(long, default_value_t = 0.003)]
    tau: f32,
    /// Polynomial degree (1 or 2).
    #[arg(long, default_value_t = 2)]
    degree: usize,
    /// Scale of the x² term.
    #[arg(long, default_value_t = 0.1)]
    s2: f32,
    /// pixel (one gate per activation, the paper) or channel (one per channel).
    #[arg(long, default_value = "pixel")]
    granularity: String,
    /// clean (exact DaPa fit, then trained) or faithful (the official code's refits).
    #[arg(long, default_value = "clean")]
    dapa: String,
    /// Distil from the baseline (temperature 4).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    kd: bool,
}

#[derive(clap::Args)]
struct CostArgs {
    #[arg(long, default_value = "resnet18_in")]
    model: String,
    #[arg(long, default_value_t = 32)]
    input: usize,
    /// ReLUs kept (the rest are polynomials), e.g. 12.9k; all of them by default.
    #[arg(long)]
    relus: Option<String>,
    /// Take the model and its per-site ReLU counts from this checkpoint's mask instead.
    #[arg(long)]
    checkpoint: Option<std::path::PathBuf>,
    /// crypten, delphi or all.
    #[arg(long, default_value = "all")]
    protocol: String,
    /// Link bandwidth, bytes per second.
    #[arg(long, default_value_t = autorep::cost::LAN_BANDWIDTH_BYTES_PER_S)]
    bandwidth: f64,
    /// Round-trip time, seconds.
    #[arg(long, default_value_t = autorep::cost::LAN_RTT_S)]
    rtt: f64,
    /// Override the preset's online bytes per ReLU.
    #[arg(long)]
    relu_bytes: Option<f64>,
    #[arg(long)]
    relu_rounds: Option<f64>,
    #[arg(long)]
    relu_us: Option<f64>,
    #[arg(long)]
    poly_bytes: Option<f64>,
    #[arg(long)]
    poly_rounds: Option<f64>,
    #[arg(long)]
    poly_us: Option<f64>,
    #[arg(long)]
    offline_relu_bytes: Option<f64>,
}

#[derive(Subcommand)]
enum DataWhat {
    /// Download, verify (md5) and extract cifar10, cifar100, tiny-imagenet or fashion-mnist.
    Fetch {
        dataset: String,
        /// Folder to download into.
        #[arg(long, default_value = "data")]
        data: std::path::PathBuf,
    },
}

#[derive(Subcommand)]
enum BenchWhat {
    /// f32 GEMM throughput at 256³, 1024³ and resnet18_in's first conv as a GEMM.
    Gemm {
        /// Smaller shapes, for software adapters.
        #[arg(long)]
        quick: bool,
        /// Timed runs per shape (the median is reported).
        #[arg(long, default_value_t = 5)]
        reps: usize,
        /// Measure this shape instead, as MxNxK (repeatable), e.g. --size 4096x4096x4096.
        #[arg(long = "size", value_parser = parse_gemm_size)]
        sizes: Vec<(usize, usize, usize)>,
    },
    /// Full training steps (forward, backward, optimizer) of a model; images per second.
    Step {
        #[arg(long, default_value = "resnet18_in")]
        model: String,
        #[arg(long, default_value_t = 128)]
        batch: usize,
        /// Timed steps (the median is reported).
        #[arg(long, default_value_t = 3)]
        steps: usize,
        /// Also print the time per CPU kernel (CPU backend only).
        #[arg(long)]
        profile: bool,
    },
    /// Every training kernel on the layer shapes of resnet18_in and WRN-22-8 at 32x32.
    Kernels {
        /// Batch size of the layer shapes.
        #[arg(long, default_value_t = 128)]
        batch: usize,
        /// Batch 8 and fewer runs, for software adapters.
        #[arg(long)]
        quick: bool,
        /// Only this model's shapes (resnet18_in or wrn22_8); both by default.
        #[arg(long)]
        model: Option<String>,
        #[arg(long, default_value_t = 5)]
        reps: usize,
        /// Also write the results as JSON to this file.
        #[arg(long)]
        json: Option<std::path::PathBuf>,
    },
}

/// Time per CPU kernel per step, and the rest (graph, allocation, the Linear layer's host
/// work) as "other".
fn print_step_profile(t: &bench::StepTiming, steps: usize) {
    let per = |secs: f64| secs / steps as f64 * 1e3;
    println!(
        "{:<26} {:>9} {:>11} {:>7}",
        "kernel", "calls", "ms/step", "share"
    );
    let mut covered = 0.0;
    for (name, calls, secs) in &t.profile {
        covered += secs;
        println!(
            "{name:<26} {:>9.1} {:>11.2} {:>6.1}%",
            *calls as f64 / steps as f64,
            per(*secs),
            100.0 * secs / t.timed_secs
        );
    }
    let other = (t.timed_secs - covered).max(0.0);
    println!(
        "{:<26} {:>9} {:>11.2} {:>6.1}%",
        "other (host, graph)",
        "",
        per(other),
        100.0 * other / t.timed_secs
    );
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

fn main() {
    if let Err(e) = run(Cli::parse()) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Devices => devices(cli.device),
        Command::Demo {
            out,
            budget,
            epochs,
            quiet,
            engine: false,
            ..
        } => {
            if !(budget > 0.0 && budget < 1.0) {
                anyhow::bail!("--budget {budget} must be a fraction between 0 and 1, e.g. 0.05");
            }
            let mut device = Device::open(cli.device)?;
            if let Device::Gpu(g) = &device {
                if g.report().is_software() && cli.device == DeviceChoice::Auto {
                    println!("{} is a software adapter, slower than the CPU backend for training: using the CPU (--device gpu forces it)", g.report().name);
                    device = Device::Cpu;
                }
            }
            println!("device: {}", device.describe());
            let d = demo::PipelineDemo {
                out,
                budget_fraction: budget,
                baseline_epochs: epochs,
                replace_epochs: epochs,
                snl_epochs: epochs,
                quiet,
                ..Default::default()
            };
            let start = std::time::Instant::now();
            let rows = demo::pipeline_demo(&device, &d)?;
            println!("\n{}", demo::demo_table(&rows));
            println!(
                "checkpoints and metrics in {} ({:.0} s)",
                d.out.display(),
                start.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Command::Demo {
            steps,
            engine: true,
            ..
        } => {
            let device = Device::open(cli.device)?;
            println!("device: {}", device.describe());
            let cfg = demo::DemoConfig {
                steps,
                ..Default::default()
            };
            let report = demo::train_mlp(&device, &cfg, |step, loss| {
                println!("step {step:5}  loss {loss:.4}");
            })
            .context("training the demo MLP")?;
            println!(
                "train accuracy {:.1}%  final loss {:.4}  ({:.2} s, {} steps)",
                100.0 * report.train_accuracy,
                report.final_loss,
                report.seconds,
                steps
            );
            Ok(())
        }
        Command::Bench {
            what: BenchWhat::Gemm { quick, reps, sizes },
        } => {
            let device = Device::open(cli.device)?;
            println!("adapter: {}", device.describe());
            let shapes = if sizes.is_empty() {
                bench::gemm_shapes(quick)
            } else {
                sizes
            };
            for (m, n, k) in shapes {
                let r = bench::gemm(&device, m, n, k, reps.max(1))
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
        Command::Count { model, input } => {
            let m = autorep::models::build(&model, &Device::Cpu, 3, input, 10, 0)?;
            println!(
                "{:<4} {:<22} {:>8} {:>8} {:>10}",
                "#", "site", "channels", "pixels", "ReLUs"
            );
            for (i, s) in m.sites().iter().enumerate() {
                println!(
                    "{i:<4} {:<22} {:>8} {:>8} {:>10}",
                    s.name,
                    s.channels,
                    s.hw,
                    s.relus()
                );
            }
            println!(
                "total {} ReLUs over {} sites ({model}, {input}x{input})",
                m.relu_total(),
                m.sites().len()
            );
            Ok(())
        }
        Command::Dapa { mean, std, degree } => {
            let fit = autorep::autorep::dapa::fit(mean, std, degree)?;
            let terms: Vec<String> = fit
                .coeffs
                .iter()
                .enumerate()
                .map(|(k, w)| format!("c{k} = {w:.6}"))
                .collect();
            println!(
                "DaPa degree {degree} for x ~ N({mean}, {std}²): {}",
                terms.join(", ")
            );
            println!("expected squared error vs ReLU: {:.6}", fit.mse);
            Ok(())
        }
        Command::Cost(args) => cost(args),
        Command::Data {
            what: DataWhat::Fetch { dataset, data },
        } => {
            let ds = autorep::data::Dataset::from_name(&dataset)?;
            let dir = autorep::data::fetch(ds, &data)?;
            println!("{} ready in {}", ds.name(), dir.display());
            Ok(())
        }
        Command::Train {
            job,
            lr,
            momentum,
            weight_decay,
        } => {
            let device = Device::open(cli.device)?;
            let (o, data) = job_setup(&job, &device)?;
            let s = jobs::train_baseline(&device, &o, &data, lr, momentum, weight_decay)?;
            summary(&s);
            Ok(())
        }
        Command::Replace {
            job,
            rep,
            identity,
            weight_lr,
            mask_lr,
        } => {
            let method = if identity {
                autorep::autorep::Method::Identity
            } else {
                autorep::autorep::Method::AutoRep
            };
            let cfg = replace_config(&rep, method, 140.0)?;
            let device = Device::open(cli.device)?;
            let (o, data) = job_setup(&job, &device)?;
            let stage = stage_config(&job, weight_lr, mask_lr, 0, 0.0);
            let s = jobs::replace(&device, &o, &data, &rep.baseline, cfg, &stage, rep.gates.kd)?;
            summary(&s);
            Ok(())
        }
        Command::Snl {
            job,
            rep,
            lr,
            finetune_epochs,
            finetune_lr,
        } => {
            let cfg = replace_config(&rep, autorep::autorep::Method::Snl, 1e-5)?;
            let device = Device::open(cli.device)?;
            let (o, data) = job_setup(&job, &device)?;
            let stage = stage_config(&job, lr, lr, finetune_epochs, finetune_lr);
            let s = jobs::replace(&device, &o, &data, &rep.baseline, cfg, &stage, rep.gates.kd)?;
            summary(&s);
            Ok(())
        }
        Command::Finetune {
            job,
            from,
            teacher,
            lr,
        } => {
            let device = Device::open(cli.device)?;
            let (o, data) = job_setup(&job, &device)?;
            let stage = stage_config(&job, lr, lr, job.epochs, lr);
            let s = jobs::finetune(&device, &o, &data, &from, teacher.as_deref(), &stage)?;
            summary(&s);
            Ok(())
        }
        Command::Eval {
            checkpoint,
            dataset,
            data,
        } => {
            let device = Device::open(cli.device)?;
            let data = jobs::load_data(&dataset, &data_dir(&dataset, data), None, None, &device)?;
            let r = jobs::eval(&device, &checkpoint, &data)?;
            println!(
                "{}: top-1 {:.2}%  top-5 {:.2}%  ReLUs {} of {} ({:.2}%)",
                checkpoint.display(),
                100.0 * r.top1,
                100.0 * r.top5,
                r.relus,
                r.relu_total,
                100.0 * r.relus as f64 / r.relu_total.max(1) as f64
            );
            println!("{:<22} {:>9} {:>9} {:>7}", "site", "kept", "total", "kept%");
            for (name, kept, total) in &r.sites {
                println!(
                    "{name:<22} {kept:>9} {total:>9} {:>6.2}%",
                    100.0 * *kept as f64 / (*total).max(1) as f64
                );
            }
            let p = autorep::cost::Protocol::crypten();
            let layers =
                |f: &dyn Fn(usize, usize) -> bool| r.sites.iter().filter(|s| f(s.1, s.2)).count();
            let (relu_layers, poly_layers) = (layers(&|k, _| k > 0), layers(&|k, t| k < t));
            let polys = r.relu_total as u64 - r.relus;
            let c = autorep::cost::estimate(
                &p,
                r.relus,
                polys,
                relu_layers,
                poly_layers,
                autorep::cost::LAN_BANDWIDTH_BYTES_PER_S,
                autorep::cost::LAN_RTT_S,
            );
            println!("{}", c.table());
            Ok(())
        }
        Command::Bench {
            what:
                BenchWhat::Step {
                    model,
                    batch,
                    steps,
                    profile,
                },
        } => {
            let device = Device::open(cli.device)?;
            if profile && !matches!(device, Device::Cpu) {
                anyhow::bail!("--profile times the CPU backend's kernels: add --device cpu (for GPU kernels use `autorep bench kernels`)");
            }
            let t = bench::training_step(&device, &model, batch, steps, profile)?;
            println!("adapter: {}", device.describe());
            if profile {
                print_step_profile(&t, steps.max(1));
            }
            println!(
                "{model} batch {batch}: {:.1} ms/step, {:.1} images/s (median of {steps})",
                t.secs * 1e3,
                t.images_per_s
            );
            Ok(())
        }
        Command::Bench {
            what:
                BenchWhat::Kernels {
                    batch,
                    quick,
                    model,
                    reps,
                    json,
                },
        } => {
            let device = Device::open(cli.device)?;
            let (batch, reps) = if quick {
                (8, reps.min(3))
            } else {
                (batch, reps)
            };
            bench_kernels(&device, batch, model, reps, json)
        }
        Command::Run {
            config,
            out,
            resume,
            quiet,
            dry_run,
        } => run_experiment(cli.device, &config, out, resume, quiet, dry_run),
        Command::Sweep(args) => sweep(cli.device, args),
    }
}

fn bench_kernels(
    device: &Device,
    batch: usize,
    model: Option<String>,
    reps: usize,
    json: Option<std::path::PathBuf>,
) -> anyhow::Result<()> {
    let models = match model.as_deref() {
        None => vec!["resnet18_in", "wrn22_8"],
        Some(m @ ("resnet18_in" | "wrn22_8")) => vec![m],
        Some(other) => {
            anyhow::bail!("unknown model '{other}' for bench kernels: use resnet18_in or wrn22_8")
        }
    };
    println!(
        "adapter: {}  batch {batch}, median of {reps}",
        device.describe()
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
        let r = bench::gemm(device, s, s, s, reps)?;
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
        let rows = bench::conv_kernels(device, m, batch, reps)
            .with_context(|| format!("conv kernels of {m}"))?;
        for r in &rows {
            let g = r.gflops.unwrap_or(0.0);
            println!(
                "{:<20} {:<40} {:>9.3} ms {:>9.2} GFLOP/s  {:>5.0}% of GEMM",
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
        let body: Vec<String> = all.iter().map(|r| r.json()).collect();
        let text = format!(
            "{{\"adapter\":\"{}\",\"batch\":{batch},\"gemm_1024_gflops\":{gemm_peak:.4},\"results\":[\n{}\n]}}\n",
            device.describe(),
            body.join(",\n")
        );
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn data_dir(dataset: &str, given: Option<std::path::PathBuf>) -> std::path::PathBuf {
    given.unwrap_or_else(|| jobs::default_data_dir(dataset))
}

fn job_setup(job: &JobArgs, device: &Device) -> anyhow::Result<(jobs::JobOptions, jobs::Data)> {
    if !autorep::models::MODEL_NAMES.contains(&job.model.as_str()) {
        anyhow::bail!(
            "unknown model '{}': choose one of {}",
            job.model,
            autorep::models::MODEL_NAMES.join(", ")
        );
    }
    if job.batch < 2 {
        anyhow::bail!("--batch must be at least 2 (batch norm needs more than one sample)");
    }
    let data = jobs::load_data(
        &job.dataset,
        &data_dir(&job.dataset, job.data.clone()),
        None,
        None,
        device,
    )?;
    if !job.quiet {
        println!("{}", data.banner(device, Some(&job.model)));
    }
    let o = jobs::JobOptions {
        model: job.model.clone(),
        epochs: job.epochs,
        batch: job.batch,
        seed: job.seed,
        out: job.out.clone(),
        quiet: job.quiet,
        resume: job.resume,
        stop_after: None,
    };
    Ok((o, data))
}

fn replace_config(
    r: &ReplaceArgs,
    method: autorep::autorep::Method,
    default_lambda: f32,
) -> anyhow::Result<autorep::autorep::ReplaceConfig> {
    use autorep::autorep::{Granularity, Polynomial};
    let granularity = Granularity::from_name(&r.gates.granularity)?;
    let polynomial = Polynomial::from_name(&r.gates.dapa)?;
    let budget = autorep::autorep::parse_count(&r.budget)?;
    if !r.baseline.is_file() {
        anyhow::bail!("baseline checkpoint {} not found: train one with `autorep train --out DIR` and pass DIR/best.safetensors", r.baseline.display());
    }
    Ok(autorep::autorep::ReplaceConfig {
        method,
        budget,
        lambda: r.gates.lambda.unwrap_or(default_lambda),
        tau: r.gates.tau,
        degree: r.gates.degree,
        s2: r.gates.s2,
        granularity,
        polynomial,
        ..autorep::autorep::ReplaceConfig::autorep(0)
    })
}

fn stage_config(
    job: &JobArgs,
    weight_lr: f32,
    gate_lr: f32,
    finetune_epochs: usize,
    finetune_lr: f32,
) -> autorep::train::StageConfig {
    autorep::train::StageConfig {
        epochs: job.epochs,
        batch: job.batch,
        weight_lr,
        gate_lr,
        kd_temperature: 4.0,
        finetune_epochs,
        finetune_lr,
        seed: job.seed,
    }
}

fn summary(s: &jobs::JobSummary) {
    println!(
        "{} done: {} epochs, test accuracy {:.2}%, {} of {} ReLUs ({:.2}%){}{}",
        s.stage,
        s.epochs_run,
        100.0 * s.final_test.accuracy,
        s.relus,
        s.relu_total,
        100.0 * s.relus as f64 / s.relu_total.max(1) as f64,
        if s.over_budget_epochs > 0 {
            format!(", {} epochs ended over budget", s.over_budget_epochs)
        } else {
            String::new()
        },
        s.best.as_ref().map_or(String::new(), |b| format!(
            "; best checkpoint {}",
            b.display()
        ))
    );
}

fn cost(a: CostArgs) -> anyhow::Result<()> {
    // (model, activations, ReLUs kept, sites with a ReLU, sites with a polynomial)
    let (name, total, relus, relu_layers, poly_layers) = match &a.checkpoint {
        Some(path) => {
            let ck = autorep::train::checkpoint::Checkpoint::load(path)?;
            let (m, rep) = jobs::load_model(&Device::Cpu, &ck)?;
            let sites: Vec<(String, usize, usize)> = match &rep {
                Some(r) => r.site_counts(m.as_ref())?,
                None => m
                    .sites()
                    .iter()
                    .map(|s| (s.name.clone(), s.relus(), s.relus()))
                    .collect(),
            };
            let kept: usize = sites.iter().map(|s| s.1).sum();
            let relu_layers = sites.iter().filter(|s| s.1 > 0).count();
            let poly_layers = sites.iter().filter(|s| s.1 < s.2).count();
            (
                m.name().to_string(),
                m.relu_total(),
                kept,
                relu_layers,
                poly_layers,
            )
        }
        None => {
            let m = autorep::models::build(&a.model, &Device::Cpu, 3, a.input, 10, 0)?;
            let total = m.relu_total();
            let relus = match &a.relus {
                Some(s) => autorep::autorep::parse_count(s)?,
                None => total,
            };
            if relus > total {
                anyhow::bail!(
                    "--relus {relus} exceeds {}'s {total} ReLUs at {}x{}",
                    a.model,
                    a.input,
                    a.input
                );
            }
            // Without a mask, assume every site keeps some ReLUs and has some polynomials.
            let sites = m.sites().len();
            let poly_layers = if relus < total { sites } else { 0 };
            (
                a.model.clone(),
                total,
                relus,
                if relus > 0 { sites } else { 0 },
                poly_layers,
            )
        }
    };
    let polys = total - relus;
    let sites = relu_layers.max(poly_layers);
    let names: Vec<&str> = match a.protocol.to_ascii_lowercase().as_str() {
        "all" => autorep::cost::PRESET_NAMES.to_vec(),
        _ => vec![a.protocol.as_str()],
    };
    println!(
        "{name}: {total} activations, {relus} ReLUs kept, {polys} polynomials ({sites} sites)"
    );
    for name in names {
        let mut p = autorep::cost::Protocol::by_name(name)?;
        let set = |v: Option<f64>, field: &mut f64| {
            if let Some(v) = v {
                *field = v;
            }
        };
        set(a.relu_bytes, &mut p.relu_bytes);
        set(a.relu_rounds, &mut p.relu_rounds);
        set(a.relu_us, &mut p.relu_us);
        set(a.poly_bytes, &mut p.poly_bytes);
        set(a.poly_rounds, &mut p.poly_rounds);
        set(a.poly_us, &mut p.poly_us);
        set(a.offline_relu_bytes, &mut p.offline_relu_bytes);
        let (layers_relu, layers_poly) = (relu_layers, poly_layers);
        let r = autorep::cost::estimate(
            &p,
            relus as u64,
            polys as u64,
            layers_relu,
            layers_poly,
            a.bandwidth,
            a.rtt,
        );
        let all = autorep::cost::estimate(&p, total as u64, 0, sites, 0, a.bandwidth, a.rtt);
        println!("{}", r.table());
        if relus < total {
            let bytes = |c: &autorep::cost::CostReport| c.comm_bytes + c.offline_bytes;
            println!(
                "  vs all-ReLU: {:.1}x less communication (online + offline), {:.1}x lower latency",
                bytes(&all) / bytes(&r).max(1.0),
                all.latency_s / r.latency_s.max(1e-12)
            );
        }
    }
    Ok(())
}

fn devices(choice: DeviceChoice) -> anyhow::Result<()> {
    let adapters = autorep_kernels::list_adapters();
    if adapters.is_empty() {
        println!("no GPU adapters found (install Mesa's Vulkan driver: apt-get install mesa-vulkan-drivers libvulkan1)");
    }
    for (i, a) in adapters.iter().enumerate() {
        println!(
            "[{i}] {} — {:?}, {:?}, driver {} {}",
            a.name, a.backend, a.device_type, a.driver, a.driver_info
        );
        println!(
            "    max storage binding {} MiB, max buffer {} MiB, workgroup storage {} KiB, {} invocations/workgroup, {} storage buffers/stage",
            a.max_storage_binding >> 20,
            a.max_buffer >> 20,
            a.workgroup_storage >> 10,
            a.invocations_per_workgroup,
            a.storage_buffers_per_stage
        );
        println!(
            "    features: f16 {}  subgroups {}  timestamps {}",
            yes(a.f16),
            yes(a.subgroup),
            yes(a.timestamps)
        );
    }
    let picked = Device::open(choice)?;
    println!("--device {choice:?} picks: {}", picked.describe());
    Ok(())
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

#[derive(clap::Args)]
struct SweepArgs {
    /// All-ReLU baseline checkpoint (from `autorep train`).
    #[arg(long)]
    baseline: std::path::PathBuf,
    /// Budgets, comma-separated, e.g. 5k,10k,20k.
    #[arg(long, value_delimiter = ',', required = true)]
    budgets: Vec<String>,
    /// Also run SNL at each budget.
    #[arg(long)]
    snl: bool,
    /// Sweep folder.
    #[arg(long, default_value = "runs/sweep")]
    out: std::path::PathBuf,
    /// Dataset of the baseline (default: the one recorded in the checkpoint).
    #[arg(long)]
    dataset: Option<String>,
    /// Dataset folder (default: ../shared/data/cifar-10-jpeg75-bin when it exists).
    #[arg(long)]
    data: Option<std::path::PathBuf>,
    /// Use only the first N training images.
    #[arg(long)]
    limit_train: Option<usize>,
    /// Use only the first N test images.
    #[arg(long)]
    limit_test: Option<usize>,
    /// Replacement epochs at each budget.
    #[arg(long, default_value_t = 200)]
    epochs: usize,
    #[arg(long, default_value_t = 128)]
    batch: usize,
    #[arg(long, default_value_t = 2)]
    seed: u64,
    /// Continue every point from its last.safetensors.
    #[arg(long)]
    resume: bool,
    #[arg(long)]
    quiet: bool,
    #[command(flatten)]
    gates: GateArgs,
    /// The identity ablation instead of AutoReP.
    #[arg(long)]
    identity: bool,
    #[arg(long, default_value_t = 1e-3)]
    weight_lr: f32,
    #[arg(long, default_value_t = 1e-3)]
    mask_lr: f32,
    /// SNL: initial L1 weight λ₁.
    #[arg(long, default_value_t = 1e-5)]
    snl_lambda: f32,
    /// SNL: selection epochs at most (default: --epochs).
    #[arg(long)]
    snl_epochs: Option<usize>,
    #[arg(long, default_value_t = 1e-3)]
    snl_lr: f32,
    #[arg(long, default_value_t = 100)]
    finetune_epochs: usize,
    #[arg(long, default_value_t = 1e-3)]
    finetune_lr: f32,
}

/// The device of `run` and `sweep`: as `demo`, `auto` prefers the CPU backend over a
/// software adapter.
fn training_device(choice: DeviceChoice) -> anyhow::Result<Device> {
    let device = Device::open(choice)?;
    if let Device::Gpu(g) = &device {
        if g.report().is_software() && choice == DeviceChoice::Auto {
            println!("{} is a software adapter, slower than the CPU backend for training: using the CPU (--device gpu forces it)", g.report().name);
            return Ok(Device::Cpu);
        }
    }
    Ok(device)
}

fn run_experiment(
    choice: DeviceChoice,
    path: &std::path::Path,
    out: Option<std::path::PathBuf>,
    resume: bool,
    quiet: bool,
    dry_run: bool,
) -> anyhow::Result<()> {
    use autorep::experiment;
    let mut cfg = experiment::Config::load(path)?;
    if out.is_some() {
        cfg.experiment.out = out;
    }
    print!("{}", cfg.plan());
    if dry_run {
        return Ok(());
    }
    let device = training_device(choice)?;
    let opts = experiment::RunOptions { quiet, resume };
    let s = experiment::run(&device, &cfg, &opts)
        .with_context(|| format!("experiment {}", path.display()))?;
    println!("\n{}", s.table());
    println!(
        "{}: summary in {} ({:.0} s)",
        s.name,
        s.out.join("summary.csv").display(),
        s.seconds
    );
    Ok(())
}

fn sweep(choice: DeviceChoice, a: SweepArgs) -> anyhow::Result<()> {
    use autorep::autorep::{Granularity, Polynomial};
    use autorep::experiment::{self, Budget, ReplaceStage, SnlStage, SweepConfig};
    let granularity = Granularity::from_name(&a.gates.granularity)?;
    let dapa = Polynomial::from_name(&a.gates.dapa)?;
    if !(1..=2).contains(&a.gates.degree) {
        anyhow::bail!("--degree {}: use 1 or 2", a.gates.degree);
    }
    if a.batch < 2 {
        anyhow::bail!("--batch must be at least 2 (batch norm needs more than one sample)");
    }
    let budgets = a
        .budgets
        .iter()
        .filter(|b| !b.trim().is_empty())
        .map(|b| Budget::parse(b))
        .collect::<autorep::Result<Vec<_>>>()?;
    if budgets.is_empty() {
        anyhow::bail!("--budgets is empty: pass e.g. --budgets 5k,10k,20k");
    }
    if !a.baseline.is_file() {
        anyhow::bail!("baseline checkpoint {} not found: train one with `autorep train --out DIR` and pass DIR/best.safetensors", a.baseline.display());
    }
    let dataset = match a.dataset {
        Some(d) => d,
        None => autorep::train::checkpoint::Checkpoint::load(&a.baseline)?
            .meta("dataset")?
            .to_string(),
    };
    let device = training_device(choice)?;
    let dir = a
        .data
        .clone()
        .unwrap_or_else(|| experiment::default_data_dir(&dataset));
    let data = experiment::load_data(&dataset, &dir, a.limit_train, a.limit_test, &device)?;
    if !a.quiet {
        println!("{}", data.banner(&device, None));
    }
    let replace = ReplaceStage {
        budget: budgets[0].clone(),
        lambda: a.gates.lambda,
        tau: a.gates.tau,
        degree: a.gates.degree,
        s2: a.gates.s2,
        granularity,
        dapa,
        identity: a.identity,
        epochs: a.epochs,
        weight_lr: a.weight_lr,
        mask_lr: a.mask_lr,
        kd: a.gates.kd,
        batch: None,
        baseline: None,
        h_init: None,
    };
    let snl = a.snl.then(|| SnlStage {
        budget: budgets[0].clone(),
        lambda: Some(a.snl_lambda),
        epochs: a.snl_epochs.unwrap_or(a.epochs),
        lr: a.snl_lr,
        finetune_epochs: a.finetune_epochs,
        finetune_lr: a.finetune_lr,
        granularity,
        kd: a.gates.kd,
        batch: None,
        baseline: None,
    });
    let cfg = SweepConfig {
        baseline: a.baseline,
        budgets,
        replace,
        snl,
        batch: a.batch,
        seed: a.seed,
        out: a.out,
        quiet: a.quiet,
        resume: a.resume,
    };
    let start = std::time::Instant::now();
    let rows = experiment::sweep(&device, &data, &cfg)?;
    println!("\n{}", experiment::sweep_table(&rows));
    println!(
        "wrote {}, sweep.json and sweep.svg ({:.0} s)",
        cfg.out.join("sweep.csv").display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
