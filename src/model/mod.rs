//! Models built from the layers of [`crate::nn`]: their tensors, NaP groups,
//! initialization, and a graph per batch size that records forward and backward.

mod config;
pub mod gpt;
pub mod mlp;

pub use config::{ModelConfig, ModelKind, MAX_SIZE};

use crate::arena::{Arena, TensorSpec};
use crate::data::Rng;
use crate::error::{Error, Result};
use crate::gpu::{Gpu, Recorder};
use crate::nap::NapConfig;
use crate::nn::{CrossEntropy, Param, View};

/// A model's description: what lives in the arena and how it starts.
pub trait Model {
    /// Every trainable tensor, in arena order (decay flags set).
    fn tensors(&self) -> Vec<TensorSpec>;
    /// The NaP groups: each hidden weight and each norm's (gain, offset); never the head.
    fn nap_groups(&self) -> NapConfig;
    /// The hidden weight matrices whose norm `metrics.csv` reports: by default the
    /// weights among the NaP groups (the scale-invariant ones).
    fn hidden_weights(&self) -> Vec<String> {
        self.nap_groups()
            .groups
            .iter()
            .flat_map(|g| g.tensors.iter().filter(|t| t.ends_with("weight")).cloned())
            .collect()
    }
    /// Initial values of tensor `spec` (deterministic in `rng`).
    fn init(&self, spec: &TensorSpec, rng: &mut Rng) -> Vec<f32>;
    /// Bytes of the largest buffer a graph of this model allocates for one row
    /// (an example, or a sequence): a graph of `rows` rows fits a device while
    /// `rows` times this fits one storage binding ([`check_rows`]).
    fn bytes_per_row(&self) -> u64;
    /// The sizes that set [`Model::bytes_per_row`], by their command-line
    /// names: what to lower when not even one row fits.
    fn row_sizes(&self) -> &'static [&'static str];
    /// Parameters in all (the sum of [`Model::tensors`]' sizes), computed
    /// without listing the tensors: the memory plan sizes a run with it before
    /// anything of the run is built.
    fn parameters(&self) -> u128;
    /// Bytes of device memory a graph of `rows` rows allocates: every activation,
    /// its gradient and every layer's scratch buffer (buffers of a few bytes aside).
    fn graph_bytes(&self, rows: usize) -> u128;
    /// Writes the initial values of every tensor into the arena's parameters.
    fn initialize(&self, gpu: &Gpu, arena: &Arena, seed: u64) -> Result<()> {
        let mut rng = Rng::new(seed);
        for spec in self.tensors() {
            let values = self.init(&spec, &mut rng);
            arena.write(gpu, &spec.name, &values)?;
        }
        Ok(())
    }
}

/// One batch of inputs for a graph: features (MLP) or token ids (GPT), and targets.
#[derive(Debug, Clone, PartialEq)]
pub enum Inputs {
    /// Features `[rows, dim]`.
    Features(Vec<f32>),
    /// Token ids `[batch, seq]`.
    Tokens(Vec<u32>),
}

/// A model instantiated for a fixed number of rows: buffers, layers, and the recording of its passes.
pub trait Graph {
    /// Records the forward pass and the loss (per-row losses, mean, hits).
    fn record_forward(&self, rec: &mut dyn Recorder);
    /// Records the loss's and every layer's backward pass (gradients into the arena).
    fn record_backward(&self, rec: &mut dyn Recorder);
    /// The loss layer (its stats buffer holds the mean loss and hit count).
    fn loss(&self) -> &CrossEntropy;
    /// Uploads a batch (inputs and targets; lengths must match the graph's rows).
    fn write_batch(&self, gpu: &Gpu, inputs: &Inputs, targets: &[u32]) -> Result<()>;
    /// Rows (examples or tokens) per batch.
    fn rows(&self) -> usize;
}

/// Where a graph reads its parameters: the arena's (training at y) or another
/// buffer of the same layout (evaluation at x, exported by the optimizer).
#[derive(Clone, Copy)]
pub struct Weights<'a> {
    /// The arena (layout and gradients).
    pub arena: &'a Arena,
    /// The buffer holding the values (the arena's params, or an x export).
    pub values: &'a wgpu::Buffer,
}

impl<'a> Weights<'a> {
    /// The arena's own parameters.
    pub fn train(arena: &'a Arena) -> Self {
        Weights {
            arena,
            values: &arena.params,
        }
    }

    /// Tensor `name`: values from `values`, gradient in the arena.
    pub fn param(&self, name: &str) -> Result<Param<'a>> {
        let slot = self.arena.layout.slot(name)?;
        Ok(Param {
            value: View::at(self.values, slot.offset, slot.len),
            grad: View::at(&self.arena.grads, slot.offset, slot.len),
        })
    }
}

/// Checks, before anything is allocated, that a graph of `model` with `rows`
/// rows fits `gpu`: its largest buffer within one storage binding and one
/// buffer. The error names `field` (what sets `rows`) and the most that fits,
/// or, when not even one row fits, the model's sizes that set a row.
pub fn check_rows(gpu: &Gpu, model: &dyn Model, rows: usize, field: &str) -> Result<()> {
    let per_row = model.bytes_per_row();
    let limit = gpu
        .limits
        .max_storage_buffer_binding_size
        .min(gpu.limits.max_buffer_size);
    let fits = limit / per_row.max(1);
    let sizes = model.row_sizes();
    let flags = sizes.iter().map(|s| format!("--{s}")).collect::<Vec<_>>().join(", ");
    match (rows as u64).checked_mul(per_row) {
        Some(bytes) if bytes <= limit => Ok(()),
        _ if fits == 0 => Err(Error::invalid(
            sizes.join(", "),
            format!(
                "one row needs a buffer of {per_row} bytes, more than this adapter allows in one storage \
                 binding ({limit} bytes): lower {flags}"
            ),
        )),
        need => Err(Error::invalid(
            field,
            format!(
                "{rows} rows need a buffer of {} bytes ({per_row} a row), more than this adapter allows in one \
                 storage binding ({limit} bytes): at most {fits} rows fit (or lower {flags})",
                need.map_or("over 2^64".to_string(), |b| b.to_string())
            ),
        )),
    }
}

/// A zeroed activation buffer of `len` f32 (or u32) elements.
fn activation(gpu: &Gpu, label: &str, len: usize) -> wgpu::Buffer {
    gpu.storage(label, len as u64 * 4)
}

#[cfg(test)]
mod tests {
    use super::gpt::GptConfig;
    use super::mlp::MlpConfig;
    use super::Model;

    fn listed(model: &dyn Model) -> u128 {
        model
            .tensors()
            .iter()
            .map(|t| t.shape.iter().product::<usize>() as u128)
            .sum()
    }

    #[test]
    fn parameters_count_what_the_tensors_list() {
        for (layers, width, heads, context) in [(1, 8, 2, 4), (3, 64, 4, 64), (2, 96, 3, 17)] {
            let g = GptConfig {
                vocab: 11,
                context,
                width,
                heads,
                layers,
            };
            assert_eq!(g.parameters(), listed(&g), "{g:?}");
        }
        for (hidden, norm) in [(vec![5], true), (vec![64, 32, 7], true), (vec![9, 3], false)] {
            let m = MlpConfig {
                input: 6,
                hidden,
                classes: 4,
                norm,
            };
            assert_eq!(m.parameters(), listed(&m), "{m:?}");
        }
    }
}
