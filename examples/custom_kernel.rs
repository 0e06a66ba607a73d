//! Your own kernels on sfnap's buffers: a WGSL gradient kernel and a
//! gradient-clipping pass registered in the device's kernel cache, recorded into
//! the same command encoder as sfnap's optimizer step, with no readback between
//! steps.
//!
//! The problem is a quadratic, loss = ½‖y − t‖² over the whole arena, whose
//! gradient y − t a kernel writes straight into `arena.grads`; a second kernel
//! clips each gradient element to [−CLIP, CLIP] before the step. Both read and
//! write the arena's buffers as whole bindings (the padding between tensors is
//! zero in the parameters and the target, so its gradient stays zero).
//!
//! Run: `cargo run --release --no-default-features --example custom_kernel`.

use sfnap::arena::{Arena, TensorSpec};
use sfnap::data::Rng;
use sfnap::gpu::buffers::whole;
use sfnap::gpu::{Gpu, KernelFile};
use sfnap::optim::{GpuOptimizer, Kind, OptimConfig, RING};

const CLIP: f32 = 0.5;
const STEPS: usize = 256;

/// Bindings: 0 the clip bound, 1 the parameters y, 2 the target t, 3 the gradients.
const WGSL: &str = r#"
@group(0) @binding(0) var<uniform> clip: vec4<f32>;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> goal: array<f32>;
@group(0) @binding(3) var<storage, read_write> grads: array<f32>;

// The gradient of 1/2 |y - t|^2.
@compute @workgroup_size(64)
fn quadratic_grad(@builtin(global_invocation_id) id: vec3<u32>) {
    if (id.x < arrayLength(&grads)) {
        grads[id.x] = y[id.x] - goal[id.x];
    }
}

// Clips every gradient element to [-clip, clip].
@compute @workgroup_size(64)
fn clip_grad(@builtin(global_invocation_id) id: vec3<u32>) {
    if (id.x < arrayLength(&grads)) {
        grads[id.x] = clamp(grads[id.x], -clip.x, clip.x);
    }
}
"#;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let gpu = Gpu::from_env()?;
    println!("device: {}", gpu.describe());
    gpu.register_kernels(
        KernelFile::new("quadratic", WGSL)
            .entry("quadratic_grad", &[1, 2, 3])
            .entry("clip_grad", &[0, 3]),
    )?;

    let specs = [TensorSpec::new("a", &[100, 30]), TensorSpec::new("b", &[77])];
    let arena = Arena::new(&gpu, &specs, None)?;
    let mut rng = Rng::new(3);
    let mut target = vec![0f32; arena.layout.total];
    for slot in &arena.layout.slots {
        for v in &mut target[slot.offset..slot.offset + slot.len] {
            *v = 2.0 * rng.normal() as f32;
        }
    }
    let target_buf = gpu.storage_init("target", &target);
    let clip = gpu.uniform("clip", &[CLIP, 0.0, 0.0, 0.0]);

    let resources = [
        (0, whole(&clip)),
        (1, whole(&arena.params)),
        (2, whole(&target_buf)),
        (3, whole(&arena.grads)),
    ];
    let groups = [arena.layout.total.div_ceil(64) as u32, 1, 1];
    let grad = gpu.dispatch("quadratic", "quadratic_grad", &resources, groups)?;
    let clip = gpu.dispatch("quadratic", "clip_grad", &resources, groups)?;

    let mut opt = GpuOptimizer::new(&gpu, &arena, &OptimConfig::new(Kind::AdamwSf).with_lr(0.05), None)?;
    let loss = |values: &[f32]| -> f64 {
        values
            .iter()
            .zip(&target)
            .map(|(a, t)| 0.5 * ((a - t) as f64).powi(2))
            .sum()
    };
    let read_all = |gpu: &Gpu| gpu.read::<f32>(&arena.params, 0, arena.layout.total);
    let before = loss(&read_all(&gpu)?);
    // RING steps per submission: gradient, clipping and optimizer in one encoder each step.
    for _ in 0..STEPS / RING {
        gpu.submit(|enc| -> sfnap::Result<()> {
            for _ in 0..RING {
                {
                    let mut pass = enc.begin_compute_pass(&Default::default());
                    grad.record(&mut pass);
                    clip.record(&mut pass);
                }
                opt.record_step(&gpu, enc)?;
            }
            Ok(())
        })?;
        opt.submitted();
    }
    opt.eval(&gpu, &arena);
    let after = loss(&read_all(&gpu)?);
    println!("adamw_sf with clipped gradients: loss at x {before:.2} -> {after:.4} after {STEPS} steps");
    // A NaN loss fails too.
    if after.is_nan() || after >= before / 100.0 {
        return Err(format!("the loss at x fell only from {before} to {after}").into());
    }
    Ok(())
}
