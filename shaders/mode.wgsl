// Eval/train mode switches of the (y, z) kinds: the parameter buffer holds y in
// train mode and x = (y - (1 - beta) z) / beta in eval mode.

@group(0) @binding(0) var<storage, read> s: Step;
@group(0) @binding(1) var<uniform> seg: Seg;
@group(0) @binding(2) var<storage, read_write> y: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> z: array<vec4<f32>>;

@compute @workgroup_size(256)
fn to_eval(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var i = gid.x; i < seg.n_vec4; i += nwg.x * WG) {
        y[i] = (y[i] - (1.0 - s.beta) * z[i]) / s.beta;
    }
}

// Also used by sf_plus, whose eval mode copies its explicit x into the parameters.
@compute @workgroup_size(256)
fn to_train(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var i = gid.x; i < seg.n_vec4; i += nwg.x * WG) {
        y[i] = s.beta * y[i] + (1.0 - s.beta) * z[i];
    }
}
