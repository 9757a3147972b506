//! One event must never take the service down.
//!
//! A log may hold events that today's readers find hard: nested deeper than
//! serde_json's 128-level parser limit (an older ironledger accepted bodies
//! just inside it, and the stored envelope added levels), shaped in a way the
//! domain cannot decode, or not decodable at all. Each test writes such
//! events straight into a real store (as an older version, a bug or a damaged
//! disk would have left them), then runs the real `ironledger` binary on it:
//! `serve` must start and keep serving everything else, `/health` must say
//! what is wrong, the audit tools must work or fail with a clear message, and
//! a backup must restore.

use crate::common;

use common::audit::{db, Backend, Db};
use cqrs_es::persist::SerializedEvent;
use cqrs_es::DomainEvent;
use ironledger::domain::node::events::NodeEnrolled;
use ironledger::domain::state::ProvisionState;
use ironledger::domain::NodeEvent;
use ironledger::store::json::{decode, depth};
use serde_json::{json, Map, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use uuid::Uuid;

macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(super::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(super::Backend::Postgres).await
            }
        }
    )*};
}

on_both_stores!(
    a_deep_event_from_an_older_version_is_read_everywhere,
    an_event_no_reader_can_apply_is_recorded_and_skipped,
    verify_fails_when_nothing_applies_the_log,
);

/// `ironledger serve` on a test database; killed when dropped.
struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(d: &Db) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ironledger"))
        .arg("--database-url")
        .arg(&d.url)
        .arg("--data-dir")
        .arg(d.data_dir.path())
        .args(["serve", "--port", "0"])
        .env_remove("DATABASE_URL")
        .env_remove("IRONLEDGER_DATA_DIR")
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start ironledger serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("read the listening line");
    let addr = line
        .trim()
        .strip_prefix("ironledger listening on ")
        .unwrap_or_else(|| panic!("serve did not start: {line:?}"))
        .to_string();
    Server { child, addr }
}

/// An HTTP call; the body is decoded like stored data (an answer may nest
/// as deeply as what was stored).
async fn call(method: reqwest::Method, url: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .request(method, url)
        .header("X-OpenStack-Ironic-API-Version", "1.78");
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, decode(&text).unwrap_or(Value::Null))
}

async fn get(url: &str) -> (u16, Value) {
    call(reqwest::Method::GET, url, None).await
}

fn nested(levels: usize) -> Value {
    let mut v = json!([]);
    for _ in 1..levels {
        v = json!([v]);
    }
    v
}

/// A node's `NodeEnrolled`, as the engine would have stored it.
fn enrolled(uuid: Uuid, name: &str, extra: Map<String, Value>) -> SerializedEvent {
    let ev = NodeEvent::NodeEnrolled(NodeEnrolled {
        uuid,
        name: Some(name.into()),
        driver: "fake-hardware".into(),
        interfaces: Default::default(),
        properties: Map::new(),
        instance_info: Map::new(),
        driver_info: Map::new(),
        extra,
        fields: Default::default(),
        provision_state: ProvisionState::Enroll,
    });
    raw(
        uuid,
        1,
        &ev.event_type(),
        &ev.event_version(),
        serde_json::to_value(&ev).unwrap(),
    )
}

/// A stored event of node `uuid` with any payload.
fn raw(
    uuid: Uuid,
    sequence: usize,
    event_type: &str,
    version: &str,
    payload: Value,
) -> SerializedEvent {
    SerializedEvent {
        aggregate_id: uuid.to_string(),
        sequence,
        aggregate_type: "Node".into(),
        event_type: event_type.into(),
        event_version: version.into(),
        payload,
        metadata: json!({"actor": "older-ironledger", "occurred_at": "2026-11-01T00:00:00.000000Z"}),
    }
}

/// Writes events straight into the store (no engine, no checks) and numbers them.
async fn write(d: &Db, events: &[SerializedEvent]) {
    let store = &d.store.store;
    let head = store.head().await.unwrap();
    for e in events {
        store.append(std::slice::from_ref(e), &[]).await.unwrap();
    }
    // On PostgreSQL a position waits for older transactions (other tests')
    // to end: wait until every event has one.
    common::settle(&**store, head + events.len() as u64).await;
}

/// The position of a node's event in the feed.
async fn position_of(d: &Db, uuid: Uuid, sequence: u64) -> u64 {
    d.store
        .store
        .load_recorded("Node", &uuid.to_string())
        .await
        .unwrap()
        .iter()
        .find(|e| e.sequence == sequence)
        .map(|e| e.position)
        .expect("the event is in the feed")
}

/// Waits for `check` to hold, re-evaluating `probe` (at most 15 s).
async fn eventually<T, F, Fut>(mut probe: F, check: impl Fn(&T) -> bool) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let value = probe().await;
        if check(&value) || tokio::time::Instant::now() >= deadline {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The reproducer, as a log an older version left behind: a node whose
/// `extra.x` nests 125 arrays (its event 129 levels, past the parser's limit).
/// Today this stopped the projector, kept `serve` from starting and made
/// `events`, `export`, `rebuild` and `leftovers` fail.
async fn a_deep_event_from_an_older_version_is_read_everywhere(backend: Backend) {
    let d = db(backend).await;
    let deep = Uuid::new_v4();
    let extra = Map::from_iter([("x".to_string(), nested(125))]);
    let event = enrolled(deep, "deep-node", extra);
    let text = serde_json::to_string(&event.payload).unwrap();
    assert!(
        serde_json::from_str::<Value>(&text).is_err(),
        "past the parser's limit"
    );
    write(&d, &[event]).await;

    let server = serve(&d);
    // (Named by UUID: events written straight into the log claim no name.)
    let (code, node) = get(&format!("{}/v1/nodes/{deep}", server.addr)).await;
    assert_eq!(code, 200, "{node}");
    assert_eq!(depth(&node["extra"]["x"]), 125);

    // Everything after it is applied: a new node shows at once.
    let (code, created) = call(
        reqwest::Method::POST,
        &format!("{}/v1/nodes", server.addr),
        Some(json!({"driver": "fake-hardware", "name": "after-deep"})),
    )
    .await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(
        get(&format!("{}/v1/nodes/after-deep", server.addr)).await.0,
        200
    );
    let (code, health) = get(&format!("{}/health", server.addr)).await;
    assert_eq!(
        (code, health["status"].as_str()),
        (200, Some("ok")),
        "{health}"
    );

    // The audit tools read it (while serving, on the same database).
    let events = d.ok(&["events", "--output", "json"]).await;
    assert_eq!(events.lines().count(), 2, "{events}");
    d.ok(&["leftovers"]).await;
    d.ok(&["rebuild"]).await;
    d.ok(&["verify"]).await;
    let backup = d.data_dir.path().join("backup.jsonl");
    d.ok(&["export", "-o", backup.to_str().unwrap()]).await;

    // And `serve` starts again on it.
    drop(server);
    let server = serve(&d);
    let (code, node) = get(&format!("{}/v1/nodes/{deep}", server.addr)).await;
    assert_eq!((code, depth(&node["extra"]["x"])), (200, 125));
    drop(server);

    // The backup restores, into the other kind of store too.
    let restored = db(match backend {
        Backend::Sqlite => Backend::Postgres,
        Backend::Postgres => Backend::Sqlite,
    })
    .await;
    restored.ok(&["import", backup.to_str().unwrap()]).await;
    restored.ok(&["rebuild"]).await;
    let shown = restored
        .ok(&["show", &deep.to_string(), "--output", "json"])
        .await;
    let shown = decode(&shown).expect("show prints JSON");
    assert_eq!(depth(&shown["extra"]["x"]), 125, "{shown}");
}

/// An event the domain cannot decode, the events after it of the same node,
/// and an event whose stored JSON cannot be decoded at all: each is recorded
/// (position and error: `/health`, `ironledger failures`), the nodes stay as
/// they were before them, and everything else keeps being served.
async fn an_event_no_reader_can_apply_is_recorded_and_skipped(backend: Backend) {
    let d = db(backend).await;
    let (bent, broken) = (Uuid::new_v4(), Uuid::new_v4());
    write(
        &d,
        &[
            enrolled(bent, "bent", Map::new()),
            // The shape is wrong: `changes` must be a map.
            raw(
                bent,
                2,
                "NodeUpdated",
                "1.0",
                json!({"NodeUpdated": {"changes": 5}}),
            ),
            raw(
                bent,
                3,
                "NodeUpdated",
                "1.0",
                json!({"NodeUpdated": {"changes": {"description": "after the bad one"}}}),
            ),
            // Deeper than any stored data can be: not even JSON to the reader.
            enrolled(
                broken,
                "broken",
                Map::from_iter([("x".to_string(), nested(600))]),
            ),
        ],
    )
    .await;
    let bad = position_of(&d, bent, 2).await;
    let skipped = position_of(&d, bent, 3).await;
    let unreadable = position_of(&d, broken, 1).await;

    let server = serve(&d);
    let (code, created) = call(
        reqwest::Method::POST,
        &format!("{}/v1/nodes", server.addr),
        Some(json!({"driver": "fake-hardware", "name": "healthy"})),
    )
    .await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(
        get(&format!("{}/v1/nodes/healthy", server.addr)).await.0,
        200
    );
    // `bent` as it was before its bad event; `broken` never got a document.
    // (By UUID: events written straight into the log claim no name.)
    let (code, node) = get(&format!("{}/v1/nodes/{bent}", server.addr)).await;
    assert_eq!(code, 200);
    assert_eq!(node["description"], Value::Null, "{node}");
    assert_eq!(
        get(&format!("{}/v1/nodes/{broken}", server.addr)).await.0,
        404
    );

    let (code, health) = get(&format!("{}/health", server.addr)).await;
    assert_eq!(code, 200, "{health}");
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["lag"], 0, "{health}");
    let recent: Vec<u64> = health["failures"]["recent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["position"].as_u64().unwrap())
        .collect();
    // Three events, each in five models (and the process manager's own).
    assert!(
        health["failures"]["count"].as_u64().unwrap() >= 15,
        "{health}"
    );
    assert!(
        recent
            .iter()
            .all(|p| [bad, skipped, unreadable].contains(p)),
        "{health}"
    );

    // The CLI lists each, with the error; the process manager's own entry
    // for the node it cannot load comes once it has tried.
    let failures = eventually(
        || d.ok(&["failures", "--output", "json"]),
        |out: &String| out.contains("\"process_manager\""),
    )
    .await;
    let failures: Vec<Value> = failures.lines().map(|l| decode(l).unwrap()).collect();
    let of = |model: &str, position: u64| {
        failures
            .iter()
            .find(|f| f["model"] == model && f["position"] == position)
            .unwrap_or_else(|| panic!("no {model} failure at {position}: {failures:?}"))
    };
    assert!(of("nodes", bad)["error"]
        .as_str()
        .unwrap()
        .contains("invalid type"));
    assert!(of("nodes", skipped)["error"]
        .as_str()
        .unwrap()
        .starts_with("skipped"));
    assert!(of("node_history", bad)["aggregate_id"] == bent.to_string());
    assert!(of("nodes", unreadable)["error"]
        .as_str()
        .unwrap()
        .contains("levels deep"));
    assert!(failures
        .iter()
        .any(|f| f["model"] == "process_manager" && f["aggregate_id"] == bent.to_string()));

    // verify says the models do not reflect the whole log; a backup refuses
    // to leave an event out.
    let run = d.cli(&["verify"]).await;
    assert!(!run.ok, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("could not be applied"),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    let run = d.cli(&["export", "-o", "/dev/null"]).await;
    assert!(!run.ok);
    assert!(
        run.stderr.contains(&format!("position {unreadable}")),
        "{}",
        run.stderr
    );

    // A restart serves again, and still says what is wrong.
    drop(server);
    let server = serve(&d);
    let (code, health) = get(&format!("{}/health", server.addr)).await;
    assert_eq!((code, health["status"].as_str()), (200, Some("degraded")));
    assert_eq!(
        get(&format!("{}/v1/nodes/healthy", server.addr)).await.0,
        200
    );
}

/// `/health` says 503 `stuck`, with the lag and the projector's error, while
/// the read models cannot move (here: a trigger the test puts on PostgreSQL's
/// `checkpoints` table refuses every checkpoint move but the one that hands
/// the inline models to the feed for an event no fold wrote), and `ok` again once
/// they caught up. (Refusing rather than blocking: a projector blocked inside
/// its transaction would hold back the numbering of every later event, on
/// the whole cluster, and the head would not move either.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_503_while_the_read_models_are_stuck() {
    let d = db(Backend::Postgres).await;
    let server = serve(&d);
    let health = || get_owned(format!("{}/health", server.addr));
    assert_eq!(health().await.0, 200);

    let pool = d.store.pg_pool.clone().unwrap();
    for sql in [
        "CREATE FUNCTION refuse_checkpoints() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN \
              IF TG_OP = 'UPDATE' AND OLD.position >= 4611686018427387904 THEN RETURN NEW; END IF; \
              RAISE EXCEPTION 'checkpoints refused by the test'; \
            END $$",
        "CREATE TRIGGER refuse_checkpoints BEFORE INSERT OR UPDATE ON checkpoints \
         FOR EACH ROW EXECUTE FUNCTION refuse_checkpoints()",
    ] {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    write(&d, &[enrolled(Uuid::new_v4(), "held", Map::new())]).await;
    let (code, body) = health().await;
    assert_eq!(code, 503, "{body}");
    assert_eq!(body["status"], "stuck", "{body}");
    assert!(body["lag"].as_u64().unwrap() >= 1, "{body}");
    let error = body["error"].as_str().unwrap_or_default();
    assert!(error.contains("checkpoints refused by the test"), "{body}");

    sqlx::query("DROP TRIGGER refuse_checkpoints ON checkpoints")
        .execute(&pool)
        .await
        .unwrap();
    let (code, body) = eventually(health, |(code, _)| *code == 200).await;
    assert_eq!((code, body["status"].as_str()), (200, Some("ok")), "{body}");
    assert_eq!(body["lag"], 0);
}

async fn get_owned(url: String) -> (u16, Value) {
    get(&url).await
}

/// Models whose checkpoint stays below the head do not reflect the log, even
/// if what they hold matches a replay up to their checkpoint.
async fn verify_fails_when_nothing_applies_the_log(backend: Backend) {
    let d = db(backend).await;
    d.ok(&["verify"]).await;
    write(&d, &[enrolled(Uuid::new_v4(), "unapplied", Map::new())]).await;
    let run = d.cli(&["verify"]).await;
    assert!(!run.ok, "{}", run.stdout);
    assert!(run.stdout.contains("BEHIND"), "{}", run.stdout);
    d.ok(&["rebuild"]).await;
    d.ok(&["verify"]).await;
}
