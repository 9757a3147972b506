//! The engine on each backend: read-your-writes, uniqueness across nodes under
//! concurrency, no lost updates, who/why/when on every event. The same suite
//! runs on memory, SQLite and PostgreSQL.

use crate::common;

use ironledger::api::error::HttpStatus;
use ironledger::domain::hardware::HardwareCatalog;
use ironledger::domain::node::commands::{
    EnrollNode, NewConnector, NewPort, NewTarget, ProvisionRequest,
};
use ironledger::domain::patch::PatchOp;
use ironledger::domain::{DomainError, NodeCommand, NodeServices, VolumeCommand};
use ironledger::engine::{Engine, EngineError, Meta};
use ironledger::store::Opened;
use serde_json::{json, Map};
use std::sync::Arc;
use uuid::Uuid;

fn engine_on(t: &common::TestStore) -> Arc<Engine> {
    let mut catalog = HardwareCatalog::default();
    catalog
        .interfaces
        .get_mut("storage")
        .unwrap()
        .enabled
        .push("external".into());
    let opened = Opened {
        store: t.store.clone(),
        pg_pool: t.pg_pool.clone(),
    };
    Arc::new(Engine::on(opened, NodeServices { catalog }))
}

fn enroll(uuid: Uuid, name: Option<&str>) -> NodeCommand {
    NodeCommand::Enroll(EnrollNode {
        name: name.map(String::from),
        ..EnrollNode::new(uuid, "fake-hardware")
    })
}

fn connector(kind: &str, id: &str) -> NodeCommand {
    NodeCommand::AddConnector(NewConnector {
        uuid: Uuid::new_v4(),
        kind: kind.into(),
        connector_id: id.into(),
        extra: Map::new(),
    })
}

fn meta() -> Meta {
    Meta {
        actor: "alice".into(),
        reason: Some("rack 7 bring-up".into()),
        request_id: Some("req-1".into()),
        project: None,
        idempotency_key: None,
    }
}

async fn read_your_writes(t: common::TestStore) {
    let engine = engine_on(&t);
    let node = Uuid::new_v4();
    engine
        .node(node, enroll(node, Some("bfv-0")), &meta())
        .await
        .unwrap();
    let doc = t
        .store
        .doc_get("nodes", &node.to_string())
        .await
        .unwrap()
        .expect("node readable at once");
    assert_eq!(doc["state"]["name"], "bfv-0");
    assert_eq!(doc["state"]["provision_state"], "enroll");
    assert_eq!(doc["state"]["interfaces"]["storage"], "noop");

    let c = NewConnector {
        uuid: Uuid::new_v4(),
        kind: "iqn".into(),
        connector_id: "iqn.2017-08.org.openstack.n0".into(),
        extra: Map::new(),
    };
    engine
        .node(node, NodeCommand::AddConnector(c.clone()), &meta())
        .await
        .unwrap();
    let cdoc = t
        .store
        .doc_get("connectors", &c.uuid.to_string())
        .await
        .unwrap()
        .expect("connector readable at once");
    assert_eq!(cdoc["node_uuid"], node.to_string());
    assert_eq!(cdoc["type"], "iqn");

    let target = NewTarget {
        uuid: Uuid::new_v4(),
        volume_type: "iscsi".into(),
        boot_index: 0,
        volume_id: "vol-1".into(),
        properties: Map::new(),
        extra: Map::new(),
    };
    engine
        .node(node, NodeCommand::CreateTarget(target.clone()), &meta())
        .await
        .unwrap();
    assert!(t
        .store
        .doc_get("targets", &target.uuid.to_string())
        .await
        .unwrap()
        .is_some());

    let history = t.store.doc_list("node_history").await.unwrap();
    let entries: Vec<_> = history
        .iter()
        .filter(|(k, _)| k.starts_with(&node.to_string()))
        .collect();
    assert_eq!(entries.len(), 3, "one history entry per event");
    assert_eq!(entries[0].1["user"], "alice");
}

async fn every_event_carries_who_why_when(t: common::TestStore) {
    let engine = engine_on(&t);
    let node = Uuid::new_v4();
    engine
        .node(node, enroll(node, None), &meta())
        .await
        .unwrap();
    engine
        .node(
            node,
            NodeCommand::Provision(ProvisionRequest::verb("manage")),
            &meta(),
        )
        .await
        .unwrap();
    // The feed holds numbered events (PostgreSQL numbers them after commit,
    // held back by any older open transaction).
    common::numbered(t.store.as_ref()).await;
    let feed = t.store.read_feed(0, 100).await.unwrap();
    assert_eq!(feed.len(), 3);
    for e in &feed {
        assert_eq!(e.metadata["actor"], "alice");
        assert_eq!(e.metadata["reason"], "rack 7 bring-up");
        assert_eq!(e.metadata["request_id"], "req-1");
        let at = e.metadata["occurred_at"].as_str().expect("occurred_at");
        assert!(chrono::DateTime::parse_from_rfc3339(at).is_ok(), "{at}");
        assert_eq!(e.event_version, "1.0");
    }
    let types: Vec<&str> = feed.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "NodeEnrolled",
            "ProvisionStateChanged",
            "ProvisionStateChanged"
        ]
    );
}

/// Sixteen nodes race for one IQN: exactly one wins, the others get Ironic's 409.
async fn connector_race_has_one_winner(t: common::TestStore) {
    let engine = engine_on(&t);
    let nodes: Vec<Uuid> = (0..16).map(|_| Uuid::new_v4()).collect();
    for n in &nodes {
        engine.node(*n, enroll(*n, None), &meta()).await.unwrap();
    }
    let iqn = "iqn.2017-08.org.openstack.shared";
    let tasks: Vec<_> = nodes
        .iter()
        .map(|n| {
            let (engine, n) = (engine.clone(), *n);
            tokio::spawn(async move { engine.node(n, connector("iqn", iqn), &meta()).await })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => wins += 1,
            Err(EngineError::Domain(DomainError::Conflict(m))) => assert_eq!(
                m,
                format!("A volume connector with type iqn and connector ID {iqn} already exists.")
            ),
            Err(e) => panic!("unexpected error {e:?}"),
        }
    }
    assert_eq!(wins, 1);
    let holders: Vec<_> = t
        .store
        .doc_list("connectors")
        .await
        .unwrap()
        .into_iter()
        .filter(|(_, d)| d["connector_id"] == iqn)
        .collect();
    assert_eq!(holders.len(), 1, "exactly one connector in the read model");
    let owner = t
        .store
        .claim_owner("connector", &format!("iqn\n{iqn}"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(holders[0].1["node_uuid"], owner);

    // Once the winner gives the IQN up, another node may take it.
    let winner: Uuid = owner.parse().unwrap();
    let loser = *nodes.iter().find(|n| **n != winner).unwrap();
    let cuuid: Uuid = holders[0].0.parse().unwrap();
    engine
        .node(
            winner,
            NodeCommand::RemoveConnector { uuid: cuuid },
            &meta(),
        )
        .await
        .unwrap();
    engine
        .node(loser, connector("iqn", iqn), &meta())
        .await
        .unwrap();
}

async fn names_macs_and_uuids_are_unique_across_nodes(t: common::TestStore) {
    let engine = engine_on(&t);
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    engine
        .node(a, enroll(a, Some("same")), &meta())
        .await
        .unwrap();
    let err = engine
        .node(b, enroll(b, Some("same")), &meta())
        .await
        .unwrap_err();
    assert_eq!(err.status(), 409);
    assert_eq!(err.to_string(), "A node with name same already exists.");
    assert!(
        t.store
            .load("Node", &b.to_string())
            .await
            .unwrap()
            .is_empty(),
        "no partial write"
    );
    engine
        .node(b, enroll(b, Some("other")), &meta())
        .await
        .unwrap();

    let port = |mac: &str| {
        NodeCommand::AddPort(NewPort {
            uuid: Uuid::new_v4(),
            address: mac.into(),
            pxe_enabled: true,
            extra: Map::new(),
            ..Default::default()
        })
    };
    engine
        .node(a, port("52:54:00:12:34:56"), &meta())
        .await
        .unwrap();
    let err = engine
        .node(b, port("52:54:00:12:34:56"), &meta())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "A port with MAC address 52:54:00:12:34:56 already exists."
    );

    // Renaming frees the old name.
    let rename = |n: &str| NodeCommand::Patch {
        ops: vec![PatchOp {
            op: "replace".into(),
            path: "/name".into(),
            value: Some(json!(n)),
        }],
    };
    engine.node(a, rename("renamed"), &meta()).await.unwrap();
    engine.node(b, rename("same"), &meta()).await.unwrap();

    // Deleting a node frees everything it held.
    engine.node(a, NodeCommand::Delete, &meta()).await.unwrap();
    assert!(t
        .store
        .doc_get("nodes", &a.to_string())
        .await
        .unwrap()
        .is_none());
    engine
        .node(b, port("52:54:00:12:34:56"), &meta())
        .await
        .unwrap();
}

/// Concurrent patches of one node each land: every 200 means applied.
async fn concurrent_patches_lose_nothing(t: common::TestStore) {
    let engine = engine_on(&t);
    let node = Uuid::new_v4();
    engine
        .node(node, enroll(node, None), &meta())
        .await
        .unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let engine = engine.clone();
            tokio::spawn(async move {
                let ops = vec![PatchOp {
                    op: "add".into(),
                    path: format!("/extra/k{i}"),
                    value: Some(json!(i)),
                }];
                engine.node(node, NodeCommand::Patch { ops }, &meta()).await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().expect("every patch applies");
    }
    let doc = t
        .store
        .doc_get("nodes", &node.to_string())
        .await
        .unwrap()
        .unwrap();
    let extra = doc["state"]["extra"].as_object().unwrap();
    assert_eq!(extra.len(), 16, "{extra:?}");
}

async fn volume_refuses_a_second_node(t: common::TestStore) {
    let engine = engine_on(&t);
    let attach = |n: &str| VolumeCommand::Attach {
        volume_id: "vol-9".into(),
        node: n.into(),
        multiattach: false,
    };
    engine.volume("vol-9", attach("n1"), &meta()).await.unwrap();
    let err = engine
        .volume("vol-9", attach("n2"), &meta())
        .await
        .unwrap_err();
    assert_eq!(err.status(), 409);
    engine
        .volume(
            "vol-9",
            VolumeCommand::Detach { node: "n1".into() },
            &meta(),
        )
        .await
        .unwrap();
    engine.volume("vol-9", attach("n2"), &meta()).await.unwrap();
}

/// A committed command is a success even when the read models cannot apply
/// it (here: an undecodable event ahead of it stops the projector). A 500
/// would make the client retry a create that happened, and get a 409.
async fn a_committed_command_succeeds_when_the_read_models_stall(t: common::TestStore) {
    let engine = engine_on(&t);
    t.store
        .append(
            &[cqrs_es::persist::SerializedEvent {
                aggregate_id: Uuid::new_v4().to_string(),
                sequence: 1,
                aggregate_type: "Node".into(),
                event_type: "NodeEnrolled".into(),
                event_version: "1.0".into(),
                payload: json!({"NodeEnrolled": "not a node"}),
                metadata: json!({}),
            }],
            &[],
        )
        .await
        .unwrap();
    let id = Uuid::new_v4();
    engine
        .node(id, enroll(id, Some("after-garbage")), &meta())
        .await
        .expect("the command committed: not an error");
    assert!(engine.load_node(id).await.unwrap().exists);
    // Committed for good: a retry is the conflict a client would see.
    let again = engine
        .node(id, enroll(id, None), &meta())
        .await
        .unwrap_err();
    assert_eq!(again.status(), 409, "{again}");
}

/// One instance, one node (Ironic's `InstanceAssociated`, 409): Nova relies on
/// it. Clearing the instance frees it for another node.
async fn an_instance_belongs_to_one_node(t: common::TestStore) {
    let engine = engine_on(&t);
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let instance = Uuid::new_v4().to_string();
    let set = |op: &str| NodeCommand::Patch {
        ops: vec![PatchOp {
            op: op.into(),
            path: "/instance_uuid".into(),
            value: (op != "remove").then(|| json!(instance)),
        }],
    };
    engine.node(a, enroll(a, None), &meta()).await.unwrap();
    engine.node(b, enroll(b, None), &meta()).await.unwrap();
    engine.node(a, set("add"), &meta()).await.unwrap();
    let err = engine.node(b, set("add"), &meta()).await.unwrap_err();
    assert_eq!(err.status(), 409);
    assert_eq!(
        err.to_string(),
        format!("Instance {instance} is already associated with a node, it cannot be associated with this other node {b}")
    );
    engine.node(a, set("remove"), &meta()).await.unwrap();
    engine.node(b, set("add"), &meta()).await.unwrap();
}

macro_rules! suite {
    ($backend:ident) => {
        mod $backend {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn read_your_writes() {
                super::read_your_writes(common::$backend().await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn every_event_carries_who_why_when() {
                super::every_event_carries_who_why_when(common::$backend().await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn connector_race_has_one_winner() {
                super::connector_race_has_one_winner(common::$backend().await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn names_macs_and_uuids_are_unique_across_nodes() {
                super::names_macs_and_uuids_are_unique_across_nodes(common::$backend().await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn concurrent_patches_lose_nothing() {
                super::concurrent_patches_lose_nothing(common::$backend().await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn a_committed_command_succeeds_when_the_read_models_stall() {
                super::a_committed_command_succeeds_when_the_read_models_stall(
                    common::$backend().await,
                )
                .await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn an_instance_belongs_to_one_node() {
                super::an_instance_belongs_to_one_node(common::$backend().await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn volume_refuses_a_second_node() {
                super::volume_refuses_a_second_node(common::$backend().await).await
            }
        }
    };
}

suite!(memory);
suite!(sqlite);
suite!(postgres);
