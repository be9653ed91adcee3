//! The small end-to-end training demo: a two-layer MLP learns a 2-D problem that no linear
//! model can (a disc inside a ring), on any device.

use crate::nn::{Linear, Module, Optimizer, OptimizerKind, ParamGroup};
use crate::{Device, Labels, Result, Tensor};
use rand::{Rng, SeedableRng};
use std::rc::Rc;

/// `n` points: class 0 inside radius 0.5, class 1 on the ring 0.7..1.0 (balanced).
pub fn disc_and_ring(n: usize, seed: u64) -> (Vec<f32>, Vec<u32>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut xs = Vec::with_capacity(2 * n);
    let mut ys = Vec::with_capacity(n);
    for i in 0..n {
        let class = (i % 2) as u32;
        let r = if class == 0 {
            rng.random_range(0.0..0.5f32)
        } else {
            rng.random_range(0.7..1.0f32)
        };
        let a = rng.random_range(0.0..std::f32::consts::TAU);
        xs.extend([r * a.cos(), r * a.sin()]);
        ys.push(class);
    }
    (xs, ys)
}

pub struct Mlp {
    pub l1: Linear,
    pub l2: Linear,
}

impl Mlp {
    pub fn new(
        device: &Device,
        inputs: usize,
        hidden: usize,
        classes: usize,
        seed: u64,
    ) -> Result<Mlp> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        Ok(Mlp {
            l1: Linear::new(device, "l1", inputs, hidden, &mut rng)?,
            l2: Linear::new(device, "l2", hidden, classes, &mut rng)?,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.l2.forward(&self.l1.forward(x)?.relu()?)
    }
}

impl Module for Mlp {
    fn named_params(&self) -> Vec<(String, Tensor)> {
        [self.l1.named_params(), self.l2.named_params()].concat()
    }
}

#[derive(Debug, Clone)]
pub struct DemoConfig {
    pub points: usize,
    pub hidden: usize,
    pub steps: usize,
    pub lr: f32,
    pub seed: u64,
    /// Read the loss back every this many steps (and at the last one).
    pub log_every: usize,
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            points: 512,
            hidden: 64,
            steps: 600,
            lr: 0.5,
            seed: 7,
            log_every: 100,
        }
    }
}

#[derive(Debug, Clone)]
pub struct DemoReport {
    /// (step, loss) at every logged step.
    pub losses: Vec<(usize, f32)>,
    pub final_loss: f32,
    pub train_accuracy: f32,
    pub seconds: f64,
}

/// Full-batch training of the MLP; one submit per step, one readback per logged step.
pub fn train_mlp(
    device: &Device,
    cfg: &DemoConfig,
    mut on_log: impl FnMut(usize, f32),
) -> Result<DemoReport> {
    if cfg.steps == 0 {
        // No step leaves no loss to report (NaN) and an untrained accuracy.
        return Err(crate::Error::Invalid(
            "--steps 0: train at least one step, e.g. --steps 600".into(),
        ));
    }
    let start = std::time::Instant::now();
    let (xs, ys) = disc_and_ring(cfg.points, cfg.seed);
    let x = Tensor::from_vec(device, &[cfg.points, 2], xs)?;
    let labels = Rc::new(Labels::new(device, &ys)?);
    let model = Mlp::new(device, 2, cfg.hidden, 2, cfg.seed)?;
    let group = ParamGroup::new(device, "mlp", model.params())?;
    let mut opt = Optimizer::new(
        device,
        OptimizerKind::sgd(0.0, 0.0, false),
        vec![(group, cfg.lr)],
    )?;
    let mut losses = Vec::new();
    for step in 1..=cfg.steps {
        opt.zero_grad()?;
        let ce = model.forward(&x)?.cross_entropy(&labels, 0.0)?;
        let loss = ce.loss.mean()?;
        loss.backward()?;
        opt.step(1.0)?;
        device.flush()?;
        if step % cfg.log_every.max(1) == 0 || step == cfg.steps {
            let v = loss.item()?;
            losses.push((step, v));
            on_log(step, v);
        }
    }
    let accuracy = crate::no_grad(|| -> Result<f32> {
        let ce = model.forward(&x)?.cross_entropy(&labels, 0.0)?;
        ce.correct.mean()?.item()
    })?;
    Ok(DemoReport {
        final_loss: losses.last().map_or(f32::NAN, |l| l.1),
        losses,
        train_accuracy: accuracy,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// The training and test images of the embedded subset, as a checkpoint records them.
pub const EMBEDDED_IMAGES: [usize; 2] = [4_000, 1_000];

/// The embedded dataset of `autorep demo`: 4,000 training and 1,000 test images of
/// Fashion-MNIST (assets/fashion-mnist-small, Expat licence).
const FM_TRAIN_IMAGES: &[u8] =
    include_bytes!("../assets/fashion-mnist-small/train-images-idx3-ubyte.gz");
const FM_TRAIN_LABELS: &[u8] =
    include_bytes!("../assets/fashion-mnist-small/train-labels-idx1-ubyte.gz");
const FM_TEST_IMAGES: &[u8] =
    include_bytes!("../assets/fashion-mnist-small/t10k-images-idx3-ubyte.gz");
const FM_TEST_LABELS: &[u8] =
    include_bytes!("../assets/fashion-mnist-small/t10k-labels-idx1-ubyte.gz");

/// Sizes of the AutoReP demo.
#[derive(Debug, Clone)]
pub struct PipelineDemo {
    pub baseline_epochs: usize,
    pub replace_epochs: usize,
    pub snl_epochs: usize,
    pub finetune_epochs: usize,
    /// Fraction of the model's ReLUs to keep.
    pub budget_fraction: f64,
    /// Use only this many training / test images (None: all 4,000 / 1,000).
    pub limit: Option<(usize, usize)>,
    pub batch: usize,
    pub out: std::path::PathBuf,
    pub quiet: bool,
}

impl Default for PipelineDemo {
    fn default() -> Self {
        PipelineDemo {
            baseline_epochs: 4,
            replace_epochs: 4,
            snl_epochs: 4,
            finetune_epochs: 2,
            budget_fraction: 0.05,
            limit: None,
            batch: 64,
            out: "runs/demo".into(),
            quiet: false,
        }
    }
}

/// One row of the demo's final table: the evaluated result and its CrypTen communication.
#[derive(Debug, Clone)]
pub struct DemoRow {
    pub label: String,
    pub row: crate::experiment::Row,
    pub crypten_bytes: f64,
}

/// The embedded Fashion-MNIST subset (4,000 training and 1,000 test images) on `device`,
/// or its first `limit` images.
pub fn embedded_data(device: &Device, limit: Option<(usize, usize)>) -> Result<crate::train::Data> {
    use crate::data::{idx_pair_from_bytes, Dataset};
    crate::train::check_limits(limit.map(|l| l.0), limit.map(|l| l.1))?;
    let mut train = idx_pair_from_bytes(
        "train-images (embedded)",
        FM_TRAIN_IMAGES,
        "train-labels (embedded)",
        FM_TRAIN_LABELS,
        10,
    )?;
    let mut test = idx_pair_from_bytes(
        "t10k-images (embedded)",
        FM_TEST_IMAGES,
        "t10k-labels (embedded)",
        FM_TEST_LABELS,
        10,
    )?;
    if let Some((a, b)) = limit {
        train = train.subset(..a.min(train.len()));
        test = test.subset(..b.min(test.len()));
    }
    crate::train::Data::new(device, Dataset::FashionMnist, train, test)
}

/// The whole pipeline on the embedded Fashion-MNIST subset with the small ResNet: baseline →
/// AutoReP (DaPa) and its identity ablation → SNL, all at the same budget, each through the
/// stage driver into `OUT/<stage>` (started over each time) and evaluated from its result.
/// Writes `OUT/summary.json`.
pub fn pipeline_demo(device: &Device, d: &PipelineDemo) -> Result<Vec<DemoRow>> {
    use crate::experiment::report;
    use crate::train::config::{ReplaceStageConfig, SnlConfig, StageConfig, TrainConfig};
    use crate::train::{run_stage, Existing, RunOptions};
    let data = embedded_data(device, d.limit)?;
    let opts = |name: &str| RunOptions {
        out: d.out.join(name),
        existing: Existing::Overwrite,
        quiet: d.quiet,
        stop_after: None,
        allow_projection: true,
    };
    let say = |s: &str| {
        if !d.quiet {
            println!("{s}");
        }
    };
    say(&format!(
        "== baseline: small ResNet on Fashion-MNIST ({} train, {} test images)",
        data.train.len(),
        data.test.len()
    ));
    let _lock = crate::train::run_dir::FolderLock::acquire(&d.out)?;
    let train = TrainConfig {
        epochs: d.baseline_epochs,
        batch: d.batch,
        lr: 0.05,
        ..TrainConfig::default()
    };
    let base = run_stage(
        device,
        &data,
        Some("small"),
        StageConfig::Train(train),
        &opts("baseline"),
    )?;
    let baseline = base.best_path.clone();
    let total = base.relu_total;
    let budget = ((total as f64) * d.budget_fraction).round() as usize;
    let replace = ReplaceStageConfig {
        baseline: baseline.clone(),
        epochs: d.replace_epochs,
        batch: d.batch,
        lambda: 20.0,
        h_init: [0.0, 0.05],
        mask_lr: 0.01,
        ..ReplaceStageConfig::new(budget)
    };
    let runs: Vec<(&str, &str, StageConfig)> = vec![
        (
            "AutoReP (DaPa, degree 2)",
            "autorep",
            StageConfig::Replace(replace.clone()),
        ),
        (
            "AutoReP, identity replacement",
            "identity",
            StageConfig::Replace(ReplaceStageConfig {
                identity: true,
                ..replace
            }),
        ),
        (
            "SNL",
            "snl",
            StageConfig::Snl(SnlConfig {
                baseline,
                epochs: d.snl_epochs,
                batch: d.batch,
                lambda: 1e-4,
                // Adam moves α by about its rate per step: 0.02 lets a gate switch off within
                // one epoch of the demo's 63 steps, so the paced λ₁ can select.
                alpha_lr: 0.02,
                finetune_epochs: d.finetune_epochs,
                finetune_lr: 1e-2,
                ..SnlConfig::new(budget)
            }),
        ),
    ];
    let crypten = crate::cost::Protocol::crypten();
    // Each network's cost from its own sites: what replaces a ReLU (a polynomial, or SNL's
    // and the identity ablation's free identity) and how many each keeps.
    let with_cost = |label: &str, row: report::Row| -> Result<DemoRow> {
        let ck = crate::train::checkpoint::Checkpoint::load(&row.checkpoint)?;
        let (model, rep) = crate::train::stages::load_model(&Device::Cpu, &ck)?;
        let sites = crate::autorep::sites_of(model.as_ref(), rep.as_ref())?;
        let c = crate::cost::estimate_sites(
            &crypten,
            &sites,
            crate::cost::LAN_BANDWIDTH_BYTES_PER_S,
            crate::cost::LAN_RTT_S,
        );
        Ok(DemoRow {
            label: label.into(),
            row,
            crypten_bytes: c.comm_bytes,
        })
    };
    let mut rows = vec![with_cost(
        "all-ReLU baseline",
        report::row(device, &data, "baseline", &base)?,
    )?];
    for (label, dir, stage) in runs {
        say(&format!(
            "== {label} at {budget} ReLUs ({:.1}% of {total})",
            100.0 * d.budget_fraction
        ));
        let method = crate::experiment::method(&stage);
        let o = run_stage(device, &data, None, stage, &opts(dir))?;
        rows.push(with_cost(label, report::row(device, &data, method, &o)?)?);
    }
    let all: Vec<report::Row> = rows.iter().map(|r| r.row.clone()).collect();
    report::write(&d.out.join("summary.json"), &report::json(&all))?;
    Ok(rows)
}

/// The demo's final table, one line per method.
pub fn demo_table(rows: &[DemoRow]) -> String {
    let mut s = format!(
        "{:<32} {:>8} {:>8} {:<13} {:>9} {:>16}\n",
        "method", "ReLUs", "kept", "budget met by", "top-1", "CrypTen comm"
    );
    for r in rows {
        let how = match (r.row.budget, r.row.reached_by_selection) {
            (None, _) => "-".to_string(),
            (Some(_), true) => "selection".to_string(),
            (Some(_), false) => "projection".to_string(),
        };
        s.push_str(&format!(
            "{:<32} {:>8} {:>7.2}% {:<13} {:>8.2}% {:>13.2} MB\n",
            r.label,
            r.row.relus,
            100.0 * r.row.relus as f64 / r.row.relu_total.max(1) as f64,
            how,
            100.0 * r.row.top1,
            r.crypten_bytes / 1e6
        ));
    }
    s
}
