// The evaluation weights x of the (y, z) kinds written into another buffer,
// leaving the parameters (y) untouched: evaluation during training then does not
// perturb the training trajectory. x_of is elementwise.wgsl's.

@group(0) @binding(0) var<storage, read> s: Step;
@group(0) @binding(1) var<uniform> seg: Seg;
@group(0) @binding(2) var<storage, read> y: array<vec4<f32>>;
@group(0) @binding(18) var<storage, read_write> out: array<vec4<f32>>;

@compute @workgroup_size(256)
fn x_into(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var i = gid.x; i < seg.n_vec4; i += nwg.x * WG) {
        out[i] = x_of(y[i], z_at(i), s.beta);
    }
}

// sf_plus's explicit x (widened) into another buffer.
@compute @workgroup_size(256)
fn x_copy_into(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var i = gid.x; i < seg.n_vec4; i += nwg.x * WG) {
        out[i] = x_at(i);
    }
}
