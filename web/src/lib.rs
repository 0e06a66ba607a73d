//! sfnap-web: the browser demos of sfnap, built on the engine's public API.
//!
//! - [`race`]: the optimizer race of `web/race.html`: many starting points on a 2D
//!   test function, raced by `sgd_sf`, `adamw_sf`, `sf_plus` and scheduled `adamw`,
//!   with its own kernel file (`web/shaders/race.wgsl`).
//! - [`live`]: small MLPs trained live: two spirals (`web/spirals.html`) and the
//!   plasticity comparison (AdamW with and without NaP, adamw_sf with NaP and a
//!   window: `web/plasticity.html`).
//! - [`demo`]: what the three share: the [`demo::Demo`] interface (create, step,
//!   snapshot) and snapshots read back in one transfer with the engine's
//!   [`sfnap::gpu::PackedReadback`].
//! - `bindings` (wasm32 only): the JavaScript API through wasm-bindgen (`WebRace`,
//!   `WebSpirals`, `WebPlasticity`, `replay`, ...), which `web/js/` loads from
//!   `web/pkg/` (`make web-build`).
//!
//! Natively the demos run on any wgpu adapter, which is how `web/tests/*.rs` test
//! them; the browser pages themselves are tested by `web/tests/run.py`.

#![warn(missing_docs)]

#[cfg(target_arch = "wasm32")]
mod bindings;
pub mod demo;
pub mod live;
pub mod race;
