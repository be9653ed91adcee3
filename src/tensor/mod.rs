//! Tensors and reverse-mode autograd. A tensor remembers the op that made it (with its
//! inputs); `backward` sorts that graph topologically and applies one `match` of gradient
//! rules in reverse (see `backward.rs`).

mod backend;
mod backward;
mod bn_act;
mod conv;
mod distill;
mod gate;
mod images;
mod norm;
mod ops;
mod optim;
mod pool;
mod storage;

pub use bn_act::{BnParams, GateState, SiteAct, SiteStats};
pub use gate::ReluCounter;
pub use images::PackedImages;
pub use norm::BnConfig;
pub use ops::CrossEntropy;
pub use storage::{try_zeroed_host, Labels, Storage};

use crate::device::Device;
use crate::error::{Error, Result};
use autorep_kernels::launch;
pub use autorep_kernels::Dtype;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
    static NEXT_ID: Cell<usize> = const { Cell::new(0) };
}

/// Run `f` without recording a graph (evaluation, teacher forward, optimizer updates).
pub fn no_grad<R>(f: impl FnOnce() -> R) -> R {
    let prev = GRAD_ENABLED.with(|g| g.replace(false));
    let out = f();
    GRAD_ENABLED.with(|g| g.set(prev));
    out
}

pub(crate) fn grad_enabled() -> bool {
    GRAD_ENABLED.with(|g| g.get())
}

/// How a tensor was produced, holding what its backward needs.
pub(crate) enum Op {
    /// A change of element type (f32 ↔ f16); the gradient goes back in the input's type.
    Cast(Tensor),
    Axpby(Tensor, f32, Tensor, f32),
    Mul(Tensor, Tensor),
    Scale(Tensor, f32),
    Relu(Tensor),
    /// x [N, C, H, W] times s [N, C] broadcast over H·W.
    ChannelScale {
        x: Tensor,
        s: Tensor,
    },
    Silu(Tensor),
    Sigmoid(Tensor),
    Matmul {
        a: Tensor,
        b: Tensor,
        ta: bool,
        tb: bool,
    },
    BiasAdd {
        x: Tensor,
        bias: Tensor,
        inner: usize,
    },
    SumMid {
        x: Tensor,
        outer: usize,
        len: usize,
        inner: usize,
        alpha: f32,
    },
    Reshape(Tensor),
    Conv2d {
        x: Tensor,
        w: Tensor,
        p: autorep_kernels::params::ConvParams,
    },
    DwConv {
        x: Tensor,
        w: Tensor,
        p: autorep_kernels::params::DwConvParams,
    },
    CrossEntropy {
        logits: Tensor,
        labels: Rc<Labels>,
        smoothing: f32,
    },
    Distill {
        student: Tensor,
        teacher: Tensor,
        temperature: f32,
    },
    BatchNorm {
        x: Tensor,
        gamma: Option<Tensor>,
        beta: Option<Tensor>,
        mean: Tensor,
        var: Tensor,
        s: autorep_kernels::params::BnShape,
        eps: f32,
        train: bool,
    },
    /// act(BN(x) + residual) in one pass (see `bn_act.rs`).
    BnAct {
        x: Tensor,
        gamma: Tensor,
        beta: Tensor,
        residual: Option<Tensor>,
        mean: Tensor,
        var: Tensor,
        fold: Tensor,
        a: autorep_kernels::params::BnAct,
        act: SiteAct,
    },
    AvgPool {
        x: Tensor,
        p: autorep_kernels::params::PoolParams,
    },
    MaxPool {
        x: Tensor,
        p: autorep_kernels::params::PoolParams,
        idx: Rc<Labels>,
    },
    GlobalAvgPool {
        x: Tensor,
    },
    Gate {
        x: Tensor,
        gate: Tensor,
        coef: Tensor,
        mask: Tensor,
        p: autorep_kernels::params::GateParams,
        grad: autorep_kernels::params::GateGrad,
        counter: Rc<ReluCounter>,
    },
}

pub(crate) struct Inner {
    id: usize,
    shape: Vec<usize>,
    /// Re-pointed only when a parameter moves into its group's flat buffer.
    storage: RefCell<Rc<Storage>>,
    /// Taken by the backward pass once it has used it, releasing the tensors the op saved
    /// (PyTorch's default, `retain_graph=False`): they are what a step's memory peaks on.
    op: RefCell<Option<Op>>,
    /// The backward pass has taken `op`: this node can carry no further gradient.
    spent: Cell<bool>,
    requires_grad: bool,
    grad: RefCell<Option<Tensor>>,
    /// The gradient is a fixed slot (a view of a group's flat gradient buffer) that backward
    /// adds into, rather than a fresh tensor.
    grad_in_place: Cell<bool>,
}

/// An f32 (or, on a GPU, f16) tensor on the CPU or a GPU. Cloning is cheap (shared).
#[derive(Clone)]
pub struct Tensor(pub(crate) Rc<Inner>);

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Tensor(#{} {:?} on {})",
            self.0.id,
            self.0.shape,
            self.device().describe()
        )
    }
}

fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

impl Tensor {
    pub(crate) fn make(
        shape: Vec<usize>,
        storage: Rc<Storage>,
        op: Option<Op>,
        requires_grad: bool,
    ) -> Tensor {
        let id = NEXT_ID.with(|n| {
            let id = n.get();
            n.set(id + 1);
            id
        });
        Tensor(Rc::new(Inner {
            id,
            shape,
            storage: RefCell::new(storage),
            op: RefCell::new(op),
            spent: Cell::new(false),
            requires_grad,
            grad: RefCell::new(None),
            grad_in_place: Cell::new(false),
        }))
    }

    /// A constant tensor (no gradient) from host data.
    pub fn from_vec(device: &Device, shape: &[usize], data: Vec<f32>) -> Result<Tensor> {
        if numel(shape) != data.len() {
            return Err(Error::Invalid(format!(
                "from_vec: shape {shape:?} holds {} values but {} were given",
                numel(shape),
                data.len()
            )));
        }
        Ok(Tensor::make(
            shape.to_vec(),
            Rc::new(Storage::from_vec(device, data)?),
            None,
            false,
        ))
    }

    /// A constant over storage a kernel has just filled.
    pub fn from_storage(shape: &[usize], storage: Storage) -> Tensor {
        Tensor::make(shape.to_vec(), Rc::new(storage), None, false)
    }

    /// A trainable leaf: gradients from `backward` accumulate into [`Tensor::grad`].
    pub fn param(device: &Device, shape: &[usize], data: Vec<f32>) -> Result<Tensor> {
        let t = Tensor::from_vec(device, shape, data)?;
        Ok(Tensor::make(t.0.shape.clone(), t.storage(), None, true))
    }

    /// A constant filled on the device itself (no host upload, so usable inside a step).
    pub fn full(device: &Device, shape: &[usize], value: f32) -> Result<Tensor> {
        let t = Tensor::make(
            shape.to_vec(),
            Rc::new(Storage::alloc(device, numel(shape))?),
            None,
            false,
        );
        t.fill_(value)?;
        Ok(t)
    }

    pub fn zeros(device: &Device, shape: &[usize]) -> Result<Tensor> {
        Tensor::full(device, shape, 0.0)
    }

    pub fn shape(&self) -> &[usize] {
        &self.0.shape
    }

    pub fn numel(&self) -> usize {
        numel(&self.0.shape)
    }

    pub fn id(&self) -> usize {
        self.0.id
    }

    /// The operation that made this tensor, when it was recorded (and not yet consumed by a
    /// backward pass).
    pub(crate) fn op(&self) -> std::cell::Ref<'_, Option<Op>> {
        self.0.op.borrow()
    }

    pub fn requires_grad(&self) -> bool {
        self.0.requires_grad
    }

    pub fn device(&self) -> Device {
        self.0.storage.borrow().device()
    }

    /// The element type of the storage (f16 only on a GPU, under mixed precision).
    pub fn dtype(&self) -> Dtype {
        self.0.storage.borrow().dtype()
    }

    /// The same values as `dtype` (rounded to nearest when narrowing); the gradient flows back
    /// converted to this tensor's type. A tensor already of that type is returned as is.
    pub fn cast(&self, dtype: Dtype) -> Result<Tensor> {
        if self.dtype() == dtype {
            return Ok(self.clone());
        }
        let n = self.numel();
        let out = Storage::alloc_typed(&self.device(), n, dtype)?;
        let xs = self.storage();
        match backend::place("cast", [&*xs, &out])? {
            backend::Placed::Gpu(g, [x, o]) => launch::cast(g, n, 1.0, x, o)?,
            backend::Placed::Cpu => unreachable!("f16 storage is refused on the CPU"),
        }
        Ok(Tensor::result(self.shape().to_vec(), out, &[self], || {
            Op::Cast(self.clone())
        }))
    }

    /// This tensor as the f16 operand of an op whose other operand is f16 (PyTorch's
    /// autocast: f32 weights meet f16 activations as f16 copies, and their gradients come
    /// back to the f32 master weights); unchanged otherwise.
    pub(crate) fn autocast(&self, other: Dtype) -> Result<Tensor> {
        if other == Dtype::F16 {
            self.cast(other)
        } else {
            Ok(self.clone())
        }
    }

    /// Both operands of a binary op in one type: f16 if either is (see [`Tensor::autocast`]).
    pub(crate) fn autocast_pair(&self, other: &Tensor) -> Result<(Tensor, Tensor)> {
        Ok((self.autocast(other.dtype())?, other.autocast(self.dtype())?))
    }

    pub fn storage(&self) -> Rc<Storage> {
        self.0.storage.borrow().clone()
    }

    /// Move this tensor's data to `storage` (same length), e.g. into a flat parameter buffer.
    pub(crate) fn set_storage(&self, storage: Rc<Storage>) {
        *self.0.storage.borrow_mut() = storage;
    }

    /// Copy to the host (flushes and waits on a GPU).
    pub fn to_vec(&self) -> Result<Vec<f32>> {
        self.storage().to_vec(self.numel())
    }

    /// Overwrite the values from the host, ordered after all work queued so far.
    pub fn copy_from_host(&self, data: &[f32]) -> Result<()> {
        if data.len() != self.numel() {
            return Err(Error::Invalid(format!(
                "copy_from_host: {} values for shape {:?}",
                data.len(),
                self.shape()
            )));
        }
        let s = self.storage();
        match backend::place("write", [&*s])? {
            backend::Placed::Gpu(g, [b]) => g.write_values(b, data)?,
            backend::Placed::Cpu => s.cpu_mut().copy_from_slice(data),
        }
        Ok(())
    }

    /// The single value of a one-element tensor.
    pub fn item(&self) -> Result<f32> {
        if self.numel() != 1 {
            return Err(Error::Invalid(format!(
                "item() on a tensor of shape {:?}",
                self.shape()
            )));
        }
        Ok(self.to_vec()?[0])
    }

    /// The same values on another device (a constant, no gradient).
    pub fn to(&self, device: &Device) -> Result<Tensor> {
        Tensor::from_vec(device, self.shape(), self.to_vec()?)
    }

    /// The accumulated gradient of a parameter, if `backward` reached it.
    pub fn grad(&self) -> Option<Tensor> {
        self.0.grad.borrow().clone()
    }

    /// Forget the gradient (or zero a fixed gradient slot in place).
    pub fn zero_grad(&self) -> Result<()> {
        if self.0.grad_in_place.get() {
            if let Some(g) = self.grad() {
                g.fill_(0.0)?;
            }
        } else {
            *self.0.grad.borrow_mut() = None;
        }
        Ok(())
    }

    /// Make `slot` (same shape) this parameter's gradient; backward will add into it.
    pub(crate) fn set_grad_slot(&self, slot: Tensor) {
        *self.0.grad.borrow_mut() = Some(slot);
        self.0.grad_in_place.set(true);
    }

    pub(crate) fn add_to_grad(&self, g: Tensor) -> Result<()> {
        if self.0.grad_in_place.get() {
            if let Some(slot) = self.grad() {
                return slot.axpy_(1.0, &g);
            }
        }
        let prev = self.0.grad.borrow_mut().take();
        *self.0.grad.borrow_mut() = Some(match prev {
            Some(p) => p.add(&g)?,
            None => g,
        });
        Ok(())
    }

    /// A constant view of the same storage, cut from the graph.
    pub fn detach(&self) -> Tensor {
        Tensor::make(self.0.shape.clone(), self.storage(), None, false)
    }
}
