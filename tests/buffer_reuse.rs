//! After one warm-up step, further identical training steps create no GPU buffers and submit
//! once per step; `bench step` reports the most bytes the pool held as the step's peak device
//! memory.

mod common;
use autorep::bench::StepSpec;
use autorep::demo::{disc_and_ring, Mlp};
use autorep::nn::{Module, Optimizer, OptimizerKind, ParamGroup};
use autorep::{Device, Labels, Tensor};
use std::rc::Rc;

#[test]
fn warm_steps_allocate_no_new_buffers() {
    let Some(device) = common::gpu() else { return };
    let Device::Gpu(gpu) = &device else {
        unreachable!()
    };
    let (xs, ys) = disc_and_ring(256, 1);
    let x = Tensor::from_vec(&device, &[256, 2], xs).unwrap();
    let labels = Rc::new(Labels::new(&device, &ys).unwrap());
    let model = Mlp::new(&device, 2, 33, 2, 1).unwrap();
    let group = ParamGroup::new(&device, "mlp", model.params()).unwrap();
    let opt = std::cell::RefCell::new(
        Optimizer::new(
            &device,
            OptimizerKind::sgd(0.0, 0.0, false),
            vec![(group, 0.1)],
        )
        .unwrap(),
    );
    let step = || {
        opt.borrow().zero_grad().unwrap();
        let loss = common::backward_from_loss(&model.forward(&x).unwrap(), &labels);
        opt.borrow_mut().step(1.0).unwrap();
        device.flush().unwrap();
        loss
    };
    step().item().unwrap(); // warm-up, including a readback
    let created = gpu.pool_stats().buffers_created;
    let submits = gpu.stream_stats().submits;
    for _ in 0..5 {
        step();
    }
    let last = step();
    last.item().unwrap();
    assert_eq!(
        gpu.pool_stats().buffers_created,
        created,
        "warm steps created buffers"
    );
    // One submit per step, plus the readback's copy.
    assert_eq!(gpu.stream_stats().submits - submits, 6 + 1);
}

/// Building a batch (uploads, then the augment dispatch) must not submit by itself: the
/// augment work rides in the step's one submit.
#[test]
fn a_device_batch_adds_no_submit() {
    let Some(device) = common::gpu() else { return };
    let Device::Gpu(gpu) = &device else {
        unreachable!()
    };
    let set = autorep::data::ImageSet {
        images: (0..6 * 3 * 8 * 8).map(|i| (i % 251) as u8).collect(),
        labels: vec![0, 1, 2, 0, 1, 2],
        channels: 3,
        height: 8,
        width: 8,
        classes: 3,
        class_names: vec![],
    };
    let data =
        autorep::train::DeviceSet::new(&device, set, &[0.5; 3], &[0.25; 3], Some(2)).unwrap();
    device.flush().unwrap();
    let before = gpu.stream_stats().submits;
    let plan = data.plan(1, 0, 4, true);
    let (x, y) = data.batch(&plan[0]).unwrap();
    assert_eq!(
        gpu.stream_stats().submits,
        before,
        "building a batch submitted work"
    );
    assert_eq!((x.shape(), y.len()), (&[4usize, 3, 8, 8][..], 4));
}

/// Moving a model's parameters into a group's flat buffer gives their own buffers back to the
/// device rather than to the pool, where no request of their sizes would ever come.
#[test]
fn a_parameter_group_leaves_no_per_parameter_buffers_in_the_pool() {
    let Some(device) = common::gpu() else { return };
    let Device::Gpu(gpu) = &device else {
        unreachable!()
    };
    let model = autorep::models::build("small", &device, 3, 16, 10, 0).unwrap();
    let params = model.params();
    let bytes: u64 = params.iter().map(|p| p.numel() as u64 * 4).sum();
    let group = autorep::nn::ParamGroup::new(&device, "weights", params).unwrap();
    let s = gpu.pool_stats();
    assert_eq!(
        s.buffers_free, 0,
        "per-parameter buffers stayed in the pool"
    );
    assert!(
        s.peak_held_bytes >= bytes,
        "the parameters were on the device: {} < {bytes}",
        s.peak_held_bytes
    );
    drop(group);
}

#[test]
fn bench_step_reports_the_pools_peak_memory() {
    let Some(device) = common::gpu() else { return };
    let spec = StepSpec {
        steps: 1,
        ..StepSpec::new("small", 4, 16)
    };
    let t = autorep::bench::training_step(&device, &spec).unwrap();
    let bytes = t
        .device_bytes
        .expect("a GPU step reports its device memory");
    // At least the weights, their gradients and SGD's momentum (f32 each).
    let model = autorep::models::build("small", &Device::Cpu, 3, 16, 10, 0).unwrap();
    let params: usize = model
        .params()
        .iter()
        .map(|p| p.shape().iter().product::<usize>())
        .sum();
    assert!(
        bytes >= 3 * 4 * params as u64,
        "{bytes} bytes for {params} parameters"
    );
    let cpu = autorep::bench::training_step(&Device::Cpu, &spec).unwrap();
    assert_eq!(cpu.device_bytes, None);
}

/// f16 activations take less device memory than f32 ones once activations dominate (each
/// step measured on a freshly opened device, so the pools start empty).
#[test]
fn an_f16_step_takes_less_device_memory_than_an_f32_step() {
    let peak = |dtype| {
        let device = common::gpu()?;
        if autorep::train::Precision::F16.resolve(&device).is_err() {
            return None;
        }
        let spec = StepSpec {
            steps: 1,
            precision: dtype,
            ..StepSpec::new("small", 8, 32)
        };
        autorep::bench::training_step(&device, &spec)
            .unwrap()
            .device_bytes
    };
    let (Some(b32), Some(b16)) = (peak(autorep::Dtype::F32), peak(autorep::Dtype::F16)) else {
        return;
    };
    eprintln!("peak device memory: f32 {b32} bytes, f16 {b16} bytes");
    assert!(b16 * 10 < b32 * 8, "f16 {b16} vs f32 {b32} bytes");
}

/// The fused batch norm + activation op keeps neither the normalised tensor nor the site's
/// input for the backward pass: a training step holds less (each on a fresh device, plain
/// and AutoReP-gated).
#[test]
fn fusing_batch_norm_with_the_activation_takes_less_device_memory() {
    for gated in [None, Some(5_000)] {
        let peak = |fuse| {
            let spec = StepSpec {
                steps: 1,
                fuse,
                gated,
                ..StepSpec::new("small", 8, 16)
            };
            let device = common::gpu()?;
            autorep::bench::training_step(&device, &spec)
                .unwrap()
                .device_bytes
        };
        let (Some(fused), Some(separate)) = (peak(true), peak(false)) else {
            return;
        };
        eprintln!("gated {gated:?}: fused {fused} bytes, separate ops {separate} bytes");
        assert!(
            fused * 10 < separate * 9,
            "fused {fused} vs separate {separate} bytes"
        );
    }
}

/// A host upload in the middle of a step (EfficientNet-B2 draws its stochastic-depth and
/// dropout masks when its forward pass starts, after the batch's own work is queued) rides in
/// the step's one submit: the data is staged and copied in stream order.
#[test]
fn a_mid_step_upload_does_not_split_the_step() {
    let Some(device) = common::gpu() else { return };
    let Device::Gpu(gpu) = &device else {
        unreachable!()
    };
    let model = autorep::models::build("efficientnet_b2", &device, 3, 32, 3, 0).unwrap();
    let pixels: Vec<f32> = (0..2 * 3 * 32 * 32)
        .map(|i| ((i % 17) as f32 - 8.0) * 0.1)
        .collect();
    let x = Tensor::from_vec(&device, &[2, 3, 32, 32], pixels).unwrap();
    let labels = Rc::new(Labels::new(&device, &[0, 2]).unwrap());
    // `apart`: submit the queued work before the forward pass, so that the masks are written
    // directly (the path without staging), for reference.
    let step = |apart: bool| {
        let mut ctx = autorep::nn::ForwardCtx::train();
        ctx.noise_seed = Some(7);
        let input = x.add(&x).unwrap(); // queued work before the forward pass, like augmentation
        if apart {
            device.flush().unwrap();
        }
        let loss = common::backward_from_loss(&model.forward(&input, &ctx).unwrap(), &labels);
        device.flush().unwrap();
        loss
    };
    let direct = step(true).item().unwrap();
    let before = gpu.stream_stats().submits;
    let staged = step(false).item().unwrap();
    // One submit for the step, one for the loss's readback.
    assert_eq!(gpu.stream_stats().submits - before, 2);
    // The staged masks reached the device before the kernels that read them.
    assert_eq!(staged, direct);
}

/// The backward pass releases what each op saved as soon as its gradient has moved on
/// (PyTorch's `retain_graph=False`), so the activations are gone when it returns even while
/// the loss is still held; a second backward through the consumed graph is refused.
#[test]
fn backward_releases_the_graph_it_consumes() {
    let Some(device) = common::gpu() else { return };
    let Device::Gpu(gpu) = &device else {
        unreachable!()
    };
    const N: usize = 1 << 16;
    let tensor_bytes = (N * 4) as u64;
    let x = Tensor::param(&device, &[N], vec![0.5; N]).unwrap();
    let mut h = x.clone();
    for _ in 0..6 {
        h = h.mul(&x).unwrap(); // saves both operands
    }
    let loss = h.sum().unwrap();
    drop(h);
    let before = gpu.pool_stats().live_bytes;
    assert!(before >= 7 * tensor_bytes, "x and six products: {before}");
    loss.backward().unwrap();
    let after = gpu.pool_stats().live_bytes;
    // x and its gradient (and the loss and its seed) remain.
    assert!(
        after < 3 * tensor_bytes,
        "{after} bytes still on loan after backward ({before} before)"
    );
    let err = loss.backward().unwrap_err().to_string();
    assert!(err.contains("already consumed"), "{err}");
}
