//! Every golden case of `tests/data/` (the reference implementation's output in
//! f64) through `sfnap replay` on the GPU, within the case's own tolerance.
//!
//! The bf16-state cases (`*_bf16.json`) are not the reference implementation's
//! (it has no bf16 state): sfnap's own f64 reference wrote them, with the same
//! rounding and random bits as the device, from the f32 case of the same name
//! (`BF16_CASES`): `cargo test --test golden -- --ignored write_bf16_cases`
//! rewrites them, and `bf16_cases_are_the_references_output` holds them to it.

mod common;

use common::{empty_dir, golden_files, sfnap};
use sfnap::replay::{check_within, ReplayCase, ReplayResult};
use std::process::Command;

#[test]
fn every_golden_case_passes_through_the_cli() {
    let files = golden_files();
    assert_eq!(files.len(), 15, "expected the 15 golden cases in tests/data");
    let dir = empty_dir("cases");
    for file in files {
        let case = ReplayCase::load(&file).unwrap();
        let out = dir.join(file.file_name().unwrap());
        let status = Command::new(env!("CARGO_BIN_EXE_sfnap"))
            .args(["replay", file.to_str().unwrap(), "--out", out.to_str().unwrap()])
            .status()
            .unwrap();
        assert!(status.success(), "{}: sfnap replay failed", file.display());
        let got: ReplayResult = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        let expected = case.expected.as_ref().expect("golden files carry `expected`");
        if let Err(e) = check_within(&got, expected) {
            panic!("{}: {e}", file.display());
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn replay_output_keeps_the_tensor_order_of_the_case() {
    let file = &golden_files()[0];
    let out = sfnap(&["replay", file.to_str().unwrap()]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let y = text.find("\"y\"").unwrap();
    let (t0, t1, t2) = (text[y..].find("t0"), text[y..].find("t1"), text[y..].find("t2"));
    assert!(t0 < t1 && t1 < t2, "tensor order lost: {text:.200}");
}

/// The bf16-state golden cases: (the f32 case they are made from, the file).
const BF16_CASES: [(&str, &str); 3] = [
    ("adamw_sf.json", "adamw_sf_bf16.json"),
    ("sf_plus.json", "sf_plus_bf16.json"),
    ("adamw_sf_nap.json", "adamw_sf_nap_bf16.json"),
];

/// The seed of the bf16 cases' stochastic rounding.
const BF16_SEED: u64 = 28;

/// The tolerance of a bf16 case: the f32 case's, plus one bf16 ulp (2^-7 of the
/// value) for a rounding decision that the f32-vs-f64 difference flips
/// (docs/algorithms.md, "bf16 state": about 3e-4 of the writes of Adam's v).
fn bf16_tolerance(f32_rtol: f64) -> f64 {
    f32_rtol + 2f64.powi(-7)
}

/// The bf16 case made from the f32 case `from`, its expected result the f64
/// reference's with bf16 state, as the JSON text of the file.
fn bf16_case(from: &str) -> String {
    let path = common::data(from);
    let mut json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let top = json.as_object_mut().unwrap();
    let opt = top["optimizer"].as_object_mut().unwrap();
    opt.insert("state_dtype".into(), "bf16".into());
    opt.insert("state_seed".into(), BF16_SEED.into());
    top.remove("expected");
    let tolerance = top.remove("tolerance").unwrap();
    let case = ReplayCase::parse(&json.to_string()).unwrap();
    let rtol = bf16_tolerance(tolerance["rtol"].as_f64().unwrap());
    let tolerance = serde_json::json!({"rtol": rtol, "atol": tolerance["atol"]});
    let expected = sfnap::replay::run_reference(&case).unwrap();
    let order: Vec<String> = case.tensors.iter().map(|t| t.name.clone()).collect();
    let expected: serde_json::Value = serde_json::from_str(&expected.to_json(&order)).unwrap();
    let top = json.as_object_mut().unwrap();
    top.insert("expected".into(), expected);
    top.insert("tolerance".into(), tolerance);
    json.to_string()
}

/// Writes the bf16 cases (run by hand when the reference or the rounding changes).
#[test]
#[ignore]
fn write_bf16_cases() {
    for (from, to) in BF16_CASES {
        std::fs::write(common::data(to), bf16_case(from)).unwrap();
    }
}

#[test]
fn bf16_cases_are_the_references_output() {
    for (from, to) in BF16_CASES {
        let written: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(common::data(to)).unwrap()).unwrap();
        let made: serde_json::Value = serde_json::from_str(&bf16_case(from)).unwrap();
        assert_eq!(written, made, "{to}: rewrite it with write_bf16_cases");
    }
}
