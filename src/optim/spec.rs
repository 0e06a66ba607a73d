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

/// Values per parameter a pass reads or writes, split by precision: f32 values
/// (parameters, gradients) and state values (f32, or bf16 with bf16 state).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Values {
    /// Parameters and gradients: always f32.
    pub f32: u64,
    /// State buffers (z, v, m, x): [`KindSpec::state_value_bytes`] each.
    pub state: u64,
}

impl Values {
    const fn new(f32: u64, state: u64) -> Values {
        Values { f32, state }
    }
}

/// Bytes of one f32 value (parameters and gradients are always f32).
pub const F32_BYTES: u64 = 4;

/// Bytes per parameter, split by precision: `f32` (parameters, gradients) and
/// `state` (the optimizer state, 2 bytes a value with bf16 state).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ParamBytes {
    /// Bytes of f32 values (parameters, gradients).
    pub f32: u64,
    /// Bytes of state values.
    pub state: u64,
}

impl ParamBytes {
    /// Both together.
    pub fn total(&self) -> u64 {
        self.f32 + self.state
    }
}

/// A kind's NaP passes: the norms kernel, the projection kernel, and the values
/// per parameter they read and write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NapRule {
    /// The entry point computing each chunk's norms.
    pub norms: Entry,
    /// The entry point projecting each group back to its norm.
    pub project: Entry,
    /// Values per parameter the two passes read or write.
    pub values: Values,
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
    /// Values per parameter the step's passes read or write.
    pub step_values: Values,
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
    /// Values each step reads or writes per parameter, as (f32, state):
    /// - `sgd_sf`: reads g, y, z; writes y, z: (3, 2).
    /// - `adamw_sf`, `adamw_sf_paper`, `radam_sf`: reads g, y, z, v; writes y, z,
    ///   v: (3, 4) (radam_sf updates v in its SGD phase too); with inner momentum m
    ///   is read and written as well: (3, 6).
    /// - `adamw`: reads g, y, v, m; writes y, v, m: (3, 4).
    /// - `sf_plus`: the sums pass reads g, z, x (1, 2); the element pass reads g,
    ///   y, m, v, z, x and writes m, v, z, x, y (3, 8): (4, 10). Its reductions
    ///   write and read one 8-byte partial per 16 parameters and a few bytes per
    ///   4096-element chunk: not counted (NaP's norms likewise).
    ///
    /// NaP's passes (every tensor in a group):
    /// - `adamw`: norms read w (1), the projection reads and writes w (2): (3, 0).
    /// - the (y, z) kinds: norms read y, z; the projection reads y, z and writes
    ///   y, z: (3, 3).
    /// - `sf_plus`: norms read z, x; the projection reads z, x and writes z, x,
    ///   y: (1, 6).
    pub fn new(cfg: &OptimConfig) -> KindSpec {
        use State::*;
        const NAP_YZ: NapRule = NapRule {
            norms: Entry::NORMS_SF,
            project: Entry::PROJECT_SF,
            values: Values::new(3, 3),
        };
        let interpolated = XRule::Interpolated { beta: cfg.sf_beta() };
        let momentum = cfg.inner_momentum > 0.0;
        let (state, step, step_values, x, nap): (&'static [State], _, _, _, _) = match cfg.kind {
            Kind::SgdSf => (&[Z], Entry::SGD_SF_STEP, Values::new(3, 2), interpolated, NAP_YZ),
            Kind::AdamwSf if momentum => (
                &[Z, V, M],
                Entry::ADAM_SF_MOMENTUM_STEP,
                Values::new(3, 6),
                interpolated,
                NAP_YZ,
            ),
            Kind::AdamwSf | Kind::AdamwSfPaper | Kind::RadamSf => {
                (&[Z, V], Entry::ADAM_SF_STEP, Values::new(3, 4), interpolated, NAP_YZ)
            }
            Kind::SfPlus => (
                &[Z, V, M, X],
                Entry::PLUS_STEP,
                Values::new(1 + 3, 2 + 8),
                XRule::Explicit,
                NapRule {
                    norms: Entry::NORMS_PLUS,
                    project: Entry::PROJECT_PLUS,
                    values: Values::new(1, 6),
                },
            ),
            Kind::Adamw => (
                &[V, M],
                Entry::ADAMW_STEP,
                Values::new(3, 4),
                XRule::Params,
                NapRule {
                    norms: Entry::NORMS_W,
                    project: Entry::PROJECT_W,
                    values: Values::new(3, 0),
                },
            ),
        };
        KindSpec {
            kind: cfg.kind,
            state,
            step,
            step_values,
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

    /// Bytes one step reads and writes per parameter (with NaP's passes when
    /// `nap`), split by precision: the bench's roofline divides by their total.
    pub fn moved(&self, nap: bool) -> ParamBytes {
        let nap = if nap { self.nap.values } else { Values::new(0, 0) };
        ParamBytes {
            f32: F32_BYTES * (self.step_values.f32 + nap.f32),
            state: self.state_value_bytes * (self.step_values.state + nap.state),
        }
    }

    /// Bytes resident per parameter, split by precision: parameters and gradients
    /// (f32), and the optimizer state. The memory plan (`train::memory`) and the
    /// bench's memory table read this.
    pub fn kept(&self) -> ParamBytes {
        ParamBytes {
            f32: 2 * F32_BYTES,
            state: self.state_value_bytes * self.state.len() as u64,
        }
    }

    /// Bytes one step moves per parameter, both precisions: [`KindSpec::moved`]'s total.
    pub fn bytes_per_param(&self, nap: bool) -> u64 {
        self.moved(nap).total()
    }

    /// Optimizer state in bytes per parameter, beyond parameters and gradients:
    /// [`KindSpec::kept`]'s state.
    pub fn state_bytes_per_param(&self) -> u64 {
        self.kept().state
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
    fn bf16_state_moves_and_keeps_two_bytes_a_state_value() {
        let split = |kind, mu: f64, nap| {
            let mut cfg = OptimConfig::new(kind);
            cfg.inner_momentum = mu;
            cfg.state_dtype = StateDtype::Bf16;
            let spec = KindSpec::new(&cfg);
            let (m, k) = (spec.moved(nap), spec.kept());
            ((m.f32, m.state), (k.f32, k.state))
        };
        // The figure: adamw_sf moves 20 bytes a parameter with bf16 state, not 28.
        assert_eq!(split(Kind::AdamwSf, 0.0, false), ((12, 8), (8, 4)));
        assert_eq!(split(Kind::SgdSf, 0.0, false), ((12, 4), (8, 2)));
        assert_eq!(split(Kind::AdamwSf, 0.9, false), ((12, 12), (8, 6)));
        assert_eq!(split(Kind::SfPlus, 0.0, true), ((20, 32), (8, 8)));
        assert_eq!(split(Kind::Adamw, 0.0, true), ((24, 8), (8, 4)));
        for kind in Kind::ALL {
            let f32 = KindSpec::new(&OptimConfig::new(kind));
            let bf16 = KindSpec::new(&OptimConfig {
                state_dtype: StateDtype::Bf16,
                ..OptimConfig::new(kind)
            });
            for nap in [false, true] {
                assert_eq!(f32.moved(nap).f32, bf16.moved(nap).f32, "{kind}");
                assert_eq!(f32.moved(nap).state, 2 * bf16.moved(nap).state, "{kind}");
            }
            assert_eq!(f32.kept().total(), 8 + f32.state_bytes_per_param());
        }
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
