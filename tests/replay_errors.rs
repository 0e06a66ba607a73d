//! Malformed replay cases: exit status 2, one line on stderr naming the field,
//! never a panic, never an output file.

use std::process::Command;

fn valid() -> serde_json::Value {
    serde_json::json!({
        "optimizer": { "kind": "adamw_sf", "lr": 0.01 },
        "shapes": { "a": [2], "b": [1, 3] },
        "params": { "a": [1.0, 2.0], "b": [0.5, -0.5, 0.25] },
        "steps": [ { "grads": { "a": [0.1, 0.2], "b": [0.3, 0.1, -0.2] } } ]
    })
}

/// Runs `sfnap replay` on `text`; returns (status, stderr, whether --out was created).
fn replay(text: &str) -> (i32, String, bool) {
    let dir = std::env::temp_dir().join(format!("sfnap-err-{}-{}", std::process::id(), rand_id(text)));
    std::fs::create_dir_all(&dir).unwrap();
    let case = dir.join("case.json");
    let out = dir.join("out.json");
    std::fs::write(&case, text).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_sfnap"))
        .args(["replay", case.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    let created = out.exists();
    std::fs::remove_dir_all(&dir).ok();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stderr).into_owned(),
        created,
    )
}

fn rand_id(s: &str) -> u64 {
    s.bytes().fold(1469598103934665603u64, |h, b| {
        (h ^ b as u64).wrapping_mul(1099511628211)
    })
}

fn expect_error(case: serde_json::Value, field: &str) {
    let (code, stderr, created) = replay(&case.to_string());
    assert_eq!(code, 2, "status for {field}: stderr {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line expected: {stderr}");
    assert!(stderr.contains(field), "stderr should name `{field}`: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!created, "an output file was written for a bad case ({field})");
}

#[test]
fn valid_case_runs() {
    let (code, stderr, created) = replay(&valid().to_string());
    assert_eq!(code, 0, "{stderr}");
    assert!(created);
}

#[test]
fn bad_json() {
    let (code, stderr, created) = replay("{ \"optimizer\": ");
    assert_eq!(code, 2);
    assert!(stderr.contains("invalid JSON"), "{stderr}");
    assert!(!created);
}

#[test]
fn unknown_kind() {
    let mut c = valid();
    c["optimizer"]["kind"] = "adagrad".into();
    expect_error(c, "optimizer");
}

#[test]
fn unknown_optimizer_field() {
    let mut c = valid();
    c["optimizer"]["learning_rate"] = 0.1.into();
    expect_error(c, "learning_rate");
}

#[test]
fn unknown_top_level_field() {
    let mut c = valid();
    c["extra"] = 1.into();
    expect_error(c, "extra");
}

#[test]
fn length_does_not_match_shape() {
    let mut c = valid();
    c["params"]["b"] = serde_json::json!([1.0, 2.0]);
    expect_error(c, "params.b");
}

#[test]
fn gradient_length_does_not_match_shape() {
    let mut c = valid();
    c["steps"][0]["grads"]["a"] = serde_json::json!([1.0]);
    expect_error(c, "steps[0].grads.a");
}

#[test]
fn gradient_for_unknown_tensor() {
    let mut c = valid();
    c["steps"][0]["grads"]["ghost"] = serde_json::json!([1.0]);
    expect_error(c, "steps[0].grads.ghost");
}

#[test]
fn missing_loss_for_sf_plus() {
    let mut c = valid();
    c["optimizer"] = serde_json::json!({ "kind": "sf_plus" });
    expect_error(c, "steps[0].loss");
}

#[test]
fn non_finite_hyperparameter() {
    // JSON has no NaN literal; a huge exponent parses to infinity.
    let text = valid().to_string().replace("\"lr\":0.01", "\"lr\":1e999");
    let (code, stderr, created) = replay(&text);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("lr") || stderr.contains("invalid JSON"), "{stderr}");
    assert!(!created);
    let mut c = valid();
    c["optimizer"]["betas"] = serde_json::json!([1.5, 0.999]);
    expect_error(c, "optimizer.betas[0]");
}

#[test]
fn nap_group_with_unknown_tensor() {
    let mut c = valid();
    c["nap"] = serde_json::json!({ "groups": [ { "tensors": ["a", "nope"] } ] });
    expect_error(c, "nap.groups[0].tensors");
}

#[test]
fn missing_file_is_an_error_not_a_panic() {
    let o = Command::new(env!("CARGO_BIN_EXE_sfnap"))
        .args(["replay", "/nonexistent/case.json"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/case.json"));
}
