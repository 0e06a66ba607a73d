//! Episode returns kept on the device (`shaders/dqn.wgsl`'s `episodes`): each
//! environment's running return and length, and a log of the episodes that
//! ended, which the host reads back with the metrics and then clears.

use super::params::DqnParams;
use super::{Kind, VecEnv};
use crate::error::Result;
use crate::gpu::buffers::whole;
use crate::gpu::{Dispatch, Gpu};

/// One ended episode.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Episode {
    /// Its return (the sum of its rewards, in f32, in step order).
    pub ret: f32,
    /// Its steps.
    pub length: u32,
    /// The agent step it ended in (0-based).
    pub step: u32,
    /// Its environment's number ([`super::Kind::ALL`]'s index).
    pub kind: u32,
}

/// The episode log: `capacity` entries of 4 u32 after a header of 4 u32 whose
/// first is the count.
pub struct EpisodeLog {
    capacity: usize,
    log: wgpu::Buffer,
}

impl EpisodeLog {
    /// A log of `capacity` episodes (what it holds between two clears: every
    /// environment can end an episode in every agent step).
    pub fn new(gpu: &Gpu, capacity: usize) -> EpisodeLog {
        EpisodeLog {
            capacity,
            log: gpu.storage("episode log", (4 + 4 * capacity) as u64 * 4),
        }
    }

    /// The log's buffer.
    pub fn buffer(&self) -> &wgpu::Buffer {
        &self.log
    }

    /// Bytes of the whole log.
    pub fn bytes(&self) -> u64 {
        self.log.size()
    }

    /// Records emptying the log (its count set to 0).
    pub fn record_clear(&self, enc: &mut wgpu::CommandEncoder) {
        enc.clear_buffer(&self.log, 0, Some(16));
    }

    /// The episodes of a log read back.
    pub fn parse(bytes: &[u8]) -> Vec<Episode> {
        let words: Vec<u32> = bytemuck::pod_collect_to_vec(bytes);
        let count = words.first().copied().unwrap_or(0) as usize;
        (0..count.min(words.len().saturating_sub(4) / 4))
            .map(|j| {
                let e = &words[4 + 4 * j..8 + 4 * j];
                Episode {
                    ret: f32::from_bits(e[0]),
                    length: e[1],
                    step: e[2],
                    kind: e[3],
                }
            })
            .collect()
    }

    /// The dispatch that, after a step of `env`, adds each reward to its
    /// environment's running return in `running` (2 f32 per environment:
    /// return, length), logs each episode that ended, and advances the clock's
    /// agent steps.
    pub fn dispatch(&self, gpu: &Gpu, env: &VecEnv, clock: &wgpu::Buffer, running: &wgpu::Buffer) -> Result<Dispatch> {
        let kind = Kind::ALL.iter().position(|&k| k == env.kind()).unwrap_or(0) as u32;
        let n = env.len();
        let params = gpu.uniform(
            "dqn episodes",
            &DqnParams {
                n: n as u32,
                capacity: self.capacity as u32,
                kind,
                ..DqnParams::new()
            },
        );
        gpu.dispatch(
            "dqn",
            "episodes",
            &[
                (0, whole(&params)),
                (1, whole(clock)),
                (7, whole(env.reward())),
                (8, whole(env.done())),
                (18, whole(running)),
                (19, whole(&self.log)),
            ],
            [1, 1, 1],
        )
    }
}
