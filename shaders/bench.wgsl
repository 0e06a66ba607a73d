// Bandwidth reference of `sfnap bench`: dst = src, vec4 by vec4. On a CPU driver
// (lavapipe) a dispatch runs on every core, where `copy_buffer_to_buffer` may be
// one thread's memcpy. The access order and grid are the optimizer's element
// passes' (shaders/elementwise.wgsl): each group of 8 invocations sweeps runs of 8
// vec4s, the grid strides over the rest, so the copy is laid out as a step is.
// Bindings: 0 the source, 1 the destination (as long as the source, or longer).

@group(0) @binding(0) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<f32>>;

@compute @workgroup_size(256)
fn copy_vec4(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let n = arrayLength(&src);
    for (var i = elem_first(lid.x, wid.x); i < n; i = elem_next(i, nwg.x)) {
        dst[i] = src[i];
    }
}
