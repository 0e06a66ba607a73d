//! The f64 reference against every golden case in `tests/data/` (the bf16-state
//! cases are its own output: `tests/golden.rs`).
//!
//! Each case must pass its own tolerance, and, since the reference is f64 like the
//! generator, also agree to `1e-9 + 1e-9 * |exp|` everywhere.

mod common;

use common::golden_files;
use sfnap::replay::{check_within, run_reference, ReplayCase, ReplayResult};

/// The worst `|got - exp| / (1 + |exp|)` over y, x and z, and where it occurs.
fn worst_diff(got: &ReplayResult, exp: &ReplayResult) -> (f64, f64, String) {
    let mut worst = (0.0, 0.0, String::from("(none)"));
    for (seq, g, e) in [("y", &got.y, &exp.y), ("x", &got.x, &exp.x), ("z", &got.z, &exp.z)] {
        for (name, ev) in e {
            let gv = &g[name];
            assert_eq!(gv.len(), ev.len(), "{seq}.{name}: length");
            for (i, (a, b)) in gv.iter().zip(ev).enumerate() {
                let diff = (a - b).abs();
                let scaled = diff / (1.0 + b.abs());
                if scaled.is_nan() || scaled > worst.1 {
                    worst = (diff, scaled, format!("{seq}.{name}[{i}]: got {a}, expected {b}"));
                }
            }
        }
    }
    worst
}

#[test]
fn reference_matches_every_golden_case() {
    let files = golden_files();
    assert_eq!(files.len(), 15, "expected 15 golden files, found {files:?}");
    let mut failures = Vec::new();
    for path in &files {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let case = ReplayCase::load(path).unwrap_or_else(|e| panic!("{file}: {e}"));
        let expected = case
            .expected
            .as_ref()
            .unwrap_or_else(|| panic!("{file}: no `expected`"));
        let got = match run_reference(&case) {
            Ok(got) => got,
            Err(e) => {
                failures.push(format!("{file}: run_reference failed: {e}"));
                continue;
            }
        };
        if let Err(e) = check_within(&got, expected) {
            failures.push(format!("{file}: outside the file's tolerance: {e}"));
        }
        let (diff, scaled, at) = worst_diff(&got, &expected.result);
        println!("{file}: worst |diff| {diff:.3e} (|diff|/(1+|exp|) {scaled:.3e}) at {at}");
        if scaled.is_nan() || scaled > 1e-9 {
            failures.push(format!(
                "{file}: worst |diff| {diff:.3e} exceeds 1e-9 + 1e-9*|exp| at {at}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
