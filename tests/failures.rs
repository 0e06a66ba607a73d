//! Runs that fail: values that stop being finite in any kind, divergence, a
//! batch the adapter cannot hold, and the exit status of each kind of failure
//! (0 success, 2 bad input or settings, 1 a run that failed).

mod common;

use std::path::Path;

use common::{error_line, gpu, sfnap_status, temp_dir};
use sfnap::arena::{Arena, TensorSpec};
use sfnap::nap::{NapConfig, NapGroup};
use sfnap::optim::{GpuOptimizer, Kind, OptimConfig};
use sfnap::train::{train_observed, DataKind, Progress, RunOptions, TrainConfig, TrainObserver};

/// The step a checkpoint was saved at, after checking every value in it is finite.
fn finite_checkpoint_step(path: &Path) -> u64 {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    for (name, t) in st.tensors() {
        if t.dtype() == safetensors::Dtype::F32 {
            let values: Vec<f32> = bytemuck::pod_collect_to_vec(t.data());
            assert!(values.iter().all(|v| v.is_finite()), "{name} is not finite in {path:?}");
        }
    }
    sfnap::checkpoint::load(path).unwrap().meta.step
}

/// The optimizer configurations under test: every kind, inner momentum, NaP.
fn kinds() -> Vec<(OptimConfig, bool)> {
    let mut v: Vec<(OptimConfig, bool)> = Kind::ALL.iter().map(|&k| (OptimConfig::new(k), false)).collect();
    let mut momentum = OptimConfig::new(Kind::AdamwSf);
    momentum.inner_momentum = 0.9;
    v.push((momentum, false));
    v.extend(Kind::ALL.iter().map(|&k| (OptimConfig::new(k), true)));
    v
}

/// One step of `cfg` over a 64-element tensor from `init`, with gradient `grad`;
/// returns what [`GpuOptimizer::check`] says afterwards.
fn one_step(cfg: &OptimConfig, nap: bool, init: f32, grad: &[f32]) -> Result<(), String> {
    let gpu = gpu();
    let arena = Arena::new(&gpu, &[TensorSpec::new("w", &[64])], None).unwrap();
    let values: Vec<f32> = (0..64).map(|i| init * (1.0 + (i % 7) as f32 / 7.0)).collect();
    arena.write(&gpu, "w", &values).unwrap();
    let groups = NapConfig {
        groups: vec![NapGroup {
            tensors: vec!["w".into()],
            rho: None,
        }],
    };
    let mut opt = GpuOptimizer::new(&gpu, &arena, cfg, nap.then_some(&groups)).unwrap();
    assert!(opt.check(&gpu).is_ok(), "{} is unhealthy before any step", cfg.kind);
    // Straight into the buffer: `write_grad` refuses values that are not finite,
    // and here they must reach the device.
    gpu.queue.write_buffer(&arena.grads, 0, bytemuck::cast_slice(grad));
    if opt.loss_buffer().is_some() {
        opt.write_loss(&gpu, 1.0).unwrap();
    }
    opt.step(&gpu).unwrap();
    opt.check(&gpu).map_err(|e| e.to_string())
}

/// Every kind's step flags, on the device, a gradient that is not finite, an
/// update that overflows, and (with NaP) a group norm that overflows; a sound
/// step flags nothing.
#[test]
fn every_kind_flags_values_that_are_not_finite_on_the_device() {
    let mut grad = vec![0.5f32; 64];
    for (cfg, nap) in kinds() {
        let what = format!("{}{}", cfg.kind, if nap { " + NaP" } else { "" });
        let cfg = if cfg.kind == Kind::SfPlus {
            cfg
        } else {
            cfg.with_lr(0.01)
        };
        assert_eq!(one_step(&cfg, nap, 0.1, &grad), Ok(()), "{what}: a sound step");

        grad[17] = f32::NAN;
        let e = one_step(&cfg, nap, 0.1, &grad).expect_err(&what);
        // sf_plus's own check meets the NaN first, in its step size.
        let named = if cfg.kind == Kind::SfPlus {
            "sf_plus, step 1: the gradient"
        } else {
            "step 1: the gradient"
        };
        assert!(e.contains(named) && e.contains("not finite"), "{what}: {e}");
        grad[17] = 0.5;

        if cfg.kind != Kind::SfPlus {
            // A finite gradient whose square overflows (the Adam kinds' v) or whose
            // step overflows the weights (sgd_sf with a huge rate).
            let huge = if cfg.kind == Kind::SgdSf {
                one_step(&cfg.clone().with_lr(1e37), nap, 0.1, &[1e30; 64])
            } else {
                one_step(&cfg, nap, 0.1, &[1e30; 64])
            };
            let e = huge.expect_err(&what);
            assert!(e.contains("step 1:") && e.contains("not finite"), "{what}: {e}");
        }
    }
    // NaP: finite weights of 1e20 have a norm whose square overflows f32.
    let sgd = OptimConfig::new(Kind::SgdSf).with_lr(1e20);
    let e = one_step(&sgd, true, 0.1, &[1.0; 64]).unwrap_err();
    assert!(e.contains("step 1: a NaP group norm is not finite"), "{e}");
}

/// Counts the steps a run takes.
#[derive(Default)]
struct Steps(u64);

impl TrainObserver for Steps {
    fn step(&mut self, p: &Progress) {
        self.0 = p.done;
    }
}

/// The flags are read back with the training loss, without waiting for an
/// evaluation: a run that fails at step 2 stops a few steps later.
#[test]
fn a_run_stops_within_a_few_steps_of_a_value_that_is_not_finite() {
    let gpu = gpu();
    let data = DataKind::Spirals;
    let cfg = TrainConfig {
        model: TrainConfig::default_model(&data),
        data,
        optimizer: OptimConfig::new(Kind::AdamwSf).with_lr(1e30),
        nap: false,
        steps: 1000,
        batch: 64,
        eval_every: 1000,
        metrics_every: 10,
        seed: 0,
        task_steps: 500,
    };
    let dir = temp_dir("async");
    let opts = RunOptions {
        out: Some(dir.clone()),
        ..Default::default()
    };
    let mut steps = Steps::default();
    let e = train_observed(&gpu, &cfg, &opts, &mut steps).unwrap_err().to_string();
    assert!(e.contains("not finite"), "{e}");
    // The flags of step 10 (the first readback after step 2) arrive a few submissions later.
    assert!(steps.0 <= 40, "stopped only after {} steps: {e}", steps.0);
    let csv = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    assert!(!csv.contains("NaN") && !csv.contains("inf"), "{csv}");
    assert!(!dir.join("checkpoint.safetensors").exists());
    std::fs::remove_dir_all(&dir).ok();
}

/// From the command line: every kind (and adamw's weight decay, and NaP) stops
/// with exit 1 and one line naming the step and the quantity, and leaves neither
/// a checkpoint nor a metrics row that is not finite.
#[test]
fn every_kind_exits_1_naming_the_step_when_values_stop_being_finite() {
    let mut runs: Vec<Vec<&str>> = ["sgd_sf", "adamw_sf", "adamw_sf_paper", "radam_sf", "adamw", "sf_plus"]
        .iter()
        .map(|k| vec!["--opt", k, "--lr", "1e30"])
        .collect();
    runs.push(vec!["--opt", "adamw", "--lr", "0.01", "--weight-decay", "1e30"]);
    runs.push(vec!["--opt", "adamw_sf", "--lr", "1e30", "--nap"]);
    for run in runs {
        let dir = temp_dir("cli-nonfinite");
        let mut args = vec!["train", "--data", "spirals", "--steps", "200", "--eval-every", "50"];
        args.extend(&run);
        args.extend(["--checkpoint-every", "50", "--out", dir.to_str().unwrap()]);
        let (code, stderr) = sfnap_status(&args);
        assert_eq!(code, 1, "{run:?}: {stderr}");
        let line = error_line(&stderr);
        assert!(
            line.contains("error: numerical:") && line.contains("step "),
            "{run:?}: {line}"
        );
        assert!(line.contains("not finite"), "{run:?}: {line}");
        let checkpoint = dir.join("checkpoint.safetensors");
        if checkpoint.exists() {
            finite_checkpoint_step(&checkpoint);
        }
        let csv = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
        assert!(!csv.contains("NaN") && !csv.contains("inf"), "{run:?}: {csv}");
        std::fs::remove_dir_all(&dir).ok();
    }
}

/// A run whose evaluation loss stays far above where it started stops with
/// exit 1; its checkpoint is the last one saved below the limit.
#[test]
fn a_diverging_run_stops_and_keeps_its_last_good_checkpoint() {
    let dir = temp_dir("diverge");
    let (code, stderr) = sfnap_status(&[
        "train",
        "--data",
        "spirals",
        "--opt",
        "adamw_sf",
        "--lr",
        "1e4",
        "--steps",
        "400",
        "--eval-every",
        "10",
        "--checkpoint-every",
        "10",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{stderr}");
    let line = error_line(&stderr);
    assert!(line.contains("the run diverged"), "{line}");
    let failed: u64 = line
        .split("after ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no step in: {line}"));
    let saved = finite_checkpoint_step(&dir.join("checkpoint.safetensors"));
    assert!(saved < failed, "checkpoint at {saved}, divergence at {failed}");
    // The evaluation the checkpoint was saved at is below the limit (100 ln 2).
    let csv = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    let row: Vec<&str> = csv
        .lines()
        .find(|l| l.starts_with(&format!("{saved},")) && l.split(',').nth(2) != Some(""))
        .unwrap_or_else(|| panic!("no evaluation at {saved}: {csv}"))
        .split(',')
        .collect();
    let loss: f64 = row[2].parse().unwrap();
    assert!(loss <= 100.0 * 2f64.ln(), "checkpoint saved at eval loss {loss}");
    std::fs::remove_dir_all(&dir).ok();
}

/// A batch whose buffers the adapter cannot hold is refused before anything is
/// allocated, with the most that fits; not a panic in the driver.
#[test]
fn a_batch_beyond_the_adapter_is_refused_with_the_most_that_fits() {
    for args in [
        vec!["train", "--batch", "20000000", "--steps", "10"],
        vec!["train", "--batch", "18446744073709551615", "--steps", "10"],
        vec![
            "train", "--model", "gpt", "--data", "text", "--batch", "100000", "--steps", "10",
        ],
    ] {
        let (code, stderr) = sfnap_status(&args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        let line = error_line(&stderr);
        assert!(line.contains("error: batch:") && line.contains("rows fit"), "{line}");
    }
}

/// 0 success, 2 bad input or settings, 1 a run that failed.
#[test]
fn exit_codes_follow_one_policy() {
    let dir = temp_dir("codes");
    let out = dir.to_str().unwrap();
    let ok = sfnap_status(&[
        "train",
        "--data",
        "spirals",
        "--steps",
        "20",
        "--eval-every",
        "10",
        "--out",
        out,
    ]);
    assert_eq!(ok.0, 0, "{}", ok.1);
    let missing = dir.join("missing.json");
    let no_checkpoint = dir.join("empty");
    std::fs::create_dir_all(&no_checkpoint).unwrap();
    for (args, code) in [
        (vec!["train", "--batch", "0"], 2),
        (vec!["train", "--opt", "nope"], 2),
        // A warmup the kind would ignore is refused, not dropped.
        (vec!["train", "--opt", "sf_plus", "--warmup", "50"], 2),
        (vec!["train", "--opt", "adamw", "--warmup", "50"], 2),
        (vec!["replay", missing.to_str().unwrap()], 2),
        (vec!["train", "--resume", no_checkpoint.to_str().unwrap()], 2),
        (
            vec![
                "train", "--data", "spirals", "--opt", "sgd_sf", "--lr", "1e30", "--steps", "20",
            ],
            1,
        ),
    ] {
        let (got, stderr) = sfnap_status(&args);
        assert_eq!(got, code, "{args:?}: {stderr}");
        error_line(&stderr);
    }
    std::fs::remove_dir_all(&dir).ok();
}
