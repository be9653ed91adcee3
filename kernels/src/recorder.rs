//! Commands are queued on the host and encoded at flush time into ONE command encoder, with
//! consecutive dispatches sharing ONE compute pass, then submitted once. Per-dispatch scalars
//! live in a uniform arena written once per submit and selected with dynamic offsets, because a
//! `queue.write_buffer` lands before the whole submit and could not serve two dispatches.

use crate::device::Gpu;
use crate::dtype::Dtype;
use crate::error::{KernelError, Result};
use crate::gpu_profile::{Key, Profiler, TimedSubmit, MAX_TIMED};
use crate::pipelines::{Kernel, PARAM_BYTES};
use crate::pool::GpuBuffer;
use crate::uniforms::Uniform;
use std::sync::Arc;
use std::time::Duration;

/// Dispatches per submit before the recorder flushes on its own.
const ARENA_SLOTS: u64 = 4096;

enum Cmd {
    Dispatch {
        pipeline: Arc<wgpu::ComputePipeline>,
        bind: Arc<wgpu::BindGroup>,
        offset: u32,
        groups: [u32; 3],
        /// While profiling: what the dispatch is timed under (see [`Gpu::set_profiling`]).
        key: Option<Key>,
    },
    Copy {
        src: wgpu::Buffer,
        src_offset: u64,
        dst: wgpu::Buffer,
        dst_offset: u64,
        size: u64,
    },
    /// A host write staged at byte `at` of this submit's uploads (see [`Gpu::write`]).
    Upload {
        at: u64,
        dst: wgpu::Buffer,
        dst_offset: u64,
        size: u64,
    },
}

/// The most bytes of host writes staged for one submit; a larger write submits the queued
/// work first instead.
const MAX_STAGED_WRITE: u64 = 64 << 20;

pub(crate) struct Recorder {
    arena: wgpu::Buffer,
    stride: u64,
    params: Vec<u8>,
    cmds: Vec<Cmd>,
    dispatches: u64,
    submits: u64,
    /// Host writes made while commands were queued, uploaded at the submit like `params`
    /// into `upload` (grown as needed) and copied to their buffers in stream order.
    uploads: Vec<u8>,
    upload: Option<wgpu::Buffer>,
    /// Per-dispatch timing, while on (see [`Gpu::set_profiling`]), and how many queued
    /// dispatches carry a key.
    pub(crate) profile: Profiler,
    timed_queued: usize,
}

impl Recorder {
    pub(crate) fn new(device: &wgpu::Device, limits: &wgpu::Limits) -> Self {
        let align = limits.min_uniform_buffer_offset_alignment as u64;
        let stride = PARAM_BYTES.div_ceil(align) * align;
        let arena = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("params arena"),
            size: stride * ARENA_SLOTS,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Recorder {
            arena,
            stride,
            params: Vec::new(),
            cmds: Vec::new(),
            dispatches: 0,
            submits: 0,
            uploads: Vec::new(),
            upload: None,
            profile: Profiler::default(),
            timed_queued: 0,
        }
    }
}

/// A byte range of a pooled buffer bound to one storage binding; `offset` counts from the
/// start of the underlying buffer (a view's own offset included).
#[derive(Clone, Copy)]
pub struct BufRef<'a> {
    pub buf: &'a GpuBuffer,
    pub offset: u64,
    pub size: u64,
}

impl<'a> From<&'a GpuBuffer> for BufRef<'a> {
    fn from(buf: &'a GpuBuffer) -> Self {
        BufRef {
            buf,
            offset: buf.offset_bytes(),
            size: buf.len_bytes().max(4).div_ceil(4) * 4,
        }
    }
}

/// Counters of the command stream, for tests and reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamStats {
    pub dispatches: u64,
    pub submits: u64,
}

/// Split a workgroup count over x and y so no dimension exceeds 65,535.
pub fn grid(groups: u32) -> [u32; 3] {
    const MAX: u32 = 65_535;
    if groups <= MAX {
        [groups.max(1), 1, 1]
    } else {
        [MAX, groups.div_ceil(MAX), 1]
    }
}

impl Gpu {
    /// Queue one dispatch; nothing reaches the device until [`Gpu::flush`] or a readback.
    pub fn dispatch<P: Uniform>(
        &self,
        kernel: &Kernel<P>,
        constants: &[(&str, f64)],
        params: &P,
        bindings: &[BufRef<'_>],
        groups: [u32; 3],
    ) -> Result<()> {
        let kernel = &kernel.entry;
        assert_eq!(
            bindings.len(),
            kernel.bindings.len(),
            "{}: binding count",
            kernel.name
        );
        const { assert!(std::mem::size_of::<P>() as u64 <= PARAM_BYTES) };
        let limit = self.max_binding();
        if let Some(big) = bindings.iter().find(|b| b.size > limit) {
            return Err(KernelError::BindingTooLarge {
                bytes: big.size,
                limit,
            });
        }
        let dtype = self.variant_for(kernel, bindings)?;
        let pipeline = self.pipeline(kernel, constants, dtype)?;
        let full = {
            let rec = self.0.recorder.lock().unwrap();
            rec.params.len() as u64 >= rec.stride * ARENA_SLOTS || rec.timed_queued >= MAX_TIMED
        };
        if full {
            self.flush()?;
        }
        let mut rec = self.0.recorder.lock().unwrap();
        let bind = self.bind_group(kernel, &rec.arena, bindings);
        let offset = rec.params.len() as u32;
        let stride = rec.stride as usize;
        rec.params.extend_from_slice(bytemuck::bytes_of(params));
        rec.params.resize(offset as usize + stride, 0);
        let key = rec.profile.key(kernel.name, dtype);
        rec.timed_queued += key.is_some() as usize;
        rec.cmds.push(Cmd::Dispatch {
            pipeline,
            bind,
            offset,
            groups,
            key,
        });
        rec.dispatches += 1;
        Ok(())
    }

    /// The variant a dispatch runs: f16 when any operand is an f16 buffer. Every binding the
    /// variant declares as `act` must then hold f16 and every other one f32 words, so that a
    /// buffer is never read as the wrong type; an all-f32 dispatch runs the f32 variant.
    fn variant_for(&self, kernel: &crate::EntryPoint, bindings: &[BufRef<'_>]) -> Result<Dtype> {
        if bindings.iter().all(|b| b.buf.dtype() == Dtype::F32) {
            return Ok(Dtype::F32);
        }
        let acts = self.act_mask(kernel);
        for (k, b) in bindings.iter().enumerate() {
            let want = if acts & (1 << k) != 0 {
                Dtype::F16
            } else {
                Dtype::F32
            };
            if b.buf.dtype() != want {
                return Err(KernelError::DtypeMismatch {
                    kernel: kernel.name.to_string(),
                    binding: k + 1,
                    got: b.buf.dtype().name(),
                    want: want.name(),
                });
            }
        }
        Ok(Dtype::F16)
    }

    /// Encode everything queued into one encoder and submit it.
    pub fn flush(&self) -> Result<Option<wgpu::SubmissionIndex>> {
        self.flush_with(None)
    }

    fn flush_with(
        &self,
        timestamps: Option<(&wgpu::QuerySet, &wgpu::Buffer)>,
    ) -> Result<Option<wgpu::SubmissionIndex>> {
        let mut rec = self.0.recorder.lock().unwrap();
        if rec.cmds.is_empty() && timestamps.is_none() {
            return Ok(None);
        }
        let cmds = std::mem::take(&mut rec.cmds);
        if !rec.params.is_empty() {
            self.0.queue.write_buffer(&rec.arena, 0, &rec.params);
            rec.params.clear();
        }
        if !rec.uploads.is_empty() {
            let need = rec.uploads.len() as u64;
            if rec.upload.as_ref().is_none_or(|b| b.size() < need) {
                rec.upload = Some(self.0.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("staged writes"),
                    size: need.next_power_of_two().max(256),
                    usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
                    mapped_at_creation: false,
                }));
            }
            let upload = rec.upload.clone().expect("sized above");
            self.0.queue.write_buffer(&upload, 0, &rec.uploads);
            rec.uploads.clear();
        }
        let mut enc = self
            .0
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        // The keyed dispatches get timestamps, up to one query set's worth (more are queued
        // only when several threads record at once; those run untimed).
        let keys: Vec<Key> = cmds
            .iter()
            .filter_map(|c| match c {
                Cmd::Dispatch { key, .. } => key.clone(),
                _ => None,
            })
            .take(MAX_TIMED)
            .collect();
        rec.timed_queued = 0;
        let timed = (!keys.is_empty()).then(|| TimedSubmit::new(&self.0.device, keys));
        let mut n_timed = 0;
        if let Some((qs, _)) = timestamps {
            enc.write_timestamp(qs, 0);
        }
        let mut i = 0;
        while i < cmds.len() {
            match &cmds[i] {
                Cmd::Copy {
                    src,
                    src_offset,
                    dst,
                    dst_offset,
                    size,
                } => {
                    enc.copy_buffer_to_buffer(src, *src_offset, dst, *dst_offset, *size);
                    i += 1;
                }
                Cmd::Upload {
                    at,
                    dst,
                    dst_offset,
                    size,
                } => {
                    let src = rec.upload.as_ref().expect("uploaded above");
                    enc.copy_buffer_to_buffer(src, *at, dst, *dst_offset, *size);
                    i += 1;
                }
                Cmd::Dispatch { key, .. } => {
                    // Consecutive dispatches share a pass, except that a timed dispatch has a
                    // pass of its own to carry its timestamps.
                    let cap = timed.as_ref().map_or(0, |t| t.keys.len());
                    let timed_here = key.is_some() && n_timed < cap;
                    let writes = match &timed {
                        Some(t) if timed_here => Some(t.writes(n_timed)),
                        _ => None,
                    };
                    let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                        label: None,
                        timestamp_writes: writes,
                    });
                    let first = i;
                    while let Some(Cmd::Dispatch {
                        pipeline,
                        bind,
                        offset,
                        groups,
                        key,
                    }) = cmds.get(i)
                    {
                        if i > first && key.is_some() && n_timed < cap {
                            break;
                        }
                        pass.set_pipeline(pipeline);
                        pass.set_bind_group(0, bind.as_ref(), &[*offset]);
                        pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
                        i += 1;
                        if timed_here {
                            n_timed += 1;
                            break;
                        }
                    }
                }
            }
        }
        if let Some(t) = &timed {
            t.resolve(&mut enc);
        }
        if let Some((qs, resolve)) = timestamps {
            enc.write_timestamp(qs, 1);
            enc.resolve_query_set(qs, 0..2, resolve, 0);
        }
        let index = self.0.queue.submit([enc.finish()]);
        rec.submits += 1;
        drop(rec);
        self.check("submit")?;
        if let Some(t) = timed {
            let bytes = self.map_and_read(&t.staging, 16 * t.keys.len() as u64)?;
            let period = self.0.queue.get_timestamp_period() as f64;
            let mut rec = self.0.recorder.lock().unwrap();
            let ticks: Vec<u64> = bytemuck::pod_collect_to_vec(&bytes);
            rec.profile.add(t.keys, &ticks, period);
        }
        Ok(Some(index))
    }

    /// Block until all submitted work is done.
    pub fn wait(&self) -> Result<()> {
        self.flush()?;
        self.0
            .device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| KernelError::DeviceLost(e.to_string()))?;
        self.check("wait")
    }

    /// Copy host data into `buf` at byte `offset`, ordered after everything queued so far.
    ///
    /// `queue.write_buffer` lands before the next submit's commands, so with commands queued
    /// the data joins this submit's uploads (written once at the submit, as the dispatch
    /// parameters are) and a copy into `buf` joins the queue, instead of submitting the queued
    /// work first: a step that uploads something after its first dispatch still submits once.
    pub fn write(&self, buf: &GpuBuffer, offset: u64, data: &[u8]) -> Result<()> {
        let mut padded;
        let bytes = if data.len().is_multiple_of(4) {
            data
        } else {
            padded = data.to_vec();
            padded.resize(data.len().div_ceil(4) * 4, 0);
            &padded
        };
        if bytes.is_empty() {
            return Ok(());
        }
        let dst_offset = buf.offset_bytes() + offset;
        let size = bytes.len() as u64;
        let mut rec = self.0.recorder.lock().unwrap();
        if rec.cmds.is_empty() || rec.uploads.len() as u64 + size > MAX_STAGED_WRITE {
            // Nothing queued, or too much to stage: the queued work goes first.
            drop(rec);
            self.flush()?;
            self.0.queue.write_buffer(buf.wgpu(), dst_offset, bytes);
            return Ok(());
        }
        let at = rec.uploads.len() as u64;
        rec.uploads.extend_from_slice(bytes);
        rec.cmds.push(Cmd::Upload {
            at,
            dst: buf.wgpu().clone(),
            dst_offset,
            size,
        });
        Ok(())
    }

    /// Queue a buffer-to-buffer copy in stream order.
    pub fn copy(
        &self,
        src: &GpuBuffer,
        src_offset: u64,
        dst: &GpuBuffer,
        dst_offset: u64,
        size: u64,
    ) -> Result<()> {
        let mut rec = self.0.recorder.lock().unwrap();
        rec.cmds.push(Cmd::Copy {
            src: src.wgpu().clone(),
            src_offset: src.offset_bytes() + src_offset,
            dst: dst.wgpu().clone(),
            dst_offset: dst.offset_bytes() + dst_offset,
            size,
        });
        Ok(())
    }

    /// Read `bytes` bytes of `buf` from byte `offset` back to the host (flushes and waits).
    pub fn read_bytes(&self, buf: &GpuBuffer, offset: u64, bytes: u64) -> Result<Vec<u8>> {
        let size = bytes.div_ceil(4) * 4;
        if size == 0 {
            return Ok(Vec::new());
        }
        let staging = self.staging(size);
        {
            let mut rec = self.0.recorder.lock().unwrap();
            rec.cmds.push(Cmd::Copy {
                src: buf.wgpu().clone(),
                src_offset: buf.offset_bytes() + offset,
                dst: staging.clone(),
                dst_offset: 0,
                size,
            });
        }
        let out = self
            .flush()
            .and_then(|_| self.map_and_read(&staging, bytes));
        // A buffer whose read failed may still be mapped, or mid-map: not for reuse.
        match out {
            Ok(_) => self.0.pool.return_staging(staging),
            Err(_) => self.0.pool.discard_staging(&staging),
        }
        out
    }

    fn map_and_read(&self, staging: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>> {
        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        self.0
            .device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| KernelError::DeviceLost(e.to_string()))?;
        rx.recv_timeout(Duration::from_secs(600))
            .map_err(|e| KernelError::Map(e.to_string()))?
            .map_err(|e| KernelError::Map(e.to_string()))?;
        let out = {
            let view = staging
                .get_mapped_range(..)
                .map_err(|e| KernelError::Map(e.to_string()))?;
            view[..bytes as usize].to_vec()
        };
        staging.unmap();
        self.check("readback")?;
        Ok(out)
    }

    pub fn read_f32(&self, buf: &GpuBuffer, offset_elems: usize, n: usize) -> Result<Vec<f32>> {
        let bytes = self.read_bytes(buf, offset_elems as u64 * 4, n as u64 * 4)?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    /// `n` f16 values from element `offset_elems` of an f16 buffer, widened to f32.
    pub fn read_f16(&self, buf: &GpuBuffer, offset_elems: usize, n: usize) -> Result<Vec<f32>> {
        // Copies start on 4-byte boundaries: an odd offset reads one half more in front.
        let skip = offset_elems % 2;
        let first = (offset_elems - skip) as u64 * 2;
        let bytes = self.read_bytes(buf, first, (n + skip) as u64 * 2)?;
        Ok(crate::dtype::from_f16_bytes(&bytes[skip * 2..]))
    }

    /// Upload f32 values rounded to f16 into a fresh f16 buffer.
    pub fn upload_f16(&self, data: &[f32]) -> Result<GpuBuffer> {
        self.upload_as(data, Dtype::F16)
    }

    /// Upload f32 values into a fresh buffer of `dtype` (rounded where it is f16).
    pub fn upload_as(&self, data: &[f32], dtype: Dtype) -> Result<GpuBuffer> {
        let buf = self.alloc_elems(data.len(), dtype)?;
        self.write_values(&buf, data)?;
        Ok(buf)
    }

    /// A pooled buffer of `n` elements of `dtype`.
    pub fn alloc_elems(&self, n: usize, dtype: Dtype) -> Result<GpuBuffer> {
        Ok(self.alloc(n as u64 * dtype.bytes())?.typed(dtype))
    }

    /// `n` values of `buf` from element `offset_elems`, widened to f32 whatever its type.
    pub fn read_values(&self, buf: &GpuBuffer, offset_elems: usize, n: usize) -> Result<Vec<f32>> {
        match buf.dtype() {
            Dtype::F16 => self.read_f16(buf, offset_elems, n),
            Dtype::F32 => self.read_f32(buf, offset_elems, n),
        }
    }

    /// f32 values into `buf` from its first element, converted to its element type.
    pub fn write_values(&self, buf: &GpuBuffer, data: &[f32]) -> Result<()> {
        match buf.dtype() {
            Dtype::F16 => self.write(
                buf,
                0,
                bytemuck::cast_slice(&crate::dtype::to_f16_bits(data)),
            ),
            Dtype::F32 => self.write(buf, 0, bytemuck::cast_slice(data)),
        }
    }

    pub fn read_u32(&self, buf: &GpuBuffer, offset_elems: usize, n: usize) -> Result<Vec<u32>> {
        let bytes = self.read_bytes(buf, offset_elems as u64 * 4, n as u64 * 4)?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    /// Upload a slice into a fresh pooled buffer.
    pub fn upload<T: bytemuck::Pod>(&self, data: &[T]) -> Result<GpuBuffer> {
        let bytes: &[u8] = bytemuck::cast_slice(data);
        let buf = self.alloc(bytes.len() as u64)?;
        self.write(&buf, 0, bytes)?;
        Ok(buf)
    }

    pub fn stream_stats(&self) -> StreamStats {
        let rec = self.0.recorder.lock().unwrap();
        StreamStats {
            dispatches: rec.dispatches,
            submits: rec.submits,
        }
    }

    /// Device seconds spent on everything queued, measured with timestamp queries around one
    /// submit (see [`Gpu::has_timestamps`]).
    pub fn flush_timed(&self) -> Result<f64> {
        if !self.has_timestamps() {
            return Err(KernelError::NoTimestamps);
        }
        let dev = &self.0.device;
        let qs = dev.create_query_set(&wgpu::QuerySetDescriptor {
            label: None,
            ty: wgpu::QueryType::Timestamp,
            count: 2,
        });
        let resolve = dev.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size: 16,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let staging = dev.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size: 16,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        self.flush_with(Some((&qs, &resolve)))?;
        let mut enc = dev.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        enc.copy_buffer_to_buffer(&resolve, 0, &staging, 0, 16);
        self.0.queue.submit([enc.finish()]);
        let bytes = self.map_and_read(&staging, 16)?;
        let t: Vec<u64> = bytemuck::pod_collect_to_vec(&bytes);
        let period = self.0.queue.get_timestamp_period() as f64;
        Ok(t[1].saturating_sub(t[0]) as f64 * period * 1e-9)
    }

    /// Median seconds of the work `f` queues, over `reps` runs after one warm-up run: device
    /// time where the adapter has timestamp queries, else wall time to completion.
    pub fn median_secs<E: From<KernelError>>(
        &self,
        reps: usize,
        mut f: impl FnMut() -> std::result::Result<(), E>,
    ) -> std::result::Result<f64, E> {
        f()?;
        self.wait()?;
        let mut times = Vec::with_capacity(reps);
        for _ in 0..reps.max(1) {
            let t = std::time::Instant::now();
            f()?;
            let secs = if self.has_timestamps() {
                self.flush_timed()?
            } else {
                self.wait()?;
                t.elapsed().as_secs_f64()
            };
            self.wait()?;
            times.push(secs);
        }
        times.sort_by(|a, b| a.total_cmp(b));
        Ok(times[times.len() / 2])
    }
}
