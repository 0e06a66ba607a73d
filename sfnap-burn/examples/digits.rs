//! A Burn MLP (64-256-256-10, Linear without bias, LayerNorm, ReLU; a linear
//! head) on sfnap's 8x8 digits, trained three times from the same weights on
//! the same batches: with sfnap's sf_plus + NaP (no learning rate), with
//! sfnap's adamw_sf + NaP, and with Burn's own AdamW. Prints each run's test
//! accuracy (at x for sfnap's optimizers) and its time per training step
//! (forward, backward and optimizer step).
//!
//! Run: `cargo run --release -p sfnap-burn --example digits`
//! (`SFNAP_BACKEND=vulkan|gl|metal|dx12` picks the backend).

use std::time::Instant;

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Int, Tensor, TensorData};
use sfnap::data::digits::digits_split;
use sfnap::data::{Classification, Rng};
use sfnap::optim::plus::growth_per_step;
use sfnap::optim::{Kind, OptimConfig};
use sfnap_burn::{Nap, Optimized, SharedDevice};

const STEPS: u64 = 2000;
const BATCH: usize = 64;
const HIDDEN: usize = 256;

#[derive(Module, Debug)]
struct Mlp {
    l1: Linear,
    n1: LayerNorm,
    l2: Linear,
    n2: LayerNorm,
    head: Linear,
}

impl Mlp {
    fn new(device: &Device) -> Mlp {
        let hidden = |d_in| LinearConfig::new(d_in, HIDDEN).with_bias(false).init(device);
        Mlp {
            l1: hidden(64),
            n1: LayerNormConfig::new(HIDDEN).init(device),
            l2: hidden(HIDDEN),
            n2: LayerNormConfig::new(HIDDEN).init(device),
            head: LinearConfig::new(HIDDEN, 10).init(device),
        }
    }

    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let h = relu(self.n1.forward(self.l1.forward(x)));
        let h = relu(self.n2.forward(self.l2.forward(h)));
        self.head.forward(h)
    }

    fn loss(&self, (x, y): (Tensor<2>, Tensor<1, Int>)) -> Tensor<1> {
        CrossEntropyLossConfig::new()
            .init(&x.device())
            .forward(self.forward(x), y)
    }
}

/// The rows `rows` of `data` as tensors on `device`.
fn tensors(data: &Classification, rows: &[usize], device: &Device) -> (Tensor<2>, Tensor<1, Int>) {
    let mut x = Vec::with_capacity(rows.len() * data.dim);
    for &r in rows {
        x.extend_from_slice(&data.inputs[r * data.dim..(r + 1) * data.dim]);
    }
    let y: Vec<i64> = rows.iter().map(|&r| data.labels[r] as i64).collect();
    (
        Tensor::from_data(TensorData::new(x, [rows.len(), data.dim]), device),
        Tensor::from_data(TensorData::new(y, [rows.len()]), device),
    )
}

/// Batch `step` of every run: 64 training rows drawn from the step's own stream.
fn batch(step: u64, train: &Classification) -> Vec<usize> {
    let mut rng = Rng::new(step);
    (0..BATCH).map(|_| rng.below(train.len())).collect()
}

/// Test accuracy of `model` (no autodiff) in percent.
fn accuracy(model: &Mlp, test: &Classification, device: &Device) -> f64 {
    let rows: Vec<usize> = (0..test.len()).collect();
    let (x, _) = tensors(test, &rows, device);
    let predicted = model.forward(x).argmax(1).into_data();
    let predicted = predicted.convert::<i64>().try_into_vec::<i64>().expect("class indices");
    let right = predicted
        .iter()
        .zip(&test.labels)
        .filter(|(p, &l)| **p == l as i64)
        .count();
    100.0 * right as f64 / test.len() as f64
}

/// What a run reports: its name, test accuracy, milliseconds per step.
struct Outcome {
    name: &'static str,
    accuracy: f64,
    ms_per_step: f64,
}

/// A training loop's time per step: the work of `steps` steps, waited for.
fn timed(mut step: impl FnMut(u64) -> Tensor<1>) -> f64 {
    let start = Instant::now();
    let mut last = None;
    for s in 0..STEPS {
        let loss = step(s);
        if s % 500 == 499 {
            println!("  step {:5}: loss {:.4}", s + 1, loss.clone().into_scalar::<f32>());
        }
        last = Some(loss);
    }
    // Reading the last loss waits for every step's work.
    last.expect("steps > 0").into_scalar::<f32>();
    start.elapsed().as_secs_f64() * 1e3 / STEPS as f64
}

fn sfnap_run(
    name: &'static str,
    cfg: OptimConfig,
    shared: &SharedDevice,
    start: &Mlp,
    data: (&Classification, &Classification),
) -> sfnap::Result<Outcome> {
    let (train, test) = data;
    let device = shared.burn().clone().autodiff();
    println!("{name}");
    let mut run = Optimized::new(start.clone(), shared, &cfg, Nap::Found)?;
    let mut failed = None;
    let ms_per_step = timed(|s| {
        let loss = run.train_module().loss(tensors(train, &batch(s, train), &device));
        if let Err(e) = run.step(loss.clone()) {
            failed.get_or_insert(e);
        }
        loss
    });
    if let Some(e) = failed {
        return Err(e);
    }
    let at_x = run.eval_module()?;
    Ok(Outcome {
        name,
        accuracy: accuracy(&at_x, test, shared.burn()),
        ms_per_step,
    })
}

fn main() -> sfnap::Result<()> {
    let shared = SharedDevice::from_env()?;
    println!("adapter: {}", shared.gpu().describe());
    let (train, test) = digits_split(0);
    let device = shared.burn().clone().autodiff();
    device.seed(0);
    let start = Mlp::new(&device);

    // sf_plus as `sfnap train --opt sf_plus` runs it: its step may double once
    // per pass over the 1,437 training digits.
    let plus = OptimConfig::sf_plus_capped(growth_per_step(train.len() as f64 / BATCH as f64));
    let mut adamw_sf = OptimConfig::new(Kind::AdamwSf).with_lr(3e-3);
    adamw_sf.warmup_steps = 100;
    let mut outcomes = vec![
        sfnap_run(
            "sfnap sf_plus + NaP (no learning rate)",
            plus,
            &shared,
            &start,
            (&train, &test),
        )?,
        sfnap_run("sfnap adamw_sf 3e-3 + NaP", adamw_sf, &shared, &start, (&train, &test))?,
    ];

    println!("Burn AdamW 3e-3");
    let mut model = start.clone();
    let mut adamw = AdamWConfig::new().init();
    let ms_per_step = timed(|s| {
        let loss = model.loss(tensors(&train, &batch(s, &train), &device));
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = adamw.step(3e-3, model.clone(), grads);
        loss
    });
    outcomes.push(Outcome {
        name: "Burn AdamW 3e-3",
        accuracy: accuracy(&model.valid(), &test, shared.burn()),
        ms_per_step,
    });

    println!("\n{STEPS} steps of {BATCH} digits, 360 test digits:");
    println!("{:42} {:>14} {:>12}", "optimizer", "test accuracy", "ms / step");
    for o in &outcomes {
        println!("{:42} {:>13.2}% {:>12.2}", o.name, o.accuracy, o.ms_per_step);
    }
    Ok(())
}
