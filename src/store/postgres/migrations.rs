//! The PostgreSQL schema (`schema/postgres/`), applied once per version.

use crate::store::{sql_error, StoreError};
use sqlx::postgres::PgPool;
use sqlx::Executor;

/// The schema, applied in order by [`PostgresStore::connect`] / [`PostgresStore::from_pool`].
/// A version is applied once; never edit a released file, add a new one.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "0001_events",
        include_str!("../../../schema/postgres/0001_events.sql"),
    ),
    (
        2,
        "0002_claims",
        include_str!("../../../schema/postgres/0002_claims.sql"),
    ),
    (
        3,
        "0003_read_models",
        include_str!("../../../schema/postgres/0003_read_models.sql"),
    ),
    (
        4,
        "0004_leases",
        include_str!("../../../schema/postgres/0004_leases.sql"),
    ),
    (
        5,
        "0005_projection_failures",
        include_str!("../../../schema/postgres/0005_projection_failures.sql"),
    ),
    (
        6,
        "0006_read_tables",
        include_str!("../../../schema/postgres/0006_read_tables.sql"),
    ),
    (
        7,
        "0007_idempotency_keys",
        include_str!("../../../schema/postgres/0007_idempotency_keys.sql"),
    ),
];

/// First half of the advisory-lock key that serializes migrations ("ILMG"). The
/// second half is a hash of the target schema, so deployments (or tests) in
/// different schemas of one database do not wait for each other.
const MIGRATION_LOCK: i32 = 0x494C_4D47;

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
