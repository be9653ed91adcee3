//! Shader sources, compute pipelines and bind groups, each created once and cached.

use crate::device::Gpu;
use crate::dtype::Dtype;
use crate::error::{KernelError, Result};
use crate::uniforms::{Uniform, UniformLayout};
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

/// Bytes of per-dispatch parameters every kernel may read from binding 0.
pub const PARAM_BYTES: u64 = 128;

/// A WGSL source file from `shaders/`, embedded at build time.
#[derive(Debug, Clone, Copy)]
pub struct Shader {
    pub name: &'static str,
    /// Enable directives beyond the variant's (they must precede every declaration).
    pub enables: &'static str,
    /// The prelude and the file, without the variant header.
    pub source: &'static str,
}

impl Shader {
    /// The full WGSL of the variant whose activation type `act` is `dtype`.
    pub fn variant(&self, dtype: Dtype) -> String {
        let (enable, alias) = (dtype.wgsl_enable(), dtype.wgsl_alias());
        format!("{enable}{}{alias}{}", self.enables, self.source)
    }
}

/// Bit k set: storage binding k + 1 of an entry point holds `act` (activations), so it must be
/// bound to a buffer of the variant's type; the others hold f32 or u32 words.
pub type ActMask = u32;

/// Which storage bindings of `entry` hold `act`, read from the f16 variant with naga.
fn act_bindings(entry: &EntryPoint) -> ActMask {
    let source = entry.shader.variant(Dtype::F16);
    let module = naga::front::wgsl::parse_str(&source)
        .unwrap_or_else(|e| panic!("{}", e.emit_to_string_with_path(&source, entry.shader.name)));
    let info = naga::valid::Validator::new(
        naga::valid::ValidationFlags::empty(),
        naga::valid::Capabilities::SHADER_FLOAT16 | naga::valid::Capabilities::COOPERATIVE_MATRIX,
    )
    .validate(&module)
    .unwrap_or_else(|e| panic!("{}", e.emit_to_string_with_path(&source, entry.shader.name)));
    let Some(index) = module
        .entry_points
        .iter()
        .position(|ep| ep.name == entry.name)
    else {
        panic!("{}: no entry point {}", entry.shader.name, entry.name)
    };
    let uses = info.get_entry_point(index);
    let mut mask = 0;
    for (h, g) in module.global_variables.iter() {
        let (Some(b), naga::AddressSpace::Storage { .. }) = (&g.binding, g.space) else {
            continue;
        };
        if uses[h].is_empty() || b.binding == 0 {
            continue;
        }
        let element = match module.types[g.ty].inner {
            naga::TypeInner::Array { base, .. } => &module.types[base].inner,
            ref other => other,
        };
        let scalar = match element {
            naga::TypeInner::Scalar(s) => Some(*s),
            naga::TypeInner::Vector { scalar, .. } => Some(*scalar),
            _ => None,
        };
        if scalar.is_some_and(|s| s.kind == naga::ScalarKind::Float && s.width == 2) {
            mask |= 1 << (b.binding - 1);
        }
    }
    mask
}

/// How a kernel touches one storage binding (binding 1, 2, ... after the params at 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    Read,
    ReadWrite,
}

/// One WGSL entry point as the launchers use it: its storage bindings in order (binding 1,
/// 2, ... after the parameters at 0), its workgroup size, and the parameter block it reads.
#[derive(Debug, Clone, Copy)]
pub struct EntryPoint {
    pub shader: Shader,
    pub name: &'static str,
    pub bindings: &'static [Access],
    pub workgroup: [u32; 3],
    pub uniform: UniformLayout,
}

/// An entry point whose parameter block has the type `P`: a launcher can only pass it a `P`.
#[derive(Debug, Clone, Copy)]
pub struct Kernel<P> {
    pub entry: EntryPoint,
    params: PhantomData<fn(P)>,
}

impl<P: Uniform> Kernel<P> {
    pub const fn new(name: &'static str, bindings: &'static [Access], workgroup: [u32; 3]) -> Self {
        Kernel {
            entry: EntryPoint {
                shader: P::LAYOUT.shader,
                name,
                bindings,
                workgroup,
                uniform: P::LAYOUT,
            },
            params: PhantomData,
        }
    }

    /// An entry point of `shader` that reads `P`'s parameter block although `P` belongs to
    /// another shader (the tensor-core GEMM reads gemm.wgsl's; the contract test checks the
    /// struct in `shader` against `P` all the same).
    pub const fn in_shader(
        shader: Shader,
        name: &'static str,
        bindings: &'static [Access],
        workgroup: [u32; 3],
    ) -> Self {
        Kernel {
            entry: EntryPoint {
                shader,
                name,
                bindings,
                workgroup,
                uniform: P::LAYOUT,
            },
            params: PhantomData,
        }
    }

    /// Invocations per workgroup.
    pub const fn threads(&self) -> usize {
        let w = self.entry.workgroup;
        (w[0] * w[1] * w[2]) as usize
    }

    /// Workgroups for `n` invocations, split over x and y.
    pub fn groups_for(&self, n: usize) -> [u32; 3] {
        crate::recorder::grid(n.div_ceil(self.threads()) as u32)
    }
}

#[derive(Default)]
pub(crate) struct PipelineCache {
    layouts: Mutex<HashMap<Vec<Access>, Arc<wgpu::BindGroupLayout>>>,
    pipelines: Mutex<HashMap<String, Arc<wgpu::ComputePipeline>>>,
    acts: Mutex<HashMap<(&'static str, &'static str), ActMask>>,
    bind_groups: Mutex<HashMap<BindKey, Arc<wgpu::BindGroup>>>,
}

#[derive(PartialEq, Eq, Hash)]
struct BindKey {
    bindings: Vec<Access>,
    ranges: Vec<(u64, u64, u64)>,
}

fn checked_shaders() -> bool {
    crate::knobs::switch("AUTOREP_CHECKED_SHADERS").unwrap_or(false)
}

/// Beyond this many cached bind groups the cache is cleared (shapes changed a lot).
const MAX_BIND_GROUPS: usize = 8192;

impl Gpu {
    pub(crate) fn layout(&self, bindings: &[Access]) -> Arc<wgpu::BindGroupLayout> {
        let cache = &self.0.pipelines;
        let mut layouts = cache.layouts.lock().unwrap();
        if let Some(l) = layouts.get(bindings) {
            return l.clone();
        }
        let mut entries = vec![wgpu::BindGroupLayoutEntry {
            binding: 0,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: true,
                min_binding_size: None,
            },
            count: None,
        }];
        for (i, a) in bindings.iter().enumerate() {
            entries.push(wgpu::BindGroupLayoutEntry {
                binding: i as u32 + 1,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Storage {
                        read_only: *a == Access::Read,
                    },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            });
        }
        let layout = Arc::new(self.0.device.create_bind_group_layout(
            &wgpu::BindGroupLayoutDescriptor {
                label: None,
                entries: &entries,
            },
        ));
        layouts.insert(bindings.to_vec(), layout.clone());
        layout
    }

    /// Which storage bindings of `kernel` hold activations (reflected once per entry point).
    pub(crate) fn act_mask(&self, kernel: &EntryPoint) -> ActMask {
        let key = (kernel.shader.name, kernel.name);
        let mut acts = self.0.pipelines.acts.lock().unwrap();
        *acts.entry(key).or_insert_with(|| act_bindings(kernel))
    }

    /// The pipeline for `kernel` in its `dtype` variant, specialised with override `constants`.
    pub(crate) fn pipeline(
        &self,
        kernel: &EntryPoint,
        constants: &[(&str, f64)],
        dtype: Dtype,
    ) -> Result<Arc<wgpu::ComputePipeline>> {
        if dtype == Dtype::F16 && !self.0.features.contains(wgpu::Features::SHADER_F16) {
            return Err(KernelError::NoF16 {
                adapter: self.0.report.name.clone(),
            });
        }
        let mut key = format!("{}::{}:{}", kernel.shader.name, kernel.name, dtype.name());
        for (k, v) in constants {
            key.push_str(&format!(";{k}={v}"));
        }
        if let Some(p) = self.0.pipelines.pipelines.lock().unwrap().get(&key) {
            return Ok(p.clone());
        }
        let mut source = kernel.shader.variant(dtype);
        if self.0.report.coop_emulated && kernel.shader.enables.contains("cooperative_matrix") {
            source = crate::coop_emulation::emulate_coop(&source).map_err(|message| {
                KernelError::Validation {
                    context: format!("emulating {}", kernel.shader.name),
                    message,
                }
            })?;
        }
        let layout = self.layout(kernel.bindings);
        let device = &self.0.device;
        let desc = wgpu::ShaderModuleDescriptor {
            label: Some(kernel.shader.name),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        };
        let module = if checked_shaders() {
            device.create_shader_module(desc)
        } else {
            // SAFETY: every kernel in shaders/ guards its global reads and writes with explicit
            // range checks and indexes workgroup/private arrays only with in-range constants
            // and loop counters; wgpu's injected checks cost up to ~1.5x on GEMM-like loops.
            // AUTOREP_CHECKED_SHADERS=1 restores them for debugging.
            unsafe {
                device.create_shader_module_trusted(desc, wgpu::ShaderRuntimeChecks::unchecked())
            }
        };
        let pl = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: None,
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = Arc::new(
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(kernel.name),
                layout: Some(&pl),
                module: &module,
                entry_point: Some(kernel.name),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants,
                    // Every kernel writes its workgroup tiles before reading them.
                    zero_initialize_workgroup_memory: false,
                },
                cache: None,
            }),
        );
        self.0
            .pipelines
            .pipelines
            .lock()
            .unwrap()
            .insert(key, pipeline.clone());
        Ok(pipeline)
    }

    /// Drop the cached bind groups that bind any of the buffers `ids` (which are being given
    /// back: a cached group would keep each alive).
    pub(crate) fn forget_bind_groups(&self, ids: &std::collections::HashSet<u64>) {
        self.0
            .pipelines
            .bind_groups
            .lock()
            .unwrap()
            .retain(|k, _| !k.ranges.iter().any(|r| ids.contains(&r.0)));
    }

    pub(crate) fn bind_group(
        &self,
        kernel: &EntryPoint,
        arena: &wgpu::Buffer,
        ranges: &[crate::BufRef<'_>],
    ) -> Arc<wgpu::BindGroup> {
        let key = BindKey {
            bindings: kernel.bindings.to_vec(),
            ranges: ranges
                .iter()
                .map(|r| (r.buf.raw().id, r.offset, r.size))
                .collect(),
        };
        let mut groups = self.0.pipelines.bind_groups.lock().unwrap();
        if let Some(g) = groups.get(&key) {
            return g.clone();
        }
        if groups.len() >= MAX_BIND_GROUPS {
            groups.clear();
        }
        let layout = self.layout(kernel.bindings);
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: arena,
                offset: 0,
                size: std::num::NonZeroU64::new(PARAM_BYTES),
            }),
        }];
        for (i, r) in ranges.iter().enumerate() {
            entries.push(wgpu::BindGroupEntry {
                binding: i as u32 + 1,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: r.buf.wgpu(),
                    offset: r.offset,
                    size: std::num::NonZeroU64::new(r.size),
                }),
            });
        }
        let group = Arc::new(self.0.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &layout,
            entries: &entries,
        }));
        groups.insert(key, group.clone());
        group
    }
}
