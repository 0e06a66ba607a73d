//! `sfnap bench --foreign`: the step on parameters in the caller's buffers
//! ([`crate::foreign::ForeignOptimizer`]) against the same step on sfnap's own
//! arena, interleaved step by step in one process.

use std::time::Instant;

use serde::Serialize;

use crate::arena::Arena;
use crate::error::{Error, Result};
use crate::foreign::{BufferRange, ForeignOptimizer, ForeignTensor};
use crate::gpu::stamps::Stamps;
use crate::gpu::Gpu;
use crate::optim::config::Kind;
use crate::optim::GpuOptimizer;
use crate::stats::median;

use super::{pattern, BenchOptions, Problem};

/// Timed rounds when `--steps` is not given: each one arena step and one foreign step.
pub const ROUNDS: usize = 64;

/// Untimed rounds first (pages touched, pipelines compiled).
const WARMUP: usize = 2;

/// Bytes the copies add per parameter and step: the gradient copied in and the
/// parameters copied out, each read and written once.
pub const FOREIGN_COPY_BYTES: u64 = 16;

/// One `--foreign` result: the `--json` object of `sfnap bench --foreign`.
#[derive(Debug, Clone, Serialize)]
pub struct ForeignBenchResult {
    /// Optimizer kind.
    pub kind: String,
    /// Parameters.
    pub params: usize,
    /// Tensors.
    pub tensors: usize,
    /// Whether NaP ran after every step (every tensor its own group).
    pub nap: bool,
    /// "f32" or "bf16": how the state buffers are stored.
    pub state_dtype: String,
    /// Timed rounds: one arena step and one foreign step each, back to back.
    pub rounds: usize,
    /// Adapter name.
    pub adapter: String,
    /// wgpu backend.
    pub backend: String,
    /// Milliseconds of an arena step (the median over the rounds).
    pub arena_ms: f64,
    /// Milliseconds of a foreign step, copies included (the median over the rounds).
    pub foreign_ms: f64,
    /// The foreign step's time over the arena step's in the same round: the median over the rounds.
    pub ratio: f64,
    /// The first quartile of the rounds' ratios.
    pub ratio_q1: f64,
    /// The third quartile of the rounds' ratios.
    pub ratio_q3: f64,
    /// Bytes the step moves per parameter ([`crate::optim::KindSpec::bytes_per_param`]).
    pub bytes_per_param: u64,
    /// Bytes the copies add per parameter ([`FOREIGN_COPY_BYTES`]).
    pub copy_bytes_per_param: u64,
    /// Host microseconds to record one arena step (the median over the rounds).
    pub arena_record_us: f64,
    /// Host microseconds to record one foreign step, the checks of every range
    /// included (the median over the rounds).
    pub foreign_record_us: f64,
    /// "gpu timestamps" or "wall clock".
    pub timing: String,
}

impl ForeignBenchResult {
    /// One readable line.
    pub fn line(&self) -> String {
        format!(
            "{}{} ({} state): {} params in {} tensors: arena {:.3} ms/step, foreign {:.3} ms/step; foreign / arena {:.2}x \
             (quartiles {:.2}-{:.2}; {} B/param step + {} B/param copies); recording {:.0} us vs {:.0} us [{}, {}, {} rounds, {}]",
            self.kind,
            if self.nap { " +nap" } else { "" },
            self.state_dtype,
            self.params,
            self.tensors,
            self.arena_ms,
            self.foreign_ms,
            self.ratio,
            self.ratio_q1,
            self.ratio_q3,
            self.bytes_per_param,
            self.copy_bytes_per_param,
            self.arena_record_us,
            self.foreign_record_us,
            self.adapter,
            self.backend,
            self.rounds,
            self.timing
        )
    }
}

/// Times `opts`'s step on an arena and on caller buffers holding the same
/// tensors packed end to end from byte 4 (offsets a multiple of 4, not of 16),
/// parameters in one buffer and gradients in another, as a framework's memory
/// pool might hold them. Each round submits one arena step and one foreign step
/// back to back (alternating which goes first), each alone on an idle queue, and
/// times each by timestamps around it (where the adapter has none: by the wall
/// clock to a drained queue). Other processes' load is not screened out: on a
/// shared machine it moves the two steps of a round alike, so the ratio is taken
/// round by round.
pub fn run_foreign(gpu: &Gpu, opts: &BenchOptions) -> Result<ForeignBenchResult> {
    if opts.max_binding_bytes.is_some() {
        return Err(Error::invalid("--max-binding", "does not apply to --foreign"));
    }
    let problem = Problem::new(gpu, opts)?;
    let arena = Arena::new(gpu, &problem.specs, None)?;
    let mut offsets = Vec::with_capacity(problem.sizes.len());
    let mut end = 4u64;
    for &len in &problem.sizes {
        offsets.push(end);
        end += 4 * len as u64;
    }
    let caller = |label| {
        gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: end,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    };
    let (params, grads) = (caller("caller params"), caller("caller grads"));
    for (i, (name, &len)) in problem.names.iter().zip(&problem.sizes).enumerate() {
        let (p, g) = (
            pattern(len, 2 * i as u64 + 1, 0.1),
            pattern(len, 2 * i as u64 + 2, 0.01),
        );
        arena.write(gpu, name, &p)?;
        arena.write_grad(gpu, name, &g)?;
        gpu.queue.write_buffer(&params, offsets[i], bytemuck::cast_slice(&p));
        gpu.queue.write_buffer(&grads, offsets[i], bytemuck::cast_slice(&g));
    }
    let ranges = |b| -> Vec<BufferRange<'_>> {
        offsets
            .iter()
            .zip(&problem.sizes)
            .map(|(&o, &n)| BufferRange::new(b, o, n))
            .collect()
    };
    let tensors: Vec<ForeignTensor<'_>> = ranges(&params)
        .into_iter()
        .zip(ranges(&grads))
        .map(|(param, grad)| ForeignTensor { param, grad })
        .collect();
    let mut native = GpuOptimizer::new(gpu, &arena, &problem.cfg, problem.nap.as_ref())?;
    let mut foreign = ForeignOptimizer::new(
        gpu,
        &problem.specs,
        &ranges(&params),
        &problem.cfg,
        problem.nap.as_ref(),
    )?;
    if opts.kind == Kind::SfPlus {
        native.write_loss(gpu, 1.0)?;
        foreign.optimizer().write_loss(gpu, 1.0)?;
    }
    let bpp = native.spec().bytes_per_param(opts.nap);
    let rounds = opts.steps.unwrap_or(ROUNDS);

    // Timestamps 4 r + 2 k and 4 r + 2 k + 1 bracket the k-th step of round r.
    let stamps = gpu.timestamps.then(|| Stamps::new(gpu, 4 * (WARMUP + rounds) as u32));
    // Per round, [arena, foreign]: wall seconds to a drained queue, recording seconds.
    let mut wall = Vec::with_capacity(rounds);
    let mut recording = Vec::with_capacity(rounds);
    for round in 0..WARMUP + rounds {
        let (mut seconds, mut rec) = ([0.0; 2], [0.0; 2]);
        for (k, which) in [(0, round % 2), (1, 1 - round % 2)] {
            let stamp = (4 * round + 2 * k) as u32;
            gpu.wait()?;
            let start = Instant::now();
            gpu.submit(|enc| {
                if let Some(s) = &stamps {
                    s.write(enc, stamp);
                }
                let t = Instant::now();
                let r = match which {
                    0 => native.record_step(gpu, enc),
                    _ => foreign.record_step(gpu, enc, &tensors),
                };
                rec[which] = t.elapsed().as_secs_f64();
                if let Some(s) = &stamps {
                    s.write(enc, stamp + 1);
                }
                r
            })?;
            native.submitted();
            foreign.submitted();
            gpu.wait()?;
            seconds[which] = start.elapsed().as_secs_f64();
        }
        if round >= WARMUP {
            wall.push(seconds);
            recording.push(rec);
        }
    }
    native.check(gpu)?;
    foreign.optimizer().check(gpu)?;
    // Seconds of each step per round, [arena, foreign]: from the timestamps where there are.
    let times: Vec<[f64; 2]> = match &stamps {
        Some(s) => {
            let ns = s.read_ns(gpu)?;
            let step = |i: usize| (ns[i + 1] - ns[i]).max(0.0) * 1e-9;
            (WARMUP..WARMUP + rounds)
                .map(|round| {
                    let (first, second) = (step(4 * round), step(4 * round + 2));
                    if round % 2 == 0 {
                        [first, second]
                    } else {
                        [second, first]
                    }
                })
                .collect()
        }
        None => wall,
    };
    let mut ratios: Vec<f64> = times.iter().map(|t| t[1] / t[0]).collect();
    ratios.sort_by(f64::total_cmp);
    let column = |v: &[[f64; 2]], k: usize| median(&v.iter().map(|t| t[k]).collect::<Vec<_>>());
    Ok(ForeignBenchResult {
        kind: opts.kind.name().to_string(),
        params: opts.params,
        tensors: opts.tensors,
        nap: opts.nap,
        state_dtype: opts.state_dtype.name().into(),
        rounds,
        adapter: gpu.info.name.clone(),
        backend: format!("{:?}", gpu.info.backend),
        arena_ms: column(&times, 0) * 1e3,
        foreign_ms: column(&times, 1) * 1e3,
        ratio: median(&ratios),
        ratio_q1: ratios[rounds / 4],
        ratio_q3: ratios[3 * rounds / 4],
        bytes_per_param: bpp,
        copy_bytes_per_param: FOREIGN_COPY_BYTES,
        arena_record_us: column(&recording, 0) * 1e6,
        foreign_record_us: column(&recording, 1) * 1e6,
        timing: if gpu.timestamps { "gpu timestamps" } else { "wall clock" }.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::CHUNK;
    use crate::optim::bf16::StateDtype;

    /// Runs (no timing asserted) on the test adapter, every field filled;
    /// `--max-binding` is refused by name.
    #[test]
    fn a_tiny_foreign_bench_runs_on_the_device() {
        let gpu = Gpu::from_env().expect("a GPU adapter (make setup installs lavapipe)");
        let mut o = BenchOptions {
            kind: Kind::SfPlus,
            inner_momentum: 0.0,
            params: 3 * CHUNK + 5,
            tensors: 3,
            nap: true,
            steps: Some(2),
            max_binding_bytes: None,
            state_dtype: StateDtype::F32,
        };
        let r = run_foreign(&gpu, &o).unwrap();
        assert_eq!((r.rounds, r.params, r.tensors, r.nap), (2, 3 * CHUNK + 5, 3, true));
        assert!(r.arena_ms > 0.0 && r.foreign_ms > 0.0, "{}", r.line());
        assert!(r.ratio_q1 <= r.ratio && r.ratio <= r.ratio_q3, "{}", r.line());
        assert_eq!(r.copy_bytes_per_param, FOREIGN_COPY_BYTES);
        o.max_binding_bytes = Some(1 << 20);
        let e = run_foreign(&gpu, &o).unwrap_err().to_string();
        assert!(e.starts_with("--max-binding"), "{e}");
    }
}
