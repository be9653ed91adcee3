//! The small end-to-end training demo: a two-layer MLP learns a 2-D problem that no linear
//! model can (a disc inside a ring), on any device.

use crate::nn::{Linear, Module, Sgd};
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
        let r = if class == 0 { rng.random_range(0.0..0.5f32) } else { rng.random_range(0.7..1.0f32) };
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
    pub fn new(device: &Device, inputs: usize, hidden: usize, classes: usize, seed: u64) -> Result<Mlp> {
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
        DemoConfig { points: 512, hidden: 64, steps: 600, lr: 0.5, seed: 7, log_every: 100 }
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
pub fn train_mlp(device: &Device, cfg: &DemoConfig, mut on_log: impl FnMut(usize, f32)) -> Result<DemoReport> {
    let start = std::time::Instant::now();
    let (xs, ys) = disc_and_ring(cfg.points, cfg.seed);
    let x = Tensor::from_vec(device, &[cfg.points, 2], xs)?;
    let labels = Rc::new(Labels::new(device, &ys)?);
    let model = Mlp::new(device, 2, cfg.hidden, 2, cfg.seed)?;
    let sgd = Sgd { lr: cfg.lr };
    let mut losses = Vec::new();
    for step in 1..=cfg.steps {
        model.zero_grad()?;
        let ce = model.forward(&x)?.cross_entropy(&labels, 0.0)?;
        let loss = ce.loss.mean()?;
        loss.backward()?;
        sgd.step(&model.params())?;
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
