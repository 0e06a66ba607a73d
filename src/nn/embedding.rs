//! Token embedding: a gather forward and a deterministic backward without float
//! atomics (`shaders/embedding.wgsl`).

use super::{check_param, check_view, dim, groups_for, layer_dispatch, read, record_all, write, Dispatch, Param, View};
use crate::error::Result;
use crate::gpu::{Gpu, Recorder};

/// Shapes and buffers of an [`Embedding`].
pub struct EmbeddingDesc<'a> {
    /// Tokens N looked up per step (e.g. batch × sequence).
    pub tokens: usize,
    /// Vocabulary size V (rows of the table).
    pub vocab: usize,
    /// Embedding width C.
    pub dim: usize,
    /// Token ids `[tokens]`, u32 in `0..vocab` (an id out of range gives a row of NaNs and no gradient).
    pub ids: View<'a>,
    /// The table `[vocab, dim]` and its gradient.
    pub table: Param<'a>,
    /// Output `[tokens, dim]`.
    pub out: View<'a>,
    /// Gradient with respect to the output `[tokens, dim]`, read by the backward pass.
    pub dout: View<'a>,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct EmbedDims {
    tokens: u32,
    vocab: u32,
    dim: u32,
    nan_bits: u32,
}

/// out `[N, C]` = table`[ids[n], :]`.
///
/// Backward overwrites the whole table gradient `[V, C]`, deterministically and
/// without float atomics: the tokens sharing an id are chained in increasing
/// order (head of each id by integer `atomicMin`, successor of each token by a
/// forward scan, O(N²) comparisons at worst), then one invocation per table
/// element sums its chain in that order (rows of unused ids get 0).
pub struct Embedding {
    forward: Vec<Dispatch>,
    backward: Vec<Dispatch>,
    _scratch: [wgpu::Buffer; 2],
}

impl Embedding {
    /// Builds the pipelines and bind groups; checks every view against the shapes.
    pub fn new(gpu: &Gpu, desc: &EmbeddingDesc<'_>) -> Result<Embedding> {
        const L: &str = "embedding";
        let tokens = dim(L, "tokens", desc.tokens)?;
        let vocab = dim(L, "vocab", desc.vocab)?;
        let width = dim(L, "dim", desc.dim)?;
        check_view(gpu, L, "ids", &desc.ids, &[desc.tokens])?;
        check_param(gpu, L, "table", &desc.table, &[desc.vocab, desc.dim])?;
        check_view(gpu, L, "out", &desc.out, &[desc.tokens, desc.dim])?;
        check_view(gpu, L, "dout", &desc.dout, &[desc.tokens, desc.dim])?;
        let uniform = gpu.uniform(
            L,
            &EmbedDims {
                tokens,
                vocab,
                dim: width,
                nan_bits: f32::NAN.to_bits(),
            },
        );
        let heads = gpu.storage("embedding heads", desc.vocab as u64 * 4);
        let next = gpu.storage("embedding next", desc.tokens as u64 * 4);
        let views = [
            read(1, "ids", desc.ids),
            read(2, "table", desc.table.value),
            write(3, "out", desc.out),
            read(4, "dout", desc.dout),
            write(5, "heads", View::new(&heads, desc.vocab)),
            write(6, "next", View::new(&next, desc.tokens)),
            write(7, "table.grad", desc.table.grad),
        ];
        let by_out = (groups_for(desc.tokens * desc.dim), 1);
        let forward = vec![layer_dispatch(
            gpu,
            L,
            "embedding",
            "embedding_forward",
            &uniform,
            &views,
            by_out,
        )?];
        let by_vocab = (groups_for(desc.vocab), 1);
        let by_token = (groups_for(desc.tokens), 1);
        let by_table = (groups_for(desc.vocab * desc.dim), 1);
        let backward = vec![
            layer_dispatch(gpu, L, "embedding", "embedding_clear", &uniform, &views, by_vocab)?,
            layer_dispatch(gpu, L, "embedding", "embedding_link", &uniform, &views, by_token)?,
            layer_dispatch(gpu, L, "embedding", "embedding_backward", &uniform, &views, by_table)?,
        ];
        Ok(Embedding {
            forward,
            backward,
            _scratch: [heads, next],
        })
    }

    /// Records `out = table[ids]`.
    pub fn record_forward(&self, rec: &mut dyn Recorder) {
        record_all(&self.forward, rec);
    }

    /// Records the table gradient (every row overwritten).
    pub fn record_backward(&self, rec: &mut dyn Recorder) {
        record_all(&self.backward, rec);
    }
}
