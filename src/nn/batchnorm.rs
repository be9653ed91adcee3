use super::Module;
use crate::tensor::BnConfig;
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

    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        x.batch_norm(
            Some((&self.gamma, &self.beta)),
            &self.running_mean,
            &self.running_var,
            train,
            self.cfg,
            &self.name,
        )
    }
}

impl Module for BatchNorm2d {
    fn params(&self) -> Vec<Tensor> {
        vec![self.gamma.clone(), self.beta.clone()]
    }
}
