//! `sfnap replay`: run a recorded gradient sequence through an optimizer.
//!
//! The file format is `spec/replay.md`: an optimizer config, optional NaP groups,
//! tensor shapes, initial parameters and a list of steps (gradients, and the loss
//! for `sf_plus`). Parsing checks everything up front so that a bad case fails
//! with one line naming the field, before any GPU work.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::nap::NapConfig;
use crate::optim::config::{Kind, OptimConfig};

/// One tensor of a case, in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseTensor {
    /// Its name.
    pub name: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Initial values, row-major.
    pub values: Vec<f64>,
}

/// One recorded step.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseStep {
    /// The loss at y before the step (required for `sf_plus`).
    pub loss: Option<f64>,
    /// One gradient per tensor, in tensor order.
    pub grads: Vec<Vec<f64>>,
}

/// Expected output and tolerance of a golden case.
#[derive(Debug, Clone, PartialEq)]
pub struct Expected {
    /// The expected result.
    pub result: ReplayResult,
    /// Relative tolerance.
    pub rtol: f64,
    /// Absolute tolerance.
    pub atol: f64,
}

/// A parsed, validated replay case.
#[derive(Debug, Clone)]
pub struct ReplayCase {
    /// The optimizer.
    pub optimizer: OptimConfig,
    /// NaP groups, if any.
    pub nap: Option<NapConfig>,
    /// Tensors in the order of `params`.
    pub tensors: Vec<CaseTensor>,
    /// The steps.
    pub steps: Vec<CaseStep>,
    /// `expected` and `tolerance`, for golden files.
    pub expected: Option<Expected>,
}

/// The output of a replay: y, x and z per tensor, in tensor order.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ReplayResult {
    /// Training weights after the last step.
    pub y: BTreeMap<String, Vec<f64>>,
    /// Evaluation weights.
    pub x: BTreeMap<String, Vec<f64>>,
    /// The base sequence.
    pub z: BTreeMap<String, Vec<f64>>,
}

const TOP_FIELDS: [&str; 7] = ["optimizer", "nap", "shapes", "params", "steps", "expected", "tolerance"];

fn bad(field: impl Into<String>, msg: impl Into<String>) -> Error {
    Error::invalid(field, msg)
}

fn object<'a>(v: &'a Value, field: &str) -> Result<&'a serde_json::Map<String, Value>> {
    v.as_object()
        .ok_or_else(|| bad(field, format!("must be an object, got {}", type_name(v))))
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn numbers(v: &Value, field: &str) -> Result<Vec<f64>> {
    let arr = v
        .as_array()
        .ok_or_else(|| bad(field, format!("must be an array of numbers, got {}", type_name(v))))?;
    arr.iter()
        .enumerate()
        .map(|(i, x)| {
            let f = x.as_f64().ok_or_else(|| {
                bad(
                    format!("{field}[{i}]"),
                    format!("must be a number, got {}", type_name(x)),
                )
            })?;
            if f.is_finite() {
                Ok(f)
            } else {
                Err(bad(format!("{field}[{i}]"), "must be finite"))
            }
        })
        .collect()
}

fn tensor_map(v: &Value, field: &str, tensors: &[CaseTensor]) -> Result<Vec<Vec<f64>>> {
    let map = object(v, field)?;
    for key in map.keys() {
        if !tensors.iter().any(|t| &t.name == key) {
            return Err(bad(format!("{field}.{key}"), "no such tensor in `params`"));
        }
    }
    tensors
        .iter()
        .map(|t| {
            let f = format!("{field}.{}", t.name);
            let vals = numbers(map.get(&t.name).ok_or_else(|| bad(&f, "missing"))?, &f)?;
            if vals.len() != t.values.len() {
                return Err(bad(
                    f,
                    format!(
                        "has {} values, but shape {:?} needs {}",
                        vals.len(),
                        t.shape,
                        t.values.len()
                    ),
                ));
            }
            Ok(vals)
        })
        .collect()
}

fn result_from(v: &Value, field: &str, tensors: &[CaseTensor]) -> Result<ReplayResult> {
    let map = object(v, field)?;
    let mut out = ReplayResult::default();
    for (key, dst) in [("y", &mut out.y), ("x", &mut out.x), ("z", &mut out.z)] {
        let f = format!("{field}.{key}");
        let vals = tensor_map(map.get(key).ok_or_else(|| bad(&f, "missing"))?, &f, tensors)?;
        for (t, vals) in tensors.iter().zip(vals) {
            dst.insert(t.name.clone(), vals);
        }
    }
    Ok(out)
}

impl ReplayCase {
    /// Parses and validates a case from JSON text.
    pub fn parse(text: &str) -> Result<ReplayCase> {
        let root: Value = serde_json::from_str(text).map_err(|e| bad("(file)", format!("invalid JSON: {e}")))?;
        let top = object(&root, "(file)")?;
        if let Some(key) = top.keys().find(|k| !TOP_FIELDS.contains(&k.as_str())) {
            return Err(bad(key.as_str(), "unknown field"));
        }
        let opt_value = top.get("optimizer").ok_or_else(|| bad("optimizer", "missing"))?;
        object(opt_value, "optimizer")?;
        let optimizer: OptimConfig =
            serde_json::from_value(opt_value.clone()).map_err(|e| bad("optimizer", e.to_string()))?;
        optimizer.validate()?;

        let shapes = object(top.get("shapes").ok_or_else(|| bad("shapes", "missing"))?, "shapes")?;
        let params = object(top.get("params").ok_or_else(|| bad("params", "missing"))?, "params")?;
        if params.is_empty() {
            return Err(bad("params", "must name at least one tensor"));
        }
        let mut tensors = Vec::new();
        for (name, vals) in params {
            let f = format!("params.{name}");
            let shape_v = shapes
                .get(name)
                .ok_or_else(|| bad(format!("shapes.{name}"), "missing for a tensor in `params`"))?;
            let shape = shape_v
                .as_array()
                .and_then(|a| {
                    a.iter()
                        .map(|d| d.as_u64().map(|d| d as usize))
                        .collect::<Option<Vec<_>>>()
                })
                .ok_or_else(|| bad(format!("shapes.{name}"), "must be an array of non-negative integers"))?;
            let len: usize = shape.iter().product();
            if len == 0 {
                return Err(bad(format!("shapes.{name}"), "must have at least one element"));
            }
            let values = numbers(vals, &f)?;
            if values.len() != len {
                return Err(bad(
                    f,
                    format!("has {} values, but shape {shape:?} needs {len}", values.len()),
                ));
            }
            tensors.push(CaseTensor {
                name: name.clone(),
                shape,
                values,
            });
        }
        if let Some(name) = shapes.keys().find(|n| !params.contains_key(*n)) {
            return Err(bad(format!("shapes.{name}"), "no such tensor in `params`"));
        }

        let nap = match top.get("nap") {
            None | Some(Value::Null) => None,
            Some(v) => {
                object(v, "nap")?;
                let cfg: NapConfig = serde_json::from_value(v.clone()).map_err(|e| bad("nap", e.to_string()))?;
                let mut seen = std::collections::HashSet::new();
                for (gi, g) in cfg.groups.iter().enumerate() {
                    if g.tensors.is_empty() {
                        return Err(bad(format!("nap.groups[{gi}].tensors"), "must not be empty"));
                    }
                    for t in &g.tensors {
                        if !params.contains_key(t) {
                            return Err(bad(
                                format!("nap.groups[{gi}].tensors"),
                                format!("no tensor `{t}` in `params`"),
                            ));
                        }
                        if !seen.insert(t.clone()) {
                            return Err(bad(
                                format!("nap.groups[{gi}].tensors"),
                                format!("tensor `{t}` is in two groups"),
                            ));
                        }
                    }
                    if let Some(rho) = g.rho {
                        if !(rho.is_finite() && rho > 0.0) {
                            return Err(bad(format!("nap.groups[{gi}].rho"), "must be a finite number > 0"));
                        }
                    }
                }
                Some(cfg)
            }
        };

        let steps_v = top.get("steps").ok_or_else(|| bad("steps", "missing"))?;
        let steps_arr = steps_v
            .as_array()
            .ok_or_else(|| bad("steps", format!("must be an array, got {}", type_name(steps_v))))?;
        let mut steps = Vec::with_capacity(steps_arr.len());
        for (i, s) in steps_arr.iter().enumerate() {
            let f = format!("steps[{i}]");
            let obj = object(s, &f)?;
            if let Some(key) = obj.keys().find(|k| *k != "loss" && *k != "grads") {
                return Err(bad(format!("{f}.{key}"), "unknown field"));
            }
            let loss = match obj.get("loss") {
                None | Some(Value::Null) => None,
                Some(l) => Some(
                    l.as_f64()
                        .filter(|l| l.is_finite())
                        .ok_or_else(|| bad(format!("{f}.loss"), "must be a finite number"))?,
                ),
            };
            if optimizer.kind == Kind::SfPlus && loss.is_none() {
                return Err(bad(format!("{f}.loss"), "required for sf_plus"));
            }
            let grads = tensor_map(
                obj.get("grads").ok_or_else(|| bad(format!("{f}.grads"), "missing"))?,
                &format!("{f}.grads"),
                &tensors,
            )?;
            steps.push(CaseStep { loss, grads });
        }

        let expected = match (top.get("expected"), top.get("tolerance")) {
            (None, None) => None,
            (Some(e), Some(t)) => {
                let tol = object(t, "tolerance")?;
                let get = |k: &str| {
                    tol.get(k)
                        .and_then(Value::as_f64)
                        .filter(|v| v.is_finite() && *v >= 0.0)
                        .ok_or_else(|| bad(format!("tolerance.{k}"), "must be a finite number >= 0"))
                };
                Some(Expected {
                    result: result_from(e, "expected", &tensors)?,
                    rtol: get("rtol")?,
                    atol: get("atol")?,
                })
            }
            (Some(_), None) => return Err(bad("tolerance", "missing (required with `expected`)")),
            (None, Some(_)) => return Err(bad("expected", "missing (required with `tolerance`)")),
        };

        Ok(ReplayCase {
            optimizer,
            nap,
            tensors,
            steps,
            expected,
        })
    }

    /// Reads and parses a case file.
    pub fn load(path: &std::path::Path) -> Result<ReplayCase> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        ReplayCase::parse(&text)
    }
}

/// Compares `got` with `expected` element by element; the error names the first value out of tolerance.
pub fn check_within(got: &ReplayResult, expected: &Expected) -> Result<()> {
    for (seq, exp_map, got_map) in [
        ("y", &expected.result.y, &got.y),
        ("x", &expected.result.x, &got.x),
        ("z", &expected.result.z, &got.z),
    ] {
        for (name, exp) in exp_map {
            let g = got_map
                .get(name)
                .ok_or_else(|| bad(format!("{seq}.{name}"), "missing from the result"))?;
            for (i, (a, b)) in g.iter().zip(exp).enumerate() {
                let allowed = expected.atol + expected.rtol * b.abs();
                if (a - b).abs() > allowed || (a - b).is_nan() {
                    return Err(Error::Numerical(format!(
                        "{seq}.{name}[{i}]: got {a}, expected {b} (|diff| {} > allowed {allowed})",
                        (a - b).abs()
                    )));
                }
            }
        }
    }
    Ok(())
}

impl ReplayResult {
    /// The result as JSON, tensors in `order` (the case's tensor order).
    pub fn to_json(&self, order: &[String]) -> String {
        let seq = |map: &BTreeMap<String, Vec<f64>>| {
            let mut obj = serde_json::Map::new();
            for name in order {
                if let Some(v) = map.get(name) {
                    obj.insert(name.clone(), serde_json::json!(v));
                }
            }
            Value::Object(obj)
        };
        let root = serde_json::json!({ "y": seq(&self.y), "x": seq(&self.x), "z": seq(&self.z) });
        serde_json::to_string(&root).expect("numbers and strings always serialize")
    }
}

/// The shortest decimal that reads back as the same f32, as f64 (keeps output readable).
fn widen(v: f32) -> f64 {
    v.to_string().parse().unwrap_or(v as f64)
}

/// Runs `case` on the GPU engine (all tensors take weight decay) and returns y, x and z.
#[cfg(not(target_arch = "wasm32"))]
pub fn run_gpu(gpu: &crate::gpu::Gpu, case: &ReplayCase) -> Result<ReplayResult> {
    run_gpu_with(gpu, case, &vec![true; case.tensors.len()], None)
}

/// [`run_gpu_async`], waiting for the device (native only).
#[cfg(not(target_arch = "wasm32"))]
pub fn run_gpu_with(
    gpu: &crate::gpu::Gpu,
    case: &ReplayCase,
    decay: &[bool],
    max_binding_bytes: Option<u64>,
) -> Result<ReplayResult> {
    pollster::block_on(run_gpu_async(gpu, case, decay, max_binding_bytes))
}

/// Runs `case` on the GPU engine with weight decay only where `decay[i]` holds,
/// and storage bindings of at most `max_binding_bytes` (to exercise a segmented
/// arena). The same code runs natively and in the browser.
pub async fn run_gpu_async(
    gpu: &crate::gpu::Gpu,
    case: &ReplayCase,
    decay: &[bool],
    max_binding_bytes: Option<u64>,
) -> Result<ReplayResult> {
    use crate::arena::{Arena, TensorSpec};
    use crate::optim::GpuOptimizer;

    let specs: Vec<TensorSpec> = case
        .tensors
        .iter()
        .zip(decay)
        .map(|(t, &d)| TensorSpec {
            decay: d,
            ..TensorSpec::new(&t.name, &t.shape)
        })
        .collect();
    let arena = Arena::new(gpu, &specs, max_binding_bytes)?;
    let f32s = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
    for t in &case.tensors {
        arena.write(gpu, &t.name, &f32s(&t.values))?;
    }
    let mut opt = GpuOptimizer::new(gpu, &arena, &case.optimizer, case.nap.as_ref())?;
    for step in &case.steps {
        for (t, g) in case.tensors.iter().zip(&step.grads) {
            arena.write_grad(gpu, &t.name, &f32s(g))?;
        }
        if let Some(loss) = step.loss.filter(|_| opt.loss_buffer().is_some()) {
            opt.write_loss(gpu, loss as f32)?;
        }
        opt.step(gpu)?;
    }
    opt.check_async(gpu).await?;
    let mut out = ReplayResult::default();
    for t in &case.tensors {
        let y = opt.read_state_async(gpu, &arena, "params", &t.name).await?;
        let z = opt.read_state_async(gpu, &arena, "z", &t.name).await?;
        out.y.insert(t.name.clone(), y.into_iter().map(widen).collect());
        out.z.insert(t.name.clone(), z.into_iter().map(widen).collect());
    }
    opt.eval(gpu, &arena);
    for t in &case.tensors {
        let x = opt.read_state_async(gpu, &arena, "params", &t.name).await?;
        out.x.insert(t.name.clone(), x.into_iter().map(widen).collect());
    }
    opt.train(gpu);
    Ok(out)
}
