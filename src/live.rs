//! Live training for the web demos (and their native tests): small MLPs trained
//! step by step on the device, with metrics gathered on the device and read back
//! in one transfer per snapshot.
//!
//! - [`Spirals`]: one MLP on two spirals; snapshots carry the decision boundary at
//!   y (the arena's parameters) and at x (an [`XExport`] buffer) over a grid, and
//!   train/test losses (`web/spirals.html`).
//! - [`Plasticity`]: two MLPs, one with NaP and one without, on the continual
//!   label-reset stream of [`Continual`]; snapshots carry the accuracy at the end
//!   of every task, hidden weight norms and effective learning rates
//!   (`web/plasticity.html`).
//!
//! A step uploads its batch and submits one encoder (forward, loss, backward,
//! optimizer, NaP, and a copy of the loss stats into a ring); nothing is read back
//! while training.

use serde::{Deserialize, Serialize};

use crate::arena::Arena;
use crate::data::continual::Continual;
use crate::data::digits::digits;
use crate::data::spirals::{spirals, with_constant_input, with_one};
use crate::data::{Classification, Rng};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::model::mlp::{MlpConfig, MlpGraph};
use crate::model::{Graph, Inputs, Model, Weights};
use crate::nn::LossStats;
use crate::optim::XExport;
use crate::optim::{GpuOptimizer, Kind, OptimConfig};
use crate::sched::record_train_step;

/// Steps of per-step loss stats kept on the device between two snapshots.
pub const HISTORY: usize = 4096;
/// Most tasks whose end-of-task accuracy is kept (a ring beyond that).
pub const MAX_TASKS: usize = 1024;
/// The optimizers of the spirals demo, in display order.
pub const SPIRALS_OPTIMIZERS: [&str; 4] = ["sgd_sf", "adamw_sf", "sf_plus", "adamw"];

const STATS: u64 = std::mem::size_of::<LossStats>() as u64;

fn stats_from(words: &[u32]) -> LossStats {
    LossStats {
        mean: f32::from_bits(words[0]),
        correct: words[1],
        rows: words[2],
        pad0: 0,
    }
}

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
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        record_train_step(gpu, &mut enc, &self.train, &mut self.opt)?;
        let at = STATS * (self.steps % HISTORY as u64);
        enc.copy_buffer_to_buffer(self.train.loss().stats(), 0, &self.history, at, STATS);
        gpu.queue.submit([enc.finish()]);
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

    /// The optimizer.
    pub fn optimizer(&self) -> &GpuOptimizer {
        &self.opt
    }

    /// Records writing x into the export buffer.
    pub fn record_export(&self, enc: &mut wgpu::CommandEncoder) {
        self.export.record(enc);
    }

    /// Records a copy of the per-step stats ring into `dst` at byte `at`.
    fn record_history(&self, enc: &mut wgpu::CommandEncoder, dst: &wgpu::Buffer, at: u64) {
        enc.copy_buffer_to_buffer(&self.history, 0, dst, at, STATS * HISTORY as u64);
    }

    /// The per-step (mean loss, accuracy) of steps `from..to`, from a copied ring.
    fn history_of(ring: &[u32], from: u64, to: u64) -> (Vec<f32>, Vec<f32>) {
        (from..to)
            .map(|k| {
                let s = stats_from(&ring[4 * (k as usize % HISTORY)..]);
                (s.mean, s.correct as f32 / s.rows.max(1) as f32)
            })
            .unzip()
    }
}

fn record_forward(enc: &mut wgpu::CommandEncoder, graphs: &[&MlpGraph]) {
    let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
        label: Some("live eval"),
        timestamp_writes: None,
    });
    for g in graphs {
        g.record_forward(&mut pass);
    }
}

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

// ---------------------------------------------------------------- spirals

/// What the spirals demo trains.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpiralsConfig {
    /// The optimizer: one of [`SPIRALS_OPTIMIZERS`].
    pub optimizer: String,
    /// Learning rate (`None`: the optimizer's default for this demo, [`spirals_default_lr`]).
    pub lr: Option<f64>,
    /// Normalize-and-Project on the hidden layers.
    pub nap: bool,
    /// Width of each of the two hidden layers.
    pub hidden: usize,
    /// Rows per training batch.
    pub batch: usize,
    /// Training points.
    pub train_points: usize,
    /// Test points.
    pub test_points: usize,
    /// Noise of the points.
    pub noise: f64,
    /// Decision-boundary grid points per side.
    pub grid: usize,
    /// Half the side of the plotted square (the grid covers `[-extent, extent]^2`).
    pub extent: f64,
    /// Seed of data, initialization and batches.
    pub seed: u64,
}

impl Default for SpiralsConfig {
    fn default() -> Self {
        SpiralsConfig {
            optimizer: "adamw_sf".into(),
            lr: None,
            nap: false,
            hidden: 64,
            batch: 64,
            train_points: 512,
            test_points: 512,
            noise: 0.03,
            grid: 48,
            extent: 1.2,
            seed: 1,
        }
    }
}

/// The learning rate each optimizer starts with in the spirals demo.
pub fn spirals_default_lr(optimizer: &str) -> f64 {
    match optimizer {
        "sgd_sf" => 0.5,
        "adamw_sf" => 0.01,
        "sf_plus" => 0.1,
        _ => 0.01,
    }
}

impl SpiralsConfig {
    /// Parses a config JSON (missing fields take their defaults) and checks it.
    pub fn parse(json: &str) -> Result<SpiralsConfig> {
        let c: SpiralsConfig =
            serde_json::from_str(json).map_err(|e| Error::invalid("config", format!("invalid config JSON: {e}")))?;
        c.validate()?;
        Ok(c)
    }

    /// Checks the fields; errors name the field.
    pub fn validate(&self) -> Result<()> {
        if !SPIRALS_OPTIMIZERS.contains(&self.optimizer.as_str()) {
            return Err(Error::invalid(
                "optimizer",
                format!(
                    "unknown optimizer `{}` (expected one of {})",
                    self.optimizer,
                    SPIRALS_OPTIMIZERS.join(", ")
                ),
            ));
        }
        for (name, v, max) in [
            ("hidden", self.hidden, 1024),
            ("batch", self.batch, 4096),
            ("train_points", self.train_points, 65536),
            ("test_points", self.test_points, 65536),
            ("grid", self.grid, 256),
        ] {
            if v == 0 || v > max {
                return Err(Error::invalid(name, format!("{v}: must be in 1..={max}")));
            }
        }
        if !(self.extent > 0.0 && self.extent.is_finite() && self.noise >= 0.0 && self.noise.is_finite()) {
            return Err(Error::invalid(
                "extent",
                "extent must be positive and noise non-negative",
            ));
        }
        Ok(())
    }

    /// The optimizer config.
    pub fn optim(&self) -> Result<OptimConfig> {
        let kind = Kind::parse(&self.optimizer)?;
        let lr = self.lr.unwrap_or_else(|| spirals_default_lr(&self.optimizer));
        let mut c = OptimConfig::new(kind).with_lr(lr);
        if kind.is_schedule_free() && kind != Kind::SfPlus {
            c.warmup_steps = 50;
        }
        Ok(c)
    }

    /// The model: (2 + 1) - hidden - hidden - 2. The hidden Linears have no bias and
    /// LayerNorm makes the first one blind to the input's scale, so every point
    /// carries a constant 1 as a third feature (the first layer's bias).
    pub fn model(&self) -> MlpConfig {
        MlpConfig {
            input: 3,
            hidden: vec![self.hidden, self.hidden],
            classes: 2,
        }
    }

    /// The grid's points, rows from the top (largest b first), `grid^2` (a, b) pairs.
    pub fn grid_points(&self) -> Vec<f32> {
        let n = self.grid;
        let at = |i: usize| -self.extent + 2.0 * self.extent * (i as f64 + 0.5) / n as f64;
        (0..n)
            .flat_map(|r| (0..n).flat_map(move |c| [at(c) as f32, at(n - 1 - r) as f32]))
            .collect()
    }
}

/// The spirals demo: one MLP, its evaluation graphs and data.
pub struct Spirals {
    config: SpiralsConfig,
    net: LiveNet,
    points: Classification,
    train_data: Classification,
    test_data: Classification,
    rng: Rng,
    grid_y: MlpGraph,
    grid_x: MlpGraph,
    test_y: MlpGraph,
    test_x: MlpGraph,
    read_from: u64,
}

impl Spirals {
    /// Builds the network, its graphs and the data.
    pub fn new(gpu: &Gpu, config: &SpiralsConfig) -> Result<Spirals> {
        config.validate()?;
        let model = config.model();
        let net = LiveNet::new(gpu, &model, &config.optim()?, config.nap, config.batch, config.seed)?;
        let points = spirals(config.train_points, config.noise, config.seed);
        let train_data = with_constant_input(&points);
        let test_data = with_constant_input(&spirals(config.test_points, config.noise, config.seed ^ 0x5eed));
        let g = config.grid * config.grid;
        let grid_y = net.eval_graph(gpu, false, g)?;
        let grid_x = net.eval_graph(gpu, true, g)?;
        let test_y = net.eval_graph(gpu, false, test_data.len())?;
        let test_x = net.eval_graph(gpu, true, test_data.len())?;
        let grid = Inputs::Features(with_one(&config.grid_points()));
        for graph in [&grid_y, &grid_x] {
            graph.write_batch(gpu, &grid, &vec![0; g])?;
        }
        let test = Inputs::Features(test_data.inputs.clone());
        for graph in [&test_y, &test_x] {
            graph.write_batch(gpu, &test, &test_data.labels)?;
        }
        Ok(Spirals {
            config: config.clone(),
            net,
            points,
            train_data,
            test_data,
            rng: Rng::new(config.seed ^ 0xba7c4),
            grid_y,
            grid_x,
            test_y,
            test_x,
            read_from: 0,
        })
    }

    /// The config.
    pub fn config(&self) -> &SpiralsConfig {
        &self.config
    }

    /// Steps taken.
    pub fn steps(&self) -> u64 {
        self.net.steps()
    }

    /// The training points as JSON: `{"inputs": [a, b, ...], "labels": [...]}`.
    pub fn data_json(&self) -> String {
        serde_json::json!({ "inputs": self.points.inputs, "labels": self.points.labels }).to_string()
    }

    /// Submits `n` training steps (no readback).
    pub fn step(&mut self, gpu: &Gpu, n: u32) -> Result<()> {
        for _ in 0..n {
            let (x, t) = sample(&self.train_data, self.config.batch, &mut self.rng);
            self.net.step(gpu, x, &t)?;
        }
        Ok(())
    }

    /// Evaluates the grid and the test set at y and x and packs them with the
    /// per-step losses since the last snapshot into one buffer; read it with
    /// [`SpiralsRequest::read`]. Stepping may go on meanwhile.
    pub fn request_snapshot(&mut self, gpu: &Gpu) -> SpiralsRequest {
        let g = self.config.grid * self.config.grid;
        let words = 4 * HISTORY + 8 + 2 * g;
        let buffer = gpu.storage("spirals snapshot", 4 * words as u64);
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        self.net.record_export(&mut enc);
        record_forward(&mut enc, &[&self.grid_y, &self.grid_x, &self.test_y, &self.test_x]);
        self.net.record_history(&mut enc, &buffer, 0);
        let base = STATS * HISTORY as u64;
        enc.copy_buffer_to_buffer(self.test_y.loss().stats(), 0, &buffer, base, STATS);
        enc.copy_buffer_to_buffer(self.test_x.loss().stats(), 0, &buffer, base + STATS, STATS);
        let gb = 4 * g as u64;
        enc.copy_buffer_to_buffer(self.grid_y.loss().losses(), 0, &buffer, base + 2 * STATS, gb);
        enc.copy_buffer_to_buffer(self.grid_x.loss().losses(), 0, &buffer, base + 2 * STATS + gb, gb);
        gpu.queue.submit([enc.finish()]);
        let step = self.net.steps();
        let from = self.read_from.max(step.saturating_sub(HISTORY as u64));
        self.read_from = step;
        SpiralsRequest {
            buffer,
            words,
            grid: self.config.grid,
            from,
            step,
        }
    }

    /// [`Spirals::request_snapshot`], then [`SpiralsRequest::read`].
    pub async fn snapshot_async(&mut self, gpu: &Gpu) -> Result<SpiralsSnapshot> {
        self.request_snapshot(gpu).read(gpu).await
    }

    /// [`Spirals::snapshot_async`], waiting for the device (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn snapshot(&mut self, gpu: &Gpu) -> Result<SpiralsSnapshot> {
        pollster::block_on(self.snapshot_async(gpu))
    }

    /// The test set as the model sees it: (a, b, 1) rows.
    pub fn test_data(&self) -> &Classification {
        &self.test_data
    }
}

/// A spirals snapshot submitted to the device, to be read back.
pub struct SpiralsRequest {
    buffer: wgpu::Buffer,
    words: usize,
    grid: usize,
    from: u64,
    step: u64,
}

impl SpiralsRequest {
    /// Reads the snapshot back (one readback).
    pub async fn read(self, gpu: &Gpu) -> Result<SpiralsSnapshot> {
        let w: Vec<u32> = gpu.read_async(&self.buffer, 0, self.words).await?;
        let (ring, rest) = w.split_at(4 * HISTORY);
        let (train_loss, train_acc) = LiveNet::history_of(ring, self.from, self.step);
        let (ty, tx) = (stats_from(&rest[0..4]), stats_from(&rest[4..8]));
        let g = self.grid * self.grid;
        // Targets are class 0, so a row's loss is -ln p0.
        let prob = |s: &[u32]| -> Vec<f32> { s.iter().map(|&b| 1.0 - (-f32::from_bits(b)).exp()).collect() };
        let acc = |s: &LossStats| s.correct as f64 / s.rows.max(1) as f64;
        Ok(SpiralsSnapshot {
            step: self.step,
            history_from: self.from,
            train_loss,
            train_acc,
            test_loss_y: ty.mean as f64,
            test_loss_x: tx.mean as f64,
            test_acc_y: acc(&ty),
            test_acc_x: acc(&tx),
            grid: self.grid,
            prob_y: prob(&rest[8..8 + g]),
            prob_x: prob(&rest[8 + g..8 + 2 * g]),
        })
    }
}

/// The spirals network at one moment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpiralsSnapshot {
    /// Steps taken.
    pub step: u64,
    /// The step of `train_loss[0]`.
    pub history_from: u64,
    /// Mean training-batch loss (at y) of each step since the last snapshot.
    pub train_loss: Vec<f32>,
    /// Training-batch accuracy of each of those steps.
    pub train_acc: Vec<f32>,
    /// Test loss at y.
    pub test_loss_y: f64,
    /// Test loss at x.
    pub test_loss_x: f64,
    /// Test accuracy at y.
    pub test_acc_y: f64,
    /// Test accuracy at x.
    pub test_acc_x: f64,
    /// Grid points per side.
    pub grid: usize,
    /// P(class 1) at y on the grid, rows from the top.
    pub prob_y: Vec<f32>,
    /// P(class 1) at x on the grid.
    pub prob_x: Vec<f32>,
}

impl SpiralsSnapshot {
    /// As JSON (non-finite numbers as `null`).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a snapshot always serializes")
    }
}

// ---------------------------------------------------------------- plasticity

/// What the plasticity demo trains.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlasticityConfig {
    /// Digits inputs whose labels are re-drawn every task.
    pub inputs: usize,
    /// Steps per task.
    pub task_steps: u64,
    /// Width of each of the two hidden layers.
    pub hidden: usize,
    /// Rows per batch.
    pub batch: usize,
    /// AdamW's (constant) learning rate.
    pub lr: f64,
    /// Seed of labels, initialization (the same for both networks) and batches.
    pub seed: u64,
}

impl Default for PlasticityConfig {
    fn default() -> Self {
        PlasticityConfig {
            inputs: 256,
            task_steps: 100,
            hidden: 128,
            batch: 64,
            lr: 3e-3,
            seed: 1,
        }
    }
}

impl PlasticityConfig {
    /// Parses a config JSON (missing fields take their defaults) and checks it.
    pub fn parse(json: &str) -> Result<PlasticityConfig> {
        let c: PlasticityConfig =
            serde_json::from_str(json).map_err(|e| Error::invalid("config", format!("invalid config JSON: {e}")))?;
        c.validate()?;
        Ok(c)
    }

    /// Checks the fields; errors name the field.
    pub fn validate(&self) -> Result<()> {
        for (name, v, max) in [
            ("inputs", self.inputs, 1797),
            ("hidden", self.hidden, 1024),
            ("batch", self.batch, 4096),
            ("task_steps", self.task_steps as usize, 1 << 20),
        ] {
            if v == 0 || v > max {
                return Err(Error::invalid(name, format!("{v}: must be in 1..={max}")));
            }
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(Error::invalid("lr", "must be positive"));
        }
        Ok(())
    }

    /// The model: 64 - hidden - hidden - 10.
    pub fn model(&self) -> MlpConfig {
        MlpConfig {
            input: 64,
            hidden: vec![self.hidden, self.hidden],
            classes: 10,
        }
    }
}

/// The networks of the plasticity demo, in order.
pub const PLASTICITY_NETS: [&str; 2] = ["plain", "nap"];

struct Lane {
    net: LiveNet,
    eval: MlpGraph,
    tasks: wgpu::Buffer,
}

/// Two networks (without and with NaP) on the same continual stream, the same
/// batches and the same initialization.
pub struct Plasticity {
    config: PlasticityConfig,
    stream: Continual,
    data: Classification,
    lanes: Vec<Lane>,
    rng: Rng,
    steps: u64,
    read_from: u64,
}

impl Plasticity {
    /// Builds both networks and the stream.
    pub fn new(gpu: &Gpu, config: &PlasticityConfig) -> Result<Plasticity> {
        config.validate()?;
        let stream = Continual::new(&digits(), config.inputs, config.task_steps, config.seed);
        let data = stream.task_data(0);
        let model = config.model();
        let opt = OptimConfig::new(Kind::Adamw).with_lr(config.lr);
        let lanes = PLASTICITY_NETS
            .iter()
            .map(|&name| {
                let net = LiveNet::new(gpu, &model, &opt, name == "nap", config.batch, config.seed)?;
                let eval = net.eval_graph(gpu, false, data.len())?;
                let tasks = gpu.storage("live tasks", STATS * MAX_TASKS as u64);
                Ok(Lane { net, eval, tasks })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Plasticity {
            config: config.clone(),
            stream,
            data,
            lanes,
            rng: Rng::new(config.seed ^ 0xba7c4),
            steps: 0,
            read_from: 0,
        })
    }

    /// The config.
    pub fn config(&self) -> &PlasticityConfig {
        &self.config
    }

    /// Steps taken (by each network).
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Submits `n` steps of both networks; at the end of each task, evaluates both on
    /// all inputs with the task's labels (no readback).
    pub fn step(&mut self, gpu: &Gpu, n: u32) -> Result<()> {
        for _ in 0..n {
            let task = self.stream.task(self.steps);
            if self.steps.is_multiple_of(self.config.task_steps) {
                self.data = self.stream.task_data(task);
                let inputs = Inputs::Features(self.data.inputs.clone());
                for lane in &self.lanes {
                    lane.eval.write_batch(gpu, &inputs, &self.data.labels)?;
                }
            }
            let (x, t) = sample(&self.data, self.config.batch, &mut self.rng);
            for lane in &mut self.lanes {
                lane.net.step(gpu, x.clone(), &t)?;
            }
            self.steps += 1;
            if self.steps.is_multiple_of(self.config.task_steps) {
                let mut enc = gpu.device.create_command_encoder(&Default::default());
                let at = STATS * (task % MAX_TASKS as u64);
                for lane in &self.lanes {
                    record_forward(&mut enc, &[&lane.eval]);
                    enc.copy_buffer_to_buffer(lane.eval.loss().stats(), 0, &lane.tasks, at, STATS);
                }
                gpu.queue.submit([enc.finish()]);
            }
        }
        Ok(())
    }

    /// Packs both networks' per-step stats since the last snapshot, end-of-task
    /// stats and hidden weights into one buffer; read it with [`PlasticityRequest::read`].
    pub fn request_snapshot(&mut self, gpu: &Gpu) -> PlasticityRequest {
        let arena = self.lanes[0].net.arena();
        let hidden: Vec<(usize, usize)> = (0..self.config.model().hidden.len())
            .map(|i| {
                let s = arena
                    .layout
                    .slot(&format!("l{i}.weight"))
                    .expect("hidden weights exist");
                (s.offset, s.len)
            })
            .collect();
        let per_lane = 4 * HISTORY + 4 * MAX_TASKS + hidden.iter().map(|h| h.1).sum::<usize>();
        let words = per_lane * self.lanes.len();
        let buffer = gpu.storage("plasticity snapshot", 4 * words as u64);
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        for (i, lane) in self.lanes.iter().enumerate() {
            let mut at = 4 * (i * per_lane) as u64;
            lane.net.record_history(&mut enc, &buffer, at);
            at += STATS * HISTORY as u64;
            enc.copy_buffer_to_buffer(&lane.tasks, 0, &buffer, at, STATS * MAX_TASKS as u64);
            at += STATS * MAX_TASKS as u64;
            for &(offset, len) in &hidden {
                let params = &lane.net.arena().params;
                enc.copy_buffer_to_buffer(params, 4 * offset as u64, &buffer, at, 4 * len as u64);
                at += 4 * len as u64;
            }
        }
        gpu.queue.submit([enc.finish()]);
        let from = self.read_from.max(self.steps.saturating_sub(HISTORY as u64));
        self.read_from = self.steps;
        let done = self.steps / self.config.task_steps;
        PlasticityRequest {
            buffer,
            per_lane,
            hidden: hidden.iter().map(|h| h.1).collect(),
            from,
            step: self.steps,
            tasks_from: done.saturating_sub(MAX_TASKS as u64),
            tasks_done: done,
            lr: self.config.lr,
            task_steps: self.config.task_steps,
        }
    }

    /// [`Plasticity::request_snapshot`], then [`PlasticityRequest::read`].
    pub async fn snapshot_async(&mut self, gpu: &Gpu) -> Result<PlasticitySnapshot> {
        self.request_snapshot(gpu).read(gpu).await
    }

    /// [`Plasticity::snapshot_async`], waiting for the device (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn snapshot(&mut self, gpu: &Gpu) -> Result<PlasticitySnapshot> {
        pollster::block_on(self.snapshot_async(gpu))
    }
}

/// A plasticity snapshot submitted to the device, to be read back.
pub struct PlasticityRequest {
    buffer: wgpu::Buffer,
    per_lane: usize,
    hidden: Vec<usize>,
    from: u64,
    step: u64,
    tasks_from: u64,
    tasks_done: u64,
    lr: f64,
    task_steps: u64,
}

impl PlasticityRequest {
    /// Reads the snapshot back (one readback for both networks).
    pub async fn read(self, gpu: &Gpu) -> Result<PlasticitySnapshot> {
        let w: Vec<u32> = gpu
            .read_async(&self.buffer, 0, self.per_lane * PLASTICITY_NETS.len())
            .await?;
        let nets = PLASTICITY_NETS
            .iter()
            .enumerate()
            .map(|(i, &name)| {
                let lane = &w[i * self.per_lane..][..self.per_lane];
                let (ring, rest) = lane.split_at(4 * HISTORY);
                let (tasks, mut weights) = rest.split_at(4 * MAX_TASKS);
                let (train_loss, train_acc) = LiveNet::history_of(ring, self.from, self.step);
                let task_acc = (self.tasks_from..self.tasks_done)
                    .map(|t| {
                        let s = stats_from(&tasks[4 * (t as usize % MAX_TASKS)..]);
                        s.correct as f32 / s.rows.max(1) as f32
                    })
                    .collect();
                let mut norms = Vec::new();
                for &len in &self.hidden {
                    let (this, next) = weights.split_at(len);
                    weights = next;
                    norms.push(
                        this.iter()
                            .map(|&b| (f32::from_bits(b) as f64).powi(2))
                            .sum::<f64>()
                            .sqrt(),
                    );
                }
                // Adam on a scale-invariant weight: the angular step is lr / ||W||.
                let effective_lr = norms.iter().map(|n| self.lr / n.max(1e-12)).collect();
                NetSnapshot {
                    name: name.to_string(),
                    train_loss,
                    train_acc,
                    task_acc,
                    norms,
                    effective_lr,
                }
            })
            .collect();
        Ok(PlasticitySnapshot {
            step: self.step,
            history_from: self.from,
            tasks_from: self.tasks_from,
            task_steps: self.task_steps,
            nets,
        })
    }
}

/// Both plasticity networks at one moment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlasticitySnapshot {
    /// Steps taken.
    pub step: u64,
    /// The step of each net's `train_loss[0]`.
    pub history_from: u64,
    /// The task of each net's `task_acc[0]`.
    pub tasks_from: u64,
    /// Steps per task.
    pub task_steps: u64,
    /// One entry per network, in [`PLASTICITY_NETS`] order.
    pub nets: Vec<NetSnapshot>,
}

/// One plasticity network's numbers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NetSnapshot {
    /// `plain` or `nap`.
    pub name: String,
    /// Mean batch loss of each step since the last snapshot.
    pub train_loss: Vec<f32>,
    /// Batch accuracy of each of those steps.
    pub train_acc: Vec<f32>,
    /// Accuracy on all inputs with the task's labels at the end of every finished task.
    pub task_acc: Vec<f32>,
    /// Frobenius norm of each hidden weight now.
    pub norms: Vec<f64>,
    /// lr / norm of each hidden weight: the angular step size AdamW takes on it.
    pub effective_lr: Vec<f64>,
}

impl PlasticitySnapshot {
    /// As JSON (non-finite numbers as `null`).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a snapshot always serializes")
    }

    /// The snapshot of network `name`.
    pub fn net(&self, name: &str) -> Result<&NetSnapshot> {
        self.nets
            .iter()
            .find(|n| n.name == name)
            .ok_or_else(|| Error::invalid("net", format!("no network `{name}` in the snapshot")))
    }
}
