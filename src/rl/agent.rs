//! A DQN-family agent whose whole loop runs on the device: epsilon-greedy
//! actions from the online Q-network at x (the optimizer's evaluation
//! weights), the environments' steps, the replay
//! buffer's writes and samples, Double-DQN targets from a target network, the
//! Huber loss, the backward pass and any sfnap optimizer's step (with NaP when
//! asked), recorded many agent steps to a submission. Metrics (episode
//! returns, the loss, the optimizer's health flags) come back asynchronously.

use super::episodes::{Episode, EpisodeLog};
use super::epsilon::{act, ActDesc, Epsilon};
use super::qnet::QNet;
use super::replay_buffer::{ReplayBuffer, StoreDesc};
use super::td_loss::{TdLoss, TdLossDesc};
use super::variant::{observe, Variant};
use super::VecEnv;
use std::path::Path;

use crate::arena::Arena;
use crate::checkpoint::Loaded;
use crate::error::{Error, Result};
use crate::gpu::readback::AsyncReadback;
use crate::gpu::{Dispatch, Gpu};
use crate::model::mlp::MlpConfig;
use crate::model::{Model, Weights};
use crate::optim::{GpuOptimizer, Health, OptimConfig, PlusState, XExport, RING};

/// Most agent steps recorded into one submission.
pub const STEPS_PER_SUBMIT: u64 = 16;

/// Everything that defines an agent's run (stored in its checkpoints; a resume
/// must match it).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// The environments.
    pub variant: Variant,
    /// Environments stepped together.
    pub envs: usize,
    /// The Q-network's hidden widths.
    pub hidden: Vec<usize>,
    /// A LayerNorm before each ReLU (else a plain MLP with biases).
    pub norm: bool,
    /// Normalize-and-Project after each optimizer step.
    pub nap: bool,
    /// The optimizer.
    pub optimizer: OptimConfig,
    /// The discount.
    pub gamma: f64,
    /// What the rewards are multiplied by before they enter the replay buffer
    /// (the Q-values' scale; the reported returns are the environments').
    pub reward_scale: f64,
    /// Transitions per minibatch.
    pub batch: usize,
    /// Transitions the replay buffer holds.
    pub buffer: usize,
    /// Agent steps before the first learn step.
    pub learning_starts: u64,
    /// Learn steps per agent step once learning has started.
    pub updates: u64,
    /// Learn steps between two copies of x into the target network.
    pub target_every: u64,
    /// The exploration schedule.
    pub epsilon: Epsilon,
    /// Agent steps per level (`continual-cartpole`) or block (`sequential`).
    pub switch_every: u64,
    /// Seed of the network's initialization, the environments and the draws.
    pub seed: u64,
}

impl AgentConfig {
    /// The Q-network's shape.
    pub fn model(&self) -> MlpConfig {
        MlpConfig {
            input: self.variant.input(),
            hidden: self.hidden.clone(),
            classes: self.variant.head(),
            norm: self.norm,
        }
    }

    /// Checks every setting, naming the first that is wrong.
    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("envs", self.envs as u64),
            ("batch", self.batch as u64),
            ("buffer", self.buffer as u64),
            ("updates", self.updates),
            ("target-every", self.target_every),
            ("switch-every", self.switch_every),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(Error::invalid(*name, "must be at least 1"));
        }
        if self.hidden.is_empty() || self.hidden.contains(&0) {
            return Err(Error::invalid(
                "hidden",
                "needs at least one layer, each at least 1 wide",
            ));
        }
        if self.nap && !self.norm {
            return Err(Error::invalid(
                "nap",
                "projects the weights that a LayerNorm follows: refused with --no-norm",
            ));
        }
        if !(self.reward_scale.is_finite() && self.reward_scale > 0.0) {
            return Err(Error::invalid(
                "reward-scale",
                format!("{} must be positive and finite", self.reward_scale),
            ));
        }
        if !(0.0..=1.0).contains(&self.gamma) {
            return Err(Error::invalid("gamma", format!("{} must lie in [0, 1]", self.gamma)));
        }
        if self.updates > RING as u64 {
            return Err(Error::invalid(
                "updates",
                format!("{} learn steps per agent step: at most {RING}", self.updates),
            ));
        }
        if self.switch_every > u64::from(u32::MAX) {
            return Err(Error::invalid("switch-every", format!("at most {}", u32::MAX)));
        }
        self.epsilon.validate()?;
        self.optimizer.validate()
    }

    /// Agent steps in one submission: at most [`STEPS_PER_SUBMIT`], and at most
    /// the optimizer's ring of per-step scalars.
    pub fn steps_per_submit(&self) -> u64 {
        STEPS_PER_SUBMIT.min(RING as u64 / self.updates).max(1)
    }

    /// Learn steps after `t` agent steps.
    pub fn learn_steps(&self, t: u64) -> u64 {
        t.saturating_sub(self.learning_starts) * self.updates
    }
}

/// One environment's dispatches of an agent step.
struct EnvPass {
    observe: Dispatch,
    act: Dispatch,
    store: Dispatch,
    episodes: Dispatch,
}

/// What a background readback holds.
#[derive(Debug, Clone, Copy)]
enum Probe {
    /// The mean loss of the last learn step before agent step `.0`.
    Loss(u64),
    Plus,
    Health,
    Episodes,
}

/// The metrics read back by one call of [`Agent::run`] or [`Agent::finish`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Readings {
    /// The episodes that ended, in order.
    pub episodes: Vec<Episode>,
    /// (agent steps, mean loss of the last learn step by then).
    pub losses: Vec<(u64, f64)>,
}

/// A DQN agent on the device (see the module documentation). Built fresh by
/// [`Agent::new`], or from a checkpoint's buffers ([`Agent::buffers`] lists
/// what to save and restore).
pub struct Agent {
    cfg: AgentConfig,
    envs: Vec<VecEnv>,
    arena: Arena,
    opt: GpuOptimizer,
    target: wgpu::Buffer,
    target_export: XExport,
    x: wgpu::Buffer,
    x_export: XExport,
    clock: wgpu::Buffer,
    running: Vec<wgpu::Buffer>,
    log: EpisodeLog,
    replay: ReplayBuffer,
    act_net: QNet,
    online: QNet,
    online_next: QNet,
    target_net: QNet,
    td: TdLoss,
    passes: Vec<EnvPass>,
    sample: Dispatch,
    readback: AsyncReadback<Probe>,
    plus_state: Option<PlusState>,
    steps: u64,
    /// The buffers that keep the offsets and the acting input alive.
    _inputs: [wgpu::Buffer; 2],
}

impl Agent {
    /// Builds the agent of `cfg`: the Q-network initialized from the seed, the
    /// target network a copy of it, the environments at the start of their
    /// first episodes, the replay buffer empty.
    pub fn new(gpu: &Gpu, cfg: &AgentConfig) -> Result<Agent> {
        cfg.validate()?;
        let model = cfg.model();
        let (input, head) = (model.input, model.classes);
        let arena = Arena::new(gpu, &model.tensors(), None)?;
        model.initialize(gpu, &arena, cfg.seed)?;
        let nap = cfg.nap.then(|| model.nap_groups());
        let opt = GpuOptimizer::new(gpu, &arena, &cfg.optimizer, nap.as_ref())?;
        let envs = cfg
            .variant
            .kinds()
            .iter()
            .map(|&k| VecEnv::new(gpu, k, cfg.envs, cfg.seed))
            .collect::<Result<Vec<_>>>()?;
        let clock = gpu.storage("dqn clock", 16);
        let offsets = gpu.storage_init("dqn offsets", &cfg.variant.offsets(cfg.seed));
        let net_in = gpu.storage("dqn acting input", (cfg.envs * input * 4) as u64);
        let running = envs
            .iter()
            .map(|_| gpu.storage("dqn running returns", (cfg.envs * 8) as u64))
            .collect::<Vec<_>>();
        let log = EpisodeLog::new(gpu, cfg.envs * cfg.steps_per_submit() as usize);
        let replay = ReplayBuffer::new(gpu, cfg.buffer, input, cfg.envs, cfg.batch)?;
        let target = gpu.storage("target network", arena.layout.bytes());
        let x = gpu.storage("x export", arena.layout.bytes());
        let target_export = opt.x_export(gpu, &arena, &target)?;
        let x_export = opt.x_export(gpu, &arena, &x)?;
        let train = Weights::train(&arena);
        let x_weights = Weights {
            arena: &arena,
            values: &x,
        };
        let act_net = QNet::new(gpu, &model, x_weights, &net_in, cfg.envs)?;
        let online = QNet::new(gpu, &model, train, replay.batch_obs(), cfg.batch)?;
        let online_next = QNet::new(gpu, &model, train, replay.batch_next(), cfg.batch)?;
        let target_weights = Weights {
            arena: &arena,
            values: &target,
        };
        let target_net = QNet::new(gpu, &model, target_weights, replay.batch_next(), cfg.batch)?;
        let td = TdLoss::new(
            gpu,
            &TdLossDesc {
                rows: cfg.batch,
                head,
                gamma: cfg.gamma,
                info: replay.batch_info(),
                q: online.q(),
                q_next: online_next.q(),
                q_target: target_net.q(),
                dq: online.dq(),
                clock: &clock,
            },
        )?;
        let levels = (cfg.variant.levels(), cfg.switch_every);
        let passes = envs
            .iter()
            .zip(&running)
            .map(|(env, running)| {
                let valid = env.kind().actions();
                Ok(EnvPass {
                    observe: observe(gpu, env, input, levels, &clock, &offsets, &net_in)?,
                    act: act(
                        gpu,
                        &ActDesc {
                            n: cfg.envs,
                            valid,
                            head: head as u32,
                            epsilon: cfg.epsilon,
                            seed: cfg.seed,
                            clock: &clock,
                            q: act_net.q(),
                            actions: env.actions(),
                        },
                    )?,
                    store: replay.store(
                        gpu,
                        &StoreDesc {
                            obs_dim: env.kind().obs_dim(),
                            valid,
                            levels: levels.0 as u32,
                            switch_every: levels.1 as u32,
                            reward_scale: cfg.reward_scale as f32,
                            clock: &clock,
                            obs: &net_in,
                            next_obs: env.next_obs(),
                            offsets: &offsets,
                            actions: env.actions(),
                            reward: env.reward(),
                            done: env.done(),
                        },
                    )?,
                    episodes: log.dispatch(gpu, env, &clock, running)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let sample = replay.sample(gpu, cfg.seed, &clock)?;
        gpu.submit(|enc| {
            let mut pass = enc.begin_compute_pass(&Default::default());
            for env in &envs {
                env.record_reset(&mut pass);
            }
            drop(pass);
            target_export.record(enc);
        });
        Ok(Agent {
            cfg: cfg.clone(),
            envs,
            arena,
            opt,
            target,
            target_export,
            x,
            x_export,
            clock,
            running,
            log,
            replay,
            act_net,
            online,
            online_next,
            target_net,
            td,
            passes,
            sample,
            readback: AsyncReadback::default(),
            plus_state: None,
            steps: 0,
            _inputs: [offsets, net_in],
        })
    }

    /// The configuration.
    pub fn config(&self) -> &AgentConfig {
        &self.cfg
    }

    /// Agent steps taken (recorded) so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// The Q-network's arena (its parameters hold y).
    pub fn arena(&self) -> &Arena {
        &self.arena
    }

    /// The optimizer.
    pub fn optimizer(&self) -> &GpuOptimizer {
        &self.opt
    }

    /// The environments (one per kind of the variant).
    pub fn envs(&self) -> &[VecEnv] {
        &self.envs
    }

    /// The replay buffer.
    pub fn replay(&self) -> &ReplayBuffer {
        &self.replay
    }

    /// The clock: 4 u32, agent steps and learn steps taken on the device.
    pub fn clock(&self) -> &wgpu::Buffer {
        &self.clock
    }

    /// The buffer x is exported into ([`Agent::export_x`]).
    pub fn x(&self) -> &wgpu::Buffer {
        &self.x
    }

    /// Writes x (the weights to evaluate and ship) into [`Agent::x`] and waits.
    pub fn export_x(&self, gpu: &Gpu) -> Result<()> {
        gpu.submit(|enc| self.x_export.record(enc));
        gpu.wait()
    }

    /// Every device buffer of the agent's state beyond the arena and the
    /// optimizer, by name: what a checkpoint keeps so that a resumed run
    /// continues bit for bit (the rest is rewritten before it is read).
    pub fn buffers(&self) -> Vec<(String, &wgpu::Buffer)> {
        let mut v = vec![
            ("target".to_string(), &self.target),
            ("clock".to_string(), &self.clock),
            ("replay".to_string(), self.replay.rows()),
        ];
        for ((env, running), kind) in self.envs.iter().zip(&self.running).zip(self.cfg.variant.kinds()) {
            let k = kind.name();
            v.push((format!("{k}.state"), env.state()));
            v.push((format!("{k}.clock"), env.clock()));
            v.push((format!("{k}.obs"), env.obs()));
            v.push((format!("{k}.running"), running));
        }
        v
    }

    /// Continues after `steps` agent steps: writes the checkpoint `loaded`
    /// (read from `path`) into the arena and the optimizer; the buffers of
    /// [`Agent::buffers`] must be written back by the caller.
    pub fn resume(&mut self, gpu: &Gpu, loaded: Loaded, path: &Path, steps: u64) -> Result<()> {
        loaded.apply(path, gpu, &self.arena, &mut self.opt)?;
        self.steps = steps;
        Ok(())
    }

    /// Records and submits `count` agent steps (at most
    /// [`AgentConfig::steps_per_submit`]) with the metrics' readbacks, and
    /// takes in the readbacks that have finished. Nothing waits for the device.
    pub fn run(&mut self, gpu: &Gpu, count: u64) -> Result<Readings> {
        let limit = self.cfg.steps_per_submit();
        if count == 0 || count > limit {
            return Err(Error::invalid(
                "steps",
                format!("{count} agent steps in one submission: from 1 to {limit}"),
            ));
        }
        let cfg = &self.cfg;
        let mut learned = false;
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        for _ in 0..count {
            let t = self.steps;
            let k = cfg.variant.active(t, cfg.switch_every);
            self.x_export.record(&mut enc);
            {
                let p = &self.passes[k];
                let mut pass = enc.begin_compute_pass(&Default::default());
                p.observe.record(&mut pass);
                self.act_net.record_forward(&mut pass);
                p.act.record(&mut pass);
                self.envs[k].record_step(&mut pass);
                p.store.record(&mut pass);
                p.episodes.record(&mut pass);
            }
            self.steps += 1;
            if t < cfg.learning_starts {
                continue;
            }
            learned = true;
            for _ in 0..cfg.updates {
                {
                    let mut pass = enc.begin_compute_pass(&Default::default());
                    self.sample.record(&mut pass);
                    self.online.record_forward(&mut pass);
                    self.online_next.record_forward(&mut pass);
                    self.target_net.record_forward(&mut pass);
                    self.td.record(&mut pass);
                }
                if let Some(dst) = self.opt.loss_buffer() {
                    enc.copy_buffer_to_buffer(self.td.stats(), 0, dst, 0, 4);
                }
                self.online
                    .record_backward(&mut enc.begin_compute_pass(&Default::default()));
                self.opt.record_step(gpu, &mut enc)?;
                if self.opt.steps().is_multiple_of(cfg.target_every) {
                    self.target_export.record(&mut enc);
                }
            }
        }
        if let Some(plus) = self.opt.plus_state_buffer() {
            let bytes = std::mem::size_of::<PlusState>() as u64;
            self.readback.record(gpu, &mut enc, plus, bytes, Probe::Plus);
        }
        let health = std::mem::size_of::<Health>() as u64;
        self.readback
            .record(gpu, &mut enc, self.opt.health_buffer(), health, Probe::Health);
        if learned {
            self.readback
                .record(gpu, &mut enc, self.td.stats(), 4, Probe::Loss(self.steps));
        }
        self.readback
            .record(gpu, &mut enc, self.log.buffer(), self.log.bytes(), Probe::Episodes);
        self.log.record_clear(&mut enc);
        gpu.queue.submit([enc.finish()]);
        self.opt.submitted();
        self.readback.submitted();
        let ready = self.readback.poll(gpu)?;
        self.absorb(ready)
    }

    /// Waits for every pending readback and returns what they hold.
    pub fn finish(&mut self, gpu: &Gpu) -> Result<Readings> {
        let ready = self.readback.finish(gpu)?;
        self.absorb(ready)
    }

    /// The readbacks' contents; device flags that report a problem stop the run.
    fn absorb(&mut self, ready: Vec<(Probe, Vec<u8>)>) -> Result<Readings> {
        let mut out = Readings::default();
        for (probe, bytes) in ready {
            match probe {
                Probe::Loss(step) => {
                    let loss = f64::from(bytemuck::pod_read_unaligned::<f32>(&bytes[..4]));
                    if !loss.is_finite() {
                        return Err(Error::Numerical(format!(
                            "the TD loss after {step} agent steps is {loss}; the run stopped (lower the learning rate)"
                        )));
                    }
                    out.losses.push((step, loss));
                }
                Probe::Plus => self.plus_state = Some(PlusState::from_bytes(&bytes)),
                Probe::Health => Health::first_error(self.plus_state.take().as_ref(), &Health::from_bytes(&bytes))?,
                Probe::Episodes => out.episodes.extend(EpisodeLog::parse(&bytes)),
            }
        }
        Ok(out)
    }
}
