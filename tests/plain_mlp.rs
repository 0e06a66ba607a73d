//! `--no-norm`: the plain MLP of the plasticity study (Linear with bias, ReLU).

mod common;

use common::{sfnap, temp_dir};

/// `sfnap train` with `args`.
fn train(args: &[&str]) -> std::process::Output {
    sfnap(&[&["train"], args].concat())
}

/// It learns the digits, and its metrics report the hidden weights' norm
/// although it has no NaP groups (the study compares that norm across networks).
#[test]
fn the_plain_mlp_learns_the_digits() {
    let dir = temp_dir("digits");
    let o = train(&[
        "--data",
        "digits",
        "--no-norm",
        "--opt",
        "adamw",
        "--lr",
        "3e-3",
        "--steps",
        "300",
        "--eval-every",
        "300",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let csv = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    let last: Vec<f64> = csv
        .lines()
        .last()
        .unwrap()
        .split(',')
        .map(|v| v.parse().unwrap_or(f64::NAN))
        .collect();
    assert!(last[3] > 0.9, "accuracy {}", last[3]);
    // He-normal 64x256 and 256x256: E|W|^2 = 2 * 256 + 2 * 256, a norm near 32.
    assert!(last[5] > 25.0 && last[5] < 60.0, "hidden weight norm {}", last[5]);
    std::fs::remove_dir_all(&dir).ok();
}

/// NaP needs normalization: the plain MLP with --nap is refused (status 2, naming nap).
#[test]
fn the_plain_mlp_refuses_nap() {
    let o = train(&["--data", "digits", "--no-norm", "--nap", "--steps", "1"]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("nap"), "{stderr}");
    let o = train(&["--model", "gpt", "--data", "text", "--no-norm", "--steps", "1"]);
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
}
