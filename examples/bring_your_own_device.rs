//! Bring your own device: a program that already uses wgpu hands its device to
//! sfnap and steps sfnap's optimizers on gradients it wrote itself.
//!
//! The device is opened with plain wgpu (no sfnap code), wrapped by
//! `Gpu::from_device`, and shared: the program writes gradients into the arena's
//! `grads` buffer with its own queue, sfnap steps adamw_sf and sf_plus (both with
//! NaP on the weight matrix) and the program reads x, the weights to ship.
//!
//! The problem is a quadratic, loss = ½‖w − t‖² + ½‖b − s‖², with a target t of
//! the same norm as the initial w, so NaP (which keeps ‖w‖ at its initial norm)
//! can reach it. The example fails if the loss at x does not fall by 100x.
//!
//! Run: `cargo run --release --no-default-features --example bring_your_own_device`.

use sfnap::arena::{Arena, TensorSpec};
use sfnap::data::Rng;
use sfnap::gpu::Gpu;
use sfnap::nap::{NapConfig, NapGroup};
use sfnap::optim::{GpuOptimizer, Kind, OptimConfig};

const ROWS: usize = 32;
const COLS: usize = 48;
const STEPS: usize = 300;

/// Your program's device, opened with plain wgpu (here: the default adapter,
/// with its own limits so large arenas need fewer binding segments).
fn open_device() -> Result<(wgpu::Device, wgpu::Queue), Box<dyn std::error::Error>> {
    pollster::block_on(async {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions::default())
            .await?;
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("my program"),
                required_limits: adapter.limits(),
                ..Default::default()
            })
            .await?;
        Ok((device, queue))
    })
}

fn normal(rng: &mut Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.normal() as f32).collect()
}

fn norm(v: &[f32]) -> f64 {
    v.iter().map(|&a| (a as f64).powi(2)).sum::<f64>().sqrt()
}

/// ½‖a − t‖², and the gradient a − t.
fn loss_and_grad(a: &[f32], t: &[f32]) -> (f64, Vec<f32>) {
    let g: Vec<f32> = a.iter().zip(t).map(|(a, t)| a - t).collect();
    (0.5 * norm(&g).powi(2), g)
}

/// Trains `kind` from the same start; returns the loss at x before and after.
fn train(gpu: &Gpu, queue: &wgpu::Queue, kind: Kind) -> Result<(f64, f64), Box<dyn std::error::Error>> {
    let mut rng = Rng::new(7);
    let w0 = normal(&mut rng, ROWS * COLS);
    let mut t = normal(&mut rng, ROWS * COLS);
    let scale = (norm(&w0) / norm(&t)) as f32;
    t.iter_mut().for_each(|v| *v *= scale);
    let s = normal(&mut rng, COLS);

    let specs = [
        TensorSpec::new("w", &[ROWS, COLS]),
        TensorSpec::new("b", &[COLS]).no_decay(),
    ];
    let arena = Arena::new(gpu, &specs, None)?;
    arena.write(gpu, "w", &w0)?;
    arena.write(gpu, "b", &[0.0; COLS])?;
    let nap = NapConfig {
        groups: vec![NapGroup {
            tensors: vec!["w".into()],
            rho: None,
        }],
    };
    let cfg = match kind {
        Kind::SfPlus => OptimConfig::new(Kind::SfPlus),
        _ => OptimConfig::new(kind).with_lr(0.1),
    };
    let mut opt = GpuOptimizer::new(gpu, &arena, &cfg, Some(&nap))?;
    let (w_slot, b_slot) = (arena.layout.slot("w")?.offset, arena.layout.slot("b")?.offset);

    // x, the weights to ship: loss and |w| there.
    let at_x = |opt: &mut GpuOptimizer| -> Result<(f64, f64), Box<dyn std::error::Error>> {
        opt.eval(gpu, &arena); // the parameters now hold x
        let w = arena.read(gpu, "w")?;
        let loss = loss_and_grad(&w, &t).0 + loss_and_grad(&arena.read(gpu, "b")?, &s).0;
        opt.train(gpu); // back to y
        Ok((loss, norm(&w)))
    };
    let (before, _) = at_x(&mut opt)?;
    for _ in 0..STEPS {
        // Your code computes gradients at y and writes them into sfnap's buffer with
        // your own queue: the arena's buffers are ordinary wgpu buffers on your device.
        let (lw, gw) = loss_and_grad(&arena.read(gpu, "w")?, &t);
        let (lb, gb) = loss_and_grad(&arena.read(gpu, "b")?, &s);
        queue.write_buffer(&arena.grads, 4 * w_slot as u64, bytemuck::cast_slice(&gw));
        queue.write_buffer(&arena.grads, 4 * b_slot as u64, bytemuck::cast_slice(&gb));
        if kind == Kind::SfPlus {
            opt.write_loss(gpu, (lw + lb) as f32)?; // ScheduleFree+ takes its step size from the loss
        }
        opt.step(gpu)?;
    }
    opt.check(gpu)?;
    let (after, w_norm) = at_x(&mut opt)?;
    println!(
        "{kind:<9} loss at x {before:9.4} -> {after:.6}   |w| {:.4} (initial {:.4})",
        w_norm,
        norm(&w0)
    );
    Ok((before, after))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (device, queue) = open_device()?;
    // sfnap adopts the device (checking its limits) and shares it: keep clones to use it yourself.
    let gpu = Gpu::from_device(device.clone(), queue.clone())?;
    println!("device: {}", gpu.describe());
    for kind in [Kind::AdamwSf, Kind::SfPlus] {
        let (before, after) = train(&gpu, &queue, kind)?;
        // A NaN loss fails too.
        if after.is_nan() || after >= before / 100.0 {
            return Err(format!("{kind}: the loss at x fell only from {before} to {after}").into());
        }
    }
    Ok(())
}
