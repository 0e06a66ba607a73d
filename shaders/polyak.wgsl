// ScheduleFree+ scalars on the device: the second pass of the global sums and the
// one-thread kernel that turns them and the loss into alpha, gamma and c. Nothing
// here is read back by the host during a step.

// Device-side recurrences of sf_plus, kept between steps.
struct PlusState {
    e_prev: f32,     // e_hat of the previous step
    lr_max: f32,     // starts at eps
    w_sum: f32,      // running sum of the averaging weights ...
    w_comp: f32,     // ... and its Kahan compensation
    l1: f32,         // sum |g| of this step
    dot: f32,        // sum g . (z - x) of this step
    alpha: f32,      // the last Polyak step size
    error: u32,      // 0 ok, 1 zero gradient (e_hat = 0), 2 non-finite loss, 3 non-finite step,
                     // 4 non-finite gradient norm (e_hat)
    error_step: u32, // the step (k) at which the error appeared
    steps: u32,      // steps taken on the device
    one: f32,        // 1.0, written by the host: see average_weight
    alpha_cap: f32,  // with a growth cap: min(F / e_hat, cap) of the last step (or its cap); 0 before step 1
}

// Inputs of the alpha-driven trace used to test the recurrences.
struct TraceInfo {
    n: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<storage, read_write> s: Step;
@group(0) @binding(8) var<storage, read> partials: array<vec2<f32>>;
@group(0) @binding(11) var<storage, read_write> st: PlusState;
@group(0) @binding(12) var<storage, read> loss: array<f32>;
@group(0) @binding(14) var<uniform> trace: TraceInfo;
@group(0) @binding(15) var<storage, read> alphas: array<vec2<f32>>; // (alpha, t^r)
@group(0) @binding(16) var<storage, read_write> trace_out: array<vec4<f32>>;

// Second pass: one workgroup sums all partials in a fixed order.
@compute @workgroup_size(256)
fn plus_reduce(@builtin(local_invocation_id) lid: vec3<u32>) {
    var acc = vec2<f32>(0.0);
    let n = arrayLength(&partials);
    for (var i = lid.x; i < n; i += WG) {
        acc += partials[i];
    }
    let total = workgroup_sum(lid.x, acc);
    if lid.x == 0u {
        st.l1 = total.x;
        st.dot = total.y;
    }
}

// Whether `a` is finite: health.wgsl's test on the bits (its other lanes, 0, are
// finite and fold away).
fn is_finite(a: f32) -> bool {
    return all_finite(vec4<f32>(a, 0.0, 0.0, 0.0));
}

// x^p; exact products for small whole p (the default p = 2), since pow's error
// on GPUs (through exp2 and log2) is large enough to bias W_sum.
fn pow_p(x: f32) -> f32 {
    let n = round(s.p);
    if n == s.p && n >= 0.0 && n <= 8.0 {
        var acc = 1.0;
        for (var i = 0.0; i < n; i += 1.0) {
            acc *= x;
        }
        return acc;
    }
    return pow(x, s.p);
}

// lr_max = max(lr_max, gamma); then c = 1 during c_warmup, else
// w = t^r lr_max^p, W_sum += w (compensated), c = w / W_sum.
fn average_weight(gamma: f32, t_pow_r: f32, warm: bool) -> f32 {
    st.lr_max = max(st.lr_max, gamma);
    if warm {
        return 1.0;
    }
    let w = t_pow_r * pow_p(st.lr_max);
    // Kahan summation. Shader compilers treat float math as reassociable unless
    // told otherwise and would fold (sum - w_sum) - yk to 0; the factor `one`,
    // unknown to the compiler, keeps the compensation alive.
    let yk = w - st.w_comp;
    let sum = (st.w_sum + yk) * st.one;
    st.w_comp = (sum - st.w_sum) - yk;
    st.w_sum = sum;
    let total = sum - st.w_comp;
    return select(0.0, w / total, total > 0.0);
}

// sfnap's extension (s.growth > 0): alpha stays under a cap that grows by at most
// s.growth per step (SPS_max with a growing cap). The cap follows the plain Polyak step F / e_hat
// (I left out): cap_k = growth * min(plain_{k-1}, cap_{k-1}), so a step that I
// pulls down (even to 0) does not pull the cap down with it. The first step is
// not capped.
fn capped(alpha: f32, plain: f32) -> f32 {
    if s.growth <= 0.0 {
        return alpha;
    }
    if st.alpha_cap <= 0.0 {
        st.alpha_cap = plain;
        return alpha;
    }
    let cap = st.alpha_cap * s.growth;
    let next = min(plain, cap);
    st.alpha_cap = select(cap, next, next > 0.0);
    return min(alpha, cap);
}

fn fail(code: u32) {
    if st.error == 0u {
        st.error = code;
        st.error_step = st.steps;
    }
}

@compute @workgroup_size(1)
fn plus_scalars() {
    let f = loss[0];
    if !is_finite(f) {
        fail(2u);
    }
    // e_hat is stored as e_prev (as the reference implementation does).
    let e = s.polyak_beta * st.e_prev + (1.0 - s.polyak_beta) * st.l1 * 1.2533141373155003;
    let e_hat = e * s.inv_bcp;
    if !is_finite(e_hat) {
        fail(4u);
    } else if !(e_hat > 0.0) {
        fail(1u);
    }
    if st.error != 0u {
        s.skip = 1u;
        s.gamma = 0.0;
        s.c = 0.0;
        st.steps += 1u;
        return;
    }
    st.e_prev = e_hat;
    let alpha = capped(max(0.0, f + s.beta * st.dot) / e_hat, max(0.0, f) / e_hat);
    let gamma = s.lr * alpha;
    if !is_finite(gamma) {
        fail(3u);
        s.skip = 1u;
        st.steps += 1u;
        return;
    }
    st.alpha = alpha;
    s.gamma = gamma;
    s.c = average_weight(gamma, s.t_pow_r, s.warm > 0.5);
    s.skip = 0u;
    st.steps += 1u;
}

// Test entry: runs the lr_max / W_sum / c recurrences for `trace.n` steps driven
// by given alphas and t^r (gamma = lr * alpha, no warmup) and records (lr_max, W_sum, c).
@compute @workgroup_size(1)
fn plus_trace() {
    for (var k = 0u; k < trace.n; k++) {
        let gamma = s.lr * alphas[k].x;
        let c = average_weight(gamma, alphas[k].y, false);
        trace_out[k] = vec4<f32>(st.lr_max, st.w_sum - st.w_comp, c, 0.0);
    }
}
