//! The HTTP service: `GET /health` beside the Ironic v1 API ([`crate::api`]).

use crate::effects::http_root::HttpRoot;
use axum::extract::{Path, State};
use axum::http::header;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

pub mod deadline;
pub mod server;

pub use crate::api::AppState;

/// Health and the HTTP boot root (no auth, no version negotiation: machines
/// fetch their iPXE scripts here), and the API.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(public_health))
        .route("/boot/{*path}", get(boot_file))
        .with_state(state.clone())
        .merge(crate::api::router(state))
}

/// Serves a file of `[deploy] http_root` (`/boot/boot.ipxe`,
/// `/boot/pxelinux.cfg/<mac>`, …). Paths that leave the root are not found.
async fn boot_file(State(state): State<AppState>, Path(path): Path<String>) -> Response {
    let root = HttpRoot::new(state.config.http_root.clone());
    match root.resolve(&path).map(std::fs::read) {
        Some(Ok(bytes)) => {
            ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], bytes).into_response()
        }
        _ => (StatusCode::NOT_FOUND, "not found\n").into_response(),
    }
}

/// `/health` needs no credentials (load balancers probe it), so with
/// authentication on it shows only `{"status": …}` (and its status code):
/// the head, checkpoints and store are for authenticated tools and logs.
async fn public_health(state: State<AppState>) -> Response {
    let auth_on = state.config.auth != crate::config::AuthStrategy::NoAuth;
    let res = health(state).await.into_response();
    if !auth_on {
        return res;
    }
    let (parts, body) = res.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let status = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("status").cloned())
        .unwrap_or_else(|| json!("unavailable"));
    (parts.status, Json(json!({ "status": status }))).into_response()
}

/// Liveness and a glance at the log: the store answers, and how far each
/// projection has applied the feed.
async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let store = state.engine.store();
    let head = store.head().await;
    let checkpoints = state.engine.projector().checkpoints().await;
    match (head, checkpoints) {
        (Ok(head), Ok(checkpoints)) => (
            StatusCode::OK,
            Json(
                json!({"status": "ok", "store": store.backend(), "head": head, "projections": checkpoints}),
            ),
        ),
        (Err(e), _) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(
                json!({"status": "unavailable", "store": store.backend(), "error": e.to_string()}),
            ),
        ),
        (_, Err(e)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(
                json!({"status": "unavailable", "store": store.backend(), "error": e.to_string()}),
            ),
        ),
    }
}
