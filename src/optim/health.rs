//! Health flags: how a run learns, a few steps late and without stalling the
//! device, that a value stopped being finite.
//!
//! Every optimizer pass checks what it reads and writes (the gradient, the
//! weights, its state; NaP its group norms) and, on a value that is not finite,
//! sets a bit in one small device buffer together with the earliest step that
//! did. Nothing clears it. The host reads it with the training loss (through
//! [`GpuOptimizer::health_buffer`](crate::optim::GpuOptimizer::health_buffer))
//! and at every evaluation ([`GpuOptimizer::check`](crate::optim::GpuOptimizer::check)),
//! so a run stops before it saves a checkpoint that is not finite.
//! The WGSL half is `shaders/health.wgsl`.

use crate::error::{Error, Result};
use crate::optim::plus::PlusState;

/// The device's health flags (WGSL `Health`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Health {
    /// The bits of [`Health::QUANTITIES`] that were set.
    pub flags: u32,
    /// The earliest step (from 1) that set one; `u32::MAX` while none did.
    pub first_step: u32,
    /// Padding.
    pub pad: [u32; 2],
}

impl Health {
    /// Nothing found yet.
    pub const CLEAR: Health = Health {
        flags: 0,
        first_step: u32::MAX,
        pad: [0; 2],
    };

    /// Each flag bit and the quantity it stands for (WGSL `HEALTH_*`).
    pub const QUANTITIES: [(u32, &'static str); 4] = [
        (1, "the gradient"),
        (2, "the weights (y)"),
        (4, "the optimizer's state"),
        (8, "a NaP group norm"),
    ];

    /// Reads the flags from the bytes of the device buffer.
    pub fn from_bytes(bytes: &[u8]) -> Health {
        bytemuck::pod_read_unaligned(&bytes[..std::mem::size_of::<Health>()])
    }

    /// The first problem the device recorded: sf_plus's own error (its state,
    /// when the kind keeps one) before these flags, since it names where a
    /// value that is not finite came from. The one place the device's error
    /// records are read, by [`crate::optim::GpuOptimizer::check`] and the
    /// training loop's background readbacks alike.
    pub fn first_error(plus: Option<&PlusState>, health: &Health) -> Result<()> {
        if let Some(plus) = plus {
            plus.error()?;
        }
        health.error()
    }

    /// [`Error::Numerical`] naming the step and every quantity found not finite;
    /// `Ok` when none was.
    pub fn error(&self) -> Result<()> {
        if self.flags == 0 {
            return Ok(());
        }
        let what: Vec<&str> = Self::QUANTITIES
            .iter()
            .filter(|(bit, _)| self.flags & bit != 0)
            .map(|&(_, name)| name)
            .collect();
        Err(Error::Numerical(format!(
            "step {}: {} not finite; the run stopped (lower the learning rate or the weight decay)",
            self.first_step,
            match what.as_slice() {
                [] => "a value is".to_string(), // a bit this version does not know
                [one] => format!("{one} is"),
                [init @ .., last] => format!("{} and {last} are", init.join(", ")),
            }
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_names_the_step_and_each_quantity() {
        assert!(Health::CLEAR.error().is_ok());
        let one = Health {
            flags: 1,
            first_step: 37,
            ..Health::CLEAR
        };
        let msg = one.error().unwrap_err().to_string();
        assert!(msg.contains("step 37: the gradient is not finite"), "{msg}");
        let two = Health {
            flags: 1 | 2 | 4,
            ..one
        };
        let msg = two.error().unwrap_err().to_string();
        assert!(
            msg.contains("the gradient, the weights (y) and the optimizer's state are not finite"),
            "{msg}"
        );
    }
}
