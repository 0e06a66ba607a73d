//! Causal multi-head self-attention on projected q, k, v (`shaders/attention.wgsl`).

use super::{
    check_view, dim, groups_for, groups_for_64, groups_for_rows, layer_dispatch, read, record_all, write, Dispatch,
    View,
};
use crate::error::{Error, Result};
use crate::gpu::{Gpu, Recorder};

/// Shapes and buffers of an [`Attention`] layer.
pub struct AttentionDesc<'a> {
    /// Sequences B.
    pub batch: usize,
    /// Sequence length T.
    pub seq: usize,
    /// Heads H; must divide `channels`.
    pub heads: usize,
    /// Model width C (head width D = C / H).
    pub channels: usize,
    /// Projected inputs `[B, T, 3C]`: q in channels `0..C`, k in `C..2C`, v in
    /// `2C..3C`; head h uses channels `h*D..(h+1)*D` of each (llm.c's layout).
    pub qkv: View<'a>,
    /// Output `[B, T, C]`, heads side by side (head h in channels `h*D..(h+1)*D`).
    pub out: View<'a>,
    /// Gradient with respect to the output `[B, T, C]`, read by the backward pass.
    pub dout: View<'a>,
    /// Gradient with respect to qkv `[B, T, 3C]`, written by the backward pass.
    pub dqkv: View<'a>,
}

/// Longest sequence that takes the kernels without barriers (register-blocked
/// products, one softmax row per invocation): cheap on CPU drivers, where every
/// barrier switches between the invocations of a workgroup. Longer sequences
/// take one workgroup per row of probabilities.
pub const SHORT_ROWS: usize = 128;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct AttnDims {
    batch: u32,
    seq: u32,
    heads: u32,
    head_dim: u32,
    channels: u32,
    scale: f32,
    pad: [u32; 2],
}

/// Causal self-attention: for each sequence b, head h and position t,
/// `out[b, t, h] = Σ_{j ≤ t} softmax_j(q_t · k_j / sqrt(D)) v_j`.
///
/// The forward pass keeps the attention probabilities `[B, H, T, T]`; the
/// backward pass writes the score gradients `[B, H, T, T]`, then dqkv
/// (overwritten; every sum in a fixed order, deterministic). Two variants, by
/// sequence length: up to [`SHORT_ROWS`] positions, the products are computed
/// in 4 × 4 register blocks and the softmax one row per invocation, with no
/// barriers (fast on CPU drivers too); longer sequences take one workgroup per
/// row of probabilities and one invocation per output element. Memory: two
/// `[B, H, T, T]` f32 buffers owned by the layer, each within the device's
/// storage binding limit.
pub struct Attention {
    forward: Vec<Dispatch>,
    backward: Vec<Dispatch>,
    _scratch: [wgpu::Buffer; 2],
}

impl Attention {
    /// Builds the pipelines and bind groups; checks every view against the shapes.
    pub fn new(gpu: &Gpu, desc: &AttentionDesc<'_>) -> Result<Attention> {
        const L: &str = "attention";
        let batch = dim(L, "batch", desc.batch)?;
        let seq = dim(L, "seq", desc.seq)?;
        let heads = dim(L, "heads", desc.heads)?;
        let channels = dim(L, "channels", desc.channels)?;
        if !desc.channels.is_multiple_of(desc.heads) {
            return Err(Error::invalid(
                format!("{L}.heads"),
                format!("{} heads do not divide {} channels", desc.heads, desc.channels),
            ));
        }
        let head_dim = channels / heads;
        let (b, t, c) = (desc.batch, desc.seq, desc.channels);
        check_view(gpu, L, "qkv", &desc.qkv, &[b, t, 3 * c])?;
        check_view(gpu, L, "out", &desc.out, &[b, t, c])?;
        check_view(gpu, L, "dout", &desc.dout, &[b, t, c])?;
        check_view(gpu, L, "dqkv", &desc.dqkv, &[b, t, 3 * c])?;
        let probs_len = [b, desc.heads, t, t]
            .iter()
            .try_fold(1usize, |a, &x| a.checked_mul(x))
            .filter(|&n| (n as u64) * 4 <= gpu.limits.max_storage_buffer_binding_size)
            .ok_or_else(|| {
                Error::invalid(
                    L,
                    format!(
                        "the attention probabilities [{b}, {}, {t}, {t}] exceed the device's storage binding limit",
                        desc.heads
                    ),
                )
            })?;
        let uniform = gpu.uniform(
            L,
            &AttnDims {
                batch,
                seq,
                heads,
                head_dim,
                channels,
                scale: (1.0 / (head_dim as f64).sqrt()) as f32,
                pad: [0; 2],
            },
        );
        let probs = gpu.storage("attention probs", probs_len as u64 * 4);
        let dscores = gpu.storage("attention dscores", probs_len as u64 * 4);
        let views = [
            read(1, "qkv", desc.qkv),
            write(2, "probs", View::new(&probs, probs_len)),
            write(3, "out", desc.out),
            read(4, "dout", desc.dout),
            write(5, "dscores", View::new(&dscores, probs_len)),
            write(6, "dqkv", desc.dqkv),
        ];
        let rows = b * desc.heads * t;
        let (forward, backward) = if t <= SHORT_ROWS {
            // 4 x 4 blocks of positions (and of head components) per invocation, one row per invocation.
            let (nb, nd) = (t.div_ceil(4), (c / desc.heads).div_ceil(4));
            let by_score_block = (groups_for_64(b * desc.heads * nb * nb), 1);
            let by_out_block = (groups_for_64(b * desc.heads * nb * nd), 1);
            let by_dqkv_block = (groups_for_64(3 * b * desc.heads * nb * nd), 1);
            let by_row = (groups_for_64(rows), 1);
            let d = |entry, groups| layer_dispatch(gpu, L, "attention", entry, &uniform, &views, groups);
            (
                vec![
                    d("attention_scores_block", by_score_block)?,
                    d("attention_softmax_rows", by_row)?,
                    d("attention_values_block", by_out_block)?,
                ],
                vec![
                    d("attention_dp_block", by_score_block)?,
                    d("attention_dsoftmax_rows", by_row)?,
                    d("attention_dqkv_block", by_dqkv_block)?,
                ],
            )
        } else {
            // One workgroup per row, one invocation per output element.
            let by_row = (groups_for_rows(rows), 1);
            let by_out = (groups_for(b * t * c), 1);
            let by_dqkv = (groups_for(b * t * 3 * c), 1);
            let d = |entry, groups| layer_dispatch(gpu, L, "attention", entry, &uniform, &views, groups);
            (
                vec![d("attention_probs", by_row)?, d("attention_values", by_out)?],
                vec![d("attention_dscores", by_row)?, d("attention_dqkv", by_dqkv)?],
            )
        };
        Ok(Attention {
            forward,
            backward,
            _scratch: [probs, dscores],
        })
    }

    /// Records the attention probabilities and out.
    pub fn record_forward(&self, rec: &mut dyn Recorder) {
        record_all(&self.forward, rec);
    }

    /// Records dqkv, overwritten. Needs this step's forward pass recorded before
    /// it (it reads the probabilities).
    pub fn record_backward(&self, rec: &mut dyn Recorder) {
        record_all(&self.backward, rec);
    }
}
