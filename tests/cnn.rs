//! Convolutional training end to end: a residual CNN's gradients, and learning real images.

mod common;
use autorep::models::{Model, ResNet, ResNetSpec};
use autorep::nn::{ForwardCtx, Module, Optimizer, OptimizerKind, ParamGroup};
use autorep::{Device, Labels, Tensor};
use common::{gpu, rand_vec, rel_err, vals};
use std::rc::Rc;

fn one_step_grads(device: &Device) -> Vec<(String, Vec<f32>)> {
    let spec = ResNetSpec {
        name: "tiny".into(),
        stem_relu: true,
        widths: vec![4, 8],
        blocks: vec![1, 1],
        strides: vec![1, 2],
    };
    let model = ResNet::new(device, spec, 3, 8, 5, 3).unwrap();
    let x = Tensor::from_vec(device, &[6, 3, 8, 8], rand_vec(9, 6 * 3 * 64)).unwrap();
    let y = Rc::new(Labels::new(device, &[0, 1, 2, 3, 4, 0]).unwrap());
    common::backward_from_loss(&model.forward(&x, &ForwardCtx::train()).unwrap(), &y);
    model
        .params()
        .iter()
        .enumerate()
        .map(|(i, p)| {
            (
                format!("param {i} {:?}", p.shape()),
                vals(&p.grad().expect("every parameter gets a gradient")),
            )
        })
        .collect()
}

#[test]
fn residual_cnn_step_gives_every_parameter_a_gradient_and_devices_agree() {
    let cpu = one_step_grads(&Device::Cpu);
    for (name, g) in &cpu {
        assert!(
            g.iter().all(|v| v.is_finite()),
            "{name}: non-finite gradient"
        );
        assert!(g.iter().any(|&v| v != 0.0), "{name}: all-zero gradient");
    }
    let Some(dev) = gpu() else { return };
    let gpu = one_step_grads(&dev);
    for ((name, gc), (_, gg)) in cpu.iter().zip(&gpu) {
        let e = rel_err(gg, gc);
        assert!(e <= 1e-3, "{name}: GPU vs CPU gradient rel err {e}");
    }
}

/// A small CNN learns real images: the bundled Fashion-MNIST subset (4,000 training and
/// 1,000 test images), a few epochs on the CPU device.
#[test]
fn small_cnn_learns_the_bundled_images_on_cpu() {
    let data = common::fashion(4000, 1000);
    let (train, test) = (&data.train, &data.test);
    let device = Device::Cpu;
    assert_eq!((train.len(), test.len()), (4000, 1000));
    let spec = ResNetSpec {
        name: "cnn".into(),
        stem_relu: true,
        widths: vec![8, 16, 32],
        blocks: vec![1; 3],
        strides: vec![1, 2, 2],
    };
    let model = ResNet::new(&device, spec, 1, 28, 10, 1).unwrap();
    let group = ParamGroup::new(&device, "weights", model.params()).unwrap();
    let mut opt = Optimizer::new(&device, OptimizerKind::adam(0.0), vec![(group, 3e-3)]).unwrap();
    let start = std::time::Instant::now();
    for epoch in 0..3 {
        let plan = autorep::train::EpochPlan {
            augment: false,
            ..autorep::train::EpochPlan::plain(64, 1, epoch)
        };
        let s = autorep::train::train_epoch(&model, &mut opt, train, plan, &device).unwrap();
        eprintln!(
            "epoch {epoch}: loss {:.3} train acc {:.3} ({:.1} s)",
            s.loss, s.accuracy, s.seconds
        );
    }
    let eval = autorep::train::evaluate(&model, None, test, 256).unwrap();
    eprintln!(
        "test accuracy {:.3} after {:.1} s",
        eval.top1,
        start.elapsed().as_secs_f64()
    );
    assert!(eval.top1 >= 0.40, "test accuracy {}", eval.top1);
}
