//! The live demos of the web pages (`web/spirals.html`, `web/plasticity.html`),
//! natively on the GPU under test (lavapipe in `make test`).

mod common;

use sfnap_web::demo::Demo;
use sfnap_web::live::{Plasticity, PlasticityConfig, Spirals, SpiralsConfig};

fn mean(v: &[f32]) -> f64 {
    v.iter().map(|&x| x as f64).sum::<f64>() / v.len().max(1) as f64
}

/// Spirals: the training loss falls for every optimizer, and the snapshot's grids are probabilities.
#[test]
fn spirals_loss_falls() {
    let gpu = common::gpu();
    for optimizer in ["adamw_sf", "sgd_sf", "sf_plus", "adamw"] {
        let cfg = SpiralsConfig {
            optimizer: optimizer.into(),
            grid: 16,
            ..SpiralsConfig::default()
        };
        let mut s = Spirals::new(&gpu, &cfg).unwrap();
        s.step(&gpu, 300).unwrap();
        let snap = s.snapshot(&gpu).unwrap();
        assert_eq!(snap.train_loss.len(), 300);
        let (first, last) = (mean(&snap.train_loss[..20]), mean(&snap.train_loss[280..]));
        eprintln!(
            "{optimizer}: train loss {first:.3} -> {last:.3}, test loss y {:.3} x {:.3}, acc y {:.3} x {:.3}",
            snap.test_loss_y, snap.test_loss_x, snap.test_acc_y, snap.test_acc_x
        );
        assert!(last < 0.8 * first, "{optimizer}: {first} -> {last}");
        assert!(snap.test_loss_x.is_finite() && snap.test_loss_y.is_finite());
        assert_eq!(snap.prob_x.len(), 256);
        assert!(snap.prob_x.iter().chain(&snap.prob_y).all(|p| (0.0..=1.0).contains(p)));
    }
}

/// Plasticity: over the later tasks of a short continual stream, the NaP network's
/// mean end-of-task accuracy is at least the plain network's, and adamw_sf + NaP
/// with the window is well ahead of both.
#[test]
fn nap_keeps_plasticity() {
    let gpu = common::gpu();
    // The page's defaults: 256 inputs, 128-wide hidden layers, a reset every 100 steps,
    // AdamW 1e-3 (plain: no LayerNorm), adamw_sf 3e-3 with window 20 and beta 0.5;
    // 12 tasks. Seeds 1 and 4, later tasks: plain 0.38, 0.35; NaP 0.54, 0.50;
    // windowed adamw_sf + NaP 0.81, 0.82.
    let cfg = PlasticityConfig::default();
    let tasks = 12;
    let mut p = Plasticity::new(&gpu, &cfg).unwrap();
    p.step(&gpu, (tasks * cfg.task_steps) as u32).unwrap();
    let snap = p.snapshot(&gpu).unwrap();
    let (plain, nap, sf) = (
        snap.net("plain").unwrap(),
        snap.net("nap").unwrap(),
        snap.net("nap_sf").unwrap(),
    );
    assert_eq!(plain.task_acc.len() as u64, tasks);
    assert_eq!(sf.task_acc.len() as u64, tasks);
    let later = (tasks / 2) as usize;
    let (a_plain, a_nap, a_sf) = (
        mean(&plain.task_acc[later..]),
        mean(&nap.task_acc[later..]),
        mean(&sf.task_acc[later..]),
    );
    eprintln!("plain:  {:?} norms {:?}", plain.task_acc, plain.norms);
    eprintln!("nap:    {:?} norms {:?}", nap.task_acc, nap.norms);
    eprintln!("nap_sf: {:?} norms {:?}", sf.task_acc, sf.norms);
    eprintln!("later tasks: plain {a_plain:.3}, nap {a_nap:.3}, nap_sf {a_sf:.3}");
    assert!(a_nap >= a_plain, "NaP {a_nap} < plain {a_plain}");
    assert!(
        a_sf >= a_nap + 0.1,
        "windowed adamw_sf + NaP {a_sf} not ahead of AdamW + NaP {a_nap}"
    );
    assert!(plain.norms[0] > nap.norms[0], "the plain net's hidden weights grow");
}
