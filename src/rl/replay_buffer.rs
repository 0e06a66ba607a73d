//! The replay buffer in device memory: a circular buffer of transitions that
//! `shaders/dqn.wgsl`'s `store` writes from the environments' buffers, and the
//! minibatches its `sample` draws.

use super::params::{groups, DqnParams};
use crate::error::{Error, Result};
use crate::gpu::buffers::whole;
use crate::gpu::{Dispatch, Gpu};

/// f32 per transition beyond the two observations: the action, the reward, 1
/// if the step terminated its episode (else 0), the number of valid actions.
pub const INFO: usize = 4;

/// `capacity` transitions of observations `input` wide, row `j` at
/// `j * stride` f32 ([`ReplayBuffer::stride`]): the observation, the next
/// observation, then [`INFO`]'s four numbers (small integers exact in f32,
/// the reward as the environment gave it times a scale).
/// An agent step of `envs` environments writes rows `(t envs + i) mod
/// capacity`; a batch of `batch` rows is drawn into [`ReplayBuffer::batch_obs`],
/// [`ReplayBuffer::batch_next`] and [`ReplayBuffer::batch_info`].
pub struct ReplayBuffer {
    capacity: usize,
    input: usize,
    envs: usize,
    batch: usize,
    rows: wgpu::Buffer,
    batch_obs: wgpu::Buffer,
    batch_next: wgpu::Buffer,
    batch_info: wgpu::Buffer,
}

/// The buffers a [`ReplayBuffer::store`] reads.
pub struct StoreDesc<'a> {
    /// The environment's observation width (below the buffer's input width,
    /// whose last column is the constant 1).
    pub obs_dim: usize,
    /// The environment's valid actions.
    pub valid: u32,
    /// Offset levels: `levels` rows of `input` f32 in `offsets`.
    pub levels: u32,
    /// Agent steps per offset level.
    pub switch_every: u32,
    /// What the rewards are multiplied by (the replay rows' scale of values).
    pub reward_scale: f32,
    /// The agent's clock (agent step t); read.
    pub clock: &'a wgpu::Buffer,
    /// The observations acted on, `[envs, input]` (offset and padded); read.
    pub obs: &'a wgpu::Buffer,
    /// The environments' `next_obs` `[envs, obs_dim]`; read.
    pub next_obs: &'a wgpu::Buffer,
    /// The offsets; read.
    pub offsets: &'a wgpu::Buffer,
    /// The actions taken; read.
    pub actions: &'a wgpu::Buffer,
    /// The rewards; read.
    pub reward: &'a wgpu::Buffer,
    /// The done flags; read.
    pub done: &'a wgpu::Buffer,
}

impl ReplayBuffer {
    /// A buffer of `capacity` rows for `envs` environments and batches of
    /// `batch` rows, observations `input` wide. `capacity * envs` must fit a u32
    /// (the kernels' row arithmetic), the rows one storage binding.
    pub fn new(gpu: &Gpu, capacity: usize, input: usize, envs: usize, batch: usize) -> Result<ReplayBuffer> {
        if capacity == 0 || batch == 0 || envs == 0 {
            return Err(Error::invalid(
                "buffer",
                "capacity, environments and batch must be positive",
            ));
        }
        if (capacity as u64) * (envs as u64) > u64::from(u32::MAX) {
            return Err(Error::invalid(
                "buffer",
                format!("{capacity} rows times {envs} environments must stay below 2^32"),
            ));
        }
        let stride = 2 * input + INFO;
        let bytes = (capacity * stride * 4) as u64;
        let limit = gpu.limits.max_storage_buffer_binding_size;
        if bytes > limit {
            return Err(Error::invalid(
                "buffer",
                format!(
                    "{capacity} transitions take {bytes} bytes, over the device's max_storage_buffer_binding_size {limit}: at most {} fit",
                    limit / (stride as u64 * 4)
                ),
            ));
        }
        Ok(ReplayBuffer {
            capacity,
            input,
            envs,
            batch,
            rows: gpu.storage("replay rows", bytes),
            batch_obs: gpu.storage("replay batch obs", (batch * input * 4) as u64),
            batch_next: gpu.storage("replay batch next", (batch * input * 4) as u64),
            batch_info: gpu.storage("replay batch info", (batch * INFO * 4) as u64),
        })
    }

    /// f32 per row: `2 * input + INFO`.
    pub fn stride(&self) -> usize {
        2 * self.input + INFO
    }

    /// Rows.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The rows (`capacity * stride` f32).
    pub fn rows(&self) -> &wgpu::Buffer {
        &self.rows
    }

    /// The batch's observations `[batch, input]`.
    pub fn batch_obs(&self) -> &wgpu::Buffer {
        &self.batch_obs
    }

    /// The batch's next observations `[batch, input]`.
    pub fn batch_next(&self) -> &wgpu::Buffer {
        &self.batch_next
    }

    /// The batch's [`INFO`] numbers `[batch, 4]`.
    pub fn batch_info(&self) -> &wgpu::Buffer {
        &self.batch_info
    }

    /// The row that environment `env`'s transition of agent step `t` goes to.
    pub fn row_of(&self, t: u64, env: usize) -> usize {
        ((t as u128 * self.envs as u128 + env as u128) % self.capacity as u128) as usize
    }

    /// The row that batch row `b` of learn step `s` copies, after `t` agent
    /// steps: Philox's `[b, s, SAMPLE, 0]` first word w, times the rows written
    /// so far (at most the capacity), over 2^32.
    pub fn sampled_row(&self, seed: u64, t: u64, s: u32, b: u32) -> usize {
        let filled = (t * self.envs as u64).min(self.capacity as u64);
        let w = super::philox::philox([b, s, super::philox::SAMPLE, 0], super::philox::key(seed))[0];
        ((u64::from(w) * filled) >> 32) as usize
    }

    /// The dispatch that writes every environment's transition of agent step
    /// t (the clock's) to row [`ReplayBuffer::row_of`]: the observation acted
    /// on, the one reached with the same level's offset, the action, the reward
    /// times the scale, terminated (not truncated) and the valid actions.
    pub fn store(&self, gpu: &Gpu, d: &StoreDesc<'_>) -> Result<Dispatch> {
        if d.obs_dim >= self.input {
            return Err(Error::invalid(
                "obs_dim",
                format!(
                    "{} leaves no room for the constant 1 in the buffer's {}",
                    d.obs_dim, self.input
                ),
            ));
        }
        let params = gpu.uniform(
            "dqn store",
            &DqnParams {
                n: self.envs as u32,
                input: self.input as u32,
                obs_dim: d.obs_dim as u32,
                valid: d.valid,
                capacity: self.capacity as u32,
                levels: d.levels,
                switch_every: d.switch_every,
                reward_scale: d.reward_scale,
                ..DqnParams::new()
            },
        );
        gpu.dispatch(
            "dqn",
            "store",
            &[
                (0, whole(&params)),
                (1, whole(d.clock)),
                (2, whole(d.next_obs)),
                (3, whole(d.offsets)),
                (4, whole(d.obs)),
                (6, whole(d.actions)),
                (7, whole(d.reward)),
                (8, whole(d.done)),
                (9, whole(&self.rows)),
            ],
            groups(self.envs),
        )
    }

    /// The dispatch that draws learn step s's batch (s the clock's learn
    /// steps) into the batch buffers: row b copies [`ReplayBuffer::sampled_row`].
    pub fn sample(&self, gpu: &Gpu, seed: u64, clock: &wgpu::Buffer) -> Result<Dispatch> {
        let params = gpu.uniform(
            "dqn sample",
            &DqnParams {
                n: self.batch as u32,
                input: self.input as u32,
                capacity: self.capacity as u32,
                key: super::philox::key(seed),
                envs: self.envs as u32,
                ..DqnParams::new()
            },
        );
        gpu.dispatch(
            "dqn",
            "sample",
            &[
                (0, whole(&params)),
                (1, whole(clock)),
                (9, whole(&self.rows)),
                (10, whole(&self.batch_obs)),
                (11, whole(&self.batch_next)),
                (12, whole(&self.batch_info)),
            ],
            groups(self.batch),
        )
    }
}
