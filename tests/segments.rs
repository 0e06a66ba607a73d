//! A segmented arena (forced by a tiny storage-binding limit) gives results
//! bit-identical to the unsplit arena, for every kind, with and without NaP;
//! and the same run twice gives bit-identical results (deterministic reductions).

mod common;

use common::{gpu, random_case};
use sfnap::arena::{Layout, TensorSpec};
use sfnap::gpu::CHUNK;
use sfnap::nap::{NapConfig, NapGroup};
use sfnap::optim::{Kind, OptimConfig};
use sfnap::replay::{run_gpu_with, run_reference_with};

fn shapes() -> Vec<(&'static str, Vec<usize>)> {
    vec![("a", vec![4097]), ("b", vec![5]), ("c", vec![7, 1500]), ("d", vec![3])]
}

fn nap() -> NapConfig {
    NapConfig {
        groups: vec![
            NapGroup {
                tensors: vec!["a".into(), "d".into()],
                rho: None,
            },
            NapGroup {
                tensors: vec!["c".into()],
                rho: None,
            },
        ],
    }
}

/// Two chunks per binding: the arena above needs several segments.
const TINY: u64 = (2 * CHUNK * 4) as u64;

#[test]
fn the_tiny_limit_really_splits_the_arena() {
    let specs: Vec<_> = shapes().iter().map(|(n, s)| TensorSpec::new(*n, s)).collect();
    let layout = Layout::new(&specs, TINY).unwrap();
    assert!(layout.segments.len() >= 3, "{:?}", layout.segments);
}

#[test]
fn split_arena_is_bit_identical_to_unsplit() {
    let gpu = gpu();
    for (i, kind) in Kind::ALL.into_iter().enumerate() {
        for with_nap in [false, true] {
            let mut cfg = OptimConfig::new(kind).with_lr(0.01);
            cfg.inner_momentum = if kind == Kind::AdamwSf { 0.5 } else { 0.0 };
            let case = random_case(&cfg, with_nap.then(nap), &shapes(), 30, 7 + i as u64);
            let decay = vec![true, false, true, false];
            let whole = run_gpu_with(&gpu, &case, &decay, None).unwrap();
            let split = run_gpu_with(&gpu, &case, &decay, Some(TINY)).unwrap();
            assert!(whole == split, "{kind} (nap {with_nap}): segmented result differs");
            let again = run_gpu_with(&gpu, &case, &decay, None).unwrap();
            assert!(whole == again, "{kind} (nap {with_nap}): not deterministic");
        }
    }
}

/// More than MAX_WORKGROUPS * 256 vec4s: each invocation of an element pass loops.
#[test]
fn a_tensor_larger_than_one_dispatch_grid() {
    let gpu = gpu();
    let n = sfnap::optim::MAX_WORKGROUPS as usize * 256 * 4 + 12345;
    for kind in [Kind::AdamwSf, Kind::SfPlus] {
        let cfg = OptimConfig::new(kind).with_lr(0.01);
        let case = random_case(&cfg, None, &[("huge", vec![n]), ("small", vec![3])], 3, 99);
        let decay = vec![true, true];
        let exp = run_reference_with(&case, &decay).unwrap();
        let got = run_gpu_with(&gpu, &case, &decay, None).unwrap();
        for (g, e) in got.y["huge"].iter().zip(&exp.y["huge"]) {
            assert!((g - e).abs() <= 1e-5 * (1.0 + e.abs()), "{kind}: {g} vs {e}");
        }
    }
}
