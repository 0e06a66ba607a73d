//! The Q-network: the MLP of [`crate::model::mlp`] (its tensors, NaP groups,
//! initialization, and its layers without a loss, [`MlpBody`]), whose outputs
//! are Q-values, one per action, and whose backward pass starts from their
//! gradient.

use crate::error::Result;
use crate::gpu::{Gpu, Recorder};
use crate::model::mlp::{MlpBody, MlpConfig};
use crate::model::Weights;

/// A Q-network for `rows` observations at a time, reading its input from a
/// buffer it is given (so that several networks can read one batch) and its
/// weights from [`Weights`] (the arena's, or a target network's copy).
/// [`QNet::q`] holds the Q-values `[rows, actions]` after the forward pass;
/// the backward pass reads their gradient from [`QNet::dq`] and writes the
/// weights' gradients into the arena.
pub struct QNet {
    rows: usize,
    actions: usize,
    body: MlpBody,
}

impl QNet {
    /// The network `cfg` (`cfg.classes` actions) over `rows` rows of `input`
    /// (`rows * cfg.input` f32), weights from `weights`.
    pub fn new(gpu: &Gpu, cfg: &MlpConfig, weights: Weights<'_>, input: &wgpu::Buffer, rows: usize) -> Result<QNet> {
        Ok(QNet {
            rows,
            actions: cfg.classes,
            body: MlpBody::new(gpu, cfg, &weights, input, rows, "qnet")?,
        })
    }

    /// Records the forward pass: Q-values into [`QNet::q`].
    pub fn record_forward(&self, rec: &mut dyn Recorder) {
        self.body.record_forward(rec);
    }

    /// Records the backward pass from [`QNet::dq`]: every weight's gradient,
    /// overwritten (needs this step's forward pass recorded before it).
    pub fn record_backward(&self, rec: &mut dyn Recorder) {
        self.body.record_backward(rec);
    }

    /// The Q-values `[rows, actions]`.
    pub fn q(&self) -> &wgpu::Buffer {
        self.body.out()
    }

    /// The gradient of the loss with respect to the Q-values `[rows, actions]`.
    pub fn dq(&self) -> &wgpu::Buffer {
        self.body.dout()
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
