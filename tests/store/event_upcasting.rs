//! Event schema evolution: `DeployFailed` / `UndeployFailed` 1.0 called the
//! failure `error`; 1.1 calls it `last_error`. Old events stay in the log as
//! written and are upcast whenever they are read: by cqrs-es for commands, by
//! `Engine::load_node`, by the projections and by the audit tools.

use crate::common;

use common::audit::{cmd, db, enroll, iscsi_capable, port, target, verb, Backend};
use cqrs_es::persist::SerializedEvent;
use ironledger::domain::NodeCommand;
use ironledger::secrets::MasterKey;
use serde_json::json;

/// Appends a `DeployFailed` exactly as version 1.0 wrote it.
async fn append_old_deploy_failed(store: &dyn ironledger::store::LogStore, node: &str, seq: usize) {
    let event = SerializedEvent {
        aggregate_id: node.to_string(),
        sequence: seq,
        aggregate_type: "Node".into(),
        event_type: "DeployFailed".into(),
        event_version: "1.0".into(),
        payload: json!({"DeployFailed": {
            "transition": {"event": "fail", "from": "deploying", "to": "deploy failed", "target": "active"},
            "error": "written by 1.0: iSCSI target unreachable"
        }}),
        metadata: json!({"actor": "ironledger-conductor", "occurred_at": "2026-01-01T00:00:00.000000Z"}),
    };
    store.append(&[event], &[]).await.unwrap();
}

async fn old_format_events_are_read_everywhere(backend: Backend) {
    let d = db(backend).await;
    let (engine, _) = d.engine(MasterKey::generate());
    let store = d.store.store.clone();
    let node = enroll(&engine, "old-node").await;
    // What a deploy needs to be accepted: the capability, a port, a boot volume.
    iscsi_capable(&engine, node).await;
    port(&engine, node, "52:54:00:aa:bb:07").await;
    target(&engine, node, "vol-old", "old-Secret-1").await;
    for v in ["manage", "provide", "deploy"] {
        cmd(&engine, node, verb(v), "operator").await;
    }
    let id = node.to_string();
    let seq = store.load("Node", &id).await.unwrap().len() + 1;
    append_old_deploy_failed(store.as_ref(), &id, seq).await;

    // The write model, through load_node.
    let n = engine.load_node(node).await.unwrap();
    assert_eq!(n.state().as_str(), "deploy failed");
    assert_eq!(
        n.last_error.as_deref(),
        Some("written by 1.0: iSCSI target unreachable")
    );

    // The projections (nodes, node history) read it from the feed.
    engine.projector().catch_up().await.unwrap();
    let doc = store.doc_get("nodes", &id).await.unwrap().unwrap();
    assert_eq!(
        doc["state"]["last_error"],
        "written by 1.0: iSCSI target unreachable"
    );
    let history = store.doc_list("node_history").await.unwrap();
    let entry = history
        .iter()
        .map(|(_, v)| v)
        .find(|v| v["event_name"] == "DeployFailed")
        .unwrap();
    assert_eq!(entry["severity"], "ERROR");
    assert_eq!(entry["event"], "written by 1.0: iSCSI target unreachable");

    // cqrs-es loads it for the next command (with_upcasters): deploy again.
    cmd(&engine, node, verb("deploy"), "operator").await;
    assert_eq!(engine.load_node(node).await.unwrap().last_error, None);
    // A new failure is written as 1.1.
    cmd(
        &engine,
        node,
        NodeCommand::FailDeploy {
            error: "written by 1.1".into(),
        },
        "ironledger-conductor",
    )
    .await;
    let events = store.load("Node", &id).await.unwrap();
    let failures: Vec<_> = events
        .iter()
        .filter(|e| e.event_type == "DeployFailed")
        .collect();
    assert_eq!(failures.len(), 2);
    assert_eq!(failures[0].event_version, "1.0");
    assert!(
        failures[0].payload["DeployFailed"].get("error").is_some(),
        "stored events are never rewritten"
    );
    assert_eq!(failures[1].event_version, "1.1");
    assert_eq!(
        failures[1].payload["DeployFailed"]["last_error"],
        "written by 1.1"
    );

    // The audit tools.
    let history = d.ok(&["history", "old-node"]).await;
    assert!(
        history.contains("ERROR: written by 1.0: iSCSI target unreachable"),
        "{history}"
    );
    assert!(history.contains("ERROR: written by 1.1"), "{history}");
    let shown: serde_json::Value = serde_json::from_str(
        &d.ok(&[
            "show",
            "old-node",
            "--as-of",
            &seq.to_string(),
            "-o",
            "json",
        ])
        .await,
    )
    .unwrap();
    // The node's own events start at position 1, so its sequence is its position here.
    assert_eq!(
        shown["last_error"],
        "written by 1.0: iSCSI target unreachable"
    );
    d.ok(&["verify"]).await;
}

mod old_format_events_are_read_everywhere {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::old_format_events_are_read_everywhere(super::Backend::Sqlite).await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::old_format_events_are_read_everywhere(super::Backend::Postgres).await
    }
}
