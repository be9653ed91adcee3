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
    #[error("training diverged in epoch {epoch}: {what} (checkpoints of earlier epochs are kept); lower the learning rate (or a penalty weight such as --lambda), or, after a ReLU replacement that ended over budget and was cut to it, replace for more epochs (or with a larger lambda) so the mask reaches the budget while training")]
    Diverged { epoch: u64, what: String },
    #[error("{0}")]
    OverBudget(String),
}

impl Error {
    /// A divergence reported by a stage as divergence in the run's `epoch` (1-based): an epoch
    /// loop may number its epochs otherwise (SNL's finetune phase shuffles from another
    /// stream), but the user counts the run's.
    pub fn in_epoch(self, epoch: u64) -> Error {
        match self {
            Error::Diverged { what, .. } => Error::Diverged { epoch, what },
            e => e,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
