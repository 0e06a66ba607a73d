// Residual connections: y = a + b element-wise. The same kernel sums the two
// gradients that meet where the residual stream branches.

struct AddDims {
    len: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<uniform> dims: AddDims;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> sum: array<f32>;

// One invocation per element, strided over the grid.
@compute @workgroup_size(256)
fn add(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var i = gid.x; i < dims.len; i += nwg.x * WG) {
        sum[i] = a[i] + b[i];
    }
}
