//! `make demo`: the digits MLP (64-256-256-10, LayerNorm before each ReLU)
//! trained twice on the GPU, with ScheduleFree+ and NaP (no learning rate given)
//! and with AdamW on a warmup-stable-decay schedule (the baseline it claims to
//! beat), 2,000 steps of 64 digits each. Prints both test accuracies at x and
//! draws both loss curves into `target/demo/digits.png`.
//!
//! Run: `cargo run --release --example digits` (or `make demo`).

use std::path::PathBuf;

use sfnap::gpu::Gpu;
use sfnap::optim::plus::growth_per_step;
use sfnap::optim::{Kind, OptimConfig, Schedule};
use sfnap::plot::{line_chart, plot_run, run_series, Chart};
use sfnap::train::{read_metrics, train_observed, DataKind, RunOptions, TrainConfig};

/// The progress bar of `sfnap train`.
#[path = "../src/bin/sfnap/progress.rs"]
mod progress;

const STEPS: u64 = 2000;

fn main() -> sfnap::Result<()> {
    let gpu = Gpu::from_env()?;
    println!("adapter: {}", gpu.describe());
    let mut base = TrainConfig {
        model: TrainConfig::default_model(&DataKind::Digits),
        data: DataKind::Digits,
        optimizer: OptimConfig::new(Kind::SfPlus),
        nap: true,
        steps: STEPS,
        batch: 64,
        eval_every: 100,
        metrics_every: 10,
        seed: 0,
        task_steps: 500,
    };
    // sfnap's sf_plus, as `sfnap train --opt sf_plus` runs it: its step may double
    // once per pass over the 1,437 training digits.
    base.optimizer = OptimConfig::sf_plus_capped(growth_per_step(sfnap::train::steps_per_epoch(&base)?));
    let mut adamw = OptimConfig::new(Kind::Adamw).with_lr(3e-3);
    adamw.schedule = Schedule::Wsd {
        warmup_steps: STEPS / 20,
        decay_steps: STEPS / 5,
        total_steps: STEPS,
    };
    let runs = [
        ("sf_plus + NaP, no learning rate", "sf_plus_nap", base.clone()),
        (
            "adamw 3e-3, WSD schedule",
            "adamw_wsd",
            TrainConfig {
                optimizer: adamw,
                nap: false,
                ..base.clone()
            },
        ),
    ];
    let root = PathBuf::from("target/demo");
    let mut results = Vec::new();
    let mut series = Vec::new();
    for (i, (label, dir, cfg)) in runs.iter().enumerate() {
        println!("\n{label}:");
        let out = root.join(dir);
        let opts = RunOptions {
            out: Some(out.clone()),
            overwrite: true,
            ..Default::default()
        };
        let started = std::time::Instant::now();
        let summary = train_observed(&gpu, cfg, &opts, &mut progress::Bar::default())?;
        plot_run(&out, &cfg.optimizer.kind.to_string())?;
        let last = summary.last().expect("the run evaluates at its end");
        println!(
            "  {STEPS} steps in {:.0} s: test accuracy {:.2}%, test loss {:.4} (at x)",
            started.elapsed().as_secs_f64(),
            100.0 * last.eval_accuracy,
            last.eval_loss
        );
        results.push((label, last.eval_accuracy, last.eval_loss));
        series.extend(run_series(&read_metrics(&out.join("metrics.csv"))?, label, i));
    }
    let chart = Chart {
        title: "digits MLP on the GPU: loss at y (train batches) and at x (test set)",
        x_label: "step",
        y_label: "cross-entropy",
        log_y: true,
    };
    let plot = root.join("digits.png");
    line_chart(&plot, &chart, &series)?;
    println!("\n{:34} {:>14} {:>10}", "optimizer", "test accuracy", "test loss");
    for (label, acc, loss) in results {
        println!("{label:34} {:>13.2}% {loss:>10.4}", 100.0 * acc);
    }
    println!("\nplot: {}", plot.display());
    Ok(())
}
