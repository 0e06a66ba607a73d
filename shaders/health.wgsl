// The run's health flags (src/optim/health.rs), in front of every optimizer file
// whose passes check what they read and write (and of polyak.wgsl, for its
// finiteness test). A pass that meets a value that is not finite sets a bit and
// the earliest step it saw; nothing clears them. The host reads them a few steps
// later, without stalling the device.
struct Health {
    flags: atomic<u32>,       // HEALTH_* bits
    first_step: atomic<u32>,  // the earliest step (Step.step) that set a bit
    pad0: u32,
    pad1: u32,
}

const HEALTH_GRAD: u32 = 1u;    // a gradient value
const HEALTH_PARAMS: u32 = 2u;  // a weight the step wrote (y)
const HEALTH_STATE: u32 = 4u;   // optimizer state the step wrote (z, x, the Adam moments)
const HEALTH_NORM: u32 = 8u;    // a NaP group norm

@group(0) @binding(19) var<storage, read_write> health: Health;

// Whether all four lanes are finite. It tests the exponent bits: WGSL lets a
// compiler assume arithmetic yields no NaN or infinity, so `v != v` may fold away.
fn all_finite(v: vec4<f32>) -> bool {
    let exponent = vec4<u32>(0x7f800000u);
    return all((bitcast<vec4<u32>>(v) & exponent) != exponent);
}

// `bit` unless all four lanes are finite.
fn not_finite(v: vec4<f32>, bit: u32) -> u32 {
    return select(bit, 0u, all_finite(v));
}

// Records `bits` (nothing when 0) as met at this step.
fn report_health(bits: u32) {
    if bits != 0u {
        atomicOr(&health.flags, bits);
        atomicMin(&health.first_step, s.step);
    }
}

// An element pass sums the magnitudes of what it reads and writes, per
// invocation, and tests the three sums once at its end: a value that is not
// finite makes its sum so (|NaN| and |inf| stay), and an add costs less than a
// test per element. A sum of finite values overflows only when they are near
// 1e36, which no sound run holds.
var<private> seen_grad: vec4<f32>;
var<private> seen_params: vec4<f32>;
var<private> seen_state: vec4<f32>;

fn watch(grad: vec4<f32>, params: vec4<f32>, state: vec4<f32>) {
    seen_grad += abs(grad);
    seen_params += abs(params);
    seen_state += abs(state);
}

fn report_watched() {
    report_health(
        not_finite(seen_grad, HEALTH_GRAD) | not_finite(seen_params, HEALTH_PARAMS)
            | not_finite(seen_state, HEALTH_STATE)
    );
}
