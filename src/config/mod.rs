//! Configuration: an `ironic.conf`-style INI file, environment overrides, and
//! command-line flags, in increasing order of precedence.
//!
//! Option names are Ironic's where Ironic has the option (`[database]
//! connection`, `[api] host_ip`, `[DEFAULT] enabled_storage_interfaces`, …), so an
//! operator's existing knowledge and files carry over. Any option can also be
//! set from the environment as `IRONLEDGER__<SECTION>__<OPTION>` (for example
//! `IRONLEDGER__API__PORT=6385`). Unknown options are ignored with a warning;
//! invalid values stop the start with a message naming the option.
//!
//! | file | what |
//! |---|---|
//! | this one | the [`Config`] and its parts, loading, `ironledger config`'s view |
//! | `options` | the one table of options: each one's place, reading and display |
//! | `sources` | files and environment variables, and which one said what |

use crate::domain::hardware::{HardwareCatalog, INTERFACE_KINDS};
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

mod options;
mod sources;

use options::Raw;
pub use options::{known, Opt, OPTIONS, TABLE};

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

impl Config {
    /// Builds the configuration from files, environment and flags.
    pub fn load(o: &Overrides) -> Result<Config, ConfigError> {
        let mut raw = BTreeMap::new();
        sources::read_files(&o.config_files, &mut raw)?;
        sources::read_env(&mut raw);
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
        let data_dir = o.data_dir.clone().unwrap_or_else(default_data_dir);
        let mut config = Config::defaults(data_dir);
        {
            let raw = Raw(&raw);
            for opt in TABLE {
                (opt.read)(&mut config, &raw, opt)?;
            }
            options::read_interfaces(&mut config, &raw)?;
        }
        config.read = raw;
        Ok(config)
    }

    /// Every option's default: what an empty `ironic.conf` gives, with the
    /// embedded store and the boot root in `data_dir`.
    pub fn defaults(data_dir: PathBuf) -> Config {
        Config {
            database: DatabaseUrl::Sqlite(data_dir.join("ironledger.db")),
            api: ApiConfig {
                host_ip: IpAddr::from([127, 0, 0, 1]),
                port: 6385,
                max_limit: 1000,
                public_endpoint: None,
                limits: ConnectionLimits::default(),
                auth_throttle: AuthThrottle::default(),
                idempotency_retention: IDEMPOTENCY_RETENTION,
            },
            auth: AuthStrategy::NoAuth,
            catalog: HardwareCatalog::default(),
            http_root: data_dir.join("httpboot"),
            http_url: None,
            san_boot_retries: crate::effects::ipxe::DEFAULT_SAN_RETRIES,
            automated_clean: false,
            cinder: None,
            lease_ttl: std::time::Duration::from_secs(15),
            power_state_change_timeout: std::time::Duration::from_secs(60),
            power_sync: PowerSyncConfig::default(),
            secrets: SecretsConfig {
                master_key: None,
                master_key_file: data_dir.join("master.key"),
            },
            host: crate::engine::machine_name(),
            deploy_kernel: None,
            deploy_ramdisk: None,
            debug: false,
            use_json: false,
            read: BTreeMap::new(),
            data_dir,
        }
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
        let mut out = vec![];
        let mut push = |section: &str, option: &str, secret: bool, value: Option<String>| {
            let read = self.read.get(&(section.to_string(), option.to_string()));
            out.push(Effective {
                section: section.to_string(),
                option: option.to_string(),
                value: value.map(|v| if secret { "******".to_string() } else { v }),
                source: read.map(|r| r.source.to_string()),
            });
        };
        for opt in TABLE {
            push(opt.section, opt.name, opt.secret, (opt.shown)(self));
        }
        for (kind, interfaces) in &self.catalog.interfaces {
            let Some(kind) = INTERFACE_KINDS.iter().find(|k| **k == kind.as_str()) else {
                continue;
            };
            push(
                "DEFAULT",
                &format!("enabled_{kind}_interfaces"),
                false,
                Some(interfaces.enabled.join(",")),
            );
            push(
                "DEFAULT",
                &format!("default_{kind}_interface"),
                false,
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
