//! Malformed replay cases: exit status 2, one line on stderr naming the field,
//! never a panic, never an output file.

mod common;

use std::process::Command;

use common::sfnap;

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
    replay_env(text, &[])
}

/// [`replay`] with extra environment variables.
fn replay_env(text: &str, env: &[(&str, &str)]) -> (i32, String, bool) {
    let dir = std::env::temp_dir().join(format!("sfnap-err-{}-{}", std::process::id(), rand_id(text)));
    std::fs::create_dir_all(&dir).unwrap();
    let case = dir.join("case.json");
    let out = dir.join("out.json");
    std::fs::write(&case, text).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_sfnap"))
        .args(["replay", case.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .envs(env.iter().copied())
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
    let o = sfnap(&["replay", "/nonexistent/case.json"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/case.json"));
}

/// Runs a bad case where no GPU adapter can be found (`WGPU_ADAPTER_NAME`
/// matches none), so the error must come from validation, before any GPU work:
/// status 2, one line naming `path` and containing `what`, no output file.
fn refused_before_gpu(text: &str, path: &str, what: &str) {
    let (code, stderr, created) = replay_env(text, &[("WGPU_ADAPTER_NAME", "no adapter has this name")]);
    assert_eq!(code, 2, "status for {path}: stderr {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line expected: {stderr}");
    assert!(
        stderr.contains(&format!("{path}: ")),
        "stderr should name `{path}`: {stderr}"
    );
    assert!(stderr.contains(what), "stderr should say `{what}`: {stderr}");
    assert!(!created, "an output file was written for a bad case ({path})");
}

/// `valid()` with the optimizer field `key` set to `value` (raw JSON).
fn with_optimizer_field(key: &str, value: &str) -> String {
    valid()
        .to_string()
        .replace("\"lr\":0.01", &format!("\"lr\":0.01,\"{key}\":{value}"))
}

#[test]
fn learning_rate_beyond_its_range_is_refused() {
    let text = valid().to_string().replace("\"lr\":0.01", "\"lr\":1e38");
    refused_before_gpu(&text, "optimizer.lr", "must lie in [0, 1e37], got 1e38");
    let text = valid().to_string().replace("\"lr\":0.01", "\"lr\":3e38");
    refused_before_gpu(&text, "optimizer.lr", "must lie in");
}

#[test]
fn weight_decay_beyond_f32_is_refused() {
    refused_before_gpu(
        &with_optimizer_field("weight_decay", "1e39"),
        "optimizer.weight_decay",
        "must lie in [0, 1e37]",
    );
}

#[test]
fn averaging_power_that_overflows_is_refused() {
    refused_before_gpu(&with_optimizer_field("r", "1e10"), "optimizer.r", "must lie in [-3, 3]");
    refused_before_gpu(
        &with_optimizer_field("weight_lr_power", "-1"),
        "optimizer.weight_lr_power",
        "must lie in [0, 8]",
    );
}

#[test]
fn eps_that_rounds_to_zero_in_f32_is_refused() {
    refused_before_gpu(&with_optimizer_field("eps", "1e-50"), "optimizer.eps", "must lie in");
}

#[test]
fn nap_rho_beyond_its_range_is_refused() {
    let mut c = valid();
    c["nap"] = serde_json::json!({ "groups": [ { "tensors": ["a"], "rho": 1e308 } ] });
    refused_before_gpu(&c.to_string(), "nap.groups[0].rho", "must be a number in [1e-18, 1e18]");
}

#[test]
fn betas_that_round_to_one_in_f32_are_refused() {
    refused_before_gpu(
        &with_optimizer_field("betas", "[0.9,0.99999999]"),
        "optimizer.betas[1]",
        "rounds to 1 in f32",
    );
    refused_before_gpu(
        &with_optimizer_field("sf_beta1_max", "0.999999999"),
        "optimizer.sf_beta1_max",
        "rounds to 1 in f32",
    );
}

#[test]
fn values_beyond_f32_are_refused_with_their_path() {
    let mut c = valid();
    c["steps"][0]["grads"]["b"][2] = 1e39.into();
    refused_before_gpu(&c.to_string(), "steps[0].grads.b[2]", "outside the range of f32");
    let mut c = valid();
    c["params"]["a"][1] = (-3.5e38).into();
    refused_before_gpu(&c.to_string(), "params.a[1]", "outside the range of f32");
    let mut c = valid();
    c["optimizer"] = serde_json::json!({ "kind": "sf_plus" });
    c["steps"][0]["loss"] = 1e300.into();
    refused_before_gpu(&c.to_string(), "steps[0].loss", "outside the range of f32");
}

#[test]
fn shapes_that_overflow_are_refused() {
    let mut c = valid();
    c["shapes"]["a"] = serde_json::json!([9223372036854775809u64, 2]);
    refused_before_gpu(&c.to_string(), "shapes.a", "more than the 1073741824 a tensor may hold");
    // 2^32 * 2^32 wraps to 0 in u64 arithmetic.
    c["shapes"]["a"] = serde_json::json!([4294967296u64, 4294967296u64]);
    refused_before_gpu(&c.to_string(), "shapes.a", "more than the");
    c["shapes"]["a"] = serde_json::json!([65536, 65536]);
    refused_before_gpu(&c.to_string(), "shapes.a", "4294967296 elements");
}

#[test]
fn duplicate_keys_are_refused_by_path() {
    let text = valid().to_string();
    let twice = text.replacen(
        "\"optimizer\":",
        "\"optimizer\":{\"kind\":\"sgd_sf\"},\"optimizer\":",
        1,
    );
    refused_before_gpu(&twice, "optimizer", "duplicate key");
    let twice = text.replace("\"lr\":0.01", "\"lr\":0.01,\"lr\":0.02");
    refused_before_gpu(&twice, "optimizer.lr", "duplicate key");
    let twice = text.replace(
        "\"grads\":{\"a\":[0.1,0.2]",
        "\"grads\":{\"a\":[0.1,0.2],\"a\":[9.0,9.0]",
    );
    assert_ne!(twice, text);
    refused_before_gpu(&twice, "steps[0].grads.a", "duplicate key");
}

#[test]
fn wrong_types_name_the_full_path() {
    refused_before_gpu(
        &with_optimizer_field("betas", "[0.9,\"x\"]"),
        "optimizer.betas[1]",
        "must be a number",
    );
    let text = valid().to_string().replace("\"lr\":0.01", "\"lr\":\"fast\"");
    refused_before_gpu(&text, "optimizer.lr", "must be a number, got a string");
    let mut c = valid();
    c["optimizer"] =
        serde_json::json!({ "kind": "adamw", "schedule": { "kind": "wsd", "decay_steps": 2, "total_steps": -1 } });
    refused_before_gpu(&c.to_string(), "optimizer.schedule.total_steps", "non-negative integer");
    let mut c = valid();
    c["nap"] = serde_json::json!({ "groups": [ { "tensors": ["a", 5] } ] });
    refused_before_gpu(&c.to_string(), "nap.groups[0].tensors[1]", "must be a string");
}

/// warmup_steps + decay_steps overflowed u64 (a panic in a debug build).
#[test]
fn schedule_lengths_that_overflow_are_refused() {
    let mut c = valid();
    c["optimizer"] = serde_json::json!({ "kind": "adamw", "schedule": {
        "kind": "wsd", "warmup_steps": u64::MAX, "decay_steps": 1, "total_steps": 10 } });
    refused_before_gpu(&c.to_string(), "optimizer.schedule", "decay_steps > 0");
}

/// A key with a line break and an escape sequence: the message stays one line.
#[test]
fn control_characters_in_names_stay_on_one_line() {
    let mut c = valid();
    c["evil\n\u{1b}[2J"] = 1.into();
    refused_before_gpu(&c.to_string(), r#"["evil\n\u001b[2J"]"#, "unknown field");
}

/// Inputs in range whose arithmetic still overflows f32 (a huge step times a
/// huge gradient): a run that failed, not `null`s with status 0.
#[test]
fn a_result_that_overflows_is_an_error_not_nulls() {
    let mut c = valid();
    c["optimizer"] = serde_json::json!({ "kind": "sgd_sf", "lr": 1e30 });
    c["steps"][0]["grads"]["a"] = serde_json::json!([1e30, -1e30]);
    let (code, stderr, created) = replay(&c.to_string());
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line expected: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!created, "an output file was written for a run that overflowed");
}

/// sfnap's growth cap on the Polyak step: sf_plus only, at least 1; a case that
/// sets it runs.
#[test]
fn polyak_growth_is_checked_and_runs() {
    // valid() is adamw_sf: the cap belongs to sf_plus.
    refused_before_gpu(
        &with_optimizer_field("polyak_growth", "1.5"),
        "optimizer.polyak_growth",
        "adamw_sf takes no Polyak step to cap (only sf_plus takes it)",
    );
    let plus = |growth: &str| {
        valid()
            .to_string()
            .replace("\"kind\":\"adamw_sf\"", "\"kind\":\"sf_plus\"")
            .replace("\"lr\":0.01", &format!("\"polyak_growth\":{growth}"))
            .replace("\"grads\"", "\"loss\":0.5,\"grads\"")
    };
    refused_before_gpu(
        &plus("0.5"),
        "optimizer.polyak_growth",
        "must lie in [1, 1e37], got 0.5",
    );
    refused_before_gpu(&plus("\"fast\""), "optimizer.polyak_growth", "");
    let (code, stderr, created) = replay(&plus("1.01"));
    assert_eq!(code, 0, "{stderr}");
    assert!(created);
}
