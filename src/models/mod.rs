//! Models with their activation sites listed in execution order.

mod efficientnet;
mod resnet;
mod wrn;

pub use efficientnet::EfficientNet;
pub use resnet::{ResNet, ResNetSpec};
pub use wrn::WideResNet;

use crate::nn::{ActivationSite, ForwardCtx, Module};
use crate::{Device, Error, Result, Tensor};

/// A classifier whose ReLUs are explicit [`ActivationSite`]s.
pub trait Model: Module {
    fn name(&self) -> &str;
    fn forward(&self, x: &Tensor, ctx: &ForwardCtx) -> Result<Tensor>;
    /// Every activation site, in the order a forward pass calls them.
    fn sites(&self) -> &[ActivationSite];
    fn sites_mut(&mut self) -> &mut [ActivationSite];
    /// Tensors that are state but not parameters (BN running statistics), for checkpoints,
    /// with their `state_dict` names.
    fn named_buffers(&self) -> Vec<(String, Tensor)>;

    fn buffers(&self) -> Vec<Tensor> {
        self.named_buffers().into_iter().map(|(_, t)| t).collect()
    }

    /// ReLUs of the all-ReLU model per image (N in the notes).
    fn relu_total(&self) -> usize {
        self.sites().iter().map(ActivationSite::relus).sum()
    }
}

/// Names accepted by [`build`].
pub const MODEL_NAMES: &[&str] = &[
    "resnet18_in",
    "resnet18",
    "wrn22_8",
    "small",
    "efficientnet_b2",
];

/// A freshly initialised model by name, for `channels`x`input`x`input` images and `classes`
/// classes.
pub fn build(
    name: &str,
    device: &Device,
    channels: usize,
    input: usize,
    classes: usize,
    seed: u64,
) -> Result<Box<dyn Model>> {
    Ok(match name {
        "resnet18_in" => Box::new(ResNet::new(
            device,
            ResNetSpec::resnet18_in(),
            channels,
            input,
            classes,
            seed,
        )?),
        "resnet18" => Box::new(ResNet::new(
            device,
            ResNetSpec::resnet18(),
            channels,
            input,
            classes,
            seed,
        )?),
        "small" => Box::new(ResNet::new(
            device,
            ResNetSpec::small(),
            channels,
            input,
            classes,
            seed,
        )?),
        "wrn22_8" => Box::new(WideResNet::new(
            device, 22, 8, channels, input, classes, seed,
        )?),
        "efficientnet_b2" => Box::new(EfficientNet::b2(device, channels, input, classes, seed)?),
        other => {
            return Err(Error::Invalid(format!(
                "unknown model '{other}': choose one of {}",
                MODEL_NAMES.join(", ")
            )));
        }
    })
}
