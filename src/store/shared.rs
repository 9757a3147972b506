//! What the two SQL backends do with one code: reading events and documents
//! back from their rows, the pages of the typed tables, the statements on
//! claims and checkpoints that are spelled alike.
//!
//! Why it can be shared: every function here is generic over sqlx's
//! database types, and SQLite and PostgreSQL differ in it only in what those
//! types and two small seams already cover: the placeholder
//! ([`Dialect::placeholder`]: `?` or `$n`) and how a JSON column the store
//! wrote is read back ([`JsonRow`]: text on SQLite, `json`/`jsonb` on
//! PostgreSQL, both through the one decoder of stored data,
//! [`super::json`]). The tables, their columns and their types are the same
//! in both schemas, so a statement that names only them means the same in
//! either. [`super::idempotency`] is shared on the same grounds.
//!
//! What stays with each backend is what the dialects really do differently:
//! how positions are given and writers serialized (the module docs of
//! [`super::sqlite`] and [`super::postgres`]), lists bound as arrays
//! (`= ANY($1)`) or as JSON text (`json_each(?)`), a parameter used twice
//! (`$2` again, or bound twice for `?`), casts SQLite does not spell
//! (`$1::text`), times as `timestamptz` or RFC 3339 text, and claims taken
//! under PostgreSQL's concurrency (`INSERT … ON CONFLICT`, advisory locks)
//! or under SQLite's single writer (read, then write).

use super::rows::{self, Dialect, Key, PageQuery};
use super::{sql_error, to_u64, RecordedEvent, StoreError, INLINE};
use chrono::{DateTime, Utc};
use cqrs_es::persist::SerializedEvent;
use serde_json::Value;
use sqlx::query::Query;
use sqlx::{
    ColumnIndex, Database, Decode, Encode, Executor, FromRow, IntoArguments, Pool, Row, Type,
};

/// A row of a SQL backend, with JSON columns the store wrote: each backend
/// reads its own column type, the decoding is [`super::json`]'s in both.
pub(crate) trait JsonRow: Row {
    /// The JSON in `column`; `what` names it in the error of a value that
    /// does not decode.
    fn json<I: ColumnIndex<Self>>(&self, column: I, what: &str) -> Result<Value, StoreError>;
}

/// An aggregate's event for cqrs-es, as both backends select it
/// (`aggregate_type, aggregate_id, sequence, event_type, event_version,
/// payload, metadata`). Strict: JSON that does not decode fails the load
/// (a command must never decide on a state that misses an event).
pub(crate) fn serialized_from_row<R>(row: &R) -> Result<SerializedEvent, StoreError>
where
    R: JsonRow,
    for<'a> &'a str: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(SerializedEvent {
        aggregate_type: row.try_get("aggregate_type").map_err(sql_error)?,
        aggregate_id: row.try_get("aggregate_id").map_err(sql_error)?,
        sequence: to_u64(row.try_get("sequence").map_err(sql_error)?, "sequence")? as usize,
        event_type: row.try_get("event_type").map_err(sql_error)?,
        event_version: row.try_get("event_version").map_err(sql_error)?,
        payload: row.json("payload", "payload")?,
        metadata: row.json("metadata", "metadata")?,
    })
}

/// A feed event; JSON that does not decode gets the stand-in of
/// [`RecordedEvent::unreadable`] instead of failing the whole page.
///
/// `event_id` is the column of the event's id, or `None` where the position
/// is the id (SQLite numbers events as it appends them). `recorded_at` is
/// the time of recording, which the caller has read from the row in its
/// dialect's form; it is converted last.
pub(crate) fn recorded_from_row<R>(
    row: &R,
    event_id: Option<&str>,
    recorded_at: impl FnOnce() -> Result<DateTime<Utc>, StoreError>,
) -> Result<RecordedEvent, StoreError>
where
    R: JsonRow,
    for<'a> &'a str: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
{
    let json = |column: &str| row.json(column, column);
    let (payload, metadata) = super::feed_json(json("payload"), json("metadata"));
    let position = to_u64(row.try_get("position").map_err(sql_error)?, "position")?;
    Ok(RecordedEvent {
        position,
        aggregate_type: row.try_get("aggregate_type").map_err(sql_error)?,
        aggregate_id: row.try_get("aggregate_id").map_err(sql_error)?,
        sequence: to_u64(row.try_get("sequence").map_err(sql_error)?, "sequence")?,
        event_id: match event_id {
            Some(column) => to_u64(row.try_get(column).map_err(sql_error)?, "event_id")?,
            None => position,
        },
        event_type: row.try_get("event_type").map_err(sql_error)?,
        event_version: row.try_get("event_version").map_err(sql_error)?,
        payload,
        metadata,
        recorded_at: recorded_at()?,
    })
}

/// All events of one aggregate, ordered by sequence
/// ([`LogStore::load`](super::LogStore::load)).
pub(crate) async fn load<DB>(
    pool: &Pool<DB>,
    d: Dialect,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<Vec<SerializedEvent>, StoreError>
where
    DB: Database,
    DB::Row: JsonRow,
    for<'q> <DB as Database>::Arguments<'q>: IntoArguments<'q, DB>,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'a> &'a str: ColumnIndex<DB::Row>,
    for<'r> i64: Decode<'r, DB> + Type<DB>,
    for<'r> String: Decode<'r, DB> + Type<DB>,
{
    let sql = format!(
        "SELECT aggregate_type, aggregate_id, sequence, event_type, event_version, \
                payload, metadata \
         FROM events WHERE aggregate_type = {} AND aggregate_id = {} ORDER BY sequence",
        d.placeholder(1),
        d.placeholder(2)
    );
    let rows = sqlx::query::<DB>(&sql)
        .bind(aggregate_type)
        .bind(aggregate_id)
        .fetch_all(pool)
        .await
        .map_err(sql_error)?;
    rows.iter().map(serialized_from_row).collect()
}

/// The current holder of a claim, if any: what
/// [`LogStore::claim_owner`](super::LogStore::claim_owner) answers, and what
/// an acquiring append reads (in its transaction) to name the holder in the
/// conflict. The driver's error is returned as is, for the caller's mapping.
pub(crate) async fn claim_holder<'e, DB, E>(
    executor: E,
    d: Dialect,
    scope: &str,
    key: &str,
) -> Result<Option<String>, sqlx::Error>
where
    DB: Database,
    E: Executor<'e, Database = DB>,
    for<'q> <DB as Database>::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'r> (String,): FromRow<'r, DB::Row>,
{
    let sql = format!(
        "SELECT owner FROM claims WHERE scope = {} AND key = {}",
        d.placeholder(1),
        d.placeholder(2)
    );
    sqlx::query_scalar::<DB, String>(&sql)
        .bind(scope)
        .bind(key)
        .fetch_optional(executor)
        .await
}

/// Releases `owner`'s claim of `(scope, key)` (nothing when another owner
/// holds it), inside an append or import transaction.
pub(crate) async fn release_claim<'e, DB, E>(
    executor: E,
    d: Dialect,
    scope: &str,
    key: &str,
    owner: &str,
) -> Result<(), sqlx::Error>
where
    DB: Database,
    E: Executor<'e, Database = DB>,
    for<'q> <DB as Database>::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
{
    let sql = format!(
        "DELETE FROM claims WHERE scope = {} AND key = {} AND owner = {}",
        d.placeholder(1),
        d.placeholder(2),
        d.placeholder(3)
    );
    sqlx::query::<DB>(&sql)
        .bind(scope)
        .bind(key)
        .bind(owner)
        .execute(executor)
        .await?;
    Ok(())
}

/// One document ([`LogStore::doc_get`](super::LogStore::doc_get)).
pub(crate) async fn doc_get<DB>(
    pool: &Pool<DB>,
    d: Dialect,
    model: &str,
    id: &str,
) -> Result<Option<Value>, StoreError>
where
    DB: Database,
    DB::Row: JsonRow,
    for<'q> <DB as Database>::Arguments<'q>: IntoArguments<'q, DB>,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    let sql = format!(
        "SELECT body FROM {} WHERE model = {} AND id = {}",
        rows::sql_table(model),
        d.placeholder(1),
        d.placeholder(2)
    );
    let row = sqlx::query::<DB>(&sql)
        .bind(model)
        .bind(id)
        .fetch_optional(pool)
        .await
        .map_err(sql_error)?;
    row.map(|row| row.json(0, "document")).transpose()
}

/// Every document of a model, ordered by id
/// ([`LogStore::doc_list`](super::LogStore::doc_list)): byte order in both
/// schemas (`id` is `BINARY` in SQLite, `COLLATE "C"` in PostgreSQL), like
/// the memory store's.
pub(crate) async fn doc_list<DB>(
    pool: &Pool<DB>,
    d: Dialect,
    model: &str,
) -> Result<Vec<(String, Value)>, StoreError>
where
    DB: Database,
    DB::Row: JsonRow,
    for<'q> <DB as Database>::Arguments<'q>: IntoArguments<'q, DB>,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
    for<'r> String: Decode<'r, DB> + Type<DB>,
{
    let sql = format!(
        "SELECT id, body FROM {} WHERE model = {} ORDER BY id",
        rows::sql_table(model),
        d.placeholder(1)
    );
    let rows = sqlx::query::<DB>(&sql)
        .bind(model)
        .fetch_all(pool)
        .await
        .map_err(sql_error)?;
    rows.iter().map(id_and_document).collect()
}

/// A row selected as `id, body`.
fn id_and_document<R>(row: &R) -> Result<(String, Value), StoreError>
where
    R: JsonRow,
    usize: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok((row.try_get(0).map_err(sql_error)?, row.json(1, "document")?))
}

/// Binds one index value: an integer as `int8`/`INTEGER`, text as text, the
/// types of the index columns in both schemas. NULL is bound as a text NULL:
/// SQLite binds a NULL of any type as the same NULL, and PostgreSQL, which
/// types its parameters, is bound a NULL only for a text column (no page
/// binds one at all: `Cond::Eq` on NULL is `1 = 0`, a cursor at NULL
/// becomes `IS NULL`).
pub(crate) fn bind_key<'q, DB>(
    query: Query<'q, DB, <DB as Database>::Arguments<'q>>,
    key: &'q Key,
) -> Query<'q, DB, <DB as Database>::Arguments<'q>>
where
    DB: Database,
    i64: Encode<'q, DB> + Type<DB>,
    &'q str: Encode<'q, DB> + Type<DB>,
    Option<&'q str>: Encode<'q, DB> + Type<DB>,
{
    match key {
        Key::Null => query.bind(None::<&str>),
        Key::Int(i) => query.bind(*i),
        Key::Text(s) => query.bind(s.as_str()),
    }
}

/// One page of a typed model (see [`rows::page_select`]), its rows with the
/// `select` columns in order.
async fn page<DB>(
    pool: &Pool<DB>,
    d: Dialect,
    model: &str,
    select: &[&'static str],
    query: &PageQuery<'_>,
) -> Result<Vec<DB::Row>, StoreError>
where
    DB: Database,
    for<'q> <DB as Database>::Arguments<'q>: IntoArguments<'q, DB>,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
{
    let table = rows::page_table(model, query)?;
    let sql = rows::page_select(table, model, select, query, d);
    let mut q = sqlx::query::<DB>(&sql.text);
    for key in &sql.binds {
        q = bind_key(q, key);
    }
    q.fetch_all(pool).await.map_err(sql_error)
}

/// [`LogStore::doc_page`](super::LogStore::doc_page).
pub(crate) async fn doc_page<DB>(
    pool: &Pool<DB>,
    d: Dialect,
    model: &str,
    query: &PageQuery<'_>,
) -> Result<Vec<(String, Value)>, StoreError>
where
    DB: Database,
    DB::Row: JsonRow,
    for<'q> <DB as Database>::Arguments<'q>: IntoArguments<'q, DB>,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
    for<'r> String: Decode<'r, DB> + Type<DB>,
{
    let rows = page(pool, d, model, &["id", "body"], query).await?;
    rows.iter().map(id_and_document).collect()
}

/// [`LogStore::row_keys`](super::LogStore::row_keys).
pub(crate) async fn row_keys<DB>(
    pool: &Pool<DB>,
    d: Dialect,
    model: &str,
    query: &PageQuery<'_>,
    columns: &[&'static str],
) -> Result<Vec<(String, Vec<Key>)>, StoreError>
where
    DB: Database,
    for<'q> <DB as Database>::Arguments<'q>: IntoArguments<'q, DB>,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
    for<'r> i64: Decode<'r, DB> + Type<DB>,
    for<'r> String: Decode<'r, DB> + Type<DB>,
{
    rows::page_table(model, query)?.check(columns)?;
    let select: Vec<&'static str> = std::iter::once("id")
        .chain(columns.iter().copied())
        .collect();
    let rows = page(pool, d, model, &select, query).await?;
    rows.iter().map(|row| row_keys_of(row, columns)).collect()
}

/// One row of a [`LogStore::row_keys`](super::LogStore::row_keys) query, as
/// both backends select it (`id`, then `columns`): the id and each column's
/// value, integers as [`Key::Int`], NULL as [`Key::Null`].
pub(crate) fn row_keys_of<R>(
    row: &R,
    columns: &[&'static str],
) -> Result<(String, Vec<Key>), StoreError>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let keys = columns
        .iter()
        .enumerate()
        .map(|(i, col)| {
            Ok(if rows::is_int(col) {
                row.try_get::<Option<i64>, _>(i + 1)
                    .map_err(sql_error)?
                    .map_or(Key::Null, Key::Int)
            } else {
                Key::opt_text(row.try_get::<Option<String>, _>(i + 1).map_err(sql_error)?)
            })
        })
        .collect::<Result<_, StoreError>>()?;
    Ok((row.try_get(0).map_err(sql_error)?, keys))
}

/// [`LogStore::count_by`](super::LogStore::count_by), with the statement of
/// [`rows::count_select`].
pub(crate) async fn count_by<DB>(
    pool: &Pool<DB>,
    d: Dialect,
    model: &str,
    column: &'static str,
) -> Result<Vec<(Option<String>, u64)>, StoreError>
where
    DB: Database,
    for<'q> <DB as Database>::Arguments<'q>: IntoArguments<'q, DB>,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'r> (Option<String>, i64): FromRow<'r, DB::Row>,
{
    let sql = rows::count_select(model, column, d)?;
    let counted: Vec<(Option<String>, i64)> = sqlx::query_as::<DB, (Option<String>, i64)>(&sql)
        .bind(model)
        .fetch_all(pool)
        .await
        .map_err(sql_error)?;
    counted
        .into_iter()
        .map(|(value, n)| Ok((value, to_u64(n, "count")?)))
        .collect()
}

/// The checkpoint of one model, 0 without one
/// ([`LogStore::checkpoint`](super::LogStore::checkpoint)).
pub(crate) async fn checkpoint<DB>(
    pool: &Pool<DB>,
    d: Dialect,
    model: &str,
) -> Result<u64, StoreError>
where
    DB: Database,
    for<'q> <DB as Database>::Arguments<'q>: IntoArguments<'q, DB>,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'r> (i64,): FromRow<'r, DB::Row>,
{
    let sql = format!(
        "SELECT position FROM checkpoints WHERE model = {}",
        d.placeholder(1)
    );
    let position: Option<i64> = sqlx::query_scalar::<DB, i64>(&sql)
        .bind(model)
        .fetch_optional(pool)
        .await
        .map_err(sql_error)?;
    to_u64(position.unwrap_or(0), "checkpoint")
}

/// Forgets the failures recorded for one aggregate in `model`
/// ([`LogStore::clear_failures`](super::LogStore::clear_failures)), through
/// `executor` (SQLite's write transaction, PostgreSQL's pool).
pub(crate) async fn clear_failures<'e, DB, E>(
    executor: E,
    d: Dialect,
    model: &str,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<(), StoreError>
where
    DB: Database,
    E: Executor<'e, Database = DB>,
    for<'q> <DB as Database>::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
{
    let sql = format!(
        "DELETE FROM projection_failures \
          WHERE model = {} AND aggregate_type = {} AND aggregate_id = {}",
        d.placeholder(1),
        d.placeholder(2),
        d.placeholder(3)
    );
    sqlx::query::<DB>(&sql)
        .bind(model)
        .bind(aggregate_type)
        .bind(aggregate_id)
        .execute(executor)
        .await
        .map_err(sql_error)?;
    Ok(())
}

/// Makes every inline model fed again from `head` (its checkpoint becomes
/// the head it stood at), for events that nothing folds (see
/// [`LogStore::append`](super::LogStore::append)), inside the transaction
/// that writes them. The caller keeps any model from going inline
/// meanwhile: SQLite's write transaction does, on PostgreSQL the inline
/// lock held exclusively.
pub(crate) async fn hand_back_to_the_feed<'e, DB, E>(
    executor: E,
    d: Dialect,
    head: i64,
) -> Result<(), StoreError>
where
    DB: Database,
    E: Executor<'e, Database = DB>,
    for<'q> <DB as Database>::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
{
    let sql = format!(
        "UPDATE checkpoints SET position = {} WHERE position >= {}",
        d.placeholder(1),
        d.placeholder(2)
    );
    sqlx::query::<DB>(&sql)
        .bind(head)
        .bind(INLINE as i64)
        .execute(executor)
        .await
        .map_err(sql_error)?;
    Ok(())
}

/// Splits a commit's net changes by the SQL table of their model, in order
/// (the changes come sorted by model, so each table's run is contiguous per
/// model; tables are grouped, not sorted).
pub(crate) fn by_table<T>(
    items: Vec<T>,
    model: impl Fn(&T) -> &str,
) -> Vec<(&'static str, Vec<T>)> {
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

/// A unique or primary key refused the write (sqlx tells it from either
/// database's error code).
pub(crate) fn is_unique_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
}
