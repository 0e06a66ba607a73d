//! `nn::Embedding` against its f64 twin (`nn::reference::embedding_*`), rows of
//! ids out of range, and the twin against finite differences. How the bounds are
//! derived: `tests/common/layers.rs`. (`tests/own_device.rs` is sfnap embedded in a
//! program that owns the device.)

mod common;

use common::layers::{abs, check, check_fd, dot, f32s, numeric_grad, read, read_grad, run, upload, upload_u32, zeros};
use common::{gpu, Rng, U32};
use sfnap::arena::{Arena, TensorSpec};
use sfnap::gpu::Gpu;
use sfnap::nn::reference as r;
use sfnap::nn::*;

// ------------------------------------------------- the reference against finite differences

#[test]
fn reference_embedding_matches_finite_differences() {
    let (vocab, dim) = (5, 3);
    let ids = [3u32, 0, 3, 1, 3, 0];
    let mut rng = Rng::new(5);
    let table = rng.normals(vocab * dim, 1.0);
    let dout = rng.normals(ids.len() * dim, 1.0);
    let analytic = r::embedding_backward(&ids, &dout, vocab, dim);
    let numeric = numeric_grad(&table, |t| dot(&dout, &r::embedding_forward(&ids, t, dim)));
    check_fd("embedding dtable", &analytic, &numeric);
}

// ------------------------------------------------------ on the GPU against the reference

fn embedding_case(g: &Gpu, ids: &[u32], vocab: usize, dim: usize, seed: u64) {
    let tokens = ids.len();
    let name = format!("embedding {tokens} tokens, {vocab}x{dim}");
    let mut rng = Rng::new(seed);
    let table = rng.normals(vocab * dim, 1.0);
    let dout = rng.normals(tokens * dim, 1.0);
    let arena = Arena::new(
        g,
        &[TensorSpec::new("first", &[5]), TensorSpec::new("table", &[vocab, dim])],
        None,
    )
    .unwrap();
    arena.write(g, "table", &f32s(&table)).unwrap();
    let (ib, ob, db) = (upload_u32(g, ids), zeros(g, tokens * dim), upload(g, &dout));
    let layer = Embedding::new(
        g,
        &EmbeddingDesc {
            tokens,
            vocab,
            dim,
            ids: View::new(&ib, tokens),
            table: Param::from_arena(&arena, "table").unwrap(),
            out: View::new(&ob, tokens * dim),
            dout: View::new(&db, tokens * dim),
        },
    )
    .unwrap();
    // Garbage in the gradient first: the backward pass must overwrite every row.
    arena.write_grad(g, "table", &vec![9.0; vocab * dim]).unwrap();
    run(g, |p| {
        layer.record_forward(p);
        layer.record_backward(p);
    });
    // The gather is exact; the gradient of row v is a sum of n_v terms (n_v tokens
    // with id v), within (n_v + 1)·u·Σ|dout|.
    let out_ref = r::embedding_forward(ids, &table, dim);
    check(
        &format!("{name} out"),
        &read(g, &ob, tokens * dim),
        &out_ref,
        &vec![0.0; tokens * dim],
    );
    let grad_ref = r::embedding_backward(ids, &dout, vocab, dim);
    let abs_sums = r::embedding_backward(ids, &abs(&dout), vocab, dim);
    let bound: Vec<f64> = (0..vocab * dim)
        .map(|i| {
            let count = ids.iter().filter(|&&id| id as usize == i / dim).count();
            (count + 1) as f64 * U32 * abs_sums[i]
        })
        .collect();
    check(
        &format!("{name} dtable"),
        &read_grad(g, &arena, "table"),
        &grad_ref,
        &bound,
    );
}

#[test]
fn embedding_matches_reference_on_awkward_sizes() {
    let g = gpu();
    let mut rng = Rng::new(400);
    for (seed, tokens, vocab, dim) in [
        (401, 17, 5, 5),
        (402, 3, 130, 17),
        (403, 130, 64, 64),
        (404, 300, 7, 3),
        (405, 1, 1, 1),
    ] {
        let ids: Vec<u32> = (0..tokens).map(|_| (rng.next_u64() % vocab as u64) as u32).collect();
        embedding_case(&g, &ids, vocab, dim, seed);
    }
}

#[test]
fn embedding_poisons_rows_of_bad_ids_and_gives_them_no_gradient() {
    let g = gpu();
    let (vocab, dim) = (3, 2);
    let ids = [2u32, 9, 2];
    let table = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    let dout = [1.0, 10.0, 100.0, 1000.0, 0.5, 0.25];
    let arena = Arena::new(&g, &[TensorSpec::new("table", &[vocab, dim])], None).unwrap();
    arena.write(&g, "table", &f32s(&table)).unwrap();
    let (ib, ob, db) = (upload_u32(&g, &ids), zeros(&g, 6), upload(&g, &dout));
    let layer = Embedding::new(
        &g,
        &EmbeddingDesc {
            tokens: 3,
            vocab,
            dim,
            ids: View::new(&ib, 3),
            table: Param::from_arena(&arena, "table").unwrap(),
            out: View::new(&ob, 6),
            dout: View::new(&db, 6),
        },
    )
    .unwrap();
    run(&g, |p| {
        layer.record_forward(p);
        layer.record_backward(p);
    });
    let out = read(&g, &ob, 6);
    assert_eq!([out[0], out[1], out[4], out[5]], [5.0, 6.0, 5.0, 6.0]);
    assert!(out[2].is_nan() && out[3].is_nan(), "{out:?}");
    assert_eq!(read_grad(&g, &arena, "table"), [0.0, 0.0, 0.0, 0.0, 1.5, 10.25]);
}
