//! Appends: the plain one (its events reach the read models through the
//! feed), the one that folds the inline read models in its own transaction,
//! and the import of a log exported elsewhere.

use super::claims::{apply_claims, lock_claim_keys};
use super::errors::append_error;
use super::inline::{
    hand_inline_models_to_the_feed, lock_inline_exclusive, Handoff, INLINE_LOCK, INLINE_LOCK_SQL,
};
use super::models::write_changes;
use super::sequencer::SEQUENCER_LOCK;
use super::PostgresStore;
use crate::store::rows::Dialect;
use crate::store::shared;
use crate::store::{
    sql_error, to_i64, to_u64, ClaimOp, Fold, LogStore, RecordedEvent, StoreError, INLINE,
};
use chrono::{DateTime, Utc};
use cqrs_es::persist::SerializedEvent;
use std::sync::atomic::Ordering;
use std::time::Duration;

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

/// An event with the id and time its fold was given (see
/// [`LogStore::append_folded`]).
const INSERT_FOLDED_EVENT_SQL: &str = "INSERT INTO events \
     (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata, \
      event_id, recorded_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'epoch'::timestamptz + $9::int8 * interval '1 microsecond')";

impl PostgresStore {
    /// [`LogStore::append`].
    pub(super) async fn append_unfolded(
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

    /// [`LogStore::append_folded`].
    pub(super) async fn append_and_fold(
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
        let recorded = crate::store::recorded(events, |i| (0, reserved[i].0 as u64), at);
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
        let commits = crate::store::folded_commits(models, &changes, |m| {
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

    /// [`LogStore::import_events`].
    ///
    /// Inserts the events with their positions and times under the
    /// sequencer's lock (so no sequencing round runs meanwhile), refusing
    /// while events wait for a position: the imported ones would have to come
    /// after them.
    pub(super) async fn import_recorded(
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
        crate::store::check_continues(to_u64(head, "position")?, events)?;
        if !events.is_empty() {
            shared::hand_back_to_the_feed(&mut *tx, Dialect::Postgres, head).await?;
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
