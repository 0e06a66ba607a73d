//! `nn::Norm` (LayerNorm and RMSNorm) against its f64 twin
//! (`nn::reference::norm_*`), on short rows (one invocation each) and long ones (a
//! workgroup each); and the twin against finite differences. How the bounds are
//! derived: `tests/common/layers.rs`.

mod common;

use common::layers::{check, check_fd, dot, f32s, numeric_grad, read, read_grad, run, upload, zeros};
use common::{gpu, Rng, U32};
use sfnap::arena::{Arena, TensorSpec};
use sfnap::gpu::Gpu;
use sfnap::nn::reference as r;
use sfnap::nn::*;

// ------------------------------------------------- the reference against finite differences

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

// ------------------------------------------------------ on the GPU against the reference

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
