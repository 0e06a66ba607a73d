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
use sfnap::arena::{Arena, TensorSpec};
use sfnap::optim::bf16::{Rounding, StateDtype};
use sfnap::optim::reference::Reference;
use sfnap::optim::GpuOptimizer;
use sfnap::optim::{Kind, OptimConfig};
use sfnap::replay::{run_gpu_with, ReplayCase};

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
    let mut nearest = base(Kind::AdamwSf, 0.01);
    nearest.state_rounding = Rounding::Nearest;
    vec![
        ("sgd_sf", sgd),
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
/// sequences (y) within an f32 tolerance, bf16 ones bit for bit but for flips,
/// which it counts. A flip is one bf16 ulp of the value, plus the f32
/// computation's own error, which is relative to the operands (at most the
/// tensor's largest value: a few f32 ulps of it) where the result cancels.
fn compare(what: &str, seq: &str, got: &[f64], want: &[f64], bf16: bool) -> usize {
    assert_eq!(got.len(), want.len(), "{what}: {seq} length");
    let largest = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let mut flips = 0;
    for (i, (&a, &b)) in got.iter().zip(want).enumerate() {
        let b32 = b as f32 as f64;
        if bf16 {
            if a != b32 {
                flips += 1;
                assert!(
                    (a - b32).abs() <= bf16_ulp(a.abs().max(b32.abs())) + largest * 2f64.powi(-20),
                    "{what}: {seq}[{i}] = {a}, reference {b32}: more than one bf16 ulp apart"
                );
            }
        } else {
            assert!(
                (a - b).abs() <= 1e-5 * b.abs().max(1e-2),
                "{what}: {seq}[{i}] = {a}, reference {b}"
            );
        }
    }
    flips
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
        for (d, r) in after.state.tensors.iter().zip(&want.tensors) {
            let w = format!("{what}, step {}, {}", want.k, d.name);
            compare(&w, "y", &d.y, &r.y, false);
            for (seq, dv, rv) in [
                ("z", &d.z, &r.z),
                ("x", &d.x, &r.x),
                ("m", &d.m, &r.m),
                ("v", &d.v, &r.v),
            ] {
                if !dv.is_empty() {
                    flips += compare(&w, seq, dv, rv, true);
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
    for (i, (name, cfg)) in configs().into_iter().enumerate() {
        let case = random_case(&cfg, Some(nap()), &shapes(), 5, 700 + i as u64);
        let decay = vec![true; case.tensors.len()];
        let whole = run_gpu_with(&gpu, &case, &decay, None).unwrap();
        let segmented = run_gpu_with(&gpu, &case, &decay, Some(16 * 1024)).unwrap();
        assert_eq!(segmented, whole, "{name}");
    }
}
