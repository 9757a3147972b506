//! Inline read models on PostgreSQL: the advisory lock that keeps folding
//! appends and what changes whether a model is inline (going inline,
//! swapping, dropping) apart, and the hand-back of inline models to the
//! feed for appends that fold nothing.

use super::PostgresStore;
use crate::store::rows::Dialect;
use crate::store::shared;
use crate::store::{sql_error, to_i64, StoreError, INLINE};

/// First half of the advisory-lock key between appends that fold inline
/// models (shared) and what changes whether a model is inline: going inline,
/// swapping, dropping (exclusive) ("ILIN"); the second half is the `events`
/// table's OID. See [`LogStore::go_inline`].
///
/// [`LogStore::go_inline`]: crate::store::LogStore::go_inline
pub(super) const INLINE_LOCK: i32 = 0x494C_494E;

/// The statement that takes [`INLINE_LOCK`] in the current transaction:
/// `$1`, shared or not.
pub(super) const INLINE_LOCK_SQL: &str = "SELECT CASE WHEN $1 \
     THEN pg_advisory_xact_lock_shared($2, 'events'::regclass::oid::int4) \
     ELSE pg_advisory_xact_lock($2, 'events'::regclass::oid::int4) END";

/// The checkpoint a model gets when it goes inline, `$2` being [`INLINE`]:
/// above it by a number drawn from the event-id sequence, so that no two
/// inline periods of a model share a checkpoint. An append whose fold read
/// documents during one period writes them only if the period still lasts.
pub(super) const INLINE_MARK_SQL: &str =
    "$2 + nextval(pg_get_serial_sequence('events', 'event_id'))";

/// Takes [`INLINE_LOCK`] exclusively in `tx`: see [`LogStore::go_inline`].
///
/// [`LogStore::go_inline`]: crate::store::LogStore::go_inline
pub(super) async fn lock_inline_exclusive(
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
pub(super) enum Handoff {
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
///
/// [`LogStore::append`]: crate::store::LogStore::append
pub(super) async fn hand_inline_models_to_the_feed(
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
    shared::hand_back_to_the_feed(&mut **tx, Dialect::Postgres, head).await?;
    Ok(Handoff::Done)
}

impl PostgresStore {
    /// [`LogStore::go_inline`].
    ///
    /// [`LogStore::go_inline`]: crate::store::LogStore::go_inline
    pub(super) async fn make_inline(&self, models: &[&str], at: u64) -> Result<bool, StoreError> {
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
}
