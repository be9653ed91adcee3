//! Learning-rate schedules as multipliers of each group's base rate, per epoch (or step).

/// How the learning rate moves over `total` epochs.
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    Constant,
    /// Cosine annealing of every group from its base rate to `floor` over `total` epochs
    /// (PyTorch's CosineAnnealingLR with eta_min = floor, which every group shares), stepped
    /// per epoch.
    Cosine {
        total: usize,
        floor: f32,
    },
    /// Multiply by `gamma` at each milestone epoch.
    MultiStep {
        milestones: Vec<usize>,
        gamma: f32,
    },
}

/// The learning rates of one epoch: a group whose base rate is `base` runs at
/// `warm · (f + (base − f) · weight)`, where f is `floor`, or `base` if that is lower (a group
/// never anneals upwards).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lr {
    pub weight: f32,
    pub floor: f32,
    pub warm: f32,
}

impl Lr {
    /// Every group at its base rate.
    pub const BASE: Lr = Lr {
        weight: 1.0,
        floor: 0.0,
        warm: 1.0,
    };

    /// The rate of a group whose base rate is `base`.
    pub fn of(self, base: f32) -> f32 {
        let f = self.floor.min(base);
        self.warm * (f + (base - f) * self.weight)
    }
}

/// A plain factor: every group at its base rate times `factor`.
impl From<f32> for Lr {
    fn from(factor: f32) -> Lr {
        Lr {
            weight: factor,
            ..Lr::BASE
        }
    }
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

    /// The learning rates during epoch `epoch` (0-based).
    pub fn at(&self, epoch: usize) -> Lr {
        let (weight, floor) = match &self.schedule {
            Schedule::Constant => (1.0, 0.0),
            Schedule::Cosine { total, floor } => {
                let t = (epoch.min(*total)) as f32 / (*total).max(1) as f32;
                (0.5 * (1.0 + (std::f32::consts::PI * t).cos()), *floor)
            }
            Schedule::MultiStep { milestones, gamma } => (
                gamma.powi(milestones.iter().filter(|&&m| epoch >= m).count() as i32),
                0.0,
            ),
        };
        let warm = if epoch < self.warmup {
            (epoch + 1) as f32 / (self.warmup + 1) as f32
        } else {
            1.0
        };
        Lr {
            weight,
            floor,
            warm,
        }
    }
}
