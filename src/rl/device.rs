//! Many environments of one kind stepped by one dispatch
//! (`shaders/rl.wgsl` with `shaders/cartpole.wgsl` or `shaders/acrobot.wgsl`).

use super::{philox, Kind, TERMINATED, TRUNCATED};
use crate::error::{Error, Result};
use crate::gpu::buffers::whole;
use crate::gpu::{Dispatch, Gpu, PackedReadback, Recorder};

/// Environments per workgroup (`ENV_WG` in `shaders/rl.wgsl`).
const ENV_WG: usize = 64;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct EnvParams {
    n: u32,
    key: [u32; 2],
    pad: u32,
}

/// `n` environments of one [`Kind`] on the device. Every step reads each
/// environment's action from [`VecEnv::actions`] and writes
/// [`VecEnv::next_obs`], [`VecEnv::reward`] and [`VecEnv::done`]; an
/// environment whose episode ended starts its next one in the same step, so
/// [`VecEnv::obs`] always holds what to act on next. Nothing waits for the host:
/// record [`VecEnv::record_reset`] once, then [`VecEnv::record_step`] as often
/// as needed, between the dispatches that choose the actions.
///
/// Buffers, row `i` for environment `i`: `state` (4 f32), `clock` (2 u32: steps
/// in the episode, the episode from 0), `actions` (u32), `obs` and `next_obs`
/// ([`Kind::obs_dim`] f32), `reward` (f32), `done` ([`TERMINATED`] |
/// [`TRUNCATED`], or 0).
pub struct VecEnv {
    kind: Kind,
    n: usize,
    state: wgpu::Buffer,
    clock: wgpu::Buffer,
    actions: wgpu::Buffer,
    obs: wgpu::Buffer,
    next_obs: wgpu::Buffer,
    reward: wgpu::Buffer,
    done: wgpu::Buffer,
    reset: Dispatch,
    step: Dispatch,
}

impl VecEnv {
    /// `n` environments of `kind` whose episodes start from draws under `seed`
    /// (environment `i`'s episode `e` from the draw [`Kind::start_of`] makes).
    /// Nothing is recorded yet: the environments start at the first
    /// [`VecEnv::record_reset`].
    pub fn new(gpu: &Gpu, kind: Kind, n: usize, seed: u64) -> Result<VecEnv> {
        let groups = n.div_ceil(ENV_WG);
        let max_groups = gpu.limits.max_compute_workgroups_per_dimension as usize;
        if n == 0 || groups > max_groups {
            return Err(Error::invalid(
                "envs",
                format!("{n} environments: must be from 1 to {}", max_groups * ENV_WG),
            ));
        }
        let row_bytes = |values: usize| (n * values * 4) as u64;
        let widest = row_bytes(kind.obs_dim().max(4));
        if widest > gpu.limits.max_storage_buffer_binding_size {
            return Err(Error::invalid(
                "envs",
                format!(
                    "{n} environments need {widest}-byte buffers, over the device's max_storage_buffer_binding_size {}",
                    gpu.limits.max_storage_buffer_binding_size
                ),
            ));
        }
        let params = gpu.uniform(
            "env params",
            &EnvParams {
                n: n as u32,
                key: philox::key(seed),
                pad: 0,
            },
        );
        let state = gpu.storage("env state", row_bytes(4));
        let clock = gpu.storage("env clock", row_bytes(2));
        let actions = gpu.storage("env actions", row_bytes(1));
        let obs = gpu.storage("env obs", row_bytes(kind.obs_dim()));
        let next_obs = gpu.storage("env next_obs", row_bytes(kind.obs_dim()));
        let reward = gpu.storage("env reward", row_bytes(1));
        let done = gpu.storage("env done", row_bytes(1));
        let resources = [
            (0, whole(&params)),
            (1, whole(&state)),
            (2, whole(&clock)),
            (3, whole(&actions)),
            (4, whole(&obs)),
            (5, whole(&next_obs)),
            (6, whole(&reward)),
            (7, whole(&done)),
        ];
        let grid = [groups as u32, 1, 1];
        let file = kind.kernel_file();
        let reset = gpu.dispatch(file, "env_reset", &resources, grid)?;
        let step = gpu.dispatch(file, "env_step", &resources, grid)?;
        Ok(VecEnv {
            kind,
            n,
            state,
            clock,
            actions,
            obs,
            next_obs,
            reward,
            done,
            reset,
            step,
        })
    }

    /// Which environment.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// How many environments.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Always false: a vector holds at least one environment.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Records the start of every environment's episode 0.
    pub fn record_reset(&self, rec: &mut dyn Recorder) {
        rec.dispatch(&self.reset);
    }

    /// Records one step of every environment under the actions in
    /// [`VecEnv::actions`].
    pub fn record_step(&self, rec: &mut dyn Recorder) {
        rec.dispatch(&self.step);
    }

    /// The states (4 f32 per environment).
    pub fn state(&self) -> &wgpu::Buffer {
        &self.state
    }

    /// Per environment: steps taken in its episode and the episode (2 u32).
    pub fn clock(&self) -> &wgpu::Buffer {
        &self.clock
    }

    /// The actions the next step takes (a u32 per environment, below
    /// [`Kind::actions`]), written by the agent or [`VecEnv::write_actions`].
    pub fn actions(&self) -> &wgpu::Buffer {
        &self.actions
    }

    /// The observations to act on next.
    pub fn obs(&self) -> &wgpu::Buffer {
        &self.obs
    }

    /// The observations the last step reached (an ended episode's last).
    pub fn next_obs(&self) -> &wgpu::Buffer {
        &self.next_obs
    }

    /// The last step's rewards (f32).
    pub fn reward(&self) -> &wgpu::Buffer {
        &self.reward
    }

    /// The last step's done flags ([`TERMINATED`] | [`TRUNCATED`], or 0).
    pub fn done(&self) -> &wgpu::Buffer {
        &self.done
    }

    /// Writes the actions of the next step from the host (one per environment).
    pub fn write_actions(&self, gpu: &Gpu, actions: &[u32]) -> Result<()> {
        if actions.len() != self.n {
            return Err(Error::invalid(
                "actions",
                format!("{} actions for {} environments", actions.len(), self.n),
            ));
        }
        if let Some(a) = actions.iter().find(|&&a| a >= self.kind.actions()) {
            return Err(Error::invalid(
                "actions",
                format!(
                    "action {a}: {} has actions 0 to {}",
                    self.kind.name(),
                    self.kind.actions() - 1
                ),
            ));
        }
        gpu.queue.write_buffer(&self.actions, 0, bytemuck::cast_slice(actions));
        Ok(())
    }

    /// Every buffer, read back in one transfer once the device is done.
    pub async fn snapshot_async(&self, gpu: &Gpu) -> Result<Snapshot> {
        let n = self.n;
        let d = self.kind.obs_dim();
        let mut packed = PackedReadback::default();
        let parts = [
            packed.add_values::<f32>(&self.state, 0, 4 * n),
            packed.add_values::<u32>(&self.clock, 0, 2 * n),
            packed.add_values::<f32>(&self.obs, 0, d * n),
            packed.add_values::<f32>(&self.next_obs, 0, d * n),
            packed.add_values::<f32>(&self.reward, 0, n),
            packed.add_values::<u32>(&self.done, 0, n),
        ];
        let pending = gpu.submit(|enc| packed.record(gpu, enc));
        let read = pending.read(gpu).await?;
        let [state, clock, obs, next_obs, reward, done] = parts;
        Ok(Snapshot {
            obs_dim: d,
            state: read.values(state),
            clock: read.values(clock),
            obs: read.values(obs),
            next_obs: read.values(next_obs),
            reward: read.values(reward),
            done: read.values(done),
        })
    }

    /// [`VecEnv::snapshot_async`], waiting for the device (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn snapshot(&self, gpu: &Gpu) -> Result<Snapshot> {
        pollster::block_on(self.snapshot_async(gpu))
    }
}

/// A [`VecEnv`]'s buffers on the host.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Numbers per observation.
    pub obs_dim: usize,
    /// 4 per environment.
    pub state: Vec<f32>,
    /// 2 per environment: steps in the episode, the episode.
    pub clock: Vec<u32>,
    /// The observations to act on next.
    pub obs: Vec<f32>,
    /// The observations the last step reached.
    pub next_obs: Vec<f32>,
    /// The last step's rewards.
    pub reward: Vec<f32>,
    /// The last step's done flags.
    pub done: Vec<u32>,
}

impl Snapshot {
    /// Environment `i`'s state.
    pub fn state_of(&self, i: usize) -> [f32; 4] {
        std::array::from_fn(|k| self.state[4 * i + k])
    }

    /// Environment `i`'s observation to act on next.
    pub fn obs_of(&self, i: usize) -> &[f32] {
        &self.obs[i * self.obs_dim..(i + 1) * self.obs_dim]
    }

    /// Environment `i`'s observation reached by the last step.
    pub fn next_obs_of(&self, i: usize) -> &[f32] {
        &self.next_obs[i * self.obs_dim..(i + 1) * self.obs_dim]
    }

    /// Whether environment `i`'s last step terminated its episode.
    pub fn terminated(&self, i: usize) -> bool {
        self.done[i] & TERMINATED != 0
    }

    /// Whether environment `i`'s last step truncated its episode.
    pub fn truncated(&self, i: usize) -> bool {
        self.done[i] & TRUNCATED != 0
    }
}
