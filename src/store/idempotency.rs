//! The `idempotency_keys` table, for both SQL backends: one implementation,
//! generic over sqlx's database, its statements spelled per [`Dialect`]
//! (the table is `schema/*/000?_idempotency_keys.sql`; the semantics are
//! [`LogStore::take_idempotency_key`](super::LogStore::take_idempotency_key)'s).

use super::rows::Dialect;
use super::{held_key_state, sql_error, KeyState, StoreError};
use serde_json::Value;
use sqlx::{Database, Executor, IntoArguments, Pool};

/// See [`LogStore::take_idempotency_key`](super::LogStore::take_idempotency_key).
pub(crate) async fn take<DB>(
    pool: &Pool<DB>,
    d: Dialect,
    key: &str,
    fingerprint: &str,
    now_ms: i64,
    expired_before_ms: i64,
) -> Result<KeyState, StoreError>
where
    DB: Database,
    for<'q> <DB as Database>::Arguments<'q>: IntoArguments<'q, DB>,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'r> (String,): sqlx::FromRow<'r, DB::Row>,
    for<'r> (String, i64, Option<String>): sqlx::FromRow<'r, DB::Row>,
{
    let p: Vec<String> = (1..=3).map(|n| d.placeholder(n)).collect();
    let purge = format!("DELETE FROM idempotency_keys WHERE taken_ms < {}", p[0]);
    sqlx::query::<DB>(&purge)
        .bind(expired_before_ms)
        .execute(pool)
        .await
        .map_err(sql_error)?;
    let insert = format!(
        "INSERT INTO idempotency_keys (key, fingerprint, taken_ms) VALUES ({}, {}, {}) \
         ON CONFLICT (key) DO NOTHING RETURNING key",
        p[0], p[1], p[2]
    );
    let select = format!(
        "SELECT fingerprint, taken_ms, answer FROM idempotency_keys WHERE key = {}",
        p[0]
    );
    loop {
        let taken: Option<(String,)> = sqlx::query_as::<DB, (String,)>(&insert)
            .bind(key)
            .bind(fingerprint)
            .bind(now_ms)
            .fetch_optional(pool)
            .await
            .map_err(sql_error)?;
        if taken.is_some() {
            return Ok(KeyState::Taken);
        }
        let held: Option<(String, i64, Option<String>)> =
            sqlx::query_as::<DB, (String, i64, Option<String>)>(&select)
                .bind(key)
                .fetch_optional(pool)
                .await
                .map_err(sql_error)?;
        // Gone between the two statements (let go, or expired): try again.
        if let Some((held, since_ms, answer)) = held {
            let answer = answer
                .map(|a| serde_json::from_str(&a))
                .transpose()
                .map_err(|e| StoreError::Corrupt(format!("idempotency answer: {e}")))?;
            return Ok(held_key_state(fingerprint, &held, since_ms, answer));
        }
    }
}

/// See [`LogStore::settle_idempotency_key`](super::LogStore::settle_idempotency_key).
pub(crate) async fn settle<DB>(
    pool: &Pool<DB>,
    d: Dialect,
    key: &str,
    answer: Option<&Value>,
) -> Result<(), StoreError>
where
    DB: Database,
    for<'q> <DB as Database>::Arguments<'q>: IntoArguments<'q, DB>,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let p: Vec<String> = (1..=2).map(|n| d.placeholder(n)).collect();
    let update = format!(
        "UPDATE idempotency_keys SET answer = {} WHERE key = {}",
        p[0], p[1]
    );
    let delete = format!("DELETE FROM idempotency_keys WHERE key = {}", p[0]);
    let statement = match answer {
        Some(a) => sqlx::query::<DB>(&update).bind(a.to_string()).bind(key),
        None => sqlx::query::<DB>(&delete).bind(key),
    };
    statement.execute(pool).await.map_err(sql_error)?;
    Ok(())
}
