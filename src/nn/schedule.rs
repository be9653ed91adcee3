//! Learning-rate schedules as multipliers of each group's base rate, per epoch (or step).

/// How the learning rate moves over `total` epochs.
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    Constant,
    /// Cosine annealing from 1 to `floor / base` over `total` epochs (PyTorch's
    /// CosineAnnealingLR with eta_min = floor), stepped per epoch.
    Cosine {
        total: usize,
        base: f32,
        floor: f32,
    },
    /// Multiply by `gamma` at each milestone epoch.
    MultiStep {
        milestones: Vec<usize>,
        gamma: f32,
    },
}

/// A schedule with an optional linear warm-up over the first `warmup` epochs.
#[derive(Debug, Clone, PartialEq)]
pub struct LrSchedule {
    pub schedule: Schedule,
    pub warmup: usize,
}

impl LrSchedule {
    pub fn new(schedule: Schedule) -> Self {
        LrSchedule {
            schedule,
            warmup: 0,
        }
    }

    /// The multiplier of the base learning rate during epoch `epoch` (0-based).
    pub fn factor(&self, epoch: usize) -> f32 {
        let base = match &self.schedule {
            Schedule::Constant => 1.0,
            Schedule::Cosine { total, base, floor } => {
                let t = (epoch.min(*total)) as f32 / (*total).max(1) as f32;
                let min = floor / base;
                min + (1.0 - min) * 0.5 * (1.0 + (std::f32::consts::PI * t).cos())
            }
            Schedule::MultiStep { milestones, gamma } => {
                gamma.powi(milestones.iter().filter(|&&m| epoch >= m).count() as i32)
            }
        };
        if epoch < self.warmup {
            base * (epoch + 1) as f32 / (self.warmup + 1) as f32
        } else {
            base
        }
    }
}
