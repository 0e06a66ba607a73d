// Fused element pass of the Schedule-Free kinds that keep (y, z): sgd_sf, adamw_sf
// (with and without inner momentum), adamw_sf_paper and radam_sf. One loop trip
// updates one vec4; the element loop (elementwise.wgsl) covers the whole
// segment, so the dispatch size does not depend on the number or sizes of the
// tensors.

@group(0) @binding(0) var<storage, read> s: Step;
@group(0) @binding(1) var<uniform> seg: Seg;
@group(0) @binding(2) var<storage, read_write> y: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> g: array<vec4<f32>>;

// u += wd * y; y = lerp(y, z, c) + gamma (beta (1 - c) - 1) u (old z); z -= gamma u.
// `g` and `state` are passed on to the health sums with what it writes.
fn sf_update(i: u32, u_raw: vec4<f32>, g_i: vec4<f32>, state: vec4<f32>) {
    let yi = y[i];
    let zi = z_at(i);
    let u = u_raw + select(0.0, s.wd, i < seg.wd_end) * yi;
    let y_new = yi + s.c * (zi - yi) + s.gamma * (s.beta * (1.0 - s.c) - 1.0) * u;
    let z_new = zi - s.gamma * u;
    y[i] = y_new;
    set_z(i, z_new, 0u);
    watch(g_i, y_new, abs(z_new) + abs(state));
}

// v = b2 v + (1 - b2) g^2; returns the Adam denominator sqrt(v / (1 - b2^t)) + eps.
// (A v that overflows leaves y finite, so callers check the denominator.)
fn adam_denom(i: u32, gi: vec4<f32>) -> vec4<f32> {
    let vi = s.b2 * v_at(i) + (1.0 - s.b2) * gi * gi;
    set_v(i, vi, 0u);
    return sqrt(vi * s.inv_bc2) + s.eps;
}

@compute @workgroup_size(256)
fn sgd_sf_step(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    for (var i = elem_first(lid.x, wid.x); i < seg.n_vec4; i = elem_next(i, nwg.x)) {
        let gi = g[i];
        sf_update(i, gi, gi, vec4<f32>(0.0));
    }
    report_watched();
}

@compute @workgroup_size(256)
fn adam_sf_step(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    for (var i = elem_first(lid.x, wid.x); i < seg.n_vec4; i = elem_next(i, nwg.x)) {
        let gi = g[i];
        let d = adam_denom(i, gi);
        // radam_sf before rho_t > 4 takes the plain gradient (adaptive = 0).
        sf_update(i, select(gi, gi / d, s.adaptive > 0.5), gi, d);
    }
    report_watched();
}

@compute @workgroup_size(256)
fn adam_sf_momentum_step(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    for (var i = elem_first(lid.x, wid.x); i < seg.n_vec4; i = elem_next(i, nwg.x)) {
        let gi = g[i];
        let d = adam_denom(i, gi);
        let mi = s.mu * m_at(i) + (1.0 - s.mu) * gi;
        set_m(i, mi, 0u);
        sf_update(i, mi * s.inv_bcmu / d, gi, d);
    }
    report_watched();
}
