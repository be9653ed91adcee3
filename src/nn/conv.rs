use super::Module;
use crate::{Device, Result, Tensor};
use rand::Rng;
use rand_distr::{Distribution, Normal};

/// A 2-D convolution without bias (ResNets follow every conv with batch norm).
pub struct Conv2d {
    pub weight: Tensor,
    pub stride: usize,
    pub pad: usize,
    pub name: String,
}

impl Conv2d {
    #[allow(clippy::too_many_arguments)]
    /// Kaiming-normal init (fan_in, gain √2), as the AutoReP wrapper re-applies to every conv.
    pub fn new(
        device: &Device,
        name: &str,
        cin: usize,
        cout: usize,
        k: usize,
        stride: usize,
        pad: usize,
        rng: &mut impl Rng,
    ) -> Result<Conv2d> {
        let fan_in = (cin * k * k) as f32;
        let normal = Normal::new(0.0, (2.0 / fan_in).sqrt()).expect("finite std");
        let data = (0..cout * cin * k * k)
            .map(|_| normal.sample(rng))
            .collect();
        Ok(Conv2d {
            weight: Tensor::param(device, &[cout, cin, k, k], data)?,
            stride,
            pad,
            name: name.to_string(),
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.conv2d(&self.weight, self.stride, self.pad, &self.name)
    }
}

impl Module for Conv2d {
    fn named_params(&self) -> Vec<(String, Tensor)> {
        vec![(format!("{}.weight", self.name), self.weight.clone())]
    }
}

/// A depthwise 2-D convolution (groups = channels, one k×k filter per channel, weights
/// [C, 1, k, k] as PyTorch stores them), without bias: EfficientNet's MBConv middle layer.
pub struct DepthwiseConv2d {
    pub weight: Tensor,
    pub stride: usize,
    pub pad: usize,
    pub name: String,
}

impl DepthwiseConv2d {
    /// Kaiming-normal init over the filter's k² inputs, as [`Conv2d::new`].
    pub fn new(
        device: &Device,
        name: &str,
        channels: usize,
        k: usize,
        stride: usize,
        pad: usize,
        rng: &mut impl Rng,
    ) -> Result<DepthwiseConv2d> {
        let normal = Normal::new(0.0, (2.0 / (k * k) as f32).sqrt()).expect("finite std");
        let data = (0..channels * k * k).map(|_| normal.sample(rng)).collect();
        Ok(DepthwiseConv2d {
            weight: Tensor::param(device, &[channels, 1, k, k], data)?,
            stride,
            pad,
            name: name.to_string(),
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.depthwise_conv2d(&self.weight, self.stride, self.pad, &self.name)
    }
}

impl Module for DepthwiseConv2d {
    fn named_params(&self) -> Vec<(String, Tensor)> {
        vec![(format!("{}.weight", self.name), self.weight.clone())]
    }
}
