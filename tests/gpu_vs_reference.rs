//! Randomized checks of the GPU kernels against the f64 reference: every kind,
//! with and without NaP, 1,000 steps over tensors of ragged sizes.

mod common;

use common::{gpu, ragged_nap as nap, ragged_shapes as shapes, random_case, U32};
use sfnap::nap::NapConfig;
use sfnap::optim::{Kind, OptimConfig, Schedule};
use sfnap::replay::run_reference_with;
use sfnap::replay::{run_gpu_with, ReplayResult};

/// Every kind and variant the engine has, with hyperparameters that make each
/// code path matter (warmup, weight decay, r > 0, inner momentum, annealing).
fn configs() -> Vec<(&'static str, OptimConfig)> {
    let base = |kind: Kind, lr: f64| {
        let mut c = OptimConfig::new(kind).with_lr(lr);
        c.weight_decay = 0.01;
        c.warmup_steps = 20;
        c
    };
    let mut sgd = base(Kind::SgdSf, 0.05);
    sgd.r = 0.5;
    let adamw_sf = base(Kind::AdamwSf, 0.01);
    let mut momentum = base(Kind::AdamwSf, 0.01);
    momentum.inner_momentum = 0.9;
    let paper = base(Kind::AdamwSfPaper, 0.01);
    let mut radam = base(Kind::RadamSf, 0.01);
    radam.warmup_steps = 0;
    let mut radam_sgd = radam.clone();
    radam_sgd.silent_sgd_phase = false;
    let mut plus = OptimConfig::new(Kind::SfPlus);
    plus.weight_decay = 0.5;
    plus.sf_beta1_anneal_steps = 300;
    plus.c_warmup = 10;
    plus.polyak_beta = 0.9;
    // sfnap's sf_plus: the cap never lets the step grow (1), or lets it grow by
    // 1 + 2^-7 a step, a factor exact in f32, so that a cap compounded over many
    // steps is the same number in f32 and f64.
    let mut capped = OptimConfig::sf_plus_capped(1.0);
    capped.weight_decay = 0.5;
    let mut growing = OptimConfig::sf_plus_capped(1.0078125);
    growing.polyak_beta = 0.9;
    growing.sf_beta1_anneal_steps = 300;
    // adamw warms up through its schedule; its own warmup_steps must stay 0.
    let mut cosine = base(Kind::Adamw, 0.01);
    cosine.warmup_steps = 0;
    cosine.schedule = Schedule::Cosine {
        warmup_steps: 50,
        total_steps: 1000,
        final_frac: 0.1,
    };
    let mut wsd = base(Kind::Adamw, 0.01);
    wsd.warmup_steps = 0;
    wsd.schedule = Schedule::Wsd {
        warmup_steps: 50,
        decay_steps: 200,
        total_steps: 1000,
    };
    vec![
        ("sgd_sf", sgd),
        ("adamw_sf", adamw_sf),
        ("adamw_sf+momentum", momentum),
        ("adamw_sf_paper", paper),
        ("radam_sf", radam),
        ("radam_sf (sgd phase)", radam_sgd),
        ("sf_plus", plus),
        ("sf_plus capped (1)", capped),
        ("sf_plus capped (1+2^-7)", growing),
        ("adamw cosine", cosine),
        ("adamw wsd", wsd),
    ]
}

/// Largest |got - exp| / (|exp| + scale) over every tensor of y, x and z.
fn worst(got: &ReplayResult, exp: &ReplayResult) -> (f64, String) {
    let mut w = (0.0, String::new());
    for (seq, g, e) in [("y", &got.y, &exp.y), ("x", &got.x, &exp.x), ("z", &got.z, &exp.z)] {
        for (name, ev) in e {
            let scale = ev.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            for (i, (a, b)) in g[name].iter().zip(ev).enumerate() {
                let r = (a - b).abs() / (b.abs() + scale);
                if r > w.0 || r.is_nan() {
                    w = (r, format!("{seq}.{name}[{i}]: got {a}, expected {b}"));
                }
            }
        }
    }
    w
}

/// The bound an f32 run of `n` steps must meet, relative to each tensor's scale.
///
/// Every step rounds each element through at most K = 16 f32 operations, each
/// with relative error at most u. The updates mix y, z and x with weights in
/// [0, 1] and add a step, so errors are not amplified, and independent roundings
/// accumulate like a random walk: after n steps the error is about
/// sqrt(n) K u times the tensor's scale. A factor 4 covers the tail of that walk.
fn bound(n: usize) -> f64 {
    4.0 * (n as f64).sqrt() * 16.0 * U32
}

fn check(name: &str, cfg: &OptimConfig, nap: Option<NapConfig>, steps: usize, seed: u64) {
    let gpu = gpu();
    let case = random_case(cfg, nap, &shapes(), steps, seed);
    let decay: Vec<bool> = case.tensors.iter().map(|t| t.name != "three").collect();
    let exp = run_reference_with(&case, &decay).unwrap();
    let got = run_gpu_with(&gpu, &case, &decay, None).unwrap();
    let (w, at) = worst(&got, &exp);
    let b = bound(steps);
    println!("{name:24} worst relative error {w:.2e} (bound {b:.2e}) at {at}");
    assert!(w <= b, "{name}: relative error {w:.3e} > bound {b:.3e} at {at}");
}

#[test]
fn every_kind_matches_the_reference_over_1000_steps() {
    for (i, (name, cfg)) in configs().into_iter().enumerate() {
        check(name, &cfg, None, 1000, 100 + i as u64);
    }
}

#[test]
fn every_kind_with_nap_matches_the_reference_over_1000_steps() {
    for (i, (name, mut cfg)) in configs().into_iter().enumerate() {
        cfg.weight_decay = 0.0;
        check(&format!("{name} + NaP"), &cfg, Some(nap()), 1000, 200 + i as u64);
    }
}
