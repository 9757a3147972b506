//! `Idempotency-Key`: a write a client retries is done once.
//!
//! A client that loses the answer to a write (a timeout, a cut connection, a
//! crashed client) cannot tell whether the write happened; retrying a `POST
//! /v1/nodes` blindly may enrol the node twice. A client that sends
//! `Idempotency-Key: <key>` with a write (any `POST`, `PUT`, `PATCH` or
//! `DELETE`) gets, for every repeat of that request with the same key within
//! `[api] idempotency_retention` (a day by default), the answer the first one
//! got, and the repeat writes nothing. The rules:
//!
//! - **Same key, same request** (method, path and query, API version, body):
//!   the first answer, status, headers and body, marked
//!   `Idempotent-Replayed: true`. If the first is still being served, the
//!   repeat waits for it (up to [`WAIT_FOR_FIRST`]) and answers what it
//!   answered; past that, a 409 says it is still in progress.
//! - **Same key, another request**: 422, and nothing runs: the key was
//!   reused by mistake, and running the request could be the very double
//!   write the key is meant to prevent.
//! - **A first answer that is a server error (5xx)** is not kept: nothing was
//!   written (the store refused the transaction), and a retry runs again.
//!
//! Keys are per caller (two users' equal keys are different keys) and are
//! kept in the store (`idempotency_keys`, in the same database as the log),
//! so the guarantee holds across restarts and across ironledger processes
//! sharing one PostgreSQL. The key also goes into the metadata of every event
//! the request records (`idempotency_key`), so the history tells which
//! writes were retried.
//!
//! A request whose client goes away is still served to its end (the
//! listener, `crate::http::server`, runs each request in a task of its own),
//! so its answer is kept for the retry. What is not covered: a
//! server that dies while serving the first request leaves its key
//! unanswered; a repeat then gets the 409 until the retention window ends,
//! never a second write (`ironledger events --node …` tells whether the first
//! one landed).

use super::auth::Caller;
use super::body::MAX_BODY;
use super::error::ApiError;
use crate::store::KeyState;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::time::Duration;

pub const HEADER: &str = "idempotency-key";

/// The request's key, as the layer read and checked it (a request
/// extension: the events the request records carry it).
#[derive(Clone, Debug)]
pub struct IdempotencyKey(pub String);
/// Marks an answer that is the recorded answer of an earlier request.
pub const REPLAYED: &str = "idempotent-replayed";
/// The longest key accepted (a UUID is 36; Stripe allows 255).
pub const MAX_KEY: usize = 255;
/// How long a repeat waits for the first request to be answered.
pub const WAIT_FOR_FIRST: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(50);

/// What the state the layer needs: the store and the retention window.
#[derive(Clone)]
pub struct Keys {
    pub store: std::sync::Arc<dyn crate::store::LogStore>,
    pub retention: Duration,
}

/// The request's key: printable ASCII without spaces at either end, at most
/// [`MAX_KEY`] characters, or a 400 that says which rule it breaks.
pub fn parse_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(raw) = headers.get(HEADER) else {
        return Ok(None);
    };
    let bad = |why: &str| ApiError::bad_request(format!("Invalid Idempotency-Key header: {why}."));
    let text = raw.to_str().map_err(|_| bad("it is not printable ASCII"))?;
    if text.is_empty() {
        return Err(bad("it is empty"));
    }
    if text.len() > MAX_KEY {
        return Err(bad(&format!("it is longer than {MAX_KEY} characters")));
    }
    if !text.chars().all(|c| c.is_ascii_graphic() || c == ' ') || text.trim() != text {
        return Err(bad("it holds a character other than printable ASCII"));
    }
    Ok(Some(text.to_string()))
}

fn is_write(method: &Method) -> bool {
    matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    )
}

/// The request as far as its answer depends on it.
fn fingerprint(method: &Method, uri: &str, version: Option<&HeaderValue>, body: &[u8]) -> String {
    let mut h = Sha256::new();
    for part in [
        method.as_str().as_bytes(),
        uri.as_bytes(),
        version.map_or(&b""[..], HeaderValue::as_bytes),
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    h.update(body);
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Headers of an answer that are not kept: the request id belongs to each
/// request, the length is recomputed.
fn kept(name: &HeaderName) -> bool {
    !matches!(
        name.as_str(),
        "x-openstack-request-id" | "openstack-request-id" | "content-length"
    )
}

/// An answer as stored.
fn record(status: StatusCode, headers: &HeaderMap, body: &Bytes) -> Option<Value> {
    let text = std::str::from_utf8(body).ok()?;
    let headers: Vec<Value> = headers
        .iter()
        .filter(|(n, _)| kept(n))
        .filter_map(|(n, v)| Some(json!([n.as_str(), v.to_str().ok()?])))
        .collect();
    Some(json!({"status": status.as_u16(), "headers": headers, "body": text}))
}

/// A stored answer, replayed.
fn replay(answer: &Value) -> Response {
    let status = answer["status"]
        .as_u64()
        .and_then(|s| StatusCode::from_u16(s as u16).ok())
        .unwrap_or(StatusCode::OK);
    let mut res = Response::new(Body::from(
        answer["body"].as_str().unwrap_or_default().to_string(),
    ));
    *res.status_mut() = status;
    for pair in answer["headers"].as_array().into_iter().flatten() {
        let (Some(n), Some(v)) = (pair[0].as_str(), pair[1].as_str()) else {
            continue;
        };
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(n), HeaderValue::try_from(v)) {
            res.headers_mut().append(n, v);
        }
    }
    res.headers_mut()
        .insert(REPLAYED, HeaderValue::from_static("true"));
    res
}

fn mismatch() -> Response {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "This Idempotency-Key was already used for a different request (another method, path, \
         API version or body). Use a new key for a new request.",
    )
    .into_response()
}

fn in_progress() -> Response {
    let mut res = ApiError::conflict(
        "A request with this Idempotency-Key is still in progress, or was interrupted before it \
         was answered; retry later, or check the node's history for its effect.",
    )
    .into_response();
    res.headers_mut()
        .insert("retry-after", HeaderValue::from_static("1"));
    res
}

/// The layer (inside authentication, so the caller is known).
pub async fn layer(State(keys): State<Keys>, req: Request, next: Next) -> Response {
    if !is_write(req.method()) {
        return next.run(req).await;
    }
    let key = match parse_key(req.headers()) {
        Ok(Some(k)) => k,
        Ok(None) => return next.run(req).await,
        Err(e) => return e.into_response(),
    };
    let caller = req
        .extensions()
        .get::<Caller>()
        .map_or("anonymous", |c| c.0.as_str())
        .to_string();
    let (parts, body) = req.into_parts();
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("Request body is larger than {MAX_BODY} bytes."),
        )
        .into_response()
    };
    if http_body::Body::size_hint(&body)
        .upper()
        .is_some_and(|n| n > MAX_BODY as u64)
    {
        return too_large();
    }
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(e) if e.to_string().contains("length limit") => return too_large(),
        // The client went away before its body arrived: nothing to do.
        Err(e) => {
            return ApiError::bad_request(format!("The request body could not be read: {e}"))
                .into_response()
        }
    };
    let uri = parts
        .uri
        .path_and_query()
        .map_or(parts.uri.path(), |p| p.as_str())
        .to_string();
    let print = fingerprint(
        &parts.method,
        &uri,
        parts.headers.get("x-openstack-ironic-api-version"),
        &body,
    );
    // The caller's name cannot hold a line break: one key space per caller.
    let stored_key = format!("{caller}\n{key}");
    let mut req = Request::from_parts(parts, Body::from(body));
    req.extensions_mut().insert(IdempotencyKey(key.clone()));
    once(keys, stored_key, key, print, req, next).await
}

/// Takes the key and serves the request, or answers what the key holds.
async fn once(
    keys: Keys,
    stored_key: String,
    key: String,
    print: String,
    req: Request,
    next: Next,
) -> Response {
    let retention = keys.retention.as_millis() as i64;
    let deadline = tokio::time::Instant::now() + WAIT_FOR_FIRST;
    loop {
        let now = now_ms();
        let state = keys
            .store
            .take_idempotency_key(&stored_key, &print, now, now - retention)
            .await;
        match state {
            Err(e) => return ApiError::from(e).into_response(),
            Ok(KeyState::Taken) => break,
            Ok(KeyState::Mismatch) => {
                tracing::info!(idempotency_key = %key, "idempotency key reused for another request");
                return mismatch();
            }
            Ok(KeyState::Answered(answer)) => {
                tracing::info!(idempotency_key = %key, "repeat of an answered request: replayed");
                return replay(&answer);
            }
            Ok(KeyState::Pending { .. }) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(POLL).await;
            }
            Ok(KeyState::Pending { .. }) => return in_progress(),
        }
    }
    let res = next.run(req).await;
    let (parts, body) = res.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let answer = if parts.status.is_server_error() {
        None
    } else {
        record(parts.status, &parts.headers, &body)
    };
    if let Err(e) = keys
        .store
        .settle_idempotency_key(&stored_key, answer.as_ref())
        .await
    {
        tracing::warn!(error = %e, "cannot record the answer of an idempotent request");
    }
    Response::from_parts(parts, Body::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(HEADER, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn keys_are_printable_ascii_of_bounded_length() {
        assert_eq!(parse_key(&HeaderMap::new()).unwrap(), None);
        assert_eq!(parse_key(&with("abc-1")).unwrap().as_deref(), Some("abc-1"));
        assert!(parse_key(&with("")).is_err());
        assert!(parse_key(&with(&"k".repeat(MAX_KEY + 1))).is_err());
        assert!(parse_key(&with(" padded")).is_err());
        assert!(parse_key(&with("tab\there")).is_err());
    }

    #[test]
    fn the_fingerprint_covers_method_path_version_and_body() {
        let v = HeaderValue::from_static("1.72");
        let base = fingerprint(&Method::POST, "/v1/nodes", Some(&v), b"{}");
        assert_eq!(
            base,
            fingerprint(&Method::POST, "/v1/nodes", Some(&v), b"{}")
        );
        assert_ne!(
            base,
            fingerprint(&Method::PUT, "/v1/nodes", Some(&v), b"{}")
        );
        assert_ne!(
            base,
            fingerprint(&Method::POST, "/v1/ports", Some(&v), b"{}")
        );
        assert_ne!(base, fingerprint(&Method::POST, "/v1/nodes", None, b"{}"));
        assert_ne!(
            base,
            fingerprint(&Method::POST, "/v1/nodes", Some(&v), b"{ }")
        );
        // Lengths are framed: moving a byte between parts changes it.
        assert_ne!(
            fingerprint(&Method::POST, "/v1/nodes", None, b"x"),
            fingerprint(&Method::POST, "/v1/nodesx", None, b"")
        );
    }

    #[test]
    fn a_recorded_answer_replays_as_it_was_without_the_request_id() {
        let mut h = HeaderMap::new();
        h.insert("content-type", HeaderValue::from_static("application/json"));
        h.insert("location", HeaderValue::from_static("http://x/v1/nodes/1"));
        h.insert("x-openstack-request-id", HeaderValue::from_static("req-1"));
        let rec = record(StatusCode::CREATED, &h, &Bytes::from_static(b"{\"a\":1}")).unwrap();
        let res = replay(&rec);
        assert_eq!(res.status(), StatusCode::CREATED);
        assert_eq!(res.headers()["location"], "http://x/v1/nodes/1");
        assert_eq!(res.headers()[REPLAYED], "true");
        assert!(res.headers().get("x-openstack-request-id").is_none());
    }
}
