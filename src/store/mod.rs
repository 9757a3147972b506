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
//! What the two SQL backends do with the same code (decoding rows, the pages
//! of the typed tables, the statements spelled alike in both dialects) is
//! written once, generic over sqlx's database, in `shared` and `idempotency`.
//!
//! The store knows nothing of the domain: the claims an event makes are computed by
//! a function the engine injects ([`ClaimFn`]).

pub mod bridge;
mod idempotency;
pub mod json;
pub mod memory;
pub mod postgres;
pub mod rows;
mod shared;
pub mod sqlite;
pub mod url;

pub use bridge::{event_store, Repo, Store};
pub use memory::MemoryStore;
pub use postgres::PostgresStore;
pub use rows::{Cond, Key, Keys, PageQuery};
pub use sqlite::SqliteStore;
pub use url::{open, DatabaseUrl, Opened};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cqrs_es::persist::SerializedEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
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
    /// The store's own number for the event, given when it is written:
    /// unique, and increasing along every aggregate's stream and in the order
    /// events were written. The backends that number events as they append
    /// (memory, SQLite) use the position; PostgreSQL, which gives positions
    /// only after commit, its `event_id`. Inline read models (see [`Fold`])
    /// take their creation order from it, because it is known inside the
    /// appending transaction and a replay of the feed reads the same value.
    /// It belongs to one store: an export leaves it out (an import gets new
    /// ones).
    #[serde(default, skip_serializing)]
    pub event_id: u64,
    pub event_type: String,
    pub event_version: String,
    /// The serde JSON of the domain event (externally tagged: `{"NodeEnrolled": {…}}`).
    pub payload: Value,
    /// Who, why and when: a flat JSON object of strings (see `domain::metadata`).
    pub metadata: Value,
    pub recorded_at: DateTime<Utc>,
}

/// The columns of a `projection_failures` row as both SQL backends select
/// them (`model, position, aggregate_type, aggregate_id, event_type, error`),
/// and the time of recording in each dialect's own form.
pub(crate) type FailureColumns<T> = (String, i64, String, String, String, String, T);

impl ApplyFailure {
    /// A failure from its row; `failed_at` is the row's time, already read
    /// in the backend's dialect.
    pub(crate) fn from_columns<T>(
        (model, position, aggregate_type, aggregate_id, event_type, error, _): FailureColumns<T>,
        failed_at: DateTime<Utc>,
    ) -> Result<Self, StoreError> {
        Ok(ApplyFailure {
            model,
            position: to_u64(position, "position")?,
            aggregate_type,
            aggregate_id,
            event_type,
            error,
            failed_at,
        })
    }
}

/// The key of the stand-in payload the feed delivers for a stored event whose
/// JSON cannot be decoded: `{"$unreadable": "<why>"}` (see
/// [`RecordedEvent::unreadable`]).
pub const UNREADABLE: &str = "$unreadable";

impl RecordedEvent {
    /// Why this event's stored JSON could not be decoded, if it could not.
    ///
    /// The feed must not stop at one bad row: a page that fails as a whole
    /// would stop every consumer at that position forever (nothing after it
    /// could be read). So the feed delivers such an event with its place in
    /// the log intact and a stand-in payload saying why; consumers treat it as
    /// an event they cannot apply (the projector records it, see
    /// [`ApplyFailure`]; `export` refuses to write it). Loading an aggregate's
    /// own stream stays strict: a command must never decide on a state that
    /// misses an event.
    pub fn unreadable(&self) -> Option<&str> {
        self.payload.get(UNREADABLE)?.as_str()
    }
}

/// A feed event's payload and metadata from their decoding: as decoded, or
/// the stand-in of [`RecordedEvent::unreadable`].
pub(crate) fn feed_json(
    payload: Result<Value, StoreError>,
    metadata: Result<Value, StoreError>,
) -> (Value, Value) {
    match (payload, metadata) {
        (Ok(p), Ok(m)) => (p, m),
        (Err(e), _) | (_, Err(e)) => (
            serde_json::json!({ UNREADABLE: e.to_string() }),
            Value::Object(Default::default()),
        ),
    }
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
    /// Release every claim this owner holds (node deleted), or, with
    /// `scope`, every one it holds in that scope.
    ReleaseAll {
        owner: String,
        scope: Option<String>,
    },
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
    /// A failure ironledger words itself (a bad URL, a migration, a value
    /// out of range).
    #[error("database error: {0}")]
    Database(String),
    /// The database driver failed (I/O, pool timeout, an SQL error); its
    /// error is kept as the cause.
    #[error("database error: {0}")]
    Driver(#[source] sqlx::Error),
    #[error("corrupt data: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// A short name of the variant, for metrics: `conflict`, `claim`,
    /// `database`, `corrupt`.
    pub fn kind(&self) -> &'static str {
        match self {
            StoreError::Conflict => "conflict",
            StoreError::Claim(_) => "claim",
            StoreError::Database(_) | StoreError::Driver(_) => "database",
            StoreError::Corrupt(_) => "corrupt",
        }
    }
}

/// What [`LogStore::take_idempotency_key`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyState {
    /// The key was free (never used, or used longer ago than the retention
    /// window): it is now held, unanswered, for this request.
    Taken,
    /// The key is held for a request with another fingerprint.
    Mismatch,
    /// The key is held for this same request, which has no answer yet (it is
    /// being served, or its process died while serving it); since when, in
    /// milliseconds since the epoch.
    Pending { since_ms: i64 },
    /// The same request was answered; the answer recorded.
    Answered(Value),
}

/// What a held key means for a request with fingerprint `asked` (one rule
/// for every backend).
pub fn held_key_state(asked: &str, held: &str, since_ms: i64, answer: Option<Value>) -> KeyState {
    match answer {
        _ if asked != held => KeyState::Mismatch,
        Some(a) => KeyState::Answered(a),
        None => KeyState::Pending { since_ms },
    }
}

/// The lowest checkpoint of an **inline** model: one that appends write in
/// their own transaction (see [`Fold`]) instead of the feed-driven projector.
/// It stands above every position, so feed appliers find nothing left to
/// apply to it. Each time a model goes inline it may get a value of its own at
/// or above this one (PostgreSQL does: see [`LogStore::append_folded`]), so
/// that one inline period can be told from the next; see [`is_inline`].
pub const INLINE: u64 = 1 << 62;

/// Whether a checkpoint says its model is inline (see [`INLINE`]).
pub fn is_inline(checkpoint: u64) -> bool {
    checkpoint >= INLINE
}

/// What a swap of model `live` by model `scratch` ends with (see
/// [`LogStore::swap_model`]), from their checkpoints (`None`: no row): the
/// live model's checkpoint afterwards, or `None` to refuse ([`INLINE`] for
/// one that is inline: the backend may give it a value of its own).
///
/// A scratch model without a checkpoint is refused (another rebuild swapped it
/// in first), and so is one behind a fed live model (reads would go back in
/// time). An inline live model is up to date with every commit, so it is
/// replaced only by a scratch model at the head of the log (`at_head`: its
/// checkpoint is the head and no committed event waits for a position); the
/// result is inline at once (the store holds the lock that keeps appends out),
/// unless the scratch model has recorded failures (`failures`), which keep a
/// model fed from the log.
pub fn swap_outcome(
    live: Option<i64>,
    scratch: Option<i64>,
    at_head: bool,
    failures: bool,
) -> Option<u64> {
    match (live, scratch) {
        (_, None) => None,
        (Some(l), Some(s)) if is_inline(l as u64) => {
            at_head.then_some(if failures { s as u64 } else { INLINE })
        }
        (Some(l), Some(s)) => (l <= s).then_some(s as u64),
        (None, Some(s)) => Some(s as u64),
    }
}

/// The read models an append writes in its own transaction: folds of one
/// aggregate's own stream (an *inline* projection), so that the command's
/// answer already reads its own write, with no worker round to wait for.
///
/// The store only calls it; what the models hold is the projections' business
/// (`projections::InlineModels`). A model is written inline only while its
/// checkpoint says so ([`is_inline`]), which the append checks in its
/// transaction, under a lock that every change of a model's mode conflicts
/// with ([`LogStore::go_inline`], [`LogStore::swap_model`],
/// [`LogStore::drop_model`], plain appends and imports): so each event
/// reaches each model exactly once, either here or from the feed.
#[async_trait]
pub trait Fold: Send + Sync {
    /// The models it writes, in the order [`Fold::fold`] answers.
    fn models(&self) -> &[&'static str];

    /// What `events` (as stored: positions or ids, times) change in each
    /// model, reading the documents they start from through `store`. While
    /// a model stays inline those are the documents the aggregate's previous
    /// commit left (only its appends write them then, and a concurrent
    /// append of it fails the optimistic lock); the backends write a fold
    /// only when that held (see [`LogStore::append_folded`]). An error
    /// refuses the whole append.
    async fn fold(
        &self,
        store: &dyn LogStore,
        events: &[RecordedEvent],
    ) -> Result<Vec<Vec<DocChange>>, StoreError>;
}

/// Events as an append stores them, for its fold: `numbers(i)` is the
/// `i`-th event's `(position, event_id)` (on PostgreSQL the position is 0:
/// not given yet), all recorded at `recorded_at`.
pub(crate) fn recorded(
    events: &[SerializedEvent],
    numbers: impl Fn(usize) -> (u64, u64),
    recorded_at: DateTime<Utc>,
) -> Vec<RecordedEvent> {
    events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let (position, event_id) = numbers(i);
            RecordedEvent {
                position,
                aggregate_type: e.aggregate_type.clone(),
                aggregate_id: e.aggregate_id.clone(),
                sequence: e.sequence as u64,
                event_id,
                event_type: e.event_type.clone(),
                event_version: e.event_version.clone(),
                payload: e.payload.clone(),
                metadata: e.metadata.clone(),
                recorded_at,
            }
        })
        .collect()
}

/// The document changes of a fold as the commits the backends already know
/// how to write (checkpoints untouched): one per model that is inline.
pub(crate) fn folded_commits<'a>(
    models: &[&'a str],
    changes: &'a [Vec<DocChange>],
    inline: impl Fn(&str) -> bool,
) -> Vec<ModelCommit<'a>> {
    models
        .iter()
        .zip(changes)
        .filter(|(m, _)| inline(m))
        .map(|(m, c)| ModelCommit {
            model: m,
            from: INLINE,
            to: INLINE,
            changes: c,
            failures: &[],
        })
        .collect()
}

/// A write to one read-model document, applied with the projection's checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub enum DocChange {
    /// Writes a document with the values of its model's index columns (see
    /// [`rows`]; empty for a model without a typed table).
    Put {
        id: String,
        body: Value,
        keys: Keys,
    },
    Delete {
        id: String,
    },
}

impl DocChange {
    /// A document of a model without a typed table.
    pub fn put(id: impl Into<String>, body: Value) -> Self {
        DocChange::Put {
            id: id.into(),
            body,
            keys: Keys::new(),
        }
    }

    pub fn id(&self) -> &str {
        match self {
            DocChange::Put { id, .. } | DocChange::Delete { id } => id,
        }
    }
}

/// One model's part of a [`LogStore::commit_models`]: move its checkpoint from
/// `from` to `to`, write `changes` and record `failures`.
///
/// Borrowed, so that the projector can hand over the changes its overlays
/// buffered without copying documents.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelCommit<'a> {
    pub model: &'a str,
    pub from: u64,
    pub to: u64,
    pub changes: &'a [DocChange],
    /// Events of this batch the model could not apply (their `model` is this
    /// commit's; see [`ApplyFailure`]).
    pub failures: &'a [ApplyFailure],
}

/// An event a read model (or another consumer of the feed) could not apply:
/// the model went on without it, and this record says so until the model is
/// rebuilt (a rebuild replaces a model's failures with its own) or dropped.
///
/// One bad event must not stop the world: the projector records it in the
/// same transaction as the checkpoint that moves past it, and skips the
/// aggregate's later events in that model (they would apply to a state that
/// misses one of its events), recording each of them too. `/health`,
/// `ironledger failures` and `ironledger verify` show them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyFailure {
    pub model: String,
    pub position: u64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub event_type: String,
    /// Why the event could not be applied (never a secret: the error names
    /// the event and what was wrong with its shape, not its values).
    pub error: String,
    pub failed_at: DateTime<Utc>,
}

/// What one [`LogStore::sequence_report`] did, and what it had to leave.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sequenced {
    /// Events that got a position in this call.
    pub numbered: u64,
    /// Whether committed events still wait for a position because an older
    /// transaction is still running (PostgreSQL only). Whoever follows the feed
    /// should look again soon: nothing else will tell it when that transaction
    /// ends if it belongs to another process.
    pub waiting: bool,
}

/// Refuses a multi-model commit that names a model twice (the two
/// compare-and-sets could not both hold, and which changes should win would be
/// ambiguous), or writes keys its model's table does not have.
pub(crate) fn distinct_models(commits: &[ModelCommit<'_>]) -> Result<(), StoreError> {
    let mut seen = std::collections::HashSet::with_capacity(commits.len());
    for c in commits {
        for change in c.changes {
            if let DocChange::Put { keys, .. } = change {
                rows::check_keys(c.model, keys)?;
            }
        }
        if !seen.insert(c.model) {
            return Err(StoreError::Database(format!(
                "model {:?} appears twice in one commit",
                c.model
            )));
        }
    }
    Ok(())
}

/// The net effect of a commit's document changes: the last change per
/// `(model, id)` (a batch may touch one document several times), split into
/// upserts and deletes. The two sets are disjoint, so their order does not matter.
#[allow(clippy::type_complexity)]
pub(crate) fn last_changes<'a>(
    commits: &[ModelCommit<'a>],
) -> (
    Vec<(&'a str, &'a str, &'a Value, &'a Keys)>,
    Vec<(&'a str, &'a str)>,
) {
    let mut last: BTreeMap<(&str, &str), Option<(&Value, &Keys)>> = BTreeMap::new();
    for c in commits {
        for change in c.changes {
            match change {
                DocChange::Put { id, body, keys } => last.insert((c.model, id), Some((body, keys))),
                DocChange::Delete { id } => last.insert((c.model, id), None),
            };
        }
    }
    let (mut puts, mut deletes) = (vec![], vec![]);
    for ((model, id), body) in last {
        match body {
            Some((body, keys)) => puts.push((model, id, body, keys)),
            None => deletes.push((model, id)),
        }
    }
    (puts, deletes)
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
    ///
    /// Nothing folds these events into the read models: a model that is
    /// [`INLINE`] is handed back to the feed in the same transaction (its
    /// checkpoint becomes the head it stood at), so the projector applies
    /// them. The engine appends with [`append_folded`](Self::append_folded);
    /// this is for other writers (tests, tools). On PostgreSQL it takes the
    /// lock that keeps folding appends out, and first waits (numbering
    /// them) for committed events still without a position.
    async fn append(
        &self,
        events: &[SerializedEvent],
        claims: &[ClaimOp],
    ) -> Result<(), StoreError>;

    /// [`append`](Self::append), and in the same transaction the changes
    /// `fold` makes to each of its models whose checkpoint is [`INLINE`].
    /// Returns whether every one of them was: a model that is not (dropped,
    /// just swapped in, or never caught up) gets these events from the feed,
    /// and a caller that wants to read its own write must wait for that.
    async fn append_folded(
        &self,
        events: &[SerializedEvent],
        claims: &[ClaimOp],
        fold: &dyn Fold,
    ) -> Result<bool, StoreError>;

    /// Makes `models` inline (see [`Fold`]) if each stands at checkpoint `at`,
    /// `at` is the head of the log with no committed event still waiting for a
    /// position, and no model has a recorded failure; in one transaction that
    /// excludes appends, so no event can fall between the feed and the folds.
    /// False, changing nothing, otherwise (the feed moved on: catch up first).
    async fn go_inline(&self, models: &[&str], at: u64) -> Result<bool, StoreError>;

    /// The current holder of a claim, if any.
    async fn claim_owner(&self, scope: &str, key: &str) -> Result<Option<String>, StoreError>;

    // ---- the feed -----------------------------------------------------------

    /// Gives positions to committed events that have none yet, in commit order.
    /// A no-op for backends that number events when they append (memory, SQLite);
    /// PostgreSQL numbers them here so that no position is ever handed out to a
    /// transaction that may still commit behind a higher one.
    async fn sequence(&self) -> Result<(), StoreError>;

    /// [`sequence`](Self::sequence), reporting how many events it numbered and
    /// whether committed events are still held back. Backends that number events
    /// when they append have nothing to report.
    async fn sequence_report(&self) -> Result<Sequenced, StoreError> {
        self.sequence().await?;
        Ok(Sequenced::default())
    }

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
    /// The documents of `ids` that exist, in no particular order: what a
    /// batch of the feed will read, fetched in one query instead of one per
    /// document (see `projections::catch_up`).
    async fn doc_get_many(
        &self,
        model: &str,
        ids: &[String],
    ) -> Result<Vec<(String, Value)>, StoreError> {
        let mut found = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(doc) = self.doc_get(model, id).await? {
                found.push((id.clone(), doc));
            }
        }
        Ok(found)
    }
    /// Every document of a model, ordered by id.
    async fn doc_list(&self, model: &str) -> Result<Vec<(String, Value)>, StoreError>;
    /// The documents of a model whose id starts with `prefix`, ordered by id,
    /// at most `limit` of them: one range of the `(model, id)` index, so it
    /// costs the documents it returns, not the model's size (a node's history
    /// is the range `<node>/`).
    async fn doc_prefix(
        &self,
        model: &str,
        prefix: &str,
        limit: Option<u32>,
    ) -> Result<Vec<(String, Value)>, StoreError>;
    /// The documents of a model in id order after `after` (from the first
    /// without), at most `limit`: one bounded range of the primary key, so a
    /// whole model can be read page by page in bounded memory (`verify`).
    async fn doc_scan(
        &self,
        model: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<(String, Value)>, StoreError>;
    /// One page of a typed model (see [`rows`]): filtered, sorted and cut in
    /// the database through its indexes, so it costs the rows it returns.
    /// A model without a typed table, or a column its table lacks, is an error.
    async fn doc_page(
        &self,
        model: &str,
        query: &PageQuery<'_>,
    ) -> Result<Vec<(String, Value)>, StoreError>;
    /// [`doc_page`](Self::doc_page) without the documents: each row's id and
    /// the values of `columns` (index columns of its table, in that order),
    /// for callers that need no more than the columns hold (the background
    /// rounds, the API's default node list): no document is read or decoded.
    async fn row_keys(
        &self,
        model: &str,
        query: &PageQuery<'_>,
        columns: &[&'static str],
    ) -> Result<Vec<(String, Vec<Key>)>, StoreError>;
    /// Each matching row's id and `ord` (0 without one), from
    /// [`row_keys`](Self::row_keys): which rows match, and where a keyset
    /// cursor after them stands.
    async fn row_ids(
        &self,
        model: &str,
        query: &PageQuery<'_>,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(self
            .row_keys(model, query, &["ord"])
            .await?
            .into_iter()
            .map(|(id, keys)| {
                let ord = match keys.first() {
                    Some(Key::Int(o)) => *o,
                    _ => 0,
                };
                (id, ord)
            })
            .collect())
    }
    /// How many rows of a typed model hold each value of a text `column`
    /// (`None`: rows where it is null), in no particular order: one grouped
    /// scan of the column's index (the nodes by provision state of
    /// `/metrics`).
    async fn count_by(
        &self,
        model: &str,
        column: &'static str,
    ) -> Result<Vec<(Option<String>, u64)>, StoreError>;
    // ---- idempotency keys (`crate::api::idempotency`) ----------------------

    /// Holds `key` for a request with `fingerprint`, unless it is held
    /// already: then says for what. Keys taken before `expired_before_ms`
    /// (milliseconds since the epoch) are forgotten first, so a key is
    /// reusable after the retention window. Atomic: of two processes taking
    /// one key at once, exactly one gets [`KeyState::Taken`].
    async fn take_idempotency_key(
        &self,
        key: &str,
        fingerprint: &str,
        now_ms: i64,
        expired_before_ms: i64,
    ) -> Result<KeyState, StoreError>;
    /// Records the answer to the request holding `key`, or (`None`) lets the
    /// key go so that a retry runs again.
    async fn settle_idempotency_key(
        &self,
        key: &str,
        answer: Option<&Value>,
    ) -> Result<(), StoreError>;

    /// The position a model has applied up to (0 if it has none).
    async fn checkpoint(&self, model: &str) -> Result<u64, StoreError>;
    /// The checkpoints of several models (0 for a model that has none), in the
    /// order asked, read in one query: the projector needs all of them at once.
    async fn checkpoints(&self, models: &[&str]) -> Result<Vec<u64>, StoreError>;
    /// Writes `changes` and moves the model's checkpoint from `from` to `to` in one
    /// transaction, only if the checkpoint still is `from`. Returns false (and
    /// writes nothing) when another projector moved it first.
    async fn commit_model(
        &self,
        model: &str,
        from: u64,
        to: u64,
        changes: &[DocChange],
    ) -> Result<bool, StoreError> {
        self.commit_models(&[ModelCommit {
            model,
            from,
            to,
            changes,
            failures: &[],
        }])
        .await
    }
    /// [`commit_model`](Self::commit_model) for several models in **one**
    /// transaction, all or nothing: every model's checkpoint must still be its
    /// `from`, else nothing at all is written and the answer is false. The
    /// projector applies one batch of the feed to every projection and commits
    /// them together (one commit, one fsync, instead of one per projection).
    ///
    /// False may also mean that the database gave up on the transaction because of
    /// a concurrent one (deadlock, serialization failure): nothing was written
    /// either way, and the caller re-reads the checkpoints and tries again. A model
    /// named twice is an error. An empty list commits nothing and is true.
    async fn commit_models(&self, commits: &[ModelCommit<'_>]) -> Result<bool, StoreError>;
    /// Deletes every document, the checkpoint and the recorded failures of a
    /// model.
    async fn drop_model(&self, model: &str) -> Result<(), StoreError>;
    /// The failures recorded for `models` (every model's when empty), ordered
    /// by model and position.
    async fn failures(&self, models: &[&str]) -> Result<Vec<ApplyFailure>, StoreError>;
    /// Records a failure outside a checkpoint move (or replaces the one at
    /// its model and position): for consumers of the feed whose failures are
    /// not tied to one batch, like the process manager's.
    async fn record_failure(&self, failure: &ApplyFailure) -> Result<(), StoreError>;
    /// Forgets the failures recorded for one aggregate in `model`.
    async fn clear_failures(
        &self,
        model: &str,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<(), StoreError>;
    /// Atomically replaces model `live` by model `scratch` (documents, checkpoint
    /// and recorded failures);
    /// `scratch` is gone afterwards. Returns false, changing nothing, when
    /// `scratch` has no checkpoint (another rebuild swapped it in first: going
    /// on would empty the live model) or is behind `live` (the live projector
    /// moved on meanwhile: swapping would take reads back in time; catch the
    /// scratch model up and try again). An inline `live` is replaced only by
    /// a scratch model at the head of the log, under the lock that keeps
    /// appends out, and stays inline (see [`swap_outcome`]).
    async fn swap_model(&self, live: &str, scratch: &str) -> Result<bool, StoreError>;

    // ---- leases ---------------------------------------------------------------

    /// Takes lease `name` for `holder` for `ttl`, or renews it if `holder` has it.
    /// False when another holder has an unexpired lease.
    ///
    /// The default keeps leases in this process, which is exact for the memory
    /// store and for the embedded SQLite file (one server process); PostgreSQL,
    /// shared by several processes, keeps them in a table.
    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: std::time::Duration,
    ) -> Result<bool, StoreError> {
        Ok(local_leases::try_lease(name, holder, ttl))
    }

    /// Gives the lease up (only if `holder` has it).
    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        local_leases::release(name, holder);
        Ok(())
    }

    // ---- audit, secrets and migration (`ironledger events`, `export`, …) -----

    /// One aggregate's events that have a position, in sequence order, with
    /// their positions and times of recording (what `ironledger history` and
    /// `show --as-of` replay). The default scans the feed; backends override it
    /// with an indexed query.
    async fn load_recorded(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut out = vec![];
        let mut after = 0;
        loop {
            let page = self.read_feed(after, 1000).await?;
            let Some(last) = page.last() else { break };
            after = last.position;
            out.extend(
                page.into_iter().filter(|e| {
                    e.aggregate_type == aggregate_type && e.aggregate_id == aggregate_id
                }),
            );
        }
        out.sort_by_key(|e| e.sequence);
        Ok(out)
    }

    /// The claims held in `scope` (only `owner`'s, if given), as `(key, owner)`
    /// pairs ordered by key. The per-node data keys of `crate::secrets` are
    /// claims of scope `data_key`, so that they are written, and destroyed with
    /// `NodeDeleted`, in the same transaction as the events.
    async fn claims_in_scope(
        &self,
        scope: &str,
        owner: Option<&str>,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let _ = (scope, owner);
        Err(StoreError::Database(format!(
            "the {} store cannot list claims",
            self.backend()
        )))
    }

    /// Appends events that already have their positions and times of recording
    /// (a log being imported, see `ironledger import`) and applies `claims`, in
    /// one transaction. The events must continue the log exactly: the first
    /// position is `head() + 1` and positions are dense, else nothing is
    /// written and the answer is [`StoreError::Corrupt`]; a taken
    /// `(type, id, sequence)` is [`StoreError::Conflict`], a claim held by
    /// another owner [`StoreError::Claim`]. Not meant to run while other
    /// processes append. Like a plain [`append`](Self::append), it hands
    /// inline models back to the feed (`import` then builds them from it).
    async fn import_events(
        &self,
        events: &[RecordedEvent],
        claims: &[ClaimOp],
    ) -> Result<(), StoreError> {
        let _ = (events, claims);
        Err(StoreError::Database(format!(
            "the {} store cannot import events",
            self.backend()
        )))
    }
}

/// Checks that `events` continue a log whose head is `head` with dense
/// positions (the precondition of [`LogStore::import_events`]).
pub(crate) fn check_continues(head: u64, events: &[RecordedEvent]) -> Result<(), StoreError> {
    for (i, e) in events.iter().enumerate() {
        let want = head + 1 + i as u64;
        if e.position != want {
            return Err(StoreError::Corrupt(format!(
                "imported event {}/{} #{} has position {}, expected {want}",
                e.aggregate_type, e.aggregate_id, e.sequence, e.position
            )));
        }
    }
    Ok(())
}

/// Leases held in this process (the default of [`LogStore::try_lease`]).
mod local_leases {
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    static LEASES: Mutex<Option<HashMap<String, (String, Instant)>>> = Mutex::new(None);

    pub fn try_lease(name: &str, holder: &str, ttl: Duration) -> bool {
        let mut guard = LEASES.lock().expect("lease table");
        let map = guard.get_or_insert_with(HashMap::new);
        let now = Instant::now();
        match map.get(name) {
            Some((h, until)) if h != holder && *until > now => false,
            _ => {
                map.insert(name.to_string(), (holder.to_string(), now + ttl));
                true
            }
        }
    }

    pub fn release(name: &str, holder: &str) {
        let mut guard = LEASES.lock().expect("lease table");
        if let Some(map) = guard.as_mut() {
            if map.get(name).is_some_and(|(h, _)| h == holder) {
                map.remove(name);
            }
        }
    }
}

/// Maps a driver error that has no more specific meaning in context.
///
/// Decoding failures mean the database holds something the store did not write
/// (or wrote under another schema), so they are [`StoreError::Corrupt`]; anything
/// else (I/O, pool timeout, SQL error) is [`StoreError::Driver`]. Callers that
/// expect a particular failure (a unique violation meaning a lost optimistic lock)
/// check for it before falling back to this.
pub(crate) fn sql_error(err: sqlx::Error) -> StoreError {
    match err {
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
            StoreError::Corrupt(err.to_string())
        }
        other => StoreError::Driver(other),
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

/// The smallest string greater than every string that starts with `prefix`
/// (byte order), for `id >= prefix AND id < upper` range scans; `None` when
/// there is none (a prefix of only U+10FFFF characters: scan to the end).
pub(crate) fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        // The next scalar value; surrogates are not chars.
        let next = match last as u32 {
            0xD7FF => Some('\u{E000}'),
            n => char::from_u32(n + 1),
        };
        if let Some(c) = next {
            chars.push(c);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

#[cfg(test)]
mod prefix_tests {
    use super::prefix_upper_bound;

    #[test]
    fn the_upper_bound_follows_every_string_with_the_prefix() {
        assert_eq!(prefix_upper_bound("ab/").as_deref(), Some("ab0"));
        assert_eq!(prefix_upper_bound("").as_deref(), None);
        assert_eq!(prefix_upper_bound("a\u{10FFFF}").as_deref(), Some("b"));
        let upper = prefix_upper_bound("n/").unwrap();
        for id in ["n/", "n/0001", "n/\u{10FFFF}"] {
            assert!(id < upper.as_str(), "{id}");
        }
        assert!("n0" >= upper.as_str());
    }
}
