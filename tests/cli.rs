//! The binary: subcommands run, bad input gives a one-line error and a non-zero exit.

use std::process::Command;

fn autorep(args: &[&str]) -> std::process::Output {
    autorep_cached(args, &no_cache())
}

/// A plans cache folder no test writes: the tests run by the built-in rule, whatever the
/// user's own cache holds.
fn no_cache() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("autorep-cli-no-cache-{}", std::process::id()))
}

/// The binary with its plans cache in `cache`.
fn autorep_cached(args: &[&str], cache: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_autorep"))
        .args(args)
        .env("AUTOREP_CACHE_DIR", cache)
        .env_remove("AUTOREP_PLANS")
        .output()
        .unwrap()
}

#[test]
fn devices_lists_what_auto_picks() {
    let out = autorep(&["devices"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("picks"), "{text}");
    // Every adapter says what its convolutions run by (nothing measured in an empty cache);
    // an empty AUTOREP_PLANS counts as unset.
    let adapters = text.matches("\n[").count() + usize::from(text.starts_with('['));
    let rule = "conv plans: the built-in rule (`autorep tune` on this adapter";
    assert_eq!(adapters, text.matches(rule).count(), "{text}");
    let out = autorep(&["--plans", "rule", "devices"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let forced = "conv plans: the built-in rule (--plans rule)";
    assert!(out.status.success(), "{text}");
    assert_eq!(adapters, text.matches(forced).count(), "{text}");
    let out = Command::new(env!("CARGO_BIN_EXE_autorep"))
        .arg("devices")
        .env("AUTOREP_CACHE_DIR", no_cache())
        .env("AUTOREP_PLANS", "")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(adapters, text.matches(rule).count(), "{text}");
    // Where the cache is: AUTOREP_CACHE_DIR, else an absolute XDG_CACHE_HOME, else HOME's.
    let tmp = std::env::temp_dir();
    let (xdg, home) = (tmp.join("autorep-xdg"), tmp.join("autorep-home"));
    let cache_of = |env: &[(&str, &std::path::Path)]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_autorep"));
        // Mesa keeps its shader cache under XDG_CACHE_HOME too: a relative one lands in the
        // temporary folder, not in the repository.
        c.arg("devices").current_dir(&tmp);
        for var in [
            "AUTOREP_CACHE_DIR",
            "XDG_CACHE_HOME",
            "LOCALAPPDATA",
            "AUTOREP_PLANS",
        ] {
            c.env_remove(var);
        }
        for (k, v) in env {
            c.env(k, v);
        }
        String::from_utf8_lossy(&c.output().unwrap().stdout).to_string()
    };
    if adapters > 0 {
        let at = |dir: std::path::PathBuf| dir.join("conv_plans").display().to_string();
        let text = cache_of(&[("XDG_CACHE_HOME", &xdg), ("HOME", &home)]);
        assert!(text.contains(&at(xdg.join("autorep"))), "{text}");
        let relative = std::path::Path::new("relative/cache");
        let text = cache_of(&[("XDG_CACHE_HOME", relative), ("HOME", &home)]);
        assert!(text.contains(&at(home.join(".cache/autorep"))), "{text}");
        let text = cache_of(&[("AUTOREP_CACHE_DIR", &tmp), ("XDG_CACHE_HOME", &xdg)]);
        assert!(text.contains(&at(tmp.clone())), "{text}");
    }
}

#[test]
fn demo_runs_on_the_cpu() {
    let out = autorep(&["--device", "cpu", "demo", "--engine", "--steps", "300"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("train accuracy"), "{text}");
}

#[test]
fn unknown_device_is_a_one_line_error() {
    let out = autorep(&["--device", "tpu", "devices"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("tpu"), "{err}");
}

#[test]
fn gpu_without_adapter_names_the_fix() {
    // Hide every Vulkan driver and every other backend: no adapter can exist.
    let out = Command::new(env!("CARGO_BIN_EXE_autorep"))
        .args(["--device", "gpu", "demo", "--engine", "--steps", "1"])
        .env("WGPU_BACKEND", "vulkan")
        .env("VK_DRIVER_FILES", "/nonexistent.json")
        .env("VK_ICD_FILENAMES", "/nonexistent.json")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("mesa-vulkan-drivers") && err.contains("--device cpu"),
        "{err}"
    );
}

#[test]
fn dapa_prints_the_closed_form_and_rejects_bad_input() {
    let out = autorep(&["dapa", "--mean", "0", "--std", "1", "--degree", "2"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("c0 = 0.199471") && text.contains("c2 = 0.199471") && text.contains("0.0112"),
        "{text}"
    );
    for (args, needle) in [
        (vec!["dapa", "--std", "0"], "standard deviation"),
        (vec!["dapa", "--degree", "5"], "degree 5"),
    ] {
        let out = autorep(&args);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(needle) && err.trim().lines().count() == 1,
            "{err}"
        );
    }
}

#[test]
fn written_out_defaults_follow_the_library_defaults() {
    // --h-init and --shrink show their defaults as typed (LO,HI), so they are written out as
    // text in the CLI: they must stay the library's.
    use autorep::train::config::defaults::{H_INIT, SHRINK};
    let help = String::from_utf8_lossy(&autorep(&["replace", "--help"]).stdout).to_string();
    for want in [
        format!("[default: {},{}]", H_INIT[0], H_INIT[1]),
        format!("[default: {},{}]", SHRINK[0], SHRINK[1]),
    ] {
        assert!(help.contains(&want), "replace --help lacks {want}:\n{help}");
    }
    // --epochs and --batch default per stage, so their help names the stages' constants.
    use autorep::train::config::defaults::{
        BATCH, EPOCHS, FINETUNE_EPOCHS, TRAIN_BATCH, TRAIN_EPOCHS,
    };
    let help = String::from_utf8_lossy(&autorep(&["train", "--help"]).stdout).to_string();
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    for want in [
        format!("train {TRAIN_EPOCHS}, replace {EPOCHS}, finetune {FINETUNE_EPOCHS}; snl selection {EPOCHS} "),
        format!("train {TRAIN_BATCH}, the others {BATCH}]"),
    ] {
        assert!(help.contains(&want), "train --help lacks {want}:\n{help}");
    }
}

#[test]
fn count_and_cost_report_the_models_relus() {
    let out = autorep(&["count", "--model", "resnet18_in", "--input", "64"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("total 1966080 ReLUs over 16 sites"));
    let out = autorep(&[
        "cost",
        "--model",
        "resnet18_in",
        "--relus",
        "12.9k",
        "--protocol",
        "crypten",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("12,900") && text.contains("478,620") && text.contains("6.2x"),
        "{text}"
    );
    // SNL's linearised elements are the identity: no traffic beyond the ReLUs'.
    let out = autorep(&[
        "cost",
        "--relus",
        "12.9k",
        "--degree",
        "0",
        "--protocol",
        "crypten",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("478620 identities (free)") && text.contains("5.99 MB"),
        "{text}"
    );
    let plaintext = ["--protocol", "crypten", "--secret-coefficients", "false"];
    for (extra, needle) in [
        // Plaintext coefficients make a degree-1 polynomial a linear map: free, as the
        // identity.
        (&[&["--degree", "1"][..], &plaintext].concat(), "5.99 MB"),
        // At degree 2 plaintext coefficients need one multiplication (32 B) instead of two.
        (&plaintext.to_vec(), "21.30 MB"),
        // Delphi's client keeps 18,248 B of preprocessing per ReLU.
        (&vec!["--protocol", "delphi"], "client store  235.40 MB"),
    ] {
        let out = autorep(&[&["cost", "--relus", "12.9k"][..], extra].concat());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(needle), "{extra:?}: {text}");
    }
    let out = autorep(&["cost", "--relus", "600k"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("exceeds resnet18_in's 491520 ReLUs"));
    for (args, needle) in [
        (
            vec!["cost", "--protocol", "foo"],
            "unknown protocol 'foo': use one of crypten, delphi, or all",
        ),
        (vec!["cost", "--degree", "3"], "--degree 3"),
        (
            vec!["cost", "--checkpoint", "x.safetensors", "--relus", "100"],
            "cannot be used with",
        ),
    ] {
        let out = autorep(&args);
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(
            !out.status.success() && stdout.is_empty(),
            "{args:?}: {stdout}"
        );
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
    let out = autorep(&["count", "--model", "vgg"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown model 'vgg'"));
}

#[test]
fn pipeline_commands_reject_bad_input_in_one_line() {
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "--device",
                "cpu",
                "train",
                "--model",
                "vgg",
                "--data",
                "/nonexistent",
            ],
            "unknown model 'vgg'",
        ),
        (
            vec!["--device", "cpu", "train", "--data", "/nonexistent/cifar"],
            "not found",
        ),
        (
            vec![
                "--device",
                "cpu",
                "train",
                "--dataset",
                "mnist3d",
                "--data",
                "/tmp",
            ],
            "unknown dataset 'mnist3d'",
        ),
        (
            vec![
                "--device",
                "cpu",
                "replace",
                "--data",
                "/tmp",
                "--baseline",
                "/nonexistent/b.safetensors",
                "--budget",
                "12.9k",
            ],
            "/nonexistent/b.safetensors",
        ),
        (
            vec![
                "--device",
                "cpu",
                "replace",
                "--data",
                "/tmp",
                "--baseline",
                "/nonexistent",
                "--budget",
                "lots",
            ],
            "'lots' is not a ReLU count",
        ),
        (
            vec!["--device", "cpu", "eval", "--checkpoint", "/tmp"],
            "checkpoint /tmp is a folder",
        ),
        (
            vec!["--device", "cpu", "demo", "--engine", "--steps", "0"],
            "--steps 0: train at least one step",
        ),
        // The demo's budget is a fraction or a count of the small ResNet's ReLUs, within it.
        (
            vec!["--device", "cpu", "demo", "--budget", "100k"],
            "--budget 100k is invalid",
        ),
        (
            vec![
                "--device", "cpu", "demo", "--budget", "2.8k", "--epochs", "0",
            ],
            "--epochs 0",
        ),
        (
            vec![
                "--device", "cpu", "bench", "step", "--model", "small", "--steps", "0",
            ],
            "--steps 0: time at least one step",
        ),
        // A negative value meets the option's own check, not "unexpected argument '-1'".
        (
            vec!["cost", "--relus", "10k", "--bandwidth", "-1"],
            "--bandwidth -1 is invalid",
        ),
        (
            vec![
                "--device",
                "cpu",
                "replace",
                "--baseline",
                "/nonexistent",
                "--budget",
                "-3",
            ],
            "must be a finite non-negative number, got '-3'",
        ),
    ];
    let out = autorep(&["--device", "cpu", "train", "--epochs", "-1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: invalid value '-1' for '--epochs"),
        "{err}"
    );
    // The parser's own errors are one line too, tips and missing options kept.
    for (args, needle) in [
        (
            vec!["train", "--bach", "3"],
            "tip: a similar argument exists: '--batch'",
        ),
        (
            vec!["import"],
            "required arguments were not provided: --from",
        ),
        (
            vec!["bench", "step", "--batch", "x"],
            "invalid value 'x' for '--batch",
        ),
    ] {
        let out = autorep(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(needle) && err.contains("see --help"),
            "{args:?}: {err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
    }
    for (args, needle) in cases {
        let out = autorep(&args);
        assert!(!out.status.success(), "{args:?} should fail");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
    }
}

#[test]
fn data_fetch_fails_cleanly_without_internet_or_with_a_bad_name() {
    let out = autorep(&["data", "fetch", "imagenet22k"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown dataset 'imagenet22k'"));
}

#[test]
fn bench_step_profile_lists_the_kernels_and_bad_sizes_are_rejected() {
    let out = autorep(&[
        "--device",
        "cpu",
        "bench",
        "step",
        "--model",
        "small",
        "--batch",
        "2",
        "--steps",
        "1",
        "--profile",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for kernel in [
        "conv2d_forward",
        "conv2d_weight_grad",
        "bn_stats",
        "sgd_step",
        "other",
    ] {
        assert!(text.contains(kernel), "{kernel} missing from:\n{text}");
    }
    // The AutoReP stage's step: gates installed, their count under the budget.
    let gated = |budget: &str| {
        autorep(&[
            "--device", "cpu", "bench", "step", "--model", "small", "--batch", "2", "--input", "8",
            "--steps", "1", "--gated", budget,
        ])
    };
    let out = gated("1k");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("small gated (1000 ReLUs) batch 2"), "{text}");
    let out = gated("lots");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("'lots' is not a ReLU count"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // On a GPU: device time per kernel and per layer pass, and the host/device split.
    if std::env::var("AUTOREP_REQUIRE_GPU").as_deref() == Ok("1") {
        let trace = std::env::temp_dir().join(format!("autorep-trace-{}.json", std::process::id()));
        let args =
            "--device gpu bench step --model small --batch 2 --input 8 --steps 1 --profile --memory";
        let mut args: Vec<&str> = args.split(' ').collect();
        args.extend(["--trace", trace.to_str().unwrap()]);
        let out = autorep(&args);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for needle in [
            "device time per kernel",
            "sgd_step f32",
            "conv weight grad 3x3 3->16 @8 s1 ",
            "conv_gemm_tiny f32 + sum_planes f32",
            "host",
            "then device",
            "back to back",
            "storage buffers by size: how many at the memory peak / held by the pool",
            " KiB ",
        ] {
            assert!(text.contains(needle), "{needle} missing from:\n{text}");
        }
        // The timeline: one complete event per dispatch of the profiled step, in order.
        let t: serde_json::Value = serde_json::from_slice(&std::fs::read(&trace).unwrap()).unwrap();
        let events = t["traceEvents"].as_array().unwrap();
        assert!(events.len() > 20, "{} events", events.len());
        assert!(events
            .iter()
            .all(|e| e["ph"] == "X" && e["dur"].as_f64().unwrap() >= 0.0));
        assert!(events
            .iter()
            .any(|e| e["name"] == "conv weight grad 3x3 3->16 @8 s1"));
        let ts: Vec<f64> = events.iter().map(|e| e["ts"].as_f64().unwrap()).collect();
        assert!(
            ts.windows(2).all(|w| w[0] <= w[1]),
            "dispatches run in order"
        );
        let _ = std::fs::remove_file(&trace);
    }
    let out = autorep(&["--device", "cpu", "bench", "gemm", "--size", "64x0x3"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("MxNxK"), "{err}");
}

#[test]
fn tune_writes_plans_that_the_other_commands_run_by() {
    let out = autorep(&["--device", "cpu", "tune", "--model", "small"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--device gpu"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    if std::env::var("AUTOREP_REQUIRE_GPU").as_deref() != Ok("1") {
        return;
    }
    let cache = std::env::temp_dir().join(format!("autorep-plans-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache);
    let tune = || {
        autorep_cached(
            &[
                "--device", "gpu", "tune", "--model", "small", "--batch", "2", "--input", "8",
                "--reps", "1",
            ],
            &cache,
        )
    };
    let out = tune();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The small ResNet's step: 7 convolutions with all three passes, the stem without its
    // input gradient, and the shortcuts' forward.
    assert!(text.contains("[1/"), "{text}");
    let last = text.trim().lines().last().unwrap();
    let distinct: usize = last.split(' ').next().unwrap().parse().unwrap();
    assert!(last.contains("distinct conv passes"), "{last}");
    // By default into this adapter's entry of the cache, and only there.
    let entries: Vec<_> = std::fs::read_dir(cache.join("conv_plans"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let cached = &entries[0];
    let file = std::fs::read_to_string(cached).unwrap();
    assert!(file.starts_with("# autorep conv plans"), "{file}");
    assert_eq!(file.matches(" : tile=").count(), distinct, "{file}");
    // A second run on the same file keeps it whole.
    assert!(tune().status.success());
    let again = std::fs::read_to_string(cached).unwrap();
    assert_eq!(again.matches(" : tile=").count(), distinct, "{again}");
    let step = |plans: &[&str], cache: &std::path::Path| {
        let mut args = vec!["--device", "gpu"];
        args.extend_from_slice(plans);
        args.extend_from_slice(&[
            "bench", "step", "--model", "small", "--batch", "2", "--input", "8", "--steps", "1",
        ]);
        let out = autorep_cached(&args, cache);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        (out.status.success(), text, err)
    };
    let measured = format!("{distinct} measured conv plans");
    // Every later command on the adapter runs by the cache, unless told to keep the rule.
    let (ok, text, err) = step(&[], &cache);
    assert!(ok && text.contains(&measured), "{text}{err}");
    let (ok, text, err) = step(&["--plans", "rule"], &cache);
    assert!(ok && !text.contains("measured conv plans"), "{text}{err}");
    // A file named on the command line, with an empty cache.
    let plans = cache.join("explicit.txt");
    let path = plans.to_str().unwrap();
    std::fs::write(&plans, &file).unwrap();
    let (ok, text, err) = step(&["--plans", path], &no_cache());
    assert!(ok && text.contains(&measured), "{text}{err}");
    // `devices` reads the file for each adapter rather than only naming it.
    let listed = |cache: &std::path::Path| {
        let out = autorep_cached(&["--plans", path, "devices"], cache);
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let text = listed(&no_cache());
    let usable = format!("conv plans: {distinct} measured passes in {path} (--plans)");
    assert!(text.contains(&usable), "{text}");
    // A damaged file, another adapter's, a missing one: one line each, naming the fix.
    let damaged = file.replacen(" : tile=", " : tile=huge", 1);
    let foreign = file
        .lines()
        .map(|l| {
            if l.starts_with("adapter =") {
                "adapter = Other | Metal | 1"
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    for (bad, says) in [
        (&damaged, "unknown tile"),
        (&foreign, "not on this adapter"),
    ] {
        std::fs::write(&plans, bad).unwrap();
        let (ok, _, err) = step(&["--plans", path], &no_cache());
        assert!(!ok);
        assert!(err.contains(says) && err.contains("autorep tune"), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        let text = listed(&no_cache());
        assert!(
            text.contains("conv plans: none: ") && text.contains(says) && !text.contains(&usable),
            "{text}"
        );
    }
    std::fs::remove_file(&plans).unwrap();
    // An --out in a missing folder is refused before anything is timed.
    let nowhere = cache.join("missing").join("plans.txt");
    let out = autorep(&[
        "--device",
        "gpu",
        "tune",
        "--model",
        "small",
        "--out",
        nowhere.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("folder does not exist"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let (ok, _, err) = step(&["--plans", path], &no_cache());
    assert!(
        !ok && err.contains("conv plans file") && err.contains("not found"),
        "{err}"
    );
    // A damaged cache entry does not stop the commands: one warning, then the rule.
    std::fs::write(cached, &damaged).unwrap();
    let (ok, text, err) = step(&[], &cache);
    assert!(ok && !text.contains("measured conv plans"), "{text}{err}");
    assert!(
        err.contains("warning") && err.contains("unknown tile") && err.contains("autorep tune"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // So is an entry stamped with another adapter.
    std::fs::write(cached, &foreign).unwrap();
    let (ok, text, err) = step(&[], &cache);
    assert!(ok && !text.contains("measured conv plans"), "{text}{err}");
    assert!(err.contains("was measured on 'Other | Metal | 1'"), "{err}");
    // `tune` measures a damaged entry afresh.
    std::fs::write(cached, &damaged).unwrap();
    let out = tune();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("replacing the damaged cache entry"),
        "{text}"
    );
    let whole = std::fs::read_to_string(cached).unwrap();
    assert_eq!(whole.matches(" : tile=").count(), distinct, "{whole}");
    let _ = std::fs::remove_dir_all(&cache);
}
