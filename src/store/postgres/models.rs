//! Read models on PostgreSQL: the projector's commit of a batch, and the
//! swap of a rebuilt model.
//!
//! The projector commits a batch for all its models in one transaction
//! ([`LogStore::commit_models`]): one `SELECT … FOR UPDATE` takes the models'
//! checkpoint rows in model order and checks every compare-and-set, then one
//! statement moves the checkpoints and two `unnest` statements per table
//! (`read_models` and the typed tables of [`rows`]) write every
//! model's documents.
//!
//! [`LogStore::commit_models`]: crate::store::LogStore::commit_models

use super::errors::is_transient;
use super::inline::{lock_inline_exclusive, INLINE_MARK_SQL};
use super::PostgresStore;
use crate::store::rows::{self, Key, Keys};
use crate::store::shared::{by_table, is_unique_violation};
use crate::store::{last_changes, sql_error, to_i64, ApplyFailure, ModelCommit, StoreError};
use serde_json::Value;
use sqlx::postgres::PgConnection;
use sqlx::types::Json;
use sqlx::Row;
use std::collections::HashMap;

impl PostgresStore {
    /// The transaction of [`LogStore::commit_models`], on model-sorted arrays.
    /// Returns the driver's error as is, so that the caller can tell a deadlock or
    /// serialization failure (nothing written, try again) from a real failure.
    ///
    /// [`LogStore::commit_models`]: crate::store::LogStore::commit_models
    pub(super) async fn commit_sorted(
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

impl PostgresStore {
    /// [`LogStore::swap_model`].
    ///
    /// [`LogStore::swap_model`]: crate::store::LogStore::swap_model
    pub(super) async fn replace_model(
        &self,
        live: &str,
        scratch: &str,
    ) -> Result<bool, StoreError> {
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
        let Some(checkpoint) =
            crate::store::swap_outcome(at(live), at(scratch), at_head, failures > 0)
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
        let set = if crate::store::is_inline(checkpoint) {
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
}

/// Writes the net document changes of `commits` (not their checkpoints):
/// every table's documents in (at most) two set-based statements.
pub(super) async fn write_changes(
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
///
/// [`LogStore::swap_model`]: crate::store::LogStore::swap_model
enum Binds {
    Live,
    Scratch,
    Both,
}

/// Records (or replaces) one failure of `model`.
pub(super) async fn insert_failure(
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
