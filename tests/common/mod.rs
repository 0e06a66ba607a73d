//! Shared by the integration tests: the GPU under test, random data, scratch
//! directories, the `sfnap` binary and the golden cases. The layer tests' checks
//! against their f64 twins are in [`layers`].
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sfnap::gpu::Gpu;
use sfnap::nap::{NapConfig, NapGroup};
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

/// A scratch directory of this test process, `sfnap-<test file>-<name>-<pid>` in
/// the system's temporary directory: removed if an earlier run left it, not created.
pub fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "sfnap-{}-{name}-{}",
        env!("CARGO_CRATE_NAME"),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// [`temp_dir`], created empty.
pub fn empty_dir(name: &str) -> PathBuf {
    let d = temp_dir(name);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs the `sfnap` binary with `args`; its exit status, stdout and stderr.
pub fn sfnap(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sfnap")).args(args).output().unwrap()
}

/// Runs the `sfnap` binary with `args`; returns (exit status, stderr), the status
/// -1 when a signal ended it.
pub fn sfnap_status(args: &[&str]) -> (i32, String) {
    let o = sfnap(args);
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The error line of a failed command (the first lines name the adapter): asserts
/// there is exactly one and no panic.
pub fn error_line(stderr: &str) -> &str {
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "one error line expected: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    errors[0]
}

/// `tests/data`: the golden cases, and the fuzzers' corpus under `fuzz/`.
pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// `tests/data/<file>`.
pub fn data(file: &str) -> PathBuf {
    data_dir().join(file)
}

/// The golden cases (`tests/data/*.json`), sorted by name.
pub fn golden_files() -> Vec<PathBuf> {
    let dir = data_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

/// The random cases' ragged sizes (`tests/gpu_vs_reference.rs`, `tests/bf16_state.rs`):
/// 1, 3, 5, 4k+1, more than one workgroup's worth (1,024 elements) and a tensor
/// spanning several reduction chunks.
pub fn ragged_shapes() -> Vec<(&'static str, Vec<usize>)> {
    vec![
        ("one", vec![1]),
        ("three", vec![3]),
        ("five", vec![5]),
        ("w4k1", vec![4097]),
        ("w", vec![3, 700]),
        ("big", vec![3, 3000]),
    ]
}

/// NaP groups over [`ragged_shapes`]: one tensor, two tensors, and one with its own rho.
pub fn ragged_nap() -> NapConfig {
    NapConfig {
        groups: vec![
            NapGroup {
                tensors: vec!["w4k1".into()],
                rho: None,
            },
            NapGroup {
                tensors: vec!["w".into(), "five".into()],
                rho: None,
            },
            NapGroup {
                tensors: vec!["big".into()],
                rho: Some(40.0),
            },
        ],
    }
}
