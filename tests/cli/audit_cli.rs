//! The audit and replay commands (`ironledger events`, `history`, `show
//! --as-of`, `rebuild`, `verify`, `export`, `import`), run as the real binary
//! against a SQLite file and a PostgreSQL schema that an in-process engine
//! (encrypting secrets at rest) wrote: a node deployed, undeployed and
//! redeployed, and a node deleted.

use crate::common;

use common::audit::{
    cmd, db, head, scenario, verb, Backend, Db, Scenario, SECRET_A, SECRET_B, SECRET_GONE,
};
use ironledger::cli::ExportLine;
use ironledger::domain::NodeCommand;
use ironledger::secrets::MasterKey;
use ironledger::store::{DocChange, RecordedEvent};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

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
    events_lists_and_filters,
    events_follow_tails_new_events,
    history_is_a_timeline,
    show_as_of_a_deployed_undeployed_redeployed_node,
    rebuild_resumes_after_an_interruption,
    rebuild_and_verify_work_on_an_empty_log,
    leftovers_lists_what_is_not_undone_yet,
    a_repair_by_rebuild_is_not_undone_by_a_running_engine,
    verify_detects_a_corrupted_projection,
    export_import_moves_the_log_to_the_other_store,
    import_refuses_inconsistent_logs,
    plan_shows_a_deploy_without_doing_it,
);

/// `leftovers` shows the volumes and scripts the process manager has not
/// undone yet — of a failed deploy, and of a node deleted meanwhile, which the
/// API no longer shows — and forgets them once Cinder confirmed.
async fn leftovers_lists_what_is_not_undone_yet(backend: Backend) {
    use ironledger::domain::node::commands::ProvisionRequest;
    use ironledger::engine::Meta;
    let d = db(backend).await;
    let (engine, _) = d.engine(MasterKey::generate());
    assert_eq!(d.ok(&["leftovers"]).await.trim(), "nothing is left over");
    let meta = Meta::actor("conductor");
    let (failed, deleted) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    for (id, volume) in [(failed, "vol-f"), (deleted, "vol-d")] {
        // A node a deploy is accepted for (a boot volume, a port, a
        // connector, the capability).
        let enrolment = common::enroll_bootable(id, volume);
        for cmd in enrolment.into_iter().chain([
            NodeCommand::Provision(ProvisionRequest::verb("deploy")),
            NodeCommand::RecordAttachIntent {
                volume_ids: vec![volume.into()],
                owner: None,
            },
            NodeCommand::FailDeploy {
                error: "Cinder is away".into(),
            },
        ]) {
            engine.node(id, cmd, &meta).await.unwrap();
        }
    }
    for cmd in [
        NodeCommand::SetMaintenance { reason: None },
        NodeCommand::Delete,
    ] {
        engine.node(deleted, cmd, &meta).await.unwrap();
    }
    let lines = json_lines(&d.ok(&["leftovers", "--output", "json"]).await);
    let by_node = |id: uuid::Uuid| {
        lines
            .iter()
            .find(|l| l["node"] == id.to_string())
            .unwrap_or_else(|| panic!("{id} missing from {lines:?}"))
            .clone()
    };
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(by_node(failed)["state"], "deploy failed");
    assert_eq!(by_node(failed)["volumes"], json!(["vol-f"]));
    assert_eq!(by_node(deleted)["state"], "deleted");
    assert_eq!(by_node(deleted)["volumes"], json!(["vol-d"]));
    let table = d.ok(&["leftovers"]).await;
    assert!(
        table.contains("deleted") && table.contains("vol-d"),
        "{table}"
    );

    engine
        .node(
            deleted,
            NodeCommand::RecordDetachments {
                volume_ids: vec!["vol-d".into()],
            },
            &meta,
        )
        .await
        .unwrap();
    let lines = json_lines(&d.ok(&["leftovers", "--output", "json"]).await);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["node"], failed.to_string());
}

/// A running engine remembers the documents it last wrote. A corrupted
/// document it picked up, then repaired by a CLI `rebuild` (at the same
/// checkpoint), must not be written back by its next command: its next poll
/// of the database drops what it remembers.
async fn a_repair_by_rebuild_is_not_undone_by_a_running_engine(backend: Backend) {
    let (d, engine, s) = setup(backend).await;
    let store = d.store.store.clone();
    let node_id = s.node.to_string();
    let touch = |key: &'static str| NodeCommand::Patch {
        ops: vec![ironledger::domain::patch::PatchOp {
            op: "add".into(),
            path: format!("/extra/{key}"),
            value: Some(json!(1)),
        }],
    };
    let meta = ironledger::engine::Meta::actor("operator");
    let mut doc = store.doc_get("nodes", &node_id).await.unwrap().unwrap();
    doc["state"]["name"] = json!("tampered");
    let cp = store.checkpoint("nodes").await.unwrap();
    assert!(store
        .commit_model("nodes", cp, cp, &[DocChange::put(node_id.clone(), doc)])
        .await
        .unwrap());
    // The engine's next poll forgets what it remembered; its next command
    // reads the corrupted document and carries it on.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    engine.node(s.node, touch("a"), &meta).await.unwrap();
    let r = d.cli(&["verify", "nodes"]).await;
    assert!(!r.ok && r.stdout.contains("tampered"), "{}", r.stdout);

    d.ok(&["rebuild", "nodes"]).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    engine.node(s.node, touch("b"), &meta).await.unwrap();
    let r = d.cli(&["verify", "nodes"]).await;
    assert!(r.ok, "the repair was undone: {}", r.stdout);
}

/// A fresh installation: nothing to replay is not an error.
async fn rebuild_and_verify_work_on_an_empty_log(backend: Backend) {
    let d = db(backend).await;
    d.ok(&["rebuild"]).await;
    d.ok(&["verify"]).await;
    assert_eq!(d.store.store.head().await.unwrap(), 0);
}

async fn setup(backend: Backend) -> (Db, std::sync::Arc<ironledger::engine::Engine>, Scenario) {
    let d = db(backend).await;
    let (engine, _) = d.engine(MasterKey::generate());
    let s = scenario(&engine).await;
    (d, engine, s)
}

fn json_lines(out: &str) -> Vec<Value> {
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn events_of(out: &str) -> Vec<RecordedEvent> {
    json_lines(out)
        .into_iter()
        .map(|v| serde_json::from_value(v).unwrap())
        .collect()
}

async fn events_list_and_filters_inner(d: &Db, s: &Scenario) {
    let all = events_of(&d.ok(&["events", "-o", "json"]).await);
    assert_eq!(all.len() as u64, s.end);
    assert!(all
        .iter()
        .enumerate()
        .all(|(i, e)| e.position == i as u64 + 1));

    // By node name, of a live and of a deleted node.
    let node = events_of(&d.ok(&["events", "--node", "node-0", "-o", "json"]).await);
    assert!(node.iter().all(|e| e.aggregate_id == s.node.to_string()));
    assert_eq!(
        node.len(),
        all.iter()
            .filter(|e| e.aggregate_id == s.node.to_string())
            .count()
    );
    let gone = events_of(&d.ok(&["events", "--node", "node-1", "-o", "json"]).await);
    assert_eq!(gone.last().unwrap().event_type, "NodeDeleted");
    assert!(gone.iter().all(|e| e.aggregate_id == s.other.to_string()));

    // By event type, aggregate type, position range, time range.
    let types = events_of(
        &d.ok(&[
            "events",
            "--type",
            "TargetCreated,TargetsPurged",
            "--type",
            "Deployed",
            "-o",
            "json",
        ])
        .await,
    );
    let seen: BTreeSet<&str> = types.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        seen,
        BTreeSet::from(["Deployed", "TargetCreated", "TargetsPurged"])
    );
    assert_eq!(
        types.iter().filter(|e| e.event_type == "Deployed").count(),
        2
    );
    let none = events_of(
        &d.ok(&["events", "--aggregate-type", "Volume", "-o", "json"])
            .await,
    );
    assert!(none.is_empty());
    let (from, to) = (s.deployed.to_string(), s.undeployed.to_string());
    let range = events_of(
        &d.ok(&["events", "--from", &from, "--to", &to, "-o", "json"])
            .await,
    );
    assert_eq!(
        range.iter().map(|e| e.position).collect::<Vec<_>>(),
        (s.deployed..=s.undeployed).collect::<Vec<_>>()
    );
    let t0 = all[s.deployed as usize - 1].recorded_at;
    let t1 = all[s.undeployed as usize - 1].recorded_at;
    let since = t0.to_rfc3339();
    let until = t1.to_rfc3339();
    let timed = events_of(
        &d.ok(&["events", "--since", &since, "--until", &until, "-o", "json"])
            .await,
    );
    assert!(!timed.is_empty());
    assert!(timed
        .iter()
        .all(|e| e.recorded_at >= t0 && e.recorded_at <= t1));
    assert!(timed.iter().any(|e| e.position == s.deployed));

    // The table, for people.
    let table = d.ok(&["events", "--node", "node-0"]).await;
    let header = table.lines().next().unwrap();
    for col in [
        "POSITION",
        "RECORDED_AT",
        "AGGREGATE",
        "EVENT",
        "ACTOR",
        "SUMMARY",
    ] {
        assert!(header.contains(col), "{header}");
    }
    assert!(
        table.contains("Deploy finished: deploying -> active."),
        "{table}"
    );
    assert!(table.contains("ironledger-conductor"));
    // Payloads as stored: secrets encrypted.
    let raw = d.ok(&["events", "-o", "json"]).await;
    for secret in [SECRET_A, SECRET_B, SECRET_GONE] {
        assert!(!raw.contains(secret));
    }
    assert!(raw.contains("ilenc:v1:"));

    let bad = d.cli(&["events", "--since", "yesterday"]).await;
    assert!(
        !bad.ok && bad.stderr.contains("is not a time"),
        "{}",
        bad.stderr
    );
    let unknown = d.cli(&["events", "--node", "no-such-node"]).await;
    assert!(!unknown.ok && unknown.stderr.contains("no node is or was named"));
}

async fn events_lists_and_filters(backend: Backend) {
    let (d, _engine, s) = setup(backend).await;
    events_list_and_filters_inner(&d, &s).await;
}

async fn events_follow_tails_new_events(backend: Backend) {
    let (d, engine, s) = setup(backend).await;
    let from = (s.end + 1).to_string();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_ironledger"))
        .args(["--database-url", &d.url, "--data-dir"])
        .arg(d.data_dir.path())
        .args([
            "events",
            "--follow",
            "--node",
            "node-0",
            "--from",
            &from,
            "-o",
            "json",
            "--poll-ms",
            "50",
        ])
        .env_remove("DATABASE_URL")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    tokio::time::sleep(Duration::from_millis(300)).await;
    cmd(
        &engine,
        s.node,
        NodeCommand::SetMaintenance {
            reason: Some("disk swap".into()),
        },
        "admin",
    )
    .await;
    // Another node's event is filtered out.
    common::audit::enroll(&engine, "node-2").await;
    cmd(&engine, s.node, NodeCommand::UnsetMaintenance, "admin").await;
    let mut got = vec![];
    while got.len() < 2 {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("a followed event within 30 s")
            .unwrap()
            .expect("ironledger events --follow exited");
        got.push(serde_json::from_str::<RecordedEvent>(&line).unwrap());
    }
    assert_eq!(got[0].event_type, "MaintenanceSet");
    assert_eq!(got[0].metadata["actor"], "admin");
    assert_eq!(got[1].event_type, "MaintenanceUnset");
    // node-2's enrolment in between was filtered out.
    assert_eq!(got[1].position, got[0].position + 2);
    child.kill().await.unwrap();
}

async fn history_is_a_timeline(backend: Backend) {
    let (d, _engine, s) = setup(backend).await;
    let out = d.ok(&["history", "node-0"]).await;
    let first = out.lines().next().unwrap();
    assert!(
        first.starts_with(&format!("Node {} (node-0):", s.node)),
        "{first}"
    );
    for want in [
        "TIME",
        "ACTOR",
        "- → enroll",
        "enroll → verifying",
        "available → deploying",
        "deploying → active",
        "active → deleting",
        "cleaning → available",
        "TargetsPurged",
        "operator",
        "ironledger-conductor",
        "1 volume target(s) purged.",
    ] {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }
    assert!(!out.contains(SECRET_A) && !out.contains(SECRET_B));

    let entries = json_lines(&d.ok(&["history", &s.node.to_string(), "-o", "json"]).await);
    let positions: Vec<u64> = entries
        .iter()
        .map(|e| e["position"].as_u64().unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]));
    let last = entries.last().unwrap();
    assert_eq!(last["event"], "Deployed");
    assert_eq!(last["state_before"], "deploying");
    assert_eq!(last["state_after"], "active");
    assert_eq!(last["actor"], "ironledger-conductor");
    let deploys = entries
        .iter()
        .filter(|e| e["event"] == "DeployRequested")
        .count();
    assert_eq!(deploys, 2);

    let gone = d.ok(&["history", "node-1"]).await;
    assert!(
        gone.lines().next().unwrap().ends_with(", deleted"),
        "{gone}"
    );
    assert!(
        gone.contains("NodeDeleted") && gone.contains("enroll → -"),
        "{gone}"
    );
}

async fn show_json(d: &Db, args: &[&str]) -> Value {
    let mut all = vec!["show", "node-0", "-o", "json"];
    all.extend_from_slice(args);
    serde_json::from_str(&d.ok(&all).await).unwrap()
}

async fn show_as_of_a_deployed_undeployed_redeployed_node(backend: Backend) {
    let (d, _engine, s) = setup(backend).await;
    let at = |p: u64| p.to_string();

    let before = show_json(&d, &["--as-of", &at(s.available)]).await;
    assert_eq!(before["provision_state"], "available");
    assert_eq!(before["targets"][0]["uuid"], s.target_a.to_string());

    let deployed = show_json(&d, &["--as-of", &at(s.deployed)]).await;
    assert_eq!(deployed["provision_state"], "active");
    assert_eq!(deployed["as_of"]["position"], s.deployed);
    assert_eq!(deployed["as_of"]["last_event"], "Deployed");
    let targets = deployed["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 1);
    assert_eq!(targets[0]["uuid"], s.target_a.to_string());
    assert_eq!(targets[0]["volume_id"], "vol-a");
    assert_eq!(targets[0]["properties"]["auth_password"], "******");
    assert_eq!(targets[0]["properties"]["auth_username"], "ABC");
    assert_eq!(deployed["connectors"].as_array().unwrap().len(), 1);
    assert_eq!(deployed["ports"][0]["address"], "52:54:00:aa:bb:01");
    assert_eq!(deployed["power_state"], Value::Null);
    assert_eq!(deployed["driver_info"]["ipmi_password"], "******");

    let undeployed = show_json(&d, &["--as-of", &at(s.undeployed)]).await;
    assert_eq!(undeployed["provision_state"], "available");
    assert_eq!(undeployed["targets"], json!([]));
    assert_eq!(undeployed["connectors"].as_array().unwrap().len(), 1);
    assert_eq!(undeployed["ports"].as_array().unwrap().len(), 1);

    let redeployed = show_json(&d, &["--as-of", &at(s.redeployed)]).await;
    assert_eq!(redeployed["provision_state"], "active");
    assert_eq!(redeployed["targets"].as_array().unwrap().len(), 1);
    assert_eq!(redeployed["targets"][0]["uuid"], s.target_b.to_string());
    assert_eq!(redeployed["targets"][0]["volume_id"], "vol-b");
    // Now is the redeployed state (the other node's events come later).
    assert_eq!(show_json(&d, &[]).await["targets"], redeployed["targets"]);

    // By time: the moment the first deploy finished.
    let at_deployed = &events_of(
        &d.ok(&[
            "events",
            "--from",
            &at(s.deployed),
            "--to",
            &at(s.deployed),
            "-o",
            "json",
        ])
        .await,
    )[0];
    let time = at_deployed.recorded_at.to_rfc3339();
    assert_eq!(show_json(&d, &["--as-of", &time]).await, deployed);

    // For people: sections, masked secrets.
    let table = d.ok(&["show", "node-0", "--as-of", &at(s.deployed)]).await;
    for want in [
        "as of position",
        "provision state: active",
        "Ports (1):",
        "Volume connectors (1):",
        "Volume targets (1):",
        "vol-a",
        "******",
    ] {
        assert!(table.contains(want), "missing {want:?} in\n{table}");
    }
    assert!(!table.contains(SECRET_A));

    // Before the node existed; a deleted node.
    let early = d.cli(&["show", "node-0", "--as-of", "2000-01-01"]).await;
    assert!(
        !early.ok && early.stderr.contains("did not exist yet"),
        "{}",
        early.stderr
    );
    let gone = d.ok(&["show", "node-1"]).await;
    assert!(gone.contains("(deleted)"), "{gone}");
}

async fn rebuild_resumes_after_an_interruption(backend: Backend) {
    let (d, engine, s) = setup(backend).await;
    let store = d.store.store.clone();
    let before = store.doc_list("nodes").await.unwrap();

    let stopped = d
        .cli(&["rebuild", "nodes", "--batch-size", "3", "--stop-after", "5"])
        .await;
    assert!(!stopped.ok, "an interrupted rebuild fails: {stopped:?}");
    assert!(
        stopped.stdout.contains("interrupted at position 5"),
        "{}",
        stopped.stdout
    );
    assert_eq!(store.checkpoint("nodes~rebuild").await.unwrap(), 5);
    // The live model still answers, and still follows new commands.
    assert_eq!(store.doc_list("nodes").await.unwrap(), before);
    cmd(
        &engine,
        s.node,
        NodeCommand::SetMaintenance { reason: None },
        "admin",
    )
    .await;
    let end = head(&engine).await;

    let resumed = d.ok(&["rebuild", "nodes", "--batch-size", "3"]).await;
    assert!(
        resumed.contains(&format!(
            "nodes: rebuilt up to position {end}, resumed at 5"
        )),
        "{resumed}"
    );
    assert!(resumed.contains("events/s"), "{resumed}");
    assert_eq!(store.checkpoint("nodes~rebuild").await.unwrap(), 0);
    assert!(store.doc_list("nodes~rebuild").await.unwrap().is_empty());
    // Swapped in at the head: written inline from here on.
    assert!(ironledger::store::is_inline(
        store.checkpoint("nodes").await.unwrap()
    ));
    let node = store
        .doc_get("nodes", &s.node.to_string())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(node["state"]["maintenance"], true);

    // The engine goes on using the swapped-in model.
    cmd(&engine, s.node, NodeCommand::UnsetMaintenance, "admin").await;
    head(&engine).await;
    let node = store
        .doc_get("nodes", &s.node.to_string())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(node["state"]["maintenance"], false);

    // One pass over the log for every model, even when they start from
    // different positions: nodes resumes an interrupted run, the others
    // start from nothing.
    let stopped = d
        .cli(&["rebuild", "nodes", "--batch-size", "3", "--stop-after", "4"])
        .await;
    assert!(!stopped.ok, "{stopped:?}");
    let end = head(&engine).await;
    let all = d.ok(&["rebuild", "--batch-size", "3"]).await;
    assert!(
        all.contains("nodes: resuming an interrupted rebuild at position 4"),
        "{all}"
    );
    assert!(
        all.contains(&format!(
            "nodes: rebuilt up to position {end}, resumed at 4"
        )),
        "{all}"
    );
    for p in ["ports", "connectors", "targets", "node_history"] {
        assert!(
            all.contains(&format!("{p}: rebuilt up to position {end}\n")),
            "{all}"
        );
    }
    // Each event was read once, not once per model.
    assert!(
        all.contains(&format!(
            "5 model(s) in one pass over the log: {end} events"
        )),
        "{all}"
    );
    d.ok(&["verify"]).await;
    let unknown = d.cli(&["rebuild", "nope"]).await;
    assert!(!unknown.ok && unknown.stderr.contains("unknown projection"));
}

async fn verify_detects_a_corrupted_projection(backend: Backend) {
    let (d, _engine, s) = setup(backend).await;
    let store = d.store.store.clone();
    let ok = d.ok(&["verify"]).await;
    assert_eq!(
        ok.lines().filter(|l| l.contains(": OK (")).count(),
        5,
        "{ok}"
    );

    // Corrupt three models: a changed field, a lost document, a stray one.
    let node_id = s.node.to_string();
    let mut doc = store.doc_get("nodes", &node_id).await.unwrap().unwrap();
    doc["state"]["name"] = json!("tampered");
    let cp = store.checkpoint("nodes").await.unwrap();
    assert!(store
        .commit_model("nodes", cp, cp, &[DocChange::put(node_id.clone(), doc)])
        .await
        .unwrap());
    let (port, _) = store.doc_list("ports").await.unwrap().remove(0);
    let cp = store.checkpoint("ports").await.unwrap();
    assert!(store
        .commit_model("ports", cp, cp, &[DocChange::Delete { id: port.clone() }])
        .await
        .unwrap());
    let cp = store.checkpoint("targets").await.unwrap();
    assert!(store
        .commit_model(
            "targets",
            cp,
            cp,
            &[DocChange::put("stray", json!({"volume_id": "x"}))]
        )
        .await
        .unwrap());

    let bad = d.cli(&["verify"]).await;
    assert!(!bad.ok, "verify must fail: {}", bad.stdout);
    assert_eq!(bad.code, Some(1));
    let out = &bad.stdout;
    assert!(out.contains("nodes: DIFFERENT"), "{out}");
    assert!(out.contains(&format!("changed {node_id}:")), "{out}");
    assert!(
        out.contains("/state/name: \"tampered\" → \"node-0\""),
        "{out}"
    );
    assert!(
        out.contains("ports: DIFFERENT") && out.contains(&format!("missing {port}")),
        "{out}"
    );
    assert!(
        out.contains("targets: DIFFERENT") && out.contains("extra stray"),
        "{out}"
    );
    assert!(
        out.contains("connectors: OK") && out.contains("node_history: OK"),
        "{out}"
    );
    assert!(
        bad.stderr
            .contains("ironledger rebuild nodes ports targets"),
        "{}",
        bad.stderr
    );
    // The scratch models are gone.
    assert!(store.doc_list("nodes~verify").await.unwrap().is_empty());

    d.ok(&["rebuild", "nodes", "ports", "targets"]).await;
    d.ok(&["verify"]).await;
    assert_eq!(
        store.doc_get("nodes", &node_id).await.unwrap().unwrap()["state"]["name"],
        "node-0"
    );
}

fn no_secrets(bytes: &[u8], what: &str) {
    let text = String::from_utf8_lossy(bytes);
    for secret in [SECRET_A, SECRET_B, SECRET_GONE, "ipmi-Secret-4411"] {
        assert!(!text.contains(secret), "{secret} in clear in {what}");
    }
}

async fn export_import_moves_the_log_to_the_other_store(backend: Backend) {
    let d = db(backend).await;
    // The same master key on both sides: keep its bytes.
    let key: [u8; 32] = rand::random();
    let (engine, _) = d.engine(MasterKey::from_bytes(&key));
    let s = scenario(&engine).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("log.jsonl");
    let file_s = file.to_str().unwrap();
    let r = d.cli(&["export", "-o", file_s]).await;
    assert!(r.ok, "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!("exported {} events", s.end)),
        "{}",
        r.stderr
    );
    let bytes = std::fs::read(&file).unwrap();
    no_secrets(&bytes, "the export");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let lines: Vec<ExportLine> = json_lines(std::str::from_utf8(&bytes).unwrap())
        .into_iter()
        .map(|v| serde_json::from_value(v).unwrap())
        .collect();
    assert!(matches!(lines[0], ExportLine::Header { head, .. } if head == s.end));
    let keys: Vec<&ExportLine> = lines
        .iter()
        .filter(|l| matches!(l, ExportLine::DataKey { .. }))
        .collect();
    // node-1's key was destroyed with it.
    assert_eq!(keys.len(), 1);
    assert!(matches!(keys[0], ExportLine::DataKey { owner, .. } if owner == &s.node.to_string()));
    assert!(
        matches!(lines.last().unwrap(), ExportLine::End { events, data_keys: 1 } if *events == s.end)
    );

    // Into the other backend.
    let other = db(match backend {
        Backend::Sqlite => Backend::Postgres,
        Backend::Postgres => Backend::Sqlite,
    })
    .await;
    let out = other.ok(&["import", file_s]).await;
    assert!(out.contains(&format!("imported {} events", s.end)), "{out}");
    assert!(out.contains("read models built"), "{out}");
    other.ok(&["verify"]).await;
    let again = other.ok(&["export"]).await;
    let again: Vec<ExportLine> = json_lines(&again)
        .into_iter()
        .map(|v| serde_json::from_value(v).unwrap())
        .collect();
    assert_eq!(
        again[1..],
        lines[1..],
        "the log survives the move unchanged"
    );
    assert_eq!(
        other.ok(&["history", "node-0"]).await,
        d.ok(&["history", "node-0"]).await
    );
    // Uniqueness claims came along: the name is taken on the other side too.
    assert_eq!(
        other
            .store
            .store
            .claim_owner("node_name", "node-0")
            .await
            .unwrap(),
        Some(s.node.to_string())
    );
    assert_eq!(
        other
            .store
            .store
            .claim_owner("node_name", "node-1")
            .await
            .unwrap(),
        None
    );
    // With the same master key, the secrets are readable there.
    let (moved, _) = other.engine(MasterKey::from_bytes(&key));
    let node = moved.load_node(s.node).await.unwrap();
    assert_eq!(node.targets[0].properties["auth_password"], SECRET_B);
    assert_eq!(node.driver_info["ipmi_password"], "ipmi-Secret-4411");
    // And the engine there goes on from where the log ended.
    cmd(&moved, s.node, verb("undeploy"), "operator").await;
    if let Some(path) = &other.file {
        let mut all = vec![];
        for f in std::fs::read_dir(path.parent().unwrap()).unwrap() {
            all.extend(std::fs::read(f.unwrap().path()).unwrap());
        }
        no_secrets(&all, "the imported SQLite files");
    }
}

async fn import_refuses_inconsistent_logs(backend: Backend) {
    let (d, _engine, s) = setup(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let good = d.ok(&["export"]).await;
    let lines: Vec<&str> = good.lines().collect();
    let write = |name: &str, lines: &[String]| {
        let p = dir.path().join(name);
        std::fs::write(&p, lines.join("\n") + "\n").unwrap();
        p.to_str().unwrap().to_string()
    };
    let owned: Vec<String> = lines.iter().map(|l| l.to_string()).collect();

    // Two events swapped: positions out of order.
    let mut swapped = owned.clone();
    swapped.swap(3, 4);
    // An event of node-0 left out, later positions renumbered: a sequence gap.
    let mut gap: Vec<String> = vec![owned[0].clone()];
    let mut pos = 0;
    for (i, l) in owned[1..owned.len() - 1].iter().enumerate() {
        let mut v: Value = serde_json::from_str(l).unwrap();
        if v["kind"] == "event" {
            if i == 2 {
                continue;
            }
            pos += 1;
            v["position"] = json!(pos);
        }
        gap.push(v.to_string());
    }
    gap.push(json!({"kind": "end", "events": pos, "data_keys": 1}).to_string());
    // No end line.
    let truncated = owned[..owned.len() - 1].to_vec();
    // An event ironledger cannot read (a payload that is not the event its
    // type says): imported, it would stop every projection there.
    let mut unreadable = owned.clone();
    let mut v: Value = serde_json::from_str(&unreadable[2]).unwrap();
    let kind = v["event_type"].as_str().unwrap().to_string();
    v["payload"] = json!({ kind: "garbage" });
    unreadable[2] = v.to_string();
    // A wrong count.
    let mut miscounted = owned.clone();
    *miscounted.last_mut().unwrap() =
        json!({"kind": "end", "events": 3, "data_keys": 1}).to_string();

    for (name, file, want) in [
        ("swapped", &swapped, "position 4 where 3 was expected"),
        ("gap", &gap, "sequences must be 1, 2, 3"),
        ("truncated", &truncated, "truncated"),
        ("miscounted", &miscounted, "the end line counts 3 events"),
        ("unreadable", &unreadable, "cannot be read"),
    ] {
        let target = db(Backend::Sqlite).await;
        let r = target.cli(&["import", &write(name, file)]).await;
        assert!(!r.ok, "{name} was imported");
        assert!(r.stderr.contains(want), "{name}: {}", r.stderr);
        assert_eq!(
            target.store.store.head().await.unwrap(),
            0,
            "{name} wrote something"
        );
    }

    // Into a store with another log.
    let r = d.cli(&["import", &write("good", &owned)]).await;
    // The same log: everything is there already, nothing to do.
    assert!(r.ok, "{}", r.stderr);
    assert!(
        r.stderr
            .contains(&format!("holds the first {} events", s.end)),
        "{}",
        r.stderr
    );
    let (foreign, engine2, _) = setup(backend).await;
    drop(engine2);
    let r = foreign.cli(&["import", &write("good2", &owned)]).await;
    assert!(
        !r.ok && r.stderr.contains("differs from the file"),
        "{}",
        r.stderr
    );

    // An interrupted import resumes: first a consistent prefix, then all.
    let target = db(backend).await;
    let k = 10;
    let mut prefix: Vec<String> = owned[..=k].to_vec();
    prefix.push(json!({"kind": "end", "events": k, "data_keys": 0}).to_string());
    target
        .ok(&["import", "--no-project", &write("prefix", &prefix)])
        .await;
    assert_eq!(target.store.store.head().await.unwrap(), k as u64);
    // The rest from standard input (spooled to a private file, then removed).
    let tmp = tempfile::tempdir().unwrap();
    let all = owned.join("\n") + "\n";
    let r = target
        .cli_with_input(&["import", "-"], all.as_bytes(), tmp.path())
        .await;
    assert!(r.ok, "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!("holds the first {k} events")),
        "{}",
        r.stderr
    );
    assert!(
        r.stdout
            .contains(&format!("imported {} events", s.end - k as u64)),
        "{}",
        r.stdout
    );
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "the spooled copy of standard input is left behind"
    );
    assert_eq!(target.store.store.head().await.unwrap(), s.end);
    target.ok(&["verify"]).await;
}

/// `plan` says whether a deploy would be accepted (with the API's refusal
/// text and exit 1 if not) and, if so, its steps and the events each would
/// record; it writes nothing to the log and shows no secret.
async fn plan_shows_a_deploy_without_doing_it(backend: Backend) {
    let (d, engine, s) = setup(backend).await;
    let node = s.node;
    // node-0 is active: a deploy is refused as the API refuses it.
    let r = d.cli(&["plan", "node-0", "-o", "json"]).await;
    assert!(!r.ok, "a refused deploy exits non-zero: {}", r.stdout);
    assert!(r.stderr.contains("would be refused"), "{}", r.stderr);
    let refused: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(refused["provision_state"], "active");
    let refusal = refused["refused"].as_str().unwrap();
    assert!(
        refusal.contains("can not be performed on node") && refusal.contains("active"),
        "{refusal}"
    );
    assert_eq!(refused["steps"], json!([]));

    // Undeployed again, with a boot target: the plan's steps.
    cmd(&engine, node, verb("undeploy"), "operator").await;
    cmd(
        &engine,
        node,
        NodeCommand::PurgeTargets,
        "ironledger-conductor",
    )
    .await;
    cmd(
        &engine,
        node,
        NodeCommand::FinishUndeploy,
        "ironledger-conductor",
    )
    .await;
    common::audit::target(&engine, node, "vol-c", SECRET_A).await;
    let before = head(&engine).await;
    let out = d.ok(&["plan", "node-0", "-o", "json"]).await;
    no_secrets(out.as_bytes(), "plan -o json");
    let plan: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(plan["node"], node.to_string());
    assert!(plan.get("refused").is_none(), "{plan}");
    let steps: Vec<&str> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(steps.first(), Some(&"request"));
    assert_eq!(steps.last(), Some(&"finish"));
    assert_eq!(plan["steps"][0]["records"], json!(["DeployRequested"]));
    assert_eq!(
        plan["steps"].as_array().unwrap().last().unwrap()["records"],
        json!(["Deployed"])
    );
    let text = d.ok(&["plan", "node-0"]).await;
    no_secrets(text.as_bytes(), "plan");
    assert!(
        text.starts_with(&format!("Deploy of node {node} (node-0), now available")),
        "{text}"
    );
    assert!(text.contains("records: DeployRequested"), "{text}");
    assert_eq!(head(&engine).await, before, "planning recorded nothing");
}
