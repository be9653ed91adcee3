//! autorep: AutoReP (ICCV 2023) ReLU replacement on a wgpu/WGSL training engine.
//!
//! Layers, lowest first: `autorep_kernels` (WGSL shaders, launchers, CPU twins) → [`tensor`]
//! (tensors and autograd) → [`nn`] (layers, optimizers) → jobs ([`demo`], [`bench`]) → the CLI.

pub mod autorep;
pub mod bench;
pub mod cost;
pub mod data;
pub mod demo;
pub mod device;
pub mod error;
pub mod experiment;
pub mod models;
pub mod nn;
pub mod tensor;
pub mod train;

pub use device::{Device, DeviceChoice};
pub use error::{Error, Result};
pub use tensor::{no_grad, Labels, Tensor};
