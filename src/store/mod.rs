//! Event store backends and the ordered feed.
//!
//! Everything ironledger needs from a database is behind one object-safe trait,
//! [`LogStore`]: append events (with the unique claims that must be written in the
//! same transaction), load one aggregate's stream, read the global feed from a
//! checkpoint, and keep the projections' read models and checkpoints.
//!
//! Three implementations exist: [`memory::MemoryStore`] (tests), [`sqlite::SqliteStore`]
//! (the embedded default) and [`postgres::PostgresStore`] (production; several
//! ironledger processes may share one database). [`bridge::Repo`] adapts any of them
//! to cqrs-es's `PersistedEventRepository`, so the aggregates run on the stock
//! `CqrsFramework` in pure event-sourcing mode (no snapshots: cqrs-es 0.5 applies
//! events twice when it snapshots).
//!
//! The store knows nothing of the domain: the claims an event makes are computed by
//! a function the engine injects ([`ClaimFn`]).

pub mod bridge;
pub mod memory;
pub mod postgres;
pub mod sqlite;
pub mod url;

pub use bridge::{event_store, Repo, Store};
pub use memory::MemoryStore;
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;
pub use url::{open, DatabaseUrl, Opened};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cqrs_es::persist::SerializedEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

/// One event as the feed delivers it: the stored event plus its place in the
/// global order and the time it was recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedEvent {
    /// Position in the one global order: dense, starting at 1, in commit order
    /// (on PostgreSQL, in the order the transactions started writing; a position is
    /// only given once no earlier one can appear: see [`postgres`]).
    pub position: u64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    /// Per-aggregate sequence (1-based), cqrs-es's optimistic-lock key.
    pub sequence: u64,
    pub event_type: String,
    pub event_version: String,
    /// The serde JSON of the domain event (externally tagged: `{"NodeEnrolled": {…}}`).
    pub payload: Value,
    /// Who, why and when: a flat JSON object of strings (see `domain::metadata`).
    pub metadata: Value,
    pub recorded_at: DateTime<Utc>,
}

/// A change to a uniqueness claim, made atomically with the events that cause it.
///
/// A claim `(scope, key)` is held by one owner (an aggregate id). Acquiring a claim
/// the same owner already holds is a no-op; acquiring one held by another owner
/// fails the whole append with [`ClaimConflict`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOp {
    Acquire {
        scope: String,
        key: String,
        owner: String,
    },
    Release {
        scope: String,
        key: String,
        owner: String,
    },
    /// Release every claim this owner holds (node deleted).
    ReleaseAll { owner: String },
}

/// The error an append fails with when a claim is held by another owner.
/// Travels through cqrs-es as `AggregateError::UnexpectedError` and is recovered
/// by downcasting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{scope} {key:?} is already claimed by {owner}")]
pub struct ClaimConflict {
    pub scope: String,
    pub key: String,
    pub owner: String,
}

/// Computes the claims one serialized event makes. Injected by the engine.
pub type ClaimFn = Arc<dyn Fn(&SerializedEvent) -> Vec<ClaimOp> + Send + Sync>;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another writer appended to the same aggregate first (optimistic lock).
    #[error("optimistic concurrency conflict")]
    Conflict,
    #[error(transparent)]
    Claim(#[from] ClaimConflict),
    #[error("database error: {0}")]
    Database(String),
    #[error("corrupt data: {0}")]
    Corrupt(String),
}

/// A write to one read-model document, applied with the projection's checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub enum DocChange {
    Put { id: String, body: Value },
    Delete { id: String },
}

/// The one trait every backend implements.
#[async_trait]
pub trait LogStore: Send + Sync + 'static {
    /// A short name for logs and benchmarks: `memory`, `sqlite`, `postgres`.
    fn backend(&self) -> &'static str;

    // ---- write side -------------------------------------------------------

    /// All events of one aggregate, ordered by sequence.
    async fn load(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, StoreError>;

    /// Appends the events of one commit (one aggregate, consecutive sequences) and
    /// applies `claims`, all in one transaction. A taken `(type, id, sequence)` is
    /// [`StoreError::Conflict`]; a claim held by another owner is [`StoreError::Claim`].
    /// Either way nothing is written.
    async fn append(
        &self,
        events: &[SerializedEvent],
        claims: &[ClaimOp],
    ) -> Result<(), StoreError>;

    /// The current holder of a claim, if any.
    async fn claim_owner(&self, scope: &str, key: &str) -> Result<Option<String>, StoreError>;

    // ---- the feed -----------------------------------------------------------

    /// Gives positions to committed events that have none yet, in commit order.
    /// A no-op for backends that number events when they append (memory, SQLite);
    /// PostgreSQL numbers them here so that no position is ever handed out to a
    /// transaction that may still commit behind a higher one.
    async fn sequence(&self) -> Result<(), StoreError>;

    /// Up to `limit` events with `position > after`, in position order.
    async fn read_feed(&self, after: u64, limit: u32) -> Result<Vec<RecordedEvent>, StoreError>;

    /// The highest position handed out so far (0 when the log is empty).
    async fn head(&self) -> Result<u64, StoreError>;

    /// The highest position among one aggregate's events, and whether some of its
    /// committed events still wait for a position.
    async fn aggregate_position(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<(u64, bool), StoreError>;

    // ---- read models --------------------------------------------------------

    async fn doc_get(&self, model: &str, id: &str) -> Result<Option<Value>, StoreError>;
    /// Every document of a model, ordered by id.
    async fn doc_list(&self, model: &str) -> Result<Vec<(String, Value)>, StoreError>;
    /// The position a model has applied up to (0 if it has none).
    async fn checkpoint(&self, model: &str) -> Result<u64, StoreError>;
    /// Writes `changes` and moves the model's checkpoint from `from` to `to` in one
    /// transaction, only if the checkpoint still is `from`. Returns false (and
    /// writes nothing) when another projector moved it first.
    async fn commit_model(
        &self,
        model: &str,
        from: u64,
        to: u64,
        changes: &[DocChange],
    ) -> Result<bool, StoreError>;
    /// Deletes every document and the checkpoint of a model.
    async fn drop_model(&self, model: &str) -> Result<(), StoreError>;
    /// Atomically replaces model `live` by model `scratch` (documents and checkpoint);
    /// `scratch` is gone afterwards.
    async fn swap_model(&self, live: &str, scratch: &str) -> Result<(), StoreError>;
}

/// Maps a driver error that has no more specific meaning in context.
///
/// Decoding failures mean the database holds something the store did not write
/// (or wrote under another schema), so they are [`StoreError::Corrupt`]; anything
/// else (I/O, pool timeout, SQL error) is [`StoreError::Database`]. Callers that
/// expect a particular failure (a unique violation meaning a lost optimistic lock)
/// check for it before falling back to this.
pub(crate) fn sql_error(err: sqlx::Error) -> StoreError {
    match err {
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
            StoreError::Corrupt(err.to_string())
        }
        other => StoreError::Database(other.to_string()),
    }
}

/// Converts a position or sequence read from SQL (always `BIGINT`/`INTEGER`,
/// i.e. i64) into the u64 the API uses; a negative value can only be corruption.
pub(crate) fn to_u64(value: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("negative {what}: {value}")))
}

/// The other way round, for binding API values into SQL.
pub(crate) fn to_i64(value: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(value)
        .map_err(|_| StoreError::Database(format!("{what} {value} does not fit in a BIGINT")))
}
