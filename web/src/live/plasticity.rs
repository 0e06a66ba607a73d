//! The plasticity demo (`web/plasticity.html`): three MLPs with LayerNorm on the
//! continual label-reset stream of [`Continual`]: AdamW without NaP, AdamW with NaP,
//! and adamw_sf with NaP and an averaging window (`sf_window`, `sf_beta`: the
//! setting docs/plasticity.md chose). Snapshots carry the accuracy at the end of
//! every task, hidden weight norms and effective learning rates.

use std::ops::Range;

use serde::{Deserialize, Serialize};
use sfnap::data::continual::Continual;
use sfnap::data::digits::digits;
use sfnap::data::{Classification, Rng};
use sfnap::gpu::{Gpu, Packed, Part};
use sfnap::model::mlp::{MlpConfig, MlpGraph};
use sfnap::model::{Graph, Inputs};
use sfnap::nn::LossStats;
use sfnap::optim::{Kind, OptimConfig};
use sfnap::{Error, Result};

use super::{accuracy, check_counts, parse_json, record_forward, sample, History, LiveNet, HISTORY, STATS};
use crate::demo::{ring_entries, steps_since, Demo, Request, Unpack};

/// Most tasks whose end-of-task accuracy is kept (a ring beyond that).
pub const MAX_TASKS: usize = 1024;

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
    /// Whether the first network (AdamW without NaP) has LayerNorm; without it, it is
    /// the plasticity study's plain MLP (Linear with bias, ReLU).
    pub plain_norm: bool,
    /// adamw_sf's learning rate (the third network).
    pub sf_lr: f64,
    /// adamw_sf's averaging window in steps (`--sf-window`; 0: the paper's whole-run average).
    pub sf_window: u64,
    /// adamw_sf's interpolation weight beta of y = (1 - beta) z + beta x (`--sf-beta`).
    pub sf_beta: f64,
    /// Seed of labels, initialization (the same for every network) and batches.
    pub seed: u64,
}

/// The defaults, from docs/plasticity.md and measured natively on lavapipe over 12
/// tasks (`web/tests/live.rs`): AdamW at the study's 1e-3, the plain network without
/// LayerNorm (with it, AdamW keeps most of its plasticity over a short stream and the
/// gap to NaP is 0 to 9 points by seed at 3e-3), and adamw_sf + NaP with the study's
/// beta 0.5 at 3e-3 and a window a fifth of a task, as the study's 100 steps of 500.
impl Default for PlasticityConfig {
    fn default() -> Self {
        PlasticityConfig {
            inputs: 256,
            task_steps: 100,
            hidden: 128,
            batch: 64,
            lr: 1e-3,
            plain_norm: false,
            sf_lr: 3e-3,
            sf_window: 20,
            sf_beta: 0.5,
            seed: 1,
        }
    }
}

impl PlasticityConfig {
    /// Parses a config JSON (missing fields take their defaults) and checks it.
    pub fn parse(json: &str) -> Result<PlasticityConfig> {
        let c: PlasticityConfig = parse_json(json)?;
        c.validate()?;
        Ok(c)
    }

    /// Checks the fields; errors name the field.
    pub fn validate(&self) -> Result<()> {
        check_counts(&[
            ("inputs", self.inputs, 1797),
            ("hidden", self.hidden, 1024),
            ("batch", self.batch, 4096),
            ("task_steps", self.task_steps as usize, 1 << 20),
        ])?;
        for (name, lr) in [("lr", self.lr), ("sf_lr", self.sf_lr)] {
            if !(lr > 0.0 && lr.is_finite()) {
                return Err(Error::invalid(name, "must be positive"));
            }
        }
        if !(0.0..1.0).contains(&self.sf_beta) {
            return Err(Error::invalid("sf_beta", "must be in [0, 1)"));
        }
        Ok(())
    }

    /// The model of the NaP networks: 64 - hidden - hidden - 10 with LayerNorm.
    pub fn model(&self) -> MlpConfig {
        MlpConfig {
            input: 64,
            hidden: vec![self.hidden, self.hidden],
            classes: 10,
            norm: true,
        }
    }

    /// The model of the first network: [`PlasticityConfig::model`], without LayerNorm
    /// unless `plain_norm`.
    pub fn plain_model(&self) -> MlpConfig {
        MlpConfig {
            norm: self.plain_norm,
            ..self.model()
        }
    }
}

/// The networks of the plasticity demo, in order: AdamW without NaP, AdamW with
/// NaP, adamw_sf with NaP and the window.
pub const PLASTICITY_NETS: [&str; 3] = ["plain", "nap", "nap_sf"];

struct Lane {
    net: LiveNet,
    /// Evaluates x (the export buffer) rather than y: the Schedule-Free network.
    at_x: bool,
    lr: f64,
    eval: MlpGraph,
    tasks: wgpu::Buffer,
}

/// Three networks on the same continual stream, the same batches and the same
/// initialization.
pub struct Plasticity {
    config: PlasticityConfig,
    stream: Continual,
    data: Classification,
    lanes: Vec<Lane>,
    rng: Rng,
    steps: u64,
    read_from: u64,
}

impl Demo for Plasticity {
    type Config = PlasticityConfig;
    type Parts = PlasticityParts;

    fn parse_config(json: &str) -> Result<PlasticityConfig> {
        PlasticityConfig::parse(json)
    }

    /// Builds the networks and the stream.
    fn new(gpu: &Gpu, config: &PlasticityConfig) -> Result<Plasticity> {
        config.validate()?;
        let stream = Continual::new(&digits(), config.inputs, config.task_steps, config.seed);
        let data = stream.task_data(0);
        let lanes = PLASTICITY_NETS
            .iter()
            .map(|&name| {
                let (opt, at_x) = if name == "nap_sf" {
                    let mut opt = OptimConfig::new(Kind::AdamwSf).with_lr(config.sf_lr);
                    opt.sf_window = config.sf_window;
                    opt.betas = Some([config.sf_beta, opt.betas().1]);
                    (opt, true)
                } else {
                    (OptimConfig::new(Kind::Adamw).with_lr(config.lr), false)
                };
                let (model, nap) = if name == "plain" {
                    (config.plain_model(), false)
                } else {
                    (config.model(), true)
                };
                let net = LiveNet::new(gpu, &model, &opt, nap, config.batch, config.seed)?;
                let eval = net.eval_graph(gpu, at_x, data.len())?;
                let tasks = gpu.storage("live tasks", STATS * MAX_TASKS as u64);
                let lr = opt.lr();
                Ok(Lane {
                    net,
                    at_x,
                    lr,
                    eval,
                    tasks,
                })
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

    fn config(&self) -> &PlasticityConfig {
        &self.config
    }

    /// Steps taken (by each network).
    fn steps(&self) -> u64 {
        self.steps
    }

    /// Submits `n` steps of every network; at the end of each task, evaluates each on
    /// all inputs with the task's labels, at x (no readback).
    fn step(&mut self, gpu: &Gpu, n: u32) -> Result<()> {
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
                let at = STATS * (task % MAX_TASKS as u64);
                gpu.submit(|enc| {
                    for lane in &self.lanes {
                        if lane.at_x {
                            lane.net.record_export(enc);
                        }
                        record_forward(enc, &[&lane.eval]);
                        enc.copy_buffer_to_buffer(lane.eval.loss().stats(), 0, &lane.tasks, at, STATS);
                    }
                });
            }
        }
        Ok(())
    }

    /// Reads back every network's per-step stats since the last snapshot, end-of-task
    /// stats and hidden weights.
    fn request_snapshot(&mut self, gpu: &Gpu) -> Request<PlasticityParts> {
        let steps = steps_since(&mut self.read_from, self.steps, HISTORY);
        let done = self.steps / self.config.task_steps;
        let tasks = done.saturating_sub(MAX_TASKS as u64)..done;
        let layers = self.config.model().hidden.len();
        Request::submit(gpu, |_, readback| PlasticityParts {
            nets: self
                .lanes
                .iter()
                .map(|lane| NetParts {
                    history: lane.net.add_history(readback, steps.clone()),
                    tasks: readback.add_values::<LossStats>(&lane.tasks, 0, MAX_TASKS),
                    // Each network's own layout: the plain one has biases where the others have norms.
                    hidden: (0..layers)
                        .map(|i| {
                            let arena = lane.net.arena();
                            let s = arena
                                .layout
                                .slot(&format!("l{i}.weight"))
                                .expect("hidden weights exist");
                            readback.add_values::<f32>(&arena.params, s.offset, s.len)
                        })
                        .collect(),
                    lr: lane.lr,
                })
                .collect(),
            tasks,
            task_steps: self.config.task_steps,
        })
    }
}

/// Where a plasticity snapshot's pieces lie in its readback.
pub struct PlasticityParts {
    nets: Vec<NetParts>,
    tasks: Range<u64>,
    task_steps: u64,
}

/// Where one network's pieces lie.
struct NetParts {
    history: History,
    tasks: Part,
    hidden: Vec<Part>,
    lr: f64,
}

impl Unpack for PlasticityParts {
    type Snapshot = PlasticitySnapshot;

    fn unpack(self, packed: &Packed) -> PlasticitySnapshot {
        let steps = self.nets[0].history.steps.clone();
        let nets = PLASTICITY_NETS
            .iter()
            .zip(self.nets)
            .map(|(&name, net)| {
                let (train_loss, train_acc) = net.history.unpack(packed);
                let task_acc = ring_entries(&packed.values::<LossStats>(net.tasks), self.tasks.clone())
                    .map(|s| accuracy(&s) as f32)
                    .collect();
                let norms: Vec<f64> = net
                    .hidden
                    .iter()
                    .map(|&part| {
                        packed
                            .values::<f32>(part)
                            .iter()
                            .map(|&w| (w as f64).powi(2))
                            .sum::<f64>()
                            .sqrt()
                    })
                    .collect();
                // Adam on a scale-invariant weight: the angular step is lr / ||W||.
                let effective_lr = norms.iter().map(|n| net.lr / n.max(1e-12)).collect();
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
        PlasticitySnapshot {
            step: steps.end,
            history_from: steps.start,
            tasks_from: self.tasks.start,
            task_steps: self.task_steps,
            nets,
        }
    }
}

/// The plasticity networks at one moment.
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
    /// `plain`, `nap` or `nap_sf`.
    pub name: String,
    /// Mean batch loss of each step since the last snapshot.
    pub train_loss: Vec<f32>,
    /// Batch accuracy of each of those steps.
    pub train_acc: Vec<f32>,
    /// Accuracy on all inputs with the task's labels at the end of every finished task.
    pub task_acc: Vec<f32>,
    /// Frobenius norm of each hidden weight (at y) now.
    pub norms: Vec<f64>,
    /// lr / norm of each hidden weight: the angular step size Adam takes on it.
    pub effective_lr: Vec<f64>,
}

impl PlasticitySnapshot {
    /// The snapshot of network `name`.
    pub fn net(&self, name: &str) -> Result<&NetSnapshot> {
        self.nets
            .iter()
            .find(|n| n.name == name)
            .ok_or_else(|| Error::invalid("net", format!("no network `{name}` in the snapshot")))
    }
}
