//! autorep: AutoReP (ICCV 2023) ReLU replacement on a wgpu/WGSL training engine.
//!
//! Layers, lowest first (a layer never imports a higher one): `autorep_kernels` (WGSL shaders,
//! launchers, CPU twins) → [`tensor`] (tensors, autograd) → [`nn`] (layers, activation sites,
//! parameter groups, optimizers) → [`models`] → [`autorep`] (gates, hysteresis, budget, DaPa,
//! SNL) → [`data`] and [`train`] (loops, stages, jobs, checkpoints) → [`experiment`], [`demo`],
//! [`bench`](mod@bench), [`cost`] → the CLI in `main.rs`.

pub mod autorep;
pub mod bench;
pub mod cost;
pub mod data;
pub mod demo;
pub mod device;
pub mod error;
pub mod experiment;
pub mod export;
pub mod files;
pub mod models;
pub mod nn;
pub mod plans;
pub mod tensor;
pub mod train;

pub use device::{Device, DeviceChoice};
pub use error::{Error, Result};
pub use tensor::{no_grad, Dtype, Labels, Tensor};
