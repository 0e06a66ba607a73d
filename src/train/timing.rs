//! Wall time of whole training steps, for `sfnap bench --train` ([`time_steps`]).

use std::time::Instant;

use super::{describe, graph, Source, TrainConfig};
use crate::arena::Arena;
use crate::data::Rng;
use crate::error::Result;
use crate::gpu::Gpu;
use crate::model::Weights;
use crate::optim::GpuOptimizer;
use crate::sched::record_train_step;

/// Seconds taken by each of `trials` runs of `steps` training steps of `cfg`,
/// after `warmup` untimed steps (at least one: it compiles the pipelines), and the
/// seconds of that warm-up.
///
/// A step is the training loop's ([`super::train`]): a batch drawn and written,
/// forward, loss, backward and the optimizer step (NaP when `cfg.nap`) recorded
/// into one submission, without the loop's metrics readback and evaluations.
/// Each run is timed by the wall clock from its first batch to a drained queue,
/// so the host's share (drawing, recording, submitting) counts as in training.
pub fn time_steps(gpu: &Gpu, cfg: &TrainConfig, warmup: usize, steps: usize, trials: usize) -> Result<(f64, Vec<f64>)> {
    cfg.validate()?;
    let model = describe(&cfg.model);
    let source = Source::new(cfg)?;
    crate::model::check_rows(gpu, model, cfg.batch, "batch")?;
    let arena = Arena::new(gpu, &model.tensors(), None)?;
    model.initialize(gpu, &arena, cfg.seed)?;
    let nap = cfg.nap.then(|| model.nap_groups());
    let mut opt = GpuOptimizer::new(gpu, &arena, &cfg.optimizer, nap.as_ref())?;
    let graph = graph(gpu, &cfg.model, Weights::train(&arena), cfg.batch)?;
    let mut rng = Rng::new(cfg.seed.wrapping_add(1));
    let mut step = 0;
    let mut run = |n: usize| -> Result<f64> {
        gpu.wait()?;
        let start = Instant::now();
        for _ in 0..n {
            let (inputs, targets) = source.batch(step, cfg.batch, &mut rng);
            graph.write_batch(gpu, &inputs, &targets)?;
            gpu.submit(|enc| record_train_step(gpu, enc, graph.as_ref(), &mut opt))?;
            opt.submitted();
            step += 1;
        }
        gpu.wait()?;
        Ok(start.elapsed().as_secs_f64())
    };
    let warm = run(warmup.max(1))?;
    let times = (0..trials).map(|_| run(steps)).collect::<Result<Vec<_>>>()?;
    opt.check(gpu)?;
    Ok((warm, times))
}
