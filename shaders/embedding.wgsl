// Token embedding: out[n, c] = table[ids[n], c] for ids [tokens], table [vocab, dim].
// An id out of range gives its row NaNs (so the loss shows it) and no gradient.
//
// Backward without float atomics, deterministic: the tokens that share an id
// are chained in increasing order,
//   heads[v] = first n with ids[n] = v (or NONE),  next[n] = next n' > n with ids[n'] = ids[n] (or NONE),
// and one invocation per table element walks the chain of its row:
//   dtable[v, c] = sum over the chain of dout[n, c]   (overwritten; 0 for unused rows).
// heads is built with the integer atomicMin, whose result does not depend on order.
// Building `next` costs O(tokens^2) comparisons per step.

struct EmbedDims {
    tokens: u32,
    vocab: u32,
    dim: u32,
    nan_bits: u32,   // 0x7fc00000: a NaN made at run time (a constant NaN is a shader-creation error)
}

const NONE: u32 = 0xffffffffu;

@group(0) @binding(0) var<uniform> dims: EmbedDims;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read> table: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read> dout: array<f32>;
@group(0) @binding(5) var<storage, read_write> heads: array<atomic<u32>>;
@group(0) @binding(6) var<storage, read_write> next: array<u32>;
@group(0) @binding(7) var<storage, read_write> dtable: array<f32>;

// One invocation per output element.
@compute @workgroup_size(256)
fn embedding_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var i = gid.x; i < dims.tokens * dims.dim; i += nwg.x * WG) {
        let id = ids[i / dims.dim];
        let c = i % dims.dim;
        let nan = bitcast<f32>(dims.nan_bits);
        out[i] = select(nan, table[min(id, dims.vocab - 1u) * dims.dim + c], id < dims.vocab);
    }
}

// One invocation per vocabulary row: no token seen yet.
@compute @workgroup_size(256)
fn embedding_clear(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var v = gid.x; v < dims.vocab; v += nwg.x * WG) {
        atomicStore(&heads[v], NONE);
    }
}

// One invocation per token n: offers n as the head of its id, finds its successor.
@compute @workgroup_size(256)
fn embedding_link(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var n = gid.x; n < dims.tokens; n += nwg.x * WG) {
        let id = ids[n];
        var successor = NONE;
        if id < dims.vocab {
            atomicMin(&heads[id], n);
            for (var m = n + 1u; m < dims.tokens; m++) {
                if ids[m] == id {
                    successor = m;
                    break;
                }
            }
        }
        next[n] = successor;
    }
}

// One invocation per table element: the sum of its row's chain, in token order.
@compute @workgroup_size(256)
fn embedding_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var i = gid.x; i < dims.vocab * dims.dim; i += nwg.x * WG) {
        let c = i % dims.dim;
        var acc = 0.0;
        var n = atomicLoad(&heads[i / dims.dim]);
        while n != NONE {
            acc += dout[n * dims.dim + c];
            n = next[n];
        }
        dtable[i] = acc;
    }
}
