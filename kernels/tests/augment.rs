//! The augmentation kernel (pad + random crop + flip + normalise) against its CPU twin, and both
//! against hand-computed crops and flips.

mod common;
use autorep_kernels::{cpu, launch, params::AugmentParams, Gpu};
use common::{gpu, rel_err};
use rand::{Rng, SeedableRng};

const MEAN: [f32; 3] = [0.4914, 0.4822, 0.4465];
const STD: [f32; 3] = [0.2023, 0.1994, 0.2010];

fn params(
    channels: usize,
    height: usize,
    width: usize,
    pad: usize,
    batch: usize,
    count: usize,
) -> AugmentParams {
    AugmentParams {
        channels,
        height,
        width,
        pad,
        batch,
        count,
        mean: MEAN,
        std: STD,
    }
}

fn cpu_run(p: &AugmentParams, data: &[u32], samples: &[u32]) -> Vec<f32> {
    let mut out = vec![f32::NAN; p.n()];
    cpu::augment_batch(p, data, samples, &mut out);
    out
}

fn gpu_run(g: &Gpu, p: &AugmentParams, data: &[u32], samples: &[u32]) -> Vec<f32> {
    let bd = g.upload(data).unwrap();
    let bs = g.upload(samples).unwrap();
    let out = g.alloc(p.n() as u64 * 4).unwrap();
    launch::augment_batch(g, p, &bd, &bs, &out).unwrap();
    g.read_f32(&out, 0, p.n()).unwrap()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()))
}

/// Random u8 images and random samples (indices, crop offsets, flips); the last sample of a
/// batch > 1 points past the dataset.
fn random_case(seed: u64, p: &AugmentParams) -> (Vec<u8>, Vec<u32>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let bytes: Vec<u8> = (0..p.count * p.chw()).map(|_| rng.random()).collect();
    let mut samples = Vec::new();
    for b in 0..p.batch {
        let idx = if b == p.batch - 1 && p.batch > 1 {
            p.count as u32 + 3
        } else {
            rng.random_range(0..p.count as u32)
        };
        let dy = rng.random_range(0..=2 * p.pad as u32);
        let dx = rng.random_range(0..=2 * p.pad as u32);
        samples.extend([idx, cpu::aug_word(dy, dx, rng.random())]);
    }
    (bytes, samples)
}

#[test]
fn pack_u8_is_little_endian_and_zero_filled() {
    assert_eq!(cpu::pack_u8(&[1, 2, 3, 4, 5]), vec![0x0403_0201, 5]);
    assert_eq!(cpu::aug_unpack(cpu::aug_word(7, 3, true)), (7, 3, true));
    assert_eq!(cpu::aug_unpack(cpu::aug_word(0, 8, false)), (0, 8, false));
}

#[test]
fn augment_matches_cpu() {
    let Some(g) = gpu() else { return };
    let shapes = [
        (3, 32, 32, 4),
        (1, 28, 28, 4),
        (3, 64, 64, 4),
        (1, 5, 7, 3),
        (2, 3, 3, 0),
    ];
    for (seed, &(c, h, w, pad)) in shapes.iter().enumerate() {
        for batch in [1, 7, 33] {
            let p = params(c, h, w, pad, batch, 11);
            let (bytes, samples) = random_case(seed as u64 * 100 + batch as u64, &p);
            let data = cpu::pack_u8(&bytes);
            let want = cpu_run(&p, &data, &samples);
            let got = gpu_run(&g, &p, &data, &samples);
            // Normwise relative error, as every kernel test: WGSL division may be a couple of
            // ULP off correctly rounded on some drivers.
            let e = rel_err(&got, &want);
            assert!(
                e <= 1e-6,
                "{c}x{h}x{w} pad {pad} batch {batch}: rel err {e}, max abs diff {}",
                max_abs_diff(&got, &want)
            );
            if batch > 1 {
                // The out-of-range sample yields zeros on both.
                assert!(want[(batch - 1) * p.chw()..].iter().all(|&v| v == 0.0));
            }
        }
    }
}

#[test]
fn eval_mode_is_plain_normalisation() {
    let g = gpu();
    for &(c, h, w) in &[(3, 32, 32), (1, 28, 28), (3, 9, 5)] {
        let mut p = params(c, h, w, 4, 5, 8);
        p.mean = [0.2860, 0.5, 0.25];
        p.std = [0.3530, 0.25, 0.5];
        let (bytes, _) = random_case(7, &p);
        let idx = [3u32, 0, 7, 7, 1];
        let samples: Vec<u32> = idx
            .iter()
            .flat_map(|&i| [i, cpu::aug_word(4, 4, false)])
            .collect();
        let chw = p.chw();
        let want: Vec<f32> = idx
            .iter()
            .flat_map(|&i| {
                let img = &bytes[i as usize * chw..(i as usize + 1) * chw];
                img.iter().enumerate().map(move |(k, &v)| {
                    let ch = k / (h * w);
                    (v as f32 / 255.0 - p.mean[ch]) / p.std[ch]
                })
            })
            .collect();
        let data = cpu::pack_u8(&bytes);
        assert_eq!(cpu_run(&p, &data, &samples), want, "cpu {c}x{h}x{w}");
        if let Some(g) = &g {
            let e = rel_err(&gpu_run(g, &p, &data, &samples), &want);
            assert!(e <= 1e-6, "gpu {c}x{h}x{w}: {e}");
        }
    }
}

/// A 1-channel image with mean 0 and std 1, so outputs are v/255.
fn tiny(h: usize, w: usize, pad: usize, batch: usize) -> AugmentParams {
    AugmentParams {
        channels: 1,
        height: h,
        width: w,
        pad,
        batch,
        count: 1,
        mean: [0.0; 3],
        std: [1.0; 3],
    }
}

fn check_by_hand(p: &AugmentParams, img: &[u8], word: u32, want: &[u8]) {
    let data = cpu::pack_u8(img);
    let samples = [0, word];
    let want: Vec<f32> = want.iter().map(|&v| v as f32 / 255.0).collect();
    assert_eq!(cpu_run(p, &data, &samples), want, "cpu, word {word:#x}");
    if let Some(g) = gpu() {
        let e = max_abs_diff(&gpu_run(&g, p, &data, &samples), &want);
        assert!(e <= 1e-6, "gpu, word {word:#x}: {e}");
    }
}

#[test]
fn flip_by_hand() {
    let p = tiny(2, 3, 2, 1);
    let img = [1, 2, 3, 4, 5, 6];
    check_by_hand(&p, &img, cpu::aug_word(2, 2, false), &img);
    check_by_hand(&p, &img, cpu::aug_word(2, 2, true), &[3, 2, 1, 6, 5, 4]);
}

#[test]
fn crop_by_hand() {
    // 3x3 image, pad 1: the padded image is 5x5; crop offset (dy, dx) picks its 3x3 window.
    let p = tiny(3, 3, 1, 1);
    let img = [10, 20, 30, 40, 50, 60, 70, 80, 90];
    // Window at (0, 2): rows -1..=1, columns 1..=3 of the original.
    check_by_hand(
        &p,
        &img,
        cpu::aug_word(0, 2, false),
        &[0, 0, 0, 20, 30, 0, 50, 60, 0],
    );
    // Window at (2, 0): rows 1..=3, columns -1..=1.
    check_by_hand(
        &p,
        &img,
        cpu::aug_word(2, 0, false),
        &[0, 40, 50, 0, 70, 80, 0, 0, 0],
    );
    // Crop (2, 0), then flip the crop horizontally.
    check_by_hand(
        &p,
        &img,
        cpu::aug_word(2, 0, true),
        &[50, 40, 0, 80, 70, 0, 0, 0, 0],
    );
    // Pad 0 with offset 0 is the identity.
    check_by_hand(&tiny(3, 3, 0, 1), &img, cpu::aug_word(0, 0, false), &img);
}

#[test]
fn unaligned_images_read_the_right_bytes() {
    // 1x1x5 images: image 1 starts at byte 5, in the middle of word 1.
    let p = AugmentParams {
        channels: 1,
        height: 1,
        width: 5,
        pad: 0,
        batch: 2,
        count: 3,
        mean: [0.0; 3],
        std: [1.0; 3],
    };
    let bytes: Vec<u8> = (1..=15).collect();
    let data = cpu::pack_u8(&bytes);
    let samples = [1, 0, 2, cpu::aug_word(0, 0, true)];
    let want: Vec<f32> = [6u8, 7, 8, 9, 10, 15, 14, 13, 12, 11]
        .iter()
        .map(|&v| v as f32 / 255.0)
        .collect();
    assert_eq!(cpu_run(&p, &data, &samples), want);
    if let Some(g) = gpu() {
        assert!(max_abs_diff(&gpu_run(&g, &p, &data, &samples), &want) <= 1e-6);
    }
}

/// A dataset beyond the storage-binding limit is bound window by window; the result is the
/// same as the CPU twin's on the whole dataset.
#[test]
fn windows_over_a_dataset_beyond_the_binding_limit() {
    let Some(g) = gpu() else { return };
    for (limit, batch) in [(4096u64, 20usize), (1024, 7)] {
        g.set_max_binding_for_tests(limit);
        let p = AugmentParams {
            channels: 1,
            height: 5,
            width: 7,
            pad: 3,
            batch,
            count: 300,
            mean: [0.3; 3],
            std: [0.2; 3],
        };
        let (bytes, mut samples) = random_case(limit, &p);
        // The first and last images, and images at every window seam region.
        samples[0] = 0;
        samples[2] = 299;
        samples[4] = 108;
        samples[6] = 109;
        let data = cpu::pack_u8(&bytes);
        let want = cpu_run(&p, &data, &samples);
        let dispatches = g.stream_stats().dispatches;
        let got = gpu_run(&g, &p, &data, &samples);
        assert!(
            g.stream_stats().dispatches - dispatches > 2,
            "limit {limit}: expected several windows"
        );
        let e = rel_err(&got, &want);
        assert!(e <= 1e-6, "limit {limit}: rel err {e}");
    }
}

/// CIFAR-10's training set (153.6 MB) is above lavapipe's 128 MiB binding limit: a set of that
/// size, sampled at both ends, through the real limit.
#[test]
fn cifar_sized_dataset() {
    let Some(g) = gpu() else { return };
    let p = params(3, 32, 32, 4, 33, 50_000);
    let bytes: Vec<u8> = (0..p.count * p.chw())
        .map(|i| (i ^ (i >> 11) ^ (i >> 19)) as u8)
        .collect();
    let data = cpu::pack_u8(&bytes);
    drop(bytes);
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let mut samples = Vec::new();
    for b in 0..p.batch {
        let idx = match b {
            0 => 0,
            1 => 49_999,
            2 => 25_000,
            _ => rng.random_range(0..p.count as u32),
        };
        samples.extend([
            idx,
            cpu::aug_word(
                rng.random_range(0..=8),
                rng.random_range(0..=8),
                rng.random(),
            ),
        ]);
    }
    let want = cpu_run(&p, &data, &samples);
    let before = g.stream_stats().dispatches;
    let got = gpu_run(&g, &p, &data, &samples);
    let windows = g.stream_stats().dispatches - before;
    let bytes = data.len() as u64 * 4;
    assert_eq!(
        windows > 1,
        bytes > g.max_binding(),
        "{windows} windows for {bytes} bytes, limit {}",
        g.max_binding()
    );
    let e = rel_err(&got, &want);
    assert!(e <= 1e-6, "rel err {e} ({windows} windows)");
}
