//! `sfnap bench`: times the optimizer step against the adapter's own copy bandwidth,
//! or whole training steps of `sfnap train`'s models ([`run_train`]).
//!
//! The step is memory-bound, so its speed is reported as bytes moved per second
//! ([`crate::optim::KindSpec::bytes_per_param`] times the parameters, per step; with
//! `--state-dtype bf16` the state's values count 2 bytes, see
//! [`crate::optim::KindSpec::moved`]) next to two
//! copy bandwidths on buffers of the arena's size, measured in the same run:
//! `copy_buffer_to_buffer`, and a WGSL kernel that copies vec4s (`shaders/bench.wgsl`;
//! on a CPU driver such as lavapipe the first may be one thread's memcpy while a
//! kernel runs on every core). The copies read the step's own buffers in turn, so
//! that they sweep as much memory as a step and no cache flatters them. The step's
//! bandwidth over the faster of the two, the roofline fraction, is comparable across
//! machines; an absolute time is not. Times are GPU-side (timestamp queries around
//! each submission) where the adapter has them, else wall clock around a full drain
//! of the queue. See `BENCHMARKS.md` for the sweeps. [`run_matmul`] times the linear
//! layer's matrix product; [`run_foreign`] the step on a caller's buffers against
//! the step on the arena.

mod foreign;
mod matmul;
mod memory_table;
mod timing;

pub use foreign::{run_foreign, ForeignBenchResult, FOREIGN_COPY_BYTES};
pub use matmul::{run_matmul, MatmulBenchResult};
pub use memory_table::{largest_model, memory_rows, memory_table, MemoryRow, CAPACITIES_GIB};

use std::cell::RefCell;
use std::time::Instant;

use serde::Serialize;

use crate::arena::{Arena, Segment, TensorSpec, ALIGN};
use crate::error::{Error, Result};
use crate::gpu::buffers::range;
use crate::gpu::stamps::Stamps;
use crate::gpu::{Dispatch, Gpu, CHUNK};
use crate::model::Model;
use crate::model::{ModelConfig, ModelKind};
use crate::nap::{NapConfig, NapGroup};
use crate::optim::bf16::StateDtype;
use crate::optim::config::{Kind, OptimConfig};
use crate::optim::plan::{bf16_ranges, elem_workgroups};
use crate::optim::ParamBytes;
use crate::optim::{GpuOptimizer, RING};
use crate::stats::median;
use crate::train::{DataKind, TrainConfig};
pub use timing::{profile_step, time_steps, KernelTime, StepProfile};

/// What to time.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchOptions {
    /// The optimizer.
    pub kind: Kind,
    /// Inner momentum of `adamw_sf` (0: none).
    pub inner_momentum: f64,
    /// Parameters in all (at least 1).
    pub params: usize,
    /// Tensors the parameters are split over, of ragged sizes (1 ..= params).
    pub tensors: usize,
    /// Every tensor in its own NaP group.
    pub nap: bool,
    /// Timed steps per trial; `None` picks enough to move about 1 GB (8 to 1000).
    pub steps: Option<usize>,
    /// A storage binding limit below the device's, to force more segments.
    pub max_binding_bytes: Option<u64>,
    /// How the state buffers are stored: f32, or bf16 (stochastic rounding).
    pub state_dtype: StateDtype,
}

impl BenchOptions {
    /// Checks the options; the error names the command-line flag at fault.
    pub fn validate(&self) -> Result<()> {
        if self.params == 0 {
            return Err(Error::invalid("--params", "must be at least 1"));
        }
        if self.tensors == 0 || self.tensors > self.params {
            return Err(Error::invalid(
                "--tensors",
                format!("must lie in [1, --params = {}], got {}", self.params, self.tensors),
            ));
        }
        if let Some(steps) = self.steps.filter(|s| !(1..=MAX_STEPS).contains(s)) {
            return Err(Error::invalid(
                "--steps",
                format!("must lie in [1, {MAX_STEPS}], got {steps}"),
            ));
        }
        if let Some(bytes) = self.max_binding_bytes.filter(|&b| b < (CHUNK * 4) as u64) {
            return Err(Error::invalid(
                "--max-binding",
                format!(
                    "{bytes} bytes: a binding must hold at least one chunk ({} bytes)",
                    CHUNK * 4
                ),
            ));
        }
        if !(0.0..1.0).contains(&self.inner_momentum) {
            return Err(Error::invalid(
                "--inner-momentum",
                format!("must lie in [0, 1), got {}", self.inner_momentum),
            ));
        }
        if self.inner_momentum > 0.0 && self.kind != Kind::AdamwSf {
            return Err(Error::invalid("--inner-momentum", "only adamw_sf has inner momentum"));
        }
        Ok(())
    }
}

/// Timed steps per trial at most (the timestamp queries of one trial must fit one query set).
pub const MAX_STEPS: usize = 100_000;

/// One benchmark result: the `--json` object of `sfnap bench`.
#[derive(Debug, Clone, Serialize)]
pub struct BenchResult {
    /// Optimizer kind.
    pub kind: String,
    /// Parameters.
    pub params: usize,
    /// Tensors.
    pub tensors: usize,
    /// Timed steps per trial (the fastest of [`TRIALS`] trials is reported).
    pub steps: usize,
    /// Adapter name.
    pub adapter: String,
    /// wgpu backend.
    pub backend: String,
    /// Adapter type: DiscreteGpu, IntegratedGpu, VirtualGpu, Cpu or Other.
    pub device_type: String,
    /// Milliseconds per step.
    pub step_ms: f64,
    /// "f32" or "bf16": how the state buffers are stored.
    pub state_dtype: String,
    /// Bytes moved (read and written) per parameter and step, both precisions
    /// ([`crate::optim::KindSpec::bytes_per_param`]).
    pub bytes_per_param: u64,
    /// Those bytes split by precision: f32 values (parameters, gradients) and state values.
    pub moved: ParamBytes,
    /// Bytes resident per parameter, split likewise: parameters and gradients, and the state.
    pub kept: ParamBytes,
    /// The step's bandwidth: params * bytes_per_param / step time, in GB/s (1e9).
    pub step_gbps: f64,
    /// `copy_buffer_to_buffer` bandwidth: 2 * bytes copied / time, GB/s. The copies
    /// read the step's own buffers in turn (bf16 state buffers at their bf16 size,
    /// and only the bytes copied are counted) into two scratch buffers, so they
    /// sweep as much memory as a step does, in the same precisions.
    pub copy_gbps: f64,
    /// The same copies by the WGSL kernel `copy_vec4` (`shaders/bench.wgsl`, one
    /// dispatch per arena segment, over the ranges the step binds: a bf16 buffer's
    /// from `bf16_ranges` (src/optim/plan.rs)): 2 * bytes / time, GB/s.
    pub kernel_copy_gbps: f64,
    /// The faster of copy_gbps and kernel_copy_gbps: the roofline's reference, GB/s.
    pub reference_gbps: f64,
    /// Which copy is the reference: "copy_buffer_to_buffer" or "kernel_copy".
    pub reference: String,
    /// step_gbps / reference_gbps: the step against the faster copy.
    pub roofline: f64,
    /// Optimizer state beyond parameters and gradients, bytes per parameter.
    pub state_bytes_per_param: u64,
    /// Whether NaP's norms and projection ran after every step.
    pub nap: bool,
    /// Inner momentum (adamw_sf).
    pub inner_momentum: f64,
    /// Arena segments (storage bindings) per role.
    pub segments: usize,
    /// "gpu timestamps" or "wall clock".
    pub timing: String,
    /// Driver and its version.
    pub driver: String,
    /// Trials repeated because other processes used the CPU meanwhile.
    pub disturbed_trials: usize,
}

impl BenchResult {
    /// One readable line.
    pub fn line(&self) -> String {
        let extra = match (self.nap, self.inner_momentum > 0.0) {
            (true, _) => " +nap",
            (false, true) => " +momentum",
            _ => "",
        };
        format!(
            "{}{extra} ({} state): {} params in {} tensors ({} segment{}): {:.3} ms/step, {} B/param moved ({} f32 + {} state), {} kept ({} + {}), {:.2} GB/s; \
             copy {:.2} GB/s, kernel copy {:.2} GB/s; roofline {:.2} (against {}) [{}, {}, {} steps, {}]",
            self.kind,
            self.state_dtype,
            self.params,
            self.tensors,
            self.segments,
            if self.segments == 1 { "" } else { "s" },
            self.step_ms,
            self.bytes_per_param,
            self.moved.f32,
            self.moved.state,
            self.kept.total(),
            self.kept.f32,
            self.kept.state,
            self.step_gbps,
            self.copy_gbps,
            self.kernel_copy_gbps,
            self.roofline,
            self.reference,
            self.adapter,
            self.backend,
            self.steps,
            self.timing
        )
    }
}

/// Sizes of `tensors` tensors summing to `params`, ragged (between about 0.5 and
/// 1.5 times the mean) and deterministic; each at least 1.
pub fn ragged_sizes(params: usize, tensors: usize) -> Result<Vec<usize>> {
    if tensors == 0 || tensors > params {
        return Err(Error::invalid(
            "--tensors",
            format!("must lie in [1, --params = {params}], got {tensors}"),
        ));
    }
    // Weights 0.5 ..= 1.5 from a fixed low-discrepancy sequence.
    let weights: Vec<f64> = (0..tensors).map(|i| 0.5 + (i as f64 * 0.618_034).fract()).collect();
    let total: f64 = weights.iter().sum();
    let spare = params - tensors;
    let mut sizes: Vec<usize> = weights
        .iter()
        .map(|w| 1 + (spare as f64 * w / total) as usize)
        .collect();
    let short = params - sizes.iter().sum::<usize>();
    for s in sizes.iter_mut().take(short) {
        *s += 1;
    }
    Ok(sizes)
}

/// Rounds of timed steps and copies; the fastest of each is reported (on a
/// shared machine the minimum is the estimate least disturbed by other load).
pub const TRIALS: usize = 5;

/// Trials repeated at most because other processes took CPU time during them.
pub const MAX_DISTURBED: usize = 20;

fn fastest(xs: &[f64]) -> f64 {
    xs.iter().copied().fold(f64::INFINITY, f64::min)
}

/// CPU time, in clock ticks (1/100 s), that other processes have used since
/// boot: all busy time (steal included) less this process's own. Linux only
/// (`None` elsewhere): a CPU adapter such as lavapipe shares the cores with them.
fn others_ticks() -> Option<i64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<i64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .take(8)
        .flat_map(str::parse)
        .collect();
    let [user, nice, system, _idle, _iowait, irq, softirq, steal] = fields[..] else {
        return None;
    };
    let me = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after_name: Vec<&str> = me[me.rfind(')')? + 1..].split_whitespace().collect();
    let own: i64 = after_name.get(11..13)?.iter().flat_map(|x| x.parse::<i64>()).sum();
    Some(user + nice + system + irq + softirq + steal - own)
}

/// Deterministic values in `[-scale, scale]` (a small xorshift generator).
fn pattern(len: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            scale * ((x >> 40) as f32 / (1u64 << 23) as f32 - 1.0)
        })
        .collect()
}

/// Runs `reps` repetitions of `record` (each records one unit of work),
/// [`RING`] to a submission, calling `submitted` after each submit, and returns
/// the seconds they took: GPU-side when the adapter has timestamps, else wall
/// clock from the first submit to a full drain.
fn time(
    gpu: &Gpu,
    reps: usize,
    record: &mut dyn FnMut(&mut wgpu::CommandEncoder) -> Result<()>,
    submitted: &mut dyn FnMut(),
) -> Result<f64> {
    let batches = reps.div_ceil(RING);
    let stamps = gpu.timestamps.then(|| Stamps::new(gpu, 2 * batches as u32));
    gpu.wait()?;
    let start = Instant::now();
    for b in 0..batches {
        gpu.submit(|enc| {
            if let Some(s) = &stamps {
                s.write(enc, 2 * b as u32);
            }
            for _ in b * RING..reps.min((b + 1) * RING) {
                record(enc)?;
            }
            if let Some(s) = &stamps {
                s.write(enc, 2 * b as u32 + 1);
            }
            Ok::<(), Error>(())
        })?;
        submitted();
    }
    gpu.wait()?;
    let wall = start.elapsed().as_secs_f64();
    match &stamps {
        // The seconds between the two stamps of each submission, summed.
        Some(s) => Ok(s.read_ns(gpu)?.chunks(2).map(|p| (p[1] - p[0]).max(0.0)).sum::<f64>() * 1e-9),
        None => Ok(wall),
    }
}

/// Each segment's range (offset, size) in an f32 buffer of the arena's layout.
pub fn f32_ranges(segments: &[Segment]) -> Vec<(u64, u64)> {
    segments
        .iter()
        .map(|s| (4 * s.start as u64, 4 * s.len as u64))
        .collect()
}

/// The WGSL copy kernel (`shaders/bench.wgsl`, `copy_vec4`) from `src` into `dst`,
/// one call per range (offset, size): the ranges the step binds, [`f32_ranges`] or
/// `bf16_ranges` (src/optim/plan.rs); each over the grid of the optimizer's element passes.
pub fn copy_kernel(gpu: &Gpu, src: &wgpu::Buffer, dst: &wgpu::Buffer, ranges: &[(u64, u64)]) -> Result<Dispatch> {
    gpu.dispatch_each(
        "bench",
        "copy_vec4",
        ranges.iter().map(|&(offset, bytes)| {
            let groups = elem_workgroups((bytes / 16) as usize).max(1);
            (
                vec![(0, range(src, offset, bytes)), (1, range(dst, offset, bytes))],
                [groups, 1, 1],
            )
        }),
    )
}

/// Bytes the copy kernel moves over `ranges`, read and written: whole vec4s of each range.
fn kernel_copy_bytes(ranges: &[(u64, u64)]) -> u64 {
    2 * ranges.iter().map(|&(_, bytes)| bytes / 16 * 16).sum::<u64>()
}

/// The roofline's reference: the faster copy, as (GB/s, [`BenchResult::reference`]).
/// A tie goes to `copy_buffer_to_buffer`.
pub fn reference(copy_gbps: f64, kernel_copy_gbps: f64) -> (f64, &'static str) {
    if kernel_copy_gbps > copy_gbps {
        (kernel_copy_gbps, "kernel_copy")
    } else {
        (copy_gbps, "copy_buffer_to_buffer")
    }
}

/// The tensors and optimizer a step benchmark runs: `opts.params` parameters
/// over `opts.tensors` ragged tensors named `t0`, `t1`, ...
struct Problem {
    names: Vec<String>,
    sizes: Vec<usize>,
    specs: Vec<TensorSpec>,
    cfg: OptimConfig,
    /// Every tensor its own group, with `opts.nap`.
    nap: Option<NapConfig>,
}

impl Problem {
    /// Checks `opts` and that the tensors fit one buffer of `gpu`.
    fn new(gpu: &Gpu, opts: &BenchOptions) -> Result<Problem> {
        opts.validate()?;
        let sizes = ragged_sizes(opts.params, opts.tensors)?;
        let names: Vec<String> = (0..sizes.len()).map(|i| format!("t{i}")).collect();
        let specs: Vec<TensorSpec> = names
            .iter()
            .zip(&sizes)
            .map(|(n, &s)| TensorSpec::new(n, &[s]))
            .collect();
        let bytes = 4 * (opts.params + ALIGN * opts.tensors) as u64;
        if bytes > gpu.limits.max_buffer_size {
            return Err(Error::invalid(
                "--params",
                format!(
                    "{} parameters need up to {bytes} bytes per buffer, more than this adapter's max_buffer_size {}",
                    opts.params, gpu.limits.max_buffer_size
                ),
            ));
        }
        let mut cfg = OptimConfig::new(opts.kind);
        cfg.inner_momentum = opts.inner_momentum;
        cfg.state_dtype = opts.state_dtype;
        let nap = opts.nap.then(|| NapConfig {
            groups: names
                .iter()
                .map(|n| NapGroup {
                    tensors: vec![n.clone()],
                    rho: None,
                })
                .collect(),
        });
        Ok(Problem {
            names,
            sizes,
            specs,
            cfg,
            nap,
        })
    }
}

/// Sets up an arena of `opts.params` parameters over `opts.tensors` tensors,
/// warms up, and times `opts.steps` optimizer steps and as many buffer copies, by
/// `copy_buffer_to_buffer` and by the copy kernel (see [`BenchResult::copy_gbps`],
/// [`BenchResult::kernel_copy_gbps`]), [`TRIALS`] times each.
pub fn run(gpu: &Gpu, opts: &BenchOptions) -> Result<BenchResult> {
    let Problem {
        names,
        sizes,
        specs,
        cfg,
        nap,
    } = Problem::new(gpu, opts)?;
    let arena = Arena::new(gpu, &specs, opts.max_binding_bytes)?;
    for (i, (name, &len)) in names.iter().zip(&sizes).enumerate() {
        arena.write(gpu, name, &pattern(len, 2 * i as u64 + 1, 0.1))?;
        arena.write_grad(gpu, name, &pattern(len, 2 * i as u64 + 2, 0.01))?;
    }
    let opt = GpuOptimizer::new(gpu, &arena, &cfg, nap.as_ref())?;
    if opts.kind == Kind::SfPlus {
        opt.write_loss(gpu, 1.0)?;
    }

    let bpp = opt.spec().bytes_per_param(opts.nap);
    let step_bytes = (opts.params as u64 * bpp) as f64;
    let steps = opts
        .steps
        .unwrap_or((1e9 / step_bytes).ceil().clamp(8.0, 1000.0) as usize);

    // Warm-up (pages touched, every pipeline run once), then TRIALS rounds of
    // timed steps and timed copies, interleaved so both see the same machine.
    // Each copy reads the next of the step's own buffers into one of two scratch
    // buffers: the copies sweep as much memory as a step, so no cache holds them.
    let copy_bytes = arena.layout.bytes();
    let sources: Vec<wgpu::Buffer> = [&arena.params, &arena.grads]
        .into_iter()
        .chain(opt.state_buffers().into_iter().map(|(_, b)| b))
        .cloned()
        .collect();
    // Each source's ranges, as the step binds them: a bf16 state buffer is half
    // the size of an f32 one and its segments bind from 256-byte boundaries.
    let (f32_segs, state_segs) = (
        f32_ranges(&arena.layout.segments),
        match opts.state_dtype {
            StateDtype::F32 => f32_ranges(&arena.layout.segments),
            StateDtype::Bf16 => bf16_ranges(gpu, &arena.layout.segments),
        },
    );
    let ranges: Vec<&[(u64, u64)]> = (0..sources.len())
        .map(|i| if i < 2 { &f32_segs[..] } else { &state_segs[..] })
        .collect();
    // Bytes each copy of source i moves (read and written), by either copy.
    let buffer_bytes: Vec<u64> = sources.iter().map(|b| 2 * b.size().min(copy_bytes)).collect();
    let kernel_bytes: Vec<u64> = ranges.iter().map(|r| kernel_copy_bytes(r)).collect();
    let (copied, kernel_copied) = (std::cell::Cell::new(0u64), std::cell::Cell::new(0u64));
    let scratch = [
        gpu.storage("bench copy", copy_bytes),
        gpu.storage("bench copy", copy_bytes),
    ];
    let mut copies = 0;
    let mut copy = |enc: &mut wgpu::CommandEncoder| {
        let (i, dst) = (copies % sources.len(), &scratch[copies % 2]);
        enc.copy_buffer_to_buffer(&sources[i], 0, dst, 0, buffer_bytes[i] / 2);
        copied.set(copied.get() + buffer_bytes[i]);
        copies += 1;
        Ok(())
    };
    // The kernel copies the same sources into the same scratch buffers, in the
    // same order, segment by segment.
    let kernels = sources
        .iter()
        .zip(&ranges)
        .map(|(src, r)| {
            scratch
                .iter()
                .map(|dst| copy_kernel(gpu, src, dst, r))
                .collect::<Result<Vec<_>>>()
        })
        .collect::<Result<Vec<_>>>()?;
    let mut kernel_copies = 0;
    let mut kernel_copy = |enc: &mut wgpu::CommandEncoder| {
        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("bench kernel copy"),
            timestamp_writes: None,
        });
        let i = kernel_copies % sources.len();
        kernels[i][kernel_copies % 2].record(&mut pass);
        kernel_copied.set(kernel_copied.get() + kernel_bytes[i]);
        kernel_copies += 1;
        Ok(())
    };
    let opt = RefCell::new(opt);
    let mut record = |enc: &mut wgpu::CommandEncoder| opt.borrow_mut().record_step(gpu, enc);
    let mut submitted = || opt.borrow_mut().submitted();
    let warmup = (steps / 4).clamp(2, RING);
    time(gpu, warmup, &mut record, &mut submitted)?;
    time(gpu, warmup, &mut copy, &mut || {})?;
    time(gpu, warmup, &mut kernel_copy, &mut || {})?;
    // A trial during which other processes took more than a tick plus 5% of one
    // core is repeated (at most MAX_DISTURBED times in all).
    // Copy times are kept as seconds per byte moved (which sources a trial copies
    // depends on where the rotation stands).
    let (mut step_times, mut copy_times, mut kernel_times, mut disturbed) = (Vec::new(), Vec::new(), Vec::new(), 0);
    while step_times.len() < TRIALS {
        let (before, start) = (others_ticks(), Instant::now());
        let step_s = time(gpu, steps, &mut record, &mut submitted)?;
        copied.set(0);
        let copy_s = time(gpu, steps, &mut copy, &mut || {})? / copied.get() as f64;
        kernel_copied.set(0);
        let kernel_s = time(gpu, steps, &mut kernel_copy, &mut || {})? / kernel_copied.get() as f64;
        let allowed = 1 + (start.elapsed().as_secs_f64() * 5.0) as i64;
        let quiet = match (before, others_ticks()) {
            (Some(a), Some(b)) => b - a <= allowed,
            _ => true,
        };
        if quiet || disturbed == MAX_DISTURBED {
            step_times.push(step_s);
            copy_times.push(copy_s);
            kernel_times.push(kernel_s);
        } else {
            disturbed += 1;
        }
    }
    let (step_s, copy_s, kernel_s) = (fastest(&step_times), fastest(&copy_times), fastest(&kernel_times));
    let opt = opt.into_inner();
    opt.check(gpu)?;

    let step_gbps = step_bytes * steps as f64 / step_s / 1e9;
    let (copy_gbps, kernel_copy_gbps) = (1.0 / copy_s / 1e9, 1.0 / kernel_s / 1e9);
    let (reference_gbps, reference_name) = reference(copy_gbps, kernel_copy_gbps);
    Ok(BenchResult {
        kind: opts.kind.name().to_string(),
        params: opts.params,
        tensors: opts.tensors,
        steps,
        adapter: gpu.info.name.clone(),
        backend: format!("{:?}", gpu.info.backend),
        device_type: format!("{:?}", gpu.info.device_type),
        step_ms: step_s / steps as f64 * 1e3,
        state_dtype: opts.state_dtype.name().into(),
        bytes_per_param: bpp,
        moved: opt.spec().moved(opts.nap),
        kept: opt.spec().kept(),
        step_gbps,
        copy_gbps,
        kernel_copy_gbps,
        reference_gbps,
        reference: reference_name.to_string(),
        roofline: step_gbps / reference_gbps,
        state_bytes_per_param: opt.state_bytes_per_param(),
        nap: opts.nap,
        inner_momentum: opts.inner_momentum,
        segments: arena.layout.segments.len(),
        timing: if gpu.timestamps { "gpu timestamps" } else { "wall clock" }.into(),
        driver: format!("{} {}", gpu.info.driver, gpu.info.driver_info)
            .trim()
            .to_string(),
        disturbed_trials: disturbed,
    })
}

/// What `sfnap bench --train` times: whole training steps of one of `sfnap train`'s models.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainBenchOptions {
    /// The gpt (`sfnap train --model gpt --data text`) or the mlp (`--model mlp --data digits`).
    pub model: ModelKind,
    /// The optimizer.
    pub kind: Kind,
    /// Sequences (gpt) or examples (mlp) per batch; `None`: [`train_batch`].
    pub batch: Option<usize>,
    /// Timed steps per trial; `None` picks enough for about half a second (5 to 1000).
    pub steps: Option<usize>,
    /// Also time every dispatch of a step on its own ([`profile_step`]).
    pub profile: bool,
}

/// The default batch of `sfnap bench --train MODEL`: 8 sequences for the gpt (as
/// BENCHMARKS.md's training figures), 64 examples for the mlp (`sfnap train`'s default).
pub fn train_batch(model: ModelKind) -> usize {
    match model {
        ModelKind::Gpt => 8,
        ModelKind::Mlp => 64,
    }
}

impl TrainBenchOptions {
    /// The training settings timed: the data's default model, this optimizer with
    /// its defaults, no NaP; the error names the command-line flag at fault.
    pub fn config(&self) -> Result<TrainConfig> {
        let data = match self.model {
            ModelKind::Gpt => DataKind::Text,
            ModelKind::Mlp => DataKind::Digits,
        };
        let batch = self.batch.unwrap_or_else(|| train_batch(self.model));
        if batch == 0 {
            return Err(Error::invalid("--batch", "must be at least 1"));
        }
        if let Some(steps) = self.steps.filter(|s| !(1..=1000).contains(s)) {
            return Err(Error::invalid("--steps", format!("must lie in [1, 1000], got {steps}")));
        }
        Ok(TrainConfig {
            model: TrainConfig::default_model(&data),
            data,
            optimizer: OptimConfig::new(self.kind),
            nap: false,
            steps: u64::MAX,
            batch,
            eval_every: u64::MAX,
            metrics_every: u64::MAX,
            seed: 0,
            task_steps: 500,
        })
    }
}

/// One training benchmark: the `--json` object of `sfnap bench --train`.
#[derive(Debug, Clone, Serialize)]
pub struct TrainBenchResult {
    /// "gpt" or "mlp".
    pub model: String,
    /// Optimizer kind.
    pub kind: String,
    /// Sequences (gpt) or examples (mlp) per batch.
    pub batch: usize,
    /// Tokens per sequence (gpt); `None` for the mlp.
    pub context: Option<usize>,
    /// The model's parameters.
    pub params: usize,
    /// Timed steps per trial.
    pub steps: usize,
    /// Trials ([`TRIALS`]).
    pub trials: usize,
    /// Milliseconds per training step, the median trial's.
    pub step_ms: f64,
    /// Milliseconds per training step, the fastest trial's.
    pub step_ms_best: f64,
    /// Examples (sequences for the gpt) per second at the median.
    pub examples_per_s: f64,
    /// Tokens per second at the median (gpt); `None` for the mlp.
    pub tokens_per_s: Option<f64>,
    /// Adapter name.
    pub adapter: String,
    /// wgpu backend.
    pub backend: String,
    /// Adapter type: DiscreteGpu, IntegratedGpu, VirtualGpu, Cpu or Other.
    pub device_type: String,
    /// Driver and its version.
    pub driver: String,
    /// Always "wall clock": host work of a step counts, as in training.
    pub timing: String,
    /// With `--profile`: where a step's GPU time goes.
    pub profile: Option<StepProfile>,
}

impl TrainBenchResult {
    /// One readable line.
    pub fn line(&self) -> String {
        let tokens = self
            .tokens_per_s
            .map_or(String::new(), |t| format!(", {t:.0} tokens/s"));
        let line = format!(
            "train {} ({} params, batch {}, {}): {:.3} ms/step (median; best {:.3}), {:.1} examples/s{tokens} [{}, {}, {} x {} steps]",
            self.model,
            self.params,
            self.batch,
            self.kind,
            self.step_ms,
            self.step_ms_best,
            self.examples_per_s,
            self.adapter,
            self.backend,
            self.trials,
            self.steps,
        );
        match &self.profile {
            Some(p) => format!("{line}\n{}", profile_table(p)),
            None => line,
        }
    }
}

/// A step's profile as a text table: one line per label, then the totals.
fn profile_table(p: &StepProfile) -> String {
    let lines = &p.lines;
    let total: f64 = lines.iter().map(|l| l.ms).sum();
    let calls: usize = lines.iter().map(|l| l.calls).sum();
    let mut out = format!(
        "{:>9} {:>6} {:>6} {:>10}  dispatch\n",
        "ms/step", "share", "calls", "workgroups"
    );
    for l in lines {
        out += &format!(
            "{:>9.3} {:>5.1}% {:>6} {:>10}  {}\n",
            l.ms,
            100.0 * l.ms / total,
            l.calls,
            l.workgroups,
            l.label
        );
    }
    out += &format!(
        "{total:>9.3} {:>6} {calls:>6} {:>10}  in all, each dispatch in a pass of its own\n",
        "", ""
    );
    out += &format!(
        "{:>9.3}  the whole step on the GPU, recorded as training records it",
        p.step_ms
    );
    out
}

/// Times whole training steps ([`time_steps`]): 5 warm-up steps, then
/// [`TRIALS`] trials of `opts.steps` steps (default: about half a second's worth).
pub fn run_train(gpu: &Gpu, opts: &TrainBenchOptions) -> Result<TrainBenchResult> {
    let cfg = opts.config()?;
    const WARMUP: usize = 5;
    let steps = match opts.steps {
        Some(s) => s,
        None => {
            // WARMUP steps after the warm-up (which compiles the pipelines) set the pace.
            let (_, probe) = time_steps(gpu, &cfg, WARMUP, WARMUP, 1)?;
            (0.5 / (probe[0] / WARMUP as f64).max(1e-6)).ceil().clamp(5.0, 1000.0) as usize
        }
    };
    let (_, times) = time_steps(gpu, &cfg, WARMUP, steps, TRIALS)?;
    let per_step: Vec<f64> = times.iter().map(|t| t / steps as f64).collect();
    let (step_s, best_s) = (median(&per_step), fastest(&per_step));
    let (model, context): (&dyn Model, Option<usize>) = match &cfg.model {
        ModelConfig::Gpt(g) => (g, Some(g.context)),
        ModelConfig::Mlp(m) => (m, None),
    };
    let params = model.tensors().iter().map(|t| t.shape.iter().product::<usize>()).sum();
    Ok(TrainBenchResult {
        model: opts.model.name().into(),
        kind: opts.kind.name().to_string(),
        batch: cfg.batch,
        context,
        params,
        steps,
        trials: TRIALS,
        step_ms: step_s * 1e3,
        step_ms_best: best_s * 1e3,
        examples_per_s: cfg.batch as f64 / step_s,
        tokens_per_s: context.map(|t| (cfg.batch * t) as f64 / step_s),
        adapter: gpu.info.name.clone(),
        backend: format!("{:?}", gpu.info.backend),
        device_type: format!("{:?}", gpu.info.device_type),
        driver: format!("{} {}", gpu.info.driver, gpu.info.driver_info)
            .trim()
            .to_string(),
        timing: "wall clock".into(),
        profile: opts
            .profile
            .then(|| profile_step(gpu, &cfg, WARMUP, TRIALS))
            .transpose()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::KindSpec;

    fn opts(kind: Kind, params: usize, tensors: usize) -> BenchOptions {
        BenchOptions {
            kind,
            inner_momentum: 0.0,
            params,
            tensors,
            nap: false,
            steps: Some(2),
            max_binding_bytes: None,
            state_dtype: StateDtype::F32,
        }
    }

    #[test]
    fn ragged_sizes_sum_to_the_parameters() {
        for (params, tensors) in [(1, 1), (10, 10), (1000, 7), (16 << 20, 4096), (4097, 4096)] {
            let sizes = ragged_sizes(params, tensors).unwrap();
            assert_eq!(sizes.len(), tensors);
            assert_eq!(sizes.iter().sum::<usize>(), params);
            assert!(sizes.iter().all(|&s| s >= 1));
        }
        let sizes = ragged_sizes(1 << 20, 16).unwrap();
        assert!(
            sizes.iter().max().unwrap() > &(sizes.iter().min().unwrap() * 3 / 2),
            "{sizes:?}"
        );
    }

    #[test]
    fn bad_options_name_their_flag() {
        let cases = [
            (opts(Kind::AdamwSf, 0, 1), "--params"),
            (opts(Kind::AdamwSf, 5, 6), "--tensors"),
            (opts(Kind::AdamwSf, 5, 0), "--tensors"),
            (
                BenchOptions {
                    steps: Some(0),
                    ..opts(Kind::AdamwSf, 5, 1)
                },
                "--steps",
            ),
            (
                BenchOptions {
                    inner_momentum: 0.5,
                    ..opts(Kind::SgdSf, 5, 1)
                },
                "--inner-momentum",
            ),
            (
                BenchOptions {
                    inner_momentum: 1.0,
                    ..opts(Kind::AdamwSf, 5, 1)
                },
                "--inner-momentum",
            ),
            (
                BenchOptions {
                    max_binding_bytes: Some(100),
                    ..opts(Kind::AdamwSf, 5, 1)
                },
                "--max-binding",
            ),
        ];
        for (o, flag) in cases {
            let e = o.validate().unwrap_err().to_string();
            assert!(e.starts_with(flag), "{e}");
        }
        assert!(ragged_sizes(3, 4).is_err());
    }

    /// Runs (no timing asserted) on the test adapter: every field filled, the
    /// device found no error, segments as forced.
    #[test]
    fn a_tiny_bench_runs_on_the_device() {
        let gpu = Gpu::from_env().expect("a GPU adapter (make setup installs lavapipe)");
        for (kind, nap, state_dtype) in [
            (Kind::SfPlus, true, StateDtype::F32),
            (Kind::AdamwSf, false, StateDtype::Bf16),
            (Kind::SfPlus, true, StateDtype::Bf16),
        ] {
            let o = BenchOptions {
                nap,
                state_dtype,
                max_binding_bytes: Some((2 * CHUNK * 4) as u64),
                ..opts(kind, 3 * CHUNK + 5, 3)
            };
            let r = run(&gpu, &o).unwrap();
            assert_eq!((r.steps, r.params, r.tensors), (2, 3 * CHUNK + 5, 3));
            let spec = KindSpec::new(&OptimConfig {
                state_dtype,
                ..OptimConfig::new(kind)
            });
            assert_eq!(r.bytes_per_param, spec.bytes_per_param(nap));
            assert_eq!((r.moved, r.kept), (spec.moved(nap), spec.kept()));
            assert_eq!(r.state_dtype, state_dtype.name());
            assert!(r.segments >= 2, "{}", r.segments);
            assert!(r.step_ms > 0.0 && r.copy_gbps > 0.0 && r.roofline > 0.0, "{}", r.line());
            assert!(r.kernel_copy_gbps > 0.0, "{}", r.line());
            assert_eq!(
                (r.reference_gbps, r.reference.as_str()),
                reference(r.copy_gbps, r.kernel_copy_gbps)
            );
            assert_eq!(r.roofline, r.step_gbps / r.reference_gbps);
        }
    }

    #[test]
    fn the_reference_is_the_faster_copy() {
        assert_eq!(reference(20.0, 35.0), (35.0, "kernel_copy"));
        assert_eq!(reference(300.0, 250.0), (300.0, "copy_buffer_to_buffer"));
        assert_eq!(reference(7.0, 7.0), (7.0, "copy_buffer_to_buffer"));
    }

    /// The copy kernel copies every element of every segment, and nothing past them.
    #[test]
    fn the_copy_kernel_copies_every_segment() {
        let gpu = Gpu::from_env().expect("a GPU adapter (make setup installs lavapipe)");
        let specs = [
            TensorSpec::new("a", &[3 * CHUNK + 5]),
            TensorSpec::new("b", &[CHUNK + 1]),
        ];
        let arena = Arena::new(&gpu, &specs, Some((2 * CHUNK * 4) as u64)).unwrap();
        assert!(arena.layout.segments.len() >= 2);
        let n = arena.layout.total;
        let values = pattern(n, 7, 1.0);
        let src = gpu.storage_init("src", &values);
        let dst = gpu.storage_init("dst", &vec![-9.0f32; n + 64]);
        let copy = copy_kernel(&gpu, &src, &dst, &f32_ranges(&arena.layout.segments)).unwrap();
        gpu.run(&[&copy]);
        let out: Vec<f32> = gpu.read(&dst, 0, n + 64).unwrap();
        assert_eq!(&out[..n], &values[..]);
        assert!(out[n..].iter().all(|&x| x == -9.0));
        // A bf16 state buffer (half the size) over the ranges the step binds: every word.
        let words = pattern(n / 2, 9, 1.0);
        let src = gpu.storage_init("src", &words);
        let dst = gpu.storage_init("dst", &vec![-9.0f32; n / 2]);
        let copy = copy_kernel(&gpu, &src, &dst, &bf16_ranges(&gpu, &arena.layout.segments)).unwrap();
        gpu.run(&[&copy]);
        assert_eq!(gpu.read::<f32>(&dst, 0, n / 2).unwrap(), words);
    }

    #[test]
    fn bad_train_options_name_their_flag() {
        let t = |model, batch, steps| TrainBenchOptions {
            model,
            kind: Kind::Adamw,
            batch,
            steps,
            profile: false,
        };
        for (o, flag) in [
            (t(ModelKind::Gpt, Some(0), None), "--batch"),
            (t(ModelKind::Mlp, None, Some(0)), "--steps"),
            (t(ModelKind::Mlp, None, Some(1001)), "--steps"),
        ] {
            let e = o.config().unwrap_err().to_string();
            assert!(e.starts_with(flag), "{e}");
        }
        assert_eq!(t(ModelKind::Gpt, None, None).config().unwrap().batch, 8);
        assert_eq!(t(ModelKind::Mlp, None, None).config().unwrap().batch, 64);
    }

    /// The matmul bench times the linear layer's product and names its kernel; a
    /// size out of range names the flag.
    #[test]
    fn a_tiny_matmul_bench_runs_on_the_device() {
        let gpu = Gpu::from_env().expect("a GPU adapter (make setup installs lavapipe)");
        let r = run_matmul(&gpu, 24).unwrap();
        assert!(r.gflops > 0.0 && r.ms > 0.0 && r.reps >= 1, "{}", r.line());
        assert!(
            r.kernel.starts_with("linear") && r.kernel.contains("[24x24] [24x24]"),
            "{}",
            r.kernel
        );
        for n in [0, matmul::MAX_N + 1] {
            assert!(run_matmul(&gpu, n).unwrap_err().to_string().starts_with("--matmul"));
        }
    }

    /// Both models time on the test adapter: the shapes of `sfnap train`'s defaults.
    #[test]
    fn a_tiny_train_bench_runs_on_the_device() {
        let gpu = Gpu::from_env().expect("a GPU adapter (make setup installs lavapipe)");
        for (model, kind) in [(ModelKind::Gpt, Kind::Adamw), (ModelKind::Mlp, Kind::SfPlus)] {
            let o = TrainBenchOptions {
                model,
                kind,
                batch: Some(2),
                steps: Some(1),
                profile: gpu.timestamps,
            };
            let r = run_train(&gpu, &o).unwrap();
            if let Some(StepProfile { lines: p, step_ms }) = &r.profile {
                assert!(*step_ms > 0.0, "{}", r.line());
                // Every dispatch is counted once, under its label, and the optimizer step once.
                let mut graph_dispatches = Vec::new();
                let cfg = o.config().unwrap();
                let arena = Arena::new(&gpu, &cfg.model.model().tensors(), None).unwrap();
                let g = cfg.model.graph(&gpu, crate::model::Weights::train(&arena), 2).unwrap();
                g.record_forward(&mut graph_dispatches);
                g.record_backward(&mut graph_dispatches);
                assert_eq!(p.iter().map(|l| l.calls).sum::<usize>(), graph_dispatches.len() + 1);
                assert!(p.iter().any(|l| l.label == "optimizer step"));
                assert!(
                    p.iter()
                        .any(|l| l.label.starts_with("linear") && l.label.contains(".matmul")),
                    "{}",
                    r.line()
                );
                assert!(
                    p.windows(2).all(|w| w[0].ms >= w[1].ms && w[1].ms >= 0.0),
                    "{}",
                    r.line()
                );
            }
            assert_eq!((r.batch, r.steps, r.trials), (2, 1, TRIALS));
            assert!(r.step_ms > 0.0 && r.step_ms_best <= r.step_ms, "{}", r.line());
            match model {
                ModelKind::Gpt => {
                    assert_eq!(r.context, Some(64));
                    let tokens = r.tokens_per_s.unwrap();
                    assert!((tokens / r.examples_per_s - 64.0).abs() < 1e-9, "{}", r.line());
                }
                _ => {
                    // 64-256-256-10: two Linear without bias, two LayerNorms, the head with its bias.
                    assert_eq!(r.params, 64 * 256 + 256 * 256 + 4 * 256 + 256 * 10 + 10);
                    assert_eq!(r.tokens_per_s, None);
                }
            }
        }
    }
}
