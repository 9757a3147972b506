//! Links in Ironic's shape: `self` under `/v1`, `bookmark` without it, based on
//! `[api] public_endpoint` or the request's own host.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
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
