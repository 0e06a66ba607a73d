//! Shared by the layer tests (`tests/layer_*.rs`, `tests/layers.rs`): the layers
//! (`sfnap::nn`) against their f64 twins (`nn::reference`), and the twins against
//! central finite differences.
//!
//! GPU-vs-reference bounds are derived per element from f32 rounding: a sum of
//! n terms computed in f32 is off by at most about n·u·Σ|terms| (u = 2⁻²⁴), the
//! standard worst-case bound; each test builds the Σ|terms| it needs (often by
//! running the reference on absolute values) and states its bound. Each check
//! prints its worst error as a fraction of the bound (`--nocapture` to see).

use sfnap::arena::Arena;
use sfnap::gpu::Gpu;

// ---------------------------------------------------------------- helpers

/// `v` rounded to f32.
pub fn f32s(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

/// |v| element-wise.
pub fn abs(v: &[f64]) -> Vec<f64> {
    v.iter().map(|x| x.abs()).collect()
}

/// A storage buffer holding `v` as f32.
pub fn upload(g: &Gpu, v: &[f64]) -> wgpu::Buffer {
    g.storage_init("test input", &f32s(v))
}

/// A storage buffer holding `v` (token ids, targets).
pub fn upload_u32(g: &Gpu, v: &[u32]) -> wgpu::Buffer {
    g.storage_init("test ids", v)
}

/// A storage buffer of `n` f32 zeros.
pub fn zeros(g: &Gpu, n: usize) -> wgpu::Buffer {
    g.storage("test output", n as u64 * 4)
}

/// The first `n` f32 of `b`, as f64.
pub fn read(g: &Gpu, b: &wgpu::Buffer, n: usize) -> Vec<f64> {
    g.read::<f32>(b, 0, n).unwrap().into_iter().map(f64::from).collect()
}

/// Tensor `name` of the arena's gradient, as f64.
pub fn read_grad(g: &Gpu, arena: &Arena, name: &str) -> Vec<f64> {
    let v = arena.read_from(g, &arena.grads, name).unwrap();
    v.into_iter().map(f64::from).collect()
}

/// Records into one compute pass, submits and waits.
pub fn run(g: &Gpu, record: impl FnOnce(&mut wgpu::ComputePass<'_>)) {
    g.submit(|enc| record(&mut enc.begin_compute_pass(&Default::default())));
    g.wait().unwrap();
}

/// Asserts |got − want| ≤ bound element-wise (NaN fails); prints and returns the
/// worst error as a fraction of its bound.
pub fn check(what: &str, got: &[f64], want: &[f64], bound: &[f64]) -> f64 {
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

/// `v` times `s`.
pub fn scaled(v: &[f64], s: f64) -> Vec<f64> {
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

pub const H: f64 = 1e-5;
pub const FD_TOL: f64 = 1e-7;

/// The central difference of `f` at `x` in every coordinate (step [`H`]).
pub fn numeric_grad(x: &[f64], f: impl Fn(&[f64]) -> f64) -> Vec<f64> {
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

/// Σ a ⊙ b.
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Asserts `analytic` is within [`FD_TOL`]·(1 + |numeric|) of `numeric`.
pub fn check_fd(what: &str, analytic: &[f64], numeric: &[f64]) {
    let bound: Vec<f64> = numeric.iter().map(|n| FD_TOL * (1.0 + n.abs())).collect();
    check(&format!("finite differences {what}"), analytic, numeric, &bound);
}
