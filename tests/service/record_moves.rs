//! Moving a port or volume target to another node survives a crash between
//! the move's commands: the real `ironledger serve` is SIGKILLed right after
//! the move's intent is recorded (`move:after-start`: the record is on
//! neither node's list) or right after the other node took it
//! (`move:after-adopt`), started again on the same database, and must end
//! the move itself — the record on exactly one node, the move's end in the
//! history, every claim with the node that holds the record.

use crate::common::serve::{Options, Server};
use ironledger::domain::node::commands::NewTarget;
use ironledger::domain::{NodeCommand, NodeServices};
use ironledger::engine::{Engine, Meta};
use ironledger::store::DatabaseUrl;
use reqwest::StatusCode;
use serde_json::{json, Map, Value};
use std::path::Path;
use std::time::{Duration, Instant};
use tempfile::TempDir;
use uuid::Uuid;

const VERSION: &str = "1.78";

/// `ironledger serve` on the embedded SQLite store in `dir`.
fn start(dir: &Path, crash_at: Option<&str>) -> Server {
    let conf = format!(
        "[DEFAULT]\nenabled_storage_interfaces = cinder,external,noop\n\
         [deploy]\nhttp_root = {}\n",
        dir.join("httpboot").display()
    );
    Server::spawn(
        dir,
        &conf,
        Options {
            rust_log: Some("warn"),
            crash_at,
            keep_log: false,
        },
    )
}

async fn call(
    base: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Result<(StatusCode, Value)> {
    let mut req = reqwest::Client::new()
        .request(method, format!("{base}{path}"))
        .header("X-OpenStack-Ironic-API-Version", VERSION);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await?;
    let status = res.status();
    let text = res.text().await?;
    Ok((
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    ))
}

async fn get(base: &str, path: &str) -> Value {
    let (status, body) = call(base, reqwest::Method::GET, path, None).await.unwrap();
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    body
}

async fn post(base: &str, path: &str, body: Value) -> Value {
    let (status, body) = call(base, reqwest::Method::POST, path, Some(body))
        .await
        .unwrap();
    assert_eq!(status, StatusCode::CREATED, "{path}: {body}");
    body
}

/// Two enrolled nodes, powered off (a volume target may then move).
async fn two_nodes(base: &str) -> (String, String) {
    let mut ids = Vec::new();
    for _ in 0..2 {
        let n = post(base, "/v1/nodes", json!({"driver": "fake-hardware"})).await;
        let id = n["uuid"].as_str().unwrap().to_string();
        let (status, body) = call(
            base,
            reqwest::Method::PUT,
            &format!("/v1/nodes/{id}/states/power"),
            Some(json!({"target": "power off"})),
        )
        .await
        .unwrap();
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        ids.push(id);
    }
    (ids.remove(0), ids.remove(0))
}

/// Sends a move and expects the server to die on it.
async fn move_and_crash(server: &mut Server, path: &str, to: &str, point: &str) {
    let patch = json!([{"op": "replace", "path": "/node_uuid", "value": to}]);
    let answer = call(&server.base, reqwest::Method::PATCH, path, Some(patch)).await;
    assert!(
        answer.is_err(),
        "the move was answered ({answer:?}) though the server should have died at {point}"
    );
    server.wait_for_crash(point);
}

/// The history texts of `node`.
async fn history(base: &str, node: &str) -> Vec<String> {
    get(base, &format!("/v1/nodes/{node}/history?detail=true")).await["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect()
}

/// Waits until `node`'s history has an entry containing `text`.
async fn wait_history(base: &str, node: &str, text: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let h = history(base, node).await;
        if h.iter().any(|e| e.contains(text)) {
            return h;
        }
        assert!(
            Instant::now() < deadline,
            "node {node} never recorded {text:?}: {h:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn port_nodes(base: &str, a: &str, b: &str) -> (usize, usize) {
    let count = |v: Value| v["ports"].as_array().unwrap().len();
    (
        count(get(base, &format!("/v1/nodes/{a}/ports")).await),
        count(get(base, &format!("/v1/nodes/{b}/ports")).await),
    )
}

#[tokio::test]
async fn a_move_cut_after_its_intent_lands_after_a_restart() {
    let dir = TempDir::new().unwrap();
    let mut server = start(dir.path(), Some("move:after-start"));
    let (a, b) = two_nodes(&server.base).await;
    let port = post(
        &server.base,
        "/v1/ports",
        json!({"node_uuid": a, "address": "52:54:00:12:34:56"}),
    )
    .await;
    let port = port["uuid"].as_str().unwrap().to_string();
    move_and_crash(
        &mut server,
        &format!("/v1/ports/{port}"),
        &b,
        "move:after-start",
    )
    .await;
    drop(server);

    let server = start(dir.path(), None);
    let h = wait_history(&server.base, &a, &format!("{port} moved to node {b}")).await;
    assert_eq!(
        h.iter().filter(|e| e.contains("Moving port")).count(),
        1,
        "{h:#?}"
    );
    assert_eq!(port_nodes(&server.base, &a, &b).await, (0, 1));
    assert_eq!(
        get(&server.base, &format!("/v1/ports/{port}")).await["node_uuid"],
        b.as_str()
    );
    // The MAC's claim went with the port: the address is taken, by b.
    let (status, body) = call(
        &server.base,
        reqwest::Method::POST,
        "/v1/ports",
        Some(json!({"node_uuid": a, "address": "52:54:00:12:34:56"})),
    )
    .await
    .unwrap();
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    // With the move over, the node it left may go.
    let (status, body) = call(
        &server.base,
        reqwest::Method::DELETE,
        &format!("/v1/nodes/{a}"),
        None,
    )
    .await
    .unwrap();
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
}

#[tokio::test]
async fn a_move_cut_after_the_other_node_took_it_ends_there() {
    let dir = TempDir::new().unwrap();
    let mut server = start(dir.path(), Some("move:after-adopt"));
    let (a, b) = two_nodes(&server.base).await;
    let port = post(
        &server.base,
        "/v1/ports",
        json!({"node_uuid": a, "address": "52:54:00:ab:cd:ef"}),
    )
    .await;
    let port = port["uuid"].as_str().unwrap().to_string();
    move_and_crash(
        &mut server,
        &format!("/v1/ports/{port}"),
        &b,
        "move:after-adopt",
    )
    .await;
    drop(server);

    let server = start(dir.path(), None);
    // Before the restart finishes it, the port is on b already and the move
    // is still open on a; after, it has ended, with the port added once.
    wait_history(&server.base, &a, &format!("{port} moved to node {b}")).await;
    assert_eq!(port_nodes(&server.base, &a, &b).await, (0, 1));
    let added = history(&server.base, &b)
        .await
        .into_iter()
        .filter(|e| e.contains(&format!("Port {port}")) && e.ends_with("added."))
        .count();
    assert_eq!(added, 1);
}

#[tokio::test]
async fn a_cut_move_the_other_node_now_refuses_comes_back() {
    let dir = TempDir::new().unwrap();
    let mut server = start(dir.path(), Some("move:after-start"));
    let (a, b) = two_nodes(&server.base).await;
    let target = post(
        &server.base,
        "/v1/volume/targets",
        json!({"node_uuid": a, "volume_type": "iscsi", "boot_index": 0, "volume_id": "vol-moving",
               "properties": {"auth_password": "chap-secret"}}),
    )
    .await;
    let target = target["uuid"].as_str().unwrap().to_string();
    move_and_crash(
        &mut server,
        &format!("/v1/volume/targets/{target}"),
        &b,
        "move:after-start",
    )
    .await;
    drop(server);

    // While no server runs, b gets a boot-index-0 target of its own (another
    // process on the same database would do the same): the move cannot land.
    {
        let url = DatabaseUrl::Sqlite(dir.path().join("ironledger.db"));
        let engine = Engine::open(&url, NodeServices::default()).await.unwrap();
        engine
            .node(
                Uuid::parse_str(&b).unwrap(),
                NodeCommand::CreateTarget(NewTarget {
                    uuid: Uuid::new_v4(),
                    volume_type: "iscsi".into(),
                    boot_index: 0,
                    volume_id: "vol-b".into(),
                    properties: Map::new(),
                    extra: Map::new(),
                }),
                &Meta::actor("move-test"),
            )
            .await
            .unwrap();
    }

    let server = start(dir.path(), None);
    let h = wait_history(&server.base, &a, "is back on this node").await;
    assert!(
        h.iter()
            .any(|e| e.contains("boot index '0' for the same node already exists")),
        "{h:#?}"
    );
    let shown = get(&server.base, &format!("/v1/volume/targets/{target}")).await;
    assert_eq!(shown["node_uuid"], a.as_str());
    assert_eq!(shown["volume_id"], "vol-moving");
    assert_eq!(shown["properties"]["auth_password"], "******");
}
