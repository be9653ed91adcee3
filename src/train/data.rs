//! Datasets as the stages use them: both splits resident on the device, with what the models
//! need to know (channels, input size, classes).

use super::DeviceSet;
use crate::data::{Dataset, Split};
use crate::{Device, Error, Result};
use std::path::{Path, PathBuf};

/// A loaded dataset with what the models need to know about it.
pub struct Data {
    pub name: String,
    pub train: DeviceSet,
    pub test: DeviceSet,
    pub channels: usize,
    pub input: usize,
    pub classes: usize,
    /// The folder and limits it was loaded with, when it came from a folder: checkpoints
    /// record them, so that `--resume` reads the same data without being told again.
    pub source: Option<DataSource>,
}

/// Whether two folder names lead to the same folder (compared as written where either
/// cannot be resolved).
pub fn same_folder(a: &Path, b: &Path) -> bool {
    crate::files::same_file(a, b) || a == b
}

/// The folder `dir` names, absolute, so that a run resumed from another working folder reads
/// the same one (as given when it cannot be resolved).
fn absolute(dir: &Path) -> PathBuf {
    std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf())
}

/// Where a run's data came from: its folder (absolute) and the limits.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSource {
    pub dir: PathBuf,
    pub limit_train: Option<usize>,
    pub limit_test: Option<usize>,
}

impl Data {
    /// The line a run prints first: device, dataset and its sizes (and the model, if given).
    pub fn banner(&self, device: &Device, model: Option<&str>) -> String {
        let model = model.map(|m| format!("; model {m}")).unwrap_or_default();
        format!(
            "device: {}; {} ({} train, {} test images){model}",
            device.describe(),
            self.name,
            self.train.len(),
            self.test.len()
        )
    }

    /// [`Data::banner`] and the folder the data came from, with a second line when that
    /// folder's accuracies need a caveat ([`data_dir_caveat`]).
    pub fn banner_from(&self, device: &Device, model: Option<&str>, dir: &Path) -> String {
        let mut s = format!(
            "{}; data from {}",
            self.banner(device, model),
            dir.display()
        );
        if let Some(caveat) = data_dir_caveat(dir) {
            s += &format!("\nnote: {} is {caveat}", dir.display());
        }
        s
    }

    /// Train and test splits of `dataset`, placed on `device`.
    pub fn new(
        device: &Device,
        dataset: Dataset,
        train: crate::data::ImageSet,
        test: crate::data::ImageSet,
    ) -> Result<Data> {
        let (mean, std) = (dataset.mean(), dataset.std());
        let (channels, input, classes) = (train.channels, train.height, train.classes);
        Ok(Data {
            name: dataset.name().to_string(),
            train: DeviceSet::new(device, train, mean, std, dataset.crop_flip())?,
            test: DeviceSet::new(device, test, mean, std, dataset.crop_flip())?,
            channels,
            input,
            classes,
            source: None,
        })
    }
}

/// The workplace's local CIFAR-10: every image, but each decoded from a quality-75 JPEG.
const SHARED_CIFAR10: &str = "../shared/data/cifar-10-jpeg75-bin";

/// The default dataset folder: `../shared/data/cifar-10-jpeg75-bin` for cifar10 when it
/// exists, else where `autorep data fetch` extracts the dataset by default
/// (`data/<its folder>`: `data/cifar-10-batches-bin`, `data/fashion-mnist`, …).
pub fn default_data_dir(dataset: &str) -> PathBuf {
    let shared = PathBuf::from(SHARED_CIFAR10);
    match Dataset::from_name(dataset) {
        Ok(Dataset::Cifar10) if shared.is_dir() => shared,
        Ok(d) => Path::new(crate::data::DEFAULT_DIR).join(d.folder()),
        // An unknown name fails where the dataset is read, naming the known ones.
        Err(_) => Path::new(crate::data::DEFAULT_DIR).join(dataset),
    }
}

/// What a run's banner should say about `dir`: the default CIFAR-10 copy's pixels are lossy,
/// so its accuracies compare with each other, not with published CIFAR-10 figures.
fn data_dir_caveat(dir: &Path) -> Option<&'static str> {
    same_folder(dir, Path::new(SHARED_CIFAR10)).then_some(
        "a JPEG-75 copy of CIFAR-10: accuracies compare with each other, not with published CIFAR-10 figures (pass --data for the official files)",
    )
}

/// Load a dataset by name from `dir` (train and test splits) onto `device`, keeping only the
/// first `limit_train` / `limit_test` images when given.
pub fn load_data(
    name: &str,
    dir: &Path,
    limit_train: Option<usize>,
    limit_test: Option<usize>,
    device: &Device,
) -> Result<Data> {
    let side = Dataset::from_name(name)?.input_size();
    load_data_sized(name, dir, side, limit_train, limit_test, device)
}

/// [`load_data`] with ImageNet's images at `side`×`side` instead of 224×224 (the other
/// datasets have one size: asking for another is an error).
pub fn load_data_sized(
    name: &str,
    dir: &Path,
    side: usize,
    limit_train: Option<usize>,
    limit_test: Option<usize>,
    device: &Device,
) -> Result<Data> {
    let dataset = Dataset::from_name(name)?;
    check_limits(limit_train, limit_test)?;
    let mut data = match dataset {
        Dataset::ImageNet => load_imagenet(dir, side, limit_train, limit_test, device)?,
        _ if side == dataset.input_size() => {
            load_resident(dataset, dir, limit_train, limit_test, device)?
        }
        _ => {
            return Err(Error::Invalid(format!(
                "{} images are {}x{}: an image size of {side} applies to imagenet only",
                dataset.name(),
                dataset.input_size(),
                dataset.input_size()
            )))
        }
    };
    data.source = Some(DataSource {
        dir: absolute(dir),
        limit_train,
        limit_test,
    });
    Ok(data)
}

/// `--limit-test` keeps at least one image, `--limit-train` two: a training batch of one
/// image is dropped (batch norm needs more than one sample), so one image would train nothing.
pub fn check_limits(limit_train: Option<usize>, limit_test: Option<usize>) -> Result<()> {
    for (n, least, what) in [
        (limit_train, 2, "limit_train (--limit-train)"),
        (limit_test, 1, "limit_test (--limit-test)"),
    ] {
        if n.is_some_and(|n| n < least) {
            let why = if least == 2 {
                " (batch norm needs two images in a training batch)"
            } else {
                ""
            };
            return Err(Error::Invalid(format!(
                "{what} must be at least {least}{why}"
            )));
        }
    }
    Ok(())
}

/// The test split alone, for evaluation: the training split is neither read nor needed on
/// disk (its place holds the first test image). ImageNet, read lazily, loads as usual.
pub fn load_test_data(
    name: &str,
    dir: &Path,
    side: usize,
    limit_test: Option<usize>,
    device: &Device,
) -> Result<Data> {
    let dataset = Dataset::from_name(name)?;
    if dataset == Dataset::ImageNet || side != dataset.input_size() {
        return load_data_sized(name, dir, side, Some(2), limit_test, device);
    }
    check_limits(None, limit_test)?;
    let mut test = dataset.load(dir, Split::Test)?;
    if let Some(n) = limit_test {
        test = test.subset(..n.min(test.len()));
    }
    let train = test.subset(..1.min(test.len()));
    Data::new(device, dataset, train, test)
}

fn load_resident(
    dataset: Dataset,
    dir: &Path,
    limit_train: Option<usize>,
    limit_test: Option<usize>,
    device: &Device,
) -> Result<Data> {
    let mut train = dataset.load(dir, Split::Train)?;
    let mut test = dataset.load(dir, Split::Test)?;
    if let Some(n) = limit_train {
        train = train.subset(..n.min(train.len()));
    }
    if let Some(n) = limit_test {
        test = test.subset(..n.min(test.len()));
    }
    Data::new(device, dataset, train, test)
}

/// ImageNet from the folder `dir` (see [`crate::data::imagenet`]), read batch by batch at
/// `side`×`side`; a limit keeps that many images spread evenly over the classes.
pub fn load_imagenet(
    dir: &Path,
    side: usize,
    limit_train: Option<usize>,
    limit_test: Option<usize>,
    device: &Device,
) -> Result<Data> {
    use crate::data::imagenet::scan;
    if !(8..=1024).contains(&side) {
        return Err(Error::Invalid(format!(
            "ImageNet image size {side}: choose 8 to 1024 (224 is the standard)"
        )));
    }
    let (mut train, mut test) = (scan(dir, Split::Train)?, scan(dir, Split::Test)?);
    if let Some(n) = limit_train {
        train = train.spread(n);
    }
    if let Some(n) = limit_test {
        test = test.spread(n);
    }
    // The folders list the training images class by class; in a fixed random order instead,
    // the batches taken in order (DaPa's calibration, BN re-estimation) mix the classes.
    let order = crate::data::shuffled(0, 0, train.len());
    train = train.reorder(&order);
    let d = Dataset::ImageNet;
    Ok(Data {
        name: d.name().to_string(),
        train: DeviceSet::from_files(device, &train, side, d.mean(), d.std()),
        test: DeviceSet::from_files(device, &test, side, d.mean(), d.std()),
        channels: 3,
        input: side,
        classes: train.classes.len(),
        source: None,
    })
}

impl Data {
    /// Refuse a checkpoint of another dataset or input shape, naming both values.
    pub fn check(&self, meta: &super::checkpoint::Meta, what: &Path) -> Result<()> {
        let pairs = [
            ("dataset", meta.dataset.clone(), self.name.clone()),
            (
                "channels",
                meta.channels.to_string(),
                self.channels.to_string(),
            ),
            ("input size", meta.input.to_string(), self.input.to_string()),
            (
                "classes",
                meta.classes.to_string(),
                self.classes.to_string(),
            ),
        ];
        for (key, theirs, ours) in pairs {
            if theirs != ours {
                return Err(Error::Invalid(format!(
                    "{} was trained with {key} {theirs}, but this run has {key} {ours}{}",
                    what.display(),
                    if key == "dataset" {
                        format!(": pass --dataset {theirs}")
                    } else {
                        String::new()
                    }
                )));
            }
        }
        let order = Dataset::from_name(&self.name)
            .ok()
            .and_then(|d| d.class_order());
        if order.is_some() && meta.class_order.as_deref() != order {
            return Err(Error::Invalid(format!(
                "{} numbers the {} classes in wnids.txt order, as this program did before 2026-11-28; labels now follow the sorted class ids (torchvision's order), so its classifier does not match: retrain it, or import the PyTorch weights again",
                what.display(),
                self.name
            )));
        }
        Ok(())
    }
}
