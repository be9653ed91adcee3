use thiserror::Error;

/// Everything the kernel layer can report. Messages are one line and say what to do.
#[derive(Debug, Error)]
pub enum KernelError {
    #[error("no GPU adapter found{detail}; install Mesa's Vulkan driver (apt-get install mesa-vulkan-drivers libvulkan1) or use --device cpu")]
    NoAdapter { detail: String },
    #[error("could not open the GPU device on adapter '{adapter}': {reason}")]
    DeviceRequest { adapter: String, reason: String },
    #[error("out of GPU memory: allocating {bytes} bytes failed ({reason})")]
    OutOfMemory { bytes: u64, reason: String },
    #[error("a binding of {bytes} bytes exceeds this adapter's storage-binding limit of {limit} bytes; use a smaller batch")]
    BindingTooLarge { bytes: u64, limit: u64 },
    #[error("{kernel} would need {groups} workgroups in one grid dimension, over the limit of 65535; use a smaller batch")]
    GridTooLarge { kernel: String, groups: usize },
    #[error("GPU device lost: {0}")]
    DeviceLost(String),
    #[error("GPU validation error in {context}: {message}")]
    Validation { context: String, message: String },
    #[error("mapping a GPU buffer for readback failed: {0}")]
    Map(String),
    #[error("timestamp queries are not supported by this adapter")]
    NoTimestamps,
    #[error("adapter '{adapter}' has no SHADER_F16 feature; use --precision f32 on it")]
    NoF16 { adapter: String },
    #[error(
        "adapter '{adapter}' has no 16x16x16 f16 x f16 -> f32 cooperative matrices (tensor cores)"
    )]
    NoCooperativeMatrix { adapter: String },
    #[error("{name}={value}: expected {expected} (or leave it unset)")]
    Knob {
        name: &'static str,
        value: String,
        expected: String,
    },
    #[error("cannot emulate cooperative matrices on '{adapter}': {reason}; leave AUTOREP_COOP=emulate unset for it")]
    CoopEmulation {
        adapter: String,
        reason: &'static str,
    },
    #[error("{file} line {line}: {message}")]
    Plans {
        file: String,
        line: usize,
        message: String,
    },
    #[error("the conv plans were measured on '{file}', not on this adapter ('{here}'): run `autorep tune` here or leave them out")]
    PlansAdapter { file: String, here: String },
    #[error("{kernel}: binding {binding} holds {got} but the f16 variant declares {want} there")]
    DtypeMismatch {
        kernel: String,
        binding: usize,
        got: &'static str,
        want: &'static str,
    },
}

pub type Result<T> = std::result::Result<T, KernelError>;
