//! autorep-kernels: the GPU device (wgpu), pooled buffers, cached pipelines, one typed launcher
//! per WGSL entry point, and a CPU twin of every kernel. Knows nothing of autograd or models.

mod conv_plan;
mod coop_check;
mod coop_emulation;
pub mod cpu;
mod device;
mod dtype;
mod error;
mod gpu_profile;
pub mod knobs;
pub mod launch;
pub mod params;
mod pipelines;
mod pool;
mod recorder;
pub mod shaders;
pub mod uniforms;

pub use conv_plan::{ConvKey, ConvPass, ConvPlan, ConvPlans, Tile};
pub use coop_check::{CoopCheck, COOP_CHECK_TOLERANCE};
pub use device::{list_adapters, AdapterReport, Gpu, WANTED_FEATURES};
pub use dtype::{from_f16_bytes, round_to_f16, to_f16_bits, Dtype};
pub use error::{KernelError, Result};
pub use gpu_profile::{Profile, ProfileEvent, ProfileRow};
pub use pipelines::{Access, EntryPoint, Kernel, Shader};
pub use pool::{BufferCount, GpuBuffer, PoolStats, VIEW_ALIGN};
pub use recorder::{grid, BufRef, StreamStats};
pub use wgpu;
