//! The optimizer's flags, shared by `sfnap train` and `sfnap rl`, and the
//! [`OptimConfig`] they describe; a flag the kind would ignore is refused as
//! the settings table says ([`sfnap::optim::settings`]).

use sfnap::optim::bf16::{Rounding, StateDtype};
use sfnap::optim::{settings, Kind, OptimConfig, Schedule};
use sfnap::Error;

/// The optimizer's flags.
#[derive(Clone, clap::Args)]
pub struct OptimArgs {
    /// Optimizer kind [default: sf_plus for train, adamw for rl].
    #[arg(long, value_enum)]
    pub opt: Option<Kind>,
    /// Learning rate, every kind (sf_plus: a multiplier of its Polyak step, default 1).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Warmup steps, at least 2 (0: none): sgd_sf, adamw_sf, adamw_sf_paper, and adamw with
    /// --schedule warmup, wsd or cosine; radam_sf, sf_plus and adamw's constant schedule refuse it.
    #[arg(long, default_value_t = 0)]
    pub warmup: u64,
    /// adamw only: its learning-rate schedule; the other kinds refuse any but constant.
    #[arg(long, value_enum, default_value_t = ScheduleArg::Constant)]
    pub schedule: ScheduleArg,
    /// Weight decay, every kind as it defines it (adamw: decoupled; sf_plus: AdamC's;
    /// the other Schedule-Free kinds: at y). Norms and biases do not decay.
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f64,
    /// Schedule-Free kinds but sf_plus (adamw and sf_plus refuse it): x averages about the
    /// last STEPS steps (c = max(w / W_sum, 1 / STEPS)) instead of the whole run; 0: the paper's average.
    #[arg(long, default_value_t = 0, value_name = "STEPS")]
    pub sf_window: u64,
    /// Schedule-Free kinds but sf_plus (adamw and sf_plus refuse it): the interpolation weight
    /// beta of y = (1 - beta) z + beta x (betas[0] of the Adam kinds, sgd_sf's momentum; default 0.9).
    #[arg(long, value_name = "BETA")]
    pub sf_beta: Option<f64>,
    /// sf_plus: the paper's algorithm as published (the Polyak step uncapped,
    /// inner momentum 0.9, beta2 0.95) instead of sfnap's (see docs/algorithms.md).
    #[arg(long, conflicts_with = "polyak_growth")]
    pub sf_plus_reference: bool,
    /// sf_plus: the factor by which the Polyak step's cap may grow per step, at least 1
    /// (1: it never grows) [default: doubling at most once per pass over the training data].
    #[arg(long, value_name = "G")]
    pub polyak_growth: Option<f64>,
    /// Every kind: how the optimizer's state (z, v, m, x) is stored: f32, or bf16 (two bytes
    /// a value, written with stochastic rounding seeded by --seed; the parameters stay f32).
    #[arg(long, value_enum, default_value_t = StateDtype::F32, value_name = "DTYPE")]
    pub state_dtype: StateDtype,
    /// With --state-dtype bf16 only: how bf16 state rounds, stochastically or to nearest
    /// (to measure what stochastic rounding buys).
    #[arg(long, value_enum, default_value_t = Rounding::Stochastic, value_name = "ROUNDING")]
    pub state_rounding: Rounding,
    /// With --state-dtype bf16 and stochastic rounding only: the seed of the rounding's
    /// random bits [default: --seed folded to 32 bits].
    #[arg(long, value_name = "SEED")]
    pub state_seed: Option<u32>,
    /// adamw_sf only: inner momentum mu, in [0, 1) (0: none).
    #[arg(long, default_value_t = 0.0, value_name = "MU")]
    pub inner_momentum: f64,
}

impl OptimArgs {
    /// The kind: `--opt`, or the command's `default`.
    pub fn kind(&self, default: Kind) -> Kind {
        self.opt.unwrap_or(default)
    }

    /// The optimizer of a run of `steps` optimizer steps seeded `seed`. `given`
    /// holds the flags given on the command line (without dashes). sf_plus's
    /// growth cap, when not given, is 1 here: the caller sets it from its run.
    pub fn config(&self, given: &[String], steps: u64, seed: u64, default: Kind) -> Result<OptimConfig, Error> {
        let a = self;
        let kind = a.kind(default);
        // Flags that are not fields of their own (they choose a variant, or map onto
        // a field by kind), then every field the flags set.
        for flag in given {
            if let Some(refusal) = settings::flag_refusal(flag, kind) {
                return Err(refusal.flag_error());
            }
        }
        // sfnap's sf_plus unless the reference is asked for; its growth cap, when not
        // given, follows from the data's size once the run is known (below).
        let mut optimizer = match kind {
            Kind::SfPlus if !a.sf_plus_reference => OptimConfig::sf_plus_capped(a.polyak_growth.unwrap_or(1.0)),
            _ => OptimConfig::new(kind),
        };
        optimizer.lr = a.lr;
        optimizer.weight_decay = a.weight_decay;
        optimizer.sf_window = a.sf_window;
        if a.state_dtype == StateDtype::F32 && a.state_rounding != Rounding::Stochastic {
            return Err(Error::invalid(
                "state-rounding",
                "applies to --state-dtype bf16 only: f32 state is never rounded",
            ));
        }
        if a.state_seed.is_some() && (a.state_dtype == StateDtype::F32 || a.state_rounding == Rounding::Nearest) {
            return Err(Error::invalid(
                "state-seed",
                "applies to --state-dtype bf16 with stochastic rounding only: nothing else draws random bits",
            ));
        }
        optimizer.state_dtype = a.state_dtype;
        optimizer.state_rounding = a.state_rounding;
        if a.state_dtype == StateDtype::Bf16 {
            // The rounding's seed is the run's (both halves of --seed folded into 32 bits)
            // unless given.
            optimizer.state_seed = a.state_seed.unwrap_or((seed ^ (seed >> 32)) as u32);
        }
        optimizer.inner_momentum = a.inner_momentum;
        if kind != Kind::SfPlus {
            optimizer.polyak_growth = a.polyak_growth;
        }
        if let Some(beta) = a.sf_beta {
            optimizer.set_sf_beta(beta);
        }
        // adamw's warmup is its schedule's (without one, the table refuses it);
        // the other kinds' is their own.
        if kind != Kind::Adamw || a.schedule == ScheduleArg::Constant {
            optimizer.warmup_steps = a.warmup;
        }
        optimizer.schedule = a.schedule.build(a.warmup, steps);
        if let Some(refusal) = settings::refusal(&optimizer) {
            return Err(refusal.flag_error());
        }
        // Settings that would leave the run as it is without them are refused too.
        if a.warmup == 1 {
            return Err(Error::invalid(
                "warmup",
                "one step of warmup is none (the multiplier of warmup step t is t / W = 1): use 0 or at least 2",
            ));
        }
        if a.schedule == ScheduleArg::Warmup && a.warmup == 0 {
            return Err(Error::invalid(
                "schedule",
                "warmup needs --warmup STEPS: without it the schedule is constant",
            ));
        }
        if a.schedule == ScheduleArg::Wsd && steps < 10 {
            return Err(Error::invalid(
                "schedule",
                "wsd decays over the last 20% of --steps: under 10 steps that is one step at multiplier 1, \
                 no decay (use at least 10 steps)",
            ));
        }
        Ok(optimizer)
    }
}

/// `--schedule`: adamw's learning-rate schedule, made to span `--steps`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScheduleArg {
    /// Multiplier 1 throughout.
    Constant,
    /// A linear warmup over --warmup steps, then 1.
    Warmup,
    /// Warmup, stable, then a linear decay over the last 20% of --steps (at least 10 steps).
    Wsd,
    /// Warmup, then a cosine from 1 to 0 at --steps.
    Cosine,
}

impl ScheduleArg {
    /// The schedule of a run of `steps` steps with `warmup` warmup steps.
    fn build(self, warmup: u64, steps: u64) -> Schedule {
        match self {
            ScheduleArg::Constant => Schedule::Constant,
            ScheduleArg::Warmup => Schedule::Warmup { warmup_steps: warmup },
            ScheduleArg::Wsd => Schedule::Wsd {
                warmup_steps: warmup,
                decay_steps: (steps / 5).max(1),
                total_steps: steps,
            },
            ScheduleArg::Cosine => Schedule::Cosine {
                warmup_steps: warmup,
                total_steps: steps,
                final_frac: 0.0,
            },
        }
    }
}
