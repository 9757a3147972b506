//! Configuration: an `ironic.conf`-style INI file, environment overrides, and
//! command-line flags, in increasing order of precedence.
//!
//! Option names are Ironic's where Ironic has the option (`[database]
//! connection`, `[api] host_ip`, `[DEFAULT] enabled_storage_interfaces`, …), so an
//! operator's existing knowledge and files carry over. Any option can also be
//! set from the environment as `IRONLEDGER__<SECTION>__<OPTION>` (for example
//! `IRONLEDGER__API__PORT=6385`). Unknown options are ignored with a warning;
//! invalid values stop the start with a message naming the option.

use crate::domain::hardware::{EnabledInterfaces, HardwareCatalog, INTERFACE_KINDS};
use crate::store::DatabaseUrl;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("invalid value for [{section}] {option}: {message}")]
    Invalid {
        section: String,
        option: String,
        message: String,
    },
}

/// Authentication of API requests (`[DEFAULT] auth_strategy`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthStrategy {
    NoAuth,
    HttpBasic { user_file: PathBuf },
}

#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub host_ip: IpAddr,
    pub port: u16,
    /// `[api] max_limit`: the most items a list returns.
    pub max_limit: u32,
    /// `[api] public_endpoint`: base URL for links (else the request's host).
    pub public_endpoint: Option<String>,
    /// `[api] header_timeout`, `body_timeout`, `idle_timeout`, `max_connections`.
    pub limits: ConnectionLimits,
    /// `[api] auth_failure_limit`, `auth_address_failure_limit`, `auth_backoff`.
    pub auth_throttle: AuthThrottle,
    /// `[api] idempotency_retention`: how long a write's `Idempotency-Key`
    /// and its answer are kept (see `crate::api::idempotency`).
    pub idempotency_retention: std::time::Duration,
}

/// Default of `[api] idempotency_retention`: a day, as long as a client
/// plausibly retries a write it lost the answer to.
pub const IDEMPOTENCY_RETENTION: std::time::Duration = std::time::Duration::from_secs(86_400);

/// What one client may hold of the listener (ironledger's own `[api]` options:
/// Ironic leaves this to its WSGI server). See `crate::http::server`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// From the first byte of a request to the end of its head.
    pub header_timeout: std::time::Duration,
    /// From the end of the head to the end of the body.
    pub body_timeout: std::time::Duration,
    /// How long a connection may wait for a request: a fresh one that sends
    /// nothing, or a kept-alive one after its last answer.
    pub idle_timeout: std::time::Duration,
    /// Connections served at once; beyond, new ones are answered 503 and closed.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_timeout: std::time::Duration::from_secs(30),
            body_timeout: std::time::Duration::from_secs(60),
            idle_timeout: std::time::Duration::from_secs(60),
            max_connections: 1000,
        }
    }
}

/// Back-off of repeated failed logins under `http_basic` (see `crate::api::auth`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthThrottle {
    /// Failures of one user from one client address before it must wait.
    pub per_user: u32,
    /// Failures from one client address, whatever the users, before it must wait.
    pub per_address: u32,
    /// How long after its last failure a blocked caller waits.
    pub backoff: std::time::Duration,
}

impl Default for AuthThrottle {
    fn default() -> Self {
        AuthThrottle {
            per_user: 5,
            per_address: 20,
            backoff: std::time::Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub database: DatabaseUrl,
    pub data_dir: PathBuf,
    pub api: ApiConfig,
    pub auth: AuthStrategy,
    pub catalog: HardwareCatalog,
    /// `[deploy] http_root`: where iPXE scripts are written.
    pub http_root: PathBuf,
    /// `[deploy] http_url`: where machines fetch them.
    pub http_url: Option<String>,
    /// `[deploy] san_boot_retries` (ironledger's own; default 6, or
    /// `forever` as Ironic's template): how often a node's iPXE script tries
    /// its SAN boot again, 10 s apart, before it gives up on the console.
    pub san_boot_retries: crate::effects::ipxe::SanRetries,
    /// `[conductor] automated_clean`.
    pub automated_clean: bool,
    /// `[cinder]`: set when `endpoint_override` is.
    pub cinder: Option<crate::effects::cinder::CinderConfig>,
    /// `[conductor] lease_seconds` (ironledger's own): how long a process keeps
    /// a node it works on without renewing; after a crash another process takes
    /// the node over this much later.
    pub lease_ttl: std::time::Duration,
    /// `[conductor] power_state_change_timeout` (Ironic's, default 60 s): how
    /// long a BMC power change may take when the request names no `timeout`.
    pub power_state_change_timeout: std::time::Duration,
    /// The periodic power-state sync of BMC nodes (`[conductor]
    /// sync_power_state_interval`, `force_power_state_during_sync`,
    /// `power_state_sync_max_retries`, `power_failure_recovery_interval`).
    pub power_sync: PowerSyncConfig,
    /// `[secrets]`: the master key that encrypts secrets at rest.
    pub secrets: SecretsConfig,
    /// `[DEFAULT] host`: the name ironledger reports as the conductor of
    /// every node (Ironic's option; default: this machine's name).
    pub host: String,
    /// `[conductor] deploy_kernel` and `deploy_ramdisk`: the deploy images
    /// used when a node's `driver_info` names none (only checked by `GET
    /// /v1/nodes/{node}/validate`: ironledger boots nodes from their volumes).
    pub deploy_kernel: Option<String>,
    pub deploy_ramdisk: Option<String>,
    /// `[DEFAULT] debug` (Ironic's, default false): accepted so that an
    /// `ironic.conf` reads unchanged, and checked as a boolean; the log level
    /// itself follows `RUST_LOG` (docs/operations.md).
    pub debug: bool,
    /// `[DEFAULT] use_json` (oslo.log's, default false): `serve` logs JSON
    /// lines, one object per line with the spans' fields (see
    /// `crate::telemetry`).
    pub use_json: bool,
    /// Every option set, with where it was set (the last word: environment
    /// over files, later files over earlier ones): for `ironledger config`.
    pub read: BTreeMap<(String, String), Read>,
}

/// One option as ironledger uses it (see [`Config::effective`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Effective {
    pub section: String,
    pub option: String,
    /// The value in use (`******` for a secret); `None`: unset, no default.
    pub value: Option<String>,
    /// Where it was set; `None`: ironledger's default.
    pub source: Option<String>,
}

/// An option that was set but that ironledger does not know (see
/// [`Config::ignored`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Ignored {
    pub section: String,
    pub option: String,
    /// Where it was set.
    pub source: String,
}

/// One option's value as read, and where from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    pub value: String,
    pub source: Source,
}

/// Where an option's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// An INI file given with `--config-file`.
    File(PathBuf),
    /// An `IRONLEDGER__<SECTION>__<OPTION>` environment variable.
    Env(String),
    /// A command-line flag (or the variable clap reads for it).
    Flag(&'static str),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::File(path) => write!(f, "{}", path.display()),
            Source::Env(var) => write!(f, "environment {var}"),
            Source::Flag(flag) => write!(f, "flag {flag}"),
        }
    }
}

/// The periodic power-state sync (`crate::effects::power_sync`), with
/// Ironic's `[conductor]` option names and defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PowerSyncConfig {
    /// `sync_power_state_interval` (60 s): how often every BMC node's power
    /// state is read from its BMC; `None` (0 or negative) disables the sync.
    pub interval: Option<std::time::Duration>,
    /// `force_power_state_during_sync` (true): a node found in another state
    /// than recorded is put back by its BMC; false: the found state is
    /// recorded.
    pub force: bool,
    /// `power_state_sync_max_retries` (3): failed syncs of a node (BMC
    /// unreadable, or a state that would not stay restored) before it is
    /// put in maintenance with the `power failure` fault.
    pub max_retries: u32,
    /// `power_failure_recovery_interval` (300 s): how often nodes in
    /// maintenance for a power failure are tried again; `None` (0) disables.
    pub recovery_interval: Option<std::time::Duration>,
}

impl Default for PowerSyncConfig {
    fn default() -> Self {
        PowerSyncConfig {
            interval: Some(std::time::Duration::from_secs(60)),
            force: true,
            max_retries: 3,
            recovery_interval: Some(std::time::Duration::from_secs(300)),
        }
    }
}

/// Reads the power-state sync's `[conductor]` options.
fn power_sync_config<'a>(
    get: &impl Fn(&str, &str) -> Option<&'a str>,
) -> Result<PowerSyncConfig, ConfigError> {
    let defaults = PowerSyncConfig::default();
    // Ironic's IntOpt: whole seconds; 0 (or, for the sync, a negative
    // number) turns the periodic task off.
    let interval = |option: &str, default: Option<std::time::Duration>, negative_ok: bool| {
        let Some(v) = get("conductor", option) else {
            return Ok(default);
        };
        match v.trim().parse::<i64>() {
            Ok(n) if n > 0 => Ok(Some(std::time::Duration::from_secs(n as u64))),
            Ok(n) if n == 0 || negative_ok => Ok(None),
            _ => Err(invalid(
                "conductor",
                option,
                format!(
                    "'{v}' is not a whole number of seconds{}",
                    if negative_ok { "" } else { " >= 0" }
                ),
            )),
        }
    };
    let force = match get("conductor", "force_power_state_during_sync") {
        Some(v) => parse_bool("conductor", "force_power_state_during_sync", v)?,
        None => defaults.force,
    };
    let max_retries = match get("conductor", "power_state_sync_max_retries") {
        None => defaults.max_retries,
        Some(v) => v.trim().parse::<u32>().map_err(|_| {
            invalid(
                "conductor",
                "power_state_sync_max_retries",
                format!("'{v}' is not a count (a whole number >= 0)"),
            )
        })?,
    };
    Ok(PowerSyncConfig {
        interval: interval("sync_power_state_interval", defaults.interval, true)?,
        force,
        max_retries,
        recovery_interval: interval(
            "power_failure_recovery_interval",
            defaults.recovery_interval,
            false,
        )?,
    })
}

/// Where the master key of `crate::secrets` comes from (ironledger's own
/// section: Ironic has no such option).
#[derive(Clone, PartialEq, Eq)]
pub struct SecretsConfig {
    /// `[secrets] master_key`: the key itself, base64 of 32 bytes (e.g. from
    /// `IRONLEDGER__SECRETS__MASTER_KEY`). Wins over the file.
    pub master_key: Option<String>,
    /// `[secrets] master_key_file` (default `<data dir>/master.key`): read, or
    /// generated (mode 0600) on first start when missing.
    pub master_key_file: PathBuf,
}

impl std::fmt::Debug for SecretsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretsConfig")
            .field("master_key", &self.master_key.as_ref().map(|_| "******"))
            .field("master_key_file", &self.master_key_file)
            .finish()
    }
}

impl SecretsConfig {
    /// The configured master key, generating the key file if needed.
    pub fn master_key(&self) -> Result<crate::secrets::MasterKey, crate::secrets::SecretsError> {
        if let Some(text) = &self.master_key {
            return crate::secrets::MasterKey::from_base64(text).map_err(|message| {
                crate::secrets::SecretsError::KeyFile {
                    path: "[secrets] master_key".into(),
                    message,
                }
            });
        }
        let (key, created) = crate::secrets::MasterKey::load_or_create(&self.master_key_file)?;
        if created {
            tracing::info!(path = %self.master_key_file.display(), key = key.id(), "generated a new master key");
        }
        Ok(key)
    }
}

/// Options ironledger reads (besides `[DEFAULT] enabled_<kind>_interfaces`
/// and `default_<kind>_interface` for every interface kind); anything else
/// in a file is warned about. [`Config::effective`] shows each one.
pub const OPTIONS: &[(&str, &str)] = &[
    ("database", "connection"),
    ("api", "host_ip"),
    ("api", "port"),
    ("api", "max_limit"),
    ("api", "public_endpoint"),
    ("api", "header_timeout"),
    ("api", "body_timeout"),
    ("api", "idle_timeout"),
    ("api", "max_connections"),
    ("api", "auth_failure_limit"),
    ("api", "auth_address_failure_limit"),
    ("api", "auth_backoff"),
    ("api", "idempotency_retention"),
    ("DEFAULT", "auth_strategy"),
    ("DEFAULT", "http_basic_auth_user_file"),
    ("DEFAULT", "enabled_hardware_types"),
    ("DEFAULT", "host"),
    ("DEFAULT", "debug"),
    ("DEFAULT", "use_json"),
    ("deploy", "http_root"),
    ("deploy", "http_url"),
    ("deploy", "san_boot_retries"),
    ("conductor", "automated_clean"),
    ("conductor", "lease_seconds"),
    ("conductor", "power_state_change_timeout"),
    ("conductor", "sync_power_state_interval"),
    ("conductor", "force_power_state_during_sync"),
    ("conductor", "power_state_sync_max_retries"),
    ("conductor", "power_failure_recovery_interval"),
    ("conductor", "deploy_kernel"),
    ("conductor", "deploy_ramdisk"),
    ("cinder", "endpoint_override"),
    ("cinder", "auth_type"),
    ("cinder", "username"),
    ("cinder", "project_id"),
    ("cinder", "token"),
    ("cinder", "timeout"),
    ("cinder", "action_retries"),
    ("cinder", "action_retry_interval"),
    ("secrets", "master_key"),
    ("secrets", "master_key_file"),
];

/// Options whose values are never shown (`ironledger config` masks them).
pub const SECRET_OPTIONS: &[(&str, &str)] = &[("cinder", "token"), ("secrets", "master_key")];

fn known(section: &str, option: &str) -> bool {
    OPTIONS.contains(&(section, option))
        || (section == "DEFAULT"
            && INTERFACE_KINDS.iter().any(|k| {
                option == format!("enabled_{k}_interfaces")
                    || option == format!("default_{k}_interface")
            }))
}

/// Where ironledger keeps its files when nothing says otherwise.
pub fn default_data_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("ironledger");
    }
    if let Some(h) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(h).join(".local/share/ironledger");
    }
    PathBuf::from("ironledger-data")
}

/// What the command line says (flags win over file and environment overrides).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub config_files: Vec<PathBuf>,
    pub database_url: Option<String>,
    pub data_dir: Option<PathBuf>,
}

fn invalid(section: &str, option: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        section: section.into(),
        option: option.into(),
        message: message.into(),
    }
}

/// oslo.config's boolean parsing (strict).
fn parse_bool(section: &str, option: &str, v: &str) -> Result<bool, ConfigError> {
    crate::domain::oslo::config_bool(v)
        .ok_or_else(|| invalid(section, option, format!("'{v}' is not a boolean")))
}

fn parse_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// A positive number of seconds (fractions allowed), or `default`.
fn positive_seconds(
    section: &str,
    option: &str,
    v: Option<&str>,
    default: std::time::Duration,
) -> Result<std::time::Duration, ConfigError> {
    let Some(v) = v else { return Ok(default) };
    match v.trim().parse::<f64>() {
        Ok(n) if n > 0.0 && n.is_finite() => Ok(std::time::Duration::from_secs_f64(n)),
        _ => Err(invalid(
            section,
            option,
            format!("'{v}' is not a positive number of seconds"),
        )),
    }
}

/// A count of at least 1, or `default`.
fn positive_count(
    section: &str,
    option: &str,
    v: Option<&str>,
    default: u32,
) -> Result<u32, ConfigError> {
    let Some(v) = v else { return Ok(default) };
    match v.trim().parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(invalid(
            section,
            option,
            format!("'{v}' is not a positive integer"),
        )),
    }
}

/// Reads INI files into `(section, option) → value`. `[DEFAULT]` and keys
/// before any section both land in `DEFAULT`.
fn read_files(
    files: &[PathBuf],
    raw: &mut BTreeMap<(String, String), Read>,
) -> Result<(), ConfigError> {
    for path in files {
        let ini = ini::Ini::load_from_file(path).map_err(|e| ConfigError::File {
            path: path.clone(),
            message: e.to_string(),
        })?;
        for (section, props) in ini.iter() {
            let section = section.unwrap_or("DEFAULT");
            for (k, v) in props.iter() {
                raw.insert(
                    (section.to_string(), k.to_string()),
                    Read {
                        value: v.to_string(),
                        source: Source::File(path.clone()),
                    },
                );
            }
        }
    }
    Ok(())
}

/// Reads `IRONLEDGER__<SECTION>__<OPTION>` variables.
fn read_env(raw: &mut BTreeMap<(String, String), Read>) {
    for (k, v) in std::env::vars() {
        let Some(rest) = k.strip_prefix("IRONLEDGER__") else {
            continue;
        };
        let Some((section, option)) = rest.split_once("__") else {
            continue;
        };
        let section = if section.eq_ignore_ascii_case("default") {
            "DEFAULT".to_string()
        } else {
            section.to_ascii_lowercase()
        };
        raw.insert(
            (section, option.to_ascii_lowercase()),
            Read {
                value: v,
                source: Source::Env(k.clone()),
            },
        );
    }
}

impl Config {
    /// Builds the configuration from files, environment and flags.
    pub fn load(o: &Overrides) -> Result<Config, ConfigError> {
        let mut raw = BTreeMap::new();
        read_files(&o.config_files, &mut raw)?;
        read_env(&mut raw);
        Self::from_raw(raw, o)
    }

    fn from_raw(
        mut raw: BTreeMap<(String, String), Read>,
        o: &Overrides,
    ) -> Result<Config, ConfigError> {
        if let Some(url) = &o.database_url {
            raw.insert(
                ("database".into(), "connection".into()),
                Read {
                    value: url.clone(),
                    source: Source::Flag("--database-url (or DATABASE_URL)"),
                },
            );
        }
        for (section, option) in raw.keys() {
            if !known(section, option) {
                tracing::warn!(section, option, "ignoring unknown configuration option");
            }
        }
        let get = |s: &str, k: &str| {
            raw.get(&(s.to_string(), k.to_string()))
                .map(|r| r.value.as_str())
        };

        let data_dir = o.data_dir.clone().unwrap_or_else(default_data_dir);
        let database = match get("database", "connection") {
            Some(url) => {
                DatabaseUrl::parse(url).map_err(|m| invalid("database", "connection", m))?
            }
            None => DatabaseUrl::Sqlite(data_dir.join("ironledger.db")),
        };

        let host_ip = match get("api", "host_ip") {
            Some(v) => v
                .parse()
                .map_err(|_| invalid("api", "host_ip", format!("'{v}' is not an IP address")))?,
            None => IpAddr::from([127, 0, 0, 1]),
        };
        let port = match get("api", "port") {
            Some(v) => v
                .parse()
                .map_err(|_| invalid("api", "port", format!("'{v}' is not a port number")))?,
            None => 6385,
        };
        let max_limit = match get("api", "max_limit") {
            Some(v) => match v.parse::<u32>() {
                Ok(n) if n > 0 => n,
                _ => {
                    return Err(invalid(
                        "api",
                        "max_limit",
                        format!("'{v}' is not a positive integer"),
                    ))
                }
            },
            None => 1000,
        };

        let defaults = ConnectionLimits::default();
        let limits = ConnectionLimits {
            header_timeout: positive_seconds(
                "api",
                "header_timeout",
                get("api", "header_timeout"),
                defaults.header_timeout,
            )?,
            body_timeout: positive_seconds(
                "api",
                "body_timeout",
                get("api", "body_timeout"),
                defaults.body_timeout,
            )?,
            idle_timeout: positive_seconds(
                "api",
                "idle_timeout",
                get("api", "idle_timeout"),
                defaults.idle_timeout,
            )?,
            max_connections: positive_count(
                "api",
                "max_connections",
                get("api", "max_connections"),
                defaults.max_connections as u32,
            )? as usize,
        };
        let idempotency_retention = positive_seconds(
            "api",
            "idempotency_retention",
            get("api", "idempotency_retention"),
            IDEMPOTENCY_RETENTION,
        )?;
        let defaults = AuthThrottle::default();
        let auth_throttle = AuthThrottle {
            per_user: positive_count(
                "api",
                "auth_failure_limit",
                get("api", "auth_failure_limit"),
                defaults.per_user,
            )?,
            per_address: positive_count(
                "api",
                "auth_address_failure_limit",
                get("api", "auth_address_failure_limit"),
                defaults.per_address,
            )?,
            backoff: positive_seconds(
                "api",
                "auth_backoff",
                get("api", "auth_backoff"),
                defaults.backoff,
            )?,
        };

        let auth = match get("DEFAULT", "auth_strategy").unwrap_or("noauth") {
            "noauth" => AuthStrategy::NoAuth,
            "http_basic" => AuthStrategy::HttpBasic {
                user_file: PathBuf::from(
                    get("DEFAULT", "http_basic_auth_user_file").unwrap_or("/etc/ironic/htpasswd"),
                ),
            },
            other => {
                return Err(invalid(
                    "DEFAULT",
                    "auth_strategy",
                    format!("'{other}' is not one of noauth, http_basic"),
                ))
            }
        };

        let mut catalog = HardwareCatalog::default();
        if let Some(v) = get("DEFAULT", "enabled_hardware_types") {
            let types = parse_list(v);
            for t in &types {
                if !catalog.supported.contains_key(t) {
                    return Err(invalid(
                        "DEFAULT",
                        "enabled_hardware_types",
                        format!(
                            "unknown hardware type '{t}' (ironledger has {})",
                            catalog
                                .supported
                                .keys()
                                .cloned()
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                }
            }
            catalog.hardware_types = types;
        }
        for kind in INTERFACE_KINDS {
            let enabled_key = format!("enabled_{kind}_interfaces");
            let default_key = format!("default_{kind}_interface");
            let current = catalog
                .interfaces
                .get(kind)
                .cloned()
                .unwrap_or(EnabledInterfaces {
                    enabled: vec![],
                    default: None,
                });
            let enabled = get("DEFAULT", &enabled_key)
                .map(parse_list)
                .unwrap_or(current.enabled);
            let known_names: Vec<&String> = catalog
                .supported
                .values()
                .filter_map(|m| m.get(kind))
                .flatten()
                .collect();
            for name in &enabled {
                if !known_names.contains(&name) {
                    return Err(invalid(
                        "DEFAULT",
                        &enabled_key,
                        format!("unknown {kind} interface '{name}'"),
                    ));
                }
            }
            let default = match get("DEFAULT", &default_key) {
                Some(d) if !enabled.iter().any(|e| e == d) => {
                    return Err(invalid(
                        "DEFAULT",
                        &default_key,
                        format!("'{d}' is not in {enabled_key}"),
                    ))
                }
                Some(d) => Some(d.to_string()),
                None => current.default.filter(|d| enabled.contains(d)),
            };
            if enabled.is_empty() {
                return Err(invalid(
                    "DEFAULT",
                    &enabled_key,
                    "at least one interface must be enabled",
                ));
            }
            catalog
                .interfaces
                .insert(kind.to_string(), EnabledInterfaces { enabled, default });
        }

        let http_root = get("deploy", "http_root")
            .map(PathBuf::from)
            .unwrap_or_else(|| data_dir.join("httpboot"));
        let http_url = get("deploy", "http_url").map(String::from);
        let automated_clean = match get("conductor", "automated_clean") {
            Some(v) => parse_bool("conductor", "automated_clean", v)?,
            None => false,
        };
        let public_endpoint =
            get("api", "public_endpoint").map(|s| s.trim_end_matches('/').to_string());
        let cinder = cinder_config(&get)?;
        let lease_ttl = match get("conductor", "lease_seconds") {
            None => std::time::Duration::from_secs(15),
            Some(v) => match v.trim().parse::<f64>() {
                Ok(n) if n >= 1.0 => std::time::Duration::from_secs_f64(n),
                _ => {
                    return Err(invalid(
                        "conductor",
                        "lease_seconds",
                        format!("'{v}' is not a number of seconds >= 1"),
                    ))
                }
            },
        };
        let power_state_change_timeout = match get("conductor", "power_state_change_timeout") {
            None => std::time::Duration::from_secs(60),
            Some(v) => match v.trim().parse::<u64>() {
                Ok(n) if n >= 1 => std::time::Duration::from_secs(n),
                _ => {
                    return Err(invalid(
                        "conductor",
                        "power_state_change_timeout",
                        format!("'{v}' is not a whole number of seconds >= 1"),
                    ))
                }
            },
        };
        let power_sync = power_sync_config(&get)?;
        let san_boot_retries = match get("deploy", "san_boot_retries") {
            None => crate::effects::ipxe::DEFAULT_SAN_RETRIES,
            Some(v) => v
                .parse()
                .map_err(|m| invalid("deploy", "san_boot_retries", m))?,
        };

        // An option's text, trimmed; blank is unset.
        let text = |section: &str, option: &str| {
            get(section, option)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(String::from)
        };
        let secrets = SecretsConfig {
            master_key: text("secrets", "master_key"),
            master_key_file: get("secrets", "master_key_file")
                .map(PathBuf::from)
                .unwrap_or_else(|| data_dir.join("master.key")),
        };
        if let Some(k) = &secrets.master_key {
            crate::secrets::MasterKey::from_base64(k)
                .map_err(|m| invalid("secrets", "master_key", m))?;
        }

        let host = text("DEFAULT", "host").unwrap_or_else(crate::engine::machine_name);
        let deploy_kernel = text("conductor", "deploy_kernel");
        let deploy_ramdisk = text("conductor", "deploy_ramdisk");
        let debug = match get("DEFAULT", "debug") {
            None => false,
            Some(v) => parse_bool("DEFAULT", "debug", v)?,
        };
        let use_json = match get("DEFAULT", "use_json") {
            None => false,
            Some(v) => parse_bool("DEFAULT", "use_json", v)?,
        };

        Ok(Config {
            secrets,
            database,
            data_dir,
            api: ApiConfig {
                host_ip,
                port,
                max_limit,
                public_endpoint,
                limits,
                auth_throttle,
                idempotency_retention,
            },
            auth,
            catalog,
            http_root,
            http_url,
            san_boot_retries,
            automated_clean,
            cinder,
            lease_ttl,
            power_state_change_timeout,
            power_sync,
            host,
            deploy_kernel,
            deploy_ramdisk,
            debug,
            use_json,
            read: raw,
        })
    }

    /// Options that were set but that ironledger does not know (and so
    /// ignores), with where they were set.
    pub fn ignored(&self) -> Vec<Ignored> {
        self.read
            .iter()
            .filter(|((section, option), _)| !known(section, option))
            .map(|((section, option), r)| Ignored {
                section: section.clone(),
                option: option.clone(),
                source: r.source.to_string(),
            })
            .collect()
    }

    /// Every option ironledger reads, with the value it uses (secrets masked,
    /// `None` when unset and without a default) and where that value came
    /// from, in the order of [`OPTIONS`] (each interface kind's two options
    /// after them). The values are printed from the parsed configuration, so
    /// a default is what ironledger really takes, not a second copy of it.
    pub fn effective(&self) -> Vec<Effective> {
        use std::time::Duration;
        let secs = |d: Duration| format!("{}", d.as_secs_f64());
        let opt = |v: &Option<String>| v.clone();
        let on = |b: bool| {
            if b {
                "true".to_string()
            } else {
                "false".to_string()
            }
        };
        let cinder = self.cinder.as_ref();
        let mut out = vec![];
        let mut push = |section: &str, option: &str, value: Option<String>| {
            let read = self.read.get(&(section.to_string(), option.to_string()));
            let secret = SECRET_OPTIONS.contains(&(section, option));
            out.push(Effective {
                section: section.to_string(),
                option: option.to_string(),
                value: value.map(|v| if secret { "******".to_string() } else { v }),
                source: read.map(|r| r.source.to_string()),
            });
        };
        for &(section, option) in OPTIONS {
            let value = match (section, option) {
                ("database", "connection") => Some(self.database.to_string()),
                ("api", "host_ip") => Some(self.api.host_ip.to_string()),
                ("api", "port") => Some(self.api.port.to_string()),
                ("api", "max_limit") => Some(self.api.max_limit.to_string()),
                ("api", "public_endpoint") => opt(&self.api.public_endpoint),
                ("api", "header_timeout") => Some(secs(self.api.limits.header_timeout)),
                ("api", "body_timeout") => Some(secs(self.api.limits.body_timeout)),
                ("api", "idle_timeout") => Some(secs(self.api.limits.idle_timeout)),
                ("api", "max_connections") => Some(self.api.limits.max_connections.to_string()),
                ("api", "auth_failure_limit") => Some(self.api.auth_throttle.per_user.to_string()),
                ("api", "auth_address_failure_limit") => {
                    Some(self.api.auth_throttle.per_address.to_string())
                }
                ("api", "auth_backoff") => Some(secs(self.api.auth_throttle.backoff)),
                ("api", "idempotency_retention") => Some(secs(self.api.idempotency_retention)),
                ("DEFAULT", "auth_strategy") => Some(match &self.auth {
                    AuthStrategy::NoAuth => "noauth".to_string(),
                    AuthStrategy::HttpBasic { .. } => "http_basic".to_string(),
                }),
                ("DEFAULT", "http_basic_auth_user_file") => match &self.auth {
                    AuthStrategy::HttpBasic { user_file } => Some(user_file.display().to_string()),
                    AuthStrategy::NoAuth => self
                        .read
                        .get(&(section.to_string(), option.to_string()))
                        .map(|r| r.value.clone()),
                },
                ("DEFAULT", "enabled_hardware_types") => {
                    Some(self.catalog.hardware_types.join(","))
                }
                ("DEFAULT", "host") => Some(self.host.clone()),
                ("DEFAULT", "debug") => Some(on(self.debug)),
                ("DEFAULT", "use_json") => Some(on(self.use_json)),
                ("deploy", "http_root") => Some(self.http_root.display().to_string()),
                ("deploy", "http_url") => opt(&self.http_url),
                ("deploy", "san_boot_retries") => Some(match self.san_boot_retries {
                    crate::effects::ipxe::SanRetries::Forever => "forever".to_string(),
                    crate::effects::ipxe::SanRetries::Times(n) => n.to_string(),
                }),
                ("conductor", "automated_clean") => Some(on(self.automated_clean)),
                ("conductor", "lease_seconds") => Some(secs(self.lease_ttl)),
                ("conductor", "power_state_change_timeout") => {
                    Some(secs(self.power_state_change_timeout))
                }
                ("conductor", "sync_power_state_interval") => {
                    Some(self.power_sync.interval.map_or("0".to_string(), secs))
                }
                ("conductor", "force_power_state_during_sync") => Some(on(self.power_sync.force)),
                ("conductor", "power_state_sync_max_retries") => {
                    Some(self.power_sync.max_retries.to_string())
                }
                ("conductor", "power_failure_recovery_interval") => Some(
                    self.power_sync
                        .recovery_interval
                        .map_or("0".to_string(), secs),
                ),
                ("conductor", "deploy_kernel") => opt(&self.deploy_kernel),
                ("conductor", "deploy_ramdisk") => opt(&self.deploy_ramdisk),
                ("cinder", "endpoint_override") => cinder.map(|c| c.endpoint.clone()),
                ("cinder", "auth_type") => cinder.map(|c| match &c.auth {
                    crate::effects::cinder::CinderAuth::None { .. } => "none".to_string(),
                    crate::effects::cinder::CinderAuth::Token(_) => "token".to_string(),
                }),
                ("cinder", "username") => cinder.and_then(|c| match &c.auth {
                    crate::effects::cinder::CinderAuth::None { username, .. } => {
                        Some(username.clone())
                    }
                    crate::effects::cinder::CinderAuth::Token(_) => None,
                }),
                ("cinder", "project_id") => cinder.and_then(|c| match &c.auth {
                    crate::effects::cinder::CinderAuth::None { project_id, .. } => {
                        Some(project_id.clone())
                    }
                    crate::effects::cinder::CinderAuth::Token(_) => None,
                }),
                ("cinder", "token") => cinder.and_then(|c| match &c.auth {
                    crate::effects::cinder::CinderAuth::Token(t) => Some(t.clone()),
                    crate::effects::cinder::CinderAuth::None { .. } => None,
                }),
                ("cinder", "timeout") => cinder.map(|c| secs(c.timeout)),
                ("cinder", "action_retries") => cinder.map(|c| c.action_retries.to_string()),
                ("cinder", "action_retry_interval") => {
                    cinder.map(|c| secs(c.action_retry_interval))
                }
                ("secrets", "master_key") => opt(&self.secrets.master_key),
                ("secrets", "master_key_file") => {
                    Some(self.secrets.master_key_file.display().to_string())
                }
                _ => unreachable!("[{section}] {option} is in OPTIONS without a value here"),
            };
            push(section, option, value);
        }
        for (kind, interfaces) in &self.catalog.interfaces {
            let Some(kind) = INTERFACE_KINDS.iter().find(|k| **k == kind.as_str()) else {
                continue;
            };
            push(
                "DEFAULT",
                &format!("enabled_{kind}_interfaces"),
                Some(interfaces.enabled.join(",")),
            );
            push(
                "DEFAULT",
                &format!("default_{kind}_interface"),
                interfaces.default.clone(),
            );
        }
        out
    }

    /// Reads one INI file (for tests and tools).
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        Self::load(&Overrides {
            config_files: vec![path.to_path_buf()],
            ..Overrides::default()
        })
    }
}

/// Reads `[cinder]` (Ironic's option names where they exist).
fn cinder_config<'a>(
    get: &impl Fn(&str, &str) -> Option<&'a str>,
) -> Result<Option<crate::effects::cinder::CinderConfig>, ConfigError> {
    use crate::effects::cinder::{CinderAuth, CinderConfig};
    use std::time::Duration;
    let Some(endpoint) = get("cinder", "endpoint_override") else {
        return Ok(None);
    };
    let endpoint = endpoint.trim_end_matches('/').to_string();
    if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
        return Err(invalid(
            "cinder",
            "endpoint_override",
            format!("'{endpoint}' is not an http(s) URL"),
        ));
    }
    let seconds = |option: &str, default: f64| -> Result<Duration, ConfigError> {
        match get("cinder", option) {
            None => Ok(Duration::from_secs_f64(default)),
            Some(v) => match v.trim().parse::<f64>() {
                Ok(n) if n >= 0.0 => Ok(Duration::from_secs_f64(n)),
                _ => Err(invalid(
                    "cinder",
                    option,
                    format!("'{v}' is not a number of seconds"),
                )),
            },
        }
    };
    let action_retries = match get("cinder", "action_retries") {
        None => 3,
        Some(v) => v
            .trim()
            .parse::<u32>()
            .map_err(|_| invalid("cinder", "action_retries", format!("'{v}' is not a count")))?,
    };
    let auth = match get("cinder", "auth_type").unwrap_or("none") {
        "none" | "noauth" => CinderAuth::None {
            username: get("cinder", "username").unwrap_or("admin").to_string(),
            // Cinder's no-auth token names the project of the endpoint URL.
            project_id: get("cinder", "project_id")
                .map(String::from)
                .unwrap_or_else(|| endpoint.rsplit('/').next().unwrap_or_default().to_string()),
        },
        "token" => CinderAuth::Token(
            get("cinder", "token")
                .ok_or_else(|| {
                    invalid("cinder", "token", "auth_type = token needs [cinder] token")
                })?
                .to_string(),
        ),
        other => {
            return Err(invalid(
                "cinder",
                "auth_type",
                format!("'{other}' is not one of none, token"),
            ))
        }
    };
    Ok(Some(CinderConfig {
        endpoint,
        auth,
        timeout: seconds("timeout", 30.0)?,
        action_retries,
        action_retry_interval: seconds("action_retry_interval", 5.0)?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(ini: &str, o: Overrides) -> Result<Config, ConfigError> {
        let mut raw = BTreeMap::new();
        let parsed = ini::Ini::load_from_str(ini).unwrap();
        for (section, props) in parsed.iter() {
            for (k, v) in props.iter() {
                raw.insert(
                    (section.unwrap_or("DEFAULT").to_string(), k.to_string()),
                    Read {
                        value: v.to_string(),
                        source: Source::File("test.conf".into()),
                    },
                );
            }
        }
        Config::from_raw(raw, &o)
    }

    #[test]
    fn defaults_match_ironic_and_use_the_embedded_store() {
        let dir = PathBuf::from("/tmp/x");
        let c = from(
            "",
            Overrides {
                data_dir: Some(dir.clone()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(c.database, DatabaseUrl::Sqlite(dir.join("ironledger.db")));
        assert_eq!(c.api.port, 6385);
        assert_eq!(c.api.host_ip.to_string(), "127.0.0.1");
        assert_eq!(c.api.max_limit, 1000);
        assert_eq!(c.auth, AuthStrategy::NoAuth);
        assert_eq!(
            c.catalog.interfaces["storage"].enabled,
            vec!["cinder", "noop"]
        );
        assert_eq!(
            c.catalog.interfaces["storage"].default.as_deref(),
            Some("noop")
        );
        assert!(!c.automated_clean);
        assert_eq!(c.api.limits, ConnectionLimits::default());
        assert_eq!(c.api.auth_throttle, AuthThrottle::default());
    }

    #[test]
    fn limits_are_read_from_api() {
        let c = from(
            "[api]\nheader_timeout = 2.5\nbody_timeout = 3\nidle_timeout = 4\nmax_connections = 8\n\
             auth_failure_limit = 2\nauth_address_failure_limit = 6\nauth_backoff = 1.5\n",
            Overrides::default(),
        )
        .unwrap();
        let s = std::time::Duration::from_secs_f64;
        assert_eq!(
            c.api.limits,
            ConnectionLimits {
                header_timeout: s(2.5),
                body_timeout: s(3.0),
                idle_timeout: s(4.0),
                max_connections: 8,
            }
        );
        assert_eq!(
            c.api.auth_throttle,
            AuthThrottle {
                per_user: 2,
                per_address: 6,
                backoff: s(1.5),
            }
        );
    }

    #[test]
    fn ironic_conf_options_are_read() {
        let c = from(
            "[DEFAULT]\nenabled_storage_interfaces = cinder,external,noop\ndefault_storage_interface = external\n\
             [api]\nhost_ip = 0.0.0.0\nport = 7000\n[database]\nconnection = postgresql+psycopg2://u:p@db/ironic\n",
            Overrides::default(),
        )
        .unwrap();
        assert_eq!(
            c.catalog.interfaces["storage"].enabled,
            vec!["cinder", "external", "noop"]
        );
        assert_eq!(
            c.catalog.resolve("fake-hardware", "storage", None).unwrap(),
            "external"
        );
        assert_eq!(c.api.port, 7000);
        assert_eq!(
            c.database,
            DatabaseUrl::Postgres("postgresql://u:p@db/ironic".into())
        );
    }

    #[test]
    fn flags_win_over_the_file() {
        let c = from(
            "[database]\nconnection = postgresql://db/ironic\n",
            Overrides {
                database_url: Some("sqlite:////var/lib/x.db".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            c.database,
            DatabaseUrl::Sqlite(PathBuf::from("/var/lib/x.db"))
        );
    }

    #[test]
    fn invalid_values_fail_with_the_option_named() {
        for (ini, option) in [
            ("[api]\nport = seventy\n", "port"),
            ("[api]\nhost_ip = nowhere\n", "host_ip"),
            ("[api]\nmax_limit = 0\n", "max_limit"),
            ("[api]\nheader_timeout = 0\n", "header_timeout"),
            ("[api]\nbody_timeout = soon\n", "body_timeout"),
            ("[api]\nidle_timeout = -1\n", "idle_timeout"),
            ("[api]\nmax_connections = 0\n", "max_connections"),
            ("[api]\nauth_failure_limit = 0\n", "auth_failure_limit"),
            (
                "[api]\nauth_address_failure_limit = x\n",
                "auth_address_failure_limit",
            ),
            ("[api]\nauth_backoff = inf\n", "auth_backoff"),
            ("[deploy]\nsan_boot_retries = -1\n", "san_boot_retries"),
            ("[deploy]\nsan_boot_retries = always\n", "san_boot_retries"),
            ("[DEFAULT]\nauth_strategy = keystone\n", "auth_strategy"),
            (
                "[DEFAULT]\nenabled_storage_interfaces = cinder,magic\n",
                "enabled_storage_interfaces",
            ),
            (
                "[DEFAULT]\ndefault_storage_interface = external\n",
                "default_storage_interface",
            ),
            (
                "[conductor]\nautomated_clean = perhaps\n",
                "automated_clean",
            ),
            (
                "[database]\nconnection = mysql+pymysql://u@h/ironic\n",
                "connection",
            ),
        ] {
            let err = from(ini, Overrides::default()).unwrap_err().to_string();
            assert!(err.contains(option), "{ini} → {err}");
        }
    }

    #[test]
    fn power_sync_options() {
        let c = from("", Overrides::default()).unwrap();
        assert_eq!(c.power_sync, PowerSyncConfig::default());
        assert_eq!(
            c.power_sync.interval,
            Some(std::time::Duration::from_secs(60))
        );
        assert!(c.power_sync.force);
        assert_eq!(c.power_sync.max_retries, 3);
        assert_eq!(
            c.power_sync.recovery_interval,
            Some(std::time::Duration::from_secs(300))
        );
        let c = from(
            "[conductor]\nsync_power_state_interval = 5\nforce_power_state_during_sync = false\npower_state_sync_max_retries = 0\npower_failure_recovery_interval = 0\n",
            Overrides::default(),
        )
        .unwrap();
        assert_eq!(
            c.power_sync,
            PowerSyncConfig {
                interval: Some(std::time::Duration::from_secs(5)),
                force: false,
                max_retries: 0,
                recovery_interval: None,
            }
        );
        for off in ["0", "-1"] {
            let c = from(
                &format!("[conductor]\nsync_power_state_interval = {off}\n"),
                Overrides::default(),
            )
            .unwrap();
            assert_eq!(c.power_sync.interval, None, "{off}");
        }
        for (ini, option) in [
            (
                "sync_power_state_interval = 1.5",
                "sync_power_state_interval",
            ),
            (
                "force_power_state_during_sync = maybe",
                "force_power_state_during_sync",
            ),
            (
                "power_state_sync_max_retries = -1",
                "power_state_sync_max_retries",
            ),
            (
                "power_failure_recovery_interval = -5",
                "power_failure_recovery_interval",
            ),
        ] {
            let err = from(&format!("[conductor]\n{ini}\n"), Overrides::default())
                .unwrap_err()
                .to_string();
            assert!(err.contains(option), "{ini} → {err}");
        }
    }

    #[test]
    fn cinder_options() {
        let c = from(
            "[cinder]\nendpoint_override = http://127.0.0.1:8776/v3/abc123/\naction_retries = 1\naction_retry_interval = 0.5\n",
            Overrides::default(),
        )
        .unwrap();
        let cinder = c.cinder.unwrap();
        assert_eq!(cinder.endpoint, "http://127.0.0.1:8776/v3/abc123");
        assert_eq!(
            cinder.auth,
            crate::effects::cinder::CinderAuth::None {
                username: "admin".into(),
                project_id: "abc123".into()
            }
        );
        assert_eq!(cinder.action_retries, 1);
        assert_eq!(
            cinder.action_retry_interval,
            std::time::Duration::from_millis(500)
        );
        assert!(from("", Overrides::default()).unwrap().cinder.is_none());
        for (ini, option) in [
            (
                "[cinder]\nendpoint_override = ftp://x\n",
                "endpoint_override",
            ),
            (
                "[cinder]\nendpoint_override = http://x/v3/p\nauth_type = password\n",
                "auth_type",
            ),
            (
                "[cinder]\nendpoint_override = http://x/v3/p\nauth_type = token\n",
                "token",
            ),
            (
                "[cinder]\nendpoint_override = http://x/v3/p\naction_retries = -1\n",
                "action_retries",
            ),
        ] {
            let err = from(ini, Overrides::default()).unwrap_err().to_string();
            assert!(err.contains(option), "{ini} → {err}");
        }
    }

    #[test]
    fn unknown_options_are_ignored() {
        assert!(from(
            "[pxe]\nipxe_timeout = 30\n[DEFAULT]\nfoo = bar\n",
            Overrides::default()
        )
        .is_ok());
    }

    /// Every option ironledger knows is shown with the value it uses: its
    /// default when unset, else what was set, with where; secrets masked.
    #[test]
    fn the_effective_configuration_names_every_option_and_its_source() {
        let defaults = from("", Overrides::default()).unwrap().effective();
        for &(section, option) in OPTIONS {
            assert!(
                defaults
                    .iter()
                    .any(|e| e.section == section && e.option == option),
                "[{section}] {option} is not shown"
            );
        }
        for e in &defaults {
            assert!(
                known(&e.section, &e.option),
                "[{}] {} is not known",
                e.section,
                e.option
            );
            assert_eq!(e.source, None, "[{}] {}", e.section, e.option);
        }
        let value = |all: &[Effective], s: &str, o: &str| {
            all.iter()
                .find(|e| e.section == s && e.option == o)
                .unwrap()
                .value
                .clone()
        };
        assert_eq!(value(&defaults, "api", "port"), Some("6385".into()));
        assert_eq!(value(&defaults, "api", "header_timeout"), Some("30".into()));
        assert_eq!(value(&defaults, "conductor", "deploy_kernel"), None);
        assert_eq!(
            value(&defaults, "DEFAULT", "host"),
            Some(crate::engine::machine_name())
        );
        assert_eq!(
            value(&defaults, "DEFAULT", "default_storage_interface"),
            Some("noop".into())
        );

        let set = from(
            "[DEFAULT]\nhost = conductor-7\n[conductor]\ndeploy_kernel = http://x/k\n\
             [cinder]\nendpoint_override = http://c:8776/v3/p\nauth_type = token\ntoken = Tok-3141\n\
             [api]\nport = 7000\n",
            Overrides {
                database_url: Some("postgresql://u:Pw-2718@db/il".into()),
                ..Overrides::default()
            },
        )
        .unwrap();
        assert_eq!(set.host, "conductor-7");
        assert_eq!(set.deploy_kernel.as_deref(), Some("http://x/k"));
        let shown = set.effective();
        let text = format!("{shown:?}");
        assert!(
            !text.contains("Tok-3141") && !text.contains("Pw-2718"),
            "{text}"
        );
        assert_eq!(value(&shown, "cinder", "token"), Some("******".into()));
        assert_eq!(value(&shown, "api", "port"), Some("7000".into()));
        let source = |s: &str, o: &str| {
            shown
                .iter()
                .find(|e| e.section == s && e.option == o)
                .unwrap()
                .source
                .clone()
        };
        assert_eq!(source("api", "port"), Some("test.conf".into()));
        assert_eq!(
            source("database", "connection"),
            Some("flag --database-url (or DATABASE_URL)".into())
        );
        assert_eq!(source("api", "host_ip"), None);
    }
}
