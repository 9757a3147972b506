//! JSON patch (RFC 6902) with Ironic's rules on top.
//!
//! Ironic accepts only `add`, `replace` and `remove`, paths of the form
//! `^(/[\w-]+)+$`, refuses adding a new attribute at the root of a resource, and
//! only lets a per-resource set of root fields be touched. The aggregate applies
//! the patch to its *current* state inside the command handler, so a patch that
//! returns 200 was applied to what it saw: no lost updates between concurrent
//! patches (Ironic itself loses them).

use super::error::DomainError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One operation of a patch, as clients send it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatchOp {
    pub op: String,
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

impl PatchOp {
    /// The first path segment (`/properties/capabilities` → `properties`).
    pub fn root(&self) -> &str {
        self.path
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or("")
    }
}

/// Whether a path matches Ironic's `^(/[\w-]+)+$` (Python's Unicode `\w`).
pub fn path_is_valid(path: &str) -> bool {
    path.starts_with('/')
        && path[1..].split('/').all(|seg| {
            !seg.is_empty()
                && seg
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
        })
}

/// Applies `ops` to `doc` (the patchable view of a resource). `allowed` lists the
/// root fields that may be touched; `what` names the resource in messages.
/// Fields removed at the root come back as `null`, which each resource reads as
/// "reset to default".
pub fn apply(
    doc: &Map<String, Value>,
    ops: &[PatchOp],
    allowed: &[&str],
) -> Result<Map<String, Value>, DomainError> {
    if ops.is_empty() {
        return Err(DomainError::Invalid("Patch must not be empty.".into()));
    }
    for op in ops {
        if !matches!(op.op.as_str(), "add" | "replace" | "remove") {
            return Err(DomainError::Invalid(format!(
                "Invalid patch operation '{}'; only add, replace and remove are supported.",
                op.op
            )));
        }
        if !path_is_valid(&op.path) {
            return Err(DomainError::Invalid(format!(
                "Invalid patch path '{}'.",
                op.path
            )));
        }
        if op.op != "remove" && op.value.is_none() {
            return Err(DomainError::Invalid(format!(
                "'add' and 'replace' operations need a value: {}",
                op.path
            )));
        }
        let root = op.root();
        if !allowed.contains(&root) {
            let mut names: Vec<&str> = allowed.to_vec();
            names.sort_unstable();
            return Err(DomainError::Invalid(format!(
                "Cannot patch {}. Only the following can be updated: {}.",
                op.path,
                names.join(", ")
            )));
        }
        let is_root = op.path.matches('/').count() == 1;
        if op.op == "add" && is_root && !doc.contains_key(root) {
            return Err(DomainError::Invalid(format!(
                "Adding a new attribute ({}) to the root of the resource is not allowed",
                op.path
            )));
        }
    }
    let mut value = Value::Object(doc.clone());
    // Ironic treats `add` on an existing root attribute as a replace, and a root
    // `remove` as resetting the field; json-patch does both once the field exists.
    let wire: Vec<Value> = ops
        .iter()
        .map(|op| {
            let mut o = serde_json::json!({"op": op.op, "path": op.path});
            if let Some(v) = &op.value {
                o["value"] = v.clone();
            }
            o
        })
        .collect();
    let patch: json_patch::Patch = serde_json::from_value(Value::Array(wire))
        .map_err(|e| DomainError::Invalid(format!("Invalid patch: {e}")))?;
    json_patch::patch(&mut value, &patch.0)
        .map_err(|e| DomainError::Invalid(format!("Patch could not be applied: {e}")))?;
    let Value::Object(mut out) = value else {
        return Err(DomainError::Invalid(
            "Patch replaced the whole resource".into(),
        ));
    };
    for key in doc.keys() {
        out.entry(key.clone()).or_insert(Value::Null);
    }
    // Each patch body is held to the depth limit, but a path can reach into
    // what earlier patches added: the result is held to it too.
    if let Some(problem) = super::limits::too_deep_object("The patched resource", &out) {
        return Err(DomainError::Invalid(problem));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Map<String, Value> {
        json!({"type": "iqn", "connector_id": "iqn.x", "extra": {}, "node_uuid": "n"})
            .as_object()
            .unwrap()
            .clone()
    }
    const ALLOWED: &[&str] = &["type", "connector_id", "extra", "node_uuid"];

    fn op(op: &str, path: &str, value: Option<Value>) -> PatchOp {
        PatchOp {
            op: op.into(),
            path: path.into(),
            value,
        }
    }

    #[test]
    fn replace_and_add_nested() {
        let out = apply(
            &doc(),
            &[
                op("replace", "/connector_id", Some(json!("iqn.y"))),
                op("add", "/extra/foo", Some(json!(1))),
            ],
            ALLOWED,
        )
        .unwrap();
        assert_eq!(out["connector_id"], "iqn.y");
        assert_eq!(out["extra"]["foo"], 1);
    }

    #[test]
    fn ironic_rules() {
        let refuse = |o: PatchOp| apply(&doc(), &[o], ALLOWED).unwrap_err();
        assert!(refuse(op("move", "/type", None))
            .to_string()
            .contains("only add, replace and remove"));
        assert!(refuse(op("replace", "/uuid", Some(json!("x"))))
            .to_string()
            .starts_with("Cannot patch /uuid"));
        assert!(refuse(op("replace", "type", Some(json!("x"))))
            .to_string()
            .contains("Invalid patch path"));
        assert!(refuse(op("remove", "/extra/missing", None))
            .to_string()
            .contains("could not be applied"));
        assert!(refuse(op("replace", "/type", None))
            .to_string()
            .contains("need a value"));
        let allowed_with_new = ["type", "connector_id", "extra", "node_uuid", "newfield"];
        let err = apply(
            &doc(),
            &[op("add", "/newfield", Some(json!(1)))],
            &allowed_with_new,
        )
        .unwrap_err();
        assert!(err
            .to_string()
            .contains("to the root of the resource is not allowed"));
        assert!(apply(&doc(), &[], ALLOWED).is_err());
    }

    #[test]
    fn removed_root_fields_come_back_null() {
        let out = apply(&doc(), &[op("remove", "/extra", None)], ALLOWED).unwrap();
        assert_eq!(out["extra"], Value::Null);
    }
}
