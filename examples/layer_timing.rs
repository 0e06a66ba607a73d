//! Times every layer of the tiny character-level GPT at its real shapes, forward
//! and backward apart, and the whole graph (forward + backward, no optimizer).
//!
//! Shapes are those of `sfnap train --model gpt --data text`: B = 8 sequences of
//! T = 64 tokens (512 rows), width C = 64, H = 4 heads, 2 blocks, the shipped
//! corpus's vocabulary (V ≈ 90). Each layer is built on random inputs (real token
//! ids for the embeddings); each measurement records `reps` copies of the pass
//! into one compute pass, submits, waits, and divides the wall time by `reps`
//! (the best of three trials, after a warm-up that compiles the pipelines). Wall
//! time, not GPU timestamps, so that per-dispatch driver costs count too: on a
//! CPU driver (lavapipe) they are a large part of a step.
//!
//! Run: `cargo run --release --example layer_timing [-- FILTER]`; FILTER keeps the
//! rows whose name contains it. On a machine without a GPU, point Vulkan at
//! lavapipe first: `export VK_DRIVER_FILES=$(ls /usr/share/vulkan/icd.d/lvp_icd*.json | head -1)`.

use std::time::Instant;

use sfnap::arena::{Arena, TensorSpec};
use sfnap::data::text::Text;
use sfnap::data::Rng;
use sfnap::gpu::Gpu;
use sfnap::model::gpt::{GptConfig, GptGraph};
use sfnap::model::{Graph, Model, Weights};
use sfnap::nn::*;

const BATCH: usize = 8;
const SEQ: usize = 64;
const WIDTH: usize = 64;
const HEADS: usize = 4;
const ROWS: usize = BATCH * SEQ;

/// Records one pass of a layer into a compute pass.
type Recorder<'a> = Box<dyn Fn(&mut wgpu::ComputePass<'_>) + 'a>;

/// One row of the table: a layer's forward and backward recordings.
struct Row<'a> {
    name: String,
    forward: Recorder<'a>,
    backward: Recorder<'a>,
}

/// Seconds per recording of `record`: best of three trials of `reps` copies in one pass.
fn seconds_per_rep(gpu: &Gpu, record: &dyn Fn(&mut wgpu::ComputePass<'_>)) -> f64 {
    let trial = |reps: usize| {
        let start = Instant::now();
        gpu.submit(|enc| {
            let mut pass = enc.begin_compute_pass(&Default::default());
            for _ in 0..reps {
                record(&mut pass);
            }
        });
        gpu.wait().expect("device lost");
        start.elapsed().as_secs_f64()
    };
    // Warm-up (pipeline compilation), then enough copies for ~0.2 s a trial.
    trial(1);
    let once = trial(1).max(1e-6);
    let reps = ((0.2 / once) as usize).clamp(3, 500);
    (0..3).map(|_| trial(reps) / reps as f64).fold(f64::INFINITY, f64::min)
}

/// A buffer of `n` random f32 in N(0, scale²).
fn random(gpu: &Gpu, rng: &mut Rng, n: usize, scale: f64) -> wgpu::Buffer {
    let v: Vec<f32> = (0..n).map(|_| (rng.normal() * scale) as f32).collect();
    gpu.storage_init("timing input", &v)
}

/// All `ROWS` rows of a `[ROWS, w]` tensor in `b`.
fn view(b: &wgpu::Buffer, w: usize) -> View<'_> {
    View::new(b, ROWS * w)
}

fn zeros(gpu: &Gpu, n: usize) -> wgpu::Buffer {
    gpu.storage("timing output", n as u64 * 4)
}

fn main() -> sfnap::Result<()> {
    let filter = std::env::args().nth(1).unwrap_or_default();
    let gpu = Gpu::from_env()?;
    let text = Text::shipped();
    let vocab = text.vocab.len();
    println!("adapter: {}", gpu.describe());
    println!("GPT shapes: B {BATCH}, T {SEQ}, rows {ROWS}, C {WIDTH}, H {HEADS}, V {vocab}");

    let (c, v) = (WIDTH, vocab);
    let mut rng = Rng::new(1);
    // Every parameter of the rows below, in one arena.
    let mut specs = vec![
        TensorSpec::new("tok", &[v, c]),
        TensorSpec::new("pos", &[SEQ, c]),
        TensorSpec::new("ln.gain", &[c]).no_decay(),
        TensorSpec::new("ln.offset", &[c]).no_decay(),
        TensorSpec::new("head", &[c, v]),
    ];
    let linears = [
        ("qkv", c, 3 * c),
        ("attn proj", c, c),
        ("fc", c, 4 * c),
        ("fc proj", 4 * c, c),
    ];
    for (name, i, o) in linears {
        specs.push(TensorSpec::new(format!("{name}.w"), &[i, o]));
        specs.push(TensorSpec::new(format!("{name}.b"), &[o]).no_decay());
    }
    let arena = Arena::new(&gpu, &specs, None)?;
    for s in &specs {
        let n: usize = s.shape.iter().product();
        let vals: Vec<f32> = (0..n).map(|_| (rng.normal() * 0.1 + 0.02) as f32).collect();
        arena.write(&gpu, &s.name, &vals)?;
    }
    let p = |n: &str| Param::from_arena(&arena, n);

    // Inputs and outputs: one set per width used.
    let mut make = |n: usize, input: bool| {
        if input {
            random(&gpu, &mut rng, n, 1.0)
        } else {
            zeros(&gpu, n)
        }
    };
    let widths = [c, 3 * c, 4 * c, v];
    // (x, y, dy, dx) per width.
    let io: Vec<[wgpu::Buffer; 4]> = widths
        .iter()
        .map(|&w| {
            [
                make(ROWS * w, true),
                make(ROWS * w, false),
                make(ROWS * w, true),
                make(ROWS * w, false),
            ]
        })
        .collect();
    let at = |w: usize| &io[widths.iter().position(|&x| x == w).expect("a width")];

    let mut batch_rng = Rng::new(3);
    let (ids, targets) = text.batch(BATCH, SEQ, &mut batch_rng);
    let ids_b = gpu.storage_init("timing ids", &ids);
    let targets_b = gpu.storage_init("timing targets", &targets);
    let pos_ids: Vec<u32> = (0..ROWS).map(|i| (i % SEQ) as u32).collect();
    let pos_b = gpu.storage_init("timing positions", &pos_ids);

    let emb = |ids: &wgpu::Buffer, table: &str, vocab: usize| {
        Embedding::new(
            &gpu,
            &EmbeddingDesc {
                tokens: ROWS,
                vocab,
                dim: c,
                ids: View::new(ids, ROWS),
                table: p(table)?,
                out: view(&at(c)[1], c),
                dout: view(&at(c)[2], c),
            },
        )
    };
    let tok = emb(&ids_b, "tok", v)?;
    let pos = emb(&pos_b, "pos", SEQ)?;
    let ln = Norm::new(
        &gpu,
        &NormDesc {
            kind: NormKind::Layer,
            rows: ROWS,
            dim: c,
            eps: 1e-5,
            x: view(&at(c)[0], c),
            y: view(&at(c)[1], c),
            dy: view(&at(c)[2], c),
            dx: Some(view(&at(c)[3], c)),
            gain: Some(p("ln.gain")?),
            offset: Some(p("ln.offset")?),
        },
    )?;
    let mut lins = Vec::new();
    // Floating-point operations of each matmul's forward pass (the backward does twice as many).
    let mut flops = std::collections::HashMap::new();
    for (name, i, o) in linears {
        let layer = Linear::new(
            &gpu,
            &LinearDesc {
                rows: ROWS,
                inputs: i,
                outputs: o,
                x: view(&at(i)[0], i),
                y: view(&at(o)[1], o),
                dy: view(&at(o)[2], o),
                dx: Some(view(&at(i)[3], i)),
                weight: p(&format!("{name}.w"))?,
                bias: Some(p(&format!("{name}.b"))?),
            },
        )?;
        flops.insert(format!("linear {name} {i}->{o}"), 2.0 * (ROWS * i * o) as f64);
        lins.push((format!("linear {name} {i}->{o}"), layer));
    }
    let head = Linear::new(
        &gpu,
        &LinearDesc {
            rows: ROWS,
            inputs: c,
            outputs: v,
            x: view(&at(c)[0], c),
            y: view(&at(v)[1], v),
            dy: view(&at(v)[2], v),
            dx: Some(view(&at(c)[3], c)),
            weight: p("head")?,
            bias: None,
        },
    )?;
    let attn = Attention::new(
        &gpu,
        &AttentionDesc {
            batch: BATCH,
            seq: SEQ,
            heads: HEADS,
            channels: c,
            qkv: view(&at(3 * c)[0], 3 * c),
            out: view(&at(c)[1], c),
            dout: view(&at(c)[2], c),
            dqkv: view(&at(3 * c)[3], 3 * c),
        },
    )?;
    let gelu = Activation::new(
        &gpu,
        &ActivationDesc {
            kind: ActivationKind::Gelu,
            len: ROWS * 4 * c,
            x: view(&at(4 * c)[0], 4 * c),
            y: view(&at(4 * c)[1], 4 * c),
            dy: view(&at(4 * c)[2], 4 * c),
            dx: view(&at(4 * c)[3], 4 * c),
        },
    )?;
    let add = Add::new(
        &gpu,
        ROWS * c,
        view(&at(c)[0], c),
        view(&at(c)[2], c),
        view(&at(c)[1], c),
    )?;
    let loss = CrossEntropy::new(
        &gpu,
        &CrossEntropyDesc {
            rows: ROWS,
            classes: v,
            logits: view(&at(v)[0], v),
            targets: View::new(&targets_b, ROWS),
            dlogits: view(&at(v)[3], v),
        },
    )?;

    // The whole graph, as `sfnap train` builds it.
    let cfg = GptConfig {
        vocab: v,
        context: SEQ,
        width: c,
        heads: HEADS,
        layers: 2,
    };
    let gpt_arena = Arena::new(&gpu, &cfg.tensors(), None)?;
    cfg.initialize(&gpu, &gpt_arena, 1)?;
    let graph = GptGraph::new(&gpu, &cfg, Weights::train(&gpt_arena), BATCH)?;
    graph.write_batch(&gpu, &sfnap::model::Inputs::Tokens(ids.clone()), &targets)?;
    let mut rows: Vec<Row> = Vec::new();
    rows.push(Row {
        name: format!("embedding tok {ROWS}x{v}x{c}"),
        forward: Box::new(|p| tok.record_forward(p)),
        backward: Box::new(|p| tok.record_backward(p)),
    });
    rows.push(Row {
        name: format!("embedding pos {ROWS}x{SEQ}x{c}"),
        forward: Box::new(|p| pos.record_forward(p)),
        backward: Box::new(|p| pos.record_backward(p)),
    });
    rows.push(Row {
        name: format!("layer_norm {ROWS}x{c}"),
        forward: Box::new(|p| ln.record_forward(p)),
        backward: Box::new(|p| ln.record_backward(p)),
    });
    for (name, layer) in &lins {
        rows.push(Row {
            name: name.clone(),
            forward: Box::new(|p| layer.record_forward(p)),
            backward: Box::new(|p| layer.record_backward(p)),
        });
    }
    flops.insert(format!("linear head {c}->{v} (no bias)"), 2.0 * (ROWS * c * v) as f64);
    rows.push(Row {
        name: format!("linear head {c}->{v} (no bias)"),
        forward: Box::new(|p| head.record_forward(p)),
        backward: Box::new(|p| head.record_backward(p)),
    });
    rows.push(Row {
        name: format!("attention B{BATCH} T{SEQ} H{HEADS} C{c}"),
        forward: Box::new(|p| attn.record_forward(p)),
        backward: Box::new(|p| attn.record_backward(p)),
    });
    rows.push(Row {
        name: format!("gelu {ROWS}x{}", 4 * c),
        forward: Box::new(|p| gelu.record_forward(p)),
        backward: Box::new(|p| gelu.record_backward(p)),
    });
    rows.push(Row {
        name: format!("add {ROWS}x{c} (backward: none)"),
        forward: Box::new(|p| add.record(p)),
        backward: Box::new(|_| {}),
    });
    rows.push(Row {
        name: format!("cross_entropy {ROWS}x{v}"),
        forward: Box::new(|p| loss.record_forward(p)),
        backward: Box::new(|p| loss.record_backward(p)),
    });

    rows.push(Row {
        name: "GPT graph (2 blocks, whole step)".into(),
        forward: Box::new(|p| graph.record_forward(p)),
        backward: Box::new(|p| graph.record_backward(p)),
    });

    println!(
        "{:<40} {:>12} {:>12}   throughput",
        "layer", "forward ms", "backward ms"
    );
    for row in rows.iter().filter(|r| r.name.contains(&filter)) {
        let f = seconds_per_rep(&gpu, &row.forward) * 1e3;
        let b = seconds_per_rep(&gpu, &row.backward) * 1e3;
        let rate = match flops.get(&row.name) {
            Some(fl) => format!("{:.2} / {:.2} GFLOP/s", fl / f / 1e6, 2.0 * fl / b / 1e6),
            None if row.name.starts_with("GPT graph") => format!("{:.0} tokens/s", ROWS as f64 / ((f + b) / 1e3)),
            None => String::new(),
        };
        println!("{:<40} {:>12.3} {:>12.3}   {rate}", row.name, f, b);
    }
    Ok(())
}
