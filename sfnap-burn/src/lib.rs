//! sfnap's optimizers for Burn: Schedule-Free (sgd_sf, adamw_sf, radam_sf and
//! the paper's AdamW variant), ScheduleFree+ (sf_plus, no learning rate) and
//! Normalize-and-Project, stepping a Burn module's parameters with sfnap's fused
//! WGSL kernels on the wgpu device Burn computes on.
//!
//! - [`SharedDevice`]: one wgpu device for both, opened by sfnap or by Burn;
//! - [`Optimized`]: a module under an sfnap optimizer, with the module at y to
//!   train ([`Optimized::train_module`], [`Optimized::step`]) and the module at x
//!   to evaluate and ship ([`Optimized::eval_module`]), saved and resumed bit
//!   for bit ([`Optimized::save`], [`Optimized::resume`]);
//! - [`Structure`]: the module's float parameters as sfnap names them, and the
//!   NaP groups its `Linear`-then-`LayerNorm` fields imply ([`Nap::Found`]).
//!
//! It needs Burn 0.23 (`burn = "=0.23.0-pre.1"` with the `wgpu` and `autodiff`
//! features): the first Burn on wgpu 30, the wgpu sfnap uses, so both share one
//! `wgpu::Device`. Burn's `fusion` feature must stay off: fused tensors have no
//! buffer of their own to hand to sfnap.

#![warn(missing_docs)]

// The crate's README: its example is compiled and run as a doctest.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
struct ReadmeDoctests;

mod device;
mod optimized;
mod storage;
mod structure;

pub use device::SharedDevice;
pub use optimized::{Nap, Optimized};
pub use structure::{ParamInfo, Structure};

/// The engine, for its configuration types ([`sfnap::optim::OptimConfig`],
/// [`sfnap::nap::NapConfig`]) and reports.
pub use sfnap;
