//! The update functions of every kind against the f64 reference's own update
//! at the same state: for a sweep of g at elements in and out of NaP groups,
//! [`ElementUpdate::at`] (a reference restricted to what the element's step
//! reads) must give what the whole reference gives when its gradient holds g
//! at that element.
//!
//! The tolerance, derived:
//! - Every kind but sf_plus: 0. The restricted reference does the same
//!   operations on the same operands in the same order as the whole one (the
//!   element's own arithmetic; NaP's group norm over the group's tensors in the
//!   group's order), so the results are the same bits.
//! - sf_plus: only its two sums over every element, `S1 = sum |g|` and
//!   `S2 = sum g (z - x)`, are added in another order (the rest of the model
//!   first, then the kept elements), and the stand-in of the rest carries S2 as
//!   `S1 * (S2 / S1)` (two more roundings). Recursive summation of n terms errs
//!   by at most `gamma_n = n u / (1 - n u)` times the sum of the terms'
//!   magnitudes (u = 2^-53), so the two orders differ by at most
//!   `dS1 = 2 gamma_n S1` and `dS2 = 2 gamma_(n+1) A2`, `A2 = sum |g (z - x)|`.
//!   Through `e_hat` (linear in S1 with weight at most 1: relative error at most
//!   `2 gamma_n`) and `alpha = max(F + beta S2, 0) / e_hat` (1-Lipschitz in its
//!   numerator; the growth cap's `min` too), the step `gamma = lr alpha`
//!   differs by at most `d_gamma = lr (beta dS2 / e_hat + alpha 2 gamma_n)`.
//!   Every output is then a smooth function of gamma (c through lr_max, z, x,
//!   y, NaP's projection); its sensitivity `|d out / d gamma|` is measured with
//!   the reference itself, moving gamma through the loss (`d gamma / d F =
//!   lr / e_hat`). The bound is `2 |d out / d gamma| d_gamma` (the 2 covers
//!   the second-order terms and the sensitivity's own finite-difference error)
//!   plus `4 u (|new| + |before|)`: the last operations' roundings on the
//!   slightly different operands, and the subtraction that forms the update.

mod common;

use sfnap::nap::{NapConfig, NapGroup};
use sfnap::optim::reference::Reference;
use sfnap::optim::update_function::{linspace, UpdateFunctions};
use sfnap::optim::{Kind, OptimConfig, Schedule};

/// Unit roundoff of f64.
const U: f64 = f64::EPSILON / 2.0;

/// A small deterministic generator (xorshift64*), uniform in [-1, 1).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let v = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11;
        2.0 * (v as f64 / (1u64 << 53) as f64) - 1.0
    }

    fn vec(&mut self, n: usize, scale: f64) -> Vec<f64> {
        (0..n).map(|_| self.next() * scale).collect()
    }
}

/// Tensors of 7, 15 and 1 elements; NaP groups `b` with `c` (two tensors), `a` alone outside.
fn tensors() -> Vec<(&'static str, usize)> {
    vec![("a", 7), ("b", 15), ("c", 1)]
}

fn nap() -> NapConfig {
    NapConfig {
        groups: vec![NapGroup {
            tensors: vec!["b".into(), "c".into()],
            rho: None,
        }],
    }
}

/// Every kind, with the settings that make each part of its step matter.
fn configs() -> Vec<(&'static str, OptimConfig)> {
    let base = |kind: Kind, lr: f64| {
        let mut c = OptimConfig::new(kind).with_lr(lr);
        c.weight_decay = 0.01;
        c
    };
    let mut sgd = base(Kind::SgdSf, 0.05);
    sgd.r = 0.5;
    sgd.warmup_steps = 30;
    let mut adamw_sf = base(Kind::AdamwSf, 0.01);
    adamw_sf.warmup_steps = 5;
    let mut momentum = base(Kind::AdamwSf, 0.01);
    momentum.inner_momentum = 0.9;
    let paper = base(Kind::AdamwSfPaper, 0.01);
    let radam = base(Kind::RadamSf, 0.01);
    let mut window = base(Kind::AdamwSf, 0.01);
    window.sf_window = 5;
    let mut plus = base(Kind::SfPlus, 1.0);
    plus.weight_decay = 0.5;
    plus.sf_beta1_anneal_steps = 30;
    plus.c_warmup = 3;
    plus.polyak_beta = 0.9;
    let mut capped = OptimConfig::sf_plus_capped(1.01);
    capped.weight_decay = 0.5;
    let mut wsd = base(Kind::Adamw, 0.01);
    wsd.schedule = Schedule::Wsd {
        warmup_steps: 5,
        decay_steps: 10,
        total_steps: 30,
    };
    let mut cosine = base(Kind::Adamw, 0.01);
    cosine.schedule = Schedule::Cosine {
        warmup_steps: 5,
        total_steps: 40,
        final_frac: 0.1,
    };
    vec![
        ("sgd_sf", sgd),
        ("adamw_sf", adamw_sf),
        ("adamw_sf+momentum", momentum),
        ("adamw_sf window", window),
        ("adamw_sf_paper", paper),
        ("radam_sf", radam),
        ("sf_plus", plus),
        ("sf_plus capped", capped),
        ("adamw wsd", wsd),
        ("adamw cosine", cosine),
    ]
}

/// `gamma_n = n u / (1 - n u)`.
fn gamma_n(n: usize) -> f64 {
    let nu = n as f64 * U;
    nu / (1.0 - nu)
}

/// The whole reference's update of element (i, j) with gradient g there:
/// (x, y, z) after minus before, the values after, and the reference stepped.
fn whole(
    state: &Reference,
    grads: &[Vec<f64>],
    loss: f64,
    i: usize,
    j: usize,
    g: f64,
) -> ([f64; 3], [f64; 3], Reference) {
    let mut r = state.clone();
    let before = [r.x(i)[j], r.y(i)[j], r.z(i)[j]];
    let mut grads = grads.to_vec();
    grads[i][j] = g;
    r.step(&grads, Some(loss)).unwrap();
    let after = [r.x(i)[j], r.y(i)[j], r.z(i)[j]];
    (
        [after[0] - before[0], after[1] - before[1], after[2] - before[2]],
        after,
        r,
    )
}

#[test]
fn every_kind_matches_the_reference_update_over_a_sweep_of_g() {
    let mut checked = 0;
    for (name, cfg) in configs() {
        for with_nap in [false, true] {
            for (seed, steps) in [(1u64, 2usize), (2, 25)] {
                let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ seed);
                let params: Vec<(String, Vec<f64>)> = tensors()
                    .iter()
                    .map(|(n, len)| (n.to_string(), rng.vec(*len, 1.0)))
                    .collect();
                let decay = [true, true, false];
                let nap_cfg = nap();
                let mut r = Reference::new(&cfg, &params, &decay, with_nap.then_some(&nap_cfg)).unwrap();
                for _ in 0..steps {
                    let g: Vec<Vec<f64>> = tensors().iter().map(|(_, n)| rng.vec(*n, 0.1)).collect();
                    r.step(&g, Some(1.0 + 0.5 * rng.next())).unwrap();
                }
                let grads: Vec<Vec<f64>> = tensors().iter().map(|(_, n)| rng.vec(*n, 0.1)).collect();
                let loss = 1.0 + 0.5 * rng.next();
                let frozen = Reference::from_state(&r.state()).unwrap();
                let f = UpdateFunctions::new(r.state(), Some(grads.clone()), Some(loss)).unwrap();
                let n: usize = tensors().iter().map(|(_, n)| n).sum();
                for (i, j) in [(0usize, 0usize), (0, 6), (1, 7), (1, 14), (2, 0)] {
                    let tname = tensors()[i].0;
                    let e = f.element(tname, j).unwrap();
                    let range = 50.0 * e.scale();
                    let mut gs = linspace(-range, range, 41);
                    gs.push(grads[i][j]);
                    for g in gs {
                        let got = e.at(g).unwrap();
                        let got = [got.x, got.y, got.z];
                        let (want, after, stepped) = whole(&frozen, &grads, loss, i, j, g);
                        let before = [after[0] - want[0], after[1] - want[1], after[2] - want[2]];
                        let tol = if cfg.kind == Kind::SfPlus {
                            plus_tolerance(&cfg, &frozen, &stepped, &grads, loss, (i, j, g), n)
                                .map(|(k, s)| 2.0 * s + 4.0 * U * (after[k].abs() + before[k].abs()))
                        } else {
                            [0.0; 3]
                        };
                        for (k, seq) in ["x", "y", "z"].iter().enumerate() {
                            assert!(
                                (got[k] - want[k]).abs() <= tol[k],
                                "{name} nap {with_nap} after {steps} steps, {tname}[{j}], g = {g}: \
                                 update of {seq} {} vs the reference's {} (tolerance {})",
                                got[k],
                                want[k],
                                tol[k]
                            );
                        }
                        checked += 1;
                    }
                }
            }
        }
    }
    assert_eq!(checked, configs().len() * 2 * 2 * 5 * 42);
}

/// sf_plus: per output k (x, y, z) of element (i, j) with gradient g, the
/// index k and `|d out / d gamma| d_gamma` (see the module documentation).
fn plus_tolerance(
    cfg: &OptimConfig,
    frozen: &Reference,
    stepped: &Reference,
    grads: &[Vec<f64>],
    loss: f64,
    (i, j, g): (usize, usize, f64),
    n: usize,
) -> [(usize, f64); 3] {
    let state = frozen.state();
    let mut grads = grads.to_vec();
    grads[i][j] = g;
    let mut a2 = 0.0;
    for (t, gt) in state.tensors.iter().zip(&grads) {
        for (e, gv) in gt.iter().enumerate() {
            a2 += (gv * (t.z[e] - t.x[e])).abs();
        }
    }
    let after = stepped.state();
    let e_hat = after.e_prev;
    let lr = cfg.lr().max(cfg.eps);
    let gamma = stepped.scalars().gamma;
    let alpha = gamma / lr;
    let beta = stepped.scalars().beta;
    let d_gamma = lr * (beta * 2.0 * gamma_n(n + 1) * a2 / e_hat + alpha * 2.0 * gamma_n(n));
    // The sensitivity to gamma, through the loss: d gamma = lr dF / e_hat
    // (0 where the cap or the clamp at 0 holds gamma, and then d_gamma
    // moves nothing either).
    let d_loss = 1e-6 * loss;
    let (_, moved, moved_ref) = whole(frozen, &grads[..], loss + d_loss, i, j, g);
    let moved_gamma = moved_ref.scalars().gamma - gamma;
    let base = [stepped.x(i)[j], stepped.y(i)[j], stepped.z(i)[j]];
    let sens = |k: usize| {
        if moved_gamma == 0.0 {
            0.0
        } else {
            ((moved[k] - base[k]) / moved_gamma).abs()
        }
    };
    [(0, sens(0) * d_gamma), (1, sens(1) * d_gamma), (2, sens(2) * d_gamma)]
}

/// A digits run's state read back from the device at a few moments: the
/// reference's step from it with the gradient and loss the device then took
/// lands on the device's next state, and every kind's
/// update function is defined there (sf_plus included, which needs the rest of
/// the gradient and the loss).
///
/// The deviation is measured against each tensor's scale (its largest |y|, or
/// move where that is more). The device holds the settings in f32: beta2 =
/// 0.999 becomes 0.999 (1 + d), |d| <= u32, so `1 - beta2` is off by up to
/// `u32 / (1 - beta2)` relatively, and Adam's step (through the square root
/// of v) by half that: 3.0e-5 of the move. One step's f32 arithmetic adds
/// what tests/gpu_vs_reference.rs bounds for one step: 4 * 16 u32 of the scale.
#[test]
fn the_device_state_of_a_digits_run_steps_like_the_reference() {
    use sfnap::model::mlp::MlpConfig;
    use sfnap::model::ModelConfig;
    use sfnap::train::{run_moments, DataKind, TrainConfig};
    let gpu = common::gpu();
    let u32_ = f32::EPSILON as f64 / 2.0;
    for (kind, nap) in [(Kind::SfPlus, true), (Kind::AdamwSf, false), (Kind::Adamw, true)] {
        let cfg = TrainConfig {
            model: ModelConfig::Mlp(MlpConfig {
                input: 64,
                hidden: vec![16],
                classes: 10,
                norm: true,
            }),
            data: DataKind::Digits,
            optimizer: OptimConfig::new(kind),
            nap,
            steps: 0,
            batch: 32,
            eval_every: 1000,
            metrics_every: 10,
            seed: 0,
            task_steps: 500,
        };
        let moments = run_moments(&gpu, &cfg, &[0, 3, 20]).unwrap();
        assert_eq!(moments.iter().map(|m| m.step).collect::<Vec<_>>(), vec![0, 3, 20]);
        for m in &moments {
            assert!(
                m.deviation <= 0.5 * u32_ / (1.0 - 0.999) + 4.0 * 16.0 * u32_,
                "{kind} at step {}: the reference's step lands {} from the device's",
                m.step,
                m.deviation
            );
            assert_eq!(m.state.k, m.step);
            let f = UpdateFunctions::new(m.state.clone(), Some(m.grads.clone()), m.loss).unwrap();
            let first = &m.state.tensors[0].name;
            let e = f.element(first, 0).unwrap();
            let s = e.slope().unwrap();
            assert!(s.x < 0.0 && s.z < 0.0, "{kind} at step {}: slope {s:?}", m.step);
        }
    }
}

/// `sfnap inspect update` on a digits run: at its checkpoint, and at moments of
/// the run made again, it writes the plot, the CSVs and the JSON; a tensor the
/// run does not have is refused by name.
#[test]
fn inspect_update_on_a_digits_run_writes_the_plot() {
    let dir = common::temp_dir("inspect");
    let run = dir.join("run");
    let run_s = run.to_str().unwrap();
    let o = common::sfnap(&[
        "train",
        "--data",
        "digits",
        "--hidden",
        "16",
        "--opt",
        "adamw_sf",
        "--lr",
        "3e-3",
        "--steps",
        "30",
        "--eval-every",
        "30",
        "--out",
        run_s,
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = dir.join("update");
    let out_s = out.to_str().unwrap();
    let o = common::sfnap(&[
        "inspect", "update", run_s, "--at", "0,5,20", "--points", "11", "--out", out_s, "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["kind"], "adamw_sf");
    let steps: Vec<u64> = json["moments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["step"].as_u64().unwrap())
        .collect();
    assert_eq!(steps, vec![0, 5, 20]);
    for png in ["update.png", "slopes.png"] {
        let bytes = std::fs::read(out.join(png)).unwrap();
        assert!(bytes.starts_with(b"\x89PNG"), "{png} is not a PNG");
    }
    let csv = std::fs::read_to_string(out.join("update.csv")).unwrap();
    // Two weight matrices (l0, head) x 3 moments x 11 points, and the header.
    assert_eq!(csv.lines().count(), 1 + 2 * 3 * 11, "{csv}");
    let slopes = std::fs::read_to_string(out.join("slopes.csv")).unwrap();
    assert_eq!(slopes.lines().count(), 1 + 3 * 2, "{slopes}");

    // At the checkpoint (step 30): one moment.
    let o = common::sfnap(&["inspect", "update", run_s, "--tensor", "head.weight", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["moments"][0]["step"], 30);
    assert_eq!(json["curves"].as_array().unwrap().len(), 1);

    let (status, stderr) = common::sfnap_status(&["inspect", "update", run_s, "--tensor", "nope", "--json"]);
    assert_eq!(status, 2, "{stderr}");
    let line = common::error_line(&stderr);
    assert!(line.contains("`nope`") && line.contains("head.weight"), "{line}");
    // Another file would be passed over for the directory's checkpoint: refused.
    let other = dir.join("other.safetensors");
    std::fs::copy(run.join("checkpoint.safetensors"), &other).unwrap();
    let (status, stderr) = common::sfnap_status(&["inspect", "update", other.to_str().unwrap(), "--json"]);
    assert_eq!(status, 2, "{stderr}");
    assert!(common::error_line(&stderr).contains("other.safetensors"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
