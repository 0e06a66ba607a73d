//! Element-wise activations: ReLU and GELU (`shaders/activation.wgsl`).

use super::{check_view, dim, groups_for, layer_dispatch, read, record_all, write, Dispatch, View};
use crate::error::Result;
use crate::gpu::{Gpu, Recorder};

/// Which activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivationKind {
    /// `max(x, 0)`; its derivative is taken as 0 at x = 0.
    Relu,
    /// GELU, tanh approximation (GPT-2's):
    /// `x/2 (1 + tanh(sqrt(2/π) (x + 0.044715 x³)))`.
    Gelu,
}

/// Shapes and buffers of an [`Activation`].
pub struct ActivationDesc<'a> {
    /// ReLU or GELU.
    pub kind: ActivationKind,
    /// Number of elements (any shape, flattened).
    pub len: usize,
    /// Input x `[len]`.
    pub x: View<'a>,
    /// Output y `[len]`.
    pub y: View<'a>,
    /// Gradient with respect to y `[len]`, read by the backward pass.
    pub dy: View<'a>,
    /// Gradient with respect to x `[len]`, written by the backward pass.
    pub dx: View<'a>,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct ActDims {
    len: u32,
    pad: [u32; 3],
}

/// y = f(x) element-wise; backward overwrites dx = dy f'(x) (x is re-read, not y).
pub struct Activation {
    forward: Vec<Dispatch>,
    backward: Vec<Dispatch>,
}

impl Activation {
    /// Builds the pipelines and bind groups; checks every view against the length.
    pub fn new(gpu: &Gpu, desc: &ActivationDesc<'_>) -> Result<Activation> {
        let (layer, fwd, bwd) = match desc.kind {
            ActivationKind::Relu => ("relu", "relu_forward", "relu_backward"),
            ActivationKind::Gelu => ("gelu", "gelu_forward", "gelu_backward"),
        };
        let len = dim(layer, "len", desc.len)?;
        for (name, view) in [("x", &desc.x), ("y", &desc.y), ("dy", &desc.dy), ("dx", &desc.dx)] {
            check_view(gpu, layer, name, view, &[desc.len])?;
        }
        let uniform = gpu.uniform(layer, &ActDims { len, pad: [0; 3] });
        let views = [
            read(1, "x", desc.x),
            write(2, "y", desc.y),
            read(3, "dy", desc.dy),
            write(4, "dx", desc.dx),
        ];
        let g = (groups_for(desc.len), 1);
        Ok(Activation {
            forward: vec![layer_dispatch(gpu, layer, "activation", fwd, &uniform, &views, g)?],
            backward: vec![layer_dispatch(gpu, layer, "activation", bwd, &uniform, &views, g)?],
        })
    }

    /// Records y = f(x).
    pub fn record_forward(&self, rec: &mut dyn Recorder) {
        record_all(&self.forward, rec);
    }

    /// Records dx = dy f'(x), overwritten.
    pub fn record_backward(&self, rec: &mut dyn Recorder) {
        record_all(&self.backward, rec);
    }
}
