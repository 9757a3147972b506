//! How long a connection may take over each part of a request.
//!
//! hyper's own `header_read_timeout` starts counting as soon as the connection
//! waits for a request, so it cannot tell a kept-alive connection resting
//! between requests from a client trickling a head; and hyper has no body or
//! idle timeout at all. ironledger therefore follows each connection through
//! the phases of its requests and gives each phase its own deadline:
//!
//! | phase | from | to | limit |
//! |---|---|---|---|
//! | idle | accept, or the end of an answer | the first byte of a request | `[api] idle_timeout` |
//! | head | that first byte | the head parsed | `[api] header_timeout` |
//! | body | the head parsed | the body read (or dropped unread) | `[api] body_timeout` |
//! | busy | the body read | the answer handed to hyper | none: that time is ours |
//!
//! The limits count from the start of a phase, not from the last byte, so a
//! client sending one byte now and then gains nothing. A connection whose
//! phase runs out is closed by [`crate::http::server`]. The phase is learnt
//! from three places: the socket ([`WatchedIo`] sees bytes arrive), the request
//! body and the answer's body ([`WatchedBody`]).

use crate::config::ConnectionLimits;
use axum::body::Bytes;
use http_body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

/// Where a connection is in its current request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Idle,
    Head,
    Body,
    Busy,
}

/// One connection's phase and when it began, shared by its socket, its
/// bodies and the task that serves it.
pub struct Watch {
    limits: ConnectionLimits,
    state: Mutex<(Phase, Instant)>,
    changed: Notify,
}

impl Watch {
    /// A freshly accepted connection: idle.
    pub fn new(limits: ConnectionLimits) -> Arc<Self> {
        Arc::new(Watch {
            limits,
            state: Mutex::new((Phase::Idle, Instant::now())),
            changed: Notify::new(),
        })
    }

    pub fn phase(&self) -> Phase {
        self.state.lock().expect("watch").0
    }

    /// Moves to `to` if the connection is in one of `from`.
    fn move_to(&self, from: &[Phase], to: Phase) {
        let mut state = self.state.lock().expect("watch");
        if from.contains(&state.0) && state.0 != to {
            *state = (to, Instant::now());
            drop(state);
            self.changed.notify_waiters();
        }
    }

    /// Bytes arrived: an idle connection has begun a request.
    fn bytes_arrived(&self) {
        self.move_to(&[Phase::Idle], Phase::Head);
    }

    /// hyper parsed a head; the body follows unless there is none.
    fn head_parsed(&self, body_done: bool) {
        let to = if body_done { Phase::Busy } else { Phase::Body };
        self.move_to(&[Phase::Idle, Phase::Head, Phase::Body, Phase::Busy], to);
    }

    /// The request body was read to its end, failed, or was dropped unread
    /// (hyper then drains or closes it itself).
    fn body_done(&self) {
        self.move_to(&[Phase::Body], Phase::Busy);
    }

    /// The answer went to hyper in full: the connection rests until the next request.
    fn answered(&self) {
        self.move_to(&[Phase::Body, Phase::Busy], Phase::Idle);
    }

    fn deadline(&self) -> (Phase, Option<Instant>) {
        let (phase, since) = *self.state.lock().expect("watch");
        let limit = match phase {
            Phase::Idle => Some(self.limits.idle_timeout),
            Phase::Head => Some(self.limits.header_timeout),
            Phase::Body => Some(self.limits.body_timeout),
            Phase::Busy => None,
        };
        (phase, limit.map(|l| since + l))
    }

    /// Resolves with the phase that ran out of time.
    pub async fn expired(&self) -> Phase {
        loop {
            // Registered before reading the state, so no change is missed.
            let changed = self.changed.notified();
            match self.deadline() {
                (phase, Some(at)) if Instant::now() >= at => return phase,
                (_, Some(at)) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at) => {}
                        _ = changed => {}
                    }
                }
                (_, None) => changed.await,
            }
        }
    }
}

/// The socket, telling the [`Watch`] when bytes arrive.
pub struct WatchedIo<S> {
    inner: S,
    watch: Arc<Watch>,
}

impl<S> WatchedIo<S> {
    pub fn new(inner: S, watch: Arc<Watch>) -> Self {
        WatchedIo { inner, watch }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WatchedIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
        if buf.filled().len() > before {
            self.watch.bytes_arrived();
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WatchedIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// A body, telling the [`Watch`] when it is done with: a request's body ends
/// the body phase, an answer's the busy one. The two differ only in which
/// phase their end closes, so one wrapper serves both
/// ([`WatchedBody::request`], [`WatchedBody::response`]).
pub struct WatchedBody<B> {
    inner: B,
    watch: Arc<Watch>,
    /// What the end of this body tells the watch.
    on_end: fn(&Watch),
}

impl<B: Body> WatchedBody<B> {
    /// Wraps the body of a request whose head was just parsed: its end (or
    /// drop) ends the body phase.
    pub fn request(inner: B, watch: Arc<Watch>) -> Self {
        watch.head_parsed(inner.is_end_stream());
        WatchedBody {
            inner,
            watch,
            on_end: Watch::body_done,
        }
    }

    /// Wraps an answer's body: its end (or drop) means hyper has all of it.
    pub fn response(inner: B, watch: Arc<Watch>) -> Self {
        WatchedBody {
            inner,
            watch,
            on_end: Watch::answered,
        }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for WatchedBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let frame = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        if !matches!(frame, Some(Ok(_))) || self.inner.is_end_stream() {
            (self.on_end)(&self.watch);
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B> Drop for WatchedBody<B> {
    fn drop(&mut self) {
        (self.on_end)(&self.watch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn limits() -> ConnectionLimits {
        ConnectionLimits {
            header_timeout: Duration::from_secs(2),
            body_timeout: Duration::from_secs(3),
            idle_timeout: Duration::from_secs(5),
            max_connections: 1,
        }
    }

    /// Runs `step` and checks the deadline it sets: `limit` after the step.
    fn after(watch: &Watch, step: impl FnOnce(), phase: Phase, limit: Option<u64>) {
        let before = Instant::now();
        step();
        let later = Instant::now();
        let (p, at) = watch.deadline();
        assert_eq!(p, phase);
        match (limit, at) {
            (None, None) => {}
            (Some(l), Some(at)) => {
                let l = Duration::from_secs(l);
                assert!(before + l <= at && at <= later + l, "{phase:?}");
            }
            other => panic!("{phase:?}: {other:?}"),
        }
    }

    /// Each phase has its own limit, counted from the start of the phase; a
    /// busy connection has none.
    #[test]
    fn each_phase_has_its_own_deadline() {
        let before = Instant::now();
        let watch = Watch::new(limits());
        let (phase, at) = watch.deadline();
        assert_eq!(phase, Phase::Idle);
        assert!(before + Duration::from_secs(5) <= at.unwrap());
        after(&watch, || watch.bytes_arrived(), Phase::Head, Some(2));
        // More bytes of the same head do not restart its clock.
        let head = watch.deadline();
        std::thread::sleep(Duration::from_millis(5));
        watch.bytes_arrived();
        assert_eq!(watch.deadline(), head);
        after(&watch, || watch.head_parsed(false), Phase::Body, Some(3));
        after(&watch, || watch.body_done(), Phase::Busy, None);
        // Bytes of a pipelined request while busy change nothing.
        after(&watch, || watch.bytes_arrived(), Phase::Busy, None);
        after(&watch, || watch.answered(), Phase::Idle, Some(5));
        // A request without a body goes straight to busy.
        after(&watch, || watch.head_parsed(true), Phase::Busy, None);
        // A body dropped after the answer changes nothing.
        after(&watch, || watch.answered(), Phase::Idle, Some(5));
        let idle = watch.deadline();
        watch.body_done();
        assert_eq!(watch.deadline(), idle);
    }

    /// The watchdog wakes on a change of phase and answers with the phase
    /// that ran out.
    #[tokio::test]
    async fn the_watchdog_follows_phase_changes() {
        let watch = Watch::new(ConnectionLimits {
            idle_timeout: Duration::from_secs(3600),
            header_timeout: Duration::from_millis(1),
            ..limits()
        });
        let w = watch.clone();
        let waiter = tokio::spawn(async move { w.expired().await });
        tokio::task::yield_now().await;
        watch.bytes_arrived();
        assert_eq!(waiter.await.unwrap(), Phase::Head);
    }
}
