//! Softmax cross-entropy with integer targets (`shaders/loss.wgsl`).

use super::{
    check_view, dim, groups_for, groups_for_64, groups_for_rows, layer_dispatch, read, record_all, write, Dispatch,
    View,
};
use crate::error::{Error, Result};
use crate::gpu::{Gpu, Recorder};

/// Shapes and buffers of a [`CrossEntropy`] loss.
pub struct CrossEntropyDesc<'a> {
    /// Rows B (examples or tokens), each with one target.
    pub rows: usize,
    /// Classes V per row.
    pub classes: usize,
    /// Logits `[rows, classes]`.
    pub logits: View<'a>,
    /// Targets `[rows]`, u32 in `0..classes` (a target out of range makes its row's loss NaN).
    pub targets: View<'a>,
    /// Gradient with respect to the logits `[rows, classes]`, written by the backward pass.
    pub dlogits: View<'a>,
}

/// What the forward pass writes to [`CrossEntropy::stats`]; element 0 (byte 0) is the mean loss.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct LossStats {
    /// Mean loss over the rows.
    pub mean: f32,
    /// Rows whose argmax (lowest index among ties) equals the target.
    pub correct: u32,
    /// Rows.
    pub rows: u32,
    /// Padding.
    pub pad0: u32,
}

/// Most classes for which a row takes one invocation (no barriers: cheap on CPU
/// drivers, where every barrier switches between the invocations of a
/// workgroup); longer rows take one workgroup each.
pub const SHORT_ROWS: usize = 256;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct LossDims {
    rows: u32,
    classes: u32,
    nan_bits: u32,
    pad0: u32,
}

/// Mean softmax cross-entropy of logits `[B, V]` against targets `[B]`.
///
/// Forward: each row's loss goes to [`losses`](Self::losses), with whether its
/// argmax hits the target; then one workgroup writes the mean loss and the hit
/// count to [`stats`](Self::stats) (a [`LossStats`]), summing in a fixed order.
/// Rows of up to [`SHORT_ROWS`] classes take one invocation each (no barriers),
/// longer rows one workgroup each. Backward overwrites dlogits = (softmax − onehot) / B.
pub struct CrossEntropy {
    forward: Vec<Dispatch>,
    backward: Vec<Dispatch>,
    losses: wgpu::Buffer,
    stats: wgpu::Buffer,
    _scratch: [wgpu::Buffer; 2],
}

impl CrossEntropy {
    /// Builds the pipelines and bind groups; checks every view against the shapes.
    /// Rows are limited to 2²⁴ (the hit count is summed exactly in f32).
    pub fn new(gpu: &Gpu, desc: &CrossEntropyDesc<'_>) -> Result<CrossEntropy> {
        const L: &str = "cross_entropy";
        let rows = dim(L, "rows", desc.rows)?;
        let classes = dim(L, "classes", desc.classes)?;
        if desc.rows > 1 << 24 {
            return Err(Error::invalid(
                format!("{L}.rows"),
                format!("{} rows; at most 2^24 are supported", desc.rows),
            ));
        }
        check_view(gpu, L, "logits", &desc.logits, &[desc.rows, desc.classes])?;
        check_view(gpu, L, "targets", &desc.targets, &[desc.rows])?;
        check_view(gpu, L, "dlogits", &desc.dlogits, &[desc.rows, desc.classes])?;
        let uniform = gpu.uniform(
            L,
            &LossDims {
                rows,
                classes,
                nan_bits: f32::NAN.to_bits(),
                pad0: 0,
            },
        );
        let losses = gpu.storage("cross_entropy losses", desc.rows as u64 * 4);
        let stats = gpu.storage("cross_entropy stats", std::mem::size_of::<LossStats>() as u64);
        let lse = gpu.storage("cross_entropy lse", desc.rows as u64 * 4);
        let hits = gpu.storage("cross_entropy hits", desc.rows as u64 * 4);
        let views = [
            read(1, "logits", desc.logits),
            read(2, "targets", desc.targets),
            write(3, "losses", View::new(&losses, desc.rows)),
            write(4, "lse", View::new(&lse, desc.rows)),
            write(5, "hits", View::new(&hits, desc.rows)),
            write(6, "stats", View::new(&stats, 4)),
            write(7, "dlogits", desc.dlogits),
        ];
        // Short rows: one invocation per row; long rows: one workgroup per row.
        let (rows_entry, by_row) = if desc.classes <= SHORT_ROWS {
            ("loss_rows_short", (groups_for_64(desc.rows), 1))
        } else {
            ("loss_rows", (groups_for_rows(desc.rows), 1))
        };
        let forward = vec![
            layer_dispatch(gpu, L, "loss", rows_entry, &uniform, &views, by_row)?,
            layer_dispatch(gpu, L, "loss", "loss_mean", &uniform, &views, (1, 1))?,
        ];
        let by_logit = (groups_for(desc.rows * desc.classes), 1);
        let backward = vec![layer_dispatch(
            gpu,
            L,
            "loss",
            "loss_backward",
            &uniform,
            &views,
            by_logit,
        )?];
        Ok(CrossEntropy {
            forward,
            backward,
            losses,
            stats,
            _scratch: [lse, hits],
        })
    }

    /// Records the per-row losses, the mean loss and the hit count.
    pub fn record_forward(&self, rec: &mut dyn Recorder) {
        record_all(&self.forward, rec);
    }

    /// Records dlogits = (softmax − onehot) / B, overwritten. Needs this step's
    /// forward pass recorded before it (it reads the rows' log-sum-exp).
    pub fn record_backward(&self, rec: &mut dyn Recorder) {
        record_all(&self.backward, rec);
    }

    /// Per-row losses `[rows]` (f32), written by the forward pass.
    pub fn losses(&self) -> &wgpu::Buffer {
        &self.losses
    }

    /// A [`LossStats`] (16 bytes): f32 mean loss at byte 0, u32 hit count at byte 4.
    pub fn stats(&self) -> &wgpu::Buffer {
        &self.stats
    }

    /// Records a copy of the mean loss (4 bytes) to `dst` at byte `dst_offset`,
    /// e.g. to the optimizer's [`loss_buffer`](crate::optim::GpuOptimizer::loss_buffer)
    /// at 0. Goes between compute passes (after the forward pass, before the step).
    pub fn record_copy_mean(&self, encoder: &mut wgpu::CommandEncoder, dst: &wgpu::Buffer, dst_offset: u64) {
        encoder.copy_buffer_to_buffer(&self.stats, 0, dst, dst_offset, 4);
    }

    /// Reads the statistics back (for metrics and tests, not inside a step).
    pub async fn read_stats_async(&self, gpu: &Gpu) -> Result<LossStats> {
        Ok(gpu.read_async::<LossStats>(&self.stats, 0, 1).await?[0])
    }

    /// [`CrossEntropy::read_stats_async`], waiting for the device (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read_stats(&self, gpu: &Gpu) -> Result<LossStats> {
        pollster::block_on(self.read_stats_async(gpu))
    }
}
