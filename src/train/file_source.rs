//! Batches read from image files (ImageNet): each is decoded and transformed on every CPU core
//! while the device works on the previous one, then uploaded as one tensor.

use crate::data::imagenet::{load_batch, ImageFolder, Transform};
use crate::data::{batch_plan, SplitMix64};
use crate::{Error, Result};
use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;

type Pending = (Vec<[u32; 2]>, JoinHandle<Result<Vec<f32>>>);

/// The files of one split and how to turn them into inputs.
pub struct FileSource {
    files: Arc<Vec<PathBuf>>,
    pub side: usize,
    mean: Arc<Vec<f32>>,
    std: Arc<Vec<f32>>,
    threads: usize,
    /// The next batch, being decoded.
    ahead: RefCell<Option<Pending>>,
    /// Batches decoded so far (prefetched or not).
    decoded: std::cell::Cell<usize>,
}

impl FileSource {
    pub fn new(folder: &ImageFolder, side: usize, mean: &[f32], std: &[f32]) -> FileSource {
        FileSource {
            files: Arc::new(folder.files.clone()),
            side,
            mean: Arc::new(mean.to_vec()),
            std: Arc::new(std.to_vec()),
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            ahead: RefCell::new(None),
            decoded: std::cell::Cell::new(0),
        }
    }

    /// The batches of one epoch: [`batch_plan`]'s order, each sample's second word the seed
    /// of its RandomResizedCrop and flip (never 0) when `augment`, else 0 (resize and centre
    /// crop). Reproducible from (seed, epoch).
    pub fn plan(&self, seed: u64, epoch: u64, batch: usize, augment: bool) -> Vec<Vec<[u32; 2]>> {
        let mut plan = batch_plan(seed, epoch, self.files.len(), batch, augment, None);
        if augment {
            let mut rng =
                SplitMix64::new(seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xF11E);
            for s in plan.iter_mut().flatten() {
                s[1] = (rng.next_u64() as u32) | 1;
            }
        } else {
            plan.iter_mut().flatten().for_each(|s| s[1] = 0);
        }
        plan
    }

    /// Batches decoded so far: one per batch served when prefetching works.
    pub fn decoded(&self) -> usize {
        self.decoded.get()
    }

    fn decode(&self, samples: &[[u32; 2]]) -> JoinHandle<Result<Vec<f32>>> {
        self.decoded.set(self.decoded.get() + 1);
        let (files, mean, std) = (self.files.clone(), self.mean.clone(), self.std.clone());
        let (side, threads) = (self.side, self.threads);
        let samples = samples.to_vec();
        std::thread::spawn(move || {
            let paths: Vec<&std::path::Path> = samples
                .iter()
                .map(|s| files[s[0] as usize].as_path())
                .collect();
            let transforms: Vec<Transform> = samples
                .iter()
                .map(|s| match s[1] {
                    0 => Transform::Eval,
                    seed => Transform::Train { seed },
                })
                .collect();
            load_batch(&paths, &transforms, side, &mean, &std, threads)
        })
    }

    /// Start decoding `samples` in the background: the batch asked for next, announced once
    /// the current one is in hand.
    pub fn prefetch(&self, samples: &[[u32; 2]]) {
        let mut ahead = self.ahead.borrow_mut();
        if ahead.as_ref().is_some_and(|(s, _)| s == samples) {
            return;
        }
        *ahead = Some((samples.to_vec(), self.decode(samples)));
    }

    /// The pixels of `samples`, `[n, 3, side, side]` normalised: the prefetched batch when it
    /// is this one, else decoded now.
    pub fn pixels(&self, samples: &[[u32; 2]]) -> Result<Vec<f32>> {
        let mut ahead = self.ahead.borrow_mut();
        let pending = if ahead.as_ref().is_some_and(|(s, _)| s == samples) {
            ahead.take().expect("checked").1
        } else {
            self.decode(samples)
        };
        drop(ahead);
        pending.join().map_err(|_| {
            Error::Invalid("decoding a batch of images panicked (a malformed image file?)".into())
        })?
    }
}
