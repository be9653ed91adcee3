//! The bytes behind a tensor: a host vector or a pooled GPU buffer.

use crate::device::Device;
use crate::error::{Error, Result};
use autorep_kernels::{Gpu, GpuBuffer};
use std::cell::{Ref, RefCell, RefMut};

pub enum Storage {
    Cpu(RefCell<Vec<f32>>),
    Gpu(Gpu, GpuBuffer),
}

impl Storage {
    /// Uninitialised (GPU) or zeroed (CPU) storage for `n` floats.
    pub fn alloc(device: &Device, n: usize) -> Result<Storage> {
        Ok(match device {
            Device::Cpu => Storage::Cpu(RefCell::new(vec![0.0; n])),
            Device::Gpu(g) => Storage::Gpu(g.clone(), g.alloc(n as u64 * 4)?),
        })
    }

    pub fn from_vec(device: &Device, data: Vec<f32>) -> Result<Storage> {
        Ok(match device {
            Device::Cpu => Storage::Cpu(RefCell::new(data)),
            Device::Gpu(g) => Storage::Gpu(g.clone(), g.upload(&data)?),
        })
    }

    pub fn device(&self) -> Device {
        match self {
            Storage::Cpu(_) => Device::Cpu,
            Storage::Gpu(g, _) => Device::Gpu(g.clone()),
        }
    }

    pub fn to_vec(&self, n: usize) -> Result<Vec<f32>> {
        match self {
            Storage::Cpu(v) => Ok(v.borrow()[..n].to_vec()),
            Storage::Gpu(g, b) => Ok(g.read_f32(b, 0, n)?),
        }
    }

    pub(crate) fn cpu(&self) -> Ref<'_, Vec<f32>> {
        match self {
            Storage::Cpu(v) => v.borrow(),
            Storage::Gpu(..) => unreachable!("cpu() on GPU storage"),
        }
    }

    pub(crate) fn cpu_mut(&self) -> RefMut<'_, Vec<f32>> {
        match self {
            Storage::Cpu(v) => v.borrow_mut(),
            Storage::Gpu(..) => unreachable!("cpu_mut() on GPU storage"),
        }
    }
}

/// Host or device integer labels (class indices), used by the losses.
pub enum Labels {
    Cpu(Vec<u32>),
    Gpu(Gpu, GpuBuffer, usize),
}

impl Labels {
    pub fn new(device: &Device, labels: &[u32]) -> Result<Labels> {
        Ok(match device {
            Device::Cpu => Labels::Cpu(labels.to_vec()),
            Device::Gpu(g) => Labels::Gpu(g.clone(), g.upload(labels)?, labels.len()),
        })
    }

    pub fn len(&self) -> usize {
        match self {
            Labels::Cpu(v) => v.len(),
            Labels::Gpu(_, _, n) => *n,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn check_range(labels: &[u32], classes: usize) -> Result<()> {
        match labels.iter().find(|&&l| l as usize >= classes) {
            Some(l) => Err(Error::Invalid(format!(
                "label {l} is out of range for {classes} classes"
            ))),
            None => Ok(()),
        }
    }
}
