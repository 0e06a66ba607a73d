//! `sf_window`: the averaging window of the Schedule-Free kinds.
//!
//! Its golden cases (`tests/data/*_window*.json`) come from the f64 reference
//! (`write_window_golden_cases`, ignored: run it with `--ignored` to regenerate);
//! `golden.rs` runs them through `sfnap replay` on the GPU and `reference_golden.rs`
//! through the reference. Here: the window changes x where the spec says it does,
//! every kind that takes a window matches the reference on the GPU over 1,000
//! steps, and the kinds that ignore it refuse it.

mod common;

use common::{data, gpu, random_case, sfnap, temp_dir, U32};
use sfnap::nap::{NapConfig, NapGroup};
use sfnap::optim::reference::Reference;
use sfnap::optim::{Kind, OptimConfig};
use sfnap::replay::{check_within, run_gpu_with, run_reference, run_reference_with, ReplayCase, ReplayResult};

/// The golden cases: (file, optimizer, NaP, steps, seed). 40 steps with windows of
/// 8 and 10, so c sits on its floor 1/W for most of the case.
fn golden_cases() -> Vec<(&'static str, OptimConfig, Option<NapConfig>, usize, u64)> {
    let mut adamw_sf = OptimConfig::new(Kind::AdamwSf).with_lr(0.01);
    adamw_sf.weight_decay = 0.05;
    adamw_sf.warmup_steps = 5;
    adamw_sf.r = 0.5;
    adamw_sf.sf_window = 8;
    let mut sgd = OptimConfig::new(Kind::SgdSf).with_lr(0.05);
    sgd.warmup_steps = 4;
    sgd.sf_window = 10;
    let nap = NapConfig {
        groups: vec![
            NapGroup {
                tensors: vec!["t0".into()],
                rho: None,
            },
            NapGroup {
                tensors: vec!["t1".into(), "t2".into()],
                rho: None,
            },
        ],
    };
    vec![
        ("adamw_sf_window.json", adamw_sf, None, 40, 11),
        ("sgd_sf_window_nap.json", sgd, Some(nap), 40, 12),
    ]
}

fn golden_shapes() -> Vec<(&'static str, Vec<usize>)> {
    vec![("t0", vec![7]), ("t1", vec![3, 5]), ("t2", vec![2, 2, 3])]
}

/// A case as JSON in the golden files' layout, with `expected` and `tolerance`.
fn golden_json(case: &ReplayCase, expected: &ReplayResult) -> String {
    let map = |values: &dyn Fn(usize) -> serde_json::Value| {
        let mut m = serde_json::Map::new();
        for (i, t) in case.tensors.iter().enumerate() {
            m.insert(t.name.clone(), values(i));
        }
        serde_json::Value::Object(m)
    };
    let steps: Vec<serde_json::Value> = case
        .steps
        .iter()
        .map(|s| serde_json::json!({ "grads": map(&|i| serde_json::json!(s.grads[i])) }))
        .collect();
    let order: Vec<String> = case.tensors.iter().map(|t| t.name.clone()).collect();
    let expected: serde_json::Value = serde_json::from_str(&expected.to_json(&order)).unwrap();
    let root = serde_json::json!({
        "optimizer": case.optimizer,
        "nap": case.nap.as_ref().map(|n| serde_json::json!({
            "groups": n.groups.iter().map(|g| serde_json::json!({ "tensors": g.tensors })).collect::<Vec<_>>()
        })),
        "params": map(&|i| serde_json::json!(case.tensors[i].values)),
        "steps": steps,
        "shapes": map(&|i| serde_json::json!(case.tensors[i].shape)),
        "expected": expected,
        "tolerance": { "rtol": 1e-4, "atol": 1e-5 },
    });
    serde_json::to_string(&root).unwrap()
}

/// Writes the window's golden cases from the f64 reference.
#[test]
#[ignore = "regenerates tests/data/*_window*.json"]
fn write_window_golden_cases() {
    for (file, cfg, nap, steps, seed) in golden_cases() {
        let case = random_case(&cfg, nap, &golden_shapes(), steps, seed);
        let expected = run_reference(&case).unwrap();
        std::fs::write(data(file), golden_json(&case, &expected) + "\n").unwrap();
    }
}

/// The checked-in cases are the ones `golden_cases` describes, and the window
/// matters in them: the same case without a window ends outside its tolerance.
#[test]
fn the_window_changes_the_golden_cases_result() {
    for (file, cfg, _, steps, _) in golden_cases() {
        let case = ReplayCase::load(&data(file)).unwrap();
        assert_eq!(case.optimizer, cfg, "{file}");
        assert_eq!(case.steps.len(), steps, "{file}");
        let expected = case.expected.clone().unwrap();
        check_within(&run_reference(&case).unwrap(), &expected).unwrap();
        let mut uniform = case.clone();
        uniform.optimizer.sf_window = 0;
        assert!(
            check_within(&run_reference(&uniform).unwrap(), &expected).is_err(),
            "{file}: without the window the result is the same"
        );
    }
}

/// c = 1/t for the first W steps (no warmup, r = 0: the paper's average), then 1/W.
#[test]
fn c_is_one_over_t_then_one_over_the_window() {
    for kind in [Kind::SgdSf, Kind::AdamwSf, Kind::AdamwSfPaper] {
        let mut cfg = OptimConfig::new(kind).with_lr(0.01);
        cfg.sf_window = 16;
        let params = vec![("a".to_string(), vec![0.5, -1.0])];
        let mut r = Reference::new(&cfg, &params, &[true], None).unwrap();
        for t in 1..=100u64 {
            r.step(&[vec![0.1, -0.2]], None).unwrap();
            let want = if kind == Kind::AdamwSfPaper {
                // gamma grows with sqrt(1 - b2^t), so w / W_sum starts above 1/t.
                r.scalars().c.max(1.0 / 16.0)
            } else {
                1.0 / (t.min(16)) as f64
            };
            assert!(
                (r.scalars().c - want).abs() <= 1e-15,
                "{kind} t={t}: c {}",
                r.scalars().c
            );
            assert!(r.scalars().c >= 1.0 / 16.0 - 1e-15, "{kind} t={t}");
        }
    }
}

/// As `gpu_vs_reference.rs`, for each kind that takes a window.
#[test]
fn every_windowed_kind_matches_the_reference_over_1000_steps() {
    let gpu = gpu();
    let shapes = vec![
        ("one", vec![1]),
        ("three", vec![3]),
        ("w4k1", vec![4097]),
        ("w", vec![3, 700]),
    ];
    let nap = NapConfig {
        groups: vec![NapGroup {
            tensors: vec!["w".into()],
            rho: None,
        }],
    };
    let mut momentum = OptimConfig::new(Kind::AdamwSf).with_lr(0.01);
    momentum.inner_momentum = 0.9;
    let mut radam_sgd = OptimConfig::new(Kind::RadamSf).with_lr(0.01);
    radam_sgd.silent_sgd_phase = false;
    // The setting the plasticity study chose: the window with beta 0.5.
    let mut half = OptimConfig::new(Kind::AdamwSf).with_lr(0.01);
    half.betas = Some([0.5, 0.999]);
    let mut sgd_half = OptimConfig::new(Kind::SgdSf).with_lr(0.05);
    sgd_half.momentum = 0.5;
    let configs = [
        OptimConfig::new(Kind::SgdSf).with_lr(0.05),
        OptimConfig::new(Kind::AdamwSf).with_lr(0.01),
        half,
        sgd_half,
        momentum,
        OptimConfig::new(Kind::AdamwSfPaper).with_lr(0.01),
        OptimConfig::new(Kind::RadamSf).with_lr(0.01),
        radam_sgd,
    ];
    let steps = 1000;
    // The error bound of gpu_vs_reference.rs: K = 16 f32 roundings per element and
    // step, accumulating like a random walk, a factor 4 for its tail. The window
    // keeps c >= 1/W, a larger weight on new z than the uniform average: the
    // update mixes y, z, x with weights in [0, 1] as before, so the bound holds.
    let bound = 4.0 * (steps as f64).sqrt() * 16.0 * U32;
    for (i, mut cfg) in configs.into_iter().enumerate() {
        cfg.warmup_steps = if cfg.kind == Kind::RadamSf { 0 } else { 20 };
        cfg.sf_window = 50;
        for (j, nap) in [None, Some(nap.clone())].into_iter().enumerate() {
            cfg.weight_decay = if nap.is_some() { 0.0 } else { 0.01 };
            let name = format!(
                "{} beta {} window 50{}",
                cfg.kind,
                cfg.sf_beta(),
                if nap.is_some() { " + NaP" } else { "" }
            );
            let case = random_case(&cfg, nap, &shapes, steps, 300 + 2 * i as u64 + j as u64);
            let decay: Vec<bool> = case.tensors.iter().map(|t| t.name != "three").collect();
            let exp = run_reference_with(&case, &decay).unwrap();
            let got = run_gpu_with(&gpu, &case, &decay, None).unwrap();
            let mut worst = (0.0f64, String::new());
            for (seq, g, e) in [("y", &got.y, &exp.y), ("x", &got.x, &exp.x), ("z", &got.z, &exp.z)] {
                for (t, ev) in e {
                    let scale = ev.iter().fold(0.0f64, |m, v| m.max(v.abs()));
                    for (k, (a, b)) in g[t].iter().zip(ev).enumerate() {
                        let r = (a - b).abs() / (b.abs() + scale);
                        if r > worst.0 || r.is_nan() {
                            worst = (r, format!("{seq}.{t}[{k}]: got {a}, expected {b}"));
                        }
                    }
                }
            }
            println!(
                "{name:32} worst relative error {:.2e} (bound {bound:.2e}) at {}",
                worst.0, worst.1
            );
            assert!(worst.0 <= bound, "{name}: {:.3e} > {bound:.3e} at {}", worst.0, worst.1);
        }
    }
}

/// A kind that ignores the window refuses it: in a replay case and on the command line.
#[test]
fn adamw_and_sf_plus_refuse_a_window() {
    for kind in [Kind::Adamw, Kind::SfPlus] {
        let mut cfg = OptimConfig::new(kind);
        cfg.sf_window = 100;
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("optimizer.sf_window"), "{kind}: {err}");
        let case = serde_json::json!({
            "optimizer": { "kind": kind.name(), "sf_window": 100 },
            "shapes": { "a": [2] },
            "params": { "a": [1.0, 2.0] },
            "steps": [ { "loss": 0.5, "grads": { "a": [0.1, 0.2] } } ]
        });
        let path = std::env::temp_dir().join(format!("sfnap-window-{}-{kind}.json", std::process::id()));
        std::fs::write(&path, case.to_string()).unwrap();
        let o = sfnap(&["replay", path.to_str().unwrap()]);
        std::fs::remove_file(&path).ok();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{kind}: {stderr}");
        assert!(stderr.contains("optimizer.sf_window"), "{kind}: {stderr}");

        let o = sfnap(&["train", "--opt", kind.name(), "--sf-window", "100", "--steps", "1"]);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{kind}: {stderr}");
        assert!(stderr.contains("sf-window"), "{kind}: {stderr}");
    }
    let mut ok = OptimConfig::new(Kind::RadamSf);
    ok.sf_window = 100;
    ok.validate().unwrap();
}

/// A window of 0 is the paper's average: it is not even written, so cases and
/// checkpoints from before the window read and write the same bytes.
#[test]
fn window_zero_is_not_serialized() {
    let cfg = OptimConfig::new(Kind::AdamwSf);
    assert!(!serde_json::to_string(&cfg).unwrap().contains("sf_window"));
}

/// The window is a setting of the run: a resume with another window is refused
/// and names it; the same window resumes.
#[test]
fn resume_refuses_another_window() {
    let dir = temp_dir("run");
    let train = |extra: &[&str]| {
        let mut args = vec![
            "train",
            "--data",
            "spirals",
            "--opt",
            "adamw_sf",
            "--lr",
            "0.01",
            "--eval-every",
            "10",
        ];
        args.extend_from_slice(extra);
        sfnap(&args)
    };
    let d = dir.to_str().unwrap();
    let o = train(&["--sf-window", "10", "--steps", "20", "--out", d]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = train(&["--sf-window", "0", "--steps", "30", "--resume", d]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("optimizer.sf_window"), "{stderr}");
    let o = train(&["--sf-window", "10", "--steps", "30", "--resume", d]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::remove_dir_all(&dir).ok();
}

/// `--sf-beta` sets the interpolation weight of the run (betas[0] of the Adam kinds,
/// sgd_sf's momentum), written into the run's settings so a resume with another
/// beta is refused; adamw and sf_plus refuse it.
#[test]
fn sf_beta_sets_the_runs_interpolation_weight() {
    let dir = temp_dir("sf-beta-run");
    let d = dir.to_str().unwrap();
    let train = |extra: &[&str]| {
        let mut args = vec!["train", "--data", "spirals", "--lr", "0.01", "--eval-every", "10"];
        args.extend_from_slice(extra);
        sfnap(&args)
    };
    for (kind, key) in [("adamw_sf", "\"betas\":[0.5,0.999]"), ("sgd_sf", "\"momentum\":0.5")] {
        std::fs::remove_dir_all(&dir).ok();
        let o = train(&[
            "--opt",
            kind,
            "--sf-window",
            "10",
            "--sf-beta",
            "0.5",
            "--steps",
            "20",
            "--out",
            d,
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let bytes = std::fs::read(dir.join("checkpoint.safetensors")).unwrap();
        let text = String::from_utf8_lossy(&bytes).replace("\\\"", "\"");
        assert!(text.contains(key), "{kind}: {key} not in the checkpoint's settings");
        let o = train(&[
            "--opt",
            kind,
            "--sf-window",
            "10",
            "--sf-beta",
            "0.9",
            "--steps",
            "30",
            "--resume",
            d,
        ]);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{kind}: {stderr}");
    }
    for kind in ["adamw", "sf_plus"] {
        let o = train(&["--opt", kind, "--sf-beta", "0.5", "--steps", "1"]);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{kind}: {stderr}");
        assert!(stderr.contains("sf-beta"), "{kind}: {stderr}");
    }
    std::fs::remove_dir_all(&dir).ok();
}
