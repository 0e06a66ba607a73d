//! bf16 optimizer state (`state_dtype: bf16`): the rounding of an f32 to bf16,
//! stochastic or to nearest, and the counter-based hash that gives stochastic
//! rounding its random bits. `shaders/state_bf16.wgsl` computes the same bits
//! and the same rounding on the device; the f64 reference
//! ([`crate::optim::reference`]) rounds its state through these functions, so
//! the device can still be checked against it (docs/algorithms.md, "bf16 state").

use serde::{Deserialize, Serialize};

/// How the optimizer's state buffers (z, v, m, x) are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum), value(rename_all = "snake_case"))]
pub enum StateDtype {
    /// One f32 per value (4 bytes).
    #[default]
    F32,
    /// One bf16 per value, two to a 32-bit word (2 bytes); the parameters stay f32.
    Bf16,
}

impl StateDtype {
    /// Both, f32 first.
    pub const ALL: [StateDtype; 2] = [StateDtype::F32, StateDtype::Bf16];

    /// "f32" or "bf16", as the command line spells it.
    pub fn name(self) -> &'static str {
        match self {
            StateDtype::F32 => "f32",
            StateDtype::Bf16 => "bf16",
        }
    }
}

/// How a value is rounded to bf16 when a bf16 state buffer is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum), value(rename_all = "snake_case"))]
pub enum Rounding {
    /// Up or down with probability in proportion to the distance (unbiased).
    #[default]
    Stochastic,
    /// To the nearest bf16, ties to even.
    Nearest,
}

/// The random-bit stream of a write: the step's pass writes stream `binding`
/// (4 z, 5 v, 6 m, 7 x: the state buffer's binding number), NaP's projection
/// stream `binding + NAP_STREAM`.
pub const NAP_STREAM: u32 = 8;

/// The 32-bit finalizer "lowbias32" (Chris Wellons' hash-prospector): a
/// bijection of u32 with good avalanche. WGSL `hash32`.
pub fn hash32(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^= x >> 16;
    x
}

/// The key of one (seed, step, stream): the same for every element of a pass.
pub fn stream_key(seed: u32, step: u32, stream: u32) -> u32 {
    hash32(hash32(hash32(seed) ^ step) ^ stream)
}

/// The 16 random bits of element `element` (its offset in the arena) under `key`.
pub fn random_bits(key: u32, element: u32) -> u32 {
    hash32(key ^ hash32(element)) & 0xffff
}

/// `v` rounded to bf16 (returned as the 16 bits): `(bits(v) + r) >> 16`, with
/// `r` the random bits (stochastic) or `0x7fff + lsb` (nearest, ties to even).
/// NaN stays NaN (quieted); infinities stay; a finite value may round up to
/// infinity only from above the largest bf16, as the carry into the exponent says.
pub fn round_bits(v: f32, rounding: Rounding, random: u32) -> u16 {
    let bits = v.to_bits();
    if bits & 0x7fff_ffff > 0x7f80_0000 {
        return ((bits >> 16) | 0x0040) as u16;
    }
    let r = match rounding {
        Rounding::Stochastic => random & 0xffff,
        Rounding::Nearest => 0x7fff + ((bits >> 16) & 1),
    };
    (bits.wrapping_add(r) >> 16) as u16
}

/// A bf16's 16 bits widened to f32 (exact).
pub fn widen(b: u16) -> f32 {
    f32::from_bits((b as u32) << 16)
}

/// `v` rounded to bf16 and widened back: what a bf16 state buffer holds after
/// a write of `v` (as f32) at element `element` under stream key `key`.
pub fn round(v: f32, rounding: Rounding, key: u32, element: u32) -> f32 {
    widen(round_bits(v, rounding, random_bits(key, element)))
}

/// The first `len` values of bf16 state words (two to a word, the even element
/// in the low half), widened.
pub fn unpack(words: &[u32], len: usize) -> Vec<f32> {
    words
        .iter()
        .flat_map(|&w| [f32::from_bits(w << 16), f32::from_bits(w & 0xffff_0000)])
        .take(len)
        .collect()
}

/// (first word, words) of a tensor at arena offset `offset` (even) of `len` values.
pub fn words_of(offset: usize, len: usize) -> (usize, usize) {
    (offset / 2, len.div_ceil(2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bf16_values_round_to_themselves() {
        for bits in [0u16, 0x3f80, 0xbf80, 0x7f7f, 0x0001, 0x8001, 0x7f80, 0xff80] {
            for r in [0, 1, 0x7fff, 0x8000, 0xffff] {
                assert_eq!(round_bits(widen(bits), Rounding::Stochastic, r), bits);
            }
            assert_eq!(round_bits(widen(bits), Rounding::Nearest, 0), bits);
        }
    }

    #[test]
    fn nearest_rounds_ties_to_even_and_nan_stays_nan() {
        assert_eq!(round_bits(f32::from_bits(0x3f80_8000), Rounding::Nearest, 0), 0x3f80);
        assert_eq!(round_bits(f32::from_bits(0x3f81_8000), Rounding::Nearest, 0), 0x3f82);
        assert_eq!(round_bits(f32::from_bits(0x3f80_8001), Rounding::Nearest, 0), 0x3f81);
        assert!(widen(round_bits(f32::NAN, Rounding::Stochastic, 0xffff)).is_nan());
        assert!(widen(round_bits(f32::from_bits(0x7f80_0001), Rounding::Stochastic, 0xffff)).is_nan());
        assert_eq!(
            widen(round_bits(f32::INFINITY, Rounding::Stochastic, 0xffff)),
            f32::INFINITY
        );
        // Above the largest bf16, a carry into the exponent reaches infinity.
        assert_eq!(round_bits(f32::MAX, Rounding::Stochastic, 0xffff), 0x7f80);
    }

    #[test]
    fn stochastic_rounding_is_unbiased() {
        // 1 + 2^-9 lies a quarter of the way from 1 to the next bf16 (1 + 2^-7).
        let v = 1.0f32 + 2f32.powi(-9);
        let key = stream_key(7, 3, 4);
        let n = 1 << 16;
        let up = (0..n).filter(|&e| round(v, Rounding::Stochastic, key, e) > 1.0).count();
        assert!((up as f64 / n as f64 - 0.25).abs() < 0.01, "{up} of {n} rounded up");
        let mean: f64 = (0..n)
            .map(|e| round(-v, Rounding::Stochastic, key, e) as f64)
            .sum::<f64>()
            / n as f64;
        assert!((mean + v as f64).abs() < 1e-4, "mean {mean}");
    }
}
