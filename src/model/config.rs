//! Which model a run trains, with its sizes: the one value the training loop,
//! checkpoints, the bench and the command line share.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::model::gpt::{GptConfig, GptGraph};
use crate::model::mlp::{MlpConfig, MlpGraph};
use crate::model::{Graph, Model, Weights};

/// Which model to train.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelConfig {
    /// input -> [Linear -> LayerNorm -> ReLU] x L -> Linear head.
    Mlp(MlpConfig),
    /// A tiny pre-LN transformer for character-level language modelling.
    Gpt(GptConfig),
}

/// Which model, without its sizes: `sfnap train --model` and `sfnap bench --train`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum ModelKind {
    /// The MLP (digits, spirals, the continual stream, a CSV).
    Mlp,
    /// The character-level transformer (text).
    Gpt,
}

impl ModelKind {
    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Mlp => "mlp",
            ModelKind::Gpt => "gpt",
        }
    }
}

/// The largest value of a size setting (layers, width, heads, context, a hidden width).
pub const MAX_SIZE: usize = 1 << 20;

impl ModelConfig {
    /// Which model it is.
    pub fn kind(&self) -> ModelKind {
        match self {
            ModelConfig::Mlp(_) => ModelKind::Mlp,
            ModelConfig::Gpt(_) => ModelKind::Gpt,
        }
    }

    /// The model's description: its tensors, NaP groups and initialization.
    pub fn model(&self) -> &dyn Model {
        match self {
            ModelConfig::Mlp(m) => m,
            ModelConfig::Gpt(g) => g,
        }
    }

    /// The model's graph for batches of `rows` rows, reading its weights from `weights`.
    pub fn graph(&self, gpu: &Gpu, weights: Weights<'_>, rows: usize) -> Result<Box<dyn Graph>> {
        Ok(match self {
            ModelConfig::Mlp(m) => Box::new(MlpGraph::new(gpu, m, weights, rows)?),
            ModelConfig::Gpt(g) => Box::new(GptGraph::new(gpu, g, weights, rows)?),
        })
    }

    /// Classes the model predicts among (the MLP's classes, the GPT's vocabulary).
    pub fn classes(&self) -> usize {
        match self {
            ModelConfig::Mlp(m) => m.classes,
            ModelConfig::Gpt(g) => g.vocab,
        }
    }

    /// Checks the sizes against each other before anything is allocated (the
    /// adapter's limits are checked next, by [`crate::model::check_rows`] and
    /// the arena); the error names the size setting.
    pub fn check_sizes(&self) -> Result<()> {
        let sizes: Vec<(&str, usize)> = match self {
            ModelConfig::Gpt(g) => vec![
                ("layers", g.layers),
                ("width", g.width),
                ("heads", g.heads),
                ("context", g.context),
            ],
            ModelConfig::Mlp(m) if m.hidden.is_empty() => {
                return Err(Error::invalid("hidden", "needs at least one hidden layer"))
            }
            ModelConfig::Mlp(m) => m.hidden.iter().map(|&h| ("hidden", h)).collect(),
        };
        for (name, v) in sizes {
            if v == 0 || v > MAX_SIZE {
                return Err(Error::invalid(name, format!("{v} is not between 1 and {MAX_SIZE}")));
            }
        }
        match self {
            ModelConfig::Gpt(g) if !g.width.is_multiple_of(g.heads) => Err(Error::invalid(
                "heads",
                format!("{} heads do not divide the width {}", g.heads, g.width),
            )),
            _ => Ok(()),
        }
    }
}
