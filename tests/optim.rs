//! Optimizers over parameter groups and learning-rate schedules.

mod common;
use autorep::nn::{Lookahead, LrSchedule, Optimizer, OptimizerKind, ParamGroup, Schedule};
use autorep::{Device, Tensor};
use common::{gpu, rand_vec, rel_err, vals};

/// Two groups with their own rates; loss = Σ (a ⊙ a) + Σ (b · 3); a few steps.
fn run(
    device: &Device,
    kind: OptimizerKind,
    lookahead: Option<Lookahead>,
    clip: Option<f32>,
) -> (Vec<f32>, Vec<f32>) {
    run_steps(device, kind, lookahead, clip, 5)
}

fn run_steps(
    device: &Device,
    kind: OptimizerKind,
    lookahead: Option<Lookahead>,
    clip: Option<f32>,
    steps: usize,
) -> (Vec<f32>, Vec<f32>) {
    let a = Tensor::param(device, &[3, 7], rand_vec(1, 21)).unwrap();
    let b = Tensor::param(device, &[65], rand_vec(2, 65)).unwrap();
    let ga = ParamGroup::new(device, "weights", vec![a.clone()]).unwrap();
    let gb = ParamGroup::new(device, "masks", vec![b.clone()]).unwrap();
    let mut opt = Optimizer::new(device, kind, vec![(ga, 0.1), (gb, 0.01)]).unwrap();
    if let Some(la) = lookahead {
        opt = opt.with_lookahead(la).unwrap();
    }
    if let Some(c) = clip {
        opt = opt.with_clip_norm(c);
    }
    for _ in 0..steps {
        opt.zero_grad().unwrap();
        let loss = a
            .mul(&a)
            .unwrap()
            .sum()
            .unwrap()
            .add(&b.scale(3.0).unwrap().sum().unwrap())
            .unwrap();
        loss.backward().unwrap();
        opt.step(0.5).unwrap();
    }
    (vals(&a), vals(&b))
}

fn kinds() -> Vec<OptimizerKind> {
    vec![
        OptimizerKind::sgd(0.0, 0.0, false),
        OptimizerKind::sgd(0.9, 5e-4, false),
        OptimizerKind::sgd(0.9, 5e-4, true),
        OptimizerKind::adam(0.0),
        OptimizerKind::adamw(0.01),
    ]
}

#[test]
fn plain_sgd_follows_the_gradient_with_each_groups_rate() {
    let (a, b) = run(
        &Device::Cpu,
        OptimizerKind::sgd(0.0, 0.0, false),
        None,
        None,
    );
    // a ← a − 0.05·2a each step → a·0.9⁵; b ← b − 0.005·3 each step.
    let (a0, b0) = (rand_vec(1, 21), rand_vec(2, 65));
    for (x, x0) in a.iter().zip(&a0) {
        assert!((x - x0 * 0.9f32.powi(5)).abs() < 1e-5);
    }
    for (x, x0) in b.iter().zip(&b0) {
        assert!((x - (x0 - 5.0 * 0.015)).abs() < 1e-5);
    }
}

#[test]
fn gpu_optimizers_match_cpu() {
    let Some(g) = gpu() else { return };
    let la = Some(Lookahead { k: 2, alpha: 0.5 });
    for kind in kinds() {
        for (lookahead, clip) in [(None, None), (la, None), (None, Some(0.5))] {
            let (ac, bc) = run(&Device::Cpu, kind, lookahead, clip);
            let (ag, bg) = run(&g, kind, lookahead, clip);
            assert!(rel_err(&ag, &ac) < 1e-5, "{kind:?} {lookahead:?} {clip:?}");
            assert!(rel_err(&bg, &bc) < 1e-5, "{kind:?} {lookahead:?} {clip:?}");
        }
    }
}

/// The official code's Lookahead (timm's) starts the slow weights at the fast ones at the first
/// sync, which therefore moves nothing; the second pulls the weights back halfway. On the
/// scaler's path the device decides which sync is the first (kernels/tests/optim_kd.rs).
#[test]
fn lookahead_first_sync_keeps_the_fast_weights() {
    let kind = OptimizerKind::adam(0.0);
    let la = Some(Lookahead { k: 2, alpha: 0.5 });
    let at = |steps, lookahead| run_steps(&Device::Cpu, kind, lookahead, None, steps);
    assert_eq!(at(2, la), at(2, None), "the first sync moved the weights");
    let (with, without) = (at(4, la), at(4, None));
    // Step 4's sync: slow (the weights after step 2) + 0.5·(fast − slow).
    let two = at(2, None);
    for (i, (w, f)) in with.0.iter().zip(&without.0).enumerate() {
        let want = two.0[i] + 0.5 * (f - two.0[i]);
        assert!((w - want).abs() < 1e-5, "a[{i}]: {w} against {want}");
    }
}

#[test]
fn clipping_shrinks_the_update() {
    let free = run(
        &Device::Cpu,
        OptimizerKind::sgd(0.0, 0.0, false),
        None,
        None,
    );
    let clipped = run(
        &Device::Cpu,
        OptimizerKind::sgd(0.0, 0.0, false),
        None,
        Some(0.1),
    );
    let a0 = rand_vec(2, 65);
    let moved = |b: &[f32]| b.iter().zip(&a0).map(|(x, y)| (x - y).abs()).sum::<f32>();
    assert!(moved(&clipped.1) < 0.1 * moved(&free.1));
}

#[test]
fn schedules_follow_their_formulas() {
    let cos = LrSchedule::new(Schedule::Cosine {
        total: 10,
        floor: 1e-5,
    });
    assert!((cos.at(0).of(0.1) - 0.1).abs() < 1e-7);
    assert!((cos.at(5).of(0.1) - (1e-5 + (0.1 - 1e-5) * 0.5)).abs() < 1e-7);
    assert!((cos.at(10).of(0.1) - 1e-5).abs() < 1e-9);
    // Every group anneals to the same floor from its own base rate, as PyTorch's
    // CosineAnnealingLR does (AutoReP's Tiny recipe: weights 1e-4, indicators 1e-3).
    assert!((cos.at(10).of(1e-3) - 1e-5).abs() < 1e-9);
    assert!((cos.at(5).of(1e-3) - (1e-5 + (1e-3 - 1e-5) * 0.5)).abs() < 1e-9);
    // A base rate under the floor stays where it is.
    assert_eq!(cos.at(10).of(1e-6), 1e-6);
    let ms = LrSchedule::new(Schedule::MultiStep {
        milestones: vec![80, 120],
        gamma: 0.1,
    });
    assert_eq!((ms.at(79).of(1.0), ms.at(80).of(1.0)), (1.0, 0.1));
    assert!((ms.at(150).of(0.5) - 0.005).abs() < 1e-8);
    let warm = LrSchedule {
        schedule: Schedule::Constant,
        warmup: 3,
    };
    assert_eq!(
        [warm.at(0).of(1.0), warm.at(2).of(1.0), warm.at(3).of(1.0)],
        [0.25, 0.75, 1.0]
    );
}
