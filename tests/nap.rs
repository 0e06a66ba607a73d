//! NaP on the device: projection leaves a scale-invariant layer's output
//! unchanged, and the per-group report gives norms and effective learning rates.

mod common;

use common::{gpu, Rng, U32};
use sfnap::arena::{Arena, TensorSpec};
use sfnap::nap::{NapConfig, NapGroup};
use sfnap::optim::{GpuOptimizer, Kind, OptimConfig};

const OUT: usize = 16;
const IN: usize = 8;

/// LayerNorm (no gain or offset) of W a, for W [OUT, IN] row-major.
fn linear_layernorm(w: &[f64], a: &[f64]) -> Vec<f64> {
    let h: Vec<f64> = (0..OUT).map(|o| (0..IN).map(|i| w[o * IN + i] * a[i]).sum()).collect();
    let mean = h.iter().sum::<f64>() / OUT as f64;
    let var = h.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / OUT as f64;
    h.iter().map(|v| (v - mean) / (var + 1e-12).sqrt()).collect()
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// A step with a zero gradient changes nothing but the projection, which here
/// scales W by 3 (rho is set to three times its norm). LN(W a) must not move.
#[test]
fn projection_leaves_a_linear_layernorm_output_unchanged() {
    let gpu = gpu();
    let mut rng = Rng::new(3);
    let w: Vec<f64> = rng.normals(OUT * IN, 0.5);
    let inputs: Vec<Vec<f64>> = (0..10).map(|_| rng.normals(IN, 1.0)).collect();
    let rho = 3.0 * norm(&w);
    for kind in [
        Kind::SgdSf,
        Kind::AdamwSf,
        Kind::AdamwSfPaper,
        Kind::RadamSf,
        Kind::Adamw,
    ] {
        let arena = Arena::new(&gpu, &[TensorSpec::new("w", &[OUT, IN])], None).unwrap();
        let w32: Vec<f32> = w.iter().map(|&v| v as f32).collect();
        arena.write(&gpu, "w", &w32).unwrap();
        let nap = NapConfig {
            groups: vec![NapGroup {
                tensors: vec!["w".into()],
                rho: Some(rho),
            }],
        };
        let mut opt = GpuOptimizer::new(&gpu, &arena, &OptimConfig::new(kind).with_lr(0.01), Some(&nap)).unwrap();
        arena.write_grad(&gpu, "w", &vec![0.0; OUT * IN]).unwrap();
        opt.step(&gpu).unwrap();
        opt.eval(&gpu, &arena);
        let projected: Vec<f64> = arena.read(&gpu, "w").unwrap().iter().map(|&v| v as f64).collect();
        let scale = norm(&projected) / norm(&w);
        assert!(
            (scale - 3.0).abs() < 1e-5,
            "{kind}: projection scaled W by {scale}, expected 3"
        );
        // Each projected weight carries a relative error of a few u; LN's output
        // (unit variance) then moves by about IN * 4u.
        let tol = IN as f64 * 4.0 * U32 * 10.0;
        for a in &inputs {
            let before = linear_layernorm(&w, a);
            let after = linear_layernorm(&projected, a);
            for (b, c) in before.iter().zip(&after) {
                assert!((b - c).abs() <= tol, "{kind}: LN output moved from {b} to {c}");
            }
        }
    }
}

#[test]
fn report_gives_norms_at_rho_and_the_effective_learning_rate() {
    let gpu = gpu();
    let mut rng = Rng::new(4);
    let specs = [
        TensorSpec::new("w1", &[40, 30]),
        TensorSpec::new("g", &[30]).no_decay(),
        TensorSpec::new("head", &[7]),
    ];
    for (kind, lr) in [
        (Kind::SgdSf, 0.1),
        (Kind::AdamwSf, 0.01),
        (Kind::SfPlus, 1.0),
        (Kind::Adamw, 0.01),
    ] {
        let arena = Arena::new(&gpu, &specs, None).unwrap();
        for s in &specs {
            let n = s.shape.iter().product();
            let v: Vec<f32> = rng.normals(n, 1.0).iter().map(|&x| x as f32).collect();
            arena.write(&gpu, &s.name, &v).unwrap();
        }
        let w1_norm = norm(
            &arena
                .read(&gpu, "w1")
                .unwrap()
                .iter()
                .map(|&v| v as f64)
                .collect::<Vec<_>>(),
        );
        let nap = NapConfig {
            groups: vec![NapGroup {
                tensors: vec!["w1".into(), "g".into()],
                rho: None,
            }],
        };
        let g_norm = norm(
            &arena
                .read(&gpu, "g")
                .unwrap()
                .iter()
                .map(|&v| v as f64)
                .collect::<Vec<_>>(),
        );
        let rho = (w1_norm.powi(2) + g_norm.powi(2)).sqrt();
        let mut opt = GpuOptimizer::new(&gpu, &arena, &OptimConfig::new(kind).with_lr(lr), Some(&nap)).unwrap();
        for _ in 0..5 {
            for s in &specs {
                let n = s.shape.iter().product();
                let g: Vec<f32> = rng.normals(n, 0.1).iter().map(|&x| x as f32).collect();
                arena.write_grad(&gpu, &s.name, &g).unwrap();
            }
            if opt.loss_buffer().is_some() {
                opt.write_loss(&gpu, 1.0).unwrap();
            }
            opt.step(&gpu).unwrap();
        }
        let report = opt.nap_report(&gpu).unwrap();
        assert_eq!(report.len(), 1);
        let r = &report[0];
        assert!((r.rho - rho).abs() <= 1e-5 * rho, "{kind}: rho {} vs {rho}", r.rho);
        assert!(
            (r.norm_z - rho).abs() <= 1e-5 * rho,
            "{kind}: |z| {} vs rho {rho}",
            r.norm_z
        );
        assert!(
            (r.norm_x - rho).abs() <= 1e-5 * rho,
            "{kind}: |x| {} vs rho {rho}",
            r.norm_x
        );
        let gamma = opt.last_scalars(&gpu).unwrap().gamma as f64;
        assert!(gamma > 0.0, "{kind}: gamma {gamma}");
        let expected = if kind == Kind::SgdSf {
            gamma / (rho * rho)
        } else {
            gamma / rho
        };
        assert!(
            (r.effective_lr - expected).abs() <= 1e-6 * expected,
            "{kind}: {} vs {expected}",
            r.effective_lr
        );
    }
}
