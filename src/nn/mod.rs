//! Layers and optimizers on top of the tensor layer.

mod batchnorm;
mod conv;
mod group;
mod linear;
mod optim;
mod schedule;
mod site;

pub use batchnorm::BatchNorm2d;
pub use conv::Conv2d;
pub use group::ParamGroup;
pub use linear::Linear;
pub use optim::{Lookahead, Optimizer, OptimizerKind};
pub use schedule::{LrSchedule, Schedule};
pub use site::{ActivationSite, ForwardCtx, Gated, SiteMode};

use crate::Tensor;

/// Anything with trainable parameters.
pub trait Module {
    fn params(&self) -> Vec<Tensor>;

    fn zero_grad(&self) -> crate::Result<()> {
        self.params().iter().try_for_each(Tensor::zero_grad)
    }
}
