//! `nn::Attention` (causal, multi-head) against its f64 twin
//! (`nn::reference::attention_*`), on short sequences (register blocks) and long
//! ones (a workgroup per row); and the twin against finite differences. How the
//! bounds are derived: `tests/common/layers.rs`.

mod common;

use common::layers::{check, check_fd, dot, numeric_grad, read, run, upload, zeros};
use common::{gpu, Rng, U32};
use sfnap::gpu::Gpu;
use sfnap::nn::reference::{self as r, AttentionShape};
use sfnap::nn::*;

// ------------------------------------------------- the reference against finite differences

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

// ------------------------------------------------------ on the GPU against the reference

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
