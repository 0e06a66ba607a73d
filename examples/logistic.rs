//! Logistic regression on two Gaussian clouds, optimized by every kind on the GPU.
//!
//! The optimizer runs on the GPU; the gradient of this tiny model is computed on
//! the host from the y weights the optimizer exposes, so the example shows the
//! optimizer API on its own: write gradients (and the loss for sf_plus), step,
//! switch to eval mode to read x. It prints the loss at y (where gradients are
//! taken) and at x (the weights you ship) as training goes.
//!
//! Run: `cargo run --release --example logistic` (or `make demo`).

use sfnap::arena::{Arena, TensorSpec};
use sfnap::gpu::Gpu;
use sfnap::optim::{GpuOptimizer, Kind, OptimConfig, Schedule};

const DIM: usize = 64;
const SAMPLES: usize = 512;
const STEPS: u64 = 200;
const REPORT_EVERY: u64 = 25;

/// Two clouds of points with unit variance, means at -0.25 and +0.25 on every
/// axis: four standard deviations apart in 64 dimensions, so a linear model can
/// fit them. (sf_plus's Polyak step assumes the best loss is near 0; on data a
/// model cannot fit it overshoots.)
fn dataset() -> (Vec<[f64; DIM]>, Vec<f64>) {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut normal = move || (-2.0 * (uniform() + 1e-300).ln()).sqrt() * (std::f64::consts::TAU * uniform()).cos();
    (0..SAMPLES)
        .map(|i| {
            let label = (i % 2) as f64;
            let mut x = [0.0; DIM];
            for v in x.iter_mut() {
                *v = normal() + 0.5 * (label - 0.5);
            }
            (x, label)
        })
        .unzip()
}

/// Mean log-loss of weights `w` (DIM) and bias `b`, and its gradient.
fn loss_and_grad(w: &[f32], b: f32, xs: &[[f64; DIM]], ys: &[f64]) -> (f64, Vec<f32>, f32) {
    let mut loss = 0.0;
    let mut gw = vec![0.0f64; DIM];
    let mut gb = 0.0f64;
    for (x, &y) in xs.iter().zip(ys) {
        let z: f64 = x.iter().zip(w).map(|(a, &b)| a * b as f64).sum::<f64>() + b as f64;
        let p = 1.0 / (1.0 + (-z).exp());
        loss += -(y * p.max(1e-12).ln() + (1.0 - y) * (1.0 - p).max(1e-12).ln());
        for (g, a) in gw.iter_mut().zip(x) {
            *g += (p - y) * a;
        }
        gb += p - y;
    }
    let n = xs.len() as f64;
    (loss / n, gw.iter().map(|g| (g / n) as f32).collect(), (gb / n) as f32)
}

fn configs() -> Vec<OptimConfig> {
    let mut sgd = OptimConfig::new(Kind::SgdSf).with_lr(2.0);
    sgd.warmup_steps = 10;
    let mut adamw_sf = OptimConfig::new(Kind::AdamwSf).with_lr(0.05);
    adamw_sf.warmup_steps = 10;
    let mut paper = OptimConfig::new(Kind::AdamwSfPaper).with_lr(0.05);
    paper.warmup_steps = 10;
    let radam = OptimConfig::new(Kind::RadamSf).with_lr(0.05);
    let plus = OptimConfig::new(Kind::SfPlus);
    let mut adamw = OptimConfig::new(Kind::Adamw).with_lr(0.05);
    adamw.schedule = Schedule::Cosine {
        warmup_steps: 10,
        total_steps: STEPS,
        final_frac: 0.0,
    };
    vec![sgd, adamw_sf, paper, radam, plus, adamw]
}

fn main() -> sfnap::Result<()> {
    let gpu = Gpu::from_env()?;
    println!("adapter: {}", gpu.describe());
    let (xs, ys) = dataset();
    let specs = [TensorSpec::new("w", &[DIM]), TensorSpec::new("b", &[1]).no_decay()];
    let mut finals = Vec::new();
    for cfg in configs() {
        let arena = Arena::new(&gpu, &specs, None)?;
        let mut opt = GpuOptimizer::new(&gpu, &arena, &cfg, None)?;
        println!(
            "\n{} (lr {}):",
            cfg.kind,
            if cfg.kind == Kind::SfPlus {
                "none".into()
            } else {
                cfg.lr().to_string()
            }
        );
        println!("  step   loss(y)   loss(x)");
        for step in 0..=STEPS {
            let (w, b) = (arena.read(&gpu, "w")?, arena.read(&gpu, "b")?[0]);
            let (loss_y, gw, gb) = loss_and_grad(&w, b, &xs, &ys);
            if step % REPORT_EVERY == 0 {
                opt.eval(&gpu, &arena);
                let (wx, bx) = (arena.read(&gpu, "w")?, arena.read(&gpu, "b")?[0]);
                opt.train(&gpu);
                let loss_x = loss_and_grad(&wx, bx, &xs, &ys).0;
                println!("  {step:4}   {loss_y:.5}   {loss_x:.5}");
                if step == STEPS {
                    finals.push((cfg.kind, loss_x));
                    break;
                }
            }
            arena.write_grad(&gpu, "w", &gw)?;
            arena.write_grad(&gpu, "b", &[gb])?;
            if opt.loss_buffer().is_some() {
                opt.write_loss(&gpu, loss_y as f32)?;
            }
            opt.step(&gpu)?;
        }
        opt.check(&gpu)?;
    }
    println!("\nfinal loss at x after {STEPS} steps:");
    for (kind, loss) in finals {
        println!("  {:16} {loss:.5}", kind.name());
    }
    Ok(())
}
