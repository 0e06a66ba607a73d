//! `sfnap bench --memory-table`: on paper, the largest model whose parameters,
//! gradients and optimizer state fit in 24, 80 and 141 GiB, for every kind and
//! state precision, from [`KindSpec::kept`], beside PyTorch's f32 AdamW and an
//! 8-bit AdamW. Activations, the training graph and `sfnap train`'s x export are
//! not counted: the table compares what the optimizer keeps per parameter.
//! benches/precision.md holds its output (a test checks it is current).

use crate::optim::bf16::StateDtype;
use crate::optim::config::{Kind, OptimConfig};
use crate::optim::KindSpec;

/// The memories of the table, GiB: a 24 GiB card, an 80 GiB H100, a 141 GiB H200.
pub const CAPACITIES_GIB: [u64; 3] = [24, 80, 141];

/// bitsandbytes' 8-bit AdamW: f32 parameters and gradients (4 + 4), m and v one
/// byte each, and one f32 absmax scale per block of 256 values of each: 10 + 8/256.
pub const ADAMW_8BIT_BYTES: f64 = 4.0 + 4.0 + 1.0 + 1.0 + 2.0 * 4.0 / 256.0;

/// PyTorch's f32 AdamW: parameters, gradients, m and v, 4 bytes each.
pub const ADAMW_TORCH_BYTES: f64 = 16.0;

/// One row: optimizer, precision, (f32, state) bytes kept per parameter, their total.
pub struct MemoryRow {
    /// The optimizer, as `sfnap` names it (or the peer's name).
    pub optimizer: String,
    /// The state's precision.
    pub precision: String,
    /// Bytes of parameters and gradients, and of the state, per parameter.
    pub split: Option<(u64, u64)>,
    /// Bytes kept per parameter in all.
    pub bytes: f64,
}

/// sfnap's rows (every kind, adamw_sf with inner momentum too, in f32 and bf16)
/// from [`KindSpec::kept`], then the two peers.
pub fn memory_rows() -> Vec<MemoryRow> {
    let mut configs: Vec<(String, OptimConfig)> = Kind::ALL
        .iter()
        .map(|&k| (k.name().to_string(), OptimConfig::new(k)))
        .collect();
    let mut momentum = OptimConfig::new(Kind::AdamwSf);
    momentum.inner_momentum = 0.9;
    configs.push(("adamw_sf (inner momentum)".into(), momentum));
    let mut rows = Vec::new();
    for (name, cfg) in configs {
        for dtype in StateDtype::ALL {
            let kept = KindSpec::new(&OptimConfig {
                state_dtype: dtype,
                ..cfg.clone()
            })
            .kept();
            rows.push(MemoryRow {
                optimizer: name.clone(),
                precision: dtype.name().into(),
                split: Some((kept.f32, kept.state)),
                bytes: kept.total() as f64,
            });
        }
    }
    for (optimizer, precision, bytes) in [
        ("PyTorch AdamW", "f32", ADAMW_TORCH_BYTES),
        ("8-bit AdamW (bitsandbytes)", "8-bit, blocks of 256", ADAMW_8BIT_BYTES),
    ] {
        rows.push(MemoryRow {
            optimizer: optimizer.into(),
            precision: precision.into(),
            split: None,
            bytes,
        });
    }
    rows
}

/// The largest whole number of parameters at `bytes` per parameter in `gib` GiB.
pub fn largest_model(gib: u64, bytes: f64) -> u64 {
    ((gib << 30) as f64 / bytes).floor() as u64
}

/// The table in Markdown, parameters in billions (1e9).
pub fn memory_table() -> String {
    let mut out = String::from("| optimizer | state | B/param kept (f32 + state) |");
    for g in CAPACITIES_GIB {
        out += &format!(" {g} GiB |");
    }
    out += "\n|---|---|---:|";
    out += &"---:|".repeat(CAPACITIES_GIB.len());
    out += "\n";
    for r in memory_rows() {
        let split = match r.split {
            Some((f, s)) => format!("{} ({f} + {s})", r.bytes),
            None => format!("{:.2}", r.bytes),
        };
        out += &format!("| {} | {} | {split} |", r.optimizer, r.precision);
        for g in CAPACITIES_GIB {
            out += &format!(" {:.2} B |", largest_model(g, r.bytes) as f64 / 1e9);
        }
        out += "\n";
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_counts_the_kept_bytes() {
        let rows = memory_rows();
        let find = |o: &str, p: &str| {
            rows.iter()
                .find(|r| r.optimizer == o && r.precision == p)
                .unwrap()
                .bytes
        };
        assert_eq!(find("adamw_sf", "f32"), 16.0);
        assert_eq!(find("adamw_sf", "bf16"), 12.0);
        assert_eq!(find("sf_plus", "bf16"), 16.0);
        assert_eq!(find("sgd_sf", "bf16"), 10.0);
        assert!((ADAMW_8BIT_BYTES - 10.03125).abs() < 1e-12);
        // 80 GiB at 16 bytes a parameter: 5 * 2^30 parameters.
        assert_eq!(largest_model(80, 16.0), 5 << 30);
    }

    /// benches/precision.md (copied into BENCHMARKS.md) holds this table as printed.
    #[test]
    fn the_committed_table_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/precision.md");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains(&memory_table()),
            "{} is stale: paste in `sfnap bench --memory-table`:\n{}",
            path.display(),
            memory_table()
        );
    }
}
