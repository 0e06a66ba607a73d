//! Optimizer configurations: the kinds, their hyperparameters, defaults and validation.
//!
//! Field names and defaults follow `algorithms.md`; the same struct is read from a
//! replay file's `optimizer` object (unknown fields are an error).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Which update rule an optimizer applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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
                if k + decay_steps < total_steps {
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
    /// Linear warmup steps of the SF kinds (0: none).
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
    /// `adamw`: the learning-rate schedule.
    #[serde(default = "default_schedule")]
    pub schedule: Schedule,
    /// The (y, z) Schedule-Free kinds: the averaging window W. Once `W_sum > 0`,
    /// `c = max(w / W_sum, 1 / W)`, so x weighs the last W steps' z like an
    /// exponential average of time constant W instead of averaging the whole run
    /// (0: the paper's average, `c = w / W_sum`). Refused by `adamw` and `sf_plus`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub sf_window: u64,
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
    /// A configuration of `kind` with every default of `algorithms.md`.
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
            schedule: Schedule::Constant,
            sf_window: 0,
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

    /// Checks every hyperparameter; the error names the first bad field.
    pub fn validate(&self) -> Result<()> {
        let field = |name: &str| format!("optimizer.{name}");
        let finite = |name: &str, v: f64| {
            if v.is_finite() {
                Ok(())
            } else {
                Err(Error::invalid(field(name), format!("must be a finite number, got {v}")))
            }
        };
        let in_range = |name: &str, v: f64, lo: f64, hi: f64, hi_open: bool| {
            finite(name, v)?;
            let ok = v >= lo && if hi_open { v < hi } else { v <= hi };
            if ok {
                Ok(())
            } else {
                let close = if hi_open { ')' } else { ']' };
                Err(Error::invalid(
                    field(name),
                    format!("must lie in [{lo}, {hi}{close}, got {v}"),
                ))
            }
        };
        let lr = self.lr();
        finite("lr", lr)?;
        if lr < 0.0 {
            return Err(Error::invalid(field("lr"), format!("must be >= 0, got {lr}")));
        }
        let (b1, b2) = self.betas();
        in_range("betas[0]", b1, 0.0, 1.0, true)?;
        in_range("betas[1]", b2, 0.0, 1.0, true)?;
        if self.kind.is_schedule_free() && self.kind != Kind::SfPlus && self.sf_beta() <= 0.0 {
            let name = if self.kind == Kind::SgdSf {
                "momentum"
            } else {
                "betas[0]"
            };
            return Err(Error::invalid(
                field(name),
                "must be > 0: x = (y - (1 - beta) z) / beta",
            ));
        }
        in_range("momentum", self.momentum, 0.0, 1.0, true)?;
        finite("eps", self.eps)?;
        if self.eps <= 0.0 {
            return Err(Error::invalid(field("eps"), format!("must be > 0, got {}", self.eps)));
        }
        in_range("weight_decay", self.weight_decay, 0.0, f64::MAX, false)?;
        finite("r", self.r)?;
        finite("weight_lr_power", self.weight_lr_power)?;
        in_range("inner_momentum", self.inner_momentum, 0.0, 1.0, true)?;
        in_range("sf_beta1", self.sf_beta1, 0.0, 1.0, true)?;
        in_range("sf_beta1_max", self.sf_beta1_max, 0.0, 1.0, true)?;
        in_range("polyak_beta", self.polyak_beta, 0.0, 1.0, true)?;
        if self.kind == Kind::SfPlus && self.sf_beta1 <= 0.0 {
            return Err(Error::invalid(field("sf_beta1"), "must be > 0"));
        }
        if self.sf_window > 0 {
            match self.kind {
                Kind::Adamw => {
                    return Err(Error::invalid(
                        field("sf_window"),
                        "adamw keeps no average of its iterates: only the Schedule-Free kinds take a window",
                    ))
                }
                Kind::SfPlus => {
                    return Err(Error::invalid(
                        field("sf_window"),
                        "sf_plus computes its averaging weight on the device and takes no window \
                         (sgd_sf, adamw_sf, adamw_sf_paper and radam_sf do)",
                    ))
                }
                _ => {}
            }
        }
        match self.schedule {
            Schedule::Wsd {
                warmup_steps,
                decay_steps,
                total_steps,
            } => {
                if decay_steps == 0 || warmup_steps + decay_steps > total_steps {
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
                in_range("schedule.final_frac", final_frac, 0.0, 1.0, false)?;
            }
            Schedule::Constant | Schedule::Warmup { .. } => {}
        }
        Ok(())
    }
}
