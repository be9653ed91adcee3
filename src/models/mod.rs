//! Models with their activation sites listed in execution order.

mod resnet;

pub use resnet::{ResNet, ResNetSpec};

use crate::nn::{ActivationSite, ForwardCtx, Module};
use crate::{Result, Tensor};

/// A classifier whose ReLUs are explicit [`ActivationSite`]s.
pub trait Model: Module {
    fn name(&self) -> &str;
    fn forward(&self, x: &Tensor, ctx: &ForwardCtx) -> Result<Tensor>;
    /// Every activation site, in the order a forward pass calls them.
    fn sites(&self) -> &[ActivationSite];
    fn sites_mut(&mut self) -> &mut [ActivationSite];
    /// Tensors that are state but not parameters (BN running statistics), for checkpoints.
    fn buffers(&self) -> Vec<Tensor>;

    /// ReLUs of the all-ReLU model per image (N in the notes).
    fn relu_total(&self) -> usize {
        self.sites().iter().map(ActivationSite::relus).sum()
    }
}
