//! A Burn module stepped through sfnap-burn against sfnap's f64 reference fed
//! the same gradients (read back from Burn), for adamw_sf, sf_plus and adamw_sf
//! with NaP, after one step and after 100; then the shared device's ordering
//! (a forward pass right after a step sees the new weights), bit-identical
//! resume, the NaP groups found from the module, and the refusals.
//!
//! The bound, as sfnap's own kernels are held to it against the reference
//! (tests/gpu_vs_reference.rs of sfnap): every step rounds each element through
//! at most 16 f32 operations (relative error u each), the updates mix y, z and x
//! with weights in [0, 1], so independent roundings walk: after n steps about
//! sqrt(n) 16 u of the tensor's scale, times 4 for the walk's tail. The copies
//! between Burn's buffers and sfnap's arena move bytes and add nothing.

mod common;

use burn::optim::GradientsParams;
use burn::tensor::Tensor;
use common::{against_reference, device, params_of, train_device, values, Mlp};
use sfnap::nap::{NapConfig, NapGroup};
use sfnap::optim::{Kind, OptimConfig};
use sfnap_burn::{Nap, Optimized, Structure};

fn adamw_sf() -> OptimConfig {
    let mut c = OptimConfig::new(Kind::AdamwSf).with_lr(0.01);
    c.weight_decay = 0.01;
    c.warmup_steps = 5;
    c
}

fn sf_plus() -> OptimConfig {
    let mut c = OptimConfig::new(Kind::SfPlus);
    c.weight_decay = 0.5;
    c
}

fn nap_groups() -> NapConfig {
    NapConfig {
        groups: vec![
            NapGroup {
                tensors: vec!["l1.weight".into()],
                rho: None,
            },
            NapGroup {
                tensors: vec!["n1.gamma".into(), "n1.beta".into()],
                rho: None,
            },
        ],
    }
}

#[test]
fn adamw_sf_matches_the_reference() {
    against_reference(&device(), "adamw_sf", &adamw_sf(), None, 1);
    against_reference(&device(), "adamw_sf", &adamw_sf(), None, 100);
}

#[test]
fn sf_plus_matches_the_reference() {
    against_reference(&device(), "sf_plus", &sf_plus(), None, 1);
    against_reference(&device(), "sf_plus", &sf_plus(), None, 100);
}

#[test]
fn adamw_sf_with_nap_matches_the_reference() {
    let mut cfg = adamw_sf();
    cfg.weight_decay = 0.0;
    against_reference(&device(), "adamw_sf + NaP", &cfg, Some(nap_groups()), 1);
    against_reference(&device(), "adamw_sf + NaP", &cfg, Some(nap_groups()), 100);
}

/// Burn's forward pass, recorded right after a step with nothing waited for,
/// sees the step's weights: its output equals the same forward pass computed
/// on the host from the weights read back afterwards.
#[test]
fn a_forward_pass_right_after_a_step_sees_the_new_weights() {
    let dev = device();
    let train = train_device();
    let mut opt = Optimized::new(Mlp::new(3, &train), &dev, &adamw_sf(), Nap::Off).unwrap();
    for step in 0..3 {
        let loss = opt.train_module().loss(step, &train);
        opt.step(loss).unwrap();
        let (x, _) = common::batch(50 + step, &train);
        let out = values(opt.train_module().forward(x.clone()));
        // The same forward pass on the host, in f64, from the weights Burn holds now.
        let p = params_of(opt.train_module());
        let (w1, gamma, beta, wh, bh) = (&p[0], &p[1], &p[2], &p[3], &p[4]);
        let xs = values(x);
        let (n_in, n_h, n_out) = (common::IN, common::HIDDEN, common::CLASSES);
        for r in 0..common::BATCH {
            let h: Vec<f64> = (0..n_h)
                .map(|j| {
                    (0..n_in)
                        .map(|i| xs[r * n_in + i] as f64 * w1[i * n_h + j] as f64)
                        .sum()
                })
                .collect();
            let mean = h.iter().sum::<f64>() / n_h as f64;
            let var = h.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n_h as f64;
            let a: Vec<f64> = (0..n_h)
                .map(|j| ((h[j] - mean) / (var + 1e-5).sqrt() * gamma[j] as f64 + beta[j] as f64).max(0.0))
                .collect();
            for k in 0..n_out {
                let want: f64 = bh[k] as f64 + (0..n_h).map(|j| a[j] * wh[j * n_out + k] as f64).sum::<f64>();
                let got = out[r * n_out + k] as f64;
                // f32 forward pass of a few dozen operations on values of order 1.
                assert!(
                    (got - want).abs() <= 1e-4 * (1.0 + want.abs()),
                    "step {step}, row {r}, class {k}: {got} vs {want}"
                );
            }
        }
    }
}

/// Saving after 10 steps and resuming into a module drawn from another seed
/// gives, 10 steps later, the uninterrupted run's y and x, bit for bit.
#[test]
fn resume_continues_bit_for_bit() {
    let dev = device();
    let train = train_device();
    let dir = std::env::temp_dir().join(format!("sfnap-burn-resume-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, cfg, nap) in [
        ("adamw_sf + NaP", adamw_sf(), Nap::Groups(nap_groups())),
        ("sf_plus", sf_plus(), Nap::Off),
    ] {
        let run = |opt: &mut Optimized<Mlp>, steps: std::ops::Range<u64>| {
            for step in steps {
                let loss = opt.train_module().loss(step, &train);
                opt.step(loss).unwrap();
            }
        };
        let mut whole = Optimized::new(Mlp::new(11, &train), &dev, &cfg, nap.clone()).unwrap();
        run(&mut whole, 0..20);
        let mut first = Optimized::new(Mlp::new(11, &train), &dev, &cfg, nap.clone()).unwrap();
        run(&mut first, 0..10);
        let path = dir.join(format!("{}.safetensors", cfg.kind.name()));
        first.save(&path).unwrap();
        drop(first);
        let mut resumed = Optimized::resume(Mlp::new(99, &train), &dev, &cfg, nap.clone(), &path).unwrap();
        assert_eq!(resumed.steps(), 10);
        run(&mut resumed, 10..20);
        let bits = |v: Vec<Vec<f32>>| -> Vec<Vec<u32>> {
            v.into_iter().map(|t| t.iter().map(|f| f.to_bits()).collect()).collect()
        };
        assert_eq!(
            bits(params_of(resumed.train_module())),
            bits(params_of(whole.train_module())),
            "{name}: y"
        );
        assert_eq!(
            bits(params_of(&resumed.eval_module().unwrap())),
            bits(params_of(&whole.eval_module().unwrap())),
            "{name}: x"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn resume_refuses_other_settings() {
    let dev = device();
    let train = train_device();
    let path = std::env::temp_dir().join(format!("sfnap-burn-other-{}.safetensors", std::process::id()));
    let mut opt = Optimized::new(Mlp::new(1, &train), &dev, &adamw_sf(), Nap::Off).unwrap();
    opt.step(opt.train_module().loss(0, &train)).unwrap();
    opt.save(&path).unwrap();
    let other = adamw_sf().with_lr(0.02);
    let e = Optimized::resume(Mlp::new(1, &train), &dev, &other, Nap::Off, &path)
        .err()
        .expect("refused");
    assert!(e.to_string().contains("was saved with other settings"), "{e}");
    let e = Optimized::resume(Mlp::new(1, &train), &dev, &adamw_sf(), Nap::Found, &path)
        .err()
        .expect("refused");
    assert!(e.to_string().contains("was saved with other settings"), "{e}");
    std::fs::remove_file(&path).ok();
}

#[test]
fn nap_groups_are_found_from_linear_then_layer_norm() {
    let structure = Structure::of(&Mlp::new(1, &train_device()));
    let paths: Vec<&str> = structure.params.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(paths, ["l1.weight", "n1.gamma", "n1.beta", "head.weight", "head.bias"]);
    assert_eq!(structure.nap_groups(), nap_groups());
}

#[test]
fn refusals_name_what_is_wrong() {
    let dev = device();
    // A module on a device without autodiff has nothing to train.
    let plain = Mlp::new(1, dev.burn());
    let e = Optimized::new(plain, &dev, &adamw_sf(), Nap::Off)
        .err()
        .expect("refused");
    assert!(e.to_string().contains("autodiff"), "{e}");
    // Gradients of another module name the first parameter they lack.
    let train = train_device();
    let mut opt = Optimized::new(Mlp::new(1, &train), &dev, &adamw_sf(), Nap::Off).unwrap();
    let other = Mlp::new(2, &train);
    let loss = other.loss(0, &train);
    let grads = GradientsParams::from_grads(loss.backward(), &other);
    let e = opt.step_with(&loss, grads).expect_err("refused");
    assert!(
        e.to_string().contains("l1.weight") && e.to_string().contains("no gradient"),
        "{e}"
    );
    // sf_plus needs the loss as one element.
    let mut plus = Optimized::new(Mlp::new(1, &train), &dev, &sf_plus(), Nap::Off).unwrap();
    let m = plus.train_module().clone();
    let (x, _) = common::batch(0, &train);
    let per_row: Tensor<1> = m.forward(x).sum_dim(1).squeeze_dim(1);
    let grads = GradientsParams::from_grads(per_row.clone().sum().backward(), &m);
    let e = plus.step_with(&per_row, grads).expect_err("refused");
    assert!(e.to_string().contains("one element"), "{e}");
    // NaP found in a module without a Linear followed by a LayerNorm.
    let lone = burn::nn::LinearConfig::new(3, 2).init(&train);
    let e = Optimized::new(lone, &dev, &adamw_sf(), Nap::Found)
        .err()
        .expect("refused");
    assert!(e.to_string().contains("no Linear followed by a LayerNorm"), "{e}");
}
