//! The listener: accepts connections, serves each with hyper, and keeps any
//! one client from holding the process.
//!
//! `axum::serve` holds a connection as long as the client likes and accepts
//! as many as the client opens, until the process runs out of file
//! descriptors and stops serving everyone (`/boot/` included). Here:
//!
//! - each connection has a deadline per phase of its request
//!   ([`super::deadline`]: `[api] idle_timeout`, `header_timeout`,
//!   `body_timeout`) and is closed when it runs out;
//! - at most `[api] max_connections` are served at once; one more is answered
//!   `503` in Ironic's error format and closed at once, without waiting for
//!   it to send anything, so a flood costs a descriptor for a moment only;
//! - [`raise_open_file_limit`] lifts the open-file soft limit to the hard
//!   one, and the cap is kept below it with room for the store and files.
//!
//! Each request runs in a task of its own, to its end, whether or not its
//! client waits for the answer.
//!
//! Shutdown stops accepting, asks every connection to finish its request and
//! close, and returns when all have.

use super::deadline::{Watch, WatchedBody, WatchedIo};
use crate::api::error::ApiError;
use crate::config::ConnectionLimits;
use axum::extract::ConnectInfo;
use axum::http::StatusCode;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tower::ServiceExt;

/// Descriptors kept back from the connection cap: the store's connections,
/// SQLite's files, boot files being read, Cinder clients, stdio.
pub const RESERVED_FDS: u64 = 128;

/// Serves `app` on `listener` until `shutdown` resolves, then drains.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let refusal = refusal();
    let (stop, stopping) = watch::channel(false);
    let mut refused = Throttled::default();
    let mut accept_errors = Throttled::default();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) if is_per_connection(&e) => continue,
                Err(e) => {
                    // Out of descriptors (EMFILE) and the like: wait for some
                    // to be released instead of spinning.
                    accept_errors.note(|n| tracing::warn!(error = %e, times = n, "cannot accept connections"));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        match permits.clone().try_acquire_owned() {
            Ok(permit) => {
                tokio::spawn(connection(
                    stream,
                    peer,
                    app.clone(),
                    limits.clone(),
                    permit,
                    stopping.clone(),
                ));
            }
            Err(_) => {
                // Best effort and never waiting: the socket's send buffer is
                // empty, so the answer fits, and the client may well have sent
                // nothing yet.
                let _ = stream.try_write(&refusal);
                drop(stream);
                refused.note(|n| {
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        refused = n,
                        "connection limit reached: refusing new connections"
                    )
                });
            }
        }
    }
    drop(listener);
    let _ = stop.send(true);
    // Every connection holds a permit until it is closed.
    let _ = permits.acquire_many(limits.max_connections as u32).await;
    Ok(())
}

/// Serves one connection until it closes, runs out of time, or shutdown has
/// let it finish its request.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    limits: ConnectionLimits,
    _permit: OwnedSemaphorePermit,
    mut stopping: watch::Receiver<bool>,
) {
    let watch = Watch::new(limits);
    let io = TokioIo::new(WatchedIo::new(stream, watch.clone()));
    let w = watch.clone();
    let told = super::feed::Stopping(stopping.clone());
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let watch = w.clone();
        let mut req =
            req.map(|body| axum::body::Body::new(WatchedBody::request(body, watch.clone())));
        req.extensions_mut().insert(ConnectInfo(peer));
        // Long answers (the feed's stream) end when the server stops.
        req.extensions_mut().insert(told.clone());
        let app = app.clone();
        async move {
            // In a task of its own: hyper drops a request's future when its
            // client goes away, which would cut a write between two of its
            // steps (and leave an `Idempotency-Key` taken, never answered).
            // The answer's body is still polled by hyper, so a stream ends
            // with its client.
            let res = tokio::spawn(app.oneshot(req))
                .await
                .map(|r| r.unwrap_or_else(|e: Infallible| match e {}))
                .unwrap_or_else(|e| {
                    tracing::error!(%peer, error = %e, "a request's task failed");
                    axum::response::IntoResponse::into_response(ApiError::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "Internal error.",
                    ))
                });
            Ok::<_, Infallible>(res.map(|body| WatchedBody::response(body, watch)))
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        // The phases of `deadline` replace it (it would count idle time as
        // header time).
        .header_read_timeout(None)
        .serve_connection(io, service);
    tokio::pin!(conn);
    let mut draining = false;
    loop {
        tokio::select! {
            done = conn.as_mut() => {
                if let Err(e) = done {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                break;
            }
            phase = watch.expired() => {
                tracing::info!(%peer, ?phase, "closing a connection that ran out of time");
                break;
            }
            _ = stopping.changed(), if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// Errors of one incoming connection, not of the listener.
fn is_per_connection(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted
    )
}

/// The whole answer to a connection beyond the cap.
fn refusal() -> Vec<u8> {
    let error = ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "The server is serving as many connections as it may ([api] max_connections); try again shortly.",
    );
    let body = serde_json::json!({ "error_message": error.inner() }).to_string();
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A warning that is logged at most once a second, with how often it happened.
#[derive(Default)]
struct Throttled {
    last: Option<Instant>,
    since: u64,
}

impl Throttled {
    fn note(&mut self, log: impl FnOnce(u64)) {
        self.since += 1;
        if self
            .last
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
        {
            log(self.since);
            self.since = 0;
            self.last = Some(Instant::now());
        }
    }
}

/// The open-file limits before and after raising the soft one to the hard one.
#[derive(Debug, Clone, Copy)]
pub struct FileLimit {
    pub soft_before: u64,
    pub soft: u64,
    pub hard: u64,
}

/// Raises this process's open-file soft limit (`RLIMIT_NOFILE`) to its hard
/// limit: the usual soft limit of 1024 is what a flood of idle sockets used
/// to exhaust.
#[cfg(unix)]
#[allow(clippy::unnecessary_cast)] // `rlim_t` is not `u64` on every unix
pub fn raise_open_file_limit() -> std::io::Result<FileLimit> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let soft_before = limit.rlim_cur as u64;
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit only reads the struct it is given.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit = raised;
        } else {
            tracing::warn!(error = %std::io::Error::last_os_error(), "cannot raise the open-file limit");
        }
    }
    Ok(FileLimit {
        soft_before,
        soft: limit.rlim_cur as u64,
        hard: limit.rlim_max as u64,
    })
}

#[cfg(not(unix))]
pub fn raise_open_file_limit() -> std::io::Result<FileLimit> {
    Err(std::io::Error::other("not supported on this platform"))
}

/// The connection cap that fits in `open_files` descriptors with
/// [`RESERVED_FDS`] kept back.
pub fn connections_within(configured: usize, open_files: u64) -> usize {
    let usable = open_files.saturating_sub(RESERVED_FDS).max(1);
    configured.min(usize::try_from(usable).unwrap_or(usize::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_room_for_the_store_and_files() {
        assert_eq!(connections_within(1000, 1024), 1000 - 104);
        assert_eq!(connections_within(1000, 1_048_576), 1000);
        assert_eq!(connections_within(1000, 10), 1);
        assert_eq!(connections_within(5, u64::MAX), 5);
    }

    #[test]
    fn the_refusal_is_a_complete_ironic_error() {
        let text = String::from_utf8(refusal()).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 503 "), "{head}");
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let outer: serde_json::Value = serde_json::from_str(body).unwrap();
        let inner: serde_json::Value =
            serde_json::from_str(outer["error_message"].as_str().unwrap()).unwrap();
        assert!(inner["faultstring"]
            .as_str()
            .unwrap()
            .contains("max_connections"));
    }
}
