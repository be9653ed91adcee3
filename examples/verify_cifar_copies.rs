//! The loader against authentic CIFAR-10 bytes and the JPEG-degraded full copy kept beside the
//! project (never committed): `cargo run --release --example verify_cifar_copies -- DIR`, where
//! DIR holds `cifar-10-partial-bin/` and `cifar-10-jpeg75-bin/` (e.g. ../shared/data). Labels and
//! order must be exact, the JPEG copy's pixels within 8/255 of the authentic records on
//! average, and its channel statistics near the constants the project normalises with. The
//! loader's own promises are guarded by the test suite on files it writes itself.

use autorep::data::{
    read_cifar_records, Dataset, ImageSet, Split, CIFAR10_CLASSES, CIFAR10_MEAN, CIFAR10_STD,
};
use std::path::Path;

fn main() {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: verify_cifar_copies DIR (the folder holding cifar-10-partial-bin/ and cifar-10-jpeg75-bin/)");
        std::process::exit(2);
    };
    check(Path::new(&dir));
    println!("{dir}: CIFAR-10 copies verified");
}

fn check(root: &Path) {
    let dir = root.join("cifar-10-partial-bin");
    assert!(dir.is_dir(), "{} not present", dir.display());
    let train_labels = std::fs::read(dir.join("train_labels_all50000.u8")).unwrap();
    let test_labels = std::fs::read(dir.join("test_labels_all10000.u8")).unwrap();
    for b in 1..=5 {
        let set =
            read_cifar_records(&[&dir.join(format!("data_batch_{b}.first1017.bin"))]).unwrap();
        assert_eq!(set.len(), 1017);
        let want: Vec<u32> = train_labels[(b - 1) * 10000..][..1017]
            .iter()
            .map(|&l| l as u32)
            .collect();
        assert_eq!(set.labels, want, "batch {b}");
    }
    let test = read_cifar_records(&[&dir.join("test_batch.first1017.bin")]).unwrap();
    assert_eq!(
        test.labels,
        test_labels[..1017]
            .iter()
            .map(|&l| l as u32)
            .collect::<Vec<_>>()
    );

    // The full JPEG-degraded copy: official layout, exact labels, pixels close to the authentic.
    let full = root.join("cifar-10-jpeg75-bin");
    assert!(full.is_dir(), "{} not present", full.display());
    let train = Dataset::Cifar10.load(&full, Split::Train).unwrap();
    assert_eq!(train.len(), 50_000);
    assert_eq!(
        train.labels,
        train_labels.iter().map(|&l| l as u32).collect::<Vec<_>>()
    );
    assert_eq!(train.class_names, CIFAR10_CLASSES);
    let authentic: ImageSet = read_cifar_records(&[&dir.join("data_batch_1.first1017.bin")])
        .unwrap()
        .into();
    let mae = authentic
        .images
        .iter()
        .zip(&train.images)
        .map(|(&a, &b)| (a as f64 - b as f64).abs())
        .sum::<f64>()
        / authentic.images.len() as f64;
    assert!(
        mae < 8.0,
        "mean abs error {mae} between the JPEG copy and the authentic records"
    );
    let (m, s) = train.channel_stats();
    for c in 0..3 {
        assert!((m[c] - CIFAR10_MEAN[c]).abs() < 0.01, "mean {m:?}");
        // The quoted std (0.2023, ...) is the per-image average std, a bit below the global one.
        assert!(
            s[c] > CIFAR10_STD[c] && s[c] < CIFAR10_STD[c] + 0.07,
            "std {s:?}"
        );
    }
    let test = Dataset::Cifar10.load(&full, Split::Test).unwrap();
    assert_eq!(
        test.labels,
        test_labels.iter().map(|&l| l as u32).collect::<Vec<_>>()
    );
}
