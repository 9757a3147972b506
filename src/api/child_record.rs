//! What volume connectors, volume targets and ports share: a child record of
//! one node, created, patched, re-homed and removed through that node's
//! aggregate.
//!
//! A [`Kind`] describes one resource (its schema, its patchable fields, the
//! commands that change it); the functions here run Ironic's steps in Ironic's
//! order, so that a request with several faults gets the error Ironic would
//! give first.
//!
//! **Re-homing.** A patch that changes `node_uuid` moves the record to another
//! node, i.e. to another aggregate. The API checks the patch as Ironic does and
//! hands the move to the engine (`Engine::move_child`), which records the
//! intent first and survives a crash half-way (`domain::node::decide_move`);
//! the patch is applied to the record as the node holds it when the move
//! starts, so a change committed since our read is carried over.

use crate::api::error::{ApiError, ApiResult};
use crate::api::lookup;
use crate::api::patch::{self, Echo, PatchOp};
use crate::api::pyfmt;
use crate::api::schema::{self, Schema};
use crate::api::AppState;
use crate::domain::node::entities::ChildKind;
use crate::domain::NodeCommand;
use crate::engine::Meta;
use axum::http::StatusCode;
use serde_json::{Map, Value};
use uuid::Uuid;

/// One kind of child record.
pub struct Kind {
    /// How Ironic names the body in schema errors (`Schema error for connector: …`).
    pub body_name: &'static str,
    /// The read model holding one document per record.
    pub model: &'static str,
    /// `Volume connector {} could not be found.`
    pub not_found: &'static str,
    /// The request schema (create, and the patched record).
    pub schema: &'static Schema,
    /// Root fields a patch may touch, in Ironic's order (it lists them in the error).
    pub patch_allowed: &'static [&'static str],
    /// Root fields the aggregate models (patch operations on others are checked
    /// here and not sent on).
    pub domain_fields: &'static [&'static str],
    /// Which of the node's records this kind is (for moves).
    pub child: ChildKind,
    /// The record as Ironic's `as_dict` shows it to a patch, from a read-model
    /// document or a record of an event (without `node_uuid`).
    pub patch_doc: fn(&Value) -> Map<String, Value>,
    /// Checks beyond the schema on a created or patched record, normalising
    /// values (`"yes"` → `true`); the error is Ironic's.
    pub check_record: fn(&mut Map<String, Value>) -> ApiResult<()>,
    /// The command adding a checked record.
    pub add: fn(Uuid, &Map<String, Value>) -> NodeCommand,
    /// The command patching a record in place.
    pub patch: fn(Uuid, Vec<PatchOp>) -> NodeCommand,
    /// The command removing a record.
    pub remove: fn(Uuid) -> NodeCommand,
    /// Normalises an operation's value for the aggregate (`boot_index: 1.0` → `1`).
    pub normalize: fn(&mut PatchOp),
}

impl Kind {
    pub fn not_found(&self, uuid: impl std::fmt::Display) -> ApiError {
        ApiError::not_found(self.not_found.replace("{}", &uuid.to_string()))
    }

    /// The record's document in the read model, or Ironic's 404.
    pub async fn load(&self, state: &AppState, uuid: Uuid) -> ApiResult<Value> {
        crate::projections::children::get(
            state.engine.store().as_ref(),
            self.model,
            &uuid.to_string(),
        )
        .await?
        .ok_or_else(|| self.not_found(uuid))
    }
}

/// The node a document belongs to.
pub fn node_of(doc: &Value) -> ApiResult<Uuid> {
    doc["node_uuid"]
        .as_str()
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "A child record without a node in the read model.",
            )
        })
}

/// Validates a create body the way Ironic's `args.validate` does: the schema
/// (`Schema error for <name>: …`), then the UUID fields.
pub fn check_create_body(kind: &Kind, body: &Value) -> ApiResult<Map<String, Value>> {
    if let Some(m) = kind.schema.check(body) {
        return Err(ApiError::bad_request(format!(
            "Schema error for {}: {m}",
            kind.body_name
        )));
    }
    Ok(body.as_object().cloned().unwrap_or_default())
}

/// Applies a validated patch to a record: Ironic's checks in Ironic's order,
/// then one command on the record's node, or a move to another node.
pub async fn patch(
    state: &AppState,
    kind: &Kind,
    uuid: Uuid,
    current: &Value,
    ops: &[PatchOp],
    who: &Meta,
) -> ApiResult<()> {
    patch::check_allowed(ops, kind.patch_allowed)?;
    // An operation without a value is left to the patch's application, which
    // refuses it in jsonpatch's words.
    let node_values: Vec<&Value> = patch::values_for(ops, "/node_uuid")
        .into_iter()
        .flatten()
        .collect();
    for v in &node_values {
        if !schema::is_uuid_like(v) {
            return Err(ApiError::bad_request(format!(
                "Expected a UUID for node_uuid, but received {}.",
                pyfmt::str_(v)
            )));
        }
    }
    let old_node = node_of(current)?;
    // Ironic takes the *first* node_uuid of the patch (authorize_node_link_patch).
    let new_node = match node_values.first() {
        None => old_node,
        Some(v) => authorize_node_link(state, old_node, v).await?,
    };
    let mut doc = patched(kind, current, ops, new_node)?;
    (kind.check_record)(&mut doc)?;

    let domain_ops: Vec<PatchOp> = ops
        .iter()
        .filter(|o| kind.domain_fields.contains(&o.root()) && o.root() != "node_uuid")
        .map(|o| {
            let mut op = o.clone();
            (kind.normalize)(&mut op);
            op
        })
        .collect();
    if new_node != old_node {
        state
            .engine
            .move_child(kind.child, uuid, old_node, new_node, domain_ops, who)
            .await?;
        return Ok(());
    }
    // With nothing for the aggregate to change, Ironic's conductor still
    // applies its update rules (a connector's or target's node must be
    // powered off) before saving the unchanged record: the aggregate's
    // update does, and records nothing.
    state
        .engine
        .node(old_node, (kind.patch)(uuid, domain_ops), who)
        .await?;
    Ok(())
}

/// The record with `ops` applied and validated, as Ironic builds it:
/// `node_uuid` is null while the patch applies (so operations on it only set
/// it), then becomes the node the record ends up on.
fn patched(
    kind: &Kind,
    record: &Value,
    ops: &[PatchOp],
    node: Uuid,
) -> ApiResult<Map<String, Value>> {
    let mut doc = (kind.patch_doc)(record);
    doc.insert("node_uuid".into(), Value::Null);
    // Target properties hold CHAP secrets: an error that echoes the document
    // masks them (Ironic echoes them in clear here, though it masks them in
    // every other answer).
    patch::apply(&mut doc, ops, Echo::Masked)?;
    doc.insert("node_uuid".into(), Value::String(node.to_string()));
    schema::validate_patched(&mut doc, kind.schema)?;
    Ok(doc)
}

/// Ironic's `authorize_node_link`: the new node must exist and have the same
/// owner as the current one; either failure is the same 400, so a patch cannot
/// probe for nodes it may not see.
async fn authorize_node_link(state: &AppState, old: Uuid, value: &Value) -> ApiResult<Uuid> {
    let raw = pyfmt::str_(value);
    let refuse = || {
        ApiError::bad_request(format!(
            "Unable to apply the requested node_uuid '{raw}'. Requested value was invalid."
        ))
    };
    let new = Uuid::parse_str(&raw).map_err(|_| refuse())?;
    let store = state.engine.store().as_ref();
    let Some(new_doc) = lookup::node_by_uuid(store, new).await? else {
        return Err(refuse());
    };
    let old_owner = lookup::node_by_uuid(store, old)
        .await?
        .and_then(|d| d.node.fields.get("owner").cloned());
    if old_owner != new_doc.node.fields.get("owner").cloned() {
        return Err(refuse());
    }
    Ok(new)
}

/// Removes a record through its node.
pub async fn remove(
    state: &AppState,
    kind: &Kind,
    uuid: Uuid,
    doc: &Value,
    who: &Meta,
) -> ApiResult<()> {
    let node = node_of(doc)?;
    state.engine.node(node, (kind.remove)(uuid), who).await?;
    Ok(())
}

/// The record's `fields` as Ironic's `as_dict` has them, a missing one as
/// `null` (each kind's `patch_doc` starts from this).
pub fn fields_of(record: &Value, fields: &[&str]) -> Map<String, Value> {
    fields
        .iter()
        .map(|k| {
            (
                k.to_string(),
                record.get(*k).cloned().unwrap_or(Value::Null),
            )
        })
        .collect()
}

/// A JSON object field that may be null (read as `{}`).
pub fn object_of(doc: &Map<String, Value>, field: &str) -> Map<String, Value> {
    doc.get(field)
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// A string field (the schema has checked it is one).
pub fn string_of(doc: &Map<String, Value>, field: &str) -> String {
    doc.get(field)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}
