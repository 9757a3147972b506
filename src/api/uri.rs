//! The request URI, checked before any handler sees it.
//!
//! A percent-encoded NUL (`%00`) in a path segment or a query value would
//! reach the stores as part of an identifier, a name or a filter. PostgreSQL
//! cannot hold U+0000 in text and fails the whole query (a 500), SQLite would
//! just find nothing: so that both answer alike, and as the request deserves,
//! a URI holding one is refused with a 400 here, once for every endpoint.
//! (hyper already refuses a raw NUL byte in the request line and headers.)

use super::error::ApiError;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Whether the URI (path or query) holds a percent-encoded NUL.
fn has_encoded_nul(s: &str) -> bool {
    s.as_bytes()
        .windows(3)
        .any(|w| w[0] == b'%' && w[1] == b'0' && w[2] == b'0')
}

/// Middleware: a 400 in Ironic's format for a URI with `%00`.
pub async fn refuse_nul(req: Request, next: Next) -> Response {
    let uri = req.uri();
    if has_encoded_nul(uri.path()) || uri.query().is_some_and(has_encoded_nul) {
        return ApiError::bad_request(
            "The request URI holds a NUL character (%00); no identifier or query value may contain one.",
        )
        .into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_only_an_encoded_nul() {
        assert!(has_encoded_nul("/v1/nodes/%00"));
        assert!(has_encoded_nul("name=a%00b"));
        assert!(!has_encoded_nul("/v1/nodes/%20%100"));
        assert!(!has_encoded_nul("limit=100"));
    }
}
