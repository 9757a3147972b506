//! `GET /health`: is this process serving the whole log?
//!
//! Liveness is not enough for an event-sourced service: a process whose
//! store answers but whose read models stopped applying the log serves a
//! past that never moves again (every write "succeeds" and never shows). So
//! the answer says three things:
//!
//! - `ok` (200): the store answers and the read models keep up with the log;
//! - `degraded` (200): as `ok`, but some events could not be applied and were
//!   skipped (`failures`; `ironledger failures` lists them all): the service
//!   runs, a few nodes show an older state;
//! - `stuck` (503): the read models are behind the head and did not move
//!   while we watched (`lag` events behind; `error` says why, when the
//!   projector knows), or `unavailable` (503): the store does not answer.
//!
//! A read model that is merely behind (a burst of writes) is given a moment
//! to catch up before it is called stuck: [`STUCK_AFTER`].

use crate::api::AppState;
use crate::effects::process_manager::CHECKPOINT as PM_MODEL;
use crate::store::{is_inline, ApplyFailure};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};
use std::time::Duration;

/// How long read models behind the head may take to move before they are
/// called stuck.
pub const STUCK_AFTER: Duration = Duration::from_secs(2);

/// How many failures the answer lists (the newest); `failures.count` says
/// how many there are.
const FAILURES_LISTED: usize = 10;

/// What `/health` found.
pub struct Health {
    pub status: StatusCode,
    pub body: Value,
}

/// Looks at the store, the read models and the recorded failures.
pub async fn check(state: &AppState) -> Health {
    let store = state.engine.store();
    let projector = state.engine.projector();
    let unavailable = |e: String| Health {
        status: StatusCode::SERVICE_UNAVAILABLE,
        body: json!({"status": "unavailable", "store": store.backend(), "error": e}),
    };
    let (head, mut checkpoints) = match (store.head().await, projector.checkpoints().await) {
        (Ok(h), Ok(c)) => (h, c),
        (Err(e), _) => return unavailable(e.to_string()),
        (_, Err(e)) => return unavailable(e.to_string()),
    };
    let low = |c: &std::collections::BTreeMap<&str, u64>| c.values().copied().min().unwrap_or(0);
    let started = low(&checkpoints);
    let mut moving = true;
    if started < head {
        // Behind: give the worker a moment, and see whether it moves.
        projector.kick();
        let deadline = tokio::time::Instant::now() + STUCK_AFTER;
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            match projector.checkpoints().await {
                Ok(c) => checkpoints = c,
                Err(e) => return unavailable(e.to_string()),
            }
            let now = low(&checkpoints);
            if now >= head || now > started {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                moving = false;
                break;
            }
        }
    }
    let lag = head.saturating_sub(low(&checkpoints));
    let mut models: Vec<&str> = projector.names();
    models.push(PM_MODEL);
    let failures: Vec<ApplyFailure> = match store.failures(&models).await {
        Ok(f) => f,
        Err(e) => return unavailable(e.to_string()),
    };
    let mut recent = failures.clone();
    recent.sort_by_key(|f| std::cmp::Reverse(f.failed_at));
    recent.truncate(FAILURES_LISTED);
    let worker_error = projector.progress().borrow().error.clone();
    let (status, word) = if !moving {
        (StatusCode::SERVICE_UNAVAILABLE, "stuck")
    } else if !failures.is_empty() {
        (StatusCode::OK, "degraded")
    } else {
        (StatusCode::OK, "ok")
    };
    // A model the appends write inline is up to date with every commit; a fed
    // one shows the position it has applied up to.
    let projections: serde_json::Map<String, Value> = checkpoints
        .iter()
        .map(|(model, &at)| {
            let at = if is_inline(at) {
                json!("inline")
            } else {
                json!(at)
            };
            (model.to_string(), at)
        })
        .collect();
    let mut body = json!({
        "status": word,
        "store": store.backend(),
        "head": head,
        "lag": lag,
        "projections": projections,
        "failures": {"count": failures.len(), "recent": recent},
    });
    if let (false, Some(e)) = (moving, worker_error) {
        body["error"] = json!(e);
    }
    Health { status, body }
}

/// The handler. `/health` needs no credentials (load balancers probe it), so
/// with authentication on it shows only `{"status": …}` (and its status
/// code): the head, checkpoints, failures and store are for authenticated
/// tools (`ironledger failures`) and the logs.
pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let h = check(&state).await;
    if state.config.auth != crate::config::AuthStrategy::NoAuth {
        return (h.status, Json(json!({"status": h.body["status"]})));
    }
    (h.status, Json(h.body))
}
