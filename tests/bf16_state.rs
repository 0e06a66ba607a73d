//! bf16 optimizer state (`state_dtype: bf16`, docs/algorithms.md "bf16 state")
//! on the device against the f64 reference with the same rounding and the same
//! random bits: every kind, with and without NaP, stochastic and nearest.
//!
//! The bound: the device's f32 value and the reference's (its f64 result
//! rounded to f32) differ by a few f32 ulps, which flips a bf16 rounding
//! decision with probability |d| / 2^16 per write; a flip is one bf16 ulp of
//! the state value and is carried, not grown. So z (and x) must equal the
//! reference's bit for bit but for at most `allowed_flips` elements, each
//! within one bf16 ulp; y and x follow within the f32 tolerance plus that ulp
//! where a flip is.

mod common;

use common::{gpu, ragged_nap as nap, ragged_shapes as shapes, random_case};
use sfnap::arena::{Arena, Layout, TensorSpec};
use sfnap::optim::bf16::{Rounding, StateDtype};
use sfnap::optim::reference::{Reference, ReferenceState, TensorState};
use sfnap::optim::GpuOptimizer;
use sfnap::optim::{Kind, OptimConfig};
use sfnap::replay::{run_gpu_with, ReplayCase};
use std::collections::HashMap;

fn configs() -> Vec<(&'static str, OptimConfig)> {
    let base = |kind: Kind, lr: f64| {
        let mut c = OptimConfig::new(kind).with_lr(lr);
        c.weight_decay = 0.01;
        c.state_dtype = StateDtype::Bf16;
        c.state_seed = 1234;
        c
    };
    let mut sgd = base(Kind::SgdSf, 0.05);
    sgd.warmup_steps = 5;
    let mut momentum = base(Kind::AdamwSf, 0.01);
    momentum.inner_momentum = 0.9;
    let mut window = base(Kind::SgdSf, 0.05);
    window.sf_window = 3;
    let mut nearest = base(Kind::AdamwSf, 0.01);
    nearest.state_rounding = Rounding::Nearest;
    vec![
        ("sgd_sf", sgd),
        ("sgd_sf sf_window", window),
        ("adamw_sf", base(Kind::AdamwSf, 0.01)),
        ("adamw_sf momentum", momentum),
        ("adamw_sf nearest", nearest),
        ("adamw_sf_paper", base(Kind::AdamwSfPaper, 0.01)),
        ("radam_sf", base(Kind::RadamSf, 0.01)),
        ("sf_plus", base(Kind::SfPlus, 1.0)),
        ("adamw", base(Kind::Adamw, 0.01)),
    ]
}

/// One bf16 ulp at `v` (the spacing of bf16 values around its magnitude).
fn bf16_ulp(v: f64) -> f64 {
    let bits = (v.abs() as f32).to_bits() & 0x7f80_0000;
    (f32::from_bits(bits) as f64 * 2f64.powi(-7)).max(f32::from_bits(0x0080_0000) as f64)
}

/// The bound on the f32 disagreement, in f32 ulps of the value written: the
/// device computes each state value in f32 with the step's scalars rounded to
/// f32, the reference in f64 and then rounds to f32. Element math: a few
/// roundings, and NaP's scale is an f32 sum of squares: 16 ulps. The second
/// moment's `(1 - b2) g^2` takes `1 - f32(b2)`, off by up to `2^-25` absolute,
/// `2^-25 / (1 - b2)` relative: `1 / (2 (1 - b2))` ulps more (500 for 0.999).
/// A decision flips when a multiple of 2^16 lies between the two bit patterns
/// plus the same random bits: with probability (ulps apart) / 2^16 per write.
fn ulps_apart(seq: &str, cfg: &OptimConfig) -> f64 {
    let (_, b2) = cfg.betas();
    16.0 + if seq == "v" { 0.5 / (1.0 - b2) } else { 0.0 }
}

/// Compares one sequence of the device's state with the reference's: f32
/// sequences (y) within the f32 bound of one step, bf16 ones bit for bit but for flips,
/// which it counts. A flip is one bf16 ulp of the value, plus the f32
/// computation's own error, which is relative to the operands (at most the
/// tensor's largest value: a few f32 ulps of it) where the result cancels.
///
/// `slack` widens the f32 bound by a relative amount: with NaP, a flip in the
/// step's pass moves its group's norm, and with it every value the projection
/// writes, y included (see `nap_slack`). For a bf16 sequence it is the number
/// of rounding passes that wrote it this step (NaP's projection rounds z and x
/// a second time, and may flip a second decision): the ulps a value may be off.
/// `extra` (y) allows each element more: see `y_extra`.
fn compare(what: &str, seq: &str, got: &[f64], want: &[f64], bf16: bool, slack: f64, extra: &[f64]) -> usize {
    assert_eq!(got.len(), want.len(), "{what}: {seq} length");
    let largest = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let mut flips = 0;
    for (i, (&a, &b)) in got.iter().zip(want).enumerate() {
        let b32 = b as f32 as f64;
        if bf16 {
            if a != b32 {
                flips += 1;
                assert!(
                    (a - b32).abs() <= slack * bf16_ulp(a.abs().max(b32.abs())) + largest * 2f64.powi(-20),
                    "{what}: {seq}[{i}] = {a}, reference {b32}: more than {slack} bf16 ulps apart"
                );
            }
        } else {
            // tests/gpu_vs_reference.rs's f32 bound for one step: 4 x 16 roundings
            // of 2^-24, relative to the value plus the tensor's scale.
            assert!(
                (a - b).abs() <= (64.0 * 2f64.powi(-24) + slack) * (b.abs() + largest) + extra.get(i).unwrap_or(&0.0),
                "{what}: {seq}[{i}] = {a}, reference {b}"
            );
        }
    }
    flips
}

/// The relative slack of each tensor's projected values after a step with NaP:
/// a flip of one value v of a group by one bf16 ulp before the projection moves
/// the group's norm by at most |v| ulp(v) / ||.||^2, relative. The flips counted
/// are those of z and x in the group after the step (the projection's own
/// among them: an overcount), each at the group's largest value.
fn nap_slack(case: &ReplayCase, got: &ReferenceState, want: &ReferenceState) -> HashMap<String, f64> {
    let mut slack = HashMap::new();
    for group in case.nap.iter().flat_map(|n| &n.groups) {
        let (mut flips, mut largest, mut z_sq, mut x_sq) = (0usize, 0f64, 0f64, 0f64);
        for (d, r) in got.tensors.iter().zip(&want.tensors) {
            if !group.tensors.contains(&d.name) {
                continue;
            }
            for (dv, rv) in [(&d.z, &r.z), (&d.x, &r.x)] {
                flips += dv.iter().zip(rv).filter(|(a, b)| **a != **b as f32 as f64).count();
                largest = rv.iter().fold(largest, |m, v| m.max(v.abs()));
            }
            z_sq += r.z.iter().map(|v| v * v).sum::<f64>();
            x_sq += r.x.iter().map(|v| v * v).sum::<f64>();
        }
        let norm_sq = if x_sq > 0.0 { z_sq.min(x_sq) } else { z_sq };
        let s = flips as f64 * largest * bf16_ulp(largest) / norm_sq.max(f64::MIN_POSITIVE);
        for name in &group.tensors {
            slack.insert(name.clone(), s);
        }
    }
    slack
}

/// What y may differ by beyond the f32 bound, element by element, after one
/// step from `before_y`:
/// - the step's size times the relative error of the Adam denominator: the
///   device's `1 - f32(b2)` is off by up to `2^-25 / (1 - b2)` relative (a
///   one-element tensor that cancels has no scale to hide it in);
/// - with NaP, one bf16 ulp where z or x flipped: the projection forms y from
///   the rounded z and x.
fn y_extra(case: &ReplayCase, got: &TensorState, want: &TensorState, before_y: &[f64]) -> Vec<f64> {
    let (_, b2) = case.optimizer.betas();
    let denominator = 2f64.powi(-25) / (1.0 - b2);
    let projected = case
        .nap
        .iter()
        .flat_map(|n| &n.groups)
        .any(|g| g.tensors.contains(&got.name));
    (0..want.y.len())
        .map(|i| {
            let at = |v: &Vec<f64>| v.get(i).copied().unwrap_or(0.0);
            let flipped = at(&got.z) != at(&want.z) as f32 as f64 || at(&got.x) != at(&want.x) as f32 as f64;
            let ulp = match projected && flipped {
                true => bf16_ulp(at(&want.z).abs().max(at(&want.x).abs())),
                false => 0.0,
            };
            denominator * (want.y[i] - before_y[i]).abs() + ulp
        })
        .collect()
}

/// Steps the device `steps` times; after each, the reference takes the same
/// step from the device's previous state (read back), and the two states are
/// compared: each step's rounding decisions are checked on their own. Returns
/// the flips and the flips the bound allows.
fn check_step_by_step(what: &str, case: &ReplayCase) -> (usize, f64) {
    let gpu = gpu();
    let specs: Vec<TensorSpec> = case
        .tensors
        .iter()
        .map(|t| TensorSpec::new(&t.name, &t.shape))
        .collect();
    let arena = Arena::new(&gpu, &specs, None).unwrap();
    let f32s = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
    for t in &case.tensors {
        arena.write(&gpu, &t.name, &f32s(&t.values)).unwrap();
    }
    let mut opt = GpuOptimizer::new(&gpu, &arena, &case.optimizer, case.nap.as_ref()).unwrap();
    // The start: z (and x) the parameters rounded to nearest, as the reference's.
    let params: Vec<(String, Vec<f64>)> = case
        .tensors
        .iter()
        .map(|t| (t.name.clone(), f32s(&t.values).iter().map(|&v| v as f64).collect()))
        .collect();
    let start = Reference::new(&case.optimizer, &params, &vec![true; params.len()], case.nap.as_ref()).unwrap();
    let mut before = opt.device_state(&gpu, &arena).unwrap().state;
    for (t, (d, r)) in before.tensors.iter().zip(&start.state().tensors).enumerate() {
        assert_eq!(d.z, r.z, "{what}: tensor {t}'s z at the start");
        assert_eq!(d.x, r.x, "{what}: tensor {t}'s x at the start");
    }
    let (mut flips, mut allowed) = (0, 0.0);
    let writes_per_step = if case.nap.is_some() { 2.0 } else { 1.0 };
    for step in &case.steps {
        for (t, g) in case.tensors.iter().zip(&step.grads) {
            arena.write_grad(&gpu, &t.name, &f32s(g)).unwrap();
        }
        if let Some(loss) = step.loss.filter(|_| opt.loss_buffer().is_some()) {
            opt.write_loss(&gpu, loss as f32).unwrap();
        }
        opt.step(&gpu).unwrap();
        let after = opt.device_state(&gpu, &arena).unwrap();
        let mut reference = Reference::from_state(&before).unwrap();
        let grads: Vec<Vec<f64>> = step
            .grads
            .iter()
            .map(|g| f32s(g).iter().map(|&v| v as f64).collect())
            .collect();
        reference.step(&grads, after.loss).unwrap();
        let want = reference.state();
        let slack = nap_slack(case, &after.state, &want);
        for (d, r) in after.state.tensors.iter().zip(&want.tensors) {
            let w = format!("{what}, step {}, {}", want.k, d.name);
            let before_y = &before.tensors.iter().find(|t| t.name == d.name).unwrap().y;
            let extra = y_extra(case, d, r, before_y);
            let slack = slack.get(&d.name).copied().unwrap_or(0.0);
            compare(&w, "y", &d.y, &r.y, false, slack, &extra);
            for (seq, dv, rv) in [
                ("z", &d.z, &r.z),
                ("x", &d.x, &r.x),
                ("m", &d.m, &r.m),
                ("v", &d.v, &r.v),
            ] {
                if !dv.is_empty() {
                    let projected = matches!(seq, "z" | "x")
                        && case
                            .nap
                            .iter()
                            .flat_map(|n| &n.groups)
                            .any(|g| g.tensors.contains(&d.name));
                    let passes = if projected { 2.0 } else { 1.0 };
                    flips += compare(&w, seq, dv, rv, true, passes, &[]);
                    let writes = dv.len() as f64 * if matches!(seq, "z" | "x") { writes_per_step } else { 1.0 };
                    allowed += writes * ulps_apart(seq, &case.optimizer) / 65536.0;
                }
            }
        }
        before = after.state;
    }
    (flips, allowed)
}

#[test]
fn every_step_of_bf16_state_matches_the_reference_within_the_flip_bound() {
    let steps = 12;
    for (i, (name, cfg)) in configs().into_iter().enumerate() {
        for with_nap in [false, true] {
            let what = format!("{name}{}", if with_nap { " + NaP" } else { "" });
            let case = random_case(&cfg, with_nap.then(nap), &shapes(), steps, 500 + i as u64);
            let (flips, allowed) = check_step_by_step(&what, &case);
            eprintln!("{what}: {flips} flips, the bound allows {allowed:.0}");
            assert!(
                flips as f64 <= allowed,
                "{what}: {flips} flips, over the bound's {allowed:.0}"
            );
        }
    }
}

/// A segmented arena binds each segment's bf16 state from an aligned offset
/// below it: the results are the same bits as one segment's.
#[test]
fn bf16_state_is_the_same_however_the_arena_is_segmented() {
    let gpu = gpu();
    // Some segment's bf16 state starts off a 256-byte boundary (bound from below it).
    let specs: Vec<TensorSpec> = shapes().iter().map(|(n, s)| TensorSpec::new(*n, s)).collect();
    let layout = Layout::new(&specs, 16 * 1024).unwrap();
    assert!(
        layout.segments.iter().any(|s| (s.start * 2) % 256 != 0),
        "{:?}",
        layout.segments
    );
    for (i, (name, cfg)) in configs().into_iter().enumerate() {
        let case = random_case(&cfg, Some(nap()), &shapes(), 5, 700 + i as u64);
        let decay = vec![true; case.tensors.len()];
        let whole = run_gpu_with(&gpu, &case, &decay, None).unwrap();
        let segmented = run_gpu_with(&gpu, &case, &decay, Some(16 * 1024)).unwrap();
        assert_eq!(segmented, whole, "{name}");
    }
}

/// The health flags see bf16 state's values: a gradient whose square overflows
/// f32 makes v infinite, and the step reports it.
#[test]
fn a_value_that_is_not_finite_is_reported_with_bf16_state() {
    let gpu = gpu();
    for (name, cfg) in configs().into_iter().filter(|(_, c)| c.kind != Kind::SgdSf) {
        let mut case = random_case(&cfg, None, &shapes(), 3, 900);
        case.steps[1].grads[3][7] = 3e38;
        let e = run_gpu_with(&gpu, &case, &vec![true; case.tensors.len()], None).unwrap_err();
        assert!(e.to_string().contains("not finite"), "{name}: {e}");
    }
}
