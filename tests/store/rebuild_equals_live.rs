//! A randomized history of thousands of commands (legal and illegal, from
//! several concurrent writers), then: every projection replayed from the log
//! into a scratch model must equal the live one, the `nodes` model must equal
//! the write model, and `rebuild` must reproduce the live model exactly.
//!
//! The seed is printed; set `IRONLEDGER_TEST_SEED` to replay a failing history.

use crate::common;

use ironledger::api::error::HttpStatus;
use ironledger::domain::hardware::HardwareCatalog;
use ironledger::domain::node::commands::{
    EnrollNode, NewConnector, NewPort, NewTarget, ProvisionRequest,
};
use ironledger::domain::patch::PatchOp;
use ironledger::domain::state::ProvisionState;
use ironledger::domain::{Node, NodeCommand, NodeServices};
use ironledger::engine::{Engine, Meta};
use ironledger::store::Opened;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map};
use std::collections::BTreeMap;
use std::sync::Arc;
use uuid::Uuid;

const VERBS: &[&str] = &[
    "manage", "provide", "active", "deploy", "deleted", "undeploy", "rebuild", "abort", "inspect",
    "adopt",
];

/// The command that moves a node along its normal life from `state`.
fn next_step(state: ProvisionState) -> NodeCommand {
    use ProvisionState::*;
    let verb = |v: &str| NodeCommand::Provision(ProvisionRequest::verb(v));
    match state {
        Enroll => verb("manage"),
        Manageable => verb("provide"),
        Available => verb("deploy"),
        Deploying => NodeCommand::FinishDeploy,
        Adopting => NodeCommand::FinishAdopt,
        Active => verb("undeploy"),
        Deleting => NodeCommand::PurgeTargets,
        DeployFailed | Error => verb("undeploy"),
        _ => verb("manage"),
    }
}

/// A new iSCSI target with `boot_index` on a random volume, with the
/// properties a boot script needs.
fn create_target(rng: &mut StdRng, boot_index: i64) -> NodeCommand {
    NodeCommand::CreateTarget(NewTarget {
        uuid: Uuid::new_v4(),
        volume_type: "iscsi".into(),
        boot_index,
        volume_id: format!("vol-{}", rng.gen_range(0..100)),
        properties: json!({"target_iqn": "iqn.x", "target_lun": 0,
                           "target_portal": "192.0.2.10:3260"})
        .as_object()
        .unwrap()
        .clone(),
        extra: Map::new(),
    })
}

/// A random command for `node`, mostly legal: it follows the node's life,
/// edits it, and adds or removes children it has; a share of illegal commands
/// (wrong state, duplicates, missing children) checks that refusals leave no trace.
fn random_command(rng: &mut StdRng, node: Uuid, known: &Node) -> NodeCommand {
    if !known.exists {
        return NodeCommand::Enroll(EnrollNode {
            uuid: node,
            name: if rng.gen_bool(0.5) {
                Some(format!("n{}", rng.gen_range(0..40)))
            } else {
                None
            },
            driver: "fake-hardware".into(),
            interfaces: BTreeMap::new(),
            properties: Map::new(),
            instance_info: Map::new(),
            driver_info: Map::new(),
            extra: Map::new(),
            fields: BTreeMap::new(),
            initial_state: ProvisionState::Enroll,
        });
    }
    let mac = format!(
        "52:54:00:{:02x}:{:02x}:{:02x}",
        rng.gen::<u8>(),
        rng.gen::<u8>(),
        rng.gen::<u8>() % 8
    );
    let patch = |path: &str, value: serde_json::Value| NodeCommand::Patch {
        ops: vec![PatchOp {
            op: "add".into(),
            path: path.into(),
            value: Some(value),
        }],
    };
    match rng.gen_range(0..40) {
        // A deploy is refused for a node that cannot boot: mostly give an
        // available node what it lacks first, so deploys happen.
        0..=9
            if known.state() == ProvisionState::Available
                && ironledger::domain::interface_validation::deploy_refusal(known).is_some()
                && rng.gen_bool(0.9) =>
        {
            if known.interface("storage") == "noop" {
                patch("/storage_interface", json!("external"))
            } else if known.ports.is_empty() {
                NodeCommand::AddPort(NewPort {
                    uuid: Uuid::new_v4(),
                    address: mac,
                    pxe_enabled: true,
                    extra: Map::new(),
                    ..Default::default()
                })
            } else if !known.targets.iter().any(|t| t.boot_index == 0) {
                create_target(rng, 0)
            } else {
                patch("/properties/capabilities", json!("iscsi_boot:True"))
            }
        }
        0..=9 => next_step(known.state()),
        10 => NodeCommand::Provision(ProvisionRequest::verb(VERBS[rng.gen_range(0..VERBS.len())])),
        11 => [
            NodeCommand::FailDeploy {
                error: "boom".into(),
            },
            NodeCommand::FinishUndeploy,
            NodeCommand::FailUndeploy { error: "x".into() },
        ][rng.gen_range(0..3)]
        .clone(),
        12 | 13 => patch("/properties/capabilities", json!("iscsi_boot:True")),
        14 | 15 => patch(
            "/storage_interface",
            json!(["cinder", "external", "noop"][rng.gen_range(0..3)]),
        ),
        16 => patch("/name", json!(format!("n{}", rng.gen_range(0..40)))),
        17 | 18 => patch(
            &format!("/extra/k{}", rng.gen_range(0..5)),
            json!(rng.gen::<u16>()),
        ),
        19 | 20 => NodeCommand::SetPowerState {
            at: None,
            target: ["power on", "power off", "power off", "rebooting"][rng.gen_range(0..4)].into(),
        },
        21 => {
            if rng.gen_bool(0.5) {
                NodeCommand::SetMaintenance {
                    reason: Some("r".into()),
                }
            } else {
                NodeCommand::UnsetMaintenance
            }
        }
        22 | 23 => NodeCommand::AddConnector(NewConnector {
            uuid: Uuid::new_v4(),
            kind: "iqn".into(),
            connector_id: format!("iqn.2017-08.org.openstack.{}", rng.gen_range(0..60)),
            extra: Map::new(),
        }),
        24 => match known.connectors.first() {
            Some(c) => NodeCommand::RemoveConnector { uuid: c.uuid },
            None => NodeCommand::RemoveConnector {
                uuid: Uuid::new_v4(),
            },
        },
        25 => match known.connectors.last() {
            Some(c) => NodeCommand::PatchConnector {
                uuid: c.uuid,
                ops: vec![PatchOp {
                    op: "add".into(),
                    path: "/extra/seen".into(),
                    value: Some(json!(rng.gen::<u8>())),
                }],
            },
            None => NodeCommand::PatchConnector {
                uuid: Uuid::new_v4(),
                ops: vec![],
            },
        },
        26..=28 => {
            let boot_index = rng.gen_range(0..3);
            create_target(rng, boot_index)
        }
        29 => match known.targets.first() {
            Some(t) => NodeCommand::PatchTarget {
                uuid: t.uuid,
                ops: vec![PatchOp {
                    op: "replace".into(),
                    path: "/boot_index".into(),
                    value: Some(json!(rng.gen_range(0..4))),
                }],
            },
            None => NodeCommand::DeleteTarget {
                uuid: Uuid::new_v4(),
            },
        },
        30 => match known.targets.last() {
            Some(t) => NodeCommand::DeleteTarget { uuid: t.uuid },
            None => NodeCommand::DeleteTarget {
                uuid: Uuid::new_v4(),
            },
        },
        31..=33 => NodeCommand::AddPort(NewPort {
            uuid: Uuid::new_v4(),
            address: mac,
            pxe_enabled: true,
            extra: Map::new(),
            ..Default::default()
        }),
        34 => match known.ports.first() {
            Some(p) => NodeCommand::RemovePort { uuid: p.uuid },
            None => NodeCommand::RemovePort {
                uuid: Uuid::new_v4(),
            },
        },
        35 => NodeCommand::Delete,
        _ => next_step(known.state()),
    }
}

async fn randomized_history_rebuilds_to_the_live_model(t: common::TestStore, commands: usize) {
    let seed: u64 = std::env::var("IRONLEDGER_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("seed {seed}");
    let mut catalog = HardwareCatalog::default();
    catalog
        .interfaces
        .get_mut("storage")
        .unwrap()
        .enabled
        .push("external".into());
    let engine = Arc::new(Engine::on(
        Opened {
            store: t.store.clone(),
            pg_pool: t.pg_pool.clone(),
        },
        NodeServices { catalog },
    ));
    let nodes: Arc<Vec<Uuid>> = Arc::new((0..24).map(|_| Uuid::new_v4()).collect());

    // Four concurrent writers, each with its own deterministic stream.
    let writers = 4;
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let (engine, nodes) = (engine.clone(), nodes.clone());
            tokio::spawn(async move {
                let mut rng = StdRng::seed_from_u64(seed.wrapping_add(w as u64));
                let (mut ok, mut refused) = (0, 0);
                for _ in 0..commands / writers {
                    let node = nodes[rng.gen_range(0..nodes.len())];
                    let known = engine.load_node(node).await.unwrap();
                    let cmd = random_command(&mut rng, node, &known);
                    let meta = Meta::actor(&format!("writer-{w}"));
                    match engine.node(node, cmd, &meta).await {
                        Ok(()) => ok += 1,
                        Err(e) if e.status() < 500 => refused += 1,
                        Err(e) => panic!("store failure: {e}"),
                    }
                }
                (ok, refused)
            })
        })
        .collect();
    let (mut ok, mut refused) = (0, 0);
    for task in tasks {
        let (o, r) = task.await.unwrap();
        ok += o;
        refused += r;
    }
    println!("{ok} commands applied, {refused} refused");
    assert!(
        ok > commands / 2,
        "the history should be mostly real changes ({ok} applied)"
    );

    engine.projector().catch_up().await.unwrap();
    common::numbered(t.store.as_ref()).await;
    let head = t.store.head().await.unwrap();
    // (Some applied commands record nothing: a no-op patch, purging no targets.)
    assert!(
        head as usize >= ok / 2,
        "{head} events for {ok} applied commands"
    );
    assert!(engine.projector().low_water_mark().await.unwrap() >= head);
    // A deploy is accepted only for a node that can boot: the random history
    // must still hold deploys (and what follows them), not only refusals.
    let feed = t.store.read_feed(0, head as u32).await.unwrap();
    let deploys = feed
        .iter()
        .filter(|e| e.event_type == "DeployRequested")
        .count();
    println!("{deploys} deploys accepted");
    assert!(
        deploys >= 10,
        "only {deploys} deploys accepted: the history no longer exercises them"
    );

    // The nodes read model equals the write model, node by node.
    for n in nodes.iter() {
        let write = engine.load_node(*n).await.unwrap();
        let read = t.store.doc_get("nodes", &n.to_string()).await.unwrap();
        match read {
            Some(doc) => assert_eq!(
                serde_json::from_value::<Node>(doc["state"].clone()).unwrap(),
                write
            ),
            None => assert!(!write.exists, "node {n} exists but has no read model"),
        }
    }

    for name in engine.projector().names() {
        let live = t.store.doc_list(name).await.unwrap();
        let scratch = format!("{name}~verify");
        engine
            .projector()
            .replay_into(name, &scratch, head)
            .await
            .unwrap();
        let replayed = t.store.doc_list(&scratch).await.unwrap();
        assert_eq!(replayed.len(), live.len(), "{name}: document count");
        assert!(
            replayed == live,
            "{name}: replay differs from the live model"
        );
        t.store.drop_model(&scratch).await.unwrap();

        engine.projector().rebuild(name).await.unwrap();
        assert!(
            t.store.doc_list(name).await.unwrap() == live,
            "{name}: rebuild differs"
        );
        // The rebuilt model was swapped in at the head: inline at once.
        assert!(ironledger::store::is_inline(
            t.store.checkpoint(name).await.unwrap()
        ));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory() {
    randomized_history_rebuilds_to_the_live_model(common::memory().await, 4000).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite() {
    randomized_history_rebuilds_to_the_live_model(common::sqlite().await, 2000).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres() {
    randomized_history_rebuilds_to_the_live_model(common::postgres().await, 2000).await
}
