use super::Module;
use crate::tensor::{BnConfig, BnParams};
use crate::{Device, Result, Tensor};

/// BatchNorm2d with affine γ/β and running statistics (PyTorch semantics and defaults).
pub struct BatchNorm2d {
    pub gamma: Tensor,
    pub beta: Tensor,
    pub running_mean: Tensor,
    pub running_var: Tensor,
    pub cfg: BnConfig,
    pub name: String,
}

impl BatchNorm2d {
    pub fn new(device: &Device, name: &str, channels: usize) -> Result<BatchNorm2d> {
        Ok(BatchNorm2d {
            gamma: Tensor::param(device, &[channels], vec![1.0; channels])?,
            beta: Tensor::param(device, &[channels], vec![0.0; channels])?,
            running_mean: Tensor::from_vec(device, &[channels], vec![0.0; channels])?,
            running_var: Tensor::from_vec(device, &[channels], vec![1.0; channels])?,
            cfg: BnConfig::default(),
            name: name.to_string(),
        })
    }

    /// Normalise with batch statistics in training (updating the running ones at the layer's
    /// momentum, or the context's when it re-estimates them), with the running ones in eval.
    pub fn channels(&self) -> usize {
        self.gamma.shape()[0]
    }

    /// The layer's tensors and configuration as this pass uses them (the context may
    /// override the momentum).
    pub fn params(&self, ctx: &super::ForwardCtx) -> BnParams<'_> {
        BnParams {
            gamma: &self.gamma,
            beta: &self.beta,
            running_mean: &self.running_mean,
            running_var: &self.running_var,
            cfg: BnConfig {
                momentum: ctx.bn_momentum.unwrap_or(self.cfg.momentum),
                ..self.cfg
            },
        }
    }

    pub fn forward(&self, x: &Tensor, ctx: &super::ForwardCtx) -> Result<Tensor> {
        let cfg = self.params(ctx).cfg;
        x.batch_norm(
            Some((&self.gamma, &self.beta)),
            &self.running_mean,
            &self.running_var,
            ctx.train,
            cfg,
            &self.name,
        )
    }
}

impl BatchNorm2d {
    /// The running statistics, named as PyTorch's `state_dict` does.
    pub fn named_buffers(&self) -> Vec<(String, Tensor)> {
        vec![
            (
                format!("{}.running_mean", self.name),
                self.running_mean.clone(),
            ),
            (
                format!("{}.running_var", self.name),
                self.running_var.clone(),
            ),
        ]
    }
}

impl Module for BatchNorm2d {
    fn named_params(&self) -> Vec<(String, Tensor)> {
        vec![
            (format!("{}.weight", self.name), self.gamma.clone()),
            (format!("{}.bias", self.name), self.beta.clone()),
        ]
    }
}
