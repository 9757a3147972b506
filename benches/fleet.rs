//! Fleet-scale benchmark: what a read or a command costs as the fleet grows,
//! beside what the database itself can do (issue 11, item 5).
//!
//! `cargo bench --bench fleet` prints Markdown tables (the figures in
//! `docs/performance.md` come from it). For each store and fleet size it:
//! 1. builds a fleet without N HTTP calls: eight template nodes are made once
//!    through the real API of a release `serve` (the boot-from-volume guide's
//!    node: `ipxe` boot, `external` storage, `iscsi_boot` capability, ports, an
//!    IQN connector, a target; enrolled, manageable, available, active,
//!    deployed-then-undeployed), `ironledger export`ed, and their streams
//!    copied N/8 times each with fresh UUIDs, names, MACs, owners and resource
//!    classes into a log in `export`'s format, which `ironledger import` loads
//!    (and projects) into a fresh SQLite file or PostgreSQL database;
//! 2. starts the release `ironledger serve` on it and waits for `/health`;
//! 3. measures list pages, a node, a node's history, PATCH and create at
//!    concurrency 1 and 16 over HTTP (reqwest, keep-alive), the peak RSS of
//!    `serve` from `/proc`, then `rebuild` and `verify` (time, and their peak
//!    RSS, also from `/proc`);
//! 4. measures the store's own limits on the same database: single-row
//!    commits/s, the same pages as plain indexed `SELECT … ORDER BY … LIMIT`s
//!    on a table of the same N documents, and a full read of the node model
//!    with and without decoding it (what today's list does per request).
//!
//! Knobs: `IRONLEDGER_BENCH_SIZES` (default `1000,10000`),
//! `IRONLEDGER_BENCH_STORES` (default `sqlite,postgres`),
//! `IRONLEDGER_BENCH_PG_ADMIN_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`;
//! the bench creates and drops its own database `ironledger_fleet_bench`),
//! `IRONLEDGER_BENCH_BUDGET_MS` (time spent per figure, default 2000),
//! `IRONLEDGER_BENCH_KEEP=1` (keep the scratch directory with the SQLite
//! fleets and their configuration, to profile a command on them afterwards).
//! Repetitions adapt to the cost: a figure is sampled until the budget is
//! spent, at least 3 and at most 300 times.

use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, Row};
use std::collections::BTreeMap;
use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ironledger");
const VERSION: &str = "1.78";
const PG_DB: &str = "ironledger_fleet_bench";
const CONFIG: &str = "[DEFAULT]\nenabled_storage_interfaces = cinder,external,noop\n";
/// Markers in the templates, replaced per copy.
const OWNER_MARK: &str = "OWNERMARK";
const RC_MARK: &str = "RCMARK";
const OWNERS: &[&str] = &["tenant-a", "tenant-b", "tenant-c", "tenant-d", "tenant-e"];
const CLASSES: &[&str] = &["baremetal-small", "baremetal-medium", "baremetal-large"];
const TEMPLATES: usize = 8;

fn env_list(var: &str, default: &str) -> Vec<String> {
    std::env::var(var)
        .unwrap_or_else(|_| default.to_string())
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn budget() -> Duration {
    Duration::from_millis(
        std::env::var("IRONLEDGER_BENCH_BUDGET_MS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(2000),
    )
}

/// `IRONLEDGER_BENCH_KEEP=1`: the scratch directory and the SQLite fleets
/// in it stay for profiling.
fn keep_scratch() -> bool {
    std::env::var("IRONLEDGER_BENCH_KEEP").is_ok_and(|v| v == "1")
}

fn pg_admin_url() -> String {
    std::env::var("IRONLEDGER_BENCH_PG_ADMIN_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn pg_url() -> String {
    let base = pg_admin_url();
    let cut = base.rfind('/').unwrap_or(base.len());
    format!("{}/{PG_DB}", &base[..cut])
}

// ---------------------------------------------------------------- processes

/// A CLI run's wall time and peak RSS.
struct Ran {
    elapsed: Duration,
    max_rss_kb: i64,
    stdout: String,
}

/// `VmHWM` of a running process, in kB (0 once it is gone).
fn vm_hwm_kb(pid: u32) -> i64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Waits for the child, sampling its peak RSS from `/proc` every 20 ms.
/// (Not `wait4`'s `ru_maxrss`: Linux carries the parent's peak into a
/// spawned child's, so it would report this bench's own memory.)
fn wait_rss(child: &mut Child) -> (std::process::ExitStatus, i64) {
    let mut peak = 0;
    loop {
        peak = peak.max(vm_hwm_kb(child.id()));
        if let Some(status) = child.try_wait().unwrap() {
            return (status, peak);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn cli(db: &str, data: &Path, args: &[&str]) -> Ran {
    let started = Instant::now();
    let out_path = data.join(format!("cli-{}.out", args[0]));
    let err_path = data.join(format!("cli-{}.err", args[0]));
    let mut child = Command::new(BIN)
        .arg("--database-url")
        .arg(db)
        .arg("--data-dir")
        .arg(data)
        .arg("--config-file")
        .arg(data.join("ironic.conf"))
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("run ironledger");
    let (status, max_rss_kb) = wait_rss(&mut child);
    let elapsed = started.elapsed();
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    if !status.success() {
        panic!(
            "ironledger {args:?} failed ({status}):\n{stdout}\n{}",
            std::fs::read_to_string(&err_path).unwrap_or_default()
        );
    }
    Ran {
        elapsed,
        max_rss_kb,
        stdout,
    }
}

/// A running `ironledger serve`.
struct Serve {
    child: Child,
    base: String,
    started: Duration,
}

impl Serve {
    fn start(db: &str, data: &Path) -> Serve {
        let t = Instant::now();
        let mut child = Command::new(BIN)
            .arg("--database-url")
            .arg(db)
            .arg("--data-dir")
            .arg(data)
            .arg("--config-file")
            .arg(data.join("ironic.conf"))
            .args(["serve", "--port", "0"])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(data.join("serve.err")).unwrap())
            .spawn()
            .expect("start serve");
        let mut line = String::new();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        out.read_line(&mut line).unwrap();
        // Keep the pipe open (and drained) for as long as serve runs.
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        let base = line
            .trim()
            .strip_prefix("ironledger listening on ")
            .unwrap_or_else(|| panic!("serve said {line:?}"))
            .to_string();
        Serve {
            child,
            base,
            started: t.elapsed(),
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `VmHWM` (peak) and `VmRSS` (now), in kB.
    fn rss_kb(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (field("VmHWM:"), field("VmRSS:"))
    }

    /// CPU seconds (user + system) the process has used.
    fn cpu_s(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let f: Vec<&str> = after.split_whitespace().collect();
        let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
        ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
    }

    fn stop(mut self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.child.try_wait().unwrap().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn self_cpu_s() -> f64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(usage.ru_utime) + t(usage.ru_stime)
}

// ---------------------------------------------------------------- HTTP

fn client() -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        "X-OpenStack-Ironic-API-Version",
        reqwest::header::HeaderValue::from_static(VERSION),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .pool_max_idle_per_host(64)
        .timeout(Duration::from_secs(600))
        .build()
        .unwrap()
}

async fn call(
    c: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = c.request(method.clone(), url);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.unwrap();
    let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, v)
}

async fn ok(c: &reqwest::Client, method: reqwest::Method, url: &str, body: Option<Value>) -> Value {
    let (status, v) = call(c, method.clone(), url, body).await;
    assert!((200..300).contains(&status), "{method} {url}: {status} {v}");
    v
}

async fn wait_health(c: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(3600);
    loop {
        let (status, v) = call(c, reqwest::Method::GET, &format!("{base}/health"), None).await;
        if status == 200 && v["status"] == "ok" {
            return;
        }
        assert!(Instant::now() < deadline, "/health never ok: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn wait_state(c: &reqwest::Client, base: &str, uuid: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let v = ok(
            c,
            reqwest::Method::GET,
            &format!("{base}/v1/nodes/{uuid}"),
            None,
        )
        .await;
        let state = v["provision_state"].as_str().unwrap_or_default();
        if state == want {
            return;
        }
        assert!(
            !state.contains("fail") && state != "error" && Instant::now() < deadline,
            "node {uuid} is {state}, waiting for {want}: {}",
            v["last_error"]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn provision(c: &reqwest::Client, base: &str, uuid: &str, verb: &str, then: &str) {
    ok(
        c,
        reqwest::Method::PUT,
        &format!("{base}/v1/nodes/{uuid}/states/provision"),
        Some(json!({ "target": verb })),
    )
    .await;
    wait_state(c, base, uuid, then).await;
}

// ---------------------------------------------------------------- templates

/// One template node's events as text pieces: literals and the values each
/// copy replaces.
struct Template {
    events: Vec<Vec<Piece>>,
}

enum Piece {
    Lit(String),
    Position,
    /// A template UUID: its first 24 characters stay, the last 12 become the copy's number.
    Uuid(String),
    Name,
    /// A template MAC: the copy's own, with this port number.
    Mac(u8),
    Owner,
    Class,
}

fn template_name(k: usize) -> String {
    format!("tplnode{k}x")
}
fn template_mac(k: usize, p: usize) -> String {
    format!("52:54:00:ee:{k:02x}:{p:02x}")
}

/// Makes the templates through the real API and exports them.
async fn make_templates(work: &Path) -> Vec<Template> {
    let data = work.join("templates");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("ironic.conf"), CONFIG).unwrap();
    let db = format!("sqlite:///{}", data.join("templates.db").display());
    let serve = Serve::start(&db, &data);
    let c = client();
    let base = serve.base.clone();
    wait_health(&c, &base).await;
    let post = |path: &str, body: Value| {
        let (c, url) = (c.clone(), format!("{base}{path}"));
        async move { ok(&c, reqwest::Method::POST, &url, Some(body)).await }
    };
    let mut uuids = vec![];
    for k in 0..TEMPLATES {
        let node = post(
            "/v1/nodes",
            json!({
                "name": template_name(k),
                "driver": "fake-hardware",
                "boot_interface": "ipxe",
                "storage_interface": "external",
                "owner": OWNER_MARK,
                "resource_class": RC_MARK,
                "properties": {"capabilities": "iscsi_boot:True", "cpus": 32, "memory_mb": 262144,
                               "local_gb": 0, "cpu_arch": "x86_64"},
                "extra": {"rack": format!("r{k}"), "asset": "bench"},
            }),
        )
        .await;
        let uuid = node["uuid"].as_str().unwrap().to_string();
        let ports = if k == 0 { 1 } else { 2 };
        for p in 0..ports {
            post(
                "/v1/ports",
                json!({"node_uuid": uuid, "address": template_mac(k, p), "pxe_enabled": p == 0}),
            )
            .await;
        }
        if k >= 1 {
            post(
                "/v1/volume/connectors",
                json!({"node_uuid": uuid, "type": "iqn",
                       "connector_id": format!("iqn.2017-08.org.openstack.{uuid}")}),
            )
            .await;
            provision(&c, &base, &uuid, "manage", "manageable").await;
        }
        if k >= 2 {
            let volume = uuid::Uuid::new_v4();
            post(
                "/v1/volume/targets",
                json!({"node_uuid": uuid, "volume_type": "iscsi", "boot_index": 0,
                       "volume_id": volume.to_string(),
                       "properties": {"target_iqn": format!("iqn.2010-10.org.openstack:volume-{volume}"),
                                      "target_portal": "192.168.0.123:3260", "target_lun": 0}}),
            )
            .await;
            provision(&c, &base, &uuid, "provide", "available").await;
        }
        if k >= 3 {
            ok(
                &c,
                reqwest::Method::PATCH,
                &format!("{base}/v1/nodes/{uuid}"),
                Some(json!([
                    {"op": "add", "path": "/instance_uuid", "value": uuid::Uuid::new_v4().to_string()},
                    {"op": "add", "path": "/instance_info/display_name", "value": "bench-instance"},
                ])),
            )
            .await;
            provision(&c, &base, &uuid, "active", "active").await;
            ok(
                &c,
                reqwest::Method::PATCH,
                &format!("{base}/v1/nodes/{uuid}"),
                Some(json!([{"op": "add", "path": "/extra/serial", "value": format!("SN-{k}")}])),
            )
            .await;
        }
        if k == 7 {
            provision(&c, &base, &uuid, "deleted", "available").await;
        }
        uuids.push(uuid);
    }
    serve.stop();
    let file = data.join("templates.jsonl");
    cli(&db, &data, &["export", "-o", file.to_str().unwrap()]);
    let text = std::fs::read_to_string(&file).unwrap();
    let mut by_node: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for line in text.lines() {
        let mut v: Value = serde_json::from_str(line).unwrap();
        match v["kind"].as_str().unwrap() {
            "event" => {
                assert_eq!(
                    v["aggregate_type"], "Node",
                    "templates only make node events"
                );
                v["position"] = json!(999_999_999_999u64);
                by_node
                    .entry(v["aggregate_id"].as_str().unwrap().to_string())
                    .or_default()
                    .push(v);
            }
            "end" => assert_eq!(v["data_keys"], 0, "templates hold no secrets"),
            _ => {}
        }
    }
    uuids
        .iter()
        .enumerate()
        .map(|(k, uuid)| Template {
            events: by_node[uuid]
                .iter()
                .map(|e| pieces(k, &e.to_string()))
                .collect(),
        })
        .collect()
}

fn is_uuid(s: &[u8]) -> bool {
    s.len() == 36
        && s.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(b),
        })
}

/// Splits one template event's JSON into literals and replaced values.
fn pieces(k: usize, text: &str) -> Vec<Piece> {
    let marks: Vec<(String, Piece)> = vec![
        ("999999999999".to_string(), Piece::Position),
        (template_name(k), Piece::Name),
        (template_mac(k, 0), Piece::Mac(0)),
        (template_mac(k, 1), Piece::Mac(1)),
        (OWNER_MARK.to_string(), Piece::Owner),
        (RC_MARK.to_string(), Piece::Class),
    ];
    let bytes = text.as_bytes();
    let mut out = vec![];
    let mut lit = String::new();
    let mut i = 0;
    'scan: while i < bytes.len() {
        if i + 36 <= bytes.len() && is_uuid(&bytes[i..i + 36]) {
            out.push(Piece::Lit(std::mem::take(&mut lit)));
            out.push(Piece::Uuid(text[i..i + 24].to_string()));
            i += 36;
            continue;
        }
        for (m, p) in &marks {
            if text[i..].starts_with(m.as_str()) {
                out.push(Piece::Lit(std::mem::take(&mut lit)));
                out.push(match p {
                    Piece::Position => Piece::Position,
                    Piece::Name => Piece::Name,
                    Piece::Mac(n) => Piece::Mac(*n),
                    Piece::Owner => Piece::Owner,
                    _ => Piece::Class,
                });
                i += m.len();
                continue 'scan;
            }
        }
        let ch = text[i..].chars().next().unwrap();
        lit.push(ch);
        i += ch.len_utf8();
    }
    out.push(Piece::Lit(lit));
    out
}

/// The UUID copy `n` gives a template UUID (prefix: its first 24 characters).
fn copy_uuid(prefix: &str, n: usize) -> String {
    format!("{prefix}{n:012x}")
}

/// A fleet's log and what the measurements need to know about it.
struct Fleet {
    file: PathBuf,
    events: u64,
    /// Node UUIDs in creation order.
    nodes: Vec<String>,
    generated: Duration,
}

fn generate(templates: &[Template], tpl_nodes: &[String], n: usize, file: &Path) -> Fleet {
    let t = Instant::now();
    let mut out = BufWriter::new(std::fs::File::create(file).unwrap());
    let total: usize = (0..n).map(|i| templates[i % TEMPLATES].events.len()).sum();
    writeln!(
        out,
        "{}",
        json!({"kind": "header", "format": "ironledger-log", "version": 1,
               "exported_at": "2026-12-02T00:00:00.000000Z", "source": "sqlite", "head": total})
    )
    .unwrap();
    let mut position = 0u64;
    let mut nodes = Vec::with_capacity(n);
    let mut line = String::new();
    for i in 0..n {
        let k = i % TEMPLATES;
        nodes.push(copy_uuid(&tpl_nodes[k][..24], i));
        for event in &templates[k].events {
            position += 1;
            line.clear();
            for p in event {
                match p {
                    Piece::Lit(s) => line.push_str(s),
                    Piece::Position => line.push_str(&position.to_string()),
                    Piece::Uuid(prefix) => line.push_str(&copy_uuid(prefix, i)),
                    Piece::Name => line.push_str(&format!("fleet-{i:07}")),
                    Piece::Mac(port) => line.push_str(&format!(
                        "52:{port:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                        (i >> 24) & 255,
                        (i >> 16) & 255,
                        (i >> 8) & 255,
                        i & 255
                    )),
                    Piece::Owner => line.push_str(OWNERS[i % OWNERS.len()]),
                    Piece::Class => line.push_str(CLASSES[i % CLASSES.len()]),
                }
            }
            out.write_all(line.as_bytes()).unwrap();
            out.write_all(b"\n").unwrap();
        }
    }
    writeln!(
        out,
        "{}",
        json!({"kind": "end", "events": position, "data_keys": 0})
    )
    .unwrap();
    out.flush().unwrap();
    Fleet {
        file: file.to_path_buf(),
        events: position,
        nodes,
        generated: t.elapsed(),
    }
}

// ---------------------------------------------------------------- sampling

#[derive(Clone)]
struct Stats {
    samples: Vec<Duration>,
}

impl Stats {
    fn new(mut samples: Vec<Duration>) -> Stats {
        samples.sort();
        Stats { samples }
    }
    fn pct(&self, p: f64) -> Duration {
        self.samples[((self.samples.len() as f64 - 1.0) * p).round() as usize]
    }
    /// `p50 / p99 (n)` in ms.
    fn cell(&self) -> String {
        format!(
            "{} / {} ({})",
            ms(self.pct(0.5)),
            ms(self.pct(0.99)),
            self.samples.len()
        )
    }
    fn p50(&self) -> String {
        ms(self.pct(0.5))
    }
}

fn ms(d: Duration) -> String {
    let v = d.as_secs_f64() * 1e3;
    if v >= 100.0 {
        format!("{v:.0} ms")
    } else if v >= 10.0 {
        format!("{v:.1} ms")
    } else {
        format!("{v:.2} ms")
    }
}

/// Samples `f` (one warm-up call, then until the budget is spent, 3..=300 times).
async fn sample<F, Fut>(mut f: F) -> Stats
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let t = Instant::now();
    f(0).await;
    let first = t.elapsed();
    let runs = ((budget().as_secs_f64() / first.as_secs_f64().max(1e-6)) as usize).clamp(3, 300);
    let mut samples = Vec::with_capacity(runs);
    for i in 1..=runs {
        let t = Instant::now();
        f(i).await;
        samples.push(t.elapsed());
    }
    Stats::new(samples)
}

/// `writers` tasks issuing `op(writer, i)` until the budget is spent (at
/// least 5 each); latencies and commands/s.
async fn load<F, Fut>(writers: usize, op: F) -> (Stats, f64)
where
    F: Fn(usize, usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let start = Instant::now();
    let budget = budget();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let op = op.clone();
            tokio::spawn(async move {
                let mut lat = vec![];
                let mut i = 0;
                while start.elapsed() < budget || i < 5 {
                    let t = Instant::now();
                    op(w, i).await;
                    lat.push(t.elapsed());
                    i += 1;
                }
                lat
            })
        })
        .collect();
    let mut all = vec![];
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let rate = all.len() as f64 / start.elapsed().as_secs_f64();
    (Stats::new(all), rate)
}

// ---------------------------------------------------------------- stores

enum Store {
    Sqlite(PathBuf),
    Postgres,
}

impl Store {
    fn url(&self) -> String {
        match self {
            Store::Sqlite(p) => format!("sqlite:///{}", p.display()),
            Store::Postgres => pg_url(),
        }
    }
}

async fn fresh_pg() {
    let mut admin = PgConnectOptions::from_str(&pg_admin_url())
        .unwrap()
        .connect()
        .await
        .expect("connect to PostgreSQL");
    sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS \"{PG_DB}\" WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .unwrap();
    sqlx::raw_sql(&format!("CREATE DATABASE \"{PG_DB}\""))
        .execute(&mut admin)
        .await
        .unwrap();
    admin.close().await.unwrap();
}

async fn drop_pg() {
    let mut admin = PgConnectOptions::from_str(&pg_admin_url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS \"{PG_DB}\" WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .unwrap();
}

/// A plain connection pool on the benchmark's database, for the raw figures.
enum Raw {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl Raw {
    async fn open(store: &Store, connections: u32) -> Raw {
        match store {
            Store::Sqlite(path) => Raw::Sqlite(
                sqlx::sqlite::SqlitePoolOptions::new()
                    .max_connections(connections)
                    .connect_with(
                        SqliteConnectOptions::new()
                            .filename(path)
                            // The settings the embedded store uses (src/store/sqlite.rs).
                            .journal_mode(SqliteJournalMode::Wal)
                            .synchronous(SqliteSynchronous::Full)
                            .busy_timeout(Duration::from_secs(10)),
                    )
                    .await
                    .unwrap(),
            ),
            Store::Postgres => Raw::Postgres(
                PgPoolOptions::new()
                    .max_connections(connections)
                    .connect(&pg_url())
                    .await
                    .unwrap(),
            ),
        }
    }

    async fn exec(&self, sql: &str) {
        match self {
            Raw::Sqlite(p) => {
                sqlx::raw_sql(sql).execute(p).await.unwrap();
            }
            Raw::Postgres(p) => {
                sqlx::raw_sql(sql).execute(p).await.unwrap();
            }
        }
    }

    /// Runs a query with text binds; returns the first column of every row as text.
    async fn texts(&self, sql: &str, binds: &[&str]) -> Vec<String> {
        match self {
            Raw::Sqlite(p) => {
                let mut q = sqlx::query(sql);
                for b in binds {
                    q = q.bind(*b);
                }
                q.fetch_all(p)
                    .await
                    .unwrap()
                    .iter()
                    .map(|r| r.get::<String, _>(0))
                    .collect()
            }
            Raw::Postgres(p) => {
                let mut q = sqlx::query(sql);
                for b in binds {
                    q = q.bind(*b);
                }
                q.fetch_all(p)
                    .await
                    .unwrap()
                    .iter()
                    .map(|r| r.get::<String, _>(0))
                    .collect()
            }
        }
    }

    /// Single-row autocommit INSERTs/s with `clients` writers.
    async fn commits(&self, clients: usize) -> f64 {
        self.exec(match self {
            Raw::Sqlite(_) => {
                "CREATE TABLE IF NOT EXISTS bench_raw_commits (id INTEGER PRIMARY KEY, payload TEXT NOT NULL)"
            }
            Raw::Postgres(_) => {
                "CREATE TABLE IF NOT EXISTS bench_raw_commits (id bigserial PRIMARY KEY, payload jsonb NOT NULL)"
            }
        })
        .await;
        let start = Instant::now();
        let d = Duration::from_secs(3);
        let tasks: Vec<_> = (0..clients)
            .map(|_| {
                let raw = match self {
                    Raw::Sqlite(p) => Raw::Sqlite(p.clone()),
                    Raw::Postgres(p) => Raw::Postgres(p.clone()),
                };
                tokio::spawn(async move {
                    let mut n = 0u64;
                    let payload = r#"{"NodeUpdated":{"changes":{"extra":{"k":1}}}}"#;
                    while start.elapsed() < d {
                        match &raw {
                            Raw::Sqlite(p) => {
                                sqlx::query("INSERT INTO bench_raw_commits (payload) VALUES (?)")
                                    .bind(payload)
                                    .execute(p)
                                    .await
                                    .unwrap();
                            }
                            Raw::Postgres(p) => {
                                sqlx::query(
                                    "INSERT INTO bench_raw_commits (payload) VALUES ($1::jsonb)",
                                )
                                .bind(payload)
                                .execute(p)
                                .await
                                .unwrap();
                            }
                        }
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

    fn placeholder(&self, n: usize) -> String {
        match self {
            Raw::Sqlite(_) => "?".to_string(),
            Raw::Postgres(_) => format!("${n}"),
        }
    }

    /// A plain indexed table of the node documents (copied from the read
    /// model), the shape a typed read model would have.
    async fn make_node_table(&self) {
        let (ty, extract) = match self {
            Raw::Sqlite(_) => (
                "TEXT",
                "CAST(json_extract(body, '$.created_position') AS INTEGER), \
                 COALESCE(json_extract(body, '$.state.provision_state'), ''), body",
            ),
            Raw::Postgres(_) => (
                "jsonb",
                "(body->>'created_position')::bigint, COALESCE(body->'state'->>'provision_state', ''), body",
            ),
        };
        self.exec("DROP TABLE IF EXISTS bench_raw_nodes").await;
        self.exec(&format!(
            "CREATE TABLE bench_raw_nodes (id TEXT PRIMARY KEY, created_position BIGINT NOT NULL, \
             provision_state TEXT NOT NULL, body {ty} NOT NULL); \
             INSERT INTO bench_raw_nodes SELECT id, {extract} FROM node_rows WHERE model = 'nodes'; \
             CREATE INDEX bench_raw_nodes_order ON bench_raw_nodes (created_position); \
             CREATE INDEX bench_raw_nodes_state ON bench_raw_nodes (provision_state, created_position); \
             ANALYZE bench_raw_nodes;"
        ))
        .await;
    }

    /// What a rebuild writes, done in plain SQL: every row of the five read
    /// models copied under a scratch model name with `INSERT … SELECT` (no
    /// round trip per row, no JSON built), then the swap (the live rows
    /// deleted, the copies renamed), one transaction per table. The lower
    /// bound of `ironledger rebuild` on this database, whatever the code.
    async fn copy_read_models(&self) -> Duration {
        const MODELS: &[(&str, &str)] = &[
            ("node_rows", "nodes"),
            ("port_rows", "ports"),
            ("connector_rows", "connectors"),
            ("target_rows", "targets"),
            ("history_rows", "node_history"),
        ];
        let mut spent = Duration::ZERO;
        for (table, model) in MODELS {
            let columns_sql = match self {
                Raw::Sqlite(_) => {
                    format!("SELECT name FROM pragma_table_info('{table}') ORDER BY cid")
                }
                Raw::Postgres(_) => format!(
                    "SELECT CAST(column_name AS TEXT) FROM information_schema.columns \
                      WHERE table_name = '{table}' ORDER BY ordinal_position"
                ),
            };
            let columns = self.texts(&columns_sql, &[]).await;
            let rest: Vec<&str> = columns
                .iter()
                .map(String::as_str)
                .filter(|c| *c != "model")
                .collect();
            let (begin, commit) = match self {
                Raw::Sqlite(_) => ("BEGIN IMMEDIATE", "COMMIT"),
                Raw::Postgres(_) => ("BEGIN", "COMMIT"),
            };
            let sql = format!(
                "{begin}; \
                 INSERT INTO {table} (model, {cols}) SELECT 'bench~copy', {cols} FROM {table} WHERE model = '{model}'; \
                 DELETE FROM {table} WHERE model = '{model}'; \
                 UPDATE {table} SET model = '{model}' WHERE model = 'bench~copy'; \
                 {commit};",
                cols = rest.join(", ")
            );
            let started = Instant::now();
            self.exec(&sql).await;
            spent += started.elapsed();
        }
        spent
    }

    fn body(&self) -> &'static str {
        match self {
            Raw::Sqlite(_) => "body",
            Raw::Postgres(_) => "body::text",
        }
    }
}

// ---------------------------------------------------------------- one run

/// One figure: its name, the measured value, and the raw limit beside it.
struct Figure {
    name: String,
    value: String,
    raw: String,
}

struct RunResult {
    store: String,
    nodes: usize,
    events: u64,
    figures: Vec<Figure>,
    notes: Vec<String>,
}

fn fig(name: &str, value: String, raw: impl Into<String>) -> Figure {
    Figure {
        name: name.into(),
        value,
        raw: raw.into(),
    }
}

fn rate(n: u64, d: Duration) -> String {
    format!(
        "{:.0}/s ({:.1} s)",
        n as f64 / d.as_secs_f64(),
        d.as_secs_f64()
    )
}

fn mb(kb: impl Into<i64>) -> String {
    format!("{} MB", kb.into() / 1024)
}

async fn run(
    store_name: &str,
    n: usize,
    templates: &[Template],
    tpl_nodes: &[String],
    work: &Path,
    commit_rates: &mut BTreeMap<String, String>,
) -> RunResult {
    let dir = work.join(format!("{store_name}-{n}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("ironic.conf"), CONFIG).unwrap();
    let store = match store_name {
        "sqlite" => Store::Sqlite(dir.join("fleet.db")),
        "postgres" => {
            fresh_pg().await;
            Store::Postgres
        }
        other => panic!("IRONLEDGER_BENCH_STORES: unknown store {other}"),
    };
    let db = store.url();
    let fleet = generate(templates, tpl_nodes, n, &dir.join("fleet.jsonl"));
    let file_mb = std::fs::metadata(&fleet.file).unwrap().len() / 1_000_000;
    let mut figures = vec![];
    let mut notes = vec![format!(
        "log generated in {:.1} s ({} events, {file_mb} MB)",
        fleet.generated.as_secs_f64(),
        fleet.events
    )];
    eprintln!("[{store_name} {n}] importing {} events", fleet.events);
    let import = cli(&db, &dir, &["import", fleet.file.to_str().unwrap()]);
    notes.push(format!(
        "import (with projection) {:.1} s, peak RSS {}: {}",
        import.elapsed.as_secs_f64(),
        mb(import.max_rss_kb),
        import.stdout.trim().replace('\n', "; ")
    ));
    std::fs::remove_file(&fleet.file).ok();

    let serve = Serve::start(&db, &dir);
    let c = client();
    let base = serve.base.clone();
    wait_health(&c, &base).await;
    let (hwm0, _) = serve.rss_kb();
    notes.push(format!(
        "serve listening after {:.1} s, RSS at /health ok {}",
        serve.started.as_secs_f64(),
        mb(hwm0 as i64)
    ));
    eprintln!("[{store_name} {n}] serving on {base}");
    // What serve costs with no request at all (the process manager's sweep,
    // the projector's polling).
    let idle = serve.cpu_s();
    tokio::time::sleep(Duration::from_secs(10)).await;
    notes.push(format!(
        "idle serve (no requests, 10 s): {:.0} % of one core",
        (serve.cpu_s() - idle) * 10.0
    ));

    // Sanity: the filters select something, the fleet is all there.
    let active = ok(
        &c,
        reqwest::Method::GET,
        &format!("{base}/v1/nodes?provision_state=active&limit=50"),
        None,
    )
    .await;
    assert_eq!(active["nodes"].as_array().unwrap().len(), 50.min(n / 2));
    let last = &fleet.nodes[n - 1];
    ok(
        &c,
        reqwest::Method::GET,
        &format!("{base}/v1/nodes/{last}"),
        None,
    )
    .await;

    let (cpu_serve0, cpu_self0) = (serve.cpu_s(), self_cpu_s());
    let t_reads = Instant::now();
    let get = |path: String| {
        let (c, url) = (c.clone(), format!("{base}{path}"));
        move |_| {
            let (c, url) = (c.clone(), url.clone());
            async move {
                let r = c.get(&url).send().await.unwrap();
                assert_eq!(r.status(), 200, "{url}");
                r.bytes().await.unwrap();
            }
        }
    };
    let deep = &fleet.nodes[n.saturating_sub(1001)];
    // A node of an active template, in the middle of the fleet.
    let one = &fleet.nodes[(n / 2) / TEMPLATES * TEMPLATES + 3];
    let reads = [
        (
            "GET /v1/nodes?limit=1",
            "/v1/nodes?limit=1".to_string(),
            "limit 1",
        ),
        (
            "GET /v1/nodes?limit=1000",
            "/v1/nodes?limit=1000".to_string(),
            "limit 1000",
        ),
        (
            "GET /v1/nodes?detail=true&limit=1000",
            "/v1/nodes?detail=true&limit=1000".to_string(),
            "limit 1000",
        ),
        (
            "GET /v1/nodes?provision_state=active&limit=50",
            "/v1/nodes?provision_state=active&limit=50".to_string(),
            "filtered 50",
        ),
        (
            "GET /v1/nodes?limit=1000&marker=(node N-1001)",
            format!("/v1/nodes?limit=1000&marker={deep}"),
            "deep 1000",
        ),
        ("GET /v1/nodes/{uuid}", format!("/v1/nodes/{one}"), "one"),
        (
            "GET /v1/nodes/{uuid}/history",
            format!("/v1/nodes/{one}/history"),
            "history",
        ),
        // ironledger's own (issue 13), beside the query each is bound by.
        ("GET /metrics", "/metrics".to_string(), "count by state"),
        (
            "GET /feed?limit=100",
            "/feed?limit=100".to_string(),
            "feed 100",
        ),
        ("GET /feed?node={uuid}", format!("/feed?node={one}"), ""),
        ("GET /ui/ (100 nodes)", "/ui/".to_string(), ""),
        (
            "GET /ui/nodes/{uuid}",
            format!("/ui/nodes/{one}"),
            "history",
        ),
    ];
    let mut read_stats = vec![];
    let mut rss_steps = vec![];
    for (name, path, raw_key) in &reads {
        eprintln!("[{store_name} {n}] {name}");
        let s = sample(get(path.clone())).await;
        read_stats.push((name.to_string(), s, raw_key.to_string()));
        // Which request grows the process (glibc keeps what it took).
        let (peak, now) = serve.rss_kb();
        rss_steps.push(format!(
            "{name}: {} (now {})",
            mb(peak as i64),
            mb(now as i64)
        ));
    }
    notes.push(format!(
        "serve peak RSS after each read: {}",
        rss_steps.join("; ")
    ));
    let read_time = t_reads.elapsed().as_secs_f64();
    let (cpu_serve1, cpu_self1) = (serve.cpu_s(), self_cpu_s());
    notes.push(format!(
        "during the reads ({read_time:.0} s): serve used {:.1} CPU s, the load generator (this bench) {:.1} CPU s",
        cpu_serve1 - cpu_serve0,
        cpu_self1 - cpu_self0
    ));
    let (hwm_reads, rss_reads) = serve.rss_kb();

    // Writes: PATCH of existing nodes (each writer its own), and creates.
    let mut write_stats = vec![];
    for writers in [1usize, 16] {
        eprintln!("[{store_name} {n}] PATCH x{writers}");
        let (c2, base2, nodes) = (c.clone(), base.clone(), fleet.nodes.clone());
        let (s, r) = load(writers, move |w, i| {
            let (c, url) = (
                c2.clone(),
                format!("{base2}/v1/nodes/{}", nodes[(w * 7919 + (i % 8) * 104_729) % nodes.len()]),
            );
            async move {
                let r = c
                    .patch(&url)
                    .json(&json!([{"op": "add", "path": format!("/extra/bench{}", i % 4), "value": i}]))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200, "PATCH {url}");
                r.bytes().await.unwrap();
            }
        })
        .await;
        write_stats.push((
            format!("PATCH /v1/nodes/{{uuid}}, {writers} writer(s)"),
            s,
            r,
            writers,
        ));
    }
    for writers in [1usize, 16] {
        eprintln!("[{store_name} {n}] POST x{writers}");
        let (c2, base2) = (c.clone(), base.clone());
        let (s, r) = load(writers, move |w, i| {
            let (c, url) = (c2.clone(), format!("{base2}/v1/nodes"));
            async move {
                let r = c
                    .post(&url)
                    .json(
                        &json!({"driver": "fake-hardware", "name": format!("new-{writers}-{w}-{i}"),
                                  "owner": "tenant-new", "resource_class": "baremetal-small"}),
                    )
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 201, "POST {url}");
                r.bytes().await.unwrap();
            }
        })
        .await;
        write_stats.push((
            format!("POST /v1/nodes, {writers} writer(s)"),
            s,
            r,
            writers,
        ));
    }
    let (hwm_end, _) = serve.rss_kb();
    serve.stop();

    // rebuild and verify (serve stopped: nothing else competes).
    eprintln!("[{store_name} {n}] rebuild");
    let raw_head = Raw::open(&store, 1).await;
    let head: u64 = raw_head
        .texts("SELECT CAST(MAX(position) AS TEXT) FROM events", &[])
        .await[0]
        .parse()
        .unwrap();
    drop(raw_head);
    let rebuild = cli(&db, &dir, &["rebuild"]);
    eprintln!("[{store_name} {n}] verify");
    let verify = cli(&db, &dir, &["verify"]);

    // The store's own limits, on the same database.
    eprintln!("[{store_name} {n}] raw limits");
    let raw = Raw::open(&store, 16).await;
    if !commit_rates.contains_key(store_name) {
        let one = raw.commits(1).await;
        let cell = if matches!(store, Store::Postgres) {
            format!(
                "{one:.0}/s (1 client), {:.0}/s (16 clients)",
                raw.commits(16).await
            )
        } else {
            format!("{one:.0}/s (one writer: SQLite serializes them)")
        };
        commit_rates.insert(store_name.to_string(), cell);
    }
    let copied = raw.copy_read_models().await;
    raw.make_node_table().await;
    let body = raw.body();
    let p1 = raw.placeholder(1);
    let deep_pos = raw
        .texts(
            &format!("SELECT CAST(created_position AS TEXT) FROM bench_raw_nodes WHERE id = {p1}"),
            &[deep.as_str()],
        )
        .await[0]
        .clone();
    let raw_queries: Vec<(&str, String, Vec<String>)> = vec![
        ("limit 1", format!("SELECT {body} FROM bench_raw_nodes ORDER BY created_position LIMIT 1"), vec![]),
        ("limit 1000", format!("SELECT {body} FROM bench_raw_nodes ORDER BY created_position LIMIT 1000"), vec![]),
        ("filtered 50", format!("SELECT {body} FROM bench_raw_nodes WHERE provision_state = {p1} ORDER BY created_position LIMIT 50"), vec!["active".into()]),
        ("deep 1000", match &raw {
            Raw::Sqlite(_) => format!("SELECT {body} FROM bench_raw_nodes WHERE created_position > CAST({p1} AS INTEGER) ORDER BY created_position LIMIT 1000"),
            Raw::Postgres(_) => format!("SELECT {body} FROM bench_raw_nodes WHERE created_position > CAST({p1} AS BIGINT) ORDER BY created_position LIMIT 1000"),
        }, vec![deep_pos]),
        ("one", format!("SELECT {body} FROM bench_raw_nodes WHERE id = {p1}"), vec![one.clone()]),
        // A node's history by the read model's key range (`<node>/…`, '0' follows '/').
        ("history", match &raw {
            Raw::Sqlite(_) => format!("SELECT {body} FROM history_rows WHERE model = 'node_history' AND id > ? || '/' AND id < ? || '0' ORDER BY id"),
            Raw::Postgres(_) => format!("SELECT {body} FROM history_rows WHERE model = 'node_history' AND id > $1 || '/' AND id < $2 || '0' ORDER BY id"),
        }, vec![one.clone(), one.clone()]),
        // What /metrics adds to its scrape: the nodes by provision state.
        ("count by state", "SELECT CAST(COUNT(*) AS TEXT) FROM node_rows WHERE model = 'nodes' GROUP BY provision_state".to_string(), vec![]),
        // A page of the feed: the first 100 events' payloads.
        ("feed 100", "SELECT CAST(payload AS TEXT) FROM events WHERE position > 0 ORDER BY position LIMIT 100".to_string(), vec![]),
        ("scan nodes", format!("SELECT {body} FROM node_rows WHERE model = 'nodes' ORDER BY id"), vec![]),
        ("scan history", format!("SELECT {body} FROM history_rows WHERE model = 'node_history' ORDER BY id"), vec![]),
    ];
    let mut raw_stats: BTreeMap<String, (Stats, Stats)> = BTreeMap::new();
    let mut typed_scan: Option<Stats> = None;
    for (key, sql, binds) in &raw_queries {
        let binds: Vec<&str> = binds.iter().map(|s| s.as_str()).collect();
        let fetch = sample(|_| {
            let (raw, sql, binds) = (&raw, sql.clone(), binds.clone());
            async move {
                let rows = raw.texts(&sql, &binds).await;
                assert!(!rows.is_empty(), "{sql}");
            }
        })
        .await;
        // The same, each document decoded as the API would (serde_json::Value).
        let decode = sample(|_| {
            let (raw, sql, binds) = (&raw, sql.clone(), binds.clone());
            async move {
                let rows = raw.texts(&sql, &binds).await;
                for r in rows {
                    // The store's own decoder (src/store/json.rs), as doc_list uses.
                    let v: Value = ironledger::store::json::decode(&r).unwrap();
                    std::hint::black_box(v);
                }
            }
        })
        .await;
        if *key == "scan nodes" {
            // And into the domain's Node, as every list does (`NodeDoc::from_doc`).
            let typed = sample(|_| {
                let (raw, sql) = (&raw, sql.clone());
                async move {
                    for r in raw.texts(&sql, &[]).await {
                        let v = ironledger::store::json::decode(&r).unwrap();
                        let node: ironledger::domain::Node =
                            serde_json::from_value(v["state"].clone()).unwrap();
                        std::hint::black_box((v, node));
                    }
                }
            })
            .await;
            typed_scan = Some(typed);
        }
        raw_stats.insert(key.to_string(), (fetch, decode));
    }
    let history_rows = raw
        .texts(
            "SELECT CAST(COUNT(*) AS TEXT) FROM history_rows WHERE model = 'node_history'",
            &[],
        )
        .await[0]
        .clone();
    let node_rows = raw
        .texts(
            "SELECT CAST(COUNT(*) AS TEXT) FROM node_rows WHERE model = 'nodes'",
            &[],
        )
        .await[0]
        .clone();
    let doc_bytes = raw
        .texts(
            &format!(
                "SELECT CAST(SUM(LENGTH({body})) AS TEXT) FROM node_rows WHERE model = 'nodes'"
            ),
            &[],
        )
        .await[0]
        .clone();
    raw.exec("DROP TABLE IF EXISTS bench_raw_nodes; DROP TABLE IF EXISTS bench_raw_commits")
        .await;
    match raw {
        Raw::Sqlite(p) => p.close().await,
        Raw::Postgres(p) => p.close().await,
    }

    let raw_cell = |key: &str| match raw_stats.get(key) {
        Some((f, d)) => format!("{} (+ decode {})", f.p50(), d.p50()),
        None => "—".to_string(),
    };
    for (name, s, key) in &read_stats {
        figures.push(fig(name, s.cell(), raw_cell(key)));
    }
    figures.push(fig(
        "full read of the nodes model (what a list read before the typed tables)",
        "".into(),
        format!(
            "{node_rows} rows (the fleet and the nodes the POSTs made), {} MB: {}, + into Node {}",
            doc_bytes.parse::<u64>().unwrap_or(0) / 1_000_000,
            raw_cell("scan nodes"),
            typed_scan.as_ref().map(|s| s.p50()).unwrap_or_default()
        ),
    ));
    figures.push(fig(
        "full read of node_history (what a history read before its index)",
        "".into(),
        format!("{history_rows} rows: {}", raw_cell("scan history")),
    ));
    for (name, s, r, writers) in &write_stats {
        figures.push(fig(
            name,
            format!("{} — {r:.0}/s", s.cell()),
            if *writers == 1 {
                commit_rates[store_name].clone()
            } else {
                "".into()
            },
        ));
    }
    figures.push(fig(
        "serve RSS: after /health ok / after the reads / peak at end",
        format!(
            "{} / {} (peak {}) / {}",
            mb(hwm0 as i64),
            mb(rss_reads as i64),
            mb(hwm_reads as i64),
            mb(hwm_end as i64)
        ),
        "",
    ));
    figures.push(fig(
        "ironledger rebuild (all 5 models), log events/s",
        format!(
            "{} — peak RSS {}",
            rate(head, rebuild.elapsed),
            mb(rebuild.max_rss_kb)
        ),
        format!(
            "{}: the rows it writes, copied and swapped in plain SQL",
            rate(head, copied)
        ),
    ));
    figures.push(fig(
        "ironledger verify (all 5 models), log events/s",
        format!(
            "{} — peak RSS {}",
            rate(head, verify.elapsed),
            mb(verify.max_rss_kb)
        ),
        "",
    ));
    for (what, ran) in [("rebuild", &rebuild), ("verify", &verify)] {
        let said: Vec<&str> = ran
            .stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        notes.push(format!("{what} said: {}", said.join("; ")));
    }
    if matches!(store, Store::Postgres) {
        drop_pg().await;
    } else if !keep_scratch() {
        std::fs::remove_dir_all(&dir).ok();
    }
    RunResult {
        store: store_name.into(),
        nodes: n,
        events: fleet.events,
        figures,
        notes,
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` (or
    // `--all-targets`) runs this binary too, without it: not a test.
    if !std::env::args().any(|a| a == "--bench") {
        println!("fleet: a benchmark; run it with `cargo bench --bench fleet`");
        return;
    }
    let sizes: Vec<usize> = env_list("IRONLEDGER_BENCH_SIZES", "1000,10000")
        .iter()
        .map(|s| s.parse().expect("IRONLEDGER_BENCH_SIZES: numbers"))
        .collect();
    assert!(
        sizes.iter().all(|n| *n >= TEMPLATES * 2),
        "at least 16 nodes"
    );
    let stores = env_list("IRONLEDGER_BENCH_STORES", "sqlite,postgres");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let work = tempfile::Builder::new()
        .prefix("ironledger-fleet-")
        .tempdir_in(std::env::var("IRONLEDGER_BENCH_DIR").unwrap_or_else(|_| "/var/tmp".into()))
        .unwrap();
    let keep = keep_scratch();
    if keep {
        eprintln!("keeping the scratch directory {}", work.path().display());
    }
    rt.block_on(async {
        let (templates, tpl_nodes) = {
            let t = make_templates(work.path()).await;
            // The node UUIDs of the templates (the aggregate of their first event).
            let text = std::fs::read_to_string(work.path().join("templates/templates.jsonl")).unwrap();
            let mut nodes: Vec<String> = vec![];
            for line in text.lines() {
                let v: Value = serde_json::from_str(line).unwrap();
                if v["kind"] == "event" && v["event_type"] == "NodeEnrolled" {
                    nodes.push(v["aggregate_id"].as_str().unwrap().to_string());
                }
            }
            (t, nodes)
        };
        assert_eq!(tpl_nodes.len(), TEMPLATES);
        let per_node: Vec<usize> = templates.iter().map(|t| t.events.len()).collect();
        let mut results = vec![];
        let mut commit_rates = BTreeMap::new();
        for store in &stores {
            for &n in &sizes {
                let t = Instant::now();
                let r = run(store, n, &templates, &tpl_nodes, work.path(), &mut commit_rates).await;
                eprintln!("[{store} {n}] done in {:.0} s", t.elapsed().as_secs_f64());
                results.push((r, t.elapsed()));
            }
        }
        println!("Templates: events per node {per_node:?} (enrolled, manageable, available, 4 × active, deployed-then-undeployed).\n");
        for store in &stores {
            let runs: Vec<_> = results.iter().filter(|(r, _)| &r.store == store).collect();
            if runs.is_empty() {
                continue;
            }
            println!("### {store}\n");
            print!("| figure |");
            for (r, _) in &runs {
                print!(" {} nodes ({} events) | raw limit |", r.nodes, r.events);
            }
            println!();
            print!("|---|");
            for _ in &runs {
                print!("---|---|");
            }
            println!();
            for (i, f) in runs[0].0.figures.iter().enumerate() {
                print!("| {} |", f.name);
                for (r, _) in &runs {
                    let g = &r.figures[i];
                    print!(" {} | {} |", g.value, g.raw);
                }
                println!();
            }
            println!();
            for (r, took) in &runs {
                println!("- {} nodes (run took {:.0} s):", r.nodes, took.as_secs_f64());
                for n in &r.notes {
                    println!("  - {n}");
                }
            }
            println!();
        }
    });
    if keep {
        let _ = work.keep();
    }
}
