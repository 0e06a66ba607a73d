//! Acrobot-v1 in f64, Gymnasium's `AcrobotEnv` operation for operation (the
//! book's dynamics, one RK4 step of 0.2 s, no torque noise): the twin that
//! `shaders/acrobot.wgsl` is held to. The state is the two joint angles and
//! their angular velocities.

use std::f64::consts::PI;

/// Observation size: cos and sin of both angles, and both angular velocities.
pub const OBS: usize = 6;
/// Actions: torques -1, 0 and +1 on the joint between the links.
pub const ACTIONS: u32 = 3;

const DT: f64 = 0.2;
const LINK_LENGTH_1: f64 = 1.0;
const LINK_MASS_1: f64 = 1.0;
const LINK_MASS_2: f64 = 1.0;
const LINK_COM_POS_1: f64 = 0.5;
const LINK_COM_POS_2: f64 = 0.5;
const LINK_MOI: f64 = 1.0;
/// The bound on the first joint's angular velocity.
pub const MAX_VEL_1: f64 = 4.0 * PI;
/// The bound on the second joint's angular velocity.
pub const MAX_VEL_2: f64 = 9.0 * PI;
const AVAIL_TORQUE: [f64; 3] = [-1.0, 0.0, 1.0];

/// The start of an episode from four uniform numbers in [0, 1): each state
/// component uniform in [-0.1, 0.1), rounded to f32 as Gymnasium stores it.
pub fn start(u: [f64; 4]) -> [f64; 4] {
    u.map(|u| (-0.1 + 0.2 * u) as f32 as f64)
}

/// The time derivative of `s` (angles, angular velocities) under torque `a`:
/// Gymnasium's `_dsdt` with the book's equation, term by term in its order.
fn dsdt(s: [f64; 4], a: f64) -> [f64; 4] {
    let (m1, m2, l1) = (LINK_MASS_1, LINK_MASS_2, LINK_LENGTH_1);
    let (lc1, lc2, i1, i2) = (LINK_COM_POS_1, LINK_COM_POS_2, LINK_MOI, LINK_MOI);
    let g = 9.8;
    let [theta1, theta2, dtheta1, dtheta2] = s;
    let sq = |v: f64| v.powf(2.0);
    let d1 = m1 * sq(lc1) + m2 * (sq(l1) + sq(lc2) + 2.0 * l1 * lc2 * theta2.cos()) + i1 + i2;
    let d2 = m2 * (sq(lc2) + l1 * lc2 * theta2.cos()) + i2;
    let phi2 = m2 * lc2 * g * (theta1 + theta2 - PI / 2.0).cos();
    let phi1 = -m2 * l1 * lc2 * sq(dtheta2) * theta2.sin() - 2.0 * m2 * l1 * lc2 * dtheta2 * dtheta1 * theta2.sin()
        + (m1 * lc1 + m2 * l1) * g * (theta1 - PI / 2.0).cos()
        + phi2;
    let ddtheta2 =
        (a + d2 / d1 * phi1 - m2 * l1 * lc2 * sq(dtheta1) * theta2.sin() - phi2) / (m2 * sq(lc2) + i2 - sq(d2) / d1);
    let ddtheta1 = -(d2 * ddtheta2 + phi1) / d1;
    [dtheta1, dtheta2, ddtheta1, ddtheta2]
}

/// `x` wrapped into [m, M] by whole turns, as Gymnasium's `wrap`.
fn wrap(mut x: f64, m: f64, big_m: f64) -> f64 {
    let diff = big_m - m;
    while x > big_m {
        x -= diff;
    }
    while x < m {
        x += diff;
    }
    x
}

/// One step under `action` (0, 1, 2: torque -1, 0, +1): RK4 over 0.2 s as
/// Gymnasium's `rk4` computes it, then both angles wrapped into [-pi, pi] and
/// the angular velocities clipped to their bounds.
pub fn step(state: &mut [f64; 4], action: u32) {
    let a = AVAIL_TORQUE[action as usize];
    let y0 = *state;
    let dt2 = DT / 2.0;
    let along = |k: [f64; 4], h: f64| std::array::from_fn(|i| y0[i] + h * k[i]);
    let k1 = dsdt(y0, a);
    let k2 = dsdt(along(k1, dt2), a);
    let k3 = dsdt(along(k2, dt2), a);
    let k4 = dsdt(along(k3, DT), a);
    let ns: [f64; 4] = std::array::from_fn(|i| y0[i] + DT / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]));
    *state = [
        wrap(ns[0], -PI, PI),
        wrap(ns[1], -PI, PI),
        ns[2].clamp(-MAX_VEL_1, MAX_VEL_1),
        ns[3].clamp(-MAX_VEL_2, MAX_VEL_2),
    ];
}

/// Whether the free end is above the target height: -cos(t1) - cos(t1 + t2) > 1.
pub fn terminated(state: &[f64; 4]) -> bool {
    -state[0].cos() - (state[1] + state[0]).cos() > 1.0
}

/// The reward of a step: -1, and 0 for the terminating step.
pub fn reward(terminated: bool) -> f64 {
    if terminated {
        0.0
    } else {
        -1.0
    }
}

/// The observation, rounded to f32: cos t1, sin t1, cos t2, sin t2, dt1, dt2.
pub fn observation(state: &[f64; 4]) -> Vec<f32> {
    let [t1, t2, d1, d2] = *state;
    [t1.cos(), t1.sin(), t2.cos(), t2.sin(), d1, d2]
        .iter()
        .map(|&v| v as f32)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_moves_by_whole_turns_into_the_interval() {
        assert_eq!(wrap(0.5, -PI, PI), 0.5);
        assert!((wrap(PI + 0.5, -PI, PI) - (0.5 - PI)).abs() < 1e-15);
        assert!((wrap(-PI - 0.5, -PI, PI) - (PI - 0.5)).abs() < 1e-15);
    }

    #[test]
    fn hanging_still_stays_and_upright_terminates() {
        let mut s = [0.0; 4];
        step(&mut s, 1);
        assert!(s.iter().all(|v| v.abs() < 1e-12), "{s:?}");
        assert!(!terminated(&s));
        assert!(terminated(&[PI, 0.0, 0.0, 0.0]));
    }
}
