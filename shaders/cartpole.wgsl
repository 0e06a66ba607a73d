// CartPole-v1 (src/rl/cartpole.rs is its f64 twin): Gymnasium's dynamics with
// the Euler integrator, in f32. State: x, x_dot, theta, theta_dot.

const OBS_DIM: u32 = 4u;
alias Obs = array<f32, OBS_DIM>;

const GRAVITY: f32 = 9.8;
const MASSPOLE: f32 = 0.1;
const TOTAL_MASS: f32 = 1.1;
const LENGTH: f32 = 0.5;              // half the pole's length
const POLEMASS_LENGTH: f32 = 0.05;
const FORCE_MAG: f32 = 10.0;
const TAU: f32 = 0.02;
const X_THRESHOLD: f32 = 2.4;
const THETA_THRESHOLD: f32 = 0.20943951023931953;   // 12 degrees

// Each component uniform in [-0.05, 0.05).
fn env_start(u: vec4<f32>) -> vec4<f32> {
    return -0.05 + 0.1 * u;
}

// Action 1 pushes right, any other left (as Gymnasium's step).
fn env_next(s: vec4<f32>, action: u32) -> vec4<f32> {
    let force = select(-FORCE_MAG, FORCE_MAG, action == 1u);
    let sc = sin_cos(s.z);
    let temp = (force + POLEMASS_LENGTH * (s.w * s.w) * sc.x) / TOTAL_MASS;
    let thetaacc = (GRAVITY * sc.x - sc.y * temp)
        / (LENGTH * (4.0 / 3.0 - MASSPOLE * (sc.y * sc.y) / TOTAL_MASS));
    let xacc = temp - POLEMASS_LENGTH * thetaacc * sc.y / TOTAL_MASS;
    return s + TAU * vec4<f32>(s.y, xacc, s.w, thetaacc);
}

fn env_terminated(s: vec4<f32>) -> bool {
    return !(abs(s.x) <= X_THRESHOLD && abs(s.z) <= THETA_THRESHOLD);
}

fn env_reward(terminated: bool) -> f32 {
    return 1.0;
}

fn env_observation(s: vec4<f32>) -> Obs {
    return Obs(s.x, s.y, s.z, s.w);
}
