//! The environments of `sfnap::rl` against Gymnasium and against each other.
//!
//! - The f64 twins replay every reference episode of `tests/data/gym/` (made by
//!   Gymnasium itself, `scripts/gym_trajectories.py`) from the state its reset
//!   drew, under its actions: every state bit for bit, every observation,
//!   reward and end flag equal, over whole episodes.
//! - The f32 kernels replay the same episodes, all of one kind in one dispatch,
//!   within the bound below, up to the step where the bound reaches 10^-3 of
//!   the state's scale (`compared_steps` states where that is).
//! - Auto-reset: many environments stepped in one submission start each episode
//!   from the draw of its counter (checked against the twin's draw), their
//!   steps follow the twins within the bound, and the end flags, rewards and
//!   clocks agree; truncation at 500 steps on both kinds.
//! - The device's generator is the twin's bit for bit (Random123's known
//!   answers included) and its sin/cos are within their stated error.
//! - The same seed gives the same bits; other seeds and other environments
//!   other streams.
//!
//! The bound. The kernel's state error e_t (componentwise, angles modulo a
//! turn) obeys, to first order, e_{t+1} = J_t e_t + d_t with |d_t| <= delta: J_t
//! is the Jacobian of the f64 step at the reference state (central differences
//! of the twin) and d_t the rounding one f32 step
//! adds; unrolled, e_t <= sum over s of |J_{t-1} ... J_s| delta + |J_{t-1} ... J_0| e_0,
//! the products taken with their signs (the errors of the falling pole grow along
//! one direction, and the acrobot's partly cancel). Every rounded operation errs by at most u = 2^-24 of its result, and
//! `sin_cos` by 2^-23 absolute (checked below). On the way to a new state
//! component CartPole's step passes at most 14 roundings and two sin/cos,
//! each result bounded by the component's scale S_i (its largest magnitude in
//! the episode, the accelerations entering times tau): delta_i = 16 u S_i.
//! Acrobot's RK4 step evaluates the derivative four times (about 30 roundings
//! and three sin/cos each) and combines them with weights summing to one:
//! delta_i = 64 u S_i. The start is the reference's state rounded to f32:
//! e_0 = u |s_0|. The bound neglects second-order terms, which stay below
//! 10^-3 of it while it is below 10^-3 of the state's scale (the steps'
//! second derivatives are O(tau) times the accelerations' scale); beyond that
//! the dynamics' divergence (the falling pole, the acrobot's chaos) may carry
//! the f32 trajectory anywhere, and the comparison stops there.

mod common;

use std::path::Path;

use serde::Deserialize;
use sfnap::gpu::kernels::KernelFile;
use sfnap::gpu::Gpu;
use sfnap::rl::{philox, Kind, Snapshot, Twin, VecEnv, MAX_STEPS, TERMINATED, TRUNCATED};

/// f32's unit roundoff.
const U: f64 = common::U32;
/// `sin_cos`'s absolute error.
const EPS_TRIG: f64 = 2.0 * U;
/// The bound is followed while it is below this fraction of the state's scale.
const RHO: f64 = 1e-3;

#[derive(Deserialize)]
struct Reference {
    gymnasium: String,
    env: String,
    episodes: Vec<Episode>,
}

#[derive(Deserialize)]
struct Episode {
    seed: u64,
    policy: String,
    initial_state: [f64; 4],
    initial_obs: Vec<f32>,
    actions: Vec<u32>,
    states: Vec<[f64; 4]>,
    obs: Vec<Vec<f32>>,
    rewards: Vec<f64>,
    terminated: bool,
    truncated: bool,
}

/// `tests/data/gym/<kind>.json`.
fn reference(kind: Kind) -> Reference {
    let name = match kind {
        Kind::CartPole => "cartpole",
        Kind::Acrobot => "acrobot",
    };
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/data/gym/{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let r: Reference = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(r.env, kind.name());
    r
}

/// The first-order bound's per-step rounding factor (see the top).
fn rounding_factor(kind: Kind) -> f64 {
    match kind {
        Kind::CartPole => 16.0,
        Kind::Acrobot => 64.0,
    }
}

/// Whether state component `i` is an angle (compared modulo a turn).
fn is_angle(kind: Kind, i: usize) -> bool {
    kind == Kind::Acrobot && i < 2
}

/// `a - b` for component `i`, angles taken to the nearest turn.
fn delta(kind: Kind, i: usize, a: f64, b: f64) -> f64 {
    let d = a - b;
    if is_angle(kind, i) {
        let turn = std::f64::consts::TAU;
        d - turn * (d / turn).round()
    } else {
        d
    }
}

/// The Jacobian of the f64 step at `s` under `action`, by central differences.
fn jacobian(kind: Kind, s: &[f64; 4], action: u32) -> [[f64; 4]; 4] {
    let mut jac = [[0.0; 4]; 4];
    for j in 0..4 {
        let h = 1e-6 * s[j].abs().max(1e-2);
        let (mut plus, mut minus) = (*s, *s);
        plus[j] += h;
        minus[j] -= h;
        kind.step(&mut plus, action);
        kind.step(&mut minus, action);
        for (i, row) in jac.iter_mut().enumerate() {
            row[j] = delta(kind, i, plus[i], minus[i]) / (2.0 * h);
        }
    }
    jac
}

/// The first-order bound on the kernel's state error, step by step: every
/// error injected so far (the start's rounding, each step's `delta`) carried
/// to the present by the product of the Jacobians since, in magnitude.
struct Bound {
    kind: Kind,
    scale: [f64; 4],
    /// (the product of the Jacobians since an injection, the injection's bound)
    carried: Vec<([[f64; 4]; 4], [f64; 4])>,
}

impl Bound {
    fn new(kind: Kind, start: &[f64; 4], scale: [f64; 4]) -> Bound {
        let identity = std::array::from_fn(|i| std::array::from_fn(|j| f64::from(u8::from(i == j))));
        Bound {
            kind,
            scale,
            carried: vec![(identity, start.map(|v| U * v.abs()))],
        }
    }

    /// The bound after the step from `s` under `action`.
    fn step(&mut self, s: &[f64; 4], action: u32) -> [f64; 4] {
        let jac = jacobian(self.kind, s, action);
        for (phi, _) in &mut self.carried {
            let old = *phi;
            *phi = std::array::from_fn(|i| std::array::from_fn(|j| (0..4).map(|k| jac[i][k] * old[k][j]).sum()));
        }
        let identity = std::array::from_fn(|i| std::array::from_fn(|j| f64::from(u8::from(i == j))));
        let injected = self.scale.map(|s| rounding_factor(self.kind) * U * s);
        self.carried.push((identity, injected));
        std::array::from_fn(|i| {
            self.carried
                .iter()
                .map(|(phi, d)| (0..4).map(|j| phi[i][j].abs() * d[j]).sum::<f64>())
                .sum()
        })
    }
}

/// Each component's largest magnitude over `states`, at least 0.05.
fn scales<'a>(states: impl Iterator<Item = &'a [f64; 4]>) -> [f64; 4] {
    let mut scale = [0.05f64; 4];
    for s in states {
        for i in 0..4 {
            scale[i] = scale[i].max(s[i].abs());
        }
    }
    scale
}

/// How far `s` is from the termination boundary, in the units the bound `b` is
/// compared in: a flag may differ between the kernel and f64 only when this is
/// not positive.
fn termination_margin(kind: Kind, s: &[f64; 4], b: &[f64; 4]) -> f64 {
    match kind {
        Kind::CartPole => {
            let thr = sfnap::rl::cartpole::THETA_THRESHOLD;
            let x = (s[0].abs() - sfnap::rl::cartpole::X_THRESHOLD).abs() - b[0] - 4.0 * U;
            let theta = (s[2].abs() - thr).abs() - b[2] - thr * U;
            x.min(theta)
        }
        Kind::Acrobot => {
            let height = -s[0].cos() - (s[1] + s[0]).cos();
            (height - 1.0).abs() - (2.0 * b[0] + b[1] + 2.0 * EPS_TRIG + 4.0 * U)
        }
    }
}

/// How much an observation's entry may differ when the state differs by `b`.
fn obs_bound(kind: Kind, b: &[f64; 4], k: usize, value: f64) -> f64 {
    let rounding = U * value.abs();
    match kind {
        Kind::CartPole => b[k] + rounding,
        Kind::Acrobot if k < 4 => b[k / 2] + EPS_TRIG + rounding,
        Kind::Acrobot => b[k - 2] + rounding,
    }
}

#[test]
fn twins_replay_gymnasium_bit_for_bit() {
    for kind in Kind::ALL {
        let r = reference(kind);
        for (e, ep) in r.episodes.iter().enumerate() {
            let what = format!(
                "{} (Gymnasium {}) episode {e} (seed {}, {})",
                r.env, r.gymnasium, ep.seed, ep.policy
            );
            // Gymnasium's Acrobot computes its first observation in f32 from its f32
            // start, which may differ from f64's rounded to f32 by an ulp.
            for (k, (&t, &g)) in kind
                .observation(&ep.initial_state)
                .iter()
                .zip(&ep.initial_obs)
                .enumerate()
            {
                assert!(
                    (t - g).abs() <= f32::EPSILON,
                    "{what}: first observation [{k}] {t} vs {g}"
                );
            }
            let mut twin = Twin {
                state: ep.initial_state,
                ..Twin::new(kind, ep.seed, 0)
            };
            let last = ep.actions.len() - 1;
            for (t, &a) in ep.actions.iter().enumerate() {
                let before = twin.state;
                let step = twin.step(a);
                let mut reached = before;
                kind.step(&mut reached, a);
                assert_eq!(reached, ep.states[t], "{what}: state after step {}", t + 1);
                assert_eq!(step.next_obs, ep.obs[t], "{what}: observation after step {}", t + 1);
                assert_eq!(step.reward, ep.rewards[t], "{what}: reward of step {}", t + 1);
                let want = if t == last {
                    (if ep.terminated { TERMINATED } else { 0 }) | (if ep.truncated { TRUNCATED } else { 0 })
                } else {
                    0
                };
                assert_eq!(step.done, want, "{what}: end flags of step {}", t + 1);
            }
            assert_eq!(twin.episode, 1, "{what}: the twin starts the next episode");
            assert_eq!(twin.state, kind.start_of(ep.seed, 0, 1));
        }
    }
}

/// Records `steps` steps of `env` taking `schedule[t]` (one action per
/// environment) at step t, copying the buffers each step leaves into history
/// buffers; returns a snapshot per step.
fn run_schedule(gpu: &Gpu, env: &VecEnv, schedule: &[Vec<u32>], start: Option<&[[f32; 4]]>) -> Vec<Snapshot> {
    let n = env.len();
    let d = env.kind().obs_dim();
    let flat: Vec<u32> = schedule.iter().flatten().copied().collect();
    let actions = gpu.storage_init("schedule", &flat);
    let steps = schedule.len();
    let hist = |label: &str, per_env: usize| gpu.storage(label, (steps * n * per_env * 4) as u64);
    let history = [
        (env.state(), hist("state", 4), 4),
        (env.clock(), hist("clock", 2), 2),
        (env.obs(), hist("obs", d), d),
        (env.next_obs(), hist("next_obs", d), d),
        (env.reward(), hist("reward", 1), 1),
        (env.done(), hist("done", 1), 1),
    ];
    gpu.submit(|enc| {
        env.record_reset(&mut enc.begin_compute_pass(&Default::default()));
    });
    if let Some(states) = start {
        gpu.queue.write_buffer(env.state(), 0, bytemuck::cast_slice(states));
    }
    gpu.submit(|enc| {
        for t in 0..steps {
            let row = (n * 4) as u64;
            enc.copy_buffer_to_buffer(&actions, t as u64 * row, env.actions(), 0, row);
            env.record_step(&mut enc.begin_compute_pass(&Default::default()));
            for (src, dst, per_env) in &history {
                let bytes = (n * per_env * 4) as u64;
                enc.copy_buffer_to_buffer(src, 0, dst, t as u64 * bytes, bytes);
            }
        }
    });
    let read = |i: usize| -> Vec<u8> {
        let (_, dst, per_env) = &history[i];
        gpu.read::<u8>(dst, 0, steps * n * per_env * 4).unwrap()
    };
    let [state, clock, obs, next_obs, reward, done] = std::array::from_fn(read);
    (0..steps)
        .map(|t| {
            let slice = |bytes: &[u8], per_env: usize| bytes[t * n * per_env * 4..(t + 1) * n * per_env * 4].to_vec();
            Snapshot {
                obs_dim: d,
                state: bytemuck::pod_collect_to_vec(&slice(&state, 4)),
                clock: bytemuck::pod_collect_to_vec(&slice(&clock, 2)),
                obs: bytemuck::pod_collect_to_vec(&slice(&obs, d)),
                next_obs: bytemuck::pod_collect_to_vec(&slice(&next_obs, d)),
                reward: bytemuck::pod_collect_to_vec(&slice(&reward, 1)),
                done: bytemuck::pod_collect_to_vec(&slice(&done, 1)),
            }
        })
        .collect()
}

/// The steps of each reference episode the kernel must follow within the
/// bound: the whole of CartPole's random episodes; the balanced pole until its
/// open-loop divergence (the actions were chosen for Gymnasium's states, not
/// the kernel's) takes the bound past 10^-3 of the scale; Acrobot until its
/// chaos does.
fn compared_steps(kind: Kind) -> &'static [usize] {
    match kind {
        Kind::CartPole => &[18, 29, 54],
        Kind::Acrobot => &[84, 41],
    }
}

#[test]
fn kernels_follow_gymnasium_within_the_bound_until_it_stops() {
    let gpu = common::gpu();
    for kind in Kind::ALL {
        let r = reference(kind);
        let n = r.episodes.len();
        let env = VecEnv::new(&gpu, kind, n, 0).unwrap();
        let longest = r.episodes.iter().map(|e| e.actions.len()).max().unwrap();
        let schedule: Vec<Vec<u32>> = (0..longest)
            .map(|t| {
                r.episodes
                    .iter()
                    .map(|e| e.actions.get(t).copied().unwrap_or(0))
                    .collect()
            })
            .collect();
        let starts: Vec<[f32; 4]> = r.episodes.iter().map(|e| e.initial_state.map(|v| v as f32)).collect();
        let steps = run_schedule(&gpu, &env, &schedule, Some(&starts));
        for (e, ep) in r.episodes.iter().enumerate() {
            let what = format!("{} episode {e} ({})", r.env, ep.policy);
            let scale = scales(std::iter::once(&ep.initial_state).chain(&ep.states));
            let mut bound = Bound::new(kind, &ep.initial_state, scale);
            let (mut worst, mut worst_diff, mut compared) = (0.0f64, [0.0f64; 4], 0);
            let mut before = ep.initial_state;
            for (t, snap) in steps.iter().enumerate().take(ep.actions.len()) {
                let b = bound.step(&before, ep.actions[t]);
                if (0..4).any(|i| b[i] > RHO * scale[i]) {
                    break;
                }
                let gym = &ep.states[t];
                let last = t + 1 == ep.actions.len();
                if termination_margin(kind, gym, &b) > 0.0 {
                    let want = if last {
                        (if ep.terminated { TERMINATED } else { 0 }) | (if ep.truncated { TRUNCATED } else { 0 })
                    } else {
                        0
                    };
                    assert_eq!(snap.done[e], want, "{what}: end flags of step {}", t + 1);
                } else if snap.done[e] != 0 && !last {
                    compared = t + 1;
                    break; // the kernel ended the episode at the edge, within the bound
                }
                assert_eq!(snap.reward[e] as f64, ep.rewards[t], "{what}: reward of step {}", t + 1);
                for (k, (&o, &g)) in snap.next_obs_of(e).iter().zip(&ep.obs[t]).enumerate() {
                    let diff = (o - g).abs() as f64;
                    let bound = obs_bound(kind, &b, k, g as f64) + U * (g as f64).abs();
                    assert!(
                        diff <= bound,
                        "{what}: observation [{k}] after step {}: {o} vs Gymnasium's {g}, bound {bound:.3e}",
                        t + 1
                    );
                }
                if snap.done[e] == 0 {
                    let state = snap.state_of(e);
                    for i in 0..4 {
                        let diff = delta(kind, i, state[i] as f64, gym[i]).abs();
                        assert!(
                            diff <= b[i],
                            "{what}: state [{i}] after step {}: {} vs Gymnasium's {}, bound {:.3e}",
                            t + 1,
                            state[i],
                            gym[i],
                            b[i]
                        );
                        worst = worst.max(diff / b[i]);
                        worst_diff[i] = worst_diff[i].max(diff);
                    }
                }
                compared = t + 1;
                before = *gym;
            }
            eprintln!(
                "{what}: kernel within the bound for {compared} of {} steps; largest |difference| {:.2e}, at most {worst:.3} of the bound",
                ep.actions.len(),
                worst_diff.iter().fold(0.0f64, |m, &d| m.max(d))
            );
            assert_eq!(
                compared,
                compared_steps(kind)[e],
                "{what}: steps within the bound (where it stops depends on Gymnasium's states only)"
            );
        }
    }
}

/// The bound of the episode `twin` is starting, under the actions of
/// `schedule` from step `t` for environment `e`: its scale is that of the
/// states the twin's episode will go through.
fn episode_bound(twin: &Twin, schedule: &[Vec<u32>], t: usize, e: usize) -> Bound {
    let mut state = twin.state;
    let mut states = vec![state];
    for row in &schedule[t..] {
        let (_, terminated) = twin.kind.step(&mut state, row[e]);
        states.push(state);
        if terminated {
            break;
        }
    }
    Bound::new(twin.kind, &twin.state, scales(states.iter()))
}

/// `steps` rows of `n` uniformly random actions of `kind`, from `seed`.
fn random_actions(kind: Kind, n: usize, steps: usize, seed: u64) -> Vec<Vec<u32>> {
    let mut rng = common::Rng::new(seed);
    (0..steps)
        .map(|_| {
            (0..n)
                .map(|_| (rng.uniform() * f64::from(kind.actions())) as u32)
                .collect()
        })
        .collect()
}

#[test]
fn auto_reset_starts_each_episode_from_its_draw_and_follows_the_twin() {
    let gpu = common::gpu();
    let kind = Kind::CartPole;
    let (n, steps, seed) = (256, 300, 7);
    let env = VecEnv::new(&gpu, kind, n, seed).unwrap();
    let schedule = random_actions(kind, n, steps, 11);
    let history = run_schedule(&gpu, &env, &schedule, None);
    let (mut episodes, mut compared, mut finished, mut stopped) = (0, 0, 0, 0);
    for e in 0..n {
        let mut twin = Twin::new(kind, seed, e as u32);
        let mut bound = Some(episode_bound(&twin, &schedule, 0, e));
        let mut clock = [0u32, 0];
        for (t, snap) in history.iter().enumerate() {
            let what = format!("environment {e}, step {}", t + 1);
            let a = schedule[t][e];
            let done = snap.done[e];
            let episode = snap.clock[2 * e + 1];
            // The device on its own: an ended episode is followed by its next one's
            // draw; otherwise the observation to act on is the one reached.
            if done != 0 {
                assert_eq!(
                    [snap.clock[2 * e], episode],
                    [0, clock[1] + 1],
                    "{what}: clock after an end"
                );
                let start = kind.start_of(seed, e as u32, episode);
                for (k, (&o, &w)) in snap.obs_of(e).iter().zip(&kind.observation(&start)).enumerate() {
                    assert!(
                        (o - w).abs() as f64 <= 2.0 * U * 0.05,
                        "{what}: first observation [{k}] {o} vs the draw's {w}"
                    );
                }
                episodes += 1;
            } else {
                assert_eq!([snap.clock[2 * e], episode], [clock[0] + 1, clock[1]], "{what}: clock");
                assert_eq!(snap.obs_of(e), snap.next_obs_of(e), "{what}: observation to act on");
            }
            clock = [snap.clock[2 * e], episode];
            assert_eq!(snap.reward[e], 1.0, "{what}: reward");
            // Against the twin, from each episode's start while the bound holds.
            if let Some(bnd) = bound.as_mut() {
                let before = twin.state;
                let step = twin.step(a);
                let b = bnd.step(&before, a);
                let mut reached = before;
                kind.step(&mut reached, a);
                if (0..4).any(|i| b[i] > RHO * bnd.scale[i])
                    || (termination_margin(kind, &reached, &b) <= 0.0 && done != step.done)
                {
                    bound = None;
                    stopped += 1;
                } else {
                    assert_eq!(done, step.done, "{what}: end flags");
                    for (k, (&o, &w)) in snap.next_obs_of(e).iter().zip(&step.next_obs).enumerate() {
                        let limit = obs_bound(kind, &b, k, w as f64) + U * (w as f64).abs();
                        assert!(
                            ((o - w).abs() as f64) <= limit,
                            "{what}: observation [{k}] {o} vs the twin's {w}, bound {limit:.3e}"
                        );
                    }
                    compared += 1;
                    finished += usize::from(done != 0);
                }
            }
            if done != 0 {
                twin = Twin {
                    state: kind.start_of(seed, e as u32, episode),
                    steps: 0,
                    episode,
                    ..twin
                };
                bound = Some(episode_bound(&twin, &schedule, t + 1, e));
            }
        }
    }
    eprintln!(
        "{n} CartPole environments, {steps} steps: {episodes} episodes ended and restarted from their draws; \
         {compared} steps within the twin's bound, {finished} episodes to their end, {stopped} stopped by the bound"
    );
    assert!(episodes > n * 5, "too few episodes ended: {episodes}");
    assert!(
        finished >= episodes * 9 / 10,
        "only {finished} of {episodes} episodes followed to their end"
    );
}

#[test]
fn episodes_are_truncated_at_500_steps_on_the_device() {
    let gpu = common::gpu();
    let seed = 3;
    // Acrobot without torque never swings up: truncated, with reward -1 throughout.
    let n = 32;
    let env = VecEnv::new(&gpu, Kind::Acrobot, n, seed).unwrap();
    let history = run_schedule(&gpu, &env, &vec![vec![1; n]; MAX_STEPS as usize + 1], None);
    for (t, snap) in history.iter().enumerate() {
        let want = if t + 1 == MAX_STEPS as usize { TRUNCATED } else { 0 };
        assert!(
            snap.done.iter().all(|&d| d == want),
            "Acrobot step {}: done {:?}",
            t + 1,
            snap.done
        );
        assert!(
            snap.reward.iter().all(|&r| r == -1.0),
            "Acrobot step {}: rewards",
            t + 1
        );
    }
    let ended = &history[MAX_STEPS as usize - 1];
    for e in 0..n {
        assert_eq!(&ended.clock[2 * e..2 * e + 2], &[0, 1]);
        let start = Kind::Acrobot.observation(&Kind::Acrobot.start_of(seed, e as u32, 1));
        for (&o, &w) in ended.obs_of(e).iter().zip(&start) {
            assert!(
                (o - w).abs() as f64 <= EPS_TRIG + 2.0 * U,
                "Acrobot environment {e}: {o} vs {w}"
            );
        }
    }
    // CartPole kept up by a controller on the host, one step at a time.
    let n = 16;
    let env = VecEnv::new(&gpu, Kind::CartPole, n, seed).unwrap();
    gpu.submit(|enc| env.record_reset(&mut enc.begin_compute_pass(&Default::default())));
    let mut snap = env.snapshot(&gpu).unwrap();
    for t in 1..=MAX_STEPS {
        let actions: Vec<u32> = (0..n)
            .map(|e| {
                let [x, v, theta, omega] = [0, 1, 2, 3].map(|k| snap.obs_of(e)[k]);
                u32::from(0.05 * x + 0.2 * v + theta + 0.5 * omega > 0.0)
            })
            .collect();
        env.write_actions(&gpu, &actions).unwrap();
        gpu.submit(|enc| env.record_step(&mut enc.begin_compute_pass(&Default::default())));
        snap = env.snapshot(&gpu).unwrap();
        let want = if t == MAX_STEPS { TRUNCATED } else { 0 };
        assert!(
            snap.done.iter().all(|&d| d == want),
            "CartPole step {t}: done {:?}",
            snap.done
        );
    }
    assert!(snap.clock.chunks(2).all(|c| c == [0, 1]));
}

#[test]
fn same_seed_same_bits_other_seeds_and_environments_other_streams() {
    let gpu = common::gpu();
    let (n, seed) = (512, 42);
    for kind in Kind::ALL {
        let started = |seed: u64| {
            let env = VecEnv::new(&gpu, kind, n, seed).unwrap();
            gpu.submit(|enc| env.record_reset(&mut enc.begin_compute_pass(&Default::default())));
            env.snapshot(&gpu).unwrap()
        };
        let (a, other) = (started(seed), started(seed + 1));
        let tolerance = match kind {
            Kind::CartPole => 2.0 * U * 0.05,
            Kind::Acrobot => EPS_TRIG + 2.0 * U,
        };
        for e in 0..n {
            let twin = Twin::new(kind, seed, e as u32).observation();
            for (&o, &w) in a.obs_of(e).iter().zip(&twin) {
                assert!(
                    (o - w).abs() as f64 <= tolerance,
                    "{} environment {e}: {o} vs the twin's {w}",
                    kind.name()
                );
            }
            assert_ne!(
                a.state_of(e),
                other.state_of(e),
                "{} environment {e}: another seed",
                kind.name()
            );
        }
        let mut starts: Vec<[u32; 4]> = (0..n).map(|e| a.state_of(e).map(f32::to_bits)).collect();
        starts.sort_unstable();
        starts.dedup();
        assert_eq!(starts.len(), n, "{}: environments share a start", kind.name());
        let schedule = random_actions(kind, n, 100, 5);
        let run = || run_schedule(&gpu, &VecEnv::new(&gpu, kind, n, seed).unwrap(), &schedule, None);
        assert!(run() == run(), "{}: two runs of one seed differ", kind.name());
    }
}

/// `shaders/philox.wgsl`'s generator and `shaders/rl.wgsl`'s sin/cos, run on
/// the device through a kernel file of the test's own.
const CHECKS: &str = r"
@group(0) @binding(8) var<storage, read> check_counters: array<vec4<u32>>;
@group(0) @binding(9) var<storage, read> check_keys: array<vec2<u32>>;
@group(0) @binding(10) var<storage, read_write> check_words: array<vec4<u32>>;
@group(0) @binding(11) var<storage, read> check_x: array<f32>;
@group(0) @binding(12) var<storage, read_write> check_sin_cos: array<vec2<f32>>;

@compute @workgroup_size(64)
fn words(@builtin(global_invocation_id) gid: vec3<u32>) {
    if gid.x < arrayLength(&check_words) {
        check_words[gid.x] = philox(check_counters[gid.x], check_keys[gid.x]);
    }
}

@compute @workgroup_size(64)
fn trig(@builtin(global_invocation_id) gid: vec3<u32>) {
    if gid.x < arrayLength(&check_x) {
        check_sin_cos[gid.x] = sin_cos(check_x[gid.x]);
    }
}
";

#[test]
fn device_generator_and_sin_cos_match_the_host() {
    let gpu = common::gpu();
    let source = format!(
        "{}{}{}{CHECKS}",
        include_str!("../shaders/philox.wgsl"),
        include_str!("../shaders/rl.wgsl"),
        include_str!("../shaders/cartpole.wgsl")
    );
    gpu.register_kernels(
        KernelFile::new("rl_checks", source)
            .entry("words", &[8, 9, 10])
            .entry("trig", &[11, 12]),
    )
    .unwrap();
    // Random123's known answers, then a spread of counters and keys.
    let mut counters = vec![
        [0; 4],
        [u32::MAX; 4],
        [0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344],
    ];
    let mut keys = vec![[0; 2], [u32::MAX; 2], [0xa409_3822, 0x299f_31d0]];
    let mut rng = common::Rng::new(1);
    for _ in 0..4093 {
        let word = |rng: &mut common::Rng| rng.next_u64() as u32;
        counters.push([word(&mut rng), word(&mut rng), word(&mut rng), word(&mut rng)]);
        keys.push([word(&mut rng), word(&mut rng)]);
    }
    let m = counters.len();
    let words_out = gpu.storage("words", (m * 16) as u64);
    let counters_in = gpu.storage_init("counters", &counters);
    let keys_in = gpu.storage_init("keys", &keys);
    let xs: Vec<f32> = (-40_000..=40_000).map(|i| i as f32 * 1e-3).collect();
    let xs_in = gpu.storage_init("x", &xs);
    let trig_out = gpu.storage("sin_cos", (xs.len() * 8) as u64);
    use sfnap::gpu::buffers::range;
    let words = gpu
        .dispatch(
            "rl_checks",
            "words",
            &[
                (8, range(&counters_in, 0, (m * 16) as u64)),
                (9, range(&keys_in, 0, (m * 8) as u64)),
                (10, range(&words_out, 0, (m * 16) as u64)),
            ],
            [m.div_ceil(64) as u32, 1, 1],
        )
        .unwrap();
    let trig = gpu
        .dispatch(
            "rl_checks",
            "trig",
            &[
                (11, range(&xs_in, 0, (xs.len() * 4) as u64)),
                (12, range(&trig_out, 0, (xs.len() * 8) as u64)),
            ],
            [xs.len().div_ceil(64) as u32, 1, 1],
        )
        .unwrap();
    gpu.run(&[&words, &trig]);
    let got: Vec<[u32; 4]> = gpu.read(&words_out, 0, m).unwrap();
    for ((c, k), g) in counters.iter().zip(&keys).zip(&got) {
        assert_eq!(*g, philox::philox(*c, *k), "counter {c:x?} key {k:x?}");
    }
    assert_eq!(got[0], [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]);
    let sc: Vec<[f32; 2]> = gpu.read(&trig_out, 0, xs.len()).unwrap();
    let worst = xs
        .iter()
        .zip(&sc)
        .map(|(&x, &[s, c])| {
            let x = x as f64;
            (s as f64 - x.sin()).abs().max((c as f64 - x.cos()).abs())
        })
        .fold(0.0, f64::max);
    eprintln!(
        "sin_cos on [-40, 40]: largest absolute error {worst:.3e} ({:.2} u)",
        worst / U
    );
    assert!(worst <= EPS_TRIG, "sin_cos errs by {worst:.3e}, over {EPS_TRIG:.3e}");
}
