//! sfnap: Schedule-Free optimizers, ScheduleFree+ and Normalize-and-Project as WGSL
//! compute kernels on any GPU through wgpu.
//!
//! Tensors live in an [`arena::Arena`] (one buffer per role); an
//! [`optim::GpuOptimizer`] updates all of them with one dispatch per segment. The
//! f64 CPU reference of every optimizer is [`optim::reference`].
//!
//! The engine embeds in a wgpu program: [`gpu::Gpu::from_device`] adopts the
//! program's device, [`gpu::Gpu::register_kernels`] adds its own WGSL to the
//! device's kernel cache, and steps are recorded into the program's encoders
//! ([`optim::GpuOptimizer::record_step`]); tensors in the program's own buffers
//! step through [`foreign::ForeignOptimizer`]. Built with `default-features = false`
//! it has none of the command line's dependencies (feature `cli`: the `sfnap`
//! binary, [`train`]'s progress bar and the plots of `plot`).

#![warn(missing_docs)]

pub mod arena;
#[cfg(not(target_arch = "wasm32"))]
pub mod bench;
#[cfg(not(target_arch = "wasm32"))]
pub mod checkpoint;
pub mod data;
#[cfg(not(target_arch = "wasm32"))]
pub mod distributed;
pub mod error;
#[cfg(not(target_arch = "wasm32"))]
pub mod foreign;
pub mod gpu;
pub(crate) mod json;
pub mod model;
pub mod nap;
pub mod nn;
pub mod optim;
#[cfg(not(target_arch = "wasm32"))]
pub mod output;
#[cfg(all(feature = "cli", not(target_arch = "wasm32")))]
pub mod plot;
pub mod replay;
pub mod rl;
pub(crate) mod stats;
#[cfg(not(target_arch = "wasm32"))]
pub mod train;
pub mod train_step;

pub use error::{Error, Result};

/// The README's code blocks, compiled and run as doctests (`cargo test --doc`).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// The code blocks of `docs/library.md`, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/library.md")]
pub struct LibraryDocDoctests;
