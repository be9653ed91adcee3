//! Training and evaluation loops over in-memory image sets.

use crate::autorep::Replacement;
use crate::data::CifarSet;
use crate::models::Model;
use crate::nn::{ForwardCtx, Optimizer};
use crate::{no_grad, Device, Labels, Result, Tensor};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::rc::Rc;

pub mod checkpoint;
pub mod jobs;
mod stages;
pub use stages::{autorep_stage, snl_stage, Run, SnlPhase, StageConfig, StageEpoch, StageResult};

/// Loss and accuracy over an epoch (or an evaluation).
#[derive(Debug, Clone, Copy, Default)]
pub struct EpochStats {
    pub loss: f32,
    pub accuracy: f32,
    pub images: usize,
    pub seconds: f64,
}

/// The normalised images `idx` of `set` as an NCHW tensor on the device.
pub fn batch_input(device: &Device, set: &CifarSet, idx: &[usize], norm: ([f32; 3], [f32; 3])) -> Result<Tensor> {
    Tensor::from_vec(device, &[idx.len(), 3, 32, 32], set.normalized(idx, norm.0, norm.1))
}

/// Everything a batch needs on the device.
fn batch(device: &Device, set: &CifarSet, idx: &[usize], mean: [f32; 3], std: [f32; 3]) -> Result<(Tensor, Rc<Labels>)> {
    let x = batch_input(device, set, idx, (mean, std))?;
    let y: Vec<u32> = idx.iter().map(|&i| set.labels[i]).collect();
    Ok((x, Rc::new(Labels::new(device, &y)?)))
}

/// What drives a training epoch besides the model and optimizer.
pub struct EpochPlan<'a> {
    pub lr_factor: f32,
    pub batch_size: usize,
    pub norm: ([f32; 3], [f32; 3]),
    pub seed: u64,
    /// Gated sites to update (hysteresis, count) before every forward pass.
    pub replacement: Option<&'a mut Replacement>,
    /// Distil from this all-ReLU teacher at this temperature (loss = CE + KD).
    pub teacher: Option<(&'a dyn Model, f32)>,
    /// Advanced by one per batch.
    pub progress: Option<&'a indicatif::ProgressBar>,
}

impl EpochPlan<'_> {
    pub fn plain(batch_size: usize, norm: ([f32; 3], [f32; 3]), seed: u64) -> EpochPlan<'static> {
        EpochPlan { lr_factor: 1.0, batch_size, norm, seed, replacement: None, teacher: None, progress: None }
    }
}

/// One epoch of training in shuffled mini-batches (the last partial batch is dropped, as
/// BatchNorm needs more than one sample). Loss and accuracy are read back once, at the end:
/// per-batch sums stay on the device.
pub fn train_epoch(model: &dyn Model, opt: &mut Optimizer, set: &CifarSet, plan: EpochPlan<'_>, device: &Device) -> Result<EpochStats> {
    let EpochPlan { lr_factor, batch_size, norm, seed, mut replacement, teacher, progress } = plan;
    let start = std::time::Instant::now();
    let mut order: Vec<usize> = (0..set.len()).collect();
    order.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
    let (mut loss_sum, mut correct_sum): (Option<Tensor>, Option<Tensor>) = (None, None);
    let mut images = 0;
    for idx in order.chunks_exact(batch_size.max(2)) {
        let (x, y) = batch(device, set, idx, norm.0, norm.1)?;
        opt.zero_grad()?;
        let ctx = match replacement.as_deref_mut() {
            Some(r) => r.begin_forward(model, true)?,
            None => ForwardCtx::train(),
        };
        let logits = model.forward(&x, &ctx)?;
        let ce = logits.cross_entropy(&y, 0.0)?;
        let mut loss = ce.loss.mean()?;
        if let Some((t, temperature)) = teacher {
            let t_logits = no_grad(|| t.forward(&x, &ForwardCtx::eval()))?;
            loss = loss.add(&logits.distill(&t_logits, temperature)?.mean()?)?;
        }
        loss.backward()?;
        opt.step(lr_factor)?;
        no_grad(|| -> Result<()> {
            let l = loss.scale(idx.len() as f32)?;
            let c = ce.correct.sum()?;
            loss_sum = Some(match loss_sum.take() { Some(s) => s.add(&l)?, None => l });
            correct_sum = Some(match correct_sum.take() { Some(s) => s.add(&c)?, None => c });
            Ok(())
        })?;
        device.flush()?;
        images += idx.len();
        if let Some(p) = progress {
            p.inc(1);
        }
    }
    let read = |t: Option<Tensor>| t.map_or(Ok(0.0), |t| t.item());
    let n = images.max(1) as f32;
    Ok(EpochStats { loss: read(loss_sum)? / n, accuracy: read(correct_sum)? / n, images, seconds: start.elapsed().as_secs_f64() })
}

/// Loss and top-1 accuracy with the model in eval mode.
pub fn evaluate(
    model: &dyn Model,
    mut replacement: Option<&mut Replacement>,
    set: &CifarSet,
    batch_size: usize,
    norm: ([f32; 3], [f32; 3]),
    device: &Device,
) -> Result<EpochStats> {
    let start = std::time::Instant::now();
    no_grad(|| {
        let (mut loss, mut correct) = (0f64, 0f64);
        let all: Vec<usize> = (0..set.len()).collect();
        for idx in all.chunks(batch_size.max(1)) {
            let (x, y) = batch(device, set, idx, norm.0, norm.1)?;
            let ctx = match replacement.as_deref_mut() {
                Some(r) => r.begin_forward(model, false)?,
                None => ForwardCtx::eval(),
            };
            let ce = model.forward(&x, &ctx)?.cross_entropy(&y, 0.0)?;
            loss += ce.loss.sum()?.item()? as f64;
            correct += ce.correct.sum()?.item()? as f64;
        }
        let n = set.len().max(1) as f64;
        Ok(EpochStats { loss: (loss / n) as f32, accuracy: (correct / n) as f32, images: set.len(), seconds: start.elapsed().as_secs_f64() })
    })
}

/// Top-k accuracy (k = 5 for the usual top-5) in eval mode.
pub fn top_k(
    model: &dyn Model,
    mut replacement: Option<&mut Replacement>,
    set: &CifarSet,
    k: usize,
    norm: ([f32; 3], [f32; 3]),
    device: &Device,
) -> Result<f32> {
    no_grad(|| {
        let mut hits = 0usize;
        let all: Vec<usize> = (0..set.len()).collect();
        for idx in all.chunks(256) {
            let x = batch_input(device, set, idx, norm)?;
            let ctx = match replacement.as_deref_mut() {
                Some(r) => r.begin_forward(model, false)?,
                None => ForwardCtx::eval(),
            };
            let logits = model.forward(&x, &ctx)?.to_vec()?;
            let classes = logits.len() / idx.len();
            for (row, &i) in logits.chunks(classes).zip(idx) {
                let label = set.labels[i] as usize;
                let better = row.iter().filter(|&&v| v > row[label]).count();
                hits += (better < k) as usize;
            }
        }
        Ok(hits as f32 / set.len().max(1) as f32)
    })
}
