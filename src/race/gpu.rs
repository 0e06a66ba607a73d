//! The race on the device: every racer's points in one arena, stepped together with
//! no readback, and snapshots read back in one transfer.

use serde::Serialize;

use super::{RaceConfig, HISTORY};
use crate::arena::{Arena, TensorSpec, ALIGN};
use crate::error::{Error, Result};
use crate::gpu::buffers::whole;
use crate::gpu::{Dispatch, Gpu, KernelFile};
use crate::optim::GpuOptimizer;

/// WGSL `RaceInfo`.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct RaceInfo {
    n: u32,
    stride: u32,
    func: u32,
    hist_len: u32,
    noise: f32,
    xa: f32,
    xb: f32,
    seed: u32,
}

/// The race's kernel file (`shaders/race.wgsl`): its entry points and bindings.
pub fn kernels() -> KernelFile {
    KernelFile::with_prelude("race", include_str!("../../shaders/race.wgsl"))
        .entry("race_grad", &[0, 1, 2, 3, 4, 5])
        .entry("race_gather", &[0, 1, 6, 7])
}

/// One racer on the device: its arena, optimizer and the race kernels' bindings.
struct Lane {
    name: &'static str,
    opt: GpuOptimizer,
    grad: Dispatch,
    gather: Dispatch,
    history: wgpu::Buffer,
    packed: wgpu::Buffer,
}

/// A race on the GPU: every racer's points, stepped together.
pub struct Race {
    config: RaceConfig,
    lanes: Vec<Lane>,
    steps: u64,
    read_from: u64,
}

impl Race {
    /// Places every racer's points (at `config.starts()`) on `gpu` and prepares its optimizer.
    pub fn new(gpu: &Gpu, config: &RaceConfig) -> Result<Race> {
        config.validate()?;
        gpu.register_kernels(kernels())?;
        let n = config.points;
        let specs: Vec<TensorSpec> = (0..n).map(|i| TensorSpec::new(format!("p{i}"), &[2])).collect();
        let mut lanes = Vec::new();
        for (name, cfg) in config.optimizers() {
            let arena = Arena::new(gpu, &specs, None)?;
            // Every point is one tensor, ALIGN floats after the previous one.
            debug_assert!(arena
                .layout
                .slots
                .iter()
                .enumerate()
                .all(|(i, s)| s.offset == i * ALIGN));
            let mut initial = vec![0f32; arena.layout.total];
            for (i, p) in config.starts().iter().enumerate() {
                initial[i * ALIGN] = p[0] as f32;
                initial[i * ALIGN + 1] = p[1] as f32;
            }
            gpu.queue.write_buffer(&arena.params, 0, bytemuck::cast_slice(&initial));
            let opt = GpuOptimizer::new(gpu, &arena, &cfg, None)?;
            let (xa, xb, source) = opt.spec().x_from_y();
            let other = source.map_or(&arena.params, |s| opt.state(s).expect("the kind keeps it"));
            let info = gpu.uniform(
                "race info",
                &RaceInfo {
                    n: n as u32,
                    stride: ALIGN as u32,
                    func: config.function.id(),
                    hist_len: HISTORY as u32,
                    noise: config.noise as f32,
                    xa: xa as f32,
                    xb: xb as f32,
                    seed: config.seed,
                },
            );
            let own_loss = gpu.storage("race loss", 16);
            let loss = opt.loss_buffer().unwrap_or(&own_loss);
            let history = gpu.storage("race history", 4 * HISTORY as u64);
            let counter = gpu.storage("race counter", 16);
            let packed = gpu.storage("race packed", 16 * n as u64);
            // One workgroup sums the loss over every point; the gather is one invocation per point.
            let grad = gpu.dispatch(
                "race",
                "race_grad",
                &[
                    (0, whole(&info)),
                    (1, whole(&arena.params)),
                    (2, whole(&arena.grads)),
                    (3, whole(loss)),
                    (4, whole(&history)),
                    (5, whole(&counter)),
                ],
                [1, 1, 1],
            )?;
            let gather = gpu.dispatch(
                "race",
                "race_gather",
                &[
                    (0, whole(&info)),
                    (1, whole(&arena.params)),
                    (6, whole(other)),
                    (7, whole(&packed)),
                ],
                [n.div_ceil(64) as u32, 1, 1],
            )?;
            lanes.push(Lane {
                name,
                opt,
                grad,
                gather,
                history,
                packed,
            });
        }
        Ok(Race {
            config: config.clone(),
            lanes,
            steps: 0,
            read_from: 0,
        })
    }

    /// The config the race runs.
    pub fn config(&self) -> &RaceConfig {
        &self.config
    }

    /// Steps taken so far (by every racer).
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Records and submits `n` steps of every racer: per step, the gradient kernel and
    /// one optimizer step. No readback.
    pub fn step(&mut self, gpu: &Gpu, n: u32) -> Result<()> {
        let mut left = n as usize;
        while left > 0 {
            let batch = left.min(crate::optim::RING);
            let mut enc = gpu.device.create_command_encoder(&Default::default());
            for lane in &mut self.lanes {
                for _ in 0..batch {
                    {
                        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                            label: Some("race gradients"),
                            timestamp_writes: None,
                        });
                        lane.grad.record(&mut pass);
                    }
                    lane.opt.record_step(gpu, &mut enc)?;
                }
            }
            gpu.queue.submit([enc.finish()]);
            for lane in &mut self.lanes {
                lane.opt.submitted();
            }
            self.steps += batch as u64;
            left -= batch;
        }
        Ok(())
    }

    /// Packs every racer's y, x and the mean losses of the steps since the last
    /// snapshot into one buffer, and submits that; [`SnapshotRequest::read`] reads it
    /// back. The request owns what it reads, so stepping may go on meanwhile.
    pub fn request_snapshot(&mut self, gpu: &Gpu) -> SnapshotRequest {
        let n = self.config.points;
        let layout = SnapshotLayout {
            points: n,
            lanes: self.lanes.len(),
        };
        let buffer = gpu.storage("race snapshot", 4 * layout.floats() as u64);
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            for lane in &self.lanes {
                lane.gather.record(&mut pass);
            }
        }
        for (i, lane) in self.lanes.iter().enumerate() {
            let at = 4 * layout.lane_start(i) as u64;
            enc.copy_buffer_to_buffer(&lane.packed, 0, &buffer, at, 16 * n as u64);
            enc.copy_buffer_to_buffer(&lane.history, 0, &buffer, at + 16 * n as u64, 4 * HISTORY as u64);
        }
        gpu.queue.submit([enc.finish()]);
        let from = self.read_from.max(self.steps.saturating_sub(HISTORY as u64));
        self.read_from = self.steps;
        SnapshotRequest {
            buffer,
            layout,
            config: self.config.clone(),
            names: self.lanes.iter().map(|l| l.name).collect(),
            from,
            step: self.steps,
        }
    }

    /// [`Race::request_snapshot`], then [`SnapshotRequest::read`].
    pub async fn snapshot_async(&mut self, gpu: &Gpu) -> Result<Snapshot> {
        self.request_snapshot(gpu).read(gpu).await
    }

    /// [`Race::snapshot_async`], waiting for the device (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn snapshot(&mut self, gpu: &Gpu) -> Result<Snapshot> {
        pollster::block_on(self.snapshot_async(gpu))
    }
}

/// Where each racer's data lies in a snapshot buffer (in floats): n vec4s of
/// (y, x), then the history ring.
#[derive(Debug, Clone, Copy)]
struct SnapshotLayout {
    points: usize,
    lanes: usize,
}

impl SnapshotLayout {
    fn per_lane(&self) -> usize {
        4 * self.points + HISTORY
    }
    fn lane_start(&self, i: usize) -> usize {
        i * self.per_lane()
    }
    fn floats(&self) -> usize {
        self.lanes * self.per_lane()
    }
}

/// A snapshot submitted to the device, to be read back.
pub struct SnapshotRequest {
    buffer: wgpu::Buffer,
    layout: SnapshotLayout,
    config: RaceConfig,
    names: Vec<&'static str>,
    from: u64,
    step: u64,
}

impl SnapshotRequest {
    /// Reads the snapshot back (one readback for all racers).
    pub async fn read(self, gpu: &Gpu) -> Result<Snapshot> {
        let data: Vec<f32> = gpu.read_async(&self.buffer, 0, self.layout.floats()).await?;
        let n = self.layout.points;
        let racers = self
            .names
            .iter()
            .enumerate()
            .map(|(i, &name)| {
                let lane = &data[self.layout.lane_start(i)..][..self.layout.per_lane()];
                let (packed, ring) = lane.split_at(4 * n);
                let y: Vec<f32> = packed.chunks_exact(4).flat_map(|v| [v[0], v[1]]).collect();
                let x: Vec<f32> = packed.chunks_exact(4).flat_map(|v| [v[2], v[3]]).collect();
                RacerSnapshot {
                    name: name.to_string(),
                    loss_y: self.config.mean_value(&y),
                    loss_x: self.config.mean_value(&x),
                    y,
                    x,
                    history_from: self.from,
                    history: (self.from..self.step).map(|k| ring[k as usize % HISTORY]).collect(),
                }
            })
            .collect();
        Ok(Snapshot {
            step: self.step,
            racers,
        })
    }
}

/// Every racer's state at one moment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Snapshot {
    /// Steps taken.
    pub step: u64,
    /// One entry per racer, in [`RACERS`] order.
    pub racers: Vec<RacerSnapshot>,
}

/// One racer's state: positions and losses.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RacerSnapshot {
    /// The racer (a kind name).
    pub name: String,
    /// y (where gradients are taken) of every point, as flattened (a, b) pairs.
    pub y: Vec<f32>,
    /// x (the iterate to evaluate) of every point, as flattened pairs.
    pub x: Vec<f32>,
    /// The mean function value at y.
    pub loss_y: f64,
    /// The mean function value at x.
    pub loss_x: f64,
    /// The step of `history[0]`.
    pub history_from: u64,
    /// The mean loss at y of each step since the previous snapshot, computed on the device.
    pub history: Vec<f32>,
}

impl Snapshot {
    /// The snapshot as JSON (non-finite numbers as `null`).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a snapshot always serializes")
    }

    /// The snapshot of racer `name`.
    pub fn racer(&self, name: &str) -> Result<&RacerSnapshot> {
        self.racers
            .iter()
            .find(|r| r.name == name)
            .ok_or_else(|| Error::invalid("racer", format!("no racer `{name}` in the snapshot")))
    }
}
