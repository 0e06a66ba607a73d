//! The only code that talks to wgpu: adapter choice, buffers and kernels.

pub mod buffers;
pub mod context;
pub mod kernels;
pub mod support;

pub use context::{BackendChoice, Gpu};
