use super::Module;
use crate::{Device, Result, Tensor};
use rand::Rng;

/// y = x·Wᵀ + b with W stored [out, in] as in PyTorch.
pub struct Linear {
    pub weight: Tensor,
    pub bias: Tensor,
    pub name: String,
}

impl Linear {
    /// PyTorch's default init: W and b uniform in ±1/sqrt(in).
    pub fn new(
        device: &Device,
        name: &str,
        inputs: usize,
        outputs: usize,
        rng: &mut impl Rng,
    ) -> Result<Linear> {
        let bound = 1.0 / (inputs as f32).sqrt();
        let mut draw = |n: usize| (0..n).map(|_| rng.random_range(-bound..bound)).collect();
        Ok(Linear {
            weight: Tensor::param(device, &[outputs, inputs], draw(outputs * inputs))?,
            bias: Tensor::param(device, &[outputs], draw(outputs))?,
            name: name.into(),
        })
    }

    /// Input features.
    pub fn inputs(&self) -> usize {
        self.weight.shape()[1]
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.matmul_t(&self.weight, false, true)?.bias_add(&self.bias)
    }
}

impl Module for Linear {
    fn named_params(&self) -> Vec<(String, Tensor)> {
        vec![
            (format!("{}.weight", self.name), self.weight.clone()),
            (format!("{}.bias", self.name), self.bias.clone()),
        ]
    }
}
