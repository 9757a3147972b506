//! Who is calling: `[DEFAULT] auth_strategy`.
//!
//! - `noauth` (the default, meant for loopback): every caller is `anonymous`.
//! - `http_basic`: an Apache htpasswd file of bcrypt hashes
//!   (`[DEFAULT] http_basic_auth_user_file`, [`htpasswd`]), as Ironic's
//!   standalone mode uses. A missing or wrong credential is a 401 with
//!   `WWW-Authenticate: Basic`; the scheme is matched case-insensitively
//!   (RFC 7235). Passwords are checked off the async workers ([`verifier`]),
//!   and repeated failures make the caller wait ([`backoff`]: 429 with
//!   `Retry-After`).
//!
//! `/` and `/v1` stay open for version discovery, as Ironic's
//! `public_api_routes`. Passwords never reach a log line.

pub mod backoff;
pub mod htpasswd;
pub mod verifier;

use super::error::ApiError;
use crate::config::{AuthStrategy, AuthThrottle};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use verifier::{Verdict, Verifier};

/// The authenticated caller, available to handlers as a request extension.
#[derive(Debug, Clone)]
pub struct Caller(pub String);

/// Paths answered without credentials (Ironic's `public_api_routes`).
pub fn is_public(path: &str) -> bool {
    matches!(path, "/" | "/v1" | "/v1/")
}

/// Why a request was not let in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// 401: no, malformed or wrong credentials.
    Unauthorized,
    /// 429: too many failures; wait this long.
    Throttled(Duration),
    /// 503: too many verifications waiting.
    Busy,
}

impl IntoResponse for Denied {
    fn into_response(self) -> Response {
        let (error, retry_after) = match self {
            Denied::Unauthorized => (
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "Unauthorized: invalid or missing credentials.",
                ),
                None,
            ),
            Denied::Throttled(wait) => {
                let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                (
                    ApiError::new(
                        StatusCode::TOO_MANY_REQUESTS,
                        format!("Too many failed logins: try again in {secs} seconds."),
                    ),
                    Some(secs.max(1)),
                )
            }
            Denied::Busy => (
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Too many logins are being checked: try again shortly.",
                ),
                Some(1),
            ),
        };
        let challenge = error.status == StatusCode::UNAUTHORIZED;
        let mut res = error.into_response();
        if challenge {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"Baremetal API\""),
            );
        }
        if let Some(secs) = retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}

/// Checks credentials for one strategy.
pub struct Authenticator {
    users: Option<htpasswd::UserFile>,
    verifier: Verifier,
    backoff: backoff::Backoff,
}

/// `user:password` from an `Authorization: Basic …` header.
fn basic_credentials(authorization: Option<&str>) -> Option<(String, String)> {
    let (scheme, encoded) = authorization?.trim_start().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

impl Authenticator {
    pub fn new(strategy: AuthStrategy, throttle: AuthThrottle) -> Arc<Self> {
        Arc::new(Authenticator {
            users: match strategy {
                AuthStrategy::NoAuth => None,
                AuthStrategy::HttpBasic { user_file } => Some(htpasswd::UserFile::new(user_file)),
            },
            verifier: Verifier::default(),
            backoff: backoff::Backoff::new(throttle),
        })
    }

    /// The password checker (its counters are what tests look at).
    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// The caller's name, or why it is refused. `client` is the address the
    /// request came from (failures are counted per address).
    pub async fn authenticate(
        &self,
        authorization: Option<&str>,
        client: IpAddr,
    ) -> Result<String, Denied> {
        let Some(users) = &self.users else {
            return Ok("anonymous".into());
        };
        let (user, password) = basic_credentials(authorization).ok_or(Denied::Unauthorized)?;
        if let Some(wait) = self.backoff.wait(&user, client, Instant::now()) {
            return Err(Denied::Throttled(wait));
        }
        let (hash, cost) = users.lookup(&user).map_err(|e| {
            tracing::error!(error = %e, "http_basic user file unreadable");
            Denied::Unauthorized
        })?;
        match self
            .verifier
            .check(&user, &password, hash.as_deref(), cost)
            .await
        {
            Verdict::Valid => {
                self.backoff.succeeded(&user, client);
                Ok(user)
            }
            Verdict::Invalid => {
                self.backoff.failed(&user, client, Instant::now());
                tracing::info!(user, %client, "authentication failed");
                Err(Denied::Unauthorized)
            }
            Verdict::Busy => {
                tracing::warn!(%client, "authentication refused: too many verifications waiting");
                Err(Denied::Busy)
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
    if is_public(req.uri().path()) {
        return next.run(req).await;
    }
    let client = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED), |c| c.0.ip());
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match auth.authenticate(header, client).await {
        Ok(user) => {
            req.extensions_mut().insert(Caller(user));
            next.run(req).await
        }
        Err(denied) => denied.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const HERE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    fn basic(scheme: &str, u: &str, p: &str) -> String {
        format!(
            "{scheme} {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
        )
    }

    fn http_basic(throttle: AuthThrottle) -> (tempfile::TempDir, Arc<Authenticator>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("htpasswd");
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        writeln!(
            std::fs::File::create(&path).unwrap(),
            "# users\nadmin:{hash}"
        )
        .unwrap();
        let auth = Authenticator::new(AuthStrategy::HttpBasic { user_file: path }, throttle);
        (dir, auth)
    }

    #[tokio::test]
    async fn http_basic_checks_bcrypt_hashes() {
        let (_dir, auth) = http_basic(AuthThrottle::default());
        let check = |h: Option<String>| {
            let auth = auth.clone();
            async move { auth.authenticate(h.as_deref(), HERE).await }
        };
        assert_eq!(
            check(Some(basic("Basic", "admin", "s3cret")))
                .await
                .unwrap(),
            "admin"
        );
        for scheme in ["basic", "BASIC", "bAsIc"] {
            assert_eq!(
                check(Some(basic(scheme, "admin", "s3cret"))).await.unwrap(),
                "admin",
                "{scheme}"
            );
        }
        for refused in [
            Some(basic("Basic", "admin", "wrong")),
            Some(basic("Basic", "nobody", "s3cret")),
            None,
            Some("Bearer x".into()),
            Some("Basic !!!".into()),
            Some("Basicx".into()),
        ] {
            assert_eq!(
                check(refused.clone()).await,
                Err(Denied::Unauthorized),
                "{refused:?}"
            );
        }
    }

    /// An unknown user goes through bcrypt like a known one with a wrong
    /// password: one verification each, so the time of the 401 is the same.
    #[tokio::test]
    async fn unknown_users_are_verified_like_known_ones() {
        let (_dir, auth) = http_basic(AuthThrottle::default());
        let runs = auth.verifier().runs();
        let _ = auth
            .authenticate(Some(&basic("Basic", "admin", "wrong")), HERE)
            .await;
        assert_eq!(auth.verifier().runs(), runs + 1);
        let _ = auth
            .authenticate(Some(&basic("Basic", "nobody", "wrong")), HERE)
            .await;
        assert_eq!(
            auth.verifier().runs(),
            runs + 2,
            "the unknown user was verified"
        );
    }

    /// After the limit, even the right password waits (and costs no bcrypt
    /// run); another address does not.
    #[tokio::test]
    async fn repeated_failures_are_throttled_before_verification() {
        let (_dir, auth) = http_basic(AuthThrottle {
            per_user: 2,
            per_address: 10,
            backoff: Duration::from_secs(60),
        });
        let elsewhere: IpAddr = "192.0.2.7".parse().unwrap();
        for _ in 0..2 {
            let r = auth
                .authenticate(Some(&basic("Basic", "admin", "wrong")), HERE)
                .await;
            assert_eq!(r, Err(Denied::Unauthorized));
        }
        let runs = auth.verifier().runs();
        let r = auth
            .authenticate(Some(&basic("Basic", "admin", "s3cret")), HERE)
            .await;
        assert!(
            matches!(r, Err(Denied::Throttled(w)) if w <= Duration::from_secs(60)),
            "{r:?}"
        );
        assert_eq!(
            auth.verifier().runs(),
            runs,
            "no verification while waiting"
        );
        let r = auth
            .authenticate(Some(&basic("Basic", "admin", "s3cret")), elsewhere)
            .await;
        assert_eq!(r.unwrap(), "admin");

        let res = Denied::Throttled(Duration::from_millis(2500)).into_response();
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(res.headers()[header::RETRY_AFTER], "3");
    }

    #[tokio::test]
    async fn noauth_is_anonymous() {
        let auth = Authenticator::new(AuthStrategy::NoAuth, AuthThrottle::default());
        assert_eq!(auth.authenticate(None, HERE).await.unwrap(), "anonymous");
    }
}
