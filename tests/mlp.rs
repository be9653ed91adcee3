//! The two-layer MLP learns a problem no linear model can, identically on both devices.

mod common;
use autorep::demo::{train_mlp, DemoConfig};
use autorep::Device;

#[test]
fn mlp_reaches_95_percent_on_cpu_and_gpu() {
    let cfg = DemoConfig {
        steps: 400,
        ..Default::default()
    };
    let cpu = train_mlp(&Device::Cpu, &cfg, |_, _| {}).unwrap();
    assert!(
        cpu.train_accuracy >= 0.95,
        "cpu accuracy {}",
        cpu.train_accuracy
    );
    let Some(g) = common::gpu() else { return };
    let gpu = train_mlp(&g, &cfg, |_, _| {}).unwrap();
    assert!(
        gpu.train_accuracy >= 0.95,
        "gpu accuracy {}",
        gpu.train_accuracy
    );
}

#[test]
fn cpu_and_gpu_losses_agree_after_50_steps() {
    let Some(g) = common::gpu() else { return };
    let cfg = DemoConfig {
        steps: 50,
        log_every: 10,
        ..Default::default()
    };
    let cpu = train_mlp(&Device::Cpu, &cfg, |_, _| {}).unwrap();
    let gpu = train_mlp(&g, &cfg, |_, _| {}).unwrap();
    for ((s, lc), (_, lg)) in cpu.losses.iter().zip(&gpu.losses) {
        assert!((lc - lg).abs() <= 1e-3, "step {s}: cpu {lc} vs gpu {lg}");
    }
    assert!(cpu.final_loss < cpu.losses[0].1, "the loss went down");
}
