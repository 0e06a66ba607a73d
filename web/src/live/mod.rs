//! Live training for the web demos (and their native tests): small MLPs trained
//! step by step on the device, with metrics gathered on the device and read back
//! in one transfer per snapshot.
//!
//! - [`Spirals`]: one MLP on two spirals; snapshots carry the decision boundary at
//!   y (the arena's parameters) and at x (an [`XExport`] buffer) over a grid, and
//!   train/test losses (`web/spirals.html`).
//! - [`Plasticity`]: three MLPs (AdamW without and with NaP, adamw_sf with NaP and
//!   an averaging window) on the continual label-reset stream of
//!   [`sfnap::data::continual::Continual`]; snapshots carry the accuracy at the end
//!   of every task, hidden weight norms and effective learning rates
//!   (`web/plasticity.html`).
//! - [`UpdateDemo`]: an MLP on two spirals per chosen optimizer; snapshots freeze
//!   each optimizer's state and carry the update functions of one element (the
//!   change of its x, y and z against its gradient) and their slopes at 0
//!   (`web/update.html`).
//!
//! A step uploads its batch and submits one encoder (forward, loss, backward,
//! optimizer, NaP, and a copy of the loss stats into a ring); nothing is read back
//! while training.

use std::ops::Range;

use serde::de::DeserializeOwned;
use sfnap::arena::Arena;
use sfnap::data::{Classification, Rng};
use sfnap::gpu::{Gpu, Packed, PackedReadback, Part};
use sfnap::model::mlp::{MlpConfig, MlpGraph};
use sfnap::model::{Graph, Inputs, Model, Weights};
use sfnap::nn::LossStats;
use sfnap::optim::{GpuOptimizer, OptimConfig, XExport};
use sfnap::train_step::record_train_step;
use sfnap::{Error, Result};

use crate::demo::ring_entries;

pub mod plasticity;
pub mod spirals;
pub mod update;

pub use plasticity::{NetSnapshot, Plasticity, PlasticityConfig, PlasticitySnapshot, PLASTICITY_NETS};
pub use spirals::{spirals_default_lr, Spirals, SpiralsConfig, SpiralsSnapshot, SPIRALS_OPTIMIZERS};
pub use update::{
    update_default_lr, Frozen, NetUpdate, UpdateConfig, UpdateDemo, UpdateNet, UpdateNetSnapshot, UpdateRequest,
    UpdateSnapshot, UPDATE_OPTIMIZERS,
};

/// Steps of per-step loss stats kept on the device between two snapshots.
pub const HISTORY: usize = 4096;

const STATS: u64 = std::mem::size_of::<LossStats>() as u64;

/// One MLP, its optimizer and its training graph, with a ring of per-step loss stats.
pub struct LiveNet {
    cfg: MlpConfig,
    arena: Arena,
    opt: GpuOptimizer,
    train: MlpGraph,
    x: wgpu::Buffer,
    export: XExport,
    history: wgpu::Buffer,
    steps: u64,
}

impl LiveNet {
    /// An MLP of shape `cfg` initialized from `seed`, trained by `opt` (with NaP on
    /// the model's groups when `nap`) on batches of `batch` rows.
    pub fn new(gpu: &Gpu, cfg: &MlpConfig, opt: &OptimConfig, nap: bool, batch: usize, seed: u64) -> Result<LiveNet> {
        let arena = Arena::new(gpu, &cfg.tensors(), None)?;
        cfg.initialize(gpu, &arena, seed)?;
        let groups = cfg.nap_groups();
        let opt = GpuOptimizer::new(gpu, &arena, opt, nap.then_some(&groups))?;
        let train = MlpGraph::new(gpu, cfg, Weights::train(&arena), batch)?;
        let x = gpu.storage("live x", arena.layout.bytes());
        let export = opt.x_export(gpu, &arena, &x)?;
        let history = gpu.storage("live history", STATS * HISTORY as u64);
        Ok(LiveNet {
            cfg: cfg.clone(),
            arena,
            opt,
            train,
            x,
            export,
            history,
            steps: 0,
        })
    }

    /// A graph of `rows` rows reading y (the arena's parameters) or x (the export buffer).
    pub fn eval_graph(&self, gpu: &Gpu, at_x: bool, rows: usize) -> Result<MlpGraph> {
        let weights = if at_x {
            Weights {
                arena: &self.arena,
                values: &self.x,
            }
        } else {
            Weights::train(&self.arena)
        };
        MlpGraph::new(gpu, &self.cfg, weights, rows)
    }

    /// Uploads a batch and submits one training step (no readback).
    pub fn step(&mut self, gpu: &Gpu, inputs: Vec<f32>, targets: &[u32]) -> Result<()> {
        self.train.write_batch(gpu, &Inputs::Features(inputs), targets)?;
        let at = STATS * (self.steps % HISTORY as u64);
        gpu.submit(|enc| {
            record_train_step(gpu, enc, &self.train, &mut self.opt)?;
            enc.copy_buffer_to_buffer(self.train.loss().stats(), 0, &self.history, at, STATS);
            Ok::<(), Error>(())
        })?;
        self.opt.submitted();
        self.steps += 1;
        Ok(())
    }

    /// Steps taken.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// The arena (layout and parameters).
    pub fn arena(&self) -> &Arena {
        &self.arena
    }

    /// Records writing x into the export buffer.
    pub fn record_export(&self, enc: &mut wgpu::CommandEncoder) {
        self.export.record(enc);
    }

    /// Adds the per-step stats ring to `readback`, to report `steps`.
    fn add_history(&self, readback: &mut PackedReadback, steps: Range<u64>) -> History {
        History {
            part: readback.add_values::<LossStats>(&self.history, 0, HISTORY),
            steps,
        }
    }
}

/// Some steps' stats in the ring of a [`LiveNet`], being read back.
struct History {
    part: Part,
    steps: Range<u64>,
}

impl History {
    /// The per-step (mean loss, accuracy) of the steps.
    fn unpack(self, packed: &Packed) -> (Vec<f32>, Vec<f32>) {
        ring_entries(&packed.values::<LossStats>(self.part), self.steps)
            .map(|s| (s.mean, accuracy(&s) as f32))
            .unzip()
    }
}

/// A config from JSON (missing fields take their defaults), not yet checked.
fn parse_json<T: DeserializeOwned>(json: &str) -> Result<T> {
    serde_json::from_str(json).map_err(|e| Error::invalid("config", format!("invalid config JSON: {e}")))
}

/// Checks that each `(field, value, max)` has its value in `1..=max`; the error names the field.
fn check_counts(fields: &[(&str, usize, usize)]) -> Result<()> {
    match fields.iter().find(|&&(_, v, max)| v == 0 || v > max) {
        Some(&(name, v, max)) => Err(Error::invalid(name, format!("{v}: must be in 1..={max}"))),
        None => Ok(()),
    }
}

/// Checks that `optimizer` (field `field`) is one of `allowed`; the error lists them.
fn check_optimizer(field: &str, optimizer: &str, allowed: &[&str]) -> Result<()> {
    if allowed.contains(&optimizer) {
        return Ok(());
    }
    Err(Error::invalid(
        field,
        format!(
            "unknown optimizer `{optimizer}` (expected one of {})",
            allowed.join(", ")
        ),
    ))
}

/// The fraction of rows classified correctly.
fn accuracy(s: &LossStats) -> f64 {
    s.correct as f64 / s.rows.max(1) as f64
}

/// Records the forward pass (and loss) of `graphs` in one compute pass.
fn record_forward(enc: &mut wgpu::CommandEncoder, graphs: &[&MlpGraph]) {
    let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
        label: Some("live eval"),
        timestamp_writes: None,
    });
    for g in graphs {
        g.record_forward(&mut pass);
    }
}

/// A batch of `rows` examples drawn uniformly (with replacement) from `data`.
fn sample(data: &Classification, rows: usize, rng: &mut Rng) -> (Vec<f32>, Vec<u32>) {
    let mut x = Vec::with_capacity(rows * data.dim);
    let mut t = Vec::with_capacity(rows);
    for _ in 0..rows {
        let i = rng.below(data.len());
        x.extend_from_slice(&data.inputs[i * data.dim..][..data.dim]);
        t.push(data.labels[i]);
    }
    (x, t)
}
