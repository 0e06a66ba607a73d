//! Data sets: generated (two spirals, the continual label-reset stream) and
//! shipped in `data/` (8x8 digits, an English text for the char-LM), and files
//! of one's own (UTF-8 text, CSV).

pub mod continual;
pub mod csv;
pub mod digits;
pub mod spirals;
pub mod text;

/// Refuses a data file that is not a regular file (after symbolic links): a
/// FIFO or a device would give its bytes once, and a run reads its data more
/// than once (to scan it, fingerprint it and load it).
pub fn check_regular(path: &std::path::Path) -> crate::Result<()> {
    match std::fs::metadata(path) {
        Ok(m) if !m.is_file() => Err(crate::Error::invalid(
            path.display().to_string(),
            format!(
                "is {}, not a regular file: sfnap reads its data files more than once (copy it into a file)",
                crate::error::file_kind(&m.file_type())
            ),
        )),
        _ => Ok(()),
    }
}

/// A fingerprint of the file at `path`: its length and the CRC-32 of its bytes,
/// read in 1 MiB blocks. A run keeps its data file's, so that a resume or an
/// evaluation on a file that has changed since is refused.
pub fn fingerprint(path: &std::path::Path) -> crate::Result<String> {
    use std::io::Read;
    check_regular(path)?;
    let io = |source| crate::Error::Io {
        path: path.display().to_string(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut hasher = crc32fast::Hasher::new();
    let mut block = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut block).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&block[..n]);
        bytes += n as u64;
    }
    Ok(format!("{bytes} bytes, crc32 {:08x}", hasher.finalize()))
}

/// Refuses the file at `path` when a run's `stored` fingerprint (see
/// [`fingerprint`]) no longer matches it; runs from before fingerprints were
/// kept (`None`) are taken as they are.
pub fn check_fingerprint(path: &str, stored: Option<&str>) -> crate::Result<()> {
    let Some(stored) = stored else {
        return Ok(());
    };
    let now = fingerprint(std::path::Path::new(path))?;
    if now != stored {
        return Err(crate::Error::invalid(
            path,
            format!(
                "the file has changed since the run trained on it (then {stored}, now {now}): restore it, \
                 or train a new run on it"
            ),
        ));
    }
    Ok(())
}

/// A deterministic generator (SplitMix64): every data set is reproducible from its seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The generator's state (a checkpoint keeps it to resume the same sequence).
    pub fn state(&self) -> u64 {
        self.0
    }

    /// A generator continuing from `state`.
    pub fn from_state(state: u64) -> Self {
        Rng(state)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform integer in [0, n).
    pub fn below(&mut self, n: usize) -> usize {
        (((self.next_u64() >> 32) * n as u64) >> 32) as usize
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let a = self.uniform().max(1e-300);
        let b = self.uniform();
        (-2.0 * a.ln()).sqrt() * (std::f64::consts::TAU * b).cos()
    }

    /// Shuffles `v` in place (Fisher-Yates).
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.below(i + 1));
        }
    }
}

/// A classification set: `inputs` is `[len, dim]` row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Classification {
    /// Features, row-major.
    pub inputs: Vec<f32>,
    /// Class of each row.
    pub labels: Vec<u32>,
    /// Features per row.
    pub dim: usize,
    /// Number of classes.
    pub classes: usize,
}

impl Classification {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The rows at `indices`, as a new set.
    pub fn select(&self, indices: &[usize]) -> Classification {
        let mut inputs = Vec::with_capacity(indices.len() * self.dim);
        for &i in indices {
            inputs.extend_from_slice(&self.inputs[i * self.dim..(i + 1) * self.dim]);
        }
        Classification {
            inputs,
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            dim: self.dim,
            classes: self.classes,
        }
    }

    /// A stratified split: about `test_fraction` of each class goes to the test
    /// set, `round(len * test_fraction)` rows in all (largest remainders first).
    pub fn split(&self, test_fraction: f64, seed: u64) -> (Classification, Classification) {
        let mut rng = Rng::new(seed);
        let by_class: Vec<Vec<usize>> = (0..self.classes as u32)
            .map(|c| (0..self.len()).filter(|&i| self.labels[i] == c).collect())
            .collect();
        let exact: Vec<f64> = by_class.iter().map(|rows| rows.len() as f64 * test_fraction).collect();
        let mut n_test: Vec<usize> = exact.iter().map(|e| e.floor() as usize).collect();
        let total = (self.len() as f64 * test_fraction).round() as usize;
        let mut order: Vec<usize> = (0..self.classes).collect();
        order.sort_by(|&a, &b| (exact[b] - exact[b].floor()).total_cmp(&(exact[a] - exact[a].floor())));
        for &c in order.iter().cycle().take(total.saturating_sub(n_test.iter().sum())) {
            n_test[c] += 1;
        }
        let (mut train, mut test) = (Vec::new(), Vec::new());
        for (mut rows, n) in by_class.into_iter().zip(n_test) {
            rng.shuffle(&mut rows);
            test.extend_from_slice(&rows[..n]);
            train.extend_from_slice(&rows[n..]);
        }
        rng.shuffle(&mut train);
        rng.shuffle(&mut test);
        (self.select(&train), self.select(&test))
    }
}
