//! Mixed precision end to end: f16 activations with f32 master weights and dynamic loss
//! scaling learn as f32 does; an overflowing step is skipped and halves the scale; f16 is
//! refused on the CPU with a one-line error.

mod common;
use autorep::models::{Model, ResNet, ResNetSpec};
use autorep::nn::{ForwardCtx, Module, Optimizer, OptimizerKind, ParamGroup};
use autorep::train::{EpochPlan, Precision};
use autorep::{Device, Dtype, Labels, Tensor};
use common::{gpu, rand_vec};
use std::rc::Rc;

fn f16_gpu() -> Option<Device> {
    let d = gpu()?;
    match Precision::F16.resolve(&d) {
        Ok(_) => Some(d),
        Err(e) => {
            eprintln!("skipping: {e}");
            None
        }
    }
}

fn cnn(device: &Device) -> ResNet {
    let spec = ResNetSpec {
        name: "cnn".into(),
        stem_relu: true,
        widths: vec![8, 16],
        blocks: vec![1, 1],
        strides: vec![2, 2],
    };
    ResNet::new(device, spec, 1, 28, 10, 1).unwrap()
}

/// Training losses per epoch, the last epoch's training accuracy, the test accuracy and the
/// scaler's state after two epochs of the small CNN on 200 bundled Fashion-MNIST images (sized
/// for a software adapter in CI).
fn learn(device: &Device, precision: Dtype) -> (Vec<f32>, [f32; 2], Vec<f32>) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/fashion-mnist-small");
    let data =
        autorep::train::load_data("fashion-mnist", &dir, Some(200), Some(200), device).unwrap();
    let (train, test) = (&data.train, &data.test);
    let model = cnn(device);
    let group = ParamGroup::new(device, "weights", model.params()).unwrap();
    let mut opt = Optimizer::new(device, OptimizerKind::adam(0.0), vec![(group, 1e-2)])
        .unwrap()
        .with_precision(precision)
        .unwrap();
    let (mut losses, mut train_acc) = (Vec::new(), 0.0);
    for epoch in 0..2 {
        let plan = EpochPlan {
            augment: false,
            ..EpochPlan::plain(40, 1, epoch)
        };
        let s = autorep::train::train_epoch(&model, &mut opt, train, plan, device).unwrap();
        eprintln!(
            "{precision:?} epoch {epoch}: loss {:.4} acc {:.3} ({:.1} s)",
            s.loss, s.accuracy, s.seconds
        );
        losses.push(s.loss);
        train_acc = s.accuracy;
    }
    let eval = autorep::train::evaluate(&model, None, test, 200).unwrap();
    (
        losses,
        [train_acc, eval.top1],
        opt.loss_scale_state().unwrap(),
    )
}

#[test]
fn f16_training_lands_in_the_accuracy_band_of_f32() {
    let Some(device) = f16_gpu() else { return };
    let (l32, a32, s32) = learn(&device, Dtype::F32);
    let (l16, a16, s16) = learn(&device, Dtype::F16);
    eprintln!("accuracy (train, test): f32 {a32:?}, f16 {a16:?}; scaler {s16:?}");
    assert_eq!(s32, autorep_kernels::launch::AMP_NONE, "no scaler in f32");
    // It learns: the loss falls from chance (ln 10 = 2.30) and the training accuracy leaves
    // chance (0.10) behind. (Ten steps leave batch norm's running statistics far from
    // converged, so the test accuracy is compared, not bounded.)
    assert!(l32[1] < l32[0] - 0.1, "f32 losses {l32:?}");
    assert!(a32[0] >= 0.3, "f32 training accuracy {}", a32[0]);
    // f16 follows the same trajectory: same loss to a few hundredths, same accuracy band.
    for (a, b) in l16.iter().zip(&l32) {
        assert!((a - b).abs() <= 0.03, "losses f16 {l16:?} vs f32 {l32:?}");
    }
    for (a, b) in a16.iter().zip(&a32) {
        assert!(
            (a - b).abs() <= 0.05,
            "accuracies f16 {a16:?} vs f32 {a32:?}"
        );
    }
    // Ten clean steps at the initial scale: nothing overflowed, every step applied.
    assert_eq!(s16, [65536.0, 1.0 / 65536.0, 0.0, 10.0, 10.0, 1.0]);
}

/// The same f16 training on the tensor-core tiles (cooperative matrices: the hardware's where
/// the adapter has them, else emulated in plain WGSL) and on the SIMT tiles: every GEMM and
/// convolution pass of forward and backward takes the other path, and the losses, accuracies
/// and scaler agree, up to the order of the f32 sums.
#[test]
fn f16_training_on_tensor_core_tiles_follows_the_simt_tiles() {
    let Some(device) = f16_gpu() else { return };
    let Device::Gpu(g) = &device else { return };
    let Some(tg) = common::coop_gpu() else { return };
    assert!(tg.uses_coop_f16());
    let tc = Device::Gpu(tg.clone());
    let tg = &tg;
    g.set_coop_for_tests(false);
    let (l_simt, a_simt, s_simt) = learn(&device, Dtype::F16);
    g.set_coop_for_tests(true);
    tg.collect_conv_passes(true);
    let (l_tc, a_tc, s_tc) = learn(&tc, Dtype::F16);
    // Every convolution pass ran on the tensor-core tiles (a stem's input gradient aside,
    // which takes the direct kernel on every path).
    let passes = tg.collect_conv_passes(false);
    assert!(passes.len() >= 9, "{passes:?}");
    for key in &passes {
        let plan = autorep_kernels::launch::conv_plan(tg, key.pass, &key.shape, Dtype::F16);
        let tile = plan.unwrap().tile;
        use autorep_kernels::Tile;
        assert!(
            matches!(tile, Tile::Coop | Tile::CoopWide | Tile::Direct),
            "{key:?}: {tile:?}"
        );
    }
    eprintln!(
        "{} tensor cores: losses {l_tc:?} accuracy {a_tc:?}; SIMT: {l_simt:?} {a_simt:?}",
        if tg.report().coop_emulated {
            "emulated"
        } else {
            "hardware"
        }
    );
    for (a, b) in l_tc.iter().zip(&l_simt) {
        assert!((a - b).abs() <= 5e-3, "losses {l_tc:?} vs {l_simt:?}");
    }
    for (a, b) in a_tc.iter().zip(&a_simt) {
        assert!((a - b).abs() <= 0.03, "accuracies {a_tc:?} vs {a_simt:?}");
    }
    assert_eq!(s_tc, s_simt);
}

#[test]
fn the_f16_network_stores_half_precision_activations_and_f32_gradients() {
    let Some(device) = f16_gpu() else { return };
    let model = cnn(&device);
    let x = Tensor::from_vec(&device, &[4, 1, 28, 28], rand_vec(3, 4 * 784)).unwrap();
    let y = Rc::new(Labels::new(&device, &[1, 2, 3, 4]).unwrap());
    let logits = model
        .forward(&x.cast(Dtype::F16).unwrap(), &ForwardCtx::train())
        .unwrap();
    assert_eq!(logits.dtype(), Dtype::F16);
    common::backward_from_loss(&logits.cast(Dtype::F32).unwrap(), &y);
    for p in model.params() {
        let g = p.grad().unwrap();
        assert_eq!((p.dtype(), g.dtype()), (Dtype::F32, Dtype::F32));
        assert!(g.to_vec().unwrap().iter().all(|v| v.is_finite()));
    }
}

#[test]
fn an_overflowing_step_is_skipped_and_halves_the_scale() {
    for device in [Some(Device::Cpu), gpu()].into_iter().flatten() {
        let w = Tensor::param(&device, &[3], vec![1.0, 2.0, 3.0]).unwrap();
        let group = ParamGroup::new(&device, "w", vec![w.clone()]).unwrap();
        let mut opt = Optimizer::new(
            &device,
            OptimizerKind::sgd(0.9, 5e-4, false),
            vec![(group, 0.1)],
        )
        .unwrap()
        .with_loss_scaling(1024.0, 2)
        .unwrap();
        let before = w.to_vec().unwrap();
        // A gradient that overflowed f16 in backward arrives as inf (the flat gradient buffer
        // is padded past the three values).
        let grads = opt.groups().next().unwrap().grads.clone();
        let mut g = vec![0.0; grads.numel()];
        g[..3].copy_from_slice(&[0.5, f32::INFINITY, 0.5]);
        grads.copy_from_host(&g).unwrap();
        opt.step(1.0).unwrap();
        assert_eq!(
            w.to_vec().unwrap(),
            before,
            "{}: skipped",
            device.describe()
        );
        assert_eq!(
            opt.loss_scale_state().unwrap(),
            [512.0, 1.0 / 512.0, 0.0, 0.0, 0.0, 1.0]
        );
        // Two clean steps: updated with the unscaled gradient, then the scale doubles.
        g[..3].copy_from_slice(&[512.0, 512.0, 512.0]);
        grads.copy_from_host(&g).unwrap();
        opt.step(1.0).unwrap();
        let after = w.to_vec().unwrap();
        let want = before[0] - 0.1 * (1.0 + 5e-4 * before[0]);
        assert!((after[0] - want).abs() < 1e-6, "{} vs {want}", after[0]);
        opt.step(1.0).unwrap();
        assert_eq!(
            opt.loss_scale_state().unwrap(),
            [1024.0, 1.0 / 1024.0, 0.0, 0.0, 2.0, 1.0]
        );
        // The loss seed is the scale, read on the device.
        assert_eq!(opt.loss_seed().unwrap().to_vec().unwrap(), [1024.0]);
        // A phase's new optimizer (a finetune's) starts its scaler at the scale reached, with
        // its own counts; without a scaler there is nothing to carry.
        let next = Optimizer::new(&device, OptimizerKind::adam(0.0), vec![])
            .unwrap()
            .with_loss_scaling(65536.0, 2000)
            .unwrap()
            .starting_at_scale(opt.loss_scale().unwrap())
            .unwrap();
        assert_eq!(
            next.loss_scale_state().unwrap(),
            [1024.0, 1.0 / 1024.0, 0.0, 0.0, 0.0, 1.0]
        );
        let plain = Optimizer::new(&device, OptimizerKind::adam(0.0), vec![]).unwrap();
        assert_eq!(plain.loss_scale().unwrap(), None);
    }
}

#[test]
fn f16_is_refused_on_the_cpu_and_auto_falls_back() {
    let e = Precision::F16
        .resolve(&Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(e.contains("--precision f32") && !e.contains('\n'), "{e}");
    assert_eq!(Precision::Auto.resolve(&Device::Cpu).unwrap(), Dtype::F32);
    if let Some(d) = gpu() {
        // A software adapter (lavapipe) computes f16 no faster: auto stays f32 there.
        if let Device::Gpu(g) = &d {
            let want = if g.report().f16 && !g.report().is_software() {
                Dtype::F16
            } else {
                Dtype::F32
            };
            assert_eq!(Precision::Auto.resolve(&d).unwrap(), want);
        }
    }
}

/// Gradient terms added outside the loss graph (SNL's L1 term here, AutoReP's budget hinge
/// likewise) are scaled with the loss, so that unscaling leaves them as they were: starting
/// backward from 1024 multiplies every gradient by exactly 1024.
#[test]
fn penalty_terms_are_scaled_with_the_loss() {
    use autorep_kernels::params::{GateGrad, GateParams};
    for device in [Some(Device::Cpu), gpu()].into_iter().flatten() {
        let p = GateParams {
            batch: 2,
            channels: 3,
            hw: 20,
            channel_wise: false,
            s1: 1.0,
            s2: 0.5,
            clip2: 0.0,
        };
        let grads = |seed: f32| {
            let x = Tensor::from_vec(&device, &[2, 3, 4, 5], rand_vec(4, p.n())).unwrap();
            let mask: Vec<f32> = (0..p.gates()).map(|i| (i % 2) as f32).collect();
            let m = Tensor::from_vec(&device, &[p.gates()], mask).unwrap();
            let h = Tensor::param(&device, &[p.gates()], rand_vec(5, p.gates())).unwrap();
            let c = Tensor::param(&device, &[9], rand_vec(6, 9)).unwrap();
            let counter = Rc::new(autorep::tensor::ReluCounter::new(&device).unwrap());
            let grad = GateGrad::Snl { l1: 0.25 };
            let y = x.gate(&m, &c, &h, p, grad, &counter).unwrap();
            let loss = y.mul(&y).unwrap().sum().unwrap();
            let seed = Tensor::full(&device, &[1], seed).unwrap();
            loss.backward_from(seed).unwrap();
            (
                h.grad().unwrap().to_vec().unwrap(),
                c.grad().unwrap().to_vec().unwrap(),
            )
        };
        let (h1, c1) = grads(1.0);
        let (h2, c2) = grads(1024.0);
        for (a, b) in h1.iter().chain(&c1).zip(h2.iter().chain(&c2)) {
            assert_eq!(a * 1024.0, *b, "{}", device.describe());
        }
    }
}

/// A skipped step is not a step (GradScaler skips `optimizer.step()`): Adam after an overflow
/// moves the weights exactly as Adam that never saw it, bias corrections included.
#[test]
fn a_skipped_step_does_not_advance_adams_bias_correction() {
    for device in [Some(Device::Cpu), gpu()].into_iter().flatten() {
        let step = |scaled: bool| {
            let w = Tensor::param(&device, &[3], vec![1.0, -2.0, 0.5]).unwrap();
            let group = ParamGroup::new(&device, "w", vec![w.clone()]).unwrap();
            let opt = Optimizer::new(&device, OptimizerKind::adam(0.0), vec![(group, 0.1)]);
            let mut opt = opt.unwrap();
            if scaled {
                opt = opt.with_loss_scaling(1024.0, 2000).unwrap();
            }
            let grads = opt.groups().next().unwrap().grads.clone();
            let mut g = vec![0.0; grads.numel()];
            if scaled {
                g[..3].copy_from_slice(&[f32::NAN, 1.0, 1.0]);
                grads.copy_from_host(&g).unwrap();
                opt.step(1.0).unwrap();
            }
            // The same gradient (0.3, -0.2, 0.1), scaled by what the scale is now.
            let s = if scaled { 512.0 } else { 1.0 };
            g[..3].copy_from_slice(&[0.3 * s, -0.2 * s, 0.1 * s]);
            grads.copy_from_host(&g).unwrap();
            opt.step(1.0).unwrap();
            w.to_vec().unwrap()
        };
        let (plain, skipped) = (step(false), step(true));
        for (a, b) in plain.iter().zip(&skipped) {
            assert!(
                (a - b).abs() < 1e-6,
                "{}: {plain:?} vs {skipped:?}",
                device.describe()
            );
        }
    }
}

#[test]
fn host_values_round_trip_through_an_f16_tensor() {
    let Some(device) = f16_gpu() else { return };
    let t = Tensor::zeros(&device, &[5])
        .unwrap()
        .cast(Dtype::F16)
        .unwrap();
    t.copy_from_host(&[0.1, -2.5, 65504.0, 1e-3, 3.0]).unwrap();
    let mut want = vec![0.1, -2.5, 65504.0, 1e-3, 3.0];
    autorep_kernels::round_to_f16(&mut want);
    assert_eq!(t.to_vec().unwrap(), want);
}

/// `bench kernels --precision f16`: every conv pass of a model runs on f16 operands (each
/// dispatch checks its buffers against the f16 variant, the split-K scratch included) and is
/// timed, with as many rows as the f32 run.
#[test]
fn the_kernel_benchmark_runs_every_conv_pass_in_f16() {
    let Some(device) = f16_gpu() else { return };
    let f16 = autorep::bench::conv_kernels(&device, "resnet18_in", 1, 1, Dtype::F16).unwrap();
    let layers = autorep::bench::conv_layers("resnet18_in").len();
    assert_eq!(f16.len(), 3 * layers);
    for r in &f16 {
        assert!(r.median_s > 0.0 && r.median_s.is_finite(), "{r:?}");
    }
}

/// The gradient of a parameter's f16 copy goes to the f32 master as it arrives, once per
/// consumer: with a gradient slot (in a group) or without, and with the copy used twice.
#[test]
fn an_f16_copy_used_twice_sends_both_gradients_to_its_master() {
    let Some(device) = f16_gpu() else { return };
    let values = vec![0.5f32, 1.5, -2.0, 3.0];
    let loose = Tensor::param(&device, &[4], values.clone()).unwrap();
    let grouped = Tensor::param(&device, &[4], values.clone()).unwrap();
    let _group = ParamGroup::new(&device, "w", vec![grouped.clone()]).unwrap();
    for w in [&loose, &grouped] {
        let half = w.cast(Dtype::F16).unwrap();
        let loss = half
            .mul(&half)
            .unwrap()
            .cast(Dtype::F32)
            .unwrap()
            .sum()
            .unwrap();
        loss.backward().unwrap();
        let grad = w
            .grad()
            .expect("the master has a gradient")
            .to_vec()
            .unwrap();
        let want: Vec<f32> = values.iter().map(|v| 2.0 * v).collect();
        assert_eq!(grad, want);
        assert_eq!(w.grad().unwrap().dtype(), Dtype::F32);
    }
}
