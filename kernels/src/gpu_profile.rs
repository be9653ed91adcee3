//! Device time per dispatch, for `autorep bench step --profile` on a GPU: while profiling is
//! on, the recorder encodes every dispatch in a compute pass of its own whose beginning and
//! end write timestamps, reads them back after each submit and sums the time per kernel
//! (entry point and variant) and label (what the launcher says it computes, e.g. a
//! convolution's pass and shape). Off by default; profiling changes how work is encoded (a
//! pass per dispatch, a readback per submit), so the step times it reports come from steps
//! run without it.

use crate::device::Gpu;
use crate::dtype::Dtype;
use crate::error::{KernelError, Result};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Dispatches timed per submit: two timestamps each, in one query set of at most
/// `QUERY_SET_MAX_QUERIES`; the recorder submits early when this many are queued.
pub(crate) const MAX_TIMED: usize = (wgpu::QUERY_SET_MAX_QUERIES / 2) as usize;

/// One row of a profile: the device time of every dispatch of one kernel under one label.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileRow {
    /// Entry point and variant, e.g. "coop_conv_wide f16".
    pub kernel: String,
    /// What the launcher said it computed (see [`Gpu::profile_label`]), if it said.
    pub label: Option<String>,
    pub calls: u64,
    pub secs: f64,
}

type Key = (String, Option<Arc<str>>);

#[derive(Default)]
pub(crate) struct Profiler {
    pub(crate) on: bool,
    label: Option<Arc<str>>,
    /// Keys of the dispatches queued since the last submit, in order.
    pub(crate) pending: Vec<Key>,
    table: BTreeMap<Key, (u64, f64)>,
}

impl Profiler {
    pub(crate) fn queue(&mut self, entry: &str, dtype: Dtype) {
        self.pending
            .push((format!("{entry} {}", dtype.name()), self.label.clone()));
    }

    /// Add the durations of `keys`' dispatches: `ticks` holds a (begin, end) pair per key.
    pub(crate) fn add(&mut self, keys: Vec<Key>, ticks: &[u64], period_ns: f64) {
        for (key, t) in keys.into_iter().zip(ticks.chunks_exact(2)) {
            let secs = t[1].saturating_sub(t[0]) as f64 * period_ns * 1e-9;
            let row = self.table.entry(key).or_insert((0, 0.0));
            row.0 += 1;
            row.1 += secs;
        }
    }
}

/// The query set and buffers that carry one submit's timestamps back to the host.
pub(crate) struct TimedSubmit {
    pub(crate) queries: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    pub(crate) staging: wgpu::Buffer,
    pub(crate) keys: Vec<Key>,
}

impl TimedSubmit {
    pub(crate) fn new(device: &wgpu::Device, keys: Vec<Key>) -> Self {
        let count = 2 * keys.len() as u32;
        let bytes = (count as u64 * 8).max(8);
        let buffer = |usage| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("profile timestamps"),
                size: bytes,
                usage,
                mapped_at_creation: false,
            })
        };
        TimedSubmit {
            queries: device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("profile"),
                ty: wgpu::QueryType::Timestamp,
                count: count.max(1),
            }),
            resolve: buffer(wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC),
            staging: buffer(wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST),
            keys,
        }
    }

    /// The `j`-th dispatch's pass writes timestamps 2j and 2j + 1.
    pub(crate) fn writes(&self, j: usize) -> wgpu::ComputePassTimestampWrites<'_> {
        wgpu::ComputePassTimestampWrites {
            query_set: &self.queries,
            beginning_of_pass_write_index: Some(2 * j as u32),
            end_of_pass_write_index: Some(2 * j as u32 + 1),
        }
    }

    /// Resolve every timestamp and copy them where the host can map them.
    pub(crate) fn resolve(&self, enc: &mut wgpu::CommandEncoder) {
        let count = 2 * self.keys.len() as u32;
        if count > 0 {
            enc.resolve_query_set(&self.queries, 0..count, &self.resolve, 0);
            enc.copy_buffer_to_buffer(&self.resolve, 0, &self.staging, 0, count as u64 * 8);
        }
    }
}

impl Gpu {
    /// Start or stop timing every dispatch (see the module comment). Needs timestamp queries.
    /// Work queued before the switch is submitted first, under the old setting.
    pub fn set_profiling(&self, on: bool) -> Result<()> {
        if on && !self.has_timestamps() {
            return Err(KernelError::NoTimestamps);
        }
        self.flush()?;
        let mut rec = self.0.recorder.lock().unwrap();
        rec.profile.on = on;
        rec.profile.label = None;
        Ok(())
    }

    pub fn profiling(&self) -> bool {
        self.0.recorder.lock().unwrap().profile.on
    }

    /// Everything timed since the last call, most time first (waits for queued work).
    pub fn take_profile(&self) -> Result<Vec<ProfileRow>> {
        self.wait()?;
        let table = std::mem::take(&mut self.0.recorder.lock().unwrap().profile.table);
        let mut rows: Vec<ProfileRow> = table
            .into_iter()
            .map(|((kernel, label), (calls, secs))| ProfileRow {
                kernel,
                label: label.map(|l| l.to_string()),
                calls,
                secs,
            })
            .collect();
        rows.sort_by(|a, b| b.secs.total_cmp(&a.secs));
        Ok(rows)
    }

    /// Label the dispatches queued until the returned guard drops (the launcher's scope) with
    /// `label()` in a profile; `label` runs only while profiling, so launchers describe their
    /// shapes at no cost otherwise. The guard restores the label of any enclosing scope.
    #[must_use = "the label applies until the guard drops"]
    pub fn profile_label(&self, label: impl FnOnce() -> String) -> ProfileLabel {
        let mut rec = self.0.recorder.lock().unwrap();
        let p = &mut rec.profile;
        let restore =
            p.on.then(|| (self.clone(), p.label.replace(label().into())));
        ProfileLabel { restore }
    }
}

/// See [`Gpu::profile_label`].
pub struct ProfileLabel {
    restore: Option<(Gpu, Option<Arc<str>>)>,
}

impl Drop for ProfileLabel {
    fn drop(&mut self) {
        if let Some((gpu, before)) = self.restore.take() {
            gpu.0.recorder.lock().unwrap().profile.label = before;
        }
    }
}
