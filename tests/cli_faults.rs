//! The binary under bad input and faults: every case is a one-line error and a non-zero exit
//! before work starts, or the correct result with nothing lost; a run killed with SIGKILL at a
//! random point resumes to the tensors of an uninterrupted run. Everything runs on the bundled
//! Fashion-MNIST subset.

mod common;

use autorep::train::checkpoint::Checkpoint;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_autorep"));
    c.env_remove("AUTOREP_DEVICE").env_remove("AUTOREP_PLANS");
    // A plans cache no test writes: the built-in rule, whatever the user's cache holds.
    c.env(
        "AUTOREP_CACHE_DIR",
        std::env::temp_dir().join(format!("autorep-faults-no-cache-{}", std::process::id())),
    );
    c
}

fn autorep(args: &[&str]) -> Output {
    bin().args(args).output().unwrap()
}

fn data_dir() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("assets/fashion-mnist-small")
        .display()
        .to_string()
}

/// `train` of the small model on the first `n` bundled images into `out`.
fn train_args(out: &Path, n: usize, epochs: usize) -> Vec<String> {
    [
        "--device",
        "cpu",
        "train",
        "--model",
        "small",
        "--dataset",
        "fashion-mnist",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([
        "--data".into(),
        data_dir(),
        "--limit-train".into(),
        n.to_string(),
        "--limit-test".into(),
        "64".into(),
        "--batch".into(),
        "32".into(),
        "--epochs".into(),
        epochs.to_string(),
        "--lr".into(),
        "0.05".into(),
        "--out".into(),
        out.display().to_string(),
    ])
    .collect()
}

fn run(args: &[String]) -> Output {
    bin().args(args).output().unwrap()
}

/// `replace` from `baseline` on the CPU over `data` into `out`, with `extra` options (a
/// budget of 2k and one epoch unless they say otherwise).
fn replace_cpu(baseline: &str, data: &str, out: &Path, extra: &[&str]) -> Output {
    let mut v: Vec<String> = [
        "--device",
        "cpu",
        "replace",
        "--baseline",
        baseline,
        "--data",
        data,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend(["--out".to_string(), out.display().to_string()]);
    for (flag, value) in [("--budget", "2k"), ("--epochs", "1")] {
        if !extra.contains(&flag) {
            v.extend([flag.to_string(), value.to_string()]);
        }
    }
    v.extend(extra.iter().map(|s| s.to_string()));
    run(&v)
}

/// `eval` of `checkpoint` on the CPU over the test split in `data`, with `extra` options.
fn eval_cpu(checkpoint: &str, data: &str, extra: &[&str]) -> Output {
    let mut v = vec![
        "--device",
        "cpu",
        "eval",
        "--checkpoint",
        checkpoint,
        "--data",
        data,
    ];
    v.extend(extra);
    autorep(&v)
}

fn one_line_error(out: &Output, needles: &[&str], what: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{what}: should fail\n{err}");
    assert_eq!(err.trim().lines().count(), 1, "{what}: one line:\n{err}");
    assert!(!err.contains("panicked"), "{what}: {err}");
    for n in needles {
        assert!(err.contains(n), "{what}: '{n}' missing from: {err}");
    }
}

/// A tuning knob set to a value nothing reads is a one-line error before any work; an
/// `AUTOREP_` variable that is no setting is a warning, and the command still runs.
#[test]
fn a_mistyped_tuning_knob_is_refused_and_an_unknown_one_named() {
    for (name, value, expected) in [
        ("AUTOREP_COOP", "off", "emulate"),
        ("AUTOREP_FUSE", "no", "0 or 1"),
        ("AUTOREP_SPLIT_TARGET", "4M", "a whole number"),
        ("AUTOREP_WGRAD_SPLIT", "4", "FACTOR,MIN_K"),
        ("AUTOREP_CONV_TILE", "48", "one of 256, 128, 64, 32"),
    ] {
        let out = bin()
            .env(name, value)
            .args(["--device", "cpu", "devices"])
            .output()
            .unwrap();
        let what = format!("{name}={value}");
        one_line_error(&out, &[&what, expected], &what);
    }
    let mut cmd = bin();
    for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("AUTOREP_")) {
        cmd.env_remove(name); // the caller's own settings, known or not
    }
    let out = cmd
        .env("AUTOREP_COOP", "emulate")
        .env("AUTOREP_SPLIT_TARGET", "")
        .env("AUTOREP_COOPP", "0")
        .args(["--device", "cpu", "devices"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("warning: AUTOREP_COOPP is not a setting"),
        "{err}"
    );
}

/// A trained baseline, shared by the cases that need one.
fn baseline(dir: &Path) -> PathBuf {
    let out = dir.join("base");
    let o = run(&train_args(&out, 128, 1));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out.join("best.safetensors")
}

#[test]
fn bad_numbers_and_contradictions_are_one_line_errors_before_work_starts() {
    let dir = common::tmp_dir("faults-bad");
    let base = baseline(&dir);
    let b = base.display().to_string();
    let d = data_dir();
    // --resume without the options the run was started with (the small model on 128
    // Fashion-MNIST images from the bundled folder, 1 epoch at batch 32, lr 0.05) continues
    // it with its own, not the defaults (resnet18_in on CIFAR-10, 400 at 256, lr 0.1), and
    // says so: the finished run only reports. An option given again must match the run's.
    let base_dir = dir.join("base").display().to_string();
    let resume = |extra: &[&str]| {
        let mut args = vec!["--device", "cpu", "train", "--resume", "--out", &base_dir];
        args.extend_from_slice(extra);
        autorep(&args)
    };
    let o = resume(&[]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success()
            && stdout.contains("resuming with the run's own batch, epochs, lr, model, dataset, data folder, training limit, test limit (not given here)")
            && stdout.contains("train done: 1 epoch (0 this run)"),
        "{stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let same = ["--model", "small", "--data", &d, "--limit-train", "128"];
    let o = resume(
        &[
            &same[..],
            &["--lr", "0.05", "--epochs", "1", "--batch", "32"],
        ]
        .concat(),
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success()
            && stdout.contains("resuming with the run's own dataset, test limit (not given here)"),
        "{stdout}"
    );
    one_line_error(
        &resume(&["--lr", "0.2"]),
        &["was written with lr = 0.05", "this run has lr = 0.2"],
        "a given option that differs from the run's",
    );
    one_line_error(
        &resume(&["--limit-train", "64"]),
        &[
            "was trained on 128 training and 64 test images",
            "this run has 64 and 64",
        ],
        "a given limit that differs from the run's",
    );
    // SNL's α rate well above its 0.01 threshold is warned about before the first epoch
    // (switched-off α flicker back on); 0.02 is not.
    let snl_out = dir.join("snl").display().to_string();
    let snl = |rate: &str| {
        autorep(&[
            "--device",
            "cpu",
            "snl",
            "--baseline",
            &b,
            "--data",
            &d,
            "--limit-train",
            "128",
            "--limit-test",
            "32",
            "--batch",
            "32",
            "--budget",
            "2k",
            "--epochs",
            "3",
            "--finetune-epochs",
            "0",
            "--alpha-lr",
            rate,
            "--project",
            "--quiet",
            "--overwrite",
            "--out",
            &snl_out,
        ])
    };
    for (rate, warned) in [("0.1", true), ("0.02", false)] {
        let o = snl(rate);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{rate}: {err}");
        assert_eq!(err.contains("flicker back on"), warned, "{rate}: {err}");
    }
    let rep = dir.join("rep");
    let replace = |extra: &[&str]| replace_cpu(&b, &d, &rep, extra);
    for (extra, needles) in [
        (vec!["--lambda", "nan"], vec!["lambda NaN"]),
        (vec!["--lambda", "inf"], vec!["lambda inf"]),
        (vec!["--lambda", "-1"], vec!["lambda -1"]),
        (vec!["--tau", "nan"], vec!["tau NaN"]),
        (vec!["--mask-lr", "nan"], vec!["mask_lr NaN"]),
        (vec!["--weight-lr", "0"], vec!["weight_lr 0"]),
        (vec!["--s2", "inf"], vec!["s2 inf"]),
        (vec!["--clip-x2", "nan"], vec!["clip_x2 NaN"]),
        (vec!["--degree", "3"], vec!["degree 3"]),
        (vec!["--h-init", "1,0"], vec!["h_init"]),
        (vec!["--budget", "0.4"], vec!["whole number"]),
        (
            vec!["--precision", "f16"],
            vec!["--precision f16", "SHADER_F16"],
        ),
        (vec!["--budget", "60k"], vec!["exceeds", "56448"]),
        (
            vec!["--model", "resnet18_in"],
            vec!["--model resnet18_in", "small"],
        ),
        (
            vec!["--dataset", "cifar10"],
            vec!["dataset fashion-mnist", "dataset cifar10"],
        ),
        (vec!["--batch", "1"], vec!["batch 1"]),
        (vec!["--epochs", "0"], vec!["epochs 0"]),
        (vec!["--granularity", "pix"], vec!["pix"]),
    ] {
        one_line_error(&replace(&extra), &needles, &format!("{extra:?}"));
    }
    assert!(!dir.join("rep").join("last.safetensors").exists());
    let out = dir.join("t").display().to_string();
    for (args, needles) in [
        (vec!["--lr", "0"], vec!["lr 0 is invalid"]),
        (vec!["--lr", "nan"], vec!["lr NaN"]),
        (vec!["--momentum", "1.5"], vec!["momentum 1.5"]),
        (vec!["--epochs", "0"], vec!["epochs 0"]),
        (vec!["--limit-train", "0"], vec!["limit_train"]),
    ] {
        let mut v: Vec<&str> = vec![
            "--device",
            "cpu",
            "train",
            "--model",
            "small",
            "--dataset",
            "fashion-mnist",
            "--data",
            &d,
            "--out",
            &out,
        ];
        v.extend(args.iter());
        one_line_error(&autorep(&v), &needles, &format!("train {args:?}"));
    }
    // An experiment file with a NaN.
    let toml = dir.join("nan.toml");
    std::fs::write(
        &toml,
        format!("[experiment]\nname = \"n\"\n[replace]\nbudget = 100\nlambda = nan\nbaseline = \"{b}\"\n"),
    )
    .unwrap();
    let o = autorep(&["run", toml.to_str().unwrap(), "--dry-run"]);
    one_line_error(&o, &["[replace]", "lambda NaN"], "toml lambda = nan");
    // A dry run checks what the run would read first: the data folder and every checkpoint
    // the file names; `from = "best"` names the replacement's own.
    let dry = |name: &str, body: String| {
        let toml = dir.join(name);
        std::fs::write(&toml, body).unwrap();
        autorep(&["run", toml.to_str().unwrap(), "--dry-run"])
    };
    let head = |data: &str| {
        format!("[experiment]\nname = \"x\"\nmodel = \"small\"\ndataset = \"fashion-mnist\"\ndata = \"{data}\"\n")
    };
    one_line_error(
        &dry(
            "nodata.toml",
            head("no/such/folder") + "[train]\nepochs = 1\n",
        ),
        &[
            "data folder no/such/folder not found",
            "relative to the folder autorep runs in",
        ],
        "dry run, missing data",
    );
    one_line_error(
        &dry(
            "nobase.toml",
            head(&d) + "[replace]\nbudget = 100\nbaseline = \"nope.safetensors\"\n",
        ),
        &["[replace] baseline nope.safetensors not found"],
        "dry run, missing baseline",
    );
    let o = dry(
        "best.toml",
        head(&d)
            + &format!(
                "[replace]\nbudget = 100\nbaseline = \"{b}\"\n[finetune]\nfrom = \"best\"\n"
            ),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Counting and benchmarks refuse what they cannot do.
    one_line_error(
        &autorep(&["count", "--input", "4000000000"]),
        &["--input 4000000000"],
        "count",
    );
    one_line_error(
        &autorep(&[
            "--device",
            "cpu",
            "bench",
            "gemm",
            "--size",
            "1000000x1000000x1000000",
        ]),
        &["choose smaller sizes"],
        "bench gemm",
    );
    one_line_error(
        &autorep(&[
            "--device", "cpu", "bench", "step", "--model", "small", "--memory",
        ]),
        &["--memory", "--device gpu"],
        "bench step --memory on the CPU",
    );
    one_line_error(
        &autorep(&["--device", "cpu", "bench", "kernels", "--precision", "f16"]),
        &["--precision f16", "SHADER_F16"],
        "bench kernels f16 on the CPU",
    );
    one_line_error(
        &autorep(&["cost", "--bandwidth", "nan"]),
        &["--bandwidth NaN"],
        "cost",
    );
    // ImageNet: a folder without train/, and an image size for a dataset of one size.
    one_line_error(
        &autorep(&[
            "--device",
            "cpu",
            "train",
            "--model",
            "efficientnet_b2",
            "--dataset",
            "imagenet",
            "--data",
            "/nonexistent/imagenet",
            "--out",
            &dir.join("inet").display().to_string(),
        ]),
        &["has no train/ folder", "image-net.org"],
        "imagenet without a folder",
    );
    one_line_error(
        &autorep(&[
            "--device",
            "cpu",
            "train",
            "--dataset",
            "fashion-mnist",
            "--data",
            &d,
            "--image-size",
            "64",
            "--out",
            &dir.join("sized").display().to_string(),
        ]),
        &["applies to imagenet only"],
        "image size of a fixed-size dataset",
    );
    // PyTorch files that are missing, not state dicts, or of another network.
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/torch-state-dict/block.pth")
        .display()
        .to_string();
    let out = dir.join("imported.safetensors").display().to_string();
    let import_with = |from: &str, extra: &[&str]| {
        let mut v = vec![
            "import",
            "--from",
            from,
            "--model",
            "small",
            "--dataset",
            "fashion-mnist",
            "--out",
            &out,
        ];
        v.extend(extra);
        autorep(&v)
    };
    let import = |from: &str| import_with(from, &[]);
    one_line_error(
        &import("/nonexistent.pth"),
        &["not found"],
        "import missing",
    );
    one_line_error(
        &import(&fixture),
        &[
            "does not fit small",
            "missing (conv1.weight",
            "unexpected (bn.bias",
        ],
        "import of another network",
    );
    one_line_error(&import(&d), &["is a folder"], "import of a folder");
    one_line_error(
        &autorep(&["export", "--checkpoint", &d, "--out", &out]),
        &["is a folder", "pass a best.safetensors"],
        "export of a folder",
    );
    assert!(!Path::new(&out).exists(), "a failed import wrote {out}");
    // An autorep checkpoint is itself a state dict under these names.
    assert!(import(&b).status.success());
    // A NaN weight behind a ReLU can leave the logits finite: import refuses it by name.
    let mut nan = Checkpoint::load(Path::new(&b)).unwrap();
    let name = nan
        .tensors
        .keys()
        .find(|k| k.ends_with("conv1.weight"))
        .unwrap()
        .clone();
    nan.tensors.get_mut(&name).unwrap().1[0] = f32::NAN;
    let nan_path = dir.join("nan.safetensors");
    nan.save(&nan_path).unwrap();
    // The first import's checkpoint is not replaced without --overwrite.
    one_line_error(
        &import(&b),
        &["already exists", "--overwrite"],
        "import over an existing checkpoint",
    );
    let replaced = import_with(&b, &["--overwrite"]);
    let err = String::from_utf8_lossy(&replaced.stderr);
    assert!(replaced.status.success(), "import --overwrite: {err}");
    std::fs::remove_file(&out).unwrap();
    one_line_error(
        &import(&nan_path.display().to_string()),
        &[&format!("tensor '{name}' holds NaN")],
        "import of a NaN weight",
    );
    assert!(!Path::new(&out).exists(), "a refused import wrote {out}");
    // An output that is the input is refused before anything is written.
    one_line_error(
        &autorep(&["export", "--checkpoint", &b, "--out", &b]),
        &["--out", "is the input"],
        "export over its checkpoint",
    );
    // A hard link is the input too: writing through it would truncate the checkpoint.
    let hard = dir.join("hard.onnx");
    std::fs::hard_link(&b, &hard).unwrap();
    one_line_error(
        &autorep(&[
            "export",
            "--checkpoint",
            &b,
            "--out",
            &hard.display().to_string(),
        ]),
        &["--out", "is the input"],
        "export over a hard link to its checkpoint",
    );
    let eval = |outputs: &[&str]| eval_cpu(&b, &d, outputs);
    one_line_error(
        &eval(&["--logits", &b]),
        &["--logits", "is the input"],
        "eval logits over the checkpoint",
    );
    assert!(
        Checkpoint::load(Path::new(&b)).is_ok(),
        "the checkpoint survived"
    );
    // A device is never read whole (/dev/zero never ends), and nothing but a regular file is
    // renamed over (a device node or a pipe would be replaced by the file).
    for args in [
        ["cost", "--onnx", "/dev/zero"],
        ["cost", "--checkpoint", "/dev/zero"],
    ] {
        one_line_error(
            &autorep(&args),
            &["/dev/zero", "a device, not a regular file"],
            &format!("{args:?}"),
        );
    }
    one_line_error(
        &autorep(&["run", "/dev/zero"]),
        &["a device, not a regular file"],
        "run of a device",
    );
    let fifo = dir.join("fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let f = fifo.display().to_string();
    one_line_error(
        &autorep(&[
            "import",
            "--from",
            &b,
            "--model",
            "small",
            "--dataset",
            "fashion-mnist",
            "--out",
            &f,
        ]),
        &["checkpoint", "is a pipe or socket, not a regular file"],
        "import onto a pipe",
    );
    use std::os::unix::fs::FileTypeExt;
    assert!(
        std::fs::metadata(&fifo).unwrap().file_type().is_fifo(),
        "the pipe is still one"
    );
    // Sizes past any machine: one line, not an allocator abort.
    one_line_error(
        &autorep(&[
            "--device",
            "cpu",
            "bench",
            "step",
            "--model",
            "small",
            "--batch",
            "18446744073709551615",
        ]),
        &["--batch 18446744073709551615", "at most 65536"],
        "bench step with a huge batch",
    );
    one_line_error(
        &autorep(&["bench", "input", "--data", &d, "--image-size", "0"]),
        &["--image-size 0"],
        "bench input at size 0",
    );
    // Duplicate budgets would share a run folder.
    one_line_error(
        &autorep(&[
            "--device",
            "cpu",
            "sweep",
            "--baseline",
            &b,
            "--budgets",
            "2k,2000",
            "--data",
            &d,
            "--out",
            &dir.join("sweep").display().to_string(),
            "--epochs",
            "1",
        ]),
        &["budgets 2000 and 2000 would share the run folder of budget 2k"],
        "sweep with a budget twice",
    );
    // A dry run reads each named checkpoint's header: what the stage would refuse at its
    // start is refused now (a text file, an all-ReLU network to finetune, another dataset's).
    let text_base =
        head(&d) + "[replace]\nbudget = 100\nbaseline = \"" + &toml.display().to_string() + "\"\n";
    one_line_error(
        &dry("textbase.toml", text_base),
        &["[replace] baseline", "not a valid safetensors checkpoint"],
        "dry run, a text file as baseline",
    );
    one_line_error(
        &dry(
            "ftrelu.toml",
            head(&d) + &format!("[finetune]\nfrom = \"{b}\"\n"),
        ),
        &["[finetune] from", "has no gated sites"],
        "dry run, finetuning an all-ReLU network",
    );
    one_line_error(
        &dry(
            "shrink3.toml",
            head(&d)
                + &format!("[replace]\nbudget = 100\nbaseline = \"{b}\"\nshrink = [5, 10, 3]\n"),
        ),
        &["shrink", "expected a list of two numbers, got 3"],
        "dry run, three values for a pair",
    );
    let mut other = Checkpoint::load(Path::new(&b)).unwrap();
    other.meta.dataset = "cifar10".into();
    let other_path = dir.join("cifar.safetensors");
    other.save(&other_path).unwrap();
    one_line_error(
        &dry(
            "otherdata.toml",
            head(&d)
                + &format!(
                    "[replace]\nbudget = 100\nbaseline = \"{}\"\n",
                    other_path.display()
                ),
        ),
        &["a cifar10 checkpoint", "trains on fashion-mnist"],
        "dry run, another dataset's baseline",
    );
    let mut other = Checkpoint::load(Path::new(&b)).unwrap();
    other.meta.model = "resnet18_in".into();
    other.save(&other_path).unwrap();
    one_line_error(
        &dry(
            "othermodel.toml",
            head(&d)
                + &format!(
                    "[replace]\nbudget = 100\nbaseline = \"{}\"\n",
                    other_path.display()
                ),
        ),
        &[
            "a resnet18_in checkpoint",
            "the experiment's model is small",
        ],
        "dry run, another model's baseline",
    );
    let npy = dir.join("out.npy").display().to_string();
    one_line_error(
        &eval(&["--logits", &npy, "--labels", &npy]),
        &["--labels and --logits both name"],
        "eval with two outputs in one file",
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn folders_checkpoints_and_pipes_lose_nothing() {
    let dir = common::tmp_dir("faults-files");
    let base = baseline(&dir);
    // A second run into the same folder without --resume or --overwrite is refused.
    let again = run(&train_args(&dir.join("base"), 128, 1));
    one_line_error(
        &again,
        &["already holds a run", "--resume", "--overwrite"],
        "rerun",
    );
    // A flipped byte in a weight is caught by the checksum, naming the tensor.
    let mut bytes = std::fs::read(&base).unwrap();
    let n = bytes.len();
    bytes[n - 3] ^= 0xff;
    let bad = dir.join("flipped.safetensors");
    std::fs::write(&bad, bytes).unwrap();
    let o = autorep(&[
        "--device",
        "cpu",
        "eval",
        "--checkpoint",
        bad.to_str().unwrap(),
        "--data",
        &data_dir(),
    ]);
    one_line_error(
        &o,
        &["does not match its checksum", "tensor '"],
        "flipped byte",
    );
    // Evaluation reads the test split alone: a folder without the training files will do.
    let test_only = dir.join("test-only");
    std::fs::create_dir_all(&test_only).unwrap();
    for f in ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"] {
        std::fs::copy(Path::new(&data_dir()).join(f), test_only.join(f)).unwrap();
    }
    let o = autorep(&[
        "--device",
        "cpu",
        "eval",
        "--checkpoint",
        base.to_str().unwrap(),
        "--data",
        test_only.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && text.contains("top-1"),
        "{text}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // A checkpoint of the demo's data evaluates on the embedded subset where no folder is
    // given or found (here, run from a folder without data/).
    let mut ck = Checkpoint::load(&base).unwrap();
    ck.meta.images = Some(autorep::demo::EMBEDDED_IMAGES);
    ck.meta.data = None; // the embedded data has no folder to record
    let demo_ck = dir.join("demo.safetensors");
    ck.save(&demo_ck).unwrap();
    // Without --data, run from a folder without data/; with and without --limit-test.
    let eval_from_dir = |ck: &Path, limit: Option<&str>, expect: &str| {
        let mut c = bin();
        c.current_dir(&dir).args(["--device", "cpu", "eval"]);
        if let Some(n) = limit {
            c.args(["--limit-test", n]);
        }
        let o = c.arg("--checkpoint").arg(ck).output().unwrap();
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success() && text.contains(expect),
            "{text}{}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    eval_from_dir(&demo_ck, None, "embedded in this binary (1000 test images)");
    eval_from_dir(
        &demo_ck,
        Some("50"),
        "embedded in this binary (50 test images)",
    );
    // Any other checkpoint evaluates, given no --data, on the folder its run trained on
    // (recorded absolute), from wherever the command runs.
    eval_from_dir(&base, Some("20"), "(the folder the run trained on");
    let mut ck = Checkpoint::load(&base).unwrap();
    // NaN weights (with valid checksums: an altered file) are refused by name, never
    // evaluated to an accuracy.
    for (_, (_, v)) in ck
        .tensors
        .iter_mut()
        .filter(|(k, _)| k.ends_with(".weight"))
    {
        v.iter_mut().for_each(|x| *x = f32::NAN);
    }
    let nan = dir.join("nan.safetensors");
    ck.save(&nan).unwrap();
    let o = autorep(&[
        "--device",
        "cpu",
        "eval",
        "--checkpoint",
        nan.to_str().unwrap(),
        "--data",
        &data_dir(),
    ]);
    one_line_error(
        &o,
        &["weight' holds NaN", "the file was altered"],
        "NaN checkpoint",
    );
    // A training set smaller than the batch still trains (one partial batch per epoch).
    let small = dir.join("small");
    let mut args = train_args(&small, 20, 1);
    args.push("--quiet".into());
    let o = run(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let log = std::fs::read_to_string(small.join("metrics.jsonl")).unwrap();
    let line: serde_json::Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    assert!(line["images_per_s"].as_f64().unwrap() > 0.0, "{line}");
    // `train | head -1`: the program ends quietly, and what it checkpointed is whole.
    let piped = dir.join("piped");
    let mut child = bin()
        .args(train_args(&piped, 128, 3))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::BufRead;
        let mut first = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        assert!(first.contains("device"), "{first}");
    } // the pipe closes here
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("panicked") && !err.contains("Broken pipe"),
        "{err}"
    );
    let ck = Checkpoint::load(&piped.join("last.safetensors")).unwrap();
    assert!(ck.meta.progress.epochs_done >= 1);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The pieces of a checkpoint that must match between two runs.
fn assert_same(a: &Path, b: &Path) {
    let (a, b) = (Checkpoint::load(a).unwrap(), Checkpoint::load(b).unwrap());
    assert_eq!(a.meta.progress, b.meta.progress);
    assert_eq!(a.tensors.len(), b.tensors.len());
    for (name, (_, x)) in &a.tensors {
        assert!(
            x == &b.tensors[name].1,
            "{name} differs after the kill and resume"
        );
    }
}

#[test]
fn a_run_killed_with_sigkill_at_a_random_point_resumes_to_the_same_tensors() {
    let dir = common::tmp_dir("faults-kill");
    let full = dir.join("full");
    let start = std::time::Instant::now();
    let o = run(&train_args(&full, 256, 3));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let span = start.elapsed();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    for round in 0..2u32 {
        // A kill point anywhere within the run, from a seed printed for reproduction.
        let frac =
            ((seed.wrapping_mul(2_654_435_761).wrapping_add(round * 977)) % 1000) as f64 / 1000.0;
        let at = span.mul_f64(0.1 + 0.8 * frac);
        eprintln!("seed {seed}, round {round}: SIGKILL after {at:?} of a {span:?} run");
        let killed = dir.join(format!("killed{round}"));
        let mut child = bin()
            .args(train_args(&killed, 256, 3))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(at);
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        let mut args = train_args(&killed, 256, 3);
        args.push("--resume".into());
        let o = run(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_same(
            &full.join("last.safetensors"),
            &killed.join("last.safetensors"),
        );
        assert_same(
            &full.join("best.safetensors"),
            &killed.join("best.safetensors"),
        );
        let epochs = common::logged_epochs(&killed);
        assert_eq!(epochs, vec![0, 1, 2], "metrics after the resume");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Outputs that would replace a file, a resume that cannot continue, and inputs that would
/// run to a meaningless result: each a one-line error before any work, and nothing lost.
#[test]
fn outputs_resumes_and_degenerate_inputs_fail_before_work_and_lose_nothing() {
    let dir = common::tmp_dir("faults-outputs");
    let base = baseline(&dir);
    let b = base.display().to_string();
    let d = data_dir();
    let s = |p: &Path| p.display().to_string();

    // export and eval do not replace a file without --overwrite (here: a checkpoint).
    let other = dir.join("base").join("last.safetensors");
    let o = s(&other);
    let kept = std::fs::read(&other).unwrap();
    one_line_error(
        &autorep(&["export", "--checkpoint", &b, "--out", &o]),
        &["--out", "already exists", "--overwrite"],
        "export over another checkpoint",
    );
    let eval = |extra: &[&str]| eval_cpu(&b, &d, extra);
    one_line_error(
        &eval(&["--logits", &o]),
        &["--logits", "already exists", "--overwrite"],
        "eval logits over a checkpoint",
    );
    assert_eq!(
        std::fs::read(&other).unwrap(),
        kept,
        "the checkpoint changed"
    );
    let onnx = s(&dir.join("net.onnx"));
    for _ in 0..2 {
        let out = autorep(&["export", "--checkpoint", &b, "--out", &onnx, "--overwrite"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // An output whose folder is a file, checked before the evaluation.
    let under_file = format!("{b}/logits.npy");
    one_line_error(
        &eval(&["--logits", &under_file]),
        &["is a file, not a folder"],
        "eval output under a file",
    );

    // --resume into a folder with a best but no last checkpoint would start over and replace
    // it: refused, for a run of two epochs and for a finished run of one. A run of several
    // epochs killed between writing best and last in its first leaves just that, and starting
    // over is its resume.
    let two = dir.join("two");
    let o = run(&train_args(&two, 128, 2));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::remove_file(two.join("last.safetensors")).unwrap();
    let best_two = std::fs::read(two.join("best.safetensors")).unwrap();
    let no_last = [
        "holds a run (best.safetensors) but no last.safetensors",
        "--overwrite",
    ];
    let mut args = train_args(&two, 128, 3);
    args.push("--resume".into());
    one_line_error(&run(&args), &no_last, "resume without a last checkpoint");
    let kept = std::fs::read(two.join("best.safetensors")).unwrap();
    assert!(kept == best_two, "best changed");
    let run_dir = dir.join("base");
    std::fs::rename(&other, dir.join("last.kept")).unwrap();
    let mut args = train_args(&run_dir, 128, 1);
    args.push("--resume".into());
    one_line_error(
        &run(&args),
        &no_last,
        "resume of a finished run without last",
    );
    std::fs::rename(dir.join("last.kept"), &other).unwrap();
    let killed = dir.join("killed");
    std::fs::create_dir_all(&killed).unwrap();
    let mut first = Checkpoint::load(&base).unwrap();
    let autorep::train::StageConfig::Train(c) = &mut first.meta.config else {
        panic!("not a train checkpoint")
    };
    c.epochs = 2;
    first.save(&killed.join("best.safetensors")).unwrap();
    let mut args = train_args(&killed, 128, 2);
    args.extend(["--resume".into(), "--quiet".into()]);
    let o = run(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let last = Checkpoint::load(&killed.join("last.safetensors")).unwrap();
    assert_eq!(last.meta.progress.epochs_done, 2);
    // Resuming another stage's run names the stage before any data is read (here none is
    // given: the default folder does not exist).
    one_line_error(
        &autorep(&[
            "--device",
            "cpu",
            "snl",
            "--baseline",
            &b,
            "--budget",
            "1k",
            "--out",
            &s(&run_dir),
            "--resume",
        ]),
        &["was written by stage train, not snl", "autorep train"],
        "resume of another stage's run",
    );

    // One training image trains nothing (a batch of one is dropped).
    let mut args = train_args(&dir.join("one"), 1, 1);
    args.push("--overwrite".into());
    one_line_error(
        &run(&args),
        &["limit_train (--limit-train) must be at least 2"],
        "one training image",
    );
    // A slack that makes every mask meet the budget.
    let slack_args = [
        "--limit-train",
        "64",
        "--limit-test",
        "32",
        "--budget",
        "1k",
        "--budget-slack",
        "100k",
    ];
    one_line_error(
        &replace_cpu(&b, &d, &dir.join("slack"), &slack_args),
        &[
            "--budget-slack",
            "accepts every mask",
            "choose a slack below",
        ],
        "slack over the model's ReLUs",
    );
    // A bad AUTOREP_DEVICE names the variable.
    let out = bin()
        .env("AUTOREP_DEVICE", "fast")
        .args(["--device", "cpu", "count", "--model", "small"])
        .output()
        .unwrap();
    one_line_error(
        &out,
        &["AUTOREP_DEVICE=fast", "auto, gpu or cpu"],
        "device variable",
    );
    // A command without its subcommand lists them on one line.
    one_line_error(
        &autorep(&["data"]),
        &["requires a subcommand", "fetch"],
        "data",
    );
    one_line_error(
        &autorep(&["bench", "gemm", "--reps", "0"]),
        &["--reps"],
        "reps 0",
    );

    // A plans file that is not there, on any device; cost constants that overflow.
    one_line_error(
        &autorep(&["--device", "cpu", "--plans", "no-such.plans", "devices"]),
        &[
            "conv plans file no-such.plans not found",
            "autorep tune --out",
        ],
        "missing plans file under the CPU",
    );
    one_line_error(
        &autorep(&[
            "cost",
            "--model",
            "small",
            "--relu-rounds",
            "1e300",
            "--rtt",
            "1e300",
        ]),
        &["estimate overflows", "smaller"],
        "cost overflow",
    );
    // An experiment whose name would leave runs/, and one whose slack covers the model.
    let toml = |name: &str, body: &str| {
        let f = dir.join(name);
        let head =
            format!("[experiment]\nmodel = \"small\"\ndataset = \"fashion-mnist\"\ndata = {d:?}\n");
        std::fs::write(&f, head + body).unwrap();
        f.display().to_string()
    };
    let escape = toml(
        "escape.toml",
        "name = \"../escaped\"\n[train]\nepochs = 1\n",
    );
    one_line_error(
        &autorep(&["run", &escape, "--dry-run"]),
        &["name '../escaped' leaves runs/", "--out"],
        "experiment name leaving runs/",
    );
    let slack = toml(
        "slack.toml",
        &format!(
            "name = \"s\"\n[replace]\nbaseline = {b:?}\nbudget = 1000\nbudget_slack = 60000\n"
        ),
    );
    one_line_error(
        &autorep(&["run", &slack, "--dry-run"]),
        &["budget_slack 60000", "accepts every mask"],
        "experiment slack over the model",
    );

    // Gate tensors in a checkpoint whose header says it is not gated would be ignored.
    let mut ck = Checkpoint::load(&base).unwrap();
    // (save writes the checksums of what it holds)
    ck.tensors
        .insert("site.00.mask".into(), (vec![1], vec![1.0]));
    let forged = dir.join("forged.safetensors");
    ck.save(&forged).unwrap();
    one_line_error(
        &autorep(&[
            "--device",
            "cpu",
            "eval",
            "--checkpoint",
            &s(&forged),
            "--data",
            &d,
        ]),
        &["'site.00.mask' belongs to a gated site", "altered"],
        "gate tensors in an ungated checkpoint",
    );
    let _ = std::fs::remove_dir_all(&dir);
}
