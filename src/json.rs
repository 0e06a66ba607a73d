//! Strict JSON input: a parser that refuses a key repeated within one object
//! (serde_json keeps the last one silently), JSON paths for error messages,
//! and typed accessors whose errors name the path of the offending value.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::error::{Error, Result};

/// The path of the whole document, in error messages.
pub(crate) const ROOT: &str = "(file)";

/// The path of `key` inside the object at `parent` (`""` or [`ROOT`] for the
/// document): `parent.key` for a key of letters, digits and `_`, else
/// `parent["key"]` with the key as a JSON string, so a message stays one line.
pub(crate) fn key_path(parent: &str, key: &str) -> String {
    let plain = !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    let parent = if parent == ROOT { "" } else { parent };
    match (plain, parent.is_empty()) {
        (true, true) => key.to_string(),
        (true, false) => format!("{parent}.{key}"),
        (false, _) => format!("{parent}[{}]", quoted(key)),
    }
}

/// The path of element `i` of the array at `parent`.
pub(crate) fn index_path(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}

/// `s` as a JSON string literal (escaped, one line), for names in messages.
pub(crate) fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"?\"".to_string())
}

/// What kind of value `v` is, for messages.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `v` as an object.
pub(crate) fn object<'a>(v: &'a Value, path: &str) -> Result<&'a Map<String, Value>> {
    v.as_object()
        .ok_or_else(|| Error::invalid(path, format!("must be an object, got {}", type_name(v))))
}

/// `v` as an array.
pub(crate) fn array<'a>(v: &'a Value, path: &str) -> Result<&'a Vec<Value>> {
    v.as_array()
        .ok_or_else(|| Error::invalid(path, format!("must be an array, got {}", type_name(v))))
}

/// `v` as a string.
pub(crate) fn string<'a>(v: &'a Value, path: &str) -> Result<&'a str> {
    v.as_str()
        .ok_or_else(|| Error::invalid(path, format!("must be a string, got {}", type_name(v))))
}

/// The string at `obj[key]`, which must be there; errors name `path.key`.
pub(crate) fn required_string<'a>(obj: &'a Map<String, Value>, path: &str, key: &str) -> Result<&'a str> {
    let p = key_path(path, key);
    string(obj.get(key).ok_or_else(|| Error::invalid(&p, "missing"))?, &p)
}

/// `v` as a number (always finite: JSON has no NaN or infinity, and a literal
/// beyond f64's range is refused by the parser).
pub(crate) fn number(v: &Value, path: &str) -> Result<f64> {
    v.as_f64()
        .filter(|f| f.is_finite())
        .ok_or_else(|| Error::invalid(path, format!("must be a number, got {}", type_name(v))))
}

/// `v` as a non-negative integer.
pub(crate) fn count(v: &Value, path: &str) -> Result<u64> {
    v.as_u64().ok_or_else(|| {
        let got = match v {
            Value::Number(n) => format!("{n}"),
            other => type_name(other).to_string(),
        };
        Error::invalid(path, format!("must be a non-negative integer, got {got}"))
    })
}

/// `v` as a boolean.
pub(crate) fn boolean(v: &Value, path: &str) -> Result<bool> {
    v.as_bool()
        .ok_or_else(|| Error::invalid(path, format!("must be true or false, got {}", type_name(v))))
}

/// Parses `text` as JSON, refusing a key that appears twice in one object; the
/// error names the repeated key's path. Syntax errors name [`ROOT`], with
/// serde_json's line and column. Nesting deeper than 128 levels is refused (by
/// serde_json's recursion limit).
///
/// The arrays at the paths `pack` accepts are read straight into [`Packed`]
/// when every element is a number: 8 bytes a number instead of a [`Value`] each
/// (32 bytes, and the tree's own growth). Such an array is an empty array in
/// the tree; [`Packed::take`] gives its numbers by path. An array there with
/// any other element stays in the tree, so that its reader words the error
/// exactly as it would without packing.
pub(crate) fn parse_packing(text: &str, pack: fn(&[Segment]) -> bool) -> Result<(Value, Packed)> {
    let state = State {
        path: RefCell::default(),
        duplicate: RefCell::default(),
        pack,
        packed: RefCell::default(),
    };
    let mut de = serde_json::Deserializer::from_str(text);
    let parsed = Strict { state: &state }
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|_| v));
    match parsed {
        Ok(value) => Ok((value, Packed(state.packed.take()))),
        Err(e) => Err(match state.duplicate.take() {
            Some(path) => Error::invalid(path, "duplicate key: each key may appear once in an object"),
            None => Error::invalid(ROOT, format!("invalid JSON: {e}")),
        }),
    }
}

/// The number arrays [`parse_packing`] read, by path.
#[derive(Debug, Default)]
pub(crate) struct Packed(HashMap<String, Vec<f64>>);

impl Packed {
    /// The numbers of the array at `path` (as [`key_path`] and [`index_path`]
    /// write it), if it was packed; each path is taken once.
    pub(crate) fn take(&mut self, path: &str) -> Option<Vec<f64>> {
        self.0.remove(path)
    }
}

/// The path being read, the duplicate key found, if any, and the packing.
struct State {
    path: RefCell<Vec<Segment>>,
    duplicate: RefCell<Option<String>>,
    pack: fn(&[Segment]) -> bool,
    packed: RefCell<HashMap<String, Vec<f64>>>,
}

/// One step of a path inside a document.
pub(crate) enum Segment {
    /// A key of an object.
    Key(String),
    /// An index into an array.
    Index(usize),
}

impl State {
    /// The path being read, as messages write it.
    fn here(&self) -> String {
        let mut p = String::new();
        for s in self.path.borrow().iter() {
            p = match s {
                Segment::Key(k) => key_path(&p, k),
                Segment::Index(i) => index_path(&p, *i),
            };
        }
        p
    }

    fn render(&self, last: &str) -> String {
        key_path(&self.here(), last)
    }
}

/// Deserializes one value like [`Value`] does, but checks objects for repeated keys.
#[derive(Clone, Copy)]
struct Strict<'a> {
    state: &'a State,
}

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> std::result::Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> std::result::Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> std::result::Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> std::result::Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> std::result::Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("a number that is not finite"))
    }

    fn visit_str<E>(self, v: &str) -> std::result::Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> std::result::Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> std::result::Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> std::result::Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Value, A::Error> {
        // While packing, numbers go to `numbers` until an element of another type
        // turns the array back into values.
        let mut packing = (self.state.pack)(&self.state.path.borrow());
        let mut numbers = Vec::new();
        let mut out = Vec::new();
        loop {
            let i = numbers.len() + out.len();
            self.state.path.borrow_mut().push(Segment::Index(i));
            let next = seq.next_element_seed(self)?;
            self.state.path.borrow_mut().pop();
            match next {
                Some(Value::Number(n)) if packing => numbers.push(n.as_f64().unwrap_or(f64::NAN)),
                Some(v) => {
                    if packing {
                        packing = false;
                        out.extend(numbers.drain(..).map(Value::from));
                    }
                    out.push(v);
                }
                None if packing && !numbers.is_empty() => {
                    self.state.packed.borrow_mut().insert(self.state.here(), numbers);
                    return Ok(Value::Array(Vec::new()));
                }
                None => return Ok(Value::Array(out)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                *self.state.duplicate.borrow_mut() = Some(self.state.render(&key));
                return Err(serde::de::Error::custom("duplicate key"));
            }
            self.state.path.borrow_mut().push(Segment::Key(key.clone()));
            let value = map.next_value_seed(self)?;
            self.state.path.borrow_mut().pop();
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_strict(text: &str) -> Result<Value> {
        parse_packing(text, |_| false).map(|(value, _)| value)
    }

    #[test]
    fn number_arrays_are_packed_where_asked() {
        let text = r#"{"a": {"p": [1, -2.5, 3e2], "q": [1, "x"], "r": []}, "b": [4]}"#;
        let under_a = |path: &[Segment]| matches!(path, [Segment::Key(a), Segment::Key(_)] if a == "a");
        let (value, mut packed) = parse_packing(text, under_a).unwrap();
        assert_eq!(packed.take("a.p"), Some(vec![1.0, -2.5, 300.0]));
        assert_eq!(packed.take("a.p"), None, "taken once");
        assert_eq!(value["a"]["p"], serde_json::json!([]));
        // Not all numbers, empty, or not at a packed path: in the tree as it was.
        assert_eq!(value["a"]["q"], serde_json::json!([1.0, "x"]));
        assert_eq!(packed.take("a.q"), None);
        assert_eq!(value["a"]["r"], serde_json::json!([]));
        assert_eq!(packed.take("a.r"), None);
        assert_eq!(value["b"], serde_json::json!([4]));
    }

    #[test]
    fn parses_like_serde_json() {
        let text = r#"{"a": [1, -2, 3.5, 1e300, null, true, "x\n"], "b": {"c": {}}, "d": []}"#;
        let strict = parse_strict(text).unwrap();
        let plain: Value = serde_json::from_str(text).unwrap();
        assert_eq!(strict, plain);
        assert_eq!(
            serde_json::to_string(&strict).unwrap(),
            serde_json::to_string(&plain).unwrap()
        );
    }

    #[test]
    fn duplicate_keys_are_refused_by_path() {
        let e = parse_strict(r#"{"a": 1, "a": 2}"#).unwrap_err().to_string();
        assert!(e.starts_with("a: duplicate key"), "{e}");
        let e = parse_strict(r#"{"s": [{"g": {"w": [1], "w": [2]}}]}"#)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("s[0].g.w: duplicate key"), "{e}");
        let e = parse_strict("{\"x\": {\"a b\\n\": 1, \"a b\\n\": 1}}")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with(r#"x["a b\n"]: duplicate key"#), "{e}");
        assert!(!e.contains('\n'));
    }

    #[test]
    fn syntax_and_depth_errors_name_the_file() {
        for text in ["{", "[1,]", "{} {}", "1e999", &"[".repeat(200)] {
            let e = parse_strict(text).unwrap_err().to_string();
            assert!(e.starts_with("(file): invalid JSON"), "{text}: {e}");
        }
    }
}
