//! Reinforcement-learning environments that run as compute kernels, many per
//! dispatch ([`VecEnv`]), each with an f64 twin on the host ([`Twin`]): CartPole-v1
//! and Acrobot-v1 with Gymnasium's dynamics, resets, termination and 500-step
//! truncation (how they are verified: `docs/rl.md`).
//!
//! An environment's state is four numbers. A step reads each environment's
//! action from a device buffer and writes its observation, reward and done
//! flags (terminated and truncated apart) into device buffers; an episode that
//! ends starts the next one on the device, drawing its start from the
//! counter-based generator of [`philox`] under the environment's index and
//! episode number. So a training loop can record many steps without the host.
//!
//! `Agent` is a DQN-family agent whose whole loop runs on the device
//! (`agent`, native only, as are `run`, a run of it with outputs, checkpoints
//! and resume, and `watch`); [`Variant`] chooses its environments, the
//! non-stationary variants included.

pub mod acrobot;
#[cfg(not(target_arch = "wasm32"))]
pub mod agent;
pub mod cartpole;
mod device;
pub mod episodes;
pub mod epsilon;
mod params;
pub mod philox;
pub mod qnet;
pub mod replay_buffer;
#[cfg(not(target_arch = "wasm32"))]
pub mod run;
pub mod td_loss;
pub mod variant;
#[cfg(not(target_arch = "wasm32"))]
pub mod watch;

#[cfg(not(target_arch = "wasm32"))]
pub use agent::{Agent, AgentConfig};
pub use device::{Snapshot, VecEnv};
pub use variant::Variant;

/// Steps after which an episode is truncated (Gymnasium's `TimeLimit` for both
/// environments).
pub const MAX_STEPS: u32 = 500;
/// The done flag of a step that ended its episode by the environment's rule.
pub const TERMINATED: u32 = 1;
/// The done flag of a step that ended its episode at [`MAX_STEPS`] (both flags
/// can be set).
pub const TRUNCATED: u32 = 2;

/// Which environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Gymnasium's CartPole-v1 ([`cartpole`]).
    CartPole,
    /// Gymnasium's Acrobot-v1 ([`acrobot`]).
    Acrobot,
}

impl Kind {
    /// Both kinds.
    pub const ALL: [Kind; 2] = [Kind::CartPole, Kind::Acrobot];

    /// Gymnasium's id, e.g. `CartPole-v1`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::CartPole => "CartPole-v1",
            Kind::Acrobot => "Acrobot-v1",
        }
    }

    /// Numbers per observation.
    pub fn obs_dim(self) -> usize {
        match self {
            Kind::CartPole => cartpole::OBS,
            Kind::Acrobot => acrobot::OBS,
        }
    }

    /// Number of actions (actions are 0 to this, exclusive).
    pub fn actions(self) -> u32 {
        match self {
            Kind::CartPole => cartpole::ACTIONS,
            Kind::Acrobot => acrobot::ACTIONS,
        }
    }

    /// The kernel file of its device steps.
    pub(crate) fn kernel_file(self) -> &'static str {
        match self {
            Kind::CartPole => "cartpole",
            Kind::Acrobot => "acrobot",
        }
    }

    /// The start of an episode from four uniform numbers in [0, 1).
    pub fn start(self, u: [f64; 4]) -> [f64; 4] {
        match self {
            Kind::CartPole => cartpole::start(u),
            Kind::Acrobot => acrobot::start(u),
        }
    }

    /// The start of episode `episode` of environment `env` under `seed`: the
    /// draw the device makes for it.
    pub fn start_of(self, seed: u64, env: u32, episode: u32) -> [f64; 4] {
        self.start(philox::uniforms(seed, env, episode, philox::RESET))
    }

    /// Advances `state` by one step under `action`; returns the reward and
    /// whether the episode terminated.
    pub fn step(self, state: &mut [f64; 4], action: u32) -> (f64, bool) {
        let terminated = match self {
            Kind::CartPole => {
                cartpole::step(state, action);
                cartpole::terminated(state)
            }
            Kind::Acrobot => {
                acrobot::step(state, action);
                acrobot::terminated(state)
            }
        };
        let reward = match self {
            Kind::CartPole => cartpole::reward(terminated),
            Kind::Acrobot => acrobot::reward(terminated),
        };
        (reward, terminated)
    }

    /// The observation of `state`, rounded to f32 as Gymnasium's is.
    pub fn observation(self, state: &[f64; 4]) -> Vec<f32> {
        match self {
            Kind::CartPole => cartpole::observation(state),
            Kind::Acrobot => acrobot::observation(state),
        }
    }
}

/// What one step of one environment gave: the fields a [`VecEnv`] step writes.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// The observation the step reached (an ended episode's last).
    pub next_obs: Vec<f32>,
    /// The reward.
    pub reward: f64,
    /// [`TERMINATED`] and [`TRUNCATED`], or 0.
    pub done: u32,
    /// The observation to act on next: `next_obs`, or the next episode's first.
    pub obs: Vec<f32>,
}

/// The f64 twin of one environment of a [`VecEnv`]: the same episodes, steps,
/// truncation and auto-reset, with the starts drawn from the same counters.
#[derive(Debug, Clone, PartialEq)]
pub struct Twin {
    /// Which environment.
    pub kind: Kind,
    /// The seed of the draws.
    pub seed: u64,
    /// Its index in the vector of environments (its stream of draws).
    pub env: u32,
    /// The state.
    pub state: [f64; 4],
    /// Steps taken in the current episode.
    pub steps: u32,
    /// The current episode, from 0.
    pub episode: u32,
}

impl Twin {
    /// Environment `env` of a vector seeded `seed`, at the start of episode 0.
    pub fn new(kind: Kind, seed: u64, env: u32) -> Twin {
        Twin {
            kind,
            seed,
            env,
            state: kind.start_of(seed, env, 0),
            steps: 0,
            episode: 0,
        }
    }

    /// The observation of the current state.
    pub fn observation(&self) -> Vec<f32> {
        self.kind.observation(&self.state)
    }

    /// One step under `action`; an episode that ends is followed by the next
    /// one's start.
    pub fn step(&mut self, action: u32) -> Transition {
        let (reward, terminated) = self.kind.step(&mut self.state, action);
        self.steps += 1;
        let next_obs = self.observation();
        let done = if terminated { TERMINATED } else { 0 } | if self.steps >= MAX_STEPS { TRUNCATED } else { 0 };
        if done != 0 {
            self.episode += 1;
            self.steps = 0;
            self.state = self.kind.start_of(self.seed, self.env, self.episode);
        }
        Transition {
            next_obs,
            reward,
            done,
            obs: self.observation(),
        }
    }
}
