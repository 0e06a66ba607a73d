//! The optimizer step on the GPU: one fused dispatch per arena segment for all
//! tensors, plus sf_plus's device-side scalars and NaP's norms and projection.
//!
//! A step never reads back to the host: host-computable scalars are uploaded
//! through a small ring of slots, device-dependent ones (sf_plus) are computed by
//! a one-thread kernel. Errors the device finds (sf_plus's zero gradient or NaN
//! loss) are kept in its state buffer and surface at the next [`GpuOptimizer::check`].

use crate::arena::Arena;
use crate::error::{Error, Result};
use crate::gpu::buffers::{range, whole};
use crate::gpu::kernels::Kernels;
use crate::gpu::Gpu;
use crate::nap::{chunk_rows, GroupReport, GroupRow, NapConfig, NapPlan, NO_GROUP};
use crate::optim::config::{Kind, OptimConfig};
use crate::optim::scalars::{HostScalars, StepScalars};

/// Steps that may be recorded between two submissions (slots of the scalar ring).
pub const RING: usize = 64;
const SLOT: u64 = 256;
/// Workgroups of an element pass at most (each loops over the rest).
pub const MAX_WORKGROUPS: u32 = 4096;
/// vec4s each invocation of an element pass handles while MAX_WORKGROUPS allows:
/// `ELEM_RUN` of the element kernels (shaders/sf_step.wgsl), so that a workgroup
/// sweeps one tile of 256 * 8 vec4s (BENCHMARKS.md, "levers").
const VEC4_PER_INVOCATION: usize = 8;

/// WGSL `Seg`.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct SegInfo {
    n_vec4: u32,
    wd_end: u32,
    chunk_base: u32,
    pad0: u32,
}

/// sf_plus's device state, as WGSL `PlusState`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct PlusState {
    /// e_hat of the previous step.
    pub e_prev: f32,
    /// Largest gamma so far.
    pub lr_max: f32,
    /// Sum of the averaging weights.
    pub w_sum: f32,
    /// Its Kahan compensation (true sum = w_sum - w_comp).
    pub w_comp: f32,
    /// sum |g| of the last step.
    pub l1: f32,
    /// sum g . (z - x) of the last step.
    pub dot: f32,
    /// The last Polyak step size.
    pub alpha: f32,
    /// 0 ok, 1 zero gradient, 2 non-finite loss, 3 non-finite step.
    pub error: u32,
    /// Step at which the error appeared.
    pub error_step: u32,
    /// Steps taken on the device.
    pub steps: u32,
    /// 1.0: keeps shader compilers from folding the Kahan compensation away.
    pub one: f32,
    /// Padding.
    pub pad: u32,
}

impl PlusState {
    /// The state before the first step.
    pub fn initial(cfg: &OptimConfig) -> Self {
        PlusState {
            lr_max: cfg.eps as f32,
            one: 1.0,
            ..Default::default()
        }
    }
}

/// Whether the parameter buffer holds y (train) or x (eval).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Parameters hold y, where gradients are taken.
    Train,
    /// Parameters hold x, the weights to evaluate and ship.
    Eval,
}

/// One pipeline with one bind group per segment (or a single one), and the
/// workgroup count of each dispatch.
struct Pass {
    pipeline: wgpu::ComputePipeline,
    dispatches: Vec<(wgpu::BindGroup, u32)>,
}

impl Pass {
    fn record(&self, pass: &mut wgpu::ComputePass<'_>) {
        pass.set_pipeline(&self.pipeline);
        for (bg, n) in &self.dispatches {
            if *n > 0 {
                pass.set_bind_group(0, bg, &[]);
                pass.dispatch_workgroups(*n, 1, 1);
            }
        }
    }
}

struct NapPasses {
    plan: NapPlan,
    groups_buf: wgpu::Buffer,
    norms_buf: wgpu::Buffer,
    norms: Pass,
    group: Pass,
    project: Pass,
}

/// An optimizer over an [`Arena`]: its state buffers and prepared dispatches.
pub struct GpuOptimizer {
    cfg: OptimConfig,
    host: HostScalars,
    mode: Mode,
    pending: usize,
    slot: usize,
    step_buf: wgpu::Buffer,
    ring: wgpu::Buffer,
    /// z (the base sequence), for the Schedule-Free kinds.
    pub z: Option<wgpu::Buffer>,
    /// Second moment, for the Adam kinds.
    pub v: Option<wgpu::Buffer>,
    /// First moment (adamw, sf_plus, adamw_sf with inner momentum).
    pub m: Option<wgpu::Buffer>,
    /// Explicit x (sf_plus).
    pub x: Option<wgpu::Buffer>,
    loss: Option<wgpu::Buffer>,
    plus_state: Option<wgpu::Buffer>,
    plus: Vec<Pass>,
    step: Pass,
    to_eval: Option<Pass>,
    to_train: Option<Pass>,
    nap: Option<NapPasses>,
    seg_bufs: Vec<wgpu::Buffer>,
    state_bytes: u64,
}

/// Writes the evaluation weights x into a buffer of the arena's layout, leaving
/// the parameters as they are (see [`GpuOptimizer::x_export`]).
pub struct XExport {
    pass: Option<Pass>,
    copy_from: Option<wgpu::Buffer>,
    dst: wgpu::Buffer,
    bytes: u64,
}

impl XExport {
    /// Records the export into `enc`.
    pub fn record(&self, enc: &mut wgpu::CommandEncoder) {
        match (&self.pass, &self.copy_from) {
            (Some(p), _) => p.record(&mut enc.begin_compute_pass(&Default::default())),
            (None, Some(src)) => enc.copy_buffer_to_buffer(src, 0, &self.dst, 0, self.bytes),
            (None, None) => {}
        }
    }
}

fn elem_workgroups(n_vec4: usize) -> u32 {
    (n_vec4.div_ceil(256 * VEC4_PER_INVOCATION) as u32).min(MAX_WORKGROUPS)
}

impl GpuOptimizer {
    /// Prepares `cfg` over `arena`, whose parameters must already hold their
    /// initial values (z and x start there; NaP's rho is measured there).
    pub fn new(gpu: &Gpu, arena: &Arena, cfg: &OptimConfig, nap: Option<&NapConfig>) -> Result<GpuOptimizer> {
        cfg.validate()?;
        let mut k = Kernels::default();
        let layout = &arena.layout;
        let bytes = layout.bytes();
        let kind = cfg.kind;
        let host = HostScalars::new(cfg);

        let state = |label: &str, init_from_params: bool| {
            let b = gpu.storage(label, bytes);
            if init_from_params {
                let mut enc = gpu.device.create_command_encoder(&Default::default());
                enc.copy_buffer_to_buffer(&arena.params, 0, &b, 0, bytes);
                gpu.queue.submit([enc.finish()]);
            }
            b
        };
        let z = kind.is_schedule_free().then(|| state("z", true));
        let v = (kind != Kind::SgdSf).then(|| state("v", false));
        let m = (matches!(kind, Kind::Adamw | Kind::SfPlus) || (kind == Kind::AdamwSf && cfg.inner_momentum > 0.0))
            .then(|| state("m", false));
        let x = (kind == Kind::SfPlus).then(|| state("x", true));
        let state_bytes = 4 * [&z, &v, &m, &x].iter().filter(|b| b.is_some()).count() as u64;

        let step_buf = gpu.storage_init("step", &[host.last()]);
        let ring = gpu.storage("step ring", SLOT * RING as u64);

        // Segment and chunk tables (chunks: the unit of every reduction).
        let segs = &layout.segments;
        let seg_bufs: Vec<wgpu::Buffer> = segs
            .iter()
            .map(|s| {
                let info = SegInfo {
                    n_vec4: (s.len / 4) as u32,
                    wd_end: ((layout.wd_end.clamp(s.start, s.start + s.len) - s.start) / 4) as u32,
                    chunk_base: s.first_chunk as u32,
                    pad0: 0,
                };
                gpu.uniform("segment", &info)
            })
            .collect();
        let nap_plan = nap.map(|n| NapPlan::new(layout, n)).transpose()?;
        let group_of_tensor = nap_plan
            .as_ref()
            .map_or_else(|| vec![NO_GROUP; layout.slots.len()], |p| p.group_of_tensor.clone());
        let chunks = gpu.storage_init("chunks", &chunk_rows(layout, &group_of_tensor));
        let n_chunks = layout.chunks.len();
        let partials = gpu.storage("partials", 8 * n_chunks as u64);

        let loss = (kind == Kind::SfPlus).then(|| gpu.storage("loss", 16));
        let plus_state = (kind == Kind::SfPlus).then(|| gpu.storage_init("sf_plus state", &[PlusState::initial(cfg)]));

        // Binding resources of segment i (see kernels::ENTRIES for the numbering).
        let seg_resources = |i: usize| {
            let (o, n) = (segs[i].start as u64 * 4, segs[i].len as u64 * 4);
            let mut r = vec![
                (0, whole(&step_buf)),
                (1, whole(&seg_bufs[i])),
                (2, range(&arena.params, o, n)),
                (3, range(&arena.grads, o, n)),
                (8, whole(&partials)),
                (9, whole(&chunks)),
            ];
            for (b, buf) in [(4, &z), (5, &v), (6, &m), (7, &x)] {
                if let Some(buf) = buf {
                    r.push((b, range(buf, o, n)));
                }
            }
            r
        };
        let per_segment =
            |k: &mut Kernels, file: &'static str, entry: &'static str, count: &dyn Fn(usize) -> u32| Pass {
                pipeline: k.get(&gpu.device, file, entry),
                dispatches: (0..segs.len())
                    .map(|i| (k.bind(gpu, file, entry, &seg_resources(i)), count(i)))
                    .collect(),
            };
        let n_vec4 = |i: usize| segs[i].len / 4;

        let step = match kind {
            Kind::SgdSf => per_segment(&mut k, "sf_step", "sgd_sf_step", &|i| elem_workgroups(n_vec4(i))),
            Kind::AdamwSf if cfg.inner_momentum > 0.0 => {
                per_segment(&mut k, "sf_step", "adam_sf_momentum_step", &|i| {
                    elem_workgroups(n_vec4(i))
                })
            }
            Kind::AdamwSf | Kind::AdamwSfPaper | Kind::RadamSf => {
                per_segment(&mut k, "sf_step", "adam_sf_step", &|i| elem_workgroups(n_vec4(i)))
            }
            Kind::SfPlus => per_segment(&mut k, "sf_plus", "plus_step", &|i| elem_workgroups(n_vec4(i))),
            Kind::Adamw => per_segment(&mut k, "adamw", "adamw_step", &|i| elem_workgroups(n_vec4(i))),
        };

        let mut plus = Vec::new();
        if let (Some(loss), Some(st)) = (&loss, &plus_state) {
            plus.push(per_segment(&mut k, "sf_plus", "plus_sums", &|i| {
                segs[i].n_chunks as u32
            }));
            let all_partials = range(&partials, 0, 8 * n_chunks as u64);
            for (entry, res) in [
                ("plus_reduce", vec![(8, all_partials), (11, whole(st))]),
                (
                    "plus_scalars",
                    vec![(0, whole(&step_buf)), (11, whole(st)), (12, whole(loss))],
                ),
            ] {
                plus.push(Pass {
                    pipeline: k.get(&gpu.device, "polyak", entry),
                    dispatches: vec![(k.bind(gpu, "polyak", entry, &res), 1)],
                });
            }
        }

        let (to_eval, to_train) = if kind.is_schedule_free() {
            let train = Some(per_segment(&mut k, "mode", "to_train", &|i| elem_workgroups(n_vec4(i))));
            let eval =
                (kind != Kind::SfPlus).then(|| per_segment(&mut k, "mode", "to_eval", &|i| elem_workgroups(n_vec4(i))));
            (eval, train)
        } else {
            (None, None)
        };

        let nap = match nap_plan {
            None => None,
            Some(plan) => {
                let chunk_ids = gpu.storage_init("nap chunk ids", &plan.chunk_ids);
                let norms_buf = gpu.storage("nap norms", 8 * plan.groups.len() as u64);
                let groups_buf = gpu.storage("nap groups", 16 * plan.groups.len() as u64);
                let resources = |i: usize| {
                    let mut r = seg_resources(i);
                    r.extend([
                        (10, whole(&groups_buf)),
                        (13, whole(&norms_buf)),
                        (17, whole(&chunk_ids)),
                    ]);
                    r
                };
                let chunked = |k: &mut Kernels, entry: &'static str| Pass {
                    pipeline: k.get(&gpu.device, "nap", entry),
                    dispatches: (0..segs.len())
                        .map(|i| (k.bind(gpu, "nap", entry, &resources(i)), segs[i].n_chunks as u32))
                        .collect(),
                };
                let suffix = match kind {
                    Kind::Adamw => "w",
                    Kind::SfPlus => "plus",
                    _ => "sf",
                };
                let (norms_entry, project_entry): (&'static str, &'static str) = match suffix {
                    "w" => ("norms_w", "project_w"),
                    "plus" => ("norms_plus", "project_plus"),
                    _ => ("norms_sf", "project_sf"),
                };
                let group = Pass {
                    pipeline: k.get(&gpu.device, "nap", "group_norms"),
                    dispatches: vec![(
                        k.bind(gpu, "nap", "group_norms", &resources(0)),
                        plan.groups.len() as u32,
                    )],
                };
                // rho: given, or the group's norm now, measured on the device (0 marks "measure").
                let rows: Vec<GroupRow> = plan
                    .ranges
                    .iter()
                    .zip(&plan.rho)
                    .map(|(&(start, end), rho)| GroupRow {
                        start,
                        end,
                        rho: rho.unwrap_or(0.0) as f32,
                        pad0: 0,
                    })
                    .collect();
                gpu.queue.write_buffer(&groups_buf, 0, bytemuck::cast_slice(&rows));
                let measure = chunked(&mut k, "norms_w");
                let init_rho = Pass {
                    pipeline: k.get(&gpu.device, "nap", "init_rho"),
                    dispatches: vec![(
                        k.bind(gpu, "nap", "init_rho", &resources(0)),
                        plan.groups.len().div_ceil(64) as u32,
                    )],
                };
                let mut enc = gpu.device.create_command_encoder(&Default::default());
                {
                    let mut pass = enc.begin_compute_pass(&Default::default());
                    measure.record(&mut pass);
                    group.record(&mut pass);
                    init_rho.record(&mut pass);
                }
                gpu.queue.submit([enc.finish()]);
                Some(NapPasses {
                    norms: chunked(&mut k, norms_entry),
                    project: chunked(&mut k, project_entry),
                    group,
                    plan,
                    groups_buf,
                    norms_buf,
                })
            }
        };

        Ok(GpuOptimizer {
            cfg: cfg.clone(),
            host,
            mode: Mode::Train,
            pending: 0,
            slot: 0,
            step_buf,
            ring,
            z,
            v,
            m,
            x,
            loss,
            plus_state,
            plus,
            step,
            to_eval,
            to_train,
            nap,
            seg_bufs,
            state_bytes,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &OptimConfig {
        &self.cfg
    }

    /// The host's scalar recurrences (step counter, lr_max, W_sum), for checkpoints.
    pub fn host_scalars(&self) -> &HostScalars {
        &self.host
    }

    /// The state buffers with the arena's layout: (name, buffer) for z, v, m and x, where the kind keeps them.
    pub fn state_buffers(&self) -> Vec<(&'static str, &wgpu::Buffer)> {
        [("z", &self.z), ("v", &self.v), ("m", &self.m), ("x", &self.x)]
            .into_iter()
            .filter_map(|(n, b)| b.as_ref().map(|b| (n, b)))
            .collect()
    }

    /// The small device buffers a checkpoint keeps: the step scalars and sf_plus's state.
    pub fn scalar_buffers(&self) -> Vec<(&'static str, &wgpu::Buffer)> {
        let mut v = vec![("step", &self.step_buf)];
        if let Some(st) = &self.plus_state {
            v.push(("plus_state", st));
        }
        v
    }

    /// Continues from a checkpoint's host scalars (the state buffers are written separately).
    pub fn restore_host_scalars(&mut self, host: HostScalars) -> Result<()> {
        if host.config() != &self.cfg {
            return Err(Error::invalid(
                "checkpoint",
                "its optimizer configuration differs from this run's",
            ));
        }
        self.host = host;
        Ok(())
    }

    /// Steps taken (recorded) so far.
    pub fn steps(&self) -> u64 {
        self.host.steps()
    }

    /// Train or eval.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Optimizer state in bytes per parameter, beyond parameters and gradients.
    pub fn state_bytes_per_param(&self) -> u64 {
        self.state_bytes
    }

    /// The buffer sf_plus reads the loss F from (element 0, f32); `None` for other kinds.
    pub fn loss_buffer(&self) -> Option<&wgpu::Buffer> {
        self.loss.as_ref()
    }

    /// Records one optimizer step into `enc` (gradients must be in the arena's
    /// grads buffer by the time it runs). Call [`GpuOptimizer::submitted`] after
    /// submitting; at most [`RING`] steps may be recorded in between.
    pub fn record_step(&mut self, gpu: &Gpu, enc: &mut wgpu::CommandEncoder) -> Result<()> {
        if self.mode == Mode::Eval {
            return Err(Error::invalid("mode", "a step in eval mode: call train() first"));
        }
        if self.pending >= RING {
            return Err(Error::invalid(
                "record_step",
                format!("more than {RING} steps recorded without a submission"),
            ));
        }
        let scalars: StepScalars = self.host.next_step();
        let offset = self.slot as u64 * SLOT;
        gpu.queue.write_buffer(&self.ring, offset, bytemuck::bytes_of(&scalars));
        enc.copy_buffer_to_buffer(
            &self.ring,
            offset,
            &self.step_buf,
            0,
            std::mem::size_of::<StepScalars>() as u64,
        );
        self.slot = (self.slot + 1) % RING;
        self.pending += 1;
        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("optimizer step"),
            timestamp_writes: None,
        });
        for p in &self.plus {
            p.record(&mut pass);
        }
        self.step.record(&mut pass);
        if let Some(nap) = &self.nap {
            nap.norms.record(&mut pass);
            nap.group.record(&mut pass);
            nap.project.record(&mut pass);
        }
        Ok(())
    }

    /// Tells the optimizer that everything recorded so far was submitted.
    pub fn submitted(&mut self) {
        self.pending = 0;
    }

    /// A recorder writing x into `dst` (a buffer of the arena's layout and size)
    /// without touching the parameters: the (y, z) kinds compute it, sf_plus copies
    /// its explicit x, adamw copies its weights.
    pub fn x_export(&self, gpu: &Gpu, arena: &Arena, dst: &wgpu::Buffer) -> XExport {
        let bytes = arena.layout.bytes();
        let pass = match (&self.z, &self.x) {
            (Some(z), None) => {
                let mut k = Kernels::default();
                let dispatches = arena
                    .layout
                    .segments
                    .iter()
                    .zip(&self.seg_bufs)
                    .map(|(s, seg)| {
                        let (o, n) = (s.start as u64 * 4, s.len as u64 * 4);
                        let res = [
                            (0, whole(&self.step_buf)),
                            (1, whole(seg)),
                            (2, range(&arena.params, o, n)),
                            (4, range(z, o, n)),
                            (18, range(dst, o, n)),
                        ];
                        (k.bind(gpu, "export", "x_into", &res), elem_workgroups(s.len / 4))
                    })
                    .collect();
                Some(Pass {
                    pipeline: k.get(&gpu.device, "export", "x_into"),
                    dispatches,
                })
            }
            _ => None,
        };
        XExport {
            copy_from: pass
                .is_none()
                .then(|| self.x.clone().unwrap_or_else(|| arena.params.clone())),
            pass,
            dst: dst.clone(),
            bytes,
        }
    }

    /// Records and submits one step on its own.
    pub fn step(&mut self, gpu: &Gpu) -> Result<()> {
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        self.record_step(gpu, &mut enc)?;
        gpu.queue.submit([enc.finish()]);
        self.submitted();
        Ok(())
    }

    /// Writes the loss F at the current y (sf_plus only; replay and training call it before each step).
    pub fn write_loss(&self, gpu: &Gpu, loss: f32) -> Result<()> {
        let buf = self
            .loss
            .as_ref()
            .ok_or_else(|| Error::invalid("loss", format!("{} takes no loss", self.cfg.kind)))?;
        gpu.queue.write_buffer(buf, 0, bytemuck::bytes_of(&loss));
        Ok(())
    }

    /// Puts x in the parameter buffer (a no-op for adamw).
    pub fn eval(&mut self, gpu: &Gpu, arena: &Arena) {
        if self.mode == Mode::Eval {
            return;
        }
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        if let Some(x) = &self.x {
            enc.copy_buffer_to_buffer(x, 0, &arena.params, 0, arena.layout.bytes());
        } else if let Some(p) = &self.to_eval {
            p.record(&mut enc.begin_compute_pass(&Default::default()));
        }
        gpu.queue.submit([enc.finish()]);
        self.mode = Mode::Eval;
    }

    /// Puts y back in the parameter buffer.
    pub fn train(&mut self, gpu: &Gpu) {
        if self.mode == Mode::Train {
            return;
        }
        if let Some(p) = &self.to_train {
            let mut enc = gpu.device.create_command_encoder(&Default::default());
            p.record(&mut enc.begin_compute_pass(&Default::default()));
            gpu.queue.submit([enc.finish()]);
        }
        self.mode = Mode::Train;
    }

    /// sf_plus's device state.
    pub async fn plus_state_async(&self, gpu: &Gpu) -> Result<Option<PlusState>> {
        match &self.plus_state {
            None => Ok(None),
            Some(b) => Ok(gpu.read_async::<PlusState>(b, 0, 1).await?.pop()),
        }
    }

    /// Surfaces an error the device found since the start (sf_plus), as [`Error::Numerical`].
    pub async fn check_async(&self, gpu: &Gpu) -> Result<()> {
        let Some(st) = self.plus_state_async(gpu).await? else {
            return Ok(());
        };
        let what = match st.error {
            0 => return Ok(()),
            1 => "the gradient is all zero (e_hat = 0): the Polyak step is undefined",
            2 => "the loss is not finite",
            _ => "the Polyak step is not finite",
        };
        Err(Error::Numerical(format!(
            "sf_plus step {}: {what}; the weights were left as they were before it",
            st.error_step
        )))
    }

    /// The scalars of the last step as the kernels saw them (gamma and c from the device for sf_plus).
    pub async fn last_scalars_async(&self, gpu: &Gpu) -> Result<StepScalars> {
        Ok(gpu.read_async::<StepScalars>(&self.step_buf, 0, 1).await?[0])
    }

    /// Per NaP group: rho, current norms of z and x, effective learning rate.
    pub async fn nap_report_async(&self, gpu: &Gpu) -> Result<Vec<GroupReport>> {
        let Some(nap) = &self.nap else {
            return Ok(Vec::new());
        };
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            nap.norms.record(&mut pass);
            nap.group.record(&mut pass);
        }
        gpu.queue.submit([enc.finish()]);
        let n = nap.plan.groups.len();
        let norms: Vec<[f32; 2]> = gpu.read_async(&nap.norms_buf, 0, n).await?;
        let rows: Vec<GroupRow> = gpu.read_async(&nap.groups_buf, 0, n).await?;
        let gamma = self.last_scalars_async(gpu).await?.gamma as f64;
        Ok(nap
            .plan
            .groups
            .iter()
            .zip(&rows)
            .zip(&norms)
            .map(|((tensors, row), n)| {
                let rho = row.rho as f64;
                GroupReport {
                    tensors: tensors.clone(),
                    rho,
                    norm_z: n[0] as f64,
                    norm_x: n[1] as f64,
                    effective_lr: if self.cfg.kind == Kind::SgdSf {
                        gamma / (rho * rho)
                    } else {
                        gamma / rho
                    },
                }
            })
            .collect())
    }

    /// Reads tensor `name` of `buffer`: "params" (y in train mode, x in eval mode),
    /// "z" or "x" (sf_plus's explicit x). Kinds without z or x read the parameters.
    pub async fn read_state_async(&self, gpu: &Gpu, arena: &Arena, buffer: &str, name: &str) -> Result<Vec<f32>> {
        let buf = match buffer {
            "params" => &arena.params,
            "z" => self.z.as_ref().unwrap_or(&arena.params),
            "x" => self.x.as_ref().unwrap_or(&arena.params),
            other => return Err(Error::invalid("buffer", format!("unknown state buffer `{other}`"))),
        };
        arena.read_from_async(gpu, buf, name).await
    }
}

/// Blocking forms of the readers, for native code.
#[cfg(not(target_arch = "wasm32"))]
impl GpuOptimizer {
    /// [`GpuOptimizer::plus_state_async`], waiting for the device.
    pub fn plus_state(&self, gpu: &Gpu) -> Result<Option<PlusState>> {
        pollster::block_on(self.plus_state_async(gpu))
    }

    /// [`GpuOptimizer::check_async`], waiting for the device.
    pub fn check(&self, gpu: &Gpu) -> Result<()> {
        pollster::block_on(self.check_async(gpu))
    }

    /// [`GpuOptimizer::last_scalars_async`], waiting for the device.
    pub fn last_scalars(&self, gpu: &Gpu) -> Result<StepScalars> {
        pollster::block_on(self.last_scalars_async(gpu))
    }

    /// [`GpuOptimizer::nap_report_async`], waiting for the device.
    pub fn nap_report(&self, gpu: &Gpu) -> Result<Vec<GroupReport>> {
        pollster::block_on(self.nap_report_async(gpu))
    }

    /// [`GpuOptimizer::read_state_async`], waiting for the device.
    pub fn read_state(&self, gpu: &Gpu, arena: &Arena, buffer: &str, name: &str) -> Result<Vec<f32>> {
        pollster::block_on(self.read_state_async(gpu, arena, buffer, name))
    }
}

/// Runs sf_plus's device recurrences (lr_max, compensated W_sum, c) for
/// `alphas.len()` steps driven by the given Polyak step sizes (gamma = lr * alpha,
/// no c warmup, t^r from the host as in training), with the same code the scalar
/// kernel uses, and returns (lr_max, W_sum, c) after every step. Used to check
/// them against f64.
#[cfg(not(target_arch = "wasm32"))]
pub fn trace_plus_scalars(gpu: &Gpu, cfg: &OptimConfig, alphas: &[f32]) -> Result<Vec<[f32; 3]>> {
    #[repr(C)]
    #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
    struct TraceInfo {
        n: u32,
        pad: [u32; 3],
    }
    let mut k = Kernels::default();
    let scalars = StepScalars {
        lr: cfg.lr().max(cfg.eps) as f32,
        p: cfg.weight_lr_power as f32,
        ..Default::default()
    };
    let step_buf = gpu.storage_init("step", &[scalars]);
    let state = gpu.storage_init("sf_plus state", &[PlusState::initial(cfg)]);
    let info = gpu.uniform(
        "trace",
        &TraceInfo {
            n: alphas.len() as u32,
            pad: [0; 3],
        },
    );
    let inputs: Vec<[f32; 2]> = (0..alphas.len())
        .map(|k| [alphas[k], ((k + 1) as f64).powf(cfg.r) as f32])
        .collect();
    let alpha_buf = gpu.storage_init("alphas", &inputs);
    let out = gpu.storage("trace", 16 * alphas.len() as u64);
    let res = [
        (0, whole(&step_buf)),
        (11, whole(&state)),
        (14, whole(&info)),
        (15, whole(&alpha_buf)),
        (16, whole(&out)),
    ];
    let pass = Pass {
        pipeline: k.get(&gpu.device, "polyak", "plus_trace"),
        dispatches: vec![(k.bind(gpu, "polyak", "plus_trace", &res), 1)],
    };
    let mut enc = gpu.device.create_command_encoder(&Default::default());
    pass.record(&mut enc.begin_compute_pass(&Default::default()));
    gpu.queue.submit([enc.finish()]);
    let rows: Vec<[f32; 4]> = gpu.read(&out, 0, alphas.len())?;
    Ok(rows.into_iter().map(|r| [r[0], r[1], r[2]]).collect())
}
