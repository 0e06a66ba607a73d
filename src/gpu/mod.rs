//! Everything that talks to wgpu directly: opening or adopting a device
//! ([`Gpu`]), buffers, the kernel cache, dispatches and readbacks. The rest of
//! the engine builds [`Dispatch`]es and records them into compute passes.

pub mod buffers;
pub mod context;
pub mod dispatch;
pub mod kernels;
pub mod readback;
#[cfg(not(target_arch = "wasm32"))]
pub(crate) mod stamps;
pub mod support;

pub use context::{BackendChoice, Gpu};

/// Elements per reduction chunk: one workgroup of 256 invocations, 4 vec4s
/// each. The arena cuts every tensor into chunks of at most this many
/// elements ([`crate::arena::Chunk`]), and every reduction kernel sums one.
pub const CHUNK: usize = 4096;
pub use dispatch::{Dispatch, Recorder, Resource};
pub use kernels::KernelFile;
pub use readback::{Packed, PackedReadback, Part, PendingRead};
