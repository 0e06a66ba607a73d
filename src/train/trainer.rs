//! One run being trained, as a value: [`Trainer::new`] sets everything up (and
//! resumes), [`Trainer::step`] records and submits one training step,
//! [`Trainer::evaluate`] evaluates at x, and [`Trainer::checkpoint`] saves. The
//! loop that calls them is [`super::train_parallel`].

use std::path::PathBuf;

use super::divergence::{Divergence, Verdict};
use super::metrics::{open_csv, write_row, MetricsRow};
use super::parallel::{stored_settings, Exchange, Parallel};
use super::rundir::RunDir;
use super::source::Source;
use super::{as_today, evaluate, fits, resume_mismatch, Eval, RunOptions, Summary, TrainConfig};
use crate::arena::Arena;
use crate::checkpoint::{self, Meta};
use crate::data::Rng;
use crate::distributed::{agree, checksum};
use crate::error::{Error, Result};
use crate::gpu::readback::AsyncReadback;
use crate::gpu::Gpu;
use crate::model::{Graph, Weights};
use crate::nn::LossStats;
use crate::optim::state_readback::DeviceState;
use crate::optim::{GpuOptimizer, Health, PlusState, XExport};
use crate::train_step::record_train_step;

/// A run's device state, data and outputs between steps.
pub(super) struct Trainer<'a> {
    gpu: &'a Gpu,
    cfg: &'a TrainConfig,
    parallel: Parallel<'a>,
    source: Source,
    arena: Arena,
    opt: GpuOptimizer,
    rng: Rng,
    /// The settings as checkpoints store them (a resume must match them).
    config_json: String,
    /// This rank's run directory (rank 0 with an output only), locked.
    run_dir: Option<RunDir>,
    train_graph: Box<dyn Graph>,
    /// The gradient exchange of a sliced batch (`None`: one slice).
    exchange: Option<Exchange<'a>>,
    /// x, exported for evaluation and checkpoints.
    x: wgpu::Buffer,
    export: XExport,
    eval_graph: Box<dyn Graph>,
    csv: Option<(std::fs::File, PathBuf)>,
    readback: AsyncReadback<Probe>,
    /// sf_plus's state from a readback, until the health flags read with it arrive.
    plus_state: Option<PlusState>,
    divergence: Divergence,
    /// What the run reports.
    pub summary: Summary,
    /// The latest training loss read back (NaN before the first).
    pub last_loss: f64,
    /// Steps taken before this invocation (a resume's checkpoint step).
    pub start: u64,
}

impl<'a> Trainer<'a> {
    /// Checks `cfg` against the adapter, allocates and initializes the model and
    /// the optimizer, and resumes from [`RunOptions::resume`] when given. Only
    /// rank 0 writes to [`RunOptions::out`]; every rank must pass the same settings.
    pub fn new(gpu: &'a Gpu, cfg: &'a TrainConfig, opts: &RunOptions, parallel: Parallel<'a>) -> Result<Trainer<'a>> {
        cfg.validate()?;
        if opts.checkpoint_every == Some(0) {
            return Err(Error::invalid("checkpoint_every", "must be at least 1"));
        }
        let model = cfg.model.model();
        let source = Source::new(cfg)?;
        // Every buffer against the adapter's limits, then the run's memory,
        // before anything is allocated or listed.
        fits(gpu, cfg, &source, opts, &parallel)?;
        let train_rows = Exchange::rows(&parallel, cfg.batch);
        // Rank 0 alone writes; its run directory is locked for this run, and
        // temporary files of a killed save are removed; a run there is kept.
        let out = opts.out.as_deref().filter(|_| parallel.rank() == 0);
        let run_dir = out.map(RunDir::lock).transpose()?;
        if let Some(dir) = &run_dir {
            let here = |r: &std::path::Path| r.canonicalize().ok() == dir.path().canonicalize().ok();
            dir.claim(opts.resume.as_deref().is_some_and(here), opts.overwrite)?;
        }
        let arena = Arena::new(gpu, &model.tensors(), None)?;
        model.initialize(gpu, &arena, cfg.seed)?;
        let nap = cfg.nap.then(|| model.nap_groups());
        let mut opt = GpuOptimizer::new(gpu, &arena, &cfg.optimizer, nap.as_ref())?;
        let mut rng = Rng::new(cfg.seed.wrapping_add(1));
        let config_json = stored_settings(cfg.stored_json()?, &parallel)?;
        if let Some(comm) = parallel.comm {
            agree(comm, "the settings", checksum(config_json.as_bytes()), |msg| {
                Error::invalid(
                    "ranks",
                    format!("{msg}: every rank must be started with the same arguments"),
                )
            })?;
        }
        let mut start = 0;
        if let Some(dir) = &opts.resume {
            let path = dir.join("checkpoint.safetensors");
            let loaded = checkpoint::load(&path)?;
            let (saved, ours) = as_today(&loaded.meta.config, &config_json);
            if saved != ours {
                return Err(Error::invalid(
                    path.display().to_string(),
                    resume_mismatch(&saved, &ours),
                ));
            }
            start = loaded.meta.step;
            rng = Rng::from_state(loaded.meta.rng);
            loaded.apply(&path, gpu, &arena, &mut opt)?;
        }

        let train_graph = cfg.model.graph(gpu, Weights::train(&arena), train_rows)?;
        let exchange = Exchange::new(gpu, &arena, parallel, cfg.batch)?;
        let x = gpu.storage("x export", arena.layout.bytes());
        let export = opt.x_export(gpu, &arena, &x)?;
        let eval_weights = Weights {
            arena: &arena,
            values: &x,
        };
        let eval_graph = cfg.model.graph(gpu, eval_weights, source.eval_rows())?;
        let csv = match &run_dir {
            Some(d) => Some(open_csv(d.path(), opts.resume.is_some(), start)?),
            None => None,
        };
        Ok(Trainer {
            gpu,
            cfg,
            parallel,
            source,
            arena,
            opt,
            rng,
            config_json,
            run_dir,
            train_graph,
            exchange,
            x,
            export,
            eval_graph,
            csv,
            readback: AsyncReadback::default(),
            plus_state: None,
            divergence: Divergence::new(cfg.model.classes()),
            summary: Summary {
                evals: Vec::new(),
                train_losses: Vec::new(),
            },
            last_loss: f64::NAN,
            start,
        })
    }

    /// Takes training step `step` (0-based): writes its batch, records the
    /// whole step into one submission (with the metrics' readbacks every
    /// [`TrainConfig::metrics_every`] steps) and takes in the readbacks that
    /// have finished. Nothing waits for the device.
    pub fn step(&mut self, step: u64) -> Result<()> {
        let (gpu, cfg) = (self.gpu, self.cfg);
        let (inputs, targets) = self.source.batch(step, cfg.batch, &mut self.rng);
        // A sliced batch: the mean gradient over every slice is in the arena before the step.
        let sliced = self.exchange.is_some();
        let loss_stats = match &mut self.exchange {
            None => {
                self.train_graph.write_batch(gpu, &inputs, &targets)?;
                self.train_graph.loss().stats()
            }
            Some(x) => {
                let plus_loss = self.opt.loss_buffer().cloned();
                x.gradients(gpu, self.train_graph.as_ref(), plus_loss.as_ref(), &inputs, &targets)?;
                x.loss_stats()
            }
        };
        let (opt, readback, graph) = (&mut self.opt, &mut self.readback, self.train_graph.as_ref());
        gpu.submit(|enc| {
            if sliced {
                opt.record_step(gpu, enc)?;
            } else {
                record_train_step(gpu, enc, graph, opt)?;
            }
            if step.is_multiple_of(cfg.metrics_every) {
                // The flags first: they name where a loss that is not finite came from.
                if let Some(plus) = opt.plus_state_buffer() {
                    readback.record(gpu, enc, plus, PLUS_STATE_BYTES, Probe::Plus);
                }
                readback.record(gpu, enc, opt.health_buffer(), HEALTH_BYTES, Probe::Health);
                readback.record(gpu, enc, loss_stats, LOSS_STATS_BYTES, Probe::Loss(step));
            }
            Ok::<(), Error>(())
        })?;
        self.opt.submitted();
        self.readback.submitted();
        for (probe, bytes) in self.readback.poll(gpu)? {
            self.absorb(probe, &bytes)?;
        }
        Ok(())
    }

    /// Evaluates at x after `done` steps: waits for the pending readbacks,
    /// checks the device's flags, compares the ranks' weights, writes the row to
    /// `metrics.csv` and keeps it in the summary. `last`: the invocation's last
    /// step (the divergence check then decides on what it has seen).
    pub fn evaluate(&mut self, done: u64, last: bool) -> Result<(MetricsRow, Verdict)> {
        let gpu = self.gpu;
        for (probe, bytes) in self.readback.finish(gpu)? {
            self.absorb(probe, &bytes)?;
        }
        self.opt.check(gpu)?;
        let eval = Eval {
            export: &self.export,
            x: &self.x,
            graph: self.eval_graph.as_ref(),
        };
        let row = evaluate(
            gpu,
            self.cfg,
            &self.source,
            &self.arena,
            &self.opt,
            &eval,
            done,
            self.last_loss,
        )?;
        if let Some(comm) = self.parallel.comm {
            agree(
                comm,
                "the weights (y) and optimizer state",
                self.weights_checksum()?,
                |msg| Error::Numerical(format!("after {done} steps {msg}")),
            )?;
        }
        let verdict = self.divergence.observe(done, row.eval_loss, last)?;
        if let Some((file, path)) = &mut self.csv {
            write_row(file, path, &row.csv())?;
        }
        self.summary.evals.push(row.clone());
        Ok((row, verdict))
    }

    /// The optimizer's state read back now (every step submitted so far done),
    /// with the gradient and loss of the last step.
    pub fn device_state(&self) -> Result<DeviceState> {
        self.opt.device_state(self.gpu, &self.arena)
    }

    /// Saves the checkpoint of `done` steps into the run directory (atomically;
    /// nothing without one).
    pub fn checkpoint(&self, done: u64) -> Result<()> {
        let Some(dir) = &self.run_dir else {
            return Ok(());
        };
        let meta = Meta {
            step: done,
            config: self.config_json.clone(),
            rng: self.rng.state(),
        };
        checkpoint::save(
            &dir.path().join("checkpoint.safetensors"),
            self.gpu,
            &self.arena,
            &self.opt,
            &self.x,
            &meta,
        )
    }

    /// Takes in one finished readback: a training loss is kept and written to
    /// metrics.csv (eval columns empty) unless it is not finite; device flags
    /// that report a problem stop the run.
    fn absorb(&mut self, probe: Probe, bytes: &[u8]) -> Result<()> {
        match probe {
            Probe::Loss(step) => {
                let loss = bytemuck::pod_read_unaligned::<LossStats>(bytes).mean as f64;
                if !loss.is_finite() {
                    return Err(Error::Numerical(format!(
                        "the training loss after {step} steps is {loss}; the run stopped (lower the learning rate)"
                    )));
                }
                self.summary.train_losses.push((step, loss));
                if let Some((file, path)) = &mut self.csv {
                    write_row(file, path, &format!("{step},{loss},,,,,,,"))?;
                }
                self.last_loss = loss;
                Ok(())
            }
            // sf_plus's state arrives first; the two are read together.
            Probe::Plus => {
                self.plus_state = Some(PlusState::from_bytes(bytes));
                Ok(())
            }
            Probe::Health => Health::first_error(self.plus_state.take().as_ref(), &Health::from_bytes(bytes)),
        }
    }

    /// A checksum of the training weights y and, for sf_plus, its device state
    /// (whose L1 norm and inner product every rank computes from its own copy).
    fn weights_checksum(&self) -> Result<u64> {
        let gpu = self.gpu;
        let mut bytes = gpu.read::<u8>(&self.arena.params, 0, self.arena.layout.total * 4)?;
        if let Some(plus) = self.opt.plus_state_buffer() {
            bytes.extend(gpu.read::<u8>(plus, 0, PLUS_STATE_BYTES as usize)?);
        }
        Ok(checksum(&bytes))
    }
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
/// Bytes of the optimizer's health flags.
const HEALTH_BYTES: u64 = std::mem::size_of::<Health>() as u64;
/// Bytes of a batch's loss statistics.
const LOSS_STATS_BYTES: u64 = std::mem::size_of::<LossStats>() as u64;
