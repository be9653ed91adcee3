use super::Module;
use crate::{Device, Result, Tensor};
use rand::Rng;
use rand_distr::{Distribution, Normal};

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

    /// The models' init: Kaiming-normal weights (fan_in, gain √2), as the SNL/AutoReP ResNets'
    /// `_weights_init` and the AutoReP wrapper apply to every linear layer; the bias as
    /// PyTorch's default, or zero (the WRN class zeroes its fc bias).
    pub fn kaiming(
        device: &Device,
        name: &str,
        inputs: usize,
        outputs: usize,
        zero_bias: bool,
        rng: &mut impl Rng,
    ) -> Result<Linear> {
        let normal = Normal::new(0.0, (2.0 / inputs as f32).sqrt()).expect("finite std");
        let weight = (0..outputs * inputs).map(|_| normal.sample(rng)).collect();
        let bound = 1.0 / (inputs as f32).sqrt();
        let bias = (0..outputs)
            .map(|_| {
                if zero_bias {
                    0.0
                } else {
                    rng.random_range(-bound..bound)
                }
            })
            .collect();
        Ok(Linear {
            weight: Tensor::param(device, &[outputs, inputs], weight)?,
            bias: Tensor::param(device, &[outputs], bias)?,
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
