//! Request bodies: JSON parsed into the handler's type, every failure a 400 in
//! Ironic's format (Ironic itself answers malformed JSON with a 500), and an
//! oversized body a 413. Every body the API takes comes through [`JsonBody`],
//! so the limits of `domain::limits` hold for all of them: no body nested
//! deeper than `MAX_JSON_DEPTH` levels, no NUL in any string.

use super::error::ApiError;
use crate::domain::limits;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The largest request body accepted (Ironic's default `[api] max_request_body_size`).
pub const MAX_BODY: usize = 112 * 1024;

/// A JSON body, as a raw value; handlers validate it field by field so each
/// error names the field as Ironic does. An empty body reads as `{}`, as in
/// Ironic's web framework (so an empty POST is "'driver' is a required
/// property", and `PUT …/maintenance` needs no body).
pub struct JsonBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("Request body is larger than {MAX_BODY} bytes."),
                )
            } else {
                ApiError::bad_request(format!("Could not read the request body: {e}"))
            }
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonBody(Value::Object(serde_json::Map::new())));
        }
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::bad_request(format!("Malformed JSON in the request body: {e}"))
        })?;
        if let Some(problem) = limits::too_deep("The request body", &value) {
            return Err(ApiError::bad_request(problem));
        }
        if limits::has_nul(&value) {
            return Err(ApiError::bad_request(
                "The request body holds a NUL character (\\u0000) in a string or key; no field may contain one.",
            ));
        }
        Ok(JsonBody(value))
    }
}

/// Decodes a value into a typed body, naming the problem as a schema error.
pub fn decode<T: DeserializeOwned>(what: &str, value: Value) -> Result<T, ApiError> {
    serde_json::from_value(value)
        .map_err(|e| ApiError::bad_request(format!("Schema error for {what}: {e}")))
}
