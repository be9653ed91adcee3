//! The input pipeline's speed: ImageNet training batches decoded and transformed on every core,
//! in images per second, to set against `bench step`'s training images per second.

use crate::data::imagenet::{load_batch, scan, Transform, IMAGENET_MEAN, IMAGENET_STD};
use crate::data::Split;
use crate::{Error, Result};
use std::path::Path;
use std::time::Instant;

/// What [`input_pipeline`] measured.
#[derive(Debug, Clone)]
pub struct InputTiming {
    pub images: usize,
    pub threads: usize,
    pub seconds: f64,
    pub images_per_s: f64,
}

/// Decode `batches` training batches of `batch` images of the ImageNet folder at `dir` to
/// `side`×`side` (RandomResizedCrop and flip), spread over the whole split, after one warm-up
/// batch.
pub fn input_pipeline(
    dir: &Path,
    side: usize,
    batch: usize,
    batches: usize,
) -> Result<InputTiming> {
    crate::train::check_batch("--batch", batch, 1, ", e.g. --batch 128")?;
    if !(1..=100_000).contains(&batches) {
        return Err(Error::Invalid(format!(
            "--batches {batches}: time from 1 to 100000 batches, e.g. --batches 8"
        )));
    }
    if !(8..=1024).contains(&side) {
        return Err(Error::Invalid(format!(
            "--image-size {side}: choose an image side from 8 to 1024, e.g. 224"
        )));
    }
    let set = scan(dir, Split::Train)?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let n = batch * (batches + 1);
    let pick: Vec<usize> = (0..n).map(|i| i * set.len() / n).collect();
    let mut timed = 0.0;
    for (b, chunk) in pick.chunks(batch).enumerate() {
        let files: Vec<&Path> = chunk.iter().map(|&i| set.files[i].as_path()).collect();
        let transforms: Vec<Transform> = chunk
            .iter()
            .map(|&i| Transform::Train { seed: i as u32 | 1 })
            .collect();
        let t = Instant::now();
        load_batch(
            &files,
            &transforms,
            side,
            &IMAGENET_MEAN,
            &IMAGENET_STD,
            threads,
        )?;
        if b > 0 {
            timed += t.elapsed().as_secs_f64();
        }
    }
    let images = batch * batches;
    Ok(InputTiming {
        images,
        threads,
        seconds: timed,
        images_per_s: images as f64 / timed.max(1e-9),
    })
}
