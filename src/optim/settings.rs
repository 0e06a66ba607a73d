//! Which settings each kind takes: one row per setting of [`OptimConfig`] (and
//! per command-line flag that is not a field of its own).
//!
//! The table is the one place that knows it. [`OptimConfig::validate`] refuses a
//! setting given to a kind that would ignore it, [`OptimConfig::from_json`] reads
//! a replay file's `optimizer` object through it, the command line refuses its
//! flags through it, and the flags test runs every row's example against every
//! kind. Adding a setting means: the field, its row here, its flag.

use serde_json::Value;

use crate::error::{Error, Result};
use crate::json::{array, boolean, count, number};
use crate::optim::bf16::{Rounding, StateDtype};
use crate::optim::config::{Kind, OptimConfig, Schedule};

/// One setting and the kinds that take it.
#[derive(Clone, Copy)]
pub struct Setting {
    /// Its name: the field of [`OptimConfig`] and of a replay file's `optimizer`
    /// object, or the flag's name for a flag that is not a field.
    pub name: &'static str,
    /// The kinds that take it; every other kind refuses it when it is given.
    pub kinds: &'static [Kind],
    /// What it is, as a refusal says it ("sf_plus takes no warmup").
    pub what: &'static str,
    /// Why some of the kinds that refuse it do, where that is not plain.
    pub why_not: &'static [(Kind, &'static str)],
    /// How a configuration holds it: a field (read from JSON, given when away
    /// from its kind's default), or only the command line.
    pub holder: Holder,
    /// The `sfnap train` flag that sets it, with an example of its use.
    pub flag: Option<Flag>,
}

/// Where a setting's value lives.
#[derive(Clone, Copy)]
pub enum Holder {
    /// A field of [`OptimConfig`].
    Field {
        /// Whether `cfg` sets it to something other than its kind's default
        /// (what a kind that does not take it refuses).
        given: fn(&OptimConfig) -> bool,
        /// Reads it from a replay file's JSON value (`path` names it in errors).
        read: fn(&mut OptimConfig, &Value, &str) -> Result<()>,
    },
    /// A flag of `sfnap train` that chooses between kinds' variants or maps
    /// onto other fields by kind (`--sf-beta`, `--sf-plus-reference`).
    CommandLine,
}

/// A setting's `sfnap train` flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag {
    /// The flag without its dashes (`warmup` for `--warmup`).
    pub name: &'static str,
    /// Arguments that use it with a value away from every kind's default (the
    /// flags test trains with them; the help can show them).
    pub example: &'static [&'static str],
}

/// A setting refused by a kind, with the message that says so.
#[derive(Clone, Copy)]
pub struct Refusal {
    /// The setting.
    pub setting: &'static Setting,
    /// The kind that refuses it.
    pub kind: Kind,
}

impl Refusal {
    /// "radam_sf takes no warmup: its rectified step size stands in for one
    /// (sgd_sf, adamw_sf and adamw_sf_paper take it)".
    pub fn message(&self) -> String {
        let s = self.setting;
        let why = s
            .why_not
            .iter()
            .find(|(k, _)| *k == self.kind)
            .map(|(_, why)| format!(": {why}"))
            .unwrap_or_default();
        format!("{} takes no {}{why} ({})", self.kind, s.what, takers(s.kinds))
    }

    /// The error naming the replay file's field (`optimizer.sf_window`).
    pub fn field_error(&self) -> Error {
        Error::invalid(format!("optimizer.{}", self.setting.name), self.message())
    }

    /// The error naming the command line's flag (`sf-window`), or the field
    /// when no flag sets it.
    pub fn flag_error(&self) -> Error {
        match self.setting.flag {
            Some(flag) => Error::invalid(flag.name, self.message()),
            None => self.field_error(),
        }
    }
}

/// "sgd_sf, adamw_sf and adamw_sf_paper take it", "only sf_plus takes it".
fn takers(kinds: &[Kind]) -> String {
    let names: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
    match names.as_slice() {
        [] => "no kind takes it".into(),
        [one] => format!("only {one} takes it"),
        [rest @ .., last] => format!("{} and {last} take it", rest.join(", ")),
    }
}

impl Setting {
    /// Whether `kind` takes it.
    pub fn takes(&self, kind: Kind) -> bool {
        self.kinds.contains(&kind)
    }
}

/// The first setting of `cfg` that its kind refuses, if any.
pub fn refusal(cfg: &OptimConfig) -> Option<Refusal> {
    SETTINGS.iter().find_map(|s| match s.holder {
        Holder::Field { given, .. } if given(cfg) && !s.takes(cfg.kind) => Some(Refusal {
            setting: s,
            kind: cfg.kind,
        }),
        _ => None,
    })
}

/// The refusal of command-line flag `flag` (without dashes) by `kind`, when
/// the flag is a [`Holder::CommandLine`] setting that `kind` does not take.
pub fn flag_refusal(flag: &str, kind: Kind) -> Option<Refusal> {
    SETTINGS
        .iter()
        .find(|s| matches!(s.holder, Holder::CommandLine) && s.flag.is_some_and(|f| f.name == flag))
        .filter(|s| !s.takes(kind))
        .map(|setting| Refusal { setting, kind })
}

/// The setting named `name` (a field, or a command-line-only flag).
pub fn setting(name: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.name == name)
}

/// The fields of a replay file's `optimizer` object, in documentation order
/// (`kind` first).
pub fn field_names() -> Vec<&'static str> {
    let fields = SETTINGS
        .iter()
        .filter(|s| matches!(s.holder, Holder::Field { .. }))
        .map(|s| s.name);
    std::iter::once("kind").chain(fields).collect()
}

use Kind::*;

/// Every kind.
const ALL: &[Kind] = &Kind::ALL;
/// The kinds whose x averages z with weights `t^r lr_max^p`.
const AVERAGING: &[Kind] = &[SgdSf, AdamwSf, AdamwSfPaper, RadamSf, SfPlus];
/// The (y, z) Schedule-Free kinds: an interpolation weight beta and a window.
const YZ: &[Kind] = &[SgdSf, AdamwSf, AdamwSfPaper, RadamSf];
/// The kinds that keep Adam's second moment (and its epsilon).
const ADAM: &[Kind] = &[AdamwSf, AdamwSfPaper, RadamSf, SfPlus, Adamw];

/// Whether `cfg`'s field differs from its kind's default.
fn differs<T: PartialEq>(cfg: &OptimConfig, field: fn(&OptimConfig) -> &T) -> bool {
    field(cfg) != field(&OptimConfig::new(cfg.kind))
}

/// An optional number: `null` is `None`.
fn optional_number(v: &Value, path: &str) -> Result<Option<f64>> {
    (!v.is_null()).then(|| number(v, path)).transpose()
}

/// Every setting, in documentation order. `lr` and `weight_decay` apply to
/// every kind (each defines weight decay its own way; see the field's doc).
pub const SETTINGS: &[Setting] = &[
    Setting {
        name: "lr",
        kinds: ALL,
        what: "learning rate",
        why_not: &[],
        holder: Holder::Field {
            given: |c| c.lr.is_some(),
            read: |c, v, p| {
                c.lr = optional_number(v, p)?;
                Ok(())
            },
        },
        flag: Some(Flag {
            name: "lr",
            example: &["--lr", "0.0123"],
        }),
    },
    Setting {
        name: "betas",
        kinds: ADAM,
        what: "Adam betas",
        why_not: &[(SgdSf, "it keeps no moments (its interpolation weight is `momentum`)")],
        holder: Holder::Field {
            given: |c| c.betas.is_some(),
            read: |c, v, p| {
                c.betas = if v.is_null() {
                    None
                } else {
                    let a = array(v, p)?;
                    if a.len() != 2 {
                        return Err(Error::invalid(p, format!("must hold 2 numbers, got {}", a.len())));
                    }
                    Some([number(&a[0], &format!("{p}[0]"))?, number(&a[1], &format!("{p}[1]"))?])
                };
                Ok(())
            },
        },
        flag: None,
    },
    Setting {
        name: "momentum",
        kinds: &[SgdSf],
        what: "momentum",
        why_not: &[
            (AdamwSf, "its interpolation weight is betas[0]"),
            (AdamwSfPaper, "its interpolation weight is betas[0]"),
            (RadamSf, "its interpolation weight is betas[0]"),
            (SfPlus, "its interpolation weight starts at sf_beta1"),
            (Adamw, "its momentum is betas[0]"),
        ],
        holder: Holder::Field {
            given: |c| differs(c, |c| &c.momentum),
            read: |c, v, p| {
                c.momentum = number(v, p)?;
                Ok(())
            },
        },
        flag: None,
    },
    Setting {
        name: "eps",
        kinds: ADAM,
        what: "epsilon",
        why_not: &[(SgdSf, "it divides by no second moment")],
        holder: Holder::Field {
            given: |c| differs(c, |c| &c.eps),
            read: |c, v, p| {
                c.eps = number(v, p)?;
                Ok(())
            },
        },
        flag: None,
    },
    Setting {
        name: "weight_decay",
        kinds: ALL,
        what: "weight decay",
        why_not: &[],
        holder: Holder::Field {
            given: |c| c.weight_decay != 0.0,
            read: |c, v, p| {
                c.weight_decay = number(v, p)?;
                Ok(())
            },
        },
        flag: Some(Flag {
            name: "weight-decay",
            example: &["--weight-decay", "0.5"],
        }),
    },
    Setting {
        name: "warmup_steps",
        kinds: &[SgdSf, AdamwSf, AdamwSfPaper],
        what: "warmup",
        why_not: &[
            (RadamSf, "its rectified step size stands in for one"),
            (
                SfPlus,
                "its step comes from the loss (c_warmup holds x at z for its first steps)",
            ),
            (Adamw, "it warms up through its schedule (`warmup`, `wsd` or `cosine`)"),
        ],
        holder: Holder::Field {
            given: |c| c.warmup_steps > 0,
            read: |c, v, p| {
                c.warmup_steps = count(v, p)?;
                Ok(())
            },
        },
        flag: Some(Flag {
            name: "warmup",
            example: &["--warmup", "3"],
        }),
    },
    Setting {
        name: "r",
        kinds: AVERAGING,
        what: "averaging power r",
        why_not: &[(Adamw, "it keeps no average of its iterates")],
        holder: Holder::Field {
            given: |c| differs(c, |c| &c.r),
            read: |c, v, p| {
                c.r = number(v, p)?;
                Ok(())
            },
        },
        flag: None,
    },
    Setting {
        name: "weight_lr_power",
        kinds: AVERAGING,
        what: "averaging power of lr_max",
        why_not: &[(Adamw, "it keeps no average of its iterates")],
        holder: Holder::Field {
            given: |c| differs(c, |c| &c.weight_lr_power),
            read: |c, v, p| {
                c.weight_lr_power = number(v, p)?;
                Ok(())
            },
        },
        flag: None,
    },
    Setting {
        name: "inner_momentum",
        kinds: &[AdamwSf],
        what: "inner momentum",
        why_not: &[],
        holder: Holder::Field {
            given: |c| c.inner_momentum != 0.0,
            read: |c, v, p| {
                c.inner_momentum = number(v, p)?;
                Ok(())
            },
        },
        flag: Some(Flag {
            name: "inner-momentum",
            example: &["--inner-momentum", "0.5"],
        }),
    },
    Setting {
        name: "silent_sgd_phase",
        kinds: &[RadamSf],
        what: "choice of SGD phase",
        why_not: &[],
        holder: Holder::Field {
            given: |c| !c.silent_sgd_phase,
            read: |c, v, p| {
                c.silent_sgd_phase = boolean(v, p)?;
                Ok(())
            },
        },
        flag: None,
    },
    Setting {
        name: "sf_beta1",
        kinds: &[SfPlus],
        what: "starting beta sf_beta1",
        why_not: &[],
        holder: Holder::Field {
            given: |c| differs(c, |c| &c.sf_beta1),
            read: |c, v, p| {
                c.sf_beta1 = number(v, p)?;
                Ok(())
            },
        },
        flag: None,
    },
    Setting {
        name: "sf_beta1_max",
        kinds: &[SfPlus],
        what: "annealed beta sf_beta1_max",
        why_not: &[],
        holder: Holder::Field {
            given: |c| differs(c, |c| &c.sf_beta1_max),
            read: |c, v, p| {
                c.sf_beta1_max = number(v, p)?;
                Ok(())
            },
        },
        flag: None,
    },
    Setting {
        name: "sf_beta1_anneal_steps",
        kinds: &[SfPlus],
        what: "beta annealing",
        why_not: &[],
        holder: Holder::Field {
            given: |c| c.sf_beta1_anneal_steps != 0,
            read: |c, v, p| {
                c.sf_beta1_anneal_steps = count(v, p)?;
                Ok(())
            },
        },
        flag: None,
    },
    Setting {
        name: "polyak_beta",
        kinds: &[SfPlus],
        what: "gradient-norm average",
        why_not: &[],
        holder: Holder::Field {
            given: |c| c.polyak_beta != 0.0,
            read: |c, v, p| {
                c.polyak_beta = number(v, p)?;
                Ok(())
            },
        },
        flag: None,
    },
    Setting {
        name: "c_warmup",
        kinds: &[SfPlus],
        what: "c warmup",
        why_not: &[],
        holder: Holder::Field {
            given: |c| c.c_warmup != 0,
            read: |c, v, p| {
                c.c_warmup = count(v, p)?;
                Ok(())
            },
        },
        flag: None,
    },
    Setting {
        name: "polyak_growth",
        kinds: &[SfPlus],
        what: "Polyak step to cap",
        why_not: &[],
        holder: Holder::Field {
            given: |c| c.polyak_growth.is_some(),
            read: |c, v, p| {
                c.polyak_growth = optional_number(v, p)?;
                Ok(())
            },
        },
        flag: Some(Flag {
            name: "polyak-growth",
            example: &["--polyak-growth", "1"],
        }),
    },
    Setting {
        name: "schedule",
        kinds: &[Adamw],
        what: "learning-rate schedule",
        why_not: &[
            (SgdSf, "Schedule-Free kinds need none"),
            (AdamwSf, "Schedule-Free kinds need none"),
            (AdamwSfPaper, "Schedule-Free kinds need none"),
            (RadamSf, "Schedule-Free kinds need none"),
            (SfPlus, "Schedule-Free kinds need none"),
        ],
        holder: Holder::Field {
            given: |c| c.schedule != Schedule::Constant,
            read: |c, v, p| {
                c.schedule = Schedule::from_json(v, p)?;
                Ok(())
            },
        },
        flag: Some(Flag {
            name: "schedule",
            example: &["--schedule", "wsd"],
        }),
    },
    Setting {
        name: "sf_window",
        kinds: YZ,
        what: "averaging window",
        why_not: &[
            (Adamw, "it keeps no average of its iterates"),
            (SfPlus, "it computes its averaging weight on the device"),
        ],
        holder: Holder::Field {
            given: |c| c.sf_window > 0,
            read: |c, v, p| {
                c.sf_window = count(v, p)?;
                Ok(())
            },
        },
        // c = max(w / W_sum, 1 / W) leaves 1 / t from t = W + 1 = 3 on.
        flag: Some(Flag {
            name: "sf-window",
            example: &["--sf-window", "2"],
        }),
    },
    Setting {
        name: "state_dtype",
        kinds: &Kind::ALL,
        what: "state precision",
        why_not: &[],
        holder: Holder::Field {
            given: |c| c.state_dtype != StateDtype::F32,
            read: |c, v, p| {
                c.state_dtype = serde_json::from_value(v.clone())
                    .map_err(|_| Error::invalid(p, format!("must be \"f32\" or \"bf16\", got {v}")))?;
                Ok(())
            },
        },
        flag: Some(Flag {
            name: "state-dtype",
            example: &["--state-dtype", "bf16"],
        }),
    },
    Setting {
        name: "state_rounding",
        kinds: &Kind::ALL,
        what: "state rounding",
        why_not: &[],
        holder: Holder::Field {
            given: |c| c.state_rounding != Rounding::Stochastic,
            read: |c, v, p| {
                c.state_rounding = serde_json::from_value(v.clone())
                    .map_err(|_| Error::invalid(p, format!("must be \"stochastic\" or \"nearest\", got {v}")))?;
                Ok(())
            },
        },
        flag: Some(Flag {
            name: "state-rounding",
            example: &["--state-dtype", "bf16", "--state-rounding", "nearest"],
        }),
    },
    Setting {
        name: "state_seed",
        kinds: &Kind::ALL,
        what: "state rounding seed",
        why_not: &[],
        holder: Holder::Field {
            given: |c| c.state_seed != 0,
            read: |c, v, p| {
                let n = count(v, p)?;
                c.state_seed =
                    u32::try_from(n).map_err(|_| Error::invalid(p, format!("must fit in 32 bits, got {n}")))?;
                Ok(())
            },
        },
        flag: Some(Flag {
            name: "state-seed",
            example: &["--state-dtype", "bf16", "--state-seed", "7"],
        }),
    },
    Setting {
        name: "sf-beta",
        kinds: YZ,
        what: "(y, z) interpolation weight",
        why_not: &[],
        holder: Holder::CommandLine,
        flag: Some(Flag {
            name: "sf-beta",
            example: &["--sf-beta", "0.5"],
        }),
    },
    Setting {
        name: "sf-plus-reference",
        kinds: &[SfPlus],
        what: "reference ScheduleFree+ variant",
        why_not: &[],
        holder: Holder::CommandLine,
        flag: Some(Flag {
            name: "sf-plus-reference",
            example: &["--sf-plus-reference"],
        }),
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_default_configuration_gives_no_setting_its_kind_refuses() {
        for kind in Kind::ALL {
            assert!(refusal(&OptimConfig::new(kind)).is_none(), "{kind}");
        }
        assert!(refusal(&OptimConfig::sf_plus_capped(1.0)).is_none());
    }

    #[test]
    fn a_refusal_names_the_kind_and_the_kinds_that_take_it() {
        let mut cfg = OptimConfig::new(Kind::RadamSf);
        cfg.warmup_steps = 5;
        let r = refusal(&cfg).expect("radam_sf refuses a warmup");
        assert_eq!(r.setting.name, "warmup_steps");
        assert_eq!(
            r.message(),
            "radam_sf takes no warmup: its rectified step size stands in for one \
             (sgd_sf, adamw_sf and adamw_sf_paper take it)"
        );
        assert_eq!(r.flag_error().to_string().split(':').next(), Some("warmup"));
        assert!(r.field_error().to_string().starts_with("optimizer.warmup_steps: "));
    }

    #[test]
    fn names_are_unique_and_every_why_not_belongs_to_a_refusing_kind() {
        for (i, s) in SETTINGS.iter().enumerate() {
            assert!(SETTINGS[..i].iter().all(|o| o.name != s.name), "{} twice", s.name);
            for (kind, _) in s.why_not {
                assert!(!s.takes(*kind), "{}: {kind} takes it but has a reason not to", s.name);
            }
        }
    }
}
