//! The optimizer race of the web demo, natively on the GPU under test (lavapipe in
//! `make test`): the gradient kernel against the f64 reference, and every racer's
//! mean loss falling on every test function.

mod common;

use sfnap_web::demo::Demo;
use sfnap_web::race::{reference_positions, Race, RaceConfig, TestFn, HISTORY, RACERS};

fn config(function: TestFn, points: usize, total_steps: u64) -> RaceConfig {
    RaceConfig {
        function,
        points,
        total_steps,
        ..RaceConfig::default()
    }
}

/// The first steps on the GPU follow the f64 reference (same starts, gradients, noise, summed loss).
#[test]
fn the_first_steps_match_the_f64_reference() {
    let gpu = common::gpu();
    for f in TestFn::ALL {
        let cfg = config(f, 40, 100);
        let mut race = Race::new(&gpu, &cfg).unwrap();
        race.step(&gpu, 8).unwrap();
        let snap = race.snapshot(&gpu).unwrap();
        for (name, y_ref, x_ref) in reference_positions(&cfg, 8).unwrap() {
            let got = snap.racer(name).unwrap();
            for (seq, got, want) in [("y", &got.y, &y_ref), ("x", &got.x, &x_ref)] {
                for (i, (g, w)) in got.chunks_exact(2).zip(want).enumerate() {
                    for d in 0..2 {
                        let (g, w) = (g[d] as f64, w[d]);
                        assert!(
                            (g - w).abs() <= 1e-3 * (1.0 + w.abs()),
                            "{f:?} {name} {seq}[{i}][{d}]: gpu {g} vs f64 {w}"
                        );
                    }
                }
            }
        }
    }
}

/// A few hundred steps: every racer's mean loss at x falls on every function, and the
/// per-step history computed on the device starts at the starting points' mean loss.
#[test]
fn every_racer_lowers_its_mean_loss_on_every_function() {
    let gpu = common::gpu();
    let steps = 300;
    for f in TestFn::ALL {
        let cfg = config(f, 64, steps);
        let start = cfg.starts().iter().map(|&p| f.value(p)).sum::<f64>() / 64.0;
        let mut race = Race::new(&gpu, &cfg).unwrap();
        race.step(&gpu, 100).unwrap();
        let first = race.snapshot(&gpu).unwrap();
        race.step(&gpu, steps as u32 - 100).unwrap();
        let last = race.snapshot(&gpu).unwrap();
        assert_eq!(last.step, steps);
        for name in RACERS {
            let (a, b) = (first.racer(name).unwrap(), last.racer(name).unwrap());
            assert_eq!((a.history_from, a.history.len()), (0, 100), "{f:?} {name}");
            assert_eq!((b.history_from, b.history.len()), (100, 200), "{f:?} {name}");
            let h0 = a.history[0] as f64;
            assert!(
                (h0 - start).abs() <= 1e-4 * start,
                "{f:?} {name}: history[0] {h0} vs {start}"
            );
            assert!(
                b.loss_x.is_finite() && b.loss_x < 0.5 * start,
                "{f:?} {name}: mean loss at x {start} -> {}",
                b.loss_x
            );
            let late = *b.history.last().unwrap() as f64;
            assert!(late < 0.5 * start, "{f:?} {name}: mean loss at y {start} -> {late}");
        }
        println!(
            "{:11} start {start:9.3e}  after {steps}: {}",
            f.name(),
            last.racers
                .iter()
                .map(|r| format!("{} {:.3e}", r.name, r.loss_x))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}

/// Snapshots between which more steps were taken than the ring holds keep the newest ones.
#[test]
fn a_long_gap_keeps_the_newest_history() {
    let gpu = common::gpu();
    let mut race = Race::new(&gpu, &config(TestFn::Quadratic, 4, 10_000)).unwrap();
    race.step(&gpu, HISTORY as u32 + 10).unwrap();
    let snap = race.snapshot(&gpu).unwrap();
    let r = snap.racer("sgd_sf").unwrap();
    assert_eq!((r.history_from, r.history.len()), (10, HISTORY));
}
