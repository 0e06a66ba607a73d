//! Update functions: freeze an optimizer's state, sweep the gradient `g` of one
//! parameter, and read the update the next step would make to that parameter's
//! x, y and z. The slope at `g = 0` is the effective learning rate, a flat tail
//! is saturation, an offset at `g = 0` is momentum or weight decay.
//!
//! Every value here comes from the f64 reference's own step
//! ([`Reference::step`]): nothing restates a kind's formulas.
//!
//! # API
//!
//! - A state: a [`ReferenceState`] (every tensor's y, z, x, m, v in f64, the
//!   NaP groups with their rho, and the step's scalar recurrences).
//!   - From a live run on a device, in train mode:
//!     `GpuOptimizer::state_async(&gpu, &arena)` (native: `device_state`) reads
//!     it back as a `state_readback::DeviceState` { state, grads, loss }: the
//!     arena's gradient buffer and sf_plus's loss as the last step left them.
//!     `GpuOptimizer::record_state_readback(gpu, arena, nap, enc)` records the
//!     same copies into an encoder of one's own, and `StateReadback::read` maps
//!     them (the browser's way: nothing blocks).
//!   - From a checkpoint: `sfnap::train::checkpoint_moment(gpu, run_dir)`
//!     resumes it for one step and reads the state before that step, with
//!     the step's gradient and loss (`sfnap::train::run_moments` does the same
//!     at chosen steps of a run made again).
//!   - From the reference itself: [`Reference::state`].
//! - [`UpdateFunctions::new`]`(state, grads, loss)`: the frozen optimizer. `grads`
//!   is the gradient of every other parameter during the sweep (`None`: zeros),
//!   `loss` the loss F at y; both matter only where elements are coupled:
//!   sf_plus's Polyak step (its sums over every element and F: it needs both)
//!   and NaP's projection (the group's norm after the step).
//! - [`UpdateFunctions::element`]`(tensor, index)`: an [`ElementUpdate`], with
//!   [`ElementUpdate::at`]`(g)` and [`ElementUpdate::sweep`]`(&gs)` giving
//!   [`Update`]s (x, y, z after the step minus before), [`ElementUpdate::slope`]
//!   (d update / d g at 0) and [`ElementUpdate::scale`] (a gradient scale to sweep over).
//! - [`UpdateFunctions::tensor_slope`]`(tensor, sample)` and
//!   [`UpdateFunctions::effective_lrs`]`(per_tensor)`: each tensor's median
//!   slope at 0 over a sample of its elements, and its effective learning rate
//!   `-slope_z / ||z||^2` ([`TensorSlope`]); taken at several moments of a run,
//!   the effective learning rate over training.
//!
//! # Cost
//!
//! Each [`ElementUpdate`] steps a reference restricted to what the element's
//! step reads: the element alone (per-element kinds), its NaP group's tensors
//! (the projection divides by the group's norm), and for sf_plus one more
//! element standing for every other parameter, whose gradient and `z - x` give
//! the two sums (`sum |g|`, `sum g (z - x)`) that the others contribute. The
//! restricted step does the same arithmetic on the element as the whole
//! reference's, so it is bit for bit the same, except that sf_plus's two sums
//! are added in another order (a relative difference of a few `n * 2^-53` in
//! its step size over `n` parameters: `tests/update_function.rs` derives the bound).

use crate::error::{Error, Result};
use crate::optim::config::Kind;
use crate::optim::reference::{GroupState, Reference, ReferenceState, TensorState};
use crate::stats::median;

/// The name of the element that stands for the rest of the model in sf_plus's
/// restricted reference (a space first: no model's tensor is named so).
const REST: &str = " rest of the model";

/// The relative step of the central difference that gives the slope at 0, in
/// units of [`ElementUpdate::scale`]: its truncation error is about this
/// squared, its rounding error about 2^-53 over this.
const SLOPE_STEP: f64 = 1e-5;

/// The change the next step makes to one parameter's x, y and z (after minus
/// before), or the derivatives of those changes ([`ElementUpdate::slope`]).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Update {
    /// The element's gradient.
    pub g: f64,
    /// Change of the evaluation weights x.
    pub x: f64,
    /// Change of the training weights y (where the gradient is taken).
    pub y: f64,
    /// Change of the base sequence z (adamw: of the weights, as x and y).
    pub z: f64,
}

/// A frozen optimizer: a state, the gradient of every parameter and the loss
/// during a sweep.
#[derive(Debug, Clone)]
pub struct UpdateFunctions {
    state: ReferenceState,
    grads: Vec<Vec<f64>>,
    loss: Option<f64>,
}

/// One tensor's slope at `g = 0` over a sample of its elements.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TensorSlope {
    /// The tensor.
    pub tensor: String,
    /// How many elements the medians are over.
    pub elements: usize,
    /// The median over the elements of the slope d update / d g at 0 of x,
    /// y and z (`g`: 0). A median, since Adam's slope `gamma / (sqrt(v_hat) +
    /// eps)` is huge where v is near 0 (an input that is always 0).
    pub slope: Update,
    /// The Frobenius norm of the tensor's z (the sequence the gradient steps
    /// move; adamw: the weights).
    pub norm: f64,
    /// `-slope.z / norm^2`: how far the direction of a weight that a
    /// normalization makes scale-free turns per unit of its gradient (its
    /// gradient shrinks like 1 / norm as the norm grows, its turn like the
    /// step over the norm). Taken on z, not x: x's slope also carries the
    /// averaging weight c_t, which is not the layer's learning rate.
    pub effective_lr: f64,
}

impl UpdateFunctions {
    /// The optimizer frozen at `state`; `grads` (one Vec per tensor, in the
    /// state's order and lengths; `None`: zeros) is every parameter's gradient
    /// during a sweep, `loss` the loss at y (sf_plus needs it).
    pub fn new(state: ReferenceState, grads: Option<Vec<Vec<f64>>>, loss: Option<f64>) -> Result<UpdateFunctions> {
        // The state is checked once here: every element's reference builds from it.
        Reference::from_state(&state)?;
        let grads = match grads {
            None => state.tensors.iter().map(|t| vec![0.0; t.y.len()]).collect(),
            Some(grads) => {
                if grads.len() != state.tensors.len() {
                    return Err(Error::invalid(
                        "grads",
                        format!("has {} tensors, the state {}", grads.len(), state.tensors.len()),
                    ));
                }
                for (g, t) in grads.iter().zip(&state.tensors) {
                    if g.len() != t.y.len() {
                        return Err(Error::invalid(
                            format!("grads.{}", t.name),
                            format!("has {} values, expected {}", g.len(), t.y.len()),
                        ));
                    }
                }
                grads
            }
        };
        Ok(UpdateFunctions { state, grads, loss })
    }

    /// The frozen state.
    pub fn state(&self) -> &ReferenceState {
        &self.state
    }

    /// The index of tensor `name`; the error lists the tensors.
    fn tensor(&self, name: &str) -> Result<usize> {
        self.state.tensors.iter().position(|t| t.name == name).ok_or_else(|| {
            let names: Vec<&str> = self.state.tensors.iter().map(|t| t.name.as_str()).collect();
            Error::invalid(
                "tensor",
                format!("no tensor `{name}` (the tensors: {})", names.join(", ")),
            )
        })
    }

    /// The update function of element `index` of tensor `tensor`.
    pub fn element(&self, tensor: &str, index: usize) -> Result<ElementUpdate> {
        let ti = self.tensor(tensor)?;
        let len = self.state.tensors[ti].y.len();
        if index >= len {
            return Err(Error::invalid(
                "index",
                format!("{index} is past the end of `{tensor}` ({len} elements)"),
            ));
        }
        let group = self.state.nap.iter().find(|g| g.tensors.iter().any(|n| n == tensor));
        // The restricted state: the element's NaP group whole, or the element alone.
        let (mut tensors, mut grads, nap, at) = match group {
            Some(group) => {
                let members: Vec<usize> = group.tensors.iter().map(|n| self.tensor(n)).collect::<Result<_>>()?;
                let at = members.iter().position(|&i| i == ti).unwrap_or_default();
                (
                    members
                        .iter()
                        .map(|&i| self.state.tensors[i].clone())
                        .collect::<Vec<_>>(),
                    members.iter().map(|&i| self.grads[i].clone()).collect::<Vec<_>>(),
                    vec![group.clone()],
                    (at, index),
                )
            }
            None => {
                let pick = |v: &[f64]| v.get(index).map(|&e| vec![e]).unwrap_or_default();
                let t = &self.state.tensors[ti];
                let one = TensorState {
                    name: t.name.clone(),
                    decay: t.decay,
                    y: pick(&t.y),
                    z: pick(&t.z),
                    x: pick(&t.x),
                    m: pick(&t.m),
                    v: pick(&t.v),
                };
                (vec![one], vec![vec![self.grads[ti][index]]], Vec::new(), (0, 0))
            }
        };
        if self.state.cfg.kind == Kind::SfPlus {
            let (rest, g) = self.rest(group, ti, index);
            tensors.push(rest);
            grads.push(vec![g]);
        }
        let s = &self.state;
        let state = ReferenceState {
            cfg: s.cfg.clone(),
            tensors,
            nap,
            k: s.k,
            lr_max: s.lr_max,
            w_sum: s.w_sum,
            e_prev: s.e_prev,
            alpha_cap: s.alpha_cap,
        };
        let reference = Reference::from_state(&state)?;
        let before = Update {
            g: grads[at.0][at.1],
            x: reference.x(at.0)[at.1],
            y: reference.y(at.0)[at.1],
            z: reference.z(at.0)[at.1],
        };
        let scale = self.scale(ti, index);
        Ok(ElementUpdate {
            reference,
            grads,
            loss: self.loss,
            at,
            before,
            scale,
        })
    }

    /// sf_plus's stand-in for every element outside the restricted reference
    /// (the tensors of `group`, or without one element `index` of tensor `ti`):
    /// one element whose gradient and `z - x` give the sums `sum |g|` and
    /// `sum g (z - x)` of those elements, and that gradient.
    fn rest(&self, group: Option<&GroupState>, ti: usize, index: usize) -> (TensorState, f64) {
        let kept = |i: usize, j: usize| match group {
            Some(g) => g.tensors.contains(&self.state.tensors[i].name),
            None => i == ti && j == index,
        };
        let (mut l1, mut dot) = (0.0, 0.0);
        for (i, t) in self.state.tensors.iter().enumerate() {
            for (j, g) in self.grads[i].iter().enumerate() {
                if kept(i, j) {
                    continue;
                }
                l1 += g.abs();
                dot += g * (t.z[j] - t.x[j]);
            }
        }
        let dz = if l1 > 0.0 { dot / l1 } else { 0.0 };
        let rest = TensorState {
            name: REST.to_string(),
            decay: false,
            y: vec![0.0],
            z: vec![dz],
            x: vec![0.0],
            m: Vec::new(),
            v: Vec::new(),
        };
        (rest, l1)
    }

    /// A gradient scale for element `index` of tensor `ti`: `sqrt(v_hat)` where
    /// the kind keeps a second moment that is not 0, else the root mean square of
    /// the tensor's gradient, else 1.
    fn scale(&self, ti: usize, index: usize) -> f64 {
        let (cfg, t) = (&self.state.cfg, &self.state.tensors[ti]);
        let (_, b2) = cfg.betas();
        let v = t.v.get(index).copied().unwrap_or(0.0);
        if self.state.k > 0 && v > 0.0 && cfg.kind != Kind::SgdSf {
            return (v / (1.0 - b2.powf(self.state.k as f64))).sqrt();
        }
        let g = &self.grads[ti];
        let rms = (g.iter().map(|g| g * g).sum::<f64>() / g.len().max(1) as f64).sqrt();
        if rms > 0.0 {
            rms
        } else {
            1.0
        }
    }

    /// [`UpdateFunctions::tensor_slope`] of every tensor, over `per_tensor`
    /// evenly spaced elements of each ([`sample`]).
    pub fn effective_lrs(&self, per_tensor: usize) -> Result<Vec<TensorSlope>> {
        self.state
            .tensors
            .iter()
            .map(|t| self.tensor_slope(&t.name, &sample(t.y.len(), per_tensor)))
            .collect()
    }

    /// The median slope at `g = 0` of the elements `sample` of `tensor`, its
    /// norm and effective learning rate.
    pub fn tensor_slope(&self, tensor: &str, sample: &[usize]) -> Result<TensorSlope> {
        if sample.is_empty() {
            return Err(Error::invalid(
                "sample",
                format!("no element of `{tensor}` to average over"),
            ));
        }
        let slopes: Vec<Update> = sample
            .iter()
            .map(|&j| self.element(tensor, j)?.slope())
            .collect::<Result<_>>()?;
        let of = |pick: fn(&Update) -> f64| median(&slopes.iter().map(pick).collect::<Vec<_>>());
        let slope = Update {
            g: 0.0,
            x: of(|u| u.x),
            y: of(|u| u.y),
            z: of(|u| u.z),
        };
        let t = &self.state.tensors[self.tensor(tensor)?];
        // adamw keeps no z: its weights are y.
        let z = if t.z.is_empty() { &t.y } else { &t.z };
        let norm = z.iter().map(|v| v * v).sum::<f64>().sqrt();
        Ok(TensorSlope {
            tensor: tensor.to_string(),
            elements: sample.len(),
            slope,
            norm,
            effective_lr: if norm > 0.0 { -slope.z / (norm * norm) } else { f64::NAN },
        })
    }
}

/// `n` element indices spread evenly over a tensor of `len` elements (all of
/// them when `n >= len`).
pub fn sample(len: usize, n: usize) -> Vec<usize> {
    if n >= len {
        return (0..len).collect();
    }
    (0..n).map(|i| i * len / n).collect()
}

/// `n` values evenly spaced over `[lo, hi]` (both ends included; `n` 1: `lo`).
pub fn linspace(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    match n {
        0 => Vec::new(),
        1 => vec![lo],
        _ => (0..n).map(|i| lo + (hi - lo) * i as f64 / (n - 1) as f64).collect(),
    }
}

/// The update function of one parameter: a reference restricted to what its
/// step reads (see the module documentation), at the frozen state.
#[derive(Debug, Clone)]
pub struct ElementUpdate {
    reference: Reference,
    grads: Vec<Vec<f64>>,
    loss: Option<f64>,
    /// (tensor, index) of the element in the restricted reference.
    at: (usize, usize),
    before: Update,
    scale: f64,
}

impl ElementUpdate {
    /// The update the next step makes with gradient `g` at this element (the
    /// others' as frozen): x, y, z after minus before. The error is the
    /// reference's (sf_plus: an all-zero gradient, a missing loss).
    pub fn at(&self, g: f64) -> Result<Update> {
        let mut reference = self.reference.clone();
        let mut grads = self.grads.clone();
        grads[self.at.0][self.at.1] = g;
        reference.step(&grads, self.loss)?;
        let (i, j) = self.at;
        Ok(Update {
            g,
            x: reference.x(i)[j] - self.before.x,
            y: reference.y(i)[j] - self.before.y,
            z: reference.z(i)[j] - self.before.z,
        })
    }

    /// [`ElementUpdate::at`] of every value of `gs`.
    pub fn sweep(&self, gs: &[f64]) -> Result<Vec<Update>> {
        gs.iter().map(|&g| self.at(g)).collect()
    }

    /// The slope d update / d g at `g = 0` of x, y and z (`g`: 0), by central
    /// difference over `±h`, `h` = 1e-5 [`ElementUpdate::scale`] (sf_plus's
    /// step is not differentiable at 0, where `|g|` enters its sums: this is
    /// the mean of its slopes either side).
    pub fn slope(&self) -> Result<Update> {
        let h = SLOPE_STEP * self.scale;
        let (hi, lo) = (self.at(h)?, self.at(-h)?);
        Ok(Update {
            g: 0.0,
            x: (hi.x - lo.x) / (2.0 * h),
            y: (hi.y - lo.y) / (2.0 * h),
            z: (hi.z - lo.z) / (2.0 * h),
        })
    }

    /// The element's x, y, z before the step, and its gradient as frozen (`g`).
    pub fn before(&self) -> Update {
        self.before
    }

    /// A gradient scale to sweep over: `sqrt(v_hat)` of the element where the
    /// kind keeps a second moment (Adam's update saturates a few tens of it
    /// out), else the root mean square of its tensor's gradient, else 1.
    pub fn scale(&self) -> f64 {
        self.scale
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::config::OptimConfig;
    use crate::optim::reference::RefScalars;

    fn state(kind: Kind) -> ReferenceState {
        let cfg = OptimConfig::new(kind).with_lr(0.1);
        let params = vec![("w".to_string(), vec![0.5, -1.0, 2.0, 0.25])];
        let mut r = Reference::new(&cfg, &params, &[false], None).unwrap();
        for s in 0..5 {
            let g = vec![vec![0.1 * s as f64, -0.2, 0.3, 0.05]];
            r.step(&g, Some(0.5)).unwrap();
        }
        r.state()
    }

    /// sgd_sf without weight decay is linear in g: x's slope is -c gamma, y's
    /// -(beta c + 1 - beta) gamma, z's -gamma (docs/algorithms.md, "sgd_sf").
    #[test]
    fn sgd_sf_slopes_are_the_schedule_free_weights() {
        let st = state(Kind::SgdSf);
        let f = UpdateFunctions::new(st.clone(), None, None).unwrap();
        let s = f.element("w", 2).unwrap().slope().unwrap();
        let mut r = Reference::from_state(&st).unwrap();
        r.step(&[vec![0.0; 4]], None).unwrap();
        let RefScalars { gamma, c, beta, .. } = r.scalars();
        let tol = 1e-9 * gamma;
        assert!((s.x + c * gamma).abs() <= tol, "{s:?} c {c} gamma {gamma}");
        assert!((s.y + (beta * c + 1.0 - beta) * gamma).abs() <= tol, "{s:?}");
        assert!((s.z + gamma).abs() <= tol, "{s:?}");
    }

    #[test]
    fn errors_name_the_tensor_and_index() {
        let f = UpdateFunctions::new(state(Kind::AdamwSf), None, None).unwrap();
        let e = f.element("nope", 0).unwrap_err().to_string();
        assert!(e.contains("nope") && e.contains("w"), "{e}");
        let e = f.element("w", 4).unwrap_err().to_string();
        assert!(e.contains("4 elements"), "{e}");
        let e = UpdateFunctions::new(state(Kind::AdamwSf), Some(vec![vec![0.0; 3]]), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("grads.w"), "{e}");
    }

    #[test]
    fn sample_and_linspace() {
        assert_eq!(sample(3, 8), vec![0, 1, 2]);
        assert_eq!(sample(10, 4), vec![0, 2, 5, 7]);
        assert_eq!(linspace(-1.0, 1.0, 5), vec![-1.0, -0.5, 0.0, 0.5, 1.0]);
    }
}
