//! CartPole-v1 in f64, Gymnasium's `CartPoleEnv` operation for operation (its
//! default Euler integrator, its float64 state): the twin that
//! `shaders/cartpole.wgsl` is held to.

/// Observation size: cart position and velocity, pole angle and angular velocity.
pub const OBS: usize = 4;
/// Actions: 0 pushes the cart left, 1 right.
pub const ACTIONS: u32 = 2;

const GRAVITY: f64 = 9.8;
const MASSCART: f64 = 1.0;
const MASSPOLE: f64 = 0.1;
const TOTAL_MASS: f64 = MASSPOLE + MASSCART;
/// Half the pole's length.
const LENGTH: f64 = 0.5;
const POLEMASS_LENGTH: f64 = MASSPOLE * LENGTH;
const FORCE_MAG: f64 = 10.0;
/// Seconds per step.
const TAU: f64 = 0.02;
/// The pole angle that ends an episode: 12 degrees, in radians.
pub const THETA_THRESHOLD: f64 = 12.0 * 2.0 * std::f64::consts::PI / 360.0;
/// The cart position that ends an episode.
pub const X_THRESHOLD: f64 = 2.4;

/// The start of an episode from four uniform numbers in [0, 1): each state
/// component uniform in [-0.05, 0.05), as Gymnasium draws it.
pub fn start(u: [f64; 4]) -> [f64; 4] {
    u.map(|u| -0.05 + 0.1 * u)
}

/// One step under `action` (1 pushes right, anything else left, as in Gymnasium).
pub fn step(state: &mut [f64; 4], action: u32) {
    let [x, x_dot, theta, theta_dot] = *state;
    let force = if action == 1 { FORCE_MAG } else { -FORCE_MAG };
    let (sintheta, costheta) = (theta.sin(), theta.cos());
    let temp = (force + POLEMASS_LENGTH * (theta_dot * theta_dot) * sintheta) / TOTAL_MASS;
    let thetaacc =
        (GRAVITY * sintheta - costheta * temp) / (LENGTH * (4.0 / 3.0 - MASSPOLE * (costheta * costheta) / TOTAL_MASS));
    let xacc = temp - POLEMASS_LENGTH * thetaacc * costheta / TOTAL_MASS;
    *state = [
        x + TAU * x_dot,
        x_dot + TAU * xacc,
        theta + TAU * theta_dot,
        theta_dot + TAU * thetaacc,
    ];
}

/// Whether the cart left [-2.4, 2.4] or the pole passed 12 degrees.
pub fn terminated(state: &[f64; 4]) -> bool {
    let [x, _, theta, _] = *state;
    !(-X_THRESHOLD..=X_THRESHOLD).contains(&x) || !(-THETA_THRESHOLD..=THETA_THRESHOLD).contains(&theta)
}

/// The reward of a step: 1, the terminating step included.
pub fn reward(_terminated: bool) -> f64 {
    1.0
}

/// The observation: the state rounded to f32.
pub fn observation(state: &[f64; 4]) -> Vec<f32> {
    state.iter().map(|&s| s as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_threshold_terminates_beyond_it_only() {
        assert!(!terminated(&[2.4, 0.0, THETA_THRESHOLD, 0.0]));
        assert!(!terminated(&[-2.4, 0.0, -THETA_THRESHOLD, 0.0]));
        assert!(terminated(&[2.4000001, 0.0, 0.0, 0.0]));
        assert!(terminated(&[-2.4000001, 0.0, 0.0, 0.0]));
        assert!(terminated(&[0.0, 0.0, -0.21, 0.0]));
    }

    #[test]
    fn pushes_move_the_cart_and_tip_the_pole_the_other_way() {
        let mut right = [0.0; 4];
        step(&mut right, 1);
        step(&mut right, 1);
        assert!(right[1] > 0.0 && right[0] > 0.0 && right[3] < 0.0 && right[2] < 0.0);
    }
}
