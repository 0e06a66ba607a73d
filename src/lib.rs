//! sfnap: Schedule-Free optimizers, ScheduleFree+ and Normalize-and-Project as WGSL
//! compute kernels on any GPU through wgpu.
//!
//! Tensors live in an [`arena::Arena`] (one buffer per role); an
//! [`optim::GpuOptimizer`] updates all of them with one dispatch per segment. The
//! f64 CPU reference of every optimizer is [`optim::reference`].

#![warn(missing_docs)]

pub mod arena;
pub mod data;
pub mod error;
pub mod gpu;
pub mod nap;
pub mod optim;
pub mod replay;

pub use error::{Error, Result};
