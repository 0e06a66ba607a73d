//! The Q-network: the MLP of [`crate::model::mlp`] (its tensors, NaP groups and
//! initialization) as a graph of [`crate::nn`] layers whose head writes Q-values,
//! one per action, and whose backward pass starts from their gradient.

use crate::error::{Error, Result};
use crate::gpu::{Gpu, Recorder};
use crate::model::mlp::MlpConfig;
use crate::model::Weights;
use crate::nn::{Activation, ActivationDesc, ActivationKind, Linear, LinearDesc, Norm, NormDesc, NormKind, View};

/// One hidden layer's buffers: h = x W, n = LN(h), a = ReLU(n), and their gradients.
struct Hidden {
    h: wgpu::Buffer,
    n: wgpu::Buffer,
    a: wgpu::Buffer,
    dh: wgpu::Buffer,
    dn: wgpu::Buffer,
    da: wgpu::Buffer,
}

/// A Q-network for `rows` observations at a time, reading its input from a
/// buffer it is given (so that several networks can read one batch) and its
/// weights from [`Weights`] (the arena's, or a target network's copy).
/// [`QNet::q`] holds the Q-values `[rows, actions]` after the forward pass;
/// the backward pass reads their gradient from [`QNet::dq`] and writes the
/// weights' gradients into the arena.
pub struct QNet {
    rows: usize,
    actions: usize,
    _hidden: Vec<Hidden>,
    q: wgpu::Buffer,
    dq: wgpu::Buffer,
    layers: Vec<(Linear, Option<Norm>, Activation)>,
    head: Linear,
}

impl QNet {
    /// The network `cfg` (`cfg.classes` actions) over `rows` rows of `input`
    /// (`rows * cfg.input` f32), weights from `weights`.
    pub fn new(gpu: &Gpu, cfg: &MlpConfig, weights: Weights<'_>, input: &wgpu::Buffer, rows: usize) -> Result<QNet> {
        if cfg.hidden.is_empty() || cfg.input == 0 || cfg.classes < 2 {
            return Err(Error::invalid(
                "qnet",
                "needs an input, at least one hidden layer and at least two actions",
            ));
        }
        let buffer = |label: &str, len: usize| gpu.storage(label, len as u64 * 4);
        let hidden: Vec<Hidden> = cfg
            .hidden
            .iter()
            .map(|&width| Hidden {
                h: buffer("qnet h", rows * width),
                n: buffer("qnet n", rows * width),
                a: buffer("qnet a", rows * width),
                dh: buffer("qnet dh", rows * width),
                dn: buffer("qnet dn", rows * width),
                da: buffer("qnet da", rows * width),
            })
            .collect();
        let widths: Vec<usize> = std::iter::once(cfg.input).chain(cfg.hidden.iter().copied()).collect();
        let mut layers = Vec::new();
        for (i, hid) in hidden.iter().enumerate() {
            let (fan_in, width) = (widths[i], widths[i + 1]);
            let v = |b| View::new(b, rows * width);
            let (x, dx) = match i {
                0 => (View::new(input, rows * fan_in), None),
                _ => (
                    View::new(&hidden[i - 1].a, rows * fan_in),
                    Some(View::new(&hidden[i - 1].da, rows * fan_in)),
                ),
            };
            let bias = (!cfg.norm).then(|| weights.param(&format!("l{i}.bias"))).transpose()?;
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
                    bias,
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
            let (relu_in, relu_din) = if cfg.norm { (&hid.n, &hid.dn) } else { (&hid.h, &hid.dh) };
            let relu = Activation::new(
                gpu,
                &ActivationDesc {
                    kind: ActivationKind::Relu,
                    len: rows * width,
                    x: v(relu_in),
                    y: v(&hid.a),
                    dy: v(&hid.da),
                    dx: v(relu_din),
                },
            )?;
            layers.push((linear, norm, relu));
        }
        let last = hidden.last().expect("at least one hidden layer");
        let width = *widths.last().expect("widths start with the input");
        let q = buffer("qnet q", rows * cfg.classes);
        let dq = buffer("qnet dq", rows * cfg.classes);
        let head = Linear::new(
            gpu,
            &LinearDesc {
                rows,
                inputs: width,
                outputs: cfg.classes,
                x: View::new(&last.a, rows * width),
                y: View::new(&q, rows * cfg.classes),
                dy: View::new(&dq, rows * cfg.classes),
                dx: Some(View::new(&last.da, rows * width)),
                weight: weights.param("head.weight")?,
                bias: Some(weights.param("head.bias")?),
            },
        )?;
        Ok(QNet {
            rows,
            actions: cfg.classes,
            _hidden: hidden,
            q,
            dq,
            layers,
            head,
        })
    }

    /// Records the forward pass: Q-values into [`QNet::q`].
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

    /// Records the backward pass from [`QNet::dq`]: every weight's gradient,
    /// overwritten (needs this step's forward pass recorded before it).
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

    /// The Q-values `[rows, actions]`.
    pub fn q(&self) -> &wgpu::Buffer {
        &self.q
    }

    /// The gradient of the loss with respect to the Q-values `[rows, actions]`.
    pub fn dq(&self) -> &wgpu::Buffer {
        &self.dq
    }

    /// Rows per pass.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Actions (Q-values per row).
    pub fn actions(&self) -> usize {
        self.actions
    }
}
