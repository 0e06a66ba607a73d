//! `gpt`: a tiny pre-LN transformer for character-level language modelling.
//!
//! tokens -> token + position embeddings -> [x + attn(LN(x)); x + mlp(LN(x))] x L
//! -> LN -> Linear head -> cross-entropy over the next character.
//! Attention: Linear to q, k, v (one [C, 3C] weight), causal multi-head
//! attention, Linear back to C. MLP: Linear to 4C, GELU, Linear back to C.
//!
//! NaP groups: each LayerNorm's (gain, offset). The linear layers here feed the
//! residual stream, not a normalization, so they are not scale-invariant and are
//! never projected; nor is the head.

use super::{activation, check_rows, Graph, Inputs, Model, Weights};
use crate::arena::TensorSpec;
use crate::data::Rng;
use crate::error::{Error, Result};
use crate::gpu::{Gpu, Recorder};
use crate::nap::{NapConfig, NapGroup};
use crate::nn::{
    Activation, ActivationDesc, ActivationKind, Add, Attention, AttentionDesc, CrossEntropy, CrossEntropyDesc,
    Embedding, EmbeddingDesc, Linear, LinearDesc, Norm, NormDesc, NormKind, Param, View,
};

/// Shape of a GPT.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GptConfig {
    /// Vocabulary size.
    pub vocab: usize,
    /// Context length T.
    pub context: usize,
    /// Model width C.
    pub width: usize,
    /// Attention heads (divide the width).
    pub heads: usize,
    /// Transformer blocks L.
    pub layers: usize,
}

impl Model for GptConfig {
    /// Per sequence: the logits, the MLP's hidden layer or the attention
    /// probabilities, whichever is largest.
    fn bytes_per_row(&self) -> u64 {
        let (t, c, v, h) = (
            self.context as u64,
            self.width as u64,
            self.vocab as u64,
            self.heads as u64,
        );
        4 * (t * v).max(t * 4 * c).max(h * t * t)
    }

    fn row_sizes(&self) -> &'static [&'static str] {
        &["context", "width", "heads"]
    }

    /// 2 V C + T C for the embeddings, 12 C^2 + 13 C a block, 2 C for the final
    /// norm and C V for the head.
    fn parameters(&self) -> u128 {
        let (v, t, c, l) = (
            self.vocab as u128,
            self.context as u128,
            self.width as u128,
            self.layers as u128,
        );
        2 * v * c + t * c + l * (12 * c * c + 13 * c) + 2 * c
    }

    /// Per token: ids, targets, positions, the embeddings' and final norm's
    /// activations (7 C), logits and their gradient (2 V), the loss's and norms'
    /// per-row values (5) and the embeddings' ordering (2); per block 36 C
    /// activations and gradients and 4 norm values per token, and the attention
    /// probabilities and their gradient (2 H T^2 a sequence).
    fn graph_bytes(&self, rows: usize) -> u128 {
        let (v, t, c, h, l) = (
            self.vocab as u128,
            self.context as u128,
            self.width as u128,
            self.heads as u128,
            self.layers as u128,
        );
        let sequences = rows as u128;
        let tokens = sequences * t;
        let block = tokens * (36 * c + 4) + 2 * sequences * h * t * t;
        4 * (tokens * (3 + 7 * c + 2 * v + 5 + 2) + v + t + l * block)
    }

    fn tensors(&self) -> Vec<TensorSpec> {
        let (v, t, c) = (self.vocab, self.context, self.width);
        let mut s = vec![TensorSpec::new("tok_emb", &[v, c]), TensorSpec::new("pos_emb", &[t, c])];
        for l in 0..self.layers {
            let p = |n: &str| format!("h{l}.{n}");
            s.extend([
                TensorSpec::new(p("ln1.gain"), &[c]).no_decay(),
                TensorSpec::new(p("ln1.offset"), &[c]).no_decay(),
                TensorSpec::new(p("attn.qkv.weight"), &[c, 3 * c]),
                TensorSpec::new(p("attn.qkv.bias"), &[3 * c]).no_decay(),
                TensorSpec::new(p("attn.proj.weight"), &[c, c]),
                TensorSpec::new(p("attn.proj.bias"), &[c]).no_decay(),
                TensorSpec::new(p("ln2.gain"), &[c]).no_decay(),
                TensorSpec::new(p("ln2.offset"), &[c]).no_decay(),
                TensorSpec::new(p("mlp.fc.weight"), &[c, 4 * c]),
                TensorSpec::new(p("mlp.fc.bias"), &[4 * c]).no_decay(),
                TensorSpec::new(p("mlp.proj.weight"), &[4 * c, c]),
                TensorSpec::new(p("mlp.proj.bias"), &[c]).no_decay(),
            ]);
        }
        s.extend([
            TensorSpec::new("lnf.gain", &[c]).no_decay(),
            TensorSpec::new("lnf.offset", &[c]).no_decay(),
            TensorSpec::new("head.weight", &[c, v]),
        ]);
        s
    }

    fn nap_groups(&self) -> NapConfig {
        let norms = (0..self.layers)
            .flat_map(|l| [format!("h{l}.ln1"), format!("h{l}.ln2")])
            .chain(std::iter::once("lnf".to_string()));
        NapConfig {
            groups: norms
                .map(|n| NapGroup {
                    tensors: vec![format!("{n}.gain"), format!("{n}.offset")],
                    rho: None,
                })
                .collect(),
        }
    }

    /// GPT-2's scheme: N(0, 0.02), output projections N(0, 0.02 / sqrt(2L)), biases
    /// and offsets 0, gains 1.
    fn init(&self, spec: &TensorSpec, rng: &mut Rng) -> Vec<f32> {
        let n: usize = spec.shape.iter().product();
        let name = spec.name.as_str();
        if name.ends_with(".gain") {
            return vec![1.0; n];
        }
        if name.ends_with(".offset") || name.ends_with(".bias") {
            return vec![0.0; n];
        }
        let std = if name.ends_with("proj.weight") {
            0.02 / (2.0 * self.layers as f64).sqrt()
        } else {
            0.02
        };
        (0..n).map(|_| (rng.normal() * std) as f32).collect()
    }
}

/// Buffers of one block: activations and their gradients, all `[B*T, ...]`.
struct BlockBuffers {
    n1: wgpu::Buffer,
    qkv: wgpu::Buffer,
    att: wgpu::Buffer,
    o: wgpu::Buffer,
    r: wgpu::Buffer,
    n2: wgpu::Buffer,
    h: wgpu::Buffer,
    g: wgpu::Buffer,
    m: wgpu::Buffer,
    out: wgpu::Buffer,
    dn1: wgpu::Buffer,
    dqkv: wgpu::Buffer,
    datt: wgpu::Buffer,
    dr: wgpu::Buffer,
    dr_ln: wgpu::Buffer,
    dn2: wgpu::Buffer,
    dh: wgpu::Buffer,
    dg: wgpu::Buffer,
    dx_ln: wgpu::Buffer,
    dx: wgpu::Buffer,
}

/// One block's layers, in forward order.
struct Block {
    ln1: Norm,
    qkv: Linear,
    attn: Attention,
    proj: Linear,
    add1: Add,
    ln2: Norm,
    fc: Linear,
    gelu: Activation,
    fc_proj: Linear,
    add2: Add,
    /// Backward: dr = dout + d(LN2 input); dx = dr + d(LN1 input).
    grad_r: Add,
    grad_x: Add,
}

/// A GPT for batches of `batch` sequences of `context` tokens.
pub struct GptGraph {
    batch: usize,
    context: usize,
    ids: wgpu::Buffer,
    targets: wgpu::Buffer,
    logits: wgpu::Buffer,
    _buffers: Vec<wgpu::Buffer>,
    _blocks: Vec<BlockBuffers>,
    tok: Embedding,
    pos: Embedding,
    add_emb: Add,
    blocks: Vec<Block>,
    lnf: Norm,
    head: Linear,
    loss: CrossEntropy,
}

fn norm<'a>(
    gpu: &Gpu,
    rows: usize,
    c: usize,
    io: [&'a wgpu::Buffer; 4],
    gain: Param<'a>,
    offset: Param<'a>,
) -> Result<Norm> {
    let v = |b| View::new(b, rows * c);
    Norm::new(
        gpu,
        &NormDesc {
            kind: NormKind::Layer,
            rows,
            dim: c,
            eps: 1e-5,
            x: v(io[0]),
            y: v(io[1]),
            dy: v(io[2]),
            dx: Some(v(io[3])),
            gain: Some(gain),
            offset: Some(offset),
        },
    )
}

#[allow(clippy::too_many_arguments)]
fn linear<'a>(
    gpu: &Gpu,
    rows: usize,
    (inputs, outputs): (usize, usize),
    [x, y, dy, dx]: [&'a wgpu::Buffer; 4],
    weight: Param<'a>,
    bias: Option<Param<'a>>,
) -> Result<Linear> {
    Linear::new(
        gpu,
        &LinearDesc {
            rows,
            inputs,
            outputs,
            x: View::new(x, rows * inputs),
            y: View::new(y, rows * outputs),
            dy: View::new(dy, rows * outputs),
            dx: Some(View::new(dx, rows * inputs)),
            weight,
            bias,
        },
    )
}

impl GptGraph {
    /// Builds the graph for `batch` sequences, parameters read from `weights`.
    pub fn new(gpu: &Gpu, cfg: &GptConfig, weights: Weights<'_>, batch: usize) -> Result<Self> {
        if cfg.heads == 0
            || !cfg.width.is_multiple_of(cfg.heads)
            || cfg.layers == 0
            || cfg.vocab < 2
            || cfg.context == 0
        {
            return Err(Error::invalid(
                "gpt",
                "needs heads dividing width, at least one layer, a vocabulary and a context",
            ));
        }
        check_rows(gpu, cfg, batch, "batch")?;
        let (t, c, v) = (cfg.context, cfg.width, cfg.vocab);
        let rows = batch * t;
        let buf = |label: &str, width: usize| activation(gpu, label, rows * width);
        let ids = activation(gpu, "gpt ids", rows);
        let targets = activation(gpu, "gpt targets", rows);
        let positions: Vec<u32> = (0..rows).map(|i| (i % t) as u32).collect();
        let pos_ids = gpu.storage_init("gpt positions", &positions);
        let (e, p, x0, dx0) = (
            buf("gpt tok", c),
            buf("gpt pos", c),
            buf("gpt x0", c),
            buf("gpt dx0", c),
        );
        let (nf, dnf, dxl) = (buf("gpt lnf", c), buf("gpt dlnf", c), buf("gpt dxL", c));
        let (logits, dlogits) = (buf("gpt logits", v), buf("gpt dlogits", v));
        let bb: Vec<BlockBuffers> = (0..cfg.layers)
            .map(|_| BlockBuffers {
                n1: buf("n1", c),
                qkv: buf("qkv", 3 * c),
                att: buf("att", c),
                o: buf("o", c),
                r: buf("r", c),
                n2: buf("n2", c),
                h: buf("h", 4 * c),
                g: buf("g", 4 * c),
                m: buf("m", c),
                out: buf("out", c),
                dn1: buf("dn1", c),
                dqkv: buf("dqkv", 3 * c),
                datt: buf("datt", c),
                dr: buf("dr", c),
                dr_ln: buf("dr_ln", c),
                dn2: buf("dn2", c),
                dh: buf("dh", 4 * c),
                dg: buf("dg", 4 * c),
                dx_ln: buf("dx_ln", c),
                dx: buf("dx", c),
            })
            .collect();
        let embed = |ids: &wgpu::Buffer, table: &str, vocab: usize, out: &wgpu::Buffer| {
            Embedding::new(
                gpu,
                &EmbeddingDesc {
                    tokens: rows,
                    vocab,
                    dim: c,
                    ids: View::new(ids, rows),
                    table: weights.param(table)?,
                    out: View::new(out, rows * c),
                    dout: View::new(&dx0, rows * c),
                },
            )
        };
        let tok = embed(&ids, "tok_emb", v, &e)?;
        let pos = embed(&pos_ids, "pos_emb", t, &p)?;
        let add_emb = Add::new(
            gpu,
            rows * c,
            View::new(&e, rows * c),
            View::new(&p, rows * c),
            View::new(&x0, rows * c),
        )?;
        let mut blocks = Vec::new();
        for (l, b) in bb.iter().enumerate() {
            let w = |n: &str| weights.param(&format!("h{l}.{n}"));
            // The block's input and the gradient flowing into its output.
            let (x, dout) = (
                if l == 0 { &x0 } else { &bb[l - 1].out },
                if l + 1 == bb.len() { &dxl } else { &bb[l + 1].dx },
            );
            blocks.push(Block {
                ln1: norm(
                    gpu,
                    rows,
                    c,
                    [x, &b.n1, &b.dn1, &b.dx_ln],
                    w("ln1.gain")?,
                    w("ln1.offset")?,
                )?,
                qkv: linear(
                    gpu,
                    rows,
                    (c, 3 * c),
                    [&b.n1, &b.qkv, &b.dqkv, &b.dn1],
                    w("attn.qkv.weight")?,
                    Some(w("attn.qkv.bias")?),
                )?,
                attn: Attention::new(
                    gpu,
                    &AttentionDesc {
                        batch,
                        seq: t,
                        heads: cfg.heads,
                        channels: c,
                        qkv: View::new(&b.qkv, rows * 3 * c),
                        out: View::new(&b.att, rows * c),
                        dout: View::new(&b.datt, rows * c),
                        dqkv: View::new(&b.dqkv, rows * 3 * c),
                    },
                )?,
                proj: linear(
                    gpu,
                    rows,
                    (c, c),
                    [&b.att, &b.o, &b.dr, &b.datt],
                    w("attn.proj.weight")?,
                    Some(w("attn.proj.bias")?),
                )?,
                add1: Add::new(
                    gpu,
                    rows * c,
                    View::new(x, rows * c),
                    View::new(&b.o, rows * c),
                    View::new(&b.r, rows * c),
                )?,
                ln2: norm(
                    gpu,
                    rows,
                    c,
                    [&b.r, &b.n2, &b.dn2, &b.dr_ln],
                    w("ln2.gain")?,
                    w("ln2.offset")?,
                )?,
                fc: linear(
                    gpu,
                    rows,
                    (c, 4 * c),
                    [&b.n2, &b.h, &b.dh, &b.dn2],
                    w("mlp.fc.weight")?,
                    Some(w("mlp.fc.bias")?),
                )?,
                gelu: Activation::new(
                    gpu,
                    &ActivationDesc {
                        kind: ActivationKind::Gelu,
                        len: rows * 4 * c,
                        x: View::new(&b.h, rows * 4 * c),
                        y: View::new(&b.g, rows * 4 * c),
                        dy: View::new(&b.dg, rows * 4 * c),
                        dx: View::new(&b.dh, rows * 4 * c),
                    },
                )?,
                fc_proj: linear(
                    gpu,
                    rows,
                    (4 * c, c),
                    [&b.g, &b.m, dout, &b.dg],
                    w("mlp.proj.weight")?,
                    Some(w("mlp.proj.bias")?),
                )?,
                add2: Add::new(
                    gpu,
                    rows * c,
                    View::new(&b.r, rows * c),
                    View::new(&b.m, rows * c),
                    View::new(&b.out, rows * c),
                )?,
                grad_r: Add::new(
                    gpu,
                    rows * c,
                    View::new(dout, rows * c),
                    View::new(&b.dr_ln, rows * c),
                    View::new(&b.dr, rows * c),
                )?,
                grad_x: Add::new(
                    gpu,
                    rows * c,
                    View::new(&b.dr, rows * c),
                    View::new(&b.dx_ln, rows * c),
                    View::new(if l == 0 { &dx0 } else { &b.dx }, rows * c),
                )?,
            });
        }
        let last = &bb.last().expect("at least one layer").out;
        let lnf = norm(
            gpu,
            rows,
            c,
            [last, &nf, &dnf, &dxl],
            weights.param("lnf.gain")?,
            weights.param("lnf.offset")?,
        )?;
        let head = Linear::new(
            gpu,
            &LinearDesc {
                rows,
                inputs: c,
                outputs: v,
                x: View::new(&nf, rows * c),
                y: View::new(&logits, rows * v),
                dy: View::new(&dlogits, rows * v),
                dx: Some(View::new(&dnf, rows * c)),
                weight: weights.param("head.weight")?,
                bias: None,
            },
        )?;
        let loss = CrossEntropy::new(
            gpu,
            &CrossEntropyDesc {
                rows,
                classes: v,
                logits: View::new(&logits, rows * v),
                targets: View::new(&targets, rows),
                dlogits: View::new(&dlogits, rows * v),
            },
        )?;
        Ok(GptGraph {
            batch,
            context: t,
            ids,
            targets,
            logits,
            _buffers: vec![pos_ids, e, p, x0, dx0, nf, dnf, dxl, dlogits],
            _blocks: bb,
            tok,
            pos,
            add_emb,
            blocks,
            lnf,
            head,
            loss,
        })
    }
}

impl GptGraph {
    /// The logits after a forward pass: `[batch, context, vocab]` f32, the
    /// scores of the character following each position.
    pub fn logits(&self) -> &wgpu::Buffer {
        &self.logits
    }
}

impl Graph for GptGraph {
    fn record_forward(&self, rec: &mut dyn Recorder) {
        self.tok.record_forward(rec);
        self.pos.record_forward(rec);
        self.add_emb.record(rec);
        for b in &self.blocks {
            b.ln1.record_forward(rec);
            b.qkv.record_forward(rec);
            b.attn.record_forward(rec);
            b.proj.record_forward(rec);
            b.add1.record(rec);
            b.ln2.record_forward(rec);
            b.fc.record_forward(rec);
            b.gelu.record_forward(rec);
            b.fc_proj.record_forward(rec);
            b.add2.record(rec);
        }
        self.lnf.record_forward(rec);
        self.head.record_forward(rec);
        self.loss.record_forward(rec);
    }

    fn record_backward(&self, rec: &mut dyn Recorder) {
        self.loss.record_backward(rec);
        self.head.record_backward(rec);
        self.lnf.record_backward(rec);
        for b in self.blocks.iter().rev() {
            b.fc_proj.record_backward(rec);
            b.gelu.record_backward(rec);
            b.fc.record_backward(rec);
            b.ln2.record_backward(rec);
            b.grad_r.record(rec);
            b.proj.record_backward(rec);
            b.attn.record_backward(rec);
            b.qkv.record_backward(rec);
            b.ln1.record_backward(rec);
            b.grad_x.record(rec);
        }
        self.tok.record_backward(rec);
        self.pos.record_backward(rec);
    }

    fn loss(&self) -> &CrossEntropy {
        &self.loss
    }

    fn write_batch(&self, gpu: &Gpu, inputs: &Inputs, targets: &[u32]) -> Result<()> {
        let Inputs::Tokens(ids) = inputs else {
            return Err(Error::invalid("batch", "the gpt takes tokens, not features"));
        };
        let rows = self.batch * self.context;
        if ids.len() != rows || targets.len() != rows {
            return Err(Error::invalid(
                "batch",
                format!(
                    "{} ids and {} targets, but the graph takes {} sequences of {}",
                    ids.len(),
                    targets.len(),
                    self.batch,
                    self.context
                ),
            ));
        }
        gpu.queue.write_buffer(&self.ids, 0, bytemuck::cast_slice(ids));
        gpu.queue.write_buffer(&self.targets, 0, bytemuck::cast_slice(targets));
        Ok(())
    }

    fn rows(&self) -> usize {
        self.batch
    }
}
