//! Seeded fuzzing of the parsers of untrusted files, in process: replay cases
//! (`ReplayCase::parse`, mutations of the golden cases) and checkpoints
//! (`checkpoint::load_bytes`, mutations of small checkpoints saved on the GPU).
//! Over 10,000 inputs each per run, from a fixed seed (`SFNAP_FUZZ_SEED`
//! picks another, `SFNAP_FUZZ_INPUTS` another count). Every input must parse
//! without a panic to either a value whose numbers are all finite, or an error
//! of one line that names the offending path. A failing input is written to
//! the test's scratch directory, for `tests/data/fuzz/`. The corpus there, the
//! nastiest cases found so far, is replayed with its expected errors.

#[path = "support/ckpt.rs"]
mod ckpt;
mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use serde_json::{Map, Value};
use sfnap::error::Error;
use sfnap::optim::Kind;
use sfnap::replay::{ReplayCase, MAX_TENSOR_LEN};

/// SplitMix64, so the inputs depend on the seed alone.
struct Prng(u64);

impl Prng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64) < p * (1u64 << 53) as f64
    }

    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

fn seed() -> u64 {
    std::env::var("SFNAP_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5F4E_4150)
}

/// `SFNAP_FUZZ_VERBOSE=1`: print how often each kind of error came up.
fn verbose() -> bool {
    std::env::var_os("SFNAP_FUZZ_VERBOSE").is_some()
}

/// An error message with its numbers and quoted names blanked, to count kinds.
fn error_kind(msg: &str) -> String {
    let mut out = String::new();
    let mut quoted = false;
    for c in msg.chars().take(90) {
        match c {
            '`' => {
                quoted = !quoted;
                out.push('`');
            }
            _ if quoted => {}
            '0'..='9' => {
                if !out.ends_with('#') {
                    out.push('#');
                }
            }
            c => out.push(c),
        }
    }
    out
}

fn print_kinds(kinds: &std::collections::BTreeMap<String, usize>) {
    let mut v: Vec<_> = kinds.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1));
    for (k, n) in v {
        println!("{n}\t{k}");
    }
}

fn inputs() -> usize {
    std::env::var("SFNAP_FUZZ_INPUTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000)
}

/// Writes a failing input where it can be picked up, and fails.
fn fail(what: &str, i: usize, input: &[u8], why: &str) -> ! {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join(format!("fuzz-{what}-{}-{i}", seed()));
    std::fs::write(&path, input).ok();
    panic!(
        "{what} input {i} (seed {}): {why}; input written to {}",
        seed(),
        path.display()
    );
}

/// Number tokens at the edges of f32, f64, u64 and JSON itself (some invalid).
const NUMBERS: &[&str] = &[
    "1e39",
    "-1e39",
    "1e38",
    "-1e38",
    "3.4028235e38",
    "3.4028236e38",
    "3.5e38",
    "1e308",
    "-1e308",
    "1.7976931348623157e308",
    "1e999",
    "-1e999",
    "1e-400",
    "1e-45",
    "-0",
    "0",
    "-1",
    "1",
    "2",
    "0.5",
    "0.9999999999",
    "0.99999997",
    "0.9999999",
    "1.0000001",
    "1e10",
    "1e18",
    "1e37",
    "1e19",
    "1e-19",
    "9223372036854775807",
    "9223372036854775809",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775809",
    "4294967296",
    "65536",
    "NaN",
    "Infinity",
    "-Infinity",
    "1e",
    "--1",
    "0x10",
    "1.",
    ".5",
    "01",
];

/// Values that are not numbers.
fn odd_value(rng: &mut Prng) -> Value {
    match rng.below(9) {
        0 => Value::Null,
        1 => Value::Bool(rng.chance(0.5)),
        2 => Value::String("adamw_sf".into()),
        3 => Value::String("t0\n\"\u{1b}[31m".into()),
        4 => Value::Array(vec![]),
        5 => Value::Object(Map::new()),
        6 => serde_json::json!([1, [2, [3]]]),
        7 => serde_json::json!({"kind": "wsd", "total_steps": 10}),
        _ => serde_json::json!([0.1, "x", null]),
    }
}

/// Placeholder `i`, a string or key replaced by `tokens[i]` after serialization
/// (a raw number token, or the JSON of a key the object already has).
fn placeholder(i: usize) -> String {
    format!("@@{i}@@")
}

/// The path (object keys and array indices) to a random node of `v`, biased
/// toward the structure rather than the many numbers.
fn random_path(v: &Value, rng: &mut Prng) -> Vec<PathSeg> {
    let mut path = Vec::new();
    let mut node = v;
    loop {
        let stop = rng.chance(0.25);
        match node {
            Value::Object(m) if !m.is_empty() && !stop => {
                let (k, next) = m.iter().nth(rng.below(m.len())).unwrap();
                path.push(PathSeg::Key(k.clone()));
                node = next;
            }
            Value::Array(a) if !a.is_empty() && !stop => {
                let i = rng.below(a.len());
                path.push(PathSeg::Index(i));
                node = &a[i];
            }
            _ => return path,
        }
    }
}

#[derive(Clone)]
enum PathSeg {
    Key(String),
    Index(usize),
}

fn node_mut<'a>(v: &'a mut Value, path: &[PathSeg]) -> &'a mut Value {
    path.iter().fold(v, |n, s| match s {
        PathSeg::Key(k) => &mut n[k.as_str()],
        PathSeg::Index(i) => &mut n[*i],
    })
}

/// Paths of the hyperparameters and data that matter most.
fn hot_path(v: &Value, rng: &mut Prng) -> Vec<PathSeg> {
    let key = |s: &str| PathSeg::Key(s.to_string());
    let fields = [
        "lr",
        "eps",
        "weight_decay",
        "r",
        "weight_lr_power",
        "momentum",
        "inner_momentum",
        "sf_beta1",
        "sf_beta1_max",
        "polyak_beta",
        "warmup_steps",
        "c_warmup",
        "sf_beta1_anneal_steps",
    ];
    match rng.below(8) {
        0 | 1 => vec![key("optimizer"), key(fields[rng.below(fields.len())])],
        2 => vec![key("optimizer"), key("betas"), PathSeg::Index(rng.below(2))],
        3 => vec![
            key("shapes"),
            key(["t0", "t1", "t2"][rng.below(3)]),
            PathSeg::Index(rng.below(2)),
        ],
        4 => {
            let steps = v["steps"].as_array().map_or(1, Vec::len);
            vec![key("steps"), PathSeg::Index(rng.below(steps)), key("loss")]
        }
        5 => {
            let steps = v["steps"].as_array().map_or(1, Vec::len);
            let t = rng.pick(&["t0", "t1", "t2"]);
            vec![
                key("steps"),
                PathSeg::Index(rng.below(steps)),
                key("grads"),
                key(t),
                PathSeg::Index(rng.below(7)),
            ]
        }
        6 => vec![
            key("params"),
            key(["t0", "t1", "t2"][rng.below(3)]),
            PathSeg::Index(rng.below(7)),
        ],
        _ => vec![key("nap"), key("groups"), PathSeg::Index(rng.below(2)), key("rho")],
    }
}

/// One structural or numeric mutation of the parsed case; tokens to splice in
/// for placeholders go to `tokens`.
fn mutate_value(v: &mut Value, rng: &mut Prng, tokens: &mut Vec<String>) {
    let path = if rng.chance(0.5) {
        hot_path(v, rng)
    } else {
        random_path(v, rng)
    };
    // Make the path exist (objects and arrays along it are created as needed).
    let mut node = &mut *v;
    for s in &path {
        node = match s {
            PathSeg::Key(k) => {
                if !node.is_object() {
                    *node = Value::Object(Map::new());
                }
                node.as_object_mut().unwrap().entry(k.clone()).or_insert(Value::Null)
            }
            PathSeg::Index(i) => {
                if !node.is_array() {
                    *node = Value::Array(vec![]);
                }
                let a = node.as_array_mut().unwrap();
                if a.len() <= *i {
                    a.resize(i + 1, Value::from(0.5));
                }
                &mut a[*i]
            }
        };
    }
    match rng.below(10) {
        0..=3 => {
            *node = Value::String(placeholder(tokens.len()));
            tokens.push(rng.pick(NUMBERS).to_string());
        }
        4 => *node = odd_value(rng),
        5 => {
            // Nest the node deeply.
            for _ in 0..rng.below(300) {
                *node = Value::Array(vec![node.take()]);
            }
        }
        6 => {
            // Repeat a key of this object (or of the enclosing one).
            let is_object = node.is_object();
            let target = if is_object {
                node_mut(v, &path)
            } else {
                node_mut(v, &path[..path.len().saturating_sub(1)])
            };
            if let Some(m) = target.as_object_mut() {
                if let Some(k) = m.keys().nth(rng.below(m.len())).cloned() {
                    let copy = m[&k].clone();
                    m.insert(placeholder(tokens.len()), copy);
                    tokens.push(serde_json::to_string(&k).unwrap());
                }
            }
        }
        7 => {
            // Remove this node from its parent.
            if let Some((last, parent)) = path.split_last() {
                match (node_mut(v, parent), last) {
                    (Value::Object(m), PathSeg::Key(k)) => {
                        m.shift_remove(k);
                    }
                    (Value::Array(a), PathSeg::Index(i)) if *i < a.len() => {
                        a.remove(*i);
                    }
                    _ => {}
                }
            }
        }
        8 => {
            // An unknown key, or a key with control characters.
            if let Some(m) = node.as_object_mut() {
                let k = rng.pick(&["extra", "t9", "lr", "a\nb", "\u{0}", "é€", ""]).to_string();
                m.insert(k, Value::from(1));
            } else {
                *node = serde_json::json!({ "a\nb": 1 });
            }
        }
        _ => {
            // Arrays grow, shrink or empty.
            if let Some(a) = node.as_array_mut() {
                match rng.below(3) {
                    0 => a.push(Value::from(0.25)),
                    1 => {
                        a.pop();
                    }
                    _ => a.clear(),
                }
            } else {
                *node = Value::from(-1);
            }
        }
    }
}

/// Serializes `v` and splices in the tokens for their placeholders; true if a
/// repeated key made it into the text.
fn render(v: &Value, tokens: &[String]) -> (String, bool) {
    let mut text = serde_json::to_string(v).unwrap();
    let mut repeated = false;
    for (i, token) in tokens.iter().enumerate() {
        let p = format!("\"{}\"", placeholder(i));
        repeated |= token.starts_with('"') && text.contains(&format!("{p}:"));
        text = text.replacen(&p, token, 1);
    }
    (text, repeated)
}

/// One byte-level mutation of the text.
fn mutate_text(text: String, rng: &mut Prng) -> String {
    let mut b = text.into_bytes();
    let n = b.len().max(1);
    match rng.below(8) {
        0 => {
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(n).min(b.len().saturating_sub(1));
                if !b.is_empty() {
                    b[i] ^= 1 << rng.below(8);
                }
            }
        }
        1 => {
            let i = rng.below(n).min(b.len().saturating_sub(1));
            if !b.is_empty() {
                b[i] = *rng.pick(b"{}[],:\"\\-+.eE0123456789 \n\x00\xff");
            }
        }
        2 => b.truncate(rng.below(n)),
        3 => {
            let i = rng.below(n).min(b.len());
            let j = (i + rng.below(64)).min(b.len());
            b.drain(i..j);
        }
        4 => {
            let i = rng.below(n).min(b.len());
            let j = (i + rng.below(64)).min(b.len());
            let copy = b[i..j].to_vec();
            b.splice(j..j, copy);
        }
        5 => {
            // Replace a number token by an edge case.
            let text = String::from_utf8_lossy(&b).into_owned();
            let starts: Vec<usize> = text
                .char_indices()
                .filter(|&(i, c)| {
                    (c.is_ascii_digit() || c == '-')
                        && i > 0
                        && matches!(text.as_bytes()[i - 1], b'[' | b',' | b':' | b' ')
                })
                .map(|(i, _)| i)
                .collect();
            if !starts.is_empty() {
                let s = *rng.pick(&starts);
                let e = text[s..]
                    .find(|c: char| !(c.is_ascii_digit() || "-+.eE".contains(c)))
                    .map_or(text.len(), |e| s + e);
                b = format!("{}{}{}", &text[..s], rng.pick(NUMBERS), &text[e..]).into_bytes();
            }
        }
        6 => {
            let depth = 1 + rng.below(3000);
            let (open, close) = if rng.chance(0.5) {
                ("[".repeat(depth), "]".repeat(depth))
            } else {
                ("{\"a\":".repeat(depth), "}".repeat(depth))
            };
            b = format!("{open}{}{close}", String::from_utf8_lossy(&b)).into_bytes();
        }
        _ => {
            let i = rng.below(n).min(b.len());
            let junk: Vec<u8> = (0..1 + rng.below(8)).map(|_| rng.next() as u8).collect();
            b.splice(i..i, junk);
        }
    }
    String::from_utf8_lossy(&b).into_owned()
}

/// The golden cases, whole and cut to their first few steps (faster to parse).
fn replay_bases() -> Vec<Value> {
    let files = common::golden_files();
    assert!(
        files.len() >= 10,
        "the golden cases are in {}",
        common::data_dir().display()
    );
    let mut bases = Vec::new();
    for f in files {
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
        let mut short = v.clone();
        short["steps"].as_array_mut().unwrap().truncate(2);
        bases.push(short.clone());
        short.as_object_mut().unwrap().shift_remove("expected");
        short.as_object_mut().unwrap().shift_remove("tolerance");
        bases.push(short);
        bases.push(v);
    }
    bases
}

/// The verdict on one parse: a finite, valid case, or a one-line error naming a path.
fn check_replay(text: &str) -> Result<Option<ReplayCase>, String> {
    let parsed = catch_unwind(AssertUnwindSafe(|| ReplayCase::parse(text))).map_err(|_| "panicked".to_string())?;
    match parsed {
        Ok(case) => {
            case.optimizer
                .validate()
                .map_err(|e| format!("accepted an invalid optimizer: {e}"))?;
            let f32_ok = |v: f64| v.is_finite() && (v as f32).is_finite();
            // Independently of validate(): every hyperparameter is an f32, and
            // every interpolation or EMA weight stays below 1 as one.
            let opt = serde_json::to_value(&case.optimizer).unwrap();
            let mut numbers = Vec::new();
            collect_numbers(&opt, "optimizer", &mut numbers);
            for (path, v) in &numbers {
                let field = path.trim_start_matches("optimizer.");
                let weight = field.starts_with("betas[")
                    || ["momentum", "inner_momentum", "sf_beta1", "sf_beta1_max", "polyak_beta"].contains(&field);
                if !f32_ok(*v) || (weight && !((*v as f32) < 1.0 && *v >= 0.0)) {
                    return Err(format!("accepted {path} = {v}"));
                }
            }
            for t in &case.tensors {
                let len = t.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
                if len != Some(t.values.len()) || t.values.len() > MAX_TENSOR_LEN {
                    return Err(format!("accepted tensor {} of shape {:?}", t.name, t.shape));
                }
                if !t.values.iter().all(|&v| f32_ok(v)) {
                    return Err(format!("accepted a value outside f32 in params.{}", t.name));
                }
            }
            for (k, s) in case.steps.iter().enumerate() {
                if !s.loss.is_none_or(f32_ok) || !s.grads.iter().flatten().all(|&v| f32_ok(v)) {
                    return Err(format!("accepted a value outside f32 in steps[{k}]"));
                }
            }
            if let Some(nap) = &case.nap {
                if !nap
                    .groups
                    .iter()
                    .all(|g| g.rho.is_none_or(|r| sfnap::nap::check_rho(r).is_ok()))
                {
                    return Err("accepted a NaP rho out of range".into());
                }
            }
            Ok(Some(case))
        }
        Err(e) => {
            let msg = e.to_string();
            if msg.contains('\n') || msg.contains('\r') {
                return Err(format!("an error of more than one line: {msg:?}"));
            }
            match &e {
                Error::Invalid { field, .. } if !field.is_empty() && msg.starts_with(field.as_str()) => Ok(None),
                _ => Err(format!("an error that names no path: {msg:?}")),
            }
        }
    }
}

fn collect_numbers(v: &Value, path: &str, out: &mut Vec<(String, f64)>) {
    match v {
        Value::Number(n) => out.push((path.to_string(), n.as_f64().unwrap())),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, x)| collect_numbers(x, &format!("{path}[{i}]"), out)),
        Value::Object(m) => m
            .iter()
            .for_each(|(k, x)| collect_numbers(x, &format!("{path}.{k}"), out)),
        _ => {}
    }
}

/// One mutated replay case: mostly short cases, a whole golden case one time
/// in eight; edits of the parsed case, of the text, or both. True if the text
/// repeats a key (a later edit of the text may have removed it: false then).
fn replay_input(bases: &[Value], texts: &[String], rng: &mut Prng) -> (String, bool) {
    let base = rng.below(bases.len());
    let base = if rng.chance(0.125) {
        base
    } else {
        base - base % 3 + rng.below(2)
    };
    let mut v = bases[base].clone();
    let mut tokens = Vec::new();
    let edited = rng.chance(0.7);
    let (mut text, mut repeated) = if edited {
        for _ in 0..1 + rng.below(3) {
            mutate_value(&mut v, rng, &mut tokens);
        }
        render(&v, &tokens)
    } else {
        (texts[base].clone(), false)
    };
    if !edited || rng.chance(0.3) {
        repeated = false;
        for _ in 0..1 + rng.below(2) {
            text = mutate_text(text, rng);
        }
    }
    (text, repeated)
}

#[test]
fn fuzz_replay_parser() {
    let bases = replay_bases();
    let texts: Vec<String> = bases.iter().map(|b| serde_json::to_string(b).unwrap()).collect();
    for t in &texts {
        assert!(matches!(check_replay(t), Ok(Some(_))), "a golden case no longer parses");
    }
    let mut rng = Prng(seed());
    let (mut accepted, mut refused) = (0, 0);
    let mut kinds = std::collections::BTreeMap::new();
    let started = std::time::Instant::now();
    for i in 0..inputs() {
        let (text, repeated) = replay_input(&bases, &texts, &mut rng);
        match check_replay(&text) {
            Ok(Some(_)) if repeated => fail("replay", i, text.as_bytes(), "accepted a repeated key"),
            Ok(Some(_)) => accepted += 1,
            Ok(None) => {
                refused += 1;
                if verbose() {
                    let e = ReplayCase::parse(&text).unwrap_err().to_string();
                    *kinds.entry(error_kind(&e)).or_insert(0) += 1;
                }
            }
            Err(why) => fail("replay", i, text.as_bytes(), &why),
        }
    }
    print_kinds(&kinds);
    println!(
        "replay fuzz: {accepted} accepted, {refused} refused in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        accepted > inputs() / 50 && refused > inputs() / 2,
        "{accepted} accepted, {refused} refused"
    );
}

/// Accepted mutants run on the GPU: all-finite output, or a one-line error
/// (the arithmetic of in-range inputs may still overflow f32).
#[test]
fn fuzz_accepted_cases_run_on_the_gpu() {
    let gpu = common::gpu();
    let bases = replay_bases();
    let texts: Vec<String> = bases.iter().map(|b| serde_json::to_string(b).unwrap()).collect();
    let mut rng = Prng(seed() ^ 0x6970);
    let (mut finite, mut failed, mut i) = (0, 0, 0);
    while finite + failed < 24 {
        i += 1;
        let (text, _) = replay_input(&bases, &texts, &mut rng);
        let Ok(Some(mut case)) = check_replay(&text) else {
            continue;
        };
        case.steps.truncate(3);
        let run = catch_unwind(AssertUnwindSafe(|| sfnap::replay::run_gpu(&gpu, &case)));
        match run {
            Err(_) => fail("gpu-replay", i, text.as_bytes(), "panicked"),
            Ok(Ok(r)) => {
                let values = [&r.y, &r.x, &r.z].into_iter().flat_map(|m| m.values().flatten());
                if !values.into_iter().all(|v| v.is_finite()) {
                    fail("gpu-replay", i, text.as_bytes(), "a result that is not finite");
                }
                finite += 1;
            }
            Ok(Err(e)) => {
                if e.to_string().contains('\n') {
                    fail(
                        "gpu-replay",
                        i,
                        text.as_bytes(),
                        &format!("an error of more than one line: {e}"),
                    );
                }
                failed += 1;
            }
        }
    }
    println!("gpu replay fuzz: {finite} finite, {failed} failed");
}

/// The f32 words of the `opt.*` structs that hold floats (the rest are flags,
/// counters and padding): `StepScalars` and `PlusState` as in the shaders.
fn float_words(name: &str) -> &'static [usize] {
    match name {
        "opt.step" => &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 20],
        "opt.plus_state" => &[0, 1, 2, 3, 4, 5, 6, 10, 11],
        _ => &[],
    }
}

/// An accepted checkpoint holds only finite numbers (checked here without the loader's code).
fn all_finite(bytes: &[u8], loaded: &sfnap::checkpoint::Loaded) -> Result<(), String> {
    let st = safetensors::SafeTensors::deserialize(bytes).map_err(|e| format!("accepted a broken file: {e}"))?;
    for (name, t) in st.tensors() {
        let words: Vec<f32> = t
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        let bad = match t.dtype() {
            safetensors::Dtype::F32 => words.iter().any(|v| !v.is_finite()),
            _ => float_words(&name)
                .iter()
                .any(|&i| words.get(i).is_none_or(|v| !v.is_finite())),
        };
        if bad {
            return Err(format!("accepted a non-finite value in {name}"));
        }
    }
    let host = serde_json::to_value(loaded.host_scalars()).unwrap();
    let numbers = ["lr_max", "w_sum", "w_comp"].iter().map(|k| &host[k]);
    let last = host["last"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| *k != "pad")
        .map(|(_, v)| v);
    if numbers.chain(last).any(|v| !v.as_f64().is_some_and(f64::is_finite)) {
        return Err(format!("accepted non-finite host scalars: {host}"));
    }
    Ok(())
}

/// One mutation of a checkpoint's bytes: bits, bytes, its length, its
/// metadata, its tensor table or its data.
fn mutate_checkpoint(seed: &[u8], rng: &mut Prng) -> Vec<u8> {
    let mut b = seed.to_vec();
    let n = b.len();
    let start = ckpt::data_start(seed);
    let names: Vec<String> = ckpt::header(seed)
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| *k != "__metadata__")
        .cloned()
        .collect();
    match rng.below(10) {
        0 => {
            for _ in 0..1 + rng.below(3) {
                let i = if rng.chance(0.7) {
                    start + rng.below(n - start)
                } else {
                    rng.below(n)
                };
                b[i] ^= 1 << rng.below(8);
            }
        }
        1 => {
            let i = rng.below(n);
            b[i] = rng.next() as u8;
        }
        2 => b.truncate(rng.below(n)),
        3 => b.extend((0..1 + rng.below(16)).map(|_| rng.next() as u8)),
        4 => {
            let len = *rng.pick(&[0u64, 1, 7, (start - 8) as u64 + 8, u64::MAX, 1 << 40, (n - 8) as u64]);
            b[..8].copy_from_slice(&len.to_le_bytes());
        }
        5 | 6 => {
            // An edit of the metadata: a field set to an edge value, or removed.
            let fields = ["format", "checksum", "step", "config", "rng", "host_scalars"];
            let field = rng.pick(&fields).to_string();
            let value = match rng.below(6) {
                0 => Value::from(rng.next()),
                1 => serde_json::json!(1e39),
                2 => serde_json::json!(-1),
                3 => odd_value(rng),
                4 => Value::from("sfnap-checkpoint-5"),
                _ => Value::from(format!("{:08x}", rng.next() as u32)),
            };
            let sub = rng.pick(&["lr_max", "w_sum", "w_comp", "k", "cfg", "last"]).to_string();
            let inner = rng
                .pick(&["gamma", "c", "beta", "inv_bc2", "skip", "lr", "kind", "betas"])
                .to_string();
            let depth = rng.below(4);
            let remove = rng.chance(0.2);
            b = ckpt::edit_metadata(seed, |m| {
                if remove {
                    m.as_object_mut().unwrap().shift_remove(field.as_str());
                    return;
                }
                let mut target = &mut m[field.as_str()];
                if depth >= 2 {
                    target = &mut m["host_scalars"];
                    for key in [sub.as_str(), inner.as_str()].into_iter().take(depth - 1) {
                        if !(target.is_object() || target.is_null()) {
                            break;
                        }
                        target = &mut target[key];
                    }
                }
                *target = value;
            });
        }
        7 => {
            // The tensor table: a dtype, a shape, offsets, a name.
            let mut h = ckpt::header(seed);
            let name = rng.pick(&names).clone();
            let other = rng.pick(&names).clone();
            match rng.below(5) {
                0 => h[&name]["dtype"] = Value::from(*rng.pick(&["F64", "U8", "F16", "I32", "BOGUS"])),
                1 => h[&name]["shape"] = serde_json::json!([rng.below(40), rng.below(3)]),
                2 => {
                    let (a, o) = (h[&name]["data_offsets"].clone(), h[&other]["data_offsets"].clone());
                    h[&name]["data_offsets"] = o;
                    h[&other]["data_offsets"] = a;
                }
                3 => h[&name]["data_offsets"][rng.below(2)] = Value::from(rng.below(n)),
                _ => {
                    let t = h.as_object_mut().unwrap().shift_remove(&name).unwrap();
                    h.as_object_mut().unwrap().insert(format!("{name}.renamed"), t);
                }
            }
            b = ckpt::with_header(seed, &h);
        }
        _ => {
            // A non-finite or huge value into a tensor's data.
            let name = rng.pick(&names).clone();
            let r = ckpt::tensor_range(seed, &name);
            let words = (r.end - r.start) / 4;
            if words > 0 {
                let at = r.start + 4 * rng.below(words);
                let v = *rng.pick(&[f32::NAN, f32::INFINITY, f32::NEG_INFINITY, f32::MAX, -0.0, 1e-45]);
                b[at..at + 4].copy_from_slice(&v.to_le_bytes());
            }
        }
    }
    b
}

#[test]
fn fuzz_checkpoint_loader() {
    let gpu = common::gpu();
    let dir = common::empty_dir("fuzz-ckpt");
    let seeds: Vec<Vec<u8>> = [Kind::SfPlus, Kind::AdamwSf, Kind::Adamw]
        .iter()
        .map(|&k| ckpt::make(&gpu, k, &dir.join(format!("{k}.safetensors"))).0)
        .collect();
    std::fs::remove_dir_all(&dir).ok();
    for s in &seeds {
        ckpt::load(s).unwrap();
    }
    let mut rng = Prng(seed() ^ 0xC4EC);
    let (mut accepted, mut refused) = (0, 0);
    let mut kinds = std::collections::BTreeMap::new();
    let started = std::time::Instant::now();
    for i in 0..inputs() {
        let seed_bytes = rng.pick(&seeds);
        let mut b = mutate_checkpoint(seed_bytes, &mut rng);
        let sealed = rng.chance(0.5) && ckpt::reseal(&mut b);
        let result = catch_unwind(AssertUnwindSafe(|| ckpt::load(&b)));
        match result {
            Err(_) => fail("checkpoint", i, &b, "panicked"),
            Ok(Ok(loaded)) => {
                if !sealed && b != *seed_bytes {
                    fail("checkpoint", i, &b, "changed bytes passed the checksum");
                }
                if let Err(why) = all_finite(&b, &loaded) {
                    fail("checkpoint", i, &b, &why);
                }
                accepted += 1;
            }
            Ok(Err(e)) => {
                if e.contains('\n') || !e.starts_with("ckpt.safetensors: checkpoint: ") {
                    fail("checkpoint", i, &b, &format!("a bad message: {e:?}"));
                }
                if verbose() {
                    *kinds.entry(error_kind(&e)).or_insert(0) += 1;
                }
                refused += 1;
            }
        }
    }
    print_kinds(&kinds);
    println!(
        "checkpoint fuzz: {accepted} accepted, {refused} refused in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(refused > inputs() / 2, "{accepted} accepted, {refused} refused");
}

/// The corpus: each file and the error it must give (its path and what is wrong).
const CORPUS: &[(&str, &str)] = &[
    (
        "beta2_rounds_to_one.json",
        "optimizer.betas[1]: 0.99999999 rounds to 1 in f32",
    ),
    (
        "control_characters_in_a_key.json",
        r#"["evil\n\u001b[2J"]: unknown field"#,
    ),
    ("duplicate_key_in_second_step.json", "steps[1].grads.a: duplicate key"),
    ("duplicate_optimizer.json", "optimizer: duplicate key"),
    (
        "gradient_beyond_f32.json",
        "steps[0].grads.a[1]: 1e39 is outside the range of f32",
    ),
    ("lr_1e38.json", "optimizer.lr: must lie in [0, 1e37], got 1e38"),
    (
        "nesting_5000_deep.json",
        "(file): invalid JSON: recursion limit exceeded",
    ),
    ("r_1e10.json", "optimizer.r: must lie in [-3, 3], got 1e10"),
    (
        "rho_1e308.json",
        "nap.groups[0].rho: must be a number in [1e-18, 1e18], got 1e308",
    ),
    (
        "schedule_length_overflows_u64.json",
        "optimizer.schedule: wsd needs decay_steps > 0",
    ),
    (
        "shape_beyond_u63.json",
        "shapes.a: 1.8446744073709552e19 elements: more than",
    ),
    (
        "shape_product_wraps_to_zero.json",
        "shapes.a: 1.8446744073709552e19 elements: more than",
    ),
];

#[test]
fn fuzz_corpus_regressions() {
    let dir = common::data("fuzz");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    files.sort();
    let mut listed: Vec<String> = CORPUS.iter().map(|(f, _)| f.to_string()).collect();
    listed.sort();
    assert_eq!(files, listed, "every corpus file is listed with its expected error");
    for (file, expected) in CORPUS {
        let text = String::from_utf8_lossy(&std::fs::read(dir.join(file)).unwrap()).into_owned();
        match check_replay(&text) {
            Ok(None) => {
                let e = ReplayCase::parse(&text).unwrap_err().to_string();
                assert!(e.starts_with(expected), "{file}: expected `{expected}...`, got `{e}`");
            }
            Ok(Some(_)) => panic!("{file}: accepted"),
            Err(why) => panic!("{file}: {why}"),
        }
    }
}
