//! Shared by the integration tests: the GPU under test and random data. The layer
//! tests' checks against their f64 twins are in [`layers`].
#![allow(dead_code)]

use sfnap::gpu::Gpu;
use sfnap::nap::NapConfig;
use sfnap::optim::OptimConfig;
use sfnap::replay::{CaseStep, CaseTensor, ReplayCase};

pub mod layers;

/// The adapter named by `SFNAP_BACKEND` (default: best available). No adapter
/// is a failure, not a skip: `make test` installs lavapipe first.
pub fn gpu() -> Gpu {
    match Gpu::from_env() {
        Ok(g) => g,
        Err(e) => panic!("no GPU for the tests: {e}"),
    }
}

/// Unit roundoff of f32.
pub const U32: f64 = f32::EPSILON as f64 / 2.0;

/// The library's deterministic generator, with the samplers the tests use.
pub struct Rng(sfnap::data::Rng);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(sfnap::data::Rng::new(seed))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        self.0.uniform()
    }

    /// Standard normal.
    pub fn normal(&mut self) -> f64 {
        self.0.normal()
    }

    /// `n` normal samples times `scale`, rounded to f32 so that the GPU sees the same inputs.
    pub fn normals(&mut self, n: usize, scale: f64) -> Vec<f64> {
        (0..n).map(|_| (self.normal() * scale) as f32 as f64).collect()
    }
}

/// A case with random parameters and `steps` random gradients. Each tensor gets
/// its own gradient scale, so the Adam kinds see different magnitudes.
pub fn random_case(
    cfg: &OptimConfig,
    nap: Option<NapConfig>,
    shapes: &[(&str, Vec<usize>)],
    steps: usize,
    seed: u64,
) -> ReplayCase {
    let mut rng = Rng::new(seed);
    let tensors: Vec<CaseTensor> = shapes
        .iter()
        .map(|(name, shape)| {
            let n: usize = shape.iter().product();
            CaseTensor {
                name: name.to_string(),
                shape: shape.clone(),
                values: rng.normals(n, 1.0),
            }
        })
        .collect();
    let scales: Vec<f64> = (0..tensors.len()).map(|i| 0.01 * 3f64.powi(i as i32 % 4)).collect();
    let steps = (0..steps)
        .map(|_| CaseStep {
            loss: Some(0.5 + rng.uniform()),
            grads: tensors
                .iter()
                .zip(&scales)
                .map(|(t, &s)| rng.normals(t.values.len(), s))
                .collect(),
        })
        .collect();
    ReplayCase {
        optimizer: cfg.clone(),
        nap,
        tensors,
        steps,
        expected: None,
    }
}
