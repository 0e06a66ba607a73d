//! The layers (`sfnap::nn`) against their f64 twins (`nn::reference`), and the
//! twins against central finite differences.
//!
//! GPU-vs-reference bounds are derived per element from f32 rounding: a sum of
//! n terms computed in f32 is off by at most about n·u·Σ|terms| (u = 2⁻²⁴), the
//! standard worst-case bound; each test builds the Σ|terms| it needs (often by
//! running the reference on absolute values) and states its bound. Each check
//! prints its worst error as a fraction of the bound (`--nocapture` to see).

mod common;

use common::{gpu, Rng, U32};
use sfnap::arena::{Arena, TensorSpec};
use sfnap::gpu::{Dispatch, Gpu};
use sfnap::nn::reference::{self as r, AttentionShape};
use sfnap::nn::*;
use sfnap::optim::{GpuOptimizer, Kind, OptimConfig};

// ---------------------------------------------------------------- helpers

fn f32s(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

fn abs(v: &[f64]) -> Vec<f64> {
    v.iter().map(|x| x.abs()).collect()
}

fn upload(g: &Gpu, v: &[f64]) -> wgpu::Buffer {
    g.storage_init("test input", &f32s(v))
}

fn upload_u32(g: &Gpu, v: &[u32]) -> wgpu::Buffer {
    g.storage_init("test ids", v)
}

fn zeros(g: &Gpu, n: usize) -> wgpu::Buffer {
    g.storage("test output", n as u64 * 4)
}

fn read(g: &Gpu, b: &wgpu::Buffer, n: usize) -> Vec<f64> {
    g.read::<f32>(b, 0, n).unwrap().into_iter().map(f64::from).collect()
}

fn read_grad(g: &Gpu, arena: &Arena, name: &str) -> Vec<f64> {
    let v = arena.read_from(g, &arena.grads, name).unwrap();
    v.into_iter().map(f64::from).collect()
}

/// Records into one compute pass, submits and waits.
fn run(g: &Gpu, record: impl FnOnce(&mut wgpu::ComputePass<'_>)) {
    g.submit(|enc| record(&mut enc.begin_compute_pass(&Default::default())));
    g.wait().unwrap();
}

/// Asserts |got − want| ≤ bound element-wise (NaN fails); prints and returns the
/// worst error as a fraction of its bound.
fn check(what: &str, got: &[f64], want: &[f64], bound: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    assert_eq!(bound.len(), want.len(), "{what}: bound length");
    let (mut worst, mut worst_err) = (0.0f64, 0.0f64);
    for i in 0..got.len() {
        let err = (got[i] - want[i]).abs();
        assert!(
            err <= bound[i],
            "{what}[{i}]: gpu {} vs reference {} (error {err:.3e} > bound {:.3e})",
            got[i],
            want[i],
            bound[i]
        );
        let ratio = if err == 0.0 { 0.0 } else { err / bound[i] };
        if ratio > worst {
            (worst, worst_err) = (ratio, err);
        }
    }
    println!("{what}: worst error {worst_err:.2e} = {worst:.4} of its bound");
    worst
}

fn scaled(v: &[f64], s: f64) -> Vec<f64> {
    v.iter().map(|x| x * s).collect()
}

// ------------------------------------------------- reference vs finite differences
//
// Each reference backward is checked against central differences of the scalar
// L = Σ dy ⊙ forward(inputs) (or the mean loss itself) in every coordinate, with
// step H = 1e-5. The error of a central difference is at most
// H²/6·|L'''| (truncation) + ~u₆₄·S/H (rounding, S = Σ|terms| of L, u₆₄ = 1.1e-16).
// Inputs are N(0, 1)-sized and the layers are smooth with O(1) derivatives, so
// |L'''| ≲ 10 and S ≲ 10³ here: the error is ≲ 2e-10 + 1e-8. FD_TOL = 1e-7·(1 + |g|)
// leaves an order of margin while a wrong term in a gradient is off by O(0.01–1).

const H: f64 = 1e-5;
const FD_TOL: f64 = 1e-7;

fn numeric_grad(x: &[f64], f: impl Fn(&[f64]) -> f64) -> Vec<f64> {
    let mut xp = x.to_vec();
    (0..x.len())
        .map(|i| {
            xp[i] = x[i] + H;
            let up = f(&xp);
            xp[i] = x[i] - H;
            let down = f(&xp);
            xp[i] = x[i];
            (up - down) / (2.0 * H)
        })
        .collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn check_fd(what: &str, analytic: &[f64], numeric: &[f64]) {
    let bound: Vec<f64> = numeric.iter().map(|n| FD_TOL * (1.0 + n.abs())).collect();
    check(&format!("finite differences {what}"), analytic, numeric, &bound);
}

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

#[test]
fn reference_norms_match_finite_differences() {
    let (rows, dim, eps) = (3, 7, 1e-5);
    for kind in [NormKind::Layer, NormKind::Rms] {
        let mut rng = Rng::new(2);
        let x: Vec<f64> = rng.normals(rows * dim, 1.0).iter().map(|v| v + 0.5).collect();
        let gain: Vec<f64> = rng.normals(dim, 0.3).iter().map(|v| v + 1.0).collect();
        let offset = rng.normals(dim, 0.3);
        let dy = rng.normals(rows * dim, 1.0);
        let grads = r::norm_backward(kind, &x, Some(&gain), &dy, rows, dim, eps);
        let l = |x: &[f64], g: &[f64], o: &[f64]| dot(&dy, &r::norm_forward(kind, x, Some(g), Some(o), rows, dim, eps));
        let name = format!("{kind:?}");
        check_fd(
            &format!("{name} dx"),
            &grads.dx,
            &numeric_grad(&x, |x| l(x, &gain, &offset)),
        );
        check_fd(
            &format!("{name} dgain"),
            &grads.dgain,
            &numeric_grad(&gain, |g| l(&x, g, &offset)),
        );
        check_fd(
            &format!("{name} doffset"),
            &grads.doffset,
            &numeric_grad(&offset, |o| l(&x, &gain, o)),
        );
        // Without gain: the same formulas with g = 1.
        let plain = r::norm_backward(kind, &x, None, &dy, rows, dim, eps);
        let l = |x: &[f64]| dot(&dy, &r::norm_forward(kind, x, None, None, rows, dim, eps));
        check_fd(&format!("{name} dx without gain"), &plain.dx, &numeric_grad(&x, l));
    }
}

#[test]
fn reference_activations_match_finite_differences() {
    let mut rng = Rng::new(3);
    // Kept at least 0.01 away from ReLU's kink at 0 (H is 1e-5).
    let x: Vec<f64> = rng
        .normals(40, 2.0)
        .iter()
        .map(|&v| if v.abs() < 0.01 { v + 0.02 } else { v })
        .collect();
    let dy = rng.normals(40, 1.0);
    for kind in [ActivationKind::Relu, ActivationKind::Gelu] {
        let analytic = r::activation_backward(kind, &x, &dy);
        let numeric = numeric_grad(&x, |x| dot(&dy, &r::activation_forward(kind, x)));
        check_fd(&format!("{kind:?}"), &analytic, &numeric);
    }
}

#[test]
fn reference_cross_entropy_matches_finite_differences() {
    let (rows, classes) = (4, 6);
    let mut rng = Rng::new(4);
    let logits = rng.normals(rows * classes, 2.0);
    let targets: Vec<u32> = (0..rows).map(|i| (i * 5 % classes) as u32).collect();
    let analytic = r::cross_entropy_backward(&logits, &targets, rows, classes);
    let numeric = numeric_grad(&logits, |l| r::cross_entropy(l, &targets, rows, classes).mean);
    check_fd("cross-entropy dlogits", &analytic, &numeric);
}

#[test]
fn reference_embedding_matches_finite_differences() {
    let (vocab, dim) = (5, 3);
    let ids = [3u32, 0, 3, 1, 3, 0];
    let mut rng = Rng::new(5);
    let table = rng.normals(vocab * dim, 1.0);
    let dout = rng.normals(ids.len() * dim, 1.0);
    let analytic = r::embedding_backward(&ids, &dout, vocab, dim);
    let numeric = numeric_grad(&table, |t| dot(&dout, &r::embedding_forward(&ids, t, dim)));
    check_fd("embedding dtable", &analytic, &numeric);
}

#[test]
fn reference_attention_matches_finite_differences() {
    let s = AttentionShape {
        batch: 2,
        seq: 4,
        heads: 2,
        channels: 6,
    };
    let mut rng = Rng::new(6);
    let qkv = rng.normals(s.batch * s.seq * 3 * s.channels, 1.0);
    let dout = rng.normals(s.batch * s.seq * s.channels, 1.0);
    let analytic = r::attention_backward(&qkv, &dout, s);
    let numeric = numeric_grad(&qkv, |q| dot(&dout, &r::attention_forward(q, s)));
    check_fd("attention dqkv", &analytic, &numeric);
}

// ---------------------------------------------------------------- linear

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

// ---------------------------------------------------------------- norms

#[allow(clippy::too_many_arguments)]
fn norm_case(g: &Gpu, kind: NormKind, rows: usize, dim: usize, gain: bool, offset: bool, seed: u64) {
    let name = format!("{kind:?} norm {rows}x{dim} gain {gain} offset {offset}");
    let eps32 = 1e-5f32;
    let eps = eps32 as f64;
    let mut rng = Rng::new(seed);
    // Rows with a mean of 2 and spread 1: the mean's cancellation is part of the test.
    let x: Vec<f64> = rng
        .normals(rows * dim, 1.0)
        .iter()
        .map(|v| (v + 2.0) as f32 as f64)
        .collect();
    let gv: Vec<f64> = rng.normals(dim, 0.3).iter().map(|v| (v + 1.0) as f32 as f64).collect();
    let ov = rng.normals(dim, 0.3);
    let dy = rng.normals(rows * dim, 1.0);
    let arena = Arena::new(
        g,
        &[
            TensorSpec::new("g", &[dim]).no_decay(),
            TensorSpec::new("o", &[dim]).no_decay(),
        ],
        None,
    )
    .unwrap();
    arena.write(g, "g", &f32s(&gv)).unwrap();
    arena.write(g, "o", &f32s(&ov)).unwrap();
    let (xb, yb, dyb, dxb) = (
        upload(g, &x),
        zeros(g, rows * dim),
        upload(g, &dy),
        zeros(g, rows * dim),
    );
    let layer = Norm::new(
        g,
        &NormDesc {
            kind,
            rows,
            dim,
            eps: eps32,
            x: View::new(&xb, rows * dim),
            y: View::new(&yb, rows * dim),
            dy: View::new(&dyb, rows * dim),
            dx: Some(View::new(&dxb, rows * dim)),
            gain: gain.then(|| Param::from_arena(&arena, "g").unwrap()),
            offset: offset.then(|| Param::from_arena(&arena, "o").unwrap()),
        },
    )
    .unwrap();
    run(g, |p| {
        layer.record_forward(p);
        layer.record_backward(p);
    });
    let gain_opt = gain.then_some(&gv[..]);
    let y_ref = r::norm_forward(kind, &x, gain_opt, offset.then_some(&ov[..]), rows, dim, eps);
    let grads = r::norm_backward(kind, &x, gain_opt, &dy, rows, dim, eps);
    let (means, rstds) = r::norm_stats(kind, &x, rows, dim, eps);

    // Per row (C = dim, u = 2⁻²⁴): the computed mean is off by δμ ≤ (C+1)·u·mean|x|
    // (0 for RMSNorm); the variance's relative error is ≤ (C+2)·u, so rstd's is
    // ≤ (C/2 + 3)·u; x̂ = (x − μ)·rstd is then off by ≤ (C+6)·u·|x̂| + rstd·δμ, and
    // y = x̂ g + o adds 2u(|x̂ g| + |o|). Bounds below take twice these.
    // dx = rstd (dn − mean(dn) − x̂ mean(dn x̂)), dn = g dy: each mean is a sum of C
    // terms, x̂ carries the error above. dgain, doffset: sums over the R rows.
    let gi = |i: usize| if gain { gv[i] } else { 1.0 };
    let oi = |i: usize| if offset { ov[i] } else { 0.0 };
    let c = dim as f64;
    let (mut y_bound, mut dx_bound) = (vec![0.0; rows * dim], vec![0.0; rows * dim]);
    let (mut dg_bound, mut do_bound) = (vec![0.0; dim], vec![0.0; dim]);
    for row in 0..rows {
        let at = |i: usize| row * dim + i;
        let rs = rstds[row];
        let dmu = match kind {
            NormKind::Layer => (c + 1.0) * U32 * (0..dim).map(|i| x[at(i)].abs()).sum::<f64>() / c,
            NormKind::Rms => 0.0,
        };
        let xhat: Vec<f64> = (0..dim).map(|i| (x[at(i)] - means[row]) * rs).collect();
        let dn: Vec<f64> = (0..dim).map(|i| dy[at(i)] * gi(i)).collect();
        let mean_abs_dn = dn.iter().map(|v| v.abs()).sum::<f64>() / c;
        let mean_abs_dn_xhat = dn.iter().zip(&xhat).map(|(a, b)| (a * b).abs()).sum::<f64>() / c;
        let b = dn.iter().zip(&xhat).map(|(a, b)| a * b).sum::<f64>() / c;
        for i in 0..dim {
            let xhat_err = (c + 6.0) * U32 * xhat[i].abs() + rs * dmu;
            y_bound[at(i)] = 2.0 * (gi(i).abs() * xhat_err + 2.0 * U32 * ((xhat[i] * gi(i)).abs() + oi(i).abs()));
            dx_bound[at(i)] = 2.0
                * ((c + 8.0) * U32 * rs * (dn[i].abs() + mean_abs_dn + xhat[i].abs() * (mean_abs_dn_xhat + b.abs()))
                    + rs * rs * dmu * (b.abs() + mean_abs_dn)
                    + (c + 8.0) * U32 * grads.dx[at(i)].abs());
            dg_bound[i] += 2.0 * dy[at(i)].abs() * ((rows as f64 + c + 8.0) * U32 * xhat[i].abs() + rs * dmu);
            do_bound[i] += 2.0 * (rows + 1) as f64 * U32 * dy[at(i)].abs();
        }
    }
    check(&format!("{name} y"), &read(g, &yb, rows * dim), &y_ref, &y_bound);
    check(&format!("{name} dx"), &read(g, &dxb, rows * dim), &grads.dx, &dx_bound);
    if gain {
        check(
            &format!("{name} dgain"),
            &read_grad(g, &arena, "g"),
            &grads.dgain,
            &dg_bound,
        );
    }
    if offset {
        check(
            &format!("{name} doffset"),
            &read_grad(g, &arena, "o"),
            &grads.doffset,
            &do_bound,
        );
    }
}

#[test]
fn norms_match_reference_on_awkward_sizes() {
    let g = gpu();
    let mut seed = 100;
    for kind in [NormKind::Layer, NormKind::Rms] {
        // Rows up to norm::SHORT_ROWS long take one invocation each, longer ones a workgroup.
        let short = norm::SHORT_ROWS;
        for (rows, dim) in [
            (3, 5),
            (3, 17),
            (5, 64),
            (3, 130),
            (4, 300),
            (1, 1),
            (512, 64),
            (3, short),
            (3, short + 1),
        ] {
            for (gain, offset) in [(true, true), (false, false), (true, false)] {
                seed += 1;
                norm_case(&g, kind, rows, dim, gain, offset, seed);
            }
        }
    }
}

// ---------------------------------------------------------------- activations

#[test]
fn activations_match_reference() {
    let g = gpu();
    for (seed, len) in [(201u64, 5usize), (202, 17), (203, 130), (204, 70_001)] {
        let mut rng = Rng::new(seed);
        let x = rng.normals(len, 2.0);
        let dy = rng.normals(len, 1.0);
        for kind in [ActivationKind::Relu, ActivationKind::Gelu] {
            let name = format!("{kind:?} len {len}");
            let (xb, yb, dyb, dxb) = (upload(&g, &x), zeros(&g, len), upload(&g, &dy), zeros(&g, len));
            let layer = Activation::new(
                &g,
                &ActivationDesc {
                    kind,
                    len,
                    x: View::new(&xb, len),
                    y: View::new(&yb, len),
                    dy: View::new(&dyb, len),
                    dx: View::new(&dxb, len),
                },
            )
            .unwrap();
            run(&g, |p| {
                layer.record_forward(p);
                layer.record_backward(p);
            });
            let y_ref = r::activation_forward(kind, &x);
            let dx_ref = r::activation_backward(kind, &x, &dy);
            let (y_bound, dx_bound): (Vec<f64>, Vec<f64>) = match kind {
                // ReLU is exact: a max and a select.
                ActivationKind::Relu => (vec![0.0; len], vec![0.0; len]),
                // GELU: tanh(v) = (1 − t)/(1 + t), t = exp(−2|v|), with exp good to
                // (3 + 2|·|) ulp (the WGSL/Vulkan bound) is within ~12u absolute; the
                // cubic adds 4u relative to v. So y = x/2 (1 + tanh) is within
                // (8|x| + 3|y|)u and dx within (8 + 8|x| |du|)u |dy| + 3u|dx|; we allow twice.
                ActivationKind::Gelu => x
                    .iter()
                    .zip(&y_ref)
                    .zip(dy.iter().zip(&dx_ref))
                    .map(|((&xv, &yv), (&g, &d))| {
                        let du = 0.8 * (1.0 + 0.135 * xv * xv);
                        (
                            2.0 * U32 * (8.0 * xv.abs() + 3.0 * yv.abs()),
                            2.0 * U32 * ((8.0 + 8.0 * xv.abs() * du) * g.abs() + 3.0 * d.abs()),
                        )
                    })
                    .unzip(),
            };
            check(&format!("{name} y"), &read(&g, &yb, len), &y_ref, &y_bound);
            check(&format!("{name} dx"), &read(&g, &dxb, len), &dx_ref, &dx_bound);
        }
    }
}

// ---------------------------------------------------------------- cross-entropy

fn cross_entropy_case(g: &Gpu, rows: usize, classes: usize, seed: u64) {
    let name = format!("cross-entropy {rows}x{classes}");
    let mut rng = Rng::new(seed);
    let logits = rng.normals(rows * classes, 3.0);
    let targets: Vec<u32> = (0..rows).map(|_| (rng.next_u64() % classes as u64) as u32).collect();
    let (lb, tb, db) = (upload(g, &logits), upload_u32(g, &targets), zeros(g, rows * classes));
    let layer = CrossEntropy::new(
        g,
        &CrossEntropyDesc {
            rows,
            classes,
            logits: View::new(&lb, rows * classes),
            targets: View::new(&tb, rows),
            dlogits: View::new(&db, rows * classes),
        },
    )
    .unwrap();
    run(g, |p| {
        layer.record_forward(p);
        layer.record_backward(p);
    });
    let want = r::cross_entropy(&logits, &targets, rows, classes);
    let dl_ref = r::cross_entropy_backward(&logits, &targets, rows, classes);

    // lse = m + log Σ exp(l − m): each exp good to (3 + 2|l − m|)u relative (the
    // WGSL bound), the sum adds V·u, log is good to 2⁻²¹ = 8u absolute near 1:
    // lse is within e = (V + 16 + 2 max|l − m| + |lse|)u, a loss within e + u|loss|.
    // softmax p = exp(l − lse) is then within p((3 + 3|l − lse|)u + e), and
    // dlogits = (p − onehot)/B within (that + 2u|p − onehot|)/B. We allow twice.
    let v = classes as f64;
    let (mut loss_bound, mut dl_bound) = (vec![0.0; rows], vec![0.0; rows * classes]);
    for row in 0..rows {
        let l = &logits[row * classes..(row + 1) * classes];
        let m = l.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let lse = want.losses[row] + l[targets[row] as usize];
        let spread = l.iter().map(|x| (x - m).abs()).fold(0.0, f64::max);
        let e = (v + 16.0 + 2.0 * spread + lse.abs()) * U32;
        loss_bound[row] = 2.0 * (e + U32 * want.losses[row].abs());
        for (j, &lj) in l.iter().enumerate() {
            let p = (lj - lse).exp();
            let dp = p * ((3.0 + 3.0 * (lj - lse).abs()) * U32 + e);
            let i = row * classes + j;
            dl_bound[i] = 2.0 * (dp + 2.0 * U32 * (dl_ref[i] * rows as f64).abs()) / rows as f64;
        }
    }
    check(
        &format!("{name} losses"),
        &read(g, layer.losses(), rows),
        &want.losses,
        &loss_bound,
    );
    check(
        &format!("{name} dlogits"),
        &read(g, &db, rows * classes),
        &dl_ref,
        &dl_bound,
    );
    // The mean: a sum of B losses (B·u·Σ|loss|) of bounded errors, divided by B.
    let stats = layer.read_stats(g).unwrap();
    let mean_bound = 2.0
        * ((rows + 1) as f64 * U32 * abs(&want.losses).iter().sum::<f64>() + loss_bound.iter().sum::<f64>())
        / rows as f64;
    check(
        &format!("{name} mean"),
        &[stats.mean as f64],
        &[want.mean],
        &[mean_bound],
    );
    assert_eq!(stats.correct, want.correct, "{name}: hits");
    assert_eq!(stats.rows as usize, rows);
}

#[test]
fn cross_entropy_matches_reference_on_awkward_sizes() {
    let g = gpu();
    for (seed, rows, classes) in [
        (301, 3, 5),
        (302, 17, 17),
        (303, 3, 130),
        (304, 5, 300),
        (305, 300, 3),
        (306, 1, 1),
        // The GPT's shape, and the boundary between the variants (one invocation
        // per row up to loss::SHORT_ROWS classes, a workgroup beyond).
        (307, 512, 85),
        (308, 4, loss::SHORT_ROWS),
        (309, 4, loss::SHORT_ROWS + 1),
    ] {
        cross_entropy_case(&g, rows, classes, seed);
    }
}

#[test]
fn cross_entropy_counts_hits_and_flags_bad_targets() {
    let g = gpu();
    let (rows, classes) = (4, 3);
    // Row 0: tie between classes 1 and 2, lowest index (1) wins, target 1: hit.
    // Row 1: argmax 0, target 0: hit. Row 2: argmax 2, target 1: miss. Row 3: target 7 (out of range).
    let logits = [0.0, 2.0, 2.0, 5.0, 1.0, 1.0, 0.0, 1.0, 3.0, 1.0, 2.0, 3.0];
    let targets = [1u32, 0, 1, 7];
    let (lb, tb, db) = (upload(&g, &logits), upload_u32(&g, &targets), zeros(&g, rows * classes));
    let layer = CrossEntropy::new(
        &g,
        &CrossEntropyDesc {
            rows,
            classes,
            logits: View::new(&lb, rows * classes),
            targets: View::new(&tb, rows),
            dlogits: View::new(&db, rows * classes),
        },
    )
    .unwrap();
    run(&g, |p| layer.record_forward(p));
    let stats = layer.read_stats(&g).unwrap();
    assert_eq!(stats.correct, 2);
    assert!(
        stats.mean.is_nan(),
        "a bad target must poison the mean, got {}",
        stats.mean
    );
    let losses = read(&g, layer.losses(), rows);
    assert!(
        losses[..3].iter().all(|l| l.is_finite()) && losses[3].is_nan(),
        "{losses:?}"
    );
}

/// The mean loss reaches sf_plus's loss buffer with one copy.
#[test]
fn cross_entropy_mean_fills_the_optimizer_loss_buffer() {
    let g = gpu();
    let (rows, classes) = (5, 4);
    let mut rng = Rng::new(7);
    let logits = rng.normals(rows * classes, 1.0);
    let targets = [0u32, 1, 2, 3, 0];
    let (lb, tb, db) = (upload(&g, &logits), upload_u32(&g, &targets), zeros(&g, rows * classes));
    let layer = CrossEntropy::new(
        &g,
        &CrossEntropyDesc {
            rows,
            classes,
            logits: View::new(&lb, rows * classes),
            targets: View::new(&tb, rows),
            dlogits: View::new(&db, rows * classes),
        },
    )
    .unwrap();
    let arena = Arena::new(&g, &[TensorSpec::new("w", &[4])], None).unwrap();
    let opt = GpuOptimizer::new(&g, &arena, &OptimConfig::new(Kind::SfPlus), None).unwrap();
    let loss_buffer = opt.loss_buffer().expect("sf_plus has a loss buffer");
    g.submit(|enc| {
        layer.record_forward(&mut enc.begin_compute_pass(&Default::default()));
        layer.record_copy_mean(enc, loss_buffer, 0);
    });
    g.wait().unwrap();
    let copied = g.read::<f32>(loss_buffer, 0, 1).unwrap()[0];
    let stats = layer.read_stats(&g).unwrap();
    assert_eq!(copied.to_bits(), stats.mean.to_bits());
    let want = r::cross_entropy(&logits, &targets, rows, classes).mean;
    assert!((copied as f64 - want).abs() < 1e-5, "{copied} vs {want}");
}

// ---------------------------------------------------------------- embedding

fn embedding_case(g: &Gpu, ids: &[u32], vocab: usize, dim: usize, seed: u64) {
    let tokens = ids.len();
    let name = format!("embedding {tokens} tokens, {vocab}x{dim}");
    let mut rng = Rng::new(seed);
    let table = rng.normals(vocab * dim, 1.0);
    let dout = rng.normals(tokens * dim, 1.0);
    let arena = Arena::new(
        g,
        &[TensorSpec::new("first", &[5]), TensorSpec::new("table", &[vocab, dim])],
        None,
    )
    .unwrap();
    arena.write(g, "table", &f32s(&table)).unwrap();
    let (ib, ob, db) = (upload_u32(g, ids), zeros(g, tokens * dim), upload(g, &dout));
    let layer = Embedding::new(
        g,
        &EmbeddingDesc {
            tokens,
            vocab,
            dim,
            ids: View::new(&ib, tokens),
            table: Param::from_arena(&arena, "table").unwrap(),
            out: View::new(&ob, tokens * dim),
            dout: View::new(&db, tokens * dim),
        },
    )
    .unwrap();
    // Garbage in the gradient first: the backward pass must overwrite every row.
    arena.write_grad(g, "table", &vec![9.0; vocab * dim]).unwrap();
    run(g, |p| {
        layer.record_forward(p);
        layer.record_backward(p);
    });
    // The gather is exact; the gradient of row v is a sum of n_v terms (n_v tokens
    // with id v), within (n_v + 1)·u·Σ|dout|.
    let out_ref = r::embedding_forward(ids, &table, dim);
    check(
        &format!("{name} out"),
        &read(g, &ob, tokens * dim),
        &out_ref,
        &vec![0.0; tokens * dim],
    );
    let grad_ref = r::embedding_backward(ids, &dout, vocab, dim);
    let abs_sums = r::embedding_backward(ids, &abs(&dout), vocab, dim);
    let bound: Vec<f64> = (0..vocab * dim)
        .map(|i| {
            let count = ids.iter().filter(|&&id| id as usize == i / dim).count();
            (count + 1) as f64 * U32 * abs_sums[i]
        })
        .collect();
    check(
        &format!("{name} dtable"),
        &read_grad(g, &arena, "table"),
        &grad_ref,
        &bound,
    );
}

#[test]
fn embedding_matches_reference_on_awkward_sizes() {
    let g = gpu();
    let mut rng = Rng::new(400);
    for (seed, tokens, vocab, dim) in [
        (401, 17, 5, 5),
        (402, 3, 130, 17),
        (403, 130, 64, 64),
        (404, 300, 7, 3),
        (405, 1, 1, 1),
    ] {
        let ids: Vec<u32> = (0..tokens).map(|_| (rng.next_u64() % vocab as u64) as u32).collect();
        embedding_case(&g, &ids, vocab, dim, seed);
    }
}

#[test]
fn embedding_poisons_rows_of_bad_ids_and_gives_them_no_gradient() {
    let g = gpu();
    let (vocab, dim) = (3, 2);
    let ids = [2u32, 9, 2];
    let table = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    let dout = [1.0, 10.0, 100.0, 1000.0, 0.5, 0.25];
    let arena = Arena::new(&g, &[TensorSpec::new("table", &[vocab, dim])], None).unwrap();
    arena.write(&g, "table", &f32s(&table)).unwrap();
    let (ib, ob, db) = (upload_u32(&g, &ids), zeros(&g, 6), upload(&g, &dout));
    let layer = Embedding::new(
        &g,
        &EmbeddingDesc {
            tokens: 3,
            vocab,
            dim,
            ids: View::new(&ib, 3),
            table: Param::from_arena(&arena, "table").unwrap(),
            out: View::new(&ob, 6),
            dout: View::new(&db, 6),
        },
    )
    .unwrap();
    run(&g, |p| {
        layer.record_forward(p);
        layer.record_backward(p);
    });
    let out = read(&g, &ob, 6);
    assert_eq!([out[0], out[1], out[4], out[5]], [5.0, 6.0, 5.0, 6.0]);
    assert!(out[2].is_nan() && out[3].is_nan(), "{out:?}");
    assert_eq!(read_grad(&g, &arena, "table"), [0.0, 0.0, 0.0, 0.0, 1.5, 10.25]);
}

// ---------------------------------------------------------------- attention

/// Per-element f32 error bounds of attention's out and dqkv (u = 2⁻²⁴), following
/// the kernels' sums. With es = scale·(D+2)·u·Σ_d|q||k| the error of a score, a
/// probability's relative error is ρ ≤ 2·max es + (T + 6 + 3|s − max s|)·u (the
/// softmax shifts every log-probability by the scores' errors and exp adds its
/// own). out = Σ_j p v is then within Σ_j p|v|(ρ + (T+1)u). Backward: dp = Σ_d dout·v
/// within (D+1)u Σ|dout||v|; w = Σ p dp within Σ p(|dp|(ρ + (T+1)u) + e_dp);
/// dS = p(dp − w) within p(e_dp + e_w) + |dS|(ρ + 2u); dq, dk, dv are sums over
/// ≤ T terms of those, within Σ(e_term + (T+1)u|term|). We allow twice.
fn attention_bounds(qkv: &[f64], dout: &[f64], s: AttentionShape) -> (Vec<f64>, Vec<f64>) {
    let (t_len, dh, c) = (s.seq, s.channels / s.heads, s.channels);
    let scale = 1.0 / (dh as f64).sqrt();
    let u = U32;
    let tf = t_len as f64;
    let qi = |b: usize, t: usize, part: usize, h: usize, d: usize| (b * t_len + t) * 3 * c + part * c + h * dh + d;
    let oi = |b: usize, t: usize, h: usize, d: usize| (b * t_len + t) * c + h * dh + d;
    let p = r::attention_probs(qkv, s);
    let mut out_bound = vec![0.0; dout.len()];
    let mut dqkv_bound = vec![0.0; qkv.len()];
    for b in 0..s.batch {
        for h in 0..s.heads {
            for t in 0..t_len {
                let row = ((b * s.heads + h) * t_len + t) * t_len;
                let score = |j: usize| {
                    scale
                        * (0..dh)
                            .map(|d| qkv[qi(b, t, 0, h, d)] * qkv[qi(b, j, 1, h, d)])
                            .sum::<f64>()
                };
                let es: Vec<f64> = (0..=t)
                    .map(|j| {
                        scale
                            * (dh + 2) as f64
                            * u
                            * (0..dh)
                                .map(|d| (qkv[qi(b, t, 0, h, d)] * qkv[qi(b, j, 1, h, d)]).abs())
                                .sum::<f64>()
                    })
                    .collect();
                let max_es = es.iter().cloned().fold(0.0, f64::max);
                let scores: Vec<f64> = (0..=t).map(score).collect();
                let smax = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let rho: Vec<f64> = (0..=t)
                    .map(|j| 2.0 * max_es + (tf + 6.0 + 3.0 * (scores[j] - smax).abs()) * u)
                    .collect();
                for d in 0..dh {
                    out_bound[oi(b, t, h, d)] = 2.0
                        * (0..=t)
                            .map(|j| p[row + j] * qkv[qi(b, j, 2, h, d)].abs() * (rho[j] + (tf + 1.0) * u))
                            .sum::<f64>();
                }
                let dp: Vec<f64> = (0..=t)
                    .map(|j| (0..dh).map(|d| dout[oi(b, t, h, d)] * qkv[qi(b, j, 2, h, d)]).sum())
                    .collect();
                let e_dp: Vec<f64> = (0..=t)
                    .map(|j| {
                        (dh + 1) as f64
                            * u
                            * (0..dh)
                                .map(|d| (dout[oi(b, t, h, d)] * qkv[qi(b, j, 2, h, d)]).abs())
                                .sum::<f64>()
                    })
                    .collect();
                let w: f64 = (0..=t).map(|j| p[row + j] * dp[j]).sum();
                let e_w: f64 = (0..=t)
                    .map(|j| p[row + j] * (dp[j].abs() * (rho[j] + (tf + 1.0) * u) + e_dp[j]))
                    .sum();
                for j in 0..=t {
                    let ds = p[row + j] * (dp[j] - w);
                    let e_ds = p[row + j] * (e_dp[j] + e_w) + ds.abs() * (rho[j] + 2.0 * u);
                    let term_err = |other: f64| e_ds * other.abs() + (tf + 1.0) * u * (ds * other).abs();
                    for d in 0..dh {
                        dqkv_bound[qi(b, t, 0, h, d)] += 2.0 * scale * term_err(qkv[qi(b, j, 1, h, d)]);
                        dqkv_bound[qi(b, j, 1, h, d)] += 2.0 * scale * term_err(qkv[qi(b, t, 0, h, d)]);
                        let pv = p[row + j] * dout[oi(b, t, h, d)].abs();
                        dqkv_bound[qi(b, j, 2, h, d)] += 2.0 * pv * (rho[j] + (tf + 1.0) * u);
                    }
                }
            }
        }
    }
    (out_bound, dqkv_bound)
}

fn attention_case(g: &Gpu, s: AttentionShape, seed: u64) {
    let name = format!("attention B{} T{} H{} C{}", s.batch, s.seq, s.heads, s.channels);
    let (n_qkv, n_out) = (s.batch * s.seq * 3 * s.channels, s.batch * s.seq * s.channels);
    let mut rng = Rng::new(seed);
    let qkv = rng.normals(n_qkv, 1.0);
    let dout = rng.normals(n_out, 1.0);
    let (qb, ob, db, dqb) = (upload(g, &qkv), zeros(g, n_out), upload(g, &dout), zeros(g, n_qkv));
    let layer = Attention::new(
        g,
        &AttentionDesc {
            batch: s.batch,
            seq: s.seq,
            heads: s.heads,
            channels: s.channels,
            qkv: View::new(&qb, n_qkv),
            out: View::new(&ob, n_out),
            dout: View::new(&db, n_out),
            dqkv: View::new(&dqb, n_qkv),
        },
    )
    .unwrap();
    run(g, |p| {
        layer.record_forward(p);
        layer.record_backward(p);
    });
    let (out_bound, dqkv_bound) = attention_bounds(&qkv, &dout, s);
    check(
        &format!("{name} out"),
        &read(g, &ob, n_out),
        &r::attention_forward(&qkv, s),
        &out_bound,
    );
    check(
        &format!("{name} dqkv"),
        &read(g, &dqb, n_qkv),
        &r::attention_backward(&qkv, &dout, s),
        &dqkv_bound,
    );
}

#[test]
fn attention_matches_reference_on_awkward_sizes() {
    let g = gpu();
    for (seed, batch, seq, heads, channels) in [
        (501, 3, 5, 1, 5),
        (502, 2, 17, 2, 10),
        (503, 1, 130, 4, 64),
        (504, 1, 300, 1, 8),
        (505, 1, 1, 1, 1),
        // The GPT's heads (T 64, D 16), and the boundary between the variants
        // (register blocks up to attention::SHORT_ROWS positions, a workgroup per row beyond).
        (506, 2, 64, 4, 64),
        (507, 1, attention::SHORT_ROWS, 2, 6),
        (508, 1, attention::SHORT_ROWS + 1, 2, 6),
    ] {
        let s = AttentionShape {
            batch,
            seq,
            heads,
            channels,
        };
        attention_case(&g, s, seed);
    }
}

// ---------------------------------------------------------------- determinism and errors

/// Every layer's backward pass gives bit-identical gradients run after run, in
/// both variants of the layers that have two.
#[test]
fn gradients_are_bit_identical_run_to_run() {
    let g = gpu();
    // Short rows and small products: the barrier-free kernels.
    bit_identical_case(&g, 37, 70, 5);
    // Long rows and large products: the kernels with workgroup reductions and tiles.
    let (rows, dim) = (150, 260);
    assert!(rows > attention::SHORT_ROWS && dim > norm::SHORT_ROWS);
    assert!(rows * dim * 3 * dim > linear::SMALL_PRODUCT);
    bit_identical_case(&g, rows, dim, 5);
}

/// Embedding, LayerNorm, Linear (dim -> 3 dim) and attention (one sequence of
/// `rows` positions) chained, forward and backward, four times over.
fn bit_identical_case(g: &Gpu, rows: usize, dim: usize, heads: usize) {
    let vocab = 11;
    let mut rng = Rng::new(600);
    let ids: Vec<u32> = (0..rows).map(|_| (rng.next_u64() % vocab as u64) as u32).collect();
    let arena = Arena::new(
        g,
        &[
            TensorSpec::new("table", &[vocab, dim]),
            TensorSpec::new("w", &[dim, 3 * dim]),
            TensorSpec::new("gain", &[dim]).no_decay(),
        ],
        None,
    )
    .unwrap();
    arena.write(g, "table", &f32s(&rng.normals(vocab * dim, 1.0))).unwrap();
    arena.write(g, "w", &f32s(&rng.normals(dim * 3 * dim, 0.3))).unwrap();
    arena.write(g, "gain", &vec![1.0; dim]).unwrap();
    let mut grad_of = |n: usize| upload(g, &rng.normals(n, 1.0));
    let (d_emb, d_norm, d_qkv, d_att) = (
        grad_of(rows * dim),
        grad_of(rows * dim),
        grad_of(rows * 3 * dim),
        grad_of(rows * dim),
    );
    let (emb, normed, qkv, att) = (
        zeros(g, rows * dim),
        zeros(g, rows * dim),
        zeros(g, rows * 3 * dim),
        zeros(g, rows * dim),
    );
    let (dx_norm, dx_lin, dx_att) = (zeros(g, rows * dim), zeros(g, rows * dim), zeros(g, rows * 3 * dim));
    let ib = upload_u32(g, &ids);
    let v = View::new;
    let (n1, n3) = (rows * dim, rows * 3 * dim);
    let layers_embedding = Embedding::new(
        g,
        &EmbeddingDesc {
            tokens: rows,
            vocab,
            dim,
            ids: v(&ib, rows),
            table: Param::from_arena(&arena, "table").unwrap(),
            out: v(&emb, n1),
            dout: v(&d_emb, n1),
        },
    )
    .unwrap();
    let norm = Norm::new(
        g,
        &NormDesc {
            kind: NormKind::Layer,
            rows,
            dim,
            eps: 1e-5,
            x: v(&emb, n1),
            y: v(&normed, n1),
            dy: v(&d_norm, n1),
            dx: Some(v(&dx_norm, n1)),
            gain: Some(Param::from_arena(&arena, "gain").unwrap()),
            offset: None,
        },
    )
    .unwrap();
    let linear = Linear::new(
        g,
        &LinearDesc {
            rows,
            inputs: dim,
            outputs: 3 * dim,
            x: v(&normed, n1),
            y: v(&qkv, n3),
            dy: v(&d_qkv, n3),
            dx: Some(v(&dx_lin, n1)),
            weight: Param::from_arena(&arena, "w").unwrap(),
            bias: None,
        },
    )
    .unwrap();
    let attention = Attention::new(
        g,
        &AttentionDesc {
            batch: 1,
            seq: rows,
            heads,
            channels: dim,
            qkv: v(&qkv, n3),
            out: v(&att, n1),
            dout: v(&d_att, n1),
            dqkv: v(&dx_att, n3),
        },
    )
    .unwrap();
    let step = || {
        run(g, |p| {
            layers_embedding.record_forward(p);
            norm.record_forward(p);
            linear.record_forward(p);
            attention.record_forward(p);
            attention.record_backward(p);
            linear.record_backward(p);
            norm.record_backward(p);
            layers_embedding.record_backward(p);
        });
        let mut all: Vec<u32> = g.read::<u32>(&arena.grads, 0, arena.layout.total).unwrap();
        for (b, n) in [(&dx_norm, n1), (&dx_lin, n1), (&dx_att, n3), (&att, n1)] {
            all.extend(g.read::<u32>(b, 0, n).unwrap());
        }
        all
    };
    let first = step();
    for _ in 0..3 {
        assert!(step() == first, "gradients changed between identical runs");
    }
}

#[test]
fn bad_shapes_and_aliasing_are_named_errors() {
    let g = gpu();
    let a = zeros(&g, 64);
    let b = zeros(&g, 64);
    let arena = Arena::new(&g, &[TensorSpec::new("w", &[4, 3])], None).unwrap();
    let w = Param::from_arena(&arena, "w").unwrap();
    let dy = View::new(&b, 6);
    let desc = |x, y| LinearDesc {
        rows: 2,
        inputs: 4,
        outputs: 3,
        x,
        y,
        dy,
        dx: None,
        weight: w,
        bias: None,
    };
    let err = |r: Result<Linear, sfnap::Error>| r.err().expect("must fail").to_string();
    // x holds 7 elements where [2, 4] needs 8.
    let e = err(Linear::new(&g, &desc(View::new(&a, 7), View::new(&b, 6))));
    assert!(e.contains("linear.x") && e.contains("[2, 4]"), "{e}");
    // A view past the end of its buffer.
    let e = err(Linear::new(&g, &desc(View::at(&a, 60, 8), View::new(&b, 6))));
    assert!(e.contains("linear.x") && e.contains("outside"), "{e}");
    // y in the buffer the same kernel reads x from.
    let e = err(Linear::new(&g, &desc(View::new(&a, 8), View::at(&a, 0, 6))));
    assert!(e.contains("linear.y") && e.contains("linear.x"), "{e}");
    // A zero dimension.
    let mut d = desc(View::new(&a, 8), View::new(&b, 6));
    d.rows = 0;
    let e = err(Linear::new(&g, &d));
    assert!(e.contains("linear.rows"), "{e}");
    // Heads that do not divide the width.
    let e = Attention::new(
        &g,
        &AttentionDesc {
            batch: 1,
            seq: 2,
            heads: 3,
            channels: 4,
            qkv: View::new(&a, 24),
            out: View::new(&b, 8),
            dout: View::new(&b, 8),
            dqkv: View::new(&a, 24),
        },
    )
    .err()
    .expect("must fail")
    .to_string();
    assert!(e.contains("attention.heads"), "{e}");
    // A bad eps.
    let e = Norm::new(
        &g,
        &NormDesc {
            kind: NormKind::Rms,
            rows: 2,
            dim: 4,
            eps: 0.0,
            x: View::new(&a, 8),
            y: View::new(&b, 8),
            dy: View::new(&b, 8),
            dx: None,
            gain: None,
            offset: None,
        },
    )
    .err()
    .expect("must fail")
    .to_string();
    assert!(e.contains("rms_norm.eps"), "{e}");
}
