//! An in-memory image classification set (u8 NCHW pixels and labels) and the seeded per-epoch
//! batch plan that drives the device-side augmentation kernel.

use crate::error::{Error, Result};
use autorep_kernels::cpu::{aug_word, pack_u8};
use autorep_kernels::params::{AugmentParams, AUGMENT_MAX_CHANNELS};
use std::ops::{Range, RangeFrom, RangeFull, RangeInclusive, RangeTo};

/// Images as u8 N x C x H x W (channel planes, each row-major), labels in `0..classes`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageSet {
    pub images: Vec<u8>,
    pub labels: Vec<u32>,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub classes: usize,
    /// One name per class (label order); may be empty when unknown.
    pub class_names: Vec<String>,
}

impl ImageSet {
    /// Bytes per image: C x H x W.
    pub fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// [C, H, W].
    pub fn shape(&self) -> [usize; 3] {
        [self.channels, self.height, self.width]
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Image `i` as u8 CHW. Panics if `i >= len()`.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_len();
        &self.images[i * n..(i + 1) * n]
    }

    /// Images `idx` normalised per channel, (v/255 − mean\[c\]) / std\[c\], into f32 NCHW.
    /// `mean` and `std` hold at least `channels` values (an array or a slice).
    pub fn normalized(
        &self,
        idx: &[usize],
        mean: impl AsRef<[f32]>,
        std: impl AsRef<[f32]>,
    ) -> Vec<f32> {
        let (mean, std) = (mean.as_ref(), std.as_ref());
        let plane = self.height * self.width;
        let mut out = Vec::with_capacity(idx.len() * self.image_len());
        for &i in idx {
            for (c, px) in self.image(i).chunks(plane.max(1)).enumerate() {
                out.extend(px.iter().map(|&v| (v as f32 / 255.0 - mean[c]) / std[c]));
            }
        }
        out
    }

    /// The images selected by a range (`0..100`, `..100`, `..`) or an index list (`&[usize]`,
    /// `&Vec<usize>`, `Vec<usize>`), in that order, with the same metadata. Panics on an index
    /// out of range.
    pub fn subset(&self, sel: impl Selection) -> ImageSet {
        let idx = sel.indices(self.len());
        let mut out = ImageSet {
            images: Vec::with_capacity(idx.len() * self.image_len()),
            labels: Vec::with_capacity(idx.len()),
            ..self.meta()
        };
        for i in idx {
            assert!(
                i < self.len(),
                "subset: index {i} out of range for {} images",
                self.len()
            );
            out.images.extend_from_slice(self.image(i));
            out.labels.push(self.labels[i]);
        }
        out
    }

    /// An empty set with this set's shape, classes and names.
    pub fn meta(&self) -> ImageSet {
        ImageSet {
            images: Vec::new(),
            labels: Vec::new(),
            channels: self.channels,
            height: self.height,
            width: self.width,
            classes: self.classes,
            class_names: self.class_names.clone(),
        }
    }

    /// Append the images of `other` (same shape and classes).
    pub fn extend(&mut self, other: &ImageSet) -> Result<()> {
        if other.shape() != self.shape() || other.classes != self.classes {
            return Err(Error::Invalid(format!(
                "cannot append a {:?} set of {} classes to a {:?} set of {} classes",
                other.shape(),
                other.classes,
                self.shape(),
                self.classes
            )));
        }
        self.images.extend_from_slice(&other.images);
        self.labels.extend_from_slice(&other.labels);
        Ok(())
    }

    /// Check the invariants: pixel bytes = len x C x H x W, labels below `classes`, and
    /// either no class names or one per class.
    pub fn validate(&self) -> Result<()> {
        let want = self.len() * self.image_len();
        if self.images.len() != want {
            return Err(Error::Invalid(format!(
                "image set holds {} pixel bytes, expected {} images x {:?} = {want}",
                self.images.len(),
                self.len(),
                self.shape()
            )));
        }
        if let Some((i, &l)) = self
            .labels
            .iter()
            .enumerate()
            .find(|(_, &l)| l as usize >= self.classes)
        {
            return Err(Error::Invalid(format!(
                "image set: label {l} of image {i} is outside 0..{}",
                self.classes.saturating_sub(1)
            )));
        }
        if !self.class_names.is_empty() && self.class_names.len() != self.classes {
            return Err(Error::Invalid(format!(
                "image set: {} class names for {} classes",
                self.class_names.len(),
                self.classes
            )));
        }
        Ok(())
    }

    /// Images per class.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes];
        for &l in &self.labels {
            if let Some(c) = counts.get_mut(l as usize) {
                *c += 1;
            }
        }
        counts
    }

    /// Per-channel mean and standard deviation of the pixels scaled to [0, 1] (how the
    /// normalisation constants are derived).
    pub fn channel_stats(&self) -> (Vec<f32>, Vec<f32>) {
        let plane = self.height * self.width;
        let mut sum = vec![0f64; self.channels];
        let mut sq = vec![0f64; self.channels];
        for i in 0..self.len() {
            for (c, px) in self.image(i).chunks(plane.max(1)).enumerate() {
                let (s, q) = px.iter().fold((0u64, 0u64), |(s, q), &v| {
                    (s + v as u64, q + (v as u64).pow(2))
                });
                sum[c] += s as f64;
                sq[c] += q as f64;
            }
        }
        let n = (self.len() * plane).max(1) as f64;
        let mean: Vec<f64> = sum.iter().map(|s| s / n / 255.0).collect();
        let std = sq
            .iter()
            .zip(&mean)
            .map(|(q, m)| ((q / n / 65025.0 - m * m).max(0.0).sqrt()) as f32)
            .collect();
        (mean.iter().map(|&m| m as f32).collect(), std)
    }

    /// The pixels packed four per u32 word, as the augmentation kernel reads them (upload
    /// once per dataset).
    pub fn packed(&self) -> Vec<u32> {
        pack_u8(&self.images)
    }

    /// Parameters of [`autorep_kernels::launch::augment_batch`] for a batch of `batch` images
    /// of this set, padded by `pad`, normalised with `mean`/`std` (one value per channel).
    pub fn augment_params(
        &self,
        batch: usize,
        pad: usize,
        mean: &[f32],
        std: &[f32],
    ) -> Result<AugmentParams> {
        if !(1..=AUGMENT_MAX_CHANNELS).contains(&self.channels) {
            return Err(Error::Invalid(format!(
                "the augmentation kernel handles 1 to {AUGMENT_MAX_CHANNELS} channels, this set has {}",
                self.channels
            )));
        }
        if mean.len() < self.channels || std.len() < self.channels {
            return Err(Error::Invalid(format!(
                "normalisation needs {} means and stds, got {} and {}",
                self.channels,
                mean.len(),
                std.len()
            )));
        }
        if pad > 127 {
            return Err(Error::Invalid(format!(
                "augmentation padding {pad} is above 127"
            )));
        }
        let (mut m, mut s) = ([0f32; AUGMENT_MAX_CHANNELS], [1f32; AUGMENT_MAX_CHANNELS]);
        m[..self.channels].copy_from_slice(&mean[..self.channels]);
        s[..self.channels].copy_from_slice(&std[..self.channels]);
        Ok(AugmentParams {
            channels: self.channels,
            height: self.height,
            width: self.width,
            pad,
            batch,
            count: self.len(),
            mean: m,
            std: s,
        })
    }
}

/// What [`ImageSet::subset`] accepts: a range or a list of indices.
pub trait Selection {
    /// The selected indices, given the set's length.
    fn indices(self, len: usize) -> Vec<usize>;
}

impl Selection for Range<usize> {
    fn indices(self, _: usize) -> Vec<usize> {
        self.collect()
    }
}
impl Selection for RangeInclusive<usize> {
    fn indices(self, _: usize) -> Vec<usize> {
        self.collect()
    }
}
impl Selection for RangeTo<usize> {
    fn indices(self, _: usize) -> Vec<usize> {
        (0..self.end).collect()
    }
}
impl Selection for RangeFrom<usize> {
    fn indices(self, len: usize) -> Vec<usize> {
        (self.start..len).collect()
    }
}
impl Selection for RangeFull {
    fn indices(self, len: usize) -> Vec<usize> {
        (0..len).collect()
    }
}
impl Selection for &[usize] {
    fn indices(self, _: usize) -> Vec<usize> {
        self.to_vec()
    }
}
impl<const N: usize> Selection for &[usize; N] {
    fn indices(self, _: usize) -> Vec<usize> {
        self.to_vec()
    }
}
impl Selection for &Vec<usize> {
    fn indices(self, _: usize) -> Vec<usize> {
        self.clone()
    }
}
impl Selection for Vec<usize> {
    fn indices(self, _: usize) -> Vec<usize> {
        self
    }
}

/// SplitMix64: a tiny, fixed, platform-independent generator, so batch plans stay
/// reproducible across crate versions.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0), by the multiply-shift method (bias below 2^-32 for n < 2^32).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
}

/// The generator of epoch `epoch` under `seed`.
fn epoch_rng(seed: u64, epoch: u64) -> SplitMix64 {
    let mut mix = SplitMix64::new(seed ^ 0x5EED_0A17_0000_0000);
    let base = mix.next_u64();
    SplitMix64::new(base ^ epoch.wrapping_mul(0xD1B5_4A32_D192_ED03))
}

/// A permutation of `0..n`, the same for the same (seed, epoch).
pub fn shuffled(seed: u64, epoch: u64, n: usize) -> Vec<usize> {
    let mut rng = epoch_rng(seed, epoch);
    let mut idx: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        idx.swap(i, rng.below(i as u64 + 1) as usize);
    }
    idx
}

/// The batches of one epoch over `n` images: per sample `[dataset index, random word]`, the
/// layout [`autorep_kernels::launch::augment_batch`] reads (flatten one batch into its
/// samples buffer). With `augment` (training), the order is a seeded shuffle, and with
/// `crop_flip = Some(pad)` each sample gets crop offsets uniform in `0..=2*pad` and a fair flip
/// bit (with `None`, the centred, unflipped image: a dataset trained without augmentation);
/// without `augment`, the order is `0..n` and every word is the centred, unflipped crop
/// (evaluation). The last batch may be short. The same arguments always give the same plan.
pub fn batch_plan(
    seed: u64,
    epoch: u64,
    n: usize,
    batch: usize,
    augment: bool,
    crop_flip: Option<usize>,
) -> Vec<Vec<[u32; 2]>> {
    assert!(batch > 0, "batch_plan: batch size 0");
    let pad = crop_flip.unwrap_or(0);
    assert!(pad <= 127, "batch_plan: padding {pad} is above 127");
    let plain = aug_word(pad as u32, pad as u32, false);
    let in_plain = |order: Vec<usize>| {
        order
            .chunks(batch)
            .map(|c| c.iter().map(|&i| [i as u32, plain]).collect())
            .collect()
    };
    if !augment {
        return in_plain((0..n).collect());
    }
    let order = shuffled(seed, epoch, n);
    if crop_flip.is_none() {
        return in_plain(order);
    }
    let mut rng = epoch_rng(seed.wrapping_add(1), epoch);
    let span = 2 * pad as u64 + 1;
    order
        .chunks(batch)
        .map(|c| {
            c.iter()
                .map(|&i| {
                    let r = rng.next_u64();
                    let dy = ((r & 0xffff_ffff) * span) >> 32;
                    let dx = ((r >> 32) * span) >> 32;
                    let flip = rng.next_u64() >> 63 == 1;
                    [i as u32, aug_word(dy as u32, dx as u32, flip)]
                })
                .collect()
        })
        .collect()
}
