//! Experiment files (`autorep run`) and budget sweeps (`autorep sweep`): every bundled config
//! parses and validates, malformed files name the key, a small experiment and a small sweep run
//! end to end on the CPU, and the sweep's CSV, JSON and SVG are well formed.

use autorep::experiment::{
    self, count_label, report, sweep_svg, Budget, Config, Row, RunOptions, SweepConfig,
};
use autorep::train::Existing;
use autorep::Device;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn configs() -> Vec<PathBuf> {
    let dir = root().join("assets/configs");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    v.sort();
    v
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("autorep-exp-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn every_bundled_config_parses_and_validates() {
    let files = configs();
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    for want in [
        "cifar10_resnet18_in_12.9k",
        "cifar100_resnet18_in_12.9k",
        "cifar10_wrn22_8_12.9k",
        "cifar100_wrn22_8_12.9k",
        "tiny_wrn22_8_55k",
        "imagenet_efficientnet_b2_50k",
        "cpu_small",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "assets/configs/{want}.toml missing"
        );
    }
    for (path, stem) in files.iter().zip(&names) {
        let text = std::fs::read_to_string(path).unwrap();
        assert!(
            text.starts_with('#'),
            "{}: starts with comments saying what it reproduces",
            path.display()
        );
        let cfg = Config::load(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(&cfg.experiment.name, stem, "{}", path.display());
        assert!(!cfg.stages().is_empty());
        assert!(cfg.plan().contains(stem.as_str()));
        let r = cfg
            .replace
            .as_ref()
            .expect("every recipe has a [replace] table");
        if stem.ends_with("12.9k") {
            assert_eq!(r.budget.relus, 12_900, "{stem}");
        }
        if stem.starts_with("tiny") {
            assert_eq!(r.budget.relus, 55_000);
            assert_eq!((r.lambda, r.s2, r.epochs), (240.0, 2.0, 80));
            assert_eq!((r.weight_lr, r.mask_lr), (1e-4, 1e-3));
            assert_eq!(r.clip_x2, 1.0, "the Tiny script clamps c2 to ±1");
        }
    }
}

#[test]
fn omitted_keys_take_the_cli_defaults() {
    let text = "[experiment]\nname = \"d\"\n[train]\n[replace]\nbudget = 12900\n[snl]\nbudget = \"5k\"\n[finetune]\n";
    let c = Config::from_toml(text, "d.toml").unwrap();
    let e = &c.experiment;
    assert_eq!(
        (e.model.as_str(), e.dataset.as_str()),
        ("resnet18_in", "cifar10")
    );
    assert_eq!((e.seed, e.batch, e.limit_train), (2, None, None));
    assert_eq!(c.out(), PathBuf::from("runs/d"));
    let t = c.train.as_ref().unwrap();
    // The official baseline script's 400 epochs at batch 256; the other stages at 128.
    assert_eq!(
        (t.epochs, t.batch, t.lr, t.momentum, t.weight_decay),
        (400, 256, 0.1, 0.9, 5e-4)
    );
    let r = c.replace.as_ref().unwrap();
    assert_eq!(r.budget.relus, 12_900);
    assert_eq!((r.lambda, r.tau, r.degree, r.s2), (140.0, 0.003, 2, 0.1));
    assert_eq!(
        (r.epochs, r.batch, r.weight_lr, r.mask_lr, r.kd, r.identity),
        (200, 128, 1e-3, 1e-3, true, false)
    );
    // The official constants (notes §2.3, §1.7), each a key of its own.
    assert_eq!((r.kd_temperature, r.kd_weight, r.s1), (4.0, 1.0, 1.0));
    assert_eq!(
        (r.var_min, r.refit_period, r.refit_limit, r.shrink),
        (0.5, 10, 508, [5.0, 10.0])
    );
    let g = r.gates();
    assert_eq!(
        (g.refit.period, g.refit.limit, g.shrink),
        (10, 508, [5.0, 10.0])
    );
    let s = c.snl.as_ref().unwrap();
    assert_eq!(s.budget.relus, 5_000);
    assert_eq!(
        (s.epochs, s.lr, s.finetune_epochs, s.finetune_lr),
        (200, 1e-3, 100, 1e-3)
    );
    let f = c.finetune.as_ref().unwrap();
    assert_eq!((f.epochs, f.batch, f.lr, f.kd), (50, 128, 1e-3, true));
    assert!(
        c.plan().contains("runs/d/replace/last.safetensors"),
        "{}",
        c.plan()
    );
}

#[test]
fn the_experiments_batch_and_seed_reach_every_stage_without_its_own() {
    let text = "[experiment]\nname = \"b\"\nbatch = 64\nseed = 7\n[train]\n[replace]\nbudget = 100\n[finetune]\nbatch = 32\nseed = 3\n";
    let c = Config::from_toml(text, "b.toml").unwrap();
    let t = c.train.as_ref().unwrap();
    let r = c.replace.as_ref().unwrap();
    let f = c.finetune.as_ref().unwrap();
    assert_eq!((t.batch, t.seed), (64, 7));
    assert_eq!((r.batch, r.seed), (64, 7));
    assert_eq!((f.batch, f.seed), (32, 3));
    let e = err("[experiment]\nname = \"b\"\nbatch = 1\n[train]\n");
    assert!(e.contains("batch 1: must be at least 2"), "{e}");
}

#[test]
fn finetune_starts_from_the_best_epoch_when_the_last_mask_ended_over_budget() {
    let out = tmp("regrow");
    // As in tests/stages.rs: every gate starts off and the first epoch's steps cannot switch
    // one back on, so epoch 0 meets the budget; with no penalty (λ = 0) the gates return.
    let text = format!(
        "[experiment]\nname = \"regrow\"\nmodel = \"small\"\ndataset = \"fashion-mnist\"\ndata = {:?}\nlimit_train = 256\nlimit_test = 64\nbatch = 32\n[train]\nepochs = 1\n[replace]\nbudget = 50\nlambda = 0.0\nh_init = [-0.15, -0.12]\nmask_lr = 0.01\nepochs = 3\nseed = 5\n[finetune]\nepochs = 1\n",
        root().join("assets/fashion-mnist-small")
    );
    let mut cfg = Config::from_toml(&text, "regrow.toml").unwrap();
    cfg.experiment.out = Some(out.clone());
    let s = experiment::run(
        &Device::Cpu,
        &cfg,
        &RunOptions {
            quiet: true,
            existing: Existing::Refuse,
            project: false,
        },
    )
    .unwrap();
    // The stage's result is its best epoch (here 0, 31, then 406 ReLUs by epoch).
    let replace = &s.rows[1];
    assert_eq!(replace.checkpoint, out.join("replace/best.safetensors"));
    assert!(replace.reached_by_selection, "{replace:?}");
    assert!(replace.relus <= 50, "{replace:?}");
    // The last mask ended over the budget: projected, and not finetuned.
    assert!(out.join("replace/projected.safetensors").exists());
    let ft = autorep::train::checkpoint::Checkpoint::load(&out.join("finetune/last.safetensors"))
        .unwrap();
    match ft.meta.config {
        autorep::train::StageConfig::Finetune(f) => {
            assert_eq!(f.from, Some(out.join("replace/best.safetensors")))
        }
        other => panic!("{other:?}"),
    }
    assert!(s.rows[2].relus <= 50, "{:?}", s.rows[2]);

    // The same file without the epochs, batch sizes and gate options it ran with, as a file
    // written under older defaults reads under newer ones (train 400 epochs at 256 now):
    // resumed, every stage continues with its own options, finds itself finished and only
    // reports.
    let defaults = text
        .replace("batch = 32\n", "")
        .replace("[train]\nepochs = 1\n", "[train]\n")
        .replace(
            "lambda = 0.0\nh_init = [-0.15, -0.12]\nmask_lr = 0.01\n",
            "",
        )
        .replace("[finetune]\nepochs = 1\n", "[finetune]\n");
    let mut again = Config::from_toml(&defaults, "regrow.toml").unwrap();
    assert_eq!(again.train.as_ref().unwrap().epochs, 400);
    assert_ne!(again.replace.as_ref().unwrap().lambda, 0.0);
    again.experiment.out = Some(out.clone());
    let mut shown = again.clone();
    let adopted = shown.adopt_resumed_options();
    assert_eq!(
        adopted,
        [
            (
                "train".to_string(),
                vec!["batch".to_string(), "epochs".into()]
            ),
            (
                "replace".into(),
                vec![
                    "batch".into(),
                    "h_init".into(),
                    "lambda".into(),
                    "mask_lr".into()
                ]
            ),
            ("finetune".into(), vec!["batch".into(), "epochs".into()]),
        ]
    );
    let resumed = experiment::run(
        &Device::Cpu,
        &again,
        &RunOptions {
            quiet: true,
            existing: Existing::Resume,
            project: false,
        },
    )
    .unwrap();
    for (a, b) in s.rows.iter().zip(&resumed.rows) {
        assert_eq!(
            (a.relus, a.top1, &a.checkpoint),
            (b.relus, b.top1, &b.checkpoint)
        );
    }
    // A schedule the file does give still has to match the run's.
    let longer = defaults.replace("[train]\n", "[train]\nepochs = 2\nbatch = 32\n");
    let mut longer = Config::from_toml(&longer, "regrow.toml").unwrap();
    longer.experiment.out = Some(out.clone());
    let mut planned = longer.clone();
    planned.adopt_resumed_options();
    assert_eq!(
        planned.train.as_ref().map(|t| (t.epochs, t.batch)),
        Some((2, 32))
    );
    assert_eq!(
        planned.finetune.as_ref().map(|f| (f.epochs, f.batch)),
        Some((1, 32))
    );
    let plan = planned.plan();
    assert!(plan.contains("train:    2 epochs, batch 32"), "{plan}");
    assert!(plan.contains("finetune: 1 epoch, SGD"), "{plan}");
    // The file's own schedule is what a longer run resumes to, and the run says so.
    let e = experiment::run(
        &Device::Cpu,
        &longer,
        &RunOptions {
            quiet: true,
            existing: Existing::Resume,
            project: false,
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("was written with epochs = 1, but this run has epochs = 2"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&out);
}

fn err(text: &str) -> String {
    Config::from_toml(text, "bad.toml").unwrap_err().to_string()
}

#[test]
fn malformed_configs_name_the_key() {
    let head = "[experiment]\nname = \"x\"\n[train]\n";
    // Unknown key: the file, the line and the key, and the keys that exist.
    let e = err(&format!("{head}[replace]\nbudget = \"1k\"\nlamda = 3\n"));
    assert!(e.starts_with("bad.toml"), "{e}");
    assert!(
        e.contains("line 6") && e.contains("`lamda`") && e.contains("`lambda`"),
        "{e}"
    );
    assert!(!e.contains('\n'), "one line: {e}");
    // Wrong type.
    let e = err(&format!(
        "{head}[replace]\nbudget = \"1k\"\nepochs = \"ten\"\n"
    ));
    assert!(
        e.contains("replace.epochs") && e.contains("invalid type"),
        "{e}"
    );
    assert!(!e.contains('\n'), "one line: {e}");
    // Out-of-range constants, each named.
    for (line, needle) in [
        ("refit_period = 0", "refit_period 0"),
        ("shrink = [5.0, 0.0]", "shrink of w2"),
        ("kd_temperature = 0.0", "kd_temperature 0"),
        ("kd_weight = -1.0", "kd_weight -1"),
        ("var_min = 0.0", "var_min"),
        ("s1 = -2.0", "s1"),
    ] {
        let e = err(&format!("{head}[replace]\nbudget = \"1k\"\n{line}\n"));
        assert!(e.contains(needle) && !e.contains('\n'), "{line}: {e}");
    }
    let e = err("[experiment]\nname = \"x\"\nseed = 1.5\n[train]\n");
    assert!(e.contains("experiment.seed"), "{e}");
    // An image size for a dataset of one size; ImageNet takes one.
    let e = err("[experiment]\nname = \"x\"\nimage_size = 64\n[train]\n");
    assert!(
        e.contains("image_size 64") && e.contains("imagenet only"),
        "{e}"
    );
    let ok = "[experiment]\nname = \"x\"\nmodel = \"efficientnet_b2\"\ndataset = \"imagenet\"\nimage_size = 128\n[train]\n";
    assert_eq!(
        Config::from_toml(ok, "ok.toml")
            .unwrap()
            .experiment
            .image_size,
        Some(128)
    );
    // Unknown table, missing key, bad values.
    let e = err("[experiment]\nname = \"x\"\n[trian]\nepochs = 1\n");
    assert!(e.contains("`trian`"), "{e}");
    let e = err(&format!("{head}[replace]\nepochs = 1\n"));
    assert!(e.contains("missing field `budget`"), "{e}");
    let e = err(&format!("{head}[replace]\nbudget = \"lots\"\n"));
    assert!(e.contains("replace.budget") && e.contains("lots"), "{e}");
    let e = err(&format!("{head}[replace]\nbudget = \"2m\"\n"));
    assert!(e.contains("budget") && e.contains("exceeds"), "{e}");
    let e = err(&format!(
        "{head}[replace]\nbudget = 10\ngranularity = \"pix\"\n"
    ));
    assert!(
        e.contains("replace.granularity") && e.contains("pixel"),
        "{e}"
    );
    let e = err("[experiment]\nname = \"x\"\nmodel = \"resnet19\"\n[train]\n");
    assert!(e.contains("resnet19"), "{e}");
    let e = err("[experiment]\nname = \"x\"\n");
    assert!(e.contains("no stage"), "{e}");
    // A replacement with nothing to start from.
    let e = err("[experiment]\nname = \"x\"\n[replace]\nbudget = 10\n");
    assert!(e.contains("[replace]") && e.contains("baseline"), "{e}");
    // A missing file names the path.
    let e = Config::load(Path::new("no/such/experiment.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("no/such/experiment.toml"), "{e}");
}

#[test]
fn budget_labels() {
    let b = |s: &str| Budget::parse(s).unwrap();
    assert_eq!(b("12.9k").relus, 12_900);
    assert_eq!(b("12.9k").label(), "12.9k");
    assert_eq!(b("5000").label(), "5k");
    assert_eq!(b("1.2M").label(), "1.2m");
    assert_eq!(b("750").label(), "750");
    assert_eq!(count_label(491_520.0), "491.52k");
    assert_eq!(
        experiment::sweep_dir(Path::new("out"), "snl", &b("20k")),
        PathBuf::from("out/snl_20k")
    );
}

/// The bundled CPU experiment at 1 epoch per stage on 128 training and 64 test images, then a
/// two-budget sweep from its baseline.
#[test]
fn small_experiment_and_sweep_run_end_to_end() {
    let mut cfg = Config::load(&root().join("assets/configs/cpu_small.toml")).unwrap();
    let out = tmp("run");
    cfg.experiment.out = Some(out.clone());
    cfg.experiment.data = Some(root().join("assets/fashion-mnist-small"));
    cfg.experiment.limit_train = Some(128);
    cfg.experiment.limit_test = Some(64);
    cfg.train.as_mut().unwrap().epochs = 1;
    let r = cfg.replace.as_mut().unwrap();
    r.epochs = 1;
    // Two steps an epoch: gates this fast (Adam moves h by about 0.05 a step, twice the
    // 0.05 + τ the highest initial h needs) under a penalty this strong reach the budget in
    // one, and finetune starts from it.
    r.mask_lr = 0.05;
    r.lambda = 200.0;
    let snl = cfg.snl.as_mut().unwrap();
    snl.epochs = 1;
    snl.finetune_epochs = 1;
    cfg.finetune.as_mut().unwrap().epochs = 1;
    cfg.validate().unwrap();
    let d = Device::Cpu;
    let s = experiment::run(
        &d,
        &cfg,
        &RunOptions {
            quiet: true,
            existing: Existing::Refuse,
            project: true,
        },
    )
    .unwrap();
    eprintln!("{}", s.table());
    let stages: Vec<&str> = s.rows.iter().map(|r| r.stage.as_str()).collect();
    assert_eq!(stages, ["train", "replace", "snl", "finetune"]);
    let total = s.rows[0].relu_total;
    assert_eq!(total, 56_448, "the small ResNet at 28x28");
    assert_eq!(
        s.rows[0].relus as usize, total,
        "the baseline keeps every ReLU"
    );
    let budget = cfg.replace.as_ref().unwrap().budget.relus;
    for r in &s.rows[1..] {
        assert_eq!(r.budget, Some(budget), "{}", r.stage);
        // One epoch is too short for the mask to reach the budget: whatever happened, the
        // row says how, and a projected network is never reported as best.
        assert_eq!(r.reached_by_selection, r.projected_gates == 0, "{r:?}");
        let file = r.checkpoint.file_name().unwrap().to_str().unwrap();
        if r.reached_by_selection {
            assert_eq!(file, "best.safetensors", "{r:?}");
        } else {
            assert_eq!(file, "projected.safetensors", "{r:?}");
        }
        assert!(r.top1 > 0.0 && r.top5 >= r.top1, "{}", r.stage);
        assert!(r.checkpoint.is_file());
    }
    assert!(s.rows[1].reached_by_selection, "{:?}", s.rows[1]);
    for f in [
        "config.toml",
        "summary.csv",
        "train/metrics.jsonl",
        "summary.json",
    ] {
        assert!(out.join(f).exists(), "{f}");
    }
    let csv = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    assert!(csv.starts_with("stage,method,budget,relus,relu_total,reached_by_selection,"));
    assert_eq!(csv.lines().count(), 5);
    assert!(s.table().contains("replace"));

    // A sweep from that baseline: AutoReP and SNL at two budgets, one epoch each.
    let data = experiment::load_data(
        "fashion-mnist",
        &root().join("assets/fashion-mnist-small"),
        Some(128),
        Some(64),
        &d,
    )
    .unwrap();
    let sweep_out = tmp("sweep");
    let mut replace = cfg.replace.clone().unwrap();
    replace.epochs = 1;
    let mut snl = cfg.snl.clone().unwrap();
    snl.finetune_epochs = 0;
    let sc = SweepConfig {
        baseline: out.join("train/best.safetensors"),
        budgets: vec![Budget::parse("2k").unwrap(), Budget::parse("8k").unwrap()],
        replace,
        snl: Some(snl),
        out: sweep_out.clone(),
        quiet: true,
        existing: Existing::Refuse,
        project: true,
        given: Default::default(),
    };
    let rows = experiment::sweep(&d, &data, &sc).unwrap();
    eprintln!("{}", report::table(&rows));
    assert_eq!(rows.len(), 5, "baseline + 2 methods x 2 budgets");
    assert_eq!(rows[0].method, "baseline");
    for r in &rows[1..] {
        assert_eq!(r.reached_by_selection, r.projected_gates == 0, "{r:?}");
    }
    for f in [
        "sweep.csv",
        "sweep.json",
        "sweep.svg",
        "summary.json",
        "autorep_2k/last.safetensors",
        "snl_8k/metrics.jsonl",
    ] {
        assert!(sweep_out.join(f).exists(), "{f}");
    }
    let svg = std::fs::read_to_string(sweep_out.join("sweep.svg")).unwrap();
    well_formed(&svg);
    assert_eq!(svg.matches("<polyline").count(), 2);
    // Resumed without the options it ran with (the commands' defaults now): every point
    // continues with its own, finds itself finished and reports the same row.
    let mut resumed = sc.clone();
    resumed.existing = Existing::Resume;
    resumed.replace.epochs = 200;
    resumed.replace.mask_lr = 1e-3;
    resumed.replace.lambda = 7.0;
    resumed.snl.as_mut().unwrap().epochs = 200;
    resumed.given = experiment::Given {
        replace: Some(Default::default()),
        snl: Some(Default::default()),
    };
    let again = experiment::sweep(&d, &data, &resumed).unwrap();
    for (a, b) in rows.iter().zip(&again) {
        assert_eq!(
            (a.relus, a.top1, &a.checkpoint),
            (b.relus, b.top1, &b.checkpoint)
        );
    }
    // Epochs the command does give must match the run's.
    resumed.given.replace = Some(["epochs".to_string()].into());
    let e = experiment::sweep(&d, &data, &resumed)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("epochs = 1, but this run has epochs = 200"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&out);
    let _ = std::fs::remove_dir_all(&sweep_out);
}

fn row(method: &str, budget: usize, relus: u64, top1: f32) -> Row {
    Row {
        stage: method.into(),
        method: method.into(),
        budget: (method != "baseline").then_some(budget),
        relus,
        relu_total: 491_520,
        reached_by_selection: true,
        projected_gates: 0,
        top1,
        top5: (top1 + 0.1).min(1.0),
        epochs: 3,
        checkpoint: PathBuf::from(format!("runs/{method}_{budget}/best.safetensors")),
    }
}

fn synthetic() -> Vec<Row> {
    vec![
        row("baseline", 491_520, 491_520, 0.95),
        row("autorep", 5_000, 4_990, 0.90),
        row("autorep", 10_000, 10_000, 0.92),
        row("autorep", 20_000, 19_870, 0.935),
        row("snl", 5_000, 5_000, 0.81),
        row("snl", 10_000, 9_950, 0.86),
        row("snl", 20_000, 20_000, 0.89),
    ]
}

/// A small XML check: tags balance and nest, attributes are quoted, text has no bare `<` or
/// `&`.
fn well_formed(s: &str) {
    let mut stack: Vec<String> = Vec::new();
    let mut rest = s;
    let mut roots = 0;
    while let Some(i) = rest.find('<') {
        let text = &rest[..i];
        for (j, _) in text.match_indices('&') {
            let ent = &text[j..];
            assert!(
                ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"]
                    .iter()
                    .any(|e| ent.starts_with(e)),
                "bare & in text: {text}"
            );
        }
        let end = rest[i..].find('>').expect("unclosed tag") + i;
        let tag = &rest[i + 1..end];
        rest = &rest[end + 1..];
        if tag.starts_with('?') || tag.starts_with('!') {
            continue;
        }
        assert!(!tag.contains('<'), "< inside a tag: {tag}");
        assert_eq!(tag.matches('"').count() % 2, 0, "unbalanced quotes: {tag}");
        if let Some(name) = tag.strip_prefix('/') {
            let open = stack.pop().unwrap_or_else(|| panic!("stray </{name}>"));
            assert_eq!(open, name.trim(), "</{name}> closes <{open}>");
            continue;
        }
        let name = tag
            .split(|c: char| c.is_whitespace() || c == '/')
            .next()
            .unwrap()
            .to_string();
        assert!(!name.is_empty(), "empty tag");
        if stack.is_empty() {
            roots += 1;
        }
        if !tag.ends_with('/') {
            stack.push(name);
        }
    }
    assert!(stack.is_empty(), "unclosed: {stack:?}");
    assert_eq!(roots, 1, "one root element");
    assert!(rest.trim().is_empty());
}

#[test]
fn sweep_svg_is_well_formed_with_a_polyline_per_method() {
    let svg = sweep_svg(&synthetic(), "resnet18_in <cifar10> & co");
    well_formed(&svg);
    assert!(svg.contains(r#"<svg xmlns="http://www.w3.org/2000/svg""#));
    assert_eq!(svg.matches("<polyline").count(), 2, "one per method");
    assert!(svg.contains(r#"data-method="autorep""#) && svg.contains(r#"data-method="snl""#));
    assert_eq!(
        svg.matches("<circle").count(),
        6 + 2,
        "points + legend markers"
    );
    assert!(
        svg.contains(r#"class="baseline""#),
        "baseline reference line"
    );
    assert!(svg.contains("log scale") && svg.contains("top-1 accuracy (%)"));
    assert!(
        svg.contains("&lt;cifar10&gt; &amp; co"),
        "the title is escaped"
    );
    // Log-x ticks at 1, 2, 5 × 10^k within the data range.
    for tick in [">5k<", ">10k<", ">20k<"] {
        assert!(svg.contains(tick), "tick {tick}");
    }
    // Polyline x coordinates increase with the ReLU count; 10k sits halfway (in log) between
    // 5k and 20k.
    let line = svg
        .lines()
        .find(|l| l.contains("<polyline"))
        .unwrap()
        .to_string();
    let pts = line
        .split("points=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let xs: Vec<f64> = pts
        .split(' ')
        .map(|p| p.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(xs.len(), 3);
    assert!(xs[0] < xs[1] && xs[1] < xs[2]);
    let (a, b) = (xs[1] - xs[0], xs[2] - xs[1]);
    let expect = (10_000f64 / 4_990.0).log10() / (19_870f64 / 10_000.0).log10();
    assert!((a / b - expect).abs() < 0.02, "log-x spacing {a} vs {b}");
    // Degenerate inputs still give a valid file.
    well_formed(&sweep_svg(&synthetic()[..1], "baseline only"));
    well_formed(&sweep_svg(&[], "empty"));
    well_formed(&sweep_svg(&synthetic()[1..2], "one point"));
}

#[test]
fn sweep_csv_and_json() {
    let rows = synthetic();
    let csv = report::csv(&rows);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "stage,method,budget,relus,relu_total,reached_by_selection,projected_gates,top1,top5,epochs,checkpoint"
    );
    assert_eq!(lines.len(), rows.len() + 1);
    assert_eq!(
        lines[1],
        "baseline,baseline,,491520,491520,true,0,0.950000,1.000000,3,runs/baseline_491520/best.safetensors"
    );
    for (l, r) in lines[1..].iter().zip(&rows) {
        let f: Vec<&str> = l.split(',').collect();
        assert_eq!(f.len(), 11);
        assert_eq!(f[1], r.method);
        assert_eq!(f[2].parse::<usize>().ok(), r.budget);
        assert_eq!(f[3].parse::<u64>().unwrap(), r.relus);
        assert!((f[7].parse::<f32>().unwrap() - r.top1).abs() < 1e-6);
    }
    let json: serde_json::Value = serde_json::from_str(&report::json(&rows)).unwrap();
    let arr = json.as_array().unwrap();
    assert_eq!(arr.len(), rows.len());
    let p = &arr[2];
    assert_eq!(p["method"], "autorep");
    assert_eq!(p["budget"], 10_000);
    assert_eq!(p["relus"], 10_000);
    assert_eq!(p["reached_by_selection"], true);
    assert_eq!(p["projected_gates"], 0);
    assert!((p["top1"].as_f64().unwrap() - 0.92).abs() < 1e-6);
    assert!(arr[0]["budget"].is_null());
}
