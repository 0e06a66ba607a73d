// LayerNorm and RMSNorm over the last dimension of x [rows, dim]:
//   LayerNorm: mean = sum(x) / dim, rstd = 1 / sqrt(sum((x - mean)^2) / dim + eps)
//   RMSNorm:   mean = 0,            rstd = 1 / sqrt(sum(x^2) / dim + eps)
//   xhat = (x - mean) rstd,  y = xhat * gain + offset  (gain 1, offset 0 when absent)
// The forward pass keeps mean and rstd per row for the backward pass. Every
// gradient is overwritten. Reductions use fixed orders: deterministic.
//
// Two variants of the row kernels, chosen by the layer from the row length:
// short rows (dim <= 256) take one invocation per row, with no barriers and no
// workgroup memory; long rows take one workgroup per row with tree reductions.

struct NormDims {
    rows: u32,
    dim: u32,
    center: u32,     // 1 LayerNorm (subtract the mean), 0 RMSNorm
    has_gain: u32,
    has_offset: u32,
    eps: f32,
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(0) var<uniform> dims: NormDims;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> gain: array<f32>;
@group(0) @binding(3) var<storage, read> offset: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read_write> row_mean: array<f32>;
@group(0) @binding(6) var<storage, read_write> row_rstd: array<f32>;
@group(0) @binding(7) var<storage, read> dy: array<f32>;
@group(0) @binding(8) var<storage, read_write> dx: array<f32>;
@group(0) @binding(9) var<storage, read_write> dgain: array<f32>;
@group(0) @binding(10) var<storage, read_write> doffset: array<f32>;

fn gain_at(i: u32) -> f32 {
    if dims.has_gain != 0u {
        return gain[i];
    }
    return 1.0;
}

fn offset_at(i: u32) -> f32 {
    if dims.has_offset != 0u {
        return offset[i];
    }
    return 0.0;
}

// Invocations per workgroup of the one-invocation-per-row kernels.
const ROW_WG: u32 = 64u;

// Short rows: one invocation per row (rows strided over the grid) writes y, mean
// and rstd, summing the row in increasing order.
@compute @workgroup_size(64)
fn norm_forward_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = dims.dim;
    for (var row = gid.x; row < dims.rows; row += nwg.x * ROW_WG) {
        let base = row * n;
        var mean = 0.0;
        if dims.center != 0u {
            var total = 0.0;
            for (var i = 0u; i < n; i++) {
                total += x[base + i];
            }
            mean = total / f32(n);
        }
        var sq = 0.0;
        for (var i = 0u; i < n; i++) {
            let d = x[base + i] - mean;
            sq += d * d;
        }
        let rstd = 1.0 / sqrt(sq / f32(n) + dims.eps);
        for (var i = 0u; i < n; i++) {
            y[base + i] = (x[base + i] - mean) * rstd * gain_at(i) + offset_at(i);
        }
        row_mean[row] = mean;
        row_rstd[row] = rstd;
    }
}

// Short rows: one invocation per row writes dx = rstd (g dy - center mean(g dy) - xhat mean(g dy xhat)),
// summing the row in increasing order.
@compute @workgroup_size(64)
fn norm_backward_input_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = dims.dim;
    for (var row = gid.x; row < dims.rows; row += nwg.x * ROW_WG) {
        let base = row * n;
        let mean = row_mean[row];
        let rstd = row_rstd[row];
        var sums = vec2<f32>(0.0);
        for (var i = 0u; i < n; i++) {
            let xhat = (x[base + i] - mean) * rstd;
            let dnorm = dy[base + i] * gain_at(i);
            sums += vec2<f32>(dnorm, dnorm * xhat);
        }
        sums /= f32(n);
        let mean_dnorm = select(0.0, sums.x, dims.center != 0u);
        for (var i = 0u; i < n; i++) {
            let xhat = (x[base + i] - mean) * rstd;
            let dnorm = dy[base + i] * gain_at(i);
            dx[base + i] = rstd * (dnorm - mean_dnorm - xhat * sums.y);
        }
    }
}

// Long rows: one workgroup per row (rows strided by the number of workgroups): y, mean, rstd.
@compute @workgroup_size(256)
fn norm_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_id) lid: vec3<u32>) {
    let n = dims.dim;
    for (var row = wid.x; row < dims.rows; row += nwg.x) {
        let base = row * n;
        var part = 0.0;
        for (var i = lid.x; i < n; i += WG) {
            part += x[base + i];
        }
        let total = workgroup_sum(lid.x, vec2<f32>(part, 0.0)).x;
        let mean = select(0.0, total / f32(n), dims.center != 0u);
        var sq = 0.0;
        for (var i = lid.x; i < n; i += WG) {
            let d = x[base + i] - mean;
            sq += d * d;
        }
        let variance = workgroup_sum(lid.x, vec2<f32>(sq, 0.0)).x / f32(n);
        let rstd = 1.0 / sqrt(variance + dims.eps);
        for (var i = lid.x; i < n; i += WG) {
            let xhat = (x[base + i] - mean) * rstd;
            y[base + i] = xhat * gain_at(i) + offset_at(i);
        }
        if lid.x == 0u {
            row_mean[row] = mean;
            row_rstd[row] = rstd;
        }
    }
}

// Long rows: one workgroup per row: dx = rstd (g dy - center mean(g dy) - xhat mean(g dy xhat)).
@compute @workgroup_size(256)
fn norm_backward_input(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                       @builtin(local_invocation_id) lid: vec3<u32>) {
    let n = dims.dim;
    for (var row = wid.x; row < dims.rows; row += nwg.x) {
        let base = row * n;
        let mean = row_mean[row];
        let rstd = row_rstd[row];
        var part = vec2<f32>(0.0);
        for (var i = lid.x; i < n; i += WG) {
            let xhat = (x[base + i] - mean) * rstd;
            let dnorm = dy[base + i] * gain_at(i);
            part += vec2<f32>(dnorm, dnorm * xhat);
        }
        let sums = workgroup_sum(lid.x, part) / f32(n);
        let mean_dnorm = select(0.0, sums.x, dims.center != 0u);
        for (var i = lid.x; i < n; i += WG) {
            let xhat = (x[base + i] - mean) * rstd;
            let dnorm = dy[base + i] * gain_at(i);
            dx[base + i] = rstd * (dnorm - mean_dnorm - xhat * sums.y);
        }
    }
}

// One invocation per column j: dgain[j] = sum_rows dy xhat, doffset[j] = sum_rows dy,
// rows in increasing order.
@compute @workgroup_size(256)
fn norm_backward_params(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = dims.dim;
    for (var col = gid.x; col < n; col += nwg.x * WG) {
        var dg = 0.0;
        var db = 0.0;
        for (var row = 0u; row < dims.rows; row++) {
            let xhat = (x[row * n + col] - row_mean[row]) * row_rstd[row];
            let d = dy[row * n + col];
            dg += d * xhat;
            db += d;
        }
        if dims.has_gain != 0u {
            dgain[col] = dg;
        }
        if dims.has_offset != 0u {
            doffset[col] = db;
        }
    }
}
