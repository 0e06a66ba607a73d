//! The race on the device: every racer's points in one arena, stepped together with
//! no readback, and snapshots read back in one transfer.

use std::ops::Range;

use serde::Serialize;
use sfnap::arena::{Arena, TensorSpec, ALIGN};
use sfnap::gpu::buffers::whole;
use sfnap::gpu::{Dispatch, Gpu, KernelFile, Packed, Part};
use sfnap::optim::{GpuOptimizer, OptimConfig, RING};
use sfnap::{Error, Result};

use super::{RaceConfig, HISTORY};
use crate::demo::{ring_entries, steps_since, Demo, Request, Unpack};

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

/// The race's kernel file (`web/shaders/race.wgsl`, after the engine's prelude, whose
/// `WG` and `workgroup_sum` it uses): its entry points and bindings.
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

impl Lane {
    /// Racer `name` with optimizer `cfg`, its points at `config.starts()`.
    fn new(gpu: &Gpu, config: &RaceConfig, name: &'static str, cfg: &OptimConfig) -> Result<Lane> {
        let n = config.points;
        let specs: Vec<TensorSpec> = (0..n).map(|i| TensorSpec::new(format!("p{i}"), &[2])).collect();
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
        let opt = GpuOptimizer::new(gpu, &arena, cfg, None)?;
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
        Ok(Lane {
            name,
            opt,
            grad,
            gather,
            history,
            packed,
        })
    }
}

impl Demo for Race {
    type Config = RaceConfig;
    type Parts = RaceParts;

    fn parse_config(json: &str) -> Result<RaceConfig> {
        RaceConfig::parse(json)
    }

    /// Places every racer's points (at `config.starts()`) on `gpu` and prepares its optimizer.
    fn new(gpu: &Gpu, config: &RaceConfig) -> Result<Race> {
        config.validate()?;
        gpu.register_kernels(kernels())?;
        let lanes = config
            .optimizers()
            .into_iter()
            .map(|(name, cfg)| Lane::new(gpu, config, name, &cfg))
            .collect::<Result<_>>()?;
        Ok(Race {
            config: config.clone(),
            lanes,
            steps: 0,
            read_from: 0,
        })
    }

    fn config(&self) -> &RaceConfig {
        &self.config
    }

    /// Steps taken so far (by every racer).
    fn steps(&self) -> u64 {
        self.steps
    }

    /// Records and submits `n` steps of every racer: per step, the gradient kernel and
    /// one optimizer step. No readback.
    fn step(&mut self, gpu: &Gpu, n: u32) -> Result<()> {
        let mut left = n as usize;
        while left > 0 {
            let batch = left.min(RING);
            gpu.submit(|enc| {
                for lane in &mut self.lanes {
                    for _ in 0..batch {
                        lane.grad
                            .record(&mut enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                                label: Some("race gradients"),
                                timestamp_writes: None,
                            }));
                        lane.opt.record_step(gpu, enc)?;
                    }
                }
                Ok::<(), Error>(())
            })?;
            for lane in &mut self.lanes {
                lane.opt.submitted();
            }
            self.steps += batch as u64;
            left -= batch;
        }
        Ok(())
    }

    /// Gathers every racer's y and x, and reads them back with the mean losses of
    /// the steps since the last snapshot.
    fn request_snapshot(&mut self, gpu: &Gpu) -> Request<RaceParts> {
        let n = self.config.points;
        let steps = steps_since(&mut self.read_from, self.steps, HISTORY);
        Request::submit(gpu, |enc, readback| {
            {
                let mut pass = enc.begin_compute_pass(&Default::default());
                for lane in &self.lanes {
                    lane.gather.record(&mut pass);
                }
            }
            RaceParts {
                racers: self
                    .lanes
                    .iter()
                    .map(|lane| RacerParts {
                        name: lane.name,
                        packed: readback.add_values::<[f32; 4]>(&lane.packed, 0, n),
                        history: readback.add_values::<f32>(&lane.history, 0, HISTORY),
                    })
                    .collect(),
                config: self.config.clone(),
                steps,
            }
        })
    }
}

/// Where a race snapshot's pieces lie in its readback.
pub struct RaceParts {
    racers: Vec<RacerParts>,
    config: RaceConfig,
    steps: Range<u64>,
}

/// Where one racer's pieces lie: its (y, x) pairs and its loss ring.
struct RacerParts {
    name: &'static str,
    packed: Part,
    history: Part,
}

impl Unpack for RaceParts {
    type Snapshot = Snapshot;

    fn unpack(self, packed: &Packed) -> Snapshot {
        let racers = self
            .racers
            .into_iter()
            .map(|r| {
                let points: Vec<[f32; 4]> = packed.values(r.packed);
                let y: Vec<f32> = points.iter().flat_map(|v| [v[0], v[1]]).collect();
                let x: Vec<f32> = points.iter().flat_map(|v| [v[2], v[3]]).collect();
                RacerSnapshot {
                    name: r.name.to_string(),
                    loss_y: self.config.mean_value(&y),
                    loss_x: self.config.mean_value(&x),
                    y,
                    x,
                    history_from: self.steps.start,
                    history: ring_entries(&packed.values(r.history), self.steps.clone()).collect(),
                }
            })
            .collect();
        Snapshot {
            step: self.steps.end,
            racers,
        }
    }
}

/// Every racer's state at one moment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Snapshot {
    /// Steps taken.
    pub step: u64,
    /// One entry per racer, in [`RACERS`](super::RACERS) order.
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
    /// The snapshot of racer `name`.
    pub fn racer(&self, name: &str) -> Result<&RacerSnapshot> {
        self.racers
            .iter()
            .find(|r| r.name == name)
            .ok_or_else(|| Error::invalid("racer", format!("no racer `{name}` in the snapshot")))
    }
}
