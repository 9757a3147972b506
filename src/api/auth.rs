//! Who is calling: `[DEFAULT] auth_strategy`.
//!
//! - `noauth` (the default, meant for loopback): every caller is `anonymous`.
//! - `http_basic`: an Apache htpasswd file of bcrypt hashes
//!   (`[DEFAULT] http_basic_auth_user_file`), as Ironic's standalone mode uses.
//!   A missing or wrong credential is a 401 with `WWW-Authenticate: Basic`.
//!
//! The file is re-read when it changes, so users can be added without a restart.
//! Passwords never reach a log line.

use super::error::ApiError;
use crate::config::AuthStrategy;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// The authenticated caller, available to handlers as a request extension.
#[derive(Debug, Clone)]
pub struct Caller(pub String);

/// Checks credentials for one strategy.
pub struct Authenticator {
    strategy: AuthStrategy,
    /// htpasswd contents and the modification time they were read at.
    users: Mutex<Option<(SystemTime, HashMap<String, String>)>>,
}

impl Authenticator {
    pub fn new(strategy: AuthStrategy) -> Arc<Self> {
        Arc::new(Authenticator {
            strategy,
            users: Mutex::new(None),
        })
    }

    fn load(path: &PathBuf) -> Result<(SystemTime, HashMap<String, String>), String> {
        let meta =
            std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let users = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter_map(|l| l.split_once(':'))
            .map(|(u, h)| (u.to_string(), h.to_string()))
            .collect();
        Ok((meta.modified().unwrap_or(SystemTime::UNIX_EPOCH), users))
    }

    /// The hash stored for `user`, re-reading the file if it changed.
    fn hash_of(&self, path: &PathBuf, user: &str) -> Result<Option<String>, String> {
        let mtime = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        let mut cache = self.users.lock().expect("auth cache");
        if cache.as_ref().map(|(t, _)| Some(*t)) != Some(mtime) {
            *cache = Some(Self::load(path)?);
        }
        Ok(cache.as_ref().and_then(|(_, u)| u.get(user).cloned()))
    }

    /// The caller's name, or the 401 to answer.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<String, ApiError> {
        let path = match &self.strategy {
            AuthStrategy::NoAuth => return Ok("anonymous".into()),
            AuthStrategy::HttpBasic { user_file } => user_file,
        };
        let unauthorized = || {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "Unauthorized: invalid or missing credentials.",
            )
        };
        let encoded = authorization
            .and_then(|h| {
                h.strip_prefix("Basic ")
                    .or_else(|| h.strip_prefix("basic "))
            })
            .ok_or_else(unauthorized)?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|_| unauthorized())?;
        let decoded = String::from_utf8(decoded).map_err(|_| unauthorized())?;
        let (user, password) = decoded.split_once(':').ok_or_else(unauthorized)?;
        let hash = self.hash_of(path, user).map_err(|e| {
            tracing::error!(error = %e, "http_basic user file unreadable");
            unauthorized()
        })?;
        match hash {
            Some(h) if bcrypt::verify(password, &h).unwrap_or(false) => Ok(user.to_string()),
            _ => {
                tracing::info!(user, "authentication failed");
                Err(unauthorized())
            }
        }
    }
}

/// Middleware: authenticates and records the caller.
pub async fn layer(
    State(auth): State<Arc<Authenticator>>,
    mut req: Request,
    next: Next,
) -> Response {
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match auth.authenticate(header) {
        Ok(user) => {
            req.extensions_mut().insert(Caller(user));
            next.run(req).await
        }
        Err(e) => {
            let mut res = e.into_response();
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"Baremetal API\""),
            );
            res
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn http_basic_checks_bcrypt_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("htpasswd");
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        writeln!(
            std::fs::File::create(&path).unwrap(),
            "# users\nadmin:{hash}"
        )
        .unwrap();
        let auth = Authenticator::new(AuthStrategy::HttpBasic { user_file: path });
        let basic = |u: &str, p: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )
        };
        assert_eq!(
            auth.authenticate(Some(&basic("admin", "s3cret"))).unwrap(),
            "admin"
        );
        assert_eq!(
            auth.authenticate(Some(&basic("admin", "wrong")))
                .unwrap_err()
                .status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            auth.authenticate(Some(&basic("nobody", "s3cret")))
                .unwrap_err()
                .status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            auth.authenticate(None).unwrap_err().status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            auth.authenticate(Some("Bearer x")).unwrap_err().status,
            StatusCode::UNAUTHORIZED
        );
    }

    #[test]
    fn noauth_is_anonymous() {
        let auth = Authenticator::new(AuthStrategy::NoAuth);
        assert_eq!(auth.authenticate(None).unwrap(), "anonymous");
    }
}
