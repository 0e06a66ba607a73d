//! A run's optimizer state at chosen moments, for update functions
//! ([`crate::optim::update_function`]): the state before a step, read back
//! from the device, with the gradient and loss that step then took.

use std::path::Path;

use super::merge::checkpoint_path;
use super::parallel::Parallel;
use super::trainer::Trainer;
use super::{settings_of, RunOptions, TrainConfig};
use crate::checkpoint;
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::optim::reference::{Reference, ReferenceState};

/// The optimizer of a run before step `step + 1`: its state after `step`
/// steps, and the gradient (at that state's y) and loss of the next step.
#[derive(Debug, Clone, PartialEq)]
pub struct Moment {
    /// Steps taken.
    pub step: u64,
    /// The state, read back from the device (f32 values widened to f64).
    pub state: ReferenceState,
    /// The next step's gradient, one Vec per tensor.
    pub grads: Vec<Vec<f64>>,
    /// The next step's loss (sf_plus only: the other kinds do not read it).
    pub loss: Option<f64>,
    /// How far the f64 reference's step from `state` with `grads` and `loss`
    /// lands from the device's next state: the largest difference of y in a
    /// tensor over the tensor's scale (its largest |y|, or the largest move of
    /// its y or z where that is more).
    /// Small (f32's settings: beta2 = 0.999 is 0.99900001 in f32, so `1 - beta2`
    /// and the Adam kinds' steps differ by about 1e-5) when the state is whole.
    pub deviation: f64,
}

/// Trains a fresh run of `cfg`'s settings and takes a [`Moment`] after each
/// number of steps in `at` (in increasing order; 0: before the first step).
pub fn run_moments(gpu: &Gpu, cfg: &TrainConfig, at: &[u64]) -> Result<Vec<Moment>> {
    if at.is_empty() || at.windows(2).any(|w| w[0] >= w[1]) {
        return Err(Error::invalid(
            "at",
            format!("{at:?}: give one or more step counts in increasing order"),
        ));
    }
    let last = at[at.len() - 1];
    let cfg = TrainConfig {
        steps: last + 1,
        ..cfg.clone()
    };
    moments(gpu, &cfg, &RunOptions::default(), at)
}

/// The [`Moment`] of a run directory's checkpoint (or its
/// `checkpoint.safetensors`): the run resumed for one step, nothing written.
pub fn checkpoint_moment(gpu: &Gpu, input: &Path) -> Result<Moment> {
    let path = checkpoint_path(input);
    // A run resumes from its directory's checkpoint.safetensors: another file
    // in that directory would be passed over for it.
    if path.file_name().is_some_and(|n| n != "checkpoint.safetensors") {
        return Err(Error::invalid(
            path.display().to_string(),
            "not a run directory's checkpoint.safetensors: give the run directory (or move the file to \
             DIR/checkpoint.safetensors)",
        ));
    }
    let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let loaded = checkpoint::load(&path)?;
    let step = loaded.meta.step;
    let mut cfg = settings_of(&loaded, &path)?;
    cfg.steps = step + 1;
    let opts = RunOptions {
        resume: Some(dir),
        ..Default::default()
    };
    let mut found = moments(gpu, &cfg, &opts, &[step])?;
    found
        .pop()
        .ok_or_else(|| Error::invalid(path.display().to_string(), "no moment taken"))
}

/// Steps a trainer of `cfg` with `opts`, taking a moment at each of `at` (at or after its start).
fn moments(gpu: &Gpu, cfg: &TrainConfig, opts: &RunOptions, at: &[u64]) -> Result<Vec<Moment>> {
    let mut trainer = Trainer::new(gpu, cfg, opts, Parallel::default())?;
    let mut found = Vec::new();
    for step in trainer.start..cfg.steps {
        let take = at.contains(&step);
        let before = take.then(|| trainer.device_state()).transpose()?;
        trainer.step(step)?;
        if let Some(before) = before {
            let after = trainer.device_state()?;
            let mut reference = Reference::from_state(&before.state)?;
            reference.step(&after.grads, after.loss)?;
            found.push(Moment {
                step,
                deviation: deviation(&reference, &before.state, &after.state),
                state: before.state,
                grads: after.grads,
                loss: after.loss,
            });
        }
    }
    Ok(found)
}

/// The largest difference of y between `reference` and the device's state
/// `after` a step from `before`, over its tensor's scale: the largest |y| or
/// move of y or z.
fn deviation(reference: &Reference, before: &ReferenceState, after: &ReferenceState) -> f64 {
    let mut worst = 0.0f64;
    for (i, (b, a)) in before.tensors.iter().zip(&after.tensors).enumerate() {
        let moves = |b: &[f64], a: &[f64]| b.iter().zip(a).fold(0.0f64, |m, (b, a)| m.max((a - b).abs()));
        let largest = a.y.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let moved = moves(&b.y, &a.y).max(moves(&b.z, &a.z)).max(largest);
        let diff = reference
            .y(i)
            .iter()
            .zip(&a.y)
            .fold(0.0f64, |m, (r, a)| m.max((r - a).abs()));
        if diff > 0.0 {
            worst = worst.max(diff / moved.max(f64::MIN_POSITIVE));
        }
    }
    worst
}
