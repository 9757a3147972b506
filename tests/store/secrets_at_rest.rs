//! Secrets at rest: CHAP passwords (and other password-like values) are
//! encrypted in events and read models on both stores, decrypted only for the
//! write model (the iPXE script still gets the right CHAP), and destroyed with
//! their node (crypto-shredding).

use crate::common;

use common::audit::{db, scenario, Backend, SECRET_A, SECRET_B, SECRET_GONE};
use ironledger::domain::hardware::HardwareCatalog;
use ironledger::domain::node::commands::{
    EnrollNode, NewConnector, NewPort, NewTarget, ProvisionRequest,
};
use ironledger::domain::patch::PatchOp;
use ironledger::domain::state::ProvisionState;
use ironledger::domain::{NodeCommand, NodeServices};
use ironledger::effects::process_manager::{PmConfig, ProcessManager};
use ironledger::engine::{Engine, Meta};
use ironledger::secrets::{Keyring, MasterKey, SecretsError, DATA_KEY_SCOPE, ENVELOPE_PREFIX};
use ironledger::store::Opened;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

const ALL_SECRETS: &[&str] = &[SECRET_A, SECRET_B, SECRET_GONE, "ipmi-Secret-4411"];

fn assert_no_secret(text: &str, what: &str) {
    for s in ALL_SECRETS {
        assert!(!text.contains(s), "{s} in clear in {what}");
    }
}

/// Every byte of the database: the SQLite file and its WAL, or every row of
/// the PostgreSQL tables as text.
async fn database_text(d: &common::audit::Db) -> String {
    match (&d.file, &d.store.pg_pool) {
        (Some(file), _) => {
            let mut all = vec![];
            for f in std::fs::read_dir(file.parent().unwrap()).unwrap() {
                all.extend(std::fs::read(f.unwrap().path()).unwrap());
            }
            String::from_utf8_lossy(&all).into_owned()
        }
        (None, Some(pool)) => {
            let mut all = String::new();
            let typed = ironledger::store::rows::TABLES.iter().map(|t| t.table);
            let tables = ["events", "read_models", "claims", "checkpoints"]
                .into_iter()
                .chain(typed);
            for table in tables {
                let rows: Vec<(String,)> =
                    sqlx::query_as(&format!("SELECT t::text FROM {table} t"))
                        .fetch_all(pool)
                        .await
                        .unwrap();
                for (r,) in rows {
                    all.push_str(&r);
                    all.push('\n');
                }
            }
            all
        }
        _ => unreachable!(),
    }
}

async fn no_secret_in_clear_in_the_database(backend: Backend) {
    let d = db(backend).await;
    let (engine, keyring) = d.engine(MasterKey::generate());
    let s = scenario(&engine).await;
    let text = database_text(&d).await;
    assert_no_secret(&text, &format!("the {backend:?} database"));
    assert!(text.contains(ENVELOPE_PREFIX), "no encrypted value at all?");

    // Every event carrying a target carries it encrypted; read models too.
    let events = d
        .store
        .store
        .load("Node", &s.node.to_string())
        .await
        .unwrap();
    let sealed: Vec<&str> = events
        .iter()
        .filter(|e| e.payload.to_string().contains(ENVELOPE_PREFIX))
        .map(|e| e.event_type.as_str())
        .collect();
    for t in ["NodeEnrolled", "TargetCreated", "TargetsPurged"] {
        assert!(sealed.contains(&t), "{t} not sealed: {sealed:?}");
    }
    let target = d
        .store
        .store
        .doc_get("targets", &s.target_b.to_string())
        .await
        .unwrap()
        .unwrap();
    assert!(target["properties"]["auth_password"]
        .as_str()
        .unwrap()
        .starts_with(ENVELOPE_PREFIX));
    assert_eq!(target["properties"]["auth_username"], "ABC");

    // The write model sees them in clear.
    let node = engine.load_node(s.node).await.unwrap();
    assert_eq!(node.targets[0].properties["auth_password"], SECRET_B);
    assert_eq!(node.driver_info["ipmi_password"], "ipmi-Secret-4411");

    // One data key per node with secrets, wrapped; none for the deleted node.
    let keys = d
        .store
        .store
        .claims_in_scope(DATA_KEY_SCOPE, None)
        .await
        .unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].1, s.node.to_string());
    assert_no_secret(&keys[0].0, "the wrapped key");
    drop(keyring);

    // An export holds none either.
    let export = d.ok(&["export"]).await;
    assert_no_secret(&export, "the export");
    assert_eq!(export.matches("\"kind\":\"data_key\"").count(), 1);
}

async fn a_deleted_nodes_secrets_cannot_be_decrypted(backend: Backend) {
    let d = db(backend).await;
    let (engine, keyring) = d.engine(MasterKey::generate());
    let s = scenario(&engine).await;
    let owner = s.other.to_string();
    let events = d.store.store.load("Node", &owner).await.unwrap();
    let created = events
        .iter()
        .find(|e| e.event_type == "TargetCreated")
        .unwrap();
    let envelope = created.payload["TargetCreated"]["target"]["properties"]["auth_password"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(envelope.starts_with(ENVELOPE_PREFIX));
    match keyring.open_value(&owner, &envelope).await {
        Err(SecretsError::Shredded { owner: o, .. }) => assert_eq!(o, owner),
        other => panic!("a deleted node's secret must be unrecoverable, got {other:?}"),
    }
    // Its data key is gone from the database; its history still loads.
    assert!(d
        .store
        .store
        .claims_in_scope(DATA_KEY_SCOPE, Some(&owner))
        .await
        .unwrap()
        .is_empty());
    let node = engine.load_node(s.other).await.unwrap();
    assert!(!node.exists);
    // A live node's secret opens with its key.
    let live = d
        .store
        .store
        .load("Node", &s.node.to_string())
        .await
        .unwrap();
    let env = live
        .iter()
        .rev()
        .find(|e| e.event_type == "TargetCreated")
        .unwrap()
        .payload["TargetCreated"]["target"]["properties"]["auth_password"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        keyring.open_value(&s.node.to_string(), &env).await.unwrap(),
        json!(SECRET_B)
    );
    // Not with another master key.
    let stranger = Keyring::new(MasterKey::generate(), d.store.store.clone());
    assert!(matches!(
        stranger.open_value(&s.node.to_string(), &env).await,
        Err(SecretsError::WrongMasterKey { .. })
    ));
}

/// The values Ironic masks by key name rather than by a password-like name:
/// `instance_info.image_url` and `driver_info.snmp_auth_key`/`snmp_priv_key`.
const IMAGE_URL: &str = "https://images.example/tok-Image-5521/disk.qcow2";
const SNMP_AUTH: &str = "snmp-Auth-Secret-9174";
const SNMP_PRIV: &str = "snmp-Priv-Secret-3308";
const SNMP_PRIV_2: &str = "snmp-Priv-Secret-6613";

/// Those values are sealed in every event and read model row that carries
/// them and in exports; the API masks them; the write model has them in clear.
async fn named_secrets_are_encrypted_like_the_others(backend: Backend) {
    let d = db(backend).await;
    let (engine, _keyring) = d.engine(MasterKey::generate());
    let node = Uuid::new_v4();
    let obj = |v: Value| v.as_object().unwrap().clone();
    let mut enroll = EnrollNode::new(node, "fake-hardware");
    enroll.instance_info = obj(json!({"image_url": IMAGE_URL, "root_gb": 10}));
    enroll.driver_info = obj(
        json!({"snmp_auth_key": SNMP_AUTH, "snmp_priv_key": SNMP_PRIV,
                                     "snmp_address": "10.0.0.9"}),
    );
    let meta = Meta::actor("admin");
    engine
        .node(node, NodeCommand::Enroll(enroll), &meta)
        .await
        .unwrap();
    let patch = |path: &str, value: Value| NodeCommand::Patch {
        ops: vec![PatchOp {
            op: "add".into(),
            path: path.into(),
            value: Some(value),
        }],
    };
    // Changes carry them too (InstanceInfoUpdated before/after, DriverInfoUpdated).
    for cmd in [
        patch("/instance_info/root_gb", json!(20)),
        patch("/driver_info/snmp_priv_key", json!(SNMP_PRIV_2)),
    ] {
        engine.node(node, cmd, &meta).await.unwrap();
    }
    let secrets = [IMAGE_URL, SNMP_AUTH, SNMP_PRIV, SNMP_PRIV_2];
    let no_clear = |text: &str, what: &str| {
        for s in secrets {
            assert!(!text.contains(s), "{s} in clear in {what}");
        }
    };

    let events = d.store.store.load("Node", &node.to_string()).await.unwrap();
    for e in &events {
        no_clear(
            &e.payload.to_string(),
            &format!("the stored {}", e.event_type),
        );
    }
    let row = d
        .store
        .store
        .doc_get("nodes", &node.to_string())
        .await
        .unwrap()
        .unwrap();
    no_clear(&row.to_string(), "the nodes read model");
    no_clear(
        &database_text(&d).await,
        &format!("the {backend:?} database"),
    );
    no_clear(&d.ok(&["export"]).await, "the export");

    // The write model (what the process manager renders from) has them.
    let n = engine.load_node(node).await.unwrap();
    assert_eq!(n.instance_info["image_url"], IMAGE_URL);
    assert_eq!(n.driver_info["snmp_auth_key"], SNMP_AUTH);
    assert_eq!(n.driver_info["snmp_priv_key"], SNMP_PRIV_2);

    // The API masks them (and shows the rest).
    let api = serve_api(&d, engine.clone()).await;
    let shown: Value = reqwest::Client::new()
        .get(format!("{api}/v1/nodes/{node}"))
        .header("X-OpenStack-Ironic-API-Version", "1.78")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown["instance_info"]["image_url"], "******", "{shown}");
    assert_eq!(shown["instance_info"]["root_gb"], 20);
    assert_eq!(shown["driver_info"]["snmp_auth_key"], "******");
    assert_eq!(shown["driver_info"]["snmp_priv_key"], "******");
    assert_eq!(shown["driver_info"]["snmp_address"], "10.0.0.9");
}

const REDFISH_PW: &str = "redfish-Pass-Secret-5120";
const REDFISH_PW_2: &str = "redfish-Pass-Secret-5121";
const IPMI_PW: &str = "ipmi-Pass-Secret-3307";

/// The BMC passwords of `redfish` and `ipmi` nodes are sealed like CHAP
/// secrets, in the enrolment and in every change, in the read models, the
/// database and exports; the write model (which the BMC clients are built
/// from) has them in clear; the API masks them.
async fn bmc_passwords_are_sealed(backend: Backend) {
    let d = db(backend).await;
    let (engine, _keyring) = d.engine(MasterKey::generate());
    let meta = Meta::actor("admin");
    let obj = |v: Value| v.as_object().unwrap().clone();
    let (rf, ipmi) = (Uuid::new_v4(), Uuid::new_v4());
    let mut enroll = EnrollNode::new(rf, "redfish");
    enroll.driver_info = obj(json!({"redfish_address": "https://10.0.0.7",
                                    "redfish_username": "admin", "redfish_password": REDFISH_PW}));
    engine
        .node(rf, NodeCommand::Enroll(enroll), &meta)
        .await
        .unwrap();
    let mut enroll = EnrollNode::new(ipmi, "ipmi");
    enroll.driver_info = obj(json!({"ipmi_address": "10.0.0.8", "ipmi_password": IPMI_PW}));
    engine
        .node(ipmi, NodeCommand::Enroll(enroll), &meta)
        .await
        .unwrap();
    let replace = NodeCommand::Patch {
        ops: vec![PatchOp {
            op: "replace".into(),
            path: "/driver_info/redfish_password".into(),
            value: Some(json!(REDFISH_PW_2)),
        }],
    };
    engine.node(rf, replace, &meta).await.unwrap();

    let secrets = [REDFISH_PW, REDFISH_PW_2, IPMI_PW];
    let no_clear = |text: &str, what: &str| {
        for s in secrets {
            assert!(!text.contains(s), "{s} in clear in {what}");
        }
    };
    let mut sealed = 0;
    for node in [rf, ipmi] {
        for e in d.store.store.load("Node", &node.to_string()).await.unwrap() {
            let text = e.payload.to_string();
            no_clear(&text, &format!("the stored {}", e.event_type));
            sealed += text.matches(ENVELOPE_PREFIX).count();
        }
        let row = d
            .store
            .store
            .doc_get("nodes", &node.to_string())
            .await
            .unwrap()
            .unwrap();
        no_clear(&row.to_string(), "the nodes read model");
    }
    assert!(sealed >= 3, "the passwords are sealed, not dropped");
    no_clear(
        &database_text(&d).await,
        &format!("the {backend:?} database"),
    );
    no_clear(&d.ok(&["export"]).await, "the export");

    assert_eq!(
        engine.load_node(rf).await.unwrap().driver_info["redfish_password"],
        REDFISH_PW_2
    );
    assert_eq!(
        engine.load_node(ipmi).await.unwrap().driver_info["ipmi_password"],
        IPMI_PW
    );
    let api = serve_api(&d, engine.clone()).await;
    for node in [rf, ipmi] {
        let shown: Value = reqwest::Client::new()
            .get(format!("{api}/v1/nodes/{node}"))
            .header("X-OpenStack-Ironic-API-Version", "1.78")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        no_clear(&shown.to_string(), "the API's answer");
        assert!(
            shown["driver_info"].to_string().contains("******"),
            "{shown}"
        );
    }
}

/// The HTTP API on `engine`, as `serve` runs it; its base URL.
async fn serve_api(d: &common::audit::Db, engine: Arc<Engine>) -> String {
    let config = ironledger::config::Config::load(&ironledger::config::Overrides {
        config_files: vec![],
        data_dir: Some(d.data_dir.path().to_path_buf()),
        database_url: Some("memory".into()),
    })
    .unwrap();
    let app = ironledger::http::router(ironledger::api::AppState {
        engine,
        config: Arc::new(config),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

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
    no_secret_in_clear_in_the_database,
    a_deleted_nodes_secrets_cannot_be_decrypted,
    named_secrets_are_encrypted_like_the_others,
    bmc_passwords_are_sealed,
);

/// The guide's external deploy through the process manager, with secrets
/// encrypted at rest: the script has the CHAP credentials in clear (0600), the
/// database does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deploy_renders_the_decrypted_chap_into_the_script() {
    let d = db(Backend::Sqlite).await;
    let mut catalog = HardwareCatalog::default();
    catalog
        .interfaces
        .get_mut("storage")
        .unwrap()
        .enabled
        .push("external".into());
    let keyring = Keyring::new(MasterKey::generate(), d.store.store.clone());
    let engine = Arc::new(Engine::with_keyring(
        Opened {
            store: d.store.store.clone(),
            pg_pool: None,
        },
        NodeServices { catalog },
        keyring,
    ));
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("httpboot");
    let mut config = PmConfig::new(root.clone(), None);
    config.poll = Duration::from_millis(50);
    config.sweep = Duration::from_millis(300);
    ProcessManager::new(engine.clone(), config).unwrap().spawn();

    let id = Uuid::new_v4();
    let meta = Meta::actor("operator");
    let mut interfaces = BTreeMap::new();
    interfaces.insert("boot".to_string(), Some("ipxe".to_string()));
    interfaces.insert("storage".to_string(), Some("external".to_string()));
    let run = |c: NodeCommand| {
        let (engine, meta) = (engine.clone(), meta.clone());
        async move { engine.node(id, c, &meta).await.unwrap() }
    };
    run(NodeCommand::Enroll(EnrollNode {
        uuid: id,
        name: None,
        driver: "fake-hardware".into(),
        interfaces,
        properties: Map::new(),
        instance_info: Map::new(),
        driver_info: Map::new(),
        extra: Map::new(),
        fields: BTreeMap::new(),
        initial_state: ProvisionState::Enroll,
    }))
    .await;
    run(NodeCommand::Patch {
        ops: vec![PatchOp {
            op: "add".into(),
            path: "/properties/capabilities".into(),
            value: Some(json!("iscsi_boot:True")),
        }],
    })
    .await;
    run(NodeCommand::AddConnector(NewConnector {
        uuid: Uuid::new_v4(),
        kind: "iqn".into(),
        connector_id: format!("iqn.2017-08.org.openstack.{id}"),
        extra: Map::new(),
    }))
    .await;
    run(NodeCommand::AddPort(NewPort {
        uuid: Uuid::new_v4(),
        address: "52:54:00:cc:dd:01".into(),
        pxe_enabled: true,
        extra: Map::new(),
        ..Default::default()
    }))
    .await;
    run(NodeCommand::CreateTarget(NewTarget {
        uuid: Uuid::new_v4(),
        volume_type: "iscsi".into(),
        boot_index: 0,
        volume_id: "04452bed-5367-4202-8bf5-de4335ac56d2".into(),
        properties: json!({"target_iqn": "iqn.2010-10.org.openstack:volume-00000001",
            "target_lun": 0, "target_portal": "192.168.0.123:3260", "auth_method": "CHAP",
            "auth_username": "ABC", "auth_password": SECRET_A})
        .as_object()
        .unwrap()
        .clone(),
        extra: Map::new(),
    }))
    .await;
    for verb in ["manage", "provide", "deploy"] {
        run(NodeCommand::Provision(ProvisionRequest::verb(verb))).await;
    }
    let mut state = ProvisionState::Deploying;
    for _ in 0..300 {
        state = engine.load_node(id).await.unwrap().state();
        if state != ProvisionState::Deploying {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(state, ProvisionState::Active);
    let script_path = root.join(id.to_string()).join("config");
    let script = std::fs::read_to_string(&script_path).unwrap();
    assert!(script.contains("set username ABC"), "{script}");
    assert!(
        script.contains(&format!("set password {SECRET_A}")),
        "{script}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&script_path)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    engine.projector().catch_up().await.unwrap();
    let text = database_text(&d).await;
    assert!(
        !text.contains(SECRET_A),
        "the CHAP password is in clear in the database"
    );
    let payloads: Vec<Value> = d
        .store
        .store
        .load("Node", &id.to_string())
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.payload)
        .collect();
    assert!(!json!(payloads).to_string().contains(SECRET_A));
}

/// `serve` generates its master key into the data directory (0600) on first
/// start and keeps using it.
#[tokio::test]
async fn serve_generates_a_private_master_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = ironledger::config::Config::load(&ironledger::config::Overrides {
        config_files: vec![],
        database_url: Some("memory".into()),
        data_dir: Some(data.clone()),
    })
    .unwrap();
    assert_eq!(config.secrets.master_key_file, data.join("master.key"));
    let a = config.secrets.master_key().unwrap();
    let b = config.secrets.master_key().unwrap();
    assert_eq!(a.id(), b.id());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("master.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
