//! `demo`: the embedded end-to-end pipeline (or, with `--engine`, the engine's MLP demo).

use anyhow::Context;
use autorep::{demo, Device, DeviceChoice};

#[derive(clap::Args)]
pub struct DemoArgs {
    /// Run folder for the demo's checkpoints and metrics (started over each time).
    #[arg(long, default_value = "runs/demo")]
    out: std::path::PathBuf,
    /// ReLUs to keep: a fraction of the small ResNet's 56,448 (0.05) or a count (2.8k).
    #[arg(long, allow_hyphen_values = true, default_value = "0.05")]
    budget: String,
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
}

pub fn demo(choice: DeviceChoice, a: DemoArgs) -> anyhow::Result<()> {
    if a.engine {
        let device = Device::open(choice)?;
        println!("device: {}", device.describe());
        let cfg = demo::DemoConfig {
            steps: a.steps,
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
            a.steps
        );
        return Ok(());
    }
    let total = super::info::counting_model("small", 28)?.relu_total();
    let bad = || {
        anyhow::anyhow!(
            "--budget {} is invalid: give a fraction of the small ResNet's {total} ReLUs strictly between 0 and 1 (e.g. 0.05) or a count from 1 to {} (e.g. 2.8k): the demo replaces some ReLUs",
            a.budget,
            total - 1
        )
    };
    let budget_fraction = match a.budget.trim().parse::<f64>() {
        Ok(f) if f > 0.0 && f < 1.0 => f,
        _ => match autorep::autorep::parse_count(&a.budget) {
            Ok(n) if n > 0 && n < total => n as f64 / total as f64,
            _ => return Err(bad()),
        },
    };
    if a.epochs == 0 {
        anyhow::bail!("--epochs 0: each stage needs at least one epoch");
    }
    let device = super::training_device(choice, a.quiet)?;
    println!("device: {}", device.describe());
    let d = demo::PipelineDemo {
        out: a.out,
        budget_fraction,
        baseline_epochs: a.epochs,
        replace_epochs: a.epochs,
        snl_epochs: a.epochs,
        quiet: a.quiet,
        ..Default::default()
    };
    let start = std::time::Instant::now();
    let rows = demo::pipeline_demo(&device, &d)?;
    println!("\n{}", demo::demo_table(&rows));
    println!(
        "checkpoints, metrics and summary.json in {} ({:.0} s)",
        d.out.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
