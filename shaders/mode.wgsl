// Eval/train mode switches of the (y, z) kinds: the parameter buffer holds y in
// train mode and x = (y - (1 - beta) z) / beta in eval mode. The element loop,
// x_of and y_of are elementwise.wgsl's.

@group(0) @binding(0) var<storage, read> s: Step;
@group(0) @binding(1) var<uniform> seg: Seg;
@group(0) @binding(2) var<storage, read_write> y: array<vec4<f32>>;

@compute @workgroup_size(256)
fn to_eval(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    for (var i = elem_first(lid.x, wid.x); i < seg.n_vec4; i = elem_next(i, nwg.x)) {
        y[i] = x_of(y[i], z_at(i), s.beta);
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
        y[i] = y_of(y[i], z_at(i), s.beta);
    }
}

// State that starts at the parameters (z; sf_plus's x): bf16 state rounds them to nearest.
@compute @workgroup_size(256)
fn z_from_params(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    for (var i = elem_first(lid.x, wid.x); i < seg.n_vec4; i = elem_next(i, nwg.x)) {
        init_z(i, y[i]);
    }
}

@compute @workgroup_size(256)
fn x_from_params(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    for (var i = elem_first(lid.x, wid.x); i < seg.n_vec4; i = elem_next(i, nwg.x)) {
        init_x(i, y[i]);
    }
}

// sf_plus's eval mode: its explicit x (widened) into the parameters.
@compute @workgroup_size(256)
fn params_from_x(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    for (var i = elem_first(lid.x, wid.x); i < seg.n_vec4; i = elem_next(i, nwg.x)) {
        y[i] = x_at(i);
    }
}
