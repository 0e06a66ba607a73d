//! The counter-based generator shared by the environment kernels and their
//! twins: Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1,
//! 2, 3", SC 2011), the same function as `shaders/philox.wgsl`'s `philox`. A draw is
//! a pure function of the seed and a counter, so every environment and every
//! episode has its own stream, on the device and here, bit for bit, whatever
//! order they run in.
//!
//! The counter of a draw is `[env, index, purpose, 0]`: the environment's
//! index (or the batch's row), the episode (or step) it is for, and what it is
//! for ([`RESET`], [`ACT`], [`SAMPLE`]).

/// The purpose of the draws that start an episode (the index is the episode).
pub const RESET: u32 = 0;
/// The purpose of the agent's epsilon-greedy draws (the index is the agent step).
pub const ACT: u32 = 1;
/// The purpose of the replay buffer's sample draws (the row of the batch, the
/// learn step).
pub const SAMPLE: u32 = 2;

const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

/// The key of `seed`: its low and high 32 bits.
pub fn key(seed: u64) -> [u32; 2] {
    [seed as u32, (seed >> 32) as u32]
}

/// Philox4x32 with 10 rounds: four random words for `counter` under `key`.
pub fn philox(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let (mut c, mut k) = (counter, key);
    for round in 0..10 {
        if round > 0 {
            k = [k[0].wrapping_add(W0), k[1].wrapping_add(W1)];
        }
        let p0 = u64::from(M0) * u64::from(c[0]);
        let p1 = u64::from(M1) * u64::from(c[2]);
        c = [
            (p1 >> 32) as u32 ^ c[1] ^ k[0],
            p1 as u32,
            (p0 >> 32) as u32 ^ c[3] ^ k[1],
            p0 as u32,
        ];
    }
    c
}

/// A word as a uniform number in [0, 1): its top 24 bits times 2^-24, exact in
/// f32 (the kernels compute the same value).
pub fn unit(word: u32) -> f64 {
    f64::from(word >> 8) / f64::from(1u32 << 24)
}

/// Four uniform numbers in [0, 1) for the draw `[env, index, purpose, 0]` of `seed`.
pub fn uniforms(seed: u64, env: u32, index: u32, purpose: u32) -> [f64; 4] {
    philox([env, index, purpose, 0], key(seed)).map(unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random123's known answers for Philox4x32-10 (its `tests/kat_vectors`):
    /// counter, key, result.
    #[test]
    fn known_answers() {
        let cases = [
            ([0; 4], [0; 2], [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]),
            (
                [u32::MAX; 4],
                [u32::MAX; 2],
                [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd],
            ),
            (
                [0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344],
                [0xa409_3822, 0x299f_31d0],
                [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1],
            ),
        ];
        for (counter, key, want) in cases {
            assert_eq!(philox(counter, key), want, "counter {counter:x?} key {key:x?}");
        }
    }

    #[test]
    fn units_cover_zero_to_one_exclusive() {
        assert_eq!(unit(0), 0.0);
        assert_eq!(unit(u32::MAX), 1.0 - 2f64.powi(-24));
        assert_eq!(unit(u32::MAX) as f32 as f64, unit(u32::MAX));
    }
}
