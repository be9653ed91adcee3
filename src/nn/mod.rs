//! Layers and optimizers on top of the tensor layer.

mod batchnorm;
mod conv;
mod group;
mod linear;
mod optim;
mod regularise;
mod schedule;
mod site;

pub use batchnorm::BatchNorm2d;
pub use conv::{Conv2d, DepthwiseConv2d};
pub use group::ParamGroup;
pub use linear::Linear;
pub use optim::{Lookahead, Optimizer, OptimizerKind, LOSS_SCALE_STATE};
pub use regularise::{
    dropout, dropout_mask, stochastic_depth, stochastic_depth_scale, upload_together,
};
pub use schedule::{Lr, LrSchedule, Schedule};
pub use site::{fusion_default, ActivationSite, ForwardCtx, Gated, SiteMode};

use crate::Tensor;

/// Anything with trainable parameters.
pub trait Module {
    /// Every parameter with its module path, as PyTorch's `state_dict` names it
    /// (`layer1.0.conv1.weight`).
    fn named_params(&self) -> Vec<(String, Tensor)>;

    fn params(&self) -> Vec<Tensor> {
        self.named_params().into_iter().map(|(_, t)| t).collect()
    }

    fn zero_grad(&self) -> crate::Result<()> {
        self.params().iter().try_for_each(Tensor::zero_grad)
    }
}
