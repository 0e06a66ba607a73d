// Small products C = A B (+ bias) sharing A's loads across a subgroup, after
// matmul.wgsl (MatmulDims, the bindings, a_clamped / b_clamped). Compiled only on
// devices with subgroups of at least 8 invocations (`Gpu::subgroup_matmul`);
// elsewhere linear.wgsl's `matmul_block*` computes the same sums in the same order.
//
// A workgroup of 16 invocations computes a 16 x 64 tile of C: invocation x owns
// columns col0 + 4 x .. + 3 of all 16 rows. At each k, invocation (lane) l of a
// subgroup loads A(row0 + l % 8, k) and A(row0 + 8 + l % 8, k), and every lane
// takes the 16 values from lanes 0..7 by subgroupBroadcast: 6 loads per 64
// multiply-adds instead of 16 per 64 in `matmul_block`. On CPU drivers, where every
// load whose address differs between invocations is made one invocation at a
// time, that is what a product costs. Each output is still one invocation's sum
// over k in increasing order, so results equal `matmul_block`'s.
const SG_ROWS: u32 = 16u;

fn subgroup_product(wid: vec3<u32>, lid: vec3<u32>, lane: u32) -> array<vec4<f32>, SG_ROWS> {
    let row0 = wid.y * SG_ROWS;
    let col0 = wid.x * TILE + 4u * lid.x;
    let mine = lane % 8u;
    var acc: array<vec4<f32>, SG_ROWS>;
    for (var kk = 0u; kk < dims.k; kk++) {
        let lo = a_clamped(row0 + mine, kk);
        let hi = a_clamped(row0 + 8u + mine, kk);
        let bv = vec4<f32>(b_clamped(kk, col0), b_clamped(kk, col0 + 1u), b_clamped(kk, col0 + 2u),
                           b_clamped(kk, col0 + 3u));
        // subgroupBroadcast takes a constant lane: one line per row.
        acc[0] += subgroupBroadcast(lo, 0u) * bv;
        acc[1] += subgroupBroadcast(lo, 1u) * bv;
        acc[2] += subgroupBroadcast(lo, 2u) * bv;
        acc[3] += subgroupBroadcast(lo, 3u) * bv;
        acc[4] += subgroupBroadcast(lo, 4u) * bv;
        acc[5] += subgroupBroadcast(lo, 5u) * bv;
        acc[6] += subgroupBroadcast(lo, 6u) * bv;
        acc[7] += subgroupBroadcast(lo, 7u) * bv;
        acc[8] += subgroupBroadcast(hi, 0u) * bv;
        acc[9] += subgroupBroadcast(hi, 1u) * bv;
        acc[10] += subgroupBroadcast(hi, 2u) * bv;
        acc[11] += subgroupBroadcast(hi, 3u) * bv;
        acc[12] += subgroupBroadcast(hi, 4u) * bv;
        acc[13] += subgroupBroadcast(hi, 5u) * bv;
        acc[14] += subgroupBroadcast(hi, 6u) * bv;
        acc[15] += subgroupBroadcast(hi, 7u) * bv;
    }
    return acc;
}

// Writes this invocation's outputs of `subgroup_product`, each plus `add[q]`.
fn subgroup_store(wid: vec3<u32>, lid: vec3<u32>, acc: array<vec4<f32>, SG_ROWS>, add: vec4<f32>) {
    let col0 = wid.x * TILE + 4u * lid.x;
    for (var r = 0u; r < SG_ROWS; r++) {
        let row = wid.y * SG_ROWS + r;
        for (var q = 0u; q < 4u; q++) {
            let col = col0 + q;
            if row < dims.m && col < dims.n {
                c[row * dims.n + col] = acc[r][q] + add[q];
            }
        }
    }
}

// C = A B (small products, subgroups of at least 8): grid ceil(n/64) x ceil(m/16).
@compute @workgroup_size(16)
fn matmul_subgroup(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
                   @builtin(subgroup_invocation_id) lane: u32) {
    subgroup_store(wid, lid, subgroup_product(wid, lid, lane), vec4<f32>(0.0));
}

// C = A B + bias: as `matmul_subgroup`.
@compute @workgroup_size(16)
fn matmul_subgroup_bias(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
                        @builtin(subgroup_invocation_id) lane: u32) {
    let col0 = wid.x * TILE + 4u * lid.x;
    let last = dims.n - 1u;
    let add = vec4<f32>(bias[min(col0, last)], bias[min(col0 + 1u, last)], bias[min(col0 + 2u, last)],
                        bias[min(col0 + 3u, last)]);
    subgroup_store(wid, lid, subgroup_product(wid, lid, lane), add);
}
