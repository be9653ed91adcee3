//! `autorep export`: a checkpoint's network in a format other software runs.

use anyhow::Context;
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// ONNX, opset 17: the eval-mode network with its masks and polynomials, a dynamic batch
    /// dimension, and the input normalisation in the metadata properties.
    Onnx,
}

#[derive(clap::Args)]
pub struct ExportArgs {
    /// The checkpoint to export (a best.safetensors or last.safetensors).
    #[arg(long)]
    checkpoint: PathBuf,
    #[arg(long, value_enum, default_value = "onnx")]
    format: Format,
    /// Where to write the exported file.
    #[arg(long)]
    out: PathBuf,
}

pub fn export(a: ExportArgs) -> anyhow::Result<()> {
    if !a.checkpoint.is_file() {
        anyhow::bail!(
            "checkpoint {} not found: pass a best.safetensors or last.safetensors",
            a.checkpoint.display()
        );
    }
    let bytes = match a.format {
        Format::Onnx => autorep::export::checkpoint_to_onnx(&a.checkpoint)?,
    };
    std::fs::write(&a.out, &bytes).with_context(|| format!("writing {}", a.out.display()))?;
    let ops = autorep::export::onnx::op_counts(&bytes)?;
    let listed: Vec<String> = ops.iter().map(|(k, v)| format!("{k} {v}")).collect();
    println!(
        "{}: ONNX opset {}, {} bytes, nodes: {}",
        a.out.display(),
        autorep::export::onnx::OPSET,
        bytes.len(),
        listed.join(", ")
    );
    Ok(())
}
