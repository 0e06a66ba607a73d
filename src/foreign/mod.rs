//! Stepping parameters that live in the caller's buffers ([`ForeignOptimizer`]).
//!
//! A program whose tensors sit in buffers of its own (another framework's, at
//! any 4-byte-aligned offset) hands sfnap their ranges; sfnap keeps an [`Arena`]
//! of the same tensors with the optimizer state, and records into the caller's
//! encoder: the gradients copied in (`copy_buffer_to_buffer`), the step of
//! [`GpuOptimizer`] unchanged (every kind, NaP, the health flags, bf16 state),
//! and the new parameters y copied out. The arena keeps y between steps, so the
//! caller's parameter ranges are only written (after the initial values are read
//! at construction), and may be other ranges at every step. Copies rather than
//! binding the caller's ranges in the kernels: a storage binding must start at a
//! multiple of `min_storage_buffer_offset_alignment` (256 bytes on most devices)
//! and the kernels sweep whole vec4s over one arena buffer; a copy only needs
//! 4-byte alignment. The cost is 16 bytes moved per parameter and step (the
//! gradient in, the parameters out; BENCHMARKS.md measures it). Native only (the
//! device check waits on an error scope).

mod ranges;

pub use ranges::{BufferRange, ForeignTensor};

use std::path::Path;

use crate::arena::{Arena, TensorSpec};
use crate::checkpoint::{self, Loaded, Meta};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::nap::NapConfig;
use crate::optim::{GpuOptimizer, OptimConfig, XExport};
use ranges::{Named, Role};

/// An optimizer over tensors in the caller's buffers: its own arena (y and the
/// optimizer state) and the copies to and from the caller's ranges.
pub struct ForeignOptimizer {
    arena: Arena,
    opt: GpuOptimizer,
    /// x in the arena's layout and its export, made at the first request.
    x: Option<(wgpu::Buffer, XExport)>,
    /// 16 bytes the device check copies to and from.
    probe: wgpu::Buffer,
}

impl ForeignOptimizer {
    /// Prepares `cfg` over the tensors `specs` (names, shapes, decay; NaP groups
    /// name them) whose initial values are `params[i]`, in the caller's buffers
    /// (usage COPY_SRC; the values must be there, or in work already submitted).
    /// They are copied into sfnap's arena in a submission of its own and the
    /// optimizer starts there (z and x at them, NaP's rho measured on them).
    pub fn new(
        gpu: &Gpu,
        specs: &[TensorSpec],
        params: &[BufferRange<'_>],
        cfg: &OptimConfig,
        nap: Option<&NapConfig>,
    ) -> Result<ForeignOptimizer> {
        let arena = Arena::new(gpu, specs, None)?;
        let probe = gpu.storage("foreign probe", 16);
        let named = named(&arena, "params", params.iter().map(|&p| (p, Role::Initial)), 1)?;
        ranges::check(gpu, &named, &lens(&arena), &probe)?;
        gpu.submit(|enc| copy_in(enc, &arena, params.iter().copied(), &arena.params));
        let opt = GpuOptimizer::new(gpu, &arena, cfg, nap)?;
        Ok(ForeignOptimizer {
            arena,
            opt,
            x: None,
            probe,
        })
    }

    /// The optimizer inside: its checks, reports, sf_plus's loss
    /// ([`GpuOptimizer::write_loss`], [`GpuOptimizer::loss_buffer`]), health flags and state.
    pub fn optimizer(&self) -> &GpuOptimizer {
        &self.opt
    }

    /// sfnap's arena of the tensors: y in `params`, the last gradients in `grads`.
    pub fn arena(&self) -> &Arena {
        &self.arena
    }

    /// Records one step into `enc`: `tensors[i]` (in the order of the specs) gives
    /// tensor i's gradient, read, and its parameter range, where y is written.
    /// Every range is checked first (nothing is recorded if one is refused): inside
    /// its buffer, at a multiple of 4 bytes, the tensor's length, the usages
    /// COPY_SRC (gradients) and COPY_DST (parameters), no two overlapping, and of
    /// sfnap's device. Call [`ForeignOptimizer::submitted`] after submitting.
    pub fn record_step(
        &mut self,
        gpu: &Gpu,
        enc: &mut wgpu::CommandEncoder,
        tensors: &[ForeignTensor<'_>],
    ) -> Result<()> {
        let pairs = tensors
            .iter()
            .flat_map(|t| [(t.param, Role::Param), (t.grad, Role::Grad)]);
        let named = named(&self.arena, "tensors", pairs, 2)?;
        for (i, t) in tensors.iter().enumerate() {
            if t.param.len != t.grad.len {
                return Err(Error::invalid(
                    format!("tensors[{i}] `{}`", self.arena.layout.slots[i].name),
                    format!("its param has {} elements but its grad {}", t.param.len, t.grad.len),
                ));
            }
        }
        ranges::check(gpu, &named, &lens(&self.arena), &self.probe)?;
        copy_in(enc, &self.arena, tensors.iter().map(|t| t.grad), &self.arena.grads);
        self.opt.record_step(gpu, enc)?;
        copy_out(enc, &self.arena, &self.arena.params, tensors.iter().map(|t| t.param));
        Ok(())
    }

    /// Records a copy of the loss F at the current y from `loss` (one f32 in the
    /// caller's buffer, usage COPY_SRC) to where sf_plus reads it, so the loss
    /// never visits the host; record it before [`ForeignOptimizer::record_step`].
    /// Refused for the kinds that take no loss.
    pub fn record_loss(&self, gpu: &Gpu, enc: &mut wgpu::CommandEncoder, loss: BufferRange<'_>) -> Result<()> {
        let Some(dst) = self.opt.loss_buffer() else {
            return Err(Error::invalid(
                "loss",
                format!("{} takes no loss (only sf_plus does)", self.opt.config().kind.name()),
            ));
        };
        let named = [Named {
            range: loss,
            tensor: 0,
            name: "loss",
            role: Role::Grad,
        }];
        ranges::check(gpu, &named, &[1], &self.probe)?;
        enc.copy_buffer_to_buffer(loss.buffer, loss.offset, dst, 0, 4);
        Ok(())
    }

    /// Tells the optimizer that everything recorded so far was submitted.
    pub fn submitted(&mut self) {
        self.opt.submitted();
    }

    /// Records and submits one step on its own.
    pub fn step(&mut self, gpu: &Gpu, tensors: &[ForeignTensor<'_>]) -> Result<()> {
        gpu.submit(|enc| self.record_step(gpu, enc, tensors))?;
        self.submitted();
        Ok(())
    }

    /// Records x, the weights to evaluate and ship, written into `dst[i]` for
    /// tensor i (checked as a step's ranges are, with usage COPY_DST); y is left as it is.
    pub fn record_x_into(&mut self, gpu: &Gpu, enc: &mut wgpu::CommandEncoder, dst: &[BufferRange<'_>]) -> Result<()> {
        self.check_out(gpu, "x", Role::X, dst)?;
        self.record_x(gpu, enc)?;
        let x = &self.x.as_ref().expect("recorded above").0;
        copy_out(enc, &self.arena, x, dst.iter().copied());
        Ok(())
    }

    /// Records y, the parameters the next gradient is taken at, written into
    /// `dst[i]` for tensor i (checked as [`ForeignOptimizer::record_x_into`]'s):
    /// how a resumed run hands the caller its parameters.
    pub fn record_y_into(&self, gpu: &Gpu, enc: &mut wgpu::CommandEncoder, dst: &[BufferRange<'_>]) -> Result<()> {
        self.check_out(gpu, "y", Role::Param, dst)?;
        copy_out(enc, &self.arena, &self.arena.params, dst.iter().copied());
        Ok(())
    }

    /// Checks the ranges `dst` (one per tensor, named `what` when their number
    /// is wrong) that sfnap is to write `role` into.
    fn check_out(&self, gpu: &Gpu, what: &str, role: Role, dst: &[BufferRange<'_>]) -> Result<()> {
        let named = named(&self.arena, what, dst.iter().map(|&d| (d, role)), 1)?;
        ranges::check(gpu, &named, &lens(&self.arena), &self.probe)
    }

    /// Saves the whole state to `path` as a checkpoint ([`crate::checkpoint`]:
    /// y, x, the optimizer's state and counters, `meta`), atomically.
    pub fn save(&mut self, gpu: &Gpu, path: &Path, meta: &Meta) -> Result<()> {
        gpu.submit(|enc| self.record_x(gpu, enc))?;
        let x = &self.x.as_ref().expect("recorded above").0;
        checkpoint::save(path, gpu, &self.arena, &self.opt, x, meta)
    }

    /// Continues from a checkpoint [`ForeignOptimizer::save`] wrote (read by
    /// [`checkpoint::load`], which checked it; `path` names it in errors): y, the
    /// state and the counters are replaced, every tensor checked for its name,
    /// dtype and shape first. The caller's parameters are not touched: copy y to
    /// them with [`ForeignOptimizer::record_y_into`].
    pub fn resume(&mut self, gpu: &Gpu, path: &Path, loaded: Loaded) -> Result<()> {
        loaded.apply(path, gpu, &self.arena, &mut self.opt)
    }

    /// x of tensor `name`, read back to the host.
    pub fn read_x(&mut self, gpu: &Gpu, name: &str) -> Result<Vec<f32>> {
        self.arena.layout.slot(name)?;
        gpu.submit(|enc| self.record_x(gpu, enc))?;
        let x = &self.x.as_ref().expect("recorded above").0;
        self.arena.read_from(gpu, x, name)
    }

    /// Records x into the arena-layout buffer `self.x` (made at the first call).
    fn record_x(&mut self, gpu: &Gpu, enc: &mut wgpu::CommandEncoder) -> Result<()> {
        if self.x.is_none() {
            let buffer = gpu.storage("foreign x", self.arena.layout.bytes());
            let export = self.opt.x_export(gpu, &self.arena, &buffer)?;
            self.x = Some((buffer, export));
        }
        self.x.as_ref().expect("made above").1.record(enc);
        Ok(())
    }
}

/// Records a copy of each caller range in `src` (one per tensor, in order) to
/// its tensor's place in `dst`, a buffer of the arena's layout.
fn copy_in<'a>(
    enc: &mut wgpu::CommandEncoder,
    arena: &Arena,
    src: impl Iterator<Item = BufferRange<'a>>,
    dst: &wgpu::Buffer,
) {
    for (slot, r) in arena.layout.slots.iter().zip(src) {
        enc.copy_buffer_to_buffer(r.buffer, r.offset, dst, slot.offset as u64 * 4, r.bytes());
    }
}

/// Records a copy of each tensor of `src`, a buffer of the arena's layout, to
/// the caller range in `dst` (one per tensor, in order).
fn copy_out<'a>(
    enc: &mut wgpu::CommandEncoder,
    arena: &Arena,
    src: &wgpu::Buffer,
    dst: impl Iterator<Item = BufferRange<'a>>,
) {
    for (slot, r) in arena.layout.slots.iter().zip(dst) {
        enc.copy_buffer_to_buffer(src, slot.offset as u64 * 4, r.buffer, r.offset, r.bytes());
    }
}

/// The arena's element count of each tensor.
fn lens(arena: &Arena) -> Vec<usize> {
    arena.layout.slots.iter().map(|s| s.len).collect()
}

/// `ranges`, `per` to a tensor, named after the arena's tensors; `what` names the
/// argument when their number is not the tensors'.
fn named<'a>(
    arena: &'a Arena,
    what: &str,
    ranges: impl Iterator<Item = (BufferRange<'a>, Role)>,
    per: usize,
) -> Result<Vec<Named<'a>>> {
    let named: Vec<Named<'a>> = ranges
        .enumerate()
        .map(|(i, (range, role))| {
            let tensor = i / per;
            let name = arena.layout.slots.get(tensor).map_or("", |s| s.name.as_str());
            Named {
                range,
                tensor,
                name,
                role,
            }
        })
        .collect();
    let n = arena.layout.slots.len();
    if named.len() != n * per {
        return Err(Error::invalid(
            what,
            format!(
                "{} given for {n} tensors (one per tensor, in the order of the specs)",
                named.len() / per
            ),
        ));
    }
    Ok(named)
}
