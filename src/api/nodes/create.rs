//! `POST /v1/nodes`, and the node body schema that `PATCH` shares.
//!
//! Order of checks (Ironic's `NodesController.post`): the body schema, the
//! per-field conversions (`uuid`, booleans), fields newer than the version
//! (406), the name, the driver; then the aggregate resolves the interfaces and
//! records the node. Nothing is written unless every check passes.

use super::super::error::{ApiError, ApiResult};
use super::super::links::{self, BaseUrl};
use super::super::pyfmt;
use super::super::schema::{Prop, Schema, Ty};
use super::super::version::{not_acceptable, Version};
use super::super::{AppState, Who};
use super::fields;
use super::render::{self, View};
use super::{reread, uuid_like, JsonBody};
use crate::domain::hardware::INTERFACE_KINDS;
use crate::domain::node::commands::EnrollNode;
use crate::domain::node_name::{is_hostname_safe, NodeName, RESERVED_NAMES};
use crate::domain::state::ProvisionState;
use crate::domain::NodeCommand;
use axum::extract::State;
use axum::response::Response;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

const STR: &[Ty] = &[Ty::String, Ty::Null];
const BOOLISH: &[Ty] = &[Ty::String, Ty::Boolean, Ty::Null];
const OBJ: &[Ty] = &[Ty::Object, Ty::Null];

/// The node patch schema's properties: the node schema's, then the two only
/// the patch schema has (last, so the node schema is a prefix).
const PATCH_PROPS: &[Prop] = &[
    Prop::new("automated_clean", BOOLISH),
    Prop::new("bios_interface", STR),
    Prop::new("boot_interface", STR),
    Prop::new("boot_mode", STR),
    Prop::new("chassis_uuid", STR),
    Prop::new("conductor_group", STR),
    Prop::new("console_enabled", BOOLISH),
    Prop::new("console_interface", STR),
    Prop::new("deploy_interface", STR),
    Prop::max("description", STR, 4096),
    Prop::new("disable_power_off", BOOLISH),
    Prop::new("driver", &[Ty::String]),
    Prop::new("driver_info", OBJ),
    Prop::new("extra", OBJ),
    Prop::new("firmware_interface", STR),
    Prop::new("inspect_interface", STR),
    Prop::new("instance_info", OBJ),
    Prop::max("instance_name", STR, 255),
    Prop::new("instance_uuid", STR),
    Prop::new("lessee", STR),
    Prop::new("management_interface", STR),
    Prop::new("maintenance", BOOLISH),
    Prop::new("name", STR),
    // Ironic's network data schema is `anyOf` null or a (further checked)
    // object; ironledger checks only the top-level type.
    Prop::any_of("network_data", &[Ty::Null, Ty::Object]),
    Prop::new("network_interface", STR),
    Prop::new("owner", STR),
    Prop::max("parent_node", STR, 36),
    Prop::new("power_interface", STR),
    Prop::new("properties", OBJ),
    Prop::new("raid_interface", STR),
    Prop::new("rescue_interface", STR),
    Prop::max("resource_class", STR, 80),
    Prop::new("retired", BOOLISH),
    Prop::new("retired_reason", STR),
    Prop::new("secure_boot", BOOLISH),
    Prop::new("shard", STR),
    Prop::new("storage_interface", STR),
    Prop::new("uuid", STR),
    Prop::new("vendor_interface", STR),
    // Only in the patch schema.
    Prop::new("protected", BOOLISH),
    Prop::new("protected_reason", STR),
];

/// Ironic's node schema (`POST`).
pub static NODE_SCHEMA: Schema = Schema {
    props: PATCH_PROPS.split_at(PATCH_PROPS.len() - 2).0,
    required: &["driver"],
    one_of_required: None,
};

/// Ironic's node patch schema (the patched node).
pub static NODE_PATCH_SCHEMA: Schema = Schema {
    props: PATCH_PROPS,
    required: &["driver"],
    one_of_required: None,
};

/// Validates a node document against Ironic's node schema (`what` is `node`
/// for POST, `patch` for the patched node, which may also carry the
/// `protected` fields).
pub fn check_schema(doc: &Value, what: &str, patch: bool) -> ApiResult<()> {
    let schema = if patch {
        &NODE_PATCH_SCHEMA
    } else {
        &NODE_SCHEMA
    };
    match schema.check(doc) {
        Some(m) => Err(ApiError::bad_request(format!(
            "Schema error for {what}: {m}"
        ))),
        None => Ok(()),
    }
}

/// Ironic's `NODE_VALIDATE_EXTRA`: UUID fields must look like UUIDs and the
/// boolean fields are read strictly (strings become booleans).
pub fn convert_extra(obj: &mut Map<String, Value>) -> ApiResult<()> {
    for name in [
        "automated_clean",
        "chassis_uuid",
        "console_enabled",
        "disable_power_off",
        "instance_uuid",
        "protected",
        "maintenance",
        "retired",
        "uuid",
    ] {
        let Some(v) = obj.get(name) else { continue };
        if name.ends_with("uuid") {
            if let Value::String(s) = v {
                if !uuid_like(s) {
                    return Err(ApiError::bad_request(format!(
                        "Expected UUID for {name}: {s}"
                    )));
                }
            }
        } else {
            let b = pyfmt::strict_bool(name, v).map_err(ApiError::bad_request)?;
            obj.insert(name.into(), b.map(Value::Bool).unwrap_or(Value::Null));
        }
    }
    Ok(())
}

/// Ironic's `_check_names_acceptable` for one requested name; `error` words
/// the invalid-name refusal (`{name}` is replaced).
pub fn check_name(name: &Value, version: Version, error: &str) -> ApiResult<()> {
    if !version.at_least(5) {
        return Err(not_acceptable());
    }
    let valid = match name {
        Value::String(s) if version.at_least(10) => NodeName::parse(s).is_ok(),
        Value::String(s) => is_hostname_safe(s) && !uuid_like(s),
        _ => false,
    };
    if !valid {
        return Err(ApiError::bad_request(
            error.replace("{name}", &pyfmt::str_(name)),
        ));
    }
    let s = name.as_str().unwrap_or_default();
    if RESERVED_NAMES.contains(&s) {
        return Err(ApiError::bad_request(format!(
            "The word \"{s}\" is reserved and can not be used as a node name. Reserved words are: {}.",
            RESERVED_NAMES.join(", ")
        )));
    }
    Ok(())
}

/// Ironic's answer to a driver no conductor serves.
pub fn no_valid_host(driver: &str, group: &str) -> ApiError {
    ApiError::bad_request(format!(
        "No valid host was found. Reason: No conductor service registered which supports driver {driver} for conductor group \"{group}\". Ensure the driver is valid and enabled."
    ))
}

/// Refuses values ironledger cannot keep, rather than accept and drop them.
pub fn unsupported(field: &str) -> ApiError {
    ApiError::bad_request(format!(
        "ironledger does not support setting {field} on a node."
    ))
}

fn object(v: Option<&Value>) -> Map<String, Value> {
    v.and_then(Value::as_object).cloned().unwrap_or_default()
}

/// `POST /v1/nodes`.
pub async fn create(
    State(state): State<AppState>,
    version: Version,
    base: BaseUrl,
    who: Who,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    check_schema(&body, "node", false)?;
    let mut obj = body.as_object().cloned().unwrap_or_default();
    convert_extra(&mut obj)?;

    // Fields newer than the version must be absent or empty.
    for (field, _) in fields::VERSIONED {
        if fields::allowed(field, version) {
            continue;
        }
        let Some(v) = obj.get(*field) else { continue };
        let empty = match *field {
            "conductor_group" => v.as_str() == Some(""),
            _ => v.is_null(),
        };
        if !empty {
            return Err(not_acceptable());
        }
    }

    let uuid = match obj.get("uuid").and_then(Value::as_str) {
        Some(s) if !s.is_empty() => uuid::Uuid::parse_str(s).expect("checked"),
        _ => uuid::Uuid::new_v4(),
    };
    let group = obj
        .get("conductor_group")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let name = obj.get("name").cloned().unwrap_or(Value::Null);
    if !name.is_null() {
        check_name(
            &name,
            version,
            "Cannot create node with invalid name '{name}'",
        )?;
    }
    for field in ["boot_mode", "secure_boot"] {
        if obj.get(field).is_some_and(|v| !v.is_null()) {
            return Err(unsupported(field));
        }
    }
    if obj.get("console_enabled") == Some(&Value::Bool(true)) {
        return Err(unsupported("console_enabled"));
    }
    if let Some(Value::String(c)) = obj.get("chassis_uuid") {
        return Err(ApiError::bad_request(format!(
            "Chassis {c} could not be found."
        )));
    }
    let driver = obj["driver"].as_str().unwrap_or_default().to_string();
    let catalog = &state.config.catalog;
    if !catalog.hardware_types.iter().any(|d| d == &driver) {
        return Err(no_valid_host(&driver, &group));
    }

    let mut interfaces = BTreeMap::new();
    for kind in INTERFACE_KINDS {
        if let Some(Value::String(i)) = obj.get(&format!("{kind}_interface")) {
            interfaces.insert(kind.to_string(), Some(i.clone()));
        }
    }
    let mut simple = BTreeMap::new();
    for f in [
        "automated_clean",
        "conductor_group",
        "description",
        "lessee",
        "owner",
        "resource_class",
        "retired",
        "retired_reason",
        "network_data",
        "shard",
        "parent_node",
        "disable_power_off",
    ] {
        match obj.get(f) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s.is_empty() && f == "conductor_group" => {}
            Some(v) => {
                simple.insert(f.to_string(), v.clone());
            }
        }
    }
    // Not simple fields: the aggregate records them as their own events in
    // the enrolment's commit.
    if obj.get("maintenance") == Some(&Value::Bool(true)) {
        simple.insert("maintenance".into(), Value::Bool(true));
    }
    if let Some(Value::String(i)) = obj.get("instance_uuid") {
        simple.insert("instance_uuid".into(), Value::String(i.clone()));
    }
    let cmd = EnrollNode {
        uuid,
        name: name.as_str().map(String::from),
        driver,
        interfaces,
        properties: object(obj.get("properties")),
        instance_info: object(obj.get("instance_info")),
        driver_info: object(obj.get("driver_info")),
        extra: object(obj.get("extra")),
        fields: simple,
        initial_state: if version.at_least(11) {
            ProvisionState::Enroll
        } else {
            ProvisionState::Available
        },
    };
    state
        .engine
        .node(uuid, NodeCommand::Enroll(cmd), &who.0)
        .await?;

    let doc = reread(&state, uuid).await?;
    let view = View::new(&state, version, &base);
    let body = render::node(&doc, &view, None);
    Ok(links::created(&base, &format!("nodes/{uuid}"), body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use serde_json::json;

    fn schema_err(v: Value) -> String {
        check_schema(&v, "node", false).unwrap_err().message
    }

    #[test]
    fn schema_errors_match_ironic() {
        assert_eq!(
            schema_err(json!({"driver": "fake-hardware", "bogus": 1})),
            "Schema error for node: Additional properties are not allowed ('bogus' was unexpected)"
        );
        assert_eq!(
            schema_err(json!({"bogus": 1})),
            "Schema error for node: 'driver' is a required property"
        );
        assert_eq!(
            schema_err(json!({"driver": 1})),
            "Schema error for node: 1 is not of type 'string'"
        );
        assert_eq!(
            schema_err(json!({"driver": "x", "name": 5})),
            "Schema error for node: 5 is not of type 'string', 'null'"
        );
        assert_eq!(
            schema_err(json!([1, 2])),
            "Schema error for node: [1, 2] is not of type 'object'"
        );
        assert!(
            schema_err(json!({"driver": "x", "resource_class": "r".repeat(81)}))
                .ends_with("is too long")
        );
        // Several faulty fields: the one whose name sorts last, and the
        // network data's root cause (as Ironic answered both).
        assert_eq!(
            schema_err(json!({"driver": 5, "extra": 5})),
            "Schema error for node: 5 is not of type 'object', 'null'"
        );
        assert_eq!(
            schema_err(json!({"driver": "x", "network_data": 5, "extra": 5})),
            "Schema error for node: 5 is not valid under any of the given schemas. Possible root cause: 5 is not of type 'null'"
        );
        assert!(check_schema(&json!({"driver": "x", "protected": true}), "patch", true).is_ok());
        assert!(check_schema(&json!({"driver": "x", "protected": true}), "node", false).is_err());
    }

    #[test]
    fn names() {
        let v = Version { minor: 78 };
        let e = "Cannot create node with invalid name '{name}'";
        assert!(check_name(&json!("node-1.a_b~c"), v, e).is_ok());
        assert_eq!(
            check_name(&json!("bad name"), v, e).unwrap_err().message,
            "Cannot create node with invalid name 'bad name'"
        );
        assert!(check_name(&json!("detail"), v, e)
            .unwrap_err()
            .message
            .starts_with("The word \"detail\" is reserved"));
        assert!(check_name(&json!("Upper_x"), Version { minor: 9 }, e).is_err());
        assert!(check_name(&json!("lower-x"), Version { minor: 9 }, e).is_ok());
        assert_eq!(
            check_name(&json!("a"), Version { minor: 4 }, e)
                .unwrap_err()
                .status,
            StatusCode::NOT_ACCEPTABLE
        );
        assert!(check_name(&json!("1be26c0b-03f2-4d2e-ae87-c02d7f33c123"), v, e).is_err());
    }
}
