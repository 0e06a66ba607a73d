// The optimizer's state buffers (z, v, m, x) with f32 state: one f32 per value.
// Kernels read and write them only through these accessors; state_bf16.wgsl
// gives the same accessors over bf16 state. `stream` (0: the step's pass,
// NAP_STREAM: NaP's projection) picks bf16's random bits; f32 ignores it.

@group(0) @binding(4) var<storage, read_write> z: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> v: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> m: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> x: array<vec4<f32>>;

const NAP_STREAM: u32 = 8u;

fn z_at(i: u32) -> vec4<f32> { return z[i]; }
fn v_at(i: u32) -> vec4<f32> { return v[i]; }
fn m_at(i: u32) -> vec4<f32> { return m[i]; }
fn x_at(i: u32) -> vec4<f32> { return x[i]; }
fn set_z(i: u32, val: vec4<f32>, stream: u32) { z[i] = val; }
fn set_v(i: u32, val: vec4<f32>, stream: u32) { v[i] = val; }
fn set_m(i: u32, val: vec4<f32>, stream: u32) { m[i] = val; }
fn set_x(i: u32, val: vec4<f32>, stream: u32) { x[i] = val; }
// Rounded to nearest where the state starts at the parameters (a copy here).
fn init_z(i: u32, val: vec4<f32>) { z[i] = val; }
fn init_x(i: u32, val: vec4<f32>) { x[i] = val; }
