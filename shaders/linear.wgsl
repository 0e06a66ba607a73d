// Linear layer: a matrix product C = A B (+ bias) and the bias gradient.
//
// The three products of a linear layer y = x W + b (x [M, K], W [K, N]) are all
// `matmul` with different strides:
//   forward  y  = x   W     A = x  (row stride K, col stride 1), B = W  (N, 1)
//   backward dx = dy  W^T   A = dy (N, 1),                       B = W^T (1, N)
//   backward dW = x^T dy    A = x^T (1, K),                      B = dy (N, 1)
// C is always written row-major [m, n], overwriting what was there. Every output
// is summed by one invocation over k in increasing order: deterministic.
//
// matmul.wgsl, put in front, holds the dimensions, bindings and clamped loads.
// Two variants here, chosen by the layer from the size of each product (a third,
// for small products on devices with subgroups, is linear_subgroup.wgsl):
// - `matmul`, `matmul_bias` (large products): 16 x 16 invocations share 64 x 16
//   slices of A and B through workgroup memory, 4 x 4 outputs each;
// - `matmul_block`, `matmul_block_bias` (small products): no workgroup memory
//   and no barriers; 8 x 8 invocations, 8 x 8 outputs each, read A and B straight
//   from their buffers (16 loads per 64 multiply-adds). On CPU drivers, where a
//   barrier switches between every invocation of the workgroup and every load
//   is made one invocation at a time, this is several times faster.

// ---------------------------------------------------------------- large products

// A workgroup of 16 x 16 invocations computes a 64 x 64 tile of C; each
// invocation owns the 4 x 4 outputs (row0 + ty + 16 r, col0 + tx + 16 q).
// K is walked in steps of 16, staging a 64 x 16 slice of A and a 16 x 64 slice
// of B in workgroup memory (zeros outside the matrices).
const TILE_K: u32 = 16u;

var<workgroup> tile_a: array<f32, 1024>; // tile_a[kk * TILE + i] = A(row0 + i, k0 + kk)
var<workgroup> tile_b: array<f32, 1024>; // tile_b[kk * TILE + j] = B(k0 + kk, col0 + j)

fn load_a(row: u32, col: u32) -> f32 {
    if row < dims.m && col < dims.k {
        return a[row * dims.a_row + col * dims.a_col];
    }
    return 0.0;
}

fn load_b(row: u32, col: u32) -> f32 {
    if row < dims.k && col < dims.n {
        return b[row * dims.b_row + col * dims.b_col];
    }
    return 0.0;
}

// The 4 x 4 outputs of this invocation, acc[4 r + q] = C(row0 + ty + 16 r, col0 + tx + 16 q).
fn tile_product(wid: vec3<u32>, lid: vec3<u32>) -> array<f32, 16> {
    let row0 = wid.y * TILE;
    let col0 = wid.x * TILE;
    let flat = lid.y * 16u + lid.x;
    var acc: array<f32, 16>;
    for (var k0 = 0u; k0 < dims.k; k0 += TILE_K) {
        // Each of the 256 invocations stages 4 values of each slice.
        for (var q = 0u; q < 4u; q++) {
            let e = flat + q * 256u;
            let ka = e % TILE_K;
            let ia = e / TILE_K;
            tile_a[ka * TILE + ia] = load_a(row0 + ia, k0 + ka);
            let jb = e % TILE;
            let kb = e / TILE;
            tile_b[kb * TILE + jb] = load_b(k0 + kb, col0 + jb);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TILE_K; kk++) {
            var av: array<f32, 4>;
            var bv: array<f32, 4>;
            for (var r = 0u; r < 4u; r++) {
                av[r] = tile_a[kk * TILE + lid.y + 16u * r];
                bv[r] = tile_b[kk * TILE + lid.x + 16u * r];
            }
            for (var r = 0u; r < 4u; r++) {
                for (var q = 0u; q < 4u; q++) {
                    acc[4u * r + q] += av[r] * bv[q];
                }
            }
        }
        workgroupBarrier();
    }
    return acc;
}

// C = A B: one 64 x 64 tile of C per workgroup (grid ceil(n/64) x ceil(m/64)).
@compute @workgroup_size(16, 16)
fn matmul(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let acc = tile_product(wid, lid);
    for (var r = 0u; r < 4u; r++) {
        for (var q = 0u; q < 4u; q++) {
            let row = wid.y * TILE + lid.y + 16u * r;
            let col = wid.x * TILE + lid.x + 16u * q;
            if row < dims.m && col < dims.n {
                c[row * dims.n + col] = acc[4u * r + q];
            }
        }
    }
}

// C = A B + bias (bias [n] added to every row): as `matmul`.
@compute @workgroup_size(16, 16)
fn matmul_bias(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let acc = tile_product(wid, lid);
    for (var r = 0u; r < 4u; r++) {
        for (var q = 0u; q < 4u; q++) {
            let row = wid.y * TILE + lid.y + 16u * r;
            let col = wid.x * TILE + lid.x + 16u * q;
            if row < dims.m && col < dims.n {
                c[row * dims.n + col] = acc[4u * r + q] + bias[col];
            }
        }
    }
}

// ---------------------------------------------------------------- small products

// A workgroup of 8 x 8 invocations computes a 64 x 64 tile of C; each invocation
// owns the 8 x 8 outputs (row0 + ty + 8 r, col0 + tx + 8 q), r, q < 8, kept as
// acc[2 r + q / 4][q % 4], and sums each over k in increasing order.
fn block_product(wid: vec3<u32>, lid: vec3<u32>) -> array<vec4<f32>, 16> {
    let row0 = wid.y * TILE + lid.y;
    let col0 = wid.x * TILE + lid.x;
    var acc: array<vec4<f32>, 16>;
    for (var kk = 0u; kk < dims.k; kk++) {
        let b_lo = vec4<f32>(b_clamped(kk, col0), b_clamped(kk, col0 + 8u), b_clamped(kk, col0 + 16u),
                             b_clamped(kk, col0 + 24u));
        let b_hi = vec4<f32>(b_clamped(kk, col0 + 32u), b_clamped(kk, col0 + 40u), b_clamped(kk, col0 + 48u),
                             b_clamped(kk, col0 + 56u));
        for (var r = 0u; r < 8u; r++) {
            let av = a_clamped(row0 + 8u * r, kk);
            acc[2u * r] += av * b_lo;
            acc[2u * r + 1u] += av * b_hi;
        }
    }
    return acc;
}

// C = A B (small products): one 64 x 64 tile of C per workgroup (grid ceil(n/64) x ceil(m/64)).
@compute @workgroup_size(8, 8)
fn matmul_block(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let acc = block_product(wid, lid);
    for (var r = 0u; r < 8u; r++) {
        for (var q = 0u; q < 8u; q++) {
            let row = wid.y * TILE + lid.y + 8u * r;
            let col = wid.x * TILE + lid.x + 8u * q;
            if row < dims.m && col < dims.n {
                c[row * dims.n + col] = acc[2u * r + q / 4u][q % 4u];
            }
        }
    }
}

// C = A B + bias (small products): as `matmul_block`.
@compute @workgroup_size(8, 8)
fn matmul_block_bias(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let acc = block_product(wid, lid);
    for (var r = 0u; r < 8u; r++) {
        for (var q = 0u; q < 8u; q++) {
            let row = wid.y * TILE + lid.y + 8u * r;
            let col = wid.x * TILE + lid.x + 8u * q;
            if row < dims.m && col < dims.n {
                c[row * dims.n + col] = acc[2u * r + q / 4u][q % 4u] + bias[col];
            }
        }
    }
}

// ---------------------------------------------------------------- bias gradient

// dbias[j] = sum over rows i of dy[i, j] (dy [m, n]): one invocation per column,
// rows summed in increasing order.
@compute @workgroup_size(256)
fn column_sums(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var col = gid.x; col < dims.n; col += nwg.x * WG) {
        var acc = 0.0;
        for (var row = 0u; row < dims.m; row++) {
            acc += dy[row * dims.n + col];
        }
        dbias[col] = acc;
    }
}
