//! Deploy and undeploy through the process manager: the guide's external path
//! (the script holds exactly the operator's portal/IQN/LUN/CHAP), the cinder
//! path against the real Cinder rig (attach, write-back, detach), failures with
//! Ironic's messages, and compensation when Cinder goes away mid-deploy.

use crate::common;

use ironledger::domain::hardware::HardwareCatalog;
use ironledger::domain::node::commands::{
    EnrollNode, NewConnector, NewPort, NewTarget, ProvisionRequest,
};
use ironledger::domain::patch::PatchOp;
use ironledger::domain::state::ProvisionState;
use ironledger::domain::{Node, NodeCommand, NodeServices};
use ironledger::effects::cinder::{CinderClient, CinderConfig};
use ironledger::effects::process_manager::{PmConfig, ProcessManager};
use ironledger::effects::{deploy_plan, ipxe};
use ironledger::engine::{Engine, Meta};
use ironledger::store::Opened;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

use common::cinder::{config as cinder_config, create_volume, endpoint as cinder_endpoint};

struct Rig {
    engine: Arc<Engine>,
    pm: Arc<ProcessManager>,
    root: PathBuf,
    services: NodeServices,
    _dir: tempfile::TempDir,
    _store: common::TestStore,
}

async fn rig(store: common::TestStore, cinder: Option<CinderConfig>) -> Rig {
    let mut catalog = HardwareCatalog::default();
    catalog
        .interfaces
        .get_mut("storage")
        .unwrap()
        .enabled
        .push("external".into());
    let engine = Arc::new(Engine::on(
        Opened {
            store: store.store.clone(),
            pg_pool: store.pg_pool.clone(),
        },
        NodeServices {
            catalog: catalog.clone(),
        },
    ));
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("httpboot");
    let mut config = PmConfig::new(root.clone(), cinder);
    config.poll = Duration::from_millis(50);
    config.sweep = Duration::from_millis(300);
    config.step_backoff = Duration::from_millis(100);
    config.step_attempts = 2;
    config.lease_ttl = Duration::from_secs(3);
    let pm = ProcessManager::new(engine.clone(), config).unwrap();
    pm.spawn();
    Rig {
        engine,
        pm,
        root,
        services: NodeServices { catalog },
        _dir: dir,
        _store: store,
    }
}

fn meta() -> Meta {
    Meta::actor("operator")
}

/// The guide's node: ipxe boot, the given storage interface, `iscsi_boot`
/// capability, an IQN connector, a PXE port, manageable → available.
async fn guide_node(r: &Rig, storage: &str) -> Uuid {
    let id = Uuid::new_v4();
    let mut interfaces = BTreeMap::new();
    interfaces.insert("boot".to_string(), Some("ipxe".to_string()));
    interfaces.insert("storage".to_string(), Some(storage.to_string()));
    let e = &r.engine;
    e.node(
        id,
        NodeCommand::Enroll(EnrollNode {
            uuid: id,
            name: None,
            driver: "fake-hardware".into(),
            interfaces,
            properties: Map::new(),
            instance_info: json!({"image_source": "http://example/img"})
                .as_object()
                .unwrap()
                .clone(),
            driver_info: Map::new(),
            extra: Map::new(),
            fields: BTreeMap::new(),
            initial_state: ProvisionState::Enroll,
        }),
        &meta(),
    )
    .await
    .unwrap();
    let patch = |op: &str, path: &str, value: Option<Value>| NodeCommand::Patch {
        ops: vec![PatchOp {
            op: op.into(),
            path: path.into(),
            value,
        }],
    };
    e.node(
        id,
        patch(
            "add",
            "/properties/capabilities",
            Some(json!("iscsi_boot:True")),
        ),
        &meta(),
    )
    .await
    .unwrap();
    e.node(
        id,
        patch("remove", "/instance_info/image_source", None),
        &meta(),
    )
    .await
    .unwrap();
    e.node(
        id,
        NodeCommand::AddConnector(NewConnector {
            uuid: Uuid::new_v4(),
            kind: "iqn".into(),
            connector_id: format!("iqn.2017-08.org.openstack.{id}"),
            extra: Map::new(),
        }),
        &meta(),
    )
    .await
    .unwrap();
    let mac = format!(
        "52:54:00:{:02x}:{:02x}:{:02x}",
        rand::random::<u8>(),
        rand::random::<u8>(),
        rand::random::<u8>()
    );
    e.node(
        id,
        NodeCommand::AddPort(NewPort {
            uuid: Uuid::new_v4(),
            address: mac,
            pxe_enabled: true,
            extra: Map::new(),
            ..Default::default()
        }),
        &meta(),
    )
    .await
    .unwrap();
    for verb in ["manage", "provide"] {
        e.node(
            id,
            NodeCommand::Provision(ProvisionRequest::verb(verb)),
            &meta(),
        )
        .await
        .unwrap();
    }
    id
}

async fn add_target(
    r: &Rig,
    id: Uuid,
    boot_index: i64,
    volume_id: &str,
    properties: Value,
) -> Uuid {
    let t = Uuid::new_v4();
    r.engine
        .node(
            id,
            NodeCommand::CreateTarget(NewTarget {
                uuid: t,
                volume_type: "iscsi".into(),
                boot_index,
                volume_id: volume_id.into(),
                properties: properties.as_object().cloned().unwrap_or_default(),
                extra: Map::new(),
            }),
            &meta(),
        )
        .await
        .unwrap();
    t
}

async fn provision(r: &Rig, id: Uuid, verb: &str) {
    r.engine
        .node(
            id,
            NodeCommand::Provision(ProvisionRequest::verb(verb)),
            &meta(),
        )
        .await
        .unwrap();
}

/// The boot target of the guide's "Use Without Cinder" example (with its
/// CHAP login when `chap`).
async fn guide_external_target(r: &Rig, id: Uuid, chap: bool) -> Uuid {
    let mut props = json!({"target_iqn": "iqn.2010-10.org.openstack:volume-00000001",
                           "target_lun": 0, "target_portal": "192.168.0.123:3260"});
    if chap {
        props["auth_method"] = json!("CHAP");
        props["auth_username"] = json!("ABC");
        props["auth_password"] = json!("XYZ");
    }
    add_target(r, id, 0, "04452bed-5367-4202-8bf5-de4335ac56d2", props).await
}

/// Waits until the node reaches a stable or failed state.
async fn settle(r: &Rig, id: Uuid, want: ProvisionState) -> Node {
    for _ in 0..300 {
        let n = r.engine.load_node(id).await.unwrap();
        if n.state() == want {
            return n;
        }
        if matches!(
            n.state(),
            ProvisionState::DeployFailed | ProvisionState::Error
        ) && n.state() != want
        {
            panic!(
                "node ended in {} ({:?}) instead of {want}",
                n.state(),
                n.last_error
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let n = r.engine.load_node(id).await.unwrap();
    panic!(
        "node stuck in {} (wanted {want}), last_error {:?}",
        n.state(),
        n.last_error
    );
}

/// Waits (up to 10 s) until the node holds no volume — its attach intent is
/// empty because Cinder confirmed every detach — and says whether it does.
async fn wait_holds_no_volumes(r: &Rig, id: Uuid) -> bool {
    for _ in 0..100 {
        if r.engine
            .load_node(id)
            .await
            .unwrap()
            .attached_volumes
            .is_empty()
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

fn event_types(store: &common::TestStore, id: Uuid) -> Vec<String> {
    futures::executor::block_on(store.store.load("Node", &id.to_string()))
        .unwrap()
        .into_iter()
        .map(|e| e.event_type)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn external_guide_example_deploys_and_undeploys() {
    let r = rig(common::memory().await, None).await;
    let id = guide_node(&r, "external").await;
    guide_external_target(&r, id, true).await;
    provision(&r, id, "deploy").await;
    let node = settle(&r, id, ProvisionState::Active).await;
    assert_eq!(node.power_state.as_deref(), Some("power on"));
    assert!(node.boot_config.is_some());

    let script = std::fs::read_to_string(r.root.join(id.to_string()).join("config")).unwrap();
    for line in [
        "set username ABC",
        "set password XYZ",
        &format!("set initiator-iqn iqn.2017-08.org.openstack.{id}"),
        "sanhook --drive 0x80 iscsi:192.168.0.123::3260:0:iqn.2010-10.org.openstack:volume-00000001 || goto fail_iscsi_retry",
        "sanboot --no-describe || goto fail_iscsi_retry",
    ] {
        assert!(script.lines().any(|l| l == line), "missing `{line}` in\n{script}");
    }
    let mac_file = r
        .root
        .join("pxelinux.cfg")
        .join(node.ports[0].address.replace(':', "-"));
    assert_eq!(
        std::fs::read_to_string(&mac_file).unwrap(),
        script,
        "the MAC entry point leads to the script"
    );
    assert!(r.root.join("boot.ipxe").exists());
    // Served over HTTP as well: the same HttpRoot resolves the MAC path.
    assert!(r
        .pm
        .http_root()
        .resolve(&format!(
            "pxelinux.cfg/{}",
            node.ports[0].address.replace(':', "-")
        ))
        .is_some());

    provision(&r, id, "undeploy").await;
    let node = settle(&r, id, ProvisionState::Available).await;
    assert!(node.targets.is_empty(), "targets purged");
    assert_eq!(node.connectors.len(), 1, "connectors stay");
    assert!(node.boot_config.is_none());
    assert!(!r.root.join(id.to_string()).exists());
    assert!(std::fs::symlink_metadata(&mac_file).is_err());
    let types = event_types(&r._store, id);
    for t in [
        "DeployRequested",
        "BootConfigWritten",
        "Deployed",
        "UndeployRequested",
        "BootConfigRemoved",
        "TargetsPurged",
        "Undeployed",
    ] {
        assert_eq!(
            types.iter().filter(|x| *x == t).count(),
            1,
            "{t} exactly once in {types:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cinder_path_attaches_writes_back_and_detaches() {
    let r = rig(
        common::memory().await,
        Some(cinder_config(&cinder_endpoint())),
    )
    .await;
    let cinder = CinderClient::new(cinder_config(&cinder_endpoint())).unwrap();
    let (boot, data) = (create_volume(false).await, create_volume(false).await);
    let id = guide_node(&r, "cinder").await;
    add_target(&r, id, 0, &boot, json!({})).await;
    add_target(&r, id, 1, &data, json!({})).await;
    provision(&r, id, "active").await;
    let node = settle(&r, id, ProvisionState::Active).await;

    for v in [&boot, &data] {
        let vol = cinder.get_volume(v).await.unwrap();
        assert_eq!(vol.status, "in-use");
        assert_eq!(vol.attachments.len(), 1);
        assert_eq!(vol.attachments[0].0, id.to_string());
    }
    let t0 = node.targets.iter().find(|t| t.boot_index == 0).unwrap();
    assert_eq!(
        t0.properties["target_iqn"],
        format!("iqn.2010-10.org.openstack:volume-{boot}")
    );
    assert_eq!(t0.properties["auth_method"], "CHAP");
    assert_eq!(
        node.driver_internal_info["boot_from_volume"],
        t0.uuid.to_string()
    );
    let script = std::fs::read_to_string(r.root.join(id.to_string()).join("config")).unwrap();
    assert!(
        script.contains(&format!(
            "iscsi:127.0.0.1::3260:0:iqn.2010-10.org.openstack:volume-{boot}"
        )),
        "{script}"
    );
    assert!(
        script.contains("--drive 0x81"),
        "the data volume is hooked too"
    );

    provision(&r, id, "undeploy").await;
    let node = settle(&r, id, ProvisionState::Available).await;
    assert!(node.targets.is_empty());
    assert!(node.attached_volumes.is_empty());
    for v in [&boot, &data] {
        let vol = cinder.get_volume(v).await.unwrap();
        assert_eq!(
            (vol.status.as_str(), vol.attachments.len()),
            ("available", 0)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deploy_failures_say_why() {
    let r = rig(
        common::memory().await,
        Some(cinder_config(&cinder_endpoint())),
    )
    .await;

    // What cannot boot is refused at the request, with Ironic's conductor
    // text, and the node stays where it was, its log untouched.
    let refused = |r: &Rig, id: Uuid| {
        let engine = r.engine.clone();
        async move {
            let before = engine.load_node(id).await.unwrap();
            let err = engine
                .node(
                    id,
                    NodeCommand::Provision(ProvisionRequest::verb("deploy")),
                    &meta(),
                )
                .await
                .expect_err("an unbootable deploy is refused");
            let after = engine.load_node(id).await.unwrap();
            assert_eq!(after.state(), ProvisionState::Available);
            assert_eq!(after, before, "a refused deploy writes nothing");
            let text = err.to_string();
            assert!(
                text.contains(&format!(
                    "Failed to validate deploy or power info for node {id}: "
                )),
                "{text}"
            );
            text
        }
    };

    // noop storage cannot boot from a volume.
    let noop = guide_node(&r, "noop").await;
    add_target(&r, noop, 0, "v", json!({})).await;
    assert!(refused(&r, noop).await.contains("noop storage interface"));

    // An iSCSI boot volume without the iscsi_boot capability (cinder rules, `docs/ironic-behaviour.md` §8.3).
    let nocap = guide_node(&r, "cinder").await;
    add_target(&r, nocap, 0, "v", json!({})).await;
    r.engine
        .node(
            nocap,
            NodeCommand::Patch {
                ops: vec![PatchOp {
                    op: "remove".into(),
                    path: "/properties/capabilities".into(),
                    value: None,
                }],
            },
            &meta(),
        )
        .await
        .unwrap();
    let text = refused(&r, nocap).await;
    assert!(
        text.contains("the capability 'iscsi_boot' is not set for the node"),
        "{text}"
    );

    // A volume Cinder does not have: the attach fails, nothing stays attached.
    let missing = guide_node(&r, "cinder").await;
    let good = create_volume(false).await;
    add_target(&r, missing, 0, &good, json!({})).await;
    add_target(&r, missing, 1, &Uuid::new_v4().to_string(), json!({})).await;
    provision(&r, missing, "deploy").await;
    let n = settle(&r, missing, ProvisionState::DeployFailed).await;
    assert!(
        n.last_error
            .as_deref()
            .unwrap()
            .starts_with("Attaching volumes failed"),
        "{:?}",
        n.last_error
    );
    let cinder = CinderClient::new(cinder_config(&cinder_endpoint())).unwrap();
    for _ in 0..60 {
        let n = r.engine.load_node(missing).await.unwrap();
        if n.attached_volumes.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(cinder.get_volume(&good).await.unwrap().status, "available");
    assert!(r
        .engine
        .load_node(missing)
        .await
        .unwrap()
        .attached_volumes
        .is_empty());

    // A failed deploy can be retried once fixed (deploy failed → deploying).
    r.engine
        .node(
            missing,
            NodeCommand::Provision(ProvisionRequest::verb("undeploy")),
            &meta(),
        )
        .await
        .unwrap();
    settle(&r, missing, ProvisionState::Available).await;
}

/// A TCP relay in front of Cinder that the test can cut, to play "Cinder goes
/// away" without touching the real service.
struct Relay {
    addr: String,
    open: Arc<std::sync::atomic::AtomicBool>,
}

async fn relay(upstream: &str) -> Relay {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let upstream = upstream.to_string();
    let open = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let gate = open.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut inbound, _)) = listener.accept().await else {
                return;
            };
            if !gate.load(std::sync::atomic::Ordering::SeqCst) {
                drop(inbound);
                continue;
            }
            let upstream = upstream.clone();
            let gate = gate.clone();
            tokio::spawn(async move {
                if let Ok(mut out) = tokio::net::TcpStream::connect(upstream).await {
                    // Cutting also drops the connections already open (the
                    // client keeps them alive between requests).
                    let cut = async {
                        while gate.load(std::sync::atomic::Ordering::SeqCst) {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut out) => {}
                        _ = cut => {}
                    }
                }
            });
        }
    });
    Relay { addr, open }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cinder_gone_mid_deploy_fails_clearly_and_cleans_up_once_back() {
    let real = cinder_endpoint();
    let (host_port, path) = real.trim_start_matches("http://").split_once('/').unwrap();
    let relay = relay(host_port).await;
    let via_relay = format!("http://{}/{path}", relay.addr);
    let mut config = cinder_config(&via_relay);
    config.timeout = Duration::from_secs(2);
    let r = rig(common::memory().await, Some(config)).await;
    let id = guide_node(&r, "cinder").await;
    let vol = create_volume(false).await;
    add_target(&r, id, 0, &vol, json!({})).await;

    // Cut Cinder off, then deploy: the attach cannot reach it.
    relay.open.store(false, std::sync::atomic::Ordering::SeqCst);
    provision(&r, id, "deploy").await;
    let n = settle(&r, id, ProvisionState::DeployFailed).await;
    let err = n.last_error.unwrap();
    assert!(
        err.contains("Failed to connect to block storage service"),
        "{err}"
    );
    assert!(
        !n.attached_volumes.is_empty(),
        "the intent is kept until Cinder confirms the detach"
    );

    // Cinder is back: the leftovers are cleaned up, nothing stays attached.
    relay.open.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(wait_holds_no_volumes(&r, id).await);
    let cinder = CinderClient::new(cinder_config(&real)).unwrap();
    assert_eq!(cinder.get_volume(&vol).await.unwrap().attachments.len(), 0);

    // And the node deploys once Cinder answers.
    provision(&r, id, "deploy").await;
    settle(&r, id, ProvisionState::Active).await;
    assert_eq!(cinder.get_volume(&vol).await.unwrap().attachments.len(), 1);
    provision(&r, id, "undeploy").await;
    settle(&r, id, ProvisionState::Available).await;
}

/// An HTTP proxy in front of the real Cinder that records every request it
/// passes on (method, path below the endpoint, JSON body) and, when asked,
/// stops answering (503, as a load balancer with no backend does) right after
/// it has passed on an `os-reserve`: Cinder has reserved the volume, and is
/// gone before the attach.
struct CinderProxy {
    url: String,
    cut: Arc<std::sync::atomic::AtomicBool>,
    requests: Requests,
}

/// The requests a [`CinderProxy`] passed on: method, path, JSON body.
type Requests = Arc<std::sync::Mutex<Vec<(String, String, Option<Value>)>>>;

async fn cinder_proxy(upstream: &str, cut_after_reserve: bool) -> CinderProxy {
    use axum::body::Bytes;
    use axum::http::{HeaderMap, Method, StatusCode, Uri};
    use std::sync::atomic::{AtomicBool, Ordering};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (base, path) = upstream
        .trim_start_matches("http://")
        .split_once('/')
        .unwrap();
    let base = format!("http://{base}");
    let prefix = format!("/{path}/");
    let cut = Arc::new(AtomicBool::new(false));
    let requests = Arc::new(std::sync::Mutex::new(vec![]));
    let state = (
        base,
        prefix,
        cut.clone(),
        requests.clone(),
        cut_after_reserve,
        reqwest::Client::new(),
    );
    type State = (
        String,
        String,
        Arc<AtomicBool>,
        Requests,
        bool,
        reqwest::Client,
    );
    let forward = |axum::extract::State((base, prefix, cut, requests, cut_after_reserve, http)): axum::extract::State<State>,
                   method: Method,
                   uri: Uri,
                   headers: HeaderMap,
                   body: Bytes| async move {
        if cut.load(Ordering::SeqCst) {
            return (StatusCode::SERVICE_UNAVAILABLE, Vec::new());
        }
        requests.lock().unwrap().push((
            method.to_string(),
            uri.path().trim_start_matches(prefix.as_str()).to_string(),
            serde_json::from_slice(&body).ok(),
        ));
        let reserving = body.windows(10).any(|w| w == b"os-reserve");
        let mut req = http.request(method, format!("{base}{uri}")).body(body);
        for (k, v) in headers.iter() {
            if k != "host" && k != "content-length" {
                req = req.header(k, v);
            }
        }
        let res = req.send().await.unwrap();
        let status = StatusCode::from_u16(res.status().as_u16()).unwrap();
        let bytes = res.bytes().await.unwrap().to_vec();
        if cut_after_reserve && reserving && status.is_success() {
            cut.store(true, Ordering::SeqCst);
        }
        (status, bytes)
    };
    let app = axum::Router::new().fallback(forward).with_state(state);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    CinderProxy {
        url: format!("http://{addr}/{path}"),
        cut,
        requests,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cinder_gone_between_reserve_and_attach_releases_the_reservation_once_back() {
    let real = cinder_endpoint();
    let proxy = cinder_proxy(&real, true).await;
    let mut config = cinder_config(&proxy.url);
    config.timeout = Duration::from_secs(2);
    let r = rig(common::memory().await, Some(config)).await;
    let id = guide_node(&r, "cinder").await;
    let vol = create_volume(false).await;
    add_target(&r, id, 0, &vol, json!({})).await;
    let cinder = CinderClient::new(cinder_config(&real)).unwrap();

    provision(&r, id, "deploy").await;
    let n = settle(&r, id, ProvisionState::DeployFailed).await;
    let err = n.last_error.unwrap();
    assert!(
        err.starts_with("Attaching volumes failed:")
            && err.contains("Cinder answered 503: Service Unavailable"),
        "{err}"
    );
    // Cinder holds the reservation: without its release the volume could
    // never be attached again (Ironic leaves it so).
    let v = cinder.get_volume(&vol).await.unwrap();
    assert_eq!(v.status, "attaching", "reserved, never attached");
    assert!(v.reserved_by(&id.to_string(), &[&id.to_string()]));

    // Cinder is back: the sweep releases the reservation.
    proxy.cut.store(false, std::sync::atomic::Ordering::SeqCst);
    assert!(wait_holds_no_volumes(&r, id).await);
    let v = cinder.get_volume(&vol).await.unwrap();
    assert_eq!(v.status, "available", "the reservation was released");
    assert_eq!(
        v.last_action_of(&id.to_string()).as_deref(),
        Some("unreserved")
    );
    assert!(v.attachments.is_empty());
}

/// A reservation that is not the node's (someone else reserved the volume)
/// is left alone by the node's compensation, and refuses its deploy.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reservation_made_by_someone_else_is_not_released() {
    let real = cinder_endpoint();
    let r = rig(common::memory().await, Some(cinder_config(&real))).await;
    let id = guide_node(&r, "cinder").await;
    let vol = create_volume(false).await;
    add_target(&r, id, 0, &vol, json!({})).await;
    let cinder = CinderClient::new(cinder_config(&real)).unwrap();
    cinder.reserve(&vol).await.unwrap();

    provision(&r, id, "deploy").await;
    let n = settle(&r, id, ProvisionState::DeployFailed).await;
    let err = n.last_error.unwrap();
    assert!(
        err.contains("os-reserve of volume") && err.contains("must be available to reserve"),
        "{err}"
    );
    // The compensation has run (the intent is cleared) and left it alone.
    assert!(wait_holds_no_volumes(&r, id).await);
    let v = cinder.get_volume(&vol).await.unwrap();
    assert_eq!(
        v.status, "attaching",
        "the other party's reservation stands"
    );
    assert_eq!(
        v.last_action_of(&id.to_string()).as_deref(),
        Some("reserve refused")
    );
    cinder.unreserve(&vol).await.unwrap();
}

/// Ironic lets an operator delete a deployed node in maintenance (a broken
/// BMC) and forgets its volumes and script. ironledger undoes them: the
/// volume is detached in Cinder, the script with its CHAP secret and the MAC
/// link are removed, the volume may be attached elsewhere, and the node stays
/// gone from the API.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleting_a_deployed_node_in_maintenance_undoes_its_volumes_and_script() {
    let r = rig(
        common::memory().await,
        Some(cinder_config(&cinder_endpoint())),
    )
    .await;
    let cinder = CinderClient::new(cinder_config(&cinder_endpoint())).unwrap();
    let vol = create_volume(false).await;
    let id = guide_node(&r, "cinder").await;
    add_target(&r, id, 0, &vol, json!({})).await;
    provision(&r, id, "deploy").await;
    settle(&r, id, ProvisionState::Active).await;
    let script = r.root.join(id.to_string()).join("config");
    assert!(script.exists());
    assert_eq!(cinder.get_volume(&vol).await.unwrap().status, "in-use");

    let e = &r.engine;
    e.node(id, NodeCommand::SetMaintenance { reason: None }, &meta())
        .await
        .unwrap();
    e.node(id, NodeCommand::Delete, &meta()).await.unwrap();

    assert!(
        wait_holds_no_volumes(&r, id).await,
        "the leftovers were undone"
    );
    let v = cinder.get_volume(&vol).await.unwrap();
    assert_eq!((v.status.as_str(), v.attachments.len()), ("available", 0));
    assert!(!script.exists(), "the script with its CHAP secret is gone");
    assert!(
        std::fs::read_dir(r.root.join("pxelinux.cfg"))
            .map(|d| d.count())
            .unwrap_or(0)
            == 0,
        "no MAC link is left"
    );
    let node = e.load_node(id).await.unwrap();
    assert!(!node.exists && !node.has_leftovers());
    assert!(e
        .store()
        .doc_get("nodes", &id.to_string())
        .await
        .unwrap()
        .is_none());
    // The volume is free for another node.
    let other = guide_node(&r, "cinder").await;
    add_target(&r, other, 0, &vol, json!({})).await;
    provision(&r, other, "deploy").await;
    settle(&r, other, ProvisionState::Active).await;
    provision(&r, other, "undeploy").await;
    settle(&r, other, ProvisionState::Available).await;
}

/// The same with Cinder away at deletion time: the deleted node is gone from
/// `nodes`, so the process manager keeps it in its own model and its sweep
/// finishes the job once Cinder answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deleted_nodes_volumes_are_detached_once_cinder_is_back() {
    let real = cinder_endpoint();
    let (host_port, path) = real.trim_start_matches("http://").split_once('/').unwrap();
    let relay = relay(host_port).await;
    let mut config = cinder_config(&format!("http://{}/{path}", relay.addr));
    config.timeout = Duration::from_secs(2);
    let r = rig(common::memory().await, Some(config)).await;
    let vol = create_volume(false).await;
    let id = guide_node(&r, "cinder").await;
    add_target(&r, id, 0, &vol, json!({})).await;
    provision(&r, id, "deploy").await;
    settle(&r, id, ProvisionState::Active).await;

    relay.open.store(false, std::sync::atomic::Ordering::SeqCst);
    let e = &r.engine;
    e.node(id, NodeCommand::SetMaintenance { reason: None }, &meta())
        .await
        .unwrap();
    e.node(id, NodeCommand::Delete, &meta()).await.unwrap();
    let mut remembered = false;
    for _ in 0..50 {
        let orphans = e.store().doc_list("process_manager").await.unwrap();
        if orphans.iter().any(|(k, _)| *k == id.to_string()) {
            remembered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(remembered, "the deleted node is kept for the sweep");
    assert!(
        !r.root.join(id.to_string()).exists(),
        "the script goes at once"
    );

    relay.open.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(wait_holds_no_volumes(&r, id).await);
    let v = CinderClient::new(cinder_config(&real))
        .unwrap()
        .get_volume(&vol)
        .await
        .unwrap();
    assert_eq!((v.status.as_str(), v.attachments.len()), ("available", 0));
    for _ in 0..50 {
        let orphans = e.store().doc_list("process_manager").await.unwrap();
        if !orphans.iter().any(|(k, _)| *k == id.to_string()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the deleted node stayed in the process manager's model");
}

/// Cinder knows the attachment by the instance UUID the node had at deploy.
/// Ironic lets the instance be cleared from an active node; the undeploy must
/// still detach what was attached under it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn undeploy_detaches_under_the_instance_of_the_attach_even_if_cleared() {
    let r = rig(
        common::memory().await,
        Some(cinder_config(&cinder_endpoint())),
    )
    .await;
    let cinder = CinderClient::new(cinder_config(&cinder_endpoint())).unwrap();
    let vol = create_volume(false).await;
    let id = guide_node(&r, "cinder").await;
    add_target(&r, id, 0, &vol, json!({})).await;
    let instance = Uuid::new_v4().to_string();
    let set_instance = |op: &str, value: Option<Value>| NodeCommand::Patch {
        ops: vec![PatchOp {
            op: op.into(),
            path: "/instance_uuid".into(),
            value,
        }],
    };
    let e = &r.engine;
    e.node(id, set_instance("add", Some(json!(instance))), &meta())
        .await
        .unwrap();
    provision(&r, id, "deploy").await;
    settle(&r, id, ProvisionState::Active).await;
    let v = cinder.get_volume(&vol).await.unwrap();
    assert_eq!(v.attachments[0].0, instance, "attached for the instance");

    // Swapping the instance is refused (Ironic's 409); clearing it is not.
    let swap = e
        .node(
            id,
            set_instance("replace", Some(json!(Uuid::new_v4().to_string()))),
            &meta(),
        )
        .await
        .unwrap_err();
    assert!(
        swap.to_string()
            .contains(&format!("is associated with instance {instance}")),
        "{swap}"
    );
    e.node(id, set_instance("remove", None), &meta())
        .await
        .unwrap();

    provision(&r, id, "undeploy").await;
    settle(&r, id, ProvisionState::Available).await;
    let v = cinder.get_volume(&vol).await.unwrap();
    assert_eq!((v.status.as_str(), v.attachments.len()), ("available", 0));
}

/// Ironic lets ports come and go on a deployed node. The MAC links follow:
/// a removed port's MAC stops booting the node's volume (else a machine that
/// gets that NIC would boot it with the node's CHAP login), a new one starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_mac_links_of_a_deployed_node_follow_its_ports() {
    let r = rig(common::memory().await, None).await;
    let id = guide_node(&r, "external").await;
    guide_external_target(&r, id, false).await;
    provision(&r, id, "deploy").await;
    let node = settle(&r, id, ProvisionState::Active).await;
    let old = node.ports[0].clone();
    let link = |mac: &str| r.root.join("pxelinux.cfg").join(mac.replace(':', "-"));
    assert!(link(&old.address).exists());

    let e = &r.engine;
    let new_mac = "52:54:00:12:34:56";
    e.node(
        id,
        NodeCommand::AddPort(NewPort {
            uuid: Uuid::new_v4(),
            address: new_mac.into(),
            pxe_enabled: true,
            extra: Map::new(),
            ..Default::default()
        }),
        &meta(),
    )
    .await
    .unwrap();
    e.node(id, NodeCommand::RemovePort { uuid: old.uuid }, &meta())
        .await
        .unwrap();
    let mut followed = false;
    for _ in 0..100 {
        let n = e.load_node(id).await.unwrap();
        if n.boot_config.as_ref().map(|b| b.macs.clone()) == Some(vec![new_mac.to_string()]) {
            followed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(followed, "BootConfigWritten records the new MAC set");
    assert!(
        !link(&old.address).exists(),
        "the removed port's link is gone"
    );
    assert_eq!(
        std::fs::read_link(link(new_mac)).unwrap(),
        PathBuf::from("..").join(id.to_string()).join("config")
    );
    assert_eq!(
        e.load_node(id).await.unwrap().state(),
        ProvisionState::Active
    );
}

/// A node waiting on a Cinder that does not answer must not hold up the
/// others: nodes are worked side by side.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_stuck_on_cinder_does_not_hold_up_the_others() {
    let (addr, _) = black_hole().await;
    let mut config = cinder_config(&format!("http://{addr}/v3/project"));
    config.timeout = Duration::from_secs(120);
    let r = rig(common::memory().await, Some(config)).await;
    let stuck = guide_node(&r, "cinder").await;
    add_target(&r, stuck, 0, "vol-never-answered", json!({})).await;
    provision(&r, stuck, "deploy").await;
    // Wait until the stuck node's attach has started.
    for _ in 0..100 {
        if !r
            .engine
            .load_node(stuck)
            .await
            .unwrap()
            .attached_volumes
            .is_empty()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let free = guide_node(&r, "external").await;
    guide_external_target(&r, free, false).await;
    provision(&r, free, "deploy").await;
    settle(&r, free, ProvisionState::Active).await;
    assert_eq!(
        r.engine.load_node(stuck).await.unwrap().state(),
        ProvisionState::Deploying,
        "the other node is still waiting on Cinder"
    );
}

/// Adopting a running boot-from-volume node writes its iPXE script (as
/// Ironic's `prepare_instance` does) without attaching or powering anything,
/// so its next network boot finds it; a target the script cannot be written
/// from ends the adoption in `adopt failed` with Ironic's text.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn adoption_writes_the_boot_configuration_of_a_volume_boot() {
    let r = rig(common::memory().await, None).await;
    let id = guide_node(&r, "external").await;
    let target = guide_external_target(&r, id, true).await;
    provision(&r, id, "manage").await;
    provision(&r, id, "adopt").await;
    let node = settle(&r, id, ProvisionState::Active).await;
    assert_eq!(
        node.driver_internal_info["boot_from_volume"],
        target.to_string()
    );
    assert!(node.boot_config.is_some());
    let script = std::fs::read_to_string(r.root.join(id.to_string()).join("config")).unwrap();
    assert!(script.contains("sanhook --drive 0x80 iscsi:192.168.0.123::3260:0:iqn.2010-10.org.openstack:volume-00000001"));
    let mac = node.ports[0].address.replace(':', "-");
    assert!(r.root.join("pxelinux.cfg").join(mac).exists());

    // A cinder target that never got Cinder's connection data.
    let bare = guide_node(&r, "cinder").await;
    add_target(&r, bare, 0, "vol-without-data", json!({})).await;
    provision(&r, bare, "manage").await;
    provision(&r, bare, "adopt").await;
    let n = settle(&r, bare, ProvisionState::AdoptFailed).await;
    let err = n.last_error.unwrap();
    assert!(
        err.starts_with(&format!("Error while attempting to adopt node {bare}: "))
            && err.contains("target_iqn is missing"),
        "{err}"
    );
    assert!(!r.root.join(bare.to_string()).exists());
}

/// A "Cinder" that accepts connections and never answers; it counts the
/// connections its clients closed.
async fn black_hole() -> (std::net::SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let closed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = closed.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let count = count.clone();
            tokio::spawn(async move {
                use tokio::io::AsyncReadExt;
                let mut buf = [0u8; 4096];
                while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {}
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            });
        }
    });
    (addr, closed)
}

/// A process that cannot renew a node's lease (here: another process took
/// it, as after a stall longer than the lease) stops working the node at once
/// — its pending Cinder call is dropped — instead of racing the new holder.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn losing_the_lease_stops_the_work() {
    let (addr, closed) = black_hole().await;
    let mut config = cinder_config(&format!("http://{addr}/v3/project"));
    config.timeout = Duration::from_secs(120);
    let store = common::postgres().await;
    let pool = store.pg_pool.clone().unwrap();
    let r = rig(store, Some(config)).await;
    let id = guide_node(&r, "cinder").await;
    add_target(&r, id, 0, "vol-never-answered", json!({})).await;
    provision(&r, id, "deploy").await;
    for _ in 0..100 {
        if !r
            .engine
            .load_node(id)
            .await
            .unwrap()
            .attached_volumes
            .is_empty()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(closed.load(std::sync::atomic::Ordering::SeqCst), 0);

    // Another holder takes the lease over.
    let taken = sqlx::query(
        "UPDATE leases SET holder = 'another-process', expires_at = now() + interval '1 hour' \
         WHERE name = $1",
    )
    .bind(format!("node/{id}"))
    .execute(&pool)
    .await
    .unwrap()
    .rows_affected();
    assert_eq!(taken, 1, "the process manager held the node's lease");
    let mut stopped = false;
    for _ in 0..100 {
        if closed.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            stopped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(stopped, "the Cinder call of the lost node was dropped");
    assert_eq!(
        r.engine.load_node(id).await.unwrap().state(),
        ProvisionState::Deploying,
        "left to the new holder"
    );
}

/// A node deleted with leftovers before the process manager kept track of
/// deleted nodes (its checkpoint already past the deletion, as after an
/// upgrade) is found once by reading the log, and cleaned up.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleted_nodes_from_before_the_tracking_are_found_once() {
    use ironledger::effects::process_manager::CHECKPOINT;
    let store = common::memory().await;
    let catalog = HardwareCatalog::default();
    let engine = Arc::new(Engine::on(
        Opened {
            store: store.store.clone(),
            pg_pool: None,
        },
        NodeServices { catalog },
    ));
    let id = Uuid::new_v4();
    let meta = meta();
    for cmd in common::enroll_bootable(id, "vol-gone").into_iter().chain([
        NodeCommand::Provision(ProvisionRequest::verb("deploy")),
        NodeCommand::RecordAttachIntent {
            volume_ids: vec!["vol-gone".into()],
            owner: None,
        },
        NodeCommand::FailDeploy { error: "x".into() },
        NodeCommand::SetMaintenance { reason: None },
        NodeCommand::Delete,
    ]) {
        engine.node(id, cmd, &meta).await.unwrap();
    }
    // The manager's checkpoint is past the deletion, and it has no records.
    let head = store.store.head().await.unwrap();
    assert!(store
        .store
        .commit_model(CHECKPOINT, 0, head, &[])
        .await
        .unwrap());

    // A process manager starts. Cinder does not know the volume: detached,
    // and no connector is needed for that (the node never had one).
    let _pm = rig(store, Some(cinder_config(&cinder_endpoint()))).await;
    let mut cleaned = false;
    for _ in 0..100 {
        if engine
            .load_node(id)
            .await
            .unwrap()
            .attached_volumes
            .is_empty()
        {
            cleaned = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(cleaned, "the old deleted node's volume was released");
}

// ---- the deploy plan (`ironledger plan`) ---------------------------------------------

fn plan_of(r: &Rig, node: &Node, cinder: Option<&str>) -> deploy_plan::DeployPlan {
    deploy_plan::plan(
        node,
        &deploy_plan::PlanContext {
            http_root: &r.root,
            san_retries: ipxe::DEFAULT_SAN_RETRIES,
            power_timeout: Duration::from_secs(60),
            cinder_endpoint: cinder,
            services: &r.services,
        },
    )
}

/// The events a node recorded after the first `skip`.
fn events_after(r: &Rig, id: Uuid, skip: usize) -> Vec<String> {
    event_types(&r._store, id).into_iter().skip(skip).collect()
}

/// The plan's files are written as planned: the script `0600`, each MAC a
/// link to it.
fn assert_files_as_planned(plan: &deploy_plan::DeployPlan) {
    use std::os::unix::fs::PermissionsExt;
    let files: Vec<&deploy_plan::PlannedFile> =
        plan.steps.iter().flat_map(|s| s.files.iter()).collect();
    assert!(files.len() >= 2, "a script and a MAC link: {files:?}");
    for f in files {
        match &f.links_to {
            Some(to) => assert_eq!(
                std::fs::read_link(&f.path).unwrap().to_str(),
                Some(to.as_str()),
                "{}",
                f.path
            ),
            None => assert_eq!(
                std::fs::metadata(&f.path).unwrap().permissions().mode() & 0o777,
                0o600,
                "{}",
                f.path
            ),
        }
    }
}

/// A plan sends nothing, writes nothing and records nothing; the deploy
/// that follows sends Cinder exactly the planned requests in the planned
/// order (with the node's connector), writes the planned files and records
/// the planned events.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_deploy_does_what_its_plan_says_with_cinder() {
    let proxy = cinder_proxy(&cinder_endpoint(), false).await;
    let r = rig(common::memory().await, Some(cinder_config(&proxy.url))).await;
    let id = guide_node(&r, "cinder").await;
    let boot = create_volume(false).await;
    let data = create_volume(false).await;
    add_target(&r, id, 0, &boot, json!({})).await;
    add_target(&r, id, 1, &data, json!({})).await;
    let node = r.engine.load_node(id).await.unwrap();
    let before = event_types(&r._store, id).len();

    let plan = plan_of(&r, &node, Some(&proxy.url));
    assert_eq!(plan.refused, None);
    assert!(
        proxy.requests.lock().unwrap().is_empty(),
        "planning asks Cinder nothing"
    );
    assert!(
        !r.root.join(id.to_string()).exists(),
        "planning writes nothing"
    );
    assert_eq!(
        event_types(&r._store, id).len(),
        before,
        "planning records nothing"
    );
    let steps: Vec<&str> = plan.steps.iter().map(|s| s.step).collect();
    assert_eq!(
        steps,
        [
            "request",
            "boot-volume",
            "power-off",
            "attach-intent",
            "attach",
            "attach",
            "record-attachments",
            "boot-config",
            "power-on",
            "finish"
        ]
    );
    let boot_config = plan.steps.iter().find(|s| s.step == "boot-config").unwrap();
    assert_eq!(
        boot_config.script, None,
        "a cinder node's script comes from Cinder's answers"
    );

    provision(&r, id, "deploy").await;
    settle(&r, id, ProvisionState::Active).await;

    // The same requests, in the same order, with the same bodies (but the
    // time in each note on a volume).
    let at_call_time = |body: &Option<Value>| {
        let mut body = body.clone();
        if let Some(Value::Object(m)) = body.as_mut().and_then(|b| b.get_mut("metadata")) {
            for v in m.values_mut() {
                let mut note: Value = serde_json::from_str(v.as_str().unwrap()).unwrap();
                note["last_seen"] = json!(deploy_plan::AT_CALL_TIME);
                *v = json!(note.to_string());
            }
        }
        body
    };
    let sent: Vec<(String, String, Option<Value>)> = proxy
        .requests
        .lock()
        .unwrap()
        .iter()
        .map(|(m, p, b)| (m.clone(), p.clone(), at_call_time(b)))
        .collect();
    let planned: Vec<(String, String, Option<Value>)> = plan
        .steps
        .iter()
        .flat_map(|s| s.cinder.iter())
        .map(|c| (c.method.to_string(), c.path.clone(), c.body.clone()))
        .collect();
    assert_eq!(planned.len(), 12, "six requests per volume: {planned:#?}");
    assert_eq!(sent, planned);
    let connector = &planned[3].2.as_ref().unwrap()["os-initialize_connection"]["connector"];
    assert_eq!(
        connector["initiator"],
        format!("iqn.2017-08.org.openstack.{id}")
    );

    // The same events, in the same order.
    let recorded: Vec<String> = plan.steps.iter().flat_map(|s| s.records.clone()).collect();
    assert_eq!(events_after(&r, id, before), recorded);
    assert_files_as_planned(&plan);
    let script = std::fs::read_to_string(r.root.join(id.to_string()).join("config")).unwrap();
    assert!(script.contains("sanhook"), "{script}");
}

/// For a node whose targets carry their connection data (`external`
/// storage), the plan shows the very script the deploy writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_deploy_writes_the_planned_script() {
    let r = rig(common::memory().await, None).await;
    let id = guide_node(&r, "external").await;
    guide_external_target(&r, id, false).await;
    let node = r.engine.load_node(id).await.unwrap();
    let before = event_types(&r._store, id).len();
    let plan = plan_of(&r, &node, None);
    assert_eq!(plan.refused, None);
    assert!(
        plan.steps.iter().all(|s| s.cinder.is_empty()),
        "no Cinder for external storage"
    );
    let planned_script = plan
        .steps
        .iter()
        .find_map(|s| s.script.clone())
        .expect("the script is known in advance");

    provision(&r, id, "deploy").await;
    settle(&r, id, ProvisionState::Active).await;
    let written = std::fs::read_to_string(r.root.join(id.to_string()).join("config")).unwrap();
    assert_eq!(written, planned_script);
    let recorded: Vec<String> = plan.steps.iter().flat_map(|s| s.records.clone()).collect();
    assert_eq!(events_after(&r, id, before), recorded);
    assert_files_as_planned(&plan);
}

/// A deploy the API would refuse is planned as refused, in the API's words,
/// with no step.
#[tokio::test]
async fn a_refused_deploy_is_planned_as_refused() {
    let r = rig(common::memory().await, None).await;
    let id = guide_node(&r, "external").await;
    // No boot target yet.
    let node = r.engine.load_node(id).await.unwrap();
    let plan = plan_of(&r, &node, None);
    let refusal = r
        .engine
        .node(
            id,
            NodeCommand::Provision(ProvisionRequest::verb("deploy")),
            &meta(),
        )
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(plan.refused.as_deref(), Some(refusal.as_str()));
    assert!(
        refusal.starts_with(&format!(
            "Failed to validate deploy or power info for node {id}"
        )),
        "{refusal}"
    );
    assert!(plan.steps.is_empty());
}
