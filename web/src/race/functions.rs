//! The race's 2D test functions: values and gradients in f64 (the CPU oracle of
//! `web/shaders/race.wgsl`), the gradient noise the shader adds, and the
//! contour plot's background.

use serde::{Deserialize, Serialize};
use sfnap::{Error, Result};

use super::RACERS;

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
    pub(super) fn id(self) -> u32 {
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

/// A uniform number in (0, 1) from a hash.
pub(super) fn unit(h: u32) -> f64 {
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
}
