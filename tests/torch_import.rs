//! PyTorch state dicts in and out. Files PyTorch wrote (tests/fixtures/torch-state-dict: the
//! zip `.pth`, the legacy `.pth` and safetensors of one small module, with the values and
//! output PyTorch recorded) read back exactly and compute PyTorch's output on our ops; the key
//! lists of torchvision's `efficientnet_b2` and `resnet18` map onto our models both ways, with
//! errors that name what does not fit; an exported state dict imports back to the same
//! tensors. Where Python has torch and torchvision (`AUTOREP_TORCH_PYTHON`, default
//! `python3`), torchvision networks with random weights import and give PyTorch's logits.

mod common;

use autorep::export::state_dict::{load_into, read_state_dict, StateDict, TorchTensor, Values};
use autorep::export::torch::{import_checkpoint, state_dict_bytes, torch_state_dict, ImportSpec};
use autorep::models::{build, Model};
use autorep::nn::{BatchNorm2d, Conv2d, DepthwiseConv2d, ForwardCtx, Linear, Module};
use autorep::{Device, Tensor};
use rand::SeedableRng;
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/torch-state-dict")
}

fn json(name: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(fixtures().join(name)).unwrap()).unwrap()
}

fn floats(t: &TorchTensor) -> &[f32] {
    match &t.values {
        Values::F32(v) => v,
        Values::I64(_) => panic!("integer tensor"),
    }
}

#[test]
fn pth_zip_legacy_and_safetensors_read_as_pytorch_wrote_them() {
    let expected = json("expected.json");
    let want = expected["tensors"].as_object().unwrap();
    for file in ["block.pth", "block_legacy.pth", "block.safetensors"] {
        let sd = read_state_dict(&fixtures().join(file)).unwrap();
        let keys: Vec<&String> = sd.keys().collect();
        let mut wanted: Vec<&String> = want.keys().collect();
        wanted.sort();
        assert_eq!(keys, wanted, "{file}");
        for (name, w) in want {
            let t = &sd[name];
            assert_eq!(t.dtype, w["dtype"].as_str().unwrap(), "{file} {name}");
            let shape: Vec<usize> = w["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as usize)
                .collect();
            assert_eq!(t.shape, shape, "{file} {name}");
            let values = t.as_f64();
            for (got, want) in values.iter().zip(w["first"].as_array().unwrap()) {
                // f32 values printed as f64 by Python: exact after rounding back to f32.
                assert_eq!(*got as f32, want.as_f64().unwrap() as f32, "{file} {name}");
            }
            let sum: f64 = values.iter().sum();
            let want_sum = w["sum"].as_f64().unwrap();
            assert!(
                (sum - want_sum).abs() <= 1e-5 * want_sum.abs().max(1.0),
                "{file} {name}: sum {sum} vs {want_sum}"
            );
        }
        assert_eq!(
            sd["bn.num_batches_tracked"].values,
            Values::I64(vec![1234]),
            "{file}"
        );
    }
}

/// Copy `sd[key]` into `t` (trailing 1s of a 1×1 convolution dropped).
fn set(t: &Tensor, sd: &StateDict, key: &str) {
    let v = floats(&sd[key]);
    assert_eq!(v.len(), t.shape().iter().product::<usize>(), "{key}");
    t.copy_from_host(v).unwrap();
}

#[test]
fn the_fixture_module_computes_pytorchs_output_on_our_ops() {
    // block.py's forward, layer by layer, with the weights PyTorch saved: conv, BN at eps
    // 1e-3, SiLU, depthwise 5×5, squeeze-excitation (1×1 convolutions as linear layers),
    // global mean, linear.
    let sd = read_state_dict(&fixtures().join("block.pth")).unwrap();
    let d = Device::Cpu;
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let conv = Conv2d::new(&d, "conv", 3, 8, 3, 1, 1, &mut rng).unwrap();
    let mut bn = BatchNorm2d::new(&d, "bn", 8).unwrap();
    bn.cfg.eps = 1e-3;
    let dw = DepthwiseConv2d::new(&d, "dw", 8, 5, 1, 2, &mut rng).unwrap();
    let reduce = Linear::new(&d, "se_reduce", 8, 2, &mut rng).unwrap();
    let expand = Linear::new(&d, "se_expand", 2, 8, &mut rng).unwrap();
    let fc = Linear::new(&d, "fc", 8, 10, &mut rng).unwrap();
    let modules: [&dyn Module; 6] = [&conv, &bn, &dw, &reduce, &expand, &fc];
    for m in modules {
        for (k, t) in m.named_params() {
            set(&t, &sd, &k);
        }
    }
    for (k, t) in bn.named_buffers() {
        set(&t, &sd, &k);
    }
    let x: Vec<f32> = (0..216).map(|i| -1.0 + 2.0 * i as f32 / 215.0).collect();
    let x = Tensor::from_vec(&d, &[2, 3, 6, 6], x).unwrap();
    let ctx = ForwardCtx::eval();
    let h = bn.forward(&conv.forward(&x).unwrap(), &ctx).unwrap();
    let h = dw.forward(&h.silu().unwrap()).unwrap();
    let s = reduce.forward(&h.global_avg_pool().unwrap()).unwrap();
    let s = expand
        .forward(&s.silu().unwrap())
        .unwrap()
        .sigmoid()
        .unwrap();
    let h = h.channel_scale(&s).unwrap();
    let y = fc.forward(&h.global_avg_pool().unwrap()).unwrap();
    let want: Vec<f32> = json("expected.json")["forward"]["output"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| row.as_array().unwrap().clone())
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    let got = y.to_vec().unwrap();
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() < 1e-5, "{got:?}\nvs PyTorch {want:?}");
    }
}

/// A state dict with the keys, shapes and dtypes of a torchvision key list, and values that
/// tell tensors apart.
fn from_key_list(file: &str) -> StateDict {
    let list = json(file);
    let mut sd = StateDict::new();
    for (i, e) in list["state_dict"].as_array().unwrap().iter().enumerate() {
        let name = e["name"].as_str().unwrap().to_string();
        let shape: Vec<usize> = e["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        let n: usize = shape.iter().product();
        let t = match e["dtype"].as_str().unwrap() {
            "int64" => TorchTensor::i64(shape, vec![7; n]),
            _ => TorchTensor::f32(shape, (0..n).map(|j| (i * 31 + j % 97) as f32).collect()),
        };
        sd.insert(name, t);
    }
    sd
}

fn signature(sd: &StateDict) -> Vec<(String, Vec<usize>, &'static str)> {
    sd.iter()
        .map(|(k, t)| (k.clone(), t.shape.clone(), t.dtype))
        .collect()
}

#[test]
fn torchvision_efficientnet_b2_keys_map_onto_the_model_both_ways() {
    let sd = from_key_list("efficientnet_b2_keys.json");
    let model = build("efficientnet_b2", &Device::Cpu, 3, 32, 1000, 0).unwrap();
    load_into(model.as_ref(), &sd, &[], "keys").unwrap();
    // A squeeze-excitation 1×1 convolution landed in its linear layer.
    let (_, fc1) = model
        .named_params()
        .into_iter()
        .find(|(k, _)| k == "features.1.0.block.1.fc1.weight")
        .unwrap();
    assert_eq!(
        fc1.to_vec().unwrap(),
        floats(&sd["features.1.0.block.1.fc1.weight"])
    );
    // Exported, it is torchvision's state dict again: every key, shape and dtype.
    let back = torch_state_dict(model.as_ref()).unwrap();
    assert_eq!(signature(&back), signature(&sd));
    for (k, t) in &back {
        if let Values::F32(v) = &t.values {
            assert_eq!(v.as_slice(), floats(&sd[k]), "{k}");
        }
    }
}

#[test]
fn torchvision_resnet18_names_map_and_mismatches_are_named() {
    let model = build("resnet18", &Device::Cpu, 3, 32, 1000, 0).unwrap();
    let sd = from_key_list("resnet18_keys.json");
    let err = load_into(model.as_ref(), &sd, &[], "resnet18.pth")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("1 mis-shaped (conv1.weight: file [64, 3, 7, 7], model [64, 3, 3, 3])")
            && err.contains("7×7 stem"),
        "{err}"
    );
    // Its CIFAR form (3×3 stem) is autorep's resnet18: `downsample` and `fc` map onto
    // `shortcut` and `linear`.
    let mut cifar = sd.clone();
    cifar.insert(
        "conv1.weight".into(),
        TorchTensor::f32(vec![64, 3, 3, 3], vec![0.5; 64 * 27]),
    );
    load_into(model.as_ref(), &cifar, &[], "cifar").unwrap();
    let mut broken = cifar.clone();
    broken.remove("layer1.0.bn1.weight");
    broken.insert("extra.weight".into(), TorchTensor::f32(vec![1], vec![0.0]));
    let err = load_into(model.as_ref(), &broken, &[], "broken.pth")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("1 missing (layer1.0.bn1.weight)")
            && err.contains("1 unexpected (extra.weight)")
            && err.starts_with("broken.pth does not fit resnet18"),
        "{err}"
    );
}

#[test]
fn an_exported_state_dict_imports_back_to_the_same_tensors() {
    let dir = common::tmp_dir("torch-roundtrip");
    std::fs::create_dir_all(&dir).unwrap();
    let model = build("small", &Device::Cpu, 1, 28, 10, 3).unwrap();
    // Distinct BN statistics, so a swapped mean and variance would show.
    for (i, (_, t)) in model.named_buffers().into_iter().enumerate() {
        let n = t.shape()[0];
        t.copy_from_host(
            &(0..n)
                .map(|j| 0.5 + (i + j) as f32 * 0.01)
                .collect::<Vec<_>>(),
        )
        .unwrap();
    }
    let sd = torch_state_dict(model.as_ref()).unwrap();
    let file = dir.join("small.safetensors");
    std::fs::write(&file, state_dict_bytes(&sd, Default::default()).unwrap()).unwrap();
    let spec = ImportSpec {
        model: "small".into(),
        dataset: "fashion-mnist".into(),
        reset_head: false,
        seed: 0,
        image_size: None,
    };
    let ck = import_checkpoint(&file, &spec).unwrap();
    assert_eq!(ck.meta.classes, 10);
    assert!(ck.meta.imported_from.is_some() && !ck.is_gated());
    for (k, t) in model
        .named_params()
        .into_iter()
        .chain(model.named_buffers())
    {
        assert_eq!(ck.tensors[&k].1, t.to_vec().unwrap(), "{k}");
    }
    // Another dataset's classes: refused unless the classifier is replaced.
    let cifar100 = ImportSpec {
        dataset: "cifar100".into(),
        ..spec.clone()
    };
    let err = import_checkpoint(&file, &cifar100).unwrap_err().to_string();
    assert!(err.contains("--reset-head"), "{err}");
    let err2 = import_checkpoint(
        &file,
        &ImportSpec {
            reset_head: true,
            ..cifar100
        },
    )
    .unwrap_err()
    .to_string();
    // Fashion-MNIST's single channel does not fit CIFAR's three, and the error says where.
    assert!(err2.contains("conv1.weight"), "{err2}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_training_checkpoint_gives_its_model_subtree() {
    // {"model": state dict, "optimizer": …, "epoch": …} as torchvision's reference scripts
    // save it, flattened by the reader to dotted keys.
    let mut sd = StateDict::new();
    sd.insert(
        "model.conv1.weight".into(),
        TorchTensor::f32(vec![1], vec![1.0]),
    );
    sd.insert("model.fc.bias".into(), TorchTensor::f32(vec![1], vec![2.0]));
    sd.insert(
        "optimizer.state.0.momentum_buffer".into(),
        TorchTensor::f32(vec![1], vec![3.0]),
    );
    sd.insert("epoch".into(), TorchTensor::i64(vec![], vec![7]));
    let dir = common::tmp_dir("torch-wrapped");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("checkpoint.safetensors");
    std::fs::write(&file, state_dict_bytes(&sd, Default::default()).unwrap()).unwrap();
    let got = read_state_dict(&file).unwrap();
    let keys: Vec<&String> = got.keys().collect();
    assert_eq!(keys, ["conv1.weight", "fc.bias"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn torchvision_networks_import_and_give_pytorchs_logits() {
    let Some(py) = common::python_with(
        "AUTOREP_TORCH_PYTHON",
        "torch, torchvision, numpy",
        "AUTOREP_REQUIRE_TORCH",
        "pip install torch torchvision numpy, and set AUTOREP_TORCH_PYTHON",
    ) else {
        return;
    };
    let dir = common::tmp_dir("torchvision-ref");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/torchvision_reference.py");
    let out = Command::new(&py).arg(&script).arg(&dir).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (name, model, side, classes) in [
        ("efficientnet_b2", "efficientnet_b2", 64, 1000),
        ("resnet18_cifar", "resnet18", 32, 10),
    ] {
        let sd = read_state_dict(&dir.join(format!("{name}.pth"))).unwrap();
        let net: Box<dyn Model> = build(model, &Device::Cpu, 3, side, classes, 0).unwrap();
        load_into(net.as_ref(), &sd, &[], name).unwrap();
        let (shape, x) =
            autorep::data::read_npy::<f32>(&dir.join(format!("{name}.x.npy"))).unwrap();
        let (_, want) =
            autorep::data::read_npy::<f32>(&dir.join(format!("{name}.logits.npy"))).unwrap();
        let x = Tensor::from_vec(&Device::Cpu, &shape, x).unwrap();
        let got = autorep::no_grad(|| net.forward(&x, &ForwardCtx::eval()))
            .unwrap()
            .to_vec()
            .unwrap();
        let scale = want.iter().fold(1f32, |m, v| m.max(v.abs()));
        let worst = got
            .iter()
            .zip(&want)
            .map(|(g, w)| (g - w).abs() / scale)
            .fold(0f32, f32::max);
        eprintln!("{name}: max relative logit difference {worst:.2e} against PyTorch");
        assert!(worst < 1e-4, "{name}: {worst}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
