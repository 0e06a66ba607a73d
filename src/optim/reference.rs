//! The f64 CPU reference of every optimizer kind and of NaP projection.
//!
//! This is the oracle the GPU kernels are tested against, so it is written to be read
//! next to `docs/algorithms.md`: one function per kind, the formulas of the spec line by
//! line, no fusion and no cleverness. The sections named below are that page's.
//!
//! Notation: `k` = steps taken before this one, `t = k + 1`, `g` = gradient taken at `y`.
//!
//! State per kind:
//! - Schedule-Free kinds (`sgd_sf`, `adamw_sf`, `adamw_sf_paper`, `radam_sf`): `y` and `z`;
//!   `x = (y - (1 - beta) z) / beta` is implicit (section 1).
//! - `sf_plus`: explicit `x`, `z`, `m`, `v`, and `y` (section 7).
//! - `adamw`: the weights (kept in `y`), `m`, `v` (section 8).

// The per-element loops index several sequences (y, z, m, v, g) by the same position,
// exactly as the formulas do; iterator zips of five slices would hide them.
#![allow(clippy::needless_range_loop)]

use crate::arena::{Layout, TensorSpec};
use crate::error::{Error, Result};
use crate::nap::{NapConfig, MIN_NORM};
use crate::optim::bf16::{self, Rounding, StateDtype};
use crate::optim::config::{Kind, OptimConfig};
use crate::optim::spec::{KindSpec, State};

/// The per-step scalars of the last step (section 2), for tests.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RefScalars {
    /// The step size gamma (for `adamw`: `lr_k = lr * mult(k)`).
    pub gamma: f64,
    /// The averaging weight c of x (0 for `adamw`).
    pub c: f64,
    /// The interpolation weight beta of y (`beta_k` for `sf_plus`; 0 for `adamw`).
    pub beta: f64,
    /// The largest gamma so far (0 for `adamw`).
    pub lr_max: f64,
    /// The sum of the averaging weights so far (0 for `adamw`).
    pub w_sum: f64,
}

/// One tensor of a [`ReferenceState`]: every sequence the kind keeps, in f64.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TensorState {
    /// Its name.
    pub name: String,
    /// Whether weight decay applies to it.
    pub decay: bool,
    /// The training weights y (for `adamw`: the weights).
    pub y: Vec<f64>,
    /// The base sequence z (empty for `adamw`, which keeps none).
    pub z: Vec<f64>,
    /// `sf_plus`'s explicit x (empty for the other kinds, whose x follows from y and z).
    pub x: Vec<f64>,
    /// The first moment (empty: zeros, as for a kind that keeps none).
    pub m: Vec<f64>,
    /// The second moment (empty: zeros, as for a kind that keeps none).
    pub v: Vec<f64>,
}

/// One NaP group of a [`ReferenceState`]: its tensors and its norm rho.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GroupState {
    /// The names of its tensors, in order.
    pub tensors: Vec<String>,
    /// The norm every step projects the group back to.
    pub rho: f64,
}

/// Everything the next step of a [`Reference`] depends on besides the gradient
/// and the loss: the sequences of every tensor and the scalar recurrences.
/// [`Reference::state`] takes it, [`Reference::from_state`] starts from it; a
/// device's optimizer gives it through `GpuOptimizer::reference_state_async`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ReferenceState {
    /// The optimizer's settings.
    pub cfg: OptimConfig,
    /// Every tensor, in order.
    pub tensors: Vec<TensorState>,
    /// The NaP groups (empty: no NaP).
    pub nap: Vec<GroupState>,
    /// Steps taken so far.
    pub k: u64,
    /// The largest gamma so far (-1 before the first step of the (y, z) kinds,
    /// eps before sf_plus's first; unused by adamw).
    pub lr_max: f64,
    /// The sum of the averaging weights so far.
    pub w_sum: f64,
    /// `sf_plus`: e_hat of the last step (0 before the first).
    pub e_prev: f64,
    /// `sf_plus` with `polyak_growth`: the last step's plain Polyak step or cap (0 before the first).
    pub alpha_cap: f64,
}

/// One NaP group: the indices of its tensors and its target norm rho.
#[derive(Debug, Clone)]
struct Group {
    tensors: Vec<usize>,
    rho: f64,
}

/// The f64 reference optimizer over a list of named tensors.
#[derive(Debug, Clone)]
pub struct Reference {
    cfg: OptimConfig,
    names: Vec<String>,
    decay: Vec<bool>,
    groups: Vec<Group>,
    /// Steps taken so far.
    k: u64,
    /// Training weights y (for `adamw`: the weights).
    y: Vec<Vec<f64>>,
    /// Base sequence z (unused by `adamw`).
    z: Vec<Vec<f64>>,
    /// Explicit evaluation weights x (`sf_plus` only; the other SF kinds derive x from y, z).
    x: Vec<Vec<f64>>,
    /// First moment (`adamw`, `sf_plus`, `adamw_sf` with inner momentum).
    m: Vec<Vec<f64>>,
    /// Second moment (every Adam-like kind).
    v: Vec<Vec<f64>>,
    /// Largest gamma so far: starts at -1 (SF kinds) or eps (`sf_plus`).
    lr_max: f64,
    /// Sum of the averaging weights w.
    w_sum: f64,
    /// `sf_plus`: the stored gradient-norm estimate (e_hat of the previous step).
    e_prev: f64,
    /// `sf_plus` with `polyak_growth`: min(F / e_hat, cap) of the last step, or
    /// its cap where that is 0; 0 before the first step.
    alpha_cap: f64,
    /// The last step's gamma.
    gamma: f64,
    /// The last step's c.
    c: f64,
    /// The last step's interpolation weight beta.
    beta: f64,
    /// Each tensor's offset in the arena: the element number of bf16 state's
    /// random bits (docs/algorithms.md, "bf16 state").
    offsets: Vec<usize>,
}

impl Reference {
    /// `params`: (name, initial values) in order; `decay[i]`: whether weight decay applies to tensor i;
    /// `nap`: NaP groups by tensor name (rho None => Frobenius norm of the initial values of the group).
    pub fn new(
        cfg: &OptimConfig,
        params: &[(String, Vec<f64>)],
        decay: &[bool],
        nap: Option<&NapConfig>,
    ) -> Result<Reference> {
        if decay.len() != params.len() {
            return Err(Error::invalid(
                "decay",
                format!("has {} entries for {} tensors", decay.len(), params.len()),
            ));
        }
        let sf_plus = cfg.kind == Kind::SfPlus;
        let tensors: Vec<TensorState> = params
            .iter()
            .zip(decay)
            .map(|((name, values), &decay)| TensorState {
                name: name.clone(),
                decay,
                y: values.clone(),
                z: if cfg.kind == Kind::Adamw {
                    Vec::new()
                } else {
                    values.clone()
                },
                x: if sf_plus { values.clone() } else { Vec::new() },
                m: Vec::new(),
                v: Vec::new(),
            })
            .collect();
        let mut groups = Vec::new();
        for group in nap.map(|n| n.groups.as_slice()).unwrap_or_default() {
            let rho = match group.rho {
                Some(rho) => rho,
                None => {
                    let values: Vec<&[f64]> = group
                        .tensors
                        .iter()
                        .filter_map(|name| params.iter().find(|(n, _)| n == name))
                        .map(|(_, v)| v.as_slice())
                        .collect();
                    values.iter().flat_map(|v| v.iter()).map(|v| v * v).sum::<f64>().sqrt()
                }
            };
            groups.push(GroupState {
                tensors: group.tensors.clone(),
                rho,
            });
        }
        let bf16 = cfg.state_dtype == StateDtype::Bf16;
        let tensors = tensors
            .into_iter()
            .map(|t| match bf16 {
                // bf16 state starts at the parameters rounded to nearest.
                true => TensorState {
                    z: t.z.iter().map(|&v| nearest_bf16(v)).collect(),
                    x: t.x.iter().map(|&v| nearest_bf16(v)).collect(),
                    ..t
                },
                false => t,
            })
            .collect();
        Reference::from_state(&ReferenceState {
            cfg: cfg.clone(),
            tensors,
            nap: groups,
            k: 0,
            lr_max: match cfg.kind {
                Kind::SfPlus => cfg.eps,
                Kind::Adamw => 0.0,
                _ => -1.0,
            },
            w_sum: 0.0,
            e_prev: 0.0,
            alpha_cap: 0.0,
        })
    }

    /// A reference at `state` (what [`Reference::state`] returns, or a state read
    /// back from a device or a checkpoint): the next [`Reference::step`] is the
    /// step the optimizer would take from there. The error names what is
    /// missing or inconsistent (a sequence of the wrong length, an unknown tensor
    /// in a NaP group).
    pub fn from_state(state: &ReferenceState) -> Result<Reference> {
        let cfg = &state.cfg;
        cfg.validate()?;
        let names: Vec<String> = state.tensors.iter().map(|t| t.name.clone()).collect();
        let sf_plus = cfg.kind == Kind::SfPlus;
        let (mut y, mut z, mut x, mut m, mut v) = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for t in &state.tensors {
            let n = t.y.len();
            let sequence = |seq: &[f64], what: &str, kept: bool| -> Result<Vec<f64>> {
                match (kept, seq.len()) {
                    (false, _) => Ok(Vec::new()),
                    (true, 0) if what == "m" || what == "v" => Ok(vec![0.0; n]),
                    (true, len) if len == n => Ok(seq.to_vec()),
                    (true, len) => Err(Error::invalid(
                        format!("state.{}.{what}", t.name),
                        format!("has {len} values, expected {n} (as y)"),
                    )),
                }
            };
            z.push(sequence(&t.z, "z", cfg.kind != Kind::Adamw)?);
            x.push(sequence(&t.x, "x", sf_plus)?);
            m.push(sequence(&t.m, "m", true)?);
            v.push(sequence(&t.v, "v", true)?);
            y.push(t.y.clone());
        }

        let mut groups = Vec::new();
        let mut seen = vec![false; names.len()];
        for (gi, group) in state.nap.iter().enumerate() {
            let field = format!("nap.groups[{gi}].tensors");
            let mut tensors = Vec::new();
            for name in &group.tensors {
                let i = names
                    .iter()
                    .position(|n| n == name)
                    .ok_or_else(|| Error::invalid(&field, format!("no tensor `{name}`")))?;
                if seen[i] {
                    return Err(Error::invalid(&field, format!("tensor `{name}` is in two groups")));
                }
                seen[i] = true;
                tensors.push(i);
            }
            groups.push(Group {
                tensors,
                rho: group.rho,
            });
        }

        let beta = match cfg.kind {
            Kind::SfPlus => sf_plus_beta(cfg, state.k),
            Kind::Adamw => 0.0,
            _ => cfg.sf_beta(),
        };
        Ok(Reference {
            cfg: cfg.clone(),
            decay: state.tensors.iter().map(|t| t.decay).collect(),
            names,
            groups,
            k: state.k,
            y,
            z,
            x,
            m,
            v,
            lr_max: state.lr_max,
            w_sum: state.w_sum,
            e_prev: state.e_prev,
            alpha_cap: state.alpha_cap,
            gamma: 0.0,
            c: 0.0,
            beta,
            offsets: arena_offsets(&state.tensors)?,
        })
    }

    /// Its whole state, from which [`Reference::from_state`] builds the same reference.
    pub fn state(&self) -> ReferenceState {
        let tensors = (0..self.y.len())
            .map(|i| TensorState {
                name: self.names[i].clone(),
                decay: self.decay[i],
                y: self.y[i].clone(),
                z: self.z.get(i).cloned().unwrap_or_default(),
                x: self.x.get(i).cloned().unwrap_or_default(),
                m: self.m[i].clone(),
                v: self.v[i].clone(),
            })
            .collect();
        ReferenceState {
            cfg: self.cfg.clone(),
            tensors,
            nap: self
                .groups
                .iter()
                .map(|g| GroupState {
                    tensors: g.tensors.iter().map(|&i| self.names[i].clone()).collect(),
                    rho: g.rho,
                })
                .collect(),
            k: self.k,
            lr_max: self.lr_max,
            w_sum: self.w_sum,
            e_prev: self.e_prev,
            alpha_cap: self.alpha_cap,
        }
    }

    /// One optimizer step with gradients (one Vec per tensor, same order/lengths) taken at y;
    /// `loss` = F at y (required for sf_plus; Err(Error::Numerical) if missing/non-finite, or if e_hat == 0
    /// i.e. all-zero gradient).
    /// Applies weight decay as each kind defines it, then (if NaP groups) the projection of section 9.
    pub fn step(&mut self, grads: &[Vec<f64>], loss: Option<f64>) -> Result<()> {
        if grads.len() != self.y.len() {
            return Err(Error::invalid(
                "grads",
                format!("has {} tensors, expected {}", grads.len(), self.y.len()),
            ));
        }
        for (i, g) in grads.iter().enumerate() {
            if g.len() != self.y[i].len() {
                return Err(Error::invalid(
                    format!("grads.{}", self.names[i]),
                    format!("has {} values, expected {}", g.len(), self.y[i].len()),
                ));
            }
        }
        match self.cfg.kind {
            Kind::SgdSf => self.step_sgd_sf(grads),
            Kind::AdamwSf => self.step_adamw_sf(grads),
            Kind::AdamwSfPaper => self.step_adamw_sf_paper(grads),
            Kind::RadamSf => self.step_radam_sf(grads),
            Kind::SfPlus => self.step_sf_plus(grads, loss)?,
            Kind::Adamw => self.step_adamw(grads),
        }
        let step = u32::try_from(self.k + 1).unwrap_or(u32::MAX);
        self.round_state(step, 0, false);
        self.k += 1;
        self.project_groups();
        self.round_state(step, bf16::NAP_STREAM, true);
        Ok(())
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.k
    }

    /// Training weights y of tensor i (for adamw: the weights).
    pub fn y(&self, i: usize) -> Vec<f64> {
        self.y[i].clone()
    }

    /// Evaluation weights x of tensor i (sf kinds: (y - (1-beta) z)/beta, sf_plus: its explicit x; adamw: the weights).
    pub fn x(&self, i: usize) -> Vec<f64> {
        match self.cfg.kind {
            Kind::Adamw => self.y[i].clone(),
            Kind::SfPlus => self.x[i].clone(),
            _ => {
                let beta = self.cfg.sf_beta();
                let (y, z) = (&self.y[i], &self.z[i]);
                (0..y.len()).map(|j| (y[j] - (1.0 - beta) * z[j]) / beta).collect()
            }
        }
    }

    /// Base sequence z of tensor i (adamw: the weights).
    pub fn z(&self, i: usize) -> Vec<f64> {
        match self.cfg.kind {
            Kind::Adamw => self.y[i].clone(),
            _ => self.z[i].clone(),
        }
    }

    /// The last step's scalars, for tests: gamma, c, the interpolation beta used (beta_k for sf_plus), lr_max, W_sum.
    pub fn scalars(&self) -> RefScalars {
        RefScalars {
            gamma: self.gamma,
            c: self.c,
            beta: self.beta,
            lr_max: self.lr_max,
            w_sum: self.w_sum,
        }
    }

    /// Current Frobenius norms of (z, x) of NaP group g (for adamw both are the weights' norm), and its rho.
    pub fn group_norms(&self, g: usize) -> (f64, f64, f64) {
        let group = &self.groups[g];
        let z: Vec<Vec<f64>> = (0..self.y.len()).map(|i| self.z(i)).collect();
        let x: Vec<Vec<f64>> = (0..self.y.len()).map(|i| self.x(i)).collect();
        (
            group_norm(&z, &group.tensors),
            group_norm(&x, &group.tensors),
            group.rho,
        )
    }

    /// The tensors' names, in the order of `params`.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    // ----- shared pieces -------------------------------------------------------------

    /// `t = k + 1` as a float.
    fn t(&self) -> f64 {
        (self.k + 1) as f64
    }

    /// The weight decay of tensor i (0 where decay is off).
    fn weight_decay(&self, i: usize) -> f64 {
        if self.decay[i] {
            self.cfg.weight_decay
        } else {
            0.0
        }
    }

    /// Section "The per-step scalars": `sched = t / W if k < W else 1` (W = 0: no warmup).
    fn warmup(&self) -> f64 {
        let w = self.cfg.warmup_steps;
        if self.k < w {
            self.t() / w as f64
        } else {
            1.0
        }
    }

    /// Section "The per-step scalars", given this step's gamma: updates lr_max and W_sum, records gamma and c, returns c.
    fn averaging_weight(&mut self, gamma: f64) -> f64 {
        let (r, p) = (self.cfg.r, self.cfg.weight_lr_power);
        self.lr_max = self.lr_max.max(gamma);
        let w = self.t().powf(r) * self.lr_max.powf(p);
        self.w_sum += w;
        let c = if self.w_sum == 0.0 {
            0.0
        } else if self.cfg.sf_window > 0 {
            // The window: c never falls below 1 / W, so x reaches back about W steps.
            (w / self.w_sum).max(1.0 / self.cfg.sf_window as f64)
        } else {
            w / self.w_sum
        };
        self.gamma = gamma;
        self.c = c;
        c
    }

    /// Section "sgd_sf", with the direction `u` (weight decay included) of every element:
    /// `y = lerp(y, z, c) + gamma (beta (1 - c) - 1) u` with the old z, then `z = z - gamma u`.
    fn sf_update(&mut self, u: &[Vec<f64>], gamma: f64, c: f64) {
        let beta = self.cfg.sf_beta();
        let y_lr = gamma * (beta * (1.0 - c) - 1.0);
        for i in 0..self.y.len() {
            let (y, z) = (&mut self.y[i], &mut self.z[i]);
            for j in 0..y.len() {
                y[j] = lerp(y[j], z[j], c) + y_lr * u[i][j];
                z[j] -= gamma * u[i][j];
            }
        }
        self.beta = beta;
    }

    // ----- one function per kind -----------------------------------------------------

    /// Section "sgd_sf": Schedule-Free SGD.
    fn step_sgd_sf(&mut self, grads: &[Vec<f64>]) {
        let gamma = self.cfg.lr() * self.warmup();
        let c = self.averaging_weight(gamma);
        let mut u = grads.to_vec();
        for i in 0..u.len() {
            let wd = self.weight_decay(i);
            for j in 0..u[i].len() {
                u[i][j] = grads[i][j] + wd * self.y[i][j];
            }
        }
        self.sf_update(&u, gamma, c);
    }

    /// Section "adamw_sf": Schedule-Free AdamW, optionally with inner momentum mu.
    fn step_adamw_sf(&mut self, grads: &[Vec<f64>]) {
        let (_, b2) = self.cfg.betas();
        let (eps, mu, t) = (self.cfg.eps, self.cfg.inner_momentum, self.t());
        let gamma = self.cfg.lr() * self.warmup();
        let c = self.averaging_weight(gamma);
        let bc2 = 1.0 - b2.powf(t);
        let mut u = grads.to_vec();
        for i in 0..u.len() {
            let wd = self.weight_decay(i);
            for j in 0..u[i].len() {
                let g = grads[i][j];
                self.v[i][j] = b2 * self.v[i][j] + (1.0 - b2) * g * g;
                let d = (self.v[i][j] / bc2).sqrt() + eps;
                u[i][j] = if mu > 0.0 {
                    self.m[i][j] = mu * self.m[i][j] + (1.0 - mu) * g;
                    (self.m[i][j] / (1.0 - mu.powf(t))) / d
                } else {
                    g / d
                };
                u[i][j] += wd * self.y[i][j];
            }
        }
        self.sf_update(&u, gamma, c);
    }

    /// Section "adamw_sf_paper": as adamw_sf, but `gamma = lr * sched * sqrt(1 - b2^t)` and `d = sqrt(v) + eps`.
    fn step_adamw_sf_paper(&mut self, grads: &[Vec<f64>]) {
        let (_, b2) = self.cfg.betas();
        let (eps, t) = (self.cfg.eps, self.t());
        let gamma = self.cfg.lr() * self.warmup() * (1.0 - b2.powf(t)).sqrt();
        let c = self.averaging_weight(gamma);
        let mut u = grads.to_vec();
        for i in 0..u.len() {
            let wd = self.weight_decay(i);
            for j in 0..u[i].len() {
                let g = grads[i][j];
                self.v[i][j] = b2 * self.v[i][j] + (1.0 - b2) * g * g;
                let d = self.v[i][j].sqrt() + eps;
                u[i][j] = g / d + wd * self.y[i][j];
            }
        }
        self.sf_update(&u, gamma, c);
    }

    /// Section "radam_sf": Schedule-Free RAdam (rectified step size, no warmup).
    fn step_radam_sf(&mut self, grads: &[Vec<f64>]) {
        let (_, b2) = self.cfg.betas();
        let (eps, t) = (self.cfg.eps, self.t());
        let bc2 = 1.0 - b2.powf(t);
        let rho_inf = 2.0 / (1.0 - b2) - 1.0;
        let rho_t = rho_inf - 2.0 * t * b2.powf(t) / bc2;
        let adaptive = rho_t > 4.0;
        let rect = if adaptive {
            ((rho_t - 4.0) * (rho_t - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t)).sqrt()
        } else if self.cfg.silent_sgd_phase {
            0.0
        } else {
            1.0
        };
        let gamma = self.cfg.lr() * rect;
        let c = self.averaging_weight(gamma);
        let mut u = grads.to_vec();
        for i in 0..u.len() {
            let wd = self.weight_decay(i);
            for j in 0..u[i].len() {
                let g = grads[i][j];
                self.v[i][j] = b2 * self.v[i][j] + (1.0 - b2) * g * g;
                u[i][j] = if adaptive {
                    g / ((self.v[i][j] / bc2).sqrt() + eps)
                } else {
                    g
                };
                u[i][j] += wd * self.y[i][j];
            }
        }
        self.sf_update(&u, gamma, c);
    }

    /// Section "sf_plus": ScheduleFree+ (Polyak step size from the loss, explicit x).
    fn step_sf_plus(&mut self, grads: &[Vec<f64>], loss: Option<f64>) -> Result<()> {
        let f = match loss {
            Some(f) if f.is_finite() => f,
            Some(f) => return Err(Error::Numerical(format!("sf_plus: the loss must be finite, got {f}"))),
            None => return Err(Error::Numerical("sf_plus: a step needs the loss".into())),
        };
        let (b1, b2) = self.cfg.betas();
        let (eps, pb, t) = (self.cfg.eps, self.cfg.polyak_beta, self.t());
        let beta = sf_plus_beta(&self.cfg, self.k);

        // The two sums over every tensor, with z and x as they were before this step.
        let mut l1 = 0.0;
        let mut dot = 0.0;
        for i in 0..grads.len() {
            for j in 0..grads[i].len() {
                let g = grads[i][j];
                l1 += g.abs();
                dot += g * (self.z[i][j] - self.x[i][j]);
            }
        }
        let big_i = beta * dot;
        let e = pb * self.e_prev + (1.0 - pb) * l1 * (std::f64::consts::PI / 2.0).sqrt();
        let e_hat = e / (1.0 - pb.powf(t));
        if !(e_hat.is_finite() && e_hat > 0.0) {
            return Err(Error::Numerical(format!(
                "sf_plus: gradient-norm estimate e_hat = {e_hat} (all-zero or non-finite gradient)"
            )));
        }
        self.e_prev = e_hat; // sic: e_hat, not e, is carried to the next step
        let alpha = self.capped((f + big_i).max(0.0) / e_hat, f.max(0.0) / e_hat);
        let gamma = self.cfg.lr().max(eps) * alpha;
        self.lr_max = self.lr_max.max(gamma);
        let c = if self.k < self.cfg.c_warmup {
            1.0 // W_sum is not accumulated during c_warmup
        } else {
            let w = t.powf(self.cfg.r) * self.lr_max.powf(self.cfg.weight_lr_power);
            self.w_sum += w;
            if self.w_sum == 0.0 {
                0.0
            } else {
                w / self.w_sum
            }
        };

        let bc1 = 1.0 - b1.powf(t);
        let bc2 = 1.0 - b2.powf(t);
        for i in 0..grads.len() {
            let wd = self.weight_decay(i);
            for j in 0..grads[i].len() {
                let g = grads[i][j];
                self.z[i][j] -= gamma * gamma * wd * self.y[i][j];
                self.m[i][j] = b1 * self.m[i][j] + (1.0 - b1) * g;
                self.v[i][j] = b2 * self.v[i][j] + (1.0 - b2) * g * g;
                self.z[i][j] -= gamma * (self.m[i][j] / bc1) / ((self.v[i][j] / bc2).sqrt() + eps);
                self.x[i][j] = (1.0 - c) * self.x[i][j] + c * self.z[i][j];
                self.y[i][j] = beta * self.x[i][j] + (1.0 - beta) * self.z[i][j];
            }
        }
        self.gamma = gamma;
        self.c = c;
        self.beta = beta;
        Ok(())
    }

    /// sfnap's extension of sf_plus: with `polyak_growth` g, alpha_k <= cap_k =
    /// g * alpha_cap, where alpha_cap is min(F / e_hat, cap) of the last step (its
    /// plain Polyak step, I left out, or its cap where that is 0). A step that I
    /// pulls down thus does not pull the cap down. The first step is not capped.
    fn capped(&mut self, alpha: f64, plain: f64) -> f64 {
        let Some(g) = self.cfg.polyak_growth else {
            return alpha;
        };
        if self.alpha_cap <= 0.0 {
            self.alpha_cap = plain;
            return alpha;
        }
        let cap = self.alpha_cap * g;
        let next = plain.min(cap);
        self.alpha_cap = if next > 0.0 { next } else { cap };
        alpha.min(cap)
    }

    /// Section "adamw and its schedules": decoupled AdamW with `lr_k = lr * schedule.multiplier(k)`.
    fn step_adamw(&mut self, grads: &[Vec<f64>]) {
        let (b1, b2) = self.cfg.betas();
        let (eps, t) = (self.cfg.eps, self.t());
        let lr_k = self.cfg.lr() * self.cfg.schedule.multiplier(self.k);
        let bc1 = 1.0 - b1.powf(t);
        let bc2 = 1.0 - b2.powf(t);
        for i in 0..grads.len() {
            let wd = self.weight_decay(i);
            for j in 0..grads[i].len() {
                let g = grads[i][j];
                let w = &mut self.y[i][j];
                *w *= 1.0 - lr_k * wd;
                self.m[i][j] = b1 * self.m[i][j] + (1.0 - b1) * g;
                self.v[i][j] = b2 * self.v[i][j] + (1.0 - b2) * g * g;
                let m_hat = self.m[i][j] / bc1;
                let v_hat = self.v[i][j] / bc2;
                *w -= lr_k * m_hat / (v_hat.sqrt() + eps);
            }
        }
        self.gamma = lr_k;
    }

    // ----- bf16 state ------------------------------------------------------------

    /// With bf16 state, rounds every state buffer the kind keeps as the device
    /// writes it: each value to f32 (the device computes in f32), then to bf16 with
    /// the random bits of (state_seed, `step`, stream `binding + stream`, element).
    /// `nap_only`: only z and x (what NaP's projection writes).
    fn round_state(&mut self, step: u32, stream: u32, nap_only: bool) {
        if self.cfg.state_dtype != StateDtype::Bf16 || (nap_only && self.groups.is_empty()) {
            return;
        }
        let (seed, rounding) = (self.cfg.state_seed, self.cfg.state_rounding);
        for &s in KindSpec::new(&self.cfg).state {
            if nap_only && !matches!(s, State::Z | State::X) {
                continue;
            }
            let key = bf16::stream_key(seed, step, s.binding() + stream);
            let seqs = match s {
                State::Z => &mut self.z,
                State::V => &mut self.v,
                State::M => &mut self.m,
                State::X => &mut self.x,
            };
            for (seq, &offset) in seqs.iter_mut().zip(&self.offsets) {
                for (j, v) in seq.iter_mut().enumerate() {
                    *v = bf16::round(*v as f32, rounding, key, (offset + j) as u32) as f64;
                }
            }
        }
    }

    // ----- section 9: NaP ------------------------------------------------------------

    /// Projects every NaP group back to its norm rho, as section 9 defines it per kind.
    fn project_groups(&mut self) {
        if self.groups.is_empty() {
            return;
        }
        let beta = self.beta;
        match self.cfg.kind {
            Kind::Adamw => {
                for group in &self.groups {
                    project(&mut self.y, group);
                }
            }
            Kind::SfPlus => {
                for group in &self.groups {
                    project(&mut self.z, group);
                    project(&mut self.x, group);
                    for &i in &group.tensors {
                        self.y[i] = interpolate(&self.x[i], &self.z[i], beta);
                    }
                }
            }
            _ => {
                let mut x: Vec<Vec<f64>> = (0..self.y.len()).map(|i| self.x(i)).collect();
                for group in &self.groups {
                    project(&mut self.z, group);
                    project(&mut x, group);
                    for &i in &group.tensors {
                        self.y[i] = interpolate(&x[i], &self.z[i], beta);
                    }
                }
            }
        }
    }
}

/// Section "sf_plus": `beta_k = 1 - exp((1 - q) ln(1 - sf_beta1) + q ln(1 - sf_beta1_max))`,
/// `q = min(k / anneal_steps, 1)`; with `anneal_steps = 0`, `beta_k = sf_beta1` throughout.
fn sf_plus_beta(cfg: &OptimConfig, k: u64) -> f64 {
    let n = cfg.sf_beta1_anneal_steps;
    if n == 0 {
        return cfg.sf_beta1;
    }
    let q = (k as f64 / n as f64).min(1.0);
    1.0 - ((1.0 - q) * (1.0 - cfg.sf_beta1).ln() + q * (1.0 - cfg.sf_beta1_max).ln()).exp()
}

/// `v` as f32, rounded to the nearest bf16 (where bf16 state starts).
fn nearest_bf16(v: f64) -> f64 {
    bf16::round(v as f32, Rounding::Nearest, 0, 0) as f64
}

/// Each tensor's offset in the arena the device lays out for them (decayed
/// tensors first, each aligned to [`crate::arena::ALIGN`]).
fn arena_offsets(tensors: &[TensorState]) -> Result<Vec<usize>> {
    let specs: Vec<TensorSpec> = tensors
        .iter()
        .map(|t| TensorSpec {
            decay: t.decay,
            ..TensorSpec::new(&t.name, &[t.y.len().max(1)])
        })
        .collect();
    let layout = Layout::new(&specs, u64::MAX)?;
    Ok(layout.slots.iter().map(|s| s.offset).collect())
}

/// `lerp(a, b, w) = a + w (b - a)`, evaluated as PyTorch does so that it is exact at w = 1.
fn lerp(a: f64, b: f64, w: f64) -> f64 {
    if w < 0.5 {
        a + w * (b - a)
    } else {
        b - (b - a) * (1.0 - w)
    }
}

/// `beta x + (1 - beta) z`, element by element.
fn interpolate(x: &[f64], z: &[f64], beta: f64) -> Vec<f64> {
    x.iter().zip(z).map(|(x, z)| beta * x + (1.0 - beta) * z).collect()
}

/// `||v||_G`: the Frobenius norm over the tensors `tensors` of `seq`.
fn group_norm(seq: &[Vec<f64>], tensors: &[usize]) -> f64 {
    tensors
        .iter()
        .flat_map(|&i| seq[i].iter())
        .map(|v| v * v)
        .sum::<f64>()
        .sqrt()
}

/// `proj(v) = rho_G * v / max(||v||_G, MIN_NORM)` over the tensors of `group`.
fn project(seq: &mut [Vec<f64>], group: &Group) {
    let denom = group_norm(seq, &group.tensors).max(MIN_NORM);
    for &i in &group.tensors {
        for v in seq[i].iter_mut() {
            *v = group.rho * *v / denom;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nap::NapGroup;

    fn params() -> Vec<(String, Vec<f64>)> {
        vec![
            ("a".to_string(), vec![0.5, -1.0, 2.0]),
            ("b".to_string(), vec![0.25, 0.75, -0.5, 1.5]),
        ]
    }

    fn grads(step: u64) -> Vec<Vec<f64>> {
        let s = step as f64;
        vec![
            vec![0.1 + 0.01 * s, -0.2, 0.3 * (s + 1.0).sin()],
            vec![-0.05, 0.4 * (s * 0.7).cos(), 0.15, -0.25 + 0.02 * s],
        ]
    }

    /// gamma of each step of sf_plus under `cfg` for the given losses, with the
    /// same gradient every step (so that alpha follows the loss).
    fn plus_gammas(cfg: &OptimConfig, losses: &[f64]) -> Vec<f64> {
        let mut r = Reference::new(cfg, &params(), &[true, true], None).unwrap();
        losses
            .iter()
            .map(|&f| {
                r.step(&grads(0), Some(f)).unwrap();
                r.scalars().gamma
            })
            .collect()
    }

    #[test]
    fn sf_plus_growth_caps_the_step_and_a_zero_step_does_not_pin_it() {
        // A tiny beta makes I = beta g . (z - x) negligible: alpha follows F.
        let mut reference = OptimConfig::new(Kind::SfPlus);
        reference.sf_beta1 = 1e-12;
        let losses = [1.0, 4.0, 16.0, 0.0, 32.0, 8.0];
        let free = plus_gammas(&reference, &losses);
        let mut capped = reference.clone();
        capped.polyak_growth = Some(2.0);
        let got = plus_gammas(&capped, &losses);
        // The first step is not capped; then at most twice the last cap or
        // plain step; a zero step (F = 0) lets the cap keep growing.
        assert_eq!(got[0], free[0]);
        assert!((got[1] - 2.0 * got[0]).abs() <= 1e-12 * got[0], "{got:?}");
        assert!((got[2] - 4.0 * got[0]).abs() <= 1e-12 * got[0], "{got:?}");
        assert_eq!(got[3], 0.0);
        assert!((got[4] - 16.0 * got[0]).abs() <= 1e-12 * got[0], "{got:?}");
        // Below the cap: the step is the free one (up to I, which differs by
        // beta times the runs' different z - x).
        assert!((got[5] - free[5]).abs() <= 1e-9 * free[5], "{got:?} {free:?}");
        // Growth 1: no step exceeds the first.
        capped.polyak_growth = Some(1.0);
        let flat = plus_gammas(&capped, &losses);
        assert!(flat.iter().all(|&g| g <= flat[0]) && flat[4] == flat[0], "{flat:?}");
    }

    #[test]
    fn sf_plus_growth_cap_follows_the_plain_step_not_the_one_i_pulled_down() {
        let mut cfg = OptimConfig::new(Kind::SfPlus);
        cfg.polyak_growth = Some(2.0);
        let mut r = Reference::new(&cfg, &params(), &[true, true], None).unwrap();
        // (alpha = max(0, F + I) / e_hat, plain = F / e_hat) -> the step taken.
        assert_eq!(r.capped(1.0, 1.0), 1.0); // the first step is free
        assert_eq!(r.capped(0.1, 4.0), 0.1); // I pulls it down; the cap is 2 * 1
        assert_eq!(r.capped(5.0, 5.0), 4.0); // cap 2 * min(4, 2), not 2 * 0.1
        assert_eq!(r.capped(0.0, 0.0), 0.0); // a zero step: the cap keeps growing
        assert_eq!(r.capped(100.0, 100.0), 16.0);
        assert_eq!(r.capped(3.0, 3.0), 3.0); // below the cap: as is
        assert_eq!(r.capped(100.0, 100.0), 6.0);
    }

    #[test]
    fn sf_plus_zero_gradient_is_an_error() {
        let cfg = OptimConfig::new(Kind::SfPlus);
        let mut r = Reference::new(&cfg, &params(), &[true, true], None).unwrap();
        let zero = vec![vec![0.0; 3], vec![0.0; 4]];
        assert!(matches!(r.step(&zero, Some(0.1)), Err(Error::Numerical(_))));
        assert_eq!(r.steps(), 0);
        assert!(matches!(r.step(&grads(0), None), Err(Error::Numerical(_))));
        assert!(matches!(r.step(&grads(0), Some(f64::NAN)), Err(Error::Numerical(_))));
        r.step(&grads(0), Some(0.1)).unwrap();
        assert_eq!(r.steps(), 1);
    }

    #[test]
    fn sgd_sf_first_step_has_c_one_and_x_y_z_equal() {
        let cfg = OptimConfig::new(Kind::SgdSf).with_lr(0.1);
        let mut r = Reference::new(&cfg, &params(), &[true, true], None).unwrap();
        r.step(&grads(0), None).unwrap();
        assert_eq!(r.scalars().c, 1.0);
        for i in 0..2 {
            let (x, y, z) = (r.x(i), r.y(i), r.z(i));
            for j in 0..x.len() {
                assert!((x[j] - z[j]).abs() <= 1e-12, "x {} z {}", x[j], z[j]);
                assert!((y[j] - z[j]).abs() <= 1e-12, "y {} z {}", y[j], z[j]);
            }
        }
    }

    #[test]
    fn nap_keeps_group_norms_at_rho() {
        let nap = NapConfig {
            groups: vec![
                NapGroup {
                    tensors: vec!["a".into()],
                    rho: None,
                },
                NapGroup {
                    tensors: vec!["b".into()],
                    rho: Some(3.0),
                },
            ],
        };
        let init_a = group_norm(&[params()[0].1.clone()], &[0]);
        for kind in Kind::ALL {
            let cfg = OptimConfig::new(kind).with_lr(0.05);
            let mut r = Reference::new(&cfg, &params(), &[false, false], Some(&nap)).unwrap();
            assert_eq!(r.group_norms(0).2, init_a);
            assert_eq!(r.group_norms(1).2, 3.0);
            for s in 0..8 {
                r.step(&grads(s), Some(0.2)).unwrap();
                for g in 0..2 {
                    let (nz, nx, rho) = r.group_norms(g);
                    assert!(
                        (nz - rho).abs() <= 1e-12 * rho,
                        "{kind} step {s} group {g}: |z| {nz} rho {rho}"
                    );
                    assert!(
                        (nx - rho).abs() <= 1e-12 * rho,
                        "{kind} step {s} group {g}: |x| {nx} rho {rho}"
                    );
                }
            }
        }
    }

    /// bf16 state: every state value the kind keeps is a bf16 after each step;
    /// the same seed gives the same state and another seed another; a reference
    /// restarted from its state mid-run ends bit-identical (a resume).
    #[test]
    fn bf16_state_is_bf16_and_resumes_bit_identically() {
        let is_bf16 = |v: f64| v as f32 as f64 == v && (v as f32).to_bits() & 0xffff == 0;
        for (kind, rounding) in [
            (Kind::AdamwSf, Rounding::Stochastic),
            (Kind::SfPlus, Rounding::Stochastic),
            (Kind::Adamw, Rounding::Nearest),
            (Kind::SgdSf, Rounding::Nearest),
        ] {
            let mut cfg = OptimConfig::new(kind);
            cfg.state_dtype = StateDtype::Bf16;
            cfg.state_rounding = rounding;
            cfg.state_seed = 11;
            cfg.weight_decay = 0.01;
            let nap = NapConfig {
                groups: vec![NapGroup {
                    tensors: vec!["a".into()],
                    rho: None,
                }],
            };
            let run = |cfg: &OptimConfig, steps: u64| {
                let mut r = Reference::new(cfg, &params(), &[true, false], Some(&nap)).unwrap();
                for k in 0..steps {
                    r.step(&grads(k), Some(1.0 + k as f64)).unwrap();
                }
                r
            };
            let whole = run(&cfg, 6);
            let st = whole.state();
            for t in &st.tensors {
                for seq in [&t.z, &t.x, &t.m, &t.v] {
                    assert!(seq.iter().all(|&v| is_bf16(v)), "{kind}: {} not bf16: {seq:?}", t.name);
                }
            }
            let mut resumed = Reference::from_state(&run(&cfg, 3).state()).unwrap();
            for k in 3..6 {
                resumed.step(&grads(k), Some(1.0 + k as f64)).unwrap();
            }
            assert_eq!(resumed.state(), st, "{kind}: resume");
            let mut other = cfg.clone();
            other.state_seed = 12;
            let differs = run(&other, 6).state().tensors != st.tensors;
            assert_eq!(differs, rounding == Rounding::Stochastic, "{kind}: seed");
            cfg.state_dtype = StateDtype::F32;
            cfg.state_rounding = Rounding::Stochastic;
            cfg.state_seed = 0;
            assert_ne!(
                run(&cfg, 6).state().tensors,
                st.tensors,
                "{kind}: bf16 changes the state"
            );
        }
    }

    #[test]
    fn rounding_settings_are_refused_with_f32_state() {
        let mut cfg = OptimConfig::new(Kind::AdamwSf);
        cfg.state_rounding = Rounding::Nearest;
        assert!(cfg
            .validate()
            .unwrap_err()
            .to_string()
            .starts_with("optimizer.state_rounding"));
        cfg.state_rounding = Rounding::Stochastic;
        cfg.state_seed = 3;
        assert!(cfg
            .validate()
            .unwrap_err()
            .to_string()
            .starts_with("optimizer.state_seed"));
        cfg.state_dtype = StateDtype::Bf16;
        cfg.validate().unwrap();
    }
}
