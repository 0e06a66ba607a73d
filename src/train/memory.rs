//! The memory plan of a run, made from its sizes alone before anything is
//! allocated: the device's buffers (parameters, gradients, the optimizer's
//! state, the x export, the training and evaluation graphs) and the host's
//! copies (a checkpoint reads every buffer back and serializes it). A run that
//! cannot fit is refused, naming the size setting whose halving saves the most.
//!
//! What fits: every buffer within the adapter's `max_buffer_size`; on an
//! adapter that runs on the CPU (lavapipe, llvmpipe) device and host together,
//! elsewhere the host's copies, within the memory the machine has available
//! (`MemAvailable` of `/proc/meminfo`, or the cgroup's limit if lower). A
//! discrete GPU's own memory is not reported by wgpu: its part is shown, not checked.

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::model::ModelConfig;
use crate::optim::spec::F32_BYTES;
use crate::optim::KindSpec;
use crate::train::TrainConfig;

/// Where a part of a run's memory lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// A buffer of the adapter.
    Device,
    /// The process's own memory.
    Host,
}

/// One part of a run's memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// What it holds.
    pub name: String,
    /// Where.
    pub place: Place,
    /// Its bytes.
    pub bytes: u128,
}

/// What a run's sizes need, part by part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryPlan {
    /// Parameters of the model.
    pub parameters: u128,
    /// Every part, device first.
    pub parts: Vec<Part>,
}

/// How a run uses its rows and outputs, beyond its settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanRows {
    /// Rows of the training graph (a slice of the batch).
    pub train: usize,
    /// Rows of the evaluation graph.
    pub eval: usize,
    /// Several slices in this process: the host sums their gradients.
    pub host_sum: bool,
    /// Checkpoints are written (with an output directory).
    pub checkpoints: bool,
}

/// What the adapter and the machine offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    /// The adapter's largest buffer.
    pub max_buffer: u64,
    /// Whether the adapter runs on the CPU (its buffers are host memory).
    pub cpu: bool,
    /// Bytes of memory the machine has available (`None`: not known).
    pub available: Option<u64>,
}

impl Capacity {
    /// The capacity of `gpu` on this machine.
    pub fn of(gpu: &Gpu) -> Capacity {
        Capacity {
            max_buffer: gpu.limits.max_buffer_size,
            cpu: gpu.info.device_type == wgpu::DeviceType::Cpu,
            available: available_memory(),
        }
    }
}

impl MemoryPlan {
    /// The plan of `cfg` with `rows`, from its sizes alone (nothing is built).
    pub fn new(cfg: &TrainConfig, rows: PlanRows) -> MemoryPlan {
        let model = cfg.model.model();
        let p = model.parameters();
        let state = KindSpec::new(&cfg.optimizer);
        let names: Vec<&str> = state.state.iter().map(|s| s.name()).collect();
        let device = |name: String, bytes| Part {
            name,
            place: Place::Device,
            bytes,
        };
        let mut parts = vec![
            // Parameters and gradients are f32 whatever the state's precision
            // (`KindSpec::kept`, which the bench's memory table reads too).
            device("parameters (y)".into(), F32_BYTES as u128 * p),
            device("gradients".into(), F32_BYTES as u128 * p),
            device(
                format!(
                    "optimizer state ({}{})",
                    names.join(", "),
                    if state.state_value_bytes == 2 { "; bf16" } else { "" }
                ),
                state.kept().state as u128 * p,
            ),
            device("x export".into(), 4 * p),
            device(
                format!("training graph ({} rows)", rows.train),
                model.graph_bytes(rows.train),
            ),
            device(
                format!("evaluation graph ({} rows)", rows.eval),
                model.graph_bytes(rows.eval),
            ),
        ];
        if rows.checkpoints {
            // Every buffer a checkpoint holds, read back one by one through a
            // staging buffer, then serialized into one more copy.
            let copies = 2 + state.state.len() as u128;
            parts.push(device("checkpoint readback staging".into(), 4 * p));
            parts.push(Part {
                name: format!("checkpoint: {copies} buffers read back and their file"),
                place: Place::Host,
                bytes: 2 * copies * 4 * p,
            });
        }
        if rows.host_sum {
            parts.push(Part {
                name: "the slices' gradient sum".into(),
                place: Place::Host,
                bytes: 4 * p,
            });
        }
        MemoryPlan { parameters: p, parts }
    }

    /// Bytes in `place`.
    pub fn total(&self, place: Place) -> u128 {
        self.parts.iter().filter(|p| p.place == place).map(|p| p.bytes).sum()
    }

    /// The bytes checked against the machine's memory: device and host on a
    /// CPU adapter, the host's elsewhere.
    pub fn needed(&self, cpu: bool) -> u128 {
        let host = self.total(Place::Host);
        if cpu {
            host + self.total(Place::Device)
        } else {
            host
        }
    }

    /// The largest single buffer: the arena's (parameters, gradients and each
    /// state buffer have its size).
    pub fn largest_buffer(&self) -> u128 {
        4 * self.parameters
    }

    /// The plan as lines for `sfnap train --dry-run`.
    pub fn describe(&self, cap: &Capacity) -> Vec<String> {
        let mut lines = vec![format!("parameters: {}", self.parameters)];
        for part in &self.parts {
            let place = match part.place {
                Place::Device => "device",
                Place::Host => "host",
            };
            lines.push(format!("{place:>6}  {:>12}  {}", bytes(part.bytes), part.name));
        }
        let (device, host) = (self.total(Place::Device), self.total(Place::Host));
        lines.push(format!(
            "total: {} (device {}, host {})",
            bytes(device + host),
            bytes(device),
            bytes(host)
        ));
        lines.push(format!(
            "largest buffer: {} of the adapter's max_buffer_size {}",
            bytes(self.largest_buffer()),
            bytes(cap.max_buffer as u128)
        ));
        let available = cap.available.map_or("not known".to_string(), |a| bytes(a as u128));
        lines.push(if cap.cpu {
            format!(
                "available: {available} of memory; the adapter runs on the CPU, so device and host need {}",
                bytes(self.needed(true))
            )
        } else {
            format!(
                "available: {available} of host memory for the host's {}; the GPU's own memory is not reported",
                bytes(host)
            )
        });
        lines
    }
}

/// Refuses `cfg` when its plan with `rows` does not fit `cap`, naming the size
/// setting whose halving helps most and what the run would then need.
pub fn check(cfg: &TrainConfig, rows: PlanRows, cap: &Capacity) -> Result<()> {
    let plan = MemoryPlan::new(cfg, rows);
    let buffer = |p: &MemoryPlan| p.largest_buffer();
    if plan.largest_buffer() > cap.max_buffer as u128 {
        let (flag, half) = lower(cfg, rows, &buffer);
        return Err(Error::invalid(
            flag,
            format!(
                "the model's {} parameters need buffers of {}, more than this adapter's max_buffer_size {}: \
                 lower --{flag} (at half of it a buffer holds {})",
                plan.parameters,
                bytes(plan.largest_buffer()),
                bytes(cap.max_buffer as u128),
                bytes(half)
            ),
        ));
    }
    let Some(available) = cap.available else {
        return Ok(());
    };
    let needed = |p: &MemoryPlan| p.needed(cap.cpu);
    if needed(&plan) <= available as u128 {
        return Ok(());
    }
    let (flag, half) = lower(cfg, rows, &needed);
    let what = if cap.cpu {
        "memory (the adapter runs on the CPU: its buffers are host memory)"
    } else {
        "host memory"
    };
    Err(Error::invalid(
        flag,
        format!(
            "the run needs {} of {what}, {} are available: lower --{flag} (at half of it the run needs {}); \
             `sfnap train --dry-run` shows the plan",
            bytes(needed(&plan)),
            bytes(available as u128),
            bytes(half)
        ),
    ))
}

/// The size setting whose halving lowers `measure` the most, and the measure
/// then: among the model's sizes set above the data's default model
/// ([`TrainConfig::default_model`]) and the batch; among every size when none
/// of them is and the batch is one row.
fn lower(cfg: &TrainConfig, rows: PlanRows, measure: &dyn Fn(&MemoryPlan) -> u128) -> (&'static str, u128) {
    let default = TrainConfig::default_model(&cfg.data);
    let mut options: Vec<(&'static str, bool, TrainConfig, PlanRows)> = Vec::new();
    for (flag, above, model) in halved_sizes(&cfg.model, &default) {
        options.push((flag, above, TrainConfig { model, ..cfg.clone() }, rows));
    }
    let batch = PlanRows {
        train: (rows.train / 2).max(1),
        ..rows
    };
    // The batch is a candidate unless it cannot be halved (then every size is).
    let batch_halves = rows.train > 1;
    options.push(("batch", batch_halves, cfg.clone(), batch));
    let any = options.iter().any(|(_, candidate, ..)| *candidate);
    options
        .into_iter()
        .filter(|(_, candidate, ..)| *candidate || !any)
        .map(|(flag, _, c, r)| (flag, measure(&MemoryPlan::new(&c, r))))
        .min_by_key(|&(_, m)| m)
        .expect("at least the batch")
}

/// Each size setting of `model` with `model` at half of it, and whether the
/// setting is above its value in `default`.
fn halved_sizes(model: &ModelConfig, default: &ModelConfig) -> Vec<(&'static str, bool, ModelConfig)> {
    let half = |n: usize| (n / 2).max(1);
    match (model, default) {
        (ModelConfig::Gpt(g), ModelConfig::Gpt(d)) => {
            let at = |f: &dyn Fn(&mut crate::model::gpt::GptConfig)| {
                let mut g = g.clone();
                f(&mut g);
                ModelConfig::Gpt(g)
            };
            vec![
                ("layers", g.layers > d.layers, at(&|g| g.layers = half(g.layers))),
                ("width", g.width > d.width, at(&|g| g.width = half(g.width))),
                ("context", g.context > d.context, at(&|g| g.context = half(g.context))),
            ]
        }
        (ModelConfig::Mlp(m), d) => {
            let above = match d {
                ModelConfig::Mlp(d) => m.hidden.len() > d.hidden.len() || m.hidden.iter().max() > d.hidden.iter().max(),
                ModelConfig::Gpt(_) => false,
            };
            let mut m = m.clone();
            m.hidden.iter_mut().for_each(|w| *w = half(*w));
            vec![("hidden", above, ModelConfig::Mlp(m))]
        }
        (ModelConfig::Gpt(_), ModelConfig::Mlp(_)) => Vec::new(),
    }
}

/// `n` bytes, readably (binary units, one decimal).
fn bytes(n: u128) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// The memory this process may still take: `MemAvailable` of `/proc/meminfo`,
/// or the room left under its cgroup's limit if that is lower; `None` where
/// neither is known.
fn available_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok().and_then(|text| {
        let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    });
    let read = |name: &str| -> Option<u64> {
        std::fs::read_to_string(format!("/sys/fs/cgroup/{name}"))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    let cgroup = read("memory.max").map(|max| max.saturating_sub(read("memory.current").unwrap_or(0)));
    match (meminfo, cgroup) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::gpt::GptConfig;
    use crate::optim::{Kind, OptimConfig};
    use crate::train::DataKind;

    fn gpt(layers: usize) -> TrainConfig {
        TrainConfig {
            model: ModelConfig::Gpt(GptConfig {
                vocab: 65,
                context: 64,
                width: 64,
                heads: 4,
                layers,
            }),
            data: DataKind::Text,
            optimizer: OptimConfig::new(Kind::SfPlus),
            nap: false,
            steps: 1,
            batch: 64,
            eval_every: 1,
            metrics_every: 1,
            seed: 0,
            task_steps: 1,
        }
    }

    const ROWS: PlanRows = PlanRows {
        train: 64,
        eval: 16,
        host_sum: false,
        checkpoints: true,
    };

    /// Parameters, gradients and state in the plan are what `KindSpec::kept` says
    /// for every kind and precision (the bench's memory table reads the same).
    #[test]
    fn the_plan_keeps_what_the_spec_says() {
        for kind in Kind::ALL {
            for state_dtype in crate::optim::bf16::StateDtype::ALL {
                let mut cfg = gpt(2);
                cfg.optimizer = OptimConfig {
                    state_dtype,
                    ..OptimConfig::new(kind)
                };
                let plan = MemoryPlan::new(&cfg, ROWS);
                let kept: u128 = plan
                    .parts
                    .iter()
                    .filter(|p| {
                        ["parameters", "gradients", "optimizer state"]
                            .iter()
                            .any(|n| p.name.starts_with(n))
                    })
                    .map(|p| p.bytes)
                    .sum();
                let spec = KindSpec::new(&cfg.optimizer);
                assert_eq!(
                    kept,
                    spec.kept().total() as u128 * plan.parameters,
                    "{kind} {state_dtype:?}"
                );
            }
        }
    }

    #[test]
    fn the_plan_grows_with_the_layers() {
        let (one, two) = (MemoryPlan::new(&gpt(100), ROWS), MemoryPlan::new(&gpt(200), ROWS));
        assert!(two.total(Place::Device) > one.total(Place::Device) * 19 / 10);
    }

    #[test]
    fn a_run_over_the_memory_names_the_flag_to_lower() {
        let cap = Capacity {
            max_buffer: 1 << 40,
            cpu: true,
            available: Some(8 << 30),
        };
        assert!(check(&gpt(2), ROWS, &cap).is_ok());
        let e = check(&gpt(1000), ROWS, &cap).unwrap_err().to_string();
        assert!(e.starts_with("layers: the run needs"), "{e}");
    }

    #[test]
    fn a_buffer_over_the_adapter_names_the_flag() {
        let cap = Capacity {
            max_buffer: 1 << 16,
            cpu: false,
            available: None,
        };
        let e = check(&gpt(2), ROWS, &cap).unwrap_err().to_string();
        assert!(e.contains("max_buffer_size"), "{e}");
    }
}
