//! The production backend: PostgreSQL, shareable by several ironledger processes.
//!
//! The `events` table is postgres-es's, extended (see `schema/postgres/0001_events.sql`),
//! so postgres-es's tools can still read it. This module reads and writes
//! events (decoding them with [`super::json`], see [`crate::store::bridge`]
//! for why not through postgres-es), claims and read models, and owns the one
//! thing postgres-es lacks: a **gap-free global feed**.
//!
//! Why a position is not handed out at insert time, and why the sequencer,
//! which numbers events after their transaction has finished, never lets a
//! reader of the feed skip one, is argued in full in [`sequencer`].
//!
//! One module a job:
//!
//! | module | what |
//! |---|---|
//! | [`sequencer`] | the gap-free feed: numbering committed events, and why that is right |
//! | `append` | appends: plain, folding the inline read models, imports |
//! | `inline` | the lock between folding appends and what makes a model inline or not |
//! | `claims` | claims in the append transaction, and the advisory locks that order them |
//! | `models` | read models: the projector's commit of a batch, swaps |
//! | `decode` | `json`/`jsonb` columns read back through the one decoder of stored data; feed events |
//! | `errors` | which driver errors mean "try again" |
//! | `migrations` | the schema, applied once per version |
//! | `log_store` | the [`LogStore`](super::LogStore) impl: one-statement answers in place, the rest handed to the modules above |
//!
//! What this backend does exactly as SQLite does (decoding event rows,
//! pages of the typed tables, the claim and checkpoint statements spelled
//! alike) is written once, for both, in `store::shared`.

mod append;
mod claims;
mod decode;
mod errors;
mod inline;
mod log_store;
mod migrations;
mod models;
pub mod sequencer;

pub use append::INSERT_EVENT_SQL;
pub use claims::claim_lock_key;
pub use migrations::migrate;
pub use sequencer::SEQUENCE_SQL;

use super::StoreError;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::Connection;
use std::str::FromStr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

const MAX_CONNECTIONS: u32 = 16;
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

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
}
