use crate::{no_grad, Result, Tensor};

/// Plain stochastic gradient descent: p ← p − lr·∇p, one in-place dispatch per parameter.
pub struct Sgd {
    pub lr: f32,
}

impl Sgd {
    pub fn step(&self, params: &[Tensor]) -> Result<()> {
        no_grad(|| {
            for p in params {
                if let Some(g) = p.grad() {
                    p.axpy_(-self.lr, &g)?;
                }
            }
            Ok(())
        })
    }
}
