//! The DQN agent of `sfnap::rl`: each of its kernels against an f64 (or exact
//! integer) computation on the host, the whole agent's determinism, a resume
//! bit-identical to an uninterrupted run, and the command line's refusals.
//!
//! - `td_rows` / `td_mean` (Double-DQN targets, Huber loss): the f64 reference
//!   takes the same f32 inputs. The argmax compares the same f32 values, so it
//!   is exact. The target y = r + gamma q_t and d = q - y take three roundings
//!   in f32 (gamma rounded to f32, the product, the sum) and one more (the
//!   difference): |d - d_64| <= 4 u (|r| + gamma |q_t| + |q| + |d|) = e_d, u = 2^-24
//!   (the gamma rounding: u gamma |q_t|). The gradient clamp(d, -1, 1) / B is
//!   1-Lipschitz in d, plus one rounding: e_d / B + u |g|. The Huber loss is
//!   |d|-Lipschitz within 1 and 1-Lipschitz beyond: (max(|d|, 1)) e_d, plus
//!   two roundings of it. The mean sums B losses in order (B u of the largest
//!   partial sum) and divides (one more).
//! - `act` (epsilon-greedy): the draws are Philox's words, the same integers on
//!   both sides; the uniform numbers are exact 24-bit fractions; epsilon is
//!   computed in f32 from f32 operands (about 3 u of 1), so an explore/exploit
//!   decision is compared only where u is not within 1e-6 of epsilon (none were,
//!   for these draws); the random action floor(u' valid) is exact; the greedy
//!   action is exact (the same f32 Q-values).
//! - `observe`, `store`, `episodes`, `sample`: copies, f32 additions of an
//!   offset (correctly rounded in WGSL, so the host's f32 addition is the same
//!   bits) and integer arithmetic: held to the host bit for bit.

mod common;

use std::process::Command;

use sfnap::gpu::Gpu;
use sfnap::rl::episodes::EpisodeLog;
use sfnap::rl::epsilon::{act, ActDesc, Epsilon};
use sfnap::rl::replay_buffer::{ReplayBuffer, StoreDesc, INFO};
use sfnap::rl::run::{run, RunOptions};
use sfnap::rl::td_loss::{TdLoss, TdLossDesc};
use sfnap::rl::variant::observe;
use sfnap::rl::{philox, AgentConfig, Kind, Variant, VecEnv, TERMINATED};

const U: f64 = common::U32;

fn upload_f32(g: &Gpu, v: &[f32]) -> wgpu::Buffer {
    g.storage_init("test", v)
}

fn read_f32(g: &Gpu, b: &wgpu::Buffer, n: usize) -> Vec<f32> {
    g.read::<f32>(b, 0, n).unwrap()
}

fn run_dispatches(g: &Gpu, ds: &[&sfnap::gpu::Dispatch]) {
    g.run(ds);
    g.wait().unwrap();
}

/// The lowest index of the largest of `v`'s first `valid` values.
fn argmax(v: &[f32], valid: usize) -> usize {
    (1..valid).fold(0, |best, k| if v[k] > v[best] { k } else { best })
}

#[test]
fn td_loss_matches_f64() {
    let g = common::gpu();
    let mut rng = common::Rng::new(7);
    let (rows, head, gamma) = (37usize, 3usize, 0.99f64);
    let mut normals = |n: usize, s: f64| -> Vec<f32> { (0..n).map(|_| (rng.normal() * s) as f32).collect() };
    let q = normals(rows * head, 3.0);
    let mut q_next = normals(rows * head, 3.0);
    let q_target = normals(rows * head, 3.0);
    let rewards = normals(rows, 1.5);
    // Ties in some rows: the lowest index wins.
    for r in (0..rows).step_by(5) {
        q_next[r * head + 1] = q_next[r * head];
    }
    let mut info = Vec::new();
    for (r, &reward) in rewards.iter().enumerate() {
        let valid = if r % 3 == 0 { 2 } else { 3 };
        info.extend([(r % valid) as f32, reward, (r % 4 == 1) as u32 as f32, valid as f32]);
    }
    let (qb, qnb, qtb, ib) = (
        upload_f32(&g, &q),
        upload_f32(&g, &q_next),
        upload_f32(&g, &q_target),
        upload_f32(&g, &info),
    );
    let dq = g.storage("dq", (rows * head * 4) as u64);
    let clock = g.storage_init("clock", &[5u32, 11, 0, 0]);
    let td = TdLoss::new(
        &g,
        &TdLossDesc {
            rows,
            head,
            gamma,
            info: &ib,
            q: &qb,
            q_next: &qnb,
            q_target: &qtb,
            dq: &dq,
            clock: &clock,
        },
    )
    .unwrap();
    g.submit(|enc| td.record(&mut enc.begin_compute_pass(&Default::default())));
    let got_dq = read_f32(&g, &dq, rows * head);
    let got_loss = read_f32(&g, td.losses(), rows);
    let got_mean = read_f32(&g, td.stats(), 1)[0];
    let mut sum = 0.0;
    let mut sum_bound = 0.0;
    for r in 0..rows {
        let i = &info[INFO * r..INFO * (r + 1)];
        let (a, rew, term, valid) = (i[0] as usize, i[1] as f64, i[2] != 0.0, i[3] as usize);
        let best = argmax(&q_next[r * head..(r + 1) * head], valid);
        let qt = q_target[r * head + best] as f64;
        let y = if term { rew } else { rew + gamma * qt };
        let qa = q[r * head + a] as f64;
        let d = qa - y;
        let e_d = 4.0 * U * (rew.abs() + gamma * qt.abs() + qa.abs() + d.abs());
        let loss = if d.abs() <= 1.0 { 0.5 * d * d } else { d.abs() - 0.5 };
        let loss_bound = d.abs().max(1.0) * e_d + 2.0 * U * loss + e_d * e_d;
        let grad = d.clamp(-1.0, 1.0) / rows as f64;
        for k in 0..head {
            let got = got_dq[r * head + k] as f64;
            let want = if k == a { grad } else { 0.0 };
            let bound = if k == a {
                e_d / rows as f64 + U * grad.abs()
            } else {
                0.0
            };
            assert!(
                (got - want).abs() <= bound,
                "row {r} action {k}: dq {got} vs f64 {want} (bound {bound})"
            );
        }
        let got = got_loss[r] as f64;
        assert!(
            (got - loss).abs() <= loss_bound,
            "row {r}: loss {got} vs f64 {loss} (bound {loss_bound})"
        );
        sum += loss;
        sum_bound += loss_bound;
    }
    let mean = sum / rows as f64;
    let bound = sum_bound / rows as f64 + (rows as f64 + 1.0) * U * mean;
    assert!(
        (got_mean as f64 - mean).abs() <= bound,
        "mean loss {got_mean} vs f64 {mean} (bound {bound})"
    );
    // td_mean advanced the learn steps only.
    assert_eq!(g.read::<u32>(&clock, 0, 2).unwrap(), vec![5, 12]);
}

#[test]
fn epsilon_greedy_matches_f64() {
    let g = common::gpu();
    let mut rng = common::Rng::new(3);
    let (n, head) = (300usize, 3usize);
    let mut q: Vec<f32> = (0..n * head).map(|_| rng.normal() as f32).collect();
    for i in (0..n).step_by(7) {
        q[i * head + 2] = q[i * head];
    }
    let qb = upload_f32(&g, &q);
    let epsilon = Epsilon {
        start: 1.0,
        end: 0.05,
        decay_steps: 100,
    };
    let seed = 0x1234_5678_9abc;
    for valid in [2u32, 3] {
        for t in [0u32, 37, 99, 250] {
            let clock = g.storage_init("clock", &[t, 0, 0, 0]);
            let actions = g.storage("actions", (n * 4) as u64);
            let d = act(
                &g,
                &ActDesc {
                    n,
                    valid,
                    head: head as u32,
                    epsilon,
                    seed,
                    clock: &clock,
                    q: &qb,
                    actions: &actions,
                },
            )
            .unwrap();
            run_dispatches(&g, &[&d]);
            let got = g.read::<u32>(&actions, 0, n).unwrap();
            let eps = epsilon.at(u64::from(t));
            let mut explored = 0;
            for i in 0..n {
                let u = philox::uniforms(seed, i as u32, t, philox::ACT);
                assert!(
                    (u[0] - eps).abs() > 1e-6,
                    "draw {i} at step {t} too close to epsilon to decide"
                );
                let want = if u[0] < eps {
                    explored += 1;
                    (u[1] * f64::from(valid)).floor() as u32
                } else {
                    argmax(&q[i * head..(i + 1) * head], valid as usize) as u32
                };
                assert_eq!(got[i], want, "environment {i} at step {t}, {valid} actions");
            }
            let share = explored as f64 / n as f64;
            assert!((share - eps).abs() < 0.12, "explored {share} at epsilon {eps}");
        }
    }
}

/// CartPole environments with continual-cartpole's offsets, stepped under host
/// actions: the network's input, the replay rows (wrapping around), the
/// episode log and the sampled batches against the host, bit for bit.
#[test]
fn observe_store_episodes_and_sample_match_the_host() {
    let g = common::gpu();
    let (n, capacity, batch, steps, seed) = (8usize, 29usize, 16usize, 40u64, 5u64);
    let variant = Variant::ContinualCartpole;
    let (input, switch_every) = (variant.input(), 3u64);
    let levels = variant.levels();
    let offsets_host = variant.offsets(seed);
    assert!(offsets_host.iter().any(|&o| o != 0.0));
    let env = VecEnv::new(&g, Kind::CartPole, n, seed).unwrap();
    let clock = g.storage("clock", 16);
    let offsets = upload_f32(&g, &offsets_host);
    let net_in = g.storage("net_in", (n * input * 4) as u64);
    let running = g.storage("running", (n * 8) as u64);
    let log = EpisodeLog::new(&g, n * steps as usize);
    let replay = ReplayBuffer::new(&g, capacity, input, n, batch).unwrap();
    let obs_d = observe(&g, &env, input, (levels, switch_every), &clock, &offsets, &net_in).unwrap();
    let store = replay
        .store(
            &g,
            &StoreDesc {
                obs_dim: 4,
                valid: 2,
                levels: levels as u32,
                switch_every: switch_every as u32,
                reward_scale: 0.25,
                clock: &clock,
                obs: &net_in,
                next_obs: env.next_obs(),
                offsets: &offsets,
                actions: env.actions(),
                reward: env.reward(),
                done: env.done(),
            },
        )
        .unwrap();
    let episodes = log.dispatch(&g, &env, &clock, &running).unwrap();
    g.submit(|enc| env.record_reset(&mut enc.begin_compute_pass(&Default::default())));
    let mut rng = common::Rng::new(11);
    let mut rows = vec![vec![f32::NAN; replay.stride()]; capacity];
    let mut ret = vec![(0.0f32, 0u32); n];
    let mut ended = Vec::new();
    let with_offset = |o: &[f32], t: u64| -> Vec<f32> {
        let level = variant.level(t, switch_every) as usize;
        let want: Vec<f32> = (0..input)
            .map(|k| {
                if k < 4 {
                    o[k] + offsets_host[level * input + k]
                } else {
                    1.0
                }
            })
            .collect();
        assert_eq!(variant.features(o, &offsets_host, level), want);
        want
    };
    for t in 0..steps {
        run_dispatches(&g, &[&obs_d]);
        let before = env.snapshot(&g).unwrap();
        let got_in = read_f32(&g, &net_in, n * input);
        let actions: Vec<u32> = (0..n).map(|_| (rng.uniform() * 2.0) as u32).collect();
        env.write_actions(&g, &actions).unwrap();
        g.submit(|enc| {
            let mut pass = enc.begin_compute_pass(&Default::default());
            env.record_step(&mut pass);
            store.record(&mut pass);
            episodes.record(&mut pass);
        });
        let after = env.snapshot(&g).unwrap();
        for i in 0..n {
            let want_in = with_offset(before.obs_of(i), t);
            assert_eq!(
                &got_in[i * input..(i + 1) * input],
                &want_in[..],
                "net input of {i} at {t}"
            );
            let mut row = want_in;
            row.extend(with_offset(after.next_obs_of(i), t));
            let term = (after.done[i] & TERMINATED != 0) as u32 as f32;
            row.extend([actions[i] as f32, 0.25 * after.reward[i], term, 2.0]);
            rows[replay.row_of(t, i)] = row;
            ret[i].0 += after.reward[i];
            ret[i].1 += 1;
            if after.done[i] != 0 {
                ended.push((ret[i].0, ret[i].1, t as u32));
                ret[i] = (0.0, 0);
            }
        }
    }
    let got_rows = read_f32(&g, replay.rows(), capacity * replay.stride());
    for (j, want) in rows.iter().enumerate() {
        let got = &got_rows[j * replay.stride()..(j + 1) * replay.stride()];
        assert_eq!(
            got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            want.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            "replay row {j}"
        );
    }
    let logged = EpisodeLog::parse(&g.read::<u8>(log.buffer(), 0, log.bytes() as usize).unwrap());
    assert!(logged.len() > 5, "only {} episodes ended", logged.len());
    let logged: Vec<(f32, u32, u32)> = logged.iter().map(|e| (e.ret, e.length, e.step)).collect();
    assert_eq!(logged, ended, "the episode log");
    assert!(
        logged.iter().all(|e| e.0 == e.1 as f32),
        "CartPole's return is its length"
    );
    assert_eq!(g.read::<u32>(&clock, 0, 2).unwrap(), vec![steps as u32, 0]);
    // Batches of two learn steps, from the rows written so far.
    let sample = replay.sample(&g, seed, &clock).unwrap();
    for s in [0u32, 9] {
        g.queue.write_buffer(&clock, 4, bytemuck::bytes_of(&s));
        run_dispatches(&g, &[&sample]);
        let (bo, bn, bi) = (
            read_f32(&g, replay.batch_obs(), batch * input),
            read_f32(&g, replay.batch_next(), batch * input),
            read_f32(&g, replay.batch_info(), batch * INFO),
        );
        for b in 0..batch {
            let j = replay.sampled_row(seed, steps, s, b as u32);
            let row = &rows[j];
            let got: Vec<f32> = [
                &bo[b * input..(b + 1) * input],
                &bn[b * input..(b + 1) * input],
                &bi[b * INFO..(b + 1) * INFO],
            ]
            .concat();
            assert_eq!(got, *row, "batch row {b} of learn step {s} (replay row {j})");
        }
    }
    // Before the buffer fills, only the rows written are drawn.
    assert!((0..64).all(|b| replay.sampled_row(seed, 1, 0, b) < n));
}

fn small(variant: Variant, seed: u64) -> AgentConfig {
    AgentConfig {
        variant,
        envs: 16,
        hidden: vec![16, 16],
        norm: true,
        nap: true,
        optimizer: sfnap::optim::OptimConfig::new(sfnap::optim::Kind::AdamwSf),
        gamma: 0.99,
        reward_scale: 1.0,
        batch: 32,
        buffer: 400,
        learning_starts: 4,
        updates: 2,
        target_every: 5,
        epsilon: Epsilon {
            start: 1.0,
            end: 0.1,
            decay_steps: 20,
        },
        switch_every: 20,
        seed,
    }
}

/// The same settings give the same episodes and rows bit for bit; another seed others.
#[test]
fn agent_is_deterministic() {
    let g = common::gpu();
    let opts = RunOptions {
        steps: 60,
        eval_every: 30,
        ..RunOptions::default()
    };
    let go = |cfg: &AgentConfig| run(&g, cfg, &opts, &mut |_| {}).unwrap();
    let a = go(&small(Variant::Sequential, 1));
    let b = go(&small(Variant::Sequential, 1));
    assert!(!a.episodes.is_empty() && a.rows.len() == 2);
    assert_eq!(format!("{:?}", a), format!("{:?}", b));
    assert!(a.rows.iter().all(|r| r.td_loss.is_finite() && r.learn_steps > 0));
    let c = go(&small(Variant::Sequential, 2));
    assert_ne!(format!("{:?}", a.episodes), format!("{:?}", c.episodes));
}

fn sfnap_owned(args: &[String]) -> std::process::Output {
    sfnap(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

fn sfnap(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sfnap"))
        .args(args)
        .output()
        .expect("the sfnap binary runs")
}

const SMALL: [&str; 20] = [
    "--envs",
    "16",
    "--hidden",
    "16,16",
    "--batch",
    "32",
    "--buffer",
    "300",
    "--learning-starts",
    "3",
    "--target-every",
    "7",
    "--eps-decay",
    "15",
    "--eval-every",
    "10",
    "--checkpoint-every",
    "20",
    "--switch-every",
    "8",
];

/// A run stopped after 20 agent steps and resumed to 40 writes the metrics
/// and the checkpoint of an uninterrupted run of 40, byte for byte; `--watch`
/// plays it.
#[test]
fn resume_is_bit_identical() {
    let (whole_dir, cut_dir) = (common::temp_dir("rl-whole"), common::temp_dir("rl-cut"));
    let base = ["rl", "--env", "continual-cartpole", "--opt", "adamw_sf", "--nap"];
    let with = |dir: &std::path::Path, steps: &str| -> Vec<String> {
        let mut v: Vec<String> = base.iter().chain(SMALL.iter()).map(|s| s.to_string()).collect();
        v.extend([
            "--steps".into(),
            steps.into(),
            "--out".into(),
            dir.display().to_string(),
        ]);
        v
    };
    let ok = |out: std::process::Output| {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    ok(sfnap_owned(&(with(&whole_dir, "40"))));
    ok(sfnap_owned(&(with(&cut_dir, "20"))));
    ok(sfnap(&[
        "rl",
        "--resume",
        cut_dir.to_str().unwrap(),
        "--steps",
        "40",
        "--eval-every",
        "10",
    ]));
    for file in ["metrics.csv", "checkpoint.safetensors"] {
        let (a, b) = (
            std::fs::read(whole_dir.join(file)).unwrap(),
            std::fs::read(cut_dir.join(file)).unwrap(),
        );
        assert!(a == b, "{file} differs after the resume");
    }
    let metrics = std::fs::read_to_string(whole_dir.join("metrics.csv")).unwrap();
    assert_eq!(metrics.lines().count(), 5, "{metrics}");
    assert!(whole_dir.join("returns.png").exists());
    let watch = sfnap(&["rl", "--watch", whole_dir.to_str().unwrap()]);
    ok(watch.clone());
    let text = String::from_utf8_lossy(&watch.stdout);
    assert!(text.contains("CartPole-v1") && text.contains("return "), "{text}");
    let _ = std::fs::remove_dir_all(whole_dir);
    let _ = std::fs::remove_dir_all(cut_dir);
}

/// Flags that do not apply are refused with exit status 2 and a line naming them.
#[test]
fn flags_that_do_not_apply_are_refused() {
    let dir = common::temp_dir("rl-refused");
    let dir_s = dir.to_str().unwrap();
    let cases: [(&[&str], &str); 6] = [
        (&["rl", "--switch-every", "5"], "switch-every"),
        (&["rl", "--sf-window", "5"], "sf-window"),
        (&["rl", "--opt", "sf_plus", "--warmup", "10"], "warmup"),
        (&["rl", "--nap", "--no-norm"], "nap"),
        (&["rl", "--resume", dir_s, "--gamma", "0.5"], "gamma"),
        (&["rl", "--watch", dir_s, "--envs", "3"], "envs"),
    ];
    for (args, name) in cases {
        let out = sfnap(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(name), "{args:?} does not name {name}: {err}");
    }
}
