// Shared by the environment kernels (after philox.wgsl; cartpole.wgsl, acrobot.wgsl
// come after it): the bindings, the episode bookkeeping with auto-reset, the
// draws of episode starts and sin/cos to a known accuracy. Each environment file
// defines OBS_DIM, alias Obs and env_start(u) -> state, env_next(state, action) -> state,
// env_terminated(state) -> bool, env_reward(terminated) -> f32 and
// env_observation(state) -> Obs. A state is four numbers.

struct EnvParams {
    n: u32,             // environments
    seed_lo: u32,       // the generator's key
    seed_hi: u32,
    pad0: u32,
}

@group(0) @binding(0) var<uniform> params: EnvParams;
@group(0) @binding(1) var<storage, read_write> state: array<vec4<f32>>;
// Per environment: steps taken in the current episode, and the episode (from 0).
@group(0) @binding(2) var<storage, read_write> clock: array<vec2<u32>>;
@group(0) @binding(3) var<storage, read> actions: array<u32>;
// The observation to act on next (after an episode ended: the next one's first).
@group(0) @binding(4) var<storage, read_write> obs: array<f32>;
// The observation the step reached (an ended episode's last).
@group(0) @binding(5) var<storage, read_write> next_obs: array<f32>;
@group(0) @binding(6) var<storage, read_write> reward: array<f32>;
@group(0) @binding(7) var<storage, read_write> done: array<u32>;

const MAX_STEPS: u32 = 500u;
const TERMINATED: u32 = 1u;
const TRUNCATED: u32 = 2u;
// The purpose word of the draws that start an episode (src/rl/philox.rs: RESET).
const RESET_DRAW: u32 = 0u;
const ENV_WG: u32 = 64u;

// Four uniform numbers in [0, 1) for the draw [env, index, purpose, 0]: the top
// 24 bits of each word times 2^-24 (exact).
fn uniforms(env: u32, index: u32, purpose: u32) -> vec4<f32> {
    let words = philox(vec4<u32>(env, index, purpose, 0u), vec2<u32>(params.seed_lo, params.seed_hi));
    return vec4<f32>(words >> vec4<u32>(8u)) * (1.0 / 16777216.0);
}

// (sin x, cos x) within 2^-23 absolute for |x| < 100 on every device (WGSL's own
// sin and cos may be off by 2^-11): x reduced by whole quarter turns (pi/2 in
// three parts, the first two exact in products with small integers) to
// [-pi/4, pi/4], then Cephes' single-precision polynomials.
fn sin_cos(x: f32) -> vec2<f32> {
    let q = round(x * 0.63661977236758134);
    let r = ((x - q * 1.5703125) - q * 4.837512969970703125e-4) - q * 7.54978995489188216e-8;
    let z = r * r;
    let s = r + r * z * ((-1.9515295891e-4 * z + 8.3321608736e-3) * z - 1.6666654611e-1);
    let c = 1.0 - 0.5 * z + z * z * ((2.443315711809948e-5 * z - 1.388731625493765e-3) * z + 4.166664568298827e-2);
    switch (i32(q) & 3) {
        case 0: { return vec2<f32>(s, c); }
        case 1: { return vec2<f32>(c, -s); }
        case 2: { return vec2<f32>(-s, -c); }
        default: { return vec2<f32>(-c, s); }
    }
}

// The start of episode `episode` of environment i.
fn start(i: u32, episode: u32) -> vec4<f32> {
    return env_start(uniforms(i, episode, RESET_DRAW));
}

fn write_obs(i: u32, o: Obs) {
    for (var k = 0u; k < OBS_DIM; k++) {
        obs[i * OBS_DIM + k] = o[k];
    }
}

fn write_next_obs(i: u32, o: Obs) {
    for (var k = 0u; k < OBS_DIM; k++) {
        next_obs[i * OBS_DIM + k] = o[k];
    }
}

// Every environment at the start of its episode 0.
@compute @workgroup_size(ENV_WG)
fn env_reset(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if i >= params.n {
        return;
    }
    let s = start(i, 0u);
    state[i] = s;
    clock[i] = vec2<u32>(0u, 0u);
    write_obs(i, env_observation(s));
}

// One step of every environment under its action; an episode that ends
// (terminated, or truncated at MAX_STEPS) is followed by the next one's start.
@compute @workgroup_size(ENV_WG)
fn env_step(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if i >= params.n {
        return;
    }
    var s = env_next(state[i], actions[i]);
    var steps = clock[i].x + 1u;
    var episode = clock[i].y;
    let terminated = env_terminated(s);
    let flags = select(0u, TERMINATED, terminated) | select(0u, TRUNCATED, steps >= MAX_STEPS);
    write_next_obs(i, env_observation(s));
    reward[i] = env_reward(terminated);
    done[i] = flags;
    if flags != 0u {
        episode += 1u;
        steps = 0u;
        s = start(i, episode);
    }
    state[i] = s;
    clock[i] = vec2<u32>(steps, episode);
    write_obs(i, env_observation(s));
}
