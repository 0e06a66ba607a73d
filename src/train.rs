//! The training loop: batches, one recorded step per batch, metrics read back
//! asynchronously, evaluation at x, `metrics.csv`, checkpoints and bit-identical
//! resume.
//!
//! The loop draws nothing: a [`TrainObserver`] passed to [`train_observed`] hears of
//! every step and evaluation (the command line shows a progress bar with it and
//! plots `loss.png` from `metrics.csv` afterwards).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::arena::Arena;
use crate::checkpoint::{self, Meta};
use crate::data::continual::Continual;
use crate::data::text::Text;
use crate::data::{digits, spirals, Classification, Rng};
use crate::error::{Error, Result};
use crate::gpu::readback::AsyncReadback;
use crate::gpu::Gpu;
use crate::model::gpt::{GptConfig, GptGraph};
use crate::model::mlp::{MlpConfig, MlpGraph};
use crate::model::{Graph, Inputs, Model, Weights};
use crate::nn::LossStats;
use crate::optim::XExport;
use crate::optim::{GpuOptimizer, Kind, OptimConfig};
use crate::sched::record_train_step;

/// Which model to train.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelConfig {
    /// input -> [Linear -> LayerNorm -> ReLU] x L -> Linear head.
    Mlp(MlpConfig),
    /// A tiny pre-LN transformer for character-level language modelling.
    Gpt(GptConfig),
}

/// Which data to train on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataKind {
    /// Two interleaved spirals (generated).
    Spirals,
    /// 8x8 handwritten digits (shipped).
    Digits,
    /// Character-level English text (shipped).
    Text,
    /// 1,024 digits whose labels are re-drawn every `task_steps` steps.
    Continual,
}

impl DataKind {
    /// Parses `spirals|digits|text|continual`.
    pub fn parse(s: &str) -> Result<DataKind> {
        match s {
            "spirals" => Ok(DataKind::Spirals),
            "digits" => Ok(DataKind::Digits),
            "text" => Ok(DataKind::Text),
            "continual" => Ok(DataKind::Continual),
            other => Err(Error::invalid(
                "data",
                format!("unknown data `{other}` (expected spirals, digits, text or continual)"),
            )),
        }
    }
}

/// Everything that defines a run (stored in checkpoints; a resumed run must match it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// The model.
    pub model: ModelConfig,
    /// The data.
    pub data: DataKind,
    /// The optimizer.
    pub optimizer: OptimConfig,
    /// Project every NaP group of the model after each step.
    pub nap: bool,
    /// Steps to train for in all.
    pub steps: u64,
    /// Examples (MLP) or sequences (GPT) per batch.
    pub batch: usize,
    /// Evaluate at x every this many steps (and at the end).
    pub eval_every: u64,
    /// Read the training loss back every this many steps.
    pub metrics_every: u64,
    /// Seed of initialization and batch sampling.
    pub seed: u64,
    /// Steps per task of the continual stream.
    pub task_steps: u64,
}

impl TrainConfig {
    /// The default model for `data`: digits MLP 64-256-256-10, spirals (2 + 1)-64-64-2
    /// (a constant third input, see [`spirals::with_one`]),
    /// continual 64-256-256-10, text: a 2-layer GPT of width 64, 4 heads, context 64.
    pub fn default_model(data: DataKind) -> ModelConfig {
        match data {
            DataKind::Spirals => ModelConfig::Mlp(MlpConfig {
                input: 3,
                hidden: vec![64, 64],
                classes: 2,
            }),
            DataKind::Digits | DataKind::Continual => ModelConfig::Mlp(MlpConfig {
                input: 64,
                hidden: vec![256, 256],
                classes: 10,
            }),
            DataKind::Text => ModelConfig::Gpt(GptConfig {
                vocab: Text::shipped().vocab.len(),
                context: 64,
                width: 64,
                heads: 4,
                layers: 2,
            }),
        }
    }

    /// Checks the settings against each other; errors name the field.
    pub fn validate(&self) -> Result<()> {
        self.optimizer.validate()?;
        for (name, v) in [
            ("steps", self.steps),
            ("batch", self.batch as u64),
            ("eval_every", self.eval_every),
            ("metrics_every", self.metrics_every),
            ("task_steps", self.task_steps),
        ] {
            if v == 0 {
                return Err(Error::invalid(name, "must be at least 1"));
            }
        }
        match (&self.model, self.data) {
            (ModelConfig::Gpt(_), DataKind::Text) => Ok(()),
            (ModelConfig::Mlp(_), DataKind::Text) => Err(Error::invalid("model", "text needs --model gpt")),
            (ModelConfig::Gpt(_), _) => Err(Error::invalid("model", "gpt trains on --data text only")),
            (ModelConfig::Mlp(m), data) => {
                let (input, classes) = if data == DataKind::Spirals { (3, 2) } else { (64, 10) };
                if m.input != input || m.classes != classes {
                    return Err(Error::invalid(
                        "model",
                        format!("this data needs an mlp with {input} inputs and {classes} classes"),
                    ));
                }
                Ok(())
            }
        }
    }
}

/// One row of `metrics.csv`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsRow {
    /// Steps taken.
    pub step: u64,
    /// Mean loss of the last read-back batch, at y.
    pub train_loss: f64,
    /// Loss of the evaluation set at x.
    pub eval_loss: f64,
    /// Accuracy of the evaluation set at x.
    pub eval_accuracy: f64,
    /// Euclidean norm of the last gradient.
    pub grad_norm: f64,
    /// Frobenius norm of the hidden (scale-invariant) weights at x (0 when the model has none).
    pub hidden_weight_norm: f64,
    /// The step size gamma of the last step.
    pub gamma: f64,
    /// gamma / |W| (Adam kinds) or gamma / |W|^2 (SGD) of the hidden weights (NaN without any).
    pub effective_lr: f64,
    /// Task of the continual stream (0 otherwise).
    pub task: u64,
}

const CSV_HEADER: &str = "step,train_loss,eval_loss,eval_accuracy,grad_norm,hidden_weight_norm,gamma,effective_lr,task";

impl MetricsRow {
    fn csv(&self) -> String {
        format!(
            "{},{},{},{},{},{},{},{},{}",
            self.step,
            self.train_loss,
            self.eval_loss,
            self.eval_accuracy,
            self.grad_norm,
            self.hidden_weight_norm,
            self.gamma,
            self.effective_lr,
            self.task
        )
    }
}

/// Where the data of a run comes from.
enum Source {
    Classes {
        train: Classification,
        test: Classification,
    },
    Text {
        train: Text,
        test: Text,
        context: usize,
    },
    Continual(Continual),
}

/// A checkpoint is written at the first evaluation after every this many steps, and at the end.
const CHECKPOINT_EVERY: u64 = 1000;

/// Rows of the evaluation set (examples or tokens).
const TEXT_EVAL_SEQUENCES: usize = 16;

impl Source {
    fn new(cfg: &TrainConfig) -> Source {
        match (cfg.data, &cfg.model) {
            (DataKind::Text, ModelConfig::Gpt(g)) => {
                let (train, test) = Text::shipped().split(0.1);
                Source::Text {
                    train,
                    test,
                    context: g.context,
                }
            }
            (DataKind::Spirals, _) => {
                let all = spirals::with_constant_input(&spirals::spirals(2000, 0.02, cfg.seed ^ 0x5));
                let (train, test) = all.split(0.25, cfg.seed);
                Source::Classes { train, test }
            }
            (DataKind::Continual, _) => {
                Source::Continual(Continual::new(&digits::digits(), 1024, cfg.task_steps, cfg.seed))
            }
            _ => {
                let (train, test) = digits::digits_split(cfg.seed);
                Source::Classes { train, test }
            }
        }
    }

    fn batch(&self, step: u64, batch: usize, rng: &mut Rng) -> (Inputs, Vec<u32>) {
        let classes = |set: &Classification, rng: &mut Rng| {
            let rows: Vec<usize> = (0..batch).map(|_| rng.below(set.len())).collect();
            let b = set.select(&rows);
            (Inputs::Features(b.inputs), b.labels)
        };
        match self {
            Source::Classes { train, .. } => classes(train, rng),
            Source::Continual(c) => classes(&c.task_data(c.task(step)), rng),
            Source::Text { train, context, .. } => {
                let (x, y) = train.batch(batch, *context, rng);
                (Inputs::Tokens(x), y)
            }
        }
    }

    /// The evaluation set for the state after `step` steps (continual: the current task).
    fn eval_set(&self, step: u64) -> (Inputs, Vec<u32>) {
        match self {
            Source::Classes { test, .. } => (Inputs::Features(test.inputs.clone()), test.labels.clone()),
            Source::Continual(c) => {
                let d = c.task_data(c.task(step.saturating_sub(1)));
                (Inputs::Features(d.inputs), d.labels)
            }
            Source::Text { test, context, .. } => {
                let (x, y) = test.batch(TEXT_EVAL_SEQUENCES, *context, &mut Rng::new(7));
                (Inputs::Tokens(x), y)
            }
        }
    }

    fn eval_rows(&self) -> usize {
        match self {
            Source::Classes { test, .. } => test.len(),
            Source::Continual(c) => c.task_data(0).len(),
            Source::Text { .. } => TEXT_EVAL_SEQUENCES,
        }
    }
}

fn graph(gpu: &Gpu, model: &ModelConfig, weights: Weights<'_>, rows: usize) -> Result<Box<dyn Graph>> {
    Ok(match model {
        ModelConfig::Mlp(m) => Box::new(MlpGraph::new(gpu, m, weights, rows)?),
        ModelConfig::Gpt(g) => Box::new(GptGraph::new(gpu, g, weights, rows)?),
    })
}

fn describe(model: &ModelConfig) -> &dyn Model {
    match model {
        ModelConfig::Mlp(m) => m,
        ModelConfig::Gpt(g) => g,
    }
}

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
    cfg.validate()?;
    let model = describe(&cfg.model);
    let source = Source::new(cfg);
    let arena = Arena::new(gpu, &model.tensors(), None)?;
    model.initialize(gpu, &arena, cfg.seed)?;
    let nap = cfg.nap.then(|| model.nap_groups());
    let mut opt = GpuOptimizer::new(gpu, &arena, &cfg.optimizer, nap.as_ref())?;
    let mut rng = Rng::new(cfg.seed.wrapping_add(1));
    let config_json = serde_json::to_string(&TrainConfig {
        steps: 0,
        ..cfg.clone()
    })
    .map_err(|e| Error::Gpu(format!("config as JSON: {e}")))?;

    let mut start = 0;
    if let Some(dir) = &opts.resume {
        let path = dir.join("checkpoint.safetensors");
        let loaded = checkpoint::load(&path)?;
        if loaded.meta.config != config_json {
            return Err(Error::invalid(
                path.display().to_string(),
                "this checkpoint was written by a run with other settings (only --steps may change on resume)",
            ));
        }
        start = loaded.meta.step;
        rng = Rng::from_state(loaded.meta.rng);
        loaded.apply(&path, gpu, &arena, &mut opt)?;
    }

    let train_graph = graph(gpu, &cfg.model, Weights::train(&arena), train_rows(cfg))?;
    let x_buf = gpu.storage("x export", arena.layout.bytes());
    let export = opt.x_export(gpu, &arena, &x_buf)?;
    let eval_weights = Weights {
        arena: &arena,
        values: &x_buf,
    };
    let eval_graph = graph(gpu, &cfg.model, eval_weights, source.eval_rows())?;

    let mut csv = match &opts.out {
        Some(dir) => Some(open_csv(dir, opts.resume.is_some())?),
        None => None,
    };
    let mut readback = AsyncReadback::default();
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
        train_graph.write_batch(gpu, &inputs, &targets)?;
        gpu.submit(|enc| {
            record_train_step(gpu, enc, train_graph.as_ref(), &mut opt)?;
            if step % cfg.metrics_every == 0 {
                readback.record(gpu, enc, train_graph.loss().stats(), 16, step);
            }
            Ok::<(), Error>(())
        })?;
        opt.submitted();
        readback.submitted();
        for (s, bytes) in readback.poll(gpu)? {
            last_loss = record_train_loss(&mut summary, csv.as_mut(), s, &bytes)?;
        }
        let done = step + 1;
        observer.step(&Progress {
            done,
            total: cfg.steps,
            train_loss: last_loss,
            steps_per_s: (done - start) as f64 / started.elapsed().as_secs_f64().max(1e-9),
        });
        if done % cfg.eval_every == 0 || done == stop {
            for (s, bytes) in readback.finish(gpu)? {
                last_loss = record_train_loss(&mut summary, csv.as_mut(), s, &bytes)?;
            }
            opt.check(gpu)?;
            let eval = Eval {
                export: &export,
                x: &x_buf,
                graph: eval_graph.as_ref(),
            };
            let row = evaluate(gpu, cfg, &source, &arena, &opt, &eval, done, last_loss)?;
            if let Some((file, path)) = &mut csv {
                write_row(file, path, &row.csv())?;
            }
            observer.eval(&row);
            summary.evals.push(row);
            let checkpoint_due = done % CHECKPOINT_EVERY < cfg.eval_every || done == stop;
            if let (Some(dir), true) = (&opts.out, checkpoint_due) {
                let meta = Meta {
                    step: done,
                    config: config_json.clone(),
                    rng: rng.state(),
                };
                checkpoint::save(&dir.join("checkpoint.safetensors"), gpu, &arena, &opt, &x_buf, &meta)?;
            }
        }
    }
    observer.finished();
    Ok(summary)
}

fn train_rows(cfg: &TrainConfig) -> usize {
    cfg.batch
}

fn write_row(file: &mut std::fs::File, path: &Path, line: &str) -> Result<()> {
    writeln!(file, "{line}").map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Keeps a read-back training loss (of the batch before step `step`'s update)
/// and writes its row (eval columns empty) to metrics.csv.
fn record_train_loss(
    summary: &mut Summary,
    csv: Option<&mut (std::fs::File, PathBuf)>,
    step: u64,
    bytes: &[u8],
) -> Result<f64> {
    let loss = bytemuck::pod_read_unaligned::<LossStats>(bytes).mean as f64;
    summary.train_losses.push((step, loss));
    if let Some((file, path)) = csv {
        write_row(file, path, &format!("{step},{loss},,,,,,,"))?;
    }
    Ok(loss)
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
    let model = describe(&cfg.model);
    let hidden: Vec<String> = model
        .nap_groups()
        .groups
        .iter()
        .flat_map(|g| g.tensors.iter().filter(|t| t.ends_with("weight")).cloned())
        .collect();
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
    } else if cfg.optimizer.kind == Kind::SgdSf {
        gamma / hidden_norm.powi(2)
    } else {
        gamma / hidden_norm
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

fn open_csv(dir: &Path, append: bool) -> Result<(std::fs::File, PathBuf)> {
    let io = |source| Error::Io {
        path: dir.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let path = dir.join("metrics.csv");
    if append && path.exists() {
        let file = std::fs::OpenOptions::new().append(true).open(&path).map_err(io)?;
        return Ok((file, path));
    }
    let mut file = std::fs::File::create(&path).map_err(io)?;
    writeln!(file, "{CSV_HEADER}").map_err(io)?;
    Ok((file, path))
}

/// Reads a `metrics.csv` back: (step, train_loss, eval_loss, eval_accuracy) per row.
pub fn read_metrics(path: &Path) -> Result<Vec<(f64, f64, f64, f64)>> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })?;
    text.lines()
        .skip(1)
        .enumerate()
        .map(|(i, line)| {
            let v: Vec<f64> = line.split(',').map(|f| f.parse().unwrap_or(f64::NAN)).collect();
            if v.len() < 4 {
                return Err(Error::invalid(
                    format!("{}:{}", path.display(), i + 2),
                    "too few columns",
                ));
            }
            Ok((v[0], v[1], v[2], v[3]))
        })
        .collect()
}
