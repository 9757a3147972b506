//! Ironic words many of its 400s with Python's own rendering of the offending
//! value (`5 is not of type 'string', 'null'`, `Expected string for reason: 5`,
//! `Couldn't apply patch '{'op': 'add', …}'`). These helpers render JSON the
//! way Python would, so the messages read the same.
//!
//! JSON objects are rendered in key order of `serde_json::Map` (sorted), not in
//! the client's order; that is the one visible difference.

use serde_json::Value;

/// Python's `repr()` of a string.
fn repr_str(s: &str) -> String {
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

fn number(n: &serde_json::Number) -> String {
    if n.is_f64() {
        let f = n.as_f64().unwrap_or(0.0);
        if f.is_finite() && f == f.trunc() && f.abs() < 1e16 {
            format!("{f:.1}")
        } else {
            format!("{f}")
        }
    } else {
        n.to_string()
    }
}

/// Python's `repr()` of the value JSON decodes to.
pub fn repr(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => number(n),
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

/// A JSON-schema type name, as jsonschema spells it.
pub fn is_type(v: &Value, ty: &str) -> bool {
    match ty {
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        _ => false,
    }
}

/// jsonschema's type error: `5 is not of type 'string', 'null'`.
pub fn type_error(v: &Value, types: &[&str]) -> String {
    let names: Vec<String> = types.iter().map(|t| format!("'{t}'")).collect();
    format!("{} is not of type {}", repr(v), names.join(", "))
}

/// Checks a value against a list of allowed types.
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

/// Python's `str(int(v))` acceptance for `args.integer`: JSON integers, whole
/// floats (truncated), booleans and integer strings.
pub fn python_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f.trunc() as i64)),
        Value::Bool(b) => Some(*b as i64),
        Value::String(s) => s.trim().replace('_', "").parse().ok(),
        _ => None,
    }
}

/// oslo's strict `bool_from_string`, as `args.boolean` applies it: a JSON bool
/// is itself, a string must be one of the known words.
pub fn strict_bool(name: &str, v: &Value) -> Result<Option<bool>, String> {
    const WORDS: &str = "'0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'";
    match v {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(*b)),
        other => {
            let s = str_(other);
            match s.trim().to_ascii_lowercase().as_str() {
                "1" | "t" | "true" | "on" | "y" | "yes" => Ok(Some(true)),
                "0" | "f" | "false" | "off" | "n" | "no" => Ok(Some(false)),
                _ => Err(format!(
                    "Invalid {name}: Unrecognized value '{s}', acceptable values are: {WORDS}"
                )),
            }
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
        assert_eq!(repr(&json!([1, true, "a"])), "[1, True, 'a']");
        assert_eq!(
            repr(&json!({"op": "remove", "path": "/extra/x"})),
            "{'op': 'remove', 'path': '/extra/x'}"
        );
        assert_eq!(repr(&json!("it's")), "\"it's\"");
        assert_eq!(repr(&json!(1.5)), "1.5");
        assert_eq!(repr(&json!(2.0)), "2.0");
        assert_eq!(str_(&json!("x")), "x");
        assert_eq!(
            type_error(&json!(5), &["string", "null"]),
            "5 is not of type 'string', 'null'"
        );
        assert_eq!(
            additional_properties(&["bogus"]),
            "Additional properties are not allowed ('bogus' was unexpected)"
        );
        assert_eq!(required("driver"), "'driver' is a required property");
    }

    #[test]
    fn booleans_and_integers() {
        assert_eq!(strict_bool("x", &json!("Yes")), Ok(Some(true)));
        assert_eq!(strict_bool("x", &json!(false)), Ok(Some(false)));
        assert!(strict_bool("maintenance", &json!("maybe"))
            .unwrap_err()
            .starts_with("Invalid maintenance: Unrecognized value 'maybe'"));
        assert_eq!(python_int(&json!("12")), Some(12));
        assert_eq!(python_int(&json!(3.7)), Some(3));
        assert_eq!(python_int(&json!("x")), None);
    }
}
