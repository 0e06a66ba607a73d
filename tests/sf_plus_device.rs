//! ScheduleFree+ on the device: its scalar recurrences against f64, and its
//! errors (zero gradient, non-finite loss) surfacing instead of NaN weights.

mod common;

use common::{gpu, Rng};
use sfnap::arena::{Arena, TensorSpec};
use sfnap::optim::plus::trace_plus_scalars;
use sfnap::optim::{GpuOptimizer, Kind, OptimConfig};
use sfnap::Error;

/// lr_max, W_sum (compensated f32) and c over 100,000 steps stay within 1e-5
/// relative of the same recurrences in f64.
#[test]
fn device_recurrences_track_f64_for_100k_steps() {
    let gpu = gpu();
    for r in [0.0, 0.5] {
        let mut cfg = OptimConfig::new(Kind::SfPlus);
        cfg.r = r;
        let mut rng = Rng::new(5);
        // Polyak steps that rise, fall and jitter, as in training.
        let alphas: Vec<f32> = (0..100_000)
            .map(|k| {
                let trend = 0.05 * (1.0 + (k as f64 / 7000.0).sin()) + 1e-3;
                (trend * (1.0 + 0.3 * rng.normal()).abs()) as f32
            })
            .collect();
        let got = trace_plus_scalars(&gpu, &cfg, &alphas).unwrap();
        let (mut lr_max, mut w_sum) = (cfg.eps, 0.0f64);
        let mut worst = 0.0f64;
        for (k, (&a, g)) in alphas.iter().zip(&got).enumerate() {
            let gamma = cfg.lr().max(cfg.eps) * a as f64;
            lr_max = lr_max.max(gamma);
            let w = ((k + 1) as f64).powf(r) * lr_max.powf(cfg.weight_lr_power);
            w_sum += w;
            let c = w / w_sum;
            for (name, dev, exact) in [("lr_max", g[0], lr_max), ("W_sum", g[1], w_sum), ("c", g[2], c)] {
                let rel = (dev as f64 - exact).abs() / exact.abs();
                worst = worst.max(rel);
                assert!(rel <= 1e-5, "r={r} step {k}: {name} {dev} vs {exact} (rel {rel:.2e})");
            }
        }
        println!("r={r}: worst relative error {worst:.2e}");
    }
}

fn setup(gpu: &sfnap::gpu::Gpu, values: &[f32]) -> (Arena, GpuOptimizer) {
    let arena = Arena::new(gpu, &[TensorSpec::new("w", &[values.len()])], None).unwrap();
    arena.write(gpu, "w", values).unwrap();
    let opt = GpuOptimizer::new(gpu, &arena, &OptimConfig::new(Kind::SfPlus), None).unwrap();
    (arena, opt)
}

#[test]
fn all_zero_gradient_is_an_error_not_nan_weights() {
    let gpu = gpu();
    let w0 = [0.5f32, -1.0, 2.0];
    let (arena, mut opt) = setup(&gpu, &w0);
    arena.write_grad(&gpu, "w", &[0.1, 0.2, -0.1]).unwrap();
    opt.write_loss(&gpu, 1.0).unwrap();
    opt.step(&gpu).unwrap();
    opt.check(&gpu).unwrap();
    let w1 = arena.read(&gpu, "w").unwrap();
    arena.write_grad(&gpu, "w", &[0.0, 0.0, 0.0]).unwrap();
    opt.step(&gpu).unwrap();
    let err = opt.check(&gpu).unwrap_err();
    assert!(matches!(err, Error::Numerical(_)), "{err}");
    assert!(
        err.to_string().contains("step 2") && err.to_string().contains("all zero"), // the second step
        "{err}"
    );
    assert_eq!(arena.read(&gpu, "w").unwrap(), w1, "weights must stay as they were");
}

#[test]
fn non_finite_loss_is_an_error_not_nan_weights() {
    let gpu = gpu();
    let (arena, mut opt) = setup(&gpu, &[1.0, 2.0]);
    arena.write_grad(&gpu, "w", &[0.1, 0.2]).unwrap();
    opt.write_loss(&gpu, f32::NAN).unwrap();
    opt.step(&gpu).unwrap();
    let err = opt.check(&gpu).unwrap_err();
    assert!(err.to_string().contains("loss is not finite"), "{err}");
    assert_eq!(arena.read(&gpu, "w").unwrap(), vec![1.0, 2.0]);
}
