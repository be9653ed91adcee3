//! Buffers pooled by exact (rounded) size: a training step asks for the same sizes every time,
//! so after one warm-up step every request is served from the free lists.

use crate::device::Gpu;
use crate::error::{KernelError, Result};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// Storage buffers are rounded up to this many bytes so near sizes share a free list.
const GRANULE: u64 = 256;

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
    next_id: AtomicU64,
}

/// Counters for tests and reports (storage and readback buffers alike).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    pub buffers_created: u64,
    pub bytes_created: u64,
    pub buffers_free: u64,
}

/// A storage buffer on loan from the pool; it goes back when dropped.
pub struct GpuBuffer {
    raw: Option<Arc<RawBuffer>>,
    len: u64,
    owner: Weak<crate::device::GpuInner>,
}

impl GpuBuffer {
    /// Bytes the caller asked for (the underlying buffer may be larger).
    pub fn len_bytes(&self) -> u64 {
        self.len
    }

    pub(crate) fn raw(&self) -> &RawBuffer {
        self.raw.as_ref().expect("live buffer")
    }

    pub fn wgpu(&self) -> &wgpu::Buffer {
        &self.raw().buffer
    }
}

impl std::fmt::Debug for GpuBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GpuBuffer(#{}, {} bytes)", self.raw().id, self.len)
    }
}

impl Drop for GpuBuffer {
    fn drop(&mut self) {
        if let (Some(raw), Some(owner)) = (self.raw.take(), self.owner.upgrade()) {
            owner.pool.free.lock().unwrap().entry(raw.size).or_default().push(raw);
        }
    }
}

impl BufferPool {
    pub(crate) fn return_staging(&self, buf: wgpu::Buffer) {
        self.staging.lock().unwrap().entry(buf.size()).or_default().push(buf);
    }
}

impl Gpu {
    /// A storage buffer of at least `bytes` bytes; contents are unspecified.
    pub fn alloc(&self, bytes: u64) -> Result<GpuBuffer> {
        let size = bytes.max(4).div_ceil(GRANULE) * GRANULE;
        let pool = &self.0.pool;
        let reused = pool.free.lock().unwrap().get_mut(&size).and_then(|v| v.pop());
        let raw = match reused {
            Some(raw) => raw,
            None => self.create_raw(size)?,
        };
        Ok(GpuBuffer {
            raw: Some(raw),
            len: bytes,
            owner: Arc::downgrade(&self.0),
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
        let scope = self.0.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
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
                reason: err.to_string().split_whitespace().collect::<Vec<_>>().join(" "),
            });
        }
        let pool = &self.0.pool;
        pool.created.fetch_add(1, Ordering::Relaxed);
        pool.bytes_created.fetch_add(size, Ordering::Relaxed);
        Ok(Arc::new(RawBuffer {
            id: pool.next_id.fetch_add(1, Ordering::Relaxed),
            buffer,
            size,
        }))
    }

    /// A MAP_READ buffer of exactly `size` bytes for readback, from the pool when possible.
    pub(crate) fn staging(&self, size: u64) -> wgpu::Buffer {
        let reused = self.0.pool.staging.lock().unwrap().get_mut(&size).and_then(|v| v.pop());
        reused.unwrap_or_else(|| {
            self.0.pool.created.fetch_add(1, Ordering::Relaxed);
            self.0.pool.bytes_created.fetch_add(size, Ordering::Relaxed);
            self.0.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("readback"),
                size,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        })
    }

    pub fn pool_stats(&self) -> PoolStats {
        let pool = &self.0.pool;
        PoolStats {
            buffers_created: pool.created.load(Ordering::Relaxed),
            bytes_created: pool.bytes_created.load(Ordering::Relaxed),
            buffers_free: pool.free.lock().unwrap().values().map(|v| v.len() as u64).sum(),
        }
    }
}
