//! `GET /metrics`: the Prometheus text exposition of [`crate::metrics`].
//!
//! Behind the API's authentication (Prometheus sends `basic_auth` from its
//! scrape configuration). A scrape reads the store for the figures that
//! belong to the whole deployment (head, projection lag, nodes by state);
//! if the store does not answer, the process's own counters are still
//! served, `ironledger_store_up` reads 0 and the store readings keep their
//! last values: a scrape never fails because the database does.

use crate::api::AppState;
use crate::effects::process_manager::CHECKPOINT as PM_MODEL;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

/// The content type of Prometheus's text format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let m = crate::metrics::metrics();
    let mut models = state.engine.projector().names();
    models.push(PM_MODEL);
    let read = m.read_store(state.engine.store().as_ref(), &models).await;
    if let Err(e) = &read {
        tracing::warn!(error = %e, "metrics: cannot read the store");
        m.store_error(e.kind());
    }
    m.store_up(read.is_ok());
    m.events_appended(state.engine.events_appended());
    ([(header::CONTENT_TYPE, TEXT_FORMAT)], m.encode())
}
