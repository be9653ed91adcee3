//! ImageNet's folder layout on a small synthetic tree the test writes (JPEGs of several sizes
//! in three classes): both validation layouts, the errors for what is missing or wrong, the
//! transforms, batches with and without prefetching, and efficientnet_b2 trained, replaced,
//! finetuned and evaluated end to end on it.

mod common;

use autorep::data::imagenet::{
    centre_offset, load_batch, random_resized_crop, scan, Transform, IMAGENET_MEAN, IMAGENET_STD,
};
use autorep::data::{Split, SplitMix64};
use autorep::train::config::{FinetuneConfig, ReplaceStageConfig, StageConfig, TrainConfig};
use autorep::train::{eval_checkpoint, load_imagenet, run_stage, Data, Existing, RunOptions};
use autorep::Device;
use std::path::{Path, PathBuf};

const CLASSES: [&str; 3] = ["n01440764", "n01443537", "n01484850"];

/// A JPEG of `w`×`h` whose colour depends on `class` and `i`, with a gradient so crops differ.
fn write_jpeg(path: &Path, w: u32, h: u32, class: usize, i: usize) {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([
            (60 * class as u32 + 3 * x) as u8,
            (40 * i as u32 + 2 * y) as u8,
            ((x * y) % 256) as u8,
        ])
    });
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    img.save(path).unwrap();
}

/// train/<wnid>/*.JPEG (6 per class) and val/ either flat with the solution CSV or in class
/// folders (2 per class).
fn synthetic(name: &str, flat_val: bool) -> PathBuf {
    let root = common::tmp_dir(name);
    let _ = std::fs::remove_dir_all(&root);
    let sizes = [(48, 36), (36, 48), (40, 40), (64, 30), (30, 64), (50, 45)];
    let mut csv = String::from("ImageId,PredictionString\n");
    for (c, wnid) in CLASSES.iter().enumerate() {
        for (i, &(w, h)) in sizes.iter().enumerate() {
            write_jpeg(
                &root.join(format!("train/{wnid}/{wnid}_{i}.JPEG")),
                w,
                h,
                c,
                i,
            );
        }
        for i in 0..2 {
            let id = format!("ILSVRC2012_val_{:08}", c * 2 + i + 1);
            let path = if flat_val {
                csv.push_str(&format!("{id},{wnid} 1 2 30 30\n"));
                root.join(format!("val/{id}.JPEG"))
            } else {
                root.join(format!("val/{wnid}/{id}.JPEG"))
            };
            write_jpeg(&path, 44, 38, c, i + 7);
        }
    }
    if flat_val {
        std::fs::write(root.join("LOC_val_solution.csv"), csv).unwrap();
    }
    root
}

#[test]
fn both_validation_layouts_scan_to_the_same_labels() {
    for flat in [true, false] {
        let root = synthetic(&format!("imagenet-scan-{flat}"), flat);
        let train = scan(&root, Split::Train).unwrap();
        assert_eq!(train.classes, CLASSES);
        assert_eq!(train.len(), 18);
        assert_eq!(train.labels.iter().filter(|&&l| l == 2).count(), 6);
        let val = scan(&root, Split::Test).unwrap();
        assert_eq!(val.len(), 6);
        let mut labels = val.labels.clone();
        labels.sort_unstable();
        assert_eq!(labels, [0, 0, 1, 1, 2, 2], "flat {flat}");
        for (f, &l) in val.files.iter().zip(&val.labels) {
            // Image k of the tree is class (k - 1) / 2, whichever layout holds it.
            let k: usize = f.file_stem().unwrap().to_str().unwrap()[15..]
                .parse()
                .unwrap();
            assert_eq!(l as usize, (k - 1) / 2, "{}", f.display());
        }
        // A spread subset still covers every class.
        let few = train.spread(3);
        assert_eq!(few.labels, [0, 1, 2]);
        let _ = std::fs::remove_dir_all(&root);
    }
}

#[test]
fn missing_folders_unknown_classes_and_corrupt_files_are_named() {
    let root = synthetic("imagenet-errors", true);
    let err = |r: autorep::Result<autorep::data::imagenet::ImageFolder>| r.unwrap_err().to_string();
    let missing = err(scan(&root.join("nowhere"), Split::Train));
    assert!(missing.contains("has no train/"), "{missing}");
    // A class in the solution file that train/ lacks.
    let csv = root.join("LOC_val_solution.csv");
    let text = std::fs::read_to_string(&csv).unwrap();
    std::fs::write(&csv, text.replace("n01484850 1", "n09999999 1")).unwrap();
    let unknown = err(scan(&root, Split::Test));
    assert!(
        unknown.contains("class 'n09999999'") && unknown.contains("not among"),
        "{unknown}"
    );
    // No solution file for a flat val/.
    std::fs::remove_file(&csv).unwrap();
    let no_csv = err(scan(&root, Split::Test));
    assert!(no_csv.contains("LOC_val_solution.csv"), "{no_csv}");
    // A file that does not decode stops the batch, naming it.
    let bad = root.join("train/n01440764/broken.JPEG");
    std::fs::write(&bad, b"\xff\xd8\xff not really a jpeg").unwrap();
    let e = load_batch(
        &[bad.as_path()],
        &[Transform::Eval],
        16,
        &IMAGENET_MEAN,
        &IMAGENET_STD,
        1,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("broken.JPEG") && e.contains("does not decode"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn random_resized_crops_stay_in_torchvisions_range() {
    let mut rng = SplitMix64::new(7);
    for (w, h) in [(500, 375), (375, 500), (64, 64), (1000, 100), (100, 1000)] {
        for _ in 0..500 {
            let (x, y, cw, ch) = random_resized_crop(w, h, &mut rng);
            assert!(x + cw <= w && y + ch <= h && cw > 0 && ch > 0);
            let ratio = cw as f64 / ch as f64;
            let area = (cw * ch) as f64 / (w * h) as f64;
            let centred = x == (w - cw) / 2 && y == (h - ch) / 2;
            // A sampled window, or the centre fallback of an extreme aspect ratio.
            let sampled = (0.07..=1.0).contains(&area) && (0.7..=1.45).contains(&ratio);
            assert!(sampled || centred, "{w}x{h}: {cw}x{ch} at {x},{y}");
        }
    }
}

#[test]
fn transforms_are_reproducible_and_prefetching_changes_nothing() {
    let root = synthetic("imagenet-batches", false);
    let data = load_imagenet(&root, 24, None, None, &Device::Cpu).unwrap();
    assert_eq!((data.channels, data.input, data.classes), (3, 24, 3));
    let plan = data.train.plan(5, 0, 4, true);
    assert!(plan.iter().flatten().all(|s| s[1] != 0));
    let again = data.train.plan(5, 0, 4, true);
    assert_eq!(plan, again, "a plan is a function of (seed, epoch)");
    assert_ne!(plan, data.train.plan(5, 1, 4, true));
    let plain: Vec<Vec<f32>> = plan
        .iter()
        .map(|b| data.train.batch(b).unwrap().0.to_vec().unwrap())
        .collect();
    let before = data.train.decoded_batches().unwrap();
    for (i, b) in plan.iter().enumerate() {
        let (x, y) = data.train.batch(b).unwrap();
        // As the training loop does: the next batch is announced once this one is in hand.
        data.train.prefetch(plan.get(i + 1));
        assert_eq!(x.shape(), [b.len(), 3, 24, 24]);
        assert_eq!(x.to_vec().unwrap(), plain[i], "batch {i} with prefetching");
        assert_eq!(y.len(), b.len());
    }
    assert_eq!(
        data.train.decoded_batches().unwrap() - before,
        plan.len(),
        "each batch decoded once: the prefetched one is the one served"
    );
    // Normalised pixels: within (0 - mean) / std and (1 - mean) / std.
    assert!(plain[0]
        .iter()
        .all(|v| v.is_finite() && (-2.2..=2.7).contains(v)));
    // Evaluation crops are centred, so the same image gives the same input each time.
    let eval = data.test.plan(0, 0, 6, false);
    let a = data.test.batch(&eval[0]).unwrap().0.to_vec().unwrap();
    let b = data.test.batch(&eval[0]).unwrap().0.to_vec().unwrap();
    assert_eq!(a, b);
    let _ = std::fs::remove_dir_all(&root);
}

fn stage(data: &Data, cfg: StageConfig, out: &Path) -> PathBuf {
    let opts = RunOptions {
        out: out.to_path_buf(),
        existing: Existing::Refuse,
        quiet: true,
        stop_after: None,
        allow_projection: false,
    };
    let o = run_stage(&Device::Cpu, data, Some("efficientnet_b2"), cfg, &opts).unwrap();
    o.best_path.expect("a best checkpoint")
}

#[test]
fn efficientnet_b2_trains_replaces_finetunes_and_evaluates_on_an_imagenet_folder() {
    let root = synthetic("imagenet-e2e", true);
    let data = load_imagenet(&root, 32, None, None, &Device::Cpu).unwrap();
    let runs = root.join("runs");
    let base = stage(
        &data,
        StageConfig::Train(TrainConfig {
            epochs: 1,
            batch: 6,
            // Three steps leave batch norm's running statistics far from the data at a larger
            // rate (measured: test loss 900 at 0.05).
            lr: 0.005,
            ..TrainConfig::default()
        }),
        &runs.join("train"),
    );
    let total = autorep::models::build("efficientnet_b2", &Device::Cpu, 3, 32, 3, 0)
        .unwrap()
        .relu_total();
    let budget = total * 6 / 10;
    let replaced = stage(
        &data,
        StageConfig::Replace(ReplaceStageConfig {
            baseline: Some(base.clone()),
            epochs: 1,
            batch: 6,
            lambda: 20.0,
            h_init: [0.0, 0.05],
            mask_lr: 0.5,
            // The exact fit overflows through the residual stream unclipped (RESULTS.md).
            clip_x2: 1.0,
            ..ReplaceStageConfig::new(budget)
        }),
        &runs.join("replace"),
    );
    let tuned = stage(
        &data,
        StageConfig::Finetune(FinetuneConfig {
            from: Some(replaced.clone()),
            teacher: Some(base),
            epochs: 1,
            batch: 6,
            ..FinetuneConfig::default()
        }),
        &runs.join("finetune"),
    );
    let r = eval_checkpoint(&Device::Cpu, &tuned, &data, false).unwrap();
    assert_eq!(r.outputs.labels.len(), 6);
    assert_eq!(r.test.non_finite, 0);
    // Finetuning trains the weights under the mask the replacement learned, unchanged.
    let before = eval_checkpoint(&Device::Cpu, &replaced, &data, false).unwrap();
    assert_eq!(r.sites, before.sites);
    assert!(r.relus < total as u64, "{} of {total}", r.relus);
    let _ = std::fs::remove_dir_all(&root);
}

/// The evaluation crop starts where torchvision's CenterCrop does: Python's round of half the
/// margin, halves to even.
#[test]
fn centre_crop_offsets_round_as_torchvision() {
    for (total, crop, want) in [
        (256, 224, 16),
        (341, 224, 58),
        (343, 224, 60),
        (225, 224, 0),
        (227, 224, 2),
        (224, 224, 0),
    ] {
        assert_eq!(centre_offset(total, crop), want, "{total} - {crop}");
    }
}
