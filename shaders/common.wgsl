// Shared declarations, prepended to every kernel file by `gpu::kernels`.

// Per-step scalars. The host writes all of them (f64 math, rounded once); for
// sf_plus the scalar kernel then overwrites gamma, c and skip on the device.
struct Step {
    gamma: f32,         // step size of this step (adamw: lr_k)
    c: f32,             // averaging weight of z into x
    beta: f32,          // interpolation weight: y = beta x + (1 - beta) z
    wd: f32,            // weight decay
    b1: f32,
    b2: f32,
    inv_bc1: f32,       // 1 / (1 - b1^t)
    inv_bc2: f32,       // 1 / (1 - b2^t), 1 for adamw_sf_paper
    eps: f32,
    adaptive: f32,      // radam_sf: 1 once rho_t > 4, else 0; 1 for the other Adam kinds
    mu: f32,            // inner momentum of adamw_sf
    inv_bcmu: f32,      // 1 / (1 - mu^t)
    lr: f32,            // sf_plus: max(lr, eps)
    t_pow_r: f32,       // sf_plus: t^r
    p: f32,             // sf_plus: weight_lr_power
    polyak_beta: f32,   // sf_plus
    inv_bcp: f32,       // sf_plus: 1 / (1 - polyak_beta^t)
    warm: f32,          // sf_plus: 1 while k < c_warmup
    skip: u32,          // sf_plus: 1 when the step must not touch the weights
    step: u32,          // this step's number, from 1 (what health flags record)
    growth: f32,        // sf_plus: the Polyak step's largest growth per step; 0: no cap (the reference)
    seed: u32,          // bf16 state: state_seed, the seed of stochastic rounding's bits
    rounding: u32,      // bf16 state: 0 stochastic, 1 to nearest
    pad2: u32,
}

// One binding range of the arena (a segment) and its slices of the side tables.
struct Seg {
    n_vec4: u32,        // vec4s in this segment
    wd_end: u32,        // vec4s [0, wd_end) of this segment take weight decay
    piece_base: u32,    // first piece slot of this segment (chunk passes)
    first_vec4: u32,    // the segment's first vec4 in the arena (bf16 state's element numbers)
    state_base: u32,    // bf16 state: the segment's first word pair in its bound range
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

// A piece of a reduction chunk: at most 32 vec4s of one tensor (src/optim/chunks.rs).
struct Piece {
    offset: u32,        // first vec4, relative to the segment
    len: u32,           // vec4s (0 in the slots that fill a segment's last workgroup)
    group: u32,         // NaP group, or NO_GROUP
    pad0: u32,
}

const NO_GROUP: u32 = 0xffffffffu;

const WG: u32 = 256u;

// The chunk passes hold no barrier: in workgroup wid, the 8 invocations lid / 8
// sweep piece slot piece_slot(...), invocation lid taking vec4s piece_vec4(lid, t)
// for t < PIECE_TRIPS (runs of 8 consecutive vec4s), and each writes its own
// partial at lane_slot(...).
const PIECE_TRIPS: u32 = 4u;

fn piece_slot(piece_base: u32, lid: u32, wid: u32) -> u32 {
    return piece_base + wid * (WG / 8u) + lid / 8u;
}

fn piece_vec4(lid: u32, t: u32) -> u32 {
    return lid % 8u + 8u * t;
}

fn lane_slot(slot: u32, lid: u32) -> u32 {
    return slot * 8u + lid % 8u;
}
