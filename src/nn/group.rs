//! A parameter group: its parameters live back to back in one flat buffer, and their gradients
//! in another, so an optimizer updates the whole group with one dispatch.

use crate::{no_grad, Device, Error, Result, Tensor};
use std::rc::Rc;

/// Parameters start on 64-float (256-byte) boundaries so each can be bound as a view.
const ALIGN: usize = 64;

pub struct ParamGroup {
    pub name: String,
    pub params: Vec<Tensor>,
    /// Every parameter, padded to `ALIGN` (64 floats); padding stays zero under every update rule here.
    pub flat: Tensor,
    /// Every gradient, laid out like `flat`.
    pub grads: Tensor,
}

impl ParamGroup {
    /// Move `params` (all on `device`) into one flat buffer and give each a gradient slot.
    pub fn new(device: &Device, name: &str, params: Vec<Tensor>) -> Result<ParamGroup> {
        let mut offsets = Vec::with_capacity(params.len());
        let mut total = 0;
        for p in &params {
            if !p.requires_grad() {
                return Err(Error::Invalid(format!(
                    "group {name}: a constant is not a parameter"
                )));
            }
            offsets.push(total);
            total += p.numel().div_ceil(ALIGN) * ALIGN;
        }
        let total = total.max(ALIGN);
        let mut host = vec![0f32; total];
        for (p, &o) in params.iter().zip(&offsets) {
            host[o..o + p.numel()].copy_from_slice(&p.to_vec()?);
        }
        let flat = Tensor::from_vec(device, &[total], host)?;
        let grads = Tensor::zeros(device, &[total])?;
        for (p, &o) in params.iter().zip(&offsets) {
            p.set_storage(Rc::new(flat.storage().view(o, p.numel())));
            let slot = Tensor::make(
                p.shape().to_vec(),
                Rc::new(grads.storage().view(o, p.numel())),
                None,
                false,
            );
            p.set_grad_slot(slot);
        }
        // The parameters' own buffers, just freed, are sizes no step asks for again.
        if let Device::Gpu(g) = device {
            g.release_free();
        }
        Ok(ParamGroup {
            name: name.to_string(),
            params,
            flat,
            grads,
        })
    }

    /// Elements of the flat buffers (padding included).
    pub fn len(&self) -> usize {
        self.flat.numel()
    }

    pub fn is_empty(&self) -> bool {
        self.params.is_empty()
    }

    /// Zero every gradient with one dispatch.
    pub fn zero_grad(&self) -> Result<()> {
        no_grad(|| self.grads.fill_(0.0))
    }
}
