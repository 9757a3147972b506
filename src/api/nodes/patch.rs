//! JSON patch as Ironic's API layer checks and applies it: the document schema
//! (`args.patch`), and python-jsonpatch's operation-by-operation application with
//! its error texts (`Couldn't apply patch '…'. Reason: …`).
//!
//! The API applies a node patch to the read model only to find Ironic's 400s in
//! Ironic's words; the aggregate applies the same operations to the node's
//! current state and decides.

use super::super::error::{ApiError, ApiResult};
use super::super::masking;
use super::pyfmt::{additional_properties, repr, required, type_error};
use serde_json::{Map, Value};

/// One operation as the client sent it (validated against the schema).
pub type Op = Map<String, Value>;

const PATTERN: &str = "^(/[\\w-]+)+$";

fn path_ok(path: &str) -> bool {
    path.starts_with('/')
        && path[1..].split('/').all(|seg| {
            !seg.is_empty()
                && seg
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
        })
}

/// Checks a patch document against Ironic's schema and returns its operations.
/// The error jsonschema's `best_match` picks is reproduced: item-level problems
/// (not an object, unknown keys, missing keys) before property-level ones.
pub fn parse(body: &Value) -> ApiResult<Vec<Op>> {
    let schema = |m: String| ApiError::bad_request(format!("Schema error for patch: {m}"));
    let Value::Array(items) = body else {
        return Err(schema(type_error(body, &["array"])));
    };
    // Item-level errors.
    for item in items {
        let Value::Object(o) = item else {
            return Err(schema(type_error(item, &["object"])));
        };
        let extra: Vec<&str> = o
            .keys()
            .map(String::as_str)
            .filter(|k| !matches!(*k, "path" | "op" | "value"))
            .collect();
        if !extra.is_empty() {
            return Err(schema(additional_properties(&extra)));
        }
        for key in ["op", "path"] {
            if !o.contains_key(key) {
                return Err(schema(required(key)));
            }
        }
    }
    // Property-level errors.
    for item in items {
        let o = item.as_object().expect("checked above");
        let path = &o["path"];
        match path.as_str() {
            None => return Err(schema(type_error(path, &["string"]))),
            Some(p) if !path_ok(p) => {
                return Err(schema(format!(
                    "{} does not match {}",
                    repr(path),
                    repr(&Value::String(PATTERN.into()))
                )))
            }
            _ => {}
        }
        let op = &o["op"];
        match op.as_str() {
            None => return Err(schema(type_error(op, &["string"]))),
            Some("add" | "replace" | "remove") => {}
            Some(_) => {
                return Err(schema(format!(
                    "{} is not one of ['add', 'replace', 'remove']",
                    repr(op)
                )))
            }
        }
    }
    Ok(items
        .iter()
        .map(|i| i.as_object().expect("checked").clone())
        .collect())
}

pub fn op_name(op: &Op) -> &str {
    op["op"].as_str().unwrap_or_default()
}

pub fn op_path(op: &Op) -> &str {
    op["path"].as_str().unwrap_or_default()
}

/// The first path segment.
pub fn root(op: &Op) -> &str {
    op_path(op)
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or("")
}

/// Ironic's `get_patch_values`: values of non-remove operations on exactly `path`.
pub fn values_for<'a>(ops: &'a [Op], path: &str) -> Vec<&'a Value> {
    ops.iter()
        .filter(|o| op_path(o) == path && op_name(o) != "remove")
        .map(|o| o.get("value").unwrap_or(&Value::Null))
        .collect()
}

/// Applies the operations one by one to `doc`; the first failure is Ironic's
/// `PatchError`. Values in the message are masked (Ironic would echo secrets of
/// the document there).
pub fn apply_all(doc: &mut Value, ops: &[Op]) -> ApiResult<()> {
    for op in ops {
        apply(doc, op).map_err(|reason| {
            let shown = masking::mask(&Value::Object(op.clone()));
            ApiError::bad_request(format!(
                "Couldn't apply patch '{}'. Reason: {reason}",
                repr(&shown)
            ))
        })?;
    }
    Ok(())
}

fn index(part: &str) -> Result<usize, String> {
    let ok = part == "0" || (!part.starts_with('0') && part.chars().all(|c| c.is_ascii_digit()));
    if !ok || part.is_empty() {
        return Err(format!("'{part}' is not a valid sequence index"));
    }
    part.parse()
        .map_err(|_| format!("'{part}' is not a valid sequence index"))
}

/// Walks to the parent of the last path segment (python-jsonpointer's `to_last`).
fn parent<'a>(doc: &'a mut Value, parts: &[String]) -> Result<&'a mut Value, String> {
    let mut cur = doc;
    for part in &parts[..parts.len() - 1] {
        cur = match cur {
            Value::Object(m) => {
                let shown = repr(&masking::mask(&Value::Object(m.clone())));
                m.get_mut(part)
                    .ok_or_else(|| format!("member '{part}' not found in {shown}"))?
            }
            Value::Array(a) => {
                let i = index(part)?;
                a.get_mut(i)
                    .ok_or_else(|| format!("index '{part}' is out of bounds"))?
            }
            other => {
                return Err(format!(
                "Document '{}' does not support indexing, only sequences and dicts can be accessed",
                super::pyfmt::str_(&masking::mask(other))
            ))
            }
        };
    }
    Ok(cur)
}

/// One operation, with python-jsonpatch's outcomes and texts.
pub fn apply(doc: &mut Value, op: &Op) -> Result<(), String> {
    let path = op_path(op).to_string();
    let parts: Vec<String> = path[1..]
        .split('/')
        .map(|p| p.replace("~1", "/").replace("~0", "~"))
        .collect();
    let last = parts.last().cloned().unwrap_or_default();
    let name = op_name(op);
    let value = match (name, op.get("value")) {
        ("remove", _) => Value::Null,
        (_, Some(v)) => v.clone(),
        (_, None) => return Err("The operation does not contain a 'value' member".into()),
    };
    let target = parent(doc, &parts)?;
    match (name, target) {
        ("remove", Value::Object(m)) => m
            .remove(&last)
            .map(|_| ())
            .ok_or_else(|| format!("can't remove a non-existent object '{last}'")),
        ("remove", Value::Array(a)) => {
            let i = index(&last)?;
            if i < a.len() {
                a.remove(i);
                Ok(())
            } else {
                Err(format!("can't remove a non-existent object '{last}'"))
            }
        }
        ("add", Value::Object(m)) => {
            m.insert(last, value);
            Ok(())
        }
        ("add", Value::Array(a)) => {
            if last == "-" {
                a.push(value);
                return Ok(());
            }
            let i = index(&last)?;
            if i > a.len() {
                return Err("can't insert outside of list".into());
            }
            a.insert(i, value);
            Ok(())
        }
        ("replace", Value::Object(m)) => match m.get_mut(&last) {
            Some(slot) => {
                *slot = value;
                Ok(())
            }
            None => Err(format!("can't replace a non-existent object '{last}'")),
        },
        ("replace", Value::Array(a)) => {
            if last == "-" {
                return Err("'path' with '-' can't be applied to 'replace' operation".into());
            }
            let i = index(&last)?;
            match a.get_mut(i) {
                Some(slot) => {
                    *slot = value;
                    Ok(())
                }
                None => Err("can't replace outside of list".into()),
            }
        }
        (_, _) => Err(format!(
            "unable to fully resolve json pointer {path}, part {last}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(body: Value) -> String {
        parse(&body).unwrap_err().message
    }

    #[test]
    fn schema_errors_in_ironic_words() {
        assert_eq!(
            err(json!({"op": "remove", "path": "/extra/x"})),
            "Schema error for patch: {'op': 'remove', 'path': '/extra/x'} is not of type 'array'"
        );
        assert_eq!(
            err(json!([{"op": "move", "path": "/extra/a", "from": "/extra/b"}])),
            "Schema error for patch: Additional properties are not allowed ('from' was unexpected)"
        );
        assert_eq!(
            err(json!([{"op": "replace", "path": "extra", "value": {}}])),
            "Schema error for patch: 'extra' does not match '^(/[\\\\w-]+)+$'"
        );
        assert_eq!(
            err(json!([{"op": "move", "path": "/extra"}])),
            "Schema error for patch: 'move' is not one of ['add', 'replace', 'remove']"
        );
        assert_eq!(
            err(json!([{"path": "/extra"}])),
            "Schema error for patch: 'op' is a required property"
        );
        assert_eq!(
            err(json!([{"op": "add", "path": "/x/y"}, 5])),
            "Schema error for patch: 5 is not of type 'object'"
        );
        assert!(parse(&json!([])).unwrap().is_empty());
    }

    fn run(doc: Value, op: Value) -> Result<Value, String> {
        let mut d = doc;
        apply(&mut d, op.as_object().unwrap()).map(|_| d)
    }

    #[test]
    fn applies_like_python_jsonpatch() {
        let doc = json!({"extra": {"a": 1}, "list": [1, 2], "description": null});
        assert_eq!(
            run(
                doc.clone(),
                json!({"op": "add", "path": "/extra/b", "value": 2})
            )
            .unwrap()["extra"],
            json!({"a": 1, "b": 2})
        );
        assert_eq!(
            run(
                doc.clone(),
                json!({"op": "remove", "path": "/extra/nothere"})
            )
            .unwrap_err(),
            "can't remove a non-existent object 'nothere'"
        );
        assert_eq!(
            run(
                doc.clone(),
                json!({"op": "replace", "path": "/extra/z", "value": 1})
            )
            .unwrap_err(),
            "can't replace a non-existent object 'z'"
        );
        assert_eq!(
            run(doc.clone(), json!({"op": "add", "path": "/extra/foo"})).unwrap_err(),
            "The operation does not contain a 'value' member"
        );
        assert_eq!(
            run(
                doc.clone(),
                json!({"op": "add", "path": "/extra/q/r", "value": 1})
            )
            .unwrap_err(),
            "member 'q' not found in {'a': 1}"
        );
        assert_eq!(
            run(
                doc.clone(),
                json!({"op": "add", "path": "/list/5", "value": 1})
            )
            .unwrap_err(),
            "can't insert outside of list"
        );
        assert_eq!(
            run(
                doc.clone(),
                json!({"op": "add", "path": "/description/x", "value": 1})
            )
            .unwrap_err(),
            "unable to fully resolve json pointer /description/x, part x"
        );
        assert_eq!(
            run(doc, json!({"op": "add", "path": "/list/-", "value": 3})).unwrap()["list"],
            json!([1, 2, 3])
        );
    }

    #[test]
    fn failure_messages_mask_secrets() {
        let mut doc = json!({"driver_info": {"ipmi_password": "s3cret"}});
        let ops = parse(&json!([{"op": "add", "path": "/driver_info/x/y", "value": 1}])).unwrap();
        let e = apply_all(&mut doc, &ops).unwrap_err();
        assert!(!e.message.contains("s3cret"), "{}", e.message);
        assert!(e.message.starts_with("Couldn't apply patch '{'op': 'add'"));
    }
}
