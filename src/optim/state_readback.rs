//! An optimizer's state read back from the device as the f64 reference's
//! [`ReferenceState`], with the arena's gradient and sf_plus's loss: what an
//! update function freezes ([`crate::optim::update_function`]), and what the
//! reference's next step can be checked against.
//!
//! [`GpuOptimizer::record_state_readback`] records the copies into the
//! caller's encoder (after a step, in the same submission, or on its own);
//! [`StateReadback::read`] maps them once the device is done. The values are
//! the device's f32s, widened.

use crate::arena::Arena;
use crate::error::{Error, Result};
use crate::gpu::{Gpu, Packed, PackedReadback, Part, PendingRead};
use crate::optim::bf16;
use crate::optim::plus::PlusState;
use crate::optim::reference::{GroupState, ReferenceState, TensorState};
use crate::optim::spec::State;
use crate::optim::step::{GpuOptimizer, Mode};

/// What a [`StateReadback`] brings back besides the state.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceState {
    /// The optimizer's state (steps taken: `state.k`).
    pub state: ReferenceState,
    /// The arena's gradient buffer as it was: after a training step, that
    /// step's gradient (taken at the y before it), one Vec per tensor.
    pub grads: Vec<Vec<f64>>,
    /// sf_plus: the loss its last step saw (`None` for the other kinds).
    pub loss: Option<f64>,
}

/// Copies of an optimizer's state on their way to the host.
#[derive(Debug)]
pub struct StateReadback {
    pending: PendingRead,
    /// The state with every sequence still empty.
    template: ReferenceState,
    /// (tensor, sequence name, part, its length where it holds bf16 words) of every sequence.
    parts: Vec<(usize, &'static str, Part, Option<usize>)>,
    plus: Option<(Part, Part)>,
}

impl GpuOptimizer {
    /// Records into `enc` the copies of every sequence this optimizer keeps over
    /// `arena` (y, z, x, m, v), of the gradients and of sf_plus's state and
    /// loss; NaP's groups come with their rho (`nap`: [`GpuOptimizer::nap_report_async`]'s
    /// groups, or empty). The parameters must hold y (train mode).
    pub fn record_state_readback(
        &self,
        gpu: &Gpu,
        arena: &Arena,
        nap: Vec<GroupState>,
        enc: &mut wgpu::CommandEncoder,
    ) -> Result<StateReadback> {
        if self.mode() != Mode::Train {
            return Err(Error::invalid(
                "mode",
                "the optimizer is in eval mode (the parameters hold x): switch it back to train mode first",
            ));
        }
        let host = self.host_scalars();
        let mut packed = PackedReadback::default();
        let mut buffers: Vec<(&'static str, &wgpu::Buffer, bool)> =
            vec![("y", &arena.params, false), ("grads", &arena.grads, false)];
        for s in [State::Z, State::X, State::M, State::V] {
            if let Some(b) = self.state(s) {
                buffers.push((s.name(), b, self.state_is_bf16()));
            }
        }
        let mut parts = Vec::new();
        for (ti, slot) in arena.layout.slots.iter().enumerate() {
            for &(name, buffer, bf16) in &buffers {
                let part = if bf16 {
                    let (first, words) = bf16::words_of(slot.offset, slot.len);
                    packed.add_values::<u32>(buffer, first, words)
                } else {
                    packed.add_values::<f32>(buffer, slot.offset, slot.len)
                };
                parts.push((ti, name, part, bf16.then_some(slot.len)));
            }
        }
        let plus = match (self.plus_state_buffer(), self.loss_buffer()) {
            (Some(state), Some(loss)) => Some((
                packed.add_values::<PlusState>(state, 0, 1),
                packed.add_values::<f32>(loss, 0, 1),
            )),
            _ => None,
        };
        let tensors = arena
            .layout
            .slots
            .iter()
            .map(|slot| TensorState {
                name: slot.name.clone(),
                decay: slot.decay,
                y: Vec::new(),
                z: Vec::new(),
                x: Vec::new(),
                m: Vec::new(),
                v: Vec::new(),
            })
            .collect();
        let template = ReferenceState {
            cfg: self.config().clone(),
            tensors,
            nap,
            k: host.steps(),
            lr_max: host.lr_max(),
            w_sum: host.w_sum(),
            e_prev: 0.0,
            alpha_cap: 0.0,
        };
        Ok(StateReadback {
            pending: packed.record(gpu, enc),
            template,
            parts,
            plus,
        })
    }

    /// Reads the state back now (its own submission): see
    /// [`GpuOptimizer::record_state_readback`]; NaP's groups and rho come from
    /// [`GpuOptimizer::nap_report_async`].
    pub async fn state_async(&self, gpu: &Gpu, arena: &Arena) -> Result<DeviceState> {
        let nap = self
            .nap_report_async(gpu)
            .await?
            .into_iter()
            .map(|g| GroupState {
                tensors: g.tensors,
                rho: g.rho,
            })
            .collect();
        let readback = gpu.submit(|enc| self.record_state_readback(gpu, arena, nap, enc))?;
        readback.read(gpu).await
    }

    /// [`GpuOptimizer::state_async`], waiting for the device (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn device_state(&self, gpu: &Gpu, arena: &Arena) -> Result<DeviceState> {
        pollster::block_on(self.state_async(gpu, arena))
    }
}

impl StateReadback {
    /// Maps the copies once the device is done (submit their encoder first).
    pub async fn read(self, gpu: &Gpu) -> Result<DeviceState> {
        let data: Packed = self.pending.read(gpu).await?;
        let mut state = self.template;
        let mut grads = vec![Vec::new(); state.tensors.len()];
        for (ti, name, part, bf16_len) in self.parts {
            let f32s = match bf16_len {
                Some(len) => bf16::unpack(&data.values::<u32>(part), len),
                None => data.values::<f32>(part),
            };
            let values: Vec<f64> = f32s.into_iter().map(f64::from).collect();
            let t = &mut state.tensors[ti];
            match name {
                "y" => t.y = values,
                "z" => t.z = values,
                "x" => t.x = values,
                "m" => t.m = values,
                "v" => t.v = values,
                _ => grads[ti] = values,
            }
        }
        let mut loss = None;
        if let Some((plus, f)) = self.plus {
            let p = data.values::<PlusState>(plus)[0];
            state.e_prev = p.e_prev as f64;
            state.lr_max = p.lr_max as f64;
            state.w_sum = p.w_sum as f64 - p.w_comp as f64;
            state.alpha_cap = p.alpha_cap as f64;
            loss = Some(data.values::<f32>(f)[0] as f64);
        }
        Ok(DeviceState { state, grads, loss })
    }
}
