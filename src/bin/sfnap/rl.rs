//! `sfnap rl`: a DQN agent trained on the device on CartPole, Acrobot or a
//! non-stationary variant; `--watch RUN` plays one greedy episode of a run.

use std::path::PathBuf;

use crate::optim_args::OptimArgs;
use crate::out::say;
use sfnap::gpu::{BackendChoice, Gpu};
use sfnap::optim::{settings, Kind};
use sfnap::rl::epsilon::Epsilon;
use sfnap::rl::run::{self, RunOptions};
use sfnap::rl::{AgentConfig, Variant};
use sfnap::Error;

#[derive(Clone, clap::Args)]
pub struct RlArgs {
    /// The environments: CartPole-v1, Acrobot-v1, CartPole with observation offsets that
    /// change every --switch-every steps, or CartPole and Acrobot in alternating blocks.
    #[arg(long, value_enum, default_value_t = Variant::Cartpole)]
    env: Variant,
    /// Environments stepped together (an agent step steps each once).
    #[arg(long, default_value_t = 256)]
    envs: usize,
    /// Agent steps in all.
    #[arg(long, default_value_t = 4000)]
    steps: u64,
    /// Seed of the network, the environments' starts and every draw.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The Q-network's hidden widths, comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "W,W,...", default_value = "64,64")]
    hidden: Vec<usize>,
    /// No LayerNorm before each ReLU (a plain MLP with biases; refused with --nap).
    #[arg(long)]
    no_norm: bool,
    /// Normalize-and-Project every hidden weight and norm after each optimizer step.
    #[arg(long)]
    nap: bool,
    /// The optimizer [default: adamw, with lr 5e-4 unless --lr is given].
    #[command(flatten)]
    optim: OptimArgs,
    /// The discount.
    #[arg(long, default_value_t = 0.98)]
    gamma: f64,
    /// What the rewards are multiplied by before they enter the replay buffer (the
    /// Q-values' scale; the returns reported are the environment's).
    #[arg(long, default_value_t = 1.0)]
    reward_scale: f64,
    /// Transitions per minibatch.
    #[arg(long, default_value_t = 128)]
    batch: usize,
    /// Transitions the replay buffer holds.
    #[arg(long, default_value_t = 100_000)]
    buffer: usize,
    /// Agent steps before the first learn step.
    #[arg(long, default_value_t = 20)]
    learning_starts: u64,
    /// Learn steps per agent step.
    #[arg(long, default_value_t = 4)]
    updates: u64,
    /// Learn steps between two copies of the online network's x into the target network.
    #[arg(long, default_value_t = 20)]
    target_every: u64,
    /// Epsilon at the first agent step.
    #[arg(long, default_value_t = 1.0)]
    eps_start: f64,
    /// Epsilon after the decay.
    #[arg(long, default_value_t = 0.01)]
    eps_end: f64,
    /// Agent steps of epsilon's linear decay.
    #[arg(long, default_value_t = 500)]
    eps_decay: u64,
    /// continual-cartpole and sequential only: agent steps per offset level or block [default: 500].
    #[arg(long, value_name = "STEPS")]
    switch_every: Option<u64>,
    /// Agent steps between two rows of metrics.csv.
    #[arg(long, default_value_t = 100)]
    eval_every: u64,
    /// Directory for metrics.csv, returns.png and checkpoint.safetensors.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue the run in DIR from its checkpoint, with its settings (--steps may grow).
    #[arg(long, value_name = "DIR", conflicts_with = "out")]
    resume: Option<PathBuf>,
    /// With --out: replace the run that DIR holds.
    #[arg(long, requires = "out")]
    overwrite: bool,
    /// With --out or --resume: save a checkpoint at the first row after every this many
    /// agent steps, and at the end [default: 10000].
    #[arg(long, value_name = "STEPS")]
    checkpoint_every: Option<u64>,
    /// Play one greedy episode of each environment of the run in DIR (its checkpoint's x)
    /// and print it as text.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["out", "resume"])]
    watch: Option<PathBuf>,
}

/// adamw's learning rate in `sfnap rl` unless `--lr` is given.
const ADAMW_LR: f64 = 5e-4;

/// `--switch-every`'s default.
const SWITCH_EVERY: u64 = 500;

/// The flags that say how to run, not what: the only ones `--resume` and
/// `--watch` take.
const RUN_FLAGS: [&str; 6] = ["resume", "steps", "checkpoint-every", "eval-every", "backend", "watch"];

/// The agent `sfnap rl`'s flags describe.
fn agent_config(a: &RlArgs, given: &[String]) -> Result<AgentConfig, Error> {
    let kind = a.optim.kind(Kind::Adamw);
    for flag in given {
        if let Some(refusal) = settings::flag_refusal(flag, kind) {
            return Err(refusal.flag_error());
        }
    }
    let switch_every = match (a.env.switches(), a.switch_every) {
        (true, s) => s.unwrap_or(SWITCH_EVERY),
        (false, None) => 1,
        (false, Some(_)) => {
            return Err(Error::invalid(
                "switch-every",
                format!(
                    "applies to --env continual-cartpole and sequential only ({} never changes)",
                    a.env
                ),
            ))
        }
    };
    let mut cfg = AgentConfig {
        variant: a.env,
        envs: a.envs,
        hidden: a.hidden.clone(),
        norm: !a.no_norm,
        nap: a.nap,
        optimizer: sfnap::optim::OptimConfig::new(kind),
        gamma: a.gamma,
        reward_scale: a.reward_scale,
        batch: a.batch,
        buffer: a.buffer,
        learning_starts: a.learning_starts,
        updates: a.updates,
        target_every: a.target_every,
        epsilon: Epsilon {
            start: a.eps_start,
            end: a.eps_end,
            decay_steps: a.eps_decay,
        },
        switch_every,
        seed: a.seed,
    };
    cfg.optimizer = a.optim.config(given, cfg.learn_steps(a.steps), a.seed, Kind::Adamw)?;
    if kind == Kind::Adamw && a.optim.lr.is_none() {
        cfg.optimizer.lr = Some(ADAMW_LR);
    }
    if kind == Kind::SfPlus && !a.optim.sf_plus_reference && a.optim.polyak_growth.is_none() {
        // The cap may double once per pass over the replay buffer's rows.
        let passes = a.buffer as f64 / a.batch.max(1) as f64;
        cfg.optimizer.polyak_growth = Some(sfnap::optim::plus::growth_per_step(passes));
    }
    cfg.validate()?;
    Ok(cfg)
}

/// `sfnap rl`.
pub fn rl_main(backend: BackendChoice, a: &RlArgs, given: &[String]) -> Result<(), Error> {
    let setting = given.iter().find(|g| !RUN_FLAGS.contains(&g.as_str()));
    if let Some(dir) = &a.watch {
        if let Some(flag) = given.iter().find(|g| !["watch", "backend"].contains(&g.as_str())) {
            return Err(Error::invalid(
                flag.as_str(),
                "--watch takes no other flag: it plays the run's own agent",
            ));
        }
        for line in sfnap::rl::watch::watch(dir)? {
            say!("{line}");
        }
        return Ok(());
    }
    let cfg = match &a.resume {
        Some(dir) => {
            if let Some(flag) = setting {
                return Err(Error::invalid(
                    flag.as_str(),
                    "--resume continues the run with its own settings: leave the setting out",
                ));
            }
            run::resume_config(dir)?
        }
        None => agent_config(a, given)?,
    };
    if a.checkpoint_every.is_some() && a.out.is_none() && a.resume.is_none() {
        return Err(Error::invalid(
            "checkpoint-every",
            "applies with --out DIR or --resume DIR only (without them no checkpoint is written)",
        ));
    }
    let gpu = Gpu::new(backend)?;
    eprintln!("adapter: {}", gpu.describe());
    let opts = RunOptions {
        steps: a.steps,
        eval_every: a.eval_every,
        out: a.out.clone().or_else(|| a.resume.clone()),
        resume: a.resume.is_some(),
        overwrite: a.overwrite,
        checkpoint_every: a.checkpoint_every,
    };
    let started = std::time::Instant::now();
    let summary = run::run(&gpu, &cfg, &opts, &mut |row| {
        eprintln!(
            "step {} ({} env steps, {:.0} s): {}, td loss {:.4}, epsilon {:.3}",
            row.step,
            row.env_steps,
            started.elapsed().as_secs_f64(),
            returns(row),
            row.td_loss,
            row.epsilon
        );
    })?;
    if let Some(dir) = &opts.out {
        let points = run::read_returns(dir)?;
        sfnap::plot::plot_returns(&dir.join(run::RUN_FILES[2]), &points, &cfg.optimizer.kind.to_string())?;
    }
    if let Some(last) = summary.rows.last() {
        say!(
            "step {}: {} ({} episodes, {:.0} s)",
            last.step,
            returns(last),
            last.episodes,
            started.elapsed().as_secs_f64()
        );
    }
    if let Some(dir) = &opts.out {
        say!(
            "wrote {0}/metrics.csv, {0}/returns.png, {0}/checkpoint.safetensors",
            dir.display()
        );
    }
    Ok(())
}

/// A row's mean return in words.
fn returns(row: &run::Row) -> String {
    match row.episodes {
        0 => "no episode has ended yet".to_string(),
        n => format!(
            "mean return {:.2} over the last {} episodes",
            row.mean_return,
            run::RECENT.min(n as usize)
        ),
    }
}
