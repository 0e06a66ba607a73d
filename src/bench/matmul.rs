//! `sfnap bench --matmul N`: the linear layer's forward product of two N x N
//! matrices, in GFLOP/s, on the kernel the layer picks for it on this adapter.

use serde::Serialize;

use super::{fastest, time, TRIALS};
use crate::arena::{Arena, TensorSpec};
use crate::error::{Error, Result};
use crate::gpu::{Dispatch, Gpu};
use crate::nn::{Linear, LinearDesc, Param, View};

/// Largest N timed (a product of 2 N^3 flops; 2048: 17 GFLOP).
pub const MAX_N: usize = 4096;

/// One matmul measurement: the `--json` object of `sfnap bench --matmul`.
#[derive(Debug, Clone, Serialize)]
pub struct MatmulBenchResult {
    /// Always "matmul" (tells these rows from the optimizer's).
    pub bench: String,
    /// Rows and columns of A, B and C.
    pub n: usize,
    /// The dispatch the linear layer records: its kernel and the product's shape.
    pub kernel: String,
    /// Products per trial.
    pub reps: usize,
    /// Milliseconds per product, the fastest of the trials.
    pub ms: f64,
    /// 2 N^3 / time, in 1e9 flop per second.
    pub gflops: f64,
    /// Adapter name.
    pub adapter: String,
    /// wgpu backend.
    pub backend: String,
    /// Adapter type: DiscreteGpu, IntegratedGpu, VirtualGpu, Cpu or Other.
    pub device_type: String,
    /// "gpu timestamps" or "wall clock".
    pub timing: String,
}

impl MatmulBenchResult {
    /// One readable line.
    pub fn line(&self) -> String {
        format!(
            "matmul {n} x {n} x {n}: {:.3} ms, {:.1} GFLOP/s ({}) [{}, {}, fastest of {} x {} products]",
            self.ms,
            self.gflops,
            self.kernel,
            self.adapter,
            self.backend,
            TRIALS,
            self.reps,
            n = self.n,
        )
    }
}

/// Times y = x W for x and W of `n x n` (values in [-1, 1)) through
/// [`Linear`]'s forward pass: the fastest of [`TRIALS`] trials of enough
/// products for about a quarter of a second each, after one untimed product.
pub fn run_matmul(gpu: &Gpu, n: usize) -> Result<MatmulBenchResult> {
    if !(1..=MAX_N).contains(&n) {
        return Err(Error::invalid("--matmul", format!("must lie in [1, {MAX_N}], got {n}")));
    }
    let arena = Arena::new(gpu, &[TensorSpec::new("w", &[n, n])], None)?;
    arena.write(gpu, "w", &super::pattern(n * n, 1, 1.0))?;
    let x = gpu.storage_init("bench matmul x", &super::pattern(n * n, 2, 1.0));
    let y = gpu.storage("bench matmul y", (4 * n * n) as u64);
    let dy = gpu.storage("bench matmul dy", (4 * n * n) as u64);
    let layer = Linear::new(
        gpu,
        &LinearDesc {
            rows: n,
            inputs: n,
            outputs: n,
            x: View::new(&x, n * n),
            y: View::new(&y, n * n),
            dy: View::new(&dy, n * n),
            dx: None,
            weight: Param::from_arena(&arena, "w")?,
            bias: None,
        },
    )?;
    let mut forward: Vec<Dispatch> = Vec::new();
    layer.record_forward(&mut forward);
    let kernel = forward.iter().map(|d| d.label()).collect::<Vec<_>>().join(", ");
    let mut record = |enc: &mut wgpu::CommandEncoder| {
        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("bench matmul"),
            timestamp_writes: None,
        });
        layer.record_forward(&mut pass);
        Ok(())
    };
    let once = time(gpu, 1, &mut record, &mut || {})?;
    let reps = (0.25 / once.max(1e-6)).ceil().clamp(1.0, 1000.0) as usize;
    let trials = (0..TRIALS)
        .map(|_| time(gpu, reps, &mut record, &mut || {}))
        .collect::<Result<Vec<_>>>()?;
    let s = fastest(&trials) / reps as f64;
    Ok(MatmulBenchResult {
        bench: "matmul".into(),
        n,
        kernel,
        reps,
        ms: s * 1e3,
        gflops: 2.0 * (n as f64).powi(3) / s / 1e9,
        adapter: gpu.info.name.clone(),
        backend: format!("{:?}", gpu.info.backend),
        device_type: format!("{:?}", gpu.info.device_type),
        timing: if gpu.timestamps { "gpu timestamps" } else { "wall clock" }.into(),
    })
}
