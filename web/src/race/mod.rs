//! The optimizer race: many starting points on a 2D test function, raced by
//! `sgd_sf`, `adamw_sf`, `sf_plus` and scheduled `adamw` on the GPU.
//!
//! Each starting point is one 2-element tensor of an [`Arena`](sfnap::arena::Arena),
//! so one optimizer step updates all of them in one dispatch. The gradients (and
//! the summed loss `sf_plus` reads) come from `web/shaders/race.wgsl` on the
//! device ([`kernels`]); nothing is read back during a step. A snapshot
//! ([`Race`] is a [`Demo`](crate::demo::Demo)) reads y, x and the per-step mean
//! losses back in one transfer (once per animation frame in the web demo,
//! `web/race.html`). [`reference_positions`] runs the same race in f64 on the CPU
//! with [`Reference`], the oracle of the tests.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use sfnap::optim::reference::Reference;
use sfnap::optim::{Kind, OptimConfig, Schedule};
use sfnap::{Error, Result};

mod functions;
mod gpu;

use functions::unit;
pub use functions::{field, gauss2, pcg, TestFn};
pub use gpu::{kernels, Race, RaceParts, RacerSnapshot, Snapshot};

/// Steps of per-step mean loss kept on the device between two snapshots.
pub const HISTORY: usize = 4096;
/// Most starting points per optimizer.
pub const MAX_POINTS: usize = 4096;
/// The racers, in display order: the key of [`RaceConfig::lr`].
pub const RACERS: [&str; 4] = ["sgd_sf", "adamw_sf", "sf_plus", "adamw"];

/// The learning-rate schedule of the `adamw` racer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleKind {
    /// Warmup, then cosine down to 0 at `total_steps`.
    Cosine,
    /// Warmup, stable, then a linear decay over the last fifth of `total_steps`.
    Wsd,
}

impl ScheduleKind {
    /// The schedule: after `warmup_steps`, a cosine down to 0 at `total_steps`, or
    /// WSD decaying linearly over the last fifth.
    pub fn schedule(self, warmup_steps: u64, total_steps: u64) -> Schedule {
        match self {
            ScheduleKind::Cosine => Schedule::Cosine {
                warmup_steps,
                total_steps,
                final_frac: 0.0,
            },
            ScheduleKind::Wsd => Schedule::Wsd {
                warmup_steps,
                decay_steps: (total_steps / 5).max(1),
                total_steps,
            },
        }
    }
}

/// What a race runs: the function, the points and every racer's hyperparameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RaceConfig {
    /// The test function.
    pub function: TestFn,
    /// Starting points per racer (every racer starts from the same ones).
    pub points: usize,
    /// Seed of the starting points and of the gradient noise.
    pub seed: u32,
    /// The Schedule-Free interpolation weight (`momentum` of sgd_sf, `betas[0]` of adamw_sf, `sf_beta1` of sf_plus).
    pub beta: f64,
    /// Warmup steps (Schedule-Free kinds and the adamw schedule).
    pub warmup_steps: u64,
    /// The adamw schedule's length: its learning rate reaches 0 there.
    pub total_steps: u64,
    /// The adamw schedule.
    pub schedule: ScheduleKind,
    /// Standard deviation of the noisy bowl's gradient noise.
    pub noise: f64,
    /// Learning rates by racer name (see [`RACERS`]); a missing one takes [`TestFn::default_lr`].
    pub lr: BTreeMap<String, f64>,
}

impl Default for RaceConfig {
    fn default() -> Self {
        RaceConfig {
            function: TestFn::Rosenbrock,
            points: 64,
            seed: 1,
            beta: 0.9,
            warmup_steps: 20,
            total_steps: 500,
            schedule: ScheduleKind::Cosine,
            noise: 1.0,
            lr: BTreeMap::new(),
        }
    }
}

impl RaceConfig {
    /// Parses and validates a config from JSON (missing fields take their defaults).
    pub fn parse(text: &str) -> Result<RaceConfig> {
        let cfg: RaceConfig = serde_json::from_str(text).map_err(|e| Error::invalid("race", e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<()> {
        if !(1..=MAX_POINTS).contains(&self.points) {
            return Err(Error::invalid(
                "race.points",
                format!("must lie in [1, {MAX_POINTS}], got {}", self.points),
            ));
        }
        if !(self.noise.is_finite() && self.noise >= 0.0) {
            return Err(Error::invalid(
                "race.noise",
                format!("must be >= 0, got {}", self.noise),
            ));
        }
        if let Some(name) = self.lr.keys().find(|k| !RACERS.contains(&k.as_str())) {
            return Err(Error::invalid(
                format!("race.lr.{name}"),
                format!("no such racer (expected one of {})", RACERS.join(", ")),
            ));
        }
        for (name, cfg) in self.optimizers() {
            cfg.validate()
                .map_err(|e| Error::invalid(format!("race.{name}"), e.to_string()))?;
            if cfg.lr() <= 0.0 {
                return Err(Error::invalid(format!("race.lr.{name}"), "must be > 0"));
            }
        }
        Ok(())
    }

    /// The learning rate of `racer`.
    pub fn lr(&self, racer: &str) -> f64 {
        self.lr
            .get(racer)
            .copied()
            .unwrap_or_else(|| self.function.default_lr(racer))
    }

    /// Every racer's optimizer config, in [`RACERS`] order (not validated: see [`RaceConfig::validate`]).
    pub fn optimizers(&self) -> Vec<(&'static str, OptimConfig)> {
        RACERS
            .iter()
            .map(|&name| {
                let mut cfg =
                    OptimConfig::new(Kind::parse(name).expect("racers are kind names")).with_lr(self.lr(name));
                match cfg.kind {
                    Kind::SgdSf => cfg.momentum = self.beta,
                    Kind::AdamwSf => cfg.betas = Some([self.beta, 0.999]),
                    Kind::SfPlus => {
                        cfg.sf_beta1 = self.beta;
                        cfg.sf_beta1_max = self.beta;
                    }
                    _ => {}
                }
                if cfg.kind == Kind::Adamw {
                    cfg.schedule = self.schedule.schedule(self.warmup_steps, self.total_steps);
                } else if cfg.kind != Kind::SfPlus {
                    cfg.warmup_steps = self.warmup_steps;
                }
                (name, cfg)
            })
            .collect()
    }

    /// The starting points: uniform in the function's start box, from the seed.
    pub fn starts(&self) -> Vec<[f64; 2]> {
        let [a0, a1, b0, b1] = self.function.start_box();
        (0..self.points as u32)
            .map(|i| {
                let h = pcg(self.seed.wrapping_mul(0x9e37_79b9) ^ pcg(i));
                [a0 + (a1 - a0) * unit(h), b0 + (b1 - b0) * unit(pcg(h))]
            })
            .collect()
    }

    /// The mean of the function over `points` (flattened pairs).
    pub fn mean_value(&self, points: &[f32]) -> f64 {
        let n = points.len() / 2;
        let sum: f64 = points
            .chunks_exact(2)
            .map(|p| self.function.value([p[0] as f64, p[1] as f64]))
            .sum();
        sum / n.max(1) as f64
    }
}

/// One racer's points after a race on the CPU: `(name, y, x)`, points in order.
pub type ReferenceLane = (&'static str, Vec<[f64; 2]>, Vec<[f64; 2]>);

/// Runs `steps` steps of the race in f64 with [`Reference`] (same starts, gradients,
/// noise and summed loss as the GPU) and returns every racer's y and x.
pub fn reference_positions(config: &RaceConfig, steps: u64) -> Result<Vec<ReferenceLane>> {
    config.validate()?;
    let f = config.function;
    let params: Vec<(String, Vec<f64>)> = config
        .starts()
        .iter()
        .enumerate()
        .map(|(i, p)| (format!("p{i}"), p.to_vec()))
        .collect();
    let n = params.len();
    let mut out = Vec::new();
    for (name, cfg) in config.optimizers() {
        let mut r = Reference::new(&cfg, &params, &vec![true; n], None)?;
        for k in 0..steps {
            let ys: Vec<[f64; 2]> = (0..n).map(|i| [r.y(i)[0], r.y(i)[1]]).collect();
            let loss: f64 = ys.iter().map(|&p| f.value(p)).sum();
            let grads: Vec<Vec<f64>> = ys
                .iter()
                .enumerate()
                .map(|(i, &p)| {
                    let mut g = f.grad(p);
                    if f == TestFn::NoisyBowl {
                        let e = gauss2(config.seed, k as u32, i as u32);
                        g = [g[0] + config.noise * e[0], g[1] + config.noise * e[1]];
                    }
                    g.to_vec()
                })
                .collect();
            r.step(&grads, Some(loss))?;
        }
        let pair = |v: Vec<f64>| [v[0], v[1]];
        out.push((
            name,
            (0..n).map(|i| pair(r.y(i))).collect(),
            (0..n).map(|i| pair(r.x(i))).collect(),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_errors_name_the_field() {
        let e = RaceConfig::parse(r#"{"points": 0}"#).unwrap_err();
        assert!(e.to_string().contains("race.points"), "{e}");
        let e = RaceConfig::parse(r#"{"lr": {"sgd": 0.1}}"#).unwrap_err();
        assert!(e.to_string().contains("race.lr.sgd"), "{e}");
        let e = RaceConfig::parse(r#"{"beta": 1.5}"#).unwrap_err();
        assert!(e.to_string().contains("race.sgd_sf"), "{e}");
        let e = RaceConfig::parse(r#"{"total_steps": 10, "warmup_steps": 10}"#).unwrap_err();
        assert!(e.to_string().contains("race.adamw"), "{e}");
        let e = RaceConfig::parse(r#"{"function": "sphere"}"#).unwrap_err();
        assert!(e.to_string().contains("race"), "{e}");
        assert_eq!(RaceConfig::parse("{}").unwrap(), RaceConfig::default());
    }

    #[test]
    fn starts_are_in_the_box_and_repeatable() {
        let cfg = RaceConfig::default();
        let [a0, a1, b0, b1] = cfg.function.start_box();
        let starts = cfg.starts();
        assert_eq!(starts, cfg.starts());
        assert!(starts
            .iter()
            .all(|p| (a0..a1).contains(&p[0]) && (b0..b1).contains(&p[1])));
    }

    #[test]
    fn every_racer_improves_on_the_cpu() {
        for f in TestFn::ALL {
            let cfg = RaceConfig {
                function: f,
                points: 16,
                total_steps: 300,
                ..RaceConfig::default()
            };
            let start = cfg.starts().iter().map(|&p| f.value(p)).sum::<f64>() / 16.0;
            for (name, _, x) in reference_positions(&cfg, 300).unwrap() {
                let end = x.iter().map(|&p| f.value(p)).sum::<f64>() / 16.0;
                assert!(end < 0.5 * start, "{f:?} {name}: mean loss {start} -> {end}");
            }
        }
    }
}
