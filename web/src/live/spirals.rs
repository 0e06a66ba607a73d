//! The two-spirals demo (`web/spirals.html`): one MLP trained live on two spirals;
//! snapshots carry the decision boundary at y and at x over a grid, the test losses
//! and the per-step training losses.

use serde::{Deserialize, Serialize};
use sfnap::data::spirals::{spirals, with_constant_input, with_one};
use sfnap::data::{Classification, Rng};
use sfnap::gpu::{Gpu, Packed, Part};
use sfnap::model::mlp::{MlpConfig, MlpGraph};
use sfnap::model::{Graph, Inputs};
use sfnap::nn::LossStats;
use sfnap::optim::{Kind, OptimConfig};
use sfnap::{Error, Result};

use super::{accuracy, check_counts, check_optimizer, parse_json, record_forward, sample, History, LiveNet, HISTORY};
use crate::demo::{steps_since, Demo, Request, Unpack};

/// The optimizers of the spirals demo, in display order.
pub const SPIRALS_OPTIMIZERS: [&str; 4] = ["sgd_sf", "adamw_sf", "sf_plus", "adamw"];

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

/// The spirals demos' model: (2 + 1) - hidden - hidden - 2. The hidden Linears have
/// no bias and LayerNorm makes the first one blind to the input's scale, so every
/// point carries a constant 1 as a third feature (the first layer's bias).
pub fn spirals_model(hidden: usize) -> MlpConfig {
    MlpConfig {
        input: 3,
        hidden: vec![hidden, hidden],
        classes: 2,
        norm: true,
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
        let c: SpiralsConfig = parse_json(json)?;
        c.validate()?;
        Ok(c)
    }

    /// Checks the fields; errors name the field.
    pub fn validate(&self) -> Result<()> {
        check_optimizer("optimizer", &self.optimizer, &SPIRALS_OPTIMIZERS)?;
        check_counts(&[
            ("hidden", self.hidden, 1024),
            ("batch", self.batch, 4096),
            ("train_points", self.train_points, 65536),
            ("test_points", self.test_points, 65536),
            ("grid", self.grid, 256),
        ])?;
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

    /// The model: [`spirals_model`] of the hidden width.
    pub fn model(&self) -> MlpConfig {
        spirals_model(self.hidden)
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
    rng: Rng,
    grid_y: MlpGraph,
    grid_x: MlpGraph,
    test_y: MlpGraph,
    test_x: MlpGraph,
    read_from: u64,
}

impl Spirals {
    /// The training points as JSON: `{"inputs": [a, b, ...], "labels": [...]}`.
    pub fn data_json(&self) -> String {
        serde_json::json!({ "inputs": self.points.inputs, "labels": self.points.labels }).to_string()
    }
}

impl Demo for Spirals {
    type Config = SpiralsConfig;
    type Parts = SpiralsParts;

    fn parse_config(json: &str) -> Result<SpiralsConfig> {
        SpiralsConfig::parse(json)
    }

    /// Builds the network, its graphs and the data.
    fn new(gpu: &Gpu, config: &SpiralsConfig) -> Result<Spirals> {
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
            rng: Rng::new(config.seed ^ 0xba7c4),
            grid_y,
            grid_x,
            test_y,
            test_x,
            read_from: 0,
        })
    }

    fn config(&self) -> &SpiralsConfig {
        &self.config
    }

    fn steps(&self) -> u64 {
        self.net.steps()
    }

    /// Submits `n` training steps (no readback).
    fn step(&mut self, gpu: &Gpu, n: u32) -> Result<()> {
        for _ in 0..n {
            let (x, t) = sample(&self.train_data, self.config.batch, &mut self.rng);
            self.net.step(gpu, x, &t)?;
        }
        Ok(())
    }

    /// Evaluates the grid and the test set at y and x, and reads them back with the
    /// per-step stats since the last snapshot.
    fn request_snapshot(&mut self, gpu: &Gpu) -> Request<SpiralsParts> {
        let g = self.config.grid * self.config.grid;
        let steps = steps_since(&mut self.read_from, self.net.steps(), HISTORY);
        Request::submit(gpu, |enc, readback| {
            self.net.record_export(enc);
            record_forward(enc, &[&self.grid_y, &self.grid_x, &self.test_y, &self.test_x]);
            SpiralsParts {
                grid: self.config.grid,
                history: self.net.add_history(readback, steps),
                test_y: readback.add_values::<LossStats>(self.test_y.loss().stats(), 0, 1),
                test_x: readback.add_values::<LossStats>(self.test_x.loss().stats(), 0, 1),
                grid_y: readback.add_values::<f32>(self.grid_y.loss().losses(), 0, g),
                grid_x: readback.add_values::<f32>(self.grid_x.loss().losses(), 0, g),
            }
        })
    }
}

/// Where a spirals snapshot's pieces lie in its readback.
pub struct SpiralsParts {
    grid: usize,
    history: History,
    test_y: Part,
    test_x: Part,
    grid_y: Part,
    grid_x: Part,
}

impl Unpack for SpiralsParts {
    type Snapshot = SpiralsSnapshot;

    fn unpack(self, packed: &Packed) -> SpiralsSnapshot {
        let steps = self.history.steps.clone();
        let (train_loss, train_acc) = self.history.unpack(packed);
        let stats = |part| packed.values::<LossStats>(part)[0];
        let (ty, tx) = (stats(self.test_y), stats(self.test_x));
        // Targets are class 0, so a row's loss is -ln p0.
        let prob = |part| -> Vec<f32> {
            packed
                .values::<f32>(part)
                .into_iter()
                .map(|loss| 1.0 - (-loss).exp())
                .collect()
        };
        SpiralsSnapshot {
            step: steps.end,
            history_from: steps.start,
            train_loss,
            train_acc,
            test_loss_y: ty.mean as f64,
            test_loss_x: tx.mean as f64,
            test_acc_y: accuracy(&ty),
            test_acc_x: accuracy(&tx),
            grid: self.grid,
            prob_y: prob(self.grid_y),
            prob_x: prob(self.grid_x),
        }
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
