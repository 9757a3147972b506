//! A client for Cinder's Block Storage v3 API, attaching volumes the way Ironic
//! does (`docs/ironic-behaviour.md` §9.1–§9.3): the legacy volume actions `os-reserve`,
//! `os-initialize_connection`, `os-attach` (mountpoint `ironic_mountpoint`),
//! volume metadata `ironic_node_<uuid>`; and `os-begin_detaching`,
//! `os-terminate_connection`, `os-detach` to detach.
//!
//! Errors say whether they are worth retrying ([`CinderError::transient`]):
//! connection failures, timeouts and 5xx are; 4xx answers are not. Connection
//! info carries CHAP secrets: it is never logged, and `Debug` of the client
//! hides the token.

use crate::domain::node::entities::Connector;
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::fmt;
use std::time::Duration;

/// How the client authenticates (`[cinder] auth_type`).
#[derive(Clone, PartialEq, Eq)]
pub enum CinderAuth {
    /// Cinder's no-auth mode: `X-Auth-Token: <username>:<project_id>`.
    None {
        username: String,
        project_id: String,
    },
    /// A static token (`[cinder] token`).
    Token(String),
}

impl fmt::Debug for CinderAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CinderAuth::None {
                username,
                project_id,
            } => write!(f, "none({username}:{project_id})"),
            CinderAuth::Token(_) => f.write_str("token(******)"),
        }
    }
}

/// `[cinder]` options, with Ironic's names.
#[derive(Debug, Clone)]
pub struct CinderConfig {
    /// The Block Storage v3 URL including the project, e.g.
    /// `http://127.0.0.1:8776/v3/<project_id>` (`endpoint_override`).
    pub endpoint: String,
    pub auth: CinderAuth,
    pub timeout: Duration,
    /// Detach retries; total attempts = retries + 1 (`action_retries`, default 3).
    pub action_retries: u32,
    /// Pause between detach retries (`action_retry_interval`, default 5 s).
    pub action_retry_interval: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CinderError {
    pub message: String,
    /// Worth retrying: the service was unreachable, timed out or failed (5xx).
    pub transient: bool,
    /// The HTTP status, when Cinder answered.
    pub status: Option<u16>,
}

impl CinderError {
    fn permanent(message: impl Into<String>) -> Self {
        CinderError {
            message: message.into(),
            transient: false,
            status: None,
        }
    }
}

/// What ironledger needs to know of a volume.
#[derive(Debug, Clone, PartialEq)]
pub struct VolumeInfo {
    pub id: String,
    pub status: String,
    pub multiattach: bool,
    /// `(server_id, attachment_id)` of each attachment.
    pub attachments: Vec<(String, String)>,
    /// The volume's user metadata (Cinder keeps strings only).
    pub metadata: Map<String, Value>,
}

impl VolumeInfo {
    /// The attachment of this node (by instance uuid or node uuid), if any.
    pub fn attachment_of(&self, ids: &[&str]) -> Option<&str> {
        self.attachments
            .iter()
            .find(|(server, _)| ids.contains(&server.as_str()))
            .map(|(_, a)| a.as_str())
    }

    /// The `last_action` of the node's `ironic_node_<uuid>` metadata entry,
    /// written by [`CinderClient::set_node_metadata`].
    pub fn last_action_of(&self, node_uuid: &str) -> Option<String> {
        let raw = self
            .metadata
            .get(&format!("ironic_node_{node_uuid}"))?
            .as_str()?;
        let v: Value = serde_json::from_str(raw).ok()?;
        v["last_action"].as_str().map(String::from)
    }

    /// Whether this node reserved the volume (`os-reserve`) and never finished
    /// attaching it: Cinder shows the volume `attaching` with no attachment of
    /// the node, and the node's metadata mark says it was reserving. Cinder
    /// records no owner of a reservation; the mark, written just before
    /// `os-reserve`, is how a resumed deploy or a compensation tells its own
    /// reservation from someone else's.
    pub fn reserved_by(&self, node_uuid: &str, ids: &[&str]) -> bool {
        self.status == "attaching"
            && self.attachment_of(ids).is_none()
            && self.last_action_of(node_uuid).as_deref() == Some(RESERVING)
    }
}

/// The `last_action` ironledger writes on a volume just before reserving it.
pub const RESERVING: &str = "reserving";

/// Builds the connector Cinder is given from a node's volume connectors (§9.1):
/// the first `iqn` → `initiator`, the first `ip` → `ip`, every `wwpn`/`wwnn` into
/// lists; `host` is the node UUID; `multipath` when the node has more than one
/// connector. Types are matched by substring, as Ironic does.
pub fn connector_for(node_uuid: &str, connectors: &[Connector]) -> Result<Value, CinderError> {
    let mut out = Map::new();
    let (mut wwpns, mut wwnns) = (Vec::new(), Vec::new());
    for c in connectors {
        if c.kind.contains("iqn") {
            out.entry("initiator")
                .or_insert_with(|| json!(c.connector_id));
        } else if c.kind.contains("ip") {
            out.entry("ip").or_insert_with(|| json!(c.connector_id));
        } else if c.kind.contains("wwpn") {
            wwpns.push(json!(c.connector_id));
        } else if c.kind.contains("wwnn") {
            wwnns.push(json!(c.connector_id));
        } else {
            tracing::warn!(node = node_uuid, kind = %c.kind, "ignoring unsupported volume connector type");
        }
    }
    if !out.contains_key("initiator") && wwpns.is_empty() && wwnns.is_empty() {
        return Err(CinderError::permanent(format!(
            "Insufficient or incompatible volume connection records for node {node_uuid}. Valid connector types: wwpn, wwnn, iqn"
        )));
    }
    if !wwpns.is_empty() {
        out.insert("wwpns".into(), Value::Array(wwpns));
    }
    if !wwnns.is_empty() {
        out.insert("wwnns".into(), Value::Array(wwnns));
    }
    out.insert("host".into(), json!(node_uuid));
    if connectors.len() > 1 {
        out.insert("multipath".into(), json!(true));
    }
    Ok(Value::Object(out))
}

/// One request to Cinder as the client sends it (the path is relative to the
/// endpoint). The client builds every request here, and the deploy plan shows
/// the same values, so what `ironledger plan` prints is what is sent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CinderRequest {
    pub method: &'static str,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
}

impl CinderRequest {
    pub fn get_volume(volume_id: &str) -> Self {
        CinderRequest {
            method: "GET",
            path: format!("volumes/{volume_id}"),
            body: None,
        }
    }

    /// A volume action (`os-reserve`, `os-attach`, …) with its arguments.
    pub fn action(volume_id: &str, action: &str, args: Value) -> Self {
        CinderRequest {
            method: "POST",
            path: format!("volumes/{volume_id}/action"),
            body: Some(json!({ action: args })),
        }
    }

    pub fn reserve(volume_id: &str) -> Self {
        Self::action(volume_id, "os-reserve", Value::Null)
    }

    pub fn initialize_connection(volume_id: &str, connector: &Value) -> Self {
        Self::action(
            volume_id,
            "os-initialize_connection",
            json!({"connector": connector}),
        )
    }

    pub fn attach(volume_id: &str, instance_uuid: &str) -> Self {
        Self::action(
            volume_id,
            "os-attach",
            json!({"mountpoint": "ironic_mountpoint", "instance_uuid": instance_uuid}),
        )
    }

    /// The node's note on the volume (`ironic_node_<uuid>`): who uses it, its
    /// last action and when (`last_seen`).
    pub fn node_metadata(
        volume_id: &str,
        node_uuid: &str,
        instance: &str,
        action: &str,
        last_seen: &str,
    ) -> Self {
        let value = json!({
            "instance_uuid": instance,
            "last_seen": last_seen,
            "last_action": action,
        })
        .to_string();
        CinderRequest {
            method: "POST",
            path: format!("volumes/{volume_id}/metadata"),
            body: Some(json!({"metadata": { format!("ironic_node_{node_uuid}"): value }})),
        }
    }

    /// The request's name in `/metrics`: the volume action (`os-reserve`,
    /// …), else the method and the path's fixed words (`GET volumes`,
    /// `POST volumes/metadata`), never an id (the series stay few).
    fn metric_name(&self) -> String {
        let action = self.action_name();
        if !action.is_empty() {
            return action.to_string();
        }
        let words: Vec<&str> = self
            .path
            .split('/')
            .filter(|seg| matches!(*seg, "volumes" | "metadata" | "action"))
            .collect();
        format!("{} {}", self.method, words.join("/"))
    }

    /// A volume action's name (`os-reserve`): the one key of its body.
    fn action_name(&self) -> &str {
        self.body
            .as_ref()
            .and_then(Value::as_object)
            .and_then(|m| m.keys().next())
            .map_or("", String::as_str)
    }
}

#[derive(Clone)]
pub struct CinderClient {
    http: reqwest::Client,
    config: CinderConfig,
}

impl fmt::Debug for CinderClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CinderClient")
            .field("endpoint", &self.config.endpoint)
            .field("auth", &self.config.auth)
            .finish()
    }
}

impl CinderClient {
    pub fn new(config: CinderConfig) -> Result<Self, CinderError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| CinderError::permanent(format!("cannot build the HTTP client: {e}")))?;
        Ok(CinderClient { http, config })
    }

    pub fn config(&self) -> &CinderConfig {
        &self.config
    }

    /// One request; `what` names it in errors (`os-reserve of volume …`).
    async fn call(
        &self,
        what: &str,
        request: CinderRequest,
    ) -> Result<(StatusCode, Value), CinderError> {
        let action = request.metric_name();
        let start = std::time::Instant::now();
        let result = self.call_timed(what, request).await;
        crate::metrics::metrics().call("cinder", &action, result.is_ok(), start.elapsed());
        result
    }

    async fn call_timed(
        &self,
        what: &str,
        request: CinderRequest,
    ) -> Result<(StatusCode, Value), CinderError> {
        let CinderRequest { method, path, body } = request;
        let url = format!("{}/{}", self.config.endpoint.trim_end_matches('/'), path);
        let method = Method::from_bytes(method.as_bytes()).expect("a method name");
        let mut req = self
            .http
            .request(method, &url)
            .header("Accept", "application/json");
        req = match &self.config.auth {
            CinderAuth::None {
                username,
                project_id,
            } => req.header("X-Auth-Token", format!("{username}:{project_id}")),
            CinderAuth::Token(t) => req.header("X-Auth-Token", t),
        };
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.map_err(|e| CinderError {
            message: format!(
                "Failed to connect to block storage service at {}: {}",
                self.config.endpoint,
                without_url(&e)
            ),
            transient: true,
            status: None,
        })?;
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok((status, body));
        }
        // Cinder errors look like {"badRequest": {"code": 400, "message": "…"}}.
        let message = body
            .as_object()
            .and_then(|m| m.values().next())
            .and_then(|v| v["message"].as_str())
            .map(String::from)
            .unwrap_or_else(|| text.trim().chars().take(200).collect::<String>());
        let message = if message.is_empty() {
            status
                .canonical_reason()
                .unwrap_or("no message")
                .to_string()
        } else {
            message
        };
        Err(CinderError {
            message: format!("{what}: Cinder answered {}: {message}", status.as_u16()),
            transient: status.is_server_error(),
            status: Some(status.as_u16()),
        })
    }

    async fn action(
        &self,
        volume_id: &str,
        action: &str,
        args: Value,
    ) -> Result<Value, CinderError> {
        self.send_action(volume_id, CinderRequest::action(volume_id, action, args))
            .await
    }

    /// Sends an action on `volume_id` built by [`CinderRequest`].
    async fn send_action(
        &self,
        volume_id: &str,
        request: CinderRequest,
    ) -> Result<Value, CinderError> {
        let what = format!("{} of volume {volume_id}", request.action_name());
        let (_, body) = self.call(&what, request).await?;
        Ok(body)
    }

    pub async fn get_volume(&self, volume_id: &str) -> Result<VolumeInfo, CinderError> {
        let (status, body) = self
            .call(
                &format!("Getting volume {volume_id}"),
                CinderRequest::get_volume(volume_id),
            )
            .await?;
        // Cinder's no-auth mode answers 204 with no body when the token is missing.
        let v = body.get("volume").ok_or_else(|| CinderError {
            message: format!(
                "Cinder answered {} without a volume for {volume_id}",
                status.as_u16()
            ),
            transient: false,
            status: Some(status.as_u16()),
        })?;
        let attachments = v["attachments"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|x| {
                        let s = |k: &str| x[k].as_str().unwrap_or_default().to_string();
                        (s("server_id"), s("attachment_id"))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(VolumeInfo {
            id: v["id"].as_str().unwrap_or(volume_id).to_string(),
            status: v["status"].as_str().unwrap_or_default().to_string(),
            multiattach: v["multiattach"].as_bool().unwrap_or(false),
            attachments,
            metadata: v["metadata"].as_object().cloned().unwrap_or_default(),
        })
    }

    pub async fn reserve(&self, volume_id: &str) -> Result<(), CinderError> {
        self.send_action(volume_id, CinderRequest::reserve(volume_id))
            .await
            .map(|_| ())
    }

    pub async fn unreserve(&self, volume_id: &str) -> Result<(), CinderError> {
        self.action(volume_id, "os-unreserve", Value::Null)
            .await
            .map(|_| ())
    }

    /// `os-initialize_connection`: returns `connection_info` (`driver_volume_type`, `data`).
    pub async fn initialize_connection(
        &self,
        volume_id: &str,
        connector: &Value,
    ) -> Result<Value, CinderError> {
        let body = self
            .send_action(
                volume_id,
                CinderRequest::initialize_connection(volume_id, connector),
            )
            .await?;
        body.get("connection_info").cloned().ok_or_else(|| {
            CinderError::permanent(format!(
                "os-initialize_connection for {volume_id} returned no connection_info"
            ))
        })
    }

    pub async fn attach(&self, volume_id: &str, instance_uuid: &str) -> Result<(), CinderError> {
        self.send_action(volume_id, CinderRequest::attach(volume_id, instance_uuid))
            .await
            .map(|_| ())
    }

    pub async fn begin_detaching(&self, volume_id: &str) -> Result<(), CinderError> {
        self.action(volume_id, "os-begin_detaching", Value::Null)
            .await
            .map(|_| ())
    }

    pub async fn roll_detaching(&self, volume_id: &str) -> Result<(), CinderError> {
        self.action(volume_id, "os-roll_detaching", Value::Null)
            .await
            .map(|_| ())
    }

    pub async fn terminate_connection(
        &self,
        volume_id: &str,
        connector: &Value,
    ) -> Result<(), CinderError> {
        self.action(
            volume_id,
            "os-terminate_connection",
            json!({"connector": connector}),
        )
        .await
        .map(|_| ())
    }

    pub async fn detach(&self, volume_id: &str, attachment_id: &str) -> Result<(), CinderError> {
        self.action(
            volume_id,
            "os-detach",
            json!({"attachment_id": attachment_id}),
        )
        .await
        .map(|_| ())
    }

    /// Records which node uses the volume (`ironic_node_<uuid>`), as Ironic does.
    pub async fn set_node_metadata(
        &self,
        volume_id: &str,
        node_uuid: &str,
        instance: &str,
        action: &str,
    ) -> Result<(), CinderError> {
        let now = chrono::Utc::now()
            .format("%Y-%m-%dT%H:%M:%S%.6f")
            .to_string();
        self.call(
            &format!("Setting the metadata of volume {volume_id}"),
            CinderRequest::node_metadata(volume_id, node_uuid, instance, action, &now),
        )
        .await
        .map(|_| ())
    }
}

/// A reqwest error's text without the URL (which may carry a project id only,
/// but keep logs uniform).
fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(u) = e.url() {
        s = s.replace(u.as_str(), "<cinder>");
    }
    if e.is_timeout() {
        s.push_str(" (timed out)");
    }
    s
}
