//! The sequencer: positions for committed events, given after their
//! transaction has finished, so that the feed has no gaps.
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
//!   (`tests/feed_gap/feed_gap.rs` checks exactly this.)
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
//! [`LogStore::sequence`]: crate::store::LogStore::sequence
//! [`LogStore::sequence_report`]: crate::store::LogStore::sequence_report

use super::PostgresStore;
use crate::store::{sql_error, to_u64, Sequenced, StoreError};
use std::sync::atomic::Ordering;

/// First half of the advisory-lock key that serializes sequencers ("ILSQ"). The
/// second half is the `events` table's OID, which is per schema.
pub(super) const SEQUENCER_LOCK: i32 = 0x494C_5351;

/// How many events one sequencing round numbers at most. Rounds repeat until the
/// backlog is done; the cap keeps each transaction (and its row locks) short.
const SEQUENCE_BATCH: i64 = 10_000;

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

impl PostgresStore {
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

    /// [`LogStore::sequence_report`] on PostgreSQL: rounds until one numbers
    /// fewer than [`SEQUENCE_BATCH`], each after a look at the unnumbered rows
    /// that finds some ready (no look right after an append of this process).
    ///
    /// [`LogStore::sequence_report`]: crate::store::LogStore::sequence_report
    pub(super) async fn sequence_rounds(&self) -> Result<Sequenced, StoreError> {
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
}
