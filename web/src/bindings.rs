//! The browser API (wasm32 only, through wasm-bindgen): the same engine and WGSL
//! kernels on the browser's WebGPU adapter, with no second implementation in JS.
//!
//! - [`replay`] runs a replay case and resolves to its result JSON; [`check_replay`]
//!   checks a result against the case's `expected` output within its tolerance.
//! - [`WebRace`] drives the optimizer race of `web/race.html`; [`race_functions`] and
//!   [`race_field`] describe the test functions for plotting.
//! - [`WebSpirals`] and [`WebPlasticity`] drive the live training demos of
//!   `web/spirals.html` and `web/plasticity.html` (see [`crate::live`]).
//! - [`WebUpdate`] drives `web/update.html` (update functions of live networks);
//!   [`update_meta`] lists its optimizers and weights.
//!
//! The three demo classes are one [`Running`] demo each, made by [`web_demo!`]
//! (wasm-bindgen exports no generic types). Errors reach JavaScript as `Error`
//! objects carrying the library's message.

use std::cell::RefCell;
use std::rc::Rc;

use serde::Serialize;
use sfnap::gpu::Gpu;
use sfnap::replay::{check_within, run_gpu_async, ReplayCase, ReplayResult};
use sfnap::Error;
use wasm_bindgen::prelude::*;

use crate::demo::Demo;
use crate::live::{
    spirals_default_lr, update_default_lr, Frozen, Plasticity, PlasticityConfig, Spirals, SpiralsConfig, UpdateConfig,
    UpdateDemo, SPIRALS_OPTIMIZERS, UPDATE_OPTIMIZERS,
};
use crate::race::{Race, RaceConfig, TestFn, RACERS};

thread_local! {
    /// The device, opened once per page.
    static GPU: RefCell<Option<Rc<Gpu>>> = const { RefCell::new(None) };
}

fn js_error(e: Error) -> JsValue {
    js_sys::Error::new(&e.to_string()).into()
}

/// The browser's WebGPU device, opened on first use.
async fn gpu() -> Result<Rc<Gpu>, JsValue> {
    if let Some(gpu) = GPU.with(|g| g.borrow().clone()) {
        return Ok(gpu);
    }
    let gpu = Rc::new(Gpu::browser().await.map_err(js_error)?);
    web_sys::console::info_1(&format!("sfnap: WebGPU adapter {}", gpu.describe()).into());
    GPU.with(|g| *g.borrow_mut() = Some(gpu.clone()));
    Ok(gpu)
}

/// `value` as JSON (non-finite numbers as `null`).
fn json(value: &impl Serialize) -> String {
    serde_json::to_string(value).expect("configs and snapshots always serialize")
}

/// Runs when the module loads: panics show up in the console with their message.
#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

/// The adapter as one line: `name (backend, type)`. Rejects with a message naming
/// the browsers that have WebGPU when this one offers no adapter.
#[wasm_bindgen]
pub async fn adapter() -> Result<String, JsValue> {
    Ok(gpu().await?.describe())
}

/// Runs a replay case (the JSON of `sfnap replay`) on the browser's adapter and
/// resolves to `{"y": ..., "x": ..., "z": ...}` as JSON, tensors in the case's order.
#[wasm_bindgen]
pub async fn replay(case_json: String) -> Result<String, JsValue> {
    let case = ReplayCase::parse(&case_json).map_err(js_error)?;
    let gpu = gpu().await?;
    let decay = vec![true; case.tensors.len()];
    let result = run_gpu_async(&gpu, &case, &decay, None).await.map_err(js_error)?;
    let order: Vec<String> = case.tensors.iter().map(|t| t.name.clone()).collect();
    Ok(result.to_json(&order))
}

/// Checks `result_json` (what [`replay`] returned) against the case's `expected`
/// output within its tolerance; the error names the first value out of tolerance.
#[wasm_bindgen]
pub fn check_replay(case_json: &str, result_json: &str) -> Result<(), JsValue> {
    let case = ReplayCase::parse(case_json).map_err(js_error)?;
    let expected = case
        .expected
        .as_ref()
        .ok_or_else(|| js_error(Error::invalid("expected", "missing: the case has no expected output")))?;
    let got: ReplayResult = serde_json::from_str(result_json)
        .map_err(|e| js_error(Error::invalid("result", format!("invalid result JSON: {e}"))))?;
    check_within(&got, expected).map_err(js_error)
}

/// A demo and the device it runs on: what each exported demo class holds.
struct Running<D> {
    gpu: Rc<Gpu>,
    demo: D,
}

impl<D: Demo> Running<D>
where
    D::Parts: 'static,
{
    /// Builds the demo from a config JSON (missing fields take their defaults).
    async fn create(config_json: &str) -> Result<Self, JsValue> {
        let config = D::parse_config(config_json).map_err(js_error)?;
        let gpu = gpu().await?;
        let demo = D::new(&gpu, &config).map_err(js_error)?;
        Ok(Running { gpu, demo })
    }

    /// Submits `n` steps (no readback).
    fn step(&mut self, n: u32) -> Result<(), JsValue> {
        self.demo.step(&self.gpu, n).map_err(js_error)
    }

    /// Steps taken so far.
    fn steps(&self) -> f64 {
        self.demo.steps() as f64
    }

    /// Submits a snapshot now and resolves to it as JSON once read back; stepping
    /// may go on meanwhile.
    fn snapshot(&mut self) -> js_sys::Promise {
        let request = self.demo.request_snapshot(&self.gpu);
        let gpu = self.gpu.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let snapshot = request.read(&gpu).await.map_err(js_error)?;
            Ok(JsValue::from_str(&json(&snapshot)))
        })
    }

    /// The config, as JSON.
    fn config(&self) -> String {
        json(self.demo.config())
    }
}

/// Exports `$class`, a [`Running`] `$demo`, with `create(config_json)` (a
/// promise), `step(n)`, `steps()`, `snapshot()` (a promise of JSON) and `config()`.
macro_rules! web_demo {
    ($(#[$doc:meta])* $class:ident($demo:ty)) => {
        $(#[$doc])*
        #[wasm_bindgen]
        pub struct $class {
            inner: Running<$demo>,
        }

        #[wasm_bindgen]
        impl $class {
            /// Builds the demo from a config JSON (missing fields take their defaults).
            pub async fn create(config_json: String) -> Result<$class, JsValue> {
                Running::create(&config_json).await.map(|inner| $class { inner })
            }

            /// Submits `n` steps (no readback).
            pub fn step(&mut self, n: u32) -> Result<(), JsValue> {
                self.inner.step(n)
            }

            /// Steps taken so far.
            pub fn steps(&self) -> f64 {
                self.inner.steps()
            }

            /// Submits a snapshot now and resolves to it as JSON once read back;
            /// stepping may go on meanwhile.
            pub fn snapshot(&mut self) -> js_sys::Promise {
                self.inner.snapshot()
            }

            /// The config, as JSON.
            pub fn config(&self) -> String {
                self.inner.config()
            }
        }
    };
}

web_demo! {
    /// The optimizer race on the browser's adapter (see [`crate::race`]); a
    /// snapshot is a [`crate::race::Snapshot`].
    WebRace(Race)
}

web_demo! {
    /// The two-spirals demo on the browser's adapter (see [`crate::live::Spirals`]);
    /// a snapshot is a [`crate::live::SpiralsSnapshot`].
    WebSpirals(Spirals)
}

web_demo! {
    /// The plasticity demo on the browser's adapter (see [`crate::live::Plasticity`]);
    /// a snapshot is a [`crate::live::PlasticitySnapshot`].
    WebPlasticity(Plasticity)
}

#[wasm_bindgen]
impl WebSpirals {
    /// The training points as JSON (`{"inputs": [a, b, ...], "labels": [...]}`).
    pub fn data(&self) -> String {
        self.inner.demo.data_json()
    }
}

/// Every test function and racer, as JSON: `{"racers": [...], "functions": [{"name",
/// "view", "minimum", "start_box", "lr": {racer: default}}]}`, and the default config.
#[wasm_bindgen]
pub fn race_functions() -> String {
    let functions: Vec<serde_json::Value> = TestFn::ALL
        .iter()
        .map(|&f| {
            let lr: serde_json::Map<String, serde_json::Value> =
                RACERS.iter().map(|r| (r.to_string(), f.default_lr(r).into())).collect();
            serde_json::json!({
                "name": f.name(),
                "view": f.view(),
                "minimum": f.minimum(),
                "start_box": f.start_box(),
                "lr": lr,
            })
        })
        .collect();
    serde_json::json!({ "racers": RACERS, "functions": functions, "defaults": RaceConfig::default() }).to_string()
}

/// `log10(f + 1e-3)` of function `name` on a `width` x `height` grid over its view,
/// rows from the top: the contour plot's background.
#[wasm_bindgen]
pub fn race_field(name: &str, width: usize, height: usize) -> Result<Vec<f32>, JsValue> {
    Ok(crate::race::field(
        TestFn::parse(name).map_err(js_error)?,
        width,
        height,
    ))
}

/// The spirals demo's optimizers and default config, as JSON:
/// `{"optimizers": [...], "lr": {optimizer: default}, "defaults": {...}}`.
#[wasm_bindgen]
pub fn spirals_meta() -> String {
    let lr: serde_json::Map<String, serde_json::Value> = SPIRALS_OPTIMIZERS
        .iter()
        .map(|o| (o.to_string(), spirals_default_lr(o).into()))
        .collect();
    serde_json::json!({
        "optimizers": SPIRALS_OPTIMIZERS,
        "lr": lr,
        "defaults": SpiralsConfig::default(),
    })
    .to_string()
}

/// The plasticity demo's default config, as JSON.
#[wasm_bindgen]
pub fn plasticity_defaults() -> String {
    json(&PlasticityConfig::default())
}

/// The update-functions demo on the browser's adapter (see [`crate::live::UpdateDemo`]):
/// the same `create`, `step`, `steps`, `snapshot` and `config` as the other demo
/// classes (a snapshot is a [`crate::live::UpdateSnapshot`]), and `frozen()`, what
/// the latest snapshot froze. Not a [`Running`] demo: its snapshot reads the
/// optimizers' states back, then sweeps them on the host.
#[wasm_bindgen]
pub struct WebUpdate {
    gpu: Rc<Gpu>,
    demo: UpdateDemo,
    frozen: Rc<RefCell<Vec<Frozen>>>,
}

#[wasm_bindgen]
impl WebUpdate {
    /// Builds the demo from a config JSON (missing fields take their defaults).
    pub async fn create(config_json: String) -> Result<WebUpdate, JsValue> {
        let config = UpdateConfig::parse(&config_json).map_err(js_error)?;
        let gpu = gpu().await?;
        let demo = UpdateDemo::new(&gpu, &config).await.map_err(js_error)?;
        Ok(WebUpdate {
            gpu,
            demo,
            frozen: Rc::default(),
        })
    }

    /// Submits `n` steps (no readback).
    pub fn step(&mut self, n: u32) -> Result<(), JsValue> {
        self.demo.step(&self.gpu, n).map_err(js_error)
    }

    /// Steps taken so far.
    pub fn steps(&self) -> f64 {
        self.demo.steps() as f64
    }

    /// Submits a snapshot now and resolves to it as JSON once read back and swept;
    /// stepping may go on meanwhile.
    pub fn snapshot(&mut self) -> js_sys::Promise {
        let request = self.demo.request_snapshot(&self.gpu);
        let gpu = self.gpu.clone();
        let frozen = self.frozen.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let (snapshot, states) = request.map_err(js_error)?.read(&gpu).await.map_err(js_error)?;
            *frozen.borrow_mut() = states;
            Ok(JsValue::from_str(&json(&snapshot)))
        })
    }

    /// The config, as JSON.
    pub fn config(&self) -> String {
        json(self.demo.config())
    }

    /// What the latest snapshot froze, one [`Frozen`] per network, as JSON: the
    /// optimizer states, gradients and losses its update functions came from.
    pub fn frozen(&self) -> String {
        json(&*self.frozen.borrow())
    }
}

/// The update-functions demo's optimizers, their default learning rates, the
/// model's weights and the default config, as JSON: `{"optimizers": [...], "lr":
/// {optimizer: default}, "tensors": [...], "defaults": {...}}`.
#[wasm_bindgen]
pub fn update_meta() -> String {
    use sfnap::model::Model;
    let defaults = UpdateConfig::default();
    let lr: serde_json::Map<String, serde_json::Value> = UPDATE_OPTIMIZERS
        .iter()
        .map(|o| (o.to_string(), update_default_lr(o).into()))
        .collect();
    let tensors: Vec<String> = defaults.model().tensors().into_iter().map(|t| t.name).collect();
    serde_json::json!({
        "optimizers": UPDATE_OPTIMIZERS,
        "lr": lr,
        "tensors": tensors,
        "defaults": defaults,
    })
    .to_string()
}
