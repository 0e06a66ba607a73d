// The DQN agent's kernels (after philox.wgsl; src/rl/agent.rs and its parts
// bind them): the network's input from the environments' observations, the
// epsilon-greedy actions, the replay buffer's writes and samples, the episode
// returns, and the Double-DQN targets with the Huber loss. Each entry uses
// some of the bindings below; 0 is the uniform.
//
// The clock (binding 1): [agent steps taken, learn steps taken, 0, 0]. A step
// of the agent steps every environment once; `episodes` advances it, `td_mean`
// advances the learn steps. Nothing here waits for the host.
//
// A replay row (binding 9), `2 * input + 4` f32: the observation, the next
// observation (each `input` wide), then the action, the reward, 1 if the step
// terminated its episode (else 0), and the number of valid actions, all exact
// in f32. A batch row's info (binding 12) is the last four of those.

struct DqnParams {
    n: u32,             // rows: environments, or the batch's rows
    input: u32,         // the network's input width
    obs_dim: u32,       // the environment's observation width (at most input)
    valid: u32,         // the environment's actions (at most head)
    head: u32,          // the network's outputs
    capacity: u32,      // replay rows
    seed_lo: u32,       // the generator's key
    seed_hi: u32,
    eps_decay: u32,     // agent steps of epsilon's linear decay
    levels: u32,        // offset levels (1: one level)
    switch_every: u32,  // agent steps per level
    kind: u32,          // the environment's number in the episode log
    eps_start: f32,
    eps_end: f32,
    gamma: f32,
    envs: u32,          // environments (sample: the rows a step writes)
    reward_scale: f32,  // store: what the rewards are multiplied by
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<uniform> params: DqnParams;
@group(0) @binding(1) var<storage, read_write> clock: array<u32>;
// The environments' obs (observe) or next_obs (store), obs_dim per row.
@group(0) @binding(2) var<storage, read> env_obs: array<f32>;
// levels rows of input offsets.
@group(0) @binding(3) var<storage, read> offsets: array<f32>;
// The network's input for acting: n rows of input (observe writes, store reads).
@group(0) @binding(4) var<storage, read_write> net_in: array<f32>;
// Q-values [rows, head].
@group(0) @binding(5) var<storage, read> q: array<f32>;
@group(0) @binding(6) var<storage, read_write> actions: array<u32>;
@group(0) @binding(7) var<storage, read> reward: array<f32>;
@group(0) @binding(8) var<storage, read> done: array<u32>;
@group(0) @binding(9) var<storage, read_write> replay: array<f32>;
@group(0) @binding(10) var<storage, read_write> batch_obs: array<f32>;
@group(0) @binding(11) var<storage, read_write> batch_next: array<f32>;
@group(0) @binding(12) var<storage, read_write> batch_info: array<f32>;
// The online network's Q-values at the next observations, and the target network's.
@group(0) @binding(13) var<storage, read> q_next: array<f32>;
@group(0) @binding(14) var<storage, read> q_target: array<f32>;
@group(0) @binding(15) var<storage, read_write> dq: array<f32>;
@group(0) @binding(16) var<storage, read_write> losses: array<f32>;
// [mean loss of the last learn step, 0, 0, 0].
@group(0) @binding(17) var<storage, read_write> stats: array<f32>;
// Per environment: the running episode's return and length.
@group(0) @binding(18) var<storage, read_write> running: array<f32>;
// [ended episodes, 0, 0, 0], then per ended episode: return (f32 bits),
// length, the agent step it ended in, the environment's number.
@group(0) @binding(19) var<storage, read_write> episode_log: array<u32>;

// The purpose words of the agent's draws (src/rl/philox.rs: ACT, SAMPLE).
const ACT_DRAW: u32 = 1u;
const SAMPLE_DRAW: u32 = 2u;
const TERMINATED: u32 = 1u;
const ROW_WG: u32 = 64u;

fn draw(a: u32, b: u32, purpose: u32) -> vec4<u32> {
    return philox(vec4<u32>(a, b, purpose, 0u), vec2<u32>(params.seed_lo, params.seed_hi));
}

// The offset level of agent step t.
fn level(t: u32) -> u32 {
    return (t / params.switch_every) % params.levels;
}

// Feature k of an observation row under `lvl`: the observation plus the level's
// offset, 0 beyond the environment's width, and 1 in the last column (the
// first layer's bias: src/rl/variant.rs, Variant::input).
fn feature(o: ptr<function, array<f32, 16>>, k: u32, lvl: u32) -> f32 {
    if k + 1u == params.input {
        return 1.0;
    }
    if k >= params.obs_dim {
        return 0.0;
    }
    return (*o)[k] + offsets[lvl * params.input + k];
}

// The action of row r with the largest Q among the first `valid` (the lowest
// index among ties).
fn argmax(values: ptr<function, array<f32, 16>>, valid: u32) -> u32 {
    var best = 0u;
    for (var k = 1u; k < valid; k++) {
        if (*values)[k] > (*values)[best] {
            best = k;
        }
    }
    return best;
}

// The network's input for acting: each environment's observation, offset,
// padded to the input width and ended by a 1.
@compute @workgroup_size(ROW_WG)
fn observe(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if i >= params.n {
        return;
    }
    let lvl = level(clock[0]);
    var o: array<f32, 16>;
    for (var k = 0u; k < params.obs_dim; k++) {
        o[k] = env_obs[i * params.obs_dim + k];
    }
    for (var k = 0u; k < params.input; k++) {
        net_in[i * params.input + k] = feature(&o, k, lvl);
    }
}

// Epsilon-greedy: with probability eps(t) (linear from eps_start to eps_end over
// eps_decay agent steps, then eps_end) an action uniform among the valid ones,
// else the greedy one. Draw [i, t, ACT]: its first word decides, its second picks.
@compute @workgroup_size(ROW_WG)
fn act(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if i >= params.n {
        return;
    }
    let t = clock[0];
    let frac = max(0.0, 1.0 - f32(t) / f32(params.eps_decay));
    let eps = params.eps_end + (params.eps_start - params.eps_end) * frac;
    let u = vec2<f32>(draw(i, t, ACT_DRAW).xy >> vec2<u32>(8u)) * (1.0 / 16777216.0);
    if u.x < eps {
        actions[i] = min(u32(floor(u.y * f32(params.valid))), params.valid - 1u);
        return;
    }
    var v: array<f32, 16>;
    for (var k = 0u; k < params.valid; k++) {
        v[k] = q[i * params.head + k];
    }
    actions[i] = argmax(&v, params.valid);
}

// Writes each environment's transition of agent step t to replay row
// (t * n + i) mod capacity: the observation it acted on (net_in), the one it
// reached (next_obs, offset at the same level), the action, the reward times
// reward_scale, whether it terminated, the valid actions.
@compute @workgroup_size(ROW_WG)
fn store(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if i >= params.n {
        return;
    }
    let t = clock[0];
    let lvl = level(t);
    let stride = 2u * params.input + 4u;
    let row = ((t % params.capacity) * params.n + i) % params.capacity;
    let base = row * stride;
    var o: array<f32, 16>;
    for (var k = 0u; k < params.obs_dim; k++) {
        o[k] = env_obs[i * params.obs_dim + k];
    }
    for (var k = 0u; k < params.input; k++) {
        replay[base + k] = net_in[i * params.input + k];
        replay[base + params.input + k] = feature(&o, k, lvl);
    }
    let info = base + 2u * params.input;
    replay[info] = f32(actions[i]);
    replay[info + 1u] = params.reward_scale * reward[i];
    replay[info + 2u] = select(0.0, 1.0, (done[i] & TERMINATED) != 0u);
    replay[info + 3u] = f32(params.valid);
}

// One invocation: adds each environment's reward to its running return (in
// environment order), logs every episode that ended, then advances the clock's
// agent steps. The log holds at most params.capacity episodes (the host clears
// it after reading it).
@compute @workgroup_size(1)
fn episodes() {
    let t = clock[0];
    var count = episode_log[0];
    for (var i = 0u; i < params.n; i++) {
        let ret = running[2u * i] + reward[i];
        let len = running[2u * i + 1u] + 1.0;
        if done[i] != 0u {
            if count < params.capacity {
                let e = 4u + 4u * count;
                episode_log[e] = bitcast<u32>(ret);
                episode_log[e + 1u] = u32(len);
                episode_log[e + 2u] = t;
                episode_log[e + 3u] = params.kind;
                count += 1u;
            }
            running[2u * i] = 0.0;
            running[2u * i + 1u] = 0.0;
        } else {
            running[2u * i] = ret;
            running[2u * i + 1u] = len;
        }
    }
    episode_log[0] = count;
    clock[0] = t + 1u;
}

// The batch of learn step s = clock[1]: row b copies replay row
// floor(w * filled / 2^32), w the first word of draw [b, s, SAMPLE], filled
// the rows written so far (at most capacity; each agent step writes envs rows).
@compute @workgroup_size(ROW_WG)
fn sample(@builtin(global_invocation_id) gid: vec3<u32>) {
    let b = gid.x;
    if b >= params.n {
        return;
    }
    let filled = select(params.capacity, clock[0] * params.envs, clock[0] <= params.capacity / params.envs);
    let row = mulhilo(draw(b, clock[1], SAMPLE_DRAW).x, filled).x;
    let stride = 2u * params.input + 4u;
    let base = row * stride;
    for (var k = 0u; k < params.input; k++) {
        batch_obs[b * params.input + k] = replay[base + k];
        batch_next[b * params.input + k] = replay[base + params.input + k];
    }
    for (var k = 0u; k < 4u; k++) {
        batch_info[4u * b + k] = replay[base + 2u * params.input + k];
    }
}

// Per batch row: the Double-DQN target y = r + gamma Q_target(s', a*) with
// a* = argmax over the valid actions of Q_online(s') (no bootstrap after a
// terminated step), the Huber loss of d = Q(s, a) - y (quadratic within 1),
// and its gradient clamp(d, -1, 1) / rows at Q(s, a), 0 at the other actions.
@compute @workgroup_size(ROW_WG)
fn td_rows(@builtin(global_invocation_id) gid: vec3<u32>) {
    let r = gid.x;
    if r >= params.n {
        return;
    }
    let a = u32(batch_info[4u * r]);
    let rew = batch_info[4u * r + 1u];
    let terminated = batch_info[4u * r + 2u] != 0.0;
    let valid = u32(batch_info[4u * r + 3u]);
    var v: array<f32, 16>;
    for (var k = 0u; k < valid; k++) {
        v[k] = q_next[r * params.head + k];
    }
    let best = argmax(&v, valid);
    let y = select(rew + params.gamma * q_target[r * params.head + best], rew, terminated);
    let d = q[r * params.head + a] - y;
    let ad = abs(d);
    losses[r] = select(ad - 0.5, 0.5 * d * d, ad <= 1.0);
    let g = clamp(d, -1.0, 1.0) / f32(params.n);
    for (var k = 0u; k < params.head; k++) {
        dq[r * params.head + k] = select(0.0, g, k == a);
    }
}

// One invocation: the mean of the rows' losses (summed in row order), then
// advances the clock's learn steps.
@compute @workgroup_size(1)
fn td_mean() {
    var sum = 0.0;
    for (var r = 0u; r < params.n; r++) {
        sum += losses[r];
    }
    stats[0] = sum / f32(params.n);
    clock[1] += 1u;
}
