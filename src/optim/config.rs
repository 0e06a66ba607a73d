//! Optimizer configurations: the kinds, their hyperparameters, defaults and validation.
//!
//! Field names and defaults follow `docs/algorithms.md`; the same struct is read from a
//! replay file's `optimizer` object (unknown fields are an error).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::optim::bf16::{Rounding, StateDtype};
use crate::optim::settings::{self, Holder};

/// Which update rule an optimizer applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum), value(rename_all = "snake_case"))]
pub enum Kind {
    /// Schedule-Free SGD.
    SgdSf,
    /// Schedule-Free AdamW (optionally with inner momentum).
    AdamwSf,
    /// Schedule-Free AdamW as in the original paper's experiments.
    AdamwSfPaper,
    /// Schedule-Free RAdam (no warmup parameter).
    RadamSf,
    /// ScheduleFree+: learning-rate-free, Polyak step from the loss.
    SfPlus,
    /// Plain decoupled AdamW with a learning-rate schedule (the baseline).
    Adamw,
}

impl Kind {
    /// Every kind, in documentation order.
    pub const ALL: [Kind; 6] = [
        Kind::SgdSf,
        Kind::AdamwSf,
        Kind::AdamwSfPaper,
        Kind::RadamSf,
        Kind::SfPlus,
        Kind::Adamw,
    ];

    /// The name used in files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Kind::SgdSf => "sgd_sf",
            Kind::AdamwSf => "adamw_sf",
            Kind::AdamwSfPaper => "adamw_sf_paper",
            Kind::RadamSf => "radam_sf",
            Kind::SfPlus => "sf_plus",
            Kind::Adamw => "adamw",
        }
    }

    /// Parses a kind name.
    pub fn parse(s: &str) -> Result<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == s).ok_or_else(|| {
            let names: Vec<_> = Kind::ALL.iter().map(|k| k.name()).collect();
            Error::invalid(
                "kind",
                format!("unknown kind `{s}` (expected one of {})", names.join(", ")),
            )
        })
    }

    /// True for the Schedule-Free kinds that keep (y, z) and an implicit x.
    pub fn is_schedule_free(self) -> bool {
        !matches!(self, Kind::Adamw)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The learning-rate multiplier of the `adamw` baseline.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Schedule {
    /// Multiplier 1.
    Constant,
    /// `t / W` while `k < W`, then 1.
    Warmup {
        /// Warmup steps W.
        #[serde(default)]
        warmup_steps: u64,
    },
    /// Warmup, then 1 while `k < T - D`, then `(T - k) / D`.
    Wsd {
        /// Warmup steps W.
        #[serde(default)]
        warmup_steps: u64,
        /// Decay steps D (the last D of T).
        decay_steps: u64,
        /// Total steps T.
        total_steps: u64,
    },
    /// Warmup, then cosine from 1 down to `final_frac` at `T`.
    Cosine {
        /// Warmup steps W.
        #[serde(default)]
        warmup_steps: u64,
        /// Total steps T.
        total_steps: u64,
        /// The multiplier reached at the end.
        #[serde(default)]
        final_frac: f64,
    },
}

impl Schedule {
    /// The multiplier for the step taken after `k` earlier steps.
    pub fn multiplier(&self, k: u64) -> f64 {
        let warm = |w: u64| (w > 0 && k < w).then(|| (k + 1) as f64 / w as f64);
        match *self {
            Schedule::Constant => 1.0,
            Schedule::Warmup { warmup_steps } => warm(warmup_steps).unwrap_or(1.0),
            Schedule::Wsd {
                warmup_steps,
                decay_steps,
                total_steps,
            } => warm(warmup_steps).unwrap_or_else(|| {
                if k.saturating_add(decay_steps) < total_steps {
                    1.0
                } else {
                    (total_steps.saturating_sub(k)) as f64 / decay_steps as f64
                }
            }),
            Schedule::Cosine {
                warmup_steps,
                total_steps,
                final_frac,
            } => warm(warmup_steps).unwrap_or_else(|| {
                let progress = (k - warmup_steps) as f64 / (total_steps - warmup_steps) as f64;
                let progress = progress.min(1.0);
                final_frac + (1.0 - final_frac) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
            }),
        }
    }
}

/// Hyperparameters of one optimizer. Unused fields of a kind keep their defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimConfig {
    /// The update rule.
    pub kind: Kind,
    /// Learning rate (for `sf_plus` a multiplier of the Polyak step).
    #[serde(default)]
    pub lr: Option<f64>,
    /// `(beta1, beta2)`; beta1 is the Schedule-Free interpolation weight of the Adam kinds.
    #[serde(default)]
    pub betas: Option<[f64; 2]>,
    /// Interpolation weight of `sgd_sf`.
    #[serde(default = "default_momentum")]
    pub momentum: f64,
    /// Adam's epsilon.
    #[serde(default = "default_eps")]
    pub eps: f64,
    /// Weight decay (decoupled for `adamw`, on y for the SF kinds, AdamC-style for `sf_plus`).
    #[serde(default)]
    pub weight_decay: f64,
    /// Linear warmup steps of `sgd_sf`, `adamw_sf` and `adamw_sf_paper` (0: none).
    /// Refused by `radam_sf` (its rectification replaces a warmup), `sf_plus` and
    /// `adamw` (which warms up through its schedule).
    #[serde(default)]
    pub warmup_steps: u64,
    /// Power r of `t^r` in the averaging weights.
    #[serde(default)]
    pub r: f64,
    /// Power p of `lr_max^p` in the averaging weights.
    #[serde(default = "default_weight_lr_power")]
    pub weight_lr_power: f64,
    /// Inner momentum mu of `adamw_sf` (0: none).
    #[serde(default)]
    pub inner_momentum: f64,
    /// `radam_sf`: take no step (rather than an SGD step) while the variance is untrusted.
    #[serde(default = "default_true")]
    pub silent_sgd_phase: bool,
    /// `sf_plus`: the starting interpolation weight beta.
    #[serde(default = "default_sf_beta1")]
    pub sf_beta1: f64,
    /// `sf_plus`: the interpolation weight reached after annealing.
    #[serde(default = "default_sf_beta1_max")]
    pub sf_beta1_max: f64,
    /// `sf_plus`: steps over which beta is annealed (0: beta = sf_beta1 throughout).
    #[serde(default)]
    pub sf_beta1_anneal_steps: u64,
    /// `sf_plus`: EMA factor of the gradient-norm estimate.
    #[serde(default)]
    pub polyak_beta: f64,
    /// `sf_plus`: steps during which c = 1 (x follows z).
    #[serde(default)]
    pub c_warmup: u64,
    /// `sf_plus`, an sfnap extension (`None`: the reference step): the factor
    /// by which the Polyak step's cap may grow from one step to the next, at
    /// least 1 (1: the step stays below the smallest plain Polyak step so far).
    /// Caps the step where the loss stays high while the gradient vanishes (a
    /// plateau), which the reference step mistakes for room to descend. See
    /// `sfnap::optim::plus::growth_per_step`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub polyak_growth: Option<f64>,
    /// `adamw`: the learning-rate schedule.
    #[serde(default = "default_schedule")]
    pub schedule: Schedule,
    /// The (y, z) Schedule-Free kinds: the averaging window W. Once `W_sum > 0`,
    /// `c = max(w / W_sum, 1 / W)`, so x weighs the last W steps' z like an
    /// exponential average of time constant W instead of averaging the whole run
    /// (0: the paper's average, `c = w / W_sum`). Refused by `adamw` and `sf_plus`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub sf_window: u64,
    /// Every kind: how the state buffers (z, v, m, x) are stored; the parameters
    /// stay f32 (docs/algorithms.md, "bf16 state").
    #[serde(default, skip_serializing_if = "is_default")]
    pub state_dtype: StateDtype,
    /// bf16 state only: how a write rounds to bf16 (refused with f32 state).
    #[serde(default, skip_serializing_if = "is_default")]
    pub state_rounding: Rounding,
    /// bf16 state only: the seed of stochastic rounding's random bits (a
    /// training run's `--seed`; a replay file's `optimizer.state_seed`).
    #[serde(default, skip_serializing_if = "is_default")]
    pub state_seed: u32,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

fn default_momentum() -> f64 {
    0.9
}
fn default_eps() -> f64 {
    1e-8
}
fn default_weight_lr_power() -> f64 {
    2.0
}
fn default_true() -> bool {
    true
}
fn default_sf_beta1() -> f64 {
    0.9
}
fn default_sf_beta1_max() -> f64 {
    0.965
}
fn default_schedule() -> Schedule {
    Schedule::Constant
}

impl OptimConfig {
    /// A configuration of `kind` with every default of `docs/algorithms.md`.
    pub fn new(kind: Kind) -> Self {
        OptimConfig {
            kind,
            lr: None,
            betas: None,
            momentum: default_momentum(),
            eps: default_eps(),
            weight_decay: 0.0,
            warmup_steps: 0,
            r: 0.0,
            weight_lr_power: default_weight_lr_power(),
            inner_momentum: 0.0,
            silent_sgd_phase: true,
            sf_beta1: default_sf_beta1(),
            sf_beta1_max: default_sf_beta1_max(),
            sf_beta1_anneal_steps: 0,
            polyak_beta: 0.0,
            c_warmup: 0,
            polyak_growth: None,
            schedule: Schedule::Constant,
            sf_window: 0,
            state_dtype: StateDtype::F32,
            state_rounding: Rounding::Stochastic,
            state_seed: 0,
        }
    }

    /// sfnap's sf_plus (see `docs/optimizers.md`):
    /// the reference Polyak step under a cap that grows by at most `growth` per
    /// step and follows the plain Polyak step F / e_hat
    /// ([`crate::optim::plus::growth_per_step`] gives the literature's rate),
    /// with the Adam moments of the Schedule-Free AdamW paper, `betas` (0, 0.999):
    /// no inner momentum, the interpolation weight beta being the momentum.
    pub fn sf_plus_capped(growth: f64) -> Self {
        OptimConfig {
            betas: Some([0.0, 0.999]),
            polyak_growth: Some(growth),
            ..OptimConfig::new(Kind::SfPlus)
        }
    }

    /// Sets the learning rate (builder style).
    pub fn with_lr(mut self, lr: f64) -> Self {
        self.lr = Some(lr);
        self
    }

    /// The learning rate, or the kind's default.
    pub fn lr(&self) -> f64 {
        self.lr.unwrap_or(match self.kind {
            Kind::SgdSf => 1.0,
            Kind::AdamwSf | Kind::AdamwSfPaper | Kind::RadamSf => 0.0025,
            Kind::SfPlus => 1.0,
            Kind::Adamw => 1e-3,
        })
    }

    /// `(beta1, beta2)`, or the kind's default.
    pub fn betas(&self) -> (f64, f64) {
        let [b1, b2] = self.betas.unwrap_or(match self.kind {
            Kind::SfPlus => [0.9, 0.95],
            _ => [0.9, 0.999],
        });
        (b1, b2)
    }

    /// The Schedule-Free interpolation weight beta of the (y, z) kinds.
    pub fn sf_beta(&self) -> f64 {
        match self.kind {
            Kind::SgdSf => self.momentum,
            _ => self.betas().0,
        }
    }

    /// Sets the (y, z) interpolation weight beta that [`OptimConfig::sf_beta`]
    /// reads: sgd_sf's `momentum`, `betas[0]` of the other kinds.
    pub fn set_sf_beta(&mut self, beta: f64) {
        match self.kind {
            Kind::SgdSf => self.momentum = beta,
            _ => self.betas = Some([beta, self.betas().1]),
        }
    }

    /// Checks every hyperparameter against the ranges in [`limits`]; the error
    /// names the first bad field (`optimizer.betas[1]`).
    pub fn validate(&self) -> Result<()> {
        use limits::*;
        let field = |name: &str| format!("optimizer.{name}");
        if self.state_dtype == StateDtype::F32 {
            for (name, given) in [
                ("state_rounding", self.state_rounding != Rounding::Stochastic),
                ("state_seed", self.state_seed != 0),
            ] {
                if given {
                    return Err(Error::invalid(
                        field(name),
                        "applies to bf16 state only (state_dtype bf16): f32 state is never rounded",
                    ));
                }
            }
        }
        let finite = |name: &str, v: f64| {
            if v.is_finite() {
                Ok(())
            } else {
                Err(Error::invalid(field(name), format!("must be a finite number, got {v}")))
            }
        };
        let in_range = |name: &str, v: f64, lo: f64, hi: f64| {
            finite(name, v)?;
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(Error::invalid(
                    field(name),
                    format!("must lie in [{}, {}], got {}", num(lo), num(hi), num(v)),
                ))
            }
        };
        // Interpolation and EMA weights: [0, 1), and still below 1 as the f32 the
        // kernels use (0.99999999 rounds to 1, and a weight of 1 freezes its EMA).
        let weight = |name: &str, v: f64| {
            finite(name, v)?;
            if !(0.0..1.0).contains(&v) {
                return Err(Error::invalid(field(name), format!("must lie in [0, 1), got {v}")));
            }
            if v as f32 >= 1.0 {
                return Err(Error::invalid(
                    field(name),
                    format!("{v} rounds to 1 in f32, which the kernels use: must be at most 0.99999994"),
                ));
            }
            Ok(())
        };
        in_range("lr", self.lr(), 0.0, MAX_SCALE)?;
        let (b1, b2) = self.betas();
        weight("betas[0]", b1)?;
        weight("betas[1]", b2)?;
        weight("momentum", self.momentum)?;
        if self.kind.is_schedule_free() && self.kind != Kind::SfPlus && self.sf_beta() < MIN_INTERPOLATION {
            let name = if self.kind == Kind::SgdSf {
                "momentum"
            } else {
                "betas[0]"
            };
            return Err(Error::invalid(
                field(name),
                format!(
                    "must be at least {MIN_INTERPOLATION:e}, got {}: x = (y - (1 - beta) z) / beta",
                    self.sf_beta()
                ),
            ));
        }
        in_range("eps", self.eps, 1.0 / MAX_SCALE, MAX_SCALE)?;
        in_range("weight_decay", self.weight_decay, 0.0, MAX_SCALE)?;
        in_range("r", self.r, -MAX_R, MAX_R)?;
        in_range("weight_lr_power", self.weight_lr_power, 0.0, MAX_WEIGHT_LR_POWER)?;
        weight("inner_momentum", self.inner_momentum)?;
        weight("sf_beta1", self.sf_beta1)?;
        weight("sf_beta1_max", self.sf_beta1_max)?;
        weight("polyak_beta", self.polyak_beta)?;
        if let Some(g) = self.polyak_growth {
            in_range("polyak_growth", g, 1.0, MAX_SCALE)?;
        }
        if self.kind == Kind::SfPlus && self.sf_beta1 < MIN_INTERPOLATION {
            return Err(Error::invalid(
                field("sf_beta1"),
                format!(
                    "must be at least {}, got {}",
                    num(MIN_INTERPOLATION),
                    num(self.sf_beta1)
                ),
            ));
        }
        match self.schedule {
            Schedule::Wsd {
                warmup_steps,
                decay_steps,
                total_steps,
            } => {
                if decay_steps == 0 || warmup_steps.checked_add(decay_steps).is_none_or(|n| n > total_steps) {
                    return Err(Error::invalid(
                        field("schedule"),
                        "wsd needs decay_steps > 0 and warmup_steps + decay_steps <= total_steps",
                    ));
                }
            }
            Schedule::Cosine {
                warmup_steps,
                total_steps,
                final_frac,
            } => {
                if total_steps <= warmup_steps {
                    return Err(Error::invalid(
                        field("schedule.total_steps"),
                        "must exceed warmup_steps",
                    ));
                }
                in_range("schedule.final_frac", final_frac, 0.0, 1.0)?;
            }
            Schedule::Constant | Schedule::Warmup { .. } => {}
        }
        // A setting a kind would ignore is refused, not dropped (after the
        // checks of each value's own range).
        if let Some(refusal) = settings::refusal(self) {
            return Err(refusal.field_error());
        }
        Ok(())
    }
}

/// `v` for a message: plain when of moderate size, else in exponent form (`1e37`).
fn num(v: f64) -> String {
    if v == 0.0 || (1e-4..1e6).contains(&v.abs()) {
        format!("{v}")
    } else {
        format!("{v:e}")
    }
}

/// The ranges [`OptimConfig::validate`] enforces. The kernels compute in f32
/// (largest finite value 3.4e38), so a value that is finite in f64 can still
/// overflow them; outside these ranges a setting overflows whatever the data.
/// Inside them a run can still overflow through its data (a huge rate on a
/// huge gradient): the device's non-finite checks stop it then.
pub mod limits {
    /// The largest `lr` and `weight_decay`, and the largest `eps` (the smallest
    /// is its reciprocal, a normal f32): a step of this size on an update of
    /// size up to 30 stays inside f32; 1e38 does not.
    pub const MAX_SCALE: f64 = 1e37;
    /// The largest `|r|`: `t^r` stays below 1e29 for 2^32 steps (the device's
    /// step counter), which leaves room for `lr_max^p` in f32.
    pub const MAX_R: f64 = 3.0;
    /// The largest `weight_lr_power` p (`lr_max^p`; negative powers of the
    /// first steps' `lr_max = 0` would be infinite).
    pub const MAX_WEIGHT_LR_POWER: f64 = 8.0;
    /// The smallest Schedule-Free interpolation weight (`betas[0]`, `momentum`
    /// for sgd_sf, `sf_beta1`): x divides by it.
    pub const MIN_INTERPOLATION: f64 = 1e-18;
}

impl OptimConfig {
    /// Reads an optimizer object of a replay file (`path` names it in errors):
    /// `kind`, then any field of [`OptimConfig`] by its name; missing fields
    /// take the kind's defaults, unknown fields are an error. Every error names
    /// the offending value's full path (`optimizer.betas[1]`). Not validated:
    /// call [`OptimConfig::validate`].
    pub fn from_json(v: &serde_json::Value, path: &str) -> Result<OptimConfig> {
        use crate::json::{key_path, object, quoted, required_string};
        let obj = object(v, path)?;
        let kind_path = key_path(path, "kind");
        let kind = required_string(obj, path, "kind")?;
        let kind = Kind::parse(kind).map_err(|e| match e {
            Error::Invalid { msg, .. } => Error::invalid(&kind_path, msg),
            other => other,
        })?;
        let mut cfg = OptimConfig::new(kind);
        for (key, value) in obj.iter().filter(|(key, _)| *key != "kind") {
            let p = key_path(path, key);
            match settings::setting(key).map(|s| s.holder) {
                Some(Holder::Field { read, .. }) => read(&mut cfg, value, &p)?,
                _ => {
                    return Err(Error::invalid(
                        p,
                        format!(
                            "unknown field {} (expected one of {})",
                            quoted(key),
                            settings::field_names().join(", ")
                        ),
                    ))
                }
            }
        }
        Ok(cfg)
    }
}

impl Schedule {
    /// Reads a schedule object (`{"kind": "wsd", ...}`) as [`OptimConfig::from_json`] does.
    pub fn from_json(v: &serde_json::Value, path: &str) -> Result<Schedule> {
        use crate::json::{count, key_path, number, object, quoted, required_string};
        let obj = object(v, path)?;
        let kind_path = key_path(path, "kind");
        let kind = required_string(obj, path, "kind")?;
        let allowed: &[&str] = match kind {
            "constant" => &["kind"],
            "warmup" => &["kind", "warmup_steps"],
            "wsd" => &["kind", "warmup_steps", "decay_steps", "total_steps"],
            "cosine" => &["kind", "warmup_steps", "total_steps", "final_frac"],
            other => {
                return Err(Error::invalid(
                    kind_path,
                    format!(
                        "unknown schedule {} (expected one of constant, warmup, wsd, cosine)",
                        quoted(other)
                    ),
                ))
            }
        };
        if let Some(key) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(Error::invalid(
                key_path(path, key),
                format!(
                    "unknown field for a {kind} schedule (expected one of {})",
                    allowed.join(", ")
                ),
            ));
        }
        let steps = |name: &str, default: Option<u64>| -> Result<u64> {
            let p = key_path(path, name);
            match (obj.get(name), default) {
                (Some(v), _) => count(v, &p),
                (None, Some(d)) => Ok(d),
                (None, None) => Err(Error::invalid(p, format!("missing (required for a {kind} schedule)"))),
            }
        };
        Ok(match kind {
            "constant" => Schedule::Constant,
            "warmup" => Schedule::Warmup {
                warmup_steps: steps("warmup_steps", Some(0))?,
            },
            "wsd" => Schedule::Wsd {
                warmup_steps: steps("warmup_steps", Some(0))?,
                decay_steps: steps("decay_steps", None)?,
                total_steps: steps("total_steps", None)?,
            },
            _ => Schedule::Cosine {
                warmup_steps: steps("warmup_steps", Some(0))?,
                total_steps: steps("total_steps", None)?,
                final_frac: match obj.get("final_frac") {
                    Some(v) => number(v, &key_path(path, "final_frac"))?,
                    None => 0.0,
                },
            },
        })
    }
}
