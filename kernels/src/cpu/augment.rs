//! CPU twin of `shaders/augment.wgsl`: CIFAR-style training augmentation (zero padding, random
//! crop, horizontal flip) fused with the u8 -> f32 conversion and per-channel normalisation.
//!
//! The dataset lives on the device once, as u8 pixels packed four per u32 word (little-endian:
//! byte `k` of the stream is bits `8k..8k+8` of word `k / 4`; see [`pack_u8`]), N x C x H x W.
//! Each batch passes, per sample, two u32 words: the dataset index and a packed random word
//! (see [`aug_word`]).

use super::Real;
use crate::params::AugmentParams;

/// The per-sample random word: crop offsets `dy`, `dx` in `0..=2*pad` (into the padded image)
/// and the horizontal-flip bit. `dy = dx = pad`, no flip, is the un-augmented image.
pub fn aug_word(dy: u32, dx: u32, flip: bool) -> u32 {
    (dy & 0xff) | ((dx & 0xff) << 8) | ((flip as u32) << 16)
}

/// Inverse of [`aug_word`]: (dy, dx, flip).
pub fn aug_unpack(word: u32) -> (u32, u32, bool) {
    (word & 0xff, (word >> 8) & 0xff, (word >> 16) & 1 == 1)
}

/// u8 pixels packed four per u32 word, little-endian, the last word zero-filled.
pub fn pack_u8(bytes: &[u8]) -> Vec<u32> {
    bytes
        .chunks(4)
        .map(|c| {
            let mut w = [0u8; 4];
            w[..c.len()].copy_from_slice(c);
            u32::from_le_bytes(w)
        })
        .collect()
}

fn byte_at(data: &[u32], off: usize) -> Option<u32> {
    data.get(off / 4).map(|w| (w >> ((off % 4) * 8)) & 0xff)
}

/// out\[b, c, y, x\] = (v / 255 − mean\[c\]) / std\[c\], where v is pixel (y + dy − pad, x' + dx − pad)
/// of image `samples[2b]` (0 outside the image: zero padding), x' = W − 1 − x when the flip bit
/// of `samples[2b + 1]` is set, else x. `data` is the packed dataset (see [`pack_u8`]), `samples`
/// holds 2 words per sample.
pub fn augment_batch<T: Real>(p: &AugmentParams, data: &[u32], samples: &[u32], out: &mut [T]) {
    let _p = super::profile::span("augment_batch");
    p.check();
    let (w, hw, chw) = (p.width, p.hw(), p.chw());
    let pad = p.pad as i64;
    let c255 = T::lit(255.0);
    for (i, o) in out.iter_mut().enumerate().take(p.n()) {
        let b = i / chw;
        let r = i % chw;
        let (c, y, x) = (r / hw, (r % hw) / w, r % w);
        let (Some(&idx), Some(&rw)) = (samples.get(2 * b), samples.get(2 * b + 1)) else {
            *o = T::zero();
            continue;
        };
        if idx as usize >= p.count {
            *o = T::zero();
            continue;
        }
        let (dy, dx, flip) = aug_unpack(rw);
        let xs = if flip { w - 1 - x } else { x };
        let sy = y as i64 + dy as i64 - pad;
        let sx = xs as i64 + dx as i64 - pad;
        let v = if sy >= 0 && sy < p.height as i64 && sx >= 0 && sx < w as i64 {
            let off = idx as usize * chw + c * hw + sy as usize * w + sx as usize;
            byte_at(data, off).unwrap_or(0)
        } else {
            0
        };
        let (m, s) = (T::lit(p.mean[c] as f64), T::lit(p.std[c] as f64));
        *o = (T::lit(v as f64) / c255 - m) / s;
    }
}
