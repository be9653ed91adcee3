use anyhow::Context;
use autorep::{bench, demo, Device, DeviceChoice};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "autorep", version, about = "AutoReP ReLU replacement on a wgpu/WGSL training engine")]
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
    /// Train a two-layer MLP on a 2-D problem no linear model can solve (the engine demo).
    Demo {
        /// Training steps (full batch).
        #[arg(long, default_value_t = 600)]
        steps: usize,
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        what: BenchWhat,
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

fn main() {
    if let Err(e) = run(Cli::parse()) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Devices => devices(cli.device),
        Command::Demo { steps, seed } => {
            let device = Device::open(cli.device)?;
            println!("device: {}", device.describe());
            let cfg = demo::DemoConfig { steps, seed, ..Default::default() };
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
        Command::Bench { what: BenchWhat::Gemm { quick, reps } } => {
            let device = Device::open(cli.device)?;
            println!("adapter: {}", device.describe());
            for (m, n, k) in bench::gemm_shapes(quick) {
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
        Command::Bench { what: BenchWhat::Kernels { batch, quick, model, reps, json } } => {
            let device = Device::open(cli.device)?;
            let (batch, reps) = if quick { (8, reps.min(3)) } else { (batch, reps) };
            bench_kernels(&device, batch, model, reps, json)
        }
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
        Some(other) => anyhow::bail!("unknown model '{other}' for bench kernels: use resnet18_in or wrn22_8"),
    };
    println!("adapter: {}  batch {batch}, median of {reps}", device.describe());
    let gemm_peak = bench::gemm(device, 1024, 1024, 1024, reps)?.gflops;
    println!("GEMM core at 1024³: {gemm_peak:.2} GFLOP/s (the reference for conv fractions)");
    let mut all = Vec::new();
    for m in models {
        println!("-- {m}");
        let rows = bench::conv_kernels(device, m, batch, reps).with_context(|| format!("conv kernels of {m}"))?;
        for r in &rows {
            let g = r.gflops.unwrap_or(0.0);
            println!("{:<20} {:<34} {:>9.3} ms {:>9.2} GFLOP/s  {:>5.0}% of GEMM", r.kernel, r.shape, r.median_s * 1e3, g, 100.0 * g / gemm_peak);
        }
        all.extend(rows);
    }
    println!("-- memory-bound");
    let rows = bench::memory_kernels(device, batch, reps)?;
    for r in &rows {
        println!("{:<20} {:<34} {:>9.3} ms {:>9.2} GB/s", r.kernel, r.shape, r.median_s * 1e3, r.gbps.unwrap_or(0.0));
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

fn devices(choice: DeviceChoice) -> anyhow::Result<()> {
    let adapters = autorep_kernels::list_adapters();
    if adapters.is_empty() {
        println!("no GPU adapters found (install Mesa's Vulkan driver: apt-get install mesa-vulkan-drivers libvulkan1)");
    }
    for (i, a) in adapters.iter().enumerate() {
        println!("[{i}] {} — {:?}, {:?}, driver {} {}", a.name, a.backend, a.device_type, a.driver, a.driver_info);
        println!(
            "    max storage binding {} MiB, max buffer {} MiB, workgroup storage {} KiB, {} invocations/workgroup, {} storage buffers/stage",
            a.max_storage_binding >> 20,
            a.max_buffer >> 20,
            a.workgroup_storage >> 10,
            a.invocations_per_workgroup,
            a.storage_buffers_per_stage
        );
        println!("    features: f16 {}  subgroups {}  timestamps {}", yes(a.f16), yes(a.subgroup), yes(a.timestamps));
    }
    let picked = Device::open(choice)?;
    println!("--device {choice:?} picks: {}", picked.describe());
    Ok(())
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}
