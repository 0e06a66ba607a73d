//! The update-functions demo (`web/update.html`): one MLP on two spirals, trained
//! from the same start on the same batches by each chosen optimizer (AdamW with a
//! schedule, adamw_sf, sf_plus, each with or without NaP). A snapshot freezes every
//! optimizer's state as it is on the device, takes the next batch's gradient at y,
//! and sweeps the gradient `g` of one element of one weight: the change the next
//! step would make to that element's x, y and z as a function of `g`, and its slope
//! at `g = 0` (the effective learning rate).
//!
//! Nothing here restates an optimizer: the state comes back through
//! [`GpuOptimizer::record_state_readback`](sfnap::optim::GpuOptimizer::record_state_readback)
//! and every value of the functions from the library's f64 reference
//! ([`UpdateFunctions`]). Each snapshot also keeps what it froze ([`Frozen`]), so the
//! browser test can recompute the drawn functions natively
//! (`web/examples/update_check.rs`).

use serde::{Deserialize, Serialize};
use sfnap::data::spirals::{spirals, with_constant_input};
use sfnap::data::{Classification, Rng};
use sfnap::gpu::{Gpu, Packed, PackedReadback, PendingRead};
use sfnap::model::mlp::MlpConfig;
use sfnap::model::{Graph, Inputs, Model};
use sfnap::optim::reference::{GroupState, ReferenceState};
use sfnap::optim::state_readback::StateReadback;
use sfnap::optim::update_function::{linspace, Update, UpdateFunctions};
use sfnap::optim::{Kind, OptimConfig};
use sfnap::{Error, Result};

use super::spirals::spirals_model;
use super::{check_counts, check_optimizer, parse_json, sample, History, LiveNet, HISTORY};
use crate::demo::steps_since;
use crate::race::ScheduleKind;

/// The optimizers of the update-functions demo, in display order.
pub const UPDATE_OPTIMIZERS: [&str; 3] = ["adamw", "adamw_sf", "sf_plus"];

/// Gradients in a sweep (odd: `g = 0` is one of them).
pub const SWEEP_POINTS: usize = 81;

/// The learning rate each optimizer starts with in this demo.
pub fn update_default_lr(optimizer: &str) -> f64 {
    match optimizer {
        "sf_plus" => 0.1,
        _ => 0.01,
    }
}

/// One network of the demo: its optimizer, learning rate and NaP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpdateNet {
    /// One of [`UPDATE_OPTIMIZERS`].
    pub optimizer: String,
    /// Learning rate (`None`: [`update_default_lr`]; sf_plus: the multiplier of its Polyak step).
    pub lr: Option<f64>,
    /// Normalize-and-Project on the hidden layers.
    pub nap: bool,
}

impl Default for UpdateNet {
    fn default() -> Self {
        UpdateNet {
            optimizer: "adamw_sf".into(),
            lr: None,
            nap: false,
        }
    }
}

/// What the update-functions demo trains and sweeps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpdateConfig {
    /// The networks, one per chosen optimizer (1 to 6).
    pub nets: Vec<UpdateNet>,
    /// AdamW's schedule.
    pub schedule: ScheduleKind,
    /// Warmup steps of AdamW's schedule and of adamw_sf.
    pub warmup_steps: u64,
    /// The length of AdamW's schedule: its learning rate reaches 0 there.
    pub total_steps: u64,
    /// The weight (tensor) whose element is swept.
    pub tensor: String,
    /// The element of `tensor`.
    pub index: usize,
    /// The sweep covers `g` in ± `span` times the element's gradient scale
    /// ([`ElementUpdate::scale`](sfnap::optim::update_function::ElementUpdate::scale)).
    pub span: f64,
    /// Width of each of the two hidden layers.
    pub hidden: usize,
    /// Rows per training batch.
    pub batch: usize,
    /// Training points.
    pub train_points: usize,
    /// Noise of the points.
    pub noise: f64,
    /// Seed of data, initialization (the same for every network) and batches.
    pub seed: u64,
}

impl Default for UpdateConfig {
    fn default() -> Self {
        UpdateConfig {
            nets: UPDATE_OPTIMIZERS
                .iter()
                .map(|o| UpdateNet {
                    optimizer: o.to_string(),
                    ..UpdateNet::default()
                })
                .collect(),
            schedule: ScheduleKind::Cosine,
            warmup_steps: 50,
            total_steps: 1500,
            tensor: "l1.weight".into(),
            // Input 1 to unit 5 (row-major [in, out]): a live one at the default seed, where
            // a unit whose ReLU never fires gets a gradient of 0 at every step.
            index: 37,
            span: 30.0,
            hidden: 32,
            batch: 64,
            train_points: 512,
            noise: 0.03,
            seed: 1,
        }
    }
}

impl UpdateConfig {
    /// Parses a config JSON (missing fields take their defaults) and checks it.
    pub fn parse(json: &str) -> Result<UpdateConfig> {
        let c: UpdateConfig = parse_json(json)?;
        c.validate()?;
        Ok(c)
    }

    /// Checks the fields; errors name the field.
    pub fn validate(&self) -> Result<()> {
        if self.nets.is_empty() || self.nets.len() > 6 {
            return Err(Error::invalid(
                "nets",
                format!("{} networks: pick 1 to 6 optimizers", self.nets.len()),
            ));
        }
        for (i, net) in self.nets.iter().enumerate() {
            check_optimizer(&format!("nets[{i}].optimizer"), &net.optimizer, &UPDATE_OPTIMIZERS)?;
        }
        check_counts(&[
            ("hidden", self.hidden, 1024),
            ("batch", self.batch, 4096),
            ("train_points", self.train_points, 65536),
        ])?;
        if !(self.span > 0.0 && self.span.is_finite()) {
            return Err(Error::invalid("span", format!("{}: must be positive", self.span)));
        }
        if !(self.noise >= 0.0 && self.noise.is_finite()) {
            return Err(Error::invalid("noise", format!("{}: must be non-negative", self.noise)));
        }
        if self.total_steps <= self.warmup_steps {
            return Err(Error::invalid(
                "total_steps",
                format!(
                    "{}: the schedule must be longer than its warmup ({})",
                    self.total_steps, self.warmup_steps
                ),
            ));
        }
        let model = self.model();
        let tensors = model.tensors();
        match tensors.iter().find(|t| t.name == self.tensor) {
            None => Err(Error::invalid(
                "tensor",
                format!(
                    "no weight `{}` (the model's: {})",
                    self.tensor,
                    tensors.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", ")
                ),
            )),
            Some(t) if self.index >= t.shape.iter().product() => Err(Error::invalid(
                "index",
                format!(
                    "{} is past the end of `{}` ({} elements)",
                    self.index,
                    self.tensor,
                    t.shape.iter().product::<usize>()
                ),
            )),
            Some(_) => Ok(()),
        }
    }

    /// The optimizer config of `net`.
    pub fn optim(&self, net: &UpdateNet) -> Result<OptimConfig> {
        let kind = Kind::parse(&net.optimizer)?;
        let lr = net.lr.unwrap_or_else(|| update_default_lr(&net.optimizer));
        let mut c = OptimConfig::new(kind).with_lr(lr);
        match kind {
            Kind::Adamw => c.schedule = self.schedule.schedule(self.warmup_steps, self.total_steps),
            Kind::SfPlus => {}
            _ => c.warmup_steps = self.warmup_steps,
        }
        c.validate()?;
        Ok(c)
    }

    /// The model: the spirals demo's ([`spirals_model`]) of the hidden width.
    pub fn model(&self) -> MlpConfig {
        spirals_model(self.hidden)
    }
}

/// The update-functions demo: a network per chosen optimizer, the data and the
/// next batch (the one the sweep's gradient comes from, trained on next).
pub struct UpdateDemo {
    config: UpdateConfig,
    nets: Vec<LiveNet>,
    /// Every network's NaP groups with their norms (empty without NaP).
    groups: Vec<Vec<GroupState>>,
    train_data: Classification,
    rng: Rng,
    next: (Vec<f32>, Vec<u32>),
    read_from: u64,
}

impl UpdateDemo {
    /// Builds the networks (from the same initial weights) and the data, and reads
    /// back each NaP network's group norms.
    pub async fn new(gpu: &Gpu, config: &UpdateConfig) -> Result<UpdateDemo> {
        config.validate()?;
        let model = config.model();
        let mut nets = Vec::new();
        let mut groups = Vec::new();
        for net in &config.nets {
            let live = LiveNet::new(gpu, &model, &config.optim(net)?, net.nap, config.batch, config.seed)?;
            let report = live.opt.nap_report_async(gpu).await?;
            groups.push(
                report
                    .into_iter()
                    .map(|g| GroupState {
                        tensors: g.tensors,
                        rho: g.rho,
                    })
                    .collect(),
            );
            nets.push(live);
        }
        let train_data = with_constant_input(&spirals(config.train_points, config.noise, config.seed));
        let mut rng = Rng::new(config.seed ^ 0xba7c4);
        let next = sample(&train_data, config.batch, &mut rng);
        Ok(UpdateDemo {
            config: config.clone(),
            nets,
            groups,
            train_data,
            rng,
            next,
            read_from: 0,
        })
    }

    /// [`UpdateDemo::new`], waiting for the device (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new_blocking(gpu: &Gpu, config: &UpdateConfig) -> Result<UpdateDemo> {
        pollster::block_on(UpdateDemo::new(gpu, config))
    }

    /// The config.
    pub fn config(&self) -> &UpdateConfig {
        &self.config
    }

    /// Steps taken (by every network).
    pub fn steps(&self) -> u64 {
        self.nets.first().map_or(0, LiveNet::steps)
    }

    /// Submits `n` training steps of every network on the same batches (no readback).
    pub fn step(&mut self, gpu: &Gpu, n: u32) -> Result<()> {
        for _ in 0..n {
            let next = sample(&self.train_data, self.config.batch, &mut self.rng);
            let (x, t) = std::mem::replace(&mut self.next, next);
            for net in &mut self.nets {
                net.step(gpu, x.clone(), &t)?;
            }
        }
        Ok(())
    }

    /// Records, for every network, the next batch's forward and backward pass at y
    /// (its gradient, and for sf_plus its loss, where the optimizer's step would
    /// read them), then the copies of the optimizer's state and gradient, with the
    /// per-step training losses since the last snapshot; submits.
    pub fn request_snapshot(&mut self, gpu: &Gpu) -> Result<UpdateRequest> {
        let now = self.steps();
        let steps = steps_since(&mut self.read_from, now, HISTORY);
        let (x, t) = &self.next;
        for net in &self.nets {
            net.train.write_batch(gpu, &Inputs::Features(x.clone()), t)?;
        }
        gpu.submit(|enc| {
            let mut readback = PackedReadback::default();
            let mut states = Vec::new();
            let mut histories = Vec::new();
            for (net, groups) in self.nets.iter().zip(&self.groups) {
                {
                    let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                        label: Some("update probe forward"),
                        timestamp_writes: None,
                    });
                    net.train.record_forward(&mut pass);
                }
                if let Some(dst) = net.opt.loss_buffer() {
                    net.train.loss().record_copy_mean(enc, dst, 0);
                }
                {
                    let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                        label: Some("update probe backward"),
                        timestamp_writes: None,
                    });
                    net.train.record_backward(&mut pass);
                }
                states.push(net.opt.record_state_readback(gpu, &net.arena, groups.clone(), enc)?);
                histories.push(net.add_history(&mut readback, steps.clone()));
            }
            Ok(UpdateRequest {
                pending: readback.record(gpu, enc),
                histories,
                states,
                config: self.config.clone(),
                step: steps.end,
                history_from: steps.start,
            })
        })
    }

    /// [`UpdateDemo::request_snapshot`], then [`UpdateRequest::read`], waiting for the device (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn snapshot(&mut self, gpu: &Gpu) -> Result<(UpdateSnapshot, Vec<Frozen>)> {
        let request = self.request_snapshot(gpu)?;
        pollster::block_on(request.read(gpu))
    }

    /// Every network's optimizer state as it is on the device now (native only, for the tests).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn device_states(&self, gpu: &Gpu) -> Result<Vec<ReferenceState>> {
        self.nets
            .iter()
            .map(|net| Ok(net.opt.device_state(gpu, &net.arena)?.state))
            .collect()
    }
}

/// A snapshot submitted to the device, to be read back and swept.
pub struct UpdateRequest {
    pending: PendingRead,
    histories: Vec<History>,
    states: Vec<StateReadback>,
    config: UpdateConfig,
    step: u64,
    history_from: u64,
}

impl UpdateRequest {
    /// Reads the losses and states back and computes every network's update
    /// functions; returns the snapshot and what it froze.
    pub async fn read(self, gpu: &Gpu) -> Result<(UpdateSnapshot, Vec<Frozen>)> {
        let packed: Packed = self.pending.read(gpu).await?;
        let cfg = &self.config;
        let mut nets = Vec::new();
        let mut frozen = Vec::new();
        for ((history, readback), net) in self.histories.into_iter().zip(self.states).zip(&cfg.nets) {
            let (train_loss, _) = history.unpack(&packed);
            let device = readback.read(gpu).await?;
            let f = Frozen {
                optimizer: net.optimizer.clone(),
                nap: net.nap,
                tensor: cfg.tensor.clone(),
                index: cfg.index,
                span: cfg.span,
                state: device.state,
                grads: device.grads,
                loss: device.loss,
            };
            nets.push(UpdateNetSnapshot {
                train_loss,
                functions: f.sweep()?,
            });
            frozen.push(f);
        }
        let snapshot = UpdateSnapshot {
            step: self.step,
            history_from: self.history_from,
            tensor: cfg.tensor.clone(),
            index: cfg.index,
            nets,
        };
        Ok((snapshot, frozen))
    }
}

/// One network's optimizer frozen at a snapshot: everything its update
/// functions are computed from (what the browser test recomputes natively).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Frozen {
    /// The optimizer.
    pub optimizer: String,
    /// Whether the network has NaP.
    pub nap: bool,
    /// The swept weight.
    pub tensor: String,
    /// Its element.
    pub index: usize,
    /// The sweep's half-width in gradient scales.
    pub span: f64,
    /// The optimizer's state as read back from the device.
    pub state: ReferenceState,
    /// The next batch's gradient of every parameter, at y.
    pub grads: Vec<Vec<f64>>,
    /// sf_plus: the next batch's loss at y.
    pub loss: Option<f64>,
}

impl Frozen {
    /// The update functions: the sweep's gradients ([`SWEEP_POINTS`] over ± `span`
    /// gradient scales), the changes of x, y and z at each, at 0 and at the
    /// element's own gradient, and the slope at 0.
    pub fn sweep(&self) -> Result<NetUpdate> {
        let functions = UpdateFunctions::new(self.state.clone(), Some(self.grads.clone()), self.loss)?;
        let element = functions.element(&self.tensor, self.index)?;
        let g_max = self.span * element.scale();
        let gs = linspace(-g_max, g_max, SWEEP_POINTS);
        let sweep = element.sweep(&gs)?;
        Ok(NetUpdate {
            optimizer: self.optimizer.clone(),
            nap: self.nap,
            scale: element.scale(),
            x: sweep.iter().map(|u| u.x).collect(),
            y: sweep.iter().map(|u| u.y).collect(),
            z: sweep.iter().map(|u| u.z).collect(),
            g: gs,
            zero: element.at(0.0)?,
            actual: element.at(element.before().g)?,
            slope: element.slope()?,
        })
    }
}

/// One network's update functions at a snapshot.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NetUpdate {
    /// The optimizer.
    pub optimizer: String,
    /// Whether the network has NaP.
    pub nap: bool,
    /// The element's gradient scale.
    pub scale: f64,
    /// The sweep's gradients.
    pub g: Vec<f64>,
    /// The change of the element's x at each gradient of `g`.
    pub x: Vec<f64>,
    /// The change of its y.
    pub y: Vec<f64>,
    /// The change of its z.
    pub z: Vec<f64>,
    /// The changes at `g = 0`.
    pub zero: Update,
    /// The changes at the element's gradient from the next batch (`g`): the step the network takes next.
    pub actual: Update,
    /// The slopes d change / d g at `g = 0`.
    pub slope: Update,
}

/// One network at a snapshot: its training losses and update functions (one JSON object).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UpdateNetSnapshot {
    /// Mean training-batch loss (at y) of each step since the last snapshot.
    pub train_loss: Vec<f32>,
    /// The update functions.
    #[serde(flatten)]
    pub functions: NetUpdate,
}

/// Every network's update functions at one moment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UpdateSnapshot {
    /// Steps taken.
    pub step: u64,
    /// The step of every network's `train_loss[0]`.
    pub history_from: u64,
    /// The swept weight.
    pub tensor: String,
    /// Its element.
    pub index: usize,
    /// The networks, in the config's order.
    pub nets: Vec<UpdateNetSnapshot>,
}
