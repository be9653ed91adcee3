//! Tiny-ImageNet-200 in its official folder layout: `wnids.txt` (one class id per line),
//! `train/<wnid>/images/*.JPEG`, and `val/images/*.JPEG` labelled by `val/val_annotations.txt`
//! (file, wnid, bounding box; tab-separated). A `val` folder reorganised into class folders
//! (`val/<wnid>/[images/]*.JPEG`, as the official AutoReP download script leaves it, with the
//! annotation file still beside them) is read too. Every image must decode to 64x64
//! (greyscale ones become RGB).
//!
//! Labels number the class ids in sorted order, as torchvision's `ImageFolder` numbers the
//! class folders the official code trains from (`wnids.txt` itself is not sorted), so a
//! PyTorch Tiny-ImageNet classifier imported here keeps its classes. The training images are
//! kept in a fixed random order rather than class by class, so the batches taken in order
//! (DaPa's calibration, BN re-estimation) and a `--limit-train` subset mix the classes; so
//! are the images of a `val` in class folders, for `--limit-test`.

use super::{Dataset, ImageSet, Split};
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub const TINY_MEAN: [f32; 3] = [0.480, 0.448, 0.398];
pub const TINY_STD: [f32; 3] = [0.277, 0.269, 0.282];

const SIDE: usize = 64;
const PIXELS: usize = 3 * SIDE * SIDE;

/// Load one split of a Tiny-ImageNet tree rooted at `root` (the folder holding wnids.txt).
/// The class count is the number of ids in wnids.txt; class names are the ids.
pub fn read_tiny_imagenet(root: &Path, split: Split) -> Result<ImageSet> {
    let hint = Dataset::TinyImageNet.how_to_get();
    let wnids_path = root.join("wnids.txt");
    let text = super::read_file(&wnids_path, &hint)?;
    let text = String::from_utf8_lossy(&text);
    let mut wnids: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    wnids.sort();
    if wnids.is_empty() {
        return Err(Error::Invalid(format!(
            "{}: no class ids",
            wnids_path.display()
        )));
    }
    let mut index = HashMap::new();
    for (i, w) in wnids.iter().enumerate() {
        if index.insert(w.as_str(), i as u32).is_some() {
            return Err(Error::Invalid(format!(
                "{}: class id {w} listed twice",
                wnids_path.display()
            )));
        }
    }
    let mixed = |files: Vec<(PathBuf, u32)>| -> Vec<(PathBuf, u32)> {
        super::shuffled(0, 0, files.len())
            .into_iter()
            .map(|i| files[i].clone())
            .collect()
    };
    let files = match split {
        Split::Train => mixed(class_folders(&root.join("train"), &wnids, &hint)?),
        Split::Test => {
            let val = root.join("val");
            if val.join(&wnids[0]).is_dir() {
                mixed(class_folders(&val, &wnids, &hint)?)
            } else {
                // The annotation file lists the images in an order that mixes the classes.
                annotated(&val, &val.join("val_annotations.txt"), &index, &hint)?
            }
        }
    };
    let images = decode_all(&files)?;
    Ok(ImageSet {
        images,
        labels: files.iter().map(|f| f.1).collect(),
        channels: 3,
        height: SIDE,
        width: SIDE,
        classes: wnids.len(),
        class_names: wnids,
    })
}

/// Tiny-ImageNet from `dir` (the extracted tiny-imagenet-200 folder, or a folder holding it).
pub(crate) fn load(dir: &Path, split: Split) -> Result<ImageSet> {
    let root = Dataset::TinyImageNet.locate(dir, &["wnids.txt"])?;
    read_tiny_imagenet(&root, split)
}

/// A JPEG or PNG file by its extension (ImageNet's folders use the same test).
pub(super) fn is_image(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "jpeg" | "jpg" | "png"))
}

/// `dir/<wnid>/images/*` (or `dir/<wnid>/*`) for every class, each folder sorted by name.
fn class_folders(dir: &Path, wnids: &[String], hint: &str) -> Result<Vec<(PathBuf, u32)>> {
    let mut out = Vec::new();
    for (label, w) in wnids.iter().enumerate() {
        let class = dir.join(w);
        let images = class.join("images");
        let folder = if images.is_dir() { images } else { class };
        let entries = std::fs::read_dir(&folder).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::Invalid(format!("{} not found: {hint}", folder.display()))
            } else {
                Error::Invalid(format!("cannot list {}: {e}", folder.display()))
            }
        })?;
        let mut files = Vec::new();
        for e in entries {
            let p = e
                .map_err(|e| Error::Invalid(format!("cannot list {}: {e}", folder.display())))?
                .path();
            if is_image(&p) {
                files.push(p);
            }
        }
        if files.is_empty() {
            return Err(Error::Invalid(format!(
                "{}: no images of class {w}",
                folder.display()
            )));
        }
        files.sort();
        out.extend(files.into_iter().map(|p| (p, label as u32)));
    }
    Ok(out)
}

/// The files of `val/val_annotations.txt` in its order, labelled by their wnid.
fn annotated(
    val: &Path,
    ann: &Path,
    index: &HashMap<&str, u32>,
    hint: &str,
) -> Result<Vec<(PathBuf, u32)>> {
    let text = super::read_file(ann, hint)?;
    let text = String::from_utf8_lossy(&text);
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let mut fields = line.split('\t');
        let (Some(file), Some(wnid)) = (fields.next(), fields.next()) else {
            return Err(Error::Invalid(format!(
                "{}:{}: expected 'file<TAB>wnid<TAB>box', found '{line}'",
                ann.display(),
                n + 1
            )));
        };
        let Some(&label) = index.get(wnid.trim()) else {
            return Err(Error::Invalid(format!(
                "{}:{}: class id '{wnid}' is not in wnids.txt",
                ann.display(),
                n + 1
            )));
        };
        out.push((val.join("images").join(file.trim()), label));
    }
    if out.is_empty() {
        return Err(Error::Invalid(format!("{}: no annotations", ann.display())));
    }
    Ok(out)
}

/// Decode one image file to u8 CHW 3x64x64.
fn decode(path: &Path, out: &mut [u8]) -> Result<()> {
    let bytes = crate::files::read(path)
        .map_err(|e| Error::Invalid(format!("cannot read {}: {e}", path.display())))?;
    let img = image::load_from_memory(&bytes)
        .map_err(|e| Error::Invalid(format!("{}: cannot decode image ({e})", path.display())))?;
    if (img.width() as usize, img.height() as usize) != (SIDE, SIDE) {
        return Err(Error::Invalid(format!(
            "{}: {}x{} image, expected {SIDE}x{SIDE}",
            path.display(),
            img.width(),
            img.height()
        )));
    }
    let rgb = img.to_rgb8();
    let plane = SIDE * SIDE;
    for (k, px) in rgb.as_raw().chunks_exact(3).enumerate() {
        for c in 0..3 {
            out[c * plane + k] = px[c];
        }
    }
    Ok(())
}

/// Decode every file into one u8 NCHW buffer, on all cores.
fn decode_all(files: &[(PathBuf, u32)]) -> Result<Vec<u8>> {
    let mut images = vec![0u8; files.len() * PIXELS];
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 16);
    let per = files.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let jobs: Vec<_> = images
            .chunks_mut(per * PIXELS)
            .zip(files.chunks(per))
            .map(|(buf, fs)| {
                s.spawn(move || -> Result<()> {
                    for (out, (path, _)) in buf.chunks_mut(PIXELS).zip(fs) {
                        decode(path, out)?;
                    }
                    Ok(())
                })
            })
            .collect();
        jobs.into_iter().try_for_each(|j| {
            j.join()
                .unwrap_or_else(|_| Err(Error::Invalid("image decoder thread panicked".into())))
        })
    })?;
    Ok(images)
}
