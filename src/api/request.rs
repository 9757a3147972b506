//! What every request goes through first: its id, its span, its line in the
//! log and its count in `/metrics`.
//!
//! **The request id.** A client may send `X-OpenStack-Request-Id` of the
//! form `req-<uuid>` (what OpenStack services and clients generate); it is
//! taken as this request's id, so one id follows a request from the client
//! through ironledger's logs, the events it records and their history. Any
//! other value is ignored (it would let a client write arbitrary text into
//! logs) and an id is generated. The answer carries the id in
//! `X-OpenStack-Request-Id` and `OpenStack-Request-Id`. (Ironic generates an
//! id of its own every time and keeps a valid incoming one as the "global"
//! request id of its logs; ironledger has one id, the caller's when it gave
//! one.)
//!
//! **The span.** `request{method, route, request_id, node}`: `route` is the
//! route template (`/v1/nodes/{node}/states/provision`), `node` the node
//! segment as the client wrote it (a UUID or a name) when the route has one.
//! Every line logged while the request is served (the commands it runs
//! included) carries these fields; the request ends with one line of its
//! status and duration.

use super::RequestId;
use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use std::time::Instant;
use tracing::Instrument;

pub const REQUEST_ID_HEADER: &str = "x-openstack-request-id";

/// The route label of a request no route matched (so that unknown paths
/// cannot create series in `/metrics`).
const UNMATCHED: &str = "unmatched";

/// The caller's request id, if it has the form `req-<uuid>`.
fn inbound_id(req: &Request) -> Option<String> {
    let text = req.headers().get(REQUEST_ID_HEADER)?.to_str().ok()?;
    let uuid = text.strip_prefix("req-")?;
    // Only the hyphenated form: what clients generate, and what is safe to log.
    (uuid.len() == 36 && uuid::Uuid::try_parse(uuid).is_ok()).then(|| text.to_ascii_lowercase())
}

/// The segment of `path` that stands where `route` has `{node}`.
fn node_segment<'a>(route: &str, path: &'a str) -> Option<&'a str> {
    let at = route.split('/').position(|seg| seg == "{node}")?;
    path.split('/').nth(at).filter(|s| !s.is_empty())
}

/// The middleware (the outermost layer of the API).
pub async fn layer(mut req: Request, next: Next) -> Response {
    let start = Instant::now();
    let id = inbound_id(&req).unwrap_or_else(|| format!("req-{}", uuid::Uuid::new_v4()));
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str)
        .to_string();
    let method = req.method().as_str().to_string();
    let span = tracing::info_span!(
        "request",
        method = %method,
        route = %route,
        request_id = %id,
        node = tracing::field::Empty
    );
    if let Some(node) = node_segment(&route, req.uri().path()) {
        span.record("node", node);
    }
    req.extensions_mut().insert(RequestId(id.clone()));
    let mut res = next.run(req).instrument(span.clone()).await;
    let took = start.elapsed();
    let status = res.status().as_u16();
    span.in_scope(|| tracing::info!(status, ms = crate::telemetry::millis(took), "answered"));
    crate::metrics::metrics().http(&route, &method, status, took);
    let v = HeaderValue::from_str(&id).expect("a request id is ASCII");
    res.headers_mut().insert(REQUEST_ID_HEADER, v.clone());
    res.headers_mut().insert("openstack-request-id", v);
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_node_segment_is_read_where_the_route_has_it() {
        assert_eq!(
            node_segment(
                "/v1/nodes/{node}/states/provision",
                "/v1/nodes/n1/states/provision"
            ),
            Some("n1")
        );
        assert_eq!(node_segment("/nodes/{node}", "/nodes/abc"), Some("abc"));
        assert_eq!(node_segment("/v1/ports/{port}", "/v1/ports/x"), None);
        assert_eq!(node_segment(UNMATCHED, "/nope"), None);
    }

    #[test]
    fn only_a_request_id_of_the_openstack_form_is_taken() {
        let with = |v: &str| {
            Request::builder()
                .header(REQUEST_ID_HEADER, v)
                .body(axum::body::Body::empty())
                .unwrap()
        };
        let good = "req-6f1c2a9e-3b4d-4e5f-8a7b-9c0d1e2f3a4b";
        assert_eq!(inbound_id(&with(good)).as_deref(), Some(good));
        assert_eq!(inbound_id(&with("req-not-a-uuid")), None);
        assert_eq!(
            inbound_id(&with("6f1c2a9e-3b4d-4e5f-8a7b-9c0d1e2f3a4b")),
            None
        );
        assert_eq!(
            inbound_id(&with("req-6f1c2a9e3b4d4e5f8a7b9c0d1e2f3a4b")),
            None
        );
    }
}
