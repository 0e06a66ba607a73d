//! sfnap: Schedule-Free optimizers, ScheduleFree+ and Normalize-and-Project as WGSL
//! compute kernels on any GPU through wgpu.
//!
//! Tensors live in an [`arena::Arena`] (one buffer per role); an
//! [`optim::GpuOptimizer`] updates all of them with one dispatch per segment. The
//! f64 CPU reference of every optimizer is [`optim::reference`].

#![warn(missing_docs)]

pub mod arena;
#[cfg(not(target_arch = "wasm32"))]
pub mod bench;
#[cfg(not(target_arch = "wasm32"))]
pub mod checkpoint;
pub mod data;
pub mod error;
pub mod gpu;
pub mod model;
pub mod nap;
pub mod nn;
pub mod optim;
#[cfg(all(feature = "cli", not(target_arch = "wasm32")))]
pub mod plot;
pub mod replay;
pub mod sched;
#[cfg(not(target_arch = "wasm32"))]
pub mod train;

pub use error::{Error, Result};

/// The README's code blocks, compiled and run as doctests (`cargo test --doc`).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
