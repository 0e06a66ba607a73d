//! Shared by the integration tests: the GPU under test.

use sfnap::gpu::Gpu;

/// The adapter named by `SFNAP_BACKEND` (default: best available). No adapter
/// is a failure, not a skip: `make test` installs lavapipe first.
pub fn gpu() -> Gpu {
    match Gpu::from_env() {
        Ok(g) => g,
        Err(e) => panic!("no GPU for the tests: {e}"),
    }
}
