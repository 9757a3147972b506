//! An in-process ironledger API on a real TCP port, for HTTP-level tests.

use super::TestStore;
use ironledger::api::AppState;
use ironledger::config::{Config, Overrides};
use ironledger::domain::node::commands::EnrollNode;
use ironledger::domain::{NodeCommand, NodeServices};
use ironledger::engine::{Engine, Meta};
use ironledger::store::Opened;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::sync::Arc;

/// A running server and a client pointed at it.
pub struct Api {
    pub base: String,
    pub client: reqwest::Client,
    pub engine: Arc<Engine>,
    pub store: TestStore,
    /// The microversion sent with every request (`None` = no header).
    pub version: Option<String>,
    _server: tokio::task::JoinHandle<()>,
}

/// An answer: status, selected headers, JSON body (or `Null`).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    /// The decoded `faultstring` (or framework `description`) of an error.
    pub fn error(&self) -> String {
        let inner: Value =
            serde_json::from_str(self.body["error_message"].as_str().unwrap_or("{}"))
                .unwrap_or(Value::Null);
        inner["faultstring"]
            .as_str()
            .or(inner["description"].as_str())
            .unwrap_or_default()
            .to_string()
    }
}

/// Starts the API on `store` with `config_ini` (an ironic.conf body) applied.
pub async fn start_with(store: TestStore, config_ini: &str) -> Api {
    start_on(store, config_ini, false).await
}

/// [`start`] behind `ironledger serve`'s own listener
/// (`ironledger::http::server`: per-phase deadlines, each request in its own
/// task) instead of `axum::serve`.
pub async fn start_served(store: TestStore) -> Api {
    start_on(
        store,
        "[DEFAULT]\nenabled_storage_interfaces = cinder,external,noop\n",
        true,
    )
    .await
}

async fn start_on(store: TestStore, config_ini: &str, listener_of_serve: bool) -> Api {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("ironic.conf");
    std::fs::write(&conf, config_ini).unwrap();
    let config = Config::load(&Overrides {
        config_files: vec![conf],
        data_dir: Some(dir.path().to_path_buf()),
        database_url: Some("memory".into()),
    })
    .expect("test config");
    let opened = Opened {
        store: store.store.clone(),
        pg_pool: store.pg_pool.clone(),
    };
    let engine = Arc::new(Engine::on(
        opened,
        NodeServices {
            catalog: config.catalog.clone(),
        },
    ));
    let state = AppState {
        engine: engine.clone(),
        config: Arc::new(config),
    };
    let limits = state.config.api.limits.clone();
    let app = ironledger::http::router(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = if listener_of_serve {
        tokio::spawn(async move {
            ironledger::http::server::serve(listener, app, limits, std::future::pending())
                .await
                .unwrap();
        })
    } else {
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        })
    };
    std::mem::forget(dir);
    Api {
        base,
        client: reqwest::Client::new(),
        engine,
        store,
        version: Some("1.78".into()),
        _server: server,
    }
}

/// Starts the API with `external` storage enabled, as the guide's examples need.
pub async fn start(store: TestStore) -> Api {
    start_with(
        store,
        "[DEFAULT]\nenabled_storage_interfaces = cinder,external,noop\n",
    )
    .await
}

impl Api {
    /// Sends a request; `path` starts with `/`.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        self.call_v(method, path, body, self.version.as_deref())
            .await
    }

    /// Sends a request at an explicit microversion (`None` = no header).
    pub async fn call_v(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        version: Option<&str>,
    ) -> Answer {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(v) = version {
            req = req.header("X-OpenStack-Ironic-API-Version", v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request");
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, None).await
    }
    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(body)).await
    }
    pub async fn patch(&self, path: &str, body: Value) -> Answer {
        self.call(Method::PATCH, path, Some(body)).await
    }
    pub async fn put(&self, path: &str, body: Value) -> Answer {
        self.call(Method::PUT, path, Some(body)).await
    }
    pub async fn delete(&self, path: &str) -> Answer {
        self.call(Method::DELETE, path, None).await
    }
}

impl Api {
    /// Enrolls a fake-hardware node (in `enroll`, power state unknown) through
    /// the engine, optionally named and owned.
    pub async fn enroll(&self, name: Option<&str>, owner: Option<&str>) -> uuid::Uuid {
        let uuid = uuid::Uuid::new_v4();
        let mut cmd = EnrollNode {
            name: name.map(String::from),
            ..EnrollNode::new(uuid, "fake-hardware")
        };
        if let Some(o) = owner {
            cmd.fields.insert("owner".to_string(), serde_json::json!(o));
        }
        self.engine
            .node(uuid, NodeCommand::Enroll(cmd), &Meta::actor("test"))
            .await
            .expect("enroll");
        uuid
    }

    /// Gives node `node` (a UUID or name, not deploying) what a deploy needs
    /// to be accepted, as the guide sets it up: `external` storage, the
    /// `iscsi_boot` capability, a PXE port, an IQN connector and a
    /// boot-index-0 iSCSI target (a deploy of a node without them is refused
    /// at the request, as Ironic's conductor refuses it).
    pub async fn make_bootable(&self, node: &str) {
        let shown = self.get(&format!("/v1/nodes/{node}")).await;
        assert_eq!(shown.status, reqwest::StatusCode::OK, "{:?}", shown.body);
        let uuid = shown.body["uuid"].as_str().unwrap().to_string();
        let targets = self.get(&format!("/v1/nodes/{uuid}/volume/targets")).await;
        if targets.body["targets"]
            .as_array()
            .is_some_and(|t| !t.is_empty())
        {
            return; // made bootable already
        }
        let patched = self
            .patch(
                &format!("/v1/nodes/{uuid}"),
                serde_json::json!([
                    {"op": "replace", "path": "/storage_interface", "value": "external"},
                    {"op": "add", "path": "/properties/capabilities", "value": "iscsi_boot:True"},
                ]),
            )
            .await;
        assert_eq!(
            patched.status,
            reqwest::StatusCode::OK,
            "{:?}",
            patched.body
        );
        let mac = {
            let b = uuid::Uuid::new_v4().into_bytes();
            format!("52:54:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3])
        };
        for (path, body) in [
            (
                "/v1/ports",
                serde_json::json!({"address": mac, "node_uuid": uuid}),
            ),
            (
                "/v1/volume/connectors",
                serde_json::json!({"node_uuid": uuid, "type": "iqn",
                                   "connector_id": format!("iqn.2024-01.org.example:{uuid}")}),
            ),
            (
                "/v1/volume/targets",
                serde_json::json!({"node_uuid": uuid, "volume_type": "iscsi", "boot_index": 0,
                                   "volume_id": format!("vol-{uuid}"),
                                   "properties": {"target_iqn": format!("iqn.2010-10.org.openstack:{uuid}"),
                                                  "target_portal": "192.0.2.10:3260", "target_lun": 0}}),
            ),
        ] {
            let made = self.post(path, body).await;
            assert_eq!(
                made.status,
                reqwest::StatusCode::CREATED,
                "{path}: {:?}",
                made.body
            );
        }
    }

    /// The number of events a node has (to prove that a refusal wrote nothing).
    pub async fn event_count(&self, node: uuid::Uuid) -> usize {
        self.store
            .store
            .load("Node", &node.to_string())
            .await
            .unwrap()
            .len()
    }
}
