//! Links in Ironic's shape: `self` under `/v1`, `bookmark` without it, based on
//! `[api] public_endpoint` or the request's own host; and the answers that
//! point at a resource with `Location` (201 Created, 202 Accepted).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::convert::Infallible;

/// The public base URL of this request (no trailing slash).
#[derive(Debug, Clone)]
pub struct BaseUrl(pub String);

/// Set by the router from `[api] public_endpoint`.
#[derive(Debug, Clone)]
pub struct PublicEndpoint(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for BaseUrl {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        if let Some(PublicEndpoint(Some(url))) = parts.extensions.get::<PublicEndpoint>() {
            return Ok(BaseUrl(url.clone()));
        }
        let host = parts
            .headers
            .get(axum::http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("127.0.0.1:6385");
        Ok(BaseUrl(format!("http://{host}")))
    }
}

impl BaseUrl {
    /// `[self, bookmark]` for `resource/args`.
    pub fn links(&self, path: &str) -> Value {
        json!([
            {"href": format!("{}/v1/{path}", self.0), "rel": "self"},
            {"href": format!("{}/{path}", self.0), "rel": "bookmark"},
        ])
    }

    /// `{base}/v1/{path}`.
    pub fn v1(&self, path: &str) -> String {
        format!("{}/v1/{path}", self.0)
    }
}

/// Sets `Location`. A location that cannot be a header value (only a
/// misconfigured `public_endpoint` makes one) is left out rather than turned
/// into an error: the resource exists by now, and a failure would invite a
/// retry that conflicts with it.
fn with_location(mut res: Response, location: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res
}

/// A 201 with the created resource and its `Location` (`{base}/v1/{path}`).
pub fn created(base: &BaseUrl, path: &str, body: Value) -> Response {
    with_location(
        (StatusCode::CREATED, Json(body)).into_response(),
        &base.v1(path),
    )
}

/// A 202 with no body; `Location` where Ironic sets one.
pub fn accepted(location: Option<String>) -> Response {
    let res = StatusCode::ACCEPTED.into_response();
    match location {
        Some(l) => with_location(res, &l),
        None => res,
    }
}
