//! The 8x8 handwritten digits shipped in `data/digits.bin` (see `data/README.md`).

use super::Classification;

const RAW: &[u8] = include_bytes!("../../data/digits.bin");

/// All 1,797 digits, pixels scaled from 0..16 to 0..1.
pub fn digits() -> Classification {
    let rows = RAW.chunks_exact(65);
    let mut inputs = Vec::with_capacity(rows.len() * 64);
    let mut labels = Vec::with_capacity(rows.len());
    for row in rows {
        inputs.extend(row[..64].iter().map(|&p| p as f32 / 16.0));
        labels.push(row[64] as u32);
    }
    Classification {
        inputs,
        labels,
        dim: 64,
        classes: 10,
    }
}

/// The split the reference numbers use: 1,437 train / 360 test, stratified.
pub fn digits_split(seed: u64) -> (Classification, Classification) {
    digits().split(360.0 / 1797.0, seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_file_is_whole() {
        let d = digits();
        assert_eq!(d.len(), 1797);
        let mut counts = [0; 10];
        d.labels.iter().for_each(|&l| counts[l as usize] += 1);
        assert!(counts.iter().all(|&c| (174..=183).contains(&c)), "{counts:?}");
        let (train, test) = digits_split(0);
        assert_eq!((train.len(), test.len()), (1437, 360));
    }
}
