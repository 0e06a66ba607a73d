//! Looking at a trained model through its checkpoint's x (the Schedule-Free
//! evaluation weights, stored as the `x.*` tensors): text sampled from a GPT
//! ([`sample`]), the loss and accuracy on a data set of one's own
//! ([`evaluate_data`]), and x exported for other programs ([`export`]).

use std::path::Path;

use super::merge::{checkpoint_path, stored_config};
use super::{DataChoice, DataKind, TrainConfig};
use crate::arena::Arena;
use crate::checkpoint::{self, Loaded};
use crate::data::csv::CsvSpec;
use crate::data::text::Text;
use crate::data::Rng;
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::model::gpt::{GptConfig, GptGraph};
use crate::model::ModelConfig;
use crate::model::{check_rows, Graph, Inputs, Weights};
use crate::output;

/// The format tag of an export's `model.json`.
pub const EXPORT_FORMAT: &str = "sfnap-export-1";

/// LayerNorm's epsilon in both models.
const NORM_EPS: f64 = 1e-5;

/// Sequences per batch when a GPT evaluates a file.
const TEXT_BATCH: usize = 16;

/// Examples per batch when an MLP evaluates a file.
const CSV_BATCH: usize = 1024;

/// One tensor of x: name, shape, values.
type Tensor = (String, Vec<usize>, Vec<f32>);

/// A checkpoint read and checked: the run's settings, its step, and the file.
struct Stored {
    path: std::path::PathBuf,
    cfg: TrainConfig,
    step: u64,
    loaded: Loaded,
}

impl Stored {
    fn read(input: &Path) -> Result<Stored> {
        let path = checkpoint_path(input);
        let loaded = checkpoint::load(&path)?;
        let cfg = stored_config(&path, &loaded.meta)?;
        cfg.validate()?;
        Ok(Stored {
            step: loaded.meta.step,
            path,
            cfg,
            loaded,
        })
    }

    /// Every tensor of x, in the model's order: (name, shape, values).
    fn x(&self) -> Result<Vec<Tensor>> {
        self.cfg
            .model
            .model()
            .tensors()
            .into_iter()
            .map(|spec| {
                let values = self
                    .loaded
                    .tensor_f32(&self.path, &format!("x.{}", spec.name), &spec.shape)?;
                Ok((spec.name, spec.shape, values))
            })
            .collect()
    }

    /// An arena whose parameters hold x.
    fn arena(&self, gpu: &Gpu) -> Result<Arena> {
        let arena = Arena::new(gpu, &self.cfg.model.model().tensors(), None)?;
        for (name, _, values) in self.x()? {
            arena.write(gpu, &name, &values)?;
        }
        Ok(arena)
    }

    /// The character vocabulary of a GPT's run.
    fn vocab(&self) -> Result<Vec<char>> {
        match &self.cfg.data {
            DataKind::Text => Ok(Text::shipped().vocab),
            DataKind::TextFile(t) => Ok(t.vocab.chars().collect()),
            _ => Err(self.not_gpt()),
        }
    }

    fn gpt(&self) -> Result<&GptConfig> {
        match &self.cfg.model {
            ModelConfig::Gpt(g) => Ok(g),
            ModelConfig::Mlp(_) => Err(self.not_gpt()),
        }
    }

    fn not_gpt(&self) -> Error {
        Error::invalid(
            self.path.display().to_string(),
            "this run trained an mlp: text needs a gpt's checkpoint",
        )
    }
}

/// How [`sample`] generates.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleOptions {
    /// The text to continue (every character in the model's vocabulary); empty:
    /// start after a newline (or the vocabulary's first character without one).
    pub prompt: String,
    /// Characters to generate.
    pub chars: usize,
    /// Softmax temperature: 0 takes the most likely character every time.
    pub temperature: f64,
    /// Seed of the sampling.
    pub seed: u64,
}

/// Generates `opts.chars` characters continuing `opts.prompt` with the GPT of a
/// checkpoint (a file, or a run directory) at x, one forward pass on `gpu` per
/// character, and hands each to `each` as it comes. The model sees the last
/// `context` characters.
pub fn sample(gpu: &Gpu, input: &Path, opts: &SampleOptions, each: &mut dyn FnMut(char)) -> Result<()> {
    if !(opts.temperature.is_finite() && opts.temperature >= 0.0) {
        return Err(Error::invalid(
            "temperature",
            format!("{} is not a number of 0 or more", opts.temperature),
        ));
    }
    let stored = Stored::read(input)?;
    let g = stored.gpt()?;
    let vocab = stored.vocab()?;
    let text = Text {
        vocab,
        tokens: Vec::new(),
    };
    let mut ids = if opts.prompt.is_empty() {
        let start = ['\n', ' '].into_iter().find_map(|c| text.vocab.binary_search(&c).ok());
        vec![start.unwrap_or(0) as u32]
    } else {
        text.encode(&opts.prompt)?
    };
    check_rows(gpu, g, 1, "sample")?;
    let arena = stored.arena(gpu)?;
    let graph = GptGraph::new(gpu, g, Weights::train(&arena), 1)?;
    let (t, v) = (g.context, g.vocab);
    let targets = vec![0u32; t];
    let mut rng = Rng::new(opts.seed);
    for _ in 0..opts.chars {
        // The last `context` tokens, padded after: position n - 1 sees none of the padding.
        let window = &ids[ids.len().saturating_sub(t)..];
        let n = window.len();
        let mut batch = window.to_vec();
        batch.resize(t, 0);
        graph.write_batch(gpu, &Inputs::Tokens(batch), &targets)?;
        gpu.submit(|enc| graph.record_forward(&mut enc.begin_compute_pass(&Default::default())));
        let logits = gpu.read::<f32>(graph.logits(), (n - 1) * v, v)?;
        let next = pick(&logits, opts.temperature, &mut rng);
        each(text.vocab[next]);
        ids.push(next as u32);
    }
    Ok(())
}

/// A class drawn from `logits` at `temperature` (0: the first of the largest).
fn pick(logits: &[f32], temperature: f64, rng: &mut Rng) -> usize {
    let argmax = logits
        .iter()
        .enumerate()
        .fold(0, |best, (i, &l)| if l > logits[best] { i } else { best });
    if temperature == 0.0 {
        return argmax;
    }
    let top = logits[argmax] as f64;
    let weights: Vec<f64> = logits.iter().map(|&l| ((l as f64 - top) / temperature).exp()).collect();
    let mut u = rng.uniform() * weights.iter().sum::<f64>();
    for (i, w) in weights.iter().enumerate() {
        if u < *w {
            return i;
        }
        u -= w;
    }
    argmax
}

/// The loss and accuracy of a checkpoint's x on a data set.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DataEval {
    /// The checkpoint's step.
    pub step: u64,
    /// Mean cross-entropy over the rows, in nats.
    pub loss: f64,
    /// Fraction of the rows whose most likely class is the target.
    pub accuracy: f64,
    /// Rows evaluated: examples (MLP) or predicted characters (GPT); `None`
    /// for a run's own evaluation set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<usize>,
}

/// Evaluates a checkpoint's x (a file, or a run directory) on every row of
/// `data`: `csv:PATH` for a run trained on a CSV (the same feature columns and
/// labels among its classes; standardised with the run's statistics), or
/// `text:PATH` for a GPT (every character in its vocabulary; every window of
/// `context` characters, one after another, predicts the next ones).
pub fn evaluate_data(gpu: &Gpu, input: &Path, data: &DataChoice) -> Result<DataEval> {
    let stored = Stored::read(input)?;
    let batches: Vec<(Inputs, Vec<u32>, usize)> = if let DataChoice::Csv(path) = data {
        let spec: &CsvSpec = match &stored.cfg.data {
            DataKind::Csv(spec) => spec,
            _ => {
                return Err(Error::invalid(
                    "data",
                    "this run did not train on a CSV file: its model reads no other (same data as training only)",
                ))
            }
        };
        let set = spec.load(path)?;
        (0..set.len())
            .step_by(CSV_BATCH)
            .map(|start| {
                let rows: Vec<usize> = (start..(start + CSV_BATCH).min(set.len())).collect();
                let b = set.select(&rows);
                (Inputs::Features(b.inputs), b.labels, rows.len())
            })
            .collect()
    } else if let DataChoice::TextFile(path) = data {
        let g = stored.gpt()?;
        let text = Text::load(Path::new(path), &stored.vocab()?)?;
        let t = g.context;
        if text.tokens.len() < t + 1 {
            return Err(Error::invalid(
                path,
                format!(
                    "{} characters, a context of {t} needs at least {}",
                    text.tokens.len(),
                    t + 1
                ),
            ));
        }
        let windows: Vec<usize> = (0..=text.tokens.len() - t - 1).step_by(t).collect();
        windows
            .chunks(TEXT_BATCH)
            .map(|starts| {
                let (mut x, mut y) = (Vec::new(), Vec::new());
                for &s in starts {
                    x.extend(text.tokens[s..s + t].iter().map(|&id| u32::from(id)));
                    y.extend(text.tokens[s + 1..s + t + 1].iter().map(|&id| u32::from(id)));
                }
                (Inputs::Tokens(x), y, starts.len())
            })
            .collect()
    } else {
        return Err(Error::invalid(
            "data",
            format!("`{data}`: eval reads text:PATH or csv:PATH (without --data: the run's own evaluation set)"),
        ));
    };
    let model = stored.cfg.model.model();
    let full = batches.first().map_or(1, |b| b.2);
    check_rows(gpu, model, full, "data")?;
    let arena = stored.arena(gpu)?;
    let mut graphs: Vec<Box<dyn Graph>> = Vec::new();
    let (mut loss, mut correct, mut rows) = (0.0f64, 0u64, 0u64);
    for (inputs, targets, n) in &batches {
        let at = match graphs.iter().position(|g| g.rows() == *n) {
            Some(i) => i,
            None => {
                graphs.push(stored.cfg.model.graph(gpu, Weights::train(&arena), *n)?);
                graphs.len() - 1
            }
        };
        let g = graphs[at].as_ref();
        g.write_batch(gpu, inputs, targets)?;
        gpu.submit(|enc| g.record_forward(&mut enc.begin_compute_pass(&Default::default())));
        let stats = g.loss().read_stats(gpu)?;
        loss += stats.mean as f64 * stats.rows as f64;
        correct += stats.correct as u64;
        rows += stats.rows as u64;
    }
    Ok(DataEval {
        step: stored.step,
        loss: loss / rows.max(1) as f64,
        accuracy: correct as f64 / rows.max(1) as f64,
        rows: Some(rows as usize),
    })
}

/// Writes a checkpoint's x (a file, or a run directory) to the directory
/// `out`: `model.safetensors` (x's tensors, F32, under the model's names, no
/// optimizer state) and `model.json` (the architecture: hyperparameters, the
/// layers in order for the MLP, every tensor's shape, and what reads the data:
/// vocabulary, or classes and standardisation). No GPU is needed. The pair is
/// replaced as a whole ([`output::replace_dir`]): `out` must be absent or an
/// export's directory, and a kill leaves the old pair or the new one.
pub fn export(input: &Path, out: &Path) -> Result<()> {
    let stored = Stored::read(input)?;
    let x = stored.x()?;
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = x
        .iter()
        .map(|(name, shape, values)| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), bytemuck::cast_slice(values))
                .map(|v| (name.clone(), v))
                .map_err(|e| Error::Gpu(format!("export of `{name}`: {e}")))
        })
        .collect::<Result<_>>()?;
    let bytes = safetensors::serialize(views, None).map_err(|e| Error::Gpu(format!("export: {e}")))?;
    let json = serde_json::to_string_pretty(&describe_export(&stored, &x)).map_err(|e| Error::json("model.json", e))?;
    let json = format!("{json}\n");
    output::replace_dir(out, &[("model.safetensors", &bytes), ("model.json", json.as_bytes())])
}

/// The contents of an export's `model.json`.
fn describe_export(stored: &Stored, x: &[Tensor]) -> serde_json::Value {
    use serde_json::json;
    let tensors: serde_json::Map<String, serde_json::Value> =
        x.iter().map(|(n, shape, _)| (n.clone(), json!(shape))).collect();
    let data = match &stored.cfg.data {
        DataKind::Csv(c) => json!({
            "kind": "csv",
            "path": c.path,
            "label": c.label,
            "features": c.features,
            "classes": c.classes,
            "mean": c.mean,
            "std": c.std,
        }),
        DataKind::TextFile(t) => json!({ "kind": "text", "path": t.path, "vocab": t.vocab }),
        DataKind::Text => json!({ "kind": "text", "vocab": Text::shipped().vocab.iter().collect::<String>() }),
        DataKind::Spirals => json!({ "kind": "spirals", "classes": ["0", "1"] }),
        DataKind::Digits | DataKind::Continual => json!({
            "kind": "digits",
            "classes": (0..10).map(|c| c.to_string()).collect::<Vec<_>>(),
        }),
    };
    let model = match &stored.cfg.model {
        ModelConfig::Mlp(m) => {
            let mut layers = Vec::new();
            for i in 0..m.hidden.len() {
                if m.norm {
                    layers.push(json!({ "op": "linear", "weight": format!("l{i}.weight"), "bias": null }));
                    layers.push(json!({
                        "op": "layer_norm",
                        "gain": format!("l{i}.ln.gain"),
                        "offset": format!("l{i}.ln.offset"),
                        "eps": NORM_EPS,
                    }));
                } else {
                    layers.push(json!({
                        "op": "linear",
                        "weight": format!("l{i}.weight"),
                        "bias": format!("l{i}.bias"),
                    }));
                }
                layers.push(json!({ "op": "relu" }));
            }
            layers.push(json!({ "op": "linear", "weight": "head.weight", "bias": "head.bias" }));
            json!({
                "model": "mlp",
                "input": m.input,
                "hidden": m.hidden,
                "classes": m.classes,
                "norm": m.norm,
                "norm_eps": NORM_EPS,
                "activation": "relu",
                "layers": layers,
            })
        }
        ModelConfig::Gpt(g) => json!({
            "model": "gpt",
            "vocab_size": g.vocab,
            "context": g.context,
            "width": g.width,
            "heads": g.heads,
            "layers": g.layers,
            "norm_eps": NORM_EPS,
            "activation": "gelu_tanh",
            "architecture": "tok_emb[ids] + pos_emb[positions] -> per block hN: x + attn.proj(causal_attention(\
                attn.qkv(layer_norm(x, ln1)))); x + mlp.proj(gelu(mlp.fc(layer_norm(x, ln2)))) -> layer_norm(x, lnf) \
                -> x @ head.weight (no bias); linear: y = x @ weight + bias, weight [in, out]; qkv's output is \
                [q | k | v], each split into heads of width / heads channels",
        }),
    };
    let mut out = json!({
        "format": EXPORT_FORMAT,
        "step": stored.step,
        "weights": "model.safetensors",
    });
    let fields = out.as_object_mut().expect("an object");
    fields.extend(model.as_object().expect("an object").clone());
    fields.insert("tensors".into(), json!(tensors));
    fields.insert("data".into(), data);
    out
}
