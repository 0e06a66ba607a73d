//! Timing whole training steps, for `sfnap bench --train`: their wall time
//! ([`time_steps`]) and where a step's time goes, dispatch by dispatch
//! ([`profile_step`]).

use std::time::Instant;

use crate::arena::Arena;
use crate::data::Rng;
use crate::error::{Error, Result};
use crate::gpu::stamps::Stamps;
use crate::gpu::{Dispatch, Gpu};
use crate::model::{Graph, Weights};
use crate::optim::GpuOptimizer;
use crate::stats::median;
use crate::train::source::Source;
use crate::train::TrainConfig;
use crate::train_step::record_train_step;

/// A training step's parts, set up as the training loop sets them up.
struct Rig {
    source: Source,
    opt: GpuOptimizer,
    graph: Box<dyn Graph>,
    rng: Rng,
    step: u64,
    batch: usize,
}

impl Rig {
    fn new(gpu: &Gpu, cfg: &TrainConfig) -> Result<Rig> {
        cfg.validate()?;
        let model = cfg.model.model();
        let source = Source::new(cfg)?;
        crate::model::check_rows(gpu, model, cfg.batch, "batch")?;
        let arena = Arena::new(gpu, &model.tensors(), None)?;
        model.initialize(gpu, &arena, cfg.seed)?;
        let nap = cfg.nap.then(|| model.nap_groups());
        let opt = GpuOptimizer::new(gpu, &arena, &cfg.optimizer, nap.as_ref())?;
        let graph = cfg.model.graph(gpu, Weights::train(&arena), cfg.batch)?;
        Ok(Rig {
            source,
            opt,
            graph,
            rng: Rng::new(cfg.seed.wrapping_add(1)),
            step: 0,
            batch: cfg.batch,
        })
    }

    /// Draws the next batch and writes it to the graph's inputs.
    fn write_batch(&mut self, gpu: &Gpu) -> Result<()> {
        let (inputs, targets) = self.source.batch(self.step, self.batch, &mut self.rng);
        self.step += 1;
        self.graph.write_batch(gpu, &inputs, &targets)
    }

    /// One whole step, as the training loop records and submits it.
    fn step(&mut self, gpu: &Gpu) -> Result<()> {
        self.write_batch(gpu)?;
        let (graph, opt) = (self.graph.as_ref(), &mut self.opt);
        gpu.submit(|enc| record_train_step(gpu, enc, graph, opt))?;
        self.opt.submitted();
        Ok(())
    }
}

/// Seconds taken by each of `trials` runs of `steps` training steps of `cfg`,
/// after `warmup` untimed steps (at least one: it compiles the pipelines), and the
/// seconds of that warm-up.
///
/// A step is the training loop's ([`crate::train::train`]): a batch drawn and written,
/// forward, loss, backward and the optimizer step (NaP when `cfg.nap`) recorded
/// into one submission, without the loop's metrics readback and evaluations.
/// Each run is timed by the wall clock from its first batch to a drained queue,
/// so the host's share (drawing, recording, submitting) counts as in training.
pub fn time_steps(gpu: &Gpu, cfg: &TrainConfig, warmup: usize, steps: usize, trials: usize) -> Result<(f64, Vec<f64>)> {
    let mut rig = Rig::new(gpu, cfg)?;
    let mut run = |n: usize| -> Result<f64> {
        gpu.wait()?;
        let start = Instant::now();
        for _ in 0..n {
            rig.step(gpu)?;
        }
        gpu.wait()?;
        Ok(start.elapsed().as_secs_f64())
    };
    let warm = run(warmup.max(1))?;
    let times = (0..trials).map(|_| run(steps)).collect::<Result<Vec<_>>>()?;
    rig.opt.check(gpu)?;
    Ok((warm, times))
}

/// Where a training step's GPU time goes ([`profile_step`]).
#[derive(Debug, Clone, serde::Serialize)]
pub struct StepProfile {
    /// GPU milliseconds of a whole step recorded as training records it (one
    /// pass for the forward, one for the backward, then the optimizer's), the median.
    pub step_ms: f64,
    /// GPU time per step by dispatch label, each dispatch in a pass of its own, largest first.
    pub lines: Vec<KernelTime>,
}

/// One line of a step's profile: the dispatches of one label.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KernelTime {
    /// The dispatch's label (`file.entry`, a matmul's with its shape), or
    /// "optimizer step" for the whole optimizer step.
    pub label: String,
    /// Dispatches of this label per training step.
    pub calls: usize,
    /// Workgroups per training step, over those dispatches.
    pub workgroups: u64,
    /// GPU milliseconds per training step, over those dispatches (the median over trials).
    pub ms: f64,
}

/// Where a training step's GPU time goes: every dispatch of the forward and
/// backward passes timed in a compute pass of its own, and the optimizer step
/// (with NaP when `cfg.nap`) as a whole, by timestamp queries, over `trials`
/// steps after `warmup` whole ones; each trial also times one whole step as
/// training records it. Dispatches of one label are summed, and the lines
/// sorted by time, largest first. A pass per dispatch adds the adapter's cost
/// of a pass to each, so the lines can add up to more than a whole step. Needs
/// an adapter with timestamp queries.
pub fn profile_step(gpu: &Gpu, cfg: &TrainConfig, warmup: usize, trials: usize) -> Result<StepProfile> {
    if !gpu.timestamps {
        return Err(Error::invalid(
            "--profile",
            format!(
                "the adapter {} has no timestamp queries to time dispatches with",
                gpu.info.name
            ),
        ));
    }
    let mut rig = Rig::new(gpu, cfg)?;
    for _ in 0..warmup.max(1) {
        rig.step(gpu)?;
    }
    let mut dispatches: Vec<Dispatch> = Vec::new();
    rig.graph.record_forward(&mut dispatches);
    let forward = dispatches.len();
    rig.graph.record_backward(&mut dispatches);
    // Two stamps per dispatch, two around the optimizer step, two around a whole step.
    let n = dispatches.len();
    let stamps = Stamps::new(gpu, 2 * n as u32 + 4);
    let mut per_trial: Vec<Vec<f64>> = Vec::new();
    for _ in 0..trials.max(1) {
        rig.write_batch(gpu)?;
        let (graph, opt) = (rig.graph.as_ref(), &mut rig.opt);
        gpu.submit(|enc| {
            for (i, d) in dispatches.iter().enumerate() {
                if i == forward {
                    if let Some(dst) = opt.loss_buffer() {
                        graph.loss().record_copy_mean(enc, dst, 0);
                    }
                }
                d.record(&mut stamps.pass(enc, 2 * i as u32));
            }
            stamps.write(enc, 2 * n as u32);
            let step = opt.record_step(gpu, enc);
            stamps.write(enc, 2 * n as u32 + 1);
            step
        })?;
        rig.opt.submitted();
        rig.write_batch(gpu)?;
        let (graph, opt) = (rig.graph.as_ref(), &mut rig.opt);
        gpu.submit(|enc| {
            stamps.write(enc, 2 * n as u32 + 2);
            let step = record_train_step(gpu, enc, graph, opt);
            stamps.write(enc, 2 * n as u32 + 3);
            step
        })?;
        rig.opt.submitted();
        let ns = stamps.read_ns(gpu)?;
        per_trial.push(ns.chunks(2).map(|p| (p[1] - p[0]).max(0.0) * 1e-6).collect());
    }
    rig.opt.check(gpu)?;
    let median_ms = |i: usize| median(&per_trial.iter().map(|t| t[i]).collect::<Vec<_>>());
    let mut lines: Vec<KernelTime> = Vec::new();
    for (i, d) in dispatches.iter().enumerate() {
        let ms = median_ms(i);
        match lines.iter_mut().find(|l| l.label == d.label()) {
            Some(l) => {
                l.calls += 1;
                l.workgroups += d.workgroups();
                l.ms += ms;
            }
            None => lines.push(KernelTime {
                label: d.label().to_string(),
                calls: 1,
                workgroups: d.workgroups(),
                ms,
            }),
        }
    }
    lines.push(KernelTime {
        label: "optimizer step".into(),
        calls: 1,
        workgroups: 0,
        ms: median_ms(n),
    });
    lines.sort_by(|a, b| b.ms.total_cmp(&a.ms));
    Ok(StepProfile {
        step_ms: median_ms(n + 1),
        lines,
    })
}
