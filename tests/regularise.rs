//! Dropout and stochastic depth as torchvision applies them in training: the share dropped,
//! the scale of what is kept, whole samples for stochastic depth, gradients through the same
//! mask, the same draw for the same step seed, and nothing at all in evaluation or without a
//! step seed (efficientnet_b2).

mod common;

use autorep::data::SplitMix64;
use autorep::models::build;
use autorep::nn::{dropout, stochastic_depth, ForwardCtx};
use autorep::{Device, Tensor};

#[test]
fn dropout_drops_its_share_and_scales_the_rest_with_the_gradient_through_the_same_mask() {
    let d = Device::Cpu;
    let n = 20_000;
    let x = Tensor::param(&d, &[4, n / 4], vec![2.0; n]).unwrap();
    let y = dropout(&x, 0.3, &mut SplitMix64::new(9)).unwrap();
    let v = y.to_vec().unwrap();
    let zeros = v.iter().filter(|&&a| a == 0.0).count() as f64 / n as f64;
    assert!((zeros - 0.3).abs() < 0.015, "{zeros}");
    assert!(v.iter().all(|&a| a == 0.0 || (a - 2.0 / 0.7).abs() < 1e-6));
    y.sum().unwrap().backward().unwrap();
    let g = x.grad().unwrap().to_vec().unwrap();
    for (gi, yi) in g.iter().zip(&v) {
        assert_eq!(*gi, yi / 2.0, "d sum / dx is the mask");
    }
    let again = dropout(&x, 0.3, &mut SplitMix64::new(9))
        .unwrap()
        .to_vec()
        .unwrap();
    assert_eq!(again, v, "the same seed draws the same mask");
}

#[test]
fn stochastic_depth_drops_whole_samples() {
    let d = Device::Cpu;
    let (b, c, hw) = (400, 3, 4);
    let x = Tensor::from_vec(&d, &[b, c, 2, 2], vec![1.0; b * c * hw]).unwrap();
    let v = stochastic_depth(&x, 0.2, &mut SplitMix64::new(3))
        .unwrap()
        .to_vec()
        .unwrap();
    let mut dropped = 0;
    for sample in v.chunks(c * hw) {
        let first = sample[0];
        assert!(sample.iter().all(|&a| a == first), "one draw per sample");
        assert!(first == 0.0 || (first - 1.0 / 0.8).abs() < 1e-6);
        dropped += (first == 0.0) as usize;
    }
    let share = dropped as f64 / b as f64;
    assert!((share - 0.2).abs() < 0.06, "{share}");
}

#[test]
fn efficientnet_b2_regularises_only_training_steps_with_a_seed() {
    let d = Device::Cpu;
    let model = build("efficientnet_b2", &d, 3, 32, 10, 0).unwrap();
    let x = Tensor::from_vec(
        &d,
        &[4, 3, 32, 32],
        (0..4 * 3 * 32 * 32)
            .map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0)
            .collect(),
    )
    .unwrap();
    let run = |seed: Option<u64>| {
        let ctx = ForwardCtx {
            noise_seed: seed,
            ..ForwardCtx::train()
        };
        autorep::no_grad(|| model.forward(&x, &ctx))
            .unwrap()
            .to_vec()
            .unwrap()
    };
    let plain = run(None);
    let (a, b, other) = (run(Some(5)), run(Some(5)), run(Some(6)));
    assert_eq!(a, b, "the same step seed draws the same masks");
    assert_ne!(a, plain, "a training step with a seed is regularised");
    assert_ne!(a, other);
    let eval = |seed| {
        let ctx = ForwardCtx {
            noise_seed: seed,
            ..ForwardCtx::eval()
        };
        autorep::no_grad(|| model.forward(&x, &ctx))
            .unwrap()
            .to_vec()
            .unwrap()
    };
    assert_eq!(eval(Some(5)), eval(None), "evaluation ignores the seed");
}

#[test]
fn the_masks_of_one_upload_act_alike_on_the_gpu() {
    // One upload holds every mask of the step; the GPU binds each as a view of it.
    let Some(gpu) = common::gpu() else {
        eprintln!("skipped: no GPU adapter");
        return;
    };
    // Batch 4 at 64×64: at 32×32 and batch 2 the last stages' batch norm normalises two 1×1
    // maps, which f32 rounding alone moves by 75 % (measured; evaluation agrees to 4e-8).
    let x: Vec<f32> = (0..4 * 3 * 64 * 64)
        .map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0)
        .collect();
    let ctx = ForwardCtx {
        noise_seed: Some(11),
        ..ForwardCtx::train()
    };
    let out = |d: &Device| {
        let model = build("efficientnet_b2", d, 3, 64, 10, 0).unwrap();
        let x = Tensor::from_vec(d, &[4, 3, 64, 64], x.clone()).unwrap();
        autorep::no_grad(|| model.forward(&x, &ctx))
            .unwrap()
            .to_vec()
            .unwrap()
    };
    let (cpu, gpu) = (out(&Device::Cpu), out(&gpu));
    let err = common::rel_err(&gpu, &cpu);
    assert!(err < 1e-3, "GPU vs CPU: {err}");
}
