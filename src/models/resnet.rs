//! CIFAR-style ResNets: `resnet18_in` (the SNL/AutoReP ResNet-18: no stem ReLU, 491,520 ReLUs
//! at 32x32), `resnet18` (the same with a stem ReLU: 557,056) and a small fast variant.

use super::Model;
use crate::nn::{ActivationSite, BatchNorm2d, Conv2d, ForwardCtx, Linear, Module};
use crate::{Device, Error, Result, Tensor};
use rand::SeedableRng;

/// The shape of a ResNet: per stage its width, block count and stride.
#[derive(Debug, Clone, PartialEq)]
pub struct ResNetSpec {
    pub name: String,
    pub stem_relu: bool,
    pub widths: Vec<usize>,
    pub blocks: Vec<usize>,
    pub strides: Vec<usize>,
}

impl ResNetSpec {
    pub fn resnet18_in() -> Self {
        ResNetSpec {
            name: "resnet18_in".into(),
            stem_relu: false,
            widths: vec![64, 128, 256, 512],
            blocks: vec![2; 4],
            strides: vec![1, 2, 2, 2],
        }
    }
    pub fn resnet18() -> Self {
        ResNetSpec {
            name: "resnet18".into(),
            stem_relu: true,
            ..Self::resnet18_in()
        }
    }
    /// Three stages of one block (16, 32, 64 channels): trains on a CPU in minutes.
    pub fn small() -> Self {
        ResNetSpec {
            name: "small".into(),
            stem_relu: true,
            widths: vec![16, 32, 64],
            blocks: vec![1; 3],
            strides: vec![1, 2, 2],
        }
    }
}

struct Block {
    conv1: Conv2d,
    bn1: BatchNorm2d,
    conv2: Conv2d,
    bn2: BatchNorm2d,
    shortcut: Option<(Conv2d, BatchNorm2d)>,
    site1: usize,
    site2: usize,
}

pub struct ResNet {
    spec: ResNetSpec,
    stem: Conv2d,
    stem_bn: BatchNorm2d,
    stem_site: Option<usize>,
    blocks: Vec<Block>,
    fc: Linear,
    sites: Vec<ActivationSite>,
}

impl ResNet {
    /// A freshly initialised network for `channels`x`input`x`input` images and `classes`
    /// classes.
    pub fn new(
        device: &Device,
        spec: ResNetSpec,
        channels: usize,
        input: usize,
        classes: usize,
        seed: u64,
    ) -> Result<ResNet> {
        if input < 8 || channels == 0 || classes < 2 {
            return Err(Error::Invalid(format!("{}: needs images of at least 8x8 and at least 2 classes (got {channels}x{input}x{input}, {classes} classes)", spec.name)));
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let w0 = spec.widths[0];
        // Layer names follow the SNL/AutoReP `cifar_resnet` modules: conv1, bn1,
        // layerX.Y.{conv1,bn1,conv2,bn2,shortcut.0,shortcut.1}, linear.
        let stem = Conv2d::new(device, "conv1", channels, w0, 3, 1, 1, &mut rng)?;
        let stem_bn = BatchNorm2d::new(device, "bn1", w0)?;
        let mut sites = Vec::new();
        let mut hw = input * input;
        let stem_site = spec.stem_relu.then(|| {
            sites.push(ActivationSite::new("stem.relu", w0, hw));
            0
        });
        let (mut cin, mut side) = (w0, input);
        let mut blocks = Vec::new();
        for (s, ((&w, &n), &stride)) in spec
            .widths
            .iter()
            .zip(&spec.blocks)
            .zip(&spec.strides)
            .enumerate()
        {
            for b in 0..n {
                let st = if b == 0 { stride } else { 1 };
                let name = format!("layer{}.{b}", s + 1);
                side = (side - 1) / st + 1; // a 3x3 conv with padding 1
                hw = side * side;
                let conv1 =
                    Conv2d::new(device, &format!("{name}.conv1"), cin, w, 3, st, 1, &mut rng)?;
                let conv2 = Conv2d::new(device, &format!("{name}.conv2"), w, w, 3, 1, 1, &mut rng)?;
                let shortcut = if st != 1 || cin != w {
                    Some((
                        Conv2d::new(
                            device,
                            &format!("{name}.shortcut.0"),
                            cin,
                            w,
                            1,
                            st,
                            0,
                            &mut rng,
                        )?,
                        BatchNorm2d::new(device, &format!("{name}.shortcut.1"), w)?,
                    ))
                } else {
                    None
                };
                sites.push(ActivationSite::new(&format!("{name}.relu1"), w, hw));
                sites.push(ActivationSite::new(&format!("{name}.relu2"), w, hw));
                blocks.push(Block {
                    conv1,
                    bn1: BatchNorm2d::new(device, &format!("{name}.bn1"), w)?,
                    conv2,
                    bn2: BatchNorm2d::new(device, &format!("{name}.bn2"), w)?,
                    shortcut,
                    site1: sites.len() - 2,
                    site2: sites.len() - 1,
                });
                cin = w;
            }
        }
        let fc = Linear::kaiming(device, "linear", cin, classes, false, &mut rng)?;
        Ok(ResNet {
            spec,
            stem,
            stem_bn,
            stem_site,
            blocks,
            fc,
            sites,
        })
    }

    pub fn spec(&self) -> &ResNetSpec {
        &self.spec
    }

    fn batch_norms(&self) -> Vec<&BatchNorm2d> {
        let mut v = vec![&self.stem_bn];
        for b in &self.blocks {
            v.extend([&b.bn1, &b.bn2]);
            if let Some((_, bn)) = &b.shortcut {
                v.push(bn);
            }
        }
        v
    }
}

impl Module for ResNet {
    fn named_params(&self) -> Vec<(String, Tensor)> {
        let mut v = self.stem.named_params();
        v.extend(self.stem_bn.named_params());
        for b in &self.blocks {
            for p in [
                b.conv1.named_params(),
                b.bn1.named_params(),
                b.conv2.named_params(),
                b.bn2.named_params(),
            ] {
                v.extend(p);
            }
            if let Some((c, bn)) = &b.shortcut {
                v.extend(c.named_params());
                v.extend(bn.named_params());
            }
        }
        v.extend(self.fc.named_params());
        v
    }
}

impl Model for ResNet {
    fn name(&self) -> &str {
        &self.spec.name
    }

    fn forward(&self, x: &Tensor, ctx: &ForwardCtx) -> Result<Tensor> {
        let stem = self.stem.forward(x)?;
        let mut h = match self.stem_site {
            Some(s) => self.sites[s].forward_bn(&self.stem_bn, &stem, None, ctx)?,
            None => self.stem_bn.forward(&stem, ctx)?,
        };
        for b in &self.blocks {
            let c1 = b.conv1.forward(&h)?;
            let out = self.sites[b.site1].forward_bn(&b.bn1, &c1, None, ctx)?;
            let c2 = b.conv2.forward(&out)?;
            let short = match &b.shortcut {
                Some((c, bn)) => bn.forward(&c.forward(&h)?, ctx)?,
                None => h.clone(),
            };
            h = self.sites[b.site2].forward_bn(&b.bn2, &c2, Some(&short), ctx)?;
        }
        self.fc.forward(&h.global_avg_pool()?)
    }

    fn sites(&self) -> &[ActivationSite] {
        &self.sites
    }

    fn sites_mut(&mut self) -> &mut [ActivationSite] {
        &mut self.sites
    }

    fn named_buffers(&self) -> Vec<(String, Tensor)> {
        self.batch_norms()
            .iter()
            .flat_map(|bn| bn.named_buffers())
            .collect()
    }
}
