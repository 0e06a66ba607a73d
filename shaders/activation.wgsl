// Element-wise activations and their gradients, one invocation per element
// (elements strided by the dispatch size). Gradients are overwritten.
//   ReLU: y = max(x, 0),  dx = dy where x > 0, else 0 (also at x = 0).
//   GELU, tanh approximation (as in GPT-2):
//     y = x/2 (1 + tanh(u)),  u = sqrt(2/pi) (x + 0.044715 x^3)
//     dx = dy (1/2 (1 + tanh(u)) + x/2 (1 - tanh(u)^2) sqrt(2/pi) (1 + 3 0.044715 x^2))

struct ActDims {
    len: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<uniform> dims: ActDims;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;

const SQRT_2_OVER_PI: f32 = 0.7978845608028654;
const GELU_C: f32 = 0.044715;

// tanh through exp(-2|u|), which cannot overflow (some backends' tanh returns NaN
// for large arguments).
fn stable_tanh(u: f32) -> f32 {
    let t = exp(-2.0 * abs(u));
    return sign(u) * (1.0 - t) / (1.0 + t);
}

@compute @workgroup_size(256)
fn relu_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var i = gid.x; i < dims.len; i += nwg.x * WG) {
        y[i] = max(x[i], 0.0);
    }
}

@compute @workgroup_size(256)
fn relu_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var i = gid.x; i < dims.len; i += nwg.x * WG) {
        dx[i] = select(0.0, dy[i], x[i] > 0.0);
    }
}

@compute @workgroup_size(256)
fn gelu_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var i = gid.x; i < dims.len; i += nwg.x * WG) {
        let v = x[i];
        let th = stable_tanh(SQRT_2_OVER_PI * (v + GELU_C * v * v * v));
        y[i] = 0.5 * v * (1.0 + th);
    }
}

@compute @workgroup_size(256)
fn gelu_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var i = gid.x; i < dims.len; i += nwg.x * WG) {
        let v = x[i];
        let th = stable_tanh(SQRT_2_OVER_PI * (v + GELU_C * v * v * v));
        let du = SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_C * v * v);
        dx[i] = dy[i] * (0.5 * (1.0 + th) + 0.5 * v * (1.0 - th * th) * du);
    }
}
