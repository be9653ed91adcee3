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
            l1: Linear::new(device, inputs, hidden, &mut rng)?,
            l2: Linear::new(device, hidden, classes, &mut rng)?,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.l2.forward(&self.l1.forward(x)?.relu()?)
    }
}

impl Module for Mlp {
    fn params(&self) -> Vec<Tensor> {
        [self.l1.params(), self.l2.params()].concat()
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

/// One row of the demo's final table.
#[derive(Debug, Clone)]
pub struct DemoRow {
    pub method: String,
    pub relus: u64,
    pub relu_total: usize,
    pub top1: f32,
    pub crypten_bytes: f64,
}

/// The whole pipeline on the embedded Fashion-MNIST subset with the small ResNet: baseline →
/// AutoReP (DaPa) and its identity ablation → SNL, all at the same budget, each evaluated
/// from its best checkpoint.
pub fn pipeline_demo(device: &Device, d: &PipelineDemo) -> Result<Vec<DemoRow>> {
    use crate::autorep::ReplaceConfig;
    use crate::data::{idx_pair_from_bytes, Dataset};
    use crate::train::jobs::{self, Data, JobOptions};
    use crate::train::StageConfig;
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
    if let Some((a, b)) = d.limit {
        train = train.subset(..a.min(train.len()));
        test = test.subset(..b.min(test.len()));
    }
    let data = Data::new(device, Dataset::FashionMnist, train, test)?;
    let opts = |name: &str, epochs| JobOptions {
        model: "small".into(),
        epochs,
        batch: d.batch,
        seed: 2,
        out: d.out.join(name),
        quiet: d.quiet,
        resume: false,
        stop_after: None,
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
    let base = jobs::train_baseline(
        device,
        &opts("baseline", d.baseline_epochs),
        &data,
        0.05,
        0.9,
        5e-4,
    )?;
    let baseline = d.out.join("baseline").join("best.safetensors");
    let total = base.relu_total;
    let budget = ((total as f64) * d.budget_fraction).round() as usize;
    let stage = StageConfig {
        epochs: d.replace_epochs,
        batch: d.batch,
        weight_lr: 1e-3,
        gate_lr: 0.01,
        kd_temperature: 4.0,
        finetune_epochs: 0,
        finetune_lr: 1e-3,
        seed: 2,
    };
    let fast = |cfg: ReplaceConfig| ReplaceConfig {
        lambda: 20.0,
        h_init: (0.0, 0.05),
        ..cfg
    };
    let runs: Vec<(&str, &str, ReplaceConfig, StageConfig)> = vec![
        (
            "AutoReP (DaPa, degree 2)",
            "autorep",
            fast(ReplaceConfig::autorep(budget)),
            stage.clone(),
        ),
        (
            "AutoReP, identity replacement",
            "identity",
            fast(ReplaceConfig::identity(budget)),
            stage.clone(),
        ),
        (
            "SNL",
            "snl",
            ReplaceConfig {
                lambda: 1e-4,
                ..ReplaceConfig::snl(budget)
            },
            StageConfig {
                epochs: d.snl_epochs,
                gate_lr: 1e-3,
                finetune_epochs: d.finetune_epochs,
                finetune_lr: 1e-2,
                ..stage.clone()
            },
        ),
    ];
    let mut rows = vec![];
    let crypten = crate::cost::Protocol::crypten();
    let cost = |relus: u64, layers: usize| {
        let polys = total as u64 - relus;
        crate::cost::estimate(
            &crypten,
            relus,
            polys,
            layers,
            if polys > 0 { layers } else { 0 },
            crate::cost::LAN_BANDWIDTH_BYTES_PER_S,
            crate::cost::LAN_RTT_S,
        )
        .comm_bytes
    };
    let sites = crate::models::build("small", &Device::Cpu, 1, 28, 10, 0)?
        .sites()
        .len();
    let r = jobs::eval(device, &baseline, &data)?;
    rows.push(DemoRow {
        method: "all-ReLU baseline".into(),
        relus: r.relus,
        relu_total: total,
        top1: r.top1,
        crypten_bytes: cost(r.relus, sites),
    });
    for (method, dir, cfg, st) in runs {
        say(&format!(
            "== {method} at {budget} ReLUs ({:.1}% of {total})",
            100.0 * d.budget_fraction
        ));
        jobs::replace(
            device,
            &opts(dir, st.epochs),
            &data,
            &baseline,
            cfg,
            &st,
            true,
        )?;
        let r = jobs::eval(device, &d.out.join(dir).join("best.safetensors"), &data)?;
        rows.push(DemoRow {
            method: method.into(),
            relus: r.relus,
            relu_total: total,
            top1: r.top1,
            crypten_bytes: cost(r.relus, sites),
        });
    }
    Ok(rows)
}

/// The demo's final table, one line per method.
pub fn demo_table(rows: &[DemoRow]) -> String {
    let mut s = format!(
        "{:<32} {:>8} {:>8} {:>9} {:>16}\n",
        "method", "ReLUs", "kept", "top-1", "CrypTen comm"
    );
    for r in rows {
        s.push_str(&format!(
            "{:<32} {:>8} {:>7.2}% {:>8.2}% {:>13.2} MB\n",
            r.method,
            r.relus,
            100.0 * r.relus as f64 / r.relu_total.max(1) as f64,
            100.0 * r.top1,
            r.crypten_bytes / 1e6
        ));
    }
    s
}
