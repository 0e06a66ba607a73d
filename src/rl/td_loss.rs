//! The Double-DQN temporal-difference loss (`shaders/dqn.wgsl`'s `td_rows`
//! and `td_mean`).

use super::params::{groups, DqnParams};
use super::replay_buffer::INFO;
use crate::error::{Error, Result};
use crate::gpu::buffers::whole;
use crate::gpu::{Dispatch, Gpu, Recorder};

/// The buffers of a [`TdLoss`].
pub struct TdLossDesc<'a> {
    /// Batch rows.
    pub rows: usize,
    /// Q-values per row (the network's outputs).
    pub head: usize,
    /// The discount.
    pub gamma: f64,
    /// Per row the replay buffer's [`INFO`] numbers: action, reward, terminated, valid actions; read.
    pub info: &'a wgpu::Buffer,
    /// The online network's Q at the observations `[rows, head]`; read.
    pub q: &'a wgpu::Buffer,
    /// The online network's Q at the next observations; read.
    pub q_next: &'a wgpu::Buffer,
    /// The target network's Q at the next observations; read.
    pub q_target: &'a wgpu::Buffer,
    /// The gradient with respect to `q`; written.
    pub dq: &'a wgpu::Buffer,
    /// The agent's clock, whose learn steps `td_mean` advances.
    pub clock: &'a wgpu::Buffer,
}

/// Per row, the target y = r + gamma Q_target(s', a*) with a* the valid action
/// of largest online Q(s') (the lowest among ties), or y = r when the step
/// terminated its episode (a truncated one bootstraps); the Huber loss of
/// d = Q(s, a) - y (d^2 / 2 within 1, |d| - 1/2 beyond) and its gradient
/// clamp(d, -1, 1) / rows at Q(s, a) (0 at the other actions); then the mean
/// loss, summed in row order, into [`TdLoss::stats`], and the clock's learn
/// steps advanced.
pub struct TdLoss {
    dispatches: [Dispatch; 2],
    losses: wgpu::Buffer,
    stats: wgpu::Buffer,
}

impl TdLoss {
    /// Builds the two dispatches over `d`'s buffers.
    pub fn new(gpu: &Gpu, d: &TdLossDesc<'_>) -> Result<TdLoss> {
        if d.rows == 0 || d.head < 2 || d.head > 16 {
            return Err(Error::invalid(
                "td_loss",
                format!("{} rows of {} actions: needs a row and 2 to 16 actions", d.rows, d.head),
            ));
        }
        if !(0.0..=1.0).contains(&d.gamma) {
            return Err(Error::invalid("gamma", format!("{} must lie in [0, 1]", d.gamma)));
        }
        let need = (d.rows * d.head * 4) as u64;
        for (name, b) in [("q", d.q), ("q_next", d.q_next), ("q_target", d.q_target), ("dq", d.dq)] {
            if b.size() < need {
                return Err(Error::invalid(
                    format!("td_loss.{name}"),
                    format!("{} bytes, {need} needed", b.size()),
                ));
            }
        }
        if d.info.size() < (d.rows * INFO * 4) as u64 {
            return Err(Error::invalid("td_loss.info", "smaller than the batch's rows"));
        }
        let params = gpu.uniform(
            "dqn td",
            &DqnParams {
                n: d.rows as u32,
                head: d.head as u32,
                gamma: d.gamma as f32,
                ..DqnParams::new()
            },
        );
        let losses = gpu.storage("td losses", (d.rows * 4) as u64);
        let stats = gpu.storage("td stats", 16);
        let rows = gpu.dispatch(
            "dqn",
            "td_rows",
            &[
                (0, whole(&params)),
                (5, whole(d.q)),
                (12, whole(d.info)),
                (13, whole(d.q_next)),
                (14, whole(d.q_target)),
                (15, whole(d.dq)),
                (16, whole(&losses)),
            ],
            groups(d.rows),
        )?;
        let mean = gpu.dispatch(
            "dqn",
            "td_mean",
            &[
                (0, whole(&params)),
                (1, whole(d.clock)),
                (16, whole(&losses)),
                (17, whole(&stats)),
            ],
            [1, 1, 1],
        )?;
        Ok(TdLoss {
            dispatches: [rows, mean],
            losses,
            stats,
        })
    }

    /// Records the rows' losses and gradients, then the mean.
    pub fn record(&self, rec: &mut dyn Recorder) {
        for d in &self.dispatches {
            rec.dispatch(d);
        }
    }

    /// Per-row losses `[rows]`.
    pub fn losses(&self) -> &wgpu::Buffer {
        &self.losses
    }

    /// 4 f32: the last mean loss, then zeros (sf_plus's loss F is its first element).
    pub fn stats(&self) -> &wgpu::Buffer {
        &self.stats
    }
}
