//! Epsilon-greedy actions on the device (`shaders/dqn.wgsl`'s `act`).

use super::params::{groups, DqnParams};
use crate::error::{Error, Result};
use crate::gpu::buffers::whole;
use crate::gpu::{Dispatch, Gpu};

/// Epsilon, linear in the agent step from `start` to `end` over `decay_steps`
/// steps, then `end`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Epsilon {
    /// Epsilon at agent step 0.
    pub start: f64,
    /// Epsilon from `decay_steps` on.
    pub end: f64,
    /// Agent steps of the decay (at least 1).
    pub decay_steps: u64,
}

impl Epsilon {
    /// Epsilon at agent step `t`, in f64.
    pub fn at(&self, t: u64) -> f64 {
        let frac = (1.0 - t as f64 / self.decay_steps as f64).max(0.0);
        self.end + (self.start - self.end) * frac
    }

    /// Checks that both ends lie in [0, 1] and the decay takes at least a step
    /// (and fits the kernel's u32).
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [("eps-start", self.start), ("eps-end", self.end)] {
            if !(0.0..=1.0).contains(&v) {
                return Err(Error::invalid(name, format!("{v} must lie in [0, 1]")));
            }
        }
        if self.decay_steps == 0 || self.decay_steps > u64::from(u32::MAX) {
            return Err(Error::invalid(
                "eps-decay",
                format!("{} must be from 1 to {}", self.decay_steps, u32::MAX),
            ));
        }
        Ok(())
    }
}

/// The buffers of [`act`].
pub struct ActDesc<'a> {
    /// Environments.
    pub n: usize,
    /// Valid actions (the first `valid` of the network's `head` outputs).
    pub valid: u32,
    /// The network's outputs per row.
    pub head: u32,
    /// The schedule.
    pub epsilon: Epsilon,
    /// The draws' seed.
    pub seed: u64,
    /// The agent's clock (4 u32: agent steps, learn steps); read.
    pub clock: &'a wgpu::Buffer,
    /// Q-values `[n, head]`; read.
    pub q: &'a wgpu::Buffer,
    /// The actions, a u32 per environment; written.
    pub actions: &'a wgpu::Buffer,
}

/// The dispatch that writes each environment's action at agent step t (the
/// clock's): with probability [`Epsilon::at`] t one uniform among the valid
/// actions, else the valid action of largest Q (the lowest among ties). The
/// draw is Philox's `[i, t, ACT, 0]` ([`super::philox::ACT`]): its first word
/// (as a uniform number u in [0, 1) of 24 bits) explores when u < epsilon,
/// its second picks the action, floor(u' valid).
pub fn act(gpu: &Gpu, d: &ActDesc<'_>) -> Result<Dispatch> {
    d.epsilon.validate()?;
    let params = gpu.uniform(
        "dqn act",
        &DqnParams {
            n: d.n as u32,
            valid: d.valid,
            head: d.head,
            key: super::philox::key(d.seed),
            eps_decay: d.epsilon.decay_steps as u32,
            eps_start: d.epsilon.start as f32,
            eps_end: d.epsilon.end as f32,
            ..DqnParams::new()
        },
    );
    gpu.dispatch(
        "dqn",
        "act",
        &[
            (0, whole(&params)),
            (1, whole(d.clock)),
            (5, whole(d.q)),
            (6, whole(d.actions)),
        ],
        groups(d.n),
    )
}
