//! `sfnap merge`: weighted averages of checkpoints, and the merges it refuses.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{empty_dir, sfnap};
use safetensors::SafeTensors;

fn ok(o: Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Exit status 2 and a message containing every one of `words`.
fn refused(o: Output, words: &[&str]) {
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    for w in words {
        assert!(stderr.contains(w), "`{w}` not named: {stderr}");
    }
}

/// Trains spirals with `extra` settings to `steps` in `dir` (resuming when a
/// checkpoint is there) and copies the checkpoint to `dir/at{steps}.safetensors`.
fn train_to(dir: &Path, steps: u64, extra: &[&str]) -> PathBuf {
    let d = dir.to_str().unwrap();
    let steps_s = steps.to_string();
    let mut args = vec!["train", "--data", "spirals", "--steps", &steps_s, "--eval-every", "10"];
    args.extend_from_slice(extra);
    if dir.join("checkpoint.safetensors").exists() {
        args.extend_from_slice(&["--resume", d]);
    } else {
        args.extend_from_slice(&["--out", d]);
    }
    ok(sfnap(&args));
    let copy = dir.join(format!("at{steps}.safetensors"));
    std::fs::copy(dir.join("checkpoint.safetensors"), &copy).unwrap();
    copy
}

fn tensor(path: &Path, name: &str) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    bytemuck::pod_collect_to_vec(st.tensor(name).unwrap().data())
}

const ADAMW: [&str; 4] = ["--opt", "adamw", "--lr", "0.01"];

#[test]
fn merge_averages_y_and_x_and_the_result_resumes() {
    let dir = empty_dir("avg");
    let c20 = train_to(&dir, 20, &ADAMW);
    let c40 = train_to(&dir, 40, &ADAMW);
    let c60 = train_to(&dir, 60, &ADAMW);
    let inputs = [&c20, &c40, &c60].map(|p| p.to_str().unwrap().to_string());
    for (weights, w) in [("uniform", [1.0 / 3.0; 3]), ("sf", [1.0 / 3.0; 3])] {
        let out_dir = dir.join(format!("merged-{weights}"));
        std::fs::create_dir_all(&out_dir).unwrap();
        let out = out_dir.join("checkpoint.safetensors");
        let mut args = vec!["merge"];
        args.extend(inputs.iter().map(|s| s.as_str()));
        args.extend_from_slice(&["--out", out.to_str().unwrap(), "--weights", weights]);
        let text = ok(sfnap(&args));
        assert!(text.contains("eval accuracy"), "{text}");
        for family in ["y.l0.weight", "x.l0.weight", "v.head.weight", "m.l1.ln.gain"] {
            let got = tensor(&out, family);
            let parts: Vec<Vec<f32>> = [&c20, &c40, &c60].iter().map(|p| tensor(p, family)).collect();
            for (i, g) in got.iter().enumerate() {
                let want: f64 = parts.iter().zip(w).map(|(p, wi)| wi * p[i] as f64).sum();
                // One f32 rounding of the f64 average, and for x (adamw: x is y) none more.
                assert!(
                    (*g as f64 - want).abs() <= 2.0 * f32::EPSILON as f64 * want.abs().max(1e-30),
                    "{weights} {family}[{i}]: {g} vs {want}"
                );
            }
        }
        // Loadable: evaluated, and continued by --resume from its step (the latest input's).
        ok(sfnap(&["eval", out_dir.to_str().unwrap()]));
        let o = ok(sfnap(&[
            "train",
            "--data",
            "spirals",
            "--steps",
            "70",
            "--eval-every",
            "10",
            "--opt",
            "adamw",
            "--lr",
            "0.01",
            "--resume",
            out_dir.to_str().unwrap(),
        ]));
        assert!(o.contains("step 70"), "{o}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// bf16 state is averaged in f64 and rounded to the nearest bf16: the merged
/// checkpoint keeps it as `BF16` tensors, and resumes.
#[test]
fn merge_averages_bf16_state_to_the_nearest_bf16() {
    let dir = empty_dir("bf16");
    let args = ["--opt", "adamw_sf", "--lr", "0.01", "--state-dtype", "bf16"];
    let inputs = [train_to(&dir, 20, &args), train_to(&dir, 40, &args)];
    let out_dir = dir.join("merged");
    std::fs::create_dir_all(&out_dir).unwrap();
    let out = out_dir.join("checkpoint.safetensors");
    let mut merge = vec!["merge"];
    merge.extend(inputs.iter().map(|p| p.to_str().unwrap()));
    merge.extend_from_slice(&["--out", out.to_str().unwrap(), "--weights", "uniform"]);
    ok(sfnap(&merge));
    let bf16 = |path: &Path, name: &str| -> Vec<f32> {
        let bytes = std::fs::read(path).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let t = st.tensor(name).unwrap();
        assert_eq!(t.dtype(), safetensors::Dtype::BF16, "{name}");
        t.data()
            .chunks_exact(2)
            .map(|b| f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16))
            .collect()
    };
    for name in ["z.l0.weight", "v.head.weight"] {
        let got = bf16(&out, name);
        let (a, b) = (bf16(&inputs[0], name), bf16(&inputs[1], name));
        for (i, g) in got.iter().enumerate() {
            let want = ((a[i] as f64 + b[i] as f64) / 2.0) as f32;
            let nearest = f32::from_bits((want.to_bits() + 0x7fff + ((want.to_bits() >> 16) & 1)) & 0xffff_0000);
            assert_eq!(*g, nearest, "{name}[{i}]");
        }
    }
    let mut resume = vec!["train", "--data", "spirals", "--steps", "50", "--eval-every", "10"];
    resume.extend_from_slice(&args);
    resume.extend_from_slice(&["--resume", out_dir.to_str().unwrap()]);
    assert!(ok(sfnap(&resume)).contains("step 50"));
    std::fs::remove_dir_all(&dir).ok();
}

/// `sf` weights each checkpoint by the steps since the one before it (r = 0).
#[test]
fn sf_weights_follow_the_steps_each_checkpoint_stands_for() {
    let dir = empty_dir("sf");
    let c10 = train_to(&dir, 10, &ADAMW);
    let c40 = train_to(&dir, 40, &ADAMW);
    let out = dir.join("merged.safetensors");
    // Given out of order: the weights follow the steps, not the argument order.
    let text = ok(sfnap(&[
        "merge",
        c40.to_str().unwrap(),
        c10.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--weights",
        "sf",
    ]));
    let weights: Vec<f64> = text
        .lines()
        .take(2)
        .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(weights, vec![0.75, 0.25], "{text}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn merges_of_other_settings_models_or_steps_are_refused() {
    let dir = empty_dir("refuse");
    let a = train_to(&dir.join("a"), 10, &ADAMW);
    let b = train_to(&dir.join("b"), 10, &["--opt", "adamw", "--lr", "0.02"]);
    let c = train_to(&dir.join("c"), 10, &["--opt", "adamw_sf", "--lr", "0.01", "--nap"]);
    let out = dir.join("out.safetensors");
    let (a_s, b_s, c_s, out_s) = (
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        c.to_str().unwrap(),
        out.to_str().unwrap(),
    );
    refused(sfnap(&["merge", a_s, b_s, "--out", out_s]), &["optimizer.lr"]);
    refused(sfnap(&["merge", a_s, c_s, "--out", out_s]), &["optimizer.kind", "nap"]);
    // Another model: the digits MLP against the spirals one.
    let d = dir.join("d");
    ok(sfnap(&[
        "train",
        "--data",
        "digits",
        "--steps",
        "2",
        "--eval-every",
        "2",
        "--opt",
        "adamw",
        "--lr",
        "0.01",
        "--out",
        d.to_str().unwrap(),
    ]));
    refused(
        sfnap(&["merge", a_s, d.to_str().unwrap(), "--out", out_s]),
        &["model.mlp.input", "model.mlp.hidden", "data"],
    );
    // sf weights: two checkpoints of the same step stand for no steps of their own.
    refused(
        sfnap(&["merge", a_s, a_s, "--out", out_s, "--weights", "sf"]),
        &["same step"],
    );
    refused(
        sfnap(&["merge", a_s, "--out", out_s, "--weights", "mean"]),
        &["weights"],
    );
    // Not a checkpoint.
    let junk = dir.join("junk.safetensors");
    std::fs::write(&junk, b"not a checkpoint").unwrap();
    refused(
        sfnap(&["merge", a_s, junk.to_str().unwrap(), "--out", out_s]),
        &["junk.safetensors"],
    );
    assert!(!out.exists(), "a refused merge wrote its output");
    std::fs::remove_dir_all(&dir).ok();
}
