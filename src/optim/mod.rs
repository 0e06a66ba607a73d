//! Optimizers: configuration, per-step scalars, the f64 CPU reference and the GPU step.

pub mod config;
pub mod gpu;
pub mod reference;
pub mod scalars;

pub use config::{Kind, OptimConfig, Schedule};
pub use gpu::{GpuOptimizer, Mode};
