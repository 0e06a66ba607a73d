//! Every golden case of `tests/data/` (the reference implementation's output in
//! f64) through `sfnap replay` on the GPU, within the case's own tolerance.

mod common;

use common::{empty_dir, golden_files, sfnap};
use sfnap::replay::{check_within, ReplayCase, ReplayResult};
use std::process::Command;

#[test]
fn every_golden_case_passes_through_the_cli() {
    let files = golden_files();
    assert_eq!(files.len(), 12, "expected the 12 golden cases in tests/data");
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
