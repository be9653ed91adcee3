//! CIFAR-10 and CIFAR-100 in the official binary layout. A CIFAR-10 record is 1 label byte and
//! 3,072 pixel bytes (1,024 R, then G, then B, each row-major 32x32); a CIFAR-100 record is a
//! coarse label byte, a fine label byte, then the same 3,072 pixel bytes.

use super::{read_class_names, read_file, Dataset, ImageSet, Split};
use crate::error::{Error, Result};
use std::path::Path;

pub const CIFAR10_MEAN: [f32; 3] = [0.4914, 0.4822, 0.4465];
pub const CIFAR10_STD: [f32; 3] = [0.2023, 0.1994, 0.2010];
pub const CIFAR100_MEAN: [f32; 3] = [0.5071, 0.4867, 0.4408];
pub const CIFAR100_STD: [f32; 3] = [0.2675, 0.2565, 0.2761];

/// CIFAR-10's class names (batches.meta.txt), used when that file is absent.
pub const CIFAR10_CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// CIFAR-100's fine class names (fine_label_names.txt, alphabetical), used when absent.
pub const CIFAR100_CLASSES: [&str; 100] = [
    "apple",
    "aquarium_fish",
    "baby",
    "bear",
    "beaver",
    "bed",
    "bee",
    "beetle",
    "bicycle",
    "bottle",
    "bowl",
    "boy",
    "bridge",
    "bus",
    "butterfly",
    "camel",
    "can",
    "castle",
    "caterpillar",
    "cattle",
    "chair",
    "chimpanzee",
    "clock",
    "cloud",
    "cockroach",
    "couch",
    "crab",
    "crocodile",
    "cup",
    "dinosaur",
    "dolphin",
    "elephant",
    "flatfish",
    "forest",
    "fox",
    "girl",
    "hamster",
    "house",
    "kangaroo",
    "keyboard",
    "lamp",
    "lawn_mower",
    "leopard",
    "lion",
    "lizard",
    "lobster",
    "man",
    "maple_tree",
    "motorcycle",
    "mountain",
    "mouse",
    "mushroom",
    "oak_tree",
    "orange",
    "orchid",
    "otter",
    "palm_tree",
    "pear",
    "pickup_truck",
    "pine_tree",
    "plain",
    "plate",
    "poppy",
    "porcupine",
    "possum",
    "rabbit",
    "raccoon",
    "ray",
    "road",
    "rocket",
    "rose",
    "sea",
    "seal",
    "shark",
    "shrew",
    "skunk",
    "skyscraper",
    "snail",
    "snake",
    "spider",
    "squirrel",
    "streetcar",
    "sunflower",
    "sweet_pepper",
    "table",
    "tank",
    "telephone",
    "television",
    "tiger",
    "tractor",
    "train",
    "trout",
    "tulip",
    "turtle",
    "wardrobe",
    "whale",
    "willow_tree",
    "wolf",
    "woman",
    "worm",
];

const SIDE: usize = 32;
const PIXELS: usize = 3 * SIDE * SIDE;

/// The CIFAR-10 record set of the first loader: u8 CHW images and labels only. Kept for the
/// callers that build it directly; new code uses [`ImageSet`] (convert with `.into()`).
#[derive(Debug, Clone, Default)]
pub struct CifarSet {
    pub images: Vec<u8>,
    pub labels: Vec<u32>,
}

impl CifarSet {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Images `idx` normalised per channel into NCHW f32.
    pub fn normalized(&self, idx: &[usize], mean: [f32; 3], std: [f32; 3]) -> Vec<f32> {
        let mut out = Vec::with_capacity(idx.len() * PIXELS);
        for &i in idx {
            let img = &self.images[i * PIXELS..(i + 1) * PIXELS];
            for (c, plane) in img.chunks(SIDE * SIDE).enumerate() {
                out.extend(plane.iter().map(|&v| (v as f32 / 255.0 - mean[c]) / std[c]));
            }
        }
        out
    }
}

impl From<CifarSet> for ImageSet {
    /// A CIFAR-10 set (3x32x32, 10 classes, the official names).
    fn from(set: CifarSet) -> ImageSet {
        ImageSet {
            images: set.images,
            labels: set.labels,
            channels: 3,
            height: SIDE,
            width: SIDE,
            classes: 10,
            class_names: CIFAR10_CLASSES.map(String::from).to_vec(),
        }
    }
}

impl From<ImageSet> for CifarSet {
    /// Drops the metadata; meant for 3x32x32 sets.
    fn from(set: ImageSet) -> CifarSet {
        CifarSet {
            images: set.images,
            labels: set.labels,
        }
    }
}

/// Every record of the official-layout CIFAR-10 files `paths`, in order (any record count).
pub fn read_cifar_records(paths: &[&Path]) -> Result<CifarSet> {
    read_cifar10_files(paths).map(CifarSet::from)
}

/// Every record of the CIFAR-10 binary files `paths`, in order, as an [`ImageSet`].
pub fn read_cifar10_files(paths: &[&Path]) -> Result<ImageSet> {
    read_records(
        paths,
        Dataset::Cifar10,
        CIFAR10_CLASSES.map(String::from).to_vec(),
    )
}

/// Every record of the CIFAR-100 binary files `paths` (fine labels, 100 classes).
pub fn read_cifar100_files(paths: &[&Path]) -> Result<ImageSet> {
    read_records(
        paths,
        Dataset::Cifar100,
        CIFAR100_CLASSES.map(String::from).to_vec(),
    )
}

fn read_records(paths: &[&Path], dataset: Dataset, class_names: Vec<String>) -> Result<ImageSet> {
    let labels_per_record = if dataset == Dataset::Cifar100 { 2 } else { 1 };
    let record = labels_per_record + PIXELS;
    let classes = dataset.classes();
    let mut set = ImageSet {
        channels: 3,
        height: SIDE,
        width: SIDE,
        classes,
        class_names,
        ..Default::default()
    };
    let hint = dataset.how_to_get();
    for path in paths {
        let bytes = read_file(path, &hint)?;
        if bytes.is_empty() {
            return Err(Error::Invalid(format!(
                "{}: empty file, expected {record}-byte {} records",
                path.display(),
                dataset.name()
            )));
        }
        if bytes.len() % record != 0 {
            return Err(Error::Invalid(format!(
                "{}: {} bytes is not a whole number of {record}-byte records (truncated?)",
                path.display(),
                bytes.len()
            )));
        }
        let n = bytes.len() / record;
        set.images.reserve(n * PIXELS);
        set.labels.reserve(n);
        for (r, rec) in bytes.chunks_exact(record).enumerate() {
            if labels_per_record == 2 && rec[0] >= 20 {
                return Err(Error::Invalid(format!(
                    "{}: coarse label {} in record {r} is outside 0..19",
                    path.display(),
                    rec[0]
                )));
            }
            let label = rec[labels_per_record - 1] as usize;
            if label >= classes {
                return Err(Error::Invalid(format!(
                    "{}: label {label} in record {r} is outside 0..{}",
                    path.display(),
                    classes - 1
                )));
            }
            set.labels.push(label as u32);
            set.images.extend_from_slice(&rec[labels_per_record..]);
        }
    }
    Ok(set)
}

/// CIFAR-10 from the extracted `cifar-10-batches-bin` folder (or a folder holding it):
/// data_batch_1..5.bin (train) or test_batch.bin (test), names from batches.meta.txt if present.
pub(crate) fn load_cifar10(dir: &Path, split: Split) -> Result<ImageSet> {
    let files: Vec<String> = match split {
        Split::Train => (1..=5).map(|i| format!("data_batch_{i}.bin")).collect(),
        Split::Test => vec!["test_batch.bin".into()],
    };
    let dir = Dataset::Cifar10.locate(dir, &[&files[0]])?;
    let paths: Vec<_> = files.iter().map(|f| dir.join(f)).collect();
    let mut set = read_cifar10_files(&paths.iter().map(|p| p.as_path()).collect::<Vec<_>>())?;
    if let Some(names) = read_class_names(&dir.join("batches.meta.txt"), 10)? {
        set.class_names = names;
    }
    Ok(set)
}

/// CIFAR-100 from the extracted `cifar-100-binary` folder (or a folder holding it): train.bin or
/// test.bin, fine labels, names from fine_label_names.txt if present.
pub(crate) fn load_cifar100(dir: &Path, split: Split) -> Result<ImageSet> {
    let file = match split {
        Split::Train => "train.bin",
        Split::Test => "test.bin",
    };
    let dir = Dataset::Cifar100.locate(dir, &[file])?;
    let mut set = read_cifar100_files(&[&dir.join(file)])?;
    if let Some(names) = read_class_names(&dir.join("fine_label_names.txt"), 100)? {
        set.class_names = names;
    }
    Ok(set)
}
