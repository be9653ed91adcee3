//! Dataset loaders on small synthetic files in each official format, their error messages on
//! truncated or corrupt files, the batch plan and MD5, the offline fetch failure, and the
//! bundled Fashion-MNIST subset. The local CIFAR-10 copies outside the repository are checked by
//! `cargo run --release --example verify_cifar_copies -- DIR`, not by a test.

use autorep::data::{
    batch_plan, fetch, md5, md5_file, md5_hex, read_cifar_records, read_idx_pair, remote_files,
    shuffled, CifarSet, Dataset, ImageSet, Md5, Split, CIFAR100_CLASSES, CIFAR10_CLASSES,
    CIFAR10_MEAN, CIFAR10_STD,
};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A fresh temporary directory, removed on drop.
struct Tmp(PathBuf);

impl Tmp {
    fn new(name: &str) -> Tmp {
        let p =
            std::env::temp_dir().join(format!("autorep-data-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Tmp(p)
    }
    fn path(&self) -> &Path {
        &self.0
    }
    fn write(&self, rel: &str, bytes: &[u8]) -> PathBuf {
        let p = self.0.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, bytes).unwrap();
        p
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn err_text<T: std::fmt::Debug>(r: autorep::Result<T>) -> String {
    let e = r.expect_err("expected an error").to_string();
    assert!(!e.contains('\n'), "error is not one line: {e}");
    e
}

fn pixels(seed: usize, n: usize) -> Vec<u8> {
    (0..n).map(|i| ((i * 7 + seed * 13) % 251) as u8).collect()
}

/// `labels` prefix bytes then 3,072 pixel bytes.
fn record(labels: &[u8], seed: usize) -> Vec<u8> {
    let mut r = labels.to_vec();
    r.extend(pixels(seed, 3072));
    r
}

fn cifar10_file(labels: &[u8], seed0: usize) -> Vec<u8> {
    labels
        .iter()
        .enumerate()
        .flat_map(|(i, &l)| record(&[l], seed0 + i))
        .collect()
}

// ---------------------------------------------------------------- CIFAR-10

#[test]
fn cifar10_loads_the_official_layout() {
    let t = Tmp::new("c10");
    let dir = t.path().join("cifar-10-batches-bin");
    for b in 1..=5 {
        t.write(
            &format!("cifar-10-batches-bin/data_batch_{b}.bin"),
            &cifar10_file(&[b as u8, 9, 0], 10 * b),
        );
    }
    t.write(
        "cifar-10-batches-bin/test_batch.bin",
        &cifar10_file(&[3, 4], 100),
    );
    let names = "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n\n";
    t.write("cifar-10-batches-bin/batches.meta.txt", names.as_bytes());

    let train = Dataset::Cifar10.load(&dir, Split::Train).unwrap();
    assert_eq!(train.len(), 15);
    assert_eq!(
        (train.channels, train.height, train.width, train.classes),
        (3, 32, 32, 10)
    );
    assert_eq!(&train.labels[..6], &[1, 9, 0, 2, 9, 0]);
    assert_eq!(train.image(4), &pixels(21, 3072)[..]);
    assert_eq!(
        train.class_names,
        ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]
    );
    train.validate().unwrap();

    // The parent folder works too, and test_batch is the test split.
    let test = Dataset::Cifar10.load(t.path(), Split::Test).unwrap();
    assert_eq!(test.labels, [3, 4]);
    assert_eq!(test.image(1), &pixels(101, 3072)[..]);

    // Without batches.meta.txt the official names are used.
    std::fs::remove_file(dir.join("batches.meta.txt")).unwrap();
    let test = Dataset::Cifar10.load(&dir, Split::Test).unwrap();
    assert_eq!(test.class_names, CIFAR10_CLASSES);
}

#[test]
fn cifar10_rejects_bad_files() {
    let t = Tmp::new("c10bad");
    let d = t.path();
    for b in 1..=5 {
        t.write(&format!("data_batch_{b}.bin"), &cifar10_file(&[1, 2], b));
    }
    // Label out of range in record 1 of batch 3.
    t.write("data_batch_3.bin", &cifar10_file(&[1, 12, 3], 0));
    let e = err_text(Dataset::Cifar10.load(d, Split::Train));
    assert!(
        e.ends_with("data_batch_3.bin: label 12 in record 1 is outside 0..9"),
        "{e}"
    );
    assert!(e.contains(&d.display().to_string()), "{e}");

    // One byte too many: not whole records.
    let mut bytes = cifar10_file(&[1, 2, 3], 0);
    bytes.push(0);
    t.write("data_batch_3.bin", &bytes);
    let e = err_text(Dataset::Cifar10.load(d, Split::Train));
    assert!(
        e.ends_with(
            "data_batch_3.bin: 9220 bytes is not a whole number of 3073-byte records (truncated?)"
        ),
        "{e}"
    );

    // Truncated mid-record.
    t.write("data_batch_3.bin", &cifar10_file(&[1, 2], 0)[..5000]);
    let e = err_text(Dataset::Cifar10.load(d, Split::Train));
    assert!(
        e.contains("5000 bytes is not a whole number of 3073-byte records (truncated?)"),
        "{e}"
    );

    // Empty.
    t.write("data_batch_3.bin", &[]);
    let e = err_text(Dataset::Cifar10.load(d, Split::Train));
    assert!(e.contains("data_batch_3.bin: empty file"), "{e}");

    // A missing batch is named, with how to get the data.
    std::fs::remove_file(d.join("data_batch_3.bin")).unwrap();
    let e = err_text(Dataset::Cifar10.load(d, Split::Train));
    assert!(e.contains("data_batch_3.bin not found"), "{e}");
    assert!(e.contains("autorep data fetch cifar10 --data DIR"), "{e}");

    // A wrong number of class names.
    t.write("data_batch_3.bin", &cifar10_file(&[1], 0));
    t.write("batches.meta.txt", b"cat\ndog\n");
    let e = err_text(Dataset::Cifar10.load(d, Split::Train));
    assert!(
        e.contains("batches.meta.txt: 2 class names, expected 10"),
        "{e}"
    );

    // The explicit-path reader checks the same.
    t.write("bad.bin", &cifar10_file(&[10], 0));
    let e = err_text(read_cifar_records(&[&d.join("bad.bin")]));
    assert!(
        e.contains("bad.bin: label 10 in record 0 is outside 0..9"),
        "{e}"
    );
}

#[test]
fn missing_directory_says_how_to_get_the_data() {
    let dir = Path::new("/nonexistent/autorep-data");
    let e = err_text(Dataset::Cifar10.load(dir, Split::Train));
    assert!(e.contains("/nonexistent/autorep-data"), "{e}");
    assert!(e.contains("not found"), "{e}");
    assert!(
        e.contains("run `autorep data fetch cifar10 --data DIR` on a machine with internet, or pass --data pointing at the extracted cifar-10-batches-bin folder"),
        "{e}"
    );
    // ImageNet has no download: it is read from its folder batch by batch (tests/imagenet.rs).
    for d in Dataset::ALL.into_iter().filter(|&d| d != Dataset::ImageNet) {
        let e = err_text(d.load(dir, Split::Test));
        assert!(
            e.contains(&format!("autorep data fetch {} --data DIR", d.name()))
                && e.contains(d.folder()),
            "{e}"
        );
    }
}

#[test]
fn legacy_cifar_set_still_works() {
    let t = Tmp::new("legacy");
    let p = t.write("x.bin", &cifar10_file(&[5, 6, 7], 3));
    let set: CifarSet = read_cifar_records(&[&p, &p]).unwrap();
    assert_eq!(set.len(), 6);
    assert_eq!(set.labels, [5, 6, 7, 5, 6, 7]);
    let idx = [2, 0];
    let old = set.normalized(&idx, CIFAR10_MEAN, CIFAR10_STD);
    let new: ImageSet = set.clone().into();
    assert_eq!(new.normalized(&idx, CIFAR10_MEAN, CIFAR10_STD), old);
    assert_eq!(
        new.normalized(&idx, &CIFAR10_MEAN[..], &CIFAR10_STD[..]),
        old
    );
    assert_eq!(
        old[3072 + 2048 + 5],
        (new.image(0)[2048 + 5] as f32 / 255.0 - CIFAR10_MEAN[2]) / CIFAR10_STD[2]
    );
}

// ---------------------------------------------------------------- CIFAR-100

#[test]
fn cifar100_uses_fine_labels() {
    let t = Tmp::new("c100");
    let train: Vec<u8> = [(0u8, 99u8), (19, 0), (7, 42)]
        .iter()
        .enumerate()
        .flat_map(|(i, &(c, f))| record(&[c, f], i))
        .collect();
    t.write("cifar-100-binary/train.bin", &train);
    t.write("cifar-100-binary/test.bin", &record(&[1, 5], 9));
    let set = Dataset::Cifar100.load(t.path(), Split::Train).unwrap();
    assert_eq!(set.labels, [99, 0, 42]);
    assert_eq!(set.classes, 100);
    assert_eq!(set.image(2), &pixels(2, 3072)[..]);
    assert_eq!(set.class_names, CIFAR100_CLASSES);
    assert_eq!(
        Dataset::Cifar100
            .load(&t.path().join("cifar-100-binary"), Split::Test)
            .unwrap()
            .labels,
        [5]
    );

    let names: String = (0..100).map(|i| format!("c{i}\n")).collect();
    t.write("cifar-100-binary/fine_label_names.txt", names.as_bytes());
    assert_eq!(
        Dataset::Cifar100
            .load(t.path(), Split::Test)
            .unwrap()
            .class_names[42],
        "c42"
    );

    t.write(
        "cifar-100-binary/test.bin",
        &[record(&[1, 5], 0), record(&[2, 100], 1)].concat(),
    );
    let e = err_text(Dataset::Cifar100.load(t.path(), Split::Test));
    assert!(
        e.ends_with("test.bin: label 100 in record 1 is outside 0..99"),
        "{e}"
    );
    t.write("cifar-100-binary/test.bin", &record(&[20, 5], 0));
    let e = err_text(Dataset::Cifar100.load(t.path(), Split::Test));
    assert!(
        e.ends_with("test.bin: coarse label 20 in record 0 is outside 0..19"),
        "{e}"
    );
    // A CIFAR-10 file is not whole CIFAR-100 records.
    t.write("cifar-100-binary/test.bin", &cifar10_file(&[1, 2], 0));
    let e = err_text(Dataset::Cifar100.load(t.path(), Split::Test));
    assert!(
        e.ends_with("test.bin: 6146 bytes is not a whole number of 3074-byte records (truncated?)"),
        "{e}"
    );
}

/// `autorep data fetch D` (into its default folder) puts the dataset where a command given
/// no --data looks for it. A complete folder is not fetched again, so this needs no network.
#[test]
fn the_default_data_folder_is_where_fetch_puts_the_dataset() {
    let t = Tmp::new("default-dir");
    let fetched = t.path().join(autorep::data::DEFAULT_DIR);
    t.write("data/cifar-100-binary/train.bin", &record(&[0, 3], 0));
    t.write("data/cifar-100-binary/test.bin", &record(&[0, 4], 1));
    assert_eq!(
        fetch(Dataset::Cifar100, &fetched).unwrap(),
        t.path().join(autorep::train::default_data_dir("cifar100"))
    );
    for d in [
        Dataset::Cifar100,
        Dataset::TinyImageNet,
        Dataset::FashionMnist,
    ] {
        let want = Path::new(autorep::data::DEFAULT_DIR).join(d.folder());
        assert_eq!(autorep::train::default_data_dir(d.name()), want, "{d}");
    }
}

#[test]
fn cifar100_class_names_are_the_official_sorted_list() {
    assert_eq!(CIFAR100_CLASSES.len(), 100);
    assert!(CIFAR100_CLASSES.windows(2).all(|w| w[0] < w[1]));
}

// ---------------------------------------------------------------- IDX

fn idx_images(n: u32, h: u32, w: u32, data: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0, 8, 3];
    for d in [n, h, w] {
        b.extend(d.to_be_bytes());
    }
    b.extend_from_slice(data);
    b
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0, 8, 1];
    b.extend((labels.len() as u32).to_be_bytes());
    b.extend_from_slice(labels);
    b
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

#[test]
fn idx_loads_raw_and_gzip() {
    let t = Tmp::new("idx");
    let px = pixels(1, 5 * 28 * 28);
    let labels = [0u8, 9, 3, 3, 1];
    // Train raw, test gzip.
    t.write("train-images-idx3-ubyte", &idx_images(5, 28, 28, &px));
    t.write("train-labels-idx1-ubyte", &idx_labels(&labels));
    t.write(
        "t10k-images-idx3-ubyte.gz",
        &gz(&idx_images(2, 28, 28, &px[..2 * 784])),
    );
    t.write("t10k-labels-idx1-ubyte.gz", &gz(&idx_labels(&labels[..2])));
    let train = Dataset::FashionMnist.load(t.path(), Split::Train).unwrap();
    assert_eq!(
        (
            train.len(),
            train.channels,
            train.height,
            train.width,
            train.classes
        ),
        (5, 1, 28, 28, 10)
    );
    assert_eq!(train.labels, [0, 9, 3, 3, 1]);
    assert_eq!(train.images, px);
    assert_eq!(train.class_names[9], "Ankle boot");
    let test = Dataset::FashionMnist.load(t.path(), Split::Test).unwrap();
    assert_eq!(test.labels, [0, 9]);
    assert_eq!(test.image(1), &px[784..1568]);

    // Any shape through the explicit reader.
    let i = t.write("small-images", &idx_images(2, 3, 4, &pixels(2, 24)));
    let l = t.write("small-labels.gz", &gz(&idx_labels(&[1, 0])));
    let s = read_idx_pair(&i, &l, 2).unwrap();
    assert_eq!((s.height, s.width, s.labels.clone()), (3, 4, vec![1, 0]));
}

#[test]
fn an_empty_split_is_an_error_not_a_zero_accuracy() {
    let t = Tmp::new("idxempty");
    t.write("t10k-images-idx3-ubyte", &idx_images(0, 28, 28, &[]));
    t.write("t10k-labels-idx1-ubyte", &idx_labels(&[]));
    let e = err_text(Dataset::FashionMnist.load(t.path(), Split::Test));
    assert!(
        e.contains("the test split of fashion-mnist") && e.contains("holds no images"),
        "{e}"
    );
}

#[test]
fn idx_rejects_bad_files() {
    let t = Tmp::new("idxbad");
    let px = pixels(1, 3 * 784);
    let (i, l) = (
        t.path().join("train-images-idx3-ubyte"),
        t.path().join("train-labels-idx1-ubyte"),
    );
    let load = || Dataset::FashionMnist.load(t.path(), Split::Train);
    t.write("train-labels-idx1-ubyte", &idx_labels(&[1, 2, 3]));

    t.write(
        "train-images-idx3-ubyte",
        &idx_images(3, 28, 28, &px[..2000]),
    );
    let e = err_text(load());
    assert!(e.ends_with("train-images-idx3-ubyte: header says 3x28x28 = 2352 bytes of data but the file holds 2000 (truncated?)"), "{e}");

    t.write(
        "train-images-idx3-ubyte",
        &[idx_images(3, 28, 28, &px), vec![0]].concat(),
    );
    assert!(err_text(load()).contains("(trailing bytes?)"));

    t.write("train-images-idx3-ubyte", &idx_labels(&[1, 2, 3]));
    let e = err_text(load());
    assert!(
        e.ends_with(
            "train-images-idx3-ubyte: magic number 2049 is not an IDX image file (expected 2051): is it the other file of the pair?"
        ),
        "{e}"
    );

    t.write("train-images-idx3-ubyte", b"\x89PNG\r\n");
    let e = err_text(load());
    assert!(e.contains("is not an IDX file of unsigned bytes"), "{e}");

    t.write("train-images-idx3-ubyte", &[0, 0, 8, 3, 0]);
    assert!(err_text(load()).contains("shorter than the 16-byte IDX header (truncated?)"));

    t.write("train-images-idx3-ubyte", &idx_images(3, 28, 28, &px));
    t.write("train-labels-idx1-ubyte", &idx_labels(&[1, 2]));
    let e = err_text(load());
    assert!(
        e.contains("holds 3 images but") && e.ends_with("holds 2 labels"),
        "{e}"
    );

    t.write("train-labels-idx1-ubyte", &idx_labels(&[1, 10, 3]));
    let e = err_text(load());
    assert!(
        e.ends_with("train-labels-idx1-ubyte: label 10 in record 1 is outside 0..9"),
        "{e}"
    );

    t.write("train-labels-idx1-ubyte", &idx_images(3, 1, 1, &[1, 2, 3]));
    let e = err_text(load());
    assert!(
        e.contains("magic number 2051 is not an IDX label file (expected 2049)"),
        "{e}"
    );

    // Corrupt gzip: a valid gzip header and garbage.
    std::fs::remove_file(&l).unwrap();
    let mut bad = gz(&idx_labels(&[1, 2, 3]));
    let n = bad.len();
    bad[12..n - 8].iter_mut().for_each(|b| *b = 0xff);
    t.write("train-labels-idx1-ubyte.gz", &bad);
    let e = err_text(load());
    assert!(
        e.contains("train-labels-idx1-ubyte.gz: corrupt gzip data"),
        "{e}"
    );

    // Non-28x28 images are not Fashion-MNIST.
    t.write("train-labels-idx1-ubyte.gz", &gz(&idx_labels(&[1, 2, 3])));
    t.write("train-images-idx3-ubyte", &idx_images(3, 2, 2, &px[..12]));
    assert!(err_text(load()).contains("2x2 images, Fashion-MNIST's are 28x28"));

    std::fs::remove_file(&i).unwrap();
    let e = err_text(load());
    assert!(
        e.contains("train-images-idx3-ubyte not found") && e.contains("fetch fashion-mnist"),
        "{e}"
    );
}

#[test]
fn bundled_fashion_mnist_subset_loads() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/fashion-mnist-small");
    let train = Dataset::FashionMnist.load(&dir, Split::Train).unwrap();
    let test = Dataset::FashionMnist.load(&dir, Split::Test).unwrap();
    assert_eq!((train.len(), test.len()), (4000, 1000));
    train.validate().unwrap();
    assert!(
        train.class_counts().iter().all(|&c| c > 300),
        "{:?}",
        train.class_counts()
    );
    // The normalisation constants are Fashion-MNIST's statistics.
    let (m, s) = train.channel_stats();
    assert!(
        (m[0] - Dataset::FashionMnist.mean()[0]).abs() < 0.01
            && (s[0] - Dataset::FashionMnist.std()[0]).abs() < 0.01,
        "{m:?} {s:?}"
    );
}

// ---------------------------------------------------------------- Tiny-ImageNet

fn jpeg_rgb(t: &Tmp, rel: &str, w: u32, h: u32, rgb: [u8; 3]) {
    let p = t.0.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    image::RgbImage::from_pixel(w, h, image::Rgb(rgb))
        .save_with_format(&p, image::ImageFormat::Jpeg)
        .unwrap();
}

fn close(img: &[u8], rgb: [u8; 3]) -> bool {
    img.chunks(64 * 64)
        .zip(rgb)
        .all(|(plane, v)| plane.iter().all(|&p| (p as i32 - v as i32).abs() <= 6))
}

const RED: [u8; 3] = [200, 30, 40];
const BLUE: [u8; 3] = [20, 60, 220];

fn tiny_tree(t: &Tmp) {
    // Not sorted, as the official file is not: labels follow the sorted ids.
    t.write("tiny-imagenet-200/wnids.txt", b"n002\nn001\n");
    jpeg_rgb(
        t,
        "tiny-imagenet-200/train/n001/images/n001_0.JPEG",
        64,
        64,
        RED,
    );
    jpeg_rgb(
        t,
        "tiny-imagenet-200/train/n001/images/n001_1.JPEG",
        64,
        64,
        RED,
    );
    t.write(
        "tiny-imagenet-200/train/n001/n001_boxes.txt",
        b"n001_0.JPEG\t0\t0\t10\t10\n",
    );
    jpeg_rgb(
        t,
        "tiny-imagenet-200/train/n002/images/n002_0.JPEG",
        64,
        64,
        BLUE,
    );
    let grey = t.0.join("tiny-imagenet-200/train/n002/images/n002_1.JPEG");
    image::GrayImage::from_pixel(64, 64, image::Luma([90]))
        .save_with_format(&grey, image::ImageFormat::Jpeg)
        .unwrap();
    jpeg_rgb(t, "tiny-imagenet-200/val/images/val_0.JPEG", 64, 64, BLUE);
    jpeg_rgb(t, "tiny-imagenet-200/val/images/val_1.JPEG", 64, 64, RED);
    jpeg_rgb(t, "tiny-imagenet-200/val/images/val_2.JPEG", 64, 64, BLUE);
    t.write(
        "tiny-imagenet-200/val/val_annotations.txt",
        b"val_0.JPEG\tn002\t0\t0\t63\t63\nval_1.JPEG\tn001\t1\t2\t3\t4\nval_2.JPEG\tn002\t0\t0\t1\t1\n",
    );
}

#[test]
fn tiny_imagenet_loads_the_folder_layout() {
    let t = Tmp::new("tiny");
    tiny_tree(&t);
    let train = Dataset::TinyImageNet.load(t.path(), Split::Train).unwrap();
    assert_eq!(
        (
            train.len(),
            train.channels,
            train.height,
            train.width,
            train.classes
        ),
        (4, 3, 64, 64, 2)
    );
    assert_eq!(train.class_names, ["n001", "n002"]);
    // Class by class on disk (n001_0, n001_1, n002_0, n002_1), held in a fixed random order.
    let order = autorep::data::shuffled(0, 0, 4);
    assert_eq!(
        train.labels,
        order.iter().map(|&i| [0, 0, 1, 1][i]).collect::<Vec<u32>>()
    );
    let at = |file: usize| order.iter().position(|&i| i == file).unwrap();
    assert!(close(train.image(at(0)), RED) && close(train.image(at(1)), RED));
    assert!(close(train.image(at(2)), BLUE));
    assert!(
        close(train.image(at(3)), [90, 90, 90]),
        "greyscale JPEG becomes RGB"
    );
    let val = Dataset::TinyImageNet
        .load(&t.path().join("tiny-imagenet-200"), Split::Test)
        .unwrap();
    assert_eq!(val.labels, [1, 0, 1]);
    assert!(close(val.image(0), BLUE) && close(val.image(1), RED));

    // A val folder reorganised into class folders reads the same labels. The official
    // download script moves the images and removes val/images but keeps the annotations.
    let root = t.path().join("tiny-imagenet-200");
    std::fs::create_dir_all(root.join("val/n001")).unwrap();
    std::fs::create_dir_all(root.join("val/n002")).unwrap();
    std::fs::rename(
        root.join("val/images/val_1.JPEG"),
        root.join("val/n001/val_1.JPEG"),
    )
    .unwrap();
    std::fs::rename(
        root.join("val/images/val_0.JPEG"),
        root.join("val/n002/val_0.JPEG"),
    )
    .unwrap();
    std::fs::remove_dir_all(root.join("val/images")).unwrap();
    let val = Dataset::TinyImageNet.load(&root, Split::Test).unwrap();
    // Class by class on disk, held in the same kind of fixed random order.
    let order = autorep::data::shuffled(0, 0, 2);
    let labels: Vec<u32> = order.iter().map(|&i| i as u32).collect();
    assert_eq!(val.labels, labels);
    let red = order.iter().position(|&i| i == 0).unwrap();
    assert!(close(val.image(red), RED) && close(val.image(1 - red), BLUE));
}

#[test]
fn tiny_imagenet_rejects_bad_trees() {
    let t = Tmp::new("tinybad");
    tiny_tree(&t);
    let root = t.path().join("tiny-imagenet-200");
    let load = |s| Dataset::TinyImageNet.load(&root, s);

    jpeg_rgb(
        &t,
        "tiny-imagenet-200/train/n002/images/n002_2.JPEG",
        32,
        64,
        RED,
    );
    let e = err_text(load(Split::Train));
    assert!(
        e.ends_with("n002_2.JPEG: 32x64 image, expected 64x64"),
        "{e}"
    );

    t.write(
        "tiny-imagenet-200/train/n002/images/n002_2.JPEG",
        b"not a jpeg",
    );
    let e = err_text(load(Split::Train));
    assert!(e.contains("n002_2.JPEG: cannot decode image"), "{e}");
    std::fs::remove_file(root.join("train/n002/images/n002_2.JPEG")).unwrap();

    std::fs::remove_dir_all(root.join("train/n002")).unwrap();
    let e = err_text(load(Split::Train));
    assert!(e.contains("train/n002") && e.contains("not found"), "{e}");

    t.write(
        "tiny-imagenet-200/val/val_annotations.txt",
        b"val_0.JPEG\tn009\t0\t0\t1\t1\n",
    );
    let e = err_text(load(Split::Test));
    assert!(
        e.ends_with("val_annotations.txt:1: class id 'n009' is not in wnids.txt"),
        "{e}"
    );

    t.write(
        "tiny-imagenet-200/val/val_annotations.txt",
        b"val_9.JPEG\tn001\t0\t0\t1\t1\n",
    );
    let e = err_text(load(Split::Test));
    assert!(e.contains("val_9.JPEG"), "{e}");

    t.write("tiny-imagenet-200/wnids.txt", b"n001\nn001\n");
    assert!(err_text(load(Split::Test)).contains("class id n001 listed twice"));
}

// ---------------------------------------------------------------- Dataset, ImageSet

#[test]
fn dataset_names_and_constants() {
    for (name, d) in [
        ("cifar10", Dataset::Cifar10),
        ("CIFAR-10", Dataset::Cifar10),
        ("cifar100", Dataset::Cifar100),
        ("tiny-imagenet", Dataset::TinyImageNet),
        ("tiny_imagenet", Dataset::TinyImageNet),
        ("fashion-mnist", Dataset::FashionMnist),
        ("imagenet", Dataset::ImageNet),
        ("ILSVRC-2012", Dataset::ImageNet),
    ] {
        assert_eq!(Dataset::from_name(name).unwrap(), d);
        assert_eq!(name.parse::<Dataset>().unwrap(), d);
    }
    let e = err_text(Dataset::from_name("imagenet21k"));
    assert_eq!(e, "unknown dataset 'imagenet21k': expected one of cifar10, cifar100, tiny-imagenet, fashion-mnist, imagenet");
    let table: Vec<_> = Dataset::ALL
        .iter()
        .map(|d| {
            (
                d.classes(),
                d.input_size(),
                d.channels(),
                d.mean().len(),
                d.std().len(),
            )
        })
        .collect();
    assert_eq!(
        table,
        [
            (10, 32, 3, 3, 3),
            (100, 32, 3, 3, 3),
            (200, 64, 3, 3, 3),
            (10, 28, 1, 1, 1),
            (1000, 224, 3, 3, 3)
        ]
    );
    assert_eq!(Dataset::Cifar100.mean(), [0.5071, 0.4867, 0.4408]);
    assert_eq!(Dataset::Cifar100.std(), [0.2675, 0.2565, 0.2761]);
    assert_eq!(Dataset::TinyImageNet.mean(), [0.480, 0.448, 0.398]);
    assert_eq!(Dataset::TinyImageNet.std(), [0.277, 0.269, 0.282]);
    assert_eq!(Dataset::FashionMnist.mean(), [0.2860]);
    assert_eq!("val".parse::<Split>().unwrap(), Split::Test);
    for d in Dataset::ALL {
        assert_eq!(Dataset::from_name(d.name()).unwrap(), d);
    }
}

fn toy_set() -> ImageSet {
    ImageSet {
        images: (0..5 * 2 * 2 * 3).map(|v| v as u8).collect(),
        labels: vec![0, 1, 2, 0, 1],
        channels: 2,
        height: 2,
        width: 3,
        classes: 3,
        class_names: vec!["x".into(), "y".into(), "z".into()],
    }
}

#[test]
fn image_set_subset_and_normalise() {
    let s = toy_set();
    s.validate().unwrap();
    assert_eq!(s.image(1), &(12..24).collect::<Vec<u8>>()[..]);
    let a = s.subset(1..3);
    assert_eq!(
        (a.len(), a.labels.clone(), a.image(0)),
        (2, vec![1, 2], s.image(1))
    );
    assert_eq!(a.class_names, s.class_names);
    let b = s.subset(&[4, 0, 4]);
    assert_eq!(b.labels, [1, 0, 1]);
    assert_eq!(b.image(2), s.image(4));
    assert_eq!(s.subset(..).images, s.images);
    assert_eq!(s.subset(3..).len(), 2);
    let picked = vec![2, 2];
    assert_eq!(s.subset(&picked).labels, [2, 2]);
    assert_eq!(s.subset(picked).len(), 2);
    assert_eq!(s.class_counts(), [2, 2, 1]);

    let n = s.normalized(&[3], [0.5, 0.25], [2.0, 4.0]);
    assert_eq!(n.len(), 12);
    assert_eq!(n[0], (36.0 / 255.0 - 0.5) / 2.0);
    assert_eq!(n[7], (43.0 / 255.0 - 0.25) / 4.0);

    let mut bad = s.clone();
    bad.labels[2] = 3;
    assert!(err_text(bad.validate()).contains("label 3 of image 2 is outside 0..2"));
    bad.images.pop();
    assert!(bad.validate().is_err());

    let p = s.augment_params(7, 4, &[0.1, 0.2], &[0.3, 0.4]).unwrap();
    assert_eq!(
        (p.channels, p.height, p.width, p.count, p.batch, p.pad),
        (2, 2, 3, 5, 7, 4)
    );
    assert_eq!((p.mean, p.std), ([0.1, 0.2, 0.0], [0.3, 0.4, 1.0]));
    assert!(s.augment_params(7, 4, &[0.1], &[0.3]).is_err());
    assert_eq!(s.packed().len(), 15);
}

#[test]
fn batch_plan_is_seeded_and_reproducible() {
    let n = 103;
    let plan = batch_plan(2, 0, n, 16, true, Some(4));
    assert_eq!(plan.len(), 7);
    assert_eq!(plan[6].len(), 7);
    assert_eq!(
        plan,
        batch_plan(2, 0, n, 16, true, Some(4)),
        "same seed and epoch, same plan"
    );
    assert_ne!(
        plan,
        batch_plan(2, 1, n, 16, true, Some(4)),
        "another epoch reshuffles"
    );
    assert_ne!(
        plan,
        batch_plan(3, 0, n, 16, true, Some(4)),
        "another seed reshuffles"
    );
    let mut seen: Vec<u32> = plan.iter().flatten().map(|s| s[0]).collect();
    assert_eq!(
        seen.iter().map(|&i| i as usize).collect::<Vec<_>>(),
        shuffled(2, 0, n)
    );
    seen.sort();
    assert_eq!(seen, (0..n as u32).collect::<Vec<_>>(), "a permutation");
    let words: Vec<_> = plan
        .iter()
        .flatten()
        .map(|s| autorep_kernels::cpu::aug_unpack(s[1]))
        .collect();
    assert!(words.iter().all(|&(dy, dx, _)| dy <= 8 && dx <= 8));
    for v in [0, 8] {
        assert!(
            words.iter().any(|w| w.0 == v) && words.iter().any(|w| w.1 == v),
            "offset {v} drawn"
        );
    }
    let flips = words.iter().filter(|w| w.2).count();
    assert!((25..=78).contains(&flips), "{flips} flips of {n}");

    // A dataset without augmentation (Fashion-MNIST) is still shuffled, every image centred.
    let plain = batch_plan(2, 0, n, 16, true, None);
    let order: Vec<usize> = plain.iter().flatten().map(|s| s[0] as usize).collect();
    assert_eq!(order, shuffled(2, 0, n));
    let centred = autorep_kernels::cpu::aug_word(0, 0, false);
    assert!(plain.iter().flatten().all(|s| s[1] == centred));

    let eval = batch_plan(2, 5, n, 50, false, Some(4));
    assert_eq!(eval.iter().map(Vec::len).collect::<Vec<_>>(), [50, 50, 3]);
    assert!(eval
        .iter()
        .flatten()
        .enumerate()
        .all(|(i, s)| s[0] == i as u32 && s[1] == autorep_kernels::cpu::aug_word(4, 4, false)));
}

/// The plan drives the CPU twin of the augmentation kernel; eval words reproduce
/// `ImageSet::normalized`.
#[test]
fn eval_plan_through_the_augment_twin_is_plain_normalisation() {
    let s = toy_set();
    let (mean, std) = ([0.5, 0.25], [2.0, 4.0]);
    let plan = batch_plan(0, 0, s.len(), 4, false, Some(1));
    let p = s.augment_params(plan[0].len(), 1, &mean, &std).unwrap();
    let samples: Vec<u32> = plan[0].iter().flatten().copied().collect();
    let mut out = vec![0f32; p.n()];
    autorep_kernels::cpu::augment_batch(&p, &s.packed(), &samples, &mut out);
    assert_eq!(out, s.normalized(&[0, 1, 2, 3], mean, std));
}

// ---------------------------------------------------------------- MD5 and fetch

#[test]
fn md5_matches_rfc1321_test_vectors() {
    let cases = [
        ("", "d41d8cd98f00b204e9800998ecf8427e"),
        ("a", "0cc175b9c0f1b6a831c399e269772661"),
        ("abc", "900150983cd24fb0d6963f7d28e17f72"),
        ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
        (
            "abcdefghijklmnopqrstuvwxyz",
            "c3fcd3d76192e4007dfb496cca67e13b",
        ),
        (
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
            "d174ab98d277d9f5a5611c2c9f419d9f",
        ),
        (
            "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
            "57edf4a22be3c955ac49da2e2107b67a",
        ),
    ];
    for (input, want) in cases {
        assert_eq!(md5_hex(input.as_bytes()), want, "md5({input:?})");
    }
    // Incremental updates in odd pieces, across block boundaries, equal the one-shot digest.
    let data = pixels(5, 10_007);
    for piece in [1, 3, 55, 56, 63, 64, 65, 1000] {
        let mut h = Md5::new();
        data.chunks(piece).for_each(|c| h.update(c));
        assert_eq!(h.finish(), md5(&data), "pieces of {piece}");
    }
    for len in 50..140 {
        let mut h = Md5::new();
        h.update(&data[..len]);
        assert_eq!(h.finish(), md5(&data[..len]));
    }
    let t = Tmp::new("md5");
    let p = t.write("f", &data);
    assert_eq!(md5_file(&p).unwrap(), md5_hex(&data));
    // Against the system's md5sum, when there is one.
    if let Ok(out) = std::process::Command::new("md5sum").arg(&p).output() {
        let sys = String::from_utf8_lossy(&out.stdout);
        assert_eq!(sys.split_whitespace().next().unwrap(), md5_hex(&data));
    }
}

#[test]
fn fetch_sources_are_the_official_ones() {
    let c10 = remote_files(Dataset::Cifar10);
    assert_eq!(
        c10[0].url,
        "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
    );
    assert_eq!(c10[0].md5, "c32a1d4ab5d03f1284b67883e8d87530");
    let c100 = remote_files(Dataset::Cifar100);
    assert_eq!(
        c100[0].url,
        "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz"
    );
    assert_eq!(c100[0].md5, "03b5dce01913d631647c71ecec9e9cb8");
    assert_eq!(remote_files(Dataset::FashionMnist).len(), 4);
    for d in Dataset::ALL {
        assert!(remote_files(d)
            .iter()
            .all(|f| f.md5.len() == 32 && !f.file_name().is_empty()));
    }
}

#[test]
fn fetch_skips_a_complete_folder() {
    let t = Tmp::new("fetchdone");
    t.write("cifar-100-binary/train.bin", &[]);
    t.write("cifar-100-binary/test.bin", &[]);
    assert_eq!(
        fetch(Dataset::Cifar100, t.path()).unwrap(),
        t.path().join("cifar-100-binary")
    );
}

/// The fetch itself runs in a child test process whose proxy points at a closed local port,
/// so it fails the way a machine without internet does, even where there is internet.
#[test]
fn fetch_fails_cleanly_without_internet() {
    let exe = std::env::current_exe().unwrap();
    let dead = "http://127.0.0.1:9";
    let mut cmd = std::process::Command::new(exe);
    cmd.args([
        "--exact",
        "fetch_child",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ]);
    for v in [
        "http_proxy",
        "https_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ] {
        cmd.env(v, dead);
    }
    cmd.env_remove("no_proxy").env_remove("NO_PROXY");
    let out = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child failed: {text}");
    let line = text
        .lines()
        .find_map(|l| l.split_once("FETCH-ERROR: ").map(|x| x.1))
        .unwrap_or_else(|| panic!("no error line in: {text}"));
    assert!(
        line.starts_with(
            "could not download https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz ("
        ),
        "{line}"
    );
    assert!(
        line.contains("download it on a machine with internet") && line.contains("--data"),
        "{line}"
    );
}

#[test]
#[ignore = "run by fetch_fails_cleanly_without_internet in a child process"]
fn fetch_child() {
    let t = Tmp::new("fetchchild");
    let e = err_text(fetch(Dataset::Cifar10, t.path()));
    println!("FETCH-ERROR: {e}");
    assert!(
        !t.path().join("cifar-10-binary.tar.gz.part").exists(),
        "partial download left behind"
    );
}
