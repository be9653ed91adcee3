//! The binary: subcommands run, bad input gives a one-line error and a non-zero exit.

use std::process::Command;

fn autorep(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_autorep")).args(args).output().unwrap()
}

#[test]
fn devices_lists_what_auto_picks() {
    let out = autorep(&["devices"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("picks"));
}

#[test]
fn demo_runs_on_the_cpu() {
    let out = autorep(&["--device", "cpu", "demo", "--steps", "300"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
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
        .args(["--device", "gpu", "demo", "--steps", "1"])
        .env("WGPU_BACKEND", "vulkan")
        .env("VK_DRIVER_FILES", "/nonexistent.json")
        .env("VK_ICD_FILENAMES", "/nonexistent.json")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("mesa-vulkan-drivers") && err.contains("--device cpu"), "{err}");
}
