//! Train and eval mode, and x exported without leaving train mode.
//!
//! The parameters hold y while training; [`GpuOptimizer::eval`] puts x there
//! (computed from y and z, copied from sf_plus's explicit x, or already there
//! for adamw) and [`GpuOptimizer::train`] puts y back. [`XExport`] writes x into
//! another buffer of the arena's layout instead, so evaluation never perturbs y.

use crate::arena::Arena;
use crate::error::Result;
use crate::gpu::buffers::range;
use crate::gpu::kernels::Entry;
use crate::gpu::{Dispatch, Gpu};
use crate::optim::plan::elem_workgroups;
use crate::optim::spec::{State, XRule};
use crate::optim::step::{GpuOptimizer, Mode};

/// Writes the evaluation weights x into a buffer of the arena's layout, leaving
/// the parameters as they are (see [`GpuOptimizer::x_export`]).
pub struct XExport {
    pass: Option<Dispatch>,
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

impl GpuOptimizer {
    /// A recorder writing x into `dst` (a buffer of the arena's layout and size)
    /// without touching the parameters: the (y, z) kinds compute it, sf_plus copies
    /// its explicit x, adamw copies its weights.
    pub fn x_export(&self, gpu: &Gpu, arena: &Arena, dst: &wgpu::Buffer) -> Result<XExport> {
        let bytes = arena.layout.bytes();
        let (pass, copy_from) = match self.spec().x {
            XRule::Interpolated { .. } => (Some(self.export_pass(gpu, arena, dst, Entry::X_INTO)?), None),
            // bf16 state: x is widened on its way.
            XRule::Explicit if self.plan.bf16 => (Some(self.export_pass(gpu, arena, dst, Entry::X_COPY_INTO)?), None),
            XRule::Explicit => (None, self.state(State::X).cloned()),
            XRule::Params => (None, Some(arena.params.clone())),
        };
        Ok(XExport {
            pass,
            copy_from,
            dst: dst.clone(),
            bytes,
        })
    }

    /// `entry` of `export.wgsl` over every segment, writing into `dst`.
    fn export_pass(&self, gpu: &Gpu, arena: &Arena, dst: &wgpu::Buffer, entry: Entry) -> Result<Dispatch> {
        let entry = entry.with_state(self.plan.bf16);
        let calls = self.plan.segments.iter().enumerate().map(|(i, s)| {
            let (o, n) = (s.start as u64 * 4, s.len as u64 * 4);
            let res = self.plan.resources(arena, i, &[(18, range(dst, o, n))]);
            (res, [elem_workgroups(s.len / 4), 1, 1])
        });
        gpu.dispatch_each(entry.file, entry.name, calls)
    }

    /// Puts x in the parameter buffer (a no-op for adamw).
    pub fn eval(&mut self, gpu: &Gpu, arena: &Arena) {
        if self.mode == Mode::Eval {
            return;
        }
        gpu.submit(|enc| {
            if let Some(p) = &self.to_eval {
                p.record(&mut enc.begin_compute_pass(&Default::default()));
            } else if let Some(x) = self.state(State::X) {
                enc.copy_buffer_to_buffer(x, 0, &arena.params, 0, arena.layout.bytes());
            }
        });
        self.mode = Mode::Eval;
    }

    /// Puts y back in the parameter buffer.
    pub fn train(&mut self, gpu: &Gpu) {
        if self.mode == Mode::Train {
            return;
        }
        if let Some(p) = &self.to_train {
            gpu.run(&[p]);
        }
        self.mode = Mode::Train;
    }
}
