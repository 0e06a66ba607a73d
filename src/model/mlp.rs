//! `mlp`: input -> [Linear (no bias) -> LayerNorm -> ReLU] x L -> Linear head.
//!
//! Every hidden Linear is followed by a LayerNorm, so its weight is
//! scale-invariant and NaP may project it; each LayerNorm's (gain, offset) pair
//! is a group too. The head is never projected.
//!
//! With `norm: false` it is the plain network of the plasticity study:
//! input -> [Linear (with bias) -> ReLU] x L -> Linear head, with no NaP groups
//! (no weight of it is scale-invariant).

use super::{activation, check_rows, Graph, Inputs, Model, Weights};
use crate::arena::TensorSpec;
use crate::data::Rng;
use crate::error::{Error, Result};
use crate::gpu::{Gpu, Recorder};
use crate::nap::{NapConfig, NapGroup};
use crate::nn::{
    Activation, ActivationDesc, ActivationKind, CrossEntropy, CrossEntropyDesc, Linear, LinearDesc, Norm, NormDesc,
    NormKind, View,
};

/// Shape of an MLP.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MlpConfig {
    /// Input features.
    pub input: usize,
    /// Width of each hidden layer.
    pub hidden: Vec<usize>,
    /// Output classes.
    pub classes: usize,
    /// A LayerNorm before each ReLU (false: a plain MLP whose hidden Linears have biases).
    #[serde(default = "yes", skip_serializing_if = "is_yes")]
    pub norm: bool,
}

fn yes() -> bool {
    true
}

fn is_yes(v: &bool) -> bool {
    *v
}

impl MlpConfig {
    fn widths(&self) -> Vec<usize> {
        std::iter::once(self.input).chain(self.hidden.iter().copied()).collect()
    }
}

impl Model for MlpConfig {
    fn bytes_per_row(&self) -> u64 {
        4 * self.widths().into_iter().chain([self.classes]).max().unwrap_or(0) as u64
    }

    fn row_sizes(&self) -> &'static [&'static str] {
        &["hidden"]
    }

    /// Each layer's weight, its norm's gain and offset (or its bias without
    /// norms), and the head's weight and bias.
    fn parameters(&self) -> u128 {
        let w: Vec<u128> = self.widths().into_iter().map(|n| n as u128).collect();
        let classes = self.classes as u128;
        let per_width = if self.norm { 2 } else { 1 };
        let hidden: u128 = w.windows(2).map(|p| p[0] * p[1] + per_width * p[1]).sum();
        hidden + w[w.len() - 1] * classes + classes
    }

    /// Per row: the input, the targets, six buffers a hidden layer (two more
    /// values for its norm), the logits and their gradient, and the loss's three
    /// per-row values.
    fn graph_bytes(&self, rows: usize) -> u128 {
        let norm = if self.norm { 2 } else { 0 };
        let hidden: u128 = self.hidden.iter().map(|&w| 6 * w as u128 + norm).sum();
        4 * rows as u128 * (self.input as u128 + 1 + hidden + 2 * self.classes as u128 + 3)
    }

    fn tensors(&self) -> Vec<TensorSpec> {
        let w = self.widths();
        let mut t = Vec::new();
        for i in 0..self.hidden.len() {
            t.push(TensorSpec::new(format!("l{i}.weight"), &[w[i], w[i + 1]]));
            if self.norm {
                t.push(TensorSpec::new(format!("l{i}.ln.gain"), &[w[i + 1]]).no_decay());
                t.push(TensorSpec::new(format!("l{i}.ln.offset"), &[w[i + 1]]).no_decay());
            } else {
                t.push(TensorSpec::new(format!("l{i}.bias"), &[w[i + 1]]).no_decay());
            }
        }
        let last = *w.last().expect("widths start with the input");
        t.push(TensorSpec::new("head.weight", &[last, self.classes]));
        t.push(TensorSpec::new("head.bias", &[self.classes]).no_decay());
        t
    }

    fn nap_groups(&self) -> NapConfig {
        let mut groups = Vec::new();
        if !self.norm {
            return NapConfig { groups };
        }
        for i in 0..self.hidden.len() {
            groups.push(NapGroup {
                tensors: vec![format!("l{i}.weight")],
                rho: None,
            });
            groups.push(NapGroup {
                tensors: vec![format!("l{i}.ln.gain"), format!("l{i}.ln.offset")],
                rho: None,
            });
        }
        NapConfig { groups }
    }

    fn hidden_weights(&self) -> Vec<String> {
        (0..self.hidden.len()).map(|i| format!("l{i}.weight")).collect()
    }

    /// He-normal hidden weights, head weights N(0, 1/fan_in), gains 1, offsets and bias 0.
    fn init(&self, spec: &TensorSpec, rng: &mut Rng) -> Vec<f32> {
        let n: usize = spec.shape.iter().product();
        let fan_in = spec.shape[0] as f64;
        if spec.name.ends_with(".gain") {
            vec![1.0; n]
        } else if spec.name.ends_with(".offset") || spec.name.ends_with(".bias") {
            vec![0.0; n]
        } else {
            let std = if spec.name == "head.weight" {
                (1.0 / fan_in).sqrt()
            } else {
                (2.0 / fan_in).sqrt()
            };
            (0..n).map(|_| (rng.normal() * std) as f32).collect()
        }
    }
}

/// One hidden layer's buffers: h = x W, n = LN(h), a = ReLU(n), and their gradients.
struct Hidden {
    h: wgpu::Buffer,
    n: wgpu::Buffer,
    a: wgpu::Buffer,
    dh: wgpu::Buffer,
    dn: wgpu::Buffer,
    da: wgpu::Buffer,
}

/// The MLP without a loss, for `rows` rows of an input buffer it is given: its
/// hidden layers (Linear, LayerNorm unless `cfg.norm` is off, ReLU) and its head,
/// which writes [`MlpBody::out`] `[rows, cfg.classes]`. The backward pass starts
/// from [`MlpBody::dout`] and writes every weight's gradient. [`MlpGraph`] puts a
/// cross-entropy loss on it; the reinforcement-learning agent's Q-network reads
/// its outputs as Q-values.
pub struct MlpBody {
    _hidden: Vec<Hidden>,
    out: wgpu::Buffer,
    dout: wgpu::Buffer,
    layers: Vec<(Linear, Option<Norm>, Activation)>,
    head: Linear,
}

impl MlpBody {
    /// The body of `cfg` over `rows` rows of `input` (`rows * cfg.input` f32),
    /// parameters read from `weights`; its buffers are labelled `LABEL h`, ...
    pub fn new(
        gpu: &Gpu,
        cfg: &MlpConfig,
        weights: &Weights<'_>,
        input: &wgpu::Buffer,
        rows: usize,
        label: &str,
    ) -> Result<Self> {
        if cfg.hidden.is_empty() || cfg.input == 0 || cfg.classes < 2 {
            return Err(Error::invalid(
                label,
                "needs an input, at least one hidden layer and at least two outputs",
            ));
        }
        let w = cfg.widths();
        let hidden: Vec<Hidden> = cfg
            .hidden
            .iter()
            .map(|&width| {
                let b = |l: &str| activation(gpu, &format!("{label} {l}"), rows * width);
                Hidden {
                    h: b("h"),
                    n: b("n"),
                    a: b("a"),
                    dh: b("dh"),
                    dn: b("dn"),
                    da: b("da"),
                }
            })
            .collect();
        let mut layers = Vec::new();
        for (i, hid) in hidden.iter().enumerate() {
            let (fan_in, width) = (w[i], w[i + 1]);
            let v = |b| View::new(b, rows * width);
            let (x, dx) = if i == 0 {
                (View::new(input, rows * fan_in), None)
            } else {
                let prev = &hidden[i - 1];
                (
                    View::new(&prev.a, rows * fan_in),
                    Some(View::new(&prev.da, rows * fan_in)),
                )
            };
            let linear = Linear::new(
                gpu,
                &LinearDesc {
                    rows,
                    inputs: fan_in,
                    outputs: width,
                    x,
                    y: v(&hid.h),
                    dy: v(&hid.dh),
                    dx,
                    weight: weights.param(&format!("l{i}.weight"))?,
                    bias: if cfg.norm {
                        None
                    } else {
                        Some(weights.param(&format!("l{i}.bias"))?)
                    },
                },
            )?;
            let norm = if cfg.norm {
                Some(Norm::new(
                    gpu,
                    &NormDesc {
                        kind: NormKind::Layer,
                        rows,
                        dim: width,
                        eps: 1e-5,
                        x: v(&hid.h),
                        y: v(&hid.n),
                        dy: v(&hid.dn),
                        dx: Some(v(&hid.dh)),
                        gain: Some(weights.param(&format!("l{i}.ln.gain"))?),
                        offset: Some(weights.param(&format!("l{i}.ln.offset"))?),
                    },
                )?)
            } else {
                None
            };
            // ReLU reads the norm's output, or the linear map's without a norm.
            let (relu_x, relu_dx) = if cfg.norm { (&hid.n, &hid.dn) } else { (&hid.h, &hid.dh) };
            let relu = Activation::new(
                gpu,
                &ActivationDesc {
                    kind: ActivationKind::Relu,
                    len: rows * width,
                    x: v(relu_x),
                    y: v(&hid.a),
                    dy: v(&hid.da),
                    dx: v(relu_dx),
                },
            )?;
            layers.push((linear, norm, relu));
        }
        let last = hidden.last().expect("at least one hidden layer");
        let width = *w.last().expect("widths");
        let out = activation(gpu, &format!("{label} out"), rows * cfg.classes);
        let dout = activation(gpu, &format!("{label} dout"), rows * cfg.classes);
        let head = Linear::new(
            gpu,
            &LinearDesc {
                rows,
                inputs: width,
                outputs: cfg.classes,
                x: View::new(&last.a, rows * width),
                y: View::new(&out, rows * cfg.classes),
                dy: View::new(&dout, rows * cfg.classes),
                dx: Some(View::new(&last.da, rows * width)),
                weight: weights.param("head.weight")?,
                bias: Some(weights.param("head.bias")?),
            },
        )?;
        Ok(MlpBody {
            _hidden: hidden,
            out,
            dout,
            layers,
            head,
        })
    }

    /// Records the forward pass: the outputs into [`MlpBody::out`].
    pub fn record_forward(&self, rec: &mut dyn Recorder) {
        for (linear, norm, relu) in &self.layers {
            linear.record_forward(rec);
            if let Some(norm) = norm {
                norm.record_forward(rec);
            }
            relu.record_forward(rec);
        }
        self.head.record_forward(rec);
    }

    /// Records the backward pass from [`MlpBody::dout`]: every weight's
    /// gradient, overwritten (after this step's forward pass).
    pub fn record_backward(&self, rec: &mut dyn Recorder) {
        self.head.record_backward(rec);
        for (linear, norm, relu) in self.layers.iter().rev() {
            relu.record_backward(rec);
            if let Some(norm) = norm {
                norm.record_backward(rec);
            }
            linear.record_backward(rec);
        }
    }

    /// The outputs `[rows, classes]` (logits, Q-values).
    pub fn out(&self) -> &wgpu::Buffer {
        &self.out
    }

    /// The gradient of the loss with respect to the outputs `[rows, classes]`.
    pub fn dout(&self) -> &wgpu::Buffer {
        &self.dout
    }
}

/// An MLP for batches of `rows` examples: its body and a cross-entropy loss.
pub struct MlpGraph {
    rows: usize,
    input_dim: usize,
    input: wgpu::Buffer,
    targets: wgpu::Buffer,
    body: MlpBody,
    loss: CrossEntropy,
}

impl MlpGraph {
    /// Builds the graph for `rows` examples, parameters read from `weights`.
    pub fn new(gpu: &Gpu, cfg: &MlpConfig, weights: Weights<'_>, rows: usize) -> Result<Self> {
        if cfg.hidden.is_empty() || cfg.input == 0 || cfg.classes < 2 {
            return Err(Error::invalid(
                "mlp",
                "needs an input, at least one hidden layer and at least two classes",
            ));
        }
        check_rows(gpu, cfg, rows, "rows")?;
        let input = activation(gpu, "mlp input", rows * cfg.input);
        let targets = activation(gpu, "mlp targets", rows);
        let body = MlpBody::new(gpu, cfg, &weights, &input, rows, "mlp")?;
        let loss = CrossEntropy::new(
            gpu,
            &CrossEntropyDesc {
                rows,
                classes: cfg.classes,
                logits: View::new(body.out(), rows * cfg.classes),
                targets: View::new(&targets, rows),
                dlogits: View::new(body.dout(), rows * cfg.classes),
            },
        )?;
        Ok(MlpGraph {
            rows,
            input_dim: cfg.input,
            input,
            targets,
            body,
            loss,
        })
    }
}

impl Graph for MlpGraph {
    fn record_forward(&self, rec: &mut dyn Recorder) {
        self.body.record_forward(rec);
        self.loss.record_forward(rec);
    }

    fn record_backward(&self, rec: &mut dyn Recorder) {
        self.loss.record_backward(rec);
        self.body.record_backward(rec);
    }

    fn loss(&self) -> &CrossEntropy {
        &self.loss
    }

    fn write_batch(&self, gpu: &Gpu, inputs: &Inputs, targets: &[u32]) -> Result<()> {
        let Inputs::Features(x) = inputs else {
            return Err(Error::invalid("batch", "the mlp takes features, not tokens"));
        };
        if x.len() != self.rows * self.input_dim || targets.len() != self.rows {
            return Err(Error::invalid(
                "batch",
                format!(
                    "{} features and {} targets, but the graph takes {} rows of {}",
                    x.len(),
                    targets.len(),
                    self.rows,
                    self.input_dim
                ),
            ));
        }
        gpu.queue.write_buffer(&self.input, 0, bytemuck::cast_slice(x));
        gpu.queue.write_buffer(&self.targets, 0, bytemuck::cast_slice(targets));
        Ok(())
    }

    fn rows(&self) -> usize {
        self.rows
    }
}
