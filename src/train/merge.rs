//! `sfnap merge`: a weighted average of several checkpoints of one run's settings,
//! written as a checkpoint that `sfnap train --resume` and evaluation load.
//!
//! Every f32 tensor family is averaged with the same weights: the training
//! weights y and the optimizer's state (z, v, m, sf_plus's x). The merged x is
//! then exported from the merged state, as training exports it; since x is
//! linear in (y, z) (or kept explicitly), it is the same average of the inputs'
//! x up to f32 rounding. Step counters, host scalars, device scalars and the
//! sampler's state come from the checkpoint with the most steps: a resumed
//! merge continues from there.

use std::path::{Path, PathBuf};

use safetensors::SafeTensors;

use super::{diff_fields, evaluate, Eval, MetricsRow, Source, TrainConfig};
use crate::arena::Arena;
use crate::checkpoint::{self, Meta};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::model::Weights;
use crate::optim::bf16;
use crate::optim::GpuOptimizer;
use crate::output;

/// How the checkpoints are weighted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum MergeWeights {
    /// Each checkpoint weighs the same.
    Uniform,
    /// Schedule-Free weights: each checkpoint stands for the steps since the one
    /// before it (ordered by step; the first for the steps from 0), weighted
    /// `sum t^r` over them, as x's average weighs its iterates at a constant
    /// learning rate (`r` of the run's optimizer; 0: the number of steps).
    Sf,
}

/// A checkpoint file, or a run directory holding `checkpoint.safetensors`.
pub fn checkpoint_path(input: &Path) -> PathBuf {
    if input.is_dir() {
        input.join("checkpoint.safetensors")
    } else {
        input.to_path_buf()
    }
}

/// The run's settings stored in a checkpoint, as a [`TrainConfig`] of `step` steps.
pub(super) fn stored_config(path: &Path, meta: &Meta) -> Result<TrainConfig> {
    let mut cfg: TrainConfig = serde_json::from_str(&meta.config)
        .map_err(|e| Error::invalid(path.display().to_string(), format!("checkpoint settings: {e}")))?;
    cfg.steps = meta.step.max(1);
    Ok(cfg)
}

/// The model, optimizer and x export of a run's settings, with `path`'s checkpoint applied.
struct Restored {
    cfg: TrainConfig,
    meta: Meta,
    arena: Arena,
    opt: GpuOptimizer,
}

fn restore(gpu: &Gpu, path: &Path) -> Result<Restored> {
    let loaded = checkpoint::load(path)?;
    let meta = loaded.meta.clone();
    let cfg = stored_config(path, &meta)?;
    cfg.validate()?;
    let model = cfg.model.model();
    let arena = Arena::new(gpu, &model.tensors(), None)?;
    let nap = cfg.nap.then(|| model.nap_groups());
    let mut opt = GpuOptimizer::new(gpu, &arena, &cfg.optimizer, nap.as_ref())?;
    loaded.apply(path, gpu, &arena, &mut opt)?;
    Ok(Restored { cfg, meta, arena, opt })
}

/// Evaluates a checkpoint's x on its run's evaluation set (the row a run would
/// write at the checkpoint's step; `train_loss` NaN).
pub fn evaluate_checkpoint(gpu: &Gpu, input: &Path) -> Result<MetricsRow> {
    let path = checkpoint_path(input);
    let r = restore(gpu, &path)?;
    let source = Source::new(&r.cfg)?;
    let x = gpu.storage("x export", r.arena.layout.bytes());
    let export = r.opt.x_export(gpu, &r.arena, &x)?;
    let weights = Weights {
        arena: &r.arena,
        values: &x,
    };
    let eval_graph = r.cfg.model.graph(gpu, weights, source.eval_rows())?;
    let eval = Eval {
        export: &export,
        x: &x,
        graph: eval_graph.as_ref(),
    };
    evaluate(gpu, &r.cfg, &source, &r.arena, &r.opt, &eval, r.meta.step, f64::NAN)
}

/// Averages the checkpoints `inputs` (files or run directories) into `out`
/// and evaluates the result at x. Returns each input's weight, in the order
/// given, and the evaluation. `out` is written only when everything succeeded,
/// and only over a regular file ([`output::check_file`], checked first).
///
/// Refused, naming the difference: checkpoints of other settings (model, data,
/// optimizer, NaP, seed, ...; only the number of steps may differ), tensors of
/// other names or shapes, and for `sf` weights two checkpoints of the same step.
pub fn merge(gpu: &Gpu, inputs: &[PathBuf], out: &Path, weights: MergeWeights) -> Result<(Vec<f64>, MetricsRow)> {
    if inputs.is_empty() {
        return Err(Error::invalid("merge", "needs at least one checkpoint"));
    }
    output::check_file(out)?;
    let paths: Vec<PathBuf> = inputs.iter().map(|p| checkpoint_path(p)).collect();
    let loaded: Vec<checkpoint::Loaded> = paths.iter().map(|p| checkpoint::load(p)).collect::<Result<_>>()?;
    let first = &paths[0];
    for (p, l) in paths.iter().zip(&loaded).skip(1) {
        if l.meta.config != loaded[0].meta.config {
            let parse = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap_or_default();
            let mut differ = Vec::new();
            diff_fields("", &parse(&loaded[0].meta.config), &parse(&l.meta.config), &mut differ);
            return Err(Error::invalid(
                p.display().to_string(),
                format!(
                    "cannot merge with {}: the runs' settings differ in {}",
                    first.display(),
                    differ.join(", ")
                ),
            ));
        }
    }
    let steps: Vec<u64> = loaded.iter().map(|l| l.meta.step).collect();
    let latest = (0..steps.len()).max_by_key(|&i| steps[i]).expect("at least one input");
    drop(loaded);

    let mut w = vec![1.0; paths.len()];
    if weights == MergeWeights::Sf {
        let mut order: Vec<usize> = (0..steps.len()).collect();
        order.sort_by_key(|&i| steps[i]);
        for pair in order.windows(2) {
            if steps[pair[0]] == steps[pair[1]] {
                return Err(Error::invalid(
                    paths[pair[1]].display().to_string(),
                    format!(
                        "--weights sf: {} is at the same step ({}); each checkpoint must stand for its own steps",
                        paths[pair[0]].display(),
                        steps[pair[0]]
                    ),
                ));
            }
        }
        let r = restore(gpu, &paths[latest])?.cfg.optimizer.r;
        let mut prev = 0u64;
        for &i in &order {
            w[i] = (prev + 1..=steps[i]).map(|t| (t as f64).powf(r)).sum();
            prev = steps[i];
        }
    }
    let total: f64 = w.iter().sum();
    if total <= 0.0 {
        return Err(Error::invalid(
            "merge",
            "the checkpoints' weights sum to 0 (all at step 0)",
        ));
    }
    for v in w.iter_mut() {
        *v /= total;
    }

    // The latest checkpoint, restored: its counters and scalars stay; every f32
    // family is replaced by the weighted average read from the files.
    let base = restore(gpu, &paths[latest])?;
    let bytes: Vec<Vec<u8>> = paths
        .iter()
        .map(|p| {
            std::fs::read(p).map_err(|source| Error::Io {
                path: p.display().to_string(),
                source,
            })
        })
        .collect::<Result<_>>()?;
    let files: Vec<SafeTensors<'_>> = bytes
        .iter()
        .zip(&paths)
        .map(|(b, p)| {
            SafeTensors::deserialize(b).map_err(|e| Error::invalid(p.display().to_string(), format!("checkpoint: {e}")))
        })
        .collect::<Result<_>>()?;
    // bf16 state is averaged in f64 and rounded to the nearest bf16.
    let bf16 = base.opt.state_is_bf16();
    let mut families: Vec<(&str, &wgpu::Buffer, bool)> = vec![("y", &base.arena.params, false)];
    families.extend(
        base.opt
            .state_buffers()
            .into_iter()
            .map(|(n, b)| (if n == "x" { "state_x" } else { n }, b, bf16)),
    );
    for (prefix, buffer, bf16) in families {
        let dtype = if bf16 {
            safetensors::Dtype::BF16
        } else {
            safetensors::Dtype::F32
        };
        for slot in &base.arena.layout.slots {
            let name = format!("{prefix}.{}", slot.name);
            let mut sum = vec![0.0f64; slot.len];
            for ((st, p), &wi) in files.iter().zip(&paths).zip(&w) {
                let t = st.tensor(&name).map_err(|_| {
                    Error::invalid(
                        p.display().to_string(),
                        format!("checkpoint: tensor `{name}` is missing"),
                    )
                })?;
                if t.shape() != slot.shape.as_slice() || t.dtype() != dtype {
                    return Err(Error::invalid(
                        p.display().to_string(),
                        format!(
                            "checkpoint: tensor `{name}` is {:?} {:?}, the run needs {dtype:?} {:?}",
                            t.dtype(),
                            t.shape(),
                            slot.shape
                        ),
                    ));
                }
                let values: Vec<f32> = if bf16 {
                    t.data()
                        .chunks_exact(2)
                        .map(|b| bf16::widen(u16::from_le_bytes([b[0], b[1]])))
                        .collect()
                } else {
                    bytemuck::pod_collect_to_vec(t.data())
                };
                for (s, v) in sum.iter_mut().zip(values) {
                    *s += wi * v as f64;
                }
            }
            let avg: Vec<f32> = sum.into_iter().map(|v| v as f32).collect();
            if bf16 {
                let bits: Vec<u16> = avg
                    .iter()
                    .map(|&v| bf16::round_bits(v, bf16::Rounding::Nearest, 0))
                    .collect();
                checkpoint::write_bf16(gpu, buffer, slot.offset, bytemuck::cast_slice(&bits));
            } else {
                base.arena.write_to(gpu, buffer, &slot.name, &avg)?;
            }
        }
    }
    let x = gpu.storage("x export", base.arena.layout.bytes());
    let export = base.opt.x_export(gpu, &base.arena, &x)?;
    gpu.submit(|enc| export.record(enc));
    // Written beside `out` and evaluated there: a merge that fails, its
    // evaluation included, leaves `out` as it was.
    let staged = out.with_extension(format!("merge{}", std::process::id()));
    checkpoint::save(&staged, gpu, &base.arena, &base.opt, &x, &base.meta)?;
    match evaluate_checkpoint(gpu, &staged) {
        Ok(row) => output::commit(&staged, out).map(|()| (w, row)),
        Err(e) => {
            let _ = std::fs::remove_file(&staged);
            Err(e)
        }
    }
}
