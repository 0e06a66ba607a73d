//! The training loop: batches, one recorded step per batch, metrics read back
//! asynchronously, evaluation at x, `metrics.csv`, checkpoints and bit-identical
//! resume.
//!
//! A run stops with [`crate::Error::Numerical`], keeping its last good checkpoint, when
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
mod memory;
mod merge;
mod metrics;
mod moments;
mod parallel;
pub(crate) mod rundir;
pub(crate) mod source;
mod trainer;

use std::path::PathBuf;

pub use config::EVAL_FRAC;
pub use config::{DataChoice, DataKind, TrainConfig};
pub use divergence::Divergence;
pub use inspect::{evaluate_data, export, sample, DataEval, SampleOptions, EXPORT_FORMAT};
pub use memory::{Capacity, MemoryPlan, Part, Place, PlanRows};
pub use merge::{checkpoint_path, evaluate_checkpoint, merge, MergeWeights};
pub use metrics::{read_metrics, MetricsRow};
pub use moments::{checkpoint_moment, run_moments, Moment};
pub use parallel::Parallel;

use crate::arena::Arena;
use crate::error::Result;
use crate::gpu::Gpu;
use crate::model::{check_rows, Graph};
use crate::optim::{GpuOptimizer, XExport};
use divergence::Verdict;
use source::Source;
use trainer::Trainer;

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
    /// A fresh run into an [`RunOptions::out`] that holds a run's files
    /// (checkpoint, metrics, plot) removes them; without it such a run is refused.
    pub overwrite: bool,
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

    /// Before [`TrainObserver::start`], once for each thing a killed run left
    /// in the run directory that this one repaired (temporary files removed,
    /// `metrics.csv` rows after the checkpoint dropped), in words.
    fn repaired(&mut self, what: &str) {
        let _ = what;
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

/// The rows and outputs of `cfg` run with `opts` as one of `parallel`'s ranks:
/// what its [`MemoryPlan`] needs beyond the settings.
fn plan_rows(cfg: &TrainConfig, source: &Source, opts: &RunOptions, parallel: &Parallel<'_>) -> PlanRows {
    PlanRows {
        train: parallel::Exchange::rows(parallel, cfg.batch),
        eval: source.eval_rows(),
        host_sum: parallel.local() > 1,
        checkpoints: opts.out.is_some() && parallel.rank() == 0,
    }
}

/// The memory plan of `cfg` run with `opts` as one of `parallel`'s ranks on
/// `gpu`, what the adapter and the machine offer, and whether the run fits
/// them: the refusal training would give first, or `Ok`. Reads the data's
/// size once; allocates nothing.
pub fn memory_plan(
    gpu: &Gpu,
    cfg: &TrainConfig,
    opts: &RunOptions,
    parallel: &Parallel<'_>,
) -> Result<(MemoryPlan, Capacity, Result<()>)> {
    cfg.validate()?;
    let source = Source::new(cfg)?;
    let fit = fits(gpu, cfg, &source, opts, parallel);
    let rows = plan_rows(cfg, &source, opts, parallel);
    Ok((MemoryPlan::new(cfg, rows), Capacity::of(gpu), fit))
}

/// Refuses `cfg` run with `opts` as one of `parallel`'s ranks on `gpu` when
/// it cannot fit, its data read into `source`: a slice of the batch and the
/// evaluation set each within the adapter's storage binding ([`check_rows`]),
/// then its [`MemoryPlan`] within the adapter and the machine. Allocates nothing.
fn fits(gpu: &Gpu, cfg: &TrainConfig, source: &Source, opts: &RunOptions, parallel: &Parallel<'_>) -> Result<()> {
    crate::distributed::shard(cfg.batch, parallel.slices(), 0)?;
    let model = cfg.model.model();
    check_rows(gpu, model, parallel::Exchange::rows(parallel, cfg.batch), "batch")?;
    check_rows(gpu, model, source.eval_rows(), "the evaluation set")?;
    memory::check(cfg, plan_rows(cfg, source, opts, parallel), &Capacity::of(gpu))
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
    let mut trainer = Trainer::new(gpu, cfg, opts, parallel)?;
    let start = trainer.start;
    let stop = opts.stop_after.map_or(cfg.steps, |n| (start + n).min(cfg.steps));
    let every = opts.checkpoint_every.unwrap_or(CHECKPOINT_EVERY);
    for what in &trainer.repairs {
        observer.repaired(what);
    }
    observer.start(start, cfg.steps);
    let started = std::time::Instant::now();
    for step in start..stop {
        trainer.step(step)?;
        let done = step + 1;
        observer.step(&Progress {
            done,
            total: cfg.steps,
            train_loss: trainer.last_loss,
            steps_per_s: (done - start) as f64 / started.elapsed().as_secs_f64().max(1e-9),
        });
        if done % cfg.eval_every == 0 || done == stop {
            let (row, verdict) = trainer.evaluate(done, done == stop)?;
            observer.eval(&row);
            match verdict {
                Verdict::Diverged(e) => return Err(e),
                Verdict::Fine if done % every < cfg.eval_every || done == stop => trainer.checkpoint(done)?,
                _ => {}
            }
        }
    }
    observer.finished();
    Ok(trainer.summary)
}

/// Why a checkpoint's settings (`saved`, JSON) refuse a run with `ours`: the
/// settings that differ, by name. Only `--steps` may change on resume, except
/// for a schedule as long as the run (adamw's wsd and cosine), which fixes it.
fn resume_mismatch(saved: &serde_json::Value, ours: &serde_json::Value) -> String {
    let mut differ = Vec::new();
    diff_fields("", saved, ours, &mut differ);
    explain_mismatch(saved, ours, &differ)
}

/// The settings of the run whose checkpoint is `input` (a file, or a run
/// directory), which `--resume` continues: [`TrainConfig::steps`] is 0 (the
/// caller sets it).
pub fn resume_settings(input: &std::path::Path) -> Result<TrainConfig> {
    let path = checkpoint_path(input);
    settings_of(&crate::checkpoint::load(&path)?, &path)
}

/// The settings stored in `loaded`, the checkpoint read from `path`.
fn settings_of(loaded: &crate::checkpoint::Loaded, path: &std::path::Path) -> Result<TrainConfig> {
    serde_json::from_str(&loaded.meta.config)
        .map_err(|e| crate::Error::invalid(path.display().to_string(), format!("checkpoint settings: {e}")))
}

/// Why `ours` cannot resume a checkpoint of the settings `saved`, counting
/// only the settings (dotted paths such as `model.gpt.width`) that `counts`
/// keeps; `None` when none of those differs. Both are read as
/// [`TrainConfig::steps`] 0, `saved` as today's runs store it (see `as_today`).
pub fn resume_refusal(
    saved: &TrainConfig,
    ours: &TrainConfig,
    counts: &dyn Fn(&str) -> bool,
) -> Result<Option<String>> {
    let (saved, ours) = as_today(&saved.stored_json()?, &ours.stored_json()?);
    let mut differ = Vec::new();
    diff_fields("", &saved, &ours, &mut differ);
    differ.retain(|f| counts(f));
    Ok((!differ.is_empty()).then(|| explain_mismatch(&saved, &ours, &differ)))
}

/// [`resume_mismatch`] for the settings `differ`.
fn explain_mismatch(saved: &serde_json::Value, ours: &serde_json::Value, differ: &[String]) -> String {
    if let Some(field) = differ.iter().find(|f| f.ends_with(".fingerprint")) {
        let data = field.trim_end_matches(".fingerprint").replace('.', "/");
        let at = |v: &serde_json::Value, key: &str| {
            v.pointer(&format!("/{data}/{key}"))
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string()
        };
        return format!(
            "{} has changed since this checkpoint's run trained on it (then {}, now {}): resume on the file it \
             trained on, or start a new run",
            at(ours, "path"),
            at(saved, "fingerprint"),
            at(ours, "fingerprint")
        );
    }
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

/// A checkpoint's settings (`saved`) and ours (JSON), the saved ones read as
/// a run of today would store them: a data file's path, relative to the
/// directory the run was started from before paths were stored absolute, made
/// absolute from here; a data file's fingerprint, absent before it was kept,
/// taken as ours (such runs resume as they always have).
fn as_today(saved: &str, ours: &str) -> (serde_json::Value, serde_json::Value) {
    let parse = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap_or_default();
    let (mut saved, ours) = (parse(saved), parse(ours));
    for kind in ["csv", "text_file"] {
        let at = format!("/data/{kind}");
        let (Some(data), Some(our)) = (saved.pointer_mut(&at), ours.pointer(&at)) else {
            continue;
        };
        let Some(data) = data.as_object_mut() else {
            continue;
        };
        let path = data.get("path").and_then(|p| p.as_str()).map(std::path::PathBuf::from);
        if let Some(full) = path
            .filter(|p| p.is_relative())
            .and_then(|p| std::fs::canonicalize(p).ok())
            .and_then(|p| p.to_str().map(str::to_string))
        {
            data.insert("path".into(), full.into());
        }
        if let (false, Some(fingerprint)) = (data.contains_key("fingerprint"), our.get("fingerprint")) {
            data.insert("fingerprint".into(), fingerprint.clone());
        }
    }
    (saved, ours)
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
    let all: Vec<String> = arena.layout.slots.iter().map(|s| s.name.clone()).collect();
    let grad_norm = arena.norm_of(gpu, &arena.grads, &all)?;
    let hidden_norm = arena.norm_of(gpu, eval.x, &hidden)?;
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

#[cfg(test)]
mod tests {
    use super::as_today;

    /// A run from before data paths were absolute and fingerprints kept reads
    /// as today's run on the same file; a fingerprint that differs does not.
    #[test]
    fn an_older_checkpoint_reads_as_today() {
        let dir = std::env::current_dir().unwrap();
        let file = dir.join("Cargo.toml");
        let full = file.to_str().unwrap();
        let saved = r#"{"data":{"csv":{"path":"Cargo.toml","eval_frac":0.1}},"seed":1}"#;
        let ours = format!(
            r#"{{"data":{{"csv":{{"path":"{full}","eval_frac":0.1,"fingerprint":"1 bytes, crc32 0"}}}},"seed":1}}"#
        );
        let (a, b) = as_today(saved, &ours);
        assert_eq!(a, b);
        let changed = ours.replace("crc32 0", "crc32 1");
        let (a, b) = as_today(&ours, &changed);
        assert_ne!(a, b);
        assert!(super::resume_mismatch(&a, &b).contains("has changed since"));
    }
}
