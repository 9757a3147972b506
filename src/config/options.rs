//! Every option ironledger reads, in one table: where it lives, how its text
//! becomes part of the [`Config`], and how `ironledger config` shows the value
//! in use. An option is added here, once; [`known`] and
//! [`Config::effective`](super::Config::effective) follow from the table.
//!
//! Reading starts from [`Config::defaults`], so an unset option keeps its
//! default and a reader only acts on a value that was set. A few options
//! make sense only together (the Cinder endpoint and its credentials; the
//! authentication strategy and its user file): the first of them reads the
//! group, the others are marked [`group`]. The one family the table cannot
//! list by name, `[DEFAULT] enabled_<kind>_interfaces` and
//! `default_<kind>_interface` for every interface kind, is read by
//! [`read_interfaces`] after the table.

use super::{
    invalid, parse_bool, parse_list, positive_count, positive_seconds, AuthStrategy, Config,
    ConfigError, Read,
};
use crate::domain::hardware::{EnabledInterfaces, INTERFACE_KINDS};
use crate::effects::cinder::{CinderAuth, CinderConfig};
use crate::effects::ipxe::SanRetries;
use crate::store::DatabaseUrl;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// The options as they were set (files, environment, flags).
pub struct Raw<'a>(pub &'a BTreeMap<(String, String), Read>);

impl Raw<'_> {
    /// The text of `[section] option`, if set.
    pub fn get(&self, section: &str, option: &str) -> Option<&str> {
        self.0
            .get(&(section.to_string(), option.to_string()))
            .map(|r| r.value.as_str())
    }

    /// The text, trimmed; blank is unset.
    fn text(&self, section: &str, option: &str) -> Option<String> {
        self.get(section, option)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(String::from)
    }
}

/// One option.
pub struct Opt {
    pub section: &'static str,
    pub name: &'static str,
    /// Never shown in clear (`ironledger config` prints `******`).
    pub secret: bool,
    /// Reads the option, if set, into the configuration.
    pub read: fn(&mut Config, &Raw, &Opt) -> Result<(), ConfigError>,
    /// The value in use; `None` when unset and without a default.
    pub shown: fn(&Config) -> Option<String>,
}

impl Opt {
    fn value<'a>(&self, raw: &'a Raw) -> Option<&'a str> {
        raw.get(self.section, self.name)
    }

    fn invalid(&self, message: impl Into<String>) -> ConfigError {
        invalid(self.section, self.name, message)
    }

    fn bool(&self, raw: &Raw, slot: &mut bool) -> Result<(), ConfigError> {
        if let Some(v) = self.value(raw) {
            *slot = parse_bool(self.section, self.name, v)?;
        }
        Ok(())
    }

    fn seconds(&self, raw: &Raw, slot: &mut Duration) -> Result<(), ConfigError> {
        *slot = positive_seconds(self.section, self.name, self.value(raw), *slot)?;
        Ok(())
    }

    fn count(&self, raw: &Raw, slot: &mut u32) -> Result<(), ConfigError> {
        *slot = positive_count(self.section, self.name, self.value(raw), *slot)?;
        Ok(())
    }
}

/// The reader of an option read with another one of its group.
fn group(_: &mut Config, _: &Raw, _: &Opt) -> Result<(), ConfigError> {
    Ok(())
}

fn secs(d: Duration) -> String {
    format!("{}", d.as_secs_f64())
}

fn on(b: bool) -> String {
    if b { "true" } else { "false" }.to_string()
}

/// Ironic's IntOpt of whole seconds where 0 (and, if `negative_off`, a
/// negative number) turns a periodic task off.
fn interval(
    opt: &Opt,
    raw: &Raw,
    slot: &mut Option<Duration>,
    negative_off: bool,
) -> Result<(), ConfigError> {
    let Some(v) = opt.value(raw) else {
        return Ok(());
    };
    *slot = match v.trim().parse::<i64>() {
        Ok(n) if n > 0 => Some(Duration::from_secs(n as u64)),
        Ok(n) if n == 0 || negative_off => None,
        _ => {
            return Err(opt.invalid(format!(
                "'{v}' is not a whole number of seconds{}",
                if negative_off { "" } else { " >= 0" }
            )))
        }
    };
    Ok(())
}

fn cinder_auth(c: &Config) -> Option<&CinderAuth> {
    c.cinder.as_ref().map(|c| &c.auth)
}

/// The table, in the order `ironledger config` lists it.
pub const TABLE: &[Opt] = &[
    Opt {
        section: "database",
        name: "connection",
        secret: false,
        read: |c, raw, o| {
            if let Some(url) = o.value(raw) {
                c.database = DatabaseUrl::parse(url).map_err(|m| o.invalid(m))?;
            }
            Ok(())
        },
        shown: |c| Some(c.database.to_string()),
    },
    Opt {
        section: "api",
        name: "host_ip",
        secret: false,
        read: |c, raw, o| {
            if let Some(v) = o.value(raw) {
                c.api.host_ip = v
                    .parse()
                    .map_err(|_| o.invalid(format!("'{v}' is not an IP address")))?;
            }
            Ok(())
        },
        shown: |c| Some(c.api.host_ip.to_string()),
    },
    Opt {
        section: "api",
        name: "port",
        secret: false,
        read: |c, raw, o| {
            if let Some(v) = o.value(raw) {
                c.api.port = v
                    .parse()
                    .map_err(|_| o.invalid(format!("'{v}' is not a port number")))?;
            }
            Ok(())
        },
        shown: |c| Some(c.api.port.to_string()),
    },
    Opt {
        section: "api",
        name: "max_limit",
        secret: false,
        read: |c, raw, o| {
            if let Some(v) = o.value(raw) {
                c.api.max_limit = match v.parse::<u32>() {
                    Ok(n) if n > 0 => n,
                    _ => return Err(o.invalid(format!("'{v}' is not a positive integer"))),
                };
            }
            Ok(())
        },
        shown: |c| Some(c.api.max_limit.to_string()),
    },
    Opt {
        section: "api",
        name: "public_endpoint",
        secret: false,
        read: |c, raw, o| {
            if let Some(v) = o.value(raw) {
                c.api.public_endpoint = Some(v.trim_end_matches('/').to_string());
            }
            Ok(())
        },
        shown: |c| c.api.public_endpoint.clone(),
    },
    Opt {
        section: "api",
        name: "header_timeout",
        secret: false,
        read: |c, raw, o| o.seconds(raw, &mut c.api.limits.header_timeout),
        shown: |c| Some(secs(c.api.limits.header_timeout)),
    },
    Opt {
        section: "api",
        name: "body_timeout",
        secret: false,
        read: |c, raw, o| o.seconds(raw, &mut c.api.limits.body_timeout),
        shown: |c| Some(secs(c.api.limits.body_timeout)),
    },
    Opt {
        section: "api",
        name: "idle_timeout",
        secret: false,
        read: |c, raw, o| o.seconds(raw, &mut c.api.limits.idle_timeout),
        shown: |c| Some(secs(c.api.limits.idle_timeout)),
    },
    Opt {
        section: "api",
        name: "max_connections",
        secret: false,
        read: |c, raw, o| {
            let mut n = c.api.limits.max_connections as u32;
            o.count(raw, &mut n)?;
            c.api.limits.max_connections = n as usize;
            Ok(())
        },
        shown: |c| Some(c.api.limits.max_connections.to_string()),
    },
    Opt {
        section: "api",
        name: "auth_failure_limit",
        secret: false,
        read: |c, raw, o| o.count(raw, &mut c.api.auth_throttle.per_user),
        shown: |c| Some(c.api.auth_throttle.per_user.to_string()),
    },
    Opt {
        section: "api",
        name: "auth_address_failure_limit",
        secret: false,
        read: |c, raw, o| o.count(raw, &mut c.api.auth_throttle.per_address),
        shown: |c| Some(c.api.auth_throttle.per_address.to_string()),
    },
    Opt {
        section: "api",
        name: "auth_backoff",
        secret: false,
        read: |c, raw, o| o.seconds(raw, &mut c.api.auth_throttle.backoff),
        shown: |c| Some(secs(c.api.auth_throttle.backoff)),
    },
    Opt {
        section: "api",
        name: "idempotency_retention",
        secret: false,
        read: |c, raw, o| o.seconds(raw, &mut c.api.idempotency_retention),
        shown: |c| Some(secs(c.api.idempotency_retention)),
    },
    // Reads `http_basic_auth_user_file` too: it means something only with
    // `http_basic`.
    Opt {
        section: "DEFAULT",
        name: "auth_strategy",
        secret: false,
        read: |c, raw, o| {
            c.auth = match o.value(raw).unwrap_or("noauth") {
                "noauth" => AuthStrategy::NoAuth,
                "http_basic" => AuthStrategy::HttpBasic {
                    user_file: PathBuf::from(
                        raw.get("DEFAULT", "http_basic_auth_user_file")
                            .unwrap_or("/etc/ironic/htpasswd"),
                    ),
                },
                other => {
                    return Err(o.invalid(format!("'{other}' is not one of noauth, http_basic")))
                }
            };
            Ok(())
        },
        shown: |c| {
            Some(match &c.auth {
                AuthStrategy::NoAuth => "noauth".to_string(),
                AuthStrategy::HttpBasic { .. } => "http_basic".to_string(),
            })
        },
    },
    Opt {
        section: "DEFAULT",
        name: "http_basic_auth_user_file",
        secret: false,
        read: group,
        shown: |c| match &c.auth {
            AuthStrategy::HttpBasic { user_file } => Some(user_file.display().to_string()),
            AuthStrategy::NoAuth => c
                .read
                .get(&(
                    "DEFAULT".to_string(),
                    "http_basic_auth_user_file".to_string(),
                ))
                .map(|r| r.value.clone()),
        },
    },
    Opt {
        section: "DEFAULT",
        name: "enabled_hardware_types",
        secret: false,
        read: |c, raw, o| {
            let Some(v) = o.value(raw) else {
                return Ok(());
            };
            let types = parse_list(v);
            for t in &types {
                if !c.catalog.supported.contains_key(t) {
                    let known: Vec<String> = c.catalog.supported.keys().cloned().collect();
                    return Err(o.invalid(format!(
                        "unknown hardware type '{t}' (ironledger has {})",
                        known.join(", ")
                    )));
                }
            }
            c.catalog.hardware_types = types;
            Ok(())
        },
        shown: |c| Some(c.catalog.hardware_types.join(",")),
    },
    Opt {
        section: "DEFAULT",
        name: "host",
        secret: false,
        read: |c, raw, o| {
            if let Some(h) = raw.text(o.section, o.name) {
                c.host = h;
            }
            Ok(())
        },
        shown: |c| Some(c.host.clone()),
    },
    Opt {
        section: "DEFAULT",
        name: "debug",
        secret: false,
        read: |c, raw, o| o.bool(raw, &mut c.debug),
        shown: |c| Some(on(c.debug)),
    },
    Opt {
        section: "DEFAULT",
        name: "use_json",
        secret: false,
        read: |c, raw, o| o.bool(raw, &mut c.use_json),
        shown: |c| Some(on(c.use_json)),
    },
    Opt {
        section: "deploy",
        name: "http_root",
        secret: false,
        read: |c, raw, o| {
            if let Some(v) = o.value(raw) {
                c.http_root = PathBuf::from(v);
            }
            Ok(())
        },
        shown: |c| Some(c.http_root.display().to_string()),
    },
    Opt {
        section: "deploy",
        name: "http_url",
        secret: false,
        read: |c, raw, o| {
            c.http_url = o.value(raw).map(String::from);
            Ok(())
        },
        shown: |c| c.http_url.clone(),
    },
    Opt {
        section: "deploy",
        name: "san_boot_retries",
        secret: false,
        read: |c, raw, o| {
            if let Some(v) = o.value(raw) {
                c.san_boot_retries = v.parse().map_err(|m| o.invalid(m))?;
            }
            Ok(())
        },
        shown: |c| {
            Some(match c.san_boot_retries {
                SanRetries::Forever => "forever".to_string(),
                SanRetries::Times(n) => n.to_string(),
            })
        },
    },
    Opt {
        section: "conductor",
        name: "automated_clean",
        secret: false,
        read: |c, raw, o| o.bool(raw, &mut c.automated_clean),
        shown: |c| Some(on(c.automated_clean)),
    },
    Opt {
        section: "conductor",
        name: "lease_seconds",
        secret: false,
        read: |c, raw, o| {
            if let Some(v) = o.value(raw) {
                c.lease_ttl = match v.trim().parse::<f64>() {
                    Ok(n) if n >= 1.0 => Duration::from_secs_f64(n),
                    _ => return Err(o.invalid(format!("'{v}' is not a number of seconds >= 1"))),
                };
            }
            Ok(())
        },
        shown: |c| Some(secs(c.lease_ttl)),
    },
    Opt {
        section: "conductor",
        name: "power_state_change_timeout",
        secret: false,
        read: |c, raw, o| {
            if let Some(v) = o.value(raw) {
                c.power_state_change_timeout = match v.trim().parse::<u64>() {
                    Ok(n) if n >= 1 => Duration::from_secs(n),
                    _ => {
                        return Err(
                            o.invalid(format!("'{v}' is not a whole number of seconds >= 1"))
                        )
                    }
                };
            }
            Ok(())
        },
        shown: |c| Some(secs(c.power_state_change_timeout)),
    },
    Opt {
        section: "conductor",
        name: "sync_power_state_interval",
        secret: false,
        read: |c, raw, o| interval(o, raw, &mut c.power_sync.interval, true),
        shown: |c| Some(c.power_sync.interval.map_or("0".to_string(), secs)),
    },
    Opt {
        section: "conductor",
        name: "force_power_state_during_sync",
        secret: false,
        read: |c, raw, o| o.bool(raw, &mut c.power_sync.force),
        shown: |c| Some(on(c.power_sync.force)),
    },
    Opt {
        section: "conductor",
        name: "power_state_sync_max_retries",
        secret: false,
        read: |c, raw, o| {
            if let Some(v) = o.value(raw) {
                c.power_sync.max_retries = v.trim().parse::<u32>().map_err(|_| {
                    o.invalid(format!("'{v}' is not a count (a whole number >= 0)"))
                })?;
            }
            Ok(())
        },
        shown: |c| Some(c.power_sync.max_retries.to_string()),
    },
    Opt {
        section: "conductor",
        name: "power_failure_recovery_interval",
        secret: false,
        read: |c, raw, o| interval(o, raw, &mut c.power_sync.recovery_interval, false),
        shown: |c| Some(c.power_sync.recovery_interval.map_or("0".to_string(), secs)),
    },
    Opt {
        section: "conductor",
        name: "deploy_kernel",
        secret: false,
        read: |c, raw, o| {
            c.deploy_kernel = raw.text(o.section, o.name);
            Ok(())
        },
        shown: |c| c.deploy_kernel.clone(),
    },
    Opt {
        section: "conductor",
        name: "deploy_ramdisk",
        secret: false,
        read: |c, raw, o| {
            c.deploy_ramdisk = raw.text(o.section, o.name);
            Ok(())
        },
        shown: |c| c.deploy_ramdisk.clone(),
    },
    // Reads the whole `[cinder]` section: Cinder is used only when an
    // endpoint is set, and the other options describe that endpoint.
    Opt {
        section: "cinder",
        name: "endpoint_override",
        secret: false,
        read: |c, raw, _| {
            c.cinder = cinder(raw)?;
            Ok(())
        },
        shown: |c| c.cinder.as_ref().map(|c| c.endpoint.clone()),
    },
    Opt {
        section: "cinder",
        name: "auth_type",
        secret: false,
        read: group,
        shown: |c| {
            cinder_auth(c).map(|a| match a {
                CinderAuth::None { .. } => "none".to_string(),
                CinderAuth::Token(_) => "token".to_string(),
            })
        },
    },
    Opt {
        section: "cinder",
        name: "username",
        secret: false,
        read: group,
        shown: |c| match cinder_auth(c)? {
            CinderAuth::None { username, .. } => Some(username.clone()),
            CinderAuth::Token(_) => None,
        },
    },
    Opt {
        section: "cinder",
        name: "project_id",
        secret: false,
        read: group,
        shown: |c| match cinder_auth(c)? {
            CinderAuth::None { project_id, .. } => Some(project_id.clone()),
            CinderAuth::Token(_) => None,
        },
    },
    Opt {
        section: "cinder",
        name: "token",
        secret: true,
        read: group,
        shown: |c| match cinder_auth(c)? {
            CinderAuth::Token(t) => Some(t.clone()),
            CinderAuth::None { .. } => None,
        },
    },
    Opt {
        section: "cinder",
        name: "timeout",
        secret: false,
        read: group,
        shown: |c| c.cinder.as_ref().map(|c| secs(c.timeout)),
    },
    Opt {
        section: "cinder",
        name: "action_retries",
        secret: false,
        read: group,
        shown: |c| c.cinder.as_ref().map(|c| c.action_retries.to_string()),
    },
    Opt {
        section: "cinder",
        name: "action_retry_interval",
        secret: false,
        read: group,
        shown: |c| c.cinder.as_ref().map(|c| secs(c.action_retry_interval)),
    },
    Opt {
        section: "secrets",
        name: "master_key",
        secret: true,
        read: |c, raw, o| {
            c.secrets.master_key = raw.text(o.section, o.name);
            if let Some(k) = &c.secrets.master_key {
                crate::secrets::MasterKey::from_base64(k).map_err(|m| o.invalid(m))?;
            }
            Ok(())
        },
        shown: |c| c.secrets.master_key.clone(),
    },
    Opt {
        section: "secrets",
        name: "master_key_file",
        secret: false,
        read: |c, raw, o| {
            if let Some(v) = o.value(raw) {
                c.secrets.master_key_file = PathBuf::from(v);
            }
            Ok(())
        },
        shown: |c| Some(c.secrets.master_key_file.display().to_string()),
    },
];

/// `(section, option)` of every option in [`TABLE`], in its order.
pub const OPTIONS: &[(&str, &str)] = &names::<{ TABLE.len() }>();

const fn names<const N: usize>() -> [(&'static str, &'static str); N] {
    let mut out = [("", ""); N];
    let mut i = 0;
    while i < N {
        out[i] = (TABLE[i].section, TABLE[i].name);
        i += 1;
    }
    out
}

/// Whether ironledger reads `[section] option`: an option of the table, or
/// one of the interface family.
pub fn known(section: &str, option: &str) -> bool {
    OPTIONS.contains(&(section, option))
        || (section == "DEFAULT"
            && INTERFACE_KINDS.iter().any(|k| {
                option == format!("enabled_{k}_interfaces")
                    || option == format!("default_{k}_interface")
            }))
}

/// `[DEFAULT] enabled_<kind>_interfaces` and `default_<kind>_interface` for
/// every interface kind, checked against the hardware types' interfaces.
pub fn read_interfaces(c: &mut Config, raw: &Raw) -> Result<(), ConfigError> {
    for kind in INTERFACE_KINDS {
        let enabled_key = format!("enabled_{kind}_interfaces");
        let default_key = format!("default_{kind}_interface");
        let current = c
            .catalog
            .interfaces
            .get(kind)
            .cloned()
            .unwrap_or(EnabledInterfaces {
                enabled: vec![],
                default: None,
            });
        let enabled = raw
            .get("DEFAULT", &enabled_key)
            .map(parse_list)
            .unwrap_or(current.enabled);
        let known_names: Vec<&String> = c
            .catalog
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
        let default = match raw.get("DEFAULT", &default_key) {
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
        c.catalog
            .interfaces
            .insert(kind.to_string(), EnabledInterfaces { enabled, default });
    }
    Ok(())
}

/// `[cinder]` (Ironic's option names where they exist): `None` without an
/// endpoint.
fn cinder(raw: &Raw) -> Result<Option<CinderConfig>, ConfigError> {
    let get = |option: &str| raw.get("cinder", option);
    let Some(endpoint) = get("endpoint_override") else {
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
        match get(option) {
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
    let action_retries = match get("action_retries") {
        None => 3,
        Some(v) => v
            .trim()
            .parse::<u32>()
            .map_err(|_| invalid("cinder", "action_retries", format!("'{v}' is not a count")))?,
    };
    let auth = match get("auth_type").unwrap_or("none") {
        "none" | "noauth" => CinderAuth::None {
            username: get("username").unwrap_or("admin").to_string(),
            // Cinder's no-auth token names the project of the endpoint URL.
            project_id: get("project_id")
                .map(String::from)
                .unwrap_or_else(|| endpoint.rsplit('/').next().unwrap_or_default().to_string()),
        },
        "token" => CinderAuth::Token(
            get("token")
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
