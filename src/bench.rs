//! `sfnap bench`: times the optimizer step against the adapter's own copy bandwidth.
//!
//! The step is memory-bound, so its speed is reported as bytes moved per second
//! ([`crate::optim::KindSpec::bytes_per_param`] times the parameters, per step) next to the bandwidth of
//! `copy_buffer_to_buffer` on buffers of the arena's size, measured in the same
//! run (the copies read the step's own buffers in turn, so that they sweep as
//! much memory as a step and no cache flatters them). Their ratio, the roofline fraction, is comparable across machines; an
//! absolute time is not. Times are GPU-side (timestamp queries around each
//! submission) where the adapter has them, else wall clock around a full drain
//! of the queue. See `BENCHMARKS.md` for the sweeps.

use std::cell::RefCell;
use std::time::Instant;

use serde::Serialize;

use crate::arena::{Arena, TensorSpec, ALIGN, CHUNK};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::nap::{NapConfig, NapGroup};
use crate::optim::config::{Kind, OptimConfig};
use crate::optim::{GpuOptimizer, RING};

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
    /// Bytes moved per parameter and step ([`crate::optim::KindSpec::bytes_per_param`]).
    pub bytes_per_param: u64,
    /// The step's bandwidth: params * bytes_per_param / step time, in GB/s (1e9).
    pub step_gbps: f64,
    /// `copy_buffer_to_buffer` bandwidth on buffers of the arena's size: 2 * bytes / time, GB/s.
    /// The copies read the step's own buffers in turn into two scratch buffers, so
    /// they sweep as much memory as a step does.
    pub copy_gbps: f64,
    /// step_gbps / copy_gbps.
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
            "{}{extra}: {} params in {} tensors ({} segment{}): {:.3} ms/step, {} B/param, {:.2} GB/s; \
             copy {:.2} GB/s; roofline {:.2} [{}, {}, {} steps, {}]",
            self.kind,
            self.params,
            self.tensors,
            self.segments,
            if self.segments == 1 { "" } else { "s" },
            self.step_ms,
            self.bytes_per_param,
            self.step_gbps,
            self.copy_gbps,
            self.roofline,
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

/// Timestamp queries: one (begin, end) pair per submission.
struct Stamps {
    set: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    pairs: u32,
}

impl Stamps {
    fn new(gpu: &Gpu, pairs: u32) -> Stamps {
        let set = gpu.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("bench timestamps"),
            ty: wgpu::QueryType::Timestamp,
            count: 2 * pairs,
        });
        let resolve = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("bench timestamps"),
            size: 16 * pairs as u64,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        Stamps { set, resolve, pairs }
    }

    /// An empty compute pass that writes timestamp `index` (at its start).
    fn write(&self, enc: &mut wgpu::CommandEncoder, index: u32) {
        enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("timestamp"),
            timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                query_set: &self.set,
                beginning_of_pass_write_index: Some(index),
                end_of_pass_write_index: None,
            }),
        });
    }

    /// Seconds between the two stamps of each pair, summed.
    fn seconds(&self, gpu: &Gpu) -> Result<f64> {
        gpu.submit(|enc| enc.resolve_query_set(&self.set, 0..2 * self.pairs, &self.resolve, 0));
        let ticks: Vec<u64> = gpu.read(&self.resolve, 0, 2 * self.pairs as usize)?;
        let ns: f64 = ticks.chunks(2).map(|p| p[1].saturating_sub(p[0]) as f64).sum();
        Ok(ns * gpu.queue.get_timestamp_period() as f64 * 1e-9)
    }
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
    let stamps = gpu.timestamps.then(|| Stamps::new(gpu, batches as u32));
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
        Some(s) => s.seconds(gpu),
        None => Ok(wall),
    }
}

/// Sets up an arena of `opts.params` parameters over `opts.tensors` tensors,
/// warms up, and times `opts.steps` optimizer steps and as many buffer copies
/// (see [`BenchResult::copy_gbps`]), [`TRIALS`] times each.
pub fn run(gpu: &Gpu, opts: &BenchOptions) -> Result<BenchResult> {
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
    let arena = Arena::new(gpu, &specs, opts.max_binding_bytes)?;
    for (i, (name, &len)) in names.iter().zip(&sizes).enumerate() {
        arena.write(gpu, name, &pattern(len, 2 * i as u64 + 1, 0.1))?;
        arena.write_grad(gpu, name, &pattern(len, 2 * i as u64 + 2, 0.01))?;
    }
    let mut cfg = OptimConfig::new(opts.kind);
    cfg.inner_momentum = opts.inner_momentum;
    let nap = opts.nap.then(|| NapConfig {
        groups: names
            .iter()
            .map(|n| NapGroup {
                tensors: vec![n.clone()],
                rho: None,
            })
            .collect(),
    });
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
    let scratch = [
        gpu.storage("bench copy", copy_bytes),
        gpu.storage("bench copy", copy_bytes),
    ];
    let mut copies = 0;
    let mut copy = |enc: &mut wgpu::CommandEncoder| {
        let (src, dst) = (&sources[copies % sources.len()], &scratch[copies % 2]);
        enc.copy_buffer_to_buffer(src, 0, dst, 0, copy_bytes);
        copies += 1;
        Ok(())
    };
    let opt = RefCell::new(opt);
    let mut record = |enc: &mut wgpu::CommandEncoder| opt.borrow_mut().record_step(gpu, enc);
    let mut submitted = || opt.borrow_mut().submitted();
    let warmup = (steps / 4).clamp(2, RING);
    time(gpu, warmup, &mut record, &mut submitted)?;
    time(gpu, warmup, &mut copy, &mut || {})?;
    // A trial during which other processes took more than a tick plus 5% of one
    // core is repeated (at most MAX_DISTURBED times in all).
    let (mut step_times, mut copy_times, mut disturbed) = (Vec::new(), Vec::new(), 0);
    while step_times.len() < TRIALS {
        let (before, start) = (others_ticks(), Instant::now());
        let step_s = time(gpu, steps, &mut record, &mut submitted)?;
        let copy_s = time(gpu, steps, &mut copy, &mut || {})?;
        let allowed = 1 + (start.elapsed().as_secs_f64() * 5.0) as i64;
        let quiet = match (before, others_ticks()) {
            (Some(a), Some(b)) => b - a <= allowed,
            _ => true,
        };
        if quiet || disturbed == MAX_DISTURBED {
            step_times.push(step_s);
            copy_times.push(copy_s);
        } else {
            disturbed += 1;
        }
    }
    let (step_s, copy_s) = (fastest(&step_times), fastest(&copy_times));
    let opt = opt.into_inner();
    opt.check(gpu)?;

    let step_gbps = step_bytes * steps as f64 / step_s / 1e9;
    let copy_gbps = 2.0 * copy_bytes as f64 * steps as f64 / copy_s / 1e9;
    Ok(BenchResult {
        kind: opts.kind.name().to_string(),
        params: opts.params,
        tensors: opts.tensors,
        steps,
        adapter: gpu.info.name.clone(),
        backend: format!("{:?}", gpu.info.backend),
        device_type: format!("{:?}", gpu.info.device_type),
        step_ms: step_s / steps as f64 * 1e3,
        bytes_per_param: bpp,
        step_gbps,
        copy_gbps,
        roofline: step_gbps / copy_gbps,
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
        for (kind, nap) in [(Kind::SfPlus, true), (Kind::AdamwSf, false)] {
            let o = BenchOptions {
                nap,
                max_binding_bytes: Some((2 * CHUNK * 4) as u64),
                ..opts(kind, 3 * CHUNK + 5, 3)
            };
            let r = run(&gpu, &o).unwrap();
            assert_eq!((r.steps, r.params, r.tensors), (2, 3 * CHUNK + 5, 3));
            assert_eq!(
                r.bytes_per_param,
                KindSpec::new(&OptimConfig::new(kind)).bytes_per_param(nap)
            );
            assert!(r.segments >= 2, "{}", r.segments);
            assert!(r.step_ms > 0.0 && r.copy_gbps > 0.0 && r.roofline > 0.0, "{}", r.line());
        }
    }
}
