//! What every handler shares: the state ([`AppState`]), and what a request
//! carries into the events it records: its id ([`RequestId`], set by
//! [`request::layer`](super::request::layer)) and the caller ([`Who`]: the
//! authenticated actor, the `X-Ironledger-Reason`, the idempotency key).

use super::{auth, error, idempotency};
use crate::config::Config;
use crate::engine::{Engine, Meta};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use std::sync::Arc;

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    pub config: Arc<Config>,
}

/// The request's id, as answered in `x-openstack-request-id`.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Who is asking and the request id: the metadata every event of this request carries.
pub struct Who(pub Meta);

/// The longest `X-Ironledger-Reason` accepted, in characters: the reason is
/// stored in every event the request records, and shown by the audit tools.
pub const MAX_REASON_CHARS: usize = 255;

pub const REASON_HEADER: &str = "X-Ironledger-Reason";

/// The request's `X-Ironledger-Reason`: UTF-8 text of at most
/// [`MAX_REASON_CHARS`] characters without control characters (a tab, a line
/// break or an escape would garble the logs and the audit tools' tables), or
/// a 400 that says which rule it breaks (never quoting the value).
fn reason(parts: &Parts) -> Result<Option<String>, error::ApiError> {
    let Some(raw) = parts.headers.get(REASON_HEADER) else {
        return Ok(None);
    };
    let bad =
        |why: &str| error::ApiError::bad_request(format!("Invalid {REASON_HEADER} header: {why}."));
    let text = std::str::from_utf8(raw.as_bytes()).map_err(|_| bad("it is not UTF-8"))?;
    if text.chars().count() > MAX_REASON_CHARS {
        return Err(bad(&format!(
            "it is longer than {MAX_REASON_CHARS} characters"
        )));
    }
    if text.chars().any(char::is_control) {
        return Err(bad("it holds a control character"));
    }
    Ok(Some(text.to_string()))
}

impl<S: Send + Sync> FromRequestParts<S> for Who {
    type Rejection = error::ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let actor = parts
            .extensions
            .get::<auth::Caller>()
            .map(|c| c.0.clone())
            .unwrap_or_else(|| "anonymous".into());
        let request_id = parts.extensions.get::<RequestId>().map(|r| r.0.clone());
        Ok(Who(Meta {
            actor,
            reason: reason(parts)?,
            request_id,
            project: None,
            idempotency_key: parts
                .extensions
                .get::<idempotency::IdempotencyKey>()
                .map(|k| k.0.clone()),
        }))
    }
}
