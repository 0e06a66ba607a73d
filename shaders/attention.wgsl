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

// One workgroup per row (b, h, t) of probs (rows strided by the number of
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

// One invocation per element (b, t, h*D + d) of out.
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

// One workgroup per row (b, h, t): dscores[t, j] for all j (0 for j > t).
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

// One invocation per element (b, t, part*C + h*D + d) of dqkv.
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
