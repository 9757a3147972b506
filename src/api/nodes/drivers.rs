//! `GET /v1/drivers` and `GET /v1/drivers/{name}`: the hardware types ironledger
//! serves (`[DEFAULT] enabled_hardware_types`) and, from 1.30, their interfaces,
//! as Ironic describes dynamic drivers. Every driver is served by this host.

use super::super::error::{ApiError, ApiResult};
use super::super::links::BaseUrl;
use super::super::version::{needs_version, Version};
use super::super::AppState;
use super::fields;
use super::{host, Params};
use crate::domain::hardware::INTERFACE_KINDS;
use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Map, Value};

fn driver(state: &AppState, version: Version, base: &BaseUrl, name: &str, detail: bool) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), json!(name));
    m.insert("hosts".into(), json!([host(state)]));
    m.insert("links".into(), base.links(&format!("drivers/{name}")));
    if version.at_least(14) {
        m.insert(
            "properties".into(),
            base.links(&format!("drivers/{name}/properties")),
        );
    }
    if version.at_least(30) {
        m.insert("type".into(), json!("dynamic"));
    }
    if detail && version.at_least(30) {
        let catalog = &state.config.catalog;
        for kind in INTERFACE_KINDS {
            let field = format!("{kind}_interface");
            let since = match kind {
                "network" | "boot" | "console" | "deploy" | "inspect" | "management" | "power"
                | "raid" | "vendor" => 30,
                _ => fields::since(&field),
            };
            if !version.at_least(since) {
                continue;
            }
            let enabled: Vec<String> = catalog
                .supported
                .get(name)
                .and_then(|m| m.get(kind))
                .into_iter()
                .flatten()
                .filter(|i| {
                    catalog
                        .interfaces
                        .get(kind)
                        .is_some_and(|e| e.enabled.contains(i))
                })
                .cloned()
                .collect();
            let default = catalog.resolve(name, kind, None).ok();
            m.insert(format!("default_{field}"), json!(default));
            m.insert(format!("enabled_{kind}_interfaces"), json!(enabled));
        }
    }
    Value::Object(m)
}

/// `GET /v1/drivers` (`type`, `detail` from 1.30).
pub async fn list(
    State(state): State<AppState>,
    version: Version,
    base: BaseUrl,
    params: Params,
) -> ApiResult<Json<Value>> {
    params.only(&["type", "detail"])?;
    let kind = params.get("type");
    let detail = params.boolean("detail")?;
    if (kind.is_some() || detail.is_some()) && !version.at_least(30) {
        return Err(needs_version(30));
    }
    if kind.is_some_and(|k| !matches!(k, "classic" | "dynamic")) {
        return Err(ApiError::bad_request(
            "\"type\" filter must be one of \"classic\" or \"dynamic\", if specified.",
        ));
    }
    let drivers: Vec<Value> = if kind == Some("classic") {
        vec![]
    } else {
        state
            .config
            .catalog
            .hardware_types
            .iter()
            .map(|d| driver(&state, version, &base, d, detail == Some(true)))
            .collect()
    };
    Ok(Json(json!({ "drivers": drivers })))
}

/// `GET /v1/drivers/{name}`.
pub async fn show(
    State(state): State<AppState>,
    version: Version,
    base: BaseUrl,
    Path(name): Path<String>,
    params: Params,
) -> ApiResult<Json<Value>> {
    params.only(&[])?;
    if !state.config.catalog.hardware_types.contains(&name) {
        return Err(ApiError::not_found(format!(
            "Could not find the following driver(s) or hardware type(s): {name}."
        )));
    }
    Ok(Json(driver(&state, version, &base, &name, true)))
}
