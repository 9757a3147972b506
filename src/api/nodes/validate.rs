//! `GET /v1/nodes/{node}/validate` and the older `GET /v1/nodes/validate?node=…`
//! (`node_uuid=` also accepted): what each interface says about the node,
//! `{"<interface>": {"result": bool, "reason"?: str}}`. The rules live in
//! [`crate::domain::interface_validation`].

use super::super::error::ApiResult;
use super::super::version::{not_acceptable, Version};
use super::super::AppState;
use super::{find, host, uuid_like, Params};
use crate::domain::interface_validation::{self, ValidationEnv};
use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Map, Value};

async fn answer(state: &AppState, version: Version, ident: &str) -> ApiResult<Json<Value>> {
    if !version.at_least(5) && !uuid_like(ident) {
        return Err(not_acceptable());
    }
    let doc = find(state, version, ident).await?;
    let env = ValidationEnv {
        deploy_kernel: state.config.deploy_kernel.is_some(),
        deploy_ramdisk: state.config.deploy_ramdisk.is_some(),
        host: host(state),
        // Ironic takes an existing `redfish_verify_ca` path as a CA bundle.
        path_exists: Some(|p| std::path::Path::new(p).exists()),
    };
    let mut out = Map::new();
    for (kind, outcome) in interface_validation::validate(&doc.node, &env) {
        out.insert(
            kind.to_string(),
            match outcome {
                Ok(()) => json!({"result": true}),
                Err(reason) => json!({"result": false, "reason": reason}),
            },
        );
    }
    Ok(Json(Value::Object(out)))
}

/// `GET /v1/nodes/{node}/validate`.
pub async fn by_path(
    State(state): State<AppState>,
    version: Version,
    Path(ident): Path<String>,
    params: Params,
) -> ApiResult<Json<Value>> {
    params.only(&[])?;
    answer(&state, version, &ident).await
}

/// `GET /v1/nodes/validate?node=<uuid or name>` (or `node_uuid=<uuid>`).
pub async fn by_query(
    State(state): State<AppState>,
    version: Version,
    params: Params,
) -> ApiResult<Json<Value>> {
    params.only(&["node", "node_uuid"])?;
    if let Some(u) = params.get("node_uuid") {
        if !uuid_like(u) {
            return Err(super::super::error::ApiError::bad_request(format!(
                "Expected UUID for node_uuid: {u}"
            )));
        }
    }
    let ident = params
        .get("node_uuid")
        .or(params.get("node"))
        .ok_or_else(|| {
            super::super::error::ApiError::bad_request(
                "Expected a logical name or UUID but received None.",
            )
        })?
        .to_string();
    answer(&state, version, &ident).await
}
