//! The Ironic-compatible v1 API.
//!
//! Handlers read from the projections (read models) and write by sending
//! commands to the engine; when a command returns, its effects are readable.
//! Everything an operator's `baremetal` client sends is answered the way
//! Ironic answers it: microversions, error envelopes, status codes, links.
//!
//! | module | endpoints |
//! |---|---|
//! | [`root`] | `/`, `/v1` |
//! | [`nodes`] | `/v1/nodes…` (CRUD, states, provision, power, maintenance, validate) |
//! | [`ports`] | `/v1/ports…` |
//! | [`volume`] | `/v1/volume…`, `/v1/nodes/{node}/volume…` |
//!
//! What the resources share, so that a request is checked and answered in the
//! same words whichever endpoint it reaches:
//!
//! | module | what |
//! |---|---|
//! | [`listing`] | query parameters (`args` conversions), pagination, sorting, `fields` |
//! | [`schema`] | request bodies against Ironic's jsonschema schemas |
//! | [`patch`] | JSON patch documents: Ironic's schema, jsonpatch's application |
//! | [`pyfmt`] | Python's rendering of values in those messages |
//! | [`lookup`] | finding nodes by UUID or name, Ironic's identifier checks |
//! | [`links`] | links, and the 201/202 answers that carry `Location` |
//! | [`child_record`] | ports, connectors, targets: create checks, patch (and moving to another node), removal |
//! | [`state`] | [`AppState`], the request's id, the caller ([`Who`]): re-exported here |
//!
//! This module itself is the router: which resource answers which path,
//! and the layers every request passes (request id, authentication,
//! version negotiation, idempotency keys, URIs without NUL, the body limit).

pub mod auth;
pub mod body;
pub mod child_record;
pub mod error;
pub mod idempotency;
pub mod links;
pub mod listing;
pub mod lookup;
pub mod masking;
pub mod nodes;
pub mod openapi;
pub mod patch;
pub mod ports;
pub mod pyfmt;
pub mod request;
pub mod root;
pub mod schema;
pub mod state;
pub mod uri;
pub mod version;
pub mod volume;

pub use state::{AppState, RequestId, Who, MAX_REASON_CHARS, REASON_HEADER};

use axum::middleware;
use axum::routing::{get, MethodRouter};
use axum::Router;

/// Routes `path` and `path/`: Ironic's web framework treats a trailing slash
/// as the same resource (`GET /v1/volume/connectors/?node=x` is a list).
pub fn with_slash(r: Router<AppState>, path: &str, m: MethodRouter<AppState>) -> Router<AppState> {
    r.route(path, m.clone()).route(&format!("{path}/"), m)
}

/// The v1 resources, mounted both under `/v1` and at the root (Ironic routes a
/// path that does not start with `v1` into v1, which is what bookmark links use).
fn v1_routes() -> Router<AppState> {
    Router::new()
        .merge(nodes::routes())
        .merge(ports::routes())
        .merge(volume::routes())
}

/// The whole API.
pub fn router(state: AppState) -> Router {
    router_with(state, Router::new())
}

/// The API, with `extra` routes of ironledger's own (`/metrics`, `/feed`,
/// `/ui/`) served behind the same layers: request ids, authentication.
pub fn router_with(state: AppState, extra: Router<AppState>) -> Router {
    let keys = idempotency::Keys {
        store: state.engine.store().clone(),
        retention: state.config.api.idempotency_retention,
    };
    let authenticator = auth::Authenticator::new(
        state.config.auth.clone(),
        state.config.api.auth_throttle.clone(),
    );
    let public = links::PublicEndpoint(state.config.api.public_endpoint.clone());
    Router::new()
        .route("/", get(root::root))
        .route("/v1", get(root::v1).fallback(root::v1_method_not_allowed))
        .route("/v1/", get(root::v1).fallback(root::v1_method_not_allowed))
        .route("/v1/openapi.json", get(openapi::serve))
        .nest("/v1", v1_routes())
        .merge(v1_routes())
        .merge(extra)
        .fallback(root::not_found)
        .with_state(state)
        .layer(axum::extract::DefaultBodyLimit::max(body::MAX_BODY))
        .layer(middleware::from_fn(uri::refuse_nul))
        // Inside version negotiation (a replay gets this request's version
        // headers) and authentication (keys are per caller).
        .layer(middleware::from_fn_with_state(keys, idempotency::layer))
        .layer(middleware::from_fn(version::negotiate_layer))
        .layer(middleware::from_fn_with_state(authenticator, auth::layer))
        .layer(axum::Extension(public))
        .layer(middleware::from_fn(request::layer))
}
