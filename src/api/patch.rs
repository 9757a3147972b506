//! JSON patch as Ironic's API layer checks and applies it, for every PATCH
//! endpoint (nodes, ports, volume connectors and targets).
//!
//! Ironic validates the document against its patch schema (`args.patch`) and
//! then applies it with python-jsonpatch, one operation at a time
//! (`apply_jsonpatch`), answering the first failure as `Couldn't apply patch
//! '…'. Reason: …`. Operators script against those texts, so this module
//! mirrors both, message for message (each was compared with Ironic 39):
//!
//! - [`parse`]: the schema, with the error jsonschema's `best_match` picks;
//! - [`apply`]: Ironic's "no new root attribute" rule, then jsonpatch and
//!   jsonpointer semantics and messages.
//!
//! The API applies a patch to the read model only to answer Ironic's 400s in
//! Ironic's words. The operations then go to the aggregate, which applies them
//! again, to its *current* state ([`crate::domain::patch::apply`]), and
//! decides; that second application is what prevents lost updates, so it is
//! not replaced by this one. What the two share (the operation type, the path
//! rule) is the domain's.

use super::error::{ApiError, ApiResult};
use super::masking;
use super::pyfmt::{self, additional_properties, repr, required, type_error};
use crate::domain::patch::path_is_valid;
pub use crate::domain::patch::PatchOp;
use serde_json::{Map, Value};

/// The pattern Ironic requires of a patch path (checked by [`path_is_valid`]).
const PATH_PATTERN: &str = r"^(/[\w-]+)+$";

/// Ironic's patch schema as JSON Schema, for the OpenAPI document: what
/// [`parse`] checks.
pub fn json_schema() -> Value {
    serde_json::json!({
        "type": "array",
        "items": {
            "type": "object",
            "required": ["op", "path"],
            "properties": {
                "op": {"type": "string", "enum": ["add", "replace", "remove"]},
                "path": {"type": "string", "pattern": PATH_PATTERN},
                "value": {}
            },
            "additionalProperties": false
        }
    })
}

/// Checks a PATCH body against Ironic's patch schema and returns its
/// operations; the error text is `Schema error for patch: …`.
///
/// The error is the one `best_match` picks (as Ironic answered it): errors on
/// an item itself (not an object, unknown keys, then missing keys) win over
/// errors of its members; among equals the greatest path wins, i.e. the last
/// item, and within an item `path` over `op`.
pub fn parse(body: &Value) -> ApiResult<Vec<PatchOp>> {
    let fail = |m: String| ApiError::bad_request(format!("Schema error for patch: {m}"));
    let Value::Array(items) = body else {
        return Err(fail(type_error(body, &["array"])));
    };
    let mut item_error: Option<String> = None;
    let mut member_error: Option<(usize, &str, String)> = None;
    for (i, item) in items.iter().enumerate() {
        let Value::Object(m) = item else {
            item_error = Some(type_error(item, &["object"]));
            continue;
        };
        let extras: Vec<&str> = m
            .keys()
            .map(String::as_str)
            .filter(|k| !matches!(*k, "op" | "path" | "value"))
            .collect();
        if !extras.is_empty() {
            item_error = Some(additional_properties(&extras));
            continue;
        }
        if let Some(missing) = ["op", "path"].into_iter().find(|k| !m.contains_key(*k)) {
            item_error = Some(required(missing));
            continue;
        }
        let mut note = |name: &'static str, msg: String| {
            if member_error
                .as_ref()
                .is_none_or(|(j, n, _)| (i, name) > (*j, *n))
            {
                member_error = Some((i, name, msg));
            }
        };
        match &m["op"] {
            Value::String(op) if matches!(op.as_str(), "add" | "replace" | "remove") => {}
            op @ Value::String(_) => note(
                "op",
                format!("{} is not one of ['add', 'replace', 'remove']", repr(op)),
            ),
            other => note("op", type_error(other, &["string"])),
        }
        match &m["path"] {
            Value::String(p) if path_is_valid(p) => {}
            path @ Value::String(_) => note(
                "path",
                format!(
                    "{} does not match {}",
                    repr(path),
                    pyfmt::repr_str(PATH_PATTERN)
                ),
            ),
            other => note("path", type_error(other, &["string"])),
        }
    }
    if let Some(m) = item_error.or(member_error.map(|(_, _, m)| m)) {
        return Err(fail(m));
    }
    Ok(items
        .iter()
        .map(|item| PatchOp {
            op: item["op"].as_str().unwrap_or_default().to_string(),
            path: item["path"].as_str().unwrap_or_default().to_string(),
            value: item.get("value").cloned(),
        })
        .collect())
}

/// Whether an operation targets a root field (`/extra`, not `/extra/a`).
pub fn is_root(op: &PatchOp) -> bool {
    op.path.matches('/').count() == 1
}

/// Ironic's `patch_validate_allowed_fields`: `allowed` is listed in the
/// resource's own order.
pub fn check_allowed(ops: &[PatchOp], allowed: &[&str]) -> ApiResult<()> {
    match ops.iter().find(|op| !allowed.contains(&op.root())) {
        None => Ok(()),
        Some(op) => Err(ApiError::bad_request(format!(
            "Cannot patch {}. Only the following can be updated: {}",
            op.path,
            allowed.join(", ")
        ))),
    }
}

/// Ironic's `get_patch_values`: the values of the non-`remove` operations on
/// exactly `path`, in order.
///
/// An operation without a value is `None` here; Ironic itself fails with a 500
/// (a `KeyError`) on one, so each resource decides what it means: the node API
/// reads it as Python's `None`, ports and volume skip it (and [`apply`] later
/// refuses it in jsonpatch's words).
pub fn values_for<'a>(ops: &'a [PatchOp], path: &str) -> Vec<Option<&'a Value>> {
    ops.iter()
        .filter(|o| o.path == path && o.op != "remove")
        .map(|o| o.value.as_ref())
        .collect()
}

/// How values of the document appear in a failure's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Echo {
    /// As Ironic shows them: the operation and the document as they are.
    AsIs,
    /// With secrets masked ([`masking::mask`]). Ironic would echo a node's
    /// `driver_info` password in `member 'x' not found in {…}`; ironledger
    /// does not.
    Masked,
}

impl Echo {
    fn repr(self, v: &Value) -> String {
        match self {
            Echo::AsIs => repr(v),
            Echo::Masked => repr(&masking::mask(v)),
        }
    }
}

/// Applies `ops` to `doc` as Ironic's `apply_jsonpatch` does: first the rule
/// that `add` may not create a new root attribute, then each operation with
/// jsonpatch's semantics. The first failure is the 400 Ironic answers; `doc`
/// is then left as the operations before it made it.
pub fn apply(doc: &mut Map<String, Value>, ops: &[PatchOp], echo: Echo) -> ApiResult<()> {
    for op in ops {
        if op.op == "add" && is_root(op) && !doc.contains_key(op.root()) {
            return Err(ApiError::bad_request(format!(
                "Adding a new attribute ({}) to the root of the resource is not allowed",
                op.path
            )));
        }
    }
    let mut value = Value::Object(std::mem::take(doc));
    let mut result = Ok(());
    for op in ops {
        if let Err(reason) = apply_one(&mut value, op, echo) {
            let mut shown = Map::new();
            shown.insert("op".into(), Value::String(op.op.clone()));
            shown.insert("path".into(), Value::String(op.path.clone()));
            if let Some(v) = &op.value {
                shown.insert("value".into(), v.clone());
            }
            result = Err(ApiError::bad_request(format!(
                "Couldn't apply patch '{}'. Reason: {reason}",
                echo.repr(&Value::Object(shown))
            )));
            break;
        }
    }
    if let Value::Object(m) = value {
        *doc = m;
    }
    result
}

/// Where a path segment points inside its container (jsonpointer's
/// `get_part`): a key of an object, an index of an array, or the end of one.
enum Part {
    Key(String),
    Index(usize),
    End,
}

/// jsonpointer's array index: `0`, or digits without a leading zero.
fn is_index(part: &str) -> bool {
    part == "0"
        || (!part.is_empty() && !part.starts_with('0') && part.chars().all(|c| c.is_ascii_digit()))
}

/// jsonpointer's `get_part`: how `part` indexes `doc`, or why it cannot.
fn get_part(doc: &Value, part: &str) -> Result<Part, String> {
    match doc {
        Value::Object(_) => Ok(Part::Key(part.to_string())),
        Value::String(_) => Err(format!(
            "Cannot apply token '{part}' to non-container type <class 'str'>"
        )),
        Value::Array(_) if part == "-" => Ok(Part::End),
        // An index too large for memory is simply out of bounds, as in Python.
        Value::Array(_) if is_index(part) => Ok(Part::Index(part.parse().unwrap_or(usize::MAX))),
        Value::Array(_) => Err(format!("'{part}' is not a valid sequence index")),
        other => Err(not_indexable(pyfmt::class_name(other))),
    }
}

fn not_indexable(class: &str) -> String {
    format!(
        "Document '<class '{class}'>' does not support indexing, must be mapping/sequence or support __getitem__"
    )
}

/// Walks to the parent of the last segment (jsonpointer's `to_last`) and
/// returns it with how the last segment indexes it.
fn to_last<'a>(
    doc: &'a mut Value,
    path: &str,
    echo: Echo,
) -> Result<(&'a mut Value, Part, String), String> {
    let parts: Vec<String> = path[1..]
        .split('/')
        .map(|p| p.replace("~1", "/").replace("~0", "~"))
        .collect();
    let (last, walk) = parts.split_last().expect("a validated path has a segment");
    let mut cur = doc;
    for part in walk {
        cur = match (get_part(cur, part)?, cur) {
            (Part::Key(k), Value::Object(m)) => {
                if !m.contains_key(&k) {
                    let shown = echo.repr(&Value::Object(m.clone()));
                    return Err(format!("member '{part}' not found in {shown}"));
                }
                m.get_mut(&k).expect("checked")
            }
            (Part::Index(i), Value::Array(items)) => items
                .get_mut(i)
                .ok_or_else(|| format!("index '{part}' is out of bounds"))?,
            // `-` names the end of a list: jsonpointer walks on to an
            // `EndOfList`, which the next segment cannot index.
            _ => return Err(not_indexable("jsonpointer.EndOfList")),
        };
    }
    let slot = get_part(cur, last)?;
    Ok((cur, slot, last.clone()))
}

/// One operation, with python-jsonpatch's outcomes and texts.
fn apply_one(doc: &mut Value, op: &PatchOp, echo: Echo) -> Result<(), String> {
    let value = || {
        op.value
            .clone()
            .ok_or_else(|| "The operation does not contain a 'value' member".to_string())
    };
    match op.op.as_str() {
        "add" => {
            let value = value()?;
            match to_last(doc, &op.path, echo)? {
                (Value::Object(m), Part::Key(k), _) => {
                    m.insert(k, value);
                }
                (Value::Array(items), Part::End, _) => items.push(value),
                (Value::Array(items), Part::Index(i), _) => {
                    if i > items.len() {
                        return Err("can't insert outside of list".into());
                    }
                    items.insert(i, value);
                }
                _ => unreachable!("get_part matches the container"),
            }
        }
        "replace" => {
            let value = value()?;
            match to_last(doc, &op.path, echo)? {
                (Value::Object(m), Part::Key(k), _) => match m.get_mut(&k) {
                    Some(v) => *v = value,
                    None => return Err(format!("can't replace a non-existent object '{k}'")),
                },
                (Value::Array(_), Part::End, _) => {
                    return Err("'path' with '-' can't be applied to 'replace' operation".into())
                }
                (Value::Array(items), Part::Index(i), _) => match items.get_mut(i) {
                    Some(v) => *v = value,
                    None => return Err("can't replace outside of list".into()),
                },
                _ => unreachable!("get_part matches the container"),
            }
        }
        "remove" => match to_last(doc, &op.path, echo)? {
            (Value::Object(m), Part::Key(k), _) => {
                if m.remove(&k).is_none() {
                    return Err(format!("can't remove a non-existent object '{k}'"));
                }
            }
            (Value::Array(_), Part::End, _) => return Err("invalid array index '-'".into()),
            (Value::Array(items), Part::Index(i), last) => {
                if i >= items.len() {
                    return Err(format!("can't remove a non-existent object '{last}'"));
                }
                items.remove(i);
            }
            _ => unreachable!("get_part matches the container"),
        },
        other => return Err(format!("Unknown operation '{other}'")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(body: Value) -> String {
        parse(&body).unwrap_err().message
    }

    /// Every expectation is what Ironic answered.
    #[test]
    fn schema_errors_in_ironic_words() {
        let schema = |m: &str| format!("Schema error for patch: {m}");
        assert_eq!(
            err(json!({"op": "remove", "path": "/extra/x"})),
            schema("{'op': 'remove', 'path': '/extra/x'} is not of type 'array'")
        );
        assert_eq!(
            err(json!([{"op": "move", "path": "/extra/a", "from": "/extra/b"}])),
            schema("Additional properties are not allowed ('from' was unexpected)")
        );
        assert_eq!(
            err(json!([{"op": "replace", "path": "extra", "value": {}}])),
            schema(r"'extra' does not match '^(/[\\w-]+)+$'")
        );
        assert_eq!(
            err(json!([{"op": "move", "path": "/extra"}])),
            schema("'move' is not one of ['add', 'replace', 'remove']")
        );
        assert_eq!(
            err(json!([{"path": "/extra"}])),
            schema("'op' is a required property")
        );
        assert_eq!(
            err(json!([{"op": "add", "path": "/x/y"}, 5])),
            schema("5 is not of type 'object'")
        );
        assert!(parse(&json!([])).unwrap().is_empty());
    }

    #[test]
    fn best_match_picks_as_ironic() {
        let schema = |m: &str| format!("Schema error for patch: {m}");
        // The last faulty item; unknown keys before missing ones.
        assert_eq!(err(json!([5, "x"])), schema("'x' is not of type 'object'"));
        assert_eq!(
            err(json!([{"op": "add", "bogus": 1}])),
            schema("Additional properties are not allowed ('bogus' was unexpected)")
        );
        assert_eq!(
            err(json!([{"op": "add", "path": "/a", "value": 1, "bogus": 1}, {"op": "add"}])),
            schema("'path' is a required property")
        );
        // Item errors win over member errors, wherever they are.
        assert_eq!(
            err(json!([{"op": "add", "path": "x"}, {"op": "bad", "path": "/a"}, 7])),
            schema("7 is not of type 'object'")
        );
        // Among member errors: the last item, and `path` over `op`.
        assert_eq!(
            err(json!([{"op": "bad", "path": "/a"}, {"op": "add", "path": "x"}])),
            schema(r"'x' does not match '^(/[\\w-]+)+$'")
        );
        assert_eq!(
            err(json!([{"op": "add", "path": "x"}, {"op": "bad", "path": "/a"}])),
            schema("'bad' is not one of ['add', 'replace', 'remove']")
        );
        assert_eq!(
            err(json!([{"op": "bad", "path": "x"}])),
            schema(r"'x' does not match '^(/[\\w-]+)+$'")
        );
        assert_eq!(
            err(json!([{"op": 5, "path": "/a"}])),
            schema("5 is not of type 'string'")
        );
    }

    fn run(doc: Value, op: Value) -> Result<Value, String> {
        let mut d = doc;
        let op: PatchOp = serde_json::from_value(op).unwrap();
        apply_one(&mut d, &op, Echo::AsIs).map(|_| d)
    }

    /// Every failure text is what Ironic answered for the same operation.
    #[test]
    fn applies_like_python_jsonpatch() {
        let doc = json!({"extra": {"a": 1, "s": "str", "n": null, "i": 5, "l": [1, 2]}});
        let ok = |op: Value| run(doc.clone(), op).unwrap()["extra"].clone();
        let fails = |op: Value| run(doc.clone(), op).unwrap_err();
        assert_eq!(
            ok(json!({"op": "add", "path": "/extra/b", "value": 2}))["b"],
            2
        );
        assert_eq!(
            ok(json!({"op": "add", "path": "/extra/l/-", "value": 3}))["l"],
            json!([1, 2, 3])
        );
        assert_eq!(
            ok(json!({"op": "remove", "path": "/extra/l/0"}))["l"],
            json!([2])
        );
        let cases = [
            (
                json!({"op": "remove", "path": "/extra/nothere"}),
                "can't remove a non-existent object 'nothere'",
            ),
            (
                json!({"op": "replace", "path": "/extra/z", "value": 1}),
                "can't replace a non-existent object 'z'",
            ),
            (
                json!({"op": "add", "path": "/extra/foo"}),
                "The operation does not contain a 'value' member",
            ),
            (
                json!({"op": "add", "path": "/extra/q/r", "value": 1}),
                "member 'q' not found in {'a': 1, 'i': 5, 'l': [1, 2], 'n': None, 's': 'str'}",
            ),
            (
                json!({"op": "add", "path": "/extra/l/5", "value": 1}),
                "can't insert outside of list",
            ),
            (
                json!({"op": "add", "path": "/extra/l/01", "value": 1}),
                "'01' is not a valid sequence index",
            ),
            (
                json!({"op": "add", "path": "/extra/l/9/x", "value": 1}),
                "index '9' is out of bounds",
            ),
            (
                json!({"op": "remove", "path": "/extra/l/-"}),
                "invalid array index '-'",
            ),
            (
                json!({"op": "remove", "path": "/extra/l/99999999999999999999"}),
                "can't remove a non-existent object '99999999999999999999'",
            ),
            (
                json!({"op": "replace", "path": "/extra/l/-", "value": 1}),
                "'path' with '-' can't be applied to 'replace' operation",
            ),
            (
                json!({"op": "replace", "path": "/extra/l/7", "value": 1}),
                "can't replace outside of list",
            ),
            (
                json!({"op": "add", "path": "/extra/s/x", "value": 1}),
                "Cannot apply token 'x' to non-container type <class 'str'>",
            ),
            (
                json!({"op": "remove", "path": "/extra/s/x/y"}),
                "Cannot apply token 'x' to non-container type <class 'str'>",
            ),
            (
                json!({"op": "add", "path": "/extra/n/x", "value": 1}),
                "Document '<class 'NoneType'>' does not support indexing, must be mapping/sequence or support __getitem__",
            ),
            (
                json!({"op": "add", "path": "/extra/i/x/y", "value": 1}),
                "Document '<class 'int'>' does not support indexing, must be mapping/sequence or support __getitem__",
            ),
            (
                json!({"op": "add", "path": "/extra/l/-/x", "value": 1}),
                "Document '<class 'jsonpointer.EndOfList'>' does not support indexing, must be mapping/sequence or support __getitem__",
            ),
        ];
        for (op, reason) in cases {
            assert_eq!(fails(op.clone()), reason, "{op}");
        }
    }

    #[test]
    fn root_rule_and_the_failing_operation_quoted() {
        let mut doc = json!({"extra": {}, "type": "iqn"})
            .as_object()
            .unwrap()
            .clone();
        let ops = |v: Value| parse(&v).unwrap();
        let e = apply(
            &mut doc,
            &ops(json!([{"op": "add", "path": "/foo", "value": 1}])),
            Echo::AsIs,
        )
        .unwrap_err();
        assert_eq!(
            e.message,
            "Adding a new attribute (/foo) to the root of the resource is not allowed"
        );
        let e = apply(
            &mut doc,
            &ops(json!([{"op": "replace", "path": "/type"}])),
            Echo::AsIs,
        )
        .unwrap_err();
        assert_eq!(
            e.message,
            "Couldn't apply patch '{'op': 'replace', 'path': '/type'}'. Reason: The operation does not contain a 'value' member"
        );
        apply(
            &mut doc,
            &ops(json!([{"op": "add", "path": "/extra/a", "value": [1]},
                        {"op": "add", "path": "/extra/a/-", "value": 2}])),
            Echo::AsIs,
        )
        .unwrap();
        assert_eq!(doc["extra"]["a"], json!([1, 2]));
    }

    #[test]
    fn masked_echo_hides_secrets() {
        let mut doc = json!({"driver_info": {"ipmi_password": "s3cret"}})
            .as_object()
            .unwrap()
            .clone();
        let ops =
            parse(&json!([{"op": "add", "path": "/driver_info/x/y", "value": {"password": "p"}}]))
                .unwrap();
        let masked = apply(&mut doc.clone(), &ops, Echo::Masked).unwrap_err();
        assert_eq!(
            masked.message,
            "Couldn't apply patch '{'op': 'add', 'path': '/driver_info/x/y', 'value': {'password': '******'}}'. Reason: member 'x' not found in {'ipmi_password': '******'}"
        );
        // Ironic's own answer echoes them.
        let as_is = apply(&mut doc, &ops, Echo::AsIs).unwrap_err();
        assert!(as_is.message.contains("s3cret"), "{}", as_is.message);
    }

    #[test]
    fn values_for_the_path() {
        let ops = parse(&json!([
            {"op": "add", "path": "/name", "value": "a"},
            {"op": "remove", "path": "/name"},
            {"op": "replace", "path": "/name"},
            {"op": "add", "path": "/names", "value": "b"},
        ]))
        .unwrap();
        assert_eq!(values_for(&ops, "/name"), vec![Some(&json!("a")), None]);
    }
}
