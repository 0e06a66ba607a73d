//! `nn::Activation` (ReLU and GELU) against its f64 twin
//! (`nn::reference::activation_*`), and the twin against finite differences. How
//! the bounds are derived: `tests/common/layers.rs`.

mod common;

use common::layers::{check, check_fd, dot, numeric_grad, read, run, upload, zeros};
use common::{gpu, Rng, U32};
use sfnap::nn::reference as r;
use sfnap::nn::*;

// ------------------------------------------------- the reference against finite differences

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

// ------------------------------------------------------ on the GPU against the reference

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
