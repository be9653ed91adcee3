//! Datasets: CIFAR-10 and CIFAR-100 (official binary layout), Tiny-ImageNet-200 (official
//! folder layout, JPEG) and Fashion-MNIST (IDX, raw or gzip), loaded into an [`ImageSet`] of u8
//! NCHW pixels; ImageNet (ILSVRC-2012 folder layout), read from disk batch by batch
//! ([`imagenet`]); the seeded per-epoch [`batch_plan`] for the device-side augmentation kernel;
//! and [`fetch`], which downloads and verifies the official archives.

mod cifar;
mod fetch;
mod idx;
mod image_set;
pub mod imagenet;
mod npy;
mod tiny;

pub use cifar::{
    read_cifar100_files, read_cifar10_files, read_cifar_records, CifarSet, CIFAR100_CLASSES,
    CIFAR100_MEAN, CIFAR100_STD, CIFAR10_CLASSES, CIFAR10_MEAN, CIFAR10_STD,
};
pub use fetch::{fetch, md5, md5_file, md5_hex, remote_files, Md5, RemoteFile};
pub use idx::{idx_pair_from_bytes, read_idx, read_idx_pair, IdxArray, FASHION_MNIST_CLASSES};
pub use image_set::{batch_plan, shuffled, ImageSet, Selection, SplitMix64};
pub use npy::{read_npy, write_npy, NpyElement};
pub use tiny::{read_tiny_imagenet, TINY_MEAN, TINY_STD};

use crate::error::{Error, Result};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Where `autorep data fetch` downloads to, and where commands look for a dataset's folder
/// when no `--data` is given.
pub const DEFAULT_DIR: &str = "data";

pub const FASHION_MNIST_MEAN: [f32; 1] = [0.2860];
pub const FASHION_MNIST_STD: [f32; 1] = [0.3530];

/// Which part of a dataset. Tiny-ImageNet's `Test` is its labelled `val` folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    Train,
    Test,
}

impl Split {
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "test",
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Split {
    type Err = Error;
    fn from_str(s: &str) -> Result<Split> {
        match s.to_ascii_lowercase().as_str() {
            "train" => Ok(Split::Train),
            "test" | "val" => Ok(Split::Test),
            _ => Err(Error::Invalid(format!(
                "unknown split '{s}': expected train or test"
            ))),
        }
    }
}

/// The datasets this crate can load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dataset {
    Cifar10,
    Cifar100,
    TinyImageNet,
    FashionMnist,
    /// ILSVRC-2012, read from disk batch by batch (never resident).
    ImageNet,
}

impl Dataset {
    pub const ALL: [Dataset; 5] = [
        Dataset::Cifar10,
        Dataset::Cifar100,
        Dataset::TinyImageNet,
        Dataset::FashionMnist,
        Dataset::ImageNet,
    ];

    /// Parse a dataset name: cifar10, cifar100, tiny-imagenet, fashion-mnist, imagenet (case,
    /// `-` and `_` do not matter).
    pub fn from_name(name: &str) -> Result<Dataset> {
        let key: String = name
            .chars()
            .filter(|c| !matches!(c, '-' | '_'))
            .collect::<String>()
            .to_ascii_lowercase();
        match key.as_str() {
            "cifar10" => Ok(Dataset::Cifar10),
            "cifar100" => Ok(Dataset::Cifar100),
            "tinyimagenet" | "tinyimagenet200" => Ok(Dataset::TinyImageNet),
            "fashionmnist" => Ok(Dataset::FashionMnist),
            "imagenet" | "imagenet1k" | "ilsvrc2012" => Ok(Dataset::ImageNet),
            _ => Err(Error::Invalid(format!(
                "unknown dataset '{name}': expected one of {}",
                Dataset::ALL.map(|d| d.name()).join(", ")
            ))),
        }
    }

    /// The canonical name (what [`Dataset::from_name`] and the CLI take).
    pub fn name(self) -> &'static str {
        match self {
            Dataset::Cifar10 => "cifar10",
            Dataset::Cifar100 => "cifar100",
            Dataset::TinyImageNet => "tiny-imagenet",
            Dataset::FashionMnist => "fashion-mnist",
            Dataset::ImageNet => "imagenet",
        }
    }

    /// The folder the official archive extracts to (what `--data` should point at).
    pub fn folder(self) -> &'static str {
        match self {
            Dataset::Cifar10 => "cifar-10-batches-bin",
            Dataset::Cifar100 => "cifar-100-binary",
            Dataset::TinyImageNet => "tiny-imagenet-200",
            Dataset::FashionMnist => "fashion-mnist",
            Dataset::ImageNet => "imagenet",
        }
    }

    /// Number of classes of the official dataset (a Tiny-ImageNet tree may hold fewer: the
    /// loader takes them from its wnids.txt).
    pub fn classes(self) -> usize {
        match self {
            Dataset::Cifar10 | Dataset::FashionMnist => 10,
            Dataset::Cifar100 => 100,
            Dataset::TinyImageNet => 200,
            Dataset::ImageNet => 1000,
        }
    }

    /// Image side: images are `input_size() x input_size()`.
    pub fn input_size(self) -> usize {
        match self {
            Dataset::Cifar10 | Dataset::Cifar100 => 32,
            Dataset::TinyImageNet => 64,
            Dataset::FashionMnist => 28,
            Dataset::ImageNet => 224,
        }
    }

    pub fn channels(self) -> usize {
        match self {
            Dataset::FashionMnist => 1,
            _ => 3,
        }
    }

    /// Per-channel normalisation mean (notes §3.1; Fashion-MNIST: 0.2860).
    pub fn mean(self) -> &'static [f32] {
        match self {
            Dataset::Cifar10 => &CIFAR10_MEAN,
            Dataset::Cifar100 => &CIFAR100_MEAN,
            Dataset::TinyImageNet => &TINY_MEAN,
            Dataset::FashionMnist => &FASHION_MNIST_MEAN,
            Dataset::ImageNet => &imagenet::IMAGENET_MEAN,
        }
    }

    /// Per-channel normalisation std (notes §3.1; Fashion-MNIST: 0.3530).
    pub fn std(self) -> &'static [f32] {
        match self {
            Dataset::Cifar10 => &CIFAR10_STD,
            Dataset::Cifar100 => &CIFAR100_STD,
            Dataset::TinyImageNet => &TINY_STD,
            Dataset::FashionMnist => &FASHION_MNIST_STD,
            Dataset::ImageNet => &imagenet::IMAGENET_STD,
        }
    }

    /// A name for how class ids become labels, recorded in checkpoints where the numbering
    /// changed: Tiny-ImageNet's labels follow the sorted class ids (torchvision's order) since
    /// 2026-11-28, and followed `wnids.txt` before, so an older checkpoint's classifier rows
    /// belong to other classes.
    pub fn class_order(self) -> Option<&'static str> {
        (self == Dataset::TinyImageNet).then_some("sorted-ids")
    }

    /// Training-time augmentation of a resident set, as the official loaders: a random crop
    /// after this much zero padding and a horizontal flip (CIFAR and Tiny-ImageNet: 4), or
    /// none (Fashion-MNIST: the official loader only normalises). ImageNet, read from files,
    /// crops with RandomResizedCrop instead.
    pub fn crop_flip(self) -> Option<usize> {
        match self {
            Dataset::FashionMnist | Dataset::ImageNet => None,
            Dataset::Cifar10 | Dataset::Cifar100 | Dataset::TinyImageNet => Some(4),
        }
    }

    /// Load one split from `dir`: the extracted official folder, or a folder containing it.
    pub fn load(self, dir: &Path, split: Split) -> Result<ImageSet> {
        let set = match self {
            Dataset::Cifar10 => cifar::load_cifar10(dir, split),
            Dataset::Cifar100 => cifar::load_cifar100(dir, split),
            Dataset::TinyImageNet => tiny::load(dir, split),
            Dataset::FashionMnist => idx::load_fashion_mnist(dir, split),
            Dataset::ImageNet => Err(Error::Invalid(
                "ImageNet does not fit in memory: it is read batch by batch (train::load_data)"
                    .into(),
            )),
        }?;
        // An empty split would train on nothing and report 0 % as an accuracy.
        if set.is_empty() {
            return Err(Error::Invalid(format!(
                "the {} split of {} in {} holds no images: {}",
                split.name(),
                self.name(),
                dir.display(),
                self.how_to_get()
            )));
        }
        Ok(set)
    }

    /// How to get the data, for "not found" messages.
    pub(crate) fn how_to_get(self) -> String {
        if self == Dataset::ImageNet {
            return "ImageNet cannot be downloaded without an account: get ILSVRC-2012 from image-net.org (or Kaggle's imagenet-object-localization-challenge) and pass --data pointing at the folder holding train/ and val/".into();
        }
        let extra = match self {
            Dataset::FashionMnist => {
                " (Debian's dataset-fashion-mnist package installs them in /usr/share/datasets/fashion-mnist; the 4,000/1,000-image subset `autorep demo` trains on is --data assets/fashion-mnist-small in the repository)"
            }
            _ => "",
        };
        format!(
            "run `autorep data fetch {} --data DIR` on a machine with internet, or pass --data pointing at the extracted {} folder{extra}",
            self.name(),
            self.folder()
        )
    }

    /// `dir` itself when it holds `probe`, else `dir/<folder>` when that does; otherwise a
    /// "not found" error naming the missing path and how to get the data.
    pub(crate) fn locate(self, dir: &Path, probes: &[&str]) -> Result<PathBuf> {
        let has = |d: &Path| probes.iter().any(|p| d.join(p).exists());
        if has(dir) {
            return Ok(dir.to_path_buf());
        }
        let nested = dir.join(self.folder());
        if has(&nested) {
            return Ok(nested);
        }
        let what = if dir.is_dir() {
            format!("{} not found", dir.join(probes[0]).display())
        } else if dir.exists() {
            format!(
                "{} data directory {} is not a folder",
                self.name(),
                dir.display()
            )
        } else {
            format!("{} data directory {} not found", self.name(), dir.display())
        };
        Err(Error::Invalid(format!("{what}: {}", self.how_to_get())))
    }
}

impl fmt::Display for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Dataset {
    type Err = Error;
    fn from_str(s: &str) -> Result<Dataset> {
        Dataset::from_name(s)
    }
}

/// Read a whole file; a missing file names the path and `hint`.
pub(crate) fn read_file(path: &Path, hint: &str) -> Result<Vec<u8>> {
    crate::files::read(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::Invalid(format!("{} not found: {hint}", path.display()))
        } else {
            Error::Invalid(format!("cannot read {}: {e}", path.display()))
        }
    })
}

/// Non-empty trimmed lines of an optional text file of class names; `None` when absent. The
/// count must be `classes`.
pub(crate) fn read_class_names(path: &Path, classes: usize) -> Result<Option<Vec<String>>> {
    let text = match crate::files::read(path) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::Invalid(format!(
                "cannot read {}: {e}",
                path.display()
            )))
        }
    };
    let names: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    if names.len() != classes {
        return Err(Error::Invalid(format!(
            "{}: {} class names, expected {classes}",
            path.display(),
            names.len()
        )));
    }
    Ok(Some(names))
}
