//! The optimizer race: many starting points on a 2D test function, raced by
//! `sgd_sf`, `adamw_sf`, `sf_plus` and scheduled `adamw` on the GPU.
//!
//! Each starting point is one 2-element tensor of an [`Arena`], so one optimizer
//! step updates all of them in one dispatch. The gradients (and the summed loss
//! `sf_plus` reads) come from `shaders/race.wgsl` on the device; nothing is read
//! back during a step. [`Race::request_snapshot`] packs y, x and the per-step mean
//! losses into one buffer for one readback (once per animation frame in the web
//! demo, `web/race.html`). [`reference_positions`] runs the same race in f64 on the
//! CPU with [`Reference`], the oracle of the tests.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::optim::reference::Reference;
use crate::optim::{Kind, OptimConfig, Schedule};

mod gpu;

pub use gpu::{Race, RacerSnapshot, Snapshot, SnapshotRequest};

/// Steps of per-step mean loss kept on the device between two snapshots.
pub const HISTORY: usize = 4096;
/// Most starting points per optimizer.
pub const MAX_POINTS: usize = 4096;
/// The racers, in display order: the key of [`RaceConfig::lr`].
pub const RACERS: [&str; 4] = ["sgd_sf", "adamw_sf", "sf_plus", "adamw"];

/// A 2D test function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TestFn {
    /// `(1 - a)^2 + 100 (b - a^2)^2`: a curved valley, minimum 0 at (1, 1).
    Rosenbrock,
    /// `0.5 (u^2 + 50 w^2)` in axes turned by 45 degrees: condition number 50.
    Quadratic,
    /// `0.5 |p|^2` with Gaussian noise on the gradient.
    NoisyBowl,
    /// Beale's function, minimum 0 at (3, 0.5).
    Beale,
}

impl TestFn {
    /// Every function, in display order.
    pub const ALL: [TestFn; 4] = [TestFn::Rosenbrock, TestFn::Quadratic, TestFn::NoisyBowl, TestFn::Beale];

    /// The name used in configs and URLs.
    pub fn name(self) -> &'static str {
        match self {
            TestFn::Rosenbrock => "rosenbrock",
            TestFn::Quadratic => "quadratic",
            TestFn::NoisyBowl => "noisy_bowl",
            TestFn::Beale => "beale",
        }
    }

    /// Parses a function name.
    pub fn parse(s: &str) -> Result<TestFn> {
        TestFn::ALL.into_iter().find(|f| f.name() == s).ok_or_else(|| {
            let names: Vec<_> = TestFn::ALL.iter().map(|f| f.name()).collect();
            Error::invalid(
                "function",
                format!("unknown function `{s}` (expected one of {})", names.join(", ")),
            )
        })
    }

    /// The value at `p` (noise-free).
    pub fn value(self, p: [f64; 2]) -> f64 {
        let [a, b] = p;
        match self {
            TestFn::Rosenbrock => (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2),
            TestFn::Quadratic => {
                let (u, w) = rotated(p);
                0.5 * (u * u + KAPPA * w * w)
            }
            TestFn::NoisyBowl => 0.5 * (a * a + b * b),
            TestFn::Beale => beale_terms(p).iter().map(|t| t * t).sum(),
        }
    }

    /// The gradient at `p` (noise-free).
    pub fn grad(self, p: [f64; 2]) -> [f64; 2] {
        let [a, b] = p;
        match self {
            TestFn::Rosenbrock => {
                let r = b - a * a;
                [-2.0 * (1.0 - a) - 400.0 * a * r, 200.0 * r]
            }
            TestFn::Quadratic => {
                let (u, w) = rotated(p);
                let s = std::f64::consts::FRAC_1_SQRT_2;
                [(u - KAPPA * w) * s, (u + KAPPA * w) * s]
            }
            TestFn::NoisyBowl => [a, b],
            TestFn::Beale => {
                let [t1, t2, t3] = beale_terms(p);
                let (b2, b3) = (b * b, b * b * b);
                [
                    2.0 * (t1 * (b - 1.0) + t2 * (b2 - 1.0) + t3 * (b3 - 1.0)),
                    2.0 * a * (t1 + 2.0 * t2 * b + 3.0 * t3 * b2),
                ]
            }
        }
    }

    /// Where the minimum (value 0) is.
    pub fn minimum(self) -> [f64; 2] {
        match self {
            TestFn::Rosenbrock => [1.0, 1.0],
            TestFn::Quadratic | TestFn::NoisyBowl => [0.0, 0.0],
            TestFn::Beale => [3.0, 0.5],
        }
    }

    /// The plotted region `[a_min, a_max, b_min, b_max]`.
    pub fn view(self) -> [f64; 4] {
        match self {
            TestFn::Rosenbrock => [-2.0, 2.0, -1.0, 3.0],
            TestFn::Quadratic | TestFn::NoisyBowl => [-3.0, 3.0, -3.0, 3.0],
            TestFn::Beale => [-1.0, 4.5, -1.5, 2.0],
        }
    }

    /// The region starting points are drawn from, `[a_min, a_max, b_min, b_max]`.
    pub fn start_box(self) -> [f64; 4] {
        match self {
            TestFn::Rosenbrock => [-1.8, 0.0, 1.5, 2.8],
            TestFn::Quadratic | TestFn::NoisyBowl => [-2.6, 2.6, -2.6, 2.6],
            TestFn::Beale => [-0.5, 1.0, -1.2, 1.6],
        }
    }

    /// The learning rate each racer starts with on this function (`sf_plus`: a multiplier of its Polyak step).
    pub fn default_lr(self, racer: &str) -> f64 {
        let table = match self {
            TestFn::Rosenbrock => [2e-4, 0.03, 0.3, 0.05],
            TestFn::Quadratic => [0.03, 0.1, 0.3, 0.1],
            TestFn::NoisyBowl => [0.05, 0.05, 0.3, 0.1],
            TestFn::Beale => [5e-3, 0.05, 0.3, 0.05],
        };
        RACERS.iter().position(|r| *r == racer).map_or(1.0, |i| table[i])
    }

    /// The id `race.wgsl` switches on.
    fn id(self) -> u32 {
        self as u32
    }
}

/// Condition number of [`TestFn::Quadratic`] (`KAPPA` in race.wgsl).
const KAPPA: f64 = 50.0;

fn rotated([a, b]: [f64; 2]) -> (f64, f64) {
    let s = std::f64::consts::FRAC_1_SQRT_2;
    ((a + b) * s, (b - a) * s)
}

fn beale_terms([a, b]: [f64; 2]) -> [f64; 3] {
    [1.5 - a + a * b, 2.25 - a + a * b * b, 2.625 - a + a * b * b * b]
}

/// The PCG hash of `race.wgsl`.
pub fn pcg(v: u32) -> u32 {
    let state = v.wrapping_mul(747796405).wrapping_add(2891336453);
    let word = ((state >> ((state >> 28) + 4)) ^ state).wrapping_mul(277803737);
    (word >> 22) ^ word
}

fn unit(h: u32) -> f64 {
    ((h >> 8) as f64 + 0.5) / 16777216.0
}

/// The two standard normal numbers `race.wgsl` adds (times `noise`) to point `i`'s gradient at step `k`.
pub fn gauss2(seed: u32, k: u32, i: u32) -> [f64; 2] {
    let h = pcg(seed ^ pcg(k ^ pcg(i)));
    let (u1, u2) = (unit(h), unit(pcg(h)));
    let r = (-2.0 * u1.ln()).sqrt();
    let t = std::f64::consts::TAU * u2;
    [r * t.cos(), r * t.sin()]
}

/// The learning-rate schedule of the `adamw` racer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleKind {
    /// Warmup, then cosine down to 0 at `total_steps`.
    Cosine,
    /// Warmup, stable, then a linear decay over the last fifth of `total_steps`.
    Wsd,
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
                    let (warmup_steps, total_steps) = (self.warmup_steps, self.total_steps);
                    cfg.schedule = match self.schedule {
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
                    };
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

/// `log10(value + 1e-3)` of `function` on a `width` x `height` grid over its view,
/// row by row from the top (largest b) down: the contour plot's background.
pub fn field(function: TestFn, width: usize, height: usize) -> Vec<f32> {
    let [a0, a1, b0, b1] = function.view();
    let mut out = Vec::with_capacity(width * height);
    for row in 0..height {
        let b = b1 - (b1 - b0) * (row as f64 + 0.5) / height as f64;
        for col in 0..width {
            let a = a0 + (a1 - a0) * (col as f64 + 0.5) / width as f64;
            out.push((function.value([a, b]) + 1e-3).log10() as f32);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gradients_match_finite_differences() {
        for f in TestFn::ALL {
            for p in [[0.3, -0.7], [-1.2, 1.0], [2.0, 0.4]] {
                let g = f.grad(p);
                for d in 0..2 {
                    let h = 1e-6;
                    let (mut lo, mut hi) = (p, p);
                    lo[d] -= h;
                    hi[d] += h;
                    let fd = (f.value(hi) - f.value(lo)) / (2.0 * h);
                    assert!(
                        (fd - g[d]).abs() <= 1e-5 * (1.0 + fd.abs()),
                        "{f:?} at {p:?}: {fd} vs {}",
                        g[d]
                    );
                }
            }
            assert_eq!(f.value(f.minimum()), 0.0, "{f:?}");
        }
    }

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
