//! A training step whose global batch is cut into equal slices: over the ranks
//! of a [`Collective`] and/or run one after another in one process (gradient
//! accumulation). Each slice's forward and backward passes run on its rows;
//! the gradients are summed over the slices on the host and divided by their
//! number, which is the mean over the global batch, and so is the loss that
//! sf_plus reads. The optimizer step is then recorded as in a plain run.

use crate::arena::Arena;
use crate::distributed::{shard, Collective, GradientBuckets};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::model::{Graph, Inputs};
use crate::nn::LossStats;

/// How a run cuts each global batch: its slices are spread over the ranks of
/// `comm` (one adapter each), and each process runs `accumulate` of them one
/// after another before the optimizer step. `Parallel::default()` is a plain
/// single-process run (one slice, nothing exchanged).
#[derive(Clone, Copy, Default)]
pub struct Parallel<'a> {
    /// The ranks the global batch is spread over; `None`: this process alone.
    pub comm: Option<&'a dyn Collective>,
    /// Slices each process runs one after another per step (0 or 1: one).
    pub accumulate: usize,
}

impl Parallel<'_> {
    /// Slices per process.
    pub fn local(&self) -> usize {
        self.accumulate.max(1)
    }

    /// Ranks taking part.
    pub fn ranks(&self) -> usize {
        self.comm.map_or(1, |c| c.size())
    }

    /// This process's rank.
    pub fn rank(&self) -> usize {
        self.comm.map_or(0, |c| c.rank())
    }

    /// Slices of each global batch in all (ranks × accumulation).
    pub fn slices(&self) -> usize {
        self.ranks() * self.local()
    }
}

/// Bytes of [`LossStats`].
const STATS_BYTES: u64 = std::mem::size_of::<LossStats>() as u64;

/// The exchange of a sliced run: buckets, the accumulator and the averaged loss.
pub(super) struct Exchange<'a> {
    parallel: Parallel<'a>,
    batch: usize,
    grads: wgpu::Buffer,
    elements: usize,
    buckets: GradientBuckets,
    /// The sum of this process's slices' gradients (accumulation only).
    acc: Vec<f32>,
    /// The global batch's loss statistics (mean over the slices' means, hits and rows summed).
    loss: wgpu::Buffer,
}

impl<'a> Exchange<'a> {
    /// `None` for a plain run (one slice): the step is recorded as it always was.
    pub(super) fn new(gpu: &Gpu, arena: &Arena, parallel: Parallel<'a>, batch: usize) -> Result<Option<Exchange<'a>>> {
        let slices = parallel.slices();
        shard(batch, slices, 0)?;
        if slices == 1 {
            return Ok(None);
        }
        let elements = arena.layout.total;
        Ok(Some(Exchange {
            parallel,
            batch,
            grads: arena.grads.clone(),
            elements,
            buckets: GradientBuckets::new(gpu, elements),
            acc: if parallel.local() > 1 {
                vec![0.0; elements]
            } else {
                Vec::new()
            },
            loss: gpu.storage("global batch loss", STATS_BYTES),
        }))
    }

    /// Rows of each slice (the training graph's rows).
    pub(super) fn rows(parallel: &Parallel<'_>, batch: usize) -> usize {
        batch / parallel.slices().max(1)
    }

    /// The global batch's [`LossStats`] after [`Exchange::gradients`].
    pub(super) fn loss_stats(&self) -> &wgpu::Buffer {
        &self.loss
    }

    /// Runs this process's slices of the global batch (`inputs`, `targets`)
    /// through `graph`, leaves the global batch's mean gradient in the arena's
    /// gradients, its loss statistics in [`Exchange::loss_stats`] and its mean
    /// loss in `plus_loss` (sf_plus's loss buffer) when given.
    pub(super) fn gradients(
        &mut self,
        gpu: &Gpu,
        graph: &dyn Graph,
        plus_loss: Option<&wgpu::Buffer>,
        inputs: &Inputs,
        targets: &[u32],
    ) -> Result<()> {
        let (local, slices) = (self.parallel.local(), self.parallel.slices());
        let comm = self.parallel.comm;
        let divisor = slices as f32;
        // Sums of the slices' loss means, hits and rows, in slice order.
        let mut stats = [0.0f32; 3];
        for s in 0..local {
            let rows = shard(self.batch, slices, self.parallel.rank() * local + s)?;
            let (x, t) = slice(inputs, targets, self.batch, rows);
            graph.write_batch(gpu, &x, &t)?;
            gpu.submit(|enc| {
                graph.record_forward(&mut enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("forward"),
                    timestamp_writes: None,
                }));
                graph.record_backward(&mut enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("backward"),
                    timestamp_writes: None,
                }));
            });
            let extra = Some((graph.loss().stats(), STATS_BYTES));
            let bytes = if local == 1 {
                self.buckets
                    .all_reduce(gpu, comm, &self.grads, self.elements, divisor, extra)?
            } else {
                self.buckets.accumulate(gpu, &self.grads, &mut self.acc, s > 0, extra)?
            };
            let st = bytemuck::pod_read_unaligned::<LossStats>(&bytes[..STATS_BYTES as usize]);
            stats[0] += st.mean;
            stats[1] += st.correct as f32;
            stats[2] += st.rows as f32;
        }
        if local > 1 {
            self.buckets
                .all_reduce_host(gpu, comm, &self.acc, &self.grads, divisor)?;
        }
        let mut global = [0.0f32; 3];
        match comm {
            Some(c) => c.all_reduce_sum(&stats, &mut global)?,
            None => global = stats,
        }
        let mean = global[0] / divisor;
        let stats = LossStats {
            mean,
            correct: global[1] as u32,
            rows: global[2] as u32,
            pad0: 0,
        };
        gpu.queue.write_buffer(&self.loss, 0, bytemuck::bytes_of(&stats));
        if let Some(dst) = plus_loss {
            gpu.queue.write_buffer(dst, 0, bytemuck::bytes_of(&mean));
        }
        Ok(())
    }
}

/// Rows `rows` of a global batch of `batch` rows (features or token sequences, and their targets).
fn slice(inputs: &Inputs, targets: &[u32], batch: usize, rows: std::ops::Range<usize>) -> (Inputs, Vec<u32>) {
    fn cut<T: Clone>(v: &[T], batch: usize, rows: &std::ops::Range<usize>) -> Vec<T> {
        let per = v.len() / batch;
        v[rows.start * per..rows.end * per].to_vec()
    }
    let x = match inputs {
        Inputs::Features(f) => Inputs::Features(cut(f, batch, &rows)),
        Inputs::Tokens(t) => Inputs::Tokens(cut(t, batch, &rows)),
    };
    (x, cut(targets, batch, &rows))
}

/// The settings a sliced run adds to the stored configuration (compared on
/// resume): `batch_slices` when the batch is cut at all, and `ranks` when more
/// than 2 slices make the reduction order depend on how they are spread. Two
/// slices sum as one addition, which is the same on 2 ranks and in one process
/// accumulating 2 (tested): such a run resumes either way. A plain run adds
/// nothing, so its configuration (and checkpoints) stay as they were.
pub(super) fn stored_settings(config_json: String, parallel: &Parallel<'_>) -> Result<String> {
    if parallel.slices() == 1 {
        return Ok(config_json);
    }
    let mut value: serde_json::Value =
        serde_json::from_str(&config_json).map_err(|e| Error::json("the run's settings", e))?;
    let obj = value
        .as_object_mut()
        .ok_or_else(|| Error::Gpu("config as JSON: not an object".into()))?;
    obj.insert("batch_slices".into(), parallel.slices().into());
    if parallel.slices() > 2 {
        obj.insert("ranks".into(), parallel.ranks().into());
    }
    serde_json::to_string(&value).map_err(|e| Error::json("the run's settings", e))
}
