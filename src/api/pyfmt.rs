//! Python's rendering of JSON values, for the API's Ironic-worded messages.
//!
//! Ironic words many of its 400s with Python's own rendering of the offending
//! value: jsonschema's `5 is not of type 'string', 'null'`, `args`'
//! `Expected string for reason: 5`, jsonpatch's `Couldn't apply patch '{'op':
//! 'add', …}'`. Operators script against those texts, so every API module
//! renders values through this one module (nodes, volume and ports once had a
//! copy each, and the copies had drifted apart on floats).
//!
//! JSON objects are rendered in key order of `serde_json::Map` (sorted), not in
//! the client's order; that is the one visible difference from Python.

use crate::domain::oslo;
use serde_json::{Number, Value};

/// Python's `repr()` of a `str`: single quotes unless the text holds a single
/// quote and no double quote; backslash escapes for control characters.
pub fn repr_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Python's `repr()` of a float: the shortest digits that read back (Rust's
/// formatting finds the same ones), with Python's layout. Python writes
/// exponent notation when the decimal exponent is below -4 or at least 16,
/// with a signed, at least two-digit exponent (`1e-05`, `1.5e+300`), and
/// always shows a fractional part otherwise (`2.0`).
fn repr_float(f: f64) -> String {
    if !f.is_finite() {
        return f.to_string();
    }
    let sci = format!("{f:e}");
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if f != 0.0 && !(-4..16).contains(&exponent) {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.abs())
    } else if f.fract() == 0.0 {
        format!("{f:.1}")
    } else {
        f.to_string()
    }
}

fn repr_number(n: &Number) -> String {
    if n.is_i64() || n.is_u64() {
        n.to_string()
    } else {
        repr_float(n.as_f64().unwrap_or(0.0))
    }
}

/// Python's `repr()` of the value `json.loads` decodes to (`None`, `True`,
/// `'str'`, `[1, 'a']`, `{'k': 1.0}`).
pub fn repr(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => repr_number(n),
        Value::String(s) => repr_str(s),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(repr).collect();
            format!("[{}]", inner.join(", "))
        }
        Value::Object(m) => {
            let inner: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{}: {}", repr_str(k), repr(v)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
    }
}

/// Python's `str()` (`%s`): like [`repr`] except that a string is bare.
pub fn str_(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => repr(other),
    }
}

/// The name of the Python class `json.loads` gives a value (`int`, `str`,
/// `NoneType`), as Python's `type()` shows it in messages: `<class 'int'>`.
pub fn class_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_i64() || n.is_u64() => "int",
        Value::Number(_) => "float",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

pub use crate::domain::oslo::truthy;

/// Whether `v` is of the JSON-schema type `ty`, as jsonschema decides it for
/// a schema without `$schema` (draft 2020-12): `1.0` is an `integer`, `true`
/// is not.
pub fn is_type(v: &Value, ty: &str) -> bool {
    match ty {
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        "integer" => match v {
            Value::Number(n) => {
                n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
            }
            _ => false,
        },
        "number" => v.is_number(),
        _ => false,
    }
}

/// jsonschema's type error: `5 is not of type 'string', 'null'`.
pub fn type_error(v: &Value, types: &[&str]) -> String {
    let names: Vec<String> = types.iter().map(|t| format!("'{t}'")).collect();
    format!("{} is not of type {}", repr(v), names.join(", "))
}

/// Checks a value against a list of allowed types ([`type_error`] if none fits).
pub fn check_type(v: &Value, types: &[&str]) -> Result<(), String> {
    if types.iter().any(|t| is_type(v, t)) {
        Ok(())
    } else {
        Err(type_error(v, types))
    }
}

/// jsonschema's `additionalProperties` error for the given extra keys.
pub fn additional_properties(extras: &[&str]) -> String {
    let mut sorted = extras.to_vec();
    sorted.sort_unstable();
    let names: Vec<String> = sorted.iter().map(|e| repr_str(e)).collect();
    let verb = if extras.len() == 1 { "was" } else { "were" };
    format!(
        "Additional properties are not allowed ({} {verb} unexpected)",
        names.join(", ")
    )
}

/// jsonschema's `required` error.
pub fn required(name: &str) -> String {
    format!("{} is a required property", repr_str(name))
}

/// Python's `int(v)` acceptance for `args.integer`: JSON integers, whole
/// floats (truncated), booleans and integer strings (surrounding white space
/// and `_` separators allowed, as `int()` allows them).
pub fn python_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f.trunc() as i64)),
        Value::Bool(b) => Some(*b as i64),
        Value::String(s) => s.trim().replace('_', "").parse().ok(),
        _ => None,
    }
}

/// oslo's strict `bool_from_string`, as `args.boolean` applies it: a JSON bool
/// is itself, `null` is no value, anything else is read as its `str()`,
/// trimmed and lower-cased, and must be one of the known words. The refusal
/// quotes the value as given.
pub fn strict_bool(name: &str, v: &Value) -> Result<Option<bool>, String> {
    match v {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(*b)),
        other => {
            let s = str_(other);
            oslo::bool_word(&s).map(Some).ok_or_else(|| {
                let words: Vec<String> =
                    oslo::BOOL_WORDS.iter().map(|w| format!("'{w}'")).collect();
                format!(
                    "Invalid {name}: Unrecognized value '{s}', acceptable values are: {}",
                    words.join(", ")
                )
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_like_python() {
        assert_eq!(repr(&json!(null)), "None");
        assert_eq!(repr(&json!(true)), "True");
        assert_eq!(repr(&json!(123)), "123");
        assert_eq!(repr(&json!([1, true, "a"])), "[1, True, 'a']");
        assert_eq!(
            repr(&json!({"op": "remove", "path": "/extra/x"})),
            "{'op': 'remove', 'path': '/extra/x'}"
        );
        assert_eq!(repr(&json!({"a": {"b": null}})), "{'a': {'b': None}}");
        assert_eq!(repr(&json!("it's")), "\"it's\"");
        assert_eq!(repr(&json!("x")), "'x'");
        assert_eq!(repr(&json!("tab\there\x01")), "'tab\\there\\x01'");
        assert_eq!(str_(&json!("x")), "x");
        assert_eq!(str_(&json!(5)), "5");
    }

    /// Every expectation is what Ironic answered with the value in a
    /// `Couldn't apply patch` message.
    #[test]
    fn floats_like_python() {
        assert_eq!(repr(&json!(1.5)), "1.5");
        assert_eq!(repr(&json!(2.0)), "2.0");
        assert_eq!(repr(&json!(0.1)), "0.1");
        assert_eq!(repr(&json!(-0.0)), "-0.0");
        assert_eq!(repr(&json!(1e20)), "1e+20");
        assert_eq!(repr(&json!(1.5e300)), "1.5e+300");
        assert_eq!(repr(&json!(1e-5)), "1e-05");
        assert_eq!(repr(&json!(0.0001)), "0.0001");
        assert_eq!(repr(&json!(1e15)), "1000000000000000.0");
        assert_eq!(repr(&json!(1e16)), "1e+16");
    }

    #[test]
    fn jsonschema_messages() {
        assert_eq!(
            type_error(&json!(5), &["string", "null"]),
            "5 is not of type 'string', 'null'"
        );
        assert_eq!(
            additional_properties(&["bogus"]),
            "Additional properties are not allowed ('bogus' was unexpected)"
        );
        assert_eq!(
            additional_properties(&["z", "a"]),
            "Additional properties are not allowed ('a', 'z' were unexpected)"
        );
        assert_eq!(required("driver"), "'driver' is a required property");
        assert!(is_type(&json!(1.0), "integer"));
        assert!(!is_type(&json!(true), "integer"));
        assert!(!is_type(&json!(1.5), "integer"));
    }

    #[test]
    fn python_types_and_truth() {
        assert_eq!(class_name(&json!(null)), "NoneType");
        assert_eq!(class_name(&json!(1)), "int");
        assert_eq!(class_name(&json!(1.0)), "float");
        assert!(!truthy(&json!(0)) && !truthy(&json!("")) && !truthy(&json!({})));
        assert!(truthy(&json!([0])) && truthy(&json!("0")));
    }

    #[test]
    fn booleans_and_integers() {
        assert_eq!(strict_bool("x", &json!("Yes")), Ok(Some(true)));
        assert_eq!(strict_bool("x", &json!(" true ")), Ok(Some(true)));
        assert_eq!(strict_bool("x", &json!(false)), Ok(Some(false)));
        assert!(strict_bool("maintenance", &json!("maybe"))
            .unwrap_err()
            .starts_with("Invalid maintenance: Unrecognized value 'maybe'"));
        assert_eq!(python_int(&json!("12")), Some(12));
        assert_eq!(python_int(&json!(" 1_0 ")), Some(10));
        assert_eq!(python_int(&json!(3.7)), Some(3));
        assert_eq!(python_int(&json!("x")), None);
    }
}
