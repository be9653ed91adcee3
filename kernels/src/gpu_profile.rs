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

/// One timed dispatch on the device's clock: seconds from the first dispatch timed since the
/// last [`Gpu::take_profile`].
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileEvent {
    pub kernel: String,
    pub label: Option<String>,
    pub start_s: f64,
    pub end_s: f64,
}

/// Everything timed while profiling: per kernel and label, and the work each label stands for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Profile {
    /// Most time first.
    pub rows: Vec<ProfileRow>,
    /// Every timed dispatch, in submission order (a timeline, e.g. for a trace viewer).
    pub events: Vec<ProfileEvent>,
    /// Per label: the floating-point operations its launcher calls stood for (multiply-adds
    /// count two; 0 where the launcher counts none), summed over the calls.
    pub flops: BTreeMap<String, f64>,
}

/// What one dispatch is timed under: its kernel and variant, and its launcher's label.
pub(crate) type Key = (String, Option<Arc<str>>);

#[derive(Default)]
pub(crate) struct Profiler {
    pub(crate) on: bool,
    label: Option<Arc<str>>,
    flops: BTreeMap<Arc<str>, f64>,
    /// (key, begin, end) in ticks of the device's timestamp clock (kept as integers: device
    /// clocks count from arbitrary origins, past f64's nanosecond precision), and the
    /// nanoseconds per tick.
    events: Vec<(Key, u64, u64)>,
    period_ns: f64,
}

impl Profiler {
    /// The key of a dispatch queued now, while profiling.
    pub(crate) fn key(&self, entry: &str, dtype: Dtype) -> Option<Key> {
        self.on
            .then(|| (format!("{entry} {}", dtype.name()), self.label.clone()))
    }

    /// Record `keys`' dispatches: `ticks` holds a (begin, end) pair per key.
    pub(crate) fn add(&mut self, keys: Vec<Key>, ticks: &[u64], period_ns: f64) {
        self.period_ns = period_ns;
        for (key, t) in keys.into_iter().zip(ticks.chunks_exact(2)) {
            self.events.push((key, t[0], t[0].max(t[1])));
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

    /// Everything timed since the last call (waits for queued work): the events, and the rows
    /// summed from them.
    pub fn take_profile(&self) -> Result<Profile> {
        self.wait()?;
        let (flops, events, period_ns) = {
            let mut rec = self.0.recorder.lock().unwrap();
            let p = &mut rec.profile;
            (
                std::mem::take(&mut p.flops),
                std::mem::take(&mut p.events),
                p.period_ns,
            )
        };
        let origin = events.iter().map(|e| e.1).min().unwrap_or(0);
        let secs = |tick: u64| (tick - origin) as f64 * period_ns * 1e-9;
        let mut table: BTreeMap<&Key, (u64, f64)> = BTreeMap::new();
        for (key, begin, end) in &events {
            let row = table.entry(key).or_default();
            row.0 += 1;
            row.1 += secs(*end) - secs(*begin);
        }
        let mut rows: Vec<ProfileRow> = table
            .into_iter()
            .map(|((kernel, label), (calls, secs))| ProfileRow {
                kernel: kernel.clone(),
                label: label.as_ref().map(|l| l.to_string()),
                calls,
                secs,
            })
            .collect();
        rows.sort_by(|a, b| b.secs.total_cmp(&a.secs));
        let events = events
            .into_iter()
            .map(|((kernel, label), begin, end)| ProfileEvent {
                kernel,
                label: label.map(|l| l.to_string()),
                start_s: secs(begin),
                end_s: secs(end),
            })
            .collect();
        let flops = flops.into_iter().map(|(l, f)| (l.to_string(), f)).collect();
        Ok(Profile {
            rows,
            events,
            flops,
        })
    }

    /// Label the dispatches queued until the returned guard drops (the launcher's scope) with
    /// `label()` in a profile, and count `flops` of work to it; `label` runs only while
    /// profiling, so launchers describe their shapes at no cost otherwise. The guard restores
    /// the label of any enclosing scope.
    #[must_use = "the label applies until the guard drops"]
    pub fn profile_label(&self, label: impl FnOnce() -> String, flops: f64) -> ProfileLabel {
        if !self.profiling() {
            return ProfileLabel { restore: None };
        }
        // Built outside the recorder's lock: the caller's closure may do anything.
        let label: Arc<str> = label().into();
        let mut rec = self.0.recorder.lock().unwrap();
        let p = &mut rec.profile;
        *p.flops.entry(label.clone()).or_default() += flops;
        let before = p.label.replace(label);
        ProfileLabel {
            restore: Some((self.clone(), before)),
        }
    }
}

/// See [`Gpu::profile_label`].
pub struct ProfileLabel {
    restore: Option<(Gpu, Option<Arc<str>>)>,
}

impl Drop for ProfileLabel {
    fn drop(&mut self) {
        // Also while unwinding from a panic that poisoned the lock: never a second panic.
        if let Some((gpu, before)) = self.restore.take() {
            let mut rec = gpu.0.recorder.lock().unwrap_or_else(|e| e.into_inner());
            rec.profile.label = before;
        }
    }
}
