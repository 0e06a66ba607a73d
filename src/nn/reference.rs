//! f64 CPU twins of every layer: the oracle the GPU kernels are checked against.
//! Written for reading, not speed; shapes as in the layers' descriptors, all
//! tensors row-major. Each backward function takes the forward's inputs and the
//! gradient of the loss with respect to the forward's output.

use super::{ActivationKind, NormKind};

/// Linear forward: y `[rows, outputs]` = x `[rows, inputs]` w `[inputs, outputs]` (+ b `[outputs]`).
pub fn linear_forward(x: &[f64], w: &[f64], b: Option<&[f64]>, rows: usize, inputs: usize, outputs: usize) -> Vec<f64> {
    let mut y = vec![0.0; rows * outputs];
    for r in 0..rows {
        for j in 0..outputs {
            let mut acc = b.map_or(0.0, |b| b[j]);
            for i in 0..inputs {
                acc += x[r * inputs + i] * w[i * outputs + j];
            }
            y[r * outputs + j] = acc;
        }
    }
    y
}

/// Gradients of a linear layer.
#[derive(Debug, Clone)]
pub struct LinearGrads {
    /// dy wᵀ `[rows, inputs]`.
    pub dx: Vec<f64>,
    /// xᵀ dy `[inputs, outputs]`.
    pub dw: Vec<f64>,
    /// Column sums of dy `[outputs]`.
    pub db: Vec<f64>,
}

/// Linear backward (dy `[rows, outputs]`).
pub fn linear_backward(x: &[f64], w: &[f64], dy: &[f64], rows: usize, inputs: usize, outputs: usize) -> LinearGrads {
    let mut dx = vec![0.0; rows * inputs];
    let mut dw = vec![0.0; inputs * outputs];
    let mut db = vec![0.0; outputs];
    for r in 0..rows {
        for j in 0..outputs {
            let g = dy[r * outputs + j];
            db[j] += g;
            for i in 0..inputs {
                dx[r * inputs + i] += g * w[i * outputs + j];
                dw[i * outputs + j] += x[r * inputs + i] * g;
            }
        }
    }
    LinearGrads { dx, dw, db }
}

/// Per-row mean (0 for RMSNorm) and 1/std of a norm over rows of length `dim`.
pub fn norm_stats(kind: NormKind, x: &[f64], rows: usize, dim: usize, eps: f64) -> (Vec<f64>, Vec<f64>) {
    let mut means = vec![0.0; rows];
    let mut rstds = vec![0.0; rows];
    for r in 0..rows {
        let row = &x[r * dim..(r + 1) * dim];
        let mean = match kind {
            NormKind::Layer => row.iter().sum::<f64>() / dim as f64,
            NormKind::Rms => 0.0,
        };
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / dim as f64;
        means[r] = mean;
        rstds[r] = 1.0 / (var + eps).sqrt();
    }
    (means, rstds)
}

/// Norm forward: y = (x - mean) rstd g + o over rows of x `[rows, dim]`.
pub fn norm_forward(
    kind: NormKind,
    x: &[f64],
    gain: Option<&[f64]>,
    offset: Option<&[f64]>,
    rows: usize,
    dim: usize,
    eps: f64,
) -> Vec<f64> {
    let (means, rstds) = norm_stats(kind, x, rows, dim, eps);
    let mut y = vec![0.0; rows * dim];
    for r in 0..rows {
        for i in 0..dim {
            let xhat = (x[r * dim + i] - means[r]) * rstds[r];
            y[r * dim + i] = xhat * gain.map_or(1.0, |g| g[i]) + offset.map_or(0.0, |o| o[i]);
        }
    }
    y
}

/// Gradients of a norm.
#[derive(Debug, Clone)]
pub struct NormGrads {
    /// `[rows, dim]`.
    pub dx: Vec<f64>,
    /// Σ_rows dy x̂ `[dim]`.
    pub dgain: Vec<f64>,
    /// Σ_rows dy `[dim]`.
    pub doffset: Vec<f64>,
}

/// Norm backward: with dn = dy g,
/// dx = rstd (dn - mean(dn) - x̂ mean(dn x̂)) for LayerNorm, without the mean(dn) term for RMSNorm.
pub fn norm_backward(
    kind: NormKind,
    x: &[f64],
    gain: Option<&[f64]>,
    dy: &[f64],
    rows: usize,
    dim: usize,
    eps: f64,
) -> NormGrads {
    let (means, rstds) = norm_stats(kind, x, rows, dim, eps);
    let mut dx = vec![0.0; rows * dim];
    let mut dgain = vec![0.0; dim];
    let mut doffset = vec![0.0; dim];
    for r in 0..rows {
        let xhat: Vec<f64> = (0..dim).map(|i| (x[r * dim + i] - means[r]) * rstds[r]).collect();
        let dn: Vec<f64> = (0..dim).map(|i| dy[r * dim + i] * gain.map_or(1.0, |g| g[i])).collect();
        let mean_dn = match kind {
            NormKind::Layer => dn.iter().sum::<f64>() / dim as f64,
            NormKind::Rms => 0.0,
        };
        let mean_dn_xhat = dn.iter().zip(&xhat).map(|(a, b)| a * b).sum::<f64>() / dim as f64;
        for i in 0..dim {
            dx[r * dim + i] = rstds[r] * (dn[i] - mean_dn - xhat[i] * mean_dn_xhat);
            dgain[i] += dy[r * dim + i] * xhat[i];
            doffset[i] += dy[r * dim + i];
        }
    }
    NormGrads { dx, dgain, doffset }
}

const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
const GELU_C: f64 = 0.044715;

/// The activation `kind` of x.
pub fn activation_forward(kind: ActivationKind, x: &[f64]) -> Vec<f64> {
    x.iter()
        .map(|&v| match kind {
            ActivationKind::Relu => v.max(0.0),
            ActivationKind::Gelu => 0.5 * v * (1.0 + (SQRT_2_OVER_PI * (v + GELU_C * v * v * v)).tanh()),
        })
        .collect()
}

/// dx = dy f'(x) (ReLU: f'(0) = 0).
pub fn activation_backward(kind: ActivationKind, x: &[f64], dy: &[f64]) -> Vec<f64> {
    x.iter()
        .zip(dy)
        .map(|(&v, &g)| match kind {
            ActivationKind::Relu => {
                if v > 0.0 {
                    g
                } else {
                    0.0
                }
            }
            ActivationKind::Gelu => {
                let th = (SQRT_2_OVER_PI * (v + GELU_C * v * v * v)).tanh();
                let du = SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_C * v * v);
                g * (0.5 * (1.0 + th) + 0.5 * v * (1.0 - th * th) * du)
            }
        })
        .collect()
}

/// Cross-entropy forward.
#[derive(Debug, Clone)]
pub struct CrossEntropyOut {
    /// Per-row losses `[rows]`.
    pub losses: Vec<f64>,
    /// Their mean.
    pub mean: f64,
    /// Rows whose argmax (lowest index among ties) is the target.
    pub correct: u32,
}

/// Softmax cross-entropy of logits `[rows, classes]` against targets `[rows]` (all in range).
pub fn cross_entropy(logits: &[f64], targets: &[u32], rows: usize, classes: usize) -> CrossEntropyOut {
    let mut losses = vec![0.0; rows];
    let mut correct = 0;
    for r in 0..rows {
        let row = &logits[r * classes..(r + 1) * classes];
        let mut arg = 0;
        for (j, &v) in row.iter().enumerate() {
            if v > row[arg] {
                arg = j;
            }
        }
        let max = row[arg];
        let lse = max + row.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
        let t = targets[r] as usize;
        losses[r] = lse - row[t];
        correct += (arg == t) as u32;
    }
    let mean = losses.iter().sum::<f64>() / rows as f64;
    CrossEntropyOut { losses, mean, correct }
}

/// Gradient of the mean loss: dlogits = (softmax - onehot) / rows.
pub fn cross_entropy_backward(logits: &[f64], targets: &[u32], rows: usize, classes: usize) -> Vec<f64> {
    let mut d = vec![0.0; rows * classes];
    for r in 0..rows {
        let row = &logits[r * classes..(r + 1) * classes];
        let max = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = row.iter().map(|v| (v - max).exp()).sum();
        for j in 0..classes {
            let p = (row[j] - max).exp() / sum;
            let onehot = if j == targets[r] as usize { 1.0 } else { 0.0 };
            d[r * classes + j] = (p - onehot) / rows as f64;
        }
    }
    d
}

/// Embedding forward: out `[ids.len(), dim]` = table`[ids[n], :]`.
pub fn embedding_forward(ids: &[u32], table: &[f64], dim: usize) -> Vec<f64> {
    ids.iter()
        .flat_map(|&id| table[id as usize * dim..(id as usize + 1) * dim].iter().copied())
        .collect()
}

/// Embedding backward: dtable `[vocab, dim]`, row v = `Σ_{n: ids[n] = v} dout[n]`.
pub fn embedding_backward(ids: &[u32], dout: &[f64], vocab: usize, dim: usize) -> Vec<f64> {
    let mut d = vec![0.0; vocab * dim];
    for (n, &id) in ids.iter().enumerate() {
        for c in 0..dim {
            d[id as usize * dim + c] += dout[n * dim + c];
        }
    }
    d
}

/// Shapes of causal self-attention: qkv `[batch, seq, 3 channels]`, `heads` dividing `channels`.
#[derive(Debug, Clone, Copy)]
pub struct AttentionShape {
    /// B.
    pub batch: usize,
    /// T.
    pub seq: usize,
    /// H.
    pub heads: usize,
    /// C.
    pub channels: usize,
}

impl AttentionShape {
    fn head_dim(&self) -> usize {
        self.channels / self.heads
    }

    /// Index in qkv of `part` (0 q, 1 k, 2 v) of (b, t), head h, component d.
    fn qkv(&self, b: usize, t: usize, part: usize, h: usize, d: usize) -> usize {
        (b * self.seq + t) * 3 * self.channels + part * self.channels + h * self.head_dim() + d
    }

    /// Index in out of (b, t), head h, component d.
    fn out(&self, b: usize, t: usize, h: usize, d: usize) -> usize {
        (b * self.seq + t) * self.channels + h * self.head_dim() + d
    }
}

/// Causal attention probabilities `[B, H, T, T]` (0 above the diagonal).
pub fn attention_probs(qkv: &[f64], s: AttentionShape) -> Vec<f64> {
    let (t_len, dh) = (s.seq, s.head_dim());
    let scale = 1.0 / (dh as f64).sqrt();
    let mut p = vec![0.0; s.batch * s.heads * t_len * t_len];
    for b in 0..s.batch {
        for h in 0..s.heads {
            for t in 0..t_len {
                let row = ((b * s.heads + h) * t_len + t) * t_len;
                let scores: Vec<f64> = (0..=t)
                    .map(|j| {
                        (0..dh)
                            .map(|d| qkv[s.qkv(b, t, 0, h, d)] * qkv[s.qkv(b, j, 1, h, d)])
                            .sum::<f64>()
                            * scale
                    })
                    .collect();
                let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let sum: f64 = scores.iter().map(|v| (v - max).exp()).sum();
                for (j, v) in scores.iter().enumerate() {
                    p[row + j] = (v - max).exp() / sum;
                }
            }
        }
    }
    p
}

/// Causal attention forward: out `[B, T, C]`.
pub fn attention_forward(qkv: &[f64], s: AttentionShape) -> Vec<f64> {
    let p = attention_probs(qkv, s);
    let (t_len, dh) = (s.seq, s.head_dim());
    let mut out = vec![0.0; s.batch * t_len * s.channels];
    for b in 0..s.batch {
        for h in 0..s.heads {
            for t in 0..t_len {
                let row = ((b * s.heads + h) * t_len + t) * t_len;
                for d in 0..dh {
                    out[s.out(b, t, h, d)] = (0..=t).map(|j| p[row + j] * qkv[s.qkv(b, j, 2, h, d)]).sum();
                }
            }
        }
    }
    out
}

/// Causal attention backward: dqkv `[B, T, 3C]` from dout `[B, T, C]`.
pub fn attention_backward(qkv: &[f64], dout: &[f64], s: AttentionShape) -> Vec<f64> {
    let p = attention_probs(qkv, s);
    let (t_len, dh) = (s.seq, s.head_dim());
    let scale = 1.0 / (dh as f64).sqrt();
    let mut dqkv = vec![0.0; qkv.len()];
    for b in 0..s.batch {
        for h in 0..s.heads {
            for t in 0..t_len {
                let row = ((b * s.heads + h) * t_len + t) * t_len;
                // dp_j = dout_t . v_j; ds_j = p_j (dp_j - Σ p dp).
                let dp: Vec<f64> = (0..=t)
                    .map(|j| {
                        (0..dh)
                            .map(|d| dout[s.out(b, t, h, d)] * qkv[s.qkv(b, j, 2, h, d)])
                            .sum()
                    })
                    .collect();
                let weighted: f64 = (0..=t).map(|j| p[row + j] * dp[j]).sum();
                for j in 0..=t {
                    let ds = p[row + j] * (dp[j] - weighted);
                    for d in 0..dh {
                        dqkv[s.qkv(b, t, 0, h, d)] += scale * ds * qkv[s.qkv(b, j, 1, h, d)];
                        dqkv[s.qkv(b, j, 1, h, d)] += scale * ds * qkv[s.qkv(b, t, 0, h, d)];
                        dqkv[s.qkv(b, j, 2, h, d)] += p[row + j] * dout[s.out(b, t, h, d)];
                    }
                }
            }
        }
    }
    dqkv
}
