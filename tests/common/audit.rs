//! Fixtures for the audit tools' tests: a database on each backend that the
//! `ironledger` binary can open by URL, an engine encrypting secrets at rest,
//! a scenario node that was deployed, undeployed and redeployed, and a
//! runner for the CLI.

use super::{postgres_schema, test_url, SchemaGuard, TestStore};
use ironledger::domain::hardware::HardwareCatalog;
use ironledger::domain::node::commands::{
    EnrollNode, NewConnector, NewPort, NewTarget, ProvisionRequest,
};
use ironledger::domain::patch::PatchOp;
use ironledger::domain::state::ProvisionState;
use ironledger::domain::{NodeCommand, NodeServices};
use ironledger::engine::{Engine, Meta};
use ironledger::secrets::{Keyring, MasterKey};
use ironledger::store::{Opened, PostgresStore, SqliteStore};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use tempfile::TempDir;
use uuid::Uuid;

/// The CHAP passwords of the scenario's targets (grep for them).
pub const SECRET_A: &str = "chap-A-Secret-8361";
pub const SECRET_B: &str = "chap-B-Secret-2954";
pub const SECRET_GONE: &str = "chap-Gone-Secret-7720";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database the binary can open, and an in-process store on it.
pub struct Db {
    pub store: TestStore,
    /// `--database-url` for the binary.
    pub url: String,
    /// The SQLite file (None on PostgreSQL).
    pub file: Option<PathBuf>,
    /// The PostgreSQL schema (None on SQLite).
    pub schema: Option<String>,
    /// A data directory for the binary (keeps it away from $HOME).
    pub data_dir: TempDir,
}

pub async fn db(backend: Backend) -> Db {
    let data_dir = tempfile::tempdir().unwrap();
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("ironledger.db");
            let store = SqliteStore::open(&path).await.unwrap();
            Db {
                store: TestStore {
                    store: Arc::new(store),
                    pg_pool: None,
                    _dir: Some(dir),
                    _schema: None,
                },
                url: format!("sqlite:///{}", path.display()),
                file: Some(path),
                schema: None,
                data_dir,
            }
        }
        Backend::Postgres => {
            let (pool, guard): (_, SchemaGuard) = postgres_schema(10).await;
            let store = PostgresStore::from_pool(pool.clone()).await.unwrap();
            let schema = guard.0.clone();
            let sep = if test_url().contains('?') { '&' } else { '?' };
            Db {
                store: TestStore {
                    store: Arc::new(store),
                    pg_pool: Some(pool),
                    _dir: None,
                    _schema: Some(guard),
                },
                url: format!("{}{sep}options=-csearch_path%3D{schema}", test_url()),
                file: None,
                schema: Some(schema),
                data_dir,
            }
        }
    }
}

/// What a run of the binary did.
#[derive(Debug)]
pub struct Run {
    pub ok: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Db {
    /// Runs `ironledger --database-url <this> <args…>`.
    pub async fn cli(&self, args: &[&str]) -> Run {
        Run::of(self.command(args).output().await.expect("run ironledger"))
    }

    /// Like [`cli`](Self::cli), with `input` on standard input and the
    /// temporary directory (`TMPDIR`) at `tmp`.
    pub async fn cli_with_input(&self, args: &[&str], input: &[u8], tmp: &std::path::Path) -> Run {
        use tokio::io::AsyncWriteExt;
        let mut command = self.command(args);
        command
            .env("TMPDIR", tmp)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = command.spawn().expect("run ironledger");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(input).await.expect("write stdin");
        drop(stdin);
        Run::of(child.wait_with_output().await.expect("run ironledger"))
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_ironledger"));
        command
            .arg("--database-url")
            .arg(&self.url)
            .arg("--data-dir")
            .arg(self.data_dir.path())
            .args(args)
            .env_remove("DATABASE_URL")
            .env_remove("IRONLEDGER_DATA_DIR")
            .env("RUST_LOG", "warn");
        command
    }

    /// Like [`cli`](Self::cli), failing the test unless it succeeds.
    pub async fn ok(&self, args: &[&str]) -> String {
        let r = self.cli(args).await;
        assert!(
            r.ok,
            "ironledger {args:?} failed: {}\n{}",
            r.stderr, r.stdout
        );
        r.stdout
    }

    /// An engine on this database, encrypting secrets with `master`.
    pub fn engine(&self, master: MasterKey) -> (Arc<Engine>, Arc<Keyring>) {
        let mut catalog = HardwareCatalog::default();
        catalog
            .interfaces
            .get_mut("storage")
            .unwrap()
            .enabled
            .push("external".into());
        let keyring = Keyring::new(master, self.store.store.clone());
        let engine = Engine::with_keyring(
            Opened {
                store: self.store.store.clone(),
                pg_pool: self.store.pg_pool.clone(),
            },
            NodeServices { catalog },
            keyring.clone(),
        );
        (Arc::new(engine), keyring)
    }
}

pub fn meta(actor: &str) -> Meta {
    Meta::actor(actor)
}

fn chap(iqn: &str, user: &str, password: &str) -> Map<String, Value> {
    json!({"target_iqn": iqn, "target_portal": "192.168.0.123:3260", "target_lun": 0,
           "auth_method": "CHAP", "auth_username": user, "auth_password": password})
    .as_object()
    .unwrap()
    .clone()
}

/// The head of the feed once every committed event has a position.
pub async fn head(e: &Engine) -> u64 {
    e.projector().catch_up().await.unwrap();
    // Commands do not wait for their events' positions (PostgreSQL gives
    // them after commit, held back by any older open transaction, another
    // test's too): wait until every committed event has one.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while e.store().sequence_report().await.unwrap().waiting {
        assert!(
            std::time::Instant::now() < deadline,
            "events kept waiting for positions"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    e.store().head().await.unwrap()
}

/// Positions of the scenario's milestones.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub node: Uuid,
    pub other: Uuid,
    pub target_a: Uuid,
    pub target_b: Uuid,
    /// `available`, before the first deploy.
    pub available: u64,
    /// `active` with target A.
    pub deployed: u64,
    /// `available` again, no targets.
    pub undeployed: u64,
    /// `active` with target B.
    pub redeployed: u64,
    /// After `other` was deleted (the head).
    pub end: u64,
}

pub async fn enroll(e: &Engine, name: &str) -> Uuid {
    let id = Uuid::new_v4();
    let mut interfaces = BTreeMap::new();
    interfaces.insert("boot".to_string(), Some("ipxe".to_string()));
    interfaces.insert("storage".to_string(), Some("external".to_string()));
    e.node(
        id,
        NodeCommand::Enroll(EnrollNode {
            uuid: id,
            name: Some(name.into()),
            driver: "fake-hardware".into(),
            interfaces,
            properties: Map::new(),
            instance_info: Map::new(),
            driver_info: json!({"ipmi_password": "ipmi-Secret-4411"})
                .as_object()
                .unwrap()
                .clone(),
            extra: Map::new(),
            fields: BTreeMap::new(),
            initial_state: ProvisionState::Enroll,
        }),
        &meta("admin"),
    )
    .await
    .unwrap();
    id
}

pub async fn target(e: &Engine, node: Uuid, volume: &str, password: &str) -> Uuid {
    let t = Uuid::new_v4();
    e.node(
        node,
        NodeCommand::CreateTarget(NewTarget {
            uuid: t,
            volume_type: "iscsi".into(),
            boot_index: 0,
            volume_id: volume.into(),
            properties: chap(
                &format!("iqn.2010-10.org.openstack:{volume}"),
                "ABC",
                password,
            ),
            extra: Map::new(),
        }),
        &meta("operator"),
    )
    .await
    .unwrap();
    t
}

/// Gives `node` the `iscsi_boot` capability (a volume boot needs it).
pub async fn iscsi_capable(e: &Engine, node: Uuid) {
    cmd(
        e,
        node,
        NodeCommand::Patch {
            ops: vec![PatchOp {
                op: "add".into(),
                path: "/properties/capabilities".into(),
                value: Some(json!("iscsi_boot:True")),
            }],
        },
        "admin",
    )
    .await;
}

/// Adds a PXE port with `mac` to `node`.
pub async fn port(e: &Engine, node: Uuid, mac: &str) {
    cmd(
        e,
        node,
        NodeCommand::AddPort(NewPort {
            uuid: Uuid::new_v4(),
            address: mac.into(),
            pxe_enabled: true,
            extra: Map::new(),
            ..Default::default()
        }),
        "admin",
    )
    .await;
}

pub async fn cmd(e: &Engine, node: Uuid, c: NodeCommand, actor: &str) {
    e.node(node, c, &meta(actor)).await.unwrap();
}

pub fn verb(v: &str) -> NodeCommand {
    NodeCommand::Provision(ProvisionRequest::verb(v))
}

/// node-0: enrolled, connector, port, target A (CHAP), manage, provide,
/// deploy (active), undeploy (targets purged, available), target B, deploy
/// again (active). node-1: enrolled with a CHAP target, then deleted.
pub async fn scenario(e: &Engine) -> Scenario {
    let node = enroll(e, "node-0").await;
    iscsi_capable(e, node).await;
    cmd(
        e,
        node,
        NodeCommand::AddConnector(NewConnector {
            uuid: Uuid::new_v4(),
            kind: "iqn".into(),
            connector_id: format!("iqn.2017-08.org.openstack.{node}"),
            extra: Map::new(),
        }),
        "admin",
    )
    .await;
    port(e, node, "52:54:00:aa:bb:01").await;
    let target_a = target(e, node, "vol-a", SECRET_A).await;
    cmd(e, node, verb("manage"), "admin").await;
    cmd(e, node, verb("provide"), "admin").await;
    let available = head(e).await;
    cmd(e, node, verb("deploy"), "operator").await;
    cmd(e, node, NodeCommand::FinishDeploy, "ironledger-conductor").await;
    let deployed = head(e).await;
    cmd(e, node, verb("undeploy"), "operator").await;
    cmd(e, node, NodeCommand::PurgeTargets, "ironledger-conductor").await;
    cmd(e, node, NodeCommand::FinishUndeploy, "ironledger-conductor").await;
    let undeployed = head(e).await;
    let target_b = target(e, node, "vol-b", SECRET_B).await;
    cmd(e, node, verb("deploy"), "operator").await;
    cmd(e, node, NodeCommand::FinishDeploy, "ironledger-conductor").await;
    let redeployed = head(e).await;

    let other = enroll(e, "node-1").await;
    target(e, other, "vol-gone", SECRET_GONE).await;
    cmd(e, other, NodeCommand::Delete, "admin").await;
    let end = head(e).await;
    Scenario {
        node,
        other,
        target_a,
        target_b,
        available,
        deployed,
        undeployed,
        redeployed,
        end,
    }
}

impl Run {
    fn of(out: std::process::Output) -> Run {
        Run {
            ok: out.status.success(),
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}
