//! EfficientNet-B2 as torchvision defines it (`efficientnet_b2`: B0's stages scaled by width
//! 1.1 and depth 1.2): a 3x3 stride-2 stem, 23 MBConv blocks (1x1 expansion, depthwise k×k,
//! squeeze-excitation, 1x1 projection, residual where shapes allow) and a 1x1 head to 1,408
//! channels, with SiLU activations and PyTorch's default batch norm (eps 1e-5, momentum 0.1:
//! torchvision's `efficientnet_b2` builds its batch norms with them; it sets eps 1e-3 and
//! momentum 0.01 only for B5 to B7). Its 69
//! activation sites (stem, expansions, depthwise outputs, the squeeze-excitation hidden layer,
//! head) are SiLU until AutoReP gates them; a gated site keeps ReLU, as the official code
//! replaces each SiLU. Layers carry torchvision's module names (`features.2.1.block.1.0`), so
//! a torchvision state dict maps onto them by name. Training passes apply torchvision's
//! regularisers: stochastic depth on each residual branch (probability 0.2 · block / 23) and
//! dropout 0.3 before the classifier (identities in evaluation).

use super::Model;
use crate::nn::{
    dropout_mask, stochastic_depth_scale, upload_together, ActivationSite, BatchNorm2d, Conv2d,
    DepthwiseConv2d, ForwardCtx, Linear, Module,
};
use crate::tensor::BnConfig;
use crate::{Device, Error, Result, Tensor};
use rand::SeedableRng;

/// torchvision's batch norm settings for EfficientNet-B2: PyTorch's defaults.
const BN: BnConfig = BnConfig {
    momentum: 0.1,
    eps: 1e-5,
};

/// B0's stages: (expansion ratio, kernel, stride, input channels, output channels, blocks).
const B0_STAGES: [(usize, usize, usize, usize, usize, usize); 7] = [
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 2),
    (6, 5, 2, 24, 40, 2),
    (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3),
    (6, 5, 2, 112, 192, 4),
    (6, 3, 1, 192, 320, 1),
];
const WIDTH: f64 = 1.1;
const DEPTH: f64 = 1.2;
/// torchvision's `stochastic_depth_prob` for B0–B7, reached at the last block.
const STOCHASTIC_DEPTH: f32 = 0.2;
/// torchvision's dropout before B2's classifier.
const DROPOUT: f32 = 0.3;

/// torchvision's `_make_divisible(v, 8)`: the nearest multiple of 8, never 10 % below v.
fn divisible(v: f64) -> usize {
    let d = 8usize;
    let new = (((v + d as f64 / 2.0) as usize) / d * d).max(d);
    if (new as f64) < 0.9 * v {
        new + d
    } else {
        new
    }
}

fn width(c: usize) -> usize {
    divisible(c as f64 * WIDTH)
}

fn bn(device: &Device, name: &str, c: usize) -> Result<BatchNorm2d> {
    let mut b = BatchNorm2d::new(device, name, c)?;
    b.cfg = BN;
    Ok(b)
}

struct Block {
    /// 1x1 expansion (absent at ratio 1) and its site.
    expand: Option<(Conv2d, BatchNorm2d, usize)>,
    dw: DepthwiseConv2d,
    dw_bn: BatchNorm2d,
    dw_site: usize,
    se_fc1: Linear,
    se_site: usize,
    se_fc2: Linear,
    project: Conv2d,
    project_bn: BatchNorm2d,
    residual: bool,
    /// The probability of dropping this block's residual branch in training.
    drop: f32,
}

pub struct EfficientNet {
    stem: Conv2d,
    stem_bn: BatchNorm2d,
    blocks: Vec<Block>,
    head: Conv2d,
    head_bn: BatchNorm2d,
    classifier: Linear,
    sites: Vec<ActivationSite>,
}

impl EfficientNet {
    /// EfficientNet-B2 for `channels`x`input`x`input` images and `classes` classes.
    pub fn b2(
        device: &Device,
        channels: usize,
        input: usize,
        classes: usize,
        seed: u64,
    ) -> Result<EfficientNet> {
        if input < 8 || channels == 0 || classes < 2 {
            return Err(Error::Invalid(format!(
                "efficientnet_b2: needs images of at least 8x8 and at least 2 classes (got {channels}x{input}x{input}, {classes} classes)"
            )));
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut sites = Vec::new();
        let c0 = width(32);
        let stem = Conv2d::new(device, "features.0.0", channels, c0, 3, 2, 1, &mut rng)?;
        let mut side = (input - 1) / 2 + 1;
        sites.push(ActivationSite::new_silu("features.0.2", c0, side * side));
        let mut blocks = Vec::new();
        let mut cin = c0;
        for (s, &(ratio, k, stride, _, out, n)) in B0_STAGES.iter().enumerate() {
            let out = width(out);
            for j in 0..(n as f64 * DEPTH).ceil() as usize {
                let st = if j == 0 { stride } else { 1 };
                let name = format!("features.{}.{j}.block", s + 1);
                let exp = divisible((cin * ratio) as f64);
                // torchvision numbers the block's layers from 0, the expansion first when
                // there is one.
                let mut at = 0;
                let mut layer = || {
                    at += 1;
                    format!("{name}.{}", at - 1)
                };
                let expand = if ratio != 1 {
                    let l = layer();
                    sites.push(ActivationSite::new_silu(
                        &format!("{l}.2"),
                        exp,
                        side * side,
                    ));
                    Some((
                        Conv2d::new(device, &format!("{l}.0"), cin, exp, 1, 1, 0, &mut rng)?,
                        bn(device, &format!("{l}.1"), exp)?,
                        sites.len() - 1,
                    ))
                } else {
                    None
                };
                let l = layer();
                let dw =
                    DepthwiseConv2d::new(device, &format!("{l}.0"), exp, k, st, k / 2, &mut rng)?;
                side = (side + 2 * (k / 2) - k) / st + 1;
                let dw_bn = bn(device, &format!("{l}.1"), exp)?;
                sites.push(ActivationSite::new_silu(
                    &format!("{l}.2"),
                    exp,
                    side * side,
                ));
                let dw_site = sites.len() - 1;
                let se = layer();
                let squeeze = (cin / 4).max(1);
                let se_fc1 = Linear::new(device, &format!("{se}.fc1"), exp, squeeze, &mut rng)?;
                sites.push(ActivationSite::new_silu(
                    &format!("{se}.activation"),
                    squeeze,
                    1,
                ));
                let se_site = sites.len() - 1;
                let se_fc2 = Linear::new(device, &format!("{se}.fc2"), squeeze, exp, &mut rng)?;
                let p = layer();
                let project = Conv2d::new(device, &format!("{p}.0"), exp, out, 1, 1, 0, &mut rng)?;
                blocks.push(Block {
                    expand,
                    dw,
                    dw_bn,
                    dw_site,
                    se_fc1,
                    se_site,
                    se_fc2,
                    project,
                    project_bn: bn(device, &format!("{p}.1"), out)?,
                    residual: st == 1 && cin == out,
                    drop: 0.0,
                });
                cin = out;
            }
        }
        // torchvision numbers the blocks over all stages: block i of n drops with 0.2·i/n.
        let n = blocks.len() as f32;
        for (i, b) in blocks.iter_mut().enumerate() {
            b.drop = STOCHASTIC_DEPTH * i as f32 / n;
        }
        let last = 4 * cin;
        let head = Conv2d::new(device, "features.8.0", cin, last, 1, 1, 0, &mut rng)?;
        sites.push(ActivationSite::new_silu("features.8.2", last, side * side));
        Ok(EfficientNet {
            stem,
            stem_bn: bn(device, "features.0.1", c0)?,
            blocks,
            head,
            head_bn: bn(device, "features.8.1", last)?,
            // PyTorch's default init for the linear layers: EfficientNet-B2's runs start from
            // torchvision's pretrained weights (`autorep import`), not from scratch.
            classifier: Linear::new(device, "classifier.1", last, classes, &mut rng)?,
            sites,
        })
    }

    fn batch_norms(&self) -> Vec<&BatchNorm2d> {
        let mut v = vec![&self.stem_bn];
        for b in &self.blocks {
            if let Some((_, bn, _)) = &b.expand {
                v.push(bn);
            }
            v.extend([&b.dw_bn, &b.project_bn]);
        }
        v.push(&self.head_bn);
        v
    }
}

impl Module for EfficientNet {
    fn named_params(&self) -> Vec<(String, Tensor)> {
        let mut v = self.stem.named_params();
        v.extend(self.stem_bn.named_params());
        for b in &self.blocks {
            if let Some((c, bn, _)) = &b.expand {
                v.extend(c.named_params());
                v.extend(bn.named_params());
            }
            v.extend(b.dw.named_params());
            v.extend(b.dw_bn.named_params());
            v.extend(b.se_fc1.named_params());
            v.extend(b.se_fc2.named_params());
            v.extend(b.project.named_params());
            v.extend(b.project_bn.named_params());
        }
        v.extend(self.head.named_params());
        v.extend(self.head_bn.named_params());
        v.extend(self.classifier.named_params());
        v
    }
}

impl Model for EfficientNet {
    fn name(&self) -> &str {
        "efficientnet_b2"
    }

    fn forward(&self, x: &Tensor, ctx: &ForwardCtx) -> Result<Tensor> {
        let site = |i: usize, t: &Tensor| self.sites[i].forward(t, ctx);
        // Training regularisers: every mask of the step drawn first and uploaded at once.
        let batch = x.shape()[0];
        let mut noise = match ctx.noise() {
            Some(mut rng) => {
                let mut parts: Vec<(Vec<usize>, Vec<f32>)> = self
                    .blocks
                    .iter()
                    .filter(|b| b.residual)
                    .map(|b| {
                        let c = b.project_bn.channels();
                        let s = stochastic_depth_scale(batch, c, b.drop, &mut rng);
                        (vec![batch, c], s)
                    })
                    .collect();
                let features = self.classifier.inputs();
                parts.push((
                    vec![batch, features],
                    dropout_mask(batch * features, DROPOUT, &mut rng),
                ));
                upload_together(&x.device(), parts)?
            }
            None => vec![],
        }
        .into_iter();
        let site_bn = |i: usize, bn, t: &Tensor| self.sites[i].forward_bn(bn, t, None, ctx);
        let mut h = site_bn(0, &self.stem_bn, &self.stem.forward(x)?)?;
        for b in &self.blocks {
            let input = h.clone();
            if let Some((conv, bn, s)) = &b.expand {
                h = site_bn(*s, bn, &conv.forward(&h)?)?;
            }
            h = site_bn(b.dw_site, &b.dw_bn, &b.dw.forward(&h)?)?;
            let squeeze = site(b.se_site, &b.se_fc1.forward(&h.global_avg_pool()?)?)?;
            h = h.channel_scale(&b.se_fc2.forward(&squeeze)?.sigmoid()?)?;
            h = b.project_bn.forward(&b.project.forward(&h)?, ctx)?;
            if b.residual {
                if let Some(scale) = noise.next() {
                    h = h.channel_scale(&scale)?;
                }
                h = h.add(&input)?;
            }
        }
        let last = self.sites.len() - 1;
        h = site_bn(last, &self.head_bn, &self.head.forward(&h)?)?;
        let mut pooled = h.global_avg_pool()?;
        if let Some(mask) = noise.next() {
            pooled = pooled.mul(&mask)?;
        }
        self.classifier.forward(&pooled)
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
