//! Optimizers: configuration, the per-kind description, per-step scalars, the
//! f64 CPU reference and the GPU step.
//!
//! - [`config`]: the kinds and their hyperparameters; [`bf16`]: bf16 state and its rounding;
//! - [`spec`]: what each kind keeps and runs on the device (one place per kind);
//! - [`scalars`]: the per-step scalars, computed on the host in f64;
//! - [`reference`](mod@reference): the f64 CPU reference of every kind;
//! - [`step`]: [`GpuOptimizer`] and its step, on `plan`'s tables (the chunk
//!   passes' pieces and chunks come from `chunks`);
//! - [`mode`]: train/eval mode and x export; [`plus`]: sf_plus's device half;
//! - `nap_device`: NaP's passes after each step (the groups are [`crate::nap`]'s);
//! - [`health`]: the device's flags for values that are not finite;
//! - [`state_readback`]: the device's optimizer state as the reference's;
//! - [`update_function`]: the update a step would make as a function of one
//!   parameter's gradient, from the reference at a frozen state.

pub mod bf16;
pub(crate) mod chunks;
pub mod config;
pub mod health;
pub mod mode;
pub(crate) mod nap_device;
pub(crate) mod plan;
pub mod plus;
pub mod reference;
pub mod scalars;
pub mod settings;
pub mod spec;
pub mod state_readback;
pub mod step;
pub mod update_function;

pub use config::{Kind, OptimConfig, Schedule};
pub use health::Health;
pub use mode::XExport;
pub use plan::{MAX_WORKGROUPS, RING};
pub use plus::PlusState;
pub use spec::{KindSpec, ParamBytes, State};
pub use step::{GpuOptimizer, Mode};
