//! The [`LogStore`] impl: the answers that are one statement stand here;
//! whole transactions with an argument of their own are in the files named
//! in the module docs, and each method of those hands over to them.

use super::decode::{recorded_from_row, Stored};
use super::errors::is_transient;
use super::inline::lock_inline_exclusive;
use super::models::insert_failure;
use super::PostgresStore;
use crate::store::rows::{self, Dialect, Key, PageQuery};
use crate::store::shared;
use crate::store::{
    distinct_models, sql_error, to_i64, to_u64, ApplyFailure, ClaimOp, FailureColumns, Fold,
    KeyState, LogStore, ModelCommit, RecordedEvent, Sequenced, StoreError,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cqrs_es::persist::SerializedEvent;
use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;

const SELECT_FEED_SQL: &str = "\
SELECT position, aggregate_type, aggregate_id, sequence, event_id, event_type, event_version,
       payload, metadata,
       (extract(epoch FROM recorded_at) * 1000000)::int8 AS recorded_us
  FROM events
 WHERE position > $1
 ORDER BY position
 LIMIT $2";

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
        shared::load(&self.pool, Dialect::Postgres, aggregate_type, aggregate_id).await
    }

    async fn append(
        &self,
        events: &[SerializedEvent],
        claims: &[ClaimOp],
    ) -> Result<(), StoreError> {
        self.append_unfolded(events, claims).await
    }

    async fn append_folded(
        &self,
        events: &[SerializedEvent],
        claims: &[ClaimOp],
        fold: &dyn Fold,
    ) -> Result<bool, StoreError> {
        self.append_and_fold(events, claims, fold).await
    }

    async fn go_inline(&self, models: &[&str], at: u64) -> Result<bool, StoreError> {
        self.make_inline(models, at).await
    }

    async fn claim_owner(&self, scope: &str, key: &str) -> Result<Option<String>, StoreError> {
        shared::claim_holder(&self.pool, Dialect::Postgres, scope, key)
            .await
            .map_err(sql_error)
    }

    async fn sequence(&self) -> Result<(), StoreError> {
        self.sequence_report().await.map(|_| ())
    }

    async fn sequence_report(&self) -> Result<Sequenced, StoreError> {
        self.sequence_rounds().await
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
        shared::doc_get(&self.pool, Dialect::Postgres, model, id).await
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
        shared::doc_list(&self.pool, Dialect::Postgres, model).await
    }

    async fn doc_prefix(
        &self,
        model: &str,
        prefix: &str,
        limit: Option<u32>,
    ) -> Result<Vec<(String, Value)>, StoreError> {
        // `id` is COLLATE "C": byte order, so the prefix is one range of the
        // primary key, bounded on both ends.
        let upper =
            crate::store::prefix_upper_bound(prefix).unwrap_or_else(|| "\u{10FFFF}".repeat(8));
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
        shared::doc_page(&self.pool, Dialect::Postgres, model, query).await
    }

    async fn row_keys(
        &self,
        model: &str,
        query: &PageQuery<'_>,
        columns: &[&'static str],
    ) -> Result<Vec<(String, Vec<Key>)>, StoreError> {
        shared::row_keys(&self.pool, Dialect::Postgres, model, query, columns).await
    }

    async fn take_idempotency_key(
        &self,
        key: &str,
        fingerprint: &str,
        now_ms: i64,
        expired_before_ms: i64,
    ) -> Result<KeyState, StoreError> {
        crate::store::idempotency::take(
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
        crate::store::idempotency::settle(&self.pool, Dialect::Postgres, key, answer).await
    }

    async fn count_by(
        &self,
        model: &str,
        column: &'static str,
    ) -> Result<Vec<(Option<String>, u64)>, StoreError> {
        shared::count_by(&self.pool, Dialect::Postgres, model, column).await
    }

    async fn checkpoint(&self, model: &str) -> Result<u64, StoreError> {
        shared::checkpoint(&self.pool, Dialect::Postgres, model).await
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
        shared::clear_failures(
            &self.pool,
            Dialect::Postgres,
            model,
            aggregate_type,
            aggregate_id,
        )
        .await
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
        self.replace_model(live, scratch).await
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

    async fn import_events(
        &self,
        events: &[RecordedEvent],
        claims: &[ClaimOp],
    ) -> Result<(), StoreError> {
        self.import_recorded(events, claims).await
    }
}
