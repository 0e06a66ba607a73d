// NaP: group norms (three passes) and the projection back to each group's rho.
//
// Pass 1 and the projection are chunk passes over pieces of the arena's reduction
// chunks (common.wgsl, src/optim/chunks.rs): pass 1 writes one partial per
// invocation, chunks.wgsl adds them into one partial per chunk, pass 2 sums each
// group's chunks in a fixed order; the projection then rescales every piece of a
// group. Pieces of tensors outside every group do nothing. x_of and y_of are
// elementwise.wgsl's.

// A group: its chunk ids are chunk_ids[start..end]; rho is its target norm.
struct Group {
    start: u32,
    end: u32,
    rho: f32,
    pad0: u32,
}

const MIN_NORM: f32 = 1e-12;

@group(0) @binding(0) var<storage, read> s: Step;
@group(0) @binding(1) var<uniform> seg: Seg;
@group(0) @binding(2) var<storage, read_write> y: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read> partials: array<vec2<f32>>;
@group(0) @binding(9) var<storage, read> pieces: array<Piece>;
@group(0) @binding(10) var<storage, read_write> groups: array<Group>;
@group(0) @binding(13) var<storage, read_write> norms: array<vec2<f32>>;
@group(0) @binding(17) var<storage, read> chunk_ids: array<u32>;
@group(0) @binding(20) var<storage, read_write> lanes: array<vec2<f32>>;

// The piece in `slot`, with no vec4s to visit outside every group. Every pass
// here walks it the same way: trip t < PIECE_TRIPS of invocation lid visits
// vec4 p.offset + j, j = piece_vec4(lid, t), when j < p.len. (WGSL cannot pass
// the loop's body, and one loop branching on the pass would make every entry
// point use every binding, so each entry point writes the loop out.)
fn nap_piece(slot: u32) -> Piece {
    var p = pieces[slot];
    p.len = select(p.len, 0u, p.group == NO_GROUP);
    return p;
}

// Pass 1, adamw (one sequence w = y): partial = (|w|^2, |w|^2).
@compute @workgroup_size(256)
fn norms_w(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let slot = piece_slot(seg.piece_base, lid.x, wid.x);
    let p = nap_piece(slot);
    var acc = 0.0;
    for (var t = 0u; t < PIECE_TRIPS; t++) {
        let j = piece_vec4(lid.x, t);
        if j < p.len {
            let w = y[p.offset + j];
            acc += dot(w, w);
        }
    }
    lanes[lane_slot(slot, lid.x)] = vec2<f32>(acc, acc);
}

// Pass 1, (y, z) kinds: partial = (|z|^2, |x|^2) with x = (y - (1 - beta) z) / beta.
@compute @workgroup_size(256)
fn norms_sf(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let slot = piece_slot(seg.piece_base, lid.x, wid.x);
    let p = nap_piece(slot);
    var acc = vec2<f32>(0.0);
    for (var t = 0u; t < PIECE_TRIPS; t++) {
        let j = piece_vec4(lid.x, t);
        if j < p.len {
            let i = p.offset + j;
            let zi = z_at(i);
            let xi = x_of(y[i], zi, s.beta);
            acc += vec2<f32>(dot(zi, zi), dot(xi, xi));
        }
    }
    lanes[lane_slot(slot, lid.x)] = acc;
}

// Pass 1, sf_plus (explicit x): partial = (|z|^2, |x|^2).
@compute @workgroup_size(256)
fn norms_plus(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let slot = piece_slot(seg.piece_base, lid.x, wid.x);
    let p = nap_piece(slot);
    var acc = vec2<f32>(0.0);
    for (var t = 0u; t < PIECE_TRIPS; t++) {
        let j = piece_vec4(lid.x, t);
        if j < p.len {
            let i = p.offset + j;
            let zi = z_at(i);
            let xi = x_at(i);
            acc += vec2<f32>(dot(zi, zi), dot(xi, xi));
        }
    }
    lanes[lane_slot(slot, lid.x)] = acc;
}

// Pass 2: one workgroup per group sums its chunks' partials in chunk order.
@compute @workgroup_size(256)
fn group_norms(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let grp = groups[wid.x];
    var acc = vec2<f32>(0.0);
    for (var i = grp.start + lid.x; i < grp.end; i += WG) {
        acc += partials[chunk_ids[i]];
    }
    let total = workgroup_sum(lid.x, acc);
    if lid.x == 0u {
        let norm = sqrt(total);
        norms[wid.x] = norm;
        // An overflowing norm would project the group to zero: stop the run instead.
        report_health(not_finite(vec4<f32>(norm, 0.0, 0.0), HEALTH_NORM));
    }
}

// Registration, after pass 2 on the initial parameters: rho = the group's norm
// now, for every group whose rho was not given (0).
@compute @workgroup_size(64)
fn init_rho(@builtin(global_invocation_id) gid: vec3<u32>) {
    if gid.x < arrayLength(&groups) && groups[gid.x].rho <= 0.0 {
        groups[gid.x].rho = norms[gid.x].x;
    }
}

// rho / max(norm, MIN_NORM) for the (z, x) norms of a piece's group.
fn scales(p: Piece) -> vec2<f32> {
    let gi = min(p.group, arrayLength(&groups) - 1u); // any group: unused when NO_GROUP
    return groups[gi].rho / max(norms[gi], vec2<f32>(MIN_NORM));
}

// Projection, adamw: w = proj(w).
@compute @workgroup_size(256)
fn project_w(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let p = nap_piece(piece_slot(seg.piece_base, lid.x, wid.x));
    let k = scales(p).x;
    for (var t = 0u; t < PIECE_TRIPS; t++) {
        let j = piece_vec4(lid.x, t);
        if j < p.len {
            y[p.offset + j] *= k;
        }
    }
}

// Projection, (y, z) kinds: z = proj(z), x = proj(x), y = beta x + (1 - beta) z.
@compute @workgroup_size(256)
fn project_sf(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let p = nap_piece(piece_slot(seg.piece_base, lid.x, wid.x));
    let k = scales(p);
    for (var t = 0u; t < PIECE_TRIPS; t++) {
        let j = piece_vec4(lid.x, t);
        if j < p.len {
            let i = p.offset + j;
            let zi = z_at(i);
            let xi = x_of(y[i], zi, s.beta);
            let zp = k.x * zi;
            set_z(i, zp, NAP_STREAM);
            y[i] = y_of(k.y * xi, zp, s.beta);
        }
    }
}

// Projection, sf_plus: z = proj(z), x = proj(x), y = beta_k x + (1 - beta_k) z.
@compute @workgroup_size(256)
fn project_plus(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let p = nap_piece(piece_slot(seg.piece_base, lid.x, wid.x));
    let k = scales(p);
    for (var t = 0u; t < PIECE_TRIPS; t++) {
        let j = piece_vec4(lid.x, t);
        if j < p.len {
            let i = p.offset + j;
            let zp = k.x * z_at(i);
            let xp = k.y * x_at(i);
            set_z(i, zp, NAP_STREAM);
            set_x(i, xp, NAP_STREAM);
            y[i] = y_of(xp, zp, s.beta);
        }
    }
}
