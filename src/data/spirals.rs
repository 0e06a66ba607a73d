//! Two interleaved spirals in the plane: the classic small non-linear problem.

use super::{Classification, Rng};

/// `n` points, half on each spiral arm, with Gaussian noise of `noise` (in units
/// of the plane, arms reach radius 1).
pub fn spirals(n: usize, noise: f64, seed: u64) -> Classification {
    let mut rng = Rng::new(seed);
    let mut inputs = Vec::with_capacity(2 * n);
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let class = (i % 2) as u32;
        let t = rng.uniform();
        let angle = 3.0 * std::f64::consts::PI * t + std::f64::consts::PI * class as f64;
        let r = 0.1 + 0.9 * t;
        inputs.push((r * angle.cos() + noise * rng.normal()) as f32);
        inputs.push((r * angle.sin() + noise * rng.normal()) as f32);
        labels.push(class);
    }
    Classification {
        inputs,
        labels,
        dim: 2,
        classes: 2,
    }
}

/// (a, b) pairs as (a, b, 1) rows. An MLP whose hidden Linears have no bias and
/// are followed by LayerNorm cannot see an input's scale, only its direction; the
/// constant third feature plays the first layer's bias.
pub fn with_one(pairs: &[f32]) -> Vec<f32> {
    pairs.chunks_exact(2).flat_map(|p| [p[0], p[1], 1.0]).collect()
}

/// The set with a constant 1 appended to every point (see [`with_one`]).
pub fn with_constant_input(data: &Classification) -> Classification {
    Classification {
        inputs: with_one(&data.inputs),
        dim: 3,
        ..data.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balanced_and_bounded() {
        let d = spirals(1000, 0.0, 1);
        assert_eq!(d.labels.iter().filter(|&&l| l == 1).count(), 500);
        assert!(d.inputs.iter().all(|v| v.abs() <= 1.0));
    }
}
