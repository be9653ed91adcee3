//! A dataset's u8 images, packed four per u32 word and resident where training runs, and the
//! fused augmentation that turns a batch of them into a normalised f32 tensor there.

use super::backend::{place, Placed};
use super::{Storage, Tensor};
use crate::device::Device;
use crate::error::{Error, Result};
use autorep_kernels::params::AugmentParams;
use autorep_kernels::{cpu, launch, GpuBuffer};

enum Packed {
    Cpu(Vec<u32>),
    Gpu(GpuBuffer),
}

pub struct PackedImages {
    packed: Packed,
    device: Device,
}

impl PackedImages {
    /// `words` from [`autorep_kernels::cpu::pack_u8`], uploaded once on a GPU.
    pub fn new(device: &Device, words: Vec<u32>) -> Result<PackedImages> {
        let packed = match device {
            Device::Cpu => Packed::Cpu(words),
            Device::Gpu(g) => Packed::Gpu(g.upload(&words)?),
        };
        Ok(PackedImages {
            packed,
            device: device.clone(),
        })
    }

    /// One batch [samples, C, H, W]: each sample is (image index, random word of
    /// [`autorep_kernels::cpu::aug_word`]); cropped, flipped and normalised by `p`.
    pub fn augment(&self, p: &AugmentParams, samples: &[[u32; 2]]) -> Result<Tensor> {
        let words: &[u32] = bytemuck::cast_slice(samples);
        let out = Storage::alloc(&self.device, p.n())?;
        match (&self.packed, place("augment", [&out])?) {
            (Packed::Gpu(data), Placed::Gpu(g, [o])) => {
                let sb = g.upload(words)?;
                launch::augment_batch(g, p, data, &sb, o)?;
            }
            (Packed::Cpu(data), Placed::Cpu) => {
                cpu::augment_batch(p, data, words, &mut out.cpu_mut())
            }
            _ => {
                return Err(Error::Invalid(
                    "augment: the images and the batch live on different devices".into(),
                ))
            }
        }
        let shape = [samples.len(), p.channels, p.height, p.width];
        Ok(Tensor::from_storage(&shape, out))
    }
}
