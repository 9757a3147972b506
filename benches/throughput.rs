//! Throughput of the event-sourced core, on each store.
//!
//! `cargo bench --bench throughput` prints a Markdown report (the figures in
//! `docs/performance.md` come from it):
//! - commands/s through the engine (load the aggregate, decide, append with
//!   claims, sequence, project, wait for read-your-writes) with 1 and 16
//!   concurrent writers, each on its own nodes;
//! - feed read and projection replay (rebuild) throughput in events/s;
//! - raw PostgreSQL single-row INSERT transactions/s over the same loopback
//!   connection pool, 1 and 16 clients, to show how close the append path comes
//!   to what the database itself can commit.
//!
//! PostgreSQL: `IRONLEDGER_BENCH_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/ironledger_bench`); the database is
//! dropped and re-created for each run. `IRONLEDGER_BENCH_COMMANDS` sets the
//! commands per writer (default 400). To repeat a single case on a noisy
//! machine: `IRONLEDGER_BENCH_STORES` (comma-separated, default
//! `memory,sqlite,postgres`), `IRONLEDGER_BENCH_WRITERS` (default `1,16`), and
//! `IRONLEDGER_BENCH_RAW=0` skips the raw INSERT figures.

use ironledger::domain::node::commands::EnrollNode;
use ironledger::domain::patch::PatchOp;
use ironledger::domain::{NodeCommand, NodeServices};
use ironledger::engine::{Engine, Meta};
use ironledger::store::{open, DatabaseUrl, LogStore};
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Nodes each writer spreads its commands over (keeps streams realistically short).
const NODES_PER_WRITER: usize = 8;

fn pg_url() -> String {
    std::env::var("IRONLEDGER_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/ironledger_bench".into())
}

/// Drops and re-creates the benchmark database.
async fn fresh_pg_database() -> String {
    let url = pg_url();
    let options = PgConnectOptions::from_str(&url).expect("benchmark database URL");
    let name = options
        .get_database()
        .unwrap_or("ironledger_bench")
        .to_string();
    let mut admin = options
        .clone()
        .database("postgres")
        .connect()
        .await
        .expect("connect to PostgreSQL");
    sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .unwrap();
    sqlx::raw_sql(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut admin)
        .await
        .unwrap();
    admin.close().await.unwrap();
    url
}

async fn engine(backend: &str, dir: &std::path::Path) -> Arc<Engine> {
    let url = match backend {
        "memory" => DatabaseUrl::Memory,
        "sqlite" => DatabaseUrl::Sqlite(dir.join(format!("bench-{}.db", Uuid::new_v4()))),
        _ => DatabaseUrl::Postgres(fresh_pg_database().await),
    };
    Arc::new(
        Engine::open(&url, NodeServices::default())
            .await
            .expect("open store"),
    )
}

fn enroll(uuid: Uuid) -> NodeCommand {
    NodeCommand::Enroll(EnrollNode::new(uuid, "fake-hardware"))
}

struct Run {
    commands: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Run {
    fn per_sec(&self) -> f64 {
        self.commands as f64 / self.elapsed.as_secs_f64()
    }
    fn percentile(&mut self, p: f64) -> Duration {
        self.latencies.sort();
        self.latencies[((self.latencies.len() as f64 - 1.0) * p) as usize]
    }
}

/// `writers` tasks, each enrolling its nodes and then patching them round-robin.
async fn commands(engine: Arc<Engine>, writers: usize, per_writer: usize) -> Run {
    let mut nodes = Vec::new();
    for _ in 0..writers {
        let mine: Vec<Uuid> = (0..NODES_PER_WRITER).map(|_| Uuid::new_v4()).collect();
        for n in &mine {
            engine
                .node(*n, enroll(*n), &Meta::actor("bench"))
                .await
                .unwrap();
        }
        nodes.push(mine);
    }
    let start = Instant::now();
    let tasks: Vec<_> = nodes
        .into_iter()
        .map(|mine| {
            let engine = engine.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_writer);
                for i in 0..per_writer {
                    let node = mine[i % mine.len()];
                    let ops = vec![PatchOp {
                        op: "add".into(),
                        path: format!("/extra/k{}", i % 16),
                        value: Some(json!(i)),
                    }];
                    let t = Instant::now();
                    engine
                        .node(node, NodeCommand::Patch { ops }, &Meta::actor("bench"))
                        .await
                        .unwrap();
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    Run {
        commands: writers * per_writer,
        elapsed: start.elapsed(),
        latencies,
    }
}

/// Reads the whole feed in batches; events/s.
async fn feed_read(store: &Arc<dyn LogStore>) -> (u64, f64) {
    let start = Instant::now();
    let (mut after, mut n) = (0, 0u64);
    loop {
        let batch = store.read_feed(after, 1000).await.unwrap();
        let Some(last) = batch.last() else { break };
        after = last.position;
        n += batch.len() as u64;
    }
    (n, n as f64 / start.elapsed().as_secs_f64())
}

/// Replays the log into a scratch copy of every projection; events/s per
/// projection pass.
async fn replay(engine: &Engine) -> f64 {
    let head = engine.store().head().await.unwrap();
    let start = Instant::now();
    let names = engine.projector().names();
    for name in &names {
        engine
            .projector()
            .replay_into(name, &format!("{name}~bench"), head)
            .await
            .unwrap();
        engine
            .store()
            .drop_model(&format!("{name}~bench"))
            .await
            .unwrap();
    }
    (head as f64 * names.len() as f64) / start.elapsed().as_secs_f64()
}

/// Raw single-row INSERT transactions/s against PostgreSQL.
async fn raw_pg_inserts(clients: usize, duration: Duration) -> f64 {
    let url = pg_url();
    let pool = PgPoolOptions::new()
        .max_connections(clients as u32)
        .connect(&url)
        .await
        .unwrap();
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS bench_raw (id bigserial PRIMARY KEY, payload jsonb NOT NULL)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut n = 0u64;
                while start.elapsed() < duration {
                    sqlx::query("INSERT INTO bench_raw (payload) VALUES ($1)")
                        .bind(json!({"NodeUpdated": {"changes": {"extra": {"k": n}}}}))
                        .execute(&pool)
                        .await
                        .unwrap();
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    total as f64 / start.elapsed().as_secs_f64()
}

/// A comma-separated list from the environment, or the default.
fn list(var: &str, default: &str) -> Vec<String> {
    std::env::var(var)
        .unwrap_or_else(|_| default.to_string())
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` (or
    // `--all-targets`) runs this binary too, without it: not a test.
    if !std::env::args().any(|a| a == "--bench") {
        println!("throughput: a benchmark; run it with `cargo bench --bench throughput`");
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let per_writer: usize =
            std::env::var("IRONLEDGER_BENCH_COMMANDS").ok().and_then(|s| s.parse().ok()).unwrap_or(400);
        let dir = tempfile::tempdir().unwrap();
        println!("| store | writers | commands | commands/s | p50 ms | p99 ms | feed read events/s | replay events/s |");
        println!("|---|---|---|---|---|---|---|---|");
        let backends = list("IRONLEDGER_BENCH_STORES", "memory,sqlite,postgres");
        let writer_counts: Vec<usize> = list("IRONLEDGER_BENCH_WRITERS", "1,16")
            .iter()
            .map(|w| w.parse().expect("IRONLEDGER_BENCH_WRITERS: numbers"))
            .collect();
        for backend in &backends {
            for &writers in &writer_counts {
                let engine = engine(backend, dir.path()).await;
                let mut run = commands(engine.clone(), writers, per_writer).await;
                let (p50, p99) = (run.percentile(0.5), run.percentile(0.99));
                let (events, feed) = feed_read(engine.store()).await;
                let replayed = replay(&engine).await;
                println!(
                    "| {backend} | {writers} | {} | {:.0} | {:.2} | {:.2} | {feed:.0} ({events} events) | {replayed:.0} |",
                    run.commands,
                    run.per_sec(),
                    p50.as_secs_f64() * 1e3,
                    p99.as_secs_f64() * 1e3,
                );
            }
        }
        if std::env::var("IRONLEDGER_BENCH_RAW").as_deref() == Ok("0") {
            return;
        }
        println!();
        println!("| raw PostgreSQL single-row INSERT | clients | transactions/s |");
        println!("|---|---|---|");
        for clients in [1, 16] {
            let tps = raw_pg_inserts(clients, Duration::from_secs(3)).await;
            println!("| autocommit INSERT of one jsonb row | {clients} | {tps:.0} |");
        }
        let _ = open; // the store is opened through Engine::open above
    });
}
