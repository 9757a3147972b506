//! Finding resources in the read models by the identifiers clients use.

use super::error::{ApiError, ApiResult};
use crate::projections::nodes;
use crate::store::{LogStore, StoreError};
use uuid::Uuid;

/// A node as the `nodes` read model holds it (the model's own row type).
pub use crate::projections::NodeRow as NodeDoc;

/// Whether `s` looks like a UUID to Ironic (`uuidutils.is_uuid_like`).
pub fn uuid_like(s: &str) -> bool {
    Uuid::parse_str(s).is_ok()
}

/// Ironic's `args.uuid_or_name` on a parameter: `Expected UUID or name for
/// <name>: <value>`.
pub fn check_uuid_or_name(name: &str, value: &str) -> ApiResult<()> {
    if uuid_like(value) || is_logical_name(value) {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "Expected UUID or name for {name}: {value}"
        )))
    }
}

/// The same check on the node segment of a path, which Ironic's node
/// controller answers while routing, before it negotiates a version: the
/// framework's error style, and no version headers.
pub fn check_path_node(node: &str) -> ApiResult<()> {
    check_uuid_or_name("node", node)
        .map_err(|e| ApiError::framework(axum::http::StatusCode::BAD_REQUEST, e.message).bare())
}

pub use crate::domain::node_name::{is_logical_name, LOGICAL_NAME_PATTERN};

/// Looks a node up by UUID or logical name (names need API ≥ 1.5 in Ironic;
/// ironledger accepts them at every version). Unknown → 404 `Node <x> could not be found.`;
/// neither a UUID nor a valid name → 400.
pub async fn node(store: &dyn LogStore, ident: &str) -> ApiResult<NodeDoc> {
    let not_found = || ApiError::not_found(format!("Node {ident} could not be found."));
    if Uuid::parse_str(ident).is_err() && !is_logical_name(ident) {
        return Err(ApiError::bad_request(format!(
            "Expected a logical name or UUID but received {ident}."
        )));
    }
    let id = node_uuid(store, ident).await?.ok_or_else(not_found)?;
    nodes::get(store, &id).await?.ok_or_else(not_found)
}

/// The UUID `ident` names: itself when it is a UUID (whether or not the node
/// still exists: the log keeps a deleted node's events), else the UUID of the
/// node that holds that name now (`None` when none does).
pub async fn node_uuid(store: &dyn LogStore, ident: &str) -> Result<Option<String>, StoreError> {
    match Uuid::parse_str(ident) {
        Ok(u) => Ok(Some(u.to_string())),
        Err(_) => {
            store
                .claim_owner(crate::domain::claims::NODE_NAME, ident)
                .await
        }
    }
}

/// Looks a node up by UUID only.
pub async fn node_by_uuid(store: &dyn LogStore, uuid: Uuid) -> ApiResult<Option<NodeDoc>> {
    Ok(nodes::get(store, &uuid.to_string()).await?)
}

/// A node by UUID, or Ironic's 404 (`Node <uuid> could not be found.`).
pub async fn existing_node(store: &dyn LogStore, uuid: Uuid) -> ApiResult<NodeDoc> {
    node_by_uuid(store, uuid)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("Node {uuid} could not be found.")))
}

/// Parses a path UUID, or Ironic's 400 for a malformed one.
pub fn parse_uuid(raw: &str, what: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(raw).map_err(|_| {
        ApiError::bad_request(format!("Expected a UUID for {what}, but received {raw}."))
    })
}
