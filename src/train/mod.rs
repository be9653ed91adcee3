//! Training and evaluation loops over image sets resident on the device, or read from files
//! batch by batch.

use crate::autorep::Replacement;
use crate::data::{batch_plan, ImageSet};
use crate::models::Model;
use crate::nn::{ForwardCtx, Optimizer};
use crate::tensor::PackedImages;
use crate::{no_grad, Device, Dtype, Labels, Result, Tensor};
use std::rc::Rc;

pub mod checkpoint;
pub mod config;
pub mod data;
pub mod driver;
pub mod eval;
pub mod file_source;
pub mod report;
pub mod run;
pub mod run_dir;
pub mod stages;

pub use config::{
    check_batch, FinetuneConfig, Precision, ReplaceStageConfig, SnlConfig, StageConfig,
    TrainConfig, MAX_BATCH,
};
pub use data::{
    check_limits, default_data_dir, load_data, load_data_sized, load_imagenet, load_test_data,
    same_folder, Data, DataSource,
};
pub use driver::{drive, Outcome, RunOptions};
pub use eval::{evaluate, evaluate_outputs, EvalOutputs, EvalStats};
pub use report::{eval_checkpoint, EvalReport};
pub use run::run_stage;
pub use run_dir::Existing;
pub use stages::{BaselineStage, FinetuneStage, ReplaceStage, SnlStage, Stage, StageEpoch};

/// Loss and accuracy over an epoch (or an evaluation).
#[derive(Debug, Clone, Copy, Default)]
pub struct EpochStats {
    pub loss: f32,
    pub accuracy: f32,
    pub images: usize,
    pub seconds: f64,
}

/// A dataset as training reads it. Resident: its u8 pixels are packed and (on a GPU) uploaded
/// once; every batch is then cropped, flipped and normalised by the augment kernel there. From
/// files (ImageNet): each batch is decoded on the CPU cores while the previous one trains.
pub struct DeviceSet {
    /// The labels, shape and classes (and, when resident, the pixels).
    pub set: ImageSet,
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
    /// Training-time random crop after this zero padding, and flip (see
    /// [`crate::data::Dataset::crop_flip`]); None: no augmentation.
    pub crop_flip: Option<usize>,
    source: Source,
    device: Device,
}

enum Source {
    Resident(PackedImages),
    Files(file_source::FileSource),
}

impl DeviceSet {
    pub fn new(
        device: &Device,
        set: ImageSet,
        mean: &[f32],
        std: &[f32],
        crop_flip: Option<usize>,
    ) -> Result<DeviceSet> {
        // Validates channels and statistics up front.
        set.augment_params(1, crop_flip.unwrap_or(0), mean, std)?;
        let packed = PackedImages::new(device, set.packed())?;
        Ok(DeviceSet {
            set,
            mean: mean.to_vec(),
            std: std.to_vec(),
            crop_flip,
            source: Source::Resident(packed),
            device: device.clone(),
        })
    }

    /// The images of `folder`, read batch by batch at `side`×`side`.
    pub fn from_files(
        device: &Device,
        folder: &crate::data::imagenet::ImageFolder,
        side: usize,
        mean: &[f32],
        std: &[f32],
    ) -> DeviceSet {
        let set = ImageSet {
            images: vec![],
            labels: folder.labels.clone(),
            channels: 3,
            height: side,
            width: side,
            classes: folder.classes.len(),
            class_names: folder.classes.clone(),
        };
        DeviceSet {
            set,
            mean: mean.to_vec(),
            std: std.to_vec(),
            crop_flip: None,
            source: Source::Files(file_source::FileSource::new(folder, side, mean, std)),
            device: device.clone(),
        }
    }

    pub fn len(&self) -> usize {
        self.set.len()
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// The batches of one epoch: shuffled (with random crops and flips where the dataset has
    /// them) when `augment`, else in order and centred. Reproducible from (seed, epoch).
    pub fn plan(&self, seed: u64, epoch: u64, batch: usize, augment: bool) -> Vec<Vec<[u32; 2]>> {
        match &self.source {
            Source::Resident(_) => batch_plan(
                seed,
                epoch,
                self.len(),
                batch.max(1),
                augment,
                self.crop_flip,
            ),
            Source::Files(f) => f.plan(seed, epoch, batch.max(1), augment),
        }
    }

    /// Batches decoded from files so far (None for a resident set).
    pub fn decoded_batches(&self) -> Option<usize> {
        match &self.source {
            Source::Files(f) => Some(f.decoded()),
            Source::Resident(_) => None,
        }
    }

    /// Say which batch comes next, so that one read from files is decoded meanwhile.
    pub fn prefetch(&self, next: Option<&Vec<[u32; 2]>>) {
        if let (Source::Files(f), Some(samples)) = (&self.source, next) {
            f.prefetch(samples);
        }
    }

    /// One batch of images (augmented and normalised on the device) and its labels.
    pub fn batch(&self, samples: &[[u32; 2]]) -> Result<(Tensor, Rc<Labels>)> {
        // The labels' upload goes before the augmentation (which uploads the samples first):
        // an upload flushes queued work, and would otherwise split the augment dispatch off
        // into a submit of its own.
        let y: Vec<u32> = samples
            .iter()
            .map(|s| self.set.labels[s[0] as usize])
            .collect();
        let labels = Rc::new(Labels::new(&self.device, &y)?);
        let x = match &self.source {
            Source::Resident(packed) => {
                let p = self.set.augment_params(
                    samples.len(),
                    self.crop_flip.unwrap_or(0),
                    &self.mean,
                    &self.std,
                )?;
                packed.augment(&p, samples)?
            }
            Source::Files(f) => Tensor::from_vec(
                &self.device,
                &[samples.len(), 3, f.side, f.side],
                f.pixels(samples)?,
            )?,
        };
        Ok((x, labels))
    }

    /// The first `n` images, centred and normalised (calibration batches).
    pub fn head(&self, n: usize) -> Result<Tensor> {
        let plan = self.plan(0, 0, n, false);
        Ok(self.batch(&plan[0])?.0)
    }
}

/// What drives a training epoch besides the model and optimizer.
pub struct EpochPlan<'a> {
    /// The learning rates of this epoch.
    pub lr: crate::nn::Lr,
    pub batch_size: usize,
    /// Training order: shuffled, with the dataset's random crops and flips; off (in order,
    /// centred) for calibration or checks.
    pub augment: bool,
    pub seed: u64,
    /// Index of this epoch in the run (with `seed`, it fixes the order and the crops).
    pub epoch: u64,
    /// Gated sites to update (hysteresis, count) before every forward pass.
    pub replacement: Option<&'a mut Replacement>,
    /// Distil from this all-ReLU teacher at this temperature and weight (loss = CE +
    /// weight · KD).
    pub teacher: Option<(&'a dyn Model, f32, f32)>,
    /// Advanced by one per batch.
    pub progress: Option<&'a indicatif::ProgressBar>,
    /// End the epoch early once the gated count meets a budget (SNL selection).
    pub stop_at: Option<StopAt>,
}

/// Count the mask every `every` batches and end the epoch once it is at most `count`: a
/// selection whose L1 weight grows fast can cross the budget and fall far below it within one
/// epoch, while the official SNL, whose weight grows ×1.1 an epoch, stops within a few
/// hundred ReLUs of it.
#[derive(Debug, Clone, Copy)]
pub struct StopAt {
    pub count: u64,
    pub every: usize,
}

impl EpochPlan<'_> {
    pub fn plain(batch_size: usize, seed: u64, epoch: u64) -> EpochPlan<'static> {
        EpochPlan {
            lr: crate::nn::Lr::BASE,
            batch_size,
            augment: true,
            seed,
            epoch,
            replacement: None,
            teacher: None,
            progress: None,
            stop_at: None,
        }
    }
}

/// Loss and correct-prediction sums kept on the device across batches, so an epoch or an
/// evaluation reads back two numbers at its end instead of two per batch.
#[derive(Default)]
struct DeviceSums {
    loss: Option<Tensor>,
    correct: Option<Tensor>,
}

impl DeviceSums {
    /// Add a batch's summed loss and correct count (one-element tensors).
    fn add(&mut self, loss: Tensor, correct: Tensor) -> Result<()> {
        no_grad(|| {
            for (acc, v) in [(&mut self.loss, loss), (&mut self.correct, correct)] {
                *acc = Some(match acc.take() {
                    Some(s) => s.add(&v)?,
                    None => v,
                });
            }
            Ok(())
        })
    }

    /// (mean loss, accuracy) over `images`.
    fn read(self, images: usize) -> Result<(f32, f32)> {
        let n = images.max(1) as f32;
        let read = |t: Option<Tensor>| t.map_or(Ok(0.0), |t| t.item());
        Ok((read(self.loss)? / n, read(self.correct)? / n))
    }
}

/// Training batches of an epoch over `n` images: a last partial batch counts when it has two
/// images or more (BatchNorm needs more than one sample), so a set smaller than the batch
/// still trains.
pub fn batches_per_epoch(n: usize, batch: usize) -> usize {
    let batch = batch.max(2);
    n / batch + (n % batch >= 2) as usize
}

/// One epoch of training in shuffled mini-batches (a last batch of one image is dropped, as
/// BatchNorm needs more than one sample). Loss and accuracy are read back once, at the end:
/// per-batch sums stay on the device.
pub fn train_epoch(
    model: &dyn Model,
    opt: &mut Optimizer,
    data: &DeviceSet,
    plan: EpochPlan<'_>,
    device: &Device,
) -> Result<EpochStats> {
    let EpochPlan {
        lr,
        batch_size,
        augment,
        seed,
        epoch,
        mut replacement,
        teacher,
        progress,
        stop_at,
    } = plan;
    let start = std::time::Instant::now();
    let mut sums = DeviceSums::default();
    let mut images = 0;
    let batches: Vec<Vec<[u32; 2]>> = data
        .plan(seed, epoch, batch_size.max(2), augment)
        .into_iter()
        .filter(|b| b.len() >= 2)
        .collect();
    for (i, samples) in batches.iter().enumerate() {
        let (x, y) = data.batch(samples)?;
        data.prefetch(batches.get(i + 1));
        opt.zero_grad()?;
        let mut ctx = match replacement.as_deref_mut() {
            Some(r) => r.begin_forward(model, true)?,
            None => ForwardCtx::train(),
        };
        ctx.noise_seed =
            Some(seed ^ (epoch << 32) ^ (i as u64).wrapping_mul(0xD1B5_4A32_D192_ED03));
        // Mixed precision: the network runs on f16 activations, the losses in f32.
        let x = x.cast(opt.precision())?;
        let logits = model.forward(&x, &ctx)?.cast(Dtype::F32)?;
        let ce = logits.cross_entropy(&y, 0.0)?;
        let mut loss = ce.loss.mean()?;
        if let Some((t, temperature, weight)) = teacher {
            let t_logits = no_grad(|| t.forward(&x, &ForwardCtx::eval())?.cast(Dtype::F32))?;
            let mut kd = logits.distill(&t_logits, temperature)?.mean()?;
            if weight != 1.0 {
                kd = kd.scale(weight)?;
            }
            loss = loss.add(&kd)?;
        }
        loss.backward_from(opt.loss_seed()?)?;
        opt.step(lr)?;
        let (l, c) = no_grad(|| {
            Ok::<_, crate::Error>((loss.scale(samples.len() as f32)?, ce.correct.sum()?))
        })?;
        sums.add(l, c)?;
        device.flush()?;
        images += samples.len();
        if let Some(p) = progress {
            p.inc(1);
        }
        if let (Some(s), Some(r)) = (stop_at, replacement.as_deref_mut()) {
            if (i + 1) % s.every.max(1) == 0 {
                r.sync(model)?;
                if r.count()? <= s.count {
                    break;
                }
            }
        }
    }
    let (loss, accuracy) = sums.read(images)?;
    // The sums come back once per epoch anyway, so checking them costs nothing; weights that
    // became NaN or infinite never recover, and training on would only overwrite checkpoints.
    if images > 0 && !loss.is_finite() {
        return Err(crate::Error::Diverged {
            epoch: epoch + 1,
            what: format!("the mean training loss is {loss}"),
        });
    }
    Ok(EpochStats {
        loss,
        accuracy,
        images,
        seconds: start.elapsed().as_secs_f64(),
    })
}
