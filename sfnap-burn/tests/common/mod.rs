//! A small Burn MLP on deterministic data, shared by the tests.

#![allow(dead_code)]

use std::sync::OnceLock;

use burn::module::{Module, Param};
use burn::nn::{LayerNorm, LayerNormConfig, Linear};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Int, Tensor, TensorData};
use sfnap::data::Rng;
use sfnap_burn::SharedDevice;

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
