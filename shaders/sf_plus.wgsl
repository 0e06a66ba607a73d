// ScheduleFree+ (sf_plus): the first pass of its global sums (then chunks.wgsl,
// then polyak.wgsl), and the fused element pass. Explicit state: x, z, m, v; y
// is the parameter buffer. The element loop and y_of are elementwise.wgsl's.

@group(0) @binding(0) var<storage, read> s: Step;
@group(0) @binding(1) var<uniform> seg: Seg;
@group(0) @binding(2) var<storage, read_write> y: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> g: array<vec4<f32>>;
@group(0) @binding(9) var<storage, read> pieces: array<Piece>;
@group(0) @binding(20) var<storage, read_write> lanes: array<vec2<f32>>;

// Pass 1 of the global sums, over pieces (common.wgsl): each invocation writes
// its (sum |g|, sum g . (z - x)).
@compute @workgroup_size(256)
fn plus_sums(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let slot = piece_slot(seg.piece_base, lid.x, wid.x);
    let p = pieces[slot];
    var acc = vec2<f32>(0.0);
    for (var t = 0u; t < PIECE_TRIPS; t++) {
        let j = piece_vec4(lid.x, t);
        if j < p.len {
            let i = p.offset + j;
            let gi = g[i];
            acc += vec2<f32>(dot(abs(gi), vec4<f32>(1.0)), dot(gi, z_at(i) - x_at(i)));
        }
    }
    lanes[lane_slot(slot, lid.x)] = acc;
}

// z -= gamma^2 wd y (AdamC); Adam moments; z -= gamma m_hat / (sqrt(v_hat) + eps);
// x = (1 - c) x + c z; y = beta_k x + (1 - beta_k) z.
@compute @workgroup_size(256)
fn plus_step(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    if s.skip != 0u {
        return; // the scalar kernel found an error: leave the weights as they are
    }
    for (var i = elem_first(lid.x, wid.x); i < seg.n_vec4; i = elem_next(i, nwg.x)) {
        let gi = g[i];
        let yi = y[i];
        let mi = s.b1 * m_at(i) + (1.0 - s.b1) * gi;
        let vi = s.b2 * v_at(i) + (1.0 - s.b2) * gi * gi;
        set_m(i, mi, 0u);
        set_v(i, vi, 0u);
        let d = sqrt(vi * s.inv_bc2) + s.eps;
        var zi = z_at(i) - s.gamma * s.gamma * select(0.0, s.wd, i < seg.wd_end) * yi;
        zi -= s.gamma * (mi * s.inv_bc1) / d;
        let xi = (1.0 - s.c) * x_at(i) + s.c * zi;
        let y_new = y_of(xi, zi, s.beta);
        set_z(i, zi, 0u);
        set_x(i, xi, 0u);
        y[i] = y_new;
        watch(gi, y_new, abs(zi) + abs(xi) + d);
    }
    report_watched();
}
