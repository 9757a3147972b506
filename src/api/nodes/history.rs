//! `GET /v1/nodes/{node}/history` and `GET /v1/nodes/{node}/history/{event}`
//! (1.78+, `docs/ironic-behaviour.md` §11), from the `node_history` read model.
//!
//! ironledger records an entry for every event of the node (Ironic's conductor
//! records only some: deploy steps, failures, …), so a node's history here is
//! its complete audit trail in Ironic's shape. `project` (1.113) and
//! `state`/`target_provision_state`/`duration_seconds` (1.115) are above
//! ironledger's maximum version and never shown.
//!
//! Ironic's `next` links carry `fields=…`, which Ironic's own handler then
//! refuses ("Unexpected arguments: fields"), so its pagination cannot be
//! followed. ironledger accepts `fields` (a subset of the fields shown at the
//! version, like other lists), so the links it returns work.

use super::super::error::{ApiError, ApiResult};
use super::super::links::BaseUrl;
use super::super::listing::{compare, parse_bool};
use super::super::version::Version;
use super::super::AppState;
use super::{find, Params};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Map, Value};

const STANDARD: &[&str] = &["uuid", "created_at", "severity", "event"];
const DETAIL: &[&str] = &[
    "uuid",
    "created_at",
    "severity",
    "event_type",
    "event",
    "conductor",
    "user",
];
/// Every detail field Ironic lists in its `next` links (whatever the version).
const ALL_DETAIL: &str =
    "uuid,created_at,severity,event_type,event,conductor,user,project,state,target_provision_state,duration_seconds";
/// Columns of Ironic's history table a list may be sorted by.
const SORTABLE: &[&str] = &[
    "id",
    "uuid",
    "created_at",
    "updated_at",
    "severity",
    "event_type",
    "event",
    "conductor",
    "user",
    "project",
    "state",
    "target_provision_state",
    "duration_seconds",
    "node_id",
];

fn require(version: Version) -> ApiResult<()> {
    if version.at_least(78) {
        Ok(())
    } else {
        Err(ApiError::framework(StatusCode::NOT_FOUND, "").bare())
    }
}

/// One entry as Ironic shows it with `fields`; a standard entry's text is cut
/// at 255.
fn entry(doc: &Value, node_uuid: &str, base: &BaseUrl, fields: &[&str]) -> Value {
    let detail = fields.iter().any(|f| !STANDARD.contains(f));
    let mut out = Map::new();
    for f in fields {
        let mut v = doc.get(*f).cloned().unwrap_or(Value::Null);
        if *f == "user" && v.as_str() == Some("anonymous") {
            // Under noauth Ironic has no user; ironledger calls it anonymous.
            v = Value::Null;
        }
        out.insert(f.to_string(), v);
    }
    if !detail {
        if let Some(text) = out.get("event").and_then(Value::as_str) {
            if text.chars().count() > 255 {
                let cut: String = text.chars().take(251).collect();
                out.insert("event".into(), json!(format!("{cut}...")));
            }
        }
    }
    let uuid = doc["uuid"].as_str().unwrap_or_default();
    out.insert(
        "links".into(),
        json!([{"href": base.v1(&format!("nodes/{node_uuid}/history/{uuid}")), "rel": "self"}]),
    );
    Value::Object(out)
}

async fn entries_of(state: &AppState, node_uuid: &str) -> ApiResult<Vec<Value>> {
    Ok(crate::projections::history_of(state.engine.store().as_ref(), node_uuid).await?)
}

/// `GET /v1/nodes/{node}/history`.
pub async fn list(
    State(state): State<AppState>,
    version: Version,
    base: BaseUrl,
    Path(ident): Path<String>,
    params: Params,
) -> ApiResult<Json<Value>> {
    require(version)?;
    params.only(&[
        "detail", "marker", "limit", "sort_key", "sort_dir", "fields",
    ])?;
    let detail = params
        .get("detail")
        .map(|d| parse_bool("detail", d))
        .transpose()?
        .unwrap_or(false);
    let fields: Vec<&str> = match params.get("fields") {
        None if detail => DETAIL.to_vec(),
        None => STANDARD.to_vec(),
        Some(list) => {
            let asked: Vec<&str> = list
                .split(',')
                .map(str::trim)
                .filter(|f| !f.is_empty())
                .collect();
            let known: Vec<&str> = ALL_DETAIL.split(',').collect();
            let bad: Vec<&str> = asked
                .iter()
                .copied()
                .filter(|f| !known.contains(f))
                .collect();
            if !bad.is_empty() {
                return Err(ApiError::bad_request(format!(
                    "Field(s) \"{}\" are not valid",
                    bad.join(", ")
                )));
            }
            // Those shown at this version, in Ironic's order.
            DETAIL
                .iter()
                .copied()
                .filter(|f| asked.contains(f))
                .collect()
        }
    };
    let marker = match params.get("marker") {
        None => None,
        Some(m) => Some(
            uuid::Uuid::parse_str(m)
                .map_err(|_| ApiError::bad_request(format!("Expected UUID for marker: {m}")))?
                .to_string(),
        ),
    };
    let limit =
        match params.get("limit") {
            None => None,
            Some(raw) => Some(raw.trim().parse::<i64>().map_err(|_| {
                ApiError::bad_request(format!("Expected an integer for limit: {raw}"))
            })?),
        };
    let sort_key = params.get("sort_key").unwrap_or("created_at").to_string();
    let sort_dir = params.get("sort_dir").unwrap_or("asc").to_string();
    let doc = find(&state, version, &ident).await?;
    let node_uuid = doc.uuid().to_string();
    let mut entries = entries_of(&state, &node_uuid).await?;
    if let Some(m) = &marker {
        if !entries
            .iter()
            .any(|e| e["uuid"].as_str() == Some(m.as_str()))
        {
            return Err(ApiError::not_found(format!(
                "Node history record {m} could not be found."
            )));
        }
    }
    let max = state.config.api.max_limit as i64;
    let limit = match limit {
        None => max,
        Some(n) if n <= 0 => return Err(ApiError::bad_request("Limit must be positive")),
        Some(n) => n.min(max),
    } as usize;
    let desc = match sort_dir.as_str() {
        "asc" => false,
        "desc" => true,
        other => {
            return Err(ApiError::bad_request(format!(
                "Invalid sort direction: {other}. Acceptable values are 'asc' or 'desc'"
            )))
        }
    };
    if !SORTABLE.contains(&sort_key.as_str()) {
        return Err(ApiError::bad_request(format!(
            "The sort_key value \"{sort_key}\" is an invalid field for sorting"
        )));
    }
    // Stable sort on the key, then the order of the log (Ironic: then `id`).
    let key = |e: &Value| match sort_key.as_str() {
        "id" | "node_id" => Value::Null,
        k => e.get(k).cloned().unwrap_or(Value::Null),
    };
    entries.sort_by(|a, b| compare(&key(a), &key(b)));
    if desc {
        entries.reverse();
    }
    let start = match &marker {
        None => 0,
        Some(m) => {
            entries
                .iter()
                .position(|e| e["uuid"].as_str() == Some(m.as_str()))
                .unwrap_or(0)
                + 1
        }
    };
    let page: Vec<Value> = entries.into_iter().skip(start).take(limit).collect();
    let mut out = Map::new();
    if page.len() == limit && !page.is_empty() {
        let last = page
            .last()
            .and_then(|e| e["uuid"].as_str())
            .unwrap_or_default();
        // Ironic's, unless the request chose fields itself: then the same
        // fields again, so that every page of a detail listing is detailed.
        let fields = if params.get("fields").is_some() {
            fields.join(",")
        } else if detail {
            ALL_DETAIL.to_string()
        } else {
            STANDARD.join(",")
        };
        out.insert(
            "next".into(),
            json!(format!(
                "{}?marker={}&sort_key={sort_key}&sort_dir={sort_dir}&fields={fields}&limit={limit}&marker={last}",
                base.v1(&format!("nodes/{ident}/history")),
                marker.as_deref().unwrap_or("None"),
            )),
        );
    }
    let items: Vec<Value> = page
        .iter()
        .map(|e| entry(e, &node_uuid, &base, &fields))
        .collect();
    out.insert("history".into(), Value::Array(items));
    Ok(Json(Value::Object(out)))
}

/// `GET /v1/nodes/{node}/history/{event}`: always the detailed form.
pub async fn show(
    State(state): State<AppState>,
    version: Version,
    base: BaseUrl,
    Path((ident, event)): Path<(String, String)>,
    params: Params,
) -> ApiResult<Json<Value>> {
    require(version)?;
    params.only(&[])?;
    if !super::uuid_like(&event) && !super::super::lookup::is_logical_name(&event) {
        return Err(ApiError::bad_request(format!(
            "Expected UUID or name for event: {event}"
        )));
    }
    let doc = find(&state, version, &ident).await?;
    let node_uuid = doc.uuid().to_string();
    let wanted = uuid::Uuid::parse_str(&event)
        .map(|u| u.to_string())
        .unwrap_or(event.clone());
    let found = entries_of(&state, &node_uuid)
        .await?
        .into_iter()
        .find(|e| e["uuid"].as_str() == Some(wanted.as_str()))
        .ok_or_else(|| {
            ApiError::not_found(format!("Node history record {event} could not be found."))
        })?;
    Ok(Json(entry(&found, &node_uuid, &base, DETAIL)))
}
