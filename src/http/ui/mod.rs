//! The timeline pages: `GET /ui/` (the nodes, a page at a time) and
//! `GET /ui/nodes/{node}` (one node's whole history as a timeline), for
//! someone who has never seen the API.
//!
//! Read from the same read models as the API (`nodes` for the node now,
//! `node_history` for its past), so a page costs one node's history, and the
//! index one page of nodes. Behind the API's authentication: with
//! `http_basic`, a browser asks for the user and password.

mod page;
pub mod timeline;

use crate::api::error::ApiResult;
use crate::api::listing::Params;
use crate::api::AppState;
use crate::projections::nodes::{self, NodeFilter};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

/// Nodes on one page of the index.
const INDEX_PAGE: u32 = 100;

fn not_found(what: &str) -> Response {
    let body = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Not found</title></head>\
         <body><p>{} could not be found. <a href=\"/ui/\">All nodes</a></p></body></html>",
        page::escape(what)
    );
    (StatusCode::NOT_FOUND, Html(body)).into_response()
}

/// `GET /ui/`.
pub async fn index(State(state): State<AppState>, params: Params) -> ApiResult<Response> {
    params.only(&["marker"])?;
    let store = state.engine.store().as_ref();
    let marker = match params.get("marker") {
        None => None,
        Some(m) => match nodes::get(store, m).await? {
            Some(row) => Some(row),
            None => return Ok(not_found(&format!("Node {m}"))),
        },
    };
    let rows = nodes::summaries(
        store,
        &NodeFilter::default(),
        None,
        false,
        marker.as_ref(),
        INDEX_PAGE,
    )
    .await?;
    let listed: Vec<page::Listed<'_>> = rows
        .iter()
        .map(|r| page::Listed {
            uuid: r.uuid(),
            name: r.name(),
            provision_state: r.provision_state(),
            power_state: r.power_state(),
            maintenance: r.maintenance(),
        })
        .collect();
    let next = (rows.len() == INDEX_PAGE as usize)
        .then(|| rows.last().map(|r| format!("/ui/?marker={}", r.uuid())))
        .flatten();
    Ok(Html(page::index(&listed, next.as_deref())).into_response())
}

/// `GET /ui/nodes/{node}`: a UUID (a deleted node's too) or a name.
pub async fn node(State(state): State<AppState>, Path(ident): Path<String>) -> ApiResult<Response> {
    let store = state.engine.store().as_ref();
    let Some(uuid) = crate::api::lookup::node_uuid(store, &ident).await? else {
        return Ok(not_found(&format!("Node {ident}")));
    };
    let row = nodes::get(store, &uuid).await?;
    let entries = crate::projections::history_of(store, &uuid).await?;
    if row.is_none() && entries.is_empty() {
        return Ok(not_found(&format!("Node {ident}")));
    }
    let now = row.as_ref().map(|r| {
        let n = &r.node;
        page::Now {
            name: n.name.as_deref(),
            driver: &n.driver,
            provision_state: n.provision_state.map(|s| s.as_str()),
            target_provision_state: n.target_provision_state.map(|s| s.as_str()),
            power_state: n.power_state.as_deref(),
            maintenance: n
                .maintenance
                .then(|| n.maintenance_reason.as_deref().unwrap_or("no reason given")),
            last_error: n.last_error.as_deref(),
        }
    });
    Ok(Html(page::node(&uuid, now.as_ref(), &entries)).into_response())
}
