// Acrobot-v1 (src/rl/acrobot.rs is its f64 twin): Gymnasium's book dynamics,
// one RK4 step of 0.2 s, in f32. State: theta1, theta2, dtheta1, dtheta2.
// Where Gymnasium writes cos(a - pi/2) this computes sin(a), the same value
// without the rounding of pi/2.

const OBS_DIM: u32 = 6u;
alias Obs = array<f32, OBS_DIM>;

const DT: f32 = 0.2;
const L1: f32 = 1.0;                  // link 1's length
const M1: f32 = 1.0;                  // the links' masses
const M2: f32 = 1.0;
const LC1: f32 = 0.5;                 // their centres of mass
const LC2: f32 = 0.5;
const I1: f32 = 1.0;                  // their moments of inertia
const I2: f32 = 1.0;
const G: f32 = 9.8;
const PI: f32 = 3.14159265358979;
const MAX_VEL_1: f32 = 12.566370614359172;   // 4 pi
const MAX_VEL_2: f32 = 28.274333882308138;   // 9 pi

// Each component uniform in [-0.1, 0.1).
fn env_start(u: vec4<f32>) -> vec4<f32> {
    return -0.1 + 0.2 * u;
}

// The time derivative of s under torque a (the book's equation).
fn dsdt(s: vec4<f32>, a: f32) -> vec4<f32> {
    let sc2 = sin_cos(s.y);
    let d1 = M1 * LC1 * LC1 + M2 * (L1 * L1 + LC2 * LC2 + 2.0 * L1 * LC2 * sc2.y) + I1 + I2;
    let d2 = M2 * (LC2 * LC2 + L1 * LC2 * sc2.y) + I2;
    let phi2 = M2 * LC2 * G * sin_cos(s.x + s.y).x;
    let phi1 = -M2 * L1 * LC2 * (s.w * s.w) * sc2.x - 2.0 * M2 * L1 * LC2 * s.w * s.z * sc2.x
        + (M1 * LC1 + M2 * L1) * G * sin_cos(s.x).x + phi2;
    let ddtheta2 = (a + d2 / d1 * phi1 - M2 * L1 * LC2 * (s.z * s.z) * sc2.x - phi2)
        / (M2 * LC2 * LC2 + I2 - d2 * d2 / d1);
    let ddtheta1 = -(d2 * ddtheta2 + phi1) / d1;
    return vec4<f32>(s.z, s.w, ddtheta1, ddtheta2);
}

// x moved by whole turns into [-pi, pi] (as Gymnasium's wrap; a few turns at most).
fn wrap(x: f32) -> f32 {
    var w = x;
    for (var k = 0u; k < 8u && w > PI; k++) {
        w -= 2.0 * PI;
    }
    for (var k = 0u; k < 8u && w < -PI; k++) {
        w += 2.0 * PI;
    }
    return w;
}

// Actions 0, 1, 2: torque -1, 0, +1 (larger actions as 2).
fn env_next(s: vec4<f32>, action: u32) -> vec4<f32> {
    let a = f32(min(action, 2u)) - 1.0;
    let k1 = dsdt(s, a);
    let k2 = dsdt(s + DT / 2.0 * k1, a);
    let k3 = dsdt(s + DT / 2.0 * k2, a);
    let k4 = dsdt(s + DT * k3, a);
    let ns = s + DT / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4);
    return vec4<f32>(
        wrap(ns.x),
        wrap(ns.y),
        clamp(ns.z, -MAX_VEL_1, MAX_VEL_1),
        clamp(ns.w, -MAX_VEL_2, MAX_VEL_2),
    );
}

fn env_terminated(s: vec4<f32>) -> bool {
    return -sin_cos(s.x).y - sin_cos(s.y + s.x).y > 1.0;
}

fn env_reward(terminated: bool) -> f32 {
    return select(-1.0, 0.0, terminated);
}

fn env_observation(s: vec4<f32>) -> Obs {
    let sc1 = sin_cos(s.x);
    let sc2 = sin_cos(s.y);
    return Obs(sc1.y, sc1.x, sc2.y, sc2.x, s.z, s.w);
}
