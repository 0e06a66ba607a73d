//! What the agent learns on: one environment, or a non-stationary variant
//! (`continual-cartpole`, `sequential`), and the observation the network sees
//! (`shaders/dqn.wgsl`'s `observe`: offset and padded).

use super::params::{groups, DqnParams};
use super::{acrobot, cartpole, Kind, VecEnv};
use crate::data::Rng;
use crate::error::{Error, Result};
use crate::gpu::buffers::whole;
use crate::gpu::{Dispatch, Gpu};

/// Offset levels of `continual-cartpole`.
pub const LEVELS: usize = 10;
/// The standard deviation of `continual-cartpole`'s offsets.
pub const OFFSET_STD: f64 = 2.0;

/// The environments of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Variant {
    /// CartPole-v1.
    Cartpole,
    /// Acrobot-v1.
    Acrobot,
    /// CartPole-v1 whose observations carry one of ten fixed offsets, drawn
    /// from N(0, 2^2) per level and dimension, switched every `switch_every`
    /// agent steps (the levels cycle).
    ContinualCartpole,
    /// CartPole-v1 and Acrobot-v1 in alternating blocks of `switch_every`
    /// agent steps, one network for both.
    Sequential,
}

impl Variant {
    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Cartpole => "cartpole",
            Variant::Acrobot => "acrobot",
            Variant::ContinualCartpole => "continual-cartpole",
            Variant::Sequential => "sequential",
        }
    }

    /// The environments it steps (one at a time).
    pub fn kinds(self) -> &'static [Kind] {
        match self {
            Variant::Cartpole | Variant::ContinualCartpole => &[Kind::CartPole],
            Variant::Acrobot => &[Kind::Acrobot],
            Variant::Sequential => &[Kind::CartPole, Kind::Acrobot],
        }
    }

    /// Whether it changes every `switch_every` agent steps.
    pub fn switches(self) -> bool {
        matches!(self, Variant::ContinualCartpole | Variant::Sequential)
    }

    /// The network's input width: the widest observation (CartPole's four
    /// numbers are padded with zeros to Acrobot's six in `sequential`), then a
    /// constant 1. The 1 is the first layer's bias: its linear map has none,
    /// and the LayerNorm after it would otherwise see only the direction of
    /// the observation, not its size (how far the pole leans); with the 1 the
    /// weight stays one tensor that NaP keeps at its norm.
    pub fn input(self) -> usize {
        self.kinds().iter().map(|k| k.obs_dim()).max().unwrap_or(cartpole::OBS) + 1
    }

    /// The network's input for observation `obs` at offset level `level`, as
    /// `shaders/dqn.wgsl`'s `observe` writes it: each number plus the level's
    /// offset (in f32), zeros up to the widest observation, then 1.
    pub fn features(self, obs: &[f32], offsets: &[f32], level: usize) -> Vec<f32> {
        let input = self.input();
        (0..input)
            .map(|k| match obs.get(k) {
                _ if k + 1 == input => 1.0,
                Some(&o) => o + offsets[level * input + k],
                None => 0.0,
            })
            .collect()
    }

    /// The network's outputs: the most actions. In `sequential` CartPole's
    /// third output is masked: its actions are the first two, both when acting
    /// and in the targets' argmax.
    pub fn head(self) -> usize {
        self.kinds()
            .iter()
            .map(|k| k.actions() as usize)
            .max()
            .unwrap_or(acrobot::ACTIONS as usize)
    }

    /// Which of [`Variant::kinds`] runs at agent step `t`.
    pub fn active(self, t: u64, switch_every: u64) -> usize {
        match self {
            Variant::Sequential => ((t / switch_every) % 2) as usize,
            _ => 0,
        }
    }

    /// The offset level at agent step `t` (0 for the variants without levels).
    pub fn level(self, t: u64, switch_every: u64) -> u64 {
        match self {
            Variant::ContinualCartpole => (t / switch_every) % LEVELS as u64,
            _ => 0,
        }
    }

    /// Offset levels (1 for the variants without offsets).
    pub fn levels(self) -> usize {
        match self {
            Variant::ContinualCartpole => LEVELS,
            _ => 1,
        }
    }

    /// The offsets, [`Variant::levels`] rows of [`Variant::input`] f32: for
    /// `continual-cartpole` each level's offset per observation dimension,
    /// N(0, [`OFFSET_STD`]^2) from the generator seeded `seed`, level after
    /// level (0 in the padding); zeros for the others.
    pub fn offsets(self, seed: u64) -> Vec<f32> {
        let (levels, input) = (self.levels(), self.input());
        let mut rng = Rng::new(seed);
        let mut v = vec![0.0f32; levels * input];
        if self == Variant::ContinualCartpole {
            for level in 0..levels {
                for k in 0..cartpole::OBS {
                    v[level * input + k] = (OFFSET_STD * rng.normal()) as f32;
                }
            }
        }
        v
    }
}

impl std::fmt::Display for Variant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The network's input for acting: the dispatch that writes `env`'s
/// observations, each plus the offset of level (t / switch_every) mod levels
/// (t the clock's agent step), padded with zeros to `input` and ended by a 1
/// ([`Variant::features`]), into `net_in`.
pub fn observe(
    gpu: &Gpu,
    env: &VecEnv,
    input: usize,
    (levels, switch_every): (usize, u64),
    clock: &wgpu::Buffer,
    offsets: &wgpu::Buffer,
    net_in: &wgpu::Buffer,
) -> Result<Dispatch> {
    if env.kind().obs_dim() >= input {
        return Err(Error::invalid(
            "input",
            "must hold the environment's observation and the constant 1",
        ));
    }
    let params = gpu.uniform(
        "dqn observe",
        &DqnParams {
            n: env.len() as u32,
            input: input as u32,
            obs_dim: env.kind().obs_dim() as u32,
            levels: levels as u32,
            switch_every: switch_every as u32,
            ..DqnParams::new()
        },
    );
    gpu.dispatch(
        "dqn",
        "observe",
        &[
            (0, whole(&params)),
            (1, whole(clock)),
            (2, whole(env.obs())),
            (3, whole(offsets)),
            (4, whole(net_in)),
        ],
        groups(env.len()),
    )
}
