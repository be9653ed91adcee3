use autorep_kernels::KernelError;
use thiserror::Error;

/// Errors of the autorep library. Each message is one line that says what is wrong.
#[derive(Debug, Error)]
pub enum Error {
    #[error(transparent)]
    Kernel(#[from] KernelError),
    #[error("{op}: incompatible shapes {left:?} and {right:?}")]
    Shape {
        op: &'static str,
        left: Vec<usize>,
        right: Vec<usize>,
    },
    #[error(
        "{op}: tensors live on different devices ({left} and {right}); move one with .to(device)"
    )]
    DeviceMismatch {
        op: &'static str,
        left: String,
        right: String,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("training diverged in epoch {epoch}: {what} (checkpoints of earlier epochs are kept); lower the learning rate, or, after a ReLU replacement that ended over budget and was cut to it, replace for more epochs (or with a larger lambda) so the mask reaches the budget while training")]
    Diverged { epoch: u64, what: String },
    #[error("{0}")]
    OverBudget(String),
}

pub type Result<T> = std::result::Result<T, Error>;
