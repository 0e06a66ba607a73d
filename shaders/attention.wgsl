// Causal multi-head self-attention on projected inputs.
//   qkv [B, T, 3C]: q = qkv[.., 0:C], k = qkv[.., C:2C], v = qkv[.., 2C:3C]; head h
//   uses channels h*D .. (h+1)*D of each (D = C / H).
//   probs[b, h, t, j] = softmax_j(q_t . k_j * scale) over j <= t (0 for j > t), scale = 1/sqrt(D)
//   out[b, t, h*D + d] = sum_{j <= t} probs[b, h, t, j] v[b, j, h*D + d]
// Backward (every output overwritten; all sums in fixed order):
//   dp[t, j]   = sum_d dout[t, d] v[j, d]
//   dS[t, j]   = probs[t, j] (dp[t, j] - sum_{j'} probs[t, j'] dp[t, j'])
//   dq[t]      = scale sum_{j <= t} dS[t, j] k[j]
//   dk[j]      = scale sum_{t >= j} dS[t, j] q[t]
//   dv[j]      = sum_{t >= j} probs[t, j] dout[t]
// probs and dS are kept whole ([B, H, T, T] each): simple, not memory-frugal.
//
// Two variants, chosen by the layer from T:
// - long sequences (T > 128): one workgroup per row (b, h, t) of probs and dS,
//   with tree reductions, and one invocation per element of out and dqkv;
// - short sequences: no barriers and no workgroup memory. The products
//   (q k^T, probs v, dout v^T, dS k, dS^T q, probs^T dout) are computed in
//   4 x 4 register blocks, one block per invocation (8 loads per 16
//   multiply-adds), and the softmax and its gradient take one invocation per row.
//   On CPU drivers, where a barrier switches between every invocation of the
//   workgroup and every load is a per-lane gather, this is many times faster.
// Both sum every output in the same fixed order (d, j or t increasing), so each
// is deterministic.

struct AttnDims {
    batch: u32,
    seq: u32,       // T
    heads: u32,     // H
    head_dim: u32,  // D
    channels: u32,  // C = H D
    scale: f32,
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(0) var<uniform> dims: AttnDims;
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
@group(0) @binding(2) var<storage, read_write> probs: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read> dout: array<f32>;
@group(0) @binding(5) var<storage, read_write> dscores: array<f32>;
@group(0) @binding(6) var<storage, read_write> dqkv: array<f32>;

var<workgroup> row_max: array<f32, 256>;

// Index in qkv of part `part` (0 q, 1 k, 2 v) of (b, t), head h, component d.
fn qkv_at(b: u32, t: u32, part: u32, h: u32, d: u32) -> u32 {
    return (b * dims.seq + t) * 3u * dims.channels + part * dims.channels + h * dims.head_dim + d;
}

// Index in out (and dout) of (b, t), head h, component d.
fn out_at(b: u32, t: u32, h: u32, d: u32) -> u32 {
    return (b * dims.seq + t) * dims.channels + h * dims.head_dim + d;
}

// ---------------------------------------------------------------- long sequences

// Every invocation of the workgroup must call this; returns the maximum to all.
fn workgroup_max(lid: u32, value: f32) -> f32 {
    row_max[lid] = value;
    workgroupBarrier();
    for (var off = WG / 2u; off > 0u; off = off / 2u) {
        if lid < off {
            row_max[lid] = max(row_max[lid], row_max[lid + off]);
        }
        workgroupBarrier();
    }
    let result = row_max[0];
    workgroupBarrier();
    return result;
}

// Long rows: one workgroup per row (b, h, t) of probs (rows strided by the number of
// workgroups). Each invocation keeps to its own columns j, so the scores it
// writes to probs and reads back need no barrier.
@compute @workgroup_size(256)
fn attention_probs(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_id) lid: vec3<u32>) {
    let T = dims.seq;
    for (var row = wid.x; row < dims.batch * dims.heads * T; row += nwg.x) {
        let b = row / (dims.heads * T);
        let h = (row / T) % dims.heads;
        let t = row % T;
        var local_max = -3.4028234e38;
        for (var j = lid.x; j <= t; j += WG) {
            var qk = 0.0;
            for (var d = 0u; d < dims.head_dim; d++) {
                qk += qkv[qkv_at(b, t, 0u, h, d)] * qkv[qkv_at(b, j, 1u, h, d)];
            }
            let score = qk * dims.scale;
            probs[row * T + j] = score;
            local_max = max(local_max, score);
        }
        let m = workgroup_max(lid.x, local_max);
        var part = 0.0;
        for (var j = lid.x; j <= t; j += WG) {
            let e = exp(probs[row * T + j] - m);
            probs[row * T + j] = e;
            part += e;
        }
        let inv_sum = 1.0 / workgroup_sum(lid.x, vec2<f32>(part, 0.0)).x;
        for (var j = lid.x; j < T; j += WG) {
            probs[row * T + j] = select(0.0, probs[row * T + j] * inv_sum, j <= t);
        }
    }
}

// Long rows: one invocation per element (b, t, h*D + d) of out.
@compute @workgroup_size(256)
fn attention_values(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let T = dims.seq;
    let C = dims.channels;
    for (var i = gid.x; i < dims.batch * T * C; i += nwg.x * WG) {
        let b = i / (T * C);
        let t = (i / C) % T;
        let h = (i % C) / dims.head_dim;
        let d = i % dims.head_dim;
        let row = (b * dims.heads + h) * T + t;
        var acc = 0.0;
        for (var j = 0u; j <= t; j++) {
            acc += probs[row * T + j] * qkv[qkv_at(b, j, 2u, h, d)];
        }
        out[i] = acc;
    }
}

// Long rows: one workgroup per row (b, h, t): dscores[t, j] for all j (0 for j > t).
// Each invocation keeps to its own columns j, as in attention_probs.
@compute @workgroup_size(256)
fn attention_dscores(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_id) lid: vec3<u32>) {
    let T = dims.seq;
    for (var row = wid.x; row < dims.batch * dims.heads * T; row += nwg.x) {
        let b = row / (dims.heads * T);
        let h = (row / T) % dims.heads;
        let t = row % T;
        var part = 0.0;
        for (var j = lid.x; j <= t; j += WG) {
            var dp = 0.0;
            for (var d = 0u; d < dims.head_dim; d++) {
                dp += dout[out_at(b, t, h, d)] * qkv[qkv_at(b, j, 2u, h, d)];
            }
            dscores[row * T + j] = dp;
            part += probs[row * T + j] * dp;
        }
        let weighted = workgroup_sum(lid.x, vec2<f32>(part, 0.0)).x;
        for (var j = lid.x; j < T; j += WG) {
            dscores[row * T + j] = select(0.0, probs[row * T + j] * (dscores[row * T + j] - weighted), j <= t);
        }
    }
}

// Long rows: one invocation per element (b, t, part*C + h*D + d) of dqkv.
@compute @workgroup_size(256)
fn attention_dqkv(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let T = dims.seq;
    let C3 = 3u * dims.channels;
    for (var i = gid.x; i < dims.batch * T * C3; i += nwg.x * WG) {
        let b = i / (T * C3);
        let t = (i / C3) % T;
        let part = (i % C3) / dims.channels;
        let h = (i % dims.channels) / dims.head_dim;
        let d = i % dims.head_dim;
        let rows = (b * dims.heads + h) * T; // first row of (b, h) in probs and dscores
        var acc = 0.0;
        if part == 0u {
            // dq[t] = scale sum_{j <= t} dS[t, j] k[j]
            for (var j = 0u; j <= t; j++) {
                acc += dscores[(rows + t) * T + j] * qkv[qkv_at(b, j, 1u, h, d)];
            }
            acc *= dims.scale;
        } else if part == 1u {
            // dk[t] = scale sum_{r >= t} dS[r, t] q[r]
            for (var r = t; r < T; r++) {
                acc += dscores[(rows + r) * T + t] * qkv[qkv_at(b, r, 0u, h, d)];
            }
            acc *= dims.scale;
        } else {
            // dv[t] = sum_{r >= t} probs[r, t] dout[r]
            for (var r = t; r < T; r++) {
                acc += probs[(rows + r) * T + t] * dout[out_at(b, r, h, d)];
            }
        }
        dqkv[i] = acc;
    }
}

// ---------------------------------------------------------------- short sequences
//
// Blocks: positions in groups of 4 (NB = ceil(T / 4) groups), head components in
// groups of 4 (ND = ceil(D / 4)). Loads past T or D are clamped to the last
// position or component (a real element, read but never written back); masked
// terms are added as exact zeros, so each output's sum runs over exactly the
// terms of the formulas above, in increasing order.

// Invocations per workgroup of these kernels (strided loops over the grid).
const BLOCK_WG: u32 = 64u;

fn blocks(n: u32) -> u32 {
    return (n + 3u) / 4u;
}

// Part `part` of (b, t), head h, components d .. d + 3, clamped into the sequence and the head.
fn qkv4(b: u32, t: u32, part: u32, h: u32, d: u32) -> vec4<f32> {
    let tc = min(t, dims.seq - 1u);
    let last = dims.head_dim - 1u;
    return vec4<f32>(qkv[qkv_at(b, tc, part, h, min(d, last))], qkv[qkv_at(b, tc, part, h, min(d + 1u, last))],
                     qkv[qkv_at(b, tc, part, h, min(d + 2u, last))], qkv[qkv_at(b, tc, part, h, min(d + 3u, last))]);
}

// dout of (b, t), head h, components d .. d + 3, clamped as qkv4.
fn dout4(b: u32, t: u32, h: u32, d: u32) -> vec4<f32> {
    let tc = min(t, dims.seq - 1u);
    let last = dims.head_dim - 1u;
    return vec4<f32>(dout[out_at(b, tc, h, min(d, last))], dout[out_at(b, tc, h, min(d + 1u, last))],
                     dout[out_at(b, tc, h, min(d + 2u, last))], dout[out_at(b, tc, h, min(d + 3u, last))]);
}

// Index in probs and dscores of (bh = b H + h, t, j), t clamped into the sequence.
fn score_at(bh: u32, t: u32, j: u32) -> u32 {
    return (bh * dims.seq + min(t, dims.seq - 1u)) * dims.seq + j;
}

// Writes a 4 x 4 block of out: positions t0 + r, components d0 + e, those inside the sequence and the head.
fn store_out(b: u32, h: u32, t0: u32, d0: u32, acc: array<vec4<f32>, 4>) {
    for (var r = 0u; r < 4u; r++) {
        for (var e = 0u; e < 4u; e++) {
            if t0 + r < dims.seq && d0 + e < dims.head_dim {
                out[out_at(b, t0 + r, h, d0 + e)] = acc[r][e];
            }
        }
    }
}

// Writes a 4 x 4 block of part `part` of dqkv, as store_out.
fn store_dqkv(b: u32, h: u32, part: u32, t0: u32, d0: u32, acc: array<vec4<f32>, 4>) {
    for (var r = 0u; r < 4u; r++) {
        for (var e = 0u; e < 4u; e++) {
            if t0 + r < dims.seq && d0 + e < dims.head_dim {
                dqkv[qkv_at(b, t0 + r, part, h, d0 + e)] = acc[r][e];
            }
        }
    }
}

// One invocation per 4 x 4 block (b, h, rows t0 .. t0 + 3, columns j0 .. j0 + 3)
// of the scores on or below the diagonal: probs[t, j] = (sum_d q_t[d] k_j[d]) * scale,
// written for j <= t only (the softmax kernel zeroes the rest).
@compute @workgroup_size(64)
fn attention_scores_block(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let T = dims.seq;
    let nb = blocks(T);
    for (var i = gid.x; i < dims.batch * dims.heads * nb * nb; i += nwg.x * BLOCK_WG) {
        let j0 = 4u * (i % nb);
        let t0 = 4u * ((i / nb) % nb);
        let bh = i / (nb * nb);
        let b = bh / dims.heads;
        let h = bh % dims.heads;
        if j0 <= t0 {
            // acc[r][c] = q_{t0 + r} . k_{j0 + c}
            var acc: array<vec4<f32>, 4>;
            for (var d = 0u; d < dims.head_dim; d++) {
                let kv = vec4<f32>(qkv[qkv_at(b, min(j0, T - 1u), 1u, h, d)],
                                   qkv[qkv_at(b, min(j0 + 1u, T - 1u), 1u, h, d)],
                                   qkv[qkv_at(b, min(j0 + 2u, T - 1u), 1u, h, d)],
                                   qkv[qkv_at(b, min(j0 + 3u, T - 1u), 1u, h, d)]);
                for (var r = 0u; r < 4u; r++) {
                    acc[r] += qkv[qkv_at(b, min(t0 + r, T - 1u), 0u, h, d)] * kv;
                }
            }
            for (var r = 0u; r < 4u; r++) {
                for (var c = 0u; c < 4u; c++) {
                    let t = t0 + r;
                    let j = j0 + c;
                    if t < T && j <= t {
                        probs[score_at(bh, t, j)] = acc[r][c] * dims.scale;
                    }
                }
            }
        }
    }
}

// One invocation per row (b, h, t): the softmax of the row's scores in place,
// j <= t, in increasing j (maximum, exponentials and their sum, then the
// probabilities); 0 for j > t.
@compute @workgroup_size(64)
fn attention_softmax_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let T = dims.seq;
    for (var row = gid.x; row < dims.batch * dims.heads * T; row += nwg.x * BLOCK_WG) {
        let t = row % T;
        var m = -3.4028234e38;
        for (var j = 0u; j <= t; j++) {
            m = max(m, probs[row * T + j]);
        }
        var sum = 0.0;
        for (var j = 0u; j <= t; j++) {
            let e = exp(probs[row * T + j] - m);
            probs[row * T + j] = e;
            sum += e;
        }
        let inv_sum = 1.0 / sum;
        for (var j = 0u; j <= t; j++) {
            probs[row * T + j] *= inv_sum;
        }
        for (var j = t + 1u; j < T; j++) {
            probs[row * T + j] = 0.0;
        }
    }
}

// One invocation per 4 x 4 block (b, h, positions t0 .. t0 + 3, components d0 .. d0 + 3)
// of out: out[t, d] = sum_{j <= t} probs[t, j] v_j[d].
@compute @workgroup_size(64)
fn attention_values_block(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let T = dims.seq;
    let nb = blocks(T);
    let nd = blocks(dims.head_dim);
    for (var i = gid.x; i < dims.batch * dims.heads * nb * nd; i += nwg.x * BLOCK_WG) {
        let d0 = 4u * (i % nd);
        let t0 = 4u * ((i / nd) % nb);
        let bh = i / (nd * nb);
        let b = bh / dims.heads;
        let h = bh % dims.heads;
        var acc: array<vec4<f32>, 4>;
        // j <= t0: every row of the block takes the term.
        for (var j = 0u; j <= min(t0, T - 1u); j++) {
            let vv = qkv4(b, j, 2u, h, d0);
            for (var r = 0u; r < 4u; r++) {
                acc[r] += probs[score_at(bh, t0 + r, j)] * vv;
            }
        }
        // t0 < j <= t0 + 3: only rows t0 + r >= j do.
        for (var j = t0 + 1u; j < min(t0 + 4u, T); j++) {
            let vv = qkv4(b, j, 2u, h, d0);
            for (var r = 0u; r < 4u; r++) {
                acc[r] += select(vec4<f32>(0.0), probs[score_at(bh, t0 + r, j)] * vv, j <= t0 + r);
            }
        }
        store_out(b, h, t0, d0, acc);
    }
}

// One invocation per 4 x 4 block (b, h, rows t0 .. t0 + 3, columns j0 .. j0 + 3)
// on or below the diagonal: dscores[t, j] = dp[t, j] = sum_d dout_t[d] v_j[d],
// written for j <= t only (the next kernel turns it into dS and zeroes the rest).
@compute @workgroup_size(64)
fn attention_dp_block(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let T = dims.seq;
    let nb = blocks(T);
    for (var i = gid.x; i < dims.batch * dims.heads * nb * nb; i += nwg.x * BLOCK_WG) {
        let j0 = 4u * (i % nb);
        let t0 = 4u * ((i / nb) % nb);
        let bh = i / (nb * nb);
        let b = bh / dims.heads;
        let h = bh % dims.heads;
        if j0 <= t0 {
            // acc[r][c] = dout_{t0 + r} . v_{j0 + c}
            var acc: array<vec4<f32>, 4>;
            for (var d = 0u; d < dims.head_dim; d++) {
                let vv = vec4<f32>(qkv[qkv_at(b, min(j0, T - 1u), 2u, h, d)],
                                   qkv[qkv_at(b, min(j0 + 1u, T - 1u), 2u, h, d)],
                                   qkv[qkv_at(b, min(j0 + 2u, T - 1u), 2u, h, d)],
                                   qkv[qkv_at(b, min(j0 + 3u, T - 1u), 2u, h, d)]);
                for (var r = 0u; r < 4u; r++) {
                    acc[r] += dout[out_at(b, min(t0 + r, T - 1u), h, d)] * vv;
                }
            }
            for (var r = 0u; r < 4u; r++) {
                for (var c = 0u; c < 4u; c++) {
                    let t = t0 + r;
                    let j = j0 + c;
                    if t < T && j <= t {
                        dscores[score_at(bh, t, j)] = acc[r][c];
                    }
                }
            }
        }
    }
}

// One invocation per row (b, h, t): dS[t, j] = probs[t, j] (dp[t, j] - w) in place,
// w = sum_{j <= t} probs[t, j] dp[t, j] in increasing j; 0 for j > t.
@compute @workgroup_size(64)
fn attention_dsoftmax_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let T = dims.seq;
    for (var row = gid.x; row < dims.batch * dims.heads * T; row += nwg.x * BLOCK_WG) {
        let t = row % T;
        var weighted = 0.0;
        for (var j = 0u; j <= t; j++) {
            weighted += probs[row * T + j] * dscores[row * T + j];
        }
        for (var j = 0u; j <= t; j++) {
            dscores[row * T + j] = probs[row * T + j] * (dscores[row * T + j] - weighted);
        }
        for (var j = t + 1u; j < T; j++) {
            dscores[row * T + j] = 0.0;
        }
    }
}

// One invocation per 4 x 4 block (part, b, h, positions p0 .. p0 + 3, components d0 .. d0 + 3) of dqkv:
//   part 0: dq[t, d] = scale sum_{j <= t} dS[t, j] k_j[d]    (rows t = p0 + r)
//   part 1: dk[j, d] = scale sum_{t >= j} dS[t, j] q_t[d]    (rows j = p0 + r)
//   part 2: dv[j, d] = sum_{t >= j} probs[t, j] dout_t[d]    (rows j = p0 + r)
@compute @workgroup_size(64)
fn attention_dqkv_block(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let T = dims.seq;
    let nb = blocks(T);
    let nd = blocks(dims.head_dim);
    let per_part = dims.batch * dims.heads * nb * nd;
    for (var i = gid.x; i < 3u * per_part; i += nwg.x * BLOCK_WG) {
        let d0 = 4u * (i % nd);
        let p0 = 4u * ((i / nd) % nb);
        let bh = (i / (nd * nb)) % (dims.batch * dims.heads);
        let part = i / per_part;
        let b = bh / dims.heads;
        let h = bh % dims.heads;
        var acc: array<vec4<f32>, 4>;
        if part == 0u {
            // As attention_values_block, with dS for probs and k for v.
            for (var j = 0u; j <= min(p0, T - 1u); j++) {
                let kv = qkv4(b, j, 1u, h, d0);
                for (var r = 0u; r < 4u; r++) {
                    acc[r] += dscores[score_at(bh, p0 + r, j)] * kv;
                }
            }
            for (var j = p0 + 1u; j < min(p0 + 4u, T); j++) {
                let kv = qkv4(b, j, 1u, h, d0);
                for (var r = 0u; r < 4u; r++) {
                    acc[r] += select(vec4<f32>(0.0), dscores[score_at(bh, p0 + r, j)] * kv, j <= p0 + r);
                }
            }
        } else if part == 1u {
            // Column sums over t >= j; for t < p0 + 3 only rows j = p0 + r <= t take the term.
            for (var t = p0; t < min(p0 + 3u, T); t++) {
                let qv = qkv4(b, t, 0u, h, d0);
                for (var r = 0u; r < 4u; r++) {
                    acc[r] += select(vec4<f32>(0.0), dscores[score_at(bh, t, min(p0 + r, T - 1u))] * qv, p0 + r <= t);
                }
            }
            for (var t = p0 + 3u; t < T; t++) {
                let qv = qkv4(b, t, 0u, h, d0);
                for (var r = 0u; r < 4u; r++) {
                    acc[r] += dscores[score_at(bh, t, p0 + r)] * qv;
                }
            }
        } else {
            // As part 1, with probs for dS and dout for q.
            for (var t = p0; t < min(p0 + 3u, T); t++) {
                let ov = dout4(b, t, h, d0);
                for (var r = 0u; r < 4u; r++) {
                    acc[r] += select(vec4<f32>(0.0), probs[score_at(bh, t, min(p0 + r, T - 1u))] * ov, p0 + r <= t);
                }
            }
            for (var t = p0 + 3u; t < T; t++) {
                let ov = dout4(b, t, h, d0);
                for (var r = 0u; r < 4u; r++) {
                    acc[r] += probs[score_at(bh, t, p0 + r)] * ov;
                }
            }
        }
        if part < 2u {
            for (var r = 0u; r < 4u; r++) {
                acc[r] *= dims.scale;
            }
        }
        store_dqkv(b, h, part, p0, d0, acc);
    }
}
