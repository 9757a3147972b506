//! Errors in Ironic's wire format.
//!
//! Every error response is JSON `{"error_message": "<string>"}` where the string
//! is itself JSON: `{"faultstring", "faultcode", "debuginfo"}` for errors raised
//! by the API's handlers, or `{"code", "title", "description"}` for the ones
//! Ironic's web framework produces (406 on version negotiation, unknown routes).
//! Clients (python-ironicclient) decode both.

use crate::domain::DomainError;
use crate::engine::EngineError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Style {
    /// `{"faultstring": …, "faultcode": …, "debuginfo": null}`
    Fault,
    /// `{"code": …, "title": …, "description": …}`
    Framework,
}

/// An error answer: a status and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    style: Style,
    /// Answered where Ironic answers before its version handling runs (unknown
    /// paths, endpoints newer than the requested version): no version headers.
    bare: bool,
}

/// Marks a response that must not carry the microversion headers.
#[derive(Debug, Clone, Copy)]
pub struct NoVersionHeaders;

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            style: Style::Fault,
            bare: false,
        }
    }

    /// An error as the web framework (not a handler) would phrase it.
    pub fn framework(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            style: Style::Framework,
            bare: false,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    pub fn not_acceptable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_ACCEPTABLE, message)
    }

    /// Ironic's `MalformedRequestURI`.
    pub fn malformed_uri() -> Self {
        Self::bad_request("Malformed request URI.")
    }

    /// The 404 Ironic gives for an endpoint newer than the requested version.
    pub fn not_in_version() -> Self {
        Self::not_found("The API is not supported for this version")
    }

    /// Answers without the microversion headers (see [`NoVersionHeaders`]).
    pub fn bare(mut self) -> Self {
        self.bare = true;
        self
    }

    /// The same error in the handlers' `faultstring` envelope.
    pub fn as_fault(mut self) -> Self {
        self.style = Style::Fault;
        self
    }

    /// Ironic's `InvalidInput` text.
    pub fn invalid_input(field: &str, value: &str, detail: &str) -> Self {
        let mut m = format!("Invalid input for field/attribute {field}. Value: '{value}'.");
        if !detail.is_empty() {
            m.push(' ');
            m.push_str(detail);
        }
        Self::bad_request(m)
    }

    /// The inner JSON string clients decode.
    pub fn inner(&self) -> String {
        let value = match self.style {
            Style::Fault => json!({
                "faultstring": self.message,
                "faultcode": if self.status.is_client_error() { "Client" } else { "Server" },
                "debuginfo": null,
            }),
            // Spelled as Ironic's framework writes it (Python's
            // `json.dumps`: this key order, `": "` and `", "`): clients that
            // find no `faultstring` print the string as it is.
            Style::Framework => {
                let text = |s: &str| serde_json::to_string(s).expect("a string serializes");
                return format!(
                    "{{\"code\": {}, \"title\": {}, \"description\": {}}}",
                    self.status.as_u16(),
                    text(self.status.canonical_reason().unwrap_or("")),
                    text(&self.message)
                );
            }
        };
        value.to_string()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(status = self.status.as_u16(), message = %self.message, "request failed");
        }
        let body = json!({ "error_message": self.inner() }).to_string();
        let mut res = (self.status, body).into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if self.bare {
            res.extensions_mut().insert(NoVersionHeaders);
        }
        res
    }
}

/// The HTTP status Ironic answers a refusal or failure with: the one place
/// the domain's and the engine's errors meet HTTP.
pub trait HttpStatus {
    fn status(&self) -> u16;
}

impl HttpStatus for DomainError {
    fn status(&self) -> u16 {
        match self {
            DomainError::NotFound(_) => 404,
            DomainError::Invalid(_) | DomainError::InvalidStateRequested(_) => 400,
            DomainError::Conflict(_) => 409,
            DomainError::Forbidden(_) => 403,
        }
    }
}

impl HttpStatus for EngineError {
    fn status(&self) -> u16 {
        match self {
            EngineError::Domain(d) => d.status(),
            EngineError::Conflict(_) => 409,
            EngineError::Store(_)
            | EngineError::Secrets(_)
            | EngineError::Persistence(_)
            | EngineError::Unreadable(_)
            | EngineError::Projection(_)
            | EngineError::MoveLost(_) => 500,
        }
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
        ApiError::new(status, e.to_string())
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        ApiError::new(status, e.to_string())
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("Storage operation failure: {e}"),
        )
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
