//! What holds across the layers (`sfnap::nn`): bit-identical gradients run after
//! run, and named errors for bad shapes and aliasing. Each layer against its f64
//! twin is in `tests/layer_*.rs`; their shared checks in `tests/common/layers.rs`.

mod common;

use common::layers::{f32s, run, upload, upload_u32, zeros};
use common::{gpu, Rng};
use sfnap::arena::{Arena, TensorSpec};
use sfnap::gpu::Gpu;
use sfnap::nn::*;

// ---------------------------------------------------------------- determinism and errors

/// Every layer's backward pass gives bit-identical gradients run after run, in
/// both variants of the layers that have two.
#[test]
fn gradients_are_bit_identical_run_to_run() {
    let g = gpu();
    // Short rows and small products: the barrier-free kernels.
    bit_identical_case(&g, 37, 70, 5);
    // Long rows and large products: the kernels with workgroup reductions and tiles.
    let (rows, dim) = (150, 260);
    assert!(rows > attention::SHORT_ROWS && dim > norm::SHORT_ROWS);
    assert!(rows * dim * 3 * dim > linear::SMALL_PRODUCT);
    bit_identical_case(&g, rows, dim, 5);
}

/// Embedding, LayerNorm, Linear (dim -> 3 dim) and attention (one sequence of
/// `rows` positions) chained, forward and backward, four times over.
fn bit_identical_case(g: &Gpu, rows: usize, dim: usize, heads: usize) {
    let vocab = 11;
    let mut rng = Rng::new(600);
    let ids: Vec<u32> = (0..rows).map(|_| (rng.next_u64() % vocab as u64) as u32).collect();
    let arena = Arena::new(
        g,
        &[
            TensorSpec::new("table", &[vocab, dim]),
            TensorSpec::new("w", &[dim, 3 * dim]),
            TensorSpec::new("gain", &[dim]).no_decay(),
        ],
        None,
    )
    .unwrap();
    arena.write(g, "table", &f32s(&rng.normals(vocab * dim, 1.0))).unwrap();
    arena.write(g, "w", &f32s(&rng.normals(dim * 3 * dim, 0.3))).unwrap();
    arena.write(g, "gain", &vec![1.0; dim]).unwrap();
    let mut grad_of = |n: usize| upload(g, &rng.normals(n, 1.0));
    let (d_emb, d_norm, d_qkv, d_att) = (
        grad_of(rows * dim),
        grad_of(rows * dim),
        grad_of(rows * 3 * dim),
        grad_of(rows * dim),
    );
    let (emb, normed, qkv, att) = (
        zeros(g, rows * dim),
        zeros(g, rows * dim),
        zeros(g, rows * 3 * dim),
        zeros(g, rows * dim),
    );
    let (dx_norm, dx_lin, dx_att) = (zeros(g, rows * dim), zeros(g, rows * dim), zeros(g, rows * 3 * dim));
    let ib = upload_u32(g, &ids);
    let v = View::new;
    let (n1, n3) = (rows * dim, rows * 3 * dim);
    let layers_embedding = Embedding::new(
        g,
        &EmbeddingDesc {
            tokens: rows,
            vocab,
            dim,
            ids: v(&ib, rows),
            table: Param::from_arena(&arena, "table").unwrap(),
            out: v(&emb, n1),
            dout: v(&d_emb, n1),
        },
    )
    .unwrap();
    let norm = Norm::new(
        g,
        &NormDesc {
            kind: NormKind::Layer,
            rows,
            dim,
            eps: 1e-5,
            x: v(&emb, n1),
            y: v(&normed, n1),
            dy: v(&d_norm, n1),
            dx: Some(v(&dx_norm, n1)),
            gain: Some(Param::from_arena(&arena, "gain").unwrap()),
            offset: None,
        },
    )
    .unwrap();
    let linear = Linear::new(
        g,
        &LinearDesc {
            rows,
            inputs: dim,
            outputs: 3 * dim,
            x: v(&normed, n1),
            y: v(&qkv, n3),
            dy: v(&d_qkv, n3),
            dx: Some(v(&dx_lin, n1)),
            weight: Param::from_arena(&arena, "w").unwrap(),
            bias: None,
        },
    )
    .unwrap();
    let attention = Attention::new(
        g,
        &AttentionDesc {
            batch: 1,
            seq: rows,
            heads,
            channels: dim,
            qkv: v(&qkv, n3),
            out: v(&att, n1),
            dout: v(&d_att, n1),
            dqkv: v(&dx_att, n3),
        },
    )
    .unwrap();
    let step = || {
        run(g, |p| {
            layers_embedding.record_forward(p);
            norm.record_forward(p);
            linear.record_forward(p);
            attention.record_forward(p);
            attention.record_backward(p);
            linear.record_backward(p);
            norm.record_backward(p);
            layers_embedding.record_backward(p);
        });
        let mut all: Vec<u32> = g.read::<u32>(&arena.grads, 0, arena.layout.total).unwrap();
        for (b, n) in [(&dx_norm, n1), (&dx_lin, n1), (&dx_att, n3), (&att, n1)] {
            all.extend(g.read::<u32>(b, 0, n).unwrap());
        }
        all
    };
    let first = step();
    for _ in 0..3 {
        assert!(step() == first, "gradients changed between identical runs");
    }
}

#[test]
fn bad_shapes_and_aliasing_are_named_errors() {
    let g = gpu();
    let a = zeros(&g, 64);
    let b = zeros(&g, 64);
    let arena = Arena::new(&g, &[TensorSpec::new("w", &[4, 3])], None).unwrap();
    let w = Param::from_arena(&arena, "w").unwrap();
    let dy = View::new(&b, 6);
    let desc = |x, y| LinearDesc {
        rows: 2,
        inputs: 4,
        outputs: 3,
        x,
        y,
        dy,
        dx: None,
        weight: w,
        bias: None,
    };
    let err = |r: Result<Linear, sfnap::Error>| r.err().expect("must fail").to_string();
    // x holds 7 elements where [2, 4] needs 8.
    let e = err(Linear::new(&g, &desc(View::new(&a, 7), View::new(&b, 6))));
    assert!(e.contains("linear.x") && e.contains("[2, 4]"), "{e}");
    // A view past the end of its buffer.
    let e = err(Linear::new(&g, &desc(View::at(&a, 60, 8), View::new(&b, 6))));
    assert!(e.contains("linear.x") && e.contains("outside"), "{e}");
    // y in the buffer the same kernel reads x from.
    let e = err(Linear::new(&g, &desc(View::new(&a, 8), View::at(&a, 0, 6))));
    assert!(e.contains("linear.y") && e.contains("linear.x"), "{e}");
    // A zero dimension.
    let mut d = desc(View::new(&a, 8), View::new(&b, 6));
    d.rows = 0;
    let e = err(Linear::new(&g, &d));
    assert!(e.contains("linear.rows"), "{e}");
    // Heads that do not divide the width.
    let e = Attention::new(
        &g,
        &AttentionDesc {
            batch: 1,
            seq: 2,
            heads: 3,
            channels: 4,
            qkv: View::new(&a, 24),
            out: View::new(&b, 8),
            dout: View::new(&b, 8),
            dqkv: View::new(&a, 24),
        },
    )
    .err()
    .expect("must fail")
    .to_string();
    assert!(e.contains("attention.heads"), "{e}");
    // A bad eps.
    let e = Norm::new(
        &g,
        &NormDesc {
            kind: NormKind::Rms,
            rows: 2,
            dim: 4,
            eps: 0.0,
            x: View::new(&a, 8),
            y: View::new(&b, 8),
            dy: View::new(&b, 8),
            dx: None,
            gain: None,
            offset: None,
        },
    )
    .err()
    .expect("must fail")
    .to_string();
    assert!(e.contains("rms_norm.eps"), "{e}");
}
