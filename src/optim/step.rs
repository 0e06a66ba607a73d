//! [`GpuOptimizer`]: an optimizer over an [`Arena`], and its step.
//!
//! A step is one fused dispatch per arena segment for all tensors, plus
//! sf_plus's device-side scalars and NaP's norms and projection. It never reads
//! back to the host: host-computable scalars are uploaded through a small ring
//! of slots, device-dependent ones (sf_plus) are computed by a one-thread kernel.
//! Errors the device finds (a value that is not finite in any kind, sf_plus's
//! zero gradient or NaN loss) are kept in device flags and surface at the next
//! [`GpuOptimizer::check`], or earlier through [`GpuOptimizer::health_buffer`].

use crate::arena::Arena;
use crate::error::{Error, Result};
use crate::gpu::kernels::Entry;
use crate::gpu::{Dispatch, Gpu};
use crate::nap::{GroupReport, NapConfig, NapPlan, NO_GROUP};
use crate::optim::bf16::{self, StateDtype};
use crate::optim::config::OptimConfig;
use crate::optim::health::Health;
use crate::optim::nap_device::NapDevice;
use crate::optim::plan::{Grid, Plan, RING, SLOT};
use crate::optim::plus::{PlusDevice, PlusState};
use crate::optim::scalars::{HostScalars, StepScalars};
use crate::optim::spec::{KindSpec, State, XRule};

/// Whether the parameter buffer holds y (train) or x (eval).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Parameters hold y, where gradients are taken.
    Train,
    /// Parameters hold x, the weights to evaluate and ship.
    Eval,
}

/// An optimizer over an [`Arena`]: its state buffers and prepared dispatches.
pub struct GpuOptimizer {
    cfg: OptimConfig,
    spec: KindSpec,
    host: HostScalars,
    pub(crate) mode: Mode,
    pending: usize,
    slot: usize,
    pub(crate) plan: Plan,
    plus: Option<PlusDevice>,
    step: Dispatch,
    pub(crate) to_eval: Option<Dispatch>,
    pub(crate) to_train: Option<Dispatch>,
    nap: Option<NapDevice>,
}

impl GpuOptimizer {
    /// Prepares `cfg` over `arena`, whose parameters must already hold their
    /// initial values (z and x start there; NaP's rho is measured there).
    pub fn new(gpu: &Gpu, arena: &Arena, cfg: &OptimConfig, nap: Option<&NapConfig>) -> Result<GpuOptimizer> {
        cfg.validate()?;
        let spec = KindSpec::new(cfg);
        let host = HostScalars::new(cfg);
        let layout = &arena.layout;
        let nap_plan = nap.map(|n| NapPlan::new(layout, n)).transpose()?;
        let group_of_tensor = nap_plan
            .as_ref()
            .map_or_else(|| vec![NO_GROUP; layout.slots.len()], |p| p.group_of_tensor.clone());
        let bf16 = cfg.state_dtype == StateDtype::Bf16;
        let plan = Plan::new(gpu, arena, spec.state, &group_of_tensor, host.last(), bf16)?;

        let plus = spec
            .device_scalars
            .then(|| PlusDevice::new(gpu, arena, &plan, cfg))
            .transpose()?;
        let step = plan.per_segment(gpu, arena, spec.step, &[], Grid::Elements)?;
        let (to_eval, to_train) = match spec.x {
            XRule::Params => (None, None),
            XRule::Interpolated { .. } => (
                Some(plan.per_segment(gpu, arena, Entry::TO_EVAL, &[], Grid::Elements)?),
                Some(plan.per_segment(gpu, arena, Entry::TO_TRAIN, &[], Grid::Elements)?),
            ),
            // sf_plus: eval copies x into the parameters, widening bf16 state.
            XRule::Explicit => (
                bf16.then(|| plan.per_segment(gpu, arena, Entry::PARAMS_FROM_X, &[], Grid::Elements))
                    .transpose()?,
                Some(plan.per_segment(gpu, arena, Entry::TO_TRAIN, &[], Grid::Elements)?),
            ),
        };
        let nap = nap_plan
            .map(|p| NapDevice::new(gpu, arena, &plan, p, spec.nap))
            .transpose()?;
        Ok(GpuOptimizer {
            cfg: cfg.clone(),
            spec,
            host,
            mode: Mode::Train,
            pending: 0,
            slot: 0,
            plan,
            plus,
            step,
            to_eval,
            to_train,
            nap,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &OptimConfig {
        &self.cfg
    }

    /// The description of its kind (state, kernels, bytes per parameter, rules).
    pub fn spec(&self) -> &KindSpec {
        &self.spec
    }

    /// The host's scalar recurrences (step counter, lr_max, W_sum), for checkpoints.
    pub fn host_scalars(&self) -> &HostScalars {
        &self.host
    }

    /// State buffer `s` (with the arena's layout), if the kind keeps it.
    pub fn state(&self, s: State) -> Option<&wgpu::Buffer> {
        self.plan.get(s)
    }

    /// Whether the state buffers hold bf16, two to a 32-bit word (else f32).
    pub fn state_is_bf16(&self) -> bool {
        self.plan.bf16
    }

    /// The state buffers with the arena's layout: (name, buffer), in the kind's order.
    pub fn state_buffers(&self) -> Vec<(&'static str, &wgpu::Buffer)> {
        self.plan.state.iter().map(|(s, b)| (s.name(), b)).collect()
    }

    /// The small device buffers a checkpoint keeps: the step scalars and sf_plus's state.
    pub fn scalar_buffers(&self) -> Vec<(&'static str, &wgpu::Buffer)> {
        let mut v = vec![("step", &self.plan.step_buf)];
        if let Some(p) = &self.plus {
            v.push(("plus_state", &p.state));
        }
        if let Some(n) = &self.nap {
            v.push(("nap_groups", n.table()));
        }
        v
    }

    /// Checks a saved NaP group table (raw [`crate::nap::GroupRow`]s) against this
    /// optimizer's groups: the same groups over the same ranges of the arena.
    pub fn check_nap_table(&self, data: &[u8]) -> std::result::Result<(), String> {
        let Some(n) = &self.nap else {
            return Err("it holds NaP groups, this optimizer has none".into());
        };
        n.check_table(data)
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
        self.spec.state_bytes_per_param()
    }

    /// sf_plus's device state ([`PlusState`], with its error flag); `None` for other kinds.
    pub fn plus_state_buffer(&self) -> Option<&wgpu::Buffer> {
        self.plus.as_ref().map(|p| &p.state)
    }

    /// The buffer sf_plus reads the loss F from (element 0, f32); `None` for other kinds.
    pub fn loss_buffer(&self) -> Option<&wgpu::Buffer> {
        self.plus.as_ref().map(|p| &p.loss)
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
        gpu.queue
            .write_buffer(&self.plan.ring, offset, bytemuck::bytes_of(&scalars));
        enc.copy_buffer_to_buffer(
            &self.plan.ring,
            offset,
            &self.plan.step_buf,
            0,
            std::mem::size_of::<StepScalars>() as u64,
        );
        self.slot = (self.slot + 1) % RING;
        self.pending += 1;
        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("optimizer step"),
            timestamp_writes: None,
        });
        for p in self.plus.iter().flat_map(|p| &p.passes) {
            p.record(&mut pass);
        }
        self.step.record(&mut pass);
        if let Some(nap) = &self.nap {
            nap.record(&mut pass);
        }
        Ok(())
    }

    /// Tells the optimizer that everything recorded so far was submitted.
    pub fn submitted(&mut self) {
        self.pending = 0;
    }

    /// Records and submits one step on its own.
    pub fn step(&mut self, gpu: &Gpu) -> Result<()> {
        gpu.submit(|enc| self.record_step(gpu, enc))?;
        self.submitted();
        Ok(())
    }

    /// Writes the loss F at the current y (sf_plus only; replay and training call it before each step).
    pub fn write_loss(&self, gpu: &Gpu, loss: f32) -> Result<()> {
        let buf = self
            .loss_buffer()
            .ok_or_else(|| Error::invalid("loss", format!("{} takes no loss", self.cfg.kind)))?;
        gpu.queue.write_buffer(buf, 0, bytemuck::bytes_of(&loss));
        Ok(())
    }

    /// sf_plus's device state.
    pub async fn plus_state_async(&self, gpu: &Gpu) -> Result<Option<PlusState>> {
        match &self.plus {
            None => Ok(None),
            Some(p) => Ok(gpu.read_async::<PlusState>(&p.state, 0, 1).await?.pop()),
        }
    }

    /// The device buffer of [`Health`] flags (16 bytes), for a program that reads
    /// it back asynchronously with its own metrics; [`GpuOptimizer::check`] reads it too.
    pub fn health_buffer(&self) -> &wgpu::Buffer {
        &self.plan.health
    }

    /// Surfaces an error the device found since the start, as [`Error::Numerical`]:
    /// sf_plus's own (a zero gradient, a loss that is not finite), then a value
    /// that is not finite in any kind ([`Health`]).
    pub async fn check_async(&self, gpu: &Gpu) -> Result<()> {
        let plus = self.plus_state_async(gpu).await?;
        let health = gpu.read_async::<Health>(&self.plan.health, 0, 1).await?[0];
        Health::first_error(plus.as_ref(), &health)
    }

    /// The scalars of the last step as the kernels saw them (gamma and c from the device for sf_plus).
    pub async fn last_scalars_async(&self, gpu: &Gpu) -> Result<StepScalars> {
        Ok(gpu.read_async::<StepScalars>(&self.plan.step_buf, 0, 1).await?[0])
    }

    /// Per NaP group: rho, current norms of z and x, effective learning rate.
    pub async fn nap_report_async(&self, gpu: &Gpu) -> Result<Vec<GroupReport>> {
        match &self.nap {
            None => Ok(Vec::new()),
            Some(nap) => nap.report(gpu, &self.spec, &self.plan.step_buf).await,
        }
    }

    /// Reads tensor `name` of `buffer`: "params" (y in train mode, x in eval mode),
    /// "z" or "x" (sf_plus's explicit x). Kinds without z or x read the parameters.
    pub async fn read_state_async(&self, gpu: &Gpu, arena: &Arena, buffer: &str, name: &str) -> Result<Vec<f32>> {
        let state = match buffer {
            "params" => None,
            "z" => self.state(State::Z),
            "x" => self.state(State::X),
            other => return Err(Error::invalid("buffer", format!("unknown state buffer `{other}`"))),
        };
        match state {
            Some(buf) if self.plan.bf16 => {
                let slot = arena.layout.slot(name)?;
                let (first, words) = bf16::words_of(slot.offset, slot.len);
                let words: Vec<u32> = gpu.read_async(buf, first, words).await?;
                Ok(bf16::unpack(&words, slot.len))
            }
            Some(buf) => arena.read_from_async(gpu, buf, name).await,
            None => arena.read_from_async(gpu, &arena.params, name).await,
        }
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
