//! WideResNet-22-8 with pre-activation blocks (the SNL/AutoReP definition): 18 sites,
//! 1,359,872 ReLUs at 32x32 and 5,439,488 at 64x64. No ReLU after the final BN.

use super::Model;
use crate::nn::{ActivationSite, BatchNorm2d, Conv2d, ForwardCtx, Linear, Module};
use crate::{Device, Error, Result, Tensor};
use rand::SeedableRng;

struct Block {
    bn1: BatchNorm2d,
    conv1: Conv2d,
    bn2: BatchNorm2d,
    conv2: Conv2d,
    /// 1x1 projection when the width or resolution changes.
    shortcut: Option<Conv2d>,
    site1: usize,
    site2: usize,
}

pub struct WideResNet {
    name: String,
    conv1: Conv2d,
    blocks: Vec<Block>,
    bn: BatchNorm2d,
    fc: Linear,
    sites: Vec<ActivationSite>,
}

impl WideResNet {
    /// WRN-`depth`-`k` for `channels`x`input`x`input` images.
    pub fn new(
        device: &Device,
        depth: usize,
        k: usize,
        channels: usize,
        input: usize,
        classes: usize,
        seed: u64,
    ) -> Result<WideResNet> {
        if depth < 10 || !(depth - 4).is_multiple_of(6) || input < 8 || channels == 0 || classes < 2
        {
            return Err(Error::Invalid(format!("WRN-{depth}-{k} on {channels}x{input}x{input}: depth must be 6n+4 ≥ 10, images at least 8x8, at least 2 classes")));
        }
        let n = (depth - 4) / 6;
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let widths = [16, 16 * k, 32 * k, 64 * k];
        let conv1 = Conv2d::new(device, "conv1", channels, widths[0], 3, 1, 1, &mut rng)?;
        let (mut cin, mut side) = (widths[0], input);
        let (mut blocks, mut sites) = (Vec::new(), Vec::new());
        for (g, (&w, &stride)) in widths[1..].iter().zip(&[1, 2, 2]).enumerate() {
            for b in 0..n {
                let st = if b == 0 { stride } else { 1 };
                let name = format!("block{}.{b}", g + 1);
                // The first ReLU acts on the block input, at the input resolution.
                sites.push(ActivationSite::new(
                    &format!("{name}.relu1"),
                    cin,
                    side * side,
                ));
                side = (side - 1) / st + 1; // a 3x3 conv with padding 1
                sites.push(ActivationSite::new(
                    &format!("{name}.relu2"),
                    w,
                    side * side,
                ));
                blocks.push(Block {
                    bn1: BatchNorm2d::new(device, &format!("{name}.bn1"), cin)?,
                    conv1: Conv2d::new(
                        device,
                        &format!("{name}.conv1"),
                        cin,
                        w,
                        3,
                        st,
                        1,
                        &mut rng,
                    )?,
                    bn2: BatchNorm2d::new(device, &format!("{name}.bn2"), w)?,
                    conv2: Conv2d::new(device, &format!("{name}.conv2"), w, w, 3, 1, 1, &mut rng)?,
                    shortcut: (cin != w || st != 1)
                        .then(|| {
                            Conv2d::new(
                                device,
                                &format!("{name}.shortcut"),
                                cin,
                                w,
                                1,
                                st,
                                0,
                                &mut rng,
                            )
                        })
                        .transpose()?,
                    site1: sites.len() - 2,
                    site2: sites.len() - 1,
                });
                cin = w;
            }
        }
        Ok(WideResNet {
            name: format!("wrn{depth}_{k}"),
            conv1,
            blocks,
            bn: BatchNorm2d::new(device, "bn", cin)?,
            fc: Linear::kaiming(device, "fc", cin, classes, true, &mut rng)?,
            sites,
        })
    }
}

impl Module for WideResNet {
    fn named_params(&self) -> Vec<(String, Tensor)> {
        let mut v = self.conv1.named_params();
        for b in &self.blocks {
            for p in [
                b.bn1.named_params(),
                b.conv1.named_params(),
                b.bn2.named_params(),
                b.conv2.named_params(),
            ] {
                v.extend(p);
            }
            if let Some(s) = &b.shortcut {
                v.extend(s.named_params());
            }
        }
        v.extend(self.bn.named_params());
        v.extend(self.fc.named_params());
        v
    }
}

impl Model for WideResNet {
    fn name(&self) -> &str {
        &self.name
    }

    fn forward(&self, x: &Tensor, ctx: &ForwardCtx) -> Result<Tensor> {
        let mut h = self.conv1.forward(x)?;
        for b in &self.blocks {
            let a = self.sites[b.site1].forward_bn(&b.bn1, &h, None, ctx)?;
            let c1 = b.conv1.forward(&a)?;
            let out = self.sites[b.site2].forward_bn(&b.bn2, &c1, None, ctx)?;
            let out = b.conv2.forward(&out)?;
            // A projection reads the activated input; an identity shortcut the raw one.
            let short = match &b.shortcut {
                Some(s) => s.forward(&a)?,
                None => h.clone(),
            };
            h = out.add(&short)?;
        }
        self.fc
            .forward(&self.bn.forward(&h, ctx)?.global_avg_pool()?)
    }

    fn sites(&self) -> &[ActivationSite] {
        &self.sites
    }

    fn sites_mut(&mut self) -> &mut [ActivationSite] {
        &mut self.sites
    }

    fn named_buffers(&self) -> Vec<(String, Tensor)> {
        let mut bns = vec![&self.bn];
        for b in &self.blocks {
            bns.extend([&b.bn1, &b.bn2]);
        }
        bns.iter().flat_map(|bn| bn.named_buffers()).collect()
    }
}
