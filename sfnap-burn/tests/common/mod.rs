//! A small Burn MLP on deterministic data, shared by the tests.

#![allow(dead_code)]

use std::sync::OnceLock;

use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::{LayerNorm, LayerNormConfig, Linear};
use burn::optim::GradientsParams;
use burn::tensor::activation::relu;
use burn::tensor::{Device, Int, Tensor, TensorData};
use sfnap::data::Rng;
use sfnap::nap::NapConfig;
use sfnap::optim::reference::Reference;
use sfnap::optim::OptimConfig;
use sfnap_burn::{Nap, Optimized, SharedDevice, Structure};

/// Features, hidden units and classes of the test MLP.
pub const IN: usize = 6;
pub const HIDDEN: usize = 8;
pub const CLASSES: usize = 3;
/// Rows of every batch.
pub const BATCH: usize = 16;

/// Unit roundoff of f32.
pub const U32: f64 = f32::EPSILON as f64 / 2.0;

/// One shared device for every test of a binary (Burn registers a device once).
pub fn device() -> SharedDevice {
    static DEVICE: OnceLock<SharedDevice> = OnceLock::new();
    DEVICE
        .get_or_init(|| SharedDevice::from_env().expect("a wgpu adapter (run `make setup` for lavapipe)"))
        .clone()
}

/// The autodiff device modules train on.
pub fn train_device() -> Device {
    device().burn().clone().autodiff()
}

/// Linear (no bias), LayerNorm, ReLU, then a Linear head with a bias.
#[derive(Module, Debug)]
pub struct Mlp {
    pub l1: Linear,
    pub n1: LayerNorm,
    pub head: Linear,
}

fn normal(rng: &mut Rng, n: usize, scale: f64) -> Vec<f32> {
    (0..n).map(|_| (rng.normal() * scale) as f32).collect()
}

fn linear(rng: &mut Rng, a: usize, b: usize, bias: bool, device: &Device) -> Linear {
    let scale = (2.0 / a as f64).sqrt();
    Linear {
        weight: Param::from_data(TensorData::new(normal(rng, a * b, scale), [a, b]), device),
        bias: bias.then(|| Param::from_data(TensorData::new(normal(rng, b, 0.1), [b]), device)),
    }
}

impl Mlp {
    /// Weights drawn from `seed` (the same seed, the same module).
    pub fn new(seed: u64, device: &Device) -> Mlp {
        let mut rng = Rng::new(seed);
        Mlp {
            l1: linear(&mut rng, IN, HIDDEN, false, device),
            n1: LayerNormConfig::new(HIDDEN).init(device),
            head: linear(&mut rng, HIDDEN, CLASSES, true, device),
        }
    }

    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.head.forward(relu(self.n1.forward(self.l1.forward(x))))
    }

    /// The mean cross-entropy of batch `step`.
    pub fn loss(&self, step: u64, device: &Device) -> Tensor<1> {
        let (x, y) = batch(step, device);
        burn::nn::loss::CrossEntropyLossConfig::new()
            .init(device)
            .forward(self.forward(x), y)
    }
}

/// Batch `step`: inputs and labels drawn from the step number alone, so a
/// resumed run sees the batches an uninterrupted one would.
pub fn batch(step: u64, device: &Device) -> (Tensor<2>, Tensor<1, Int>) {
    let mut rng = Rng::new(1000 + step);
    let x = normal(&mut rng, BATCH * IN, 1.0);
    let labels: Vec<i64> = (0..BATCH)
        .map(|i| ((x[i * IN] > 0.0) as i64) + ((x[i * IN + 1] > 0.5) as i64))
        .collect();
    (
        Tensor::from_data(TensorData::new(x, [BATCH, IN]), device),
        Tensor::from_data(TensorData::new(labels, [BATCH]), device),
    )
}

/// A tensor's values on the host.
pub fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("f32 values")
}

/// Every float parameter of `module`, in visiting order.
pub fn params_of<M: Module>(module: &M) -> Vec<Vec<f32>> {
    struct Collect(Vec<Vec<f32>>);
    impl burn::module::ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            self.0.push(values(p.val()));
        }
    }
    let mut c = Collect(Vec::new());
    module.visit(&mut c);
    c.0
}

/// Each parameter's gradient in `grads`, on the host, in visiting order.
fn grads_of<M: Module>(module: &M, grads: &GradientsParams) -> Vec<Vec<f64>> {
    struct Read<'a>(&'a GradientsParams, Vec<Vec<f64>>);
    impl ModuleVisitor for Read<'_> {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            let g = self.0.get::<D>(p.id).expect("every parameter has a gradient");
            self.1.push(values(g).into_iter().map(f64::from).collect());
        }
    }
    let mut r = Read(grads, Vec::new());
    module.visit(&mut r);
    r.1
}

/// Largest |got - want| / (|want| + scale) over every tensor, and where.
fn worst(what: &str, got: &[Vec<f32>], want: &[Vec<f64>], names: &[String]) -> (f64, String) {
    let mut w = (0.0, String::new());
    for ((g, e), name) in got.iter().zip(want).zip(names) {
        let scale = e.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for (i, (&a, &b)) in g.iter().zip(e).enumerate() {
            let r = (a as f64 - b).abs() / (b.abs() + scale);
            if r > w.0 || r.is_nan() {
                w = (r, format!("{what}.{name}[{i}]: got {a}, expected {b}"));
            }
        }
    }
    w
}

/// `steps` steps of `cfg` (with NaP groups `nap`) on the test MLP through
/// `Optimized` on `dev`, against the f64 reference fed the gradients Burn took;
/// y and x must stay within the bound of the module documentation of tests/steps.rs.
pub fn against_reference(dev: &SharedDevice, name: &str, cfg: &OptimConfig, nap: Option<NapConfig>, steps: u64) {
    let train = dev.burn().clone().autodiff();
    let module = Mlp::new(7, &train);
    let start: Vec<Vec<f64>> = params_of(&module)
        .into_iter()
        .map(|v| v.into_iter().map(f64::from).collect())
        .collect();
    let structure = Structure::of(&module);
    let names: Vec<String> = structure.params.iter().map(|p| p.path.clone()).collect();
    let decay: Vec<bool> = structure.params.iter().map(|p| p.shape.len() >= 2).collect();
    let named: Vec<(String, Vec<f64>)> = names.iter().cloned().zip(start).collect();
    let mut reference = Reference::new(cfg, &named, &decay, nap.as_ref()).unwrap();
    let mode = nap.map_or(Nap::Off, Nap::Groups);
    let mut opt = Optimized::new(module, dev, cfg, mode).unwrap();
    for step in 0..steps {
        let loss = opt.train_module().loss(step, &train);
        let f = values(loss.clone())[0] as f64;
        let grads = GradientsParams::from_grads(loss.backward(), opt.train_module());
        let g = grads_of(opt.train_module(), &grads);
        opt.step_with(&loss, grads).unwrap();
        reference.step(&g, Some(f)).unwrap();
    }
    let n = names.len();
    let want_y: Vec<Vec<f64>> = (0..n).map(|i| reference.y(i)).collect();
    let want_x: Vec<Vec<f64>> = (0..n).map(|i| reference.x(i)).collect();
    let y = params_of(opt.train_module());
    let x = params_of(&opt.eval_module().unwrap());
    let bound = 4.0 * (steps as f64).sqrt() * 16.0 * U32;
    for (what, got, want) in [("y", &y, &want_y), ("x", &x, &want_x)] {
        let (w, at) = worst(what, got, want, &names);
        println!("{name:16} {steps:3} steps: worst relative error of {what} {w:.2e} (bound {bound:.2e}) at {at}");
        assert!(w <= bound, "{name}, {steps} steps: {w:.3e} > {bound:.3e} at {at}");
    }
    // The step really moved the weights (a test that cannot fail proves nothing).
    assert_ne!(params_of(opt.train_module()), params_of(&Mlp::new(7, &train)));
}
