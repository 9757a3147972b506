//! Crash safety of deploy and undeploy, with the real binary, a real store and
//! the real Cinder rig:
//!
//! - the server is SIGKILLed at every step of deploy and undeploy in turn
//!   (`IRONLEDGER_TEST_CRASH_AT`), restarted, and must finish the job with no
//!   step lost and none shown twice (one Cinder attachment, each event once);
//! - two servers share one PostgreSQL database: every node is worked by exactly
//!   one of them, and when the one holding a node dies, the other takes over.
//!
//! The test drives nodes through its own engine on the same database (the
//! servers follow the log), so it exercises exactly what a second ironledger
//! process would see.

use crate::common;

use ironledger::domain::node::commands::{
    EnrollNode, NewConnector, NewPort, NewTarget, ProvisionRequest,
};
use ironledger::domain::state::ProvisionState;
use ironledger::domain::{Node, NodeCommand, NodeServices};
use ironledger::engine::{Engine, Meta};
use ironledger::store::DatabaseUrl;
use serde_json::{json, Map};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

use common::bmc::{system_id, Rig, PASSWORD};
use common::cinder::{client as cinder, create_volume, endpoint as cinder_endpoint};
use common::serve::{Options, Server};

/// How these tests start `ironledger serve`: on `database`, with short
/// leases, the Cinder rig, a master key shared by every server of the run,
/// warnings only in its (discarded) log, and killing itself at `crash_at`.
trait Start {
    fn start(dir: &Path, database: &str, crash_at: Option<&str>) -> Self;
}

impl Start for Server {
    fn start(dir: &Path, database: &str, crash_at: Option<&str>) -> Server {
        let conf = format!(
            "[DEFAULT]\nenabled_storage_interfaces = cinder,external,noop\n\
             [database]\nconnection = {database}\n\
             [deploy]\nhttp_root = {}\n\
             [conductor]\nlease_seconds = 2\n\
             [cinder]\nendpoint_override = {}\naction_retries = 1\naction_retry_interval = 0.2\n\
             [secrets]\nmaster_key_file = {}\n",
            dir.join("httpboot").display(),
            cinder_endpoint(),
            // Every process sharing a database needs the same master key.
            std::env::temp_dir()
                .join(format!(
                    "ironledger-crash-safety-{}.key",
                    std::process::id()
                ))
                .display()
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
}

fn meta() -> Meta {
    Meta::actor("crash-test")
}

async fn cinder_node(engine: &Engine, volume: &str) -> Uuid {
    node_of(engine, volume, "fake-hardware", Map::new()).await
}

/// The guide's cinder node of `driver` with `driver_info`.
async fn node_of(
    engine: &Engine,
    volume: &str,
    driver: &str,
    driver_info: Map<String, serde_json::Value>,
) -> Uuid {
    let id = Uuid::new_v4();
    let mut interfaces = BTreeMap::new();
    interfaces.insert("boot".to_string(), Some("ipxe".to_string()));
    interfaces.insert("storage".to_string(), Some("cinder".to_string()));
    let cmds = vec![
        NodeCommand::Enroll(EnrollNode {
            uuid: id,
            name: None,
            driver: driver.into(),
            interfaces,
            properties: json!({"capabilities": "iscsi_boot:True"})
                .as_object()
                .unwrap()
                .clone(),
            instance_info: Map::new(),
            driver_info,
            extra: Map::new(),
            fields: BTreeMap::new(),
            initial_state: ProvisionState::Enroll,
        }),
        NodeCommand::AddConnector(NewConnector {
            uuid: Uuid::new_v4(),
            kind: "iqn".into(),
            connector_id: format!("iqn.2017-08.org.openstack.{id}"),
            extra: Map::new(),
        }),
        NodeCommand::AddPort(NewPort {
            uuid: Uuid::new_v4(),
            address: format!(
                "52:54:00:{:02x}:{:02x}:{:02x}",
                rand::random::<u8>(),
                rand::random::<u8>(),
                rand::random::<u8>()
            ),
            pxe_enabled: true,
            extra: Map::new(),
            ..Default::default()
        }),
        NodeCommand::CreateTarget(NewTarget {
            uuid: Uuid::new_v4(),
            volume_type: "iscsi".into(),
            boot_index: 0,
            volume_id: volume.into(),
            properties: Map::new(),
            extra: Map::new(),
        }),
        NodeCommand::Provision(ProvisionRequest::verb("manage")),
        NodeCommand::Provision(ProvisionRequest::verb("provide")),
    ];
    for c in cmds {
        engine.node(id, c, &meta()).await.unwrap();
    }
    id
}

async fn wait_state(engine: &Engine, id: Uuid, want: ProvisionState, secs: u64) -> Node {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let n = engine.load_node(id).await.unwrap();
        if n.state() == want {
            return n;
        }
        if Instant::now() > deadline {
            panic!(
                "node {id} is {} (last_error {:?}), wanted {want}",
                n.state(),
                n.last_error
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn count(engine: &Engine, id: Uuid, event_type: &str) -> usize {
    engine
        .store()
        .load("Node", &id.to_string())
        .await
        .unwrap()
        .iter()
        .filter(|e| e.event_type == event_type)
        .count()
}

/// After a full deploy: exactly one attachment, and each step recorded once.
async fn assert_deployed_once(engine: &Engine, id: Uuid, volume: &str, root: &Path, point: &str) {
    let v = cinder().get_volume(volume).await.unwrap();
    assert_eq!(
        (v.status.as_str(), v.attachments.len()),
        ("in-use", 1),
        "{point}: one Cinder attachment"
    );
    for t in [
        "DeployRequested",
        "VolumesAttaching",
        "VolumesAttached",
        "BootConfigWritten",
        "Deployed",
    ] {
        assert_eq!(count(engine, id, t).await, 1, "{point}: {t} recorded once");
    }
    let script =
        std::fs::read_to_string(root.join("httpboot").join(id.to_string()).join("config")).unwrap();
    assert!(
        script.contains(&format!("iqn.2010-10.org.openstack:volume-{volume}")),
        "{point}: script\n{script}"
    );
}

async fn assert_undeployed_once(engine: &Engine, id: Uuid, volume: &str, root: &Path, point: &str) {
    let v = cinder().get_volume(volume).await.unwrap();
    assert_eq!(
        (v.status.as_str(), v.attachments.len()),
        ("available", 0),
        "{point}: detached"
    );
    for t in [
        "UndeployRequested",
        "BootConfigRemoved",
        "VolumesDetached",
        "TargetsPurged",
        "Undeployed",
    ] {
        assert_eq!(count(engine, id, t).await, 1, "{point}: {t} recorded once");
    }
    assert!(
        !root.join("httpboot").join(id.to_string()).exists(),
        "{point}: script removed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_at_every_step_loses_nothing_and_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.db");
    let url = format!("sqlite:///{}", db.display());
    let engine = Arc::new(
        Engine::open(&DatabaseUrl::Sqlite(db.clone()), NodeServices::default())
            .await
            .unwrap(),
    );

    for point in [
        "deploy:before-attach",
        "deploy:after-intent",
        "deploy:after-reserve",
        "deploy:after-attach",
        "deploy:after-record-attach",
        "deploy:after-write",
        "deploy:after-record-write",
    ] {
        let volume = create_volume(false).await;
        let id = cinder_node(&engine, &volume).await;
        {
            let mut doomed = Server::start(dir.path(), &url, Some(point));
            engine
                .node(
                    id,
                    NodeCommand::Provision(ProvisionRequest::verb("deploy")),
                    &meta(),
                )
                .await
                .unwrap();
            doomed.wait_for_crash(point);
        }
        let _server = Server::start(dir.path(), &url, None);
        wait_state(&engine, id, ProvisionState::Active, 60).await;
        assert_deployed_once(&engine, id, &volume, dir.path(), point).await;
    }

    for point in [
        "undeploy:after-remove",
        "undeploy:after-detach",
        "undeploy:before-purge",
    ] {
        let volume = create_volume(false).await;
        let id = cinder_node(&engine, &volume).await;
        {
            let _server = Server::start(dir.path(), &url, None);
            engine
                .node(
                    id,
                    NodeCommand::Provision(ProvisionRequest::verb("deploy")),
                    &meta(),
                )
                .await
                .unwrap();
            wait_state(&engine, id, ProvisionState::Active, 60).await;
        }
        {
            let mut doomed = Server::start(dir.path(), &url, Some(point));
            engine
                .node(
                    id,
                    NodeCommand::Provision(ProvisionRequest::verb("undeploy")),
                    &meta(),
                )
                .await
                .unwrap();
            doomed.wait_for_crash(point);
        }
        let _server = Server::start(dir.path(), &url, None);
        wait_state(&engine, id, ProvisionState::Available, 60).await;
        assert_undeployed_once(&engine, id, &volume, dir.path(), point).await;
    }
}

/// A redfish node on the project's Redfish emulator.
async fn redfish_node(engine: &Engine, volume: &str, rig: &Rig) -> Uuid {
    let info = json!({"redfish_address": rig.addr, "redfish_username": "admin",
                      "redfish_password": PASSWORD, "redfish_auth_type": "basic",
                      "redfish_system_id": format!("/redfish/v1/Systems/{}", system_id(1))});
    node_of(engine, volume, "redfish", info.as_object().unwrap().clone()).await
}

/// The Redfish resets the emulator got since `from` (its access log index).
fn resets(rig: &Rig, from: usize) -> Vec<String> {
    rig.calls()
        .into_iter()
        .skip(from)
        .filter(|c| c.contains("ComputerSystem.Reset"))
        .collect()
}

/// The server is SIGKILLed at each BMC step of a redfish node's deploy,
/// undeploy and power change in turn, and restarted: the job finishes, each
/// step is recorded once, and the machine is never powered off again once
/// the deploy has powered it on (no second boot).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_at_every_bmc_step_finishes_the_job_and_boots_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash-bmc.db");
    let url = format!("sqlite:///{}", db.display());
    let engine = Arc::new(
        Engine::open(&DatabaseUrl::Sqlite(db.clone()), NodeServices::default())
            .await
            .unwrap(),
    );
    let rig = Rig::redfish_quick(1);
    let power = || async { rig.system(1).await["PowerState"].clone() };
    let provision = |id: Uuid, verb: &'static str| {
        let engine = engine.clone();
        async move {
            engine
                .node(
                    id,
                    NodeCommand::Provision(ProvisionRequest::verb(verb)),
                    &meta(),
                )
                .await
                .unwrap()
        }
    };

    for point in [
        "bmc:before-power-off",
        "bmc:after-power-off",
        "bmc:before-boot-device",
        "bmc:after-boot-device",
        "bmc:before-power-on",
        "bmc:after-power-on",
    ] {
        let volume = create_volume(false).await;
        let id = redfish_node(&engine, &volume, &rig).await;
        let from = rig.calls().len();
        {
            let mut doomed = Server::start(dir.path(), &url, Some(point));
            provision(id, "deploy").await;
            doomed.wait_for_crash(point);
        }
        let server = Server::start(dir.path(), &url, None);
        let node = wait_state(&engine, id, ProvisionState::Active, 90).await;
        assert_deployed_once(&engine, id, &volume, dir.path(), point).await;
        assert_eq!(node.power_state.as_deref(), Some("power on"), "{point}");
        assert_eq!(count(&engine, id, "BootDeviceSet").await, 1, "{point}");
        let system = rig.system(1).await;
        assert_eq!(system["PowerState"], "On", "{point}");
        assert_eq!(system["Boot"]["BootSourceOverrideTarget"], "Pxe", "{point}");
        let r = resets(&rig, from);
        let first_on = r
            .iter()
            .position(|c| c.contains("\"On\""))
            .unwrap_or_else(|| panic!("{point}: {r:#?}"));
        assert!(
            !r[first_on..].iter().any(|c| c.contains("ForceOff")),
            "{point}: powered off after the deploy powered it on: {r:#?}"
        );
        // Undeploy (and power off) for the next round.
        provision(id, "undeploy").await;
        wait_state(&engine, id, ProvisionState::Available, 60).await;
        drop(server);
        assert_eq!(power().await, "Off", "{point}");
    }

    for point in ["bmc:before-power-off", "bmc:after-power-off"] {
        let volume = create_volume(false).await;
        let id = redfish_node(&engine, &volume, &rig).await;
        {
            let _server = Server::start(dir.path(), &url, None);
            provision(id, "deploy").await;
            wait_state(&engine, id, ProvisionState::Active, 60).await;
        }
        {
            let mut doomed = Server::start(dir.path(), &url, Some(point));
            provision(id, "undeploy").await;
            doomed.wait_for_crash(point);
        }
        let _server = Server::start(dir.path(), &url, None);
        let node = wait_state(&engine, id, ProvisionState::Available, 90).await;
        assert_undeployed_once(&engine, id, &volume, dir.path(), point).await;
        assert_eq!(node.power_state.as_deref(), Some("power off"), "{point}");
        assert_eq!(power().await, "Off", "{point}");
    }

    // A power change: the request survives the crash and is done once.
    let volume = create_volume(false).await;
    let id = redfish_node(&engine, &volume, &rig).await;
    for (point, target, state) in [
        ("power:before-bmc", "power on", "On"),
        ("power:before-record", "power off", "Off"),
    ] {
        let from = rig.calls().len();
        {
            let mut doomed = Server::start(dir.path(), &url, Some(point));
            engine
                .node(
                    id,
                    NodeCommand::RequestPower {
                        at: None,
                        target: target.into(),
                        timeout: None,
                    },
                    &meta(),
                )
                .await
                .unwrap();
            doomed.wait_for_crash(point);
        }
        let _server = Server::start(dir.path(), &url, None);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let n = engine.load_node(id).await.unwrap();
            if n.power_request.is_none() {
                assert_eq!(
                    n.power_state.as_deref(),
                    Some(target),
                    "{point}: {:?}",
                    n.last_error
                );
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{point}: the power change never finished"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(power().await, state, "{point}");
        let r = resets(&rig, from);
        assert_eq!(r.len(), 1, "{point}: one reset: {r:#?}");
    }
    assert_eq!(count(&engine, id, "PowerChangeDone").await, 2);
}

/// A fresh PostgreSQL database for servers that must share it.
async fn fresh_pg_database() -> (String, impl Drop) {
    use sqlx::{ConnectOptions, Connection};
    let base = common::test_url();
    let options: sqlx::postgres::PgConnectOptions = base.parse().unwrap();
    let name = format!("ironledger_pm_{}", Uuid::new_v4().simple());
    let mut admin = options
        .clone()
        .database("postgres")
        .connect()
        .await
        .expect("PostgreSQL must be running");
    sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .unwrap();
    admin.close().await.unwrap();
    struct DropDb(String, sqlx::postgres::PgConnectOptions);
    impl Drop for DropDb {
        fn drop(&mut self) {
            let (name, options) = (self.0.clone(), self.1.clone());
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    if let Ok(mut admin) = options.database("postgres").connect().await {
                        let _ =
                            sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                                .execute(&mut admin)
                                .await;
                    }
                });
            })
            .join()
            .unwrap();
        }
    }
    let url = format!("{}/{name}", base.rsplit_once('/').unwrap().0);
    (url, DropDb(name, options))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_share_the_work_and_take_over_from_a_dead_one() {
    let (url, _guard) = fresh_pg_database().await;
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    // Both serve the same boot root, as two conductors behind one HTTP server would.
    let shared_root = dir_a.path().to_path_buf();
    let engine = Arc::new(
        Engine::open(&DatabaseUrl::Postgres(url.clone()), NodeServices::default())
            .await
            .unwrap(),
    );

    // 1. Two healthy servers, six nodes: each node deployed exactly once.
    let _a = Server::start(dir_a.path(), &url, None);
    let _b = Server::start(&link_root(dir_b.path(), &shared_root), &url, None);
    let mut nodes = Vec::new();
    for _ in 0..6 {
        let v = create_volume(false).await;
        nodes.push((cinder_node(&engine, &v).await, v));
    }
    for (id, _) in &nodes {
        engine
            .node(
                *id,
                NodeCommand::Provision(ProvisionRequest::verb("deploy")),
                &meta(),
            )
            .await
            .unwrap();
    }
    for (id, v) in &nodes {
        wait_state(&engine, *id, ProvisionState::Active, 60).await;
        assert_deployed_once(&engine, *id, v, &shared_root, "two servers").await;
    }
    drop(_a);
    drop(_b);

    // 2. The server working a node dies (SIGKILL right after Cinder attached the
    //    volume, lease held); the other takes over once the lease expires.
    let v = create_volume(false).await;
    let id = cinder_node(&engine, &v).await;
    let mut doomed = Server::start(dir_a.path(), &url, Some("deploy:after-attach"));
    engine
        .node(
            id,
            NodeCommand::Provision(ProvisionRequest::verb("deploy")),
            &meta(),
        )
        .await
        .unwrap();
    doomed.wait_for_crash("deploy:after-attach");
    let _survivor = Server::start(&link_root(dir_b.path(), &shared_root), &url, None);
    wait_state(&engine, id, ProvisionState::Active, 60).await;
    assert_deployed_once(&engine, id, &v, &shared_root, "takeover").await;
}

/// Gives server B's data directory the same `httpboot` as A's (a symlink).
fn link_root(dir: &Path, shared: &Path) -> PathBuf {
    let link = dir.join("httpboot");
    if std::fs::symlink_metadata(&link).is_err() {
        std::fs::create_dir_all(shared.join("httpboot")).unwrap();
        std::os::unix::fs::symlink(shared.join("httpboot"), &link).unwrap();
    }
    dir.to_path_buf()
}
