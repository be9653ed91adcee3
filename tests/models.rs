//! ReLU counts of the paper models (autorep-method.md §4) and a forward pass of each.

use autorep::models::{build, Model};
use autorep::nn::ForwardCtx;
use autorep::{Device, Tensor};

#[test]
fn relu_totals_match_the_notes() {
    let d = Device::Cpu;
    for (name, input, want) in [
        ("resnet18_in", 32, 491_520),
        ("resnet18_in", 64, 1_966_080),
        ("resnet18", 32, 557_056),
        ("resnet18", 64, 2_228_224),
        ("wrn22_8", 32, 1_359_872),
        ("wrn22_8", 64, 5_439_488),
        // torchvision's efficientnet_b2, every SiLU counted (the squeeze-excitation ones too),
        // as measured with forward hooks on torchvision itself.
        ("efficientnet_b2", 224, 8_804_162),
        ("efficientnet_b2", 288, 14_553_410),
    ] {
        let m = build(name, &d, 3, input, 10, 0).unwrap();
        assert_eq!(m.relu_total(), want, "{name} at {input}");
    }
    assert_eq!(
        build("resnet18_in", &d, 3, 32, 10, 0)
            .unwrap()
            .sites()
            .len(),
        16
    );
    assert_eq!(
        build("wrn22_8", &d, 3, 32, 10, 0).unwrap().sites().len(),
        18
    );
    let eff = build("efficientnet_b2", &d, 3, 224, 1000, 0).unwrap();
    assert_eq!(eff.sites().len(), 69);
    // torchvision's parameter count for efficientnet_b2 (9,109,994) and its module names.
    let named = eff.named_params();
    assert_eq!(
        named.iter().map(|(_, t)| t.numel()).sum::<usize>(),
        9_109_994
    );
    for key in [
        "features.0.0.weight",
        "features.1.0.block.0.0.weight",
        "features.2.0.block.0.0.weight",
        "features.2.0.block.1.0.weight",
        "features.2.0.block.2.fc1.weight",
        "features.2.0.block.3.1.bias",
        "features.8.1.weight",
        "classifier.1.weight",
    ] {
        assert!(named.iter().any(|(k, _)| k == key), "no {key}");
    }
    let e = build("vgg", &d, 3, 32, 10, 0).err().unwrap().to_string();
    assert!(
        e.contains("unknown model 'vgg'") && e.contains("resnet18_in"),
        "{e}"
    );
}

#[test]
fn small_models_run_forward_on_the_cpu() {
    let d = Device::Cpu;
    for name in ["small", "wrn22_8", "efficientnet_b2"] {
        let input = 8;
        let m = if name == "wrn22_8" {
            Box::new(autorep::models::WideResNet::new(&d, 10, 1, 3, input, 7, 0).unwrap())
                as Box<dyn Model>
        } else {
            build(name, &d, 3, input, 7, 0).unwrap()
        };
        let x =
            Tensor::from_vec(&d, &[2, 3, input, input], vec![0.1; 2 * 3 * input * input]).unwrap();
        let y = m.forward(&x, &ForwardCtx::train()).unwrap();
        assert_eq!(y.shape(), &[2, 7]);
        assert!(y.to_vec().unwrap().iter().all(|v| v.is_finite()));
    }
}

#[test]
fn linear_layers_start_as_the_models_init_them() {
    // Kaiming-normal (fan_in, gain √2) on every linear layer, as the SNL/AutoReP ResNets and
    // the AutoReP wrapper initialise them; the WRN class zeroes its fc bias.
    let d = Device::Cpu;
    let param = |m: &dyn Model, name: &str| -> Vec<f32> {
        let (_, t) = m
            .named_params()
            .into_iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no {name}"));
        t.to_vec().unwrap()
    };
    let std = |v: &[f32]| {
        let mean = v.iter().sum::<f32>() / v.len() as f32;
        (v.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / v.len() as f32).sqrt()
    };
    let r = build("resnet18_in", &d, 3, 32, 100, 0).unwrap();
    let w = param(r.as_ref(), "linear.weight");
    let want = (2.0f32 / 512.0).sqrt();
    assert!(
        (std(&w) - want).abs() < 0.05 * want,
        "{} vs {want}",
        std(&w)
    );
    let wrn = build("wrn22_8", &d, 3, 32, 100, 0).unwrap();
    assert!(param(wrn.as_ref(), "fc.bias").iter().all(|&b| b == 0.0));
    let w = param(wrn.as_ref(), "fc.weight");
    assert!(
        (std(&w) - want).abs() < 0.05 * want,
        "{} vs {want}",
        std(&w)
    );
}
