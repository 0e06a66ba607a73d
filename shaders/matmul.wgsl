// The matrix product's dimensions, bindings and clamped loads, put in front of
// linear.wgsl and linear_subgroup.wgsl. C[m, n] = A[m, k] B[k, n], with A and B
// read through strides (see linear.wgsl).

struct MatmulDims {
    m: u32,      // rows of C and A
    n: u32,      // columns of C and B
    k: u32,      // columns of A, rows of B
    pad0: u32,
    a_row: u32,  // A(i, kk) = a[i * a_row + kk * a_col]
    a_col: u32,
    b_row: u32,  // B(kk, j) = b[kk * b_row + j * b_col]
    b_col: u32,
}

@group(0) @binding(0) var<uniform> dims: MatmulDims;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;
@group(0) @binding(5) var<storage, read> dy: array<f32>;
@group(0) @binding(6) var<storage, read_write> dbias: array<f32>;

// Output tiles are 64 columns wide (and 64 rows high but in linear_subgroup.wgsl).
const TILE: u32 = 64u;

// A(row, kk) and B(kk, col) with the row or column clamped into the matrix:
// loads past the edge read a real element (never written back), not a branch.
fn a_clamped(row: u32, kk: u32) -> f32 {
    return a[min(row, dims.m - 1u) * dims.a_row + kk * dims.a_col];
}

fn b_clamped(kk: u32, col: u32) -> f32 {
    return b[kk * dims.b_row + min(col, dims.n - 1u) * dims.b_col];
}
