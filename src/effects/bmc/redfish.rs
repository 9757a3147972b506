//! A Redfish client for the power and boot-device calls of Ironic's `redfish`
//! hardware type, over the project's reqwest.
//!
//! What it does as Ironic (through sushy) does:
//! - `redfish_address` is a URL or a bare host; a bare host means `https://`.
//! - The system is found by following links, never by building paths: the
//!   service root's `Systems` → its `Members[].@odata.id`. `redfish_system_id`
//!   is the system's path (`/redfish/v1/Systems/1`) or its last segment; it
//!   may be left out when the service has exactly one system.
//! - Authentication `basic`, `session` (a session created through the
//!   service root's `Links.Sessions` or `SessionService.Sessions` link, its
//!   `X-Auth-Token` sent after, made again once if the BMC drops it) or `auto`
//!   (a session where the BMC offers one, else basic).
//! - TLS verification is on unless `redfish_verify_ca` is false; a path is a
//!   CA bundle used instead of the built-in roots.
//! - Power goes through the system's `Actions.#ComputerSystem.Reset.target`,
//!   checked against its `ResetType@Redfish.AllowableValues`; boot overrides
//!   through a PATCH of the system's `Boot`.

use super::error::bounded;
use super::{
    Bmc, BmcError, BmcErrorKind, BootDevice, BootDeviceInfo, BootMode, PowerAction, PowerState,
    Secret,
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::Mutex;

/// `redfish_auth_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthType {
    Basic,
    Session,
    Auto,
}

impl AuthType {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "basic" => Some(AuthType::Basic),
            "session" => Some(AuthType::Session),
            "auto" => Some(AuthType::Auto),
            _ => None,
        }
    }
}

/// `redfish_verify_ca`: a boolean, or the path of a CA bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyCa {
    Yes,
    No,
    Bundle(PathBuf),
}

impl VerifyCa {
    /// Ironic's reading: the usual spellings of a boolean, else a path.
    pub fn parse(s: &str) -> Self {
        match crate::domain::oslo::bool_word(s) {
            Some(true) => VerifyCa::Yes,
            Some(false) => VerifyCa::No,
            None => VerifyCa::Bundle(PathBuf::from(s.trim())),
        }
    }
}

#[derive(Debug, Clone)]
pub struct RedfishConfig {
    /// `redfish_address`, as given.
    pub address: String,
    /// `redfish_system_id`.
    pub system_id: Option<String>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub verify_ca: VerifyCa,
    pub auth_type: AuthType,
    /// Per request.
    pub timeout: Duration,
}

impl RedfishConfig {
    pub fn new(address: impl Into<String>) -> Self {
        RedfishConfig {
            address: address.into(),
            system_id: None,
            username: None,
            password: None,
            verify_ca: VerifyCa::Yes,
            auth_type: AuthType::Auto,
            timeout: Duration::from_secs(60),
        }
    }
}

/// The service's base URL (scheme, host, port; no path) from
/// `redfish_address`: a bare host gets `https://`, as in Ironic. Only `http`
/// and `https` are accepted.
pub fn base_url(address: &str) -> Result<reqwest::Url, String> {
    let a = address.trim();
    let with_scheme = if a.contains("://") {
        a.to_string()
    } else {
        format!("https://{a}")
    };
    let url = reqwest::Url::parse(&with_scheme)
        .map_err(|e| format!("invalid redfish_address {a:?}: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!(
            "invalid redfish_address {a:?}: expected a host or an http(s) URL"
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("invalid redfish_address: credentials go in redfish_username and redfish_password, not the URL".into());
    }
    Ok(url)
}

struct SessionToken {
    token: Secret,
    /// The session's URL, for DELETE when the client is done.
    location: Option<String>,
}

pub struct RedfishClient {
    http: reqwest::Client,
    config: RedfishConfig,
    base: reqwest::Url,
    /// The system's path, once found.
    system: Mutex<Option<String>>,
    /// The session in use; `Some(None)` once `auto` found no session service.
    session: Mutex<Option<Option<SessionToken>>>,
}

impl fmt::Debug for RedfishClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedfishClient")
            .field("address", &self.config.address)
            .field("system_id", &self.config.system_id)
            .field("username", &self.config.username)
            .field("password", &self.config.password.as_ref().map(|_| "******"))
            .field("auth_type", &self.config.auth_type)
            .finish()
    }
}

/// A request's outcome before error mapping.
struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl RedfishClient {
    pub fn new(config: RedfishConfig) -> Result<Self, BmcError> {
        let what = format!("Redfish connection to {}", config.address);
        let base =
            base_url(&config.address).map_err(|e| BmcError::new(&what, BmcErrorKind::Config, e))?;
        let mut builder = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            // A BMC's redirects are not followed with credentials attached.
            .redirect(reqwest::redirect::Policy::none());
        match &config.verify_ca {
            VerifyCa::Yes => {}
            VerifyCa::No => builder = builder.danger_accept_invalid_certs(true),
            VerifyCa::Bundle(path) => {
                let pem = std::fs::read(path).map_err(|e| {
                    BmcError::new(
                        &what,
                        BmcErrorKind::Config,
                        format!(
                            "cannot read the CA bundle {} (redfish_verify_ca): {e}",
                            path.display()
                        ),
                    )
                })?;
                let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                    BmcError::new(
                        &what,
                        BmcErrorKind::Config,
                        format!("the CA bundle {} is not PEM: {e}", path.display()),
                    )
                })?;
                builder = builder.tls_built_in_root_certs(false);
                for c in certs {
                    builder = builder.add_root_certificate(c);
                }
            }
        }
        let http = builder.build().map_err(|e| {
            BmcError::new(
                &what,
                BmcErrorKind::Config,
                format!("cannot build the HTTP client: {e}"),
            )
        })?;
        Ok(RedfishClient {
            http,
            config,
            base,
            system: Mutex::new(None),
            session: Mutex::new(None),
        })
    }

    pub fn config(&self) -> &RedfishConfig {
        &self.config
    }

    fn what(&self, action: &str) -> String {
        format!("Redfish {action} of {}", self.config.address)
    }

    fn url(&self, path: &str) -> Result<reqwest::Url, String> {
        // Links are absolute paths on the same service; a link to another
        // host is not followed (credentials would go with it).
        let url = self
            .base
            .join(path)
            .map_err(|e| format!("the BMC gave an unusable link {path:?}: {e}"))?;
        if url.origin() != self.base.origin() {
            return Err(format!(
                "the BMC links to another service ({path:?}); not followed"
            ));
        }
        Ok(url)
    }

    /// One HTTP exchange, authenticated as configured; no status mapping.
    async fn send(
        &self,
        what: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
        auth: Auth<'_>,
    ) -> Result<Answer, BmcError> {
        let url = self
            .url(path)
            .map_err(|e| BmcError::new(what, BmcErrorKind::Failed, e))?;
        tracing::debug!(bmc = %self.config.address, method = %method, path, "redfish request");
        let mut req = self
            .http
            .request(method, url)
            .header("Accept", "application/json")
            .header("OData-Version", "4.0");
        match auth {
            Auth::None => {}
            Auth::Basic => {
                if let Some(user) = &self.config.username {
                    req = req.basic_auth(user, self.config.password.as_ref().map(Secret::expose));
                }
            }
            Auth::Token(t) => req = req.header("X-Auth-Token", t),
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let res = req.send().await.map_err(|e| {
            BmcError::new(
                what,
                BmcErrorKind::Unreachable,
                format!("cannot reach the BMC: {}", reqwest_reason(&e)),
            )
        })?;
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.map_err(|e| {
            BmcError::new(
                what,
                BmcErrorKind::Unreachable,
                format!("the BMC's answer was cut off: {}", reqwest_reason(&e)),
            )
        })?;
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        tracing::debug!(bmc = %self.config.address, status = status.as_u16(), path, "redfish answer");
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    /// Creates a session through the service's `Sessions` link. `Ok(None)`:
    /// the service offers none.
    async fn create_session(&self, what: &str) -> Result<Option<SessionToken>, BmcError> {
        let root = self
            .send(what, Method::GET, "/redfish/v1/", None, Auth::None)
            .await?;
        let root = check(what, root)?;
        let mut link = root.body["Links"]["Sessions"]["@odata.id"]
            .as_str()
            .map(String::from);
        if link.is_none() {
            if let Some(svc) = root.body["SessionService"]["@odata.id"].as_str() {
                let s = check(
                    what,
                    self.send(what, Method::GET, svc, None, Auth::Basic).await?,
                )?;
                link = s.body["Sessions"]["@odata.id"].as_str().map(String::from);
            }
        }
        let Some(link) = link else { return Ok(None) };
        let body = json!({
            "UserName": self.config.username.clone().unwrap_or_default(),
            "Password": self.config.password.as_ref().map(Secret::expose).unwrap_or_default(),
        });
        let answer = self
            .send(what, Method::POST, &link, Some(&body), Auth::None)
            .await?;
        let answer = check(what, answer)?;
        let token = answer
            .headers
            .get("X-Auth-Token")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                BmcError::new(
                    what,
                    BmcErrorKind::Failed,
                    "the BMC created a session without an X-Auth-Token",
                )
            })?;
        Ok(Some(SessionToken {
            token: Secret::new(token),
            location: answer
                .headers
                .get("Location")
                .and_then(|v| v.to_str().ok())
                .map(String::from),
        }))
    }

    /// A request with the configured authentication, mapped to an error on a
    /// non-2xx status.
    async fn call(
        &self,
        what: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, BmcError> {
        if self.config.auth_type == AuthType::Basic || self.config.username.is_none() {
            return check(
                what,
                self.send(what, method, path, body, Auth::Basic).await?,
            );
        }
        for attempt in 0..2 {
            let token = {
                let mut session = self.session.lock().await;
                if session.is_none() {
                    let created = match self.create_session(what).await {
                        Ok(s) => s,
                        // `auto` falls back to basic when no session can be made
                        // for a reason other than the network.
                        Err(e) if self.config.auth_type == AuthType::Auto && !e.transient => None,
                        Err(e) => return Err(e),
                    };
                    if created.is_none() && self.config.auth_type == AuthType::Session {
                        return Err(BmcError::new(
                            what,
                            BmcErrorKind::Unsupported,
                            "redfish_auth_type is session but the BMC offers no SessionService",
                        ));
                    }
                    *session = Some(created);
                }
                session
                    .as_ref()
                    .and_then(|s| s.as_ref())
                    .map(|s| s.token.expose().to_string())
            };
            let Some(token) = token else {
                return check(
                    what,
                    self.send(what, method, path, body, Auth::Basic).await?,
                );
            };
            let answer = self
                .send(what, method.clone(), path, body, Auth::Token(&token))
                .await?;
            if answer.status == StatusCode::UNAUTHORIZED && attempt == 0 {
                // The BMC dropped the session (expired, BMC restarted): make one anew.
                *self.session.lock().await = None;
                continue;
            }
            return check(what, answer);
        }
        unreachable!("the loop returns on its second attempt")
    }

    /// Ends the session, if one was made (BMCs have few session slots).
    pub async fn close(&self) {
        let taken = self.session.lock().await.take().flatten();
        if let Some(SessionToken {
            token,
            location: Some(loc),
        }) = taken
        {
            let what = self.what("session logout");
            let _ = self
                .send(
                    &what,
                    Method::DELETE,
                    &loc,
                    None,
                    Auth::Token(token.expose()),
                )
                .await;
        }
    }

    /// The system's path, found through the links once and kept; `action`
    /// names the call it is for in errors.
    pub async fn system_path(&self, action: &str) -> Result<String, BmcError> {
        let mut cached = self.system.lock().await;
        if let Some(p) = cached.as_ref() {
            return Ok(p.clone());
        }
        let what = self.what(action);
        let root = self.call(&what, Method::GET, "/redfish/v1/", None).await?;
        let systems = root.body["Systems"]["@odata.id"].as_str().ok_or_else(|| {
            BmcError::new(
                &what,
                BmcErrorKind::Failed,
                "the service root has no Systems link",
            )
        })?;
        let coll = self.call(&what, Method::GET, systems, None).await?;
        let members: Vec<String> = coll.body["Members"]
            .as_array()
            .map(|m| {
                m.iter()
                    .filter_map(|x| x["@odata.id"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let path = match &self.config.system_id {
            Some(id) => {
                let id = id.trim_end_matches('/');
                members
                    .iter()
                    .find(|m| {
                        let m = m.trim_end_matches('/');
                        m == id || m.rsplit('/').next() == Some(id)
                    })
                    .cloned()
                    .ok_or_else(|| {
                        BmcError::new(
                            &what,
                            BmcErrorKind::NotFound,
                            format!(
                                "the BMC has no system {id:?} (redfish_system_id); it has {}",
                                list(&members)
                            ),
                        )
                    })?
            }
            None if members.len() == 1 => members[0].clone(),
            None => {
                return Err(BmcError::new(
                    &what,
                    BmcErrorKind::Config,
                    format!(
                        "redfish_system_id is required: the BMC has {} systems ({})",
                        members.len(),
                        list(&members)
                    ),
                ))
            }
        };
        *cached = Some(path.clone());
        Ok(path)
    }

    async fn system(&self, action: &str) -> Result<(String, Value), BmcError> {
        let path = self.system_path(action).await?;
        let answer = self
            .call(&self.what(action), Method::GET, &path, None)
            .await?;
        Ok((path, answer.body))
    }
}

enum Auth<'a> {
    None,
    Basic,
    Token(&'a str),
}

fn list(members: &[String]) -> String {
    if members.is_empty() {
        "none".into()
    } else {
        members.join(", ")
    }
}

/// A reqwest error's reason, without the URL (kept out of errors so they stay
/// short; the action already names the BMC).
fn reqwest_reason(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(u) = e.url() {
        s = s
            .replace(&format!(" ({u})"), "")
            .replace(u.as_str(), "<bmc>");
    }
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    if e.is_timeout() {
        s.push_str(" (timed out)");
    }
    s
}

/// Maps a non-2xx answer to an error with the BMC's own message.
fn check(what: &str, a: Answer) -> Result<Answer, BmcError> {
    if a.status.is_success() {
        return Ok(a);
    }
    let code = a.status.as_u16();
    let message = a.body["error"]["@Message.ExtendedInfo"][0]["Message"]
        .as_str()
        .or_else(|| a.body["error"]["message"].as_str())
        .unwrap_or_else(|| a.status.canonical_reason().unwrap_or("no message"))
        .to_string();
    let (kind, reason) = match a.status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => (
            BmcErrorKind::Unauthorized,
            format!("the BMC refused the credentials (HTTP {code}): {message}"),
        ),
        StatusCode::NOT_FOUND => (
            BmcErrorKind::NotFound,
            format!("the BMC has no such resource (HTTP 404): {message}"),
        ),
        s => (
            BmcErrorKind::Failed,
            format!("the BMC answered HTTP {}: {message}", s.as_u16()),
        ),
    };
    Err(BmcError::new(what, kind, bounded(&reason)).transient(a.status.is_server_error()))
}

/// Ironic's power action → Redfish `ResetType`.
pub fn reset_type(action: PowerAction) -> &'static str {
    match action {
        PowerAction::PowerOn => "On",
        PowerAction::PowerOff => "ForceOff",
        PowerAction::SoftPowerOff => "GracefulShutdown",
        PowerAction::Reboot => "ForceRestart",
        PowerAction::SoftReboot => "GracefulRestart",
    }
}

/// Ironic's boot device → `BootSourceOverrideTarget` (`safe` has none).
pub fn override_target(device: BootDevice) -> Option<&'static str> {
    match device {
        BootDevice::Pxe => Some("Pxe"),
        BootDevice::Disk => Some("Hdd"),
        BootDevice::Cdrom => Some("Cd"),
        BootDevice::Bios => Some("BiosSetup"),
        BootDevice::Safe => None,
    }
}

fn device_of_target(target: &str) -> Option<BootDevice> {
    match target {
        "Pxe" => Some(BootDevice::Pxe),
        "Hdd" => Some(BootDevice::Disk),
        "Cd" => Some(BootDevice::Cdrom),
        "BiosSetup" => Some(BootDevice::Bios),
        _ => None,
    }
}

fn allowable<'a>(v: &'a Value, key: &str) -> Option<Vec<&'a str>> {
    v.get(key)?
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
}

#[async_trait::async_trait]
impl Bmc for RedfishClient {
    async fn power_state(&self) -> Result<PowerState, BmcError> {
        let (_, sys) = self.system("power state").await?;
        match sys["PowerState"].as_str() {
            // As Ironic: a transition reads as the state it leads to.
            Some("On") | Some("PoweringOn") => Ok(PowerState::On),
            Some("Off") | Some("PoweringOff") => Ok(PowerState::Off),
            other => Err(BmcError::new(
                self.what("power state"),
                BmcErrorKind::Failed,
                format!("the BMC reports no usable PowerState ({other:?})"),
            )),
        }
    }

    async fn set_power(&self, action: PowerAction) -> Result<(), BmcError> {
        let what = self.what(action.as_str());
        let (_, sys) = self.system(action.as_str()).await?;
        let reset = &sys["Actions"]["#ComputerSystem.Reset"];
        let target = reset["target"].as_str().ok_or_else(|| {
            BmcError::new(
                &what,
                BmcErrorKind::Unsupported,
                "the system offers no ComputerSystem.Reset action",
            )
        })?;
        let value = reset_type(action);
        if let Some(allowed) = allowable(reset, "ResetType@Redfish.AllowableValues") {
            if !allowed.contains(&value) {
                return Err(BmcError::new(
                    &what,
                    BmcErrorKind::Unsupported,
                    format!(
                        "the BMC does not allow ResetType {value} (allowed: {})",
                        allowed.join(", ")
                    ),
                ));
            }
        }
        self.call(
            &what,
            Method::POST,
            target,
            Some(&json!({ "ResetType": value })),
        )
        .await?;
        tracing::info!(bmc = %self.config.address, action = %action, reset_type = value, "redfish reset requested");
        Ok(())
    }

    async fn boot_device(&self) -> Result<BootDeviceInfo, BmcError> {
        let (_, sys) = self.system("boot device").await?;
        let boot = &sys["Boot"];
        Ok(BootDeviceInfo {
            device: boot["BootSourceOverrideTarget"]
                .as_str()
                .and_then(device_of_target),
            // As Ironic: only Continuous and Once say; Disabled does not.
            persistent: match boot["BootSourceOverrideEnabled"].as_str() {
                Some("Continuous") => Some(true),
                Some("Once") => Some(false),
                _ => None,
            },
        })
    }

    async fn set_boot_device(
        &self,
        device: BootDevice,
        persistent: bool,
        mode: Option<BootMode>,
    ) -> Result<(), BmcError> {
        let what = self.what(&format!("set boot device {device}"));
        let target = override_target(device).ok_or_else(|| {
            BmcError::new(
                &what,
                BmcErrorKind::Unsupported,
                format!("Redfish has no boot device {device}"),
            )
        })?;
        let (path, sys) = self.system("set boot device").await?;
        if let Some(allowed) = allowable(
            &sys["Boot"],
            "BootSourceOverrideTarget@Redfish.AllowableValues",
        ) {
            if !allowed.contains(&target) {
                return Err(BmcError::new(
                    &what,
                    BmcErrorKind::Unsupported,
                    format!(
                        "the BMC does not allow BootSourceOverrideTarget {target} (allowed: {})",
                        allowed.join(", ")
                    ),
                ));
            }
        }
        // As Ironic (sushy) does it: the target always; the persistence and
        // the mode only where they differ from what the system reports (some
        // BMCs refuse a PATCH of a value they already hold); a URI left from
        // an HTTP boot cleared, so it cannot take over the network boot.
        let current = &sys["Boot"];
        let mut boot = json!({ "BootSourceOverrideTarget": target });
        let enabled = if persistent { "Continuous" } else { "Once" };
        if current["BootSourceOverrideEnabled"].as_str() != Some(enabled) {
            boot["BootSourceOverrideEnabled"] = json!(enabled);
        }
        if let Some(m) = mode {
            let wanted = match m {
                BootMode::Uefi => "UEFI",
                BootMode::Bios => "Legacy",
            };
            if current["BootSourceOverrideMode"].as_str() != Some(wanted) {
                boot["BootSourceOverrideMode"] = json!(wanted);
            }
        }
        if current["HttpBootUri"]
            .as_str()
            .is_some_and(|u| !u.is_empty())
        {
            boot["HttpBootUri"] = Value::Null;
        }
        self.call(&what, Method::PATCH, &path, Some(&json!({ "Boot": boot })))
            .await?;
        Ok(())
    }

    async fn supported_boot_devices(&self) -> Result<Vec<BootDevice>, BmcError> {
        let (_, sys) = self.system("supported boot devices").await?;
        let all = [
            BootDevice::Pxe,
            BootDevice::Disk,
            BootDevice::Cdrom,
            BootDevice::Bios,
        ];
        Ok(
            match allowable(
                &sys["Boot"],
                "BootSourceOverrideTarget@Redfish.AllowableValues",
            ) {
                Some(allowed) => all
                    .into_iter()
                    .filter(|d| override_target(*d).is_some_and(|t| allowed.contains(&t)))
                    .collect(),
                None => all.to_vec(),
            },
        )
    }
}
