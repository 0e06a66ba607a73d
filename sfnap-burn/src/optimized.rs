//! A Burn module trained by an sfnap optimizer ([`Optimized`]): the module at y
//! to take gradients at, the module at x to evaluate and ship.

use std::path::Path;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;
use sfnap::checkpoint::{self, Meta};
use sfnap::error::{Error, Result};
use sfnap::foreign::{BufferRange, ForeignOptimizer, ForeignTensor};
use sfnap::nap::NapConfig;
use sfnap::optim::{GpuOptimizer, Kind, OptimConfig};

use crate::device::SharedDevice;
use crate::storage::{self, Storage};
use crate::structure::{ParamInfo, Structure};

/// How the NaP groups of a module are chosen.
#[derive(Debug, Clone, PartialEq)]
pub enum Nap {
    /// No NaP: every parameter steps freely.
    Off,
    /// The groups the module's structure implies ([`Structure::nap_groups`]:
    /// each `Linear` weight followed by a `LayerNorm`, and that norm's gain and
    /// offset). A module with none is refused.
    Found,
    /// Groups named by the parameters' paths (`layers.0.linear.weight`).
    Groups(NapConfig),
}

/// A Burn module under an sfnap optimizer, which owns it between steps.
///
/// Schedule-Free optimizers take gradients at one point, y, and the weights
/// worth evaluating and shipping are another, x (an average of the iterates).
/// The two are kept apart by name: [`Optimized::train_module`] is the module at y,
/// for the forward pass whose loss [`Optimized::step`] takes; [`Optimized::eval_module`]
/// is a copy at x, without autodiff, for evaluation and saving. Plain adamw has
/// x = y. The optimizer state stays on the device, in sfnap's arena; each step
/// copies the gradients in and the new y out, in one submission on Burn's queue.
pub struct Optimized<M: Module> {
    module: M,
    device: SharedDevice,
    optimizer: ForeignOptimizer,
    params: Vec<ParamInfo>,
    nap: NapConfig,
    /// What a checkpoint must match to be resumed: the settings and the tensors.
    settings: String,
}

impl<M: Module> Optimized<M> {
    /// Puts `module` (created on `device.burn().autodiff()`) under the optimizer
    /// `cfg` with the NaP groups `nap`. Its current parameters are the start:
    /// sfnap copies them into its arena on the device.
    pub fn new(module: M, device: &SharedDevice, cfg: &OptimConfig, nap: Nap) -> Result<Optimized<M>> {
        let structure = Structure::of(&module);
        if structure.params.is_empty() {
            return Err(Error::invalid(
                "module",
                "has no parameter that takes gradients: create it on an autodiff device \
                 (`device.burn().clone().autodiff()`) and do not freeze all of it",
            ));
        }
        let nap = match nap {
            Nap::Off => NapConfig::default(),
            Nap::Found => {
                let found = structure.nap_groups();
                if found.groups.is_empty() {
                    return Err(Error::invalid(
                        "nap",
                        "the module has no Linear followed by a LayerNorm to project; name the groups \
                         with `Nap::Groups` or train without NaP (`Nap::Off`)",
                    ));
                }
                found
            }
            Nap::Groups(groups) => groups,
        };
        let specs: Vec<_> = structure.params.iter().map(ParamInfo::spec).collect();
        let starts = current_params(&module, &structure.params)?;
        let ranges: Vec<BufferRange<'_>> = starts.iter().map(Storage::range).collect();
        starts[0].flush()?;
        let nap_arg = (!nap.groups.is_empty()).then_some(&nap);
        let optimizer = ForeignOptimizer::new(device.gpu(), &specs, &ranges, cfg, nap_arg)?;
        drop(starts);
        let settings = settings(cfg, &nap, &structure.params)?;
        Ok(Optimized {
            module,
            device: device.clone(),
            optimizer,
            params: structure.params,
            nap,
            settings,
        })
    }

    /// The module at y, the point the next gradient is taken at: for the
    /// training forward pass only. Evaluate and save [`Optimized::eval_module`].
    pub fn train_module(&self) -> &M {
        &self.module
    }

    /// Takes the gradients of `loss` (a one-element loss of a forward pass of
    /// [`Optimized::train_module`]) by Burn's backward pass and steps.
    pub fn step(&mut self, loss: Tensor<1>) -> Result<()> {
        let grads = GradientsParams::from_grads(loss.backward(), &self.module);
        self.step_with(&loss, grads)
    }

    /// Steps with gradients the caller took (clipped, accumulated, ...):
    /// `grads` must hold one for every parameter that takes gradients. `loss`,
    /// the loss at y, is read by sf_plus (on the device); other kinds ignore it.
    pub fn step_with(&mut self, loss: &Tensor<1>, mut grads: GradientsParams) -> Result<()> {
        let gpu = self.device.gpu();
        let mut taker = GradTaker {
            params: &self.params,
            grads: &mut grads,
            at: 0,
            taken: Vec::with_capacity(self.params.len()),
            error: None,
        };
        self.module.visit(&mut taker);
        let taken = taker.finish()?;
        let outs = self.outputs()?;
        let tensors: Vec<ForeignTensor<'_>> = taken
            .iter()
            .zip(&outs)
            .map(|(g, p)| ForeignTensor {
                param: p.range(),
                grad: g.range(),
            })
            .collect();
        let loss_storage = if self.optimizer.optimizer().config().kind == Kind::SfPlus {
            let shape = loss.dims();
            if shape != [1] {
                return Err(Error::invalid(
                    "loss",
                    format!("has shape {shape:?}; sf_plus takes the mean loss as one element"),
                ));
            }
            Some(Storage::of(loss.clone(), "loss")?)
        } else {
            None
        };
        taken[0].flush()?;
        let opt = &mut self.optimizer;
        gpu.submit(|enc| {
            if let Some(l) = &loss_storage {
                opt.record_loss(gpu, enc, l.range())?;
            }
            opt.record_step(gpu, enc, &tensors)
        })?;
        opt.submitted();
        drop(tensors);
        drop(taken);
        self.module = replace_params(self.module.clone(), &self.params, &outs, true);
        Ok(())
    }

    /// A copy of the module at x, the weights to evaluate and ship, without
    /// autodiff (Burn's `valid()`); the module at y is left as it is.
    pub fn eval_module(&mut self) -> Result<M> {
        let x = self.weights(Weights::X)?;
        Ok(replace_params(self.module.clone(), &self.params, &x, false).valid())
    }

    /// Steps taken (counting those before a resume).
    pub fn steps(&self) -> u64 {
        self.optimizer().steps()
    }

    /// The parameters sfnap steps, in order (their paths name them in sfnap's
    /// reports and checkpoints).
    pub fn params(&self) -> &[ParamInfo] {
        &self.params
    }

    /// The NaP groups in use (empty without NaP).
    pub fn nap(&self) -> &NapConfig {
        &self.nap
    }

    /// The sfnap optimizer: its settings, health flags, NaP reports.
    pub fn optimizer(&self) -> &GpuOptimizer {
        self.optimizer.optimizer()
    }

    /// Saves everything a resume needs to `path`, atomically, as an sfnap
    /// checkpoint: y and x of every parameter (by path), the optimizer's state
    /// and counters, the settings. Ship the module of [`Optimized::eval_module`]
    /// with Burn's own records.
    pub fn save(&mut self, path: &Path) -> Result<()> {
        let meta = Meta {
            step: self.steps(),
            config: self.settings.clone(),
            rng: 0,
        };
        self.optimizer.save(self.device.gpu(), path, &meta)
    }

    /// Continues the run [`Optimized::save`] wrote to `path`: `module` (of the
    /// same structure, on `device`), `cfg` and `nap` must be those of the saved
    /// run, and are refused naming what differs. The module's parameters are
    /// replaced by the saved y, so the next steps are the uninterrupted run's,
    /// bit for bit (given the same batches).
    pub fn resume(module: M, device: &SharedDevice, cfg: &OptimConfig, nap: Nap, path: &Path) -> Result<Optimized<M>> {
        let loaded = checkpoint::load(path)?;
        let mut run = Optimized::new(module, device, cfg, nap)?;
        if loaded.meta.config != run.settings {
            return Err(Error::invalid(
                path.display().to_string(),
                format!(
                    "was saved with other settings or another module:\n  saved: {}\n  now:   {}",
                    loaded.meta.config, run.settings
                ),
            ));
        }
        run.optimizer.resume(device.gpu(), path, loaded)?;
        let y = run.weights(Weights::Y)?;
        run.module = replace_params(run.module.clone(), &run.params, &y, true);
        Ok(run)
    }

    /// Fresh tensors, one per parameter, holding the optimizer's x or y.
    fn weights(&mut self, which: Weights) -> Result<Vec<Storage>> {
        let gpu = self.device.gpu();
        let outs = self.outputs()?;
        let ranges: Vec<BufferRange<'_>> = outs.iter().map(Storage::range).collect();
        outs[0].flush()?;
        let opt = &mut self.optimizer;
        gpu.submit(|enc| match which {
            Weights::X => opt.record_x_into(gpu, enc, &ranges),
            Weights::Y => opt.record_y_into(gpu, enc, &ranges),
        })?;
        drop(ranges);
        Ok(outs)
    }

    /// Fresh tensors, one per parameter, for sfnap to write into.
    fn outputs(&self) -> Result<Vec<Storage>> {
        let device = self.device.burn();
        self.params
            .iter()
            .map(|p| Storage::of(storage::empty(p.shape.iter().product(), device), &p.path))
            .collect()
    }
}

/// Which of the optimizer's weights [`Optimized::weights`] hands out.
#[derive(Clone, Copy)]
enum Weights {
    /// The weights to evaluate and ship.
    X,
    /// The weights the next gradient is taken at.
    Y,
}

/// The settings a checkpoint records and a resume compares: the optimizer, the
/// NaP groups and every parameter's path and shape.
fn settings(cfg: &OptimConfig, nap: &NapConfig, params: &[ParamInfo]) -> Result<String> {
    let tensors: Vec<(&str, &[usize])> = params.iter().map(|p| (p.path.as_str(), p.shape.as_slice())).collect();
    serde_json::to_string(&serde_json::json!({
        "optimizer": cfg,
        "nap": nap,
        "tensors": tensors,
    }))
    .map_err(|e| Error::Gpu(format!("the settings as JSON: {e}")))
}

/// The storage of each parameter's current value, in order.
fn current_params<M: Module>(module: &M, params: &[ParamInfo]) -> Result<Vec<Storage>> {
    struct Values<'a> {
        params: &'a [ParamInfo],
        at: usize,
        out: Vec<Result<Storage>>,
    }
    impl ModuleVisitor for Values<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(p) = self.params.get(self.at).filter(|p| p.id == param.id) {
                self.out.push(Storage::of(param.val(), &p.path));
                self.at += 1;
            }
        }
    }
    let mut v = Values {
        params,
        at: 0,
        out: Vec::new(),
    };
    module.visit(&mut v);
    v.out.into_iter().collect()
}

/// Takes each parameter's gradient out of Burn's gradients, in order.
struct GradTaker<'a> {
    params: &'a [ParamInfo],
    grads: &'a mut GradientsParams,
    at: usize,
    taken: Vec<Storage>,
    error: Option<Error>,
}

impl GradTaker<'_> {
    fn finish(self) -> Result<Vec<Storage>> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.taken.len() != self.params.len() {
            return Err(Error::invalid(
                "module",
                format!(
                    "has {} of the {} parameters the optimizer was made for: its structure changed",
                    self.taken.len(),
                    self.params.len()
                ),
            ));
        }
        Ok(self.taken)
    }
}

impl ModuleVisitor for GradTaker<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if self.error.is_some() {
            return;
        }
        let Some(p) = self.params.get(self.at).filter(|p| p.id == param.id) else {
            return;
        };
        self.at += 1;
        self.error = match self.grads.remove::<D>(param.id) {
            None => Some(Error::invalid(
                &p.path,
                "has no gradient: the loss does not depend on it, or the gradients were taken of another module",
            )),
            Some(g) if g.dims().as_slice() != p.shape.as_slice() => Some(Error::invalid(
                &p.path,
                format!("its gradient has shape {:?}, the parameter {:?}", g.dims(), p.shape),
            )),
            Some(g) => match Storage::of(g, &format!("{}'s gradient", p.path)) {
                Ok(s) => {
                    self.taken.push(s);
                    None
                }
                Err(e) => Some(e),
            },
        };
    }
}

/// `module` with parameter i replaced by `values[i]` (reshaped, with the
/// parameter's gradient settings when `trainable`; plain tensors otherwise).
fn replace_params<M: Module>(module: M, params: &[ParamInfo], values: &[Storage], trainable: bool) -> M {
    struct Replace<'a> {
        params: &'a [ParamInfo],
        values: &'a [Storage],
        at: usize,
        trainable: bool,
    }
    impl ModuleMapper for Replace<'_> {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let (id, old, mapper) = param.consume();
            if self.params.get(self.at).is_none_or(|p| p.id != id) {
                return Param::from_mapped_value(id, old, mapper);
            }
            let flat = self.values[self.at].tensor();
            self.at += 1;
            let mut new: Tensor<D> = Tensor::from_inner(flat.reshape(old.dims()));
            if self.trainable {
                if let Some(strategy) = old.gradient_checkpointing_strategy() {
                    new = new.with_gradient_checkpointing_strategy(strategy);
                }
                if old.is_require_grad() {
                    new = new.require_grad();
                }
            }
            Param::from_mapped_value(id, new, mapper)
        }
    }
    module.map(&mut Replace {
        params,
        values,
        at: 0,
        trainable,
    })
}
