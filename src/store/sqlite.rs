//! The embedded default backend: one SQLite file.
//!
//! # Why two pools
//!
//! SQLite allows many readers but only one writer at a time. If several pooled
//! connections tried to write, the losers would get `SQLITE_BUSY` ("database is
//! locked") — and inside a deferred transaction that upgrades from read to write,
//! `busy_timeout` cannot help, because waiting could deadlock. So:
//!
//! - every write goes through a **write pool of exactly one connection** and starts
//!   with `BEGIN IMMEDIATE`, which takes the write lock up front. Writers in this
//!   process queue on the pool; writers in other processes wait on the lock for up
//!   to `busy_timeout`. Either way they serialize instead of failing;
//! - reads use a separate **read pool**; in WAL mode they run concurrently with the
//!   writer and always see the last committed state.
//!
//! # Why positions are simple here
//!
//! Because writes are serialized, the append transaction can number its events
//! `max(position) + 1, + 2, …` itself: no other transaction can commit in between,
//! so commit order *is* position order and the feed can have no gaps. Compare the
//! PostgreSQL backend, where concurrent writers make this much harder.
//!
//! # Durability
//!
//! `synchronous = FULL`: an acknowledged append survives a power loss, not just a
//! process crash (WAL with `NORMAL` may lose the last transactions on power loss).

use super::rows::{self, Dialect, Key, Keys, PageQuery};
use super::shared::{self, bind_key, by_table, is_unique_violation, JsonRow};
use super::{
    distinct_models, last_changes, sql_error, to_i64, to_u64, ApplyFailure, ClaimConflict, ClaimOp,
    FailureColumns, Fold, KeyState, LogStore, ModelCommit, RecordedEvent, StoreError, INLINE,
};
use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use cqrs_es::persist::SerializedEvent;
use serde_json::Value;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{ColumnIndex, Connection, Executor, Row, Sqlite, Transaction};
use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

/// The schema, applied in order by [`SqliteStore::connect`]. A version is applied
/// once; never edit a released file, add a new one.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "0001_events",
        include_str!("../../schema/sqlite/0001_events.sql"),
    ),
    (
        2,
        "0002_claims",
        include_str!("../../schema/sqlite/0002_claims.sql"),
    ),
    (
        3,
        "0003_read_models",
        include_str!("../../schema/sqlite/0003_read_models.sql"),
    ),
    (
        4,
        "0004_projection_failures",
        include_str!("../../schema/sqlite/0004_projection_failures.sql"),
    ),
    (
        5,
        "0005_read_tables",
        include_str!("../../schema/sqlite/0005_read_tables.sql"),
    ),
    (
        6,
        "0006_idempotency_keys",
        include_str!("../../schema/sqlite/0006_idempotency_keys.sql"),
    ),
];

/// How long a writer in *another process* may hold the file's write lock before
/// our write fails. Within this process writers queue on the write pool instead.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a write may wait for the single write connection.
const WRITE_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(60);

const READ_CONNECTIONS: u32 = 4;

const SELECT_EVENT_COLUMNS: &str = "position, aggregate_type, aggregate_id, sequence, \
     event_type, event_version, payload, metadata, recorded_at";

/// The SQLite backend. See the module docs for its concurrency design.
pub struct SqliteStore {
    write: SqlitePool,
    read: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating it if missing) the database at a file path, or at a sqlx
    /// SQLite URL (`sqlite:data.db`, `sqlite:///abs/path.db`), and applies the
    /// schema migrations.
    pub async fn connect(path_or_url: &str) -> Result<Self, StoreError> {
        if path_or_url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(path_or_url)
                .map_err(|e| StoreError::Database(format!("bad SQLite URL: {e}")))?;
            Self::connect_with(options).await
        } else {
            Self::open(Path::new(path_or_url)).await
        }
    }

    /// Opens (creating it and its parent directories if missing) the database file
    /// at `path` and applies the schema migrations.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                StoreError::Database(format!("cannot create {}: {e}", parent.display()))
            })?;
        }
        Self::connect_with(SqliteConnectOptions::new().filename(path)).await
    }

    async fn connect_with(options: SqliteConnectOptions) -> Result<Self, StoreError> {
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);

        // The write pool keeps its one connection open for the life of the store:
        // besides saving reconnects, an open connection keeps the WAL and shared
        // memory files in place for the readers. Neither pool pings a
        // connection before handing it out (sqlx's default): a connection to a
        // local file does not go stale, and each ping is one more round trip
        // to the connection's thread on every statement's way.
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .acquire_timeout(WRITE_ACQUIRE_TIMEOUT)
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await
            .map_err(sql_error)?;
        migrate(&write).await?;

        // Opened after the migrations so that a reader never sees a half-made schema.
        let read = SqlitePoolOptions::new()
            .max_connections(READ_CONNECTIONS)
            .test_before_acquire(false)
            .connect_with(options.create_if_missing(false))
            .await
            .map_err(sql_error)?;
        Ok(Self { write, read })
    }

    /// An append, folding `fold`'s inline models in the same transaction
    /// (see [`LogStore::append_folded`]): whether every one of them was inline.
    async fn append_with(
        &self,
        events: &[SerializedEvent],
        claims: &[ClaimOp],
        fold: Option<&dyn Fold>,
    ) -> Result<bool, StoreError> {
        if events.is_empty() && claims.is_empty() {
            return Ok(true);
        }
        let mut tx = self.begin_write().await?;

        // We hold the write lock, so nobody can take these positions before we commit.
        let head: i64 = sqlx::query_scalar("SELECT coalesce(max(position), 0) FROM events")
            .fetch_one(&mut *tx)
            .await
            .map_err(sql_error)?;
        let recorded_at = now_text();
        for (i, e) in events.iter().enumerate() {
            let result = sqlx::query(
                "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
                     event_version, payload, metadata, position, recorded_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&e.aggregate_type)
            .bind(&e.aggregate_id)
            .bind(to_i64(e.sequence as u64, "sequence")?)
            .bind(&e.event_type)
            .bind(&e.event_version)
            .bind(json_text(&e.payload))
            .bind(json_text(&e.metadata))
            .bind(head + 1 + i as i64)
            .bind(&recorded_at)
            .execute(&mut *tx)
            .await;
            match result {
                Ok(_) => {}
                // The primary key (type, id, sequence) is the optimistic lock.
                Err(err) if is_unique_violation(&err) => {
                    tx.rollback().await.map_err(sql_error)?;
                    return Err(StoreError::Conflict);
                }
                Err(err) => return Err(sql_error(err)),
            }
        }

        // Writes are serialized, so read-then-write claims cannot race. A
        // claim held by another owner fails the append: the transaction is
        // dropped, which rolls it back.
        apply_claims_in(&mut tx, claims).await?;
        let mut all_inline = true;
        if fold.is_none() && !events.is_empty() {
            shared::hand_back_to_the_feed(&mut *tx, Dialect::Sqlite, head).await?;
        }
        if let Some(fold) = fold {
            // The documents the fold starts from are read through the read
            // pool: they are what the aggregate's previous commit left (this
            // transaction has not written any yet).
            let at = parse_time(&recorded_at)?;
            let recorded = super::recorded(
                events,
                |i| {
                    let p = (head + 1) as u64 + i as u64;
                    (p, p)
                },
                at,
            );
            let changes = fold.fold(self, &recorded).await?;
            let models = fold.models();
            let current = read_checkpoints(&mut *tx, models).await?;
            let commits = super::folded_commits(models, &changes, |m| {
                models
                    .iter()
                    .position(|x| *x == m)
                    .is_some_and(|i| super::is_inline(current[i]))
            });
            all_inline = commits.len() == models.len();
            write_changes(&mut tx, &commits).await?;
        }
        tx.commit().await.map_err(sql_error)?;
        Ok(all_inline)
    }

    /// Starts a write transaction holding SQLite's write lock from the first
    /// statement (see the module docs for why not a plain `BEGIN`).
    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        self.write
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(sql_error)
    }
}

/// Applies every migration not yet recorded in `schema_migrations`, each in its
/// own `BEGIN IMMEDIATE` transaction: the write lock makes a second process that
/// starts at the same time wait and then find the version already applied.
async fn migrate(pool: &SqlitePool) -> Result<(), StoreError> {
    let mut conn = pool.acquire().await.map_err(sql_error)?;
    for &(version, name, sql) in MIGRATIONS {
        let mut tx = conn
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(sql_error)?;
        tx.execute(sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS schema_migrations (\
                 version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL\
             ) STRICT",
        ))
        .await
        .map_err(sql_error)?;
        let applied: Option<i64> =
            sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = ?")
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
        sqlx::query("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)")
            .bind(version)
            .bind(name)
            .bind(now_text())
            .execute(&mut *tx)
            .await
            .map_err(sql_error)?;
        tx.commit().await.map_err(sql_error)?;
        tracing::info!(migration = name, "applied SQLite migration");
    }
    Ok(())
}

/// The current time as stored in `recorded_at`: RFC 3339, UTC, microseconds.
/// Fixed width, so the text sorts in time order.
fn now_text() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn json_text(value: &Value) -> String {
    super::json::encode(value)
}

/// Records (or replaces) one failure of `model` inside a write transaction.
async fn insert_failure(
    tx: &mut Transaction<'_, Sqlite>,
    model: &str,
    f: &ApplyFailure,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO projection_failures (model, position, aggregate_type, \
         aggregate_id, event_type, error, failed_at) VALUES (?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (model, position) DO UPDATE SET error = excluded.error, \
         failed_at = excluded.failed_at",
    )
    .bind(model)
    .bind(to_i64(f.position, "position")?)
    .bind(&f.aggregate_type)
    .bind(&f.aggregate_id)
    .bind(&f.event_type)
    .bind(&f.error)
    .bind(f.failed_at.to_rfc3339_opts(SecondsFormat::Micros, true))
    .execute(&mut **tx)
    .await
    .map_err(sql_error)?;
    Ok(())
}

/// Stored JSON text, read by the one decoder of stored data ([`super::json`]).
fn parse_json(text: &str, what: &str) -> Result<Value, StoreError> {
    super::json::decode(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

/// JSON text columns.
impl JsonRow for SqliteRow {
    fn json<I: ColumnIndex<Self>>(&self, column: I, what: &str) -> Result<Value, StoreError> {
        self.try_get::<String, _>(column)
            .map_err(sql_error)
            .and_then(|text| parse_json(&text, what))
    }
}

/// A feed event (see [`shared::recorded_from_row`]): events are numbered as
/// they are appended, so the position is the id; `recorded_at` is RFC 3339
/// text.
fn recorded_from_row(row: &SqliteRow) -> Result<RecordedEvent, StoreError> {
    let recorded_at: String = row.try_get("recorded_at").map_err(sql_error)?;
    shared::recorded_from_row(row, None, || parse_time(&recorded_at))
}

/// Parameters per statement when writing documents: multi-row statements
/// save a trip through the driver per row, and staying below 999 keeps within
/// the limit of older SQLite builds (a `node_rows` statement writes 43 rows).
const MAX_PARAMS: usize = 999;

/// Upserts documents of one SQL table: `body` and, in a typed table, its
/// index columns (a column the keys leave out becomes NULL, so a key that is
/// gone is gone from the index too).
///
/// A row that exists already gets only the index columns whose value
/// changes. SQLite rewrites the index entry of every column an UPDATE sets,
/// changed or not, and each index page so dirtied is one more page written to
/// the WAL at commit: setting all of `node_rows`' columns on a PATCH of one
/// node's `extra` wrote 31 pages to the WAL, setting only what changed about
/// ten, and the commands got about 30 % faster (`docs/performance.md`). The
/// rows are written in groups of the same changed columns, one statement a
/// group (and a chunk of parameters).
async fn write_docs(
    tx: &mut Transaction<'_, Sqlite>,
    table: &'static str,
    puts: &[(&str, &str, &Value, &Keys)],
) -> Result<(), StoreError> {
    let typed = puts.first().and_then(|p| rows::table_of(p.0));
    let index_columns = typed.map_or(&[][..], |t| t.columns);
    let columns: Vec<&str> = ["model", "id", "body"]
        .into_iter()
        .chain(index_columns.iter().copied())
        .collect();
    let values: Vec<Vec<&Key>> = puts
        .iter()
        .map(|p| typed.map_or(vec![], |t| t.values(p.3)))
        .collect();
    let current = current_keys(tx, table, index_columns, puts).await?;
    // Existing rows by the index columns their write changes; a new row
    // joins any group (the SET of an upsert applies only to a row that
    // exists), so a commit that adds rows and updates one costs one statement.
    let mut groups: Vec<(Vec<&str>, Vec<usize>)> = vec![];
    let mut new_rows = vec![];
    for (i, old) in current.iter().enumerate() {
        let Some(old) = old else {
            new_rows.push(i);
            continue;
        };
        let changed: Vec<&str> = index_columns
            .iter()
            .zip(old.iter().zip(&values[i]))
            .filter(|(_, (old, new))| old != *new)
            .map(|(c, _)| *c)
            .collect();
        match groups.iter_mut().find(|(c, _)| *c == changed) {
            Some((_, rows)) => rows.push(i),
            None => groups.push((changed, vec![i])),
        }
    }
    match groups.first_mut() {
        Some((_, rows)) => rows.extend(new_rows),
        None if !new_rows.is_empty() => groups.push((index_columns.to_vec(), new_rows)),
        None => {}
    }
    let row = format!("({})", vec!["?"; columns.len()].join(", "));
    let bodies: Vec<String> = puts.iter().map(|p| json_text(p.2)).collect();
    for (changed, members) in &groups {
        let set: Vec<String> = std::iter::once("body")
            .chain(changed.iter().copied())
            .map(|c| format!("{c} = excluded.{c}"))
            .collect();
        for chunk in members.chunks(MAX_PARAMS / columns.len()) {
            let sql = format!(
                "INSERT INTO {table} ({}) VALUES {} ON CONFLICT (model, id) DO UPDATE SET {}",
                columns.join(", "),
                vec![row.as_str(); chunk.len()].join(", "),
                set.join(", ")
            );
            let mut query = sqlx::query(&sql);
            for &i in chunk {
                let p = &puts[i];
                query = query.bind(p.0).bind(p.1).bind(bodies[i].as_str());
                for v in &values[i] {
                    query = bind_key(query, v);
                }
            }
            query.execute(&mut **tx).await.map_err(sql_error)?;
        }
    }
    Ok(())
}

/// The index values the rows of `puts` hold now, in the order of `puts`
/// (`None`: no such row yet), read in the write transaction.
async fn current_keys(
    tx: &mut Transaction<'_, Sqlite>,
    table: &'static str,
    columns: &[&'static str],
    puts: &[(&str, &str, &Value, &Keys)],
) -> Result<Vec<Option<Vec<Key>>>, StoreError> {
    let mut current = vec![None; puts.len()];
    if columns.is_empty() {
        return Ok(current);
    }
    // 2 parameters a row.
    for (c, chunk) in puts.chunks(MAX_PARAMS / 2).enumerate() {
        let sql = format!(
            "SELECT id, {}, model FROM {table} WHERE (model, id) IN (VALUES {})",
            columns.join(", "),
            vec!["(?, ?)"; chunk.len()].join(", ")
        );
        let mut query = sqlx::query(&sql);
        // id → (model, index in `puts`)
        let mut asked: HashMap<&str, Vec<(&str, usize)>> = HashMap::with_capacity(chunk.len());
        for (i, p) in chunk.iter().enumerate() {
            query = query.bind(p.0).bind(p.1);
            asked
                .entry(p.1)
                .or_default()
                .push((p.0, c * (MAX_PARAMS / 2) + i));
        }
        for row in query.fetch_all(&mut **tx).await.map_err(sql_error)? {
            let (id, keys) = shared::row_keys_of(&row, columns)?;
            let model: String = row.try_get(columns.len() + 1).map_err(sql_error)?;
            let at = asked
                .get(id.as_str())
                .and_then(|m| m.iter().find(|(m, _)| *m == model));
            if let Some(&(_, i)) = at {
                current[i] = Some(keys);
            }
        }
    }
    Ok(current)
}

/// The checkpoints of `models` (0 if missing), in the order asked, in one query.
/// Writes the net document changes of `commits` (not their checkpoints)
/// inside a write transaction.
async fn write_changes(
    tx: &mut Transaction<'static, Sqlite>,
    commits: &[ModelCommit<'_>],
) -> Result<(), StoreError> {
    let (puts, deletes) = last_changes(commits);
    for (table, puts) in by_table(puts, |p| p.0) {
        write_docs(tx, table, &puts).await?;
    }
    for (table, deletes) in by_table(deletes, |d| d.0) {
        // 2 parameters a row.
        for chunk in deletes.chunks(MAX_PARAMS / 2) {
            let sql = format!(
                "DELETE FROM {table} WHERE (model, id) IN (VALUES {})",
                vec!["(?, ?)"; chunk.len()].join(", ")
            );
            let mut query = sqlx::query(&sql);
            for (model, id) in chunk {
                query = query.bind(*model).bind(*id);
            }
            query.execute(&mut **tx).await.map_err(sql_error)?;
        }
    }
    Ok(())
}

/// Upserts checkpoint rows `(model, position)` inside a write transaction.
async fn write_checkpoints(
    tx: &mut Transaction<'static, Sqlite>,
    moves: &[(&str, i64)],
) -> Result<(), StoreError> {
    // `WHERE true`: SQLite's parser needs it to tell the upsert's ON CONFLICT
    // from a join constraint after a SELECT.
    sqlx::query(
        "INSERT INTO checkpoints (model, position) \
         SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') \
           FROM json_each(?) WHERE true \
         ON CONFLICT (model) DO UPDATE SET position = excluded.position",
    )
    .bind(json_text(&serde_json::json!(moves)))
    .execute(&mut **tx)
    .await
    .map_err(sql_error)?;
    Ok(())
}

/// A `recorded_at` text as the feed reads it back.
fn parse_time(text: &str) -> Result<DateTime<Utc>, StoreError> {
    Ok(DateTime::parse_from_rfc3339(text)
        .map_err(|e| StoreError::Corrupt(format!("recorded_at {text:?}: {e}")))?
        .with_timezone(&Utc))
}

async fn read_checkpoints<'e, E>(executor: E, models: &[&str]) -> Result<Vec<u64>, StoreError>
where
    E: Executor<'e, Database = Sqlite>,
{
    if models.is_empty() {
        return Ok(vec![]);
    }
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT model, position FROM checkpoints \
         WHERE model IN (SELECT value FROM json_each(?))",
    )
    .bind(json_text(&serde_json::json!(models)))
    .fetch_all(executor)
    .await
    .map_err(sql_error)?;
    let found: HashMap<String, i64> = rows.into_iter().collect();
    models
        .iter()
        .map(|m| to_u64(found.get(*m).copied().unwrap_or(0), "checkpoint"))
        .collect()
}

#[async_trait]
impl LogStore for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn load(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, StoreError> {
        shared::load(&self.read, Dialect::Sqlite, aggregate_type, aggregate_id).await
    }

    async fn append(
        &self,
        events: &[SerializedEvent],
        claims: &[ClaimOp],
    ) -> Result<(), StoreError> {
        self.append_with(events, claims, None).await.map(|_| ())
    }

    async fn append_folded(
        &self,
        events: &[SerializedEvent],
        claims: &[ClaimOp],
        fold: &dyn Fold,
    ) -> Result<bool, StoreError> {
        self.append_with(events, claims, Some(fold)).await
    }

    async fn go_inline(&self, models: &[&str], at: u64) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        // We hold the write lock: no append can come between these reads and
        // the checkpoint move.
        let head: i64 = sqlx::query_scalar("SELECT coalesce(max(position), 0) FROM events")
            .fetch_one(&mut *tx)
            .await
            .map_err(sql_error)?;
        let failures: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM projection_failures WHERE model IN (SELECT value FROM json_each(?))",
        )
        .bind(json_text(&serde_json::json!(models)))
        .fetch_one(&mut *tx)
        .await
        .map_err(sql_error)?;
        let current = read_checkpoints(&mut *tx, models).await?;
        if head as u64 != at || failures > 0 || current.iter().any(|&c| c != at) {
            tx.rollback().await.map_err(sql_error)?;
            return Ok(false);
        }
        let moves: Vec<(&str, i64)> = models.iter().map(|m| (*m, INLINE as i64)).collect();
        write_checkpoints(&mut tx, &moves).await?;
        tx.commit().await.map_err(sql_error)?;
        Ok(true)
    }

    async fn claim_owner(&self, scope: &str, key: &str) -> Result<Option<String>, StoreError> {
        shared::claim_holder(&self.read, Dialect::Sqlite, scope, key)
            .await
            .map_err(sql_error)
    }

    async fn sequence(&self) -> Result<(), StoreError> {
        // Positions are assigned inside the append transaction.
        Ok(())
    }

    async fn read_feed(&self, after: u64, limit: u32) -> Result<Vec<RecordedEvent>, StoreError> {
        let after = after.min(i64::MAX as u64) as i64;
        let rows = sqlx::query(&format!(
            "SELECT {SELECT_EVENT_COLUMNS} FROM events \
             WHERE position > ? ORDER BY position LIMIT ?"
        ))
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await
        .map_err(sql_error)?;
        rows.iter().map(recorded_from_row).collect()
    }

    async fn head(&self) -> Result<u64, StoreError> {
        let head: i64 = sqlx::query_scalar("SELECT coalesce(max(position), 0) FROM events")
            .fetch_one(&self.read)
            .await
            .map_err(sql_error)?;
        to_u64(head, "position")
    }

    async fn aggregate_position(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<(u64, bool), StoreError> {
        let max: i64 = sqlx::query_scalar(
            "SELECT coalesce(max(position), 0) FROM events \
             WHERE aggregate_type = ? AND aggregate_id = ?",
        )
        .bind(aggregate_type)
        .bind(aggregate_id)
        .fetch_one(&self.read)
        .await
        .map_err(sql_error)?;
        Ok((to_u64(max, "position")?, false))
    }

    async fn doc_get(&self, model: &str, id: &str) -> Result<Option<Value>, StoreError> {
        shared::doc_get(&self.read, Dialect::Sqlite, model, id).await
    }

    async fn doc_get_many(
        &self,
        model: &str,
        ids: &[String],
    ) -> Result<Vec<(String, Value)>, StoreError> {
        if ids.is_empty() {
            return Ok(vec![]);
        }
        // The ids as one JSON array parameter: no limit on their number.
        let rows: Vec<(String, String)> = sqlx::query_as(&format!(
            "SELECT id, body FROM {} WHERE model = ? AND id IN (SELECT value FROM json_each(?))",
            rows::sql_table(model)
        ))
        .bind(model)
        .bind(json_text(&serde_json::json!(ids)))
        .fetch_all(&self.read)
        .await
        .map_err(sql_error)?;
        rows.into_iter()
            .map(|(id, body)| Ok((id, parse_json(&body, "document")?)))
            .collect()
    }

    async fn doc_list(&self, model: &str) -> Result<Vec<(String, Value)>, StoreError> {
        shared::doc_list(&self.read, Dialect::Sqlite, model).await
    }

    async fn doc_prefix(
        &self,
        model: &str,
        prefix: &str,
        limit: Option<u32>,
    ) -> Result<Vec<(String, Value)>, StoreError> {
        // BINARY collation: byte order, so the prefix is one range of the
        // primary key, bounded on both ends (an `OR` in the bound would make
        // SQLite scan to the end of the model).
        let upper = super::prefix_upper_bound(prefix).unwrap_or_else(|| "\u{10FFFF}".repeat(8));
        let limit = limit.map_or(-1, i64::from);
        let rows: Vec<(String, String)> = sqlx::query_as(&format!(
            "SELECT id, body FROM {} WHERE model = ? AND id >= ? AND id < ? \
             ORDER BY id LIMIT ?",
            rows::sql_table(model)
        ))
        .bind(model)
        .bind(prefix)
        .bind(&upper)
        .bind(limit)
        .fetch_all(&self.read)
        .await
        .map_err(sql_error)?;
        rows.into_iter()
            .map(|(id, body)| Ok((id, parse_json(&body, "document")?)))
            .collect()
    }

    async fn doc_scan(
        &self,
        model: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<(String, Value)>, StoreError> {
        // Without `after`, no bound at all: an empty id is an id too.
        let bound = if after.is_some() { "AND id > ?" } else { "" };
        let sql = format!(
            "SELECT id, body FROM {} WHERE model = ? {bound} ORDER BY id LIMIT ?",
            rows::sql_table(model)
        );
        let mut query = sqlx::query_as(&sql).bind(model);
        if let Some(after) = after {
            query = query.bind(after);
        }
        let rows: Vec<(String, String)> = query
            .bind(i64::from(limit))
            .fetch_all(&self.read)
            .await
            .map_err(sql_error)?;
        rows.into_iter()
            .map(|(id, body)| Ok((id, parse_json(&body, "document")?)))
            .collect()
    }

    async fn doc_page(
        &self,
        model: &str,
        query: &PageQuery<'_>,
    ) -> Result<Vec<(String, Value)>, StoreError> {
        shared::doc_page(&self.read, Dialect::Sqlite, model, query).await
    }

    async fn row_keys(
        &self,
        model: &str,
        query: &PageQuery<'_>,
        columns: &[&'static str],
    ) -> Result<Vec<(String, Vec<Key>)>, StoreError> {
        shared::row_keys(&self.read, Dialect::Sqlite, model, query, columns).await
    }

    async fn take_idempotency_key(
        &self,
        key: &str,
        fingerprint: &str,
        now_ms: i64,
        expired_before_ms: i64,
    ) -> Result<KeyState, StoreError> {
        super::idempotency::take(
            &self.write,
            Dialect::Sqlite,
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
        super::idempotency::settle(&self.write, Dialect::Sqlite, key, answer).await
    }

    async fn count_by(
        &self,
        model: &str,
        column: &'static str,
    ) -> Result<Vec<(Option<String>, u64)>, StoreError> {
        shared::count_by(&self.read, Dialect::Sqlite, model, column).await
    }

    async fn checkpoint(&self, model: &str) -> Result<u64, StoreError> {
        shared::checkpoint(&self.read, Dialect::Sqlite, model).await
    }

    async fn checkpoints(&self, models: &[&str]) -> Result<Vec<u64>, StoreError> {
        read_checkpoints(&self.read, models).await
    }

    async fn commit_models(&self, commits: &[ModelCommit<'_>]) -> Result<bool, StoreError> {
        distinct_models(commits)?;
        if commits.is_empty() {
            return Ok(true);
        }
        let models: Vec<&str> = commits.iter().map(|c| c.model).collect();
        let mut moves = Vec::with_capacity(commits.len());
        for c in commits {
            moves.push((c.model, to_i64(c.to, "checkpoint")?));
        }
        let mut tx = self.begin_write().await?;
        // Compare-and-set: we hold the write lock, so check-then-write is atomic,
        // for all the models at once.
        let current = read_checkpoints(&mut *tx, &models).await?;
        if commits.iter().zip(&current).any(|(c, &now)| now != c.from) {
            tx.rollback().await.map_err(sql_error)?;
            return Ok(false);
        }
        write_checkpoints(&mut tx, &moves).await?;

        write_changes(&mut tx, commits).await?;
        for c in commits {
            for f in c.failures {
                insert_failure(&mut tx, c.model, f).await?;
            }
        }
        tx.commit().await.map_err(sql_error)?;
        Ok(true)
    }

    async fn failures(&self, models: &[&str]) -> Result<Vec<ApplyFailure>, StoreError> {
        let rows: Vec<FailureColumns<String>> = sqlx::query_as(
            "SELECT model, position, aggregate_type, aggregate_id, event_type, error, failed_at \
               FROM projection_failures \
              WHERE ? = '[]' OR model IN (SELECT value FROM json_each(?)) \
              ORDER BY model, position",
        )
        .bind(json_text(&serde_json::json!(models)))
        .bind(json_text(&serde_json::json!(models)))
        .fetch_all(&self.read)
        .await
        .map_err(sql_error)?;
        rows.into_iter()
            .map(|row| {
                let at = DateTime::parse_from_rfc3339(&row.6)
                    .map_err(|e| StoreError::Corrupt(format!("failed_at {:?}: {e}", row.6)))?
                    .with_timezone(&Utc);
                ApplyFailure::from_columns(row, at)
            })
            .collect()
    }

    async fn record_failure(&self, failure: &ApplyFailure) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        insert_failure(&mut tx, &failure.model, failure).await?;
        tx.commit().await.map_err(sql_error)
    }

    async fn clear_failures(
        &self,
        model: &str,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        shared::clear_failures(
            &mut *tx,
            Dialect::Sqlite,
            model,
            aggregate_type,
            aggregate_id,
        )
        .await?;
        tx.commit().await.map_err(sql_error)
    }

    async fn drop_model(&self, model: &str) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        for table in [rows::sql_table(model), "checkpoints", "projection_failures"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE model = ?"))
                .bind(model)
                .execute(&mut *tx)
                .await
                .map_err(sql_error)?;
        }
        tx.commit().await.map_err(sql_error)
    }

    async fn swap_model(&self, live: &str, scratch: &str) -> Result<bool, StoreError> {
        if live == scratch {
            // Deleting `live` first would destroy the very documents we keep.
            return Ok(true);
        }
        // The write transaction excludes every other writer (projectors too).
        let mut tx = self.begin_write().await?;
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT model, position FROM checkpoints WHERE model IN (?, ?)")
                .bind(live)
                .bind(scratch)
                .fetch_all(&mut *tx)
                .await
                .map_err(sql_error)?;
        let at = |m: &str| rows.iter().find(|(model, _)| model == m).map(|(_, p)| *p);
        let (head, failures): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT coalesce(max(position), 0) FROM events), \
                    (SELECT count(*) FROM projection_failures WHERE model = ?)",
        )
        .bind(scratch)
        .fetch_one(&mut *tx)
        .await
        .map_err(sql_error)?;
        let outcome = super::swap_outcome(
            at(live),
            at(scratch),
            at(scratch) == Some(head),
            failures > 0,
        );
        let Some(checkpoint) = outcome else {
            return Ok(false);
        };
        for table in ["checkpoints", "projection_failures"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE model = ?"))
                .bind(live)
                .execute(&mut *tx)
                .await
                .map_err(sql_error)?;
            sqlx::query(&format!("UPDATE {table} SET model = ? WHERE model = ?"))
                .bind(live)
                .bind(scratch)
                .execute(&mut *tx)
                .await
                .map_err(sql_error)?;
        }
        let (live_table, scratch_table) = (rows::sql_table(live), rows::sql_table(scratch));
        sqlx::query(&format!("DELETE FROM {live_table} WHERE model = ?"))
            .bind(live)
            .execute(&mut *tx)
            .await
            .map_err(sql_error)?;
        if live_table == scratch_table {
            // Keys and all: the rows only change their model.
            sqlx::query(&format!(
                "UPDATE {live_table} SET model = ? WHERE model = ?"
            ))
            .bind(live)
            .bind(scratch)
            .execute(&mut *tx)
            .await
            .map_err(sql_error)?;
        } else {
            // Models of two tables (not a rebuild's scratch copy): the
            // documents move, keys cannot (the tables have other columns).
            sqlx::query(&format!(
                "INSERT INTO {live_table} (model, id, body) \
                 SELECT ?, id, body FROM {scratch_table} WHERE model = ?"
            ))
            .bind(live)
            .bind(scratch)
            .execute(&mut *tx)
            .await
            .map_err(sql_error)?;
            sqlx::query(&format!("DELETE FROM {scratch_table} WHERE model = ?"))
                .bind(scratch)
                .execute(&mut *tx)
                .await
                .map_err(sql_error)?;
        }
        write_checkpoints(&mut tx, &[(live, to_i64(checkpoint, "checkpoint")?)]).await?;
        tx.commit().await.map_err(sql_error)?;
        Ok(true)
    }

    async fn load_recorded(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {SELECT_EVENT_COLUMNS} FROM events \
             WHERE aggregate_type = ? AND aggregate_id = ? ORDER BY sequence"
        ))
        .bind(aggregate_type)
        .bind(aggregate_id)
        .fetch_all(&self.read)
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
             WHERE scope = ? AND (? IS NULL OR owner = ?) ORDER BY key",
        )
        .bind(scope)
        .bind(owner)
        .bind(owner)
        .fetch_all(&self.read)
        .await
        .map_err(sql_error)
    }

    async fn import_events(
        &self,
        events: &[RecordedEvent],
        claims: &[ClaimOp],
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let head: i64 = sqlx::query_scalar("SELECT coalesce(max(position), 0) FROM events")
            .fetch_one(&mut *tx)
            .await
            .map_err(sql_error)?;
        super::check_continues(to_u64(head, "position")?, events)?;
        if !events.is_empty() {
            shared::hand_back_to_the_feed(&mut *tx, Dialect::Sqlite, head).await?;
        }
        for e in events {
            let result = sqlx::query(
                "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
                     event_version, payload, metadata, position, recorded_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&e.aggregate_type)
            .bind(&e.aggregate_id)
            .bind(to_i64(e.sequence, "sequence")?)
            .bind(&e.event_type)
            .bind(&e.event_version)
            .bind(json_text(&e.payload))
            .bind(json_text(&e.metadata))
            .bind(to_i64(e.position, "position")?)
            .bind(e.recorded_at.to_rfc3339_opts(SecondsFormat::Micros, true))
            .execute(&mut *tx)
            .await;
            match result {
                Ok(_) => {}
                Err(err) if is_unique_violation(&err) => return Err(StoreError::Conflict),
                Err(err) => return Err(sql_error(err)),
            }
        }
        apply_claims_in(&mut tx, claims).await?;
        tx.commit().await.map_err(sql_error)
    }
}

/// Applies claim operations inside a write transaction (`append`, `import`);
/// writes are serialized, so read-then-write cannot race.
async fn apply_claims_in(
    tx: &mut Transaction<'static, Sqlite>,
    claims: &[ClaimOp],
) -> Result<(), StoreError> {
    for op in claims {
        match op {
            ClaimOp::Acquire { scope, key, owner } => {
                let holder = shared::claim_holder(&mut **tx, Dialect::Sqlite, scope, key)
                    .await
                    .map_err(sql_error)?;
                match holder {
                    Some(holder) if &holder != owner => {
                        return Err(StoreError::Claim(ClaimConflict {
                            scope: scope.clone(),
                            key: key.clone(),
                            owner: holder,
                        }));
                    }
                    Some(_) => {}
                    None => {
                        sqlx::query("INSERT INTO claims (scope, key, owner) VALUES (?, ?, ?)")
                            .bind(scope)
                            .bind(key)
                            .bind(owner)
                            .execute(&mut **tx)
                            .await
                            .map_err(sql_error)?;
                    }
                }
            }
            ClaimOp::Release { scope, key, owner } => {
                shared::release_claim(&mut **tx, Dialect::Sqlite, scope, key, owner)
                    .await
                    .map_err(sql_error)?;
            }
            ClaimOp::ReleaseAll { owner, scope } => {
                sqlx::query("DELETE FROM claims WHERE owner = ?1 AND (?2 IS NULL OR scope = ?2)")
                    .bind(owner)
                    .bind(scope)
                    .execute(&mut **tx)
                    .await
                    .map_err(sql_error)?;
            }
        }
    }
    Ok(())
}
