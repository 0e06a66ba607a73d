//! `nn::CrossEntropy` against its f64 twin (`nn::reference::cross_entropy*`): the
//! losses, their gradient, the mean and the hits; bad targets; the mean copied into
//! sf_plus's loss buffer. And the twin against finite differences. How the bounds
//! are derived: `tests/common/layers.rs`.

mod common;

use common::layers::{abs, check, check_fd, numeric_grad, read, run, upload, upload_u32, zeros};
use common::{gpu, Rng, U32};
use sfnap::arena::{Arena, TensorSpec};
use sfnap::gpu::Gpu;
use sfnap::nn::reference as r;
use sfnap::nn::*;
use sfnap::optim::{GpuOptimizer, Kind, OptimConfig};

// ------------------------------------------------- the reference against finite differences

#[test]
fn reference_cross_entropy_matches_finite_differences() {
    let (rows, classes) = (4, 6);
    let mut rng = Rng::new(4);
    let logits = rng.normals(rows * classes, 2.0);
    let targets: Vec<u32> = (0..rows).map(|i| (i * 5 % classes) as u32).collect();
    let analytic = r::cross_entropy_backward(&logits, &targets, rows, classes);
    let numeric = numeric_grad(&logits, |l| r::cross_entropy(l, &targets, rows, classes).mean);
    check_fd("cross-entropy dlogits", &analytic, &numeric);
}

// ------------------------------------------------------ on the GPU against the reference

fn cross_entropy_case(g: &Gpu, rows: usize, classes: usize, seed: u64) {
    let name = format!("cross-entropy {rows}x{classes}");
    let mut rng = Rng::new(seed);
    let logits = rng.normals(rows * classes, 3.0);
    let targets: Vec<u32> = (0..rows).map(|_| (rng.next_u64() % classes as u64) as u32).collect();
    let (lb, tb, db) = (upload(g, &logits), upload_u32(g, &targets), zeros(g, rows * classes));
    let layer = CrossEntropy::new(
        g,
        &CrossEntropyDesc {
            rows,
            classes,
            logits: View::new(&lb, rows * classes),
            targets: View::new(&tb, rows),
            dlogits: View::new(&db, rows * classes),
        },
    )
    .unwrap();
    run(g, |p| {
        layer.record_forward(p);
        layer.record_backward(p);
    });
    let want = r::cross_entropy(&logits, &targets, rows, classes);
    let dl_ref = r::cross_entropy_backward(&logits, &targets, rows, classes);

    // lse = m + log Σ exp(l − m): each exp good to (3 + 2|l − m|)u relative (the
    // WGSL bound), the sum adds V·u, log is good to 2⁻²¹ = 8u absolute near 1:
    // lse is within e = (V + 16 + 2 max|l − m| + |lse|)u, a loss within e + u|loss|.
    // softmax p = exp(l − lse) is then within p((3 + 3|l − lse|)u + e), and
    // dlogits = (p − onehot)/B within (that + 2u|p − onehot|)/B. We allow twice.
    let v = classes as f64;
    let (mut loss_bound, mut dl_bound) = (vec![0.0; rows], vec![0.0; rows * classes]);
    for row in 0..rows {
        let l = &logits[row * classes..(row + 1) * classes];
        let m = l.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let lse = want.losses[row] + l[targets[row] as usize];
        let spread = l.iter().map(|x| (x - m).abs()).fold(0.0, f64::max);
        let e = (v + 16.0 + 2.0 * spread + lse.abs()) * U32;
        loss_bound[row] = 2.0 * (e + U32 * want.losses[row].abs());
        for (j, &lj) in l.iter().enumerate() {
            let p = (lj - lse).exp();
            let dp = p * ((3.0 + 3.0 * (lj - lse).abs()) * U32 + e);
            let i = row * classes + j;
            dl_bound[i] = 2.0 * (dp + 2.0 * U32 * (dl_ref[i] * rows as f64).abs()) / rows as f64;
        }
    }
    check(
        &format!("{name} losses"),
        &read(g, layer.losses(), rows),
        &want.losses,
        &loss_bound,
    );
    check(
        &format!("{name} dlogits"),
        &read(g, &db, rows * classes),
        &dl_ref,
        &dl_bound,
    );
    // The mean: a sum of B losses (B·u·Σ|loss|) of bounded errors, divided by B.
    let stats = layer.read_stats(g).unwrap();
    let mean_bound = 2.0
        * ((rows + 1) as f64 * U32 * abs(&want.losses).iter().sum::<f64>() + loss_bound.iter().sum::<f64>())
        / rows as f64;
    check(
        &format!("{name} mean"),
        &[stats.mean as f64],
        &[want.mean],
        &[mean_bound],
    );
    assert_eq!(stats.correct, want.correct, "{name}: hits");
    assert_eq!(stats.rows as usize, rows);
}

#[test]
fn cross_entropy_matches_reference_on_awkward_sizes() {
    let g = gpu();
    for (seed, rows, classes) in [
        (301, 3, 5),
        (302, 17, 17),
        (303, 3, 130),
        (304, 5, 300),
        (305, 300, 3),
        (306, 1, 1),
        // The GPT's shape, and the boundary between the variants (one invocation
        // per row up to loss::SHORT_ROWS classes, a workgroup beyond).
        (307, 512, 85),
        (308, 4, loss::SHORT_ROWS),
        (309, 4, loss::SHORT_ROWS + 1),
    ] {
        cross_entropy_case(&g, rows, classes, seed);
    }
}

#[test]
fn cross_entropy_counts_hits_and_flags_bad_targets() {
    let g = gpu();
    let (rows, classes) = (4, 3);
    // Row 0: tie between classes 1 and 2, lowest index (1) wins, target 1: hit.
    // Row 1: argmax 0, target 0: hit. Row 2: argmax 2, target 1: miss. Row 3: target 7 (out of range).
    let logits = [0.0, 2.0, 2.0, 5.0, 1.0, 1.0, 0.0, 1.0, 3.0, 1.0, 2.0, 3.0];
    let targets = [1u32, 0, 1, 7];
    let (lb, tb, db) = (upload(&g, &logits), upload_u32(&g, &targets), zeros(&g, rows * classes));
    let layer = CrossEntropy::new(
        &g,
        &CrossEntropyDesc {
            rows,
            classes,
            logits: View::new(&lb, rows * classes),
            targets: View::new(&tb, rows),
            dlogits: View::new(&db, rows * classes),
        },
    )
    .unwrap();
    run(&g, |p| layer.record_forward(p));
    let stats = layer.read_stats(&g).unwrap();
    assert_eq!(stats.correct, 2);
    assert!(
        stats.mean.is_nan(),
        "a bad target must poison the mean, got {}",
        stats.mean
    );
    let losses = read(&g, layer.losses(), rows);
    assert!(
        losses[..3].iter().all(|l| l.is_finite()) && losses[3].is_nan(),
        "{losses:?}"
    );
}

/// The mean loss reaches sf_plus's loss buffer with one copy.
#[test]
fn cross_entropy_mean_fills_the_optimizer_loss_buffer() {
    let g = gpu();
    let (rows, classes) = (5, 4);
    let mut rng = Rng::new(7);
    let logits = rng.normals(rows * classes, 1.0);
    let targets = [0u32, 1, 2, 3, 0];
    let (lb, tb, db) = (upload(&g, &logits), upload_u32(&g, &targets), zeros(&g, rows * classes));
    let layer = CrossEntropy::new(
        &g,
        &CrossEntropyDesc {
            rows,
            classes,
            logits: View::new(&lb, rows * classes),
            targets: View::new(&tb, rows),
            dlogits: View::new(&db, rows * classes),
        },
    )
    .unwrap();
    let arena = Arena::new(&g, &[TensorSpec::new("w", &[4])], None).unwrap();
    let opt = GpuOptimizer::new(&g, &arena, &OptimConfig::new(Kind::SfPlus), None).unwrap();
    let loss_buffer = opt.loss_buffer().expect("sf_plus has a loss buffer");
    g.submit(|enc| {
        layer.record_forward(&mut enc.begin_compute_pass(&Default::default()));
        layer.record_copy_mean(enc, loss_buffer, 0);
    });
    g.wait().unwrap();
    let copied = g.read::<f32>(loss_buffer, 0, 1).unwrap()[0];
    let stats = layer.read_stats(&g).unwrap();
    assert_eq!(copied.to_bits(), stats.mean.to_bits());
    let want = r::cross_entropy(&logits, &targets, rows, classes).mean;
    assert!((copied as f64 - want).abs() < 1e-5, "{copied} vs {want}");
}
