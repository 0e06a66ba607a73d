//! One optimizer kind, described in one place: the state buffers it keeps, the
//! kernels of its step, where its evaluation weights x come from, its NaP
//! passes, the bytes a step moves and its effective-learning-rate rule. The
//! optimizer, NaP, checkpoints, the bench and the demos read this description;
//! adding a kind means adding a row here (and its kernel and scalar math).

use crate::gpu::kernels::Entry;
use crate::optim::bf16::StateDtype;
use crate::optim::config::{Kind, OptimConfig};

/// A state buffer with the arena's layout, beyond the parameters and gradients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// z, the base sequence of the Schedule-Free kinds (starts at the parameters).
    Z,
    /// The second moment of the Adam kinds (starts at 0).
    V,
    /// The first moment (adamw, sf_plus, adamw_sf with inner momentum; starts at 0).
    M,
    /// sf_plus's explicit x (starts at the parameters).
    X,
}

impl State {
    /// The buffer's name in checkpoints and reports.
    pub fn name(self) -> &'static str {
        match self {
            State::Z => "z",
            State::V => "v",
            State::M => "m",
            State::X => "x",
        }
    }

    /// Its binding number in the optimizer kernels (see `gpu::kernels::ENTRIES`).
    pub fn binding(self) -> u32 {
        match self {
            State::Z => 4,
            State::V => 5,
            State::M => 6,
            State::X => 7,
        }
    }

    /// Whether it starts as a copy of the parameters (else at zero).
    pub fn starts_at_params(self) -> bool {
        matches!(self, State::Z | State::X)
    }
}

/// Where a kind's evaluation weights x come from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum XRule {
    /// x is the parameters themselves (adamw).
    Params,
    /// x = (y - (1 - beta) z) / beta, computed in place (`to_eval`/`to_train`) or
    /// into another buffer (`x_into`); beta is the Schedule-Free interpolation weight.
    Interpolated {
        /// beta.
        beta: f64,
    },
    /// x is kept explicitly in state buffer [`State::X`] (sf_plus).
    Explicit,
}

/// A kind's NaP passes: the norms kernel, the projection kernel, and the f32s
/// per parameter they read and write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NapRule {
    /// The entry point computing each chunk's norms.
    pub norms: Entry,
    /// The entry point projecting each group back to its norm.
    pub project: Entry,
    /// f32s per parameter the two passes read or write.
    pub floats: u64,
}

/// Everything the engine needs to know about one kind, built from its config.
#[derive(Debug, Clone, PartialEq)]
pub struct KindSpec {
    /// The kind.
    pub kind: Kind,
    /// Its state buffers, in checkpoint order.
    pub state: &'static [State],
    /// The element pass, one dispatch per segment.
    pub step: Entry,
    /// f32s per parameter the step's passes read or write.
    pub step_floats: u64,
    /// Whether the step size is computed on the device from the loss (sf_plus's
    /// sums, reduction and scalar kernels run before the element pass).
    pub device_scalars: bool,
    /// Where x comes from.
    pub x: XRule,
    /// NaP's passes.
    pub nap: NapRule,
    /// The effective learning rate is gamma / rho^`lr_rho_power` (2 for SGD,
    /// whose step scales with the weight's norm squared; 1 for the Adam kinds).
    pub lr_rho_power: i32,
    /// Bytes of one state value: 4 (f32), or 2 with bf16 state (`state_dtype`).
    pub state_value_bytes: u64,
}

impl KindSpec {
    /// The description of `cfg`'s kind (inner momentum changes adamw_sf's state and kernel).
    ///
    /// f32s each step reads or writes per parameter:
    /// - `sgd_sf`: reads g, y, z; writes y, z: 5.
    /// - `adamw_sf`, `adamw_sf_paper`, `radam_sf`: reads g, y, z, v; writes y, z,
    ///   v: 7 (radam_sf updates v in its SGD phase too); with inner momentum m is
    ///   read and written as well: 9.
    /// - `adamw`: reads g, y, v, m; writes y, v, m: 7.
    /// - `sf_plus`: the sums pass reads g, z, x (3); the element pass reads g, y,
    ///   m, v, z, x and writes m, v, z, x, y (11): 14. Its reductions write and
    ///   read one 8-byte partial per 16 parameters and a few bytes per
    ///   4096-element chunk: not counted (NaP's norms likewise).
    ///
    /// NaP's passes (every tensor in a group):
    /// - `adamw`: norms read w (1), the projection reads and writes w (2): 3.
    /// - the (y, z) kinds: norms read y, z (2); the projection reads y, z and
    ///   writes y, z (4): 6.
    /// - `sf_plus`: norms read z, x (2); the projection reads z, x and writes z,
    ///   x, y (5): 7.
    pub fn new(cfg: &OptimConfig) -> KindSpec {
        use State::*;
        const NAP_YZ: NapRule = NapRule {
            norms: Entry::NORMS_SF,
            project: Entry::PROJECT_SF,
            floats: 6,
        };
        let interpolated = XRule::Interpolated { beta: cfg.sf_beta() };
        let momentum = cfg.inner_momentum > 0.0;
        let (state, step, step_floats, x, nap): (&'static [State], _, _, _, _) = match cfg.kind {
            Kind::SgdSf => (&[Z], Entry::SGD_SF_STEP, 5, interpolated, NAP_YZ),
            Kind::AdamwSf if momentum => (&[Z, V, M], Entry::ADAM_SF_MOMENTUM_STEP, 9, interpolated, NAP_YZ),
            Kind::AdamwSf | Kind::AdamwSfPaper | Kind::RadamSf => {
                (&[Z, V], Entry::ADAM_SF_STEP, 7, interpolated, NAP_YZ)
            }
            Kind::SfPlus => (
                &[Z, V, M, X],
                Entry::PLUS_STEP,
                3 + 11,
                XRule::Explicit,
                NapRule {
                    norms: Entry::NORMS_PLUS,
                    project: Entry::PROJECT_PLUS,
                    floats: 7,
                },
            ),
            Kind::Adamw => (
                &[V, M],
                Entry::ADAMW_STEP,
                7,
                XRule::Params,
                NapRule {
                    norms: Entry::NORMS_W,
                    project: Entry::PROJECT_W,
                    floats: 3,
                },
            ),
        };
        KindSpec {
            kind: cfg.kind,
            state,
            step,
            step_floats,
            device_scalars: cfg.kind == Kind::SfPlus,
            x,
            nap,
            lr_rho_power: if cfg.kind == Kind::SgdSf { 2 } else { 1 },
            state_value_bytes: match cfg.state_dtype {
                StateDtype::F32 => 4,
                StateDtype::Bf16 => 2,
            },
        }
    }

    /// Whether the kind keeps state buffer `s`.
    pub fn keeps(&self, s: State) -> bool {
        self.state.contains(&s)
    }

    /// Bytes one step moves per parameter (with NaP's passes when `nap`): the
    /// bench's roofline divides by this. (It counts every value as an f32: with
    /// bf16 state the state's share is half that; the bench's tables are f32's.)
    pub fn bytes_per_param(&self, nap: bool) -> u64 {
        4 * (self.step_floats + if nap { self.nap.floats } else { 0 })
    }

    /// Optimizer state in bytes per parameter, beyond parameters and gradients.
    pub fn state_bytes_per_param(&self) -> u64 {
        self.state_value_bytes * self.state.len() as u64
    }

    /// The effective learning rate of a group of norm `rho` under step size `gamma`.
    pub fn effective_lr(&self, gamma: f64, rho: f64) -> f64 {
        gamma / rho.powi(self.lr_rho_power)
    }

    /// x as `a * y + b * s`, where s is the state buffer named (or y itself when
    /// `None`): what a kernel that reads y and one other buffer needs to form x.
    pub fn x_from_y(&self) -> (f64, f64, Option<State>) {
        match self.x {
            XRule::Params => (1.0, 0.0, None),
            XRule::Explicit => (0.0, 1.0, Some(State::X)),
            XRule::Interpolated { beta } => (1.0 / beta, -(1.0 - beta) / beta, Some(State::Z)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_per_param_of_every_kind() {
        let bpp = |kind, mu: f64, nap| {
            let mut cfg = OptimConfig::new(kind);
            cfg.inner_momentum = mu;
            KindSpec::new(&cfg).bytes_per_param(nap)
        };
        assert_eq!(bpp(Kind::SgdSf, 0.0, false), 20);
        assert_eq!(bpp(Kind::AdamwSf, 0.0, false), 28);
        assert_eq!(bpp(Kind::AdamwSf, 0.9, false), 36);
        assert_eq!(bpp(Kind::RadamSf, 0.0, true), 52);
        assert_eq!(bpp(Kind::SfPlus, 0.0, false), 56);
        assert_eq!(bpp(Kind::SfPlus, 0.0, true), 84);
        assert_eq!(bpp(Kind::Adamw, 0.0, true), 40);
    }

    #[test]
    fn bf16_state_halves_the_state_bytes() {
        let mut cfg = OptimConfig::new(Kind::SfPlus);
        assert_eq!(KindSpec::new(&cfg).state_bytes_per_param(), 16);
        cfg.state_dtype = StateDtype::Bf16;
        assert_eq!(KindSpec::new(&cfg).state_bytes_per_param(), 8);
    }

    #[test]
    fn state_matches_the_kernels_bindings() {
        for kind in Kind::ALL {
            let spec = KindSpec::new(&OptimConfig::new(kind));
            assert!(
                crate::gpu::kernels::ENTRIES.contains(&spec.step),
                "{kind}: the step kernel is listed"
            );
            let used = spec.step.bindings;
            for s in [State::Z, State::V, State::M, State::X] {
                assert_eq!(spec.keeps(s), used.contains(&s.binding()), "{kind} {s:?}");
            }
        }
    }
}
