//! The browser API (wasm32 only, through wasm-bindgen): the same engine and WGSL
//! kernels on the browser's WebGPU adapter, with no second implementation in JS.
//!
//! - [`replay`] runs a replay case and resolves to its result JSON; [`check_replay`]
//!   checks a result against the case's `expected` output within its tolerance.
//! - [`WebRace`] drives the optimizer race of `web/race.html`; [`race_functions`] and
//!   [`race_field`] describe the test functions for plotting.
//! - [`WebSpirals`] and [`WebPlasticity`] drive the live training demos of
//!   `web/spirals.html` and `web/plasticity.html` (see [`crate::live`]).
//!
//! Errors reach JavaScript as `Error` objects carrying the library's message.

use std::cell::RefCell;
use std::rc::Rc;

use wasm_bindgen::prelude::*;

use crate::error::Error;
use crate::gpu::Gpu;
use crate::live::{spirals_default_lr, Plasticity, PlasticityConfig, Spirals, SpiralsConfig, SPIRALS_OPTIMIZERS};
use crate::race::{Race, RaceConfig, TestFn, RACERS};
use crate::replay::{check_within, run_gpu_async, ReplayCase, ReplayResult};

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

/// The optimizer race on the browser's adapter (see [`crate::race`]).
#[wasm_bindgen]
pub struct WebRace {
    gpu: Rc<Gpu>,
    race: Race,
}

#[wasm_bindgen]
impl WebRace {
    /// Starts a race from a config JSON (missing fields take their defaults).
    pub async fn create(config_json: String) -> Result<WebRace, JsValue> {
        let config = RaceConfig::parse(&config_json).map_err(js_error)?;
        let gpu = gpu().await?;
        let race = Race::new(&gpu, &config).map_err(js_error)?;
        Ok(WebRace { gpu, race })
    }

    /// Submits `n` steps of every racer (no readback).
    pub fn step(&mut self, n: u32) -> Result<(), JsValue> {
        self.race.step(&self.gpu, n).map_err(js_error)
    }

    /// Steps taken so far.
    pub fn steps(&self) -> f64 {
        self.race.steps() as f64
    }

    /// Packs every racer's y, x and new per-step losses now, and resolves to them as
    /// JSON (see [`crate::race::Snapshot`]) once read back. Stepping may go on meanwhile.
    pub fn snapshot(&mut self) -> js_sys::Promise {
        let request = self.race.request_snapshot(&self.gpu);
        let gpu = self.gpu.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let snapshot = request.read(&gpu).await.map_err(js_error)?;
            Ok(JsValue::from_str(&snapshot.to_json()))
        })
    }

    /// The config the race runs, as JSON.
    pub fn config(&self) -> String {
        serde_json::to_string(self.race.config()).expect("a config always serializes")
    }
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

/// The two-spirals demo on the browser's adapter (see [`crate::live::Spirals`]).
#[wasm_bindgen]
pub struct WebSpirals {
    gpu: Rc<Gpu>,
    inner: Spirals,
}

#[wasm_bindgen]
impl WebSpirals {
    /// Builds the network from a config JSON (missing fields take their defaults).
    pub async fn create(config_json: String) -> Result<WebSpirals, JsValue> {
        let config = SpiralsConfig::parse(&config_json).map_err(js_error)?;
        let gpu = gpu().await?;
        let inner = Spirals::new(&gpu, &config).map_err(js_error)?;
        Ok(WebSpirals { gpu, inner })
    }

    /// Submits `n` training steps (no readback).
    pub fn step(&mut self, n: u32) -> Result<(), JsValue> {
        self.inner.step(&self.gpu, n).map_err(js_error)
    }

    /// Steps taken so far.
    pub fn steps(&self) -> f64 {
        self.inner.steps() as f64
    }

    /// The training points as JSON (`{"inputs": [a, b, ...], "labels": [...]}`).
    pub fn data(&self) -> String {
        self.inner.data_json()
    }

    /// Evaluates the grid and test set at y and x now and resolves to the snapshot
    /// as JSON (see [`crate::live::SpiralsSnapshot`]).
    pub fn snapshot(&mut self) -> js_sys::Promise {
        let request = self.inner.request_snapshot(&self.gpu);
        let gpu = self.gpu.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let snapshot = request.read(&gpu).await.map_err(js_error)?;
            Ok(JsValue::from_str(&snapshot.to_json()))
        })
    }

    /// The config, as JSON.
    pub fn config(&self) -> String {
        serde_json::to_string(self.inner.config()).expect("a config always serializes")
    }
}

/// The plasticity demo's default config, as JSON.
#[wasm_bindgen]
pub fn plasticity_defaults() -> String {
    serde_json::to_string(&PlasticityConfig::default()).expect("a config always serializes")
}

/// The plasticity demo on the browser's adapter (see [`crate::live::Plasticity`]).
#[wasm_bindgen]
pub struct WebPlasticity {
    gpu: Rc<Gpu>,
    inner: Plasticity,
}

#[wasm_bindgen]
impl WebPlasticity {
    /// Builds both networks from a config JSON (missing fields take their defaults).
    pub async fn create(config_json: String) -> Result<WebPlasticity, JsValue> {
        let config = PlasticityConfig::parse(&config_json).map_err(js_error)?;
        let gpu = gpu().await?;
        let inner = Plasticity::new(&gpu, &config).map_err(js_error)?;
        Ok(WebPlasticity { gpu, inner })
    }

    /// Submits `n` steps of both networks (no readback).
    pub fn step(&mut self, n: u32) -> Result<(), JsValue> {
        self.inner.step(&self.gpu, n).map_err(js_error)
    }

    /// Steps taken so far.
    pub fn steps(&self) -> f64 {
        self.inner.steps() as f64
    }

    /// Resolves to both networks' numbers as JSON (see [`crate::live::PlasticitySnapshot`]).
    pub fn snapshot(&mut self) -> js_sys::Promise {
        let request = self.inner.request_snapshot(&self.gpu);
        let gpu = self.gpu.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let snapshot = request.read(&gpu).await.map_err(js_error)?;
            Ok(JsValue::from_str(&snapshot.to_json()))
        })
    }

    /// The config, as JSON.
    pub fn config(&self) -> String {
        serde_json::to_string(self.inner.config()).expect("a config always serializes")
    }
}
