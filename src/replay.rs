//! `sfnap replay`: run a recorded gradient sequence through an optimizer.
//!
//! The file format is `docs/replay-format.md`: an optimizer config, optional NaP groups,
//! tensor shapes, initial parameters and a list of steps (gradients, and the loss
//! for `sf_plus`). Parsing checks everything up front so that a bad case fails
//! with one line naming the field, before any GPU work.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::json::{self, index_path, key_path, object, type_name, Packed, Segment};
use crate::nap::{NapConfig, NapGroup};
use crate::optim::config::{Kind, OptimConfig};
use crate::optim::reference::Reference;

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

/// The most values one tensor of a case may hold (2^30): a shape whose product
/// is larger, or overflows, is refused before anything is allocated.
pub const MAX_TENSOR_LEN: usize = 1 << 30;

fn bad(field: impl Into<String>, msg: impl Into<String>) -> Error {
    Error::invalid(field, msg)
}

/// `v` as an f32 the kernels can take: a JSON number that rounds to a finite
/// f32 (|v| up to 3.4028235e38), kept as f64.
fn value_f32(v: &Value, field: &str) -> Result<f64> {
    check_f32(json::number(v, field)?, field)
}

/// `f` if it rounds to a finite f32.
fn check_f32(f: f64, field: &str) -> Result<f64> {
    if (f as f32).is_finite() {
        Ok(f)
    } else {
        Err(bad(
            field,
            format!("{f:e} is outside the range of f32 (|v| <= 3.4028235e38)"),
        ))
    }
}

/// The arrays of numbers a case holds: `params.NAME`, `steps[i].grads.NAME` and
/// `expected.{y,x,z}.NAME`, packed while parsing ([`json::parse_packing`]) so
/// that a case takes about 8 bytes a number in memory.
fn number_array(path: &[Segment]) -> bool {
    use Segment::{Index, Key};
    match path {
        [Key(top), Key(_)] => top == "params",
        [Key(top), Index(_), Key(grads), Key(_)] => top == "steps" && grads == "grads",
        [Key(top), Key(seq), Key(_)] => top == "expected" && ["y", "x", "z"].contains(&seq.as_str()),
        _ => false,
    }
}

/// The numbers at `field`: packed by the parser, or read from `v` (which words
/// the error for an array that is not all numbers).
fn numbers(v: &Value, field: &str, packed: &mut Packed) -> Result<Vec<f64>> {
    if let Some(values) = packed.take(field) {
        for (i, &f) in values.iter().enumerate() {
            check_f32(f, &index_path(field, i))?;
        }
        return Ok(values);
    }
    let arr = v
        .as_array()
        .ok_or_else(|| bad(field, format!("must be an array of numbers, got {}", type_name(v))))?;
    arr.iter()
        .enumerate()
        .map(|(i, x)| value_f32(x, &index_path(field, i)))
        .collect()
}

/// A tensor's shape: non-negative integers whose product is at least 1 and at
/// most [`MAX_TENSOR_LEN`]; returns the shape and the product.
fn shape(v: &Value, field: &str) -> Result<(Vec<usize>, usize)> {
    let dims = json::array(v, field)?;
    let mut shape = Vec::with_capacity(dims.len());
    let mut len: Option<usize> = Some(1);
    for (i, d) in dims.iter().enumerate() {
        let d = json::count(d, &index_path(field, i))?;
        let d = usize::try_from(d).ok();
        len = len.zip(d).and_then(|(l, d)| l.checked_mul(d));
        shape.push(d.unwrap_or(usize::MAX));
    }
    match len {
        Some(0) => Err(bad(field, "must have at least one element")),
        Some(n) if n <= MAX_TENSOR_LEN => Ok((shape, n)),
        _ => Err(bad(
            field,
            format!(
                "{} elements: more than the {MAX_TENSOR_LEN} a tensor may hold",
                product_text(dims)
            ),
        )),
    }
}

/// The product of the dimensions as text (computed in f64: it may exceed u64).
fn product_text(dims: &[Value]) -> String {
    let p: f64 = dims.iter().filter_map(Value::as_f64).product();
    if p < 1e15 {
        format!("{p}")
    } else {
        format!("{p:e}")
    }
}

fn tensor_map(v: &Value, field: &str, tensors: &[CaseTensor], packed: &mut Packed) -> Result<Vec<Vec<f64>>> {
    let map = object(v, field)?;
    for key in map.keys() {
        if !tensors.iter().any(|t| &t.name == key) {
            return Err(bad(key_path(field, key), "no such tensor in `params`"));
        }
    }
    tensors
        .iter()
        .map(|t| {
            let f = key_path(field, &t.name);
            let vals = numbers(map.get(&t.name).ok_or_else(|| bad(&f, "missing"))?, &f, packed)?;
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

fn result_from(v: &Value, field: &str, tensors: &[CaseTensor], packed: &mut Packed) -> Result<ReplayResult> {
    let map = object(v, field)?;
    if let Some(key) = map.keys().find(|k| !["y", "x", "z"].contains(&k.as_str())) {
        return Err(bad(key_path(field, key), "unknown field (expected y, x, z)"));
    }
    let mut out = ReplayResult::default();
    for (key, dst) in [("y", &mut out.y), ("x", &mut out.x), ("z", &mut out.z)] {
        let f = key_path(field, key);
        let vals = tensor_map(map.get(key).ok_or_else(|| bad(&f, "missing"))?, &f, tensors, packed)?;
        for (t, vals) in tensors.iter().zip(vals) {
            dst.insert(t.name.clone(), vals);
        }
    }
    Ok(out)
}

/// The `nap` object: `{"groups": [{"tensors": [names], "rho": number or null}]}`,
/// each tensor in `params` and in one group at most.
fn nap_from(v: &Value, params: &serde_json::Map<String, Value>) -> Result<NapConfig> {
    let obj = object(v, "nap")?;
    if let Some(key) = obj.keys().find(|k| *k != "groups") {
        return Err(bad(key_path("nap", key), "unknown field (expected groups)"));
    }
    let groups_v = obj.get("groups").ok_or_else(|| bad("nap.groups", "missing"))?;
    let mut seen = std::collections::HashSet::new();
    let mut groups = Vec::new();
    for (gi, g) in json::array(groups_v, "nap.groups")?.iter().enumerate() {
        let gp = format!("nap.groups[{gi}]");
        let gobj = object(g, &gp)?;
        if let Some(key) = gobj.keys().find(|k| *k != "tensors" && *k != "rho") {
            return Err(bad(key_path(&gp, key), "unknown field (expected tensors, rho)"));
        }
        let tp = format!("{gp}.tensors");
        let names = json::array(gobj.get("tensors").ok_or_else(|| bad(&tp, "missing"))?, &tp)?;
        if names.is_empty() {
            return Err(bad(tp, "must not be empty"));
        }
        let mut tensors = Vec::new();
        for (ti, t) in names.iter().enumerate() {
            let name = json::string(t, &index_path(&tp, ti))?;
            if !params.contains_key(name) {
                return Err(bad(
                    index_path(&tp, ti),
                    format!("no tensor {} in `params`", json::quoted(name)),
                ));
            }
            if !seen.insert(name.to_string()) {
                return Err(bad(
                    index_path(&tp, ti),
                    format!("tensor {} is in two groups", json::quoted(name)),
                ));
            }
            tensors.push(name.to_string());
        }
        let rho = match gobj.get("rho") {
            None | Some(Value::Null) => None,
            Some(r) => {
                let rp = format!("{gp}.rho");
                let rho = json::number(r, &rp)?;
                crate::nap::check_rho(rho).map_err(|msg| bad(rp, msg))?;
                Some(rho)
            }
        };
        groups.push(NapGroup { tensors, rho });
    }
    Ok(NapConfig { groups })
}

impl ReplayCase {
    /// Parses and validates a case from JSON text: every error is one line
    /// naming the full JSON path of the offending value (`steps[3].grads.w[17]`),
    /// and comes before any GPU work. Keys may appear once per object; every
    /// number must round to a finite f32; hyperparameters must lie in the
    /// ranges of [`OptimConfig::validate`].
    pub fn parse(text: &str) -> Result<ReplayCase> {
        let (root, mut packed) = json::parse_packing(text, number_array)?;
        let top = object(&root, json::ROOT)?;
        if let Some(key) = top.keys().find(|k| !TOP_FIELDS.contains(&k.as_str())) {
            return Err(bad(key_path("", key), "unknown field"));
        }
        let opt_value = top.get("optimizer").ok_or_else(|| bad("optimizer", "missing"))?;
        let optimizer = OptimConfig::from_json(opt_value, "optimizer")?;
        optimizer.validate()?;

        let shapes = object(top.get("shapes").ok_or_else(|| bad("shapes", "missing"))?, "shapes")?;
        let params = object(top.get("params").ok_or_else(|| bad("params", "missing"))?, "params")?;
        if params.is_empty() {
            return Err(bad("params", "must name at least one tensor"));
        }
        let mut tensors = Vec::new();
        let mut total: usize = 0;
        for (name, vals) in params {
            let f = key_path("params", name);
            let sf = key_path("shapes", name);
            let shape_v = shapes
                .get(name)
                .ok_or_else(|| bad(&sf, "missing for a tensor in `params`"))?;
            let (shape, len) = shape(shape_v, &sf)?;
            total = total.checked_add(len).filter(|t| *t <= MAX_TENSOR_LEN).ok_or_else(|| {
                bad(
                    &sf,
                    format!("the tensors hold more than {MAX_TENSOR_LEN} values in all"),
                )
            })?;
            let values = numbers(vals, &f, &mut packed)?;
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
            return Err(bad(key_path("shapes", name), "no such tensor in `params`"));
        }

        let nap = match top.get("nap") {
            None | Some(Value::Null) => None,
            Some(v) => Some(nap_from(v, params)?),
        };

        let steps_v = top.get("steps").ok_or_else(|| bad("steps", "missing"))?;
        let steps_arr = json::array(steps_v, "steps")?;
        let mut steps = Vec::with_capacity(steps_arr.len());
        for (i, s) in steps_arr.iter().enumerate() {
            let f = index_path("steps", i);
            let obj = object(s, &f)?;
            if let Some(key) = obj.keys().find(|k| *k != "loss" && *k != "grads") {
                return Err(bad(key_path(&f, key), "unknown field"));
            }
            let loss = match obj.get("loss") {
                None | Some(Value::Null) => None,
                Some(l) => Some(value_f32(l, &format!("{f}.loss"))?),
            };
            if optimizer.kind == Kind::SfPlus && loss.is_none() {
                return Err(bad(format!("{f}.loss"), "required for sf_plus"));
            }
            let grads = tensor_map(
                obj.get("grads").ok_or_else(|| bad(format!("{f}.grads"), "missing"))?,
                &format!("{f}.grads"),
                &tensors,
                &mut packed,
            )?;
            steps.push(CaseStep { loss, grads });
        }

        let expected = match (top.get("expected"), top.get("tolerance")) {
            (None, None) => None,
            (Some(e), Some(t)) => {
                let tol = object(t, "tolerance")?;
                if let Some(key) = tol.keys().find(|k| *k != "rtol" && *k != "atol") {
                    return Err(bad(key_path("tolerance", key), "unknown field (expected rtol, atol)"));
                }
                let get = |k: &str| {
                    let p = key_path("tolerance", k);
                    let v = json::number(tol.get(k).ok_or_else(|| bad(&p, "missing"))?, &p)?;
                    if v >= 0.0 {
                        Ok(v)
                    } else {
                        Err(bad(p, format!("must be >= 0, got {v}")))
                    }
                };
                Some(Expected {
                    result: result_from(e, "expected", &tensors, &mut packed)?,
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
    /// The reference's y, x and z of every tensor, by name.
    pub fn of_reference(reference: &Reference) -> ReplayResult {
        let mut out = ReplayResult::default();
        for (i, name) in reference.names().iter().enumerate() {
            out.y.insert(name.clone(), reference.y(i));
            out.x.insert(name.clone(), reference.x(i));
            out.z.insert(name.clone(), reference.z(i));
        }
        out
    }

    /// The result as JSON, tensors in `order` (the case's tensor order), written
    /// straight from the vectors (no JSON tree in between).
    pub fn to_json(&self, order: &[String]) -> String {
        let seq = |map| InOrder { map, order };
        let root = Sequences {
            y: seq(&self.y),
            x: seq(&self.x),
            z: seq(&self.z),
        };
        serde_json::to_string(&root).expect("numbers and strings always serialize")
    }
}

/// The result's three sequences, in the order the file writes them.
#[derive(Serialize)]
struct Sequences<'a> {
    y: InOrder<'a>,
    x: InOrder<'a>,
    z: InOrder<'a>,
}

/// One of y, x, z as a JSON object whose keys follow `order`.
struct InOrder<'a> {
    map: &'a BTreeMap<String, Vec<f64>>,
    order: &'a [String],
}

impl Serialize for InOrder<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_map(self.order.iter().filter_map(|name| Some((name, self.map.get(name)?))))
    }
}

/// The shortest decimal that reads back as the same f32, as f64 (keeps output readable).
fn widen(v: f32) -> f64 {
    v.to_string().parse().unwrap_or(v as f64)
}

/// Runs a whole replay case on the f64 reference (all tensors decayed) and returns its result.
pub fn run_reference(case: &ReplayCase) -> Result<ReplayResult> {
    run_reference_with(case, &vec![true; case.tensors.len()])
}

/// As [`run_reference`], with weight decay only on the tensors where `decay[i]` holds.
pub fn run_reference_with(case: &ReplayCase, decay: &[bool]) -> Result<ReplayResult> {
    let params: Vec<(String, Vec<f64>)> = case
        .tensors
        .iter()
        .map(|t| (t.name.clone(), t.values.clone()))
        .collect();
    let mut reference = Reference::new(&case.optimizer, &params, decay, case.nap.as_ref())?;
    for step in &case.steps {
        reference.step(&step.grads, step.loss)?;
    }
    Ok(ReplayResult::of_reference(&reference))
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
    check_finite(&out, case)?;
    Ok(out)
}

/// A result with a value that is not finite is an error naming the first one:
/// the inputs were in range, but the arithmetic overflowed f32.
fn check_finite(out: &ReplayResult, case: &ReplayCase) -> Result<()> {
    for (seq, map) in [("y", &out.y), ("x", &out.x), ("z", &out.z)] {
        for t in &case.tensors {
            let values = map.get(&t.name).map_or(&[][..], Vec::as_slice);
            if let Some(i) = values.iter().position(|v| !v.is_finite()) {
                return Err(Error::Numerical(format!(
                    "{}[{i}] is {} after {} steps: the arithmetic overflowed f32",
                    key_path(seq, &t.name),
                    values[i],
                    case.steps.len()
                )));
            }
        }
    }
    Ok(())
}
