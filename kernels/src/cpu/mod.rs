//! CPU twins of every GPU kernel: the test oracle and the fallback device. Generic over the
//! float type so gradient checks can evaluate the same code in f64.

mod augment;
mod bn_act;
mod conv;
mod coop_peak;
mod dwconv;
mod elementwise;
mod gate;
mod gemm;
mod loss;
mod norm;
mod optim;
mod parallel;
mod pool;
pub mod profile;
mod reduce;
mod scratch;

pub use augment::*;
pub use bn_act::*;
pub use conv::*;
pub use coop_peak::*;
pub use dwconv::*;
pub use elementwise::*;
pub use gate::*;
pub use gemm::*;
pub use loss::*;
pub use norm::*;
pub use optim::*;
pub use pool::*;
pub use reduce::*;

/// f32 or f64.
pub trait Real:
    num_traits::Float
    + num_traits::FromPrimitive
    + std::iter::Sum
    + Default
    + Send
    + Sync
    + bytemuck::Pod
    + 'static
{
    fn lit(v: f64) -> Self {
        Self::from_f64(v).expect("representable")
    }
    /// Dense GEMM through the `matrixmultiply` crate (strided, so transposes are free).
    ///
    /// # Safety
    /// Every index reached through the strides must be in bounds of the pointed-to buffers.
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm_raw(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        beta: Self,
        c: *mut Self,
        rsc: isize,
        csc: isize,
    );
}

impl Real for f32 {
    unsafe fn gemm_raw(
        m: usize,
        k: usize,
        n: usize,
        alpha: f32,
        a: *const f32,
        rsa: isize,
        csa: isize,
        b: *const f32,
        rsb: isize,
        csb: isize,
        beta: f32,
        c: *mut f32,
        rsc: isize,
        csc: isize,
    ) {
        matrixmultiply::sgemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc)
    }
}

impl Real for f64 {
    unsafe fn gemm_raw(
        m: usize,
        k: usize,
        n: usize,
        alpha: f64,
        a: *const f64,
        rsa: isize,
        csa: isize,
        b: *const f64,
        rsb: isize,
        csb: isize,
        beta: f64,
        c: *mut f64,
        rsc: isize,
        csc: isize,
    ) {
        matrixmultiply::dgemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc)
    }
}
