//! Training-time regularisers as torchvision applies them: dropout and stochastic depth. Their
//! masks are drawn on the host from the step's noise seed (so a resumed run draws the same),
//! uploaded together in one write per step (each upload ends the step's queued work as one
//! submit), and applied by the engine's multiply ops, whose gradients carry the same mask.

use crate::data::SplitMix64;
use crate::{Device, Result, Tensor};

fn unit(rng: &mut SplitMix64) -> f32 {
    (rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32
}

/// A dropout mask of `n` elements: 0 with probability `p`, 1/(1 − p) otherwise.
pub fn dropout_mask(n: usize, p: f32, rng: &mut SplitMix64) -> Vec<f32> {
    let keep = 1.0 / (1.0 - p);
    (0..n)
        .map(|_| if unit(rng) < p { 0.0 } else { keep })
        .collect()
}

/// torchvision's `StochasticDepth(p, "row")` as a [B, C] channel scale: each of `b` samples'
/// branch dropped with probability `p`, kept and scaled by 1/(1 − p) otherwise.
pub fn stochastic_depth_scale(b: usize, c: usize, p: f32, rng: &mut SplitMix64) -> Vec<f32> {
    let keep = 1.0 / (1.0 - p);
    (0..b)
        .flat_map(|_| {
            let k = if unit(rng) < p { 0.0 } else { keep };
            std::iter::repeat_n(k, c)
        })
        .collect()
}

/// Tensors of these shapes and values from one upload: views of one buffer, each starting on
/// a 64-float boundary (what a GPU binding needs).
pub fn upload_together(device: &Device, parts: Vec<(Vec<usize>, Vec<f32>)>) -> Result<Vec<Tensor>> {
    let mut all = Vec::new();
    let mut at = Vec::with_capacity(parts.len());
    for (_, values) in &parts {
        at.push(all.len());
        all.extend_from_slice(values);
        all.resize(all.len().next_multiple_of(64), 0.0);
    }
    let n = all.len();
    let whole = Tensor::from_vec(device, &[n.max(1)], if n == 0 { vec![0.0] } else { all })?;
    let storage = whole.storage();
    Ok(parts
        .iter()
        .zip(at)
        .map(|((shape, values), offset)| {
            Tensor::from_storage(shape, storage.view(offset, values.len()))
        })
        .collect())
}

/// `x` with each element zeroed with probability `p` and the others scaled by 1/(1 − p).
pub fn dropout(x: &Tensor, p: f32, rng: &mut SplitMix64) -> Result<Tensor> {
    let n = x.shape().iter().product();
    let mask = upload_together(
        &x.device(),
        vec![(x.shape().to_vec(), dropout_mask(n, p, rng))],
    )?;
    x.mul(&mask[0])
}

/// The residual branch `x` ([B, C, H, W]) under stochastic depth with probability `p`.
pub fn stochastic_depth(x: &Tensor, p: f32, rng: &mut SplitMix64) -> Result<Tensor> {
    let (b, c) = (x.shape()[0], x.shape()[1]);
    let scale = stochastic_depth_scale(b, c, p, rng);
    let s = upload_together(&x.device(), vec![(vec![b, c], scale)])?;
    x.channel_scale(&s[0])
}
