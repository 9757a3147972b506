//! The HTTP service: `GET /health` beside the Ironic v1 API ([`crate::api`]).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

pub use crate::api::AppState;

/// Health (no auth, no version negotiation) and the API.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .with_state(state.clone())
        .merge(crate::api::router(state))
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
