//! `autorep export`: a checkpoint's network in a format other software runs.

use anyhow::Context;
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// ONNX, opset 17: the eval-mode network with its masks and polynomials, a dynamic batch
    /// dimension, and the input normalisation in the metadata properties.
    Onnx,
    /// A PyTorch state dict in safetensors: loads with `load_state_dict(strict=True)` into
    /// the modules of python/autorep_torch (see python/README.md).
    Torch,
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
    /// Replace a file already at --out (refused without it: it may be a checkpoint).
    #[arg(long)]
    overwrite: bool,
}

pub fn export(a: ExportArgs) -> anyhow::Result<()> {
    super::existing_file(
        &a.checkpoint,
        "checkpoint",
        "pass a best.safetensors or last.safetensors",
    )?;
    super::not_the_input(&a.out, "--out", &a.checkpoint)?;
    super::new_output(&a.out, "--out", a.overwrite)?;
    if a.format == Format::Torch {
        let bytes = autorep::export::torch::checkpoint_to_torch(&a.checkpoint)?;
        std::fs::write(&a.out, &bytes).with_context(|| format!("writing {}", a.out.display()))?;
        println!(
            "{}: PyTorch state dict (safetensors), {} bytes; load it with autorep_torch.load (python/README.md)",
            a.out.display(),
            bytes.len(),
        );
        return Ok(());
    }
    let bytes = autorep::export::checkpoint_to_onnx(&a.checkpoint)?;
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

#[derive(clap::Args)]
pub struct ImportArgs {
    /// A PyTorch state dict: a .pth/.pt file from torch.save (zip or legacy format) or a
    /// safetensors file, e.g. torchvision's pretrained weights.
    #[arg(long = "from")]
    from: PathBuf,
    /// The model whose module paths the file's keys name (efficientnet_b2 for torchvision's
    /// efficientnet_b2; resnet18, resnet18_in and small also accept torchvision's
    /// `downsample` and `fc`).
    #[arg(long)]
    model: String,
    /// The dataset the checkpoint is for: it sets the input size, channels, classes and
    /// normalisation.
    #[arg(long)]
    dataset: String,
    /// Start a new classifier for the dataset's classes instead of the file's.
    #[arg(long)]
    reset_head: bool,
    /// Seeds a new classifier.
    #[arg(long, default_value_t = autorep::train::config::defaults::SEED)]
    seed: u64,
    /// ImageNet only: the input side the checkpoint is for (default 224; torchvision
    /// evaluates its efficientnet_b2 weights at 288).
    #[arg(long)]
    image_size: Option<usize>,
    /// The checkpoint to write (a baseline for replace, snl and eval, a teacher for finetune).
    #[arg(long)]
    out: PathBuf,
    /// Replace a file already at --out (refused without it: it may be a trained network).
    #[arg(long)]
    overwrite: bool,
}

pub fn import(a: ImportArgs) -> anyhow::Result<()> {
    super::existing_file(&a.from, "state dict", "pass a .pth or .safetensors file")?;
    super::not_the_input(&a.out, "--out", &a.from)?;
    // Like the training commands' run folders, a checkpoint is not replaced by accident.
    super::new_output(&a.out, "--out", a.overwrite)?;
    let spec = autorep::export::torch::ImportSpec {
        model: a.model,
        dataset: a.dataset,
        reset_head: a.reset_head,
        seed: a.seed,
        image_size: a.image_size,
    };
    let ck = autorep::export::torch::import_checkpoint(&a.from, &spec)?;
    ck.save(&a.out)?;
    let m = &ck.meta;
    let head = if spec.reset_head {
        ", new classifier"
    } else {
        ""
    };
    println!(
        "{} -> {}: {} for {} ({}x{}x{}, {} classes{head}), {} tensors",
        a.from.display(),
        a.out.display(),
        m.model,
        m.dataset,
        m.channels,
        m.input,
        m.input,
        m.classes,
        ck.tensors.len()
    );
    Ok(())
}
