//! ILSVRC-2012 (ImageNet-1k) in its folder layout, read from disk batch by batch: the images do
//! not fit in memory, so each batch is decoded (JPEG or PNG) and transformed on every CPU core
//! as torchvision does it: RandomResizedCrop (scale 0.08–1, ratio 3/4–4/3) and a horizontal
//! flip for training, resize to 256/224 of the side and a centre crop for evaluation, then the
//! ImageNet mean and std.
//!
//! Layout: `train/<wnid>/*.JPEG` (the classes are the sorted `wnid` folders), and `val/` either
//! as class folders (`val/<wnid>/*.JPEG`) or flat (`val/*.JPEG`) with the official solution
//! CSV `LOC_val_solution.csv` (`ImageId,PredictionString`, the first word of which is the
//! wnid) in the root, in `val/`, or beside the root (Kaggle's `ILSVRC/Data/CLS-LOC` tree with
//! the CSV at the top is found from the top).
//!
//! A file that does not decode stops the run with its path (the batch's work is lost, every
//! checkpoint is kept): skipping it would silently change the dataset and the epoch plan, and
//! ImageNet as distributed decodes entirely (its CMYK and PNG-in-JPEG files included).

use super::tiny::is_image;
use super::{Split, SplitMix64};
use crate::error::{Error, Result};
use image::imageops::FilterType;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];
/// The solution file of the flat validation folder.
pub const VAL_CSV: &str = "LOC_val_solution.csv";

/// The image files of one split with their labels.
#[derive(Debug, Clone)]
pub struct ImageFolder {
    pub files: Vec<PathBuf>,
    pub labels: Vec<u32>,
    /// The wnids, label order.
    pub classes: Vec<String>,
}

impl ImageFolder {
    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The images at `order` (indices into this set), in that order.
    pub fn reorder(&self, order: &[usize]) -> ImageFolder {
        ImageFolder {
            files: order.iter().map(|&i| self.files[i].clone()).collect(),
            labels: order.iter().map(|&i| self.labels[i]).collect(),
            classes: self.classes.clone(),
        }
    }

    /// `n` images spread evenly over the (class-ordered) list, so a small subset still covers
    /// the classes; all of them when `n` is at least the length.
    pub fn spread(&self, n: usize) -> ImageFolder {
        let len = self.len();
        if n >= len {
            return self.clone();
        }
        let idx: Vec<usize> = (0..n).map(|i| i * len / n).collect();
        self.reorder(&idx)
    }
}

fn how_to_get() -> String {
    super::Dataset::ImageNet.how_to_get()
}

/// The folder holding `train/`: `dir` itself, or Kaggle's `ILSVRC/Data/CLS-LOC` under it.
fn locate(dir: &Path) -> Result<PathBuf> {
    for d in [dir.to_path_buf(), dir.join("ILSVRC/Data/CLS-LOC")] {
        if d.join("train").is_dir() {
            return Ok(d);
        }
    }
    Err(Error::Invalid(format!(
        "{} has no train/ folder (expected train/<wnid>/*.JPEG): {}",
        dir.display(),
        how_to_get()
    )))
}

/// Sorted entries of `dir` that satisfy `keep`.
fn listing(dir: &Path, keep: impl Fn(&Path) -> bool) -> Result<Vec<PathBuf>> {
    let rd = std::fs::read_dir(dir)
        .map_err(|e| Error::Invalid(format!("cannot read {}: {e}", dir.display())))?;
    let mut v = Vec::new();
    for entry in rd {
        let p = entry
            .map_err(|e| Error::Invalid(format!("cannot read {}: {e}", dir.display())))?
            .path();
        if keep(&p) {
            v.push(p);
        }
    }
    v.sort();
    Ok(v)
}

/// Images of `dir/<class>/` for every class, labelled by class order.
fn class_folders(dir: &Path, classes: &[String]) -> Result<ImageFolder> {
    let mut out = ImageFolder {
        files: vec![],
        labels: vec![],
        classes: classes.to_vec(),
    };
    for (label, class) in classes.iter().enumerate() {
        let files = listing(&dir.join(class), is_image)?;
        out.labels
            .extend(std::iter::repeat_n(label as u32, files.len()));
        out.files.extend(files);
    }
    Ok(out)
}

/// A flat `val/` labelled by the solution CSV.
fn flat_val(
    root: &Path,
    val: &Path,
    index: &HashMap<&str, u32>,
    classes: &[String],
) -> Result<ImageFolder> {
    let candidates = [root.join(VAL_CSV), val.join(VAL_CSV)]
        .into_iter()
        .chain(root.ancestors().skip(1).take(3).map(|a| a.join(VAL_CSV)));
    let csv = candidates.into_iter().find(|p| p.is_file()).ok_or_else(|| {
        Error::Invalid(format!(
            "{} holds images but no class folders, and no {VAL_CSV} labels them (looked in {} and {}): put the official solution CSV there, or sort val/ into val/<wnid>/",
            val.display(),
            root.display(),
            val.display()
        ))
    })?;
    let text = crate::files::read_to_string(&csv)
        .map_err(|e| Error::Invalid(format!("cannot read {}: {e}", csv.display())))?;
    let mut label_of = HashMap::new();
    for (n, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let (id, pred) = line.split_once(',').ok_or_else(|| {
            Error::Invalid(format!(
                "{} line {}: expected ImageId,PredictionString",
                csv.display(),
                n + 1
            ))
        })?;
        let wnid = pred.split_whitespace().next().unwrap_or("");
        let label = *index.get(wnid).ok_or_else(|| {
            Error::Invalid(format!(
                "{} line {}: class '{wnid}' of {id} is not among train/'s {} classes",
                csv.display(),
                n + 1,
                classes.len()
            ))
        })?;
        label_of.insert(id.trim().to_string(), label);
    }
    let mut out = ImageFolder {
        files: vec![],
        labels: vec![],
        classes: classes.to_vec(),
    };
    for f in listing(val, is_image)? {
        let stem = f.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        let label = *label_of.get(stem).ok_or_else(|| {
            Error::Invalid(format!("{}: not listed in {}", f.display(), csv.display()))
        })?;
        out.files.push(f);
        out.labels.push(label);
    }
    Ok(out)
}

/// The files and labels of one split of the ImageNet tree at `dir`.
pub fn scan(dir: &Path, split: Split) -> Result<ImageFolder> {
    let root = locate(dir)?;
    let train = root.join("train");
    let classes: Vec<String> = listing(&train, |p| p.is_dir())?
        .iter()
        .filter_map(|p| p.file_name().and_then(|n| n.to_str()).map(String::from))
        .collect();
    if classes.is_empty() {
        return Err(Error::Invalid(format!(
            "{} has no class folders: {}",
            train.display(),
            how_to_get()
        )));
    }
    let set = match split {
        Split::Train => class_folders(&train, &classes)?,
        Split::Test => {
            let val = root.join("val");
            if !val.is_dir() {
                return Err(Error::Invalid(format!(
                    "{} not found (val/<wnid>/*.JPEG, or val/*.JPEG with {VAL_CSV}): {}",
                    val.display(),
                    how_to_get()
                )));
            }
            let folders = listing(&val, |p| p.is_dir())?;
            if let Some(odd) = folders.iter().find(|f| {
                !f.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| classes.iter().any(|c| c == n))
            }) {
                return Err(Error::Invalid(format!(
                    "{}: class folder not among train/'s {} classes",
                    odd.display(),
                    classes.len()
                )));
            }
            if folders.is_empty() {
                let index: HashMap<&str, u32> = classes
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (c.as_str(), i as u32))
                    .collect();
                flat_val(&root, &val, &index, &classes)?
            } else {
                class_folders(&val, &classes)?
            }
        }
    };
    if set.is_empty() {
        return Err(Error::Invalid(format!(
            "{}: no .JPEG, .jpg or .png images in the {} split",
            root.display(),
            match split {
                Split::Train => "train",
                Split::Test => "val",
            }
        )));
    }
    Ok(set)
}

/// How one image becomes a network input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Transform {
    /// RandomResizedCrop to side×side and a flip, drawn from this seed.
    Train { seed: u32 },
    /// Resize the shorter side to side·256/224, centre crop side×side.
    Eval,
}

/// torchvision's RandomResizedCrop window (x, y, w, h) in a W×H image: ten tries at a random
/// area (8–100 %) and log-uniform aspect ratio (3/4–4/3), else the centre crop at the nearest
/// allowed ratio.
pub fn random_resized_crop(w: u32, h: u32, rng: &mut SplitMix64) -> (u32, u32, u32, u32) {
    let unit = |r: &mut SplitMix64| (r.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    let area = (w as f64) * (h as f64);
    let (lo, hi) = ((3.0f64 / 4.0).ln(), (4.0f64 / 3.0).ln());
    for _ in 0..10 {
        let target = area * (0.08 + 0.92 * unit(rng));
        let ratio = (lo + (hi - lo) * unit(rng)).exp();
        let cw = (target * ratio).sqrt().round() as u32;
        let ch = (target / ratio).sqrt().round() as u32;
        if cw > 0 && ch > 0 && cw <= w && ch <= h {
            let x = rng.below((w - cw + 1) as u64) as u32;
            let y = rng.below((h - ch + 1) as u64) as u32;
            return (x, y, cw, ch);
        }
    }
    let r = w as f64 / h as f64;
    let (cw, ch) = if r < 0.75 {
        (w, ((w as f64) / 0.75).round() as u32)
    } else if r > 4.0 / 3.0 {
        (((h as f64) * 4.0 / 3.0).round() as u32, h)
    } else {
        (w, h)
    };
    let (cw, ch) = (cw.min(w), ch.min(h));
    ((w - cw) / 2, (h - ch) / 2, cw, ch)
}

/// Where torchvision's CenterCrop starts a `crop` in `total`: `int(round((total − crop) / 2))`,
/// Python's round, which takes a half to the even neighbour (58.5 → 58, 59.5 → 60).
pub fn centre_offset(total: u32, crop: u32) -> u32 {
    let d = total.saturating_sub(crop);
    let k = d / 2;
    k + (d % 2 == 1 && k % 2 == 1) as u32
}

/// The image at `path` transformed to `side`×`side`, normalised, CHW, into `out`.
pub fn load_image(
    path: &Path,
    t: Transform,
    side: usize,
    mean: &[f32],
    std: &[f32],
    out: &mut [f32],
) -> Result<()> {
    let img = image::ImageReader::open(path)
        .and_then(|r| r.with_guessed_format())
        .map_err(|e| Error::Invalid(format!("cannot read {}: {e}", path.display())))?
        .decode()
        .map_err(|e| {
            Error::Invalid(format!(
                "{} does not decode ({e}): replace or remove the file (ImageNet as distributed decodes entirely)",
                path.display()
            ))
        })?
        .to_rgb8();
    let (w, h) = img.dimensions();
    let s = side as u32;
    let rgb = match t {
        Transform::Train { seed } => {
            let mut rng = SplitMix64::new(seed as u64 ^ 0x1A6E_0000_0000_0000);
            let (x, y, cw, ch) = random_resized_crop(w, h, &mut rng);
            let crop = image::imageops::crop_imm(&img, x, y, cw, ch).to_image();
            let mut r = image::imageops::resize(&crop, s, s, FilterType::Triangle);
            if rng.next_u64() >> 63 == 1 {
                image::imageops::flip_horizontal_in_place(&mut r);
            }
            r
        }
        Transform::Eval => {
            // torchvision: Resize(side·256/224) on the shorter side, then CenterCrop(side).
            let short = ((side * 256) as f64 / 224.0).round() as u32;
            let (rw, rh) = if w <= h {
                (short, ((h as u64 * short as u64) / w as u64) as u32)
            } else {
                (((w as u64 * short as u64) / h as u64) as u32, short)
            };
            let r = image::imageops::resize(&img, rw.max(s), rh.max(s), FilterType::Triangle);
            let (x, y) = (centre_offset(r.width(), s), centre_offset(r.height(), s));
            image::imageops::crop_imm(&r, x, y, s, s).to_image()
        }
    };
    let plane = side * side;
    for (i, p) in rgb.pixels().enumerate() {
        for c in 0..3 {
            out[c * plane + i] = (p[c] as f32 / 255.0 - mean[c]) / std[c];
        }
    }
    Ok(())
}

/// A batch of images decoded on `threads` threads: `[n, 3, side, side]` floats.
pub fn load_batch(
    files: &[&Path],
    transforms: &[Transform],
    side: usize,
    mean: &[f32],
    std: &[f32],
    threads: usize,
) -> Result<Vec<f32>> {
    let len = 3 * side * side;
    let mut out = crate::tensor::try_zeroed_host(files.len() * len)?;
    let per = files.len().div_ceil(threads.max(1)).max(1);
    std::thread::scope(|scope| {
        let jobs: Vec<_> = out
            .chunks_mut(per * len)
            .zip(files.chunks(per).zip(transforms.chunks(per)))
            .map(|(o, (f, t))| {
                scope.spawn(move || {
                    for ((img, path), tr) in o.chunks_mut(len).zip(f).zip(t) {
                        load_image(path, *tr, side, mean, std, img)?;
                    }
                    Ok::<(), Error>(())
                })
            })
            .collect();
        jobs.into_iter().try_for_each(|j| {
            j.join().map_err(|_| {
                Error::Invalid(
                    "decoding a batch of images panicked (a malformed image file?)".into(),
                )
            })?
        })
    })?;
    Ok(out)
}
