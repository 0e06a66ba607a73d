// A plain vec4 copy in the same dispatch shape as the element passes: the
// reference point for the optimizer step's memory bandwidth in `sfnap bench`.

@group(0) @binding(1) var<uniform> seg: Seg;
@group(0) @binding(2) var<storage, read_write> y: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> g: array<vec4<f32>>;

@compute @workgroup_size(256)
fn copy_vec4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var i = gid.x; i < seg.n_vec4; i += nwg.x * WG) {
        y[i] = g[i];
    }
}
