//! Buffers pooled by exact (rounded) size: a training step asks for the same sizes every time,
//! so after one warm-up step every request is served from the free lists.

use crate::device::Gpu;
use crate::dtype::Dtype;
use crate::error::{KernelError, Result};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// Storage buffers are rounded up to this many bytes so near sizes share a free list.
const GRANULE: u64 = 256;
/// The smallest scratch buffer (see [`Gpu::alloc_scratch`]).
const SCRATCH_MIN: u64 = 64 << 10;

pub(crate) struct RawBuffer {
    pub id: u64,
    pub buffer: wgpu::Buffer,
    pub size: u64,
}

#[derive(Default)]
pub(crate) struct BufferPool {
    free: Mutex<HashMap<u64, Vec<Arc<RawBuffer>>>>,
    staging: Mutex<HashMap<u64, Vec<wgpu::Buffer>>>,
    created: AtomicU64,
    bytes_created: AtomicU64,
    /// Bytes of the buffers the pool holds now (created less released), and the most ever.
    held: AtomicU64,
    held_peak: AtomicU64,
    next_id: AtomicU64,
    loans: Mutex<Loans>,
}

/// The storage buffers on loan, by id and size; their bytes, and the most bytes ever on loan
/// at once with the sizes of the buffers on loan then (what `bench step --memory` lists).
#[derive(Default)]
struct Loans {
    sizes: HashMap<u64, u64>,
    bytes: u64,
    peak: u64,
    at_peak: Vec<u64>,
}

/// Buffers of one size: how many were on loan at the memory peak and how many the pool holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferCount {
    pub bytes: u64,
    pub at_peak: u64,
    pub held: u64,
}

/// Counters for tests and reports (storage and readback buffers alike).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    pub buffers_created: u64,
    pub bytes_created: u64,
    /// The most bytes the pool held at once (created and not yet released by
    /// [`Gpu::release_free`]) since the device opened or [`Gpu::reset_peaks`]: the counterpart
    /// of PyTorch's `max_memory_reserved` for the tensors' buffers and readbacks. Outside the
    /// pool, and not counted: the parameter arena, the staged-upload buffer and the timestamp
    /// buffers.
    pub peak_held_bytes: u64,
    pub buffers_free: u64,
    /// The most bytes of storage buffers on loan at one time: what an allocator that could
    /// reuse any free memory for any size would need (the pool's bytes_created, beyond it, is
    /// the price of reusing buffers by size).
    pub peak_live_bytes: u64,
    /// Bytes of storage buffers on loan now.
    pub live_bytes: u64,
}

/// Byte alignment of views: the largest `min_storage_buffer_offset_alignment` any adapter may
/// require, so a view can always be bound on its own.
pub const VIEW_ALIGN: u64 = 256;

/// The loan of one raw buffer: it goes back to the pool when the last handle (the buffer or
/// any view of it) is dropped.
struct Loan {
    raw: Arc<RawBuffer>,
    owner: Weak<crate::device::GpuInner>,
}

impl Drop for Loan {
    fn drop(&mut self) {
        if let Some(owner) = self.owner.upgrade() {
            let raw = self.raw.clone();
            let mut loans = owner.pool.loans.lock().unwrap();
            loans.sizes.remove(&raw.id);
            loans.bytes -= raw.size;
            drop(loans);
            owner
                .pool
                .free
                .lock()
                .unwrap()
                .entry(raw.size)
                .or_default()
                .push(raw);
        }
    }
}

/// A storage buffer on loan from the pool, or an aligned view into one.
#[derive(Clone)]
pub struct GpuBuffer {
    loan: Arc<Loan>,
    offset: u64,
    len: u64,
    /// What the bytes hold; dispatch picks the shader variant from it and refuses a buffer
    /// bound where the variant declares another type.
    dtype: Dtype,
}

impl GpuBuffer {
    /// Bytes the caller asked for (the underlying buffer may be larger).
    pub fn len_bytes(&self) -> u64 {
        self.len
    }

    /// Byte offset of this view in the underlying buffer (0 for a whole buffer).
    pub fn offset_bytes(&self) -> u64 {
        self.offset
    }

    pub fn dtype(&self) -> Dtype {
        self.dtype
    }

    /// The same memory tagged as holding `dtype` (the bytes are not converted).
    pub fn typed(&self, dtype: Dtype) -> GpuBuffer {
        GpuBuffer {
            dtype,
            ..self.clone()
        }
    }

    pub(crate) fn raw(&self) -> &RawBuffer {
        &self.loan.raw
    }

    pub fn wgpu(&self) -> &wgpu::Buffer {
        &self.raw().buffer
    }

    /// `len` bytes from byte `offset` of this buffer, sharing its memory. `offset` must be a
    /// multiple of [`VIEW_ALIGN`] so the view can be bound by itself.
    pub fn view(&self, offset: u64, len: u64) -> GpuBuffer {
        assert!(
            offset.is_multiple_of(VIEW_ALIGN),
            "view offset {offset} is not {VIEW_ALIGN}-aligned"
        );
        assert!(
            offset + len <= self.len,
            "view {offset}+{len} outside a {}-byte buffer",
            self.len
        );
        GpuBuffer {
            loan: self.loan.clone(),
            offset: self.offset + offset,
            len,
            dtype: self.dtype,
        }
    }
}

impl std::fmt::Debug for GpuBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "GpuBuffer(#{} @{}, {} bytes of {})",
            self.raw().id,
            self.offset,
            self.len,
            self.dtype.name()
        )
    }
}

impl BufferPool {
    fn count_created(&self, bytes: u64) {
        self.created.fetch_add(1, Ordering::Relaxed);
        self.bytes_created.fetch_add(bytes, Ordering::Relaxed);
        let held = self.held.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.held_peak.fetch_max(held, Ordering::Relaxed);
    }

    /// A readback buffer that is dropped rather than returned leaves the pool's hold.
    pub(crate) fn discard_staging(&self, buf: &wgpu::Buffer) {
        self.held.fetch_sub(buf.size(), Ordering::Relaxed);
    }

    pub(crate) fn return_staging(&self, buf: wgpu::Buffer) {
        self.staging
            .lock()
            .unwrap()
            .entry(buf.size())
            .or_default()
            .push(buf);
    }
}

impl Gpu {
    /// A storage buffer of at least `bytes` bytes; contents are unspecified.
    pub fn alloc(&self, bytes: u64) -> Result<GpuBuffer> {
        self.loan(bytes, bytes.max(4).div_ceil(GRANULE) * GRANULE)
    }

    /// A buffer for scratch that lives only through one pass (split-K planes, reduction
    /// partials), from a free list of the next power of two in size: the passes of a step
    /// then share a few buffers between them. Pooled by exact size, every distinct pass would
    /// keep its own for the life of the device (on an H100-like split plan, resnet18_in held
    /// four of about 64 MiB each where one serves).
    pub fn alloc_scratch(&self, bytes: u64) -> Result<GpuBuffer> {
        // Powers of two only: classes at 3/4 of them too (tried 2026-11-29) cut no buffer at
        // the peak and split the free lists (resnet18_in f16 held 578.7 MiB against 560.7).
        let class = bytes.max(SCRATCH_MIN).next_power_of_two();
        match class <= self.0.limits.max_buffer_size {
            true => self.loan(bytes, class),
            false => self.alloc(bytes),
        }
    }

    /// A small buffer, typed `dtype`, for a binding a dispatch declares but does not touch
    /// (the conv kernels' output or split-K planes, whichever a pass does not write): one per
    /// device, lent for its life, so that no step borrows one per dispatch.
    pub(crate) fn stand_in(&self, dtype: Dtype) -> Result<GpuBuffer> {
        if let Some(b) = self.0.stand_in.get() {
            return Ok(b.typed(dtype));
        }
        let b = self.alloc(16)?;
        Ok(self.0.stand_in.get_or_init(|| b).typed(dtype))
    }

    /// [`Gpu::alloc_scratch`] of `n` elements of `dtype`.
    pub fn alloc_scratch_elems(&self, n: usize, dtype: Dtype) -> Result<GpuBuffer> {
        Ok(self.alloc_scratch(n as u64 * dtype.bytes())?.typed(dtype))
    }

    /// A buffer of `size` bytes (a multiple of [`GRANULE`]) lent as `bytes` of it.
    fn loan(&self, bytes: u64, size: u64) -> Result<GpuBuffer> {
        let pool = &self.0.pool;
        let reused = pool
            .free
            .lock()
            .unwrap()
            .get_mut(&size)
            .and_then(|v| v.pop());
        let raw = match reused {
            Some(raw) => raw,
            None => self.create_raw(size)?,
        };
        let mut loans = pool.loans.lock().unwrap();
        loans.sizes.insert(raw.id, size);
        loans.bytes += size;
        if loans.bytes > loans.peak {
            loans.peak = loans.bytes;
            loans.at_peak = loans.sizes.values().copied().collect();
        }
        drop(loans);
        Ok(GpuBuffer {
            loan: Arc::new(Loan {
                raw,
                owner: Arc::downgrade(&self.0),
            }),
            offset: 0,
            len: bytes,
            dtype: Dtype::F32,
        })
    }

    fn create_raw(&self, size: u64) -> Result<Arc<RawBuffer>> {
        let max = self.0.limits.max_buffer_size;
        if size > max {
            return Err(KernelError::OutOfMemory {
                bytes: size,
                reason: format!("larger than this adapter's max buffer size of {max} bytes"),
            });
        }
        let scope = self
            .0
            .device
            .push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let buffer = self.0.device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        if let Some(err) = pollster::block_on(scope.pop()) {
            return Err(KernelError::OutOfMemory {
                bytes: size,
                reason: err
                    .to_string()
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" "),
            });
        }
        let pool = &self.0.pool;
        pool.count_created(size);
        Ok(Arc::new(RawBuffer {
            id: pool.next_id.fetch_add(1, Ordering::Relaxed),
            buffer,
            size,
        }))
    }

    /// A MAP_READ buffer of exactly `size` bytes for readback, from the pool when possible.
    pub(crate) fn staging(&self, size: u64) -> wgpu::Buffer {
        let reused = self
            .0
            .pool
            .staging
            .lock()
            .unwrap()
            .get_mut(&size)
            .and_then(|v| v.pop());
        reused.unwrap_or_else(|| {
            self.0.pool.count_created(size);
            self.0.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("readback"),
                size,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        })
    }

    /// Give the device back every free storage and readback buffer (returns their bytes). For
    /// after a one-off burst of sizes a step never asks for again, such as the per-parameter
    /// buffers a model is built in, and read back through, before its parameters move into one
    /// flat buffer: pooled, they would stay held for the life of the device. A buffer that
    /// recorded commands still use lives until they have run (wgpu keeps it).
    pub fn release_free(&self) -> u64 {
        let pool = &self.0.pool;
        let released: Vec<Arc<RawBuffer>> = std::mem::take(&mut *pool.free.lock().unwrap())
            .into_values()
            .flatten()
            .collect();
        let ids = released.iter().map(|raw| raw.id).collect();
        self.forget_bind_groups(&ids);
        let staging: u64 = std::mem::take(&mut *pool.staging.lock().unwrap())
            .into_values()
            .flatten()
            .map(|b| b.size())
            .sum();
        let bytes = released.iter().map(|raw| raw.size).sum::<u64>() + staging;
        pool.held.fetch_sub(bytes, Ordering::Relaxed);
        bytes
    }

    /// Start the peaks of [`PoolStats`] (bytes held, bytes on loan and the census's sizes at
    /// the peak) over from now, as `torch.cuda.reset_peak_memory_stats` does: what a step
    /// needs, without the model's building before it.
    pub fn reset_peaks(&self) {
        let pool = &self.0.pool;
        pool.held_peak
            .store(pool.held.load(Ordering::Relaxed), Ordering::Relaxed);
        let mut loans = pool.loans.lock().unwrap();
        loans.peak = loans.bytes;
        loans.at_peak = loans.sizes.values().copied().collect();
    }

    /// The storage buffers by size, largest first: how many were on loan when the most
    /// bytes were, and how many the pool holds (on loan or free).
    pub fn buffer_census(&self) -> Vec<BufferCount> {
        // Held: the free buffers of each size and the ones on loan.
        let mut held: HashMap<u64, u64> = HashMap::new();
        for (&bytes, free) in self.0.pool.free.lock().unwrap().iter() {
            *held.entry(bytes).or_default() += free.len() as u64;
        }
        let loans = self.0.pool.loans.lock().unwrap();
        for &bytes in loans.sizes.values() {
            *held.entry(bytes).or_default() += 1;
        }
        let mut v: Vec<BufferCount> = held
            .into_iter()
            .filter(|&(_, held)| held > 0)
            .map(|(bytes, held)| BufferCount {
                bytes,
                at_peak: loans.at_peak.iter().filter(|&&b| b == bytes).count() as u64,
                held,
            })
            .collect();
        v.sort_unstable_by_key(|c| std::cmp::Reverse(c.bytes));
        v
    }

    pub fn pool_stats(&self) -> PoolStats {
        let pool = &self.0.pool;
        let free = pool.free.lock().unwrap();
        let buffers_free = free.values().map(|v| v.len() as u64).sum();
        drop(free);
        let loans = pool.loans.lock().unwrap();
        PoolStats {
            buffers_created: pool.created.load(Ordering::Relaxed),
            bytes_created: pool.bytes_created.load(Ordering::Relaxed),
            peak_held_bytes: pool.held_peak.load(Ordering::Relaxed),
            buffers_free,
            peak_live_bytes: loans.peak,
            live_bytes: loans.bytes,
        }
    }
}
