//! CIFAR-10 in the official binary layout: records of 1 label byte followed by 3,072 pixel
//! bytes (1,024 R, then G, then B, each row-major 32x32).

use crate::error::{Error, Result};
use std::path::Path;

pub const CIFAR10_MEAN: [f32; 3] = [0.4914, 0.4822, 0.4465];
pub const CIFAR10_STD: [f32; 3] = [0.2023, 0.1994, 0.2010];
const PIXELS: usize = 3 * 32 * 32;
const RECORD: usize = 1 + PIXELS;

/// Images as u8 CHW, and labels.
#[derive(Debug, Clone, Default)]
pub struct CifarSet {
    pub images: Vec<u8>,
    pub labels: Vec<u32>,
}

impl CifarSet {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Images `idx` normalised per channel into NCHW f32.
    pub fn normalized(&self, idx: &[usize], mean: [f32; 3], std: [f32; 3]) -> Vec<f32> {
        let mut out = Vec::with_capacity(idx.len() * PIXELS);
        for &i in idx {
            let img = &self.images[i * PIXELS..(i + 1) * PIXELS];
            for (c, plane) in img.chunks(1024).enumerate() {
                out.extend(plane.iter().map(|&v| (v as f32 / 255.0 - mean[c]) / std[c]));
            }
        }
        out
    }
}

/// Append every record of the official-layout files `paths` (with 10 classes).
pub fn read_cifar_records(paths: &[&Path]) -> Result<CifarSet> {
    let mut set = CifarSet::default();
    for path in paths {
        let bytes = std::fs::read(path).map_err(|e| {
            Error::Invalid(format!("cannot read CIFAR file {}: {e}", path.display()))
        })?;
        if bytes.is_empty() || bytes.len() % RECORD != 0 {
            return Err(Error::Invalid(format!(
                "{}: {} bytes is not a whole number of {RECORD}-byte CIFAR-10 records (truncated or not CIFAR-10 binary)",
                path.display(),
                bytes.len()
            )));
        }
        for (r, rec) in bytes.chunks(RECORD).enumerate() {
            if rec[0] >= 10 {
                return Err(Error::Invalid(format!(
                    "{}: record {r} has label {}, outside 0..9",
                    path.display(),
                    rec[0]
                )));
            }
            set.labels.push(rec[0] as u32);
            set.images.extend_from_slice(&rec[1..]);
        }
    }
    Ok(set)
}
