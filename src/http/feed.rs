//! `GET /feed` and `GET /feed/stream`: every committed event, in feed order,
//! over HTTP.
//!
//! The log's feed is gap-free (see [`crate::store`]): positions are dense and
//! a position is handed out only once no earlier one can still appear. So a
//! consumer that remembers the last position it saw and asks for what comes
//! after it never skips an event and never sees one twice, whatever it was
//! doing in between (Ironic's notifications, by its own documentation, may be
//! lost). Two ways to read it:
//!
//! - **Pages**: `GET /feed?after=<position>&limit=<n>&node=<uuid|name>`
//!   answers `{"events": […], "last": <position>, "head": <position>,
//!   "next": "<url>"}`; `last` is the position to ask after next time (the
//!   request's own `after` when nothing new came), `next` that request.
//! - **A stream**: `GET /feed/stream` answers Server-Sent Events, one per
//!   event, `id:` its position, `event:` its type, `data:` the same JSON as a
//!   page entry. A client that reconnects sends `Last-Event-ID` (browsers'
//!   `EventSource` does it on its own) and the stream resumes after it.
//!   `after=` gives the start of a first connection; without either the
//!   stream starts at the head (only new events).
//!
//! Each entry is the stored event with its position, time, actor, request id
//! and payload; secrets are masked by the API's rule (the store holds them
//! encrypted; the feed shows neither form). `node=` keeps one node's events
//! (a deleted node's too, by UUID); a page of them costs that node's history,
//! not the fleet's. Both endpoints are behind the API's authentication.

use crate::api::error::{ApiError, ApiResult};
use crate::api::listing::{self, Params};
use crate::api::lookup;
use crate::api::masking::mask;
use crate::api::AppState;
use crate::store::{LogStore, RecordedEvent};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use axum::{Extension, Json};
use futures::Stream;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Entries in a page when the request does not say.
const DEFAULT_LIMIT: u32 = 100;
/// How often the stream looks for new events once it has caught up.
const POLL: Duration = Duration::from_millis(250);
/// Events the stream reads from the store at a time.
const BATCH: u32 = 500;

/// Set by the listener on every request: flips to `true` when the server
/// begins to shut down, so that a stream (which never ends on its own) ends
/// and lets its connection drain.
#[derive(Clone)]
pub struct Stopping(pub watch::Receiver<bool>);

/// One event as the feed shows it.
pub fn entry(e: &RecordedEvent) -> Value {
    let meta = |k: &str| e.metadata.get(k).cloned().unwrap_or(Value::Null);
    json!({
        "position": e.position,
        "recorded_at": e.recorded_at,
        "aggregate_type": e.aggregate_type,
        "aggregate_id": e.aggregate_id,
        "sequence": e.sequence,
        "event_type": e.event_type,
        "event_version": e.event_version,
        "actor": meta("actor"),
        "request_id": meta("request_id"),
        "metadata": mask(&e.metadata),
        "payload": mask(&e.payload),
    })
}

/// Which events a reader wants.
struct Query {
    after: u64,
    node: Option<String>,
}

fn position(name: &str, raw: &str) -> ApiResult<u64> {
    raw.trim().parse::<u64>().map_err(|_| {
        ApiError::bad_request(format!(
            "Expected a non-negative integer (a feed position) for {name}: {raw}"
        ))
    })
}

/// `node=`: a UUID as given (a deleted node's events stay in the log), or the
/// name of a node that has one now.
async fn node_filter(state: &AppState, params: &Params) -> ApiResult<Option<String>> {
    let Some(ident) = params.get("node") else {
        return Ok(None);
    };
    lookup::node_uuid(state.engine.store().as_ref(), ident)
        .await?
        .map(Some)
        .ok_or_else(|| ApiError::not_found(format!("Node {ident} could not be found.")))
}

/// Up to `limit` events after `q.after` (of one node, if asked).
async fn read(store: &dyn LogStore, q: &Query, limit: u32) -> ApiResult<Vec<RecordedEvent>> {
    Ok(match &q.node {
        None => store.read_feed(q.after, limit).await?,
        // A node's events are in sequence order, which is their feed order.
        Some(node) => store
            .load_recorded("Node", node)
            .await?
            .into_iter()
            .filter(|e| e.position > q.after)
            .take(limit as usize)
            .collect(),
    })
}

/// `GET /feed`.
pub async fn page(State(state): State<AppState>, params: Params) -> ApiResult<Json<Value>> {
    params.only(&["after", "limit", "node"])?;
    let after = params
        .get("after")
        .map(|a| position("after", a))
        .transpose()?
        .unwrap_or(0);
    let max = state.config.api.max_limit;
    let limit = match params.get("limit") {
        None => DEFAULT_LIMIT.min(max),
        Some(raw) => listing::limit(Some(listing::integer_arg("limit", raw)?), max)? as u32,
    };
    let node = node_filter(&state, &params).await?;
    let store = state.engine.store();
    // The head first: every event of the page is at or below it.
    let head = store.head().await?;
    let q = Query { after, node };
    let events = read(store.as_ref(), &q, limit).await?;
    let last = events.last().map_or(after, |e| e.position);
    let mut next = format!("/feed?after={last}&limit={limit}");
    if let Some(n) = &q.node {
        next.push_str(&format!("&node={n}"));
    }
    Ok(Json(json!({
        "events": events.iter().map(entry).collect::<Vec<_>>(),
        "last": last,
        "head": head.max(last),
        "next": next,
    })))
}

/// `GET /feed/stream`.
pub async fn stream(
    State(state): State<AppState>,
    stopping: Option<Extension<Stopping>>,
    headers: HeaderMap,
    params: Params,
) -> ApiResult<impl IntoResponse> {
    params.only(&["after", "node"])?;
    let resume = headers
        .get("last-event-id")
        .map(|v| {
            let text = v.to_str().unwrap_or_default();
            position("Last-Event-ID", text)
        })
        .transpose()?;
    let asked = params
        .get("after")
        .map(|a| position("after", a))
        .transpose()?;
    let node = node_filter(&state, &params).await?;
    let store = state.engine.store();
    let after = match resume.or(asked) {
        Some(p) => p,
        None => store.head().await?,
    };
    tracing::info!(after, node = ?node, "feed stream opened");
    let stopping = stopping.map(|Extension(s)| s.0);
    let events = follow(store.clone(), Query { after, node }, stopping);
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

/// The stream's state between two events.
struct Follower {
    store: Arc<dyn LogStore>,
    q: Query,
    ready: std::collections::VecDeque<RecordedEvent>,
    stopping: Option<watch::Receiver<bool>>,
}

/// Events after `q.after`, for as long as the client listens (or until the
/// server stops); a store error ends the stream (the client resumes).
fn follow(
    store: Arc<dyn LogStore>,
    q: Query,
    stopping: Option<watch::Receiver<bool>>,
) -> impl Stream<Item = Result<Event, std::convert::Infallible>> {
    let start = Follower {
        store,
        q,
        ready: Default::default(),
        stopping,
    };
    futures::stream::unfold(start, |mut f| async move {
        loop {
            if let Some(e) = f.ready.pop_front() {
                f.q.after = e.position;
                let sse = Event::default()
                    .id(e.position.to_string())
                    .event(e.event_type.as_str())
                    .data(entry(&e).to_string());
                return Some((Ok(sse), f));
            }
            if f.stopping.as_ref().is_some_and(|s| *s.borrow()) {
                return None;
            }
            match read(f.store.as_ref(), &f.q, BATCH).await {
                Ok(batch) if !batch.is_empty() => f.ready.extend(batch),
                Ok(_) => {
                    // Caught up: wait a moment, or for the server to stop
                    // (a dropped sender means it has).
                    let stopped = async {
                        match f.stopping.as_mut() {
                            Some(s) => s.changed().await.is_err() || *s.borrow(),
                            None => std::future::pending().await,
                        }
                    };
                    tokio::select! {
                        _ = tokio::time::sleep(POLL) => {}
                        stop = stopped => if stop { return None },
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e.message, "feed stream: cannot read the store; closing");
                    return None;
                }
            }
        }
    })
}
