//! The HTTP service: the Ironic v1 API ([`crate::api`]) and, beside it,
//! `GET /health`, `GET /metrics` (Prometheus), the event feed (`/feed`), the
//! timeline pages (`/ui/`) and the boot files.

pub mod deadline;
pub mod feed;
pub mod health;
pub mod metrics;
pub mod server;
pub mod ui;

use crate::effects::http_root::HttpRoot;
use axum::extract::{Path, State};
use axum::http::header;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::response::Response;
use axum::routing::get;
use axum::Router;

pub use crate::api::AppState;

/// Health and the HTTP boot root (no auth, no version negotiation: machines
/// fetch their iPXE scripts here), and the API.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health::health))
        .route("/boot/{*path}", get(boot_file))
        .with_state(state.clone())
        .merge(crate::api::router_with(state, own_routes()))
}

/// ironledger's own endpoints beside Ironic's, behind the API's
/// authentication.
fn own_routes() -> Router<AppState> {
    Router::new()
        .route("/metrics", get(metrics::metrics))
        .route("/feed", get(feed::page))
        .route("/feed/stream", get(feed::stream))
        .route("/ui", get(ui::index))
        .route("/ui/", get(ui::index))
        .route("/ui/nodes/{node}", get(ui::node))
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
