//! The bytes behind a tensor: a host vector or a pooled GPU buffer.

use crate::device::Device;
use crate::error::{Error, Result};
use autorep_kernels::{Dtype, Gpu, GpuBuffer};
use std::cell::{Ref, RefCell, RefMut};
use std::rc::Rc;

pub enum Storage {
    /// `len` floats from `offset` of a host vector that views may share.
    Cpu {
        data: Rc<RefCell<Vec<f32>>>,
        offset: usize,
        len: usize,
    },
    Gpu(Gpu, GpuBuffer),
}

thread_local! {
    /// Host buffers by length, reused like the GPU pool's: a training step asks for the same
    /// sizes every time, and fresh multi-megabyte allocations cost page faults and TLB flushes.
    static HOST_POOL: RefCell<std::collections::HashMap<usize, Vec<Vec<f32>>>> = RefCell::new(Default::default());
}

/// Buffers kept per length; beyond this, released buffers go back to the allocator.
const HOST_POOL_PER_SIZE: usize = 16;

fn host_zeroed(n: usize) -> Result<Vec<f32>> {
    let reused = HOST_POOL.with(|p| p.borrow_mut().get_mut(&n).and_then(Vec::pop));
    match reused {
        Some(mut v) => {
            v.fill(0.0);
            Ok(v)
        }
        None => try_zeroed_host(n),
    }
}

/// `n` zeroed floats in host memory, or a one-line error where the allocator refuses them (a
/// batch or image size far too large for this machine) instead of the abort that `vec!` gives.
/// Zeroed as `vec!` does, by the allocator: fresh pages are not written here.
pub fn try_zeroed_host(n: usize) -> Result<Vec<f32>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let refused = || {
        Error::Invalid(format!(
            "out of host memory: {:.1} MiB for one buffer could not be allocated; lower --batch (or the image size)",
            n as f64 * 4.0 / 1048576.0
        ))
    };
    let layout = std::alloc::Layout::array::<f32>(n).map_err(|_| refused())?;
    // SAFETY: the layout's size is not zero; a non-null block from the global allocator with
    // the layout of [f32; n] is what a Vec<f32> of capacity n owns, and all-zero bits are 0.0.
    unsafe {
        let p = std::alloc::alloc_zeroed(layout).cast::<f32>();
        if p.is_null() {
            return Err(refused());
        }
        Ok(Vec::from_raw_parts(p, n, n))
    }
}

impl Drop for Storage {
    fn drop(&mut self) {
        if let Storage::Cpu { data, .. } = self {
            if Rc::strong_count(data) == 1 {
                let v = std::mem::take(&mut *data.borrow_mut());
                if !v.is_empty() {
                    let _ = HOST_POOL.try_with(|p| {
                        let mut p = p.borrow_mut();
                        let list = p.entry(v.len()).or_default();
                        if list.len() < HOST_POOL_PER_SIZE {
                            list.push(v);
                        }
                    });
                }
            }
        }
    }
}

impl Storage {
    /// Uninitialised (GPU) or zeroed (CPU) storage for `n` floats.
    pub fn alloc(device: &Device, n: usize) -> Result<Storage> {
        Storage::alloc_typed(device, n, Dtype::F32)
    }

    /// Storage for `n` elements of `dtype`. f16 lives on a GPU only: the CPU device computes
    /// in f32 (the reference), and mixed precision is refused there before a step starts.
    pub fn alloc_typed(device: &Device, n: usize, dtype: Dtype) -> Result<Storage> {
        Ok(match device {
            Device::Cpu if dtype == Dtype::F16 => {
                return Err(Error::Invalid(
                    "f16 tensors need a GPU with SHADER_F16; use --precision f32 on the CPU".into(),
                ))
            }
            Device::Cpu => Storage::host(host_zeroed(n)?),
            Device::Gpu(g) => Storage::Gpu(g.clone(), g.alloc_elems(n, dtype)?),
        })
    }

    /// Storage for `n` elements on the same device and of the same type as `self`.
    pub fn alloc_like(&self, n: usize) -> Result<Storage> {
        Storage::alloc_typed(&self.device(), n, self.dtype())
    }

    pub fn dtype(&self) -> Dtype {
        match self {
            Storage::Cpu { .. } => Dtype::F32,
            Storage::Gpu(_, b) => b.dtype(),
        }
    }

    pub fn from_vec(device: &Device, data: Vec<f32>) -> Result<Storage> {
        Ok(match device {
            Device::Cpu => Storage::host(data),
            Device::Gpu(g) => Storage::Gpu(g.clone(), g.upload(&data)?),
        })
    }

    fn host(data: Vec<f32>) -> Storage {
        let len = data.len();
        Storage::Cpu {
            data: Rc::new(RefCell::new(data)),
            offset: 0,
            len,
        }
    }

    /// `len` elements from element `offset`, sharing memory. On a GPU the offset must be a
    /// multiple of 256 bytes (64 f32, 128 f16) so the view can be bound by itself.
    pub fn view(&self, offset: usize, len: usize) -> Storage {
        match self {
            Storage::Cpu {
                data,
                offset: base,
                len: total,
            } => {
                assert!(offset + len <= *total, "view outside its storage");
                Storage::Cpu {
                    data: data.clone(),
                    offset: base + offset,
                    len,
                }
            }
            Storage::Gpu(g, b) => {
                let e = b.dtype().bytes();
                Storage::Gpu(g.clone(), b.view(offset as u64 * e, len as u64 * e))
            }
        }
    }

    pub fn device(&self) -> Device {
        match self {
            Storage::Cpu { .. } => Device::Cpu,
            Storage::Gpu(g, _) => Device::Gpu(g.clone()),
        }
    }

    pub fn to_vec(&self, n: usize) -> Result<Vec<f32>> {
        match self {
            Storage::Cpu { .. } => Ok(self.cpu()[..n].to_vec()),
            Storage::Gpu(g, b) if b.dtype() == Dtype::F16 => Ok(g.read_f16(b, 0, n)?),
            Storage::Gpu(g, b) => Ok(g.read_f32(b, 0, n)?),
        }
    }

    pub(crate) fn cpu(&self) -> Ref<'_, [f32]> {
        match self {
            Storage::Cpu { data, offset, len } => {
                Ref::map(data.borrow(), |v| &v[*offset..offset + len])
            }
            Storage::Gpu(..) => unreachable!("cpu() on GPU storage"),
        }
    }

    pub(crate) fn cpu_mut(&self) -> RefMut<'_, [f32]> {
        match self {
            Storage::Cpu { data, offset, len } => {
                RefMut::map(data.borrow_mut(), |v| &mut v[*offset..offset + len])
            }
            Storage::Gpu(..) => unreachable!("cpu_mut() on GPU storage"),
        }
    }

    /// Whether two storages share memory (then one cannot be borrowed mutably beside the other).
    pub(crate) fn shares_memory(&self, other: &Storage) -> bool {
        match (self, other) {
            (Storage::Cpu { data: a, .. }, Storage::Cpu { data: b, .. }) => Rc::ptr_eq(a, b),
            _ => false,
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
