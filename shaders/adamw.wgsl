// Fused element pass of the adamw baseline: decoupled weight decay, bias-corrected
// Adam moments, step lr_k = lr * schedule(k) (in s.gamma).

@group(0) @binding(0) var<storage, read> s: Step;
@group(0) @binding(1) var<uniform> seg: Seg;
@group(0) @binding(2) var<storage, read_write> y: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> g: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> v: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> m: array<vec4<f32>>;

@compute @workgroup_size(256)
fn adamw_step(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var i = gid.x; i < seg.n_vec4; i += nwg.x * WG) {
        let gi = g[i];
        let mi = s.b1 * m[i] + (1.0 - s.b1) * gi;
        let vi = s.b2 * v[i] + (1.0 - s.b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        let w = y[i] * (1.0 - s.gamma * select(0.0, s.wd, i < seg.wd_end));
        y[i] = w - s.gamma * (mi * s.inv_bc1) / (sqrt(vi * s.inv_bc2) + s.eps);
    }
}
