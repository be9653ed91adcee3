//! Checkpoint metadata round-trips for every method, granularity and polynomial mode, and is
//! read strictly: an unknown key, a misspelt field or an altered tensor is an error naming it.

use autorep::autorep::{Budget, Granularity, Method, Polynomial, ReplaceConfig, Replacement};
use autorep::models::build;
use autorep::train::checkpoint::{Checkpoint, GateState, Meta, Progress, FORMAT, META_KEY};
use autorep::train::config::{ReplaceStageConfig, SnlConfig, StageConfig};
use autorep::train::stages::load_model;
use autorep::Device;
use std::collections::HashMap;
use std::path::Path;

fn meta(config: StageConfig, gates: Option<GateState>) -> Meta {
    Meta {
        format: FORMAT,
        model: "small".into(),
        dataset: "fashion-mnist".into(),
        channels: 1,
        input: 28,
        classes: 10,
        config,
        progress: Progress {
            epochs_done: 3,
            phase_epochs: 1,
            snl_lowest: Some(77),
            ..Progress::default()
        },
        replacement: gates,
        optimizer_steps: Some(12),
        checksums: Default::default(),
        normalisation: None,
        sites: vec![],
        imported_from: None,
        images: Some([4_000, 1_000]),
        class_order: None,
        data: Some(autorep::train::DataSource {
            dir: "assets/fashion-mnist-small".into(),
            limit_train: Some(4_000),
            limit_test: None,
        }),
    }
}

fn tmp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "autorep-meta-{name}-{}.safetensors",
        std::process::id()
    ))
}

#[test]
fn metadata_round_trips_for_every_method_granularity_and_mode() {
    let d = Device::Cpu;
    for method in [Method::AutoRep, Method::Identity, Method::Snl] {
        for granularity in [Granularity::Pixel, Granularity::Channel] {
            for polynomial in [Polynomial::Clean, Polynomial::Faithful] {
                let gates = ReplaceConfig {
                    method,
                    granularity,
                    polynomial,
                    lambda: 17.5,
                    seed: 9,
                    h_init: (-0.25, 0.5),
                    ..ReplaceConfig::autorep(1234)
                };
                let config = if method == Method::Snl {
                    StageConfig::Snl(SnlConfig {
                        granularity,
                        ..SnlConfig::new(1234)
                    })
                } else {
                    StageConfig::Replace(ReplaceStageConfig {
                        granularity,
                        dapa: polynomial,
                        identity: method == Method::Identity,
                        budget: Budget { relus: 1234 },
                        baseline: Some("runs/b/best.safetensors".into()),
                        ..ReplaceStageConfig::new(1234)
                    })
                };
                let mut model = build("small", &d, 1, 28, 10, 3).unwrap();
                let rep = Replacement::install(model.as_mut(), gates.clone(), &d).unwrap();
                let state = GateState {
                    config: gates,
                    passes: 41,
                    frozen: false,
                };
                let mut ck = Checkpoint::new(meta(config, Some(state)));
                ck.put_model(model.as_ref()).unwrap();
                let path = tmp("rt");
                ck.save(&path).unwrap();
                let back = Checkpoint::load(&path).unwrap();
                let what = format!("{method:?} {granularity:?} {polynomial:?}");
                let mut want = ck.meta.clone();
                want.checksums = back.meta.checksums.clone();
                assert_eq!(back.meta, want, "{what}");
                let header = Checkpoint::read_meta(&path).unwrap();
                assert_eq!(
                    header, back.meta,
                    "{what}: the header alone gives the metadata"
                );
                assert_eq!(back.tensors, ck.tensors, "{what}");
                let (m2, rep2) = load_model(&d, &back).unwrap();
                let rep2 = rep2.unwrap();
                assert_eq!(rep2.cfg, rep.cfg, "{what}");
                assert_eq!(rep2.passes, 41, "{what}");
                let mut again = Checkpoint::new(back.meta.clone());
                again.put_model(m2.as_ref()).unwrap();
                assert_eq!(
                    again.tensors, ck.tensors,
                    "{what}: the model restores exactly"
                );
                let _ = std::fs::remove_file(&path);
            }
        }
    }
}

/// Rewrite `path` with other metadata (tensors kept).
fn rewrite(path: &Path, out: &Path, edit: impl FnOnce(&mut HashMap<String, String>)) {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let mut meta = header.metadata().clone().unwrap();
    edit(&mut meta);
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = st.tensors();
    std::fs::write(out, safetensors::serialize(views, Some(meta)).unwrap()).unwrap();
}

#[test]
fn unknown_or_malformed_metadata_is_an_error_naming_it() {
    let d = Device::Cpu;
    let model = build("small", &d, 1, 28, 10, 3).unwrap();
    let mut ck = Checkpoint::new(meta(StageConfig::Snl(SnlConfig::new(5)), None));
    ck.put_model(model.as_ref()).unwrap();
    let good = tmp("good");
    ck.save(&good).unwrap();
    let bad = tmp("bad");
    type Edit = Box<dyn FnOnce(&mut HashMap<String, String>)>;
    let err = |edit: Edit| {
        rewrite(&good, &bad, edit);
        let e = Checkpoint::load(&bad).unwrap_err().to_string();
        // Reading the header alone finds the same fault, unless it is in the tensors.
        if let Err(h) = Checkpoint::read_meta(&bad) {
            assert_eq!(h.to_string(), e);
        } else {
            assert!(e.contains("checksum"), "{e}");
        }
        e
    };
    let e = err(Box::new(|m| {
        m.insert("rep.method".into(), "autorep".into());
    }));
    assert!(e.contains("unknown metadata key 'rep.method'"), "{e}");
    let e = err(Box::new(|m| {
        let j = m[META_KEY].replace("\"dataset\"", "\"datasett\"");
        m.insert(META_KEY.into(), j);
    }));
    assert!(e.contains("datasett"), "{e}");
    let e = err(Box::new(|m| {
        let j = m[META_KEY].replace("\"phase\":\"main\"", "\"phase\":\"sideways\"");
        m.insert(META_KEY.into(), j);
    }));
    assert!(e.contains("sideways"), "{e}");
    let e = err(Box::new(|m| {
        m.remove(META_KEY);
    }));
    assert!(e.contains("no 'autorep' metadata"), "{e}");
    let e = err(Box::new(|m| {
        let mut v: serde_json::Value = serde_json::from_str(&m[META_KEY]).unwrap();
        let sums = v["checksums"].as_object_mut().unwrap();
        let k = sums.keys().next().unwrap().clone();
        sums.insert(k, "0000000000000000".into());
        m.insert(META_KEY.into(), v.to_string());
    }));
    assert!(e.contains("does not match its checksum"), "{e}");
    // A truncated or foreign file: one line from either reader, no panic.
    let bytes = std::fs::read(&good).unwrap();
    for (cut, why) in [
        (4, "8-byte header length"),
        (40, "past the end of the file"),
    ] {
        std::fs::write(&bad, &bytes[..cut]).unwrap();
        let e = Checkpoint::read_meta(&bad).unwrap_err().to_string();
        assert!(
            e.contains("not a valid safetensors checkpoint") && e.contains(why),
            "{e}"
        );
        assert!(Checkpoint::load(&bad).is_err());
    }
    let mut garbled = bytes.clone();
    garbled[8] = b'[';
    std::fs::write(&bad, &garbled).unwrap();
    let e = Checkpoint::read_meta(&bad).unwrap_err().to_string();
    assert!(
        e.contains("not a valid safetensors checkpoint") && e.contains("header:"),
        "{e}"
    );
    for p in [good, bad] {
        let _ = std::fs::remove_file(p);
    }
}

#[test]
fn tensors_are_named_by_module_path_and_positional_checkpoints_still_load() {
    let d = Device::Cpu;
    let gates = ReplaceConfig::autorep(100);
    let mut model = build("resnet18_in", &d, 3, 8, 10, 1).unwrap();
    Replacement::install(model.as_mut(), gates.clone(), &d).unwrap();
    let state = || GateState {
        config: gates.clone(),
        passes: 0,
        frozen: false,
    };
    let mut m = meta(
        StageConfig::Replace(ReplaceStageConfig::new(100)),
        Some(state()),
    );
    (m.model, m.channels, m.input) = ("resnet18_in".into(), 3, 8);
    let mut ck = Checkpoint::new(m.clone());
    ck.put_model(model.as_ref()).unwrap();
    // The names of the SNL/AutoReP `cifar_resnet` modules, as PyTorch's state_dict has them.
    for key in [
        "conv1.weight",
        "bn1.weight",
        "bn1.bias",
        "bn1.running_mean",
        "bn1.running_var",
        "layer1.0.conv1.weight",
        "layer1.0.bn2.running_var",
        "layer2.0.shortcut.0.weight",
        "layer2.0.shortcut.1.running_mean",
        "layer4.1.conv2.weight",
        "linear.weight",
        "linear.bias",
        "layer1.0.relu1.mask",
        "layer4.1.relu2.coef",
    ] {
        assert!(ck.tensors.contains_key(key), "no {key}");
    }
    assert!(!ck.tensors.keys().any(|k| k.starts_with("param.")));

    // A format-2 checkpoint (positional names) of the same network restores identically.
    let mut old = Checkpoint::new(Meta { format: 2, ..m });
    let named: Vec<String> = model.named_params().into_iter().map(|(k, _)| k).collect();
    let buffers: Vec<String> = model.named_buffers().into_iter().map(|(k, _)| k).collect();
    for (i, k) in named.iter().enumerate() {
        old.tensors
            .insert(format!("param.{i:04}"), ck.tensors[k].clone());
    }
    for (i, k) in buffers.iter().enumerate() {
        old.tensors
            .insert(format!("buffer.{i:04}"), ck.tensors[k].clone());
    }
    for (i, s) in model.sites().iter().enumerate() {
        for part in ["gate", "mask", "coef", "mean", "var"] {
            if let Some(v) = ck.tensors.get(&format!("{}.{part}", s.name)) {
                old.tensors.insert(format!("site.{i:02}.{part}"), v.clone());
            }
        }
    }
    let path = tmp("positional");
    old.save(&path).unwrap();
    let (fresh, _) = load_model(&d, &Checkpoint::load(&path).unwrap()).unwrap();
    let mut again = Checkpoint::new(Meta {
        format: FORMAT,
        ..Checkpoint::load(&path).unwrap().meta
    });
    again.put_model(fresh.as_ref()).unwrap();
    for (k, v) in &ck.tensors {
        assert_eq!(&again.tensors[k], v, "{k} after a format-2 round trip");
    }
    let _ = std::fs::remove_file(&path);
}

#[test]
fn a_tiny_imagenet_checkpoint_from_before_sorted_labels_is_refused() {
    use autorep::data::{Dataset, ImageSet};
    let set = ImageSet {
        images: vec![0; 2 * 3 * 64 * 64],
        labels: vec![0, 1],
        channels: 3,
        height: 64,
        width: 64,
        classes: 2,
        class_names: vec!["n001".into(), "n002".into()],
    };
    let data =
        autorep::train::Data::new(&Device::Cpu, Dataset::TinyImageNet, set.clone(), set).unwrap();
    let mut m = meta(StageConfig::Train(Default::default()), None);
    (m.dataset, m.channels, m.input, m.classes) = ("tiny-imagenet".into(), 3, 64, 2);
    let e = data
        .check(&m, Path::new("old.safetensors"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("old.safetensors numbers the tiny-imagenet classes in wnids.txt order"),
        "{e}"
    );
    m.class_order = Dataset::TinyImageNet.class_order().map(String::from);
    data.check(&m, Path::new("new.safetensors")).unwrap();
}

/// A run that trained in f32 and resumes in f16 (`--precision auto` on an adapter with f16)
/// has no loss-scaler state in its checkpoint: the scaler starts afresh, the rest is restored.
#[test]
fn an_f32_checkpoint_resumes_into_a_loss_scaled_optimizer() {
    use autorep::nn::{Optimizer, OptimizerKind, ParamGroup};
    let d = Device::Cpu;
    let w = autorep::Tensor::param(&d, &[4], vec![1.0, 2.0, 3.0, 4.0]).unwrap();
    let group = |w: &autorep::Tensor| ParamGroup::new(&d, "w", vec![w.clone()]).unwrap();
    let kind = OptimizerKind::sgd(0.9, 0.0, false);
    let mut f32_opt = Optimizer::new(&d, kind, vec![(group(&w), 0.1)]).unwrap();
    for _ in 0..3 {
        f32_opt.step(1.0).unwrap();
    }
    let mut ck = Checkpoint::new(meta(StageConfig::Train(Default::default()), None));
    ck.put_optimizer(&f32_opt).unwrap();
    let mut scaled = Optimizer::new(&d, kind, vec![(group(&w), 0.1)])
        .unwrap()
        .with_loss_scaling(65536.0, 2000)
        .unwrap();
    ck.restore_optimizer(&mut scaled).unwrap();
    // The initial scale, and the run's three steps applied: the next SGD step is not a first.
    assert_eq!(
        scaled.loss_scale_state().unwrap(),
        [65536.0, 1.0 / 65536.0, 0.0, 0.0, 3.0, 1.0]
    );
    assert_eq!(scaled.steps(), 3);
}
