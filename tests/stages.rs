//! The stage driver on the bundled Fashion-MNIST subset (nothing outside the repository): every stage
//! resumes to exactly the tensors of an uninterrupted run (SNL across its select→finetune
//! boundary), metrics never repeat an epoch, a short replacement reaches its budget by
//! selection, a diverging run stops, evaluation changes nothing, one writer per folder.

mod common;

use autorep::train::checkpoint::{Checkpoint, Phase};
use autorep::train::config::{
    FinetuneConfig, ReplaceStageConfig, SnlConfig, StageConfig, TrainConfig,
};
use autorep::train::{run_stage, Data, Existing, Outcome, RunOptions};
use autorep::Device;
use std::path::{Path, PathBuf};

fn data() -> Data {
    common::fashion(256, 128)
}

fn opts(out: &Path, existing: Existing, stop_after: Option<usize>) -> RunOptions {
    RunOptions {
        out: out.to_path_buf(),
        existing,
        quiet: true,
        stop_after,
        allow_projection: true,
    }
}

fn stage(
    data: &Data,
    cfg: &StageConfig,
    out: &Path,
    existing: Existing,
    stop: Option<usize>,
) -> Outcome {
    run_stage(
        &Device::Cpu,
        data,
        Some("small"),
        cfg.clone(),
        &opts(out, existing, stop),
    )
    .unwrap()
}

fn same_tensors(a: &Path, b: &Path) {
    let (a, b) = (Checkpoint::load(a).unwrap(), Checkpoint::load(b).unwrap());
    assert_eq!(a.tensors.len(), b.tensors.len());
    for (name, (shape, data)) in &a.tensors {
        let (shape_b, data_b) = &b.tensors[name];
        assert_eq!(shape, shape_b, "{name}");
        assert!(
            data == data_b,
            "{name} differs between the resumed and the uninterrupted run"
        );
    }
    assert_eq!(a.meta.progress, b.meta.progress);
}

/// Run `cfg` whole into `full`; into `killed`, stop after `first` epochs, add a metrics line
/// as a kill between the metrics append and the checkpoint would leave, then resume.
fn resume_matches(data: &Data, cfg: &StageConfig, tmp: &Path, name: &str, first: usize) -> PathBuf {
    let (full, killed) = (
        tmp.join(format!("{name}-full")),
        tmp.join(format!("{name}-killed")),
    );
    let whole = stage(data, cfg, &full, Existing::Refuse, None);
    let part = stage(data, cfg, &killed, Existing::Refuse, Some(first));
    assert_eq!(part.epochs_run, first);
    assert!(!part.finished);
    let mut log = std::fs::read_to_string(killed.join("metrics.jsonl")).unwrap();
    log.push_str(&format!("{{\"stage\":\"{name}\",\"epoch\":{first}}}\n"));
    std::fs::write(killed.join("metrics.jsonl"), log).unwrap();
    let rest = stage(data, cfg, &killed, Existing::Resume, None);
    assert_eq!(rest.epochs_run, whole.epochs_done - first, "{name}");
    same_tensors(
        &full.join("last.safetensors"),
        &killed.join("last.safetensors"),
    );
    let epochs = common::logged_epochs(&killed);
    assert_eq!(
        epochs,
        (0..whole.epochs_done as u64).collect::<Vec<_>>(),
        "{name}: {epochs:?}"
    );
    full
}

/// An all-ReLU baseline of the small ResNet in `tmp/base`: `epochs` of SGD at `lr`.
fn baseline(data: &Data, tmp: &Path, epochs: usize, lr: f32) -> Outcome {
    let train = StageConfig::Train(TrainConfig {
        epochs,
        batch: 32,
        lr,
        ..TrainConfig::default()
    });
    stage(data, &train, &tmp.join("base"), Existing::Refuse, None)
}

fn fast_replace(baseline: &Path, budget: usize, epochs: usize) -> ReplaceStageConfig {
    ReplaceStageConfig {
        baseline: Some(baseline.to_path_buf()),
        epochs,
        batch: 32,
        seed: 5,
        lambda: 20.0,
        h_init: [0.0, 0.05],
        mask_lr: 0.03,
        ..ReplaceStageConfig::new(budget)
    }
}

#[test]
fn every_stage_resumes_to_the_tensors_of_an_uninterrupted_run() {
    // Half the usual images (4 steps an epoch): resuming is exact at any size, and the test
    // runs every stage twice.
    let data = common::fashion(128, 64);
    let tmp = common::tmp_dir("stages-resume");
    let train = StageConfig::Train(TrainConfig {
        epochs: 3,
        batch: 32,
        seed: 5,
        lr: 0.05,
        ..TrainConfig::default()
    });
    let base = resume_matches(&data, &train, &tmp, "train", 1).join("best.safetensors");

    let replace = StageConfig::Replace(fast_replace(&base, 7_000, 3));
    let rep = resume_matches(&data, &replace, &tmp, "replace", 1);
    // Lookahead's slow weights and its period (4 steps an epoch, k = 6: a period across the
    // kill) survive a resume.
    let lookahead = StageConfig::Replace(ReplaceStageConfig {
        lookahead: 6,
        ..fast_replace(&base, 7_000, 2)
    });
    let la = resume_matches(&data, &lookahead, &tmp, "lookahead", 1);
    let last = |d: &Path| Checkpoint::load(&d.join("last.safetensors")).unwrap();
    let (with, without) = (last(&la), last(&rep));
    assert!(with.tensors.keys().any(|k| k.ends_with(".slow")));
    assert!(!without.tensors.keys().any(|k| k.ends_with(".slow")));

    // SNL: two selection epochs, then two finetune epochs; killed at the boundary.
    let snl = StageConfig::Snl(SnlConfig {
        baseline: Some(base.clone()),
        epochs: 2,
        batch: 32,
        seed: 5,
        lambda: 1e-4,
        finetune_epochs: 2,
        finetune_lr: 1e-2,
        ..SnlConfig::new(7_000)
    });
    let snl_full = resume_matches(&data, &snl, &tmp, "snl", 2);
    let boundary = Checkpoint::load(&tmp.join("snl-killed").join("last.safetensors")).unwrap();
    assert_eq!(boundary.meta.progress.phase, Phase::Finetune);
    assert!(
        Checkpoint::load(&snl_full.join("last.safetensors"))
            .unwrap()
            .meta
            .replacement
            .unwrap()
            .frozen
    );

    let from = if rep.join("best.safetensors").exists() {
        rep.join("best.safetensors")
    } else {
        rep.join("last.safetensors")
    };
    let finetune = StageConfig::Finetune(FinetuneConfig {
        from: Some(from),
        teacher: Some(base),
        kd: true,
        epochs: 2,
        batch: 32,
        seed: 5,
        lr: 1e-3,
        // Off its default, so that a resume must carry it.
        kd_temperature: 2.0,
        ..FinetuneConfig::default()
    });
    resume_matches(&data, &finetune, &tmp, "finetune", 1);
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn a_short_replacement_reaches_its_budget_by_selection() {
    let data = common::fashion(512, 128);
    let tmp = common::tmp_dir("stages-budget");
    let base = baseline(&data, &tmp, 2, 0.05);
    let base = base.best_path.unwrap();
    let budget = 2_800; // 5% of the small ResNet's 56,448 ReLUs
    let cfg = StageConfig::Replace(fast_replace(&base, budget, 4));
    let o = stage(&data, &cfg, &tmp.join("rep"), Existing::Refuse, None);
    // The count of the learned mask itself, before any projection.
    assert!(
        o.count_before_projection <= budget as u64,
        "the mask ended at {} ReLUs, over the budget {budget}",
        o.count_before_projection
    );
    assert_eq!(o.projected_gates, 0);
    assert!(o.reached_by_selection());
    assert!(o.projected_path.is_none() && !tmp.join("rep/projected.safetensors").exists());
    let best = Checkpoint::load(o.best_path.as_ref().unwrap()).unwrap();
    assert_eq!(best.meta.progress.projected_gates, 0);
    // `best` is the network alone; the optimizer state to resume from is in `last` only.
    let last = Checkpoint::load(&tmp.join("rep/last.safetensors")).unwrap();
    let opt = |ck: &Checkpoint| ck.tensors.keys().filter(|k| k.starts_with("opt.")).count();
    assert_eq!((opt(&best), best.meta.optimizer_steps), (0, None));
    assert!(opt(&last) > 0 && last.meta.optimizer_steps.is_some());
    // The saved mask is the counted one.
    let r =
        autorep::train::eval_checkpoint(&Device::Cpu, o.best_path.as_ref().unwrap(), &data, false)
            .unwrap();
    let logged: Vec<serde_json::Value> = std::fs::read_to_string(tmp.join("rep/metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let best_epoch = best.meta.progress.best.unwrap().epoch;
    assert_eq!(logged[best_epoch]["relus"].as_u64().unwrap(), r.relus);
    assert!((logged[best_epoch]["test_top1"].as_f64().unwrap() - r.test.top1 as f64).abs() < 1e-6);
    assert!(r.test.top1 > 0.3, "top-1 {}", r.test.top1);
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn a_finished_run_resumed_reports_what_it_reported() {
    let data = data();
    let tmp = common::tmp_dir("stages-report");
    let base = baseline(&data, &tmp, 1, 0.1).best_path.unwrap();
    // Batch 64: each epoch ticks the DaPa refit clock (period 10) by 4 steps, then by its
    // evaluation's 2 passes. After 3 epochs it stands at 18, so one more evaluation would
    // refit the polynomials; after 5, the last evaluation refit them (28 → 30) after
    // re-estimating the BN statistics, so re-estimating them again would change them.
    for epochs in [3, 5] {
        let cfg = StageConfig::Replace(ReplaceStageConfig {
            batch: 64,
            bn_recalib: 2,
            ..fast_replace(&base, 40_000, epochs)
        });
        let out = tmp.join(format!("rep{epochs}"));
        let o = stage(&data, &cfg, &out, Existing::Refuse, None);
        assert_eq!(o.projected_gates, 0, "{o:?}");
        for _ in 0..2 {
            let again = stage(&data, &cfg, &out, Existing::Resume, None);
            assert_eq!(again.epochs_run, 0);
            assert_eq!(
                (again.relus, again.last_test.map(|t| (t.top1, t.loss))),
                (o.relus, o.last_test.map(|t| (t.top1, t.loss))),
                "{epochs} epochs"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn a_diverging_run_stops_with_a_clear_error_and_keeps_its_earlier_checkpoint() {
    let data = data();
    let tmp = common::tmp_dir("stages-diverge");
    // A learning rate of 1e12 overflows the weights within the first epoch.
    let cfg = StageConfig::Train(TrainConfig {
        epochs: 2,
        batch: 32,
        lr: 1e12,
        ..TrainConfig::default()
    });
    let e = run_stage(
        &Device::Cpu,
        &data,
        Some("small"),
        cfg,
        &opts(&tmp, Existing::Refuse, None),
    )
    .expect_err("training at lr 1e12 must diverge")
    .to_string();
    assert!(
        e.contains("diverged in epoch 1") && e.contains("learning rate"),
        "{e}"
    );
    assert!(
        !tmp.join("last.safetensors").exists(),
        "a diverged epoch wrote a checkpoint"
    );
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn evaluation_changes_nothing() {
    use autorep::train::stages::load_model;
    let data = data();
    let tmp = common::tmp_dir("stages-pure");
    let base = baseline(&data, &tmp, 1, 0.1);
    let cfg = StageConfig::Replace(ReplaceStageConfig {
        dapa: autorep::autorep::Polynomial::Faithful,
        ..fast_replace(base.best_path.as_ref().unwrap(), 20_000, 1)
    });
    let o = stage(&data, &cfg, &tmp.join("rep"), Existing::Refuse, None);
    let path = o.best_path.or(o.projected_path).unwrap();
    let ck = Checkpoint::load(&path).unwrap();
    let (model, rep) = load_model(&Device::Cpu, &ck).unwrap();
    let rep = rep.unwrap();
    let snapshot = |m: &dyn autorep::models::Model| {
        let mut c = Checkpoint::new(ck.meta.clone());
        c.put_model(m).unwrap();
        c.tensors
    };
    let before = (snapshot(model.as_ref()), rep.passes, rep.count().unwrap());
    let a = autorep::train::evaluate(model.as_ref(), Some(&rep), &data.test, 64).unwrap();
    let b = autorep::train::evaluate(model.as_ref(), Some(&rep), &data.test, 64).unwrap();
    assert_eq!((a.top1, a.top5, a.loss), (b.top1, b.top5, b.loss));
    assert_eq!(
        (snapshot(model.as_ref()), rep.passes, rep.count().unwrap()),
        before
    );
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn one_writer_per_folder_and_no_silent_overwrite() {
    let data = data();
    let tmp = common::tmp_dir("stages-lock");
    let cfg = StageConfig::Train(TrainConfig {
        epochs: 1,
        batch: 32,
        ..TrainConfig::default()
    });
    stage(&data, &cfg, &tmp, Existing::Refuse, None);
    let err = |existing| {
        run_stage(
            &Device::Cpu,
            &data,
            Some("small"),
            cfg.clone(),
            &opts(&tmp, existing, None),
        )
        .unwrap_err()
        .to_string()
    };
    let e = err(Existing::Refuse);
    assert!(
        e.contains("already holds a run") && e.contains("--resume") && e.contains("--overwrite"),
        "{e}"
    );
    // While a run holds the folder, a second fails at once, naming the holder.
    let lock = autorep::train::run_dir::FolderLock::acquire(&tmp).unwrap();
    let e = err(Existing::Overwrite);
    assert!(
        e.contains("in use by another autorep run") && e.contains("pid"),
        "{e}"
    );
    drop(lock);
    // An --out that names a file is refused as such.
    let file = tmp.join("metrics.jsonl");
    let e = autorep::train::run_dir::FolderLock::acquire(&file)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("is a file") && e.contains("--out"), "{e}");
    // A resumed run with other options is refused, naming the option and both values.
    let other = StageConfig::Train(TrainConfig {
        epochs: 1,
        batch: 32,
        lr: 0.5,
        ..TrainConfig::default()
    });
    let e = run_stage(
        &Device::Cpu,
        &data,
        Some("small"),
        other,
        &opts(&tmp, Existing::Resume, None),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("lr = 0.1") && e.contains("lr = 0.5"), "{e}");
    // So is one on other data (other --limit-train / --limit-test).
    let e = run_stage(
        &Device::Cpu,
        &common::fashion(128, 64),
        Some("small"),
        cfg.clone(),
        &opts(&tmp, Existing::Resume, None),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("256 training and 128 test images, but this run has 128 and 64"),
        "{e}"
    );
    let o = stage(&data, &cfg, &tmp, Existing::Overwrite, None);
    assert_eq!(o.epochs_done, 1);
    assert_eq!(common::logged_epochs(&tmp), vec![0]);
    // A run into the folder its baseline lives in would replace (with --overwrite, delete)
    // that baseline: refused however the path is spelled, and the baseline survives.
    let best = tmp.join("best.safetensors");
    let spelled = tmp.join(".").join("best.safetensors");
    for existing in [Existing::Overwrite, Existing::Resume, Existing::Refuse] {
        let replace = StageConfig::Replace(fast_replace(&spelled, 20_000, 1));
        let e = run_stage(
            &Device::Cpu,
            &data,
            None,
            replace,
            &opts(&tmp, existing, None),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("holds the baseline checkpoint") && e.contains("choose another --out"),
            "{e}"
        );
        assert!(best.is_file());
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn a_mask_over_budget_fails_unless_projected_and_the_projection_is_never_best() {
    let data = data();
    let tmp = common::tmp_dir("stages-project");
    let base = baseline(&data, &tmp, 1, 0.1);
    let base = base.best_path.unwrap();
    // h from [0, 1] at the default mask rate cannot get near 5% in one epoch of 4 steps.
    // Batch 64: the epoch's 4 steps and 2 evaluation passes, then the projected network's 2,
    // leave the DaPa refit clock (period 10) at 8, so one more evaluation would refit.
    let cfg = ReplaceStageConfig {
        baseline: Some(base.clone()),
        epochs: 1,
        batch: 64,
        ..ReplaceStageConfig::new(2_800)
    };
    let mut o = opts(&tmp.join("rep"), Existing::Refuse, None);
    o.allow_projection = false;
    let e = run_stage(
        &Device::Cpu,
        &data,
        None,
        StageConfig::Replace(cfg.clone()),
        &o,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("over its budget of 2800") && e.contains("--project") && e.contains("epochs"),
        "{e}"
    );
    assert!(tmp.join("rep/projected.safetensors").exists());
    assert!(
        !tmp.join("rep/best.safetensors").exists(),
        "a projected network became best"
    );
    let p = Checkpoint::load(&tmp.join("rep/projected.safetensors")).unwrap();
    assert!(p.meta.progress.projected_gates > 0);
    // Resumed with --project, the finished run only reports: its projected network is the
    // one it wrote, not one projected after another evaluation (which ticks the DaPa refit
    // clock), and a second resume changes nothing either.
    let first = tmp.join("first_projected.safetensors");
    std::fs::copy(tmp.join("rep/projected.safetensors"), &first).unwrap();
    let mut reports = Vec::new();
    for _ in 0..2 {
        let o = stage(
            &data,
            &StageConfig::Replace(cfg.clone()),
            &tmp.join("rep"),
            Existing::Resume,
            None,
        );
        assert_eq!(o.epochs_run, 0);
        same_tensors(&first, &tmp.join("rep/projected.safetensors"));
        reports.push((o.relus, o.last_test.map(|t| (t.top1, t.loss))));
    }
    assert_eq!(reports[0], reports[1]);
    // Finetune refuses it.
    let ft = StageConfig::Finetune(FinetuneConfig {
        from: Some(tmp.join("rep/projected.safetensors")),
        epochs: 1,
        batch: 32,
        ..FinetuneConfig::default()
    });
    let e = run_stage(
        &Device::Cpu,
        &data,
        None,
        ft,
        &opts(&tmp.join("ft"), Existing::Refuse, None),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("projected network"), "{e}");
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn a_mask_that_ends_over_budget_after_an_earlier_epoch_met_it_succeeds_with_that_best() {
    let data = data();
    let tmp = common::tmp_dir("stages-regrow");
    let base = baseline(&data, &tmp, 1, 0.1);
    let base = base.best_path.unwrap();
    // Every gate starts off (h ≤ −τ switches the initial all-on mask off at the first
    // forward) and at least 0.12 below +τ: at Adam's 0.01 per step, the first epoch's eight
    // steps do not switch one back on, so that epoch meets the budget. Without a penalty to
    // hold them (λ = 0), the gates the loss wants back on return in the next two (here 0, 301,
    // then 2,828 ReLUs).
    let budget = 50;
    let cfg = ReplaceStageConfig {
        lambda: 0.0,
        h_init: [-0.15, -0.12],
        mask_lr: 0.01,
        ..fast_replace(&base, budget, 3)
    };
    let mut o = opts(&tmp.join("rep"), Existing::Refuse, None);
    o.allow_projection = false;
    let out = run_stage(&Device::Cpu, &data, None, StageConfig::Replace(cfg), &o).unwrap();
    let logged: Vec<u64> = std::fs::read_to_string(tmp.join("rep/metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["relus"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert!(logged[0] <= budget as u64, "counts by epoch {logged:?}");
    assert!(
        out.count_before_projection > budget as u64,
        "the premise failed: the last mask is within the budget ({logged:?})"
    );
    // The run's result is its best epoch; the projected last mask is written beside it.
    let best = out.best.expect("a best epoch");
    assert!(logged[best.epoch] <= budget as u64, "{logged:?}");
    assert_eq!(
        out.result_path(),
        Some(tmp.join("rep/best.safetensors").as_path())
    );
    assert!(tmp.join("rep/projected.safetensors").exists());
    assert!(!out.reached_by_selection());
    let r = autorep::train::eval_checkpoint(
        &Device::Cpu,
        out.best_path.as_ref().unwrap(),
        &data,
        false,
    )
    .unwrap();
    assert_eq!(r.relus, logged[best.epoch]);
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn seed_seeds_h_and_finetune_trains_the_coefficients() {
    use autorep::autorep::Replacement;
    let d = Device::Cpu;
    let h = |seed| {
        let mut m = autorep::models::build("small", &d, 1, 28, 10, 0).unwrap();
        let cfg = ReplaceStageConfig {
            seed,
            ..ReplaceStageConfig::new(100)
        };
        let rep = Replacement::install(m.as_mut(), cfg.gates(), &d).unwrap();
        rep.gate_params(m.as_ref())[0].to_vec().unwrap()
    };
    assert_ne!(h(1), h(2));
    assert_eq!(h(3), h(3));

    let data = data();
    let tmp = common::tmp_dir("stages-coef");
    let base = baseline(&data, &tmp, 1, 0.1);
    let rep = StageConfig::Replace(fast_replace(base.best_path.as_ref().unwrap(), 20_000, 1));
    stage(&data, &rep, &tmp.join("rep"), Existing::Refuse, None);
    let from = tmp.join("rep/last.safetensors");
    let ft = StageConfig::Finetune(FinetuneConfig {
        from: Some(from.clone()),
        epochs: 1,
        batch: 32,
        ..FinetuneConfig::default()
    });
    stage(&data, &ft, &tmp.join("ft"), Existing::Refuse, None);
    let (a, b) = (
        Checkpoint::load(&from).unwrap(),
        Checkpoint::load(&tmp.join("ft/last.safetensors")).unwrap(),
    );
    let coefs: Vec<&String> = a.tensors.keys().filter(|k| k.ends_with(".coef")).collect();
    assert!(!coefs.is_empty());
    for k in coefs {
        assert_ne!(a.tensors[k].1, b.tensors[k].1, "{k} did not train");
    }
    for k in a.tensors.keys().filter(|k| k.ends_with(".mask")) {
        assert_eq!(a.tensors[k].1, b.tensors[k].1, "{k} moved while frozen");
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn paced_snl_reaches_its_budget_by_selection() {
    let data = common::fashion(1024, 128);
    let tmp = common::tmp_dir("stages-snl");
    let base = baseline(&data, &tmp, 2, 0.05);
    let budget = 2_800;
    let cfg = StageConfig::Snl(SnlConfig {
        baseline: base.best_path.clone(),
        epochs: 5,
        batch: 32,
        lambda: 1e-4,
        // 32 steps an epoch: α can travel from 1 to 0 within two, and Adam's jitter around
        // 0 (about the rate) stays near the 0.01 threshold.
        alpha_lr: 0.02,
        finetune_epochs: 1,
        finetune_lr: 1e-2,
        ..SnlConfig::new(budget)
    });
    let mut o = opts(&tmp.join("snl"), Existing::Refuse, None);
    o.allow_projection = false;
    let out = run_stage(&Device::Cpu, &data, None, cfg, &o).unwrap();
    let log: Vec<serde_json::Value> = std::fs::read_to_string(tmp.join("snl/metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let selection: Vec<u64> = log
        .iter()
        .filter(|l| l["phase"] == "main")
        .map(|l| l["relus"].as_u64().unwrap())
        .collect();
    eprintln!("selection counts {selection:?}");
    assert!(*selection.last().unwrap() <= budget as u64, "{selection:?}");
    // Checked ten times an epoch (every 4 of 32 steps), selection stops at the first check
    // at or below the budget. The count jitters as the α hover about the 0.01 threshold: here
    // 3,068 at one check and 1,728 four steps later, where it stopped.
    assert!(
        *selection.last().unwrap() >= budget as u64 / 2,
        "selection overshot the budget: {selection:?}"
    );
    assert_eq!(out.projected_gates, 0);
    assert!(out.best_path.is_some() && out.reached_by_selection());
    let _ = std::fs::remove_dir_all(&tmp);
}

/// An SNL selection that ends over its budget is projected by α: the gates switched off are
/// those with the smallest α at the end of selection, wherever they are (not, as ranked by
/// binarised α, all equal, the first sites in order).
#[test]
fn snl_over_budget_switches_off_the_smallest_alpha() {
    use autorep::train::config::SnlSchedule;
    let data = data();
    let tmp = common::tmp_dir("stages-snl-projection");
    let base = baseline(&data, &tmp, 1, 0.05);
    let snl = |epochs| {
        StageConfig::Snl(SnlConfig {
            baseline: base.best_path.clone(),
            epochs,
            batch: 32,
            lambda: 1e-6,
            alpha_lr: 0.02,
            schedule: SnlSchedule::Official,
            finetune_epochs: 0,
            ..SnlConfig::new(20_000)
        })
    };
    // The α at the end of a one-epoch selection: the first epoch of a longer one, stopped
    // there (a selection's last epoch projects and binarises before its checkpoint).
    let selected = stage(&data, &snl(2), &tmp.join("sel"), Existing::Refuse, Some(1));
    assert!(!selected.finished);
    let o = stage(&data, &snl(1), &tmp.join("snl"), Existing::Refuse, None);
    assert!(o.projected_gates > 0, "{o:?}");
    let alpha = Checkpoint::load(&tmp.join("sel/last.safetensors")).unwrap();
    let done = Checkpoint::load(&tmp.join("snl/projected.safetensors")).unwrap();
    let (mut off, mut kept) = (f32::NEG_INFINITY, f32::INFINITY);
    for (name, (_, mask)) in done.tensors.iter().filter(|(k, _)| k.ends_with(".mask")) {
        for (a, m) in alpha.tensors[name].1.iter().zip(mask) {
            if *a > 0.01 && *m == 0.0 {
                off = off.max(*a);
            } else if *m == 1.0 {
                kept = kept.min(*a);
            }
        }
    }
    assert!(
        off <= kept,
        "a gate of α {off} was switched off while one of α {kept} was kept"
    );
    // Without --project such a run fails as selection ends, before any finetune epoch (none
    // could become best); --resume --project then finetunes and accepts it.
    let with_finetune = match snl(1) {
        StageConfig::Snl(c) => StageConfig::Snl(SnlConfig {
            finetune_epochs: 1,
            ..c
        }),
        _ => unreachable!(),
    };
    let strict = tmp.join("strict");
    let mut o = opts(&strict, Existing::Refuse, None);
    o.allow_projection = false;
    let e = run_stage(&Device::Cpu, &data, None, with_finetune.clone(), &o)
        .unwrap_err()
        .to_string();
    assert!(e.contains("--resume --project finetunes it"), "{e}");
    assert_eq!(common::logged_epochs(&strict), [0], "no finetune epoch ran");
    assert!(strict.join("projected.safetensors").exists());
    // Resumed without --project, it fails again before any finetune epoch.
    let mut o = opts(&strict, Existing::Resume, None);
    o.allow_projection = false;
    assert!(run_stage(&Device::Cpu, &data, None, with_finetune.clone(), &o).is_err());
    assert_eq!(common::logged_epochs(&strict), [0], "no finetune epoch ran");
    let o = stage(&data, &with_finetune, &strict, Existing::Resume, None);
    assert!(
        o.finished && o.projected_gates > 0 && o.epochs_run == 1,
        "{o:?}"
    );
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn the_faithful_refit_clock_counts_training_and_evaluation_passes() {
    let data = data();
    let tmp = common::tmp_dir("stages-clock");
    let base = baseline(&data, &tmp, 1, 0.1);
    let cfg = StageConfig::Replace(ReplaceStageConfig {
        dapa: autorep::autorep::Polynomial::Faithful,
        ..fast_replace(base.best_path.as_ref().unwrap(), 20_000, 2)
    });
    stage(&data, &cfg, &tmp.join("rep"), Existing::Refuse, None);
    let ck = Checkpoint::load(&tmp.join("rep/last.safetensors")).unwrap();
    // 256 images in batches of 32: 8 training passes, then 128 test images, which the
    // official validation loader runs in 4 passes at the training batch (whatever batch the
    // evaluation here uses), per epoch.
    assert_eq!(ck.meta.replacement.unwrap().passes, 2 * (8 + 4));
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn bn_recalibration_moves_only_the_batchnorm_statistics() {
    let data = data();
    let tmp = common::tmp_dir("stages-recalib");
    let base = baseline(&data, &tmp, 1, 0.1);
    let plain = fast_replace(base.best_path.as_ref().unwrap(), 20_000, 1);
    let recal = ReplaceStageConfig {
        bn_recalib: 3,
        ..plain.clone()
    };
    stage(
        &data,
        &StageConfig::Replace(plain),
        &tmp.join("a"),
        Existing::Refuse,
        None,
    );
    stage(
        &data,
        &StageConfig::Replace(recal),
        &tmp.join("b"),
        Existing::Refuse,
        None,
    );
    let (a, b) = (
        Checkpoint::load(&tmp.join("a/last.safetensors")).unwrap(),
        Checkpoint::load(&tmp.join("b/last.safetensors")).unwrap(),
    );
    let mut moved = 0;
    for (name, (_, x)) in &a.tensors {
        let same = x == &b.tensors[name].1;
        if name.ends_with(".running_mean") || name.ends_with(".running_var") {
            moved += !same as usize;
        } else {
            assert!(same, "{name} changed by the recalibration");
        }
    }
    assert!(moved > 0, "no BatchNorm statistic was re-estimated");
    assert_eq!(
        a.meta.replacement.unwrap().passes,
        b.meta.replacement.unwrap().passes
    );
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn an_epoch_stops_once_the_gated_count_meets_its_target() {
    use autorep::autorep::Replacement;
    use autorep::nn::{Optimizer, OptimizerKind, ParamGroup};
    use autorep::train::{train_epoch, EpochPlan, StopAt};
    let d = Device::Cpu;
    let data = data();
    let mut m = autorep::models::build("small", &d, 1, 28, 10, 0).unwrap();
    let total = m.relu_total() as u64;
    let mut rep = Replacement::install(m.as_mut(), SnlConfig::new(100).gates(), &d).unwrap();
    let g = ParamGroup::new(&d, "weights", m.params()).unwrap();
    let mut opt = Optimizer::new(&d, OptimizerKind::adam(0.0), vec![(g, 1e-3)]).unwrap();
    let mut images = |count| {
        let plan = EpochPlan {
            replacement: Some(&mut rep),
            stop_at: Some(StopAt { count, every: 3 }),
            ..EpochPlan::plain(32, 1, 0)
        };
        train_epoch(m.as_ref(), &mut opt, &data.train, plan, &d)
            .unwrap()
            .images
    };
    // Every α starts at 1: the count is the total, so a target of the total stops the epoch at
    // the first check, and a target below it never does.
    assert_eq!(images(total), 3 * 32);
    assert_eq!(images(total - 1), 256);
}

#[test]
fn finetune_keeps_a_mask_within_its_slack_and_refuses_one_over_it() {
    let data = data();
    let tmp = common::tmp_dir("stages-slack");
    let base = baseline(&data, &tmp, 1, 0.1);
    let rep = StageConfig::Replace(fast_replace(base.best_path.as_ref().unwrap(), 20_000, 1));
    stage(&data, &rep, &tmp.join("rep"), Existing::Refuse, None);
    let ck = Checkpoint::load(&tmp.join("rep/last.safetensors")).unwrap();
    let count = autorep::train::eval_checkpoint(
        &Device::Cpu,
        &tmp.join("rep/last.safetensors"),
        &data,
        false,
    )
    .unwrap()
    .relus;
    // The same network, as if selected at a budget 10 under its count with a slack of 100
    // (the official code accepts B + 2K), or of 0.
    let selected_at = |slack: usize, name: &str| {
        let mut c = ck.clone();
        let budget = count as usize - 10;
        if let StageConfig::Replace(r) = &mut c.meta.config {
            r.budget.relus = budget;
            r.budget_slack = slack;
        }
        c.meta.replacement.as_mut().unwrap().config.budget = budget;
        let path = tmp.join(name);
        c.save(&path).unwrap();
        path
    };
    let finetune = |from: PathBuf| {
        StageConfig::Finetune(FinetuneConfig {
            from: Some(from),
            epochs: 1,
            batch: 32,
            ..FinetuneConfig::default()
        })
    };
    let within = selected_at(100, "within.safetensors");
    // A finetune that diverges names the run's epoch (its epochs shuffle from a stream of
    // their own, which once leaked into the message as epoch 1048577).
    let mut wild = finetune(within.clone());
    if let StageConfig::Finetune(f) = &mut wild {
        f.lr = 1e30;
    }
    let e = run_stage(
        &Device::Cpu,
        &data,
        None,
        wild,
        &opts(&tmp.join("ft-wild"), Existing::Refuse, None),
    )
    .expect_err("finetuning at lr 1e30 must diverge")
    .to_string();
    assert!(e.contains("diverged in epoch 1:"), "{e}");
    let o = stage(
        &data,
        &finetune(within),
        &tmp.join("ft"),
        Existing::Refuse,
        None,
    );
    assert_eq!((o.projected_gates, o.relus), (0, count));
    assert!(
        o.best_path.is_some(),
        "a mask within its slack is finetuned as it is"
    );

    let over = selected_at(0, "over.safetensors");
    let e = run_stage(
        &Device::Cpu,
        &data,
        None,
        finetune(over),
        &opts(&tmp.join("ft-over"), Existing::Refuse, None),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains(&format!(
            "keeps {count} ReLUs, over its budget of {}",
            count - 10
        )),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn a_distillation_weight_of_zero_trains_as_no_distillation() {
    let data = data();
    let tmp = common::tmp_dir("stages-kd");
    let base = baseline(&data, &tmp, 1, 0.1);
    let base = base.best_path.as_ref().unwrap();
    let with = |kd: bool, kd_weight: f32, name: &str| {
        let cfg = StageConfig::Replace(ReplaceStageConfig {
            kd,
            kd_weight,
            ..fast_replace(base, 20_000, 1)
        });
        stage(&data, &cfg, &tmp.join(name), Existing::Refuse, None);
        tmp.join(name).join("last.safetensors")
    };
    let (zero, off, on) = (
        with(true, 0.0, "zero"),
        with(false, 1.0, "off"),
        with(true, 1.0, "on"),
    );
    same_tensors(&zero, &off);
    let (a, b) = (
        Checkpoint::load(&on).unwrap(),
        Checkpoint::load(&off).unwrap(),
    );
    assert!(
        a.tensors.iter().any(|(k, t)| b.tensors[k].1 != t.1),
        "distillation at weight 1 changed nothing"
    );
    let _ = std::fs::remove_dir_all(&tmp);
}
