//! Ironic's request validation, reproduced closely enough that clients see the
//! same words.
//!
//! Ironic validates bodies with `jsonschema` and reports the single "best" error
//! with Python's `repr` of the offending value (`Schema error for connector: 123
//! is not of type 'string'`), and applies JSON patches with the `jsonpatch`
//! library, whose messages (`can't remove a non-existent object 'x'`) reach the
//! client inside `Couldn't apply patch '…'. Reason: …`. Operators script against
//! those texts, so this module mirrors:
//!
//! - [`py_repr`]: Python's `repr` of a JSON value (`None`, `True`, `'str'`, `{'k': 1}`);
//! - [`Schema::check`]: jsonschema's `best_match` choice for the flat object
//!   schemas of the volume and port APIs (shallowest error first; among property
//!   errors, the greatest property name, as `best_match` compares paths);
//! - [`check_patch_body`]: the patch document schema (`op` ∈ add/replace/remove,
//!   `path` matching `^(/[\w-]+)+$`, nothing else);
//! - [`apply_patch`]: `jsonpatch` semantics and messages, one operation at a
//!   time, after Ironic's "no new root attribute" rule.
//!
//! Serde's maps are sorted, so a multi-key dict in a message lists keys
//! alphabetically where Python would keep the client's order.

use super::super::error::ApiError;
use serde_json::{Map, Value};

/// Python's `repr` of a JSON value as `json.loads` would have produced it.
pub fn py_repr(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => {
            if n.is_i64() || n.is_u64() {
                n.to_string()
            } else {
                py_float(n.as_f64().unwrap_or(0.0))
            }
        }
        Value::String(s) => py_str_repr(s),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(py_repr).collect();
            format!("[{}]", inner.join(", "))
        }
        Value::Object(m) => {
            let inner: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{}: {}", py_str_repr(k), py_repr(v)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
    }
}

/// Python's `str` of a JSON value: strings bare, everything else as `repr`.
pub fn py_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => py_repr(other),
    }
}

fn py_float(f: f64) -> String {
    if !f.is_finite() {
        f.to_string()
    } else if f.fract() == 0.0 && f.abs() < 1e16 {
        format!("{f:.1}")
    } else if f.abs() >= 1e16 {
        // Python switches to exponent notation at 1e16 and signs the exponent.
        let s = format!("{f:e}");
        match s.split_once('e') {
            Some((m, e)) => {
                let e: i32 = e.parse().unwrap_or(0);
                format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
            }
            None => s,
        }
    } else {
        f.to_string()
    }
}

/// Python's `repr` of a `str`: single quotes unless the text holds a single
/// quote and no double quote.
fn py_str_repr(s: &str) -> String {
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
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// A JSON-schema type name, as jsonschema spells it in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    String,
    Object,
    Null,
    Integer,
    Boolean,
}

impl Ty {
    fn name(self) -> &'static str {
        match self {
            Ty::String => "string",
            Ty::Object => "object",
            Ty::Null => "null",
            Ty::Integer => "integer",
            Ty::Boolean => "boolean",
        }
    }

    /// jsonschema's type check (draft 2020-12, which `jsonschema.validate`
    /// picks for a schema without `$schema`: `1.0` is an integer, `true` is not).
    fn accepts(self, v: &Value) -> bool {
        match self {
            Ty::String => v.is_string(),
            Ty::Object => v.is_object(),
            Ty::Null => v.is_null(),
            Ty::Boolean => v.is_boolean(),
            Ty::Integer => match v {
                Value::Number(n) => {
                    n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
                }
                _ => false,
            },
        }
    }
}

/// One property of an object schema.
pub struct Prop {
    pub name: &'static str,
    pub types: &'static [Ty],
    /// `maxLength`, for strings.
    pub max_length: Option<usize>,
}

impl Prop {
    pub const fn new(name: &'static str, types: &'static [Ty]) -> Prop {
        Prop {
            name,
            types,
            max_length: None,
        }
    }

    pub const fn max(name: &'static str, types: &'static [Ty], max: usize) -> Prop {
        Prop {
            name,
            types,
            max_length: Some(max),
        }
    }
}

/// A flat object schema with `additionalProperties: false`, as Ironic's volume
/// and port schemas are.
pub struct Schema {
    pub props: &'static [Prop],
    pub required: &'static [&'static str],
    /// `oneOf: [{required: [a]}, {required: [b]}]` (ports: `node_ident` / `node_uuid`).
    pub one_of_required: Option<[&'static str; 2]>,
}

impl Schema {
    /// The message of jsonschema's best match, or `None` when `v` is valid.
    ///
    /// Errors on the object itself (type, `required`, `oneOf`,
    /// `additionalProperties`, in the order jsonschema meets the keywords) win
    /// over errors of one property; among properties, `best_match` keeps the
    /// greatest path, i.e. the property name that sorts last.
    pub fn check(&self, v: &Value) -> Option<String> {
        let Value::Object(m) = v else {
            return Some(format!("{} is not of type 'object'", py_repr(v)));
        };
        if let Some(missing) = self.required.iter().find(|r| !m.contains_key(**r)) {
            return Some(format!("'{missing}' is a required property"));
        }
        if let Some([a, b]) = self.one_of_required {
            match (m.contains_key(a), m.contains_key(b)) {
                (false, false) => {
                    return Some(format!(
                        "{} is not valid under any of the given schemas. Possible root cause: '{a}' is a required property",
                        py_repr(v)
                    ))
                }
                (true, true) => {
                    return Some(format!(
                        "{} is valid under each of {{'required': ['{b}']}}, {{'required': ['{a}']}}",
                        py_repr(v)
                    ))
                }
                _ => {}
            }
        }
        let mut extras: Vec<&str> = m
            .keys()
            .map(String::as_str)
            .filter(|k| !self.props.iter().any(|p| p.name == *k))
            .collect();
        if !extras.is_empty() {
            extras.sort_unstable();
            let listed: Vec<String> = extras.iter().map(|e| py_str_repr(e)).collect();
            let verb = if extras.len() == 1 { "was" } else { "were" };
            return Some(format!(
                "Additional properties are not allowed ({} {verb} unexpected)",
                listed.join(", ")
            ));
        }
        let mut worst: Option<(&str, String)> = None;
        for p in self.props {
            let Some(value) = m.get(p.name) else { continue };
            let problem = if !p.types.iter().any(|t| t.accepts(value)) {
                let names: Vec<String> =
                    p.types.iter().map(|t| format!("'{}'", t.name())).collect();
                Some(format!(
                    "{} is not of type {}",
                    py_repr(value),
                    names.join(", ")
                ))
            } else {
                match (p.max_length, value) {
                    (Some(max), Value::String(s)) if s.chars().count() > max => {
                        Some(format!("{} is too long", py_repr(value)))
                    }
                    _ => None,
                }
            };
            if let Some(msg) = problem {
                if worst.as_ref().is_none_or(|(name, _)| p.name > *name) {
                    worst = Some((p.name, msg));
                }
            }
        }
        worst.map(|(_, msg)| msg)
    }
}

/// The pattern Ironic requires of a patch path, as Python's `repr` shows it.
const PATH_PATTERN_REPR: &str = r"'^(/[\\w-]+)+$'";

/// Whether a path matches `^(/[\w-]+)+$` (Python's Unicode `\w`).
pub fn path_is_valid(path: &str) -> bool {
    path.starts_with('/')
        && path[1..].split('/').all(|seg| {
            !seg.is_empty()
                && seg
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
        })
}

/// One validated patch operation.
#[derive(Debug, Clone, PartialEq)]
pub struct Op {
    pub op: String,
    pub path: String,
    pub value: Option<Value>,
}

impl Op {
    /// The first path segment.
    pub fn root(&self) -> &str {
        self.path
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or("")
    }

    /// Python's `repr` of the operation as Ironic quotes it in a `PatchError`.
    pub fn repr(&self) -> String {
        let mut s = format!(
            "{{'op': {}, 'path': {}",
            py_str_repr(&self.op),
            py_str_repr(&self.path)
        );
        if let Some(v) = &self.value {
            s.push_str(&format!(", 'value': {}", py_repr(v)));
        }
        s.push('}');
        s
    }

    /// The operation as the domain's patch takes it.
    pub fn to_domain(&self) -> crate::domain::patch::PatchOp {
        crate::domain::patch::PatchOp {
            op: self.op.clone(),
            path: self.path.clone(),
            value: self.value.clone(),
        }
    }
}

/// Validates a PATCH body against Ironic's patch schema (`args.patch`) and
/// returns its operations; the error text is `Schema error for patch: …`.
pub fn check_patch_body(body: &Value) -> Result<Vec<Op>, ApiError> {
    let fail = |m: String| ApiError::bad_request(format!("Schema error for patch: {m}"));
    let Value::Array(items) = body else {
        return Err(fail(format!("{} is not of type 'array'", py_repr(body))));
    };
    // Errors on an item itself are shallower than errors of its members and win;
    // among equals, best_match keeps the greatest path (last item, then the
    // member name that sorts last: `path` over `op`).
    let mut item_error: Option<String> = None;
    let mut member_error: Option<(usize, &str, String)> = None;
    for (i, item) in items.iter().enumerate() {
        let Value::Object(m) = item else {
            item_error = Some(format!("{} is not of type 'object'", py_repr(item)));
            continue;
        };
        if let Some(missing) = ["op", "path"].iter().find(|k| !m.contains_key(**k)) {
            item_error = Some(format!("'{missing}' is a required property"));
            continue;
        }
        let mut extras: Vec<&str> = m
            .keys()
            .map(String::as_str)
            .filter(|k| !["op", "path", "value"].contains(k))
            .collect();
        if !extras.is_empty() {
            extras.sort_unstable();
            let listed: Vec<String> = extras.iter().map(|e| py_str_repr(e)).collect();
            let verb = if extras.len() == 1 { "was" } else { "were" };
            item_error = Some(format!(
                "Additional properties are not allowed ({} {verb} unexpected)",
                listed.join(", ")
            ));
            continue;
        }
        let mut note = |name: &'static str, msg: String| {
            let later = member_error
                .as_ref()
                .is_none_or(|(j, n, _)| (i, name) > (*j, *n));
            if later {
                member_error = Some((i, name, msg));
            }
        };
        match &m["op"] {
            Value::String(op) if ["add", "replace", "remove"].contains(&op.as_str()) => {}
            Value::String(op) => note(
                "op",
                format!(
                    "{} is not one of ['add', 'replace', 'remove']",
                    py_str_repr(op)
                ),
            ),
            other => note("op", format!("{} is not of type 'string'", py_repr(other))),
        }
        match &m["path"] {
            Value::String(p) if path_is_valid(p) => {}
            Value::String(p) => note(
                "path",
                format!("{} does not match {PATH_PATTERN_REPR}", py_str_repr(p)),
            ),
            other => note(
                "path",
                format!("{} is not of type 'string'", py_repr(other)),
            ),
        }
    }
    if let Some(m) = item_error {
        return Err(fail(m));
    }
    if let Some((_, _, m)) = member_error {
        return Err(fail(m));
    }
    Ok(items
        .iter()
        .map(|item| Op {
            op: item["op"].as_str().unwrap_or_default().to_string(),
            path: item["path"].as_str().unwrap_or_default().to_string(),
            value: item.get("value").cloned(),
        })
        .collect())
}

/// Ironic's `patch_validate_allowed_fields`.
pub fn check_allowed(ops: &[Op], allowed: &[&str]) -> Result<(), ApiError> {
    for op in ops {
        if !allowed.contains(&op.root()) {
            return Err(ApiError::bad_request(format!(
                "Cannot patch {}. Only the following can be updated: {}",
                op.path,
                allowed.join(", ")
            )));
        }
    }
    Ok(())
}

/// The values of the non-`remove` operations on exactly `path`, in order
/// (Ironic's `get_patch_values`).
pub fn patch_values<'a>(ops: &'a [Op], path: &str) -> Vec<&'a Value> {
    ops.iter()
        .filter(|o| o.path == path && o.op != "remove")
        .filter_map(|o| o.value.as_ref())
        .collect()
}

/// Applies `ops` to `doc` the way Ironic's `apply_jsonpatch` does: first the
/// rule that `add` may not create a new root attribute, then each operation
/// with `jsonpatch`'s semantics. Errors are the 400s Ironic answers.
pub fn apply_patch(doc: &mut Map<String, Value>, ops: &[Op]) -> Result<(), ApiError> {
    for op in ops {
        if op.op == "add" && op.path.matches('/').count() == 1 && !doc.contains_key(op.root()) {
            return Err(ApiError::bad_request(format!(
                "Adding a new attribute ({}) to the root of the resource is not allowed",
                op.path
            )));
        }
    }
    let mut value = Value::Object(std::mem::take(doc));
    let mut result = Ok(());
    for op in ops {
        if let Err(reason) = apply_one(&mut value, op) {
            result = Err(ApiError::bad_request(format!(
                "Couldn't apply patch '{}'. Reason: {reason}",
                op.repr()
            )));
            break;
        }
    }
    if let Value::Object(m) = value {
        *doc = m;
    }
    result
}

/// `0` or a number without leading zeros (jsonpointer's array index).
fn is_index(part: &str) -> bool {
    part == "0"
        || (!part.is_empty() && !part.starts_with('0') && part.chars().all(|c| c.is_ascii_digit()))
}

fn unescape(part: &str) -> String {
    part.replace("~1", "/").replace("~0", "~")
}

/// Where the last path segment points inside its parent.
enum Slot {
    Key(String),
    Index(usize),
    End,
}

/// Walks to the parent of the last segment (jsonpointer's `to_last`).
fn to_last<'a>(doc: &'a mut Value, path: &str) -> Result<(&'a mut Value, Slot), String> {
    let parts: Vec<String> = path[1..].split('/').map(unescape).collect();
    let (last, walk) = parts.split_last().expect("a validated path has a segment");
    let mut cur = doc;
    for part in walk {
        cur = match cur {
            Value::Object(m) => {
                if !m.contains_key(part) {
                    let shown = py_repr(&Value::Object(m.clone()));
                    return Err(format!("member '{part}' not found in {shown}"));
                }
                m.get_mut(part).expect("checked")
            }
            Value::Array(items) => {
                if !is_index(part) {
                    return Err(format!("'{part}' is not a valid sequence index"));
                }
                let i: usize = part
                    .parse()
                    .map_err(|_| format!("index '{part}' is out of bounds"))?;
                if i >= items.len() {
                    return Err(format!("index '{part}' is out of bounds"));
                }
                &mut items[i]
            }
            Value::String(_) => {
                return Err(format!(
                    "Cannot apply token '{part}' to non-container type <class 'str'>"
                ))
            }
            _ => {
                return Err(format!(
                    "unable to fully resolve json pointer {path}, part {part}"
                ))
            }
        };
    }
    let slot = match &*cur {
        Value::Object(_) => Slot::Key(last.clone()),
        Value::Array(_) if last == "-" => Slot::End,
        Value::Array(_) if is_index(last) => Slot::Index(last.parse().unwrap_or(usize::MAX)),
        Value::Array(_) => return Err(format!("'{last}' is not a valid sequence index")),
        Value::String(_) => {
            return Err(format!(
                "Cannot apply token '{last}' to non-container type <class 'str'>"
            ))
        }
        _ => {
            return Err(format!(
                "unable to fully resolve json pointer {path}, part {last}"
            ))
        }
    };
    Ok((cur, slot))
}

fn apply_one(doc: &mut Value, op: &Op) -> Result<(), String> {
    let need_value = || {
        op.value
            .clone()
            .ok_or_else(|| "The operation does not contain a 'value' member".to_string())
    };
    match op.op.as_str() {
        "add" => {
            let value = need_value()?;
            let (parent, slot) = to_last(doc, &op.path)?;
            match (parent, slot) {
                (Value::Object(m), Slot::Key(k)) => {
                    m.insert(k, value);
                }
                (Value::Array(items), Slot::End) => items.push(value),
                (Value::Array(items), Slot::Index(i)) => {
                    if i > items.len() {
                        return Err("can't insert outside of list".into());
                    }
                    items.insert(i, value);
                }
                _ => return Err(format!("unable to fully resolve json pointer {}", op.path)),
            }
        }
        "replace" => {
            let value = need_value()?;
            let (parent, slot) = to_last(doc, &op.path)?;
            match (parent, slot) {
                (Value::Object(m), Slot::Key(k)) => match m.get_mut(&k) {
                    Some(v) => *v = value,
                    None => return Err(format!("can't replace a non-existent object '{k}'")),
                },
                (Value::Array(_), Slot::End) => {
                    return Err("'path' with '-' can't be applied to 'replace' operation".into())
                }
                (Value::Array(items), Slot::Index(i)) => match items.get_mut(i) {
                    Some(v) => *v = value,
                    None => return Err("can't replace outside of list".into()),
                },
                _ => return Err(format!("unable to fully resolve json pointer {}", op.path)),
            }
        }
        "remove" => {
            let (parent, slot) = to_last(doc, &op.path)?;
            match (parent, slot) {
                (Value::Object(m), Slot::Key(k)) => {
                    if m.remove(&k).is_none() {
                        return Err(format!("can't remove a non-existent object '{k}'"));
                    }
                }
                (Value::Array(_), Slot::End) => return Err("invalid array index '-'".into()),
                (Value::Array(items), Slot::Index(i)) => {
                    if i >= items.len() {
                        return Err(format!("can't remove a non-existent object '{i}'"));
                    }
                    items.remove(i);
                }
                _ => return Err(format!("unable to fully resolve json pointer {}", op.path)),
            }
        }
        other => return Err(format!("Unknown operation '{other}'")),
    }
    Ok(())
}

/// Ironic's `patched_validate_with_schema`: drops what the schema does not
/// know, then validates; the error reads `Schema error for patch: …`.
pub fn validate_patched(doc: &mut Map<String, Value>, schema: &Schema) -> Result<(), ApiError> {
    doc.retain(|k, _| schema.props.iter().any(|p| p.name == k));
    match schema.check(&Value::Object(doc.clone())) {
        Some(m) => Err(ApiError::bad_request(format!(
            "Schema error for patch: {m}"
        ))),
        None => Ok(()),
    }
}

/// oslo's `is_uuid_like`, on a JSON value.
pub fn is_uuid_like(v: &Value) -> bool {
    v.as_str().is_some_and(|s| uuid::Uuid::parse_str(s).is_ok())
}

/// Ironic's `args.uuid` on a body field: `Expected UUID for <name>: <value>`.
pub fn check_uuid_field(m: &Map<String, Value>, name: &str) -> Result<(), ApiError> {
    match m.get(name) {
        None | Some(Value::Null) => Ok(()),
        Some(v) if is_uuid_like(v) => Ok(()),
        Some(v) => Err(ApiError::bad_request(format!(
            "Expected UUID for {name}: {}",
            py_str(v)
        ))),
    }
}

/// An integer-valued JSON number as `i64` (`1.0` counts, as in jsonschema).
pub fn as_integer(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18)
                .map(|f| f as i64)
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn python_reprs() {
        assert_eq!(py_repr(&json!(null)), "None");
        assert_eq!(py_repr(&json!(true)), "True");
        assert_eq!(py_repr(&json!(123)), "123");
        assert_eq!(py_repr(&json!(1.5)), "1.5");
        assert_eq!(py_repr(&json!(2.0)), "2.0");
        assert_eq!(py_repr(&json!(1e20)), "1e+20");
        assert_eq!(py_repr(&json!("a'b")), "\"a'b\"");
        assert_eq!(py_repr(&json!("x")), "'x'");
        assert_eq!(py_repr(&json!([1, "a"])), "[1, 'a']");
        assert_eq!(py_repr(&json!({"a": {"b": null}})), "{'a': {'b': None}}");
    }

    const CONNECTOR: Schema = Schema {
        props: &[
            Prop::new("connector_id", &[Ty::String]),
            Prop::new("extra", &[Ty::Object, Ty::Null]),
            Prop::new("node_uuid", &[Ty::String]),
            Prop::new("type", &[Ty::String]),
            Prop::new("uuid", &[Ty::String, Ty::Null]),
        ],
        required: &["connector_id", "node_uuid", "type"],
        one_of_required: None,
    };

    #[test]
    fn best_match_as_ironic_picks_it() {
        // Every expectation below is what Ironic 39 answered.
        let c = |v: Value| CONNECTOR.check(&v).unwrap_or_default();
        assert_eq!(
            c(json!({"node_uuid": 123, "foo": 1})),
            "'connector_id' is a required property"
        );
        assert_eq!(
            c(json!({"node_uuid": 123, "type": "iqn", "connector_id": "x", "foo": 1})),
            "Additional properties are not allowed ('foo' was unexpected)"
        );
        assert_eq!(
            c(json!({"node_uuid": 123, "type": 5, "connector_id": "x"})),
            "5 is not of type 'string'"
        );
        assert_eq!(
            c(json!({"node_uuid": "x", "type": "t", "connector_id": "x", "extra": []})),
            "[] is not of type 'object', 'null'"
        );
        assert_eq!(c(json!("str")), "'str' is not of type 'object'");
        assert_eq!(c(json!([1])), "[1] is not of type 'object'");
    }

    #[test]
    fn patch_body_errors() {
        let e = |v: Value| check_patch_body(&v).unwrap_err().message;
        assert_eq!(
            e(json!({})),
            "Schema error for patch: {} is not of type 'array'"
        );
        assert_eq!(
            e(json!([{"op": "test", "path": "/a", "value": 1}])),
            "Schema error for patch: 'test' is not one of ['add', 'replace', 'remove']"
        );
        assert_eq!(
            e(json!([{"op": "replace", "path": "extra", "value": {}}])),
            r"Schema error for patch: 'extra' does not match '^(/[\\w-]+)+$'"
        );
        assert_eq!(
            e(json!([{"op": "move", "path": "/a", "from": "/b"}])),
            "Schema error for patch: Additional properties are not allowed ('from' was unexpected)"
        );
        assert_eq!(
            e(json!([{"path": "/type"}])),
            "Schema error for patch: 'op' is a required property"
        );
    }

    #[test]
    fn jsonpatch_messages() {
        let mut doc = json!({"extra": {}, "type": "iqn"})
            .as_object()
            .unwrap()
            .clone();
        let op = |o: &str, p: &str, v: Option<Value>| Op {
            op: o.into(),
            path: p.into(),
            value: v,
        };
        let err = apply_patch(&mut doc, &[op("remove", "/extra/nope", None)]).unwrap_err();
        assert_eq!(
            err.message,
            "Couldn't apply patch '{'op': 'remove', 'path': '/extra/nope'}'. Reason: can't remove a non-existent object 'nope'"
        );
        let err = apply_patch(&mut doc, &[op("replace", "/type", None)]).unwrap_err();
        assert_eq!(
            err.message,
            "Couldn't apply patch '{'op': 'replace', 'path': '/type'}'. Reason: The operation does not contain a 'value' member"
        );
        let err = apply_patch(&mut doc, &[op("add", "/foo", Some(json!(1)))]).unwrap_err();
        assert_eq!(
            err.message,
            "Adding a new attribute (/foo) to the root of the resource is not allowed"
        );
        apply_patch(
            &mut doc,
            &[
                op("add", "/extra/a", Some(json!([1]))),
                op("add", "/extra/a/-", Some(json!(2))),
            ],
        )
        .unwrap();
        assert_eq!(doc["extra"]["a"], json!([1, 2]));
        let err = apply_patch(&mut doc, &[op("add", "/extra/b/c", Some(json!(1)))]).unwrap_err();
        assert!(
            err.message
                .ends_with("Reason: member 'b' not found in {'a': [1, 2]}"),
            "{}",
            err.message
        );
    }
}
