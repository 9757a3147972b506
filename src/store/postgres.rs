//! The production backend: PostgreSQL, shareable by several ironledger processes.
//!
//! The `events` table is postgres-es's, extended (see `schema/postgres/0001_events.sql`),
//! so postgres-es's tools can still read it. This module reads and writes
//! events (decoding them with [`super::json`], see [`crate::store::bridge`]
//! for why not through postgres-es), claims and read models, and owns the one
//! thing postgres-es lacks: a **gap-free global feed**.
//!
//! # The gap, and why positions are not handed out at insert time
//!
//! The obvious design — a `bigserial` column as the feed position, consumers
//! reading `WHERE pos > $checkpoint` — is broken under concurrency. Sequence values
//! are taken when a row is *inserted*, but become visible when the transaction
//! *commits*, and the two orders differ:
//!
//! ```text
//! T1: INSERT (takes id 5) ..................................... COMMIT
//! T2:          INSERT (takes id 6)  COMMIT
//! reader:                                  sees 6, checkpoint := 6
//! ```
//!
//! The reader never looks below 6 again, so event 5 is skipped forever.
//!
//! # The fix: number events after their transaction has finished
//!
//! An event is inserted with `position = NULL`, remembering its transaction id
//! (`tx_id = pg_current_xact_id()`) and its insert order (`event_id`). Later,
//! [`LogStore::sequence`] numbers the rows in one statement (see [`SEQUENCE_SQL`]):
//!
//! ```sql
//! -- under pg_advisory_xact_lock, READ COMMITTED
//! WITH base AS (SELECT coalesce(max(position), 0) AS p FROM events),
//!      todo AS (SELECT event_id, row_number() OVER (ORDER BY tx_id, event_id) AS n
//!               FROM events WHERE position IS NULL
//!                 AND tx_id < pg_snapshot_xmin(pg_current_snapshot()))
//! UPDATE events e SET position = base.p + todo.n FROM base, todo
//!  WHERE e.event_id = todo.event_id;
//! ```
//!
//! Why this is right:
//!
//! - **Nothing is numbered before it is final.** `xmin` of the statement's snapshot
//!   is the oldest transaction id still running anywhere in the cluster. Every
//!   transaction with a smaller id has finished: committed (its rows are visible to
//!   this very snapshot) or aborted (its rows do not exist). Transaction ids are
//!   handed out in increasing order, so a transaction that is still running, or has
//!   not written yet, has an id `>= xmin`. Hence the set `todo` numbers is final: no
//!   event that sorts before any of them in `(tx_id, event_id)` order can still
//!   appear.
//! - **So a position is a rank.** When an event is numbered, every event ranked
//!   before it in `(tx_id, event_id)` order is already numbered (in an earlier
//!   round) or in this round's `todo`; `base.p + n` continues after them. By
//!   induction, `position` = 1 + the number of events ranked before it: dense,
//!   ordered, and a pure function of the log, not of when the sequencer ran.
//!   (`tests/store/feed_gap.rs` checks exactly this.)
//! - **So a reader cannot skip.** A position is written once, only for a committed
//!   event, and every event numbered later gets a higher one. A reader of
//!   `WHERE position > $after ORDER BY position` that advances its checkpoint to the
//!   last position it saw never misses anything and never sees anything twice.
//! - **The advisory lock** serializes sequencers, across processes too, so rounds
//!   do not do the same work twice or deadlock on each other's row locks. It is
//!   taken in its own statement and the transaction is `READ COMMITTED`, so the
//!   `UPDATE` takes its snapshot *after* acquiring the lock and sees the previous
//!   round's positions. (Even racing sequencers would compute the same ranks; the
//!   `UNIQUE` index on `position` is the last line of defence.)
//!
//! The order is transaction-id order, not strictly commit order: of two overlapping
//! transactions, the one that *started writing* first comes first. For what the
//! feed is used for this is as good: the events of one aggregate are in sequence
//! order (a writer loads the stream before it writes, so its id is higher than
//! that of the previous writer, which had committed), and anything that reacted to
//! an event it read from the feed wrote later, so it ranks later too.
//!
//! A sequencing round is skipped when a read-only look at the (small) index of
//! unnumbered rows finds nothing ready, and it commits with
//! `synchronous_commit = off`: a position is a pure function of the log, so a
//! round lost in a crash is redone with the very same numbers, and whatever
//! durable state depends on a position (a projection checkpoint) is committed
//! synchronously afterwards, which flushes the round's WAL first (see
//! `PostgresStore::sequence_round`).
//!
//! **Caveat:** a long-running transaction anywhere in the cluster (any database,
//! any application) that holds a transaction id keeps `xmin` down, and events
//! committed after it started wait for a position until it ends. That delays the
//! feed (projections, the process manager); it never loses or reorders an event.
//! Read-only transactions have no id and do not delay anything.
//! [`LogStore::sequence_report`] says when events are held back this way, so
//! that the projector keeps looking for them.
//!
//! # Read models
//!
//! The projector commits a batch for all its models in one transaction
//! ([`LogStore::commit_models`]): one `SELECT … FOR UPDATE` takes the models'
//! checkpoint rows in model order and checks every compare-and-set, then one
//! statement moves the checkpoints and two `unnest` statements per table
//! (`read_models` and the typed tables of [`super::rows`]) write every
//! model's documents.

use super::rows::{self, Dialect, Key, Keys, PageQuery};
use super::{
    distinct_models, last_changes, sql_error, to_i64, to_u64, ApplyFailure, ClaimConflict, ClaimOp,
    FailureColumns, Fold, KeyState, LogStore, ModelCommit, RecordedEvent, Sequenced, StoreError,
    INLINE,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cqrs_es::persist::SerializedEvent;
use serde_json::Value;
use sqlx::postgres::{PgArguments, PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::types::Json;
use sqlx::{Connection, Executor, Row};

/// A `json`/`jsonb` column decoded by the one decoder of stored data
/// ([`super::json`]), not by sqlx's (serde_json's 128-level limit): what was
/// stored must read back, however it is nested.
struct Stored(Value);

impl sqlx::Type<sqlx::Postgres> for Stored {
    fn type_info() -> sqlx::postgres::PgTypeInfo {
        <Json<Value> as sqlx::Type<sqlx::Postgres>>::type_info()
    }

    fn compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {
        <Json<Value> as sqlx::Type<sqlx::Postgres>>::compatible(ty)
    }
}

impl<'r> sqlx::Decode<'r, sqlx::Postgres> for Stored {
    fn decode(value: sqlx::postgres::PgValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        use sqlx::ValueRef;
        let binary_jsonb = value.format() == sqlx::postgres::PgValueFormat::Binary
            && *value.type_info() == <Json<Value> as sqlx::Type<sqlx::Postgres>>::type_info();
        let mut bytes = value.as_bytes()?;
        if binary_jsonb {
            // jsonb's binary form is a version byte (1) and the JSON text.
            match bytes.split_first() {
                Some((1, text)) => bytes = text,
                _ => return Err("unsupported jsonb format version".into()),
            }
        }
        Ok(Stored(super::json::decode_slice(bytes)?))
    }
}
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The schema, applied in order by [`PostgresStore::connect`] / [`PostgresStore::from_pool`].
/// A version is applied once; never edit a released file, add a new one.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "0001_events",
        include_str!("../../schema/postgres/0001_events.sql"),
    ),
    (
        2,
        "0002_claims",
        include_str!("../../schema/postgres/0002_claims.sql"),
    ),
    (
        3,
        "0003_read_models",
        include_str!("../../schema/postgres/0003_read_models.sql"),
    ),
    (
        4,
        "0004_leases",
        include_str!("../../schema/postgres/0004_leases.sql"),
    ),
    (
        5,
        "0005_projection_failures",
        include_str!("../../schema/postgres/0005_projection_failures.sql"),
    ),
    (
        6,
        "0006_read_tables",
        include_str!("../../schema/postgres/0006_read_tables.sql"),
    ),
    (
        7,
        "0007_idempotency_keys",
        include_str!("../../schema/postgres/0007_idempotency_keys.sql"),
    ),
];

/// First half of the advisory-lock key that serializes migrations ("ILMG"). The
/// second half is a hash of the target schema, so deployments (or tests) in
/// different schemas of one database do not wait for each other.
const MIGRATION_LOCK: i32 = 0x494C_4D47;

/// First half of the advisory-lock key that serializes sequencers ("ILSQ"). The
/// second half is the `events` table's OID, which is per schema.
const SEQUENCER_LOCK: i32 = 0x494C_5351;

/// First half of the advisory-lock keys of claims ("ILCL"); the second half
/// hashes the claim's scope and key. See [`lock_claim_keys`].
const CLAIM_LOCK: i32 = 0x494C_434C;

/// First half of the advisory-lock key between appends that fold inline
/// models (shared) and what changes whether a model is inline: going inline,
/// swapping, dropping (exclusive) ("ILIN"); the second half is the `events`
/// table's OID. See [`LogStore::go_inline`].
const INLINE_LOCK: i32 = 0x494C_494E;

/// The statement that takes [`INLINE_LOCK`] in the current transaction:
/// `$1`, shared or not.
const INLINE_LOCK_SQL: &str = "SELECT CASE WHEN $1 \
     THEN pg_advisory_xact_lock_shared($2, 'events'::regclass::oid::int4) \
     ELSE pg_advisory_xact_lock($2, 'events'::regclass::oid::int4) END";

/// The checkpoint a model gets when it goes inline, `$2` being [`INLINE`]:
/// above it by a number drawn from the event-id sequence, so that no two
/// inline periods of a model share a checkpoint. An append whose fold read
/// documents during one period writes them only if the period still lasts.
const INLINE_MARK_SQL: &str = "$2 + nextval(pg_get_serial_sequence('events', 'event_id'))";

/// An event with the id and time its fold was given (see
/// [`LogStore::append_folded`]).
const INSERT_FOLDED_EVENT_SQL: &str = "INSERT INTO events \
     (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata, \
      event_id, recorded_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'epoch'::timestamptz + $9::int8 * interval '1 microsecond')";

/// How many events one sequencing round numbers at most. Rounds repeat until the
/// backlog is done; the cap keeps each transaction (and its row locks) short.
const SEQUENCE_BATCH: i64 = 10_000;

const MAX_CONNECTIONS: u32 = 16;
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// Inserts one event, leaving `event_id`, `tx_id`, `recorded_at` to their defaults
/// and `position` NULL (the sequencer fills it in after commit).
///
/// Parameters: `$1` aggregate_type (text), `$2` aggregate_id (text), `$3` sequence
/// (int8), `$4` event_type, `$5` event_version, `$6` payload (jsonb), `$7` metadata
/// (jsonb). The column list is postgres-es's. Public so that tests can hold raw
/// transactions open to provoke out-of-order commits.
pub const INSERT_EVENT_SQL: &str = "INSERT INTO events \
     (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
     VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// Numbers committed, unnumbered events (see the module docs for why it is
/// correct). `$1` caps the batch. Must run in a `READ COMMITTED` transaction, after
/// the sequencer's advisory lock is taken (as `PostgresStore::sequence` does).
///
/// Returns one row: how many events it numbered, and whether committed events
/// are still held back by an older, still running transaction (`waiting`; the
/// data-modifying CTE and the final `SELECT` share one snapshot, so this is
/// exact as of the numbering).
pub const SEQUENCE_SQL: &str = "\
WITH base AS (SELECT coalesce(max(position), 0) AS p FROM events),
     todo AS (SELECT event_id, row_number() OVER (ORDER BY tx_id, event_id) AS n
                FROM (SELECT event_id, tx_id FROM events
                       WHERE position IS NULL
                         AND tx_id < pg_snapshot_xmin(pg_current_snapshot())
                       ORDER BY tx_id, event_id
                       LIMIT $1) AS ready),
     numbered AS (UPDATE events e SET position = base.p + todo.n
                    FROM base, todo
                   WHERE e.event_id = todo.event_id
                  RETURNING 1)
SELECT (SELECT count(*) FROM numbered)::int8 AS numbered,
       EXISTS (SELECT 1 FROM events
                WHERE position IS NULL
                  AND tx_id >= pg_snapshot_xmin(pg_current_snapshot())) AS waiting";

/// Whether any committed event is ready for a position, and whether any waits
/// for one at all: a read-only look (no transaction id, no lock) through the
/// small `events_unsequenced` index, so that a sequencer with nothing to do
/// does not run its transaction.
const UNSEQUENCED_SQL: &str = "\
SELECT EXISTS (SELECT 1 FROM events
                WHERE position IS NULL
                  AND tx_id < pg_snapshot_xmin(pg_current_snapshot())) AS ready,
       EXISTS (SELECT 1 FROM events WHERE position IS NULL) AS unsequenced";

const SELECT_FEED_SQL: &str = "\
SELECT position, aggregate_type, aggregate_id, sequence, event_id, event_type, event_version,
       payload, metadata,
       (extract(epoch FROM recorded_at) * 1000000)::int8 AS recorded_us
  FROM events
 WHERE position > $1
 ORDER BY position
 LIMIT $2";

/// The PostgreSQL backend.
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// Set by every append of this process, cleared by the sequencer: while set,
    /// there is (almost certainly) something to number, and the sequencer skips
    /// its look at the unnumbered rows and runs its round at once.
    appended: Arc<AtomicBool>,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user:pass@host:port/db?…`) with a pool of up to
    /// 16 connections and applies the schema migrations.
    ///
    /// Unlike postgres-es's pool helper, this never panics: an unreachable server
    /// or a rejected login is a [`StoreError::Database`] carrying the server's or
    /// the network's reason.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let mut options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Database(format!("bad PostgreSQL URL: {e}")))?;
        if options.get_application_name().is_none() {
            // Makes our sessions recognizable in pg_stat_activity.
            options = options.application_name("ironledger");
        }
        // One direct connection first: the pool would retry a refused or rejected
        // connection until its acquire timeout and then report only "timed out";
        // this fails at once with the server's actual reason.
        let probe = PgConnection::connect_with(&options)
            .await
            .map_err(|e| StoreError::Database(format!("cannot connect to PostgreSQL: {e}")))?;
        let _ = probe.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|e| StoreError::Database(format!("cannot connect to PostgreSQL: {e}")))?;
        Self::from_pool(pool).await
    }

    /// Wraps an existing pool (whose connections may carry their own settings, e.g.
    /// a `search_path` pointing at a per-test schema) and applies the migrations to
    /// the schema its connections create tables in.
    pub async fn from_pool(pool: PgPool) -> Result<Self, StoreError> {
        migrate(&pool).await?;
        Ok(Self {
            pool,
            appended: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The pool (tests and tools use it for raw SQL).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// One sequencing round: what it numbered and whether events are held back.
    ///
    /// The round commits with `synchronous_commit = off`: it does not wait for its
    /// WAL to reach the disk (one fsync less per command). That weakens nothing,
    /// because a position is a pure function of the log (see the module docs): if
    /// the server crashes before the round's WAL is flushed, the positions are
    /// simply gone and the next round hands out exactly the same ones again. And
    /// anything durable that depends on them (a projection's checkpoint) is
    /// committed synchronously *later*, which flushes the WAL up to and including
    /// this round's commit record.
    async fn sequence_round(&self) -> Result<Sequenced, StoreError> {
        let mut tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL READ COMMITTED")
            .await
            .map_err(sql_error)?;
        sqlx::query(
            "SELECT pg_advisory_xact_lock($1, 'events'::regclass::oid::int4), \
                    set_config('synchronous_commit', 'off', true)",
        )
        .bind(SEQUENCER_LOCK)
        .execute(&mut *tx)
        .await
        .map_err(sql_error)?;
        let (numbered, waiting): (i64, bool) = sqlx::query_as(SEQUENCE_SQL)
            .bind(SEQUENCE_BATCH)
            .fetch_one(&mut *tx)
            .await
            .map_err(sql_error)?;
        tx.commit().await.map_err(sql_error)?;
        Ok(Sequenced {
            numbered: to_u64(numbered, "count")?,
            waiting,
        })
    }

    /// One page of a typed model (see [`rows::page_select`]), its rows with the
    /// `select` columns in order.
    async fn page(
        &self,
        model: &str,
        select: &[&'static str],
        query: &PageQuery<'_>,
    ) -> Result<Vec<PgRow>, StoreError> {
        let table = rows::page_table(model, query)?;
        let sql = rows::page_select(table, model, select, query, Dialect::Postgres);
        let mut q = sqlx::query(&sql.text);
        for key in &sql.binds {
            q = bind_key(q, key);
        }
        q.fetch_all(&self.pool).await.map_err(sql_error)
    }

    /// The transaction of [`LogStore::commit_models`], on model-sorted arrays.
    /// Returns the driver's error as is, so that the caller can tell a deadlock or
    /// serialization failure (nothing written, try again) from a real failure.
    async fn commit_sorted(
        &self,
        models: &[&str],
        froms: &[i64],
        tos: &[i64],
        commits: &[ModelCommit<'_>],
    ) -> Result<bool, sqlx::Error> {
        let mut tx = self.pool.begin().await?;

        // The compare-and-set comes first, so that it takes the checkpoint row
        // locks before any document is touched. A concurrent committer of the same
        // models blocks here; when it resumes, PostgreSQL hands it the rows as we
        // committed them (READ COMMITTED re-reads a row it waited for), it sees
        // `position <> from`, and gives up: a batch is never applied twice. Rows
        // are locked in model order, so two committers cannot deadlock on them.
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT model, position FROM checkpoints \
             WHERE model = ANY($1) ORDER BY model FOR UPDATE",
        )
        .bind(models)
        .fetch_all(&mut *tx)
        .await?;
        let current: HashMap<&str, i64> = rows.iter().map(|(m, p)| (m.as_str(), *p)).collect();
        let holds = models
            .iter()
            .zip(froms)
            .all(|(m, from)| current.get(m).copied().unwrap_or(0) == *from);
        if !holds {
            tx.rollback().await?;
            return Ok(false);
        }

        // Move every checkpoint in one statement. The rows that exist are ours
        // (locked above). A model without a row (checkpoint 0) gets one; if a
        // concurrent committer inserts it first, we wait for it, the guard then
        // fails on its position, and fewer rows than models are affected.
        let moved = sqlx::query(
            "INSERT INTO checkpoints (model, position) \
             SELECT model, position FROM unnest($1::text[], $2::int8[]) AS m(model, position) \
             ON CONFLICT (model) DO UPDATE SET position = EXCLUDED.position \
               WHERE checkpoints.position = \
                 (SELECT f.position FROM unnest($1::text[], $3::int8[]) AS f(model, position) \
                   WHERE f.model = EXCLUDED.model)",
        )
        .bind(models)
        .bind(tos)
        .bind(froms)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if moved != models.len() as u64 {
            tx.rollback().await?;
            return Ok(false);
        }

        write_changes(&mut tx, commits).await?;
        for c in commits {
            for f in c.failures {
                insert_failure(&mut tx, c.model, f).await?;
            }
        }
        tx.commit().await?;
        Ok(true)
    }
}

/// Takes [`INLINE_LOCK`] exclusively in `tx`: see [`LogStore::go_inline`].
async fn lock_inline_exclusive(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
) -> Result<(), StoreError> {
    sqlx::query(INLINE_LOCK_SQL)
        .bind(false)
        .bind(INLINE_LOCK)
        .execute(&mut **tx)
        .await
        .map_err(sql_error)?;
    Ok(())
}

/// What [`hand_inline_models_to_the_feed`] did.
enum Handoff {
    /// No model is inline any more (the lock held keeps it so).
    Done,
    /// Some are: start again holding the lock exclusively.
    NeedsExclusive,
    /// Committed events wait for a position: number them, start again.
    Waiting,
}

/// Makes the inline models fed again, from the head they stand at, for an
/// append that does not fold its events (see [`LogStore::append`]).
///
/// Takes [`INLINE_LOCK`] for the rest of `tx`: shared first, which keeps any
/// model from going inline before this append commits (plain appends do not
/// wait for each other); exclusively when some model is inline, so that no
/// folding append commits meanwhile and every numbered event was folded. An
/// event still waiting for a position could not be placed on either side of
/// the head the models are handed over at.
async fn hand_inline_models_to_the_feed(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    exclusive: bool,
) -> Result<Handoff, StoreError> {
    sqlx::query(INLINE_LOCK_SQL)
        .bind(!exclusive)
        .bind(INLINE_LOCK)
        .execute(&mut **tx)
        .await
        .map_err(sql_error)?;
    let (head, waiting, inline): (i64, bool, bool) = sqlx::query_as(
        "SELECT (SELECT coalesce(max(position), 0) FROM events), \
                EXISTS (SELECT 1 FROM events WHERE position IS NULL), \
                EXISTS (SELECT 1 FROM checkpoints WHERE position >= $1)",
    )
    .bind(INLINE as i64)
    .fetch_one(&mut **tx)
    .await
    .map_err(sql_error)?;
    if !inline {
        return Ok(Handoff::Done);
    }
    if !exclusive {
        return Ok(Handoff::NeedsExclusive);
    }
    if waiting {
        return Ok(Handoff::Waiting);
    }
    hand_back_at(tx, head).await?;
    Ok(Handoff::Done)
}

/// Makes every inline model fed again from `head` (the caller holds
/// [`INLINE_LOCK`] exclusively).
async fn hand_back_at(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    head: i64,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE checkpoints SET position = $1 WHERE position >= $2")
        .bind(head)
        .bind(INLINE as i64)
        .execute(&mut **tx)
        .await
        .map_err(sql_error)?;
    Ok(())
}

/// Writes the net document changes of `commits` (not their checkpoints):
/// every table's documents in (at most) two set-based statements.
async fn write_changes(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    commits: &[ModelCommit<'_>],
) -> Result<(), sqlx::Error> {
    let (puts, deletes) = last_changes(commits);
    for (table, puts) in by_table(puts, |p| p.0) {
        write_docs(tx, table, &puts).await?;
    }
    for (table, deletes) in by_table(deletes, |d| d.0) {
        let (del_models, del_ids): (Vec<&str>, Vec<&str>) = deletes.into_iter().unzip();
        sqlx::query(&format!(
            "DELETE FROM {table} r \
             USING unnest($1::text[], $2::text[]) AS d(model, id) \
             WHERE r.model = d.model AND r.id = d.id"
        ))
        .bind(&del_models)
        .bind(&del_ids)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Splits a commit's net changes by the SQL table of their model.
fn by_table<T>(items: Vec<T>, model: impl Fn(&T) -> &str) -> Vec<(&'static str, Vec<T>)> {
    let mut out: Vec<(&'static str, Vec<T>)> = vec![];
    for item in items {
        let table = rows::sql_table(model(&item));
        match out.iter_mut().find(|(t, _)| *t == table) {
            Some((_, v)) => v.push(item),
            None => out.push((table, vec![item])),
        }
    }
    out
}

/// One index column of a batch of rows, as the typed array `unnest` reads.
enum Column<'a> {
    Int(Vec<Option<i64>>),
    Text(Vec<Option<&'a str>>),
}

/// Upserts documents of one SQL table in one statement: `body` and, in a
/// typed table, every index column (a column the keys leave out becomes
/// NULL, so a key that is gone is gone from the index too).
async fn write_docs(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    table: &'static str,
    puts: &[(&str, &str, &Value, &Keys)],
) -> Result<(), sqlx::Error> {
    let typed = puts.first().and_then(|p| rows::table_of(p.0));
    let index_columns = typed.map_or(&[][..], |t| t.columns);
    let mut columns: Vec<Column<'_>> = index_columns
        .iter()
        .map(|c| match rows::is_int(c) {
            true => Column::Int(Vec::with_capacity(puts.len())),
            false => Column::Text(Vec::with_capacity(puts.len())),
        })
        .collect();
    let (mut models, mut ids, mut bodies) = (vec![], vec![], vec![]);
    for &(model, id, body, keys) in puts {
        models.push(model);
        ids.push(id);
        bodies.push(Json(body));
        let values = typed.map_or(vec![], |t| t.values(keys));
        for ((name, column), value) in index_columns.iter().zip(&mut columns).zip(values) {
            match (column, value) {
                (Column::Int(v), Key::Null) => v.push(None),
                (Column::Text(v), Key::Null) => v.push(None),
                (Column::Int(v), Key::Int(i)) => v.push(Some(*i)),
                (Column::Text(v), Key::Text(s)) => v.push(Some(s.as_str())),
                // `rows::check_keys` refused it before the transaction began.
                _ => {
                    return Err(sqlx::Error::Encode(
                        format!("a value of the wrong type for {table}.{name}").into(),
                    ))
                }
            }
        }
    }
    let mut arrays = vec![
        "$1::text[]".to_string(),
        "$2::text[]".into(),
        "$3::jsonb[]".into(),
    ];
    for (i, c) in index_columns.iter().enumerate() {
        let ty = if rows::is_int(c) { "int8" } else { "text" };
        arrays.push(format!("${}::{ty}[]", i + 4));
    }
    let set: Vec<String> = ["body"]
        .iter()
        .chain(index_columns)
        .map(|c| format!("{c} = EXCLUDED.{c}"))
        .collect();
    let sql = format!(
        "INSERT INTO {table} (model, id, body{}) SELECT * FROM unnest({}) \
         ON CONFLICT (model, id) DO UPDATE SET {}",
        index_columns
            .iter()
            .map(|c| format!(", {c}"))
            .collect::<String>(),
        arrays.join(", "),
        set.join(", ")
    );
    let mut query = sqlx::query(&sql).bind(&models).bind(&ids).bind(&bodies);
    for c in &columns {
        query = match c {
            Column::Int(v) => query.bind(v),
            Column::Text(v) => query.bind(v),
        };
    }
    query.execute(&mut **tx).await?;
    Ok(())
}

/// What a statement of [`LogStore::swap_model`] binds: `live`, `scratch`, or
/// both (`live` as `$1`, `scratch` as `$2`).
enum Binds {
    Live,
    Scratch,
    Both,
}

/// Binds one index value as its PostgreSQL type (`int8` or `text`, the
/// types of the index columns).
fn bind_key<'q>(
    query: sqlx::query::Query<'q, sqlx::Postgres, PgArguments>,
    key: &'q Key,
) -> sqlx::query::Query<'q, sqlx::Postgres, PgArguments> {
    match key {
        Key::Null => query.bind(None::<&str>),
        Key::Int(i) => query.bind(*i),
        Key::Text(s) => query.bind(s.as_str()),
    }
}

/// Records (or replaces) one failure of `model`.
async fn insert_failure(
    conn: &mut PgConnection,
    model: &str,
    f: &ApplyFailure,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO projection_failures (model, position, aggregate_type, \
         aggregate_id, event_type, error, failed_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7::timestamptz) \
         ON CONFLICT (model, position) DO UPDATE SET error = EXCLUDED.error, \
         failed_at = EXCLUDED.failed_at",
    )
    .bind(model)
    .bind(f.position as i64)
    .bind(&f.aggregate_type)
    .bind(&f.aggregate_id)
    .bind(&f.event_type)
    .bind(&f.error)
    .bind(
        f.failed_at
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Applies every migration not yet recorded in `schema_migrations`, each in its own
/// transaction under an advisory lock, so that two processes starting together do
/// not both run a file (PostgreSQL DDL is transactional: the loser waits for the
/// lock, then finds the version recorded).
pub async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    for &(version, name, sql) in MIGRATIONS {
        let mut tx = pool.begin().await.map_err(sql_error)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))")
            .bind(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(sql_error)?;
        // `Executor::execute` rather than `RawSql::execute`: the latter's generic
        // future is not `Send` for all lifetimes, so `connect` could not be spawned.
        tx.execute(sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS schema_migrations (\
                 version bigint PRIMARY KEY, \
                 name text NOT NULL, \
                 applied_at timestamptz NOT NULL DEFAULT now())",
        ))
        .await
        .map_err(sql_error)?;
        let applied: Option<i64> =
            sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = $1")
                .bind(version)
                .fetch_optional(&mut *tx)
                .await
                .map_err(sql_error)?;
        if applied.is_some() {
            tx.rollback().await.map_err(sql_error)?;
            continue;
        }
        tx.execute(sqlx::raw_sql(sql))
            .await
            .map_err(|e| StoreError::Database(format!("migration {name} failed: {e}")))?;
        sqlx::query("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)")
            .bind(version)
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(sql_error)?;
        tx.commit().await.map_err(sql_error)?;
        tracing::info!(migration = name, "applied PostgreSQL migration");
    }
    Ok(())
}

/// A deadlock or serialization failure: PostgreSQL aborted the transaction only
/// because of a concurrent one. Retrying (after reloading) is the right response,
/// exactly as for an optimistic-lock conflict, so appends report it as
/// [`StoreError::Conflict`].
fn is_transient(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == "40P01" || c == "40001")
}

fn is_unique_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
}

/// Error mapping inside `append`: the events primary key is the optimistic lock.
fn append_error(err: sqlx::Error) -> StoreError {
    if is_unique_violation(&err) || is_transient(&err) {
        StoreError::Conflict
    } else {
        sql_error(err)
    }
}

fn serialized_from_row(row: &PgRow) -> Result<SerializedEvent, StoreError> {
    Ok(SerializedEvent {
        aggregate_type: row.try_get("aggregate_type").map_err(sql_error)?,
        aggregate_id: row.try_get("aggregate_id").map_err(sql_error)?,
        sequence: to_u64(row.try_get("sequence").map_err(sql_error)?, "sequence")? as usize,
        event_type: row.try_get("event_type").map_err(sql_error)?,
        event_version: row.try_get("event_version").map_err(sql_error)?,
        payload: row.try_get::<Stored, _>("payload").map_err(sql_error)?.0,
        metadata: row.try_get::<Stored, _>("metadata").map_err(sql_error)?.0,
    })
}

/// A feed event; JSON that does not decode gets the stand-in of
/// [`RecordedEvent::unreadable`] instead of failing the whole page.
fn recorded_from_row(row: &PgRow) -> Result<RecordedEvent, StoreError> {
    let micros: i64 = row.try_get("recorded_us").map_err(sql_error)?;
    let json = |column: &str| {
        row.try_get::<Stored, _>(column)
            .map(|s| s.0)
            .map_err(sql_error)
    };
    let (payload, metadata) = super::feed_json(json("payload"), json("metadata"));
    Ok(RecordedEvent {
        position: to_u64(row.try_get("position").map_err(sql_error)?, "position")?,
        aggregate_type: row.try_get("aggregate_type").map_err(sql_error)?,
        aggregate_id: row.try_get("aggregate_id").map_err(sql_error)?,
        sequence: to_u64(row.try_get("sequence").map_err(sql_error)?, "sequence")?,
        event_id: to_u64(row.try_get("event_id").map_err(sql_error)?, "event_id")?,
        event_type: row.try_get("event_type").map_err(sql_error)?,
        event_version: row.try_get("event_version").map_err(sql_error)?,
        payload,
        metadata,
        recorded_at: DateTime::<Utc>::from_timestamp_micros(micros)
            .ok_or_else(|| StoreError::Corrupt(format!("recorded_at out of range: {micros}")))?,
    })
}

#[async_trait]
impl LogStore for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn load(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT aggregate_type, aggregate_id, sequence, event_type, event_version, \
                    payload, metadata \
             FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence",
        )
        .bind(aggregate_type)
        .bind(aggregate_id)
        .fetch_all(&self.pool)
        .await
        .map_err(sql_error)?;
        rows.iter().map(serialized_from_row).collect()
    }

    async fn append(
        &self,
        events: &[SerializedEvent],
        claims: &[ClaimOp],
    ) -> Result<(), StoreError> {
        if events.is_empty() && claims.is_empty() {
            return Ok(());
        }
        // Dropping `tx` on an early return rolls it back.
        let mut tx = self.pool.begin().await.map_err(sql_error)?;
        let (mut exclusive, mut tries) = (false, 0);
        while !events.is_empty() {
            match hand_inline_models_to_the_feed(&mut tx, exclusive).await? {
                Handoff::Done => break,
                Handoff::NeedsExclusive => exclusive = true,
                Handoff::Waiting => {
                    // Committed events wait for a position: number them first.
                    tries += 1;
                    if tries == 100 {
                        return Err(StoreError::Database(
                            "an append that does not fold the inline read models waits \
                             for committed events to get positions, and an older \
                             transaction holds them back"
                                .into(),
                        ));
                    }
                    tx.rollback().await.map_err(sql_error)?;
                    self.sequence().await?;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    tx = self.pool.begin().await.map_err(sql_error)?;
                    continue;
                }
            }
            tx.rollback().await.map_err(sql_error)?;
            tx = self.pool.begin().await.map_err(sql_error)?;
        }
        lock_claim_keys(&mut tx, claims).await?;
        for e in events {
            sqlx::query(INSERT_EVENT_SQL)
                .bind(&e.aggregate_type)
                .bind(&e.aggregate_id)
                .bind(to_i64(e.sequence as u64, "sequence")?)
                .bind(&e.event_type)
                .bind(&e.event_version)
                .bind(&e.payload)
                .bind(&e.metadata)
                .execute(&mut *tx)
                .await
                .map_err(append_error)?;
        }
        apply_claims(&mut tx, claims).await?;
        tx.commit().await.map_err(append_error)?;
        self.appended.store(true, Ordering::Release);
        Ok(())
    }

    async fn append_folded(
        &self,
        events: &[SerializedEvent],
        claims: &[ClaimOp],
        fold: &dyn Fold,
    ) -> Result<bool, StoreError> {
        if events.is_empty() && claims.is_empty() {
            return Ok(true);
        }
        // The fold runs before the transaction, through the pool: reading
        // on another connection while holding one would let a full pool wait
        // on itself. So the events' ids and time are taken first (ids from
        // the column's own sequence: unique, increasing; a failed append only
        // leaves a gap) and the rows are written with them. The documents
        // the fold reads are complete only for a model that was already
        // inline (every earlier event of the aggregate was folded or fed into
        // it before it went inline), and still are only if it stayed inline
        // since, without a drop or a swap in between: each inline period has
        // a checkpoint of its own (see `INLINE_MARK_SQL`), which the
        // transaction finds unchanged.
        let models = fold.models();
        let reserved: Vec<(i64, i64, Vec<String>)> = sqlx::query_as(
            "SELECT nextval(pg_get_serial_sequence('events', 'event_id')), \
                    (extract(epoch FROM clock_timestamp()) * 1000000)::int8, \
                    ARRAY(SELECT model || '@' || position FROM checkpoints \
                           WHERE model = ANY($2) AND position >= $3) \
               FROM generate_series(1, $1)",
        )
        .bind(events.len().max(1) as i64)
        .bind(models)
        .bind(INLINE as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(sql_error)?;
        let micros = reserved[0].1;
        let inline_before = reserved[0].2.clone();
        let at = DateTime::<Utc>::from_timestamp_micros(micros)
            .ok_or_else(|| StoreError::Corrupt(format!("clock out of range: {micros}")))?;
        let recorded = super::recorded(events, |i| (0, reserved[i].0 as u64), at);
        let changes = fold.fold(self, &recorded).await?;

        let mut tx = self.pool.begin().await.map_err(sql_error)?;
        sqlx::query(INLINE_LOCK_SQL)
            .bind(true)
            .bind(INLINE_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(sql_error)?;
        lock_claim_keys(&mut tx, claims).await?;
        for (e, (id, _, _)) in events.iter().zip(&reserved) {
            sqlx::query(INSERT_FOLDED_EVENT_SQL)
                .bind(&e.aggregate_type)
                .bind(&e.aggregate_id)
                .bind(to_i64(e.sequence as u64, "sequence")?)
                .bind(&e.event_type)
                .bind(&e.event_version)
                .bind(&e.payload)
                .bind(&e.metadata)
                .bind(id)
                .bind(micros)
                .execute(&mut *tx)
                .await
                .map_err(append_error)?;
        }
        apply_claims(&mut tx, claims).await?;
        let inline: Vec<String> = sqlx::query_scalar(
            "SELECT model || '@' || position FROM checkpoints \
              WHERE model = ANY($1) AND position >= $2",
        )
        .bind(models)
        .bind(INLINE as i64)
        .fetch_all(&mut *tx)
        .await
        .map_err(sql_error)?;
        if inline.iter().any(|m| !inline_before.contains(m)) {
            // A model went inline (again) since the fold read its documents,
            // which may miss events fed to it meanwhile: neither the fold nor
            // the feed may write these events into it. Take the optimistic
            // lock's way out: nothing is written, the command is decided again.
            return Err(StoreError::Conflict);
        }
        let commits = super::folded_commits(models, &changes, |m| {
            inline
                .iter()
                .any(|i| i.split_once('@').is_some_and(|(model, _)| model == m))
        });
        write_changes(&mut tx, &commits)
            .await
            .map_err(append_error)?;
        tx.commit().await.map_err(append_error)?;
        self.appended.store(true, Ordering::Release);
        Ok(commits.len() == models.len())
    }

    async fn go_inline(&self, models: &[&str], at: u64) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(sql_error)?;
        // Exclusive: waits for every append in flight to commit, holds new
        // ones back until we do; so what the checks below see is all there is.
        lock_inline_exclusive(&mut tx).await?;
        let (head, waiting, failures): (i64, bool, i64) = sqlx::query_as(
            "SELECT (SELECT coalesce(max(position), 0) FROM events), \
                    EXISTS (SELECT 1 FROM events WHERE position IS NULL), \
                    (SELECT count(*) FROM projection_failures WHERE model = ANY($1))",
        )
        .bind(models)
        .fetch_one(&mut *tx)
        .await
        .map_err(sql_error)?;
        let current: Vec<(String, i64)> = sqlx::query_as(
            "SELECT model, position FROM checkpoints WHERE model = ANY($1) ORDER BY model FOR UPDATE",
        )
        .bind(models)
        .fetch_all(&mut *tx)
        .await
        .map_err(sql_error)?;
        let at_i = to_i64(at, "checkpoint")?;
        let all_at = models.iter().all(|m| {
            current
                .iter()
                .find(|(model, _)| model == m)
                .map_or(0, |(_, p)| *p)
                == at_i
        });
        if head != at_i || waiting || failures > 0 || !all_at {
            return Ok(false);
        }
        sqlx::query(&format!(
            "INSERT INTO checkpoints (model, position) SELECT unnest($1::text[]), {INLINE_MARK_SQL} \
             ON CONFLICT (model) DO UPDATE SET position = EXCLUDED.position"
        ))
        .bind(models)
        .bind(INLINE as i64)
        .execute(&mut *tx)
        .await
        .map_err(sql_error)?;
        tx.commit().await.map_err(sql_error)?;
        Ok(true)
    }

    async fn claim_owner(&self, scope: &str, key: &str) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar("SELECT owner FROM claims WHERE scope = $1 AND key = $2")
            .bind(scope)
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(sql_error)
    }

    async fn sequence(&self) -> Result<(), StoreError> {
        self.sequence_report().await.map(|_| ())
    }

    async fn sequence_report(&self) -> Result<Sequenced, StoreError> {
        let mut report = Sequenced::default();
        // Right after an append of ours the look would only say "yes".
        let mut look = !self.appended.swap(false, Ordering::AcqRel);
        loop {
            if look {
                let (ready, unsequenced): (bool, bool) = sqlx::query_as(UNSEQUENCED_SQL)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(sql_error)?;
                if !ready {
                    // Nothing to number now; whatever is unsequenced is held back.
                    report.waiting = unsequenced;
                    return Ok(report);
                }
            }
            look = true;
            let round = self.sequence_round().await?;
            if round.numbered > 0 {
                tracing::trace!(numbered = round.numbered, "sequenced events");
            }
            report.numbered += round.numbered;
            report.waiting = round.waiting;
            if round.numbered < SEQUENCE_BATCH as u64 {
                return Ok(report);
            }
        }
    }

    async fn read_feed(&self, after: u64, limit: u32) -> Result<Vec<RecordedEvent>, StoreError> {
        let after = after.min(i64::MAX as u64) as i64;
        let rows = sqlx::query(SELECT_FEED_SQL)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(sql_error)?;
        rows.iter().map(recorded_from_row).collect()
    }

    async fn head(&self) -> Result<u64, StoreError> {
        let head: i64 = sqlx::query_scalar("SELECT coalesce(max(position), 0)::int8 FROM events")
            .fetch_one(&self.pool)
            .await
            .map_err(sql_error)?;
        to_u64(head, "position")
    }

    async fn aggregate_position(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<(u64, bool), StoreError> {
        let (max, pending): (i64, bool) = sqlx::query_as(
            "SELECT coalesce(max(position), 0)::int8, coalesce(bool_or(position IS NULL), false) \
             FROM events WHERE aggregate_type = $1 AND aggregate_id = $2",
        )
        .bind(aggregate_type)
        .bind(aggregate_id)
        .fetch_one(&self.pool)
        .await
        .map_err(sql_error)?;
        Ok((to_u64(max, "position")?, pending))
    }

    async fn doc_get(&self, model: &str, id: &str) -> Result<Option<Value>, StoreError> {
        let body: Option<Stored> = sqlx::query_scalar(&format!(
            "SELECT body FROM {} WHERE model = $1 AND id = $2",
            rows::sql_table(model)
        ))
        .bind(model)
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(sql_error)?;
        Ok(body.map(|b| b.0))
    }

    async fn doc_get_many(
        &self,
        model: &str,
        ids: &[String],
    ) -> Result<Vec<(String, Value)>, StoreError> {
        if ids.is_empty() {
            return Ok(vec![]);
        }
        let rows: Vec<(String, Stored)> = sqlx::query_as(&format!(
            "SELECT id, body FROM {} WHERE model = $1 AND id = ANY($2)",
            rows::sql_table(model)
        ))
        .bind(model)
        .bind(ids)
        .fetch_all(&self.pool)
        .await
        .map_err(sql_error)?;
        Ok(rows.into_iter().map(|(id, body)| (id, body.0)).collect())
    }

    async fn doc_list(&self, model: &str) -> Result<Vec<(String, Value)>, StoreError> {
        // `id` is COLLATE "C": byte order, like the other backends.
        let rows: Vec<(String, Stored)> = sqlx::query_as(&format!(
            "SELECT id, body FROM {} WHERE model = $1 ORDER BY id",
            rows::sql_table(model)
        ))
        .bind(model)
        .fetch_all(&self.pool)
        .await
        .map_err(sql_error)?;
        Ok(rows.into_iter().map(|(id, body)| (id, body.0)).collect())
    }

    async fn doc_prefix(
        &self,
        model: &str,
        prefix: &str,
        limit: Option<u32>,
    ) -> Result<Vec<(String, Value)>, StoreError> {
        // `id` is COLLATE "C": byte order, so the prefix is one range of the
        // primary key, bounded on both ends.
        let upper = super::prefix_upper_bound(prefix).unwrap_or_else(|| "\u{10FFFF}".repeat(8));
        let rows: Vec<(String, Stored)> = sqlx::query_as(&format!(
            "SELECT id, body FROM {} WHERE model = $1 AND id >= $2 AND id < $3 \
             ORDER BY id LIMIT $4",
            rows::sql_table(model)
        ))
        .bind(model)
        .bind(prefix)
        .bind(&upper)
        .bind(limit.map(i64::from))
        .fetch_all(&self.pool)
        .await
        .map_err(sql_error)?;
        Ok(rows.into_iter().map(|(id, body)| (id, body.0)).collect())
    }

    async fn doc_scan(
        &self,
        model: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<(String, Value)>, StoreError> {
        // Without `after`, no bound at all: an empty id is an id too (and an
        // `OR` in the bound would cost the index range on a generic plan).
        let bound = if after.is_some() { "AND id > $3" } else { "" };
        let sql = format!(
            "SELECT id, body FROM {} WHERE model = $1 {bound} ORDER BY id LIMIT $2",
            rows::sql_table(model)
        );
        let mut query = sqlx::query_as(&sql).bind(model).bind(i64::from(limit));
        if let Some(after) = after {
            query = query.bind(after);
        }
        let rows: Vec<(String, Stored)> = query.fetch_all(&self.pool).await.map_err(sql_error)?;
        Ok(rows.into_iter().map(|(id, body)| (id, body.0)).collect())
    }

    async fn doc_page(
        &self,
        model: &str,
        query: &PageQuery<'_>,
    ) -> Result<Vec<(String, Value)>, StoreError> {
        let rows = self.page(model, &["id", "body"], query).await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get(0).map_err(sql_error)?,
                    row.try_get::<Stored, _>(1).map_err(sql_error)?.0,
                ))
            })
            .collect()
    }

    async fn row_keys(
        &self,
        model: &str,
        query: &PageQuery<'_>,
        columns: &[&'static str],
    ) -> Result<Vec<(String, Vec<Key>)>, StoreError> {
        rows::page_table(model, query)?.check(columns)?;
        let select: Vec<&'static str> = std::iter::once("id")
            .chain(columns.iter().copied())
            .collect();
        let rows = self.page(model, &select, query).await?;
        rows.iter()
            .map(|row| super::row_keys_of(row, columns))
            .collect()
    }

    async fn take_idempotency_key(
        &self,
        key: &str,
        fingerprint: &str,
        now_ms: i64,
        expired_before_ms: i64,
    ) -> Result<KeyState, StoreError> {
        super::idempotency::take(
            &self.pool,
            Dialect::Postgres,
            key,
            fingerprint,
            now_ms,
            expired_before_ms,
        )
        .await
    }

    async fn settle_idempotency_key(
        &self,
        key: &str,
        answer: Option<&Value>,
    ) -> Result<(), StoreError> {
        super::idempotency::settle(&self.pool, Dialect::Postgres, key, answer).await
    }

    async fn count_by(
        &self,
        model: &str,
        column: &'static str,
    ) -> Result<Vec<(Option<String>, u64)>, StoreError> {
        let sql = rows::count_select(model, column, rows::Dialect::Postgres)?;
        let counted: Vec<(Option<String>, i64)> = sqlx::query_as(&sql)
            .bind(model)
            .fetch_all(&self.pool)
            .await
            .map_err(sql_error)?;
        counted
            .into_iter()
            .map(|(value, n)| Ok((value, to_u64(n, "count")?)))
            .collect()
    }

    async fn checkpoint(&self, model: &str) -> Result<u64, StoreError> {
        let position: Option<i64> =
            sqlx::query_scalar("SELECT position FROM checkpoints WHERE model = $1")
                .bind(model)
                .fetch_optional(&self.pool)
                .await
                .map_err(sql_error)?;
        to_u64(position.unwrap_or(0), "checkpoint")
    }

    async fn checkpoints(&self, models: &[&str]) -> Result<Vec<u64>, StoreError> {
        if models.is_empty() {
            return Ok(vec![]);
        }
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT model, position FROM checkpoints WHERE model = ANY($1)")
                .bind(models)
                .fetch_all(&self.pool)
                .await
                .map_err(sql_error)?;
        let found: HashMap<String, i64> = rows.into_iter().collect();
        models
            .iter()
            .map(|m| to_u64(found.get(*m).copied().unwrap_or(0), "checkpoint"))
            .collect()
    }

    async fn commit_models(&self, commits: &[ModelCommit<'_>]) -> Result<bool, StoreError> {
        distinct_models(commits)?;
        if commits.is_empty() {
            return Ok(true);
        }
        let mut sorted: Vec<&ModelCommit<'_>> = commits.iter().collect();
        sorted.sort_by(|a, b| a.model.cmp(b.model));
        let models: Vec<&str> = sorted.iter().map(|c| c.model).collect();
        let (mut froms, mut tos) = (vec![], vec![]);
        for c in &sorted {
            froms.push(to_i64(c.from, "checkpoint")?);
            tos.push(to_i64(c.to, "checkpoint")?);
        }
        match self.commit_sorted(&models, &froms, &tos, commits).await {
            Ok(done) => Ok(done),
            // Aborted only because of a concurrent transaction: nothing was written.
            Err(e) if is_transient(&e) => Ok(false),
            Err(e) => Err(sql_error(e)),
        }
    }

    async fn drop_model(&self, model: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(sql_error)?;
        // An inline model's appends must see it gone, or not at all.
        lock_inline_exclusive(&mut tx).await?;
        for table in ["checkpoints", rows::sql_table(model), "projection_failures"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE model = $1"))
                .bind(model)
                .execute(&mut *tx)
                .await
                .map_err(sql_error)?;
        }
        tx.commit().await.map_err(sql_error)
    }

    async fn failures(&self, models: &[&str]) -> Result<Vec<ApplyFailure>, StoreError> {
        let rows: Vec<FailureColumns<i64>> = sqlx::query_as(
            "SELECT model, position, aggregate_type, aggregate_id, event_type, error, \
                    (extract(epoch FROM failed_at) * 1000000)::int8 AS failed_us \
               FROM projection_failures \
              WHERE cardinality($1::text[]) = 0 OR model = ANY($1) \
              ORDER BY model, position",
        )
        .bind(models)
        .fetch_all(&self.pool)
        .await
        .map_err(sql_error)?;
        rows.into_iter()
            .map(|row| {
                let micros = row.6;
                let at = DateTime::<Utc>::from_timestamp_micros(micros).ok_or_else(|| {
                    StoreError::Corrupt(format!("failed_at out of range: {micros}"))
                })?;
                ApplyFailure::from_columns(row, at)
            })
            .collect()
    }

    async fn record_failure(&self, failure: &ApplyFailure) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await.map_err(sql_error)?;
        insert_failure(&mut conn, &failure.model, failure)
            .await
            .map_err(sql_error)
    }

    async fn clear_failures(
        &self,
        model: &str,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM projection_failures \
              WHERE model = $1 AND aggregate_type = $2 AND aggregate_id = $3",
        )
        .bind(model)
        .bind(aggregate_type)
        .bind(aggregate_id)
        .execute(&self.pool)
        .await
        .map_err(sql_error)?;
        Ok(())
    }

    /// Takes the lease if it is free, expired, or already ours (then renews it);
    /// one statement, so two processes can never both succeed.
    async fn try_lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError> {
        let row: Option<(String,)> = sqlx::query_as(
            "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, clock_timestamp() + $3 * interval '1 millisecond')
             ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
             WHERE leases.holder = EXCLUDED.holder OR leases.expires_at < clock_timestamp()
             RETURNING holder",
        )
        .bind(name)
        .bind(holder)
        .bind(ttl.as_millis() as f64)
        .fetch_optional(&self.pool)
        .await
        .map_err(sql_error)?;
        Ok(row.is_some())
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(&self.pool)
            .await
            .map_err(sql_error)?;
        Ok(())
    }

    async fn swap_model(&self, live: &str, scratch: &str) -> Result<bool, StoreError> {
        if live == scratch {
            // Deleting `live` first would destroy the very documents we keep.
            return Ok(true);
        }
        let mut tx = self.pool.begin().await.map_err(sql_error)?;
        // No append may fold into `live` while it is replaced: those in
        // flight commit first, later ones see the swapped-in model.
        lock_inline_exclusive(&mut tx).await?;
        // Both checkpoint rows locked, in a fixed order (no deadlock between
        // two swaps), so neither moves until the swap is done.
        let rows = sqlx::query(
            "SELECT model, position FROM checkpoints WHERE model = $1 OR model = $2 \
             ORDER BY model FOR UPDATE",
        )
        .bind(live)
        .bind(scratch)
        .fetch_all(&mut *tx)
        .await
        .map_err(sql_error)?;
        let at = |m: &str| {
            rows.iter()
                .find(|r| r.get::<String, _>("model") == m)
                .map(|r| r.get::<i64, _>("position"))
        };
        let (head, waiting, failures): (i64, bool, i64) = sqlx::query_as(
            "SELECT (SELECT coalesce(max(position), 0) FROM events), \
                    EXISTS (SELECT 1 FROM events WHERE position IS NULL), \
                    (SELECT count(*) FROM projection_failures WHERE model = $1)",
        )
        .bind(scratch)
        .fetch_one(&mut *tx)
        .await
        .map_err(sql_error)?;
        let at_head = !waiting && at(scratch) == Some(head);
        let Some(checkpoint) = super::swap_outcome(at(live), at(scratch), at_head, failures > 0)
        else {
            return Ok(false);
        };
        // Checkpoint first: deleting the live checkpoint row locks it, so a live
        // projector's compare-and-set waits for us and then fails (its row is gone)
        // instead of writing documents into the model we are replacing.
        let (live_table, scratch_table) = (rows::sql_table(live), rows::sql_table(scratch));
        // Checkpoint first (see above), then the documents, then the failures.
        let mut statements: Vec<(String, Binds)> = vec![
            (
                "DELETE FROM checkpoints WHERE model = $1".into(),
                Binds::Live,
            ),
            (
                "UPDATE checkpoints SET model = $1 WHERE model = $2".into(),
                Binds::Both,
            ),
            (
                format!("DELETE FROM {live_table} WHERE model = $1"),
                Binds::Live,
            ),
        ];
        if live_table == scratch_table {
            // Keys and all: the rows only change their model.
            statements.push((
                format!("UPDATE {live_table} SET model = $1 WHERE model = $2"),
                Binds::Both,
            ));
        } else {
            // Models of two tables (not a rebuild's scratch copy): the
            // documents move, keys cannot (the tables have other columns).
            statements.push((
                format!(
                    "INSERT INTO {live_table} (model, id, body) \
                     SELECT $1, id, body FROM {scratch_table} WHERE model = $2"
                ),
                Binds::Both,
            ));
            statements.push((
                format!("DELETE FROM {scratch_table} WHERE model = $1"),
                Binds::Scratch,
            ));
        }
        statements.extend([
            (
                "DELETE FROM projection_failures WHERE model = $1".into(),
                Binds::Live,
            ),
            (
                "UPDATE projection_failures SET model = $1 WHERE model = $2".into(),
                Binds::Both,
            ),
        ]);
        for (sql, binds) in &statements {
            let query = sqlx::query(sql);
            let query = match binds {
                Binds::Live => query.bind(live),
                Binds::Scratch => query.bind(scratch),
                Binds::Both => query.bind(live).bind(scratch),
            };
            match query.execute(&mut *tx).await {
                Ok(_) => {}
                // A projector refilling a dropped `live` wrote its first
                // checkpoint meanwhile: lost a race, nothing written.
                Err(e) if is_unique_violation(&e) || is_transient(&e) => return Ok(false),
                Err(e) => return Err(sql_error(e)),
            }
        }
        // An inline outcome is a new inline period: a checkpoint of its own.
        let set = if super::is_inline(checkpoint) {
            format!("UPDATE checkpoints SET position = {INLINE_MARK_SQL} WHERE model = $1")
        } else {
            "UPDATE checkpoints SET position = $2 WHERE model = $1".to_string()
        };
        sqlx::query(&set)
            .bind(live)
            .bind(to_i64(checkpoint, "checkpoint")?)
            .execute(&mut *tx)
            .await
            .map_err(sql_error)?;
        tx.commit().await.map_err(sql_error)?;
        Ok(true)
    }

    async fn load_recorded(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT position, aggregate_type, aggregate_id, sequence, event_id, event_type, \
                    event_version, payload, metadata, \
                    (extract(epoch FROM recorded_at) * 1000000)::int8 AS recorded_us \
               FROM events \
              WHERE aggregate_type = $1 AND aggregate_id = $2 AND position IS NOT NULL \
              ORDER BY sequence",
        )
        .bind(aggregate_type)
        .bind(aggregate_id)
        .fetch_all(&self.pool)
        .await
        .map_err(sql_error)?;
        rows.iter().map(recorded_from_row).collect()
    }

    async fn claims_in_scope(
        &self,
        scope: &str,
        owner: Option<&str>,
    ) -> Result<Vec<(String, String)>, StoreError> {
        sqlx::query_as(
            "SELECT key, owner FROM claims \
              WHERE scope = $1 AND ($2::text IS NULL OR owner = $2) ORDER BY key",
        )
        .bind(scope)
        .bind(owner)
        .fetch_all(&self.pool)
        .await
        .map_err(sql_error)
    }

    /// Inserts the events with their positions and times under the
    /// sequencer's lock (so no sequencing round runs meanwhile), refusing
    /// while events wait for a position: the imported ones would have to come
    /// after them.
    async fn import_events(
        &self,
        events: &[RecordedEvent],
        claims: &[ClaimOp],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(sql_error)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1, 'events'::regclass::oid::int4)")
            .bind(SEQUENCER_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(sql_error)?;
        // Imported events are folded by no one: no folding append may commit
        // while the inline models are handed back to the feed (below).
        lock_inline_exclusive(&mut tx).await?;
        let (head, unsequenced): (i64, bool) = sqlx::query_as(
            "SELECT coalesce(max(position), 0)::int8, \
                    EXISTS (SELECT 1 FROM events WHERE position IS NULL) FROM events",
        )
        .fetch_one(&mut *tx)
        .await
        .map_err(sql_error)?;
        if unsequenced {
            return Err(StoreError::Database(
                "events are waiting for a position (is a server writing to this database?); \
                 import into an idle database"
                    .into(),
            ));
        }
        super::check_continues(to_u64(head, "position")?, events)?;
        if !events.is_empty() {
            hand_back_at(&mut tx, head).await?;
        }
        for e in events {
            sqlx::query(
                "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
                     event_version, payload, metadata, position, recorded_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, \
                         'epoch'::timestamptz + $9 * interval '1 microsecond')",
            )
            .bind(&e.aggregate_type)
            .bind(&e.aggregate_id)
            .bind(to_i64(e.sequence, "sequence")?)
            .bind(&e.event_type)
            .bind(&e.event_version)
            .bind(&e.payload)
            .bind(&e.metadata)
            .bind(to_i64(e.position, "position")?)
            .bind(e.recorded_at.timestamp_micros())
            .execute(&mut *tx)
            .await
            .map_err(append_error)?;
        }
        apply_claims(&mut tx, claims).await?;
        tx.commit().await.map_err(append_error)
    }
}

/// Applies claim changes inside an append (or import) transaction, in order.
/// Takes a transaction-scoped advisory lock on every claim key the append
/// touches, before its first write.
///
/// Why: the feed orders events by transaction id, which PostgreSQL assigns at
/// a transaction's first write. Without these locks, a transaction acquiring a
/// claim (a port with MAC X added to node B) could write its events first,
/// then wait on the claim row of one releasing it (node A deleted) and commit
/// after it — yet be numbered before it, so a replay would apply "B takes X"
/// before "A lets X go". Waiting here, where no id is assigned yet, makes the
/// later owner's events come later in the feed too. Keys are locked in one
/// order, so two appends cannot deadlock on each other.
async fn lock_claim_keys(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    claims: &[ClaimOp],
) -> Result<(), StoreError> {
    let mut keys: Vec<(String, String)> = Vec::new();
    for op in claims {
        match op {
            ClaimOp::Acquire { scope, key, .. } | ClaimOp::Release { scope, key, .. } => {
                keys.push((scope.clone(), key.clone()))
            }
            ClaimOp::ReleaseAll { owner, scope } => {
                // A read: assigns no transaction id.
                let held: Vec<(String, String)> = sqlx::query_as(
                    "SELECT scope, key FROM claims WHERE owner = $1 AND ($2::text IS NULL OR scope = $2)",
                )
                .bind(owner)
                .bind(scope)
                .fetch_all(&mut **tx)
                .await
                .map_err(sql_error)?;
                keys.extend(held);
            }
        }
    }
    let mut locks: Vec<(i32, i32)> = keys
        .iter()
        .map(|(scope, key)| claim_lock_key(scope, key))
        .collect();
    locks.sort_unstable();
    locks.dedup();
    for (class, h) in locks {
        sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
            .bind(class)
            .bind(h)
            .execute(&mut **tx)
            .await
            .map_err(sql_error)?;
    }
    Ok(())
}

/// The advisory-lock key (`pg_advisory_xact_lock(int4, int4)`) of one claim:
/// [`CLAIM_LOCK`] and an FNV-1a hash of scope and key folded to 32 bits.
pub fn claim_lock_key(scope: &str, key: &str) -> (i32, i32) {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in scope.bytes().chain([0u8]).chain(key.bytes()) {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (CLAIM_LOCK, (h ^ (h >> 32)) as u32 as i32)
}

async fn apply_claims(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    claims: &[ClaimOp],
) -> Result<(), StoreError> {
    for op in claims {
        match op {
            ClaimOp::Acquire { scope, key, owner } => acquire(tx, scope, key, owner).await?,
            ClaimOp::Release { scope, key, owner } => {
                sqlx::query("DELETE FROM claims WHERE scope = $1 AND key = $2 AND owner = $3")
                    .bind(scope)
                    .bind(key)
                    .bind(owner)
                    .execute(&mut **tx)
                    .await
                    .map_err(append_error)?;
            }
            ClaimOp::ReleaseAll { owner, scope } => {
                sqlx::query(
                    "DELETE FROM claims WHERE owner = $1 AND ($2::text IS NULL OR scope = $2)",
                )
                .bind(owner)
                .bind(scope)
                .execute(&mut **tx)
                .await
                .map_err(append_error)?;
            }
        }
    }
    Ok(())
}

/// Acquires a claim inside the append transaction, or fails the append.
///
/// `INSERT … ON CONFLICT DO UPDATE … WHERE claims.owner = EXCLUDED.owner RETURNING`
/// returns a row exactly when the claim is now ours: newly inserted, or already held
/// by the same owner (idempotent). If another transaction is inserting the same key,
/// PostgreSQL makes us wait for it to finish and then decides on its outcome, so two
/// concurrent claimants can never both succeed. No row back means someone else holds
/// it; we look the holder up for the error message. In the rare case that the holder
/// released it in between, we simply try again.
async fn acquire(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    scope: &str,
    key: &str,
    owner: &str,
) -> Result<(), StoreError> {
    for _ in 0..3 {
        let got: Option<String> = sqlx::query_scalar(
            "INSERT INTO claims (scope, key, owner) VALUES ($1, $2, $3) \
             ON CONFLICT (scope, key) DO UPDATE SET owner = EXCLUDED.owner \
               WHERE claims.owner = EXCLUDED.owner \
             RETURNING owner",
        )
        .bind(scope)
        .bind(key)
        .bind(owner)
        .fetch_optional(&mut **tx)
        .await
        .map_err(append_error)?;
        if got.is_some() {
            return Ok(());
        }
        let holder: Option<String> =
            sqlx::query_scalar("SELECT owner FROM claims WHERE scope = $1 AND key = $2")
                .bind(scope)
                .bind(key)
                .fetch_optional(&mut **tx)
                .await
                .map_err(append_error)?;
        if let Some(holder) = holder {
            return Err(StoreError::Claim(ClaimConflict {
                scope: scope.to_string(),
                key: key.to_string(),
                owner: holder,
            }));
        }
    }
    // The claim keeps changing hands under us; let the caller retry the command.
    Err(StoreError::Conflict)
}
