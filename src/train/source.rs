//! Where a run's batches and evaluation sets come from.

use crate::data::continual::Continual;
use crate::data::text::Text;
use crate::data::{digits, spirals, Classification, Rng};
use crate::error::{Error, Result};
use crate::model::Inputs;
use crate::model::ModelConfig;
use crate::train::config::{DataKind, TrainConfig};

/// Where the data of a run comes from.
pub(crate) enum Source {
    Classes {
        train: Classification,
        test: Classification,
    },
    Text {
        train: Text,
        test: Text,
        context: usize,
    },
    Continual(Continual),
}

/// Rows of the evaluation set (examples or tokens).
const TEXT_EVAL_SEQUENCES: usize = 16;

impl Source {
    /// The data `cfg` trains on (generated, shipped, the continual stream or a
    /// file of one's own, read here).
    pub(crate) fn new(cfg: &TrainConfig) -> Result<Source> {
        Ok(match (&cfg.data, &cfg.model) {
            (DataKind::Text, ModelConfig::Gpt(g)) => {
                let (train, test) = Text::shipped().split(0.1);
                Source::Text {
                    train,
                    test,
                    context: g.context,
                }
            }
            (DataKind::TextFile(spec), ModelConfig::Gpt(g)) => {
                let (train, test) = spec.load()?.into_split(spec.eval_frac);
                for (part, len) in [
                    ("training part", train.tokens.len()),
                    ("held-out tail", test.tokens.len()),
                ] {
                    if len < g.context + 2 {
                        return Err(Error::invalid(
                            &spec.path,
                            format!(
                                "its {part} has {len} characters, a context of {} needs at least {}",
                                g.context,
                                g.context + 2
                            ),
                        ));
                    }
                }
                Source::Text {
                    train,
                    test,
                    context: g.context,
                }
            }
            (DataKind::Csv(spec), _) => {
                let all = spec.load(&spec.path)?;
                let (train, test) = all.split(spec.eval_frac, cfg.seed);
                if train.is_empty() || test.is_empty() {
                    return Err(Error::invalid(
                        &spec.path,
                        format!(
                            "{} rows: --eval-frac {} leaves {} to train on and {} to evaluate",
                            all.len(),
                            spec.eval_frac,
                            train.len(),
                            test.len()
                        ),
                    ));
                }
                Source::Classes { train, test }
            }
            (DataKind::Spirals, _) => {
                let all = spirals::with_constant_input(&spirals::spirals(2000, 0.02, cfg.seed ^ 0x5));
                let (train, test) = all.split(0.25, cfg.seed);
                Source::Classes { train, test }
            }
            (DataKind::Continual, _) => {
                Source::Continual(Continual::new(&digits::digits(), 1024, cfg.task_steps, cfg.seed))
            }
            _ => {
                let (train, test) = digits::digits_split(cfg.seed);
                Source::Classes { train, test }
            }
        })
    }

    /// A training batch of `batch` rows for step `step`.
    pub(crate) fn batch(&self, step: u64, batch: usize, rng: &mut Rng) -> (Inputs, Vec<u32>) {
        let classes = |set: &Classification, rng: &mut Rng| {
            let rows: Vec<usize> = (0..batch).map(|_| rng.below(set.len())).collect();
            let b = set.select(&rows);
            (Inputs::Features(b.inputs), b.labels)
        };
        match self {
            Source::Classes { train, .. } => classes(train, rng),
            Source::Continual(c) => classes(&c.task_data(c.task(step)), rng),
            Source::Text { train, context, .. } => {
                let (x, y) = train.batch(batch, *context, rng);
                (Inputs::Tokens(x), y)
            }
        }
    }

    /// The evaluation set for the state after `step` steps (continual: the current task).
    pub(crate) fn eval_set(&self, step: u64) -> (Inputs, Vec<u32>) {
        match self {
            Source::Classes { test, .. } => (Inputs::Features(test.inputs.clone()), test.labels.clone()),
            Source::Continual(c) => {
                let d = c.task_data(c.task(step.saturating_sub(1)));
                (Inputs::Features(d.inputs), d.labels)
            }
            Source::Text { test, context, .. } => {
                let (x, y) = test.batch(TEXT_EVAL_SEQUENCES, *context, &mut Rng::new(7));
                (Inputs::Tokens(x), y)
            }
        }
    }

    /// Examples of one pass over the training data: rows, or the text's
    /// characters over the context (a task's inputs for the continual stream).
    pub(crate) fn train_rows(&self) -> usize {
        match self {
            Source::Classes { train, .. } => train.len(),
            Source::Continual(c) => c.task_data(0).len(),
            Source::Text { train, context, .. } => train.tokens.len() / context,
        }
    }

    /// Rows of the evaluation set.
    pub(crate) fn eval_rows(&self) -> usize {
        match self {
            Source::Classes { test, .. } => test.len(),
            Source::Continual(c) => c.task_data(0).len(),
            Source::Text { .. } => TEXT_EVAL_SEQUENCES,
        }
    }
}
