//! A run of an [`Agent`]: agent steps in submissions, episode returns and
//! losses read back asynchronously, a row of `metrics.csv` at every
//! evaluation, checkpoints that hold the whole agent (the replay buffer, the
//! environments, the target network and the clock with the Q-network and the
//! optimizer), and a resume that continues bit for bit.

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::agent::{Agent, AgentConfig};
use super::episodes::Episode;
use crate::checkpoint::{self, Meta};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::model::Model;
use crate::train::rundir::RunDir;

/// The files a run writes into its directory (the checkpoint first).
pub const RUN_FILES: [&str; 3] = ["checkpoint.safetensors", "metrics.csv", "returns.png"];

/// Episodes in the mean return a row reports.
pub const RECENT: usize = 100;

const CSV_HEADER: &str = "step,env_steps,learn_steps,episodes,mean_return,td_loss,grad_norm,hidden_weight_norm,gamma,effective_lr,epsilon,phase";

/// How to run (not what: that is the [`AgentConfig`]).
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Agent steps in all (each steps every environment once).
    pub steps: u64,
    /// Agent steps between two rows of metrics.
    pub eval_every: u64,
    /// The run directory (metrics.csv, checkpoints), if any.
    pub out: Option<PathBuf>,
    /// Continue the run in `out` from its checkpoint.
    pub resume: bool,
    /// Replace a run that `out` holds.
    pub overwrite: bool,
    /// Save a checkpoint at the first row after every this many agent steps
    /// (and at the end); `None`: every [`CHECKPOINT_EVERY`].
    pub checkpoint_every: Option<u64>,
}

/// The default of [`RunOptions::checkpoint_every`].
pub const CHECKPOINT_EVERY: u64 = 10_000;

/// One row of `metrics.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Agent steps taken.
    pub step: u64,
    /// Environment steps taken (agent steps times environments).
    pub env_steps: u64,
    /// Learn (optimizer) steps taken.
    pub learn_steps: u64,
    /// Episodes ended.
    pub episodes: u64,
    /// Mean return of the last [`RECENT`] episodes (NaN before the first).
    pub mean_return: f64,
    /// The TD loss of the last learn step read back (NaN before the first).
    pub td_loss: f64,
    /// The Euclidean norm of the last gradient.
    pub grad_norm: f64,
    /// The Frobenius norm of the hidden weights at x.
    pub hidden_weight_norm: f64,
    /// The step size gamma of the last learn step.
    pub gamma: f64,
    /// The effective learning rate of the hidden weights (gamma / |W|, or / |W|^2 for SGD).
    pub effective_lr: f64,
    /// Epsilon of the last agent step.
    pub epsilon: f64,
    /// The offset level (`continual-cartpole`), the environment (`sequential`:
    /// 0 CartPole, 1 Acrobot), else 0, of the last agent step.
    pub phase: u64,
}

impl Row {
    fn csv(&self) -> String {
        format!(
            "{},{},{},{},{},{},{},{},{},{},{},{}",
            self.step,
            self.env_steps,
            self.learn_steps,
            self.episodes,
            self.mean_return,
            self.td_loss,
            self.grad_norm,
            self.hidden_weight_norm,
            self.gamma,
            self.effective_lr,
            self.epsilon,
            self.phase
        )
    }
}

/// What a run reports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// The rows of this invocation.
    pub rows: Vec<Row>,
    /// Every episode that ended in this invocation, in order.
    pub episodes: Vec<Episode>,
}

/// The host's side of a run, which a checkpoint keeps with the device's.
#[derive(Debug, Clone, PartialEq)]
struct Tally {
    episodes: u64,
    recent: VecDeque<f32>,
    td_loss: f64,
}

impl Tally {
    fn take(&mut self, episodes: &[Episode], losses: &[(u64, f64)]) {
        for e in episodes {
            self.episodes += 1;
            if self.recent.len() == RECENT {
                self.recent.pop_front();
            }
            self.recent.push_back(e.ret);
        }
        if let Some(&(_, loss)) = losses.last() {
            self.td_loss = loss;
        }
    }

    fn mean_return(&self) -> f64 {
        if self.recent.is_empty() {
            return f64::NAN;
        }
        self.recent.iter().map(|&r| f64::from(r)).sum::<f64>() / self.recent.len() as f64
    }

    /// Agent steps `t`, then the episodes, the loss's bits, and the recent returns.
    fn bytes(&self, t: u64) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend(t.to_le_bytes());
        b.extend(self.episodes.to_le_bytes());
        b.extend(self.td_loss.to_bits().to_le_bytes());
        for r in &self.recent {
            b.extend(r.to_le_bytes());
        }
        b
    }

    fn from_bytes(b: &[u8]) -> Option<(u64, Tally)> {
        let word = |i: usize| Some(u64::from_le_bytes(b.get(8 * i..8 * i + 8)?.try_into().ok()?));
        let (t, episodes, loss) = (word(0)?, word(1)?, f64::from_bits(word(2)?));
        let rest = &b[24..];
        if !rest.len().is_multiple_of(4) || rest.len() / 4 > RECENT {
            return None;
        }
        let recent = rest
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Some((
            t,
            Tally {
                episodes,
                recent,
                td_loss: loss,
            },
        ))
    }
}

/// The checkpoint of run directory `dir`.
pub fn checkpoint_path(dir: &Path) -> PathBuf {
    dir.join(RUN_FILES[0])
}

/// The settings of the run whose checkpoint `dir` holds.
pub fn resume_config(dir: &Path) -> Result<AgentConfig> {
    let path = checkpoint_path(dir);
    let loaded = checkpoint::load(&path)?;
    config_of(&path, &loaded.meta.config)
}

fn config_of(path: &Path, json: &str) -> Result<AgentConfig> {
    serde_json::from_str(json).map_err(|e| {
        Error::invalid(
            path.display().to_string(),
            format!("not a checkpoint of `sfnap rl` ({e})"),
        )
    })
}

/// Runs `cfg` as `opts` says; `on_row` hears every row as it is written.
pub fn run(gpu: &Gpu, cfg: &AgentConfig, opts: &RunOptions, on_row: &mut dyn FnMut(&Row)) -> Result<Summary> {
    if opts.eval_every == 0 {
        return Err(Error::invalid("eval-every", "must be at least 1"));
    }
    if opts.checkpoint_every == Some(0) {
        return Err(Error::invalid("checkpoint-every", "must be at least 1"));
    }
    if opts.resume && opts.out.is_none() {
        return Err(Error::invalid("resume", "needs the run's directory"));
    }
    let mut agent = Agent::new(gpu, cfg)?;
    let run_dir = opts.out.as_deref().map(RunDir::lock).transpose()?;
    if let Some(dir) = &run_dir {
        dir.claim_files(opts.resume, opts.overwrite, &RUN_FILES)?;
    }
    let config_json = serde_json::to_string(cfg).map_err(|e| Error::json("the agent's settings", e))?;
    let mut tally = Tally {
        episodes: 0,
        recent: VecDeque::new(),
        td_loss: f64::NAN,
    };
    let mut start = 0;
    if let (true, Some(dir)) = (opts.resume, &run_dir) {
        let path = checkpoint_path(dir.path());
        let (t, restored) = restore(gpu, &mut agent, &path, &config_json)?;
        start = t;
        tally = restored;
    }
    if start > opts.steps {
        return Err(Error::invalid(
            "steps",
            format!("the checkpoint is at agent step {start}, past --steps {}", opts.steps),
        ));
    }
    let mut csv = run_dir
        .as_ref()
        .map(|d| open_csv(d.path(), opts.resume, start))
        .transpose()?;
    let every = opts.checkpoint_every.unwrap_or(CHECKPOINT_EVERY);
    let mut saved = start;
    let mut summary = Summary::default();
    let mut t = start;
    while t < opts.steps {
        let row_at = ((t / opts.eval_every + 1) * opts.eval_every).min(opts.steps);
        let n = cfg.steps_per_submit().min(row_at - t);
        let r = agent.run(gpu, n)?;
        tally.take(&r.episodes, &r.losses);
        summary.episodes.extend(r.episodes);
        t += n;
        if t < row_at {
            continue;
        }
        let r = agent.finish(gpu)?;
        tally.take(&r.episodes, &r.losses);
        summary.episodes.extend(r.episodes);
        agent.optimizer().check(gpu)?;
        let row = row_of(gpu, &agent, &tally, t)?;
        if let Some((file, path)) = &mut csv {
            writeln!(file, "{}", row.csv()).map_err(|source| Error::Write {
                path: path.display().to_string(),
                source,
            })?;
        }
        on_row(&row);
        summary.rows.push(row);
        if let Some(dir) = &run_dir {
            if t - saved >= every || t == opts.steps {
                save(gpu, &agent, &checkpoint_path(dir.path()), &config_json, &tally, t)?;
                saved = t;
            }
        }
    }
    Ok(summary)
}

/// The row after `t` agent steps (every step's readbacks taken in).
fn row_of(gpu: &Gpu, agent: &Agent, tally: &Tally, t: u64) -> Result<Row> {
    let cfg = agent.config();
    let (arena, opt) = (agent.arena(), agent.optimizer());
    agent.export_x(gpu)?;
    let all: Vec<String> = arena.layout.slots.iter().map(|s| s.name.clone()).collect();
    let hidden = cfg.model().hidden_weights();
    let learn_steps = opt.steps();
    let (grad_norm, gamma) = if learn_steps == 0 {
        (f64::NAN, f64::NAN)
    } else {
        (
            arena.norm_of(gpu, &arena.grads, &all)?,
            f64::from(opt.last_scalars(gpu)?.gamma),
        )
    };
    let hidden_weight_norm = arena.norm_of(gpu, agent.x(), &hidden)?;
    let last = t.saturating_sub(1);
    let phase = match cfg.variant {
        super::Variant::Sequential => cfg.variant.active(last, cfg.switch_every) as u64,
        v => v.level(last, cfg.switch_every),
    };
    Ok(Row {
        step: t,
        env_steps: t * cfg.envs as u64,
        learn_steps,
        episodes: tally.episodes,
        mean_return: tally.mean_return(),
        td_loss: tally.td_loss,
        grad_norm,
        hidden_weight_norm,
        gamma,
        effective_lr: opt.spec().effective_lr(gamma, hidden_weight_norm),
        epsilon: cfg.epsilon.at(last),
        phase,
    })
}

/// Saves the whole agent after `t` agent steps to `path` (atomically).
fn save(gpu: &Gpu, agent: &Agent, path: &Path, config: &str, tally: &Tally, t: u64) -> Result<()> {
    let mut extra = vec![("progress".to_string(), tally.bytes(t))];
    for (name, buffer) in agent.buffers() {
        extra.push((name, gpu.read::<u8>(buffer, 0, buffer.size() as usize)?));
    }
    let meta = Meta {
        step: agent.optimizer().steps(),
        config: config.to_string(),
        rng: 0,
    };
    checkpoint::save_with(path, gpu, agent.arena(), agent.optimizer(), agent.x(), &meta, &extra)
}

/// Writes the checkpoint at `path` into `agent` (built from the same
/// settings); returns its agent steps and the host's tally.
fn restore(gpu: &Gpu, agent: &mut Agent, path: &Path, config: &str) -> Result<(u64, Tally)> {
    let loaded = checkpoint::load(path)?;
    if loaded.meta.config != config {
        let saved = config_of(path, &loaded.meta.config)?;
        return Err(Error::invalid(
            path.display().to_string(),
            format!(
                "its run's settings differ from these ({} vs {}): resume with the run's settings",
                serde_json::to_string(&saved).unwrap_or_default(),
                config
            ),
        ));
    }
    let bad = |what: &str| Error::invalid(path.display().to_string(), format!("checkpoint: {what}"));
    let (t, tally) =
        Tally::from_bytes(&loaded.extra(path, "progress")?).ok_or_else(|| bad("run.progress is malformed"))?;
    let learn = agent.config().learn_steps(t);
    if learn != loaded.meta.step {
        return Err(bad(&format!(
            "{t} agent steps make {learn} learn steps, but the optimizer took {}",
            loaded.meta.step
        )));
    }
    for (name, buffer) in agent.buffers() {
        let bytes = loaded.extra(path, &name)?;
        if bytes.len() as u64 != buffer.size() {
            return Err(bad(&format!(
                "run.{name} has {} bytes, expected {}",
                bytes.len(),
                buffer.size()
            )));
        }
        gpu.queue.write_buffer(buffer, 0, &bytes);
    }
    agent.resume(gpu, loaded, path, t)?;
    Ok((t, tally))
}

/// Opens `DIR/metrics.csv` for a run that starts after `start` agent steps
/// ([`crate::output::open_log`]): a new file, or (resumed) the rows up to
/// `start` kept and the rest dropped.
fn open_csv(dir: &Path, resumed: bool, start: u64) -> Result<(std::fs::File, PathBuf)> {
    let path = dir.join(RUN_FILES[1]);
    let (file, _) = crate::output::open_log(&path, CSV_HEADER, resumed, |step, _| step <= start)?;
    Ok((file, path))
}

/// (agent steps, mean return) of every row of a run's `metrics.csv` that has one.
pub fn read_returns(dir: &Path) -> Result<Vec<(f64, f64)>> {
    let path = dir.join(RUN_FILES[1]);
    let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })?;
    Ok(text
        .lines()
        .skip(1)
        .filter_map(|line| {
            let v: Vec<f64> = line.split(',').map(|f| f.parse().unwrap_or(f64::NAN)).collect();
            (v.len() > 4 && v[4].is_finite()).then(|| (v[0], v[4]))
        })
        .collect())
}
