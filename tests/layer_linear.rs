//! `nn::Linear` against its f64 twin (`nn::reference::linear_*`), on the
//! barrier-free kernels (small products, with and without subgroups) and the tiled
//! ones (large products); and the twin against finite differences. How the bounds
//! are derived: `tests/common/layers.rs`.

mod common;

use common::layers::{abs, check, check_fd, dot, f32s, numeric_grad, read, read_grad, run, scaled, upload, zeros};
use common::{gpu, Rng, U32};
use sfnap::arena::{Arena, TensorSpec};
use sfnap::gpu::{Dispatch, Gpu};
use sfnap::nn::reference as r;
use sfnap::nn::*;

// ------------------------------------------------- the reference against finite differences

#[test]
fn reference_linear_matches_finite_differences() {
    let (rows, inputs, outputs) = (3, 5, 4);
    let mut rng = Rng::new(1);
    let x = rng.normals(rows * inputs, 1.0);
    let w = rng.normals(inputs * outputs, 1.0);
    let b = rng.normals(outputs, 1.0);
    let dy = rng.normals(rows * outputs, 1.0);
    let grads = r::linear_backward(&x, &w, &dy, rows, inputs, outputs);
    let l = |x: &[f64], w: &[f64], b: &[f64]| dot(&dy, &r::linear_forward(x, w, Some(b), rows, inputs, outputs));
    check_fd("linear dx", &grads.dx, &numeric_grad(&x, |x| l(x, &w, &b)));
    check_fd("linear dw", &grads.dw, &numeric_grad(&w, |w| l(&x, w, &b)));
    check_fd("linear db", &grads.db, &numeric_grad(&b, |b| l(&x, &w, b)));
}

// ------------------------------------------------------ on the GPU against the reference

#[allow(clippy::too_many_arguments)]
fn linear_case(g: &Gpu, rows: usize, inputs: usize, outputs: usize, bias: bool, dx: bool, seed: u64) {
    let name = format!(
        "linear {rows}x{inputs}->{outputs} bias {bias} dx {dx} subgroups {}",
        g.subgroup_matmul
    );
    let mut rng = Rng::new(seed);
    let x = rng.normals(rows * inputs, 1.0);
    let w = rng.normals(inputs * outputs, 0.5);
    let b = rng.normals(outputs, 0.5);
    let dy = rng.normals(rows * outputs, 1.0);
    // A small tensor first, so that the weight does not start at offset 0.
    let mut specs = vec![TensorSpec::new("first", &[3]), TensorSpec::new("w", &[inputs, outputs])];
    if bias {
        specs.push(TensorSpec::new("b", &[outputs]).no_decay());
    }
    let arena = Arena::new(g, &specs, None).unwrap();
    arena.write(g, "w", &f32s(&w)).unwrap();
    if bias {
        arena.write(g, "b", &f32s(&b)).unwrap();
    }
    let (xb, yb) = (upload(g, &x), zeros(g, rows * outputs));
    let (dyb, dxb) = (upload(g, &dy), zeros(g, rows * inputs));
    let layer = Linear::new(
        g,
        &LinearDesc {
            rows,
            inputs,
            outputs,
            x: View::new(&xb, rows * inputs),
            y: View::new(&yb, rows * outputs),
            dy: View::new(&dyb, rows * outputs),
            dx: dx.then(|| View::new(&dxb, rows * inputs)),
            weight: Param::from_arena(&arena, "w").unwrap(),
            bias: bias.then(|| Param::from_arena(&arena, "b").unwrap()),
        },
    )
    .unwrap();
    // Small products take the subgroup kernel exactly when the device allows it.
    let mut dispatches: Vec<Dispatch> = Vec::new();
    layer.record_forward(&mut dispatches);
    layer.record_backward(&mut dispatches);
    for d in dispatches.iter().filter(|d| d.label().contains("matmul")) {
        let small = d.label().contains("matmul_block") || d.label().contains("matmul_subgroup");
        let cpu = g.info.device_type == wgpu::DeviceType::Cpu;
        assert!(small || !cpu, "{name}: {} on a CPU driver", d.label());
        if small {
            assert_eq!(
                d.label().starts_with("linear_subgroup."),
                g.subgroup_matmul,
                "{name}: {}",
                d.label()
            );
        }
    }
    run(g, |p| {
        layer.record_forward(p);
        layer.record_backward(p);
    });

    // y = Σ_k x w (+ b): K products and K (+1) additions: (K + 2)·u·(Σ|x||w| + |b|).
    let babs = abs(&b);
    let y_ref = r::linear_forward(&x, &w, bias.then_some(&b[..]), rows, inputs, outputs);
    let y_abs = r::linear_forward(&abs(&x), &abs(&w), bias.then_some(&babs[..]), rows, inputs, outputs);
    let y_bound = scaled(&y_abs, (inputs + 2) as f64 * U32);
    check(&format!("{name} y"), &read(g, &yb, rows * outputs), &y_ref, &y_bound);

    // dx: sums of N terms, dW: of M terms, db: of M terms, each bounded as above.
    let grads = r::linear_backward(&x, &w, &dy, rows, inputs, outputs);
    let gabs = r::linear_backward(&abs(&x), &abs(&w), &abs(&dy), rows, inputs, outputs);
    if dx {
        let bound = scaled(&gabs.dx, (outputs + 1) as f64 * U32);
        check(&format!("{name} dx"), &read(g, &dxb, rows * inputs), &grads.dx, &bound);
    }
    let bound = scaled(&gabs.dw, (rows + 1) as f64 * U32);
    check(&format!("{name} dw"), &read_grad(g, &arena, "w"), &grads.dw, &bound);
    if bias {
        let bound = scaled(&gabs.db, (rows + 1) as f64 * U32);
        check(&format!("{name} db"), &read_grad(g, &arena, "b"), &grads.db, &bound);
    }
}

/// Small products (`linear::SMALL_PRODUCT` multiply-adds or fewer) take the
/// barrier-free kernels: awkward sizes and the GPT's shapes, with the subgroup
/// kernel where the device has it (lavapipe's Vulkan does) and with the portable
/// one.
#[test]
fn linear_matches_reference_on_awkward_sizes() {
    let mut g = gpu();
    if std::env::var("SFNAP_BACKEND").as_deref() == Ok("vulkan") {
        assert!(g.subgroup_matmul, "{}: no subgroup matmul on Vulkan", g.describe());
    }
    let modes = if g.subgroup_matmul {
        vec![true, false]
    } else {
        vec![false]
    };
    for subgroups in modes {
        g.subgroup_matmul = subgroups;
        linear_small_products(&g);
    }
}

fn linear_small_products(g: &Gpu) {
    let mut seed = 10;
    for (rows, inputs, outputs) in [
        (3, 5, 17),
        (17, 130, 64),
        (130, 64, 5),
        (64, 17, 130),
        (1, 1, 1),
        (65, 200, 3),
        (512, 64, 192),
        (512, 256, 64),
    ] {
        assert!(rows * inputs * outputs <= linear::SMALL_PRODUCT);
        for (bias, dx) in [(true, true), (false, true), (true, false)] {
            seed += 1;
            linear_case(g, rows, inputs, outputs, bias, dx, seed);
        }
    }
}

/// Large products take the tiled kernels (workgroup memory and barriers) on GPUs
/// and the barrier-free ones on CPU drivers: both on Vulkan, whatever the test
/// adapter is. Elsewhere only the adapter's own rule: llvmpipe's GL compiles the
/// tiled kernel in more than ten minutes.
#[test]
fn linear_matches_reference_on_large_products() {
    let mut g = gpu();
    let (rows, inputs, outputs) = (259, 257, 253);
    assert!(rows * inputs * outputs > linear::SMALL_PRODUCT);
    let mut types = vec![g.info.device_type];
    if g.info.backend == wgpu::Backend::Vulkan {
        types = vec![wgpu::DeviceType::Cpu, wgpu::DeviceType::DiscreteGpu];
    }
    for device_type in types {
        g.info.device_type = device_type;
        for (seed, (bias, dx)) in [(31, (true, true)), (32, (false, true))] {
            linear_case(&g, rows, inputs, outputs, bias, dx, seed);
        }
    }
}
