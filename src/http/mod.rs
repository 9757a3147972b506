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

pub use crate::api::AppState;

/// Health and the HTTP boot root (no auth, no version negotiation: machines
/// fetch their iPXE scripts here), and the API.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
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
