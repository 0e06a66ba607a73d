// Softmax cross-entropy over `classes` logits per row with integer targets:
//   loss_r = lse_r - logits[r, t_r],  lse_r = log(sum_j exp(logits[r, j]))
//   stats.mean = sum_r loss_r / rows,  stats.correct = #rows whose argmax is t_r
//   dlogits[r, j] = (softmax(logits_r)_j - (j == t_r)) / rows   (overwritten)
// A target out of range gives the row a NaN loss (and so a NaN mean) and counts
// as a miss. The argmax takes the lowest index among equal maxima.
//
// Two variants of the per-row kernel, chosen by the layer from the classes:
// short rows (classes <= 256) take one invocation per row, with no barriers and
// no workgroup memory; long rows take one workgroup per row with tree reductions.

struct LossDims {
    rows: u32,
    classes: u32,
    nan_bits: u32,   // 0x7fc00000: a NaN made at run time (a constant NaN is a shader-creation error)
    pad0: u32,
}

// Element 0 is the mean loss: the optimizer's loss buffer is filled from it.
struct LossStats {
    mean: f32,
    correct: u32,
    rows: u32,
    pad0: u32,
}

@group(0) @binding(0) var<uniform> dims: LossDims;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<u32>;
@group(0) @binding(3) var<storage, read_write> losses: array<f32>;
@group(0) @binding(4) var<storage, read_write> row_lse: array<f32>;
@group(0) @binding(5) var<storage, read_write> row_hit: array<f32>;
@group(0) @binding(6) var<storage, read_write> stats: LossStats;
@group(0) @binding(7) var<storage, read_write> dlogits: array<f32>;

var<workgroup> best_value: array<f32, 256>;
var<workgroup> best_index: array<u32, 256>;

// Whether (v, i) beats (w, j) as an argmax: larger, or equal with a lower index.
fn beats(v: f32, i: u32, w: f32, j: u32) -> bool {
    return v > w || (v == w && i < j);
}

// Every invocation of the workgroup must call this; returns the workgroup's
// (max, argmax) to all of them, in a fixed order.
fn workgroup_argmax(lid: u32, value: f32, index: u32) -> vec2<u32> {
    best_value[lid] = value;
    best_index[lid] = index;
    workgroupBarrier();
    for (var off = WG / 2u; off > 0u; off = off / 2u) {
        if lid < off && beats(best_value[lid + off], best_index[lid + off], best_value[lid], best_index[lid]) {
            best_value[lid] = best_value[lid + off];
            best_index[lid] = best_index[lid + off];
        }
        workgroupBarrier();
    }
    let result = vec2<u32>(bitcast<u32>(best_value[0]), best_index[0]);
    workgroupBarrier();
    return result;
}

// Invocations per workgroup of the one-invocation-per-row kernel.
const ROW_WG: u32 = 64u;

// The row's loss, lse and hit, given its maximum logit, argmax and log-sum-exp.
fn write_row(row: u32, best: u32, lse: f32) {
    let n = dims.classes;
    let label = targets[row];
    let valid = label < n;
    let nan = bitcast<f32>(dims.nan_bits);
    losses[row] = select(nan, lse - logits[row * n + min(label, n - 1u)], valid);
    row_lse[row] = lse;
    row_hit[row] = select(0.0, 1.0, valid && best == label);
}

// Short rows: one invocation per row (rows strided over the grid): the argmax
// and the sum of exponentials in increasing class order, then loss, lse and hit.
@compute @workgroup_size(64)
fn loss_rows_short(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = dims.classes;
    for (var row = gid.x; row < dims.rows; row += nwg.x * ROW_WG) {
        let base = row * n;
        var value = -3.4028234e38;
        var index = 0xffffffffu;
        for (var j = 0u; j < n; j++) {
            if beats(logits[base + j], j, value, index) {
                value = logits[base + j];
                index = j;
            }
        }
        var sum = 0.0;
        for (var j = 0u; j < n; j++) {
            sum += exp(logits[base + j] - value);
        }
        write_row(row, index, value + log(sum));
    }
}

// Long rows: one workgroup per row (rows strided by the number of workgroups):
// loss, lse and whether the argmax hits the target.
@compute @workgroup_size(256)
fn loss_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_id) lid: vec3<u32>) {
    let n = dims.classes;
    for (var row = wid.x; row < dims.rows; row += nwg.x) {
        let base = row * n;
        var value = -3.4028234e38;
        var index = 0xffffffffu;
        for (var j = lid.x; j < n; j += WG) {
            if beats(logits[base + j], j, value, index) {
                value = logits[base + j];
                index = j;
            }
        }
        let best = workgroup_argmax(lid.x, value, index);
        let max_logit = bitcast<f32>(best.x);
        var part = 0.0;
        for (var j = lid.x; j < n; j += WG) {
            part += exp(logits[base + j] - max_logit);
        }
        let lse = max_logit + log(workgroup_sum(lid.x, vec2<f32>(part, 0.0)).x);
        if lid.x == 0u {
            write_row(row, best.y, lse);
        }
    }
}

// One workgroup: the mean loss and the number of hits, summed in a fixed order.
@compute @workgroup_size(256)
fn loss_mean(@builtin(local_invocation_id) lid: vec3<u32>) {
    var part = vec2<f32>(0.0);
    for (var row = lid.x; row < dims.rows; row += WG) {
        part += vec2<f32>(losses[row], row_hit[row]);
    }
    let total = workgroup_sum(lid.x, part);
    if lid.x == 0u {
        stats.mean = total.x / f32(dims.rows);
        stats.correct = u32(round(total.y));
        stats.rows = dims.rows;
    }
}

// One invocation per logit: dlogits = (softmax - onehot) / rows.
@compute @workgroup_size(256)
fn loss_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = dims.classes;
    for (var i = gid.x; i < dims.rows * n; i += nwg.x * WG) {
        let row = i / n;
        let j = i % n;
        let p = exp(logits[i] - row_lse[row]);
        let onehot = select(0.0, 1.0, j == targets[row]);
        dlogits[i] = (p - onehot) / f32(dims.rows);
    }
}
