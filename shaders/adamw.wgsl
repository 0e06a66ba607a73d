// Fused element pass of the adamw baseline: decoupled weight decay, bias-corrected
// Adam moments, step lr_k = lr * schedule(k) (in s.gamma). The element loop is
// elementwise.wgsl's.

@group(0) @binding(0) var<storage, read> s: Step;
@group(0) @binding(1) var<uniform> seg: Seg;
@group(0) @binding(2) var<storage, read_write> y: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> g: array<vec4<f32>>;

@compute @workgroup_size(256)
fn adamw_step(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    for (var i = elem_first(lid.x, wid.x); i < seg.n_vec4; i = elem_next(i, nwg.x)) {
        let gi = g[i];
        let mi = s.b1 * m_at(i) + (1.0 - s.b1) * gi;
        let vi = s.b2 * v_at(i) + (1.0 - s.b2) * gi * gi;
        set_m(i, mi, 0u);
        set_v(i, vi, 0u);
        let d = sqrt(vi * s.inv_bc2) + s.eps;
        let w = y[i] * (1.0 - s.gamma * select(0.0, s.wd, i < seg.wd_end));
        let y_new = w - s.gamma * (mi * s.inv_bc1) / d;
        y[i] = y_new;
        watch(gi, y_new, d);
    }
    report_watched();
}
