//! `PATCH /v1/nodes/{node}` and `DELETE /v1/nodes/{node}`.
//!
//! A patch goes through Ironic's API checks in Ironic's order — the patch
//! document, the allow-list, fields newer than the version (406), the node, a
//! transition in progress (409), names, then the patched node against the node
//! schema — on the read model, so a refusal reads as Ironic's. Then the
//! operations (booleans and `conductor_group` normalised as Ironic stores them)
//! go to the aggregate, which applies them to the node's *current* state and
//! enforces the conductor's rules. A 200 means the patch was applied.

use super::super::error::{ApiError, ApiResult};
use super::super::links::BaseUrl;
use super::super::lookup::NodeDoc;
use super::super::patch::{self, Echo, PatchOp};
use super::super::pyfmt;
use super::super::version::{not_acceptable, Version};
use super::super::{AppState, Who};
use super::create::{check_name, check_schema, convert_extra, no_valid_host};
use super::fields;
use super::render::{self, View};
use super::{find, reread, JsonBody, Params};
use crate::domain::hardware::INTERFACE_KINDS;
use crate::domain::state::ProvisionState;
use crate::domain::NodeCommand;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Map, Value};

/// The node as Ironic's patch sees it (`rpc_node.as_dict()` restricted to the
/// fields of the node patch schema), with stored, unmasked values: the
/// aggregate's own view, with the object's defaults for fields never set and
/// the fields a patch may not change.
fn patch_view(doc: &NodeDoc) -> Map<String, Value> {
    let mut m = doc.node.patch_view();
    for (k, empty) in [
        ("conductor_group", json!("")),
        ("disable_power_off", json!(false)),
        ("protected", json!(false)),
        ("retired", json!(false)),
        ("network_data", json!({})),
    ] {
        if m.get(k).is_none_or(Value::is_null) {
            m.insert(k.into(), empty);
        }
    }
    m.insert("boot_mode".into(), Value::Null);
    m.insert("secure_boot".into(), Value::Null);
    m.insert("console_enabled".into(), json!(false));
    m.insert("instance_name".into(), Value::Null);
    m.insert("uuid".into(), json!(doc.uuid().to_string()));
    m
}

/// Root fields whose values Ironic reads as booleans.
const BOOLEAN_FIELDS: &[&str] = &[
    "automated_clean",
    "disable_power_off",
    "protected",
    "maintenance",
    "retired",
];

/// Ironic's `UPDATE_ALLOWED_STATES` check, with its exception for removing an
/// instance from a node in maintenance; `ident` as the client named the node.
pub fn check_not_in_transition(
    doc: &NodeDoc,
    ops: &[PatchOp],
    ident: &str,
    version: Version,
) -> ApiResult<()> {
    let n = &doc.node;
    if n.patch_recovers_instance(ops) {
        return Ok(());
    }
    if n.patch_blocked_by_transition(ops) {
        return Err(ApiError::conflict(format!(
            "Node {ident} can not be updated while a state transition is in progress."
        )));
    }
    if n.state() == ProvisionState::Inspecting && version.at_least(39) {
        return Err(ApiError::conflict(format!(
            "Cannot update node \"{}\" while it is in state \"inspecting\".",
            doc.uuid()
        )));
    }
    Ok(())
}

/// `PATCH /v1/nodes/{node}`.
pub async fn update(
    State(state): State<AppState>,
    version: Version,
    base: BaseUrl,
    who: Who,
    Path(ident): Path<String>,
    params: Params,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    // An empty body is `{}` to Ironic (and so not a patch document).
    params.only(&["reset_interfaces"])?;
    let reset = params.boolean("reset_interfaces")?;
    if reset.is_some() && !version.at_least(45) {
        return Err(not_acceptable());
    }
    let ops = patch::parse(&body)?;
    // Ironic's `get_patch_values`; an operation without a value reads as
    // Python's `None` here (Ironic itself fails on one with a 500).
    let values_for = |path: &str| -> Vec<&Value> {
        patch::values_for(&ops, path)
            .into_iter()
            .map(|v| v.unwrap_or(&Value::Null))
            .collect()
    };

    // The patch itself.
    patch::check_allowed(&ops, fields::PATCHABLE)?;
    for (field, _) in fields::VERSIONED {
        if !fields::allowed(field, version) && !values_for(&format!("/{field}")).is_empty() {
            return Err(not_acceptable());
        }
    }
    if reset == Some(true) && values_for("/driver").is_empty() {
        return Err(ApiError::bad_request(
            "The reset_interfaces parameter can only be used when changing the node's driver.",
        ));
    }
    for nd in values_for("/network_data") {
        // ironledger checks only the top-level type of network data.
        if !nd.is_object() {
            return Err(ApiError::bad_request(format!(
                "Invalid network_data: {} ",
                pyfmt::type_error(nd, &["object"])
            )));
        }
    }
    if let Some(Value::String(d)) = values_for("/description").first() {
        if d.chars().count() > 4096 {
            return Err(ApiError::bad_request(
                "Cannot update node with description exceeding 4096 characters",
            ));
        }
    }

    // The node and its state.
    let doc = find(&state, version, &ident).await?;
    check_not_in_transition(&doc, &ops, &ident, version)?;
    for name in values_for("/name") {
        check_name(
            name,
            version,
            &format!("Node {ident}: Cannot change name to invalid name '{{name}}'"),
        )?;
    }

    // The patched node against the schema.
    let mut patched_obj = patch_view(&doc);
    patch::apply(&mut patched_obj, &ops, Echo::Masked)?;
    check_schema(&Value::Object(patched_obj.clone()), "patch", true)?;
    convert_extra(&mut patched_obj)?;
    if let Some(Value::String(c)) = patched_obj.get("chassis_uuid") {
        return Err(ApiError::bad_request(format!(
            "Chassis {c} could not be found."
        )));
    }
    let driver = patched_obj["driver"].as_str().unwrap_or_default();
    if driver != doc.node.driver
        && !state
            .config
            .catalog
            .hardware_types
            .iter()
            .any(|d| d == driver)
    {
        let group = patched_obj["conductor_group"].as_str().unwrap_or_default();
        return Err(no_valid_host(driver, &group.to_lowercase()));
    }

    // What the aggregate gets.
    let mut domain_ops: Vec<PatchOp> = Vec::new();
    for op in &ops {
        let root = op.root();
        // `instance_name` is always empty here: only removing it gets this far.
        if root == "instance_name" {
            continue;
        }
        let mut value = op.value.clone();
        if let (true, Some(v)) = (patch::is_root(op), &value) {
            if BOOLEAN_FIELDS.contains(&root) {
                let b = pyfmt::strict_bool(root, v).map_err(ApiError::bad_request)?;
                value = Some(b.map(Value::Bool).unwrap_or(Value::Null));
            } else if root == "conductor_group" {
                if let Value::String(s) = v {
                    value = Some(json!(s.to_lowercase()));
                }
            }
        }
        domain_ops.push(PatchOp {
            value,
            ..op.clone()
        });
    }
    if reset == Some(true) {
        for kind in INTERFACE_KINDS {
            let field = format!("{kind}_interface");
            if !ops.iter().any(|o| o.root() == field) {
                domain_ops.push(PatchOp {
                    op: "remove".into(),
                    path: format!("/{field}"),
                    value: None,
                });
            }
        }
    }
    let uuid = doc.uuid();
    let doc = if domain_ops.is_empty() {
        doc
    } else {
        state
            .engine
            .node(uuid, NodeCommand::Patch { ops: domain_ops }, &who.0)
            .await?;
        reread(&state, uuid).await?
    };
    let view = View::new(&state, version, &base);
    Ok(Json(render::node(&doc, &view, None)))
}

/// `DELETE /v1/nodes/{node}`: 204; the aggregate decides whether the node may go.
pub async fn delete(
    State(state): State<AppState>,
    version: Version,
    who: Who,
    Path(ident): Path<String>,
) -> ApiResult<StatusCode> {
    let doc = find(&state, version, &ident).await?;
    state
        .engine
        .node(doc.uuid(), NodeCommand::Delete, &who.0)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
