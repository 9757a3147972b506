//! Microversion negotiation (`X-OpenStack-Ironic-API-Version`,
//! `OpenStack-API-Version: baremetal X.Y`).
//!
//! No header means the minimum, 1.1 (as Ironic); `latest` means the maximum. The
//! negotiated version travels to handlers as a request extension, and every
//! answer carries the minimum, maximum and negotiated versions in headers.

use super::error::ApiError;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The lowest version ironledger serves.
pub const MIN_MINOR: u32 = 1;
/// The highest: every node field up to it is returned, and node history
/// (1.78) and the deploy/undeploy verbs (1.73) are available.
pub const MAX_MINOR: u32 = 78;

pub const HEADER: &str = "X-OpenStack-Ironic-API-Version";
pub const MIN_HEADER: &str = "X-OpenStack-Ironic-API-Minimum-Version";
pub const MAX_HEADER: &str = "X-OpenStack-Ironic-API-Maximum-Version";

/// A negotiated API version (major is always 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub minor: u32,
}

impl Version {
    pub const MIN: Version = Version { minor: MIN_MINOR };
    pub const MAX: Version = Version { minor: MAX_MINOR };

    /// Whether this version includes what `1.minor` added.
    pub fn at_least(self, minor: u32) -> bool {
        self.minor >= minor
    }

    pub fn header_value(self) -> String {
        format!("1.{}", self.minor)
    }
}

fn range() -> String {
    format!("[1.{MIN_MINOR}, 1.{MAX_MINOR}]")
}

/// A header's text. Bytes that are not visible ASCII are kept (replaced by
/// U+FFFD when not UTF-8) rather than dropped, so that such a header is a
/// malformed version (406, as Ironic answers it), not a missing one (1.1).
fn text(v: &HeaderValue) -> String {
    String::from_utf8_lossy(v.as_bytes()).into_owned()
}

/// Reads the requested version from the headers.
fn requested(headers: &HeaderMap) -> Option<String> {
    for v in headers.get_all("openstack-api-version") {
        for part in text(v).split(',') {
            let mut words = part.split_whitespace();
            if words
                .next()
                .is_some_and(|w| w.eq_ignore_ascii_case("baremetal"))
            {
                if let Some(v) = words.next() {
                    return Some(v.to_string());
                }
            }
        }
    }
    headers.get(HEADER).map(|v| text(v).trim().to_string())
}

/// Negotiates; the error carries whether the min/max headers apply.
fn negotiate(headers: &HeaderMap) -> Result<Version, (ApiError, bool)> {
    let Some(raw) = requested(headers) else {
        return Ok(Version::MIN);
    };
    if raw.eq_ignore_ascii_case("latest") {
        return Ok(Version::MAX);
    }
    let parsed = raw
        .split_once('.')
        .and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)));
    let Some((major, minor)) = parsed else {
        return Err((
            ApiError::framework(
                StatusCode::NOT_ACCEPTABLE,
                format!("Invalid value for {HEADER} header"),
            ),
            false,
        ));
    };
    if major != 1 {
        return Err((
            ApiError::framework(
                StatusCode::NOT_ACCEPTABLE,
                format!(
                    "Mutually exclusive versions requested. Version {major}.{minor} requested but not supported by this service. The supported version range is: {}.",
                    range()
                ),
            ),
            true,
        ));
    }
    if !(MIN_MINOR..=MAX_MINOR).contains(&minor) {
        return Err((
            ApiError::framework(
                StatusCode::NOT_ACCEPTABLE,
                format!(
                    "Version 1.{minor} was requested but the minor version is not supported by this service. The supported version range is: {}.",
                    range()
                ),
            ),
            true,
        ));
    }
    Ok(Version { minor })
}

fn range_headers(res: &mut Response) {
    let h = res.headers_mut();
    h.insert(
        MIN_HEADER,
        HeaderValue::from_str(&format!("1.{MIN_MINOR}")).expect("ascii"),
    );
    h.insert(
        MAX_HEADER,
        HeaderValue::from_str(&format!("1.{MAX_MINOR}")).expect("ascii"),
    );
}

/// Middleware: negotiates the version for every request.
pub async fn negotiate_layer(mut req: Request, next: Next) -> Response {
    // Ironic's root controller words its 406 as a handler fault, `/v1` as the
    // web framework does.
    let at_root = req.uri().path() == "/";
    match negotiate(req.headers()) {
        Ok(version) => {
            req.extensions_mut().insert(version);
            let mut res = next.run(req).await;
            if res
                .extensions()
                .get::<super::error::NoVersionHeaders>()
                .is_some()
            {
                return res;
            }
            range_headers(&mut res);
            res.headers_mut().insert(
                HEADER,
                HeaderValue::from_str(&version.header_value()).expect("ascii"),
            );
            res
        }
        Err((err, with_range)) => {
            let err = if at_root { err.as_fault() } else { err };
            let mut res = err.into_response();
            if with_range {
                range_headers(&mut res);
            }
            res
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Version {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Version>()
            .copied()
            .unwrap_or(Version::MIN))
    }
}

/// Ironic's bare 406 (`NotAcceptable` with its default text): something (a
/// field, a filter, a verb) is newer than the negotiated version.
pub fn not_acceptable() -> ApiError {
    ApiError::not_acceptable("Request not acceptable.")
}

/// The 406 Ironic words with the version a filter needs.
pub fn needs_version(minor: u32) -> ApiError {
    ApiError::not_acceptable(format!(
        "Request not acceptable. The minimal required API version should be 1.{minor}"
    ))
}

/// Refuses an endpoint newer than the negotiated version with Ironic's 404.
pub fn require(version: Version, minor: u32) -> Result<(), ApiError> {
    if version.at_least(minor) {
        Ok(())
    } else {
        Err(ApiError::not_in_version())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(name: &str, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
        h
    }

    #[test]
    fn negotiation() {
        assert_eq!(negotiate(&HeaderMap::new()).unwrap(), Version::MIN);
        assert_eq!(negotiate(&headers(HEADER, "LATEST")).unwrap(), Version::MAX);
        assert_eq!(
            negotiate(&headers(HEADER, "1.33")).unwrap(),
            Version { minor: 33 }
        );
        assert_eq!(
            negotiate(&headers("OpenStack-API-Version", "baremetal 1.40")).unwrap(),
            Version { minor: 40 }
        );
        let (e, with_range) = negotiate(&headers(HEADER, "abc")).unwrap_err();
        assert_eq!(e.message, format!("Invalid value for {HEADER} header"));
        assert!(!with_range);
        let (e, with_range) = negotiate(&headers(HEADER, "2.1")).unwrap_err();
        assert!(e
            .message
            .starts_with("Mutually exclusive versions requested. Version 2.1"));
        assert!(with_range);
        let (e, _) = negotiate(&headers(HEADER, "1.200")).unwrap_err();
        assert!(e
            .message
            .starts_with("Version 1.200 was requested but the minor version is not supported"));
        let (e, _) = negotiate(&headers(HEADER, "1.0")).unwrap_err();
        assert_eq!(e.status, StatusCode::NOT_ACCEPTABLE);
    }
}
