//! The live demos of the web pages (`web/spirals.html`, `web/plasticity.html`,
//! `web/update.html`), natively on the GPU under test (lavapipe in `make test`).

mod common;

use sfnap_web::demo::Demo;
use sfnap_web::live::{Plasticity, PlasticityConfig, Spirals, SpiralsConfig, UpdateConfig, UpdateDemo, UpdateNet};

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

/// The update-functions demo: each network's update function, evaluated at the
/// gradient its element gets from the next batch, is the change the device's next
/// step then makes to that element's y and z (and sf_plus's x), within f32
/// rounding; and the slope of x at 0 is negative (a step against the gradient).
#[test]
fn update_functions_predict_the_next_step() {
    let gpu = common::gpu();
    let net = |optimizer: &str, nap| UpdateNet {
        optimizer: optimizer.into(),
        lr: None,
        nap,
    };
    let cfg = UpdateConfig {
        nets: vec![
            net("adamw", false),
            net("adamw_sf", true),
            net("sf_plus", false),
            net("sf_plus", true),
        ],
        ..UpdateConfig::default()
    };
    let mut demo = UpdateDemo::new_blocking(&gpu, &cfg).unwrap();
    demo.step(&gpu, 30).unwrap();
    let (snap, frozen) = demo.snapshot(&gpu).unwrap();
    assert_eq!((snap.step, snap.nets.len(), frozen.len()), (30, 4, 4));
    demo.step(&gpu, 1).unwrap();
    let after = demo.device_states(&gpu).unwrap();
    for ((n, f), after) in snap.nets.iter().map(|n| &n.functions).zip(&frozen).zip(&after) {
        let name = format!("{}{}", n.optimizer, if n.nap { " + NaP" } else { "" });
        let ti = f.state.tensors.iter().position(|t| t.name == cfg.tensor).unwrap();
        let (before, now) = (&f.state.tensors[ti], &after.tensors[ti]);
        let j = cfg.index;
        eprintln!(
            "{name}: g {:.3e}, scale {:.3e}, slope at 0 x {:.3e} y {:.3e} z {:.3e}; predicted dy {:.4e} dz {:.4e}, device dy {:.4e} dz {:.4e}",
            n.actual.g,
            n.scale,
            n.slope.x,
            n.slope.y,
            n.slope.z,
            n.actual.y,
            n.actual.z,
            now.y[j] - before.y[j],
            now.z.get(j).map_or(f64::NAN, |z| z - before.z[j])
        );
        assert!(
            n.actual.g != 0.0,
            "{name}: the element's gradient is 0: pick a live element"
        );
        assert!(n.slope.x < 0.0 && n.slope.x.is_finite(), "{name}: slope {:?}", n.slope);
        let mut seqs = vec![("y", n.actual.y, now.y[j] - before.y[j], before.y[j])];
        if !before.z.is_empty() {
            seqs.push(("z", n.actual.z, now.z[j] - before.z[j], before.z[j]));
        }
        if !before.x.is_empty() {
            seqs.push(("x", n.actual.x, now.x[j] - before.x[j], before.x[j]));
        }
        for (seq, predicted, device, value) in seqs {
            // The device's f32 values (each within 2^-24 of itself, the update
            // rounded likewise) against the f64 reference.
            let tol = 1e-3 * predicted.abs() + 4.0 * f32::EPSILON as f64 * value.abs().max(1e-3);
            assert!(
                (predicted - device).abs() <= tol,
                "{name}: {seq} predicted {predicted:e}, the device moved it {device:e} (tolerance {tol:e})"
            );
        }
    }
}
