// Eval/train mode switches of the (y, z) kinds: the parameter buffer holds y in
// train mode and x = (y - (1 - beta) z) / beta in eval mode.

@group(0) @binding(0) var<storage, read> s: Step;
@group(0) @binding(1) var<uniform> seg: Seg;
@group(0) @binding(2) var<storage, read_write> y: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> z: array<vec4<f32>>;

// The element loop, as in sf_step.wgsl (where it is explained).
const ELEM_RUN: u32 = 8u;

fn elem_first(lid: u32, wid: u32) -> u32 {
    return wid * WG * ELEM_RUN + (lid / 8u) * 8u * ELEM_RUN + lid % 8u;
}

fn elem_next(i: u32, nwg: u32) -> u32 {
    let run_done = (i / 8u) % ELEM_RUN == ELEM_RUN - 1u;
    return select(i + 8u, i + nwg * WG * ELEM_RUN - 8u * (ELEM_RUN - 1u), run_done);
}

@compute @workgroup_size(256)
fn to_eval(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    for (var i = elem_first(lid.x, wid.x); i < seg.n_vec4; i = elem_next(i, nwg.x)) {
        y[i] = (y[i] - (1.0 - s.beta) * z[i]) / s.beta;
    }
}

// Also used by sf_plus, whose eval mode copies its explicit x into the parameters.
@compute @workgroup_size(256)
fn to_train(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    for (var i = elem_first(lid.x, wid.x); i < seg.n_vec4; i = elem_next(i, nwg.x)) {
        y[i] = s.beta * y[i] + (1.0 - s.beta) * z[i];
    }
}
