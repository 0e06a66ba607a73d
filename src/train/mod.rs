//! The training loop: batches, one recorded step per batch, metrics read back
//! asynchronously, evaluation at x, `metrics.csv`, checkpoints and bit-identical
//! resume.
//!
//! A run stops with [`Error::Numerical`], keeping its last good checkpoint, when
//! a value stops being finite (the optimizer's device flags and the training
//! loss, read back with the metrics; everything again at each evaluation) or
//! when it diverges ([`divergence`]).
//!
//! The loop draws nothing: a [`TrainObserver`] passed to [`train_observed`] hears of
//! every step and evaluation (the command line shows a progress bar with it and
//! plots `loss.png` from `metrics.csv` afterwards).

mod config;
pub mod divergence;
mod inspect;
mod merge;
mod metrics;
mod parallel;
mod rundir;
pub(crate) mod source;

use std::path::PathBuf;

pub use config::EVAL_FRAC;
pub use config::{DataChoice, DataKind, TrainConfig};
pub use divergence::Divergence;
pub use inspect::{evaluate_data, export, sample, DataEval, SampleOptions, EXPORT_FORMAT};
pub use merge::{checkpoint_path, evaluate_checkpoint, merge, MergeWeights};
pub use metrics::{read_metrics, MetricsRow};
pub use parallel::Parallel;

use crate::arena::Arena;
use crate::checkpoint::{self, Meta};
use crate::data::Rng;
use crate::distributed::{agree, checksum};
use crate::error::{Error, Result};
use crate::gpu::readback::AsyncReadback;
use crate::gpu::Gpu;
use crate::model::{Graph, Weights};
use crate::nn::LossStats;
use crate::optim::{GpuOptimizer, Health, PlusState, XExport};
use crate::train_step::record_train_step;
use divergence::Verdict;
use metrics::{open_csv, write_row};
use parallel::Exchange;
use rundir::RunDir;
use source::Source;

/// A checkpoint is written at the first evaluation after every this many steps,
/// and at the end, unless [`RunOptions::checkpoint_every`] says otherwise.
const CHECKPOINT_EVERY: u64 = 1000;

/// What a finished run reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Every evaluation, in order.
    pub evals: Vec<MetricsRow>,
    /// (step, mean batch loss at y) as read back during training.
    pub train_losses: Vec<(u64, f64)>,
}

impl Summary {
    /// The last evaluation.
    pub fn last(&self) -> Option<&MetricsRow> {
        self.evals.last()
    }
}

/// Options of a run that do not change its results.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Write metrics.csv and checkpoint.safetensors here.
    pub out: Option<PathBuf>,
    /// Continue from this directory's checkpoint.
    pub resume: Option<PathBuf>,
    /// Stop after this many steps of this invocation (the checkpoint then allows resuming).
    pub stop_after: Option<u64>,
    /// Save a checkpoint at the first evaluation after every this many steps
    /// (and at the end); `None`: every 1,000 steps.
    pub checkpoint_every: Option<u64>,
}

/// Where a run stands after a step, as [`TrainObserver::step`] hears it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Steps taken, counting those before a resume.
    pub done: u64,
    /// Steps of the whole run ([`TrainConfig::steps`]).
    pub total: u64,
    /// The latest training loss read back (mean of a batch, at y); NaN before the first.
    pub train_loss: f64,
    /// Steps per second of this invocation so far.
    pub steps_per_s: f64,
}

/// Hears how a run goes, for a progress display or a log; every method does
/// nothing unless implemented. The calls come from the training loop's thread,
/// between steps: a slow observer slows training.
///
/// `()` is the observer that ignores everything ([`train`] passes it).
pub trait TrainObserver {
    /// Before the first step of this invocation: `done` steps are behind (more than 0
    /// on resume) of `total` in all.
    fn start(&mut self, done: u64, total: u64) {
        let _ = (done, total);
    }

    /// After every step.
    fn step(&mut self, progress: &Progress) {
        let _ = progress;
    }

    /// After every evaluation at x, with the row just written to `metrics.csv`
    /// (`row.step` steps taken).
    fn eval(&mut self, row: &MetricsRow) {
        let _ = row;
    }

    /// After the last step of this invocation (the run's last, or the last before
    /// [`RunOptions::stop_after`]), when it succeeded: not called when it fails.
    fn finished(&mut self) {}
}

impl TrainObserver for () {}

/// Steps of one pass over `cfg`'s training data at its batch size (reads a
/// data file of one's own): what [`crate::optim::plus::growth_per_step`] takes
/// to give sfnap's sf_plus step its growth cap.
pub fn steps_per_epoch(cfg: &TrainConfig) -> Result<f64> {
    let rows = Source::new(cfg)?.train_rows();
    Ok(rows as f64 / cfg.batch.max(1) as f64)
}

/// Trains `cfg` on `gpu`, silently.
pub fn train(gpu: &Gpu, cfg: &TrainConfig, opts: &RunOptions) -> Result<Summary> {
    train_observed(gpu, cfg, opts, &mut ())
}

/// Trains `cfg` on `gpu`, telling `observer` of every step and evaluation.
pub fn train_observed(
    gpu: &Gpu,
    cfg: &TrainConfig,
    opts: &RunOptions,
    observer: &mut dyn TrainObserver,
) -> Result<Summary> {
    train_parallel(gpu, cfg, opts, observer, Parallel::default())
}

/// Trains `cfg` on `gpu` as one of `parallel`'s ranks (see [`crate::distributed`]):
/// [`TrainConfig::batch`] is the global batch, cut into `parallel.slices()`
/// equal slices; this rank trains on its own, the gradients and loss are
/// averaged over all of them before every step. Every rank must call it with
/// the same settings (checked); only rank 0 writes to [`RunOptions::out`].
/// At every evaluation the ranks compare a checksum of their weights (and of
/// sf_plus's state): a mismatch stops the run with an error naming the ranks.
/// With `Parallel::default()` this is [`train_observed`].
pub fn train_parallel(
    gpu: &Gpu,
    cfg: &TrainConfig,
    opts: &RunOptions,
    observer: &mut dyn TrainObserver,
    parallel: Parallel<'_>,
) -> Result<Summary> {
    cfg.validate()?;
    if opts.checkpoint_every == Some(0) {
        return Err(Error::invalid("checkpoint_every", "must be at least 1"));
    }
    let model = cfg.model.model();
    let source = Source::new(cfg)?;
    // Every buffer against the adapter's limits before anything is allocated.
    crate::distributed::shard(cfg.batch, parallel.slices(), 0)?;
    crate::model::check_rows(gpu, model, Exchange::rows(&parallel, cfg.batch), "batch")?;
    crate::model::check_rows(gpu, model, source.eval_rows(), "the evaluation set")?;
    let arena = Arena::new(gpu, &model.tensors(), None)?;
    model.initialize(gpu, &arena, cfg.seed)?;
    let nap = cfg.nap.then(|| model.nap_groups());
    let mut opt = GpuOptimizer::new(gpu, &arena, &cfg.optimizer, nap.as_ref())?;
    let mut rng = Rng::new(cfg.seed.wrapping_add(1));
    let config_json = serde_json::to_string(&TrainConfig {
        steps: 0,
        ..cfg.clone()
    })
    .map_err(|e| Error::json("the run's settings", e))?;
    let config_json = parallel::stored_settings(config_json, &parallel)?;
    if let Some(comm) = parallel.comm {
        agree(comm, "the settings", checksum(config_json.as_bytes()), |msg| {
            Error::invalid(
                "ranks",
                format!("{msg}: every rank must be started with the same arguments"),
            )
        })?;
    }
    // Rank 0 alone writes.
    let out = opts.out.as_deref().filter(|_| parallel.rank() == 0);

    // The run directory: locked for this run, temporary files of a killed save removed.
    let run_dir = out.map(RunDir::lock).transpose()?;
    let mut start = 0;
    if let Some(dir) = &opts.resume {
        let path = dir.join("checkpoint.safetensors");
        let loaded = checkpoint::load(&path)?;
        if loaded.meta.config != config_json {
            return Err(Error::invalid(
                path.display().to_string(),
                resume_mismatch(&loaded.meta.config, &config_json),
            ));
        }
        start = loaded.meta.step;
        rng = Rng::from_state(loaded.meta.rng);
        loaded.apply(&path, gpu, &arena, &mut opt)?;
    }

    let train_graph = cfg
        .model
        .graph(gpu, Weights::train(&arena), Exchange::rows(&parallel, cfg.batch))?;
    let mut exchange = Exchange::new(gpu, &arena, parallel, cfg.batch)?;
    let x_buf = gpu.storage("x export", arena.layout.bytes());
    let export = opt.x_export(gpu, &arena, &x_buf)?;
    let eval_weights = Weights {
        arena: &arena,
        values: &x_buf,
    };
    let eval_graph = cfg.model.graph(gpu, eval_weights, source.eval_rows())?;

    let mut csv = match &run_dir {
        Some(d) => Some(open_csv(d.path(), opts.resume.is_some(), start)?),
        None => None,
    };
    let mut readback = AsyncReadback::<Probe>::default();
    let mut divergence = Divergence::new(cfg.model.classes());
    let mut summary = Summary {
        evals: Vec::new(),
        train_losses: Vec::new(),
    };
    let mut last_loss = f64::NAN;
    let stop = opts.stop_after.map_or(cfg.steps, |n| (start + n).min(cfg.steps));
    observer.start(start, cfg.steps);
    let started = std::time::Instant::now();
    for step in start..stop {
        let (inputs, targets) = source.batch(step, cfg.batch, &mut rng);
        // A sliced batch: the mean gradient over every slice is in the arena before the step.
        let sliced = exchange.is_some();
        let loss_stats = match &mut exchange {
            None => {
                train_graph.write_batch(gpu, &inputs, &targets)?;
                train_graph.loss().stats()
            }
            Some(x) => {
                let plus_loss = opt.loss_buffer().cloned();
                x.gradients(gpu, train_graph.as_ref(), plus_loss.as_ref(), &inputs, &targets)?;
                x.loss_stats()
            }
        };
        gpu.submit(|enc| {
            if sliced {
                opt.record_step(gpu, enc)?;
            } else {
                record_train_step(gpu, enc, train_graph.as_ref(), &mut opt)?;
            }
            if step % cfg.metrics_every == 0 {
                // The flags first: they name where a loss that is not finite came from.
                if let Some(plus) = opt.plus_state_buffer() {
                    readback.record(gpu, enc, plus, PLUS_STATE_BYTES, Probe::Plus);
                }
                readback.record(gpu, enc, opt.health_buffer(), 16, Probe::Health);
                readback.record(gpu, enc, loss_stats, 16, Probe::Loss(step));
            }
            Ok::<(), Error>(())
        })?;
        opt.submitted();
        readback.submitted();
        for (probe, bytes) in readback.poll(gpu)? {
            absorb(&mut summary, csv.as_mut(), probe, &bytes, &mut last_loss)?;
        }
        let done = step + 1;
        observer.step(&Progress {
            done,
            total: cfg.steps,
            train_loss: last_loss,
            steps_per_s: (done - start) as f64 / started.elapsed().as_secs_f64().max(1e-9),
        });
        if done % cfg.eval_every == 0 || done == stop {
            for (probe, bytes) in readback.finish(gpu)? {
                absorb(&mut summary, csv.as_mut(), probe, &bytes, &mut last_loss)?;
            }
            opt.check(gpu)?;
            let eval = Eval {
                export: &export,
                x: &x_buf,
                graph: eval_graph.as_ref(),
            };
            let row = evaluate(gpu, cfg, &source, &arena, &opt, &eval, done, last_loss)?;
            if let Some(comm) = parallel.comm {
                agree(
                    comm,
                    "the weights (y) and optimizer state",
                    weights_checksum(gpu, &arena, &opt)?,
                    |msg| Error::Numerical(format!("after {done} steps {msg}")),
                )?;
            }
            let verdict = divergence.observe(done, row.eval_loss, done == stop)?;
            if let Some((file, path)) = &mut csv {
                write_row(file, path, &row.csv())?;
            }
            observer.eval(&row);
            summary.evals.push(row);
            if let Verdict::Diverged(e) = verdict {
                return Err(e);
            }
            let every = opts.checkpoint_every.unwrap_or(CHECKPOINT_EVERY);
            let checkpoint_due = done % every < cfg.eval_every || done == stop;
            if let (Some(dir), true, Verdict::Fine) = (&run_dir, checkpoint_due, &verdict) {
                let meta = Meta {
                    step: done,
                    config: config_json.clone(),
                    rng: rng.state(),
                };
                checkpoint::save(
                    &dir.path().join("checkpoint.safetensors"),
                    gpu,
                    &arena,
                    &opt,
                    &x_buf,
                    &meta,
                )?;
            }
        }
    }
    observer.finished();
    Ok(summary)
}

/// Why a checkpoint's settings (`saved`, JSON) refuse a run with `ours`: the
/// settings that differ, by name. Only `--steps` may change on resume, except
/// for a schedule as long as the run (adamw's wsd and cosine), which fixes it.
fn resume_mismatch(saved: &str, ours: &str) -> String {
    let parse = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap_or_default();
    let (saved, ours) = (parse(saved), parse(ours));
    let mut differ = Vec::new();
    diff_fields("", &saved, &ours, &mut differ);
    // --steps sets a wsd or cosine schedule's length (and wsd's decay), nothing else.
    let length = ["optimizer.schedule.total_steps", "optimizer.schedule.decay_steps"];
    if let (Some(steps), true) = (
        saved.pointer("/optimizer/schedule/total_steps"),
        differ.iter().all(|f| length.contains(&f.as_str())),
    ) {
        return format!(
            "this checkpoint's adamw schedule spans the whole run ({steps} steps), so --steps cannot change \
             on resume: resume with --steps {steps}"
        );
    }
    let verb = if differ.len() == 1 { "differs" } else { "differ" };
    format!(
        "this checkpoint was written by a run with other settings: {} {verb} (only --steps may change on resume)",
        differ.join(", ")
    )
}

/// Appends to `out` the dotted paths at which `a` and `b` differ.
fn diff_fields(path: &str, a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<String>) {
    match (a, b) {
        (serde_json::Value::Object(x), serde_json::Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().collect();
            keys.extend(y.keys().filter(|k| !x.contains_key(*k)));
            for k in keys {
                let null = serde_json::Value::Null;
                let at = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                diff_fields(&at, x.get(k).unwrap_or(&null), y.get(k).unwrap_or(&null), out);
            }
        }
        _ if a != b => out.push(if path.is_empty() {
            "the settings".into()
        } else {
            path.into()
        }),
        _ => {}
    }
}

/// A checksum of the training weights y and, for sf_plus, its device state
/// (whose L1 norm and inner product every rank computes from its own copy).
fn weights_checksum(gpu: &Gpu, arena: &Arena, opt: &GpuOptimizer) -> Result<u64> {
    let mut bytes = gpu.read::<u8>(&arena.params, 0, arena.layout.total * 4)?;
    if let Some(plus) = opt.plus_state_buffer() {
        bytes.extend(gpu.read::<u8>(plus, 0, PLUS_STATE_BYTES as usize)?);
    }
    Ok(checksum(&bytes))
}

/// What a background readback of the training loop holds.
#[derive(Debug, Clone, Copy)]
enum Probe {
    /// The loss statistics of the batch before step `.0`'s update (0-based).
    Loss(u64),
    /// The optimizer's [`Health`] flags.
    Health,
    /// sf_plus's device state, with its own error flag.
    Plus,
}

/// Bytes of sf_plus's device state.
const PLUS_STATE_BYTES: u64 = std::mem::size_of::<PlusState>() as u64;

/// Takes in one finished readback: a training loss is kept and written to
/// metrics.csv (eval columns empty) unless it is not finite; device flags that
/// report a problem stop the run.
fn absorb(
    summary: &mut Summary,
    csv: Option<&mut (std::fs::File, PathBuf)>,
    probe: Probe,
    bytes: &[u8],
    last_loss: &mut f64,
) -> Result<()> {
    match probe {
        Probe::Loss(step) => {
            let loss = bytemuck::pod_read_unaligned::<LossStats>(bytes).mean as f64;
            if !loss.is_finite() {
                return Err(Error::Numerical(format!(
                    "the training loss after {step} steps is {loss}; the run stopped (lower the learning rate)"
                )));
            }
            summary.train_losses.push((step, loss));
            if let Some((file, path)) = csv {
                write_row(file, path, &format!("{step},{loss},,,,,,,"))?;
            }
            *last_loss = loss;
            Ok(())
        }
        Probe::Health => Health::from_bytes(bytes).error(),
        Probe::Plus => bytemuck::pod_read_unaligned::<PlusState>(bytes).error(),
    }
}

/// What evaluation at x needs: the export of x, its buffer, the graph reading it.
struct Eval<'a> {
    export: &'a XExport,
    x: &'a wgpu::Buffer,
    graph: &'a dyn Graph,
}

/// Evaluates at x (without touching y) and gathers the metrics of `step`.
#[allow(clippy::too_many_arguments)]
fn evaluate(
    gpu: &Gpu,
    cfg: &TrainConfig,
    source: &Source,
    arena: &Arena,
    opt: &GpuOptimizer,
    eval: &Eval<'_>,
    step: u64,
    train_loss: f64,
) -> Result<MetricsRow> {
    let (inputs, targets) = source.eval_set(step);
    eval.graph.write_batch(gpu, &inputs, &targets)?;
    gpu.submit(|enc| {
        eval.export.record(enc);
        eval.graph
            .record_forward(&mut enc.begin_compute_pass(&Default::default()));
    });
    let stats = eval.graph.loss().read_stats(gpu)?;
    let model = cfg.model.model();
    let hidden = model.hidden_weights();
    let sum_sq = |buffer: &wgpu::Buffer, names: &[String]| -> Result<f64> {
        let mut total = 0.0;
        for n in names {
            total += arena
                .read_from(gpu, buffer, n)?
                .iter()
                .map(|&v| (v as f64).powi(2))
                .sum::<f64>();
        }
        Ok(total)
    };
    let all: Vec<String> = arena.layout.slots.iter().map(|s| s.name.clone()).collect();
    let grad_norm = sum_sq(&arena.grads, &all)?.sqrt();
    let hidden_norm = sum_sq(eval.x, &hidden)?.sqrt();
    let gamma = opt.last_scalars(gpu)?.gamma as f64;
    let effective_lr = if hidden.is_empty() {
        f64::NAN // no scale-invariant weights (the GPT): an effective rate is not defined
    } else {
        opt.spec().effective_lr(gamma, hidden_norm)
    };
    let task = match source {
        Source::Continual(c) => c.task(step.saturating_sub(1)),
        _ => 0,
    };
    Ok(MetricsRow {
        step,
        train_loss,
        eval_loss: stats.mean as f64,
        eval_accuracy: stats.correct as f64 / stats.rows.max(1) as f64,
        grad_norm,
        hidden_weight_norm: hidden_norm,
        gamma,
        effective_lr,
        task,
    })
}
