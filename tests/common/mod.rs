//! Fixtures for the store tests: one fresh, empty store per test, on each backend.
//!
//! PostgreSQL tests run against a real server (`IRONLEDGER_TEST_DATABASE_URL`,
//! default `postgres://postgres@127.0.0.1:5432/ironledger_test`). Each test gets
//! its own schema (`t_<uuid>`) through the connections' `search_path`, so tests
//! run in parallel without seeing each other's events; the schema is dropped when
//! the test ends (set `IRONLEDGER_TEST_KEEP_SCHEMAS=1` to keep it for a post
//! mortem). If the server is unreachable the test **fails** with a clear message:
//! a PostgreSQL test that silently skips would hide exactly the bugs the
//! PostgreSQL backend exists for.

#![allow(dead_code)]

pub mod api;
pub mod audit;
pub mod bmc;
pub mod cinder;
pub mod client;
pub mod serve;

use cqrs_es::persist::SerializedEvent;
use ironledger::store::bridge::Repo;
use ironledger::store::url::mask_password;
use ironledger::store::{ClaimFn, LogStore, MemoryStore, PostgresStore, SqliteStore};
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tempfile::TempDir;

pub const DEFAULT_TEST_URL: &str = "postgres://postgres@127.0.0.1:5432/ironledger_test";

/// A store under test, and whatever must live as long as it.
pub struct TestStore {
    pub store: Arc<dyn LogStore>,
    /// Set on PostgreSQL: a pool on the test's schema.
    pub pg_pool: Option<PgPool>,
    _dir: Option<TempDir>,
    _schema: Option<SchemaGuard>,
}

impl TestStore {
    /// On PostgreSQL, a second store on the same schema (its own
    /// `PostgresStore`, as another ironledger process has); it must not
    /// outlive `self`, which owns the schema.
    pub async fn second_process(&self) -> TestStore {
        let pool = self.pg_pool.clone().expect("a PostgreSQL test store");
        let store = PostgresStore::from_pool(pool.clone()).await.unwrap();
        TestStore {
            store: Arc::new(store),
            pg_pool: Some(pool),
            _dir: None,
            _schema: None,
        }
    }

    /// A cqrs-es repository over this store, exactly as the engine builds it.
    pub fn repo(&self, claims: ClaimFn) -> Repo {
        Repo::new(self.store.clone(), claims)
    }
}

pub async fn memory() -> TestStore {
    TestStore {
        store: Arc::new(MemoryStore::new()),
        pg_pool: None,
        _dir: None,
        _schema: None,
    }
}

pub async fn sqlite() -> TestStore {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(&dir.path().join("store.db"))
        .await
        .expect("open SQLite store");
    TestStore {
        store: Arc::new(store),
        pg_pool: None,
        _dir: Some(dir),
        _schema: None,
    }
}

pub async fn postgres() -> TestStore {
    let (pool, schema) = postgres_schema(10).await;
    let store = PostgresStore::from_pool(pool.clone())
        .await
        .expect("migrate the test schema");
    TestStore {
        store: Arc::new(store),
        pg_pool: Some(pool),
        _dir: None,
        _schema: Some(schema),
    }
}

pub fn test_url() -> String {
    std::env::var("IRONLEDGER_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_TEST_URL.to_string())
}

fn pg_unusable(url: &str, err: impl std::fmt::Display) -> ! {
    panic!(
        "PostgreSQL is not usable at {} ({err}). The PostgreSQL tests need a server: \
         start one (user postgres, trust auth on 127.0.0.1:5432) or point \
         IRONLEDGER_TEST_DATABASE_URL at one.",
        mask_password(url)
    )
}

/// Creates the test database if it does not exist yet (once per process).
async fn ensure_database(options: &PgConnectOptions, url: &str) {
    static CREATED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    CREATED
        .get_or_init(|| async {
            let name = options.get_database().unwrap_or("postgres").to_string();
            let mut admin = options
                .clone()
                .database("postgres")
                .connect()
                .await
                .unwrap_or_else(|e| pg_unusable(url, e));
            let exists: Option<i32> =
                sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
                    .bind(&name)
                    .fetch_optional(&mut admin)
                    .await
                    .expect("query pg_database");
            if exists.is_none() {
                let sql = format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\""));
                if let Err(err) = sqlx::raw_sql(&sql).execute(&mut admin).await {
                    // Another test binary may have won the race (42P04 duplicate_database,
                    // or 23505 on pg_database's unique index).
                    let code = err.as_database_error().and_then(|d| d.code());
                    if !matches!(code.as_deref(), Some("42P04") | Some("23505")) {
                        panic!("cannot create test database {name}: {err}");
                    }
                }
            }
            let _ = admin.close().await;
        })
        .await;
}

/// A pool on a brand-new, empty schema of the test database (no tables yet),
/// and the guard that drops the schema again.
pub async fn postgres_schema(max_connections: u32) -> (PgPool, SchemaGuard) {
    let url = test_url();
    let options = PgConnectOptions::from_str(&url).unwrap_or_else(|e| pg_unusable(&url, e));
    ensure_database(&options, &url).await;

    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    let mut conn = options
        .clone()
        .connect()
        .await
        .unwrap_or_else(|e| pg_unusable(&url, e));
    sqlx::raw_sql(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut conn)
        .await
        .expect("create test schema");
    let _ = conn.close().await;
    let guard = SchemaGuard(schema.clone());

    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(60))
        // Named after the schema, so that its sessions can be found when
        // the test ends (see `SchemaGuard`).
        .connect_with(
            options
                .options([("search_path", schema.as_str())])
                .application_name(&schema),
        )
        .await
        .unwrap_or_else(|e| pg_unusable(&url, e));
    (pool, guard)
}

/// Drops the test's schema when the test ends, pass or fail.
pub struct SchemaGuard(pub String);

impl Drop for SchemaGuard {
    fn drop(&mut self) {
        if std::env::var_os("IRONLEDGER_TEST_KEEP_SCHEMAS").is_some() {
            eprintln!("keeping test schema {}", self.0);
            return;
        }
        let schema = self.0.clone();
        // Drop runs inside the test's runtime, which cannot block on a future; a
        // short-lived thread with its own runtime can.
        let result = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let url = test_url();
                let mut conn = PgConnectOptions::from_str(&url)?.connect().await?;
                // A test whose runtime ended while a task was inside a
                // transaction (the projector's worker sequencing, say)
                // leaves that session idle in transaction: it would hold
                // every other test's sequencing back (PostgreSQL numbers an
                // event only once every older transaction of the database
                // has ended) and this DROP waiting for its locks. The test
                // is over, so its sessions go first.
                sqlx::query(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                      WHERE application_name = $1 AND pid <> pg_backend_pid()",
                )
                .bind(&schema)
                .execute(&mut conn)
                .await?;
                sqlx::raw_sql(&format!(
                    "SET lock_timeout = '10s'; DROP SCHEMA IF EXISTS {schema} CASCADE"
                ))
                .execute(&mut conn)
                .await?;
                conn.close().await?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            })
        })
        .join();
        if let Ok(Err(err)) = result {
            eprintln!("could not drop test schema {}: {err}", self.0);
        }
    }
}

/// Sequences until the feed's head reaches `expected`.
///
/// On PostgreSQL, `sequence()` only numbers events once every older transaction
/// in the *whole cluster* has finished, so another test (or another engineer's
/// test run) holding a transaction open may delay it. That is by design; tests
/// therefore wait for the head instead of assuming one call is enough.
pub async fn settle(store: &dyn LogStore, expected: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        store.sequence().await.expect("sequence");
        let head = store.head().await.expect("head");
        assert!(
            head <= expected,
            "head {head} beyond the expected {expected}"
        );
        if head == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "feed head stuck at {head}, expected {expected}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until every committed event has a position. On PostgreSQL an open
/// transaction anywhere in the cluster (another test's) holds back numbering;
/// commands no longer wait for it (their read models are written inline), so
/// a test that compares read models with a replay of the feed waits here.
pub async fn numbered(store: &dyn LogStore) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while store.sequence_report().await.expect("sequence").waiting {
        assert!(
            Instant::now() < deadline,
            "committed events kept waiting for positions"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A serialized event with a simple payload and metadata.
pub fn event(aggregate_type: &str, id: &str, sequence: usize, payload: Value) -> SerializedEvent {
    SerializedEvent {
        aggregate_id: id.to_string(),
        sequence,
        aggregate_type: aggregate_type.to_string(),
        event_type: "Happened".to_string(),
        event_version: "1.0".to_string(),
        payload: json!({ "Happened": payload }),
        metadata: json!({ "user": "tester", "request_id": format!("req-{id}-{sequence}") }),
    }
}

/// The commands that enrol node `id` (fake hardware, straight into
/// `available`) with what a deploy needs to be accepted: `cinder` storage,
/// the `iscsi_boot` capability, a PXE port, an IQN connector and boot volume
/// `volume` (a deploy of a node without them is refused at the request).
#[allow(dead_code)] // not every test binary enrols nodes this way
pub fn enroll_bootable(id: uuid::Uuid, volume: &str) -> Vec<ironledger::domain::NodeCommand> {
    use ironledger::domain::node::commands::{EnrollNode, NewConnector, NewPort, NewTarget};
    use ironledger::domain::state::ProvisionState;
    use ironledger::domain::NodeCommand;
    let mut enroll = EnrollNode {
        initial_state: ProvisionState::Available,
        ..EnrollNode::new(id, "fake-hardware")
    };
    enroll
        .interfaces
        .insert("storage".into(), Some("cinder".into()));
    enroll
        .properties
        .insert("capabilities".into(), json!("iscsi_boot:True"));
    let b = id.as_bytes();
    vec![
        NodeCommand::Enroll(enroll),
        NodeCommand::AddPort(NewPort {
            uuid: uuid::Uuid::new_v4(),
            address: format!("52:54:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3]),
            pxe_enabled: true,
            extra: Default::default(),
            ..Default::default()
        }),
        NodeCommand::AddConnector(NewConnector {
            uuid: uuid::Uuid::new_v4(),
            kind: "iqn".into(),
            connector_id: format!("iqn.2024-01.org.example:{id}"),
            extra: Default::default(),
        }),
        NodeCommand::CreateTarget(NewTarget {
            uuid: uuid::Uuid::new_v4(),
            volume_type: "iscsi".into(),
            boot_index: 0,
            volume_id: volume.into(),
            properties: Default::default(),
            extra: Default::default(),
        }),
    ]
}
