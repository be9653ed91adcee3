//! The parameter types both backends take: shapes and hyperparameters of each kernel call,
//! shared by the CPU twins (`cpu`), the GPU launchers (`launch`) and the tensor layer.

mod augment;
mod bn_act;
mod conv;
mod dwconv;
mod gate;
mod gemm;
mod norm;
mod optim;
mod pool;

pub use augment::*;
pub use bn_act::*;
pub use conv::*;
pub use dwconv::*;
pub use gate::*;
pub use gemm::*;
pub use norm::*;
pub use optim::*;
pub use pool::*;
