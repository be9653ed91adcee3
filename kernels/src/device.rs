//! Opening a headless wgpu device and describing adapters.

use crate::conv_plan::{ConvKey, ConvPlan, ConvPlans, PlanState};
use crate::error::{KernelError, Result};
use crate::recorder::Recorder;
use crate::{pipelines::PipelineCache, pool::BufferPool};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Optional features we use when the adapter has them; plain f32 paths work without any.
pub const WANTED_FEATURES: wgpu::Features = wgpu::Features::SHADER_F16
    .union(wgpu::Features::SUBGROUP)
    .union(wgpu::Features::TIMESTAMP_QUERY)
    .union(wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS);

/// Workgroup memory the tensor-core shaders need: coop_conv.wgsl's staged slices of A and B
/// (8,704 bytes each), its accumulator scratch (4,096) and depth table (1,280), rounded up.
const COOP_WORKGROUP_BYTES: u32 = 24 * 1024;

/// What `autorep devices` prints about one adapter.
#[derive(Debug, Clone)]
pub struct AdapterReport {
    pub name: String,
    pub backend: wgpu::Backend,
    pub device_type: wgpu::DeviceType,
    pub driver: String,
    pub driver_info: String,
    pub max_storage_binding: u64,
    pub max_buffer: u64,
    pub workgroup_storage: u32,
    pub invocations_per_workgroup: u32,
    pub storage_buffers_per_stage: u32,
    pub f16: bool,
    pub subgroup: bool,
    pub timestamps: bool,
    /// Cooperative matrices (tensor cores) of the one shape the f16 GEMM uses: 16x16x16,
    /// f16 x f16 -> f32 (wgpu's experimental feature, with SHADER_F16).
    pub coop_f16: bool,
    /// `coop_f16` holds because the tensor-core shaders run rewritten into plain WGSL
    /// (`AUTOREP_COOP=emulate`, [`Gpu::open_emulating_coop`]): a check of their indexing on any
    /// adapter with SHADER_F16, slow, never a tensor core.
    pub coop_emulated: bool,
}

impl AdapterReport {
    fn of(adapter: &wgpu::Adapter) -> Self {
        let info = adapter.get_info();
        let l = adapter.limits();
        let f = adapter.features();
        Self {
            name: info.name,
            backend: info.backend,
            device_type: info.device_type,
            driver: info.driver,
            driver_info: info.driver_info,
            max_storage_binding: l.max_storage_buffer_binding_size,
            max_buffer: l.max_buffer_size,
            workgroup_storage: l.max_compute_workgroup_storage_size,
            invocations_per_workgroup: l.max_compute_invocations_per_workgroup,
            storage_buffers_per_stage: l.max_storage_buffers_per_shader_stage,
            f16: f.contains(wgpu::Features::SHADER_F16),
            subgroup: f.contains(wgpu::Features::SUBGROUP),
            timestamps: f.contains(wgpu::Features::TIMESTAMP_QUERY),
            // parts/coop_tile.wgsl counts subgroups as 32 consecutive invocations, and the
            // tensor-core shaders hold their tiles in workgroup memory.
            coop_f16: f.contains(
                wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX | wgpu::Features::SHADER_F16,
            ) && (info.subgroup_min_size, info.subgroup_max_size) == (32, 32)
                && l.max_compute_workgroup_storage_size >= COOP_WORKGROUP_BYTES
                && adapter.cooperative_matrix_properties().iter().any(|p| {
                    (p.m_size, p.n_size, p.k_size) == (16, 16, 16)
                        && p.ab_type == wgpu::CooperativeScalarType::F16
                        && p.cr_type == wgpu::CooperativeScalarType::F32
                }),
            coop_emulated: false,
        }
    }

    /// The adapter in a line, as conv plans are stamped with it: name, backend and driver.
    pub fn fingerprint(&self) -> String {
        // Trimmed: the plans file stores it trimmed, and some drivers report no driver info.
        let emulated = if self.coop_emulated {
            " | cooperative matrices emulated"
        } else {
            ""
        };
        format!(
            "{} | {:?} | {}{emulated}",
            self.name, self.backend, self.driver_info
        )
        .trim()
        .to_string()
    }

    /// A software rasteriser (lavapipe, llvmpipe, WARP, SwiftShader) rather than real hardware.
    pub fn is_software(&self) -> bool {
        self.device_type == wgpu::DeviceType::Cpu
    }
}

fn instance() -> wgpu::Instance {
    // `_from_env` so that WGPU_BACKEND=vulkan|metal|dx12|gl is honoured.
    wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env())
}

/// Compute-capable adapters usable for training (GL has no f16/subgroups but still computes).
fn usable(adapter: &wgpu::Adapter) -> bool {
    adapter
        .get_downlevel_capabilities()
        .flags
        .contains(wgpu::DownlevelFlags::COMPUTE_SHADERS)
}

/// Rank adapters the way `--device auto` chooses: hardware before software, Vulkan/Metal/DX12 before GL.
fn rank(a: &wgpu::Adapter) -> (u8, u8) {
    let info = a.get_info();
    let kind = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu | wgpu::DeviceType::Other => 2,
        wgpu::DeviceType::Cpu => 3,
    };
    let backend = match info.backend {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 0,
        _ => 1,
    };
    (kind, backend)
}

fn sorted_adapters(instance: &wgpu::Instance) -> Vec<wgpu::Adapter> {
    let mut adapters: Vec<_> =
        pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()))
            .into_iter()
            .filter(usable)
            .collect();
    adapters.sort_by_key(rank);
    adapters
}

fn split_target(report: &AdapterReport) -> u64 {
    if let Some(v) = crate::knobs::count("AUTOREP_SPLIT_TARGET") {
        return v;
    }
    if report.is_software() {
        0
    } else {
        HARDWARE_SPLIT_TARGET
    }
}

/// Every adapter the instance sees, best first (the first is what `auto` picks).
pub fn list_adapters() -> Vec<AdapterReport> {
    sorted_adapters(&instance())
        .iter()
        .map(AdapterReport::of)
        .collect()
}

/// Shared state of one opened GPU device. Cheap to clone through [`Gpu`].
pub struct GpuInner {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub report: AdapterReport,
    pub features: wgpu::Features,
    pub limits: wgpu::Limits,
    pub(crate) pool: BufferPool,
    pub(crate) pipelines: PipelineCache,
    pub(crate) recorder: Mutex<Recorder>,
    pub(crate) errors: Arc<Mutex<Vec<String>>>,
    pub(crate) lost: Arc<Mutex<Option<String>>>,
    /// The storage-binding limit dispatches enforce; see [`Gpu::set_max_binding_for_tests`].
    pub(crate) max_binding: AtomicU64,
    /// See [`Gpu::split_target`].
    pub(crate) split_target: AtomicU64,
    /// See [`Gpu::uses_coop_f16`].
    pub(crate) coop: AtomicBool,
    /// See [`Gpu::coop_check`].
    pub(crate) coop_check: Mutex<Option<crate::CoopCheck>>,
    /// See [`Gpu::prefetch`].
    pub(crate) prefetch: AtomicBool,
    /// See [`Gpu::set_conv_plans`] and [`Gpu::collect_conv_passes`].
    pub(crate) plans: Mutex<PlanState>,
    /// See [`Gpu::stand_in`].
    pub(crate) stand_in: std::sync::OnceLock<crate::GpuBuffer>,
}

/// Output elements (summed over split-K planes) a GEMM-shaped dispatch should produce on a
/// hardware GPU: 128k invocations of 128 accumulators each, about two waves of the register-
/// limited residency of a 132-SM H100 (~384 such invocations per SM); smaller GPUs simply run
/// more waves. Measured on an H100 (BENCHMARKS.md): 4M, 16M and 32M within a few percent.
const HARDWARE_SPLIT_TARGET: u64 = 4 << 20;

/// A handle to an opened GPU device; clone freely.
#[derive(Clone)]
pub struct Gpu(pub(crate) Arc<GpuInner>);

impl std::fmt::Debug for Gpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Gpu({} on {:?})",
            self.0.report.name, self.0.report.backend
        )
    }
}

impl Gpu {
    /// Open the best adapter (hardware first, then software).
    pub fn open() -> Result<Gpu> {
        let emulate = crate::knobs::coop() == Some(crate::knobs::CoopKnob::Emulate);
        Self::open_with(emulate)
    }

    /// Test and debugging hook: open the best adapter as [`Gpu::open`] does, with its
    /// tensor-core shaders emulated in plain WGSL (see [`AdapterReport::coop_emulated`]), so
    /// that they run where no tensor cores exist. Needs SHADER_F16.
    pub fn open_emulating_coop() -> Result<Gpu> {
        Self::open_with(true)
    }

    fn open_with(emulate_coop: bool) -> Result<Gpu> {
        let instance = instance();
        let adapters = sorted_adapters(&instance);
        let Some(adapter) = adapters.into_iter().next() else {
            let detail = match std::env::var("WGPU_BACKEND") {
                Ok(b) => format!(" for WGPU_BACKEND={b}"),
                Err(_) => String::new(),
            };
            return Err(KernelError::NoAdapter { detail });
        };
        Self::from_adapter(adapter, emulate_coop)
    }

    fn from_adapter(adapter: wgpu::Adapter, emulate_coop: bool) -> Result<Gpu> {
        let mut report = AdapterReport::of(&adapter);
        if emulate_coop {
            let reason = if !report.f16 {
                "it has no SHADER_F16 feature"
            } else if report.workgroup_storage < COOP_WORKGROUP_BYTES {
                "its workgroup memory is too small for the tensor-core tiles"
            } else {
                ""
            };
            if !reason.is_empty() {
                return Err(KernelError::CoopEmulation {
                    adapter: report.name,
                    reason,
                });
            }
            report.coop_f16 = true;
            report.coop_emulated = true;
        }
        let mut features = adapter.features() & WANTED_FEATURES;
        let experimental_features = if report.coop_f16 && !report.coop_emulated {
            features |= wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX;
            // SAFETY: wgpu marks cooperative matrices experimental (their validation is not
            // complete). Only shaders/parts/coop_tile.wgsl (for coop_gemm.wgsl and
            // coop_conv.wgsl), coop_gemm.wgsl's direct loads and the benchmark kernels of
            // coop_peak.wgsl use them, in uniform control flow, on workgroup memory the
            // workgroup fills or on buffers whose bounds the launchers check, and
            // kernels/tests/coop.rs checks them against the SIMT kernels and CPU twins on every
            // adapter that has them; AUTOREP_COOP=0 turns the path off.
            unsafe { wgpu::ExperimentalFeatures::enabled() }
        } else {
            wgpu::ExperimentalFeatures::disabled()
        };
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("autorep"),
            required_features: features,
            required_limits: limits.clone(),
            experimental_features,
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| KernelError::DeviceRequest {
            adapter: report.name.clone(),
            reason: e.to_string(),
        })?;
        // Validation errors must become typed errors, never the default panic.
        let errors = Arc::new(Mutex::new(Vec::new()));
        let sink = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            sink.lock().unwrap().push(e.to_string());
        }));
        let lost = Arc::new(Mutex::new(None));
        let lost_sink = lost.clone();
        device.set_device_lost_callback(move |_, msg| {
            *lost_sink.lock().unwrap() = Some(msg);
        });
        let recorder = Recorder::new(&device, &limits);
        let split_target = AtomicU64::new(split_target(&report));
        let coop_off = crate::knobs::coop() == Some(crate::knobs::CoopKnob::Off);
        let coop = AtomicBool::new(report.coop_f16 && !coop_off);
        let prefetch = AtomicBool::new(crate::knobs::switch("AUTOREP_PREFETCH").unwrap_or(false));
        let gpu = Gpu(Arc::new(GpuInner {
            coop,
            coop_check: Mutex::new(None),
            prefetch,
            plans: Mutex::default(),
            stand_in: std::sync::OnceLock::new(),
            split_target,
            pool: BufferPool::default(),
            pipelines: PipelineCache::default(),
            recorder: Mutex::new(recorder),
            device,
            queue,
            report,
            features,
            max_binding: AtomicU64::new(limits.max_storage_buffer_binding_size),
            limits,
            errors,
            lost,
        }));
        Ok(gpu)
    }

    /// Whether two handles refer to the same opened device.
    pub fn same_device(&self, other: &Gpu) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    pub fn report(&self) -> &AdapterReport {
        &self.0.report
    }

    pub fn device(&self) -> &wgpu::Device {
        &self.0.device
    }

    pub fn queue(&self) -> &wgpu::Queue {
        &self.0.queue
    }

    pub fn limits(&self) -> &wgpu::Limits {
        &self.0.limits
    }

    /// The largest storage binding (bytes) a dispatch may use: the adapter's
    /// `max_storage_buffer_binding_size` unless lowered by [`Gpu::set_max_binding_for_tests`].
    /// Launchers that split oversized operands (GEMM over M) plan with this value.
    pub fn max_binding(&self) -> u64 {
        self.0.max_binding.load(Ordering::Relaxed)
    }

    /// Test hook: lower the storage-binding limit of this device (clamped to the adapter's real
    /// limit) so the paths for operands beyond it, such as GEMM chunking, run on small tensors.
    /// Dispatch then rejects larger bindings exactly as it would on a real adapter.
    pub fn set_max_binding_for_tests(&self, bytes: u64) {
        let real = self.0.limits.max_storage_buffer_binding_size;
        self.0.max_binding.store(bytes.min(real), Ordering::Relaxed);
    }

    /// How many output elements a GEMM-shaped pass should produce, counting every split-K
    /// plane, before it is worth splitting K: 0 on software adapters (a CPU rasteriser is
    /// filled by a handful of workgroups, and a split only adds a reduction pass), large on a
    /// hardware GPU, whose thousands of lanes idle when a late layer's small output makes few
    /// workgroups. `AUTOREP_SPLIT_TARGET` overrides it (for tuning).
    pub fn split_target(&self) -> usize {
        self.0.split_target.load(Ordering::Relaxed) as usize
    }

    /// Test hook: set [`Gpu::split_target`], so the split-K paths of hardware GPUs run (and
    /// are checked) on a software adapter.
    pub fn set_split_target_for_tests(&self, elements: usize) {
        self.0
            .split_target
            .store(elements as u64, Ordering::Relaxed);
    }

    /// Whether f16 GEMMs run on cooperative matrices (tensor cores): where the adapter has
    /// 16x16x16 f16 x f16 -> f32 ones (or they are emulated), unless `AUTOREP_COOP=0` or
    /// [`Gpu::set_coop_for_tests`] turned them off.
    pub fn uses_coop_f16(&self) -> bool {
        self.0.coop.load(Ordering::Relaxed)
    }

    /// Test and benchmark hook: run f16 GEMMs on cooperative matrices (where the adapter has
    /// them) or on the SIMT core, to compare the two on the same inputs.
    pub fn set_coop_for_tests(&self, on: bool) {
        self.0
            .coop
            .store(on && self.0.report.coop_f16, Ordering::Relaxed);
    }

    /// Whether the SIMT GEMM and the convolution tiles (SIMT and tensor-core) load each K slice
    /// ahead, during the previous slice's multiply-adds (the PREFETCH constant of
    /// shaders/gemm.wgsl, conv.wgsl and coop_conv.wgsl): off unless `AUTOREP_PREFETCH=1` until
    /// a hardware GPU has measured it.
    pub fn prefetch(&self) -> bool {
        self.0.prefetch.load(Ordering::Relaxed)
    }

    /// Test and benchmark hook: set [`Gpu::prefetch`].
    pub fn set_prefetch(&self, on: bool) {
        self.0.prefetch.store(on, Ordering::Relaxed);
    }

    /// Run the convolution passes these plans name by them (measured on this adapter: another
    /// adapter's plans are an error); every other pass keeps the launchers' rule.
    pub fn set_conv_plans(&self, plans: ConvPlans) -> Result<()> {
        let here = self.0.report.fingerprint();
        if plans.adapter != here {
            return Err(KernelError::PlansAdapter {
                file: plans.adapter,
                here,
            });
        }
        self.plan_state().tuned = plans;
        Ok(())
    }

    /// The measured plans this device runs by (empty unless [`Gpu::set_conv_plans`]).
    pub fn conv_plans(&self) -> ConvPlans {
        let mut plans = self.plan_state().tuned.clone();
        plans.adapter = self.0.report.fingerprint();
        plans
    }

    /// Start (true) or stop recording every convolution pass planned (launched, or its scratch
    /// sized); stopping returns them, distinct, in the order first seen (what `autorep tune`
    /// measures).
    pub fn collect_conv_passes(&self, on: bool) -> Vec<ConvKey> {
        let mut st = self.plan_state();
        let seen = st.seen.take().unwrap_or_default();
        if on {
            st.seen = Some(Vec::new());
        }
        seen
    }

    /// The measured plan of a pass, if any, noting the pass while collecting.
    pub(crate) fn tuned_plan(&self, key: &ConvKey) -> Option<ConvPlan> {
        let mut st = self.plan_state();
        if let Some(seen) = st.seen.as_mut() {
            if !seen.contains(key) {
                seen.push(*key);
            }
        }
        st.tuned.plans.get(key).copied()
    }

    fn plan_state(&self) -> std::sync::MutexGuard<'_, PlanState> {
        self.0.plans.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether submits and passes can be timed on the device ([`Gpu::flush_timed`],
    /// [`Gpu::set_profiling`]): timestamp queries, also between passes.
    pub fn has_timestamps(&self) -> bool {
        self.0.features.contains(
            wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS,
        )
    }

    /// Raise any asynchronous error (validation, device loss) seen since the last check.
    pub fn check(&self, context: &str) -> Result<()> {
        if let Some(msg) = self.0.lost.lock().unwrap().clone() {
            return Err(KernelError::DeviceLost(msg));
        }
        let mut errs = self.0.errors.lock().unwrap();
        if let Some(first) = errs.first().cloned() {
            errs.clear();
            let message = first.split_whitespace().collect::<Vec<_>>().join(" ");
            return Err(KernelError::Validation {
                context: context.to_string(),
                message,
            });
        }
        Ok(())
    }
}
