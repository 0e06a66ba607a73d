//! What defines a run: the model, the data and every setting stored in a
//! checkpoint (a resumed run must match it).

use serde::{Deserialize, Serialize};

use crate::data::csv::CsvSpec;
use crate::data::text::{Text, TextFile};
use crate::error::{Error, Result};
use crate::model::gpt::GptConfig;
use crate::model::mlp::MlpConfig;
use crate::model::ModelConfig;
use crate::optim::OptimConfig;

/// Which data to train on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataKind {
    /// Two interleaved spirals (generated).
    Spirals,
    /// 8x8 handwritten digits (shipped).
    Digits,
    /// Character-level English text (shipped).
    Text,
    /// 1,024 digits whose labels are re-drawn every `task_steps` steps.
    Continual,
    /// A UTF-8 text file of one's own, by character (`text:PATH`).
    TextFile(TextFile),
    /// A CSV file of one's own: numeric features and a label column (`csv:PATH`).
    Csv(CsvSpec),
}

/// The held-out fraction of a file of one's own when none is given.
pub const EVAL_FRAC: f64 = 0.1;

/// What `--data` names: a built-in data set, or a file of one's own
/// (`text:PATH`, `csv:PATH`), before the file is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataChoice {
    /// Two interleaved spirals.
    Spirals,
    /// 8x8 handwritten digits.
    Digits,
    /// The shipped English text.
    Text,
    /// The continual stream of re-labelled digits.
    Continual,
    /// `text:PATH`: a UTF-8 text file.
    TextFile(String),
    /// `csv:PATH`: a CSV file of numeric features and a label column.
    Csv(String),
}

impl std::str::FromStr for DataChoice {
    type Err = Error;

    /// Parses `spirals|digits|text|continual|text:PATH|csv:PATH`.
    fn from_str(s: &str) -> Result<DataChoice> {
        if let Some(path) = s.strip_prefix("text:") {
            return Ok(DataChoice::TextFile(path.into()));
        }
        if let Some(path) = s.strip_prefix("csv:") {
            return Ok(DataChoice::Csv(path.into()));
        }
        match s {
            "spirals" => Ok(DataChoice::Spirals),
            "digits" => Ok(DataChoice::Digits),
            "text" => Ok(DataChoice::Text),
            "continual" => Ok(DataChoice::Continual),
            other => Err(Error::invalid(
                "data",
                format!("unknown data `{other}` (expected spirals, digits, text, continual, text:PATH or csv:PATH)"),
            )),
        }
    }
}

impl std::fmt::Display for DataChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DataChoice::Spirals => f.write_str("spirals"),
            DataChoice::Digits => f.write_str("digits"),
            DataChoice::Text => f.write_str("text"),
            DataChoice::Continual => f.write_str("continual"),
            DataChoice::TextFile(path) => write!(f, "text:{path}"),
            DataChoice::Csv(path) => write!(f, "csv:{path}"),
        }
    }
}

impl DataKind {
    /// What `--data` names for this data (a file by its stored path).
    pub fn choice(&self) -> DataChoice {
        match self {
            DataKind::Spirals => DataChoice::Spirals,
            DataKind::Digits => DataChoice::Digits,
            DataKind::Text => DataChoice::Text,
            DataKind::Continual => DataChoice::Continual,
            DataKind::TextFile(t) => DataChoice::TextFile(t.path.clone()),
            DataKind::Csv(c) => DataChoice::Csv(c.path.clone()),
        }
    }

    /// The data `choice` names: a built-in set as it is, a file of one's own
    /// read (`text:PATH`: its vocabulary; `csv:PATH`: its classes and feature
    /// statistics, and its fingerprint), holding out `eval_frac` (default
    /// [`EVAL_FRAC`]); `label` names a CSV's label column. A file is stored by
    /// its absolute path, so that a run's checkpoint reads it from anywhere.
    /// Either setting given for data it does not apply to is refused.
    pub fn open(choice: &DataChoice, eval_frac: Option<f64>, label: Option<&str>) -> Result<DataKind> {
        let frac = eval_frac.unwrap_or(EVAL_FRAC);
        if let DataChoice::Csv(path) = choice {
            return Ok(DataKind::Csv(CsvSpec::scan(&absolute(path)?, label, frac)?.0));
        }
        if label.is_some() {
            return Err(Error::invalid("label", "names a column of --data csv:PATH only"));
        }
        if let DataChoice::TextFile(path) = choice {
            return Ok(DataKind::TextFile(TextFile::scan(&absolute(path)?, frac)?));
        }
        if eval_frac.is_some() {
            return Err(Error::invalid(
                "eval-frac",
                "applies to --data text:PATH and csv:PATH only (the other data sets have fixed splits)",
            ));
        }
        Ok(match choice {
            DataChoice::Spirals => DataKind::Spirals,
            DataChoice::Digits => DataKind::Digits,
            DataChoice::Text => DataKind::Text,
            _ => DataKind::Continual,
        })
    }
}

/// `path` made absolute, links resolved (the file must exist).
fn absolute(path: &str) -> Result<String> {
    let full = std::fs::canonicalize(path).map_err(|source| Error::Io {
        path: path.to_string(),
        source,
    })?;
    Ok(full.to_str().map_or_else(|| path.to_string(), str::to_string))
}

/// Everything that defines a run (stored in checkpoints; a resumed run must match it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// The model.
    pub model: ModelConfig,
    /// The data.
    pub data: DataKind,
    /// The optimizer.
    pub optimizer: OptimConfig,
    /// Project every NaP group of the model after each step.
    pub nap: bool,
    /// Steps to train for in all.
    pub steps: u64,
    /// Examples (MLP) or sequences (GPT) per batch.
    pub batch: usize,
    /// Evaluate at x every this many steps (and at the end).
    pub eval_every: u64,
    /// Read the training loss back every this many steps.
    pub metrics_every: u64,
    /// Seed of initialization and batch sampling.
    pub seed: u64,
    /// Steps per task of the continual stream.
    pub task_steps: u64,
}

impl TrainConfig {
    /// The settings as a checkpoint stores them, as JSON: [`TrainConfig::steps`]
    /// is left out (0), since a resume may change it.
    pub fn stored_json(&self) -> Result<String> {
        serde_json::to_string(&TrainConfig {
            steps: 0,
            ..self.clone()
        })
        .map_err(|e| Error::json("the run's settings", e))
    }

    /// The default model for `data`: digits MLP 64-256-256-10, spirals (2 + 1)-64-64-2
    /// (a constant third input, see [`crate::data::spirals::with_one`]),
    /// continual 64-256-256-10, text: a 2-layer GPT of width 64, 4 heads, context 64.
    /// A text file: the same GPT over the file's vocabulary; a CSV: an MLP
    /// (features)-64-64-(classes).
    pub fn default_model(data: &DataKind) -> ModelConfig {
        match data {
            DataKind::Spirals => ModelConfig::Mlp(MlpConfig {
                input: 3,
                hidden: vec![64, 64],
                classes: 2,
                norm: true,
            }),
            DataKind::Digits | DataKind::Continual => ModelConfig::Mlp(MlpConfig {
                input: 64,
                hidden: vec![256, 256],
                classes: 10,
                norm: true,
            }),
            DataKind::Text => ModelConfig::Gpt(GptConfig {
                vocab: Text::shipped().vocab.len(),
                context: 64,
                width: 64,
                heads: 4,
                layers: 2,
            }),
            DataKind::TextFile(t) => ModelConfig::Gpt(GptConfig {
                vocab: t.vocab.chars().count(),
                context: 64,
                width: 64,
                heads: 4,
                layers: 2,
            }),
            DataKind::Csv(c) => ModelConfig::Mlp(MlpConfig {
                input: c.features.len(),
                hidden: vec![64, 64],
                classes: c.classes.len(),
                norm: true,
            }),
        }
    }

    /// Checks the settings against each other; errors name the field.
    pub fn validate(&self) -> Result<()> {
        self.optimizer.validate()?;
        for (name, v) in [
            ("steps", self.steps),
            ("batch", self.batch as u64),
            ("eval_every", self.eval_every),
            ("metrics_every", self.metrics_every),
            ("task_steps", self.task_steps),
        ] {
            if v == 0 {
                return Err(Error::invalid(name, "must be at least 1"));
            }
        }
        self.model.check_sizes()?;
        match &self.data {
            DataKind::TextFile(t) => crate::data::text::check_eval_frac(t.eval_frac)?,
            DataKind::Csv(c) => {
                crate::data::text::check_eval_frac(c.eval_frac)?;
                let d = c.features.len();
                if c.mean.len() != d || c.std.len() != d || c.std.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
                    return Err(Error::invalid(
                        "data.csv",
                        format!("needs a mean and a positive standard deviation for each of the {d} features"),
                    ));
                }
            }
            _ => {}
        }
        match (&self.model, &self.data) {
            (ModelConfig::Gpt(_), DataKind::Text) => Ok(()),
            (ModelConfig::Gpt(g), DataKind::TextFile(t)) => {
                let n = t.vocab.chars().count();
                if g.vocab != n {
                    return Err(Error::invalid(
                        "model",
                        format!(
                            "{} has {n} distinct characters, the gpt's vocabulary {}",
                            t.path, g.vocab
                        ),
                    ));
                }
                Ok(())
            }
            (ModelConfig::Mlp(_), DataKind::Text | DataKind::TextFile(_)) => {
                Err(Error::invalid("model", "text needs --model gpt"))
            }
            (ModelConfig::Gpt(_), _) => Err(Error::invalid("model", "gpt trains on --data text only")),
            (ModelConfig::Mlp(m), _) if self.nap && !m.norm => Err(Error::invalid(
                "nap",
                "NaP projects weights that a normalization makes scale-invariant: the mlp without norm has none",
            )),
            (ModelConfig::Mlp(m), data) => {
                let (input, classes) = match data {
                    DataKind::Spirals => (3, 2),
                    DataKind::Csv(c) => (c.features.len(), c.classes.len()),
                    _ => (64, 10),
                };
                if m.input != input || m.classes != classes {
                    return Err(Error::invalid(
                        "model",
                        format!("this data needs an mlp with {input} inputs and {classes} classes"),
                    ));
                }
                Ok(())
            }
        }
    }
}
