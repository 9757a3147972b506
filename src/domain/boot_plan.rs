//! What an iSCSI volume boot needs, read from a node's volume targets and
//! connectors: the boot volume, the other volumes, the initiator name and the
//! CHAP logins, each checked to be something an iPXE script can carry.
//!
//! Pure, and in the domain because two checkpoints ask it: a deploy request
//! is refused when no plan can be made (`interface_validation::deploy_refusal`), and
//! the iPXE renderer (`effects::ipxe`) writes the plan out as a script.

use crate::domain::node::entities::{Connector, Target};
use crate::domain::node::target_rules::MAX_TARGET_LUN;
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("the node has no volume target with boot index 0")]
    NoBootTarget,
    #[error("boot volume target {0} is of type '{1}'; only 'iscsi' volumes can be booted by iPXE")]
    NotIscsi(String, String),
    #[error("volume target {target}: {problem}")]
    BadProperties { target: String, problem: String },
}

/// One SAN drive: its iSCSI URI(s) (several for multipath, space-joined) and
/// CHAP credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SanVolume {
    pub uri: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Mutual CHAP: what the target must answer with
    /// (`reverse_auth_username` / `reverse_auth_password`).
    pub reverse: Option<(String, String)>,
}

/// A target's CHAP logins, as [`SanVolume`] holds them.
struct Logins {
    username: Option<String>,
    password: Option<String>,
    reverse: Option<(String, String)>,
}

/// What the per-node script does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IscsiBoot {
    pub initiator_iqn: Option<String>,
    pub boot: SanVolume,
    /// The other iSCSI targets, by boot index.
    pub extra: Vec<SanVolume>,
}

/// The first element of a list, or the value itself; `""`/`null` count as missing.
fn first<'a>(props: &'a Map<String, Value>, one: &str, many: &str) -> Option<&'a Value> {
    let pick = |v: &'a Value| match v {
        Value::Array(items) => items.first(),
        other => Some(other),
    };
    let present = |v: &&Value| !(v.is_null() || v.as_str() == Some(""));
    props
        .get(one)
        .and_then(pick)
        .filter(present)
        .or_else(|| props.get(many).and_then(pick).filter(present))
}

/// Splits `host:port`, `[v6]:port`, or a bare host.
fn host_port(portal: &str) -> (String, String) {
    if let Some(rest) = portal.strip_prefix('[') {
        if let Some((host, tail)) = rest.split_once(']') {
            return (
                format!("[{host}]"),
                tail.strip_prefix(':').unwrap_or("").to_string(),
            );
        }
    }
    match portal.rsplit_once(':') {
        // More than one colon and no brackets: a bare IPv6 address.
        Some((h, _)) if h.contains(':') => (format!("[{portal}]"), String::new()),
        Some((h, p)) => (h.to_string(), p.to_string()),
        None => (portal.to_string(), String::new()),
    }
}

/// The value of each of `n` portals for one property: per portal when the
/// list `many` has one entry per portal (what Cinder sends for multipath, and
/// what an array with its own IQN or LUN on each path needs), otherwise the
/// single value (`one`, or the list's first entry) for every portal.
/// Ironic's renderer takes the first entry for every portal, which logs a
/// path in to the wrong IQN or LUN; a list that lines up with neither one
/// nor every portal is refused.
fn per_portal<'a>(
    props: &'a Map<String, Value>,
    one: &str,
    many: &str,
    n: usize,
) -> Result<Vec<Option<&'a Value>>, String> {
    match props.get(many) {
        Some(Value::Array(items)) if n > 1 && items.len() == n => {
            Ok(items.iter().map(Some).collect())
        }
        Some(Value::Array(items)) if n > 1 && items.len() > 1 => Err(format!(
            "{many} lists {} values for {n} portals in target_portals: give one per portal, in the same order, or a single {one}",
            items.len()
        )),
        _ => Ok(vec![first(props, one, many); n]),
    }
}

/// The iSCSI URI(s) of a target: `iscsi:<host>::<port>:<lun in lower-case hex>:<iqn>`,
/// one per portal when `target_portals` lists several (multipath), each with
/// its own IQN and LUN when `target_iqns` / `target_luns` give one per portal.
pub fn iscsi_uri(target: &Target) -> Result<String, RenderError> {
    let bad = |problem: &str| RenderError::BadProperties {
        target: target.uuid.to_string(),
        problem: problem.into(),
    };
    let p = &target.properties;
    let portals: Vec<&str> = match p.get("target_portals") {
        Some(Value::Array(items)) if !items.is_empty() => {
            items.iter().filter_map(Value::as_str).collect()
        }
        _ => first(p, "target_portal", "target_portal")
            .and_then(Value::as_str)
            .into_iter()
            .collect(),
    };
    let n = portals.len().max(1);
    let iqns = per_portal(p, "target_iqn", "target_iqns", n).map_err(|e| bad(&e))?;
    let luns = per_portal(p, "target_lun", "target_luns", n).map_err(|e| bad(&e))?;
    let iqns = iqns
        .into_iter()
        .map(|v| {
            v.and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| bad("target_iqn is missing or not a string"))
        })
        .collect::<Result<Vec<&str>, _>>()?;
    let luns = luns
        .into_iter()
        .map(|v| match v {
            // One hex group is all iPXE reads of a LUN, as 16 bits (the API
            // refuses larger LUNs; this guards values that came from elsewhere).
            Some(Value::Number(n)) if n.as_u64().is_some_and(|l| l <= MAX_TARGET_LUN) => {
                Ok(n.as_u64().expect("u64"))
            }
            Some(other) => Err(bad(&format!(
                "target_lun must be an integer from 0 to {MAX_TARGET_LUN}, got {other}"
            ))),
            None => Err(bad("target_lun is missing")),
        })
        .collect::<Result<Vec<u64>, _>>()?;
    if portals.is_empty() {
        return Err(bad("target_portal is missing"));
    }
    let uris: Vec<String> = portals
        .iter()
        .zip(iqns.iter().zip(&luns))
        .map(|(portal, (iqn, lun))| {
            let (host, port) = host_port(portal);
            format!("iscsi:{host}::{port}:{lun:x}:{iqn}")
        })
        .collect();
    Ok(uris.join(" "))
}

/// A value iPXE can carry in `set <name> <value>`: iPXE splits a command
/// into words at whitespace (several spaces become one, leading and trailing
/// ones vanish), has no quoting, ends a command at a line break or at a word
/// `||`, `&&` or `;`, starts a comment at a word beginning with `#`, and
/// expands `${…}`. A value it would change — or that would run a command of
/// its own — is refused rather than written, and the error never quotes the
/// value (it may be a password).
fn script_value(name: &str, value: &str) -> Result<(), String> {
    let mangled = value.chars().any(|c| c.is_control())
        || value.contains("${")
        || value.starts_with(' ')
        || value.ends_with(' ')
        || value.contains("  ")
        || value
            .split(' ')
            .any(|w| matches!(w, "||" | "&&" | ";") || w.starts_with('#'));
    if mangled {
        Err(format!(
            "{name} cannot be written into an iPXE script: it holds a control character, '${{', a word '||', '&&' or ';', a word starting with '#', or leading, trailing or repeated spaces"
        ))
    } else {
        Ok(())
    }
}

/// A target's CHAP credentials; an empty string counts as none, as in
/// Ironic's template. Mutual CHAP (the initiator checks the target too) takes
/// `reverse_auth_username` and `reverse_auth_password`, both, and only on
/// top of the forward login (iPXE answers a target's challenge only after
/// its own login).
fn credentials(target: &Target) -> Result<Logins, RenderError> {
    let bad = |problem: String| RenderError::BadProperties {
        target: target.uuid.to_string(),
        problem,
    };
    let get = |k: &str| -> Result<Option<String>, RenderError> {
        match target.properties.get(k).and_then(Value::as_str) {
            None | Some("") => Ok(None),
            Some(v) => {
                script_value(k, v).map_err(bad)?;
                Ok(Some(v.to_string()))
            }
        }
    };
    let username = get("auth_username")?;
    let password = get("auth_password")?;
    let reverse = match (get("reverse_auth_username")?, get("reverse_auth_password")?) {
        (None, None) => None,
        (Some(u), Some(p)) if username.is_some() && password.is_some() => Some((u, p)),
        (Some(_), Some(_)) => {
            return Err(bad(
                "reverse_auth_username and reverse_auth_password (mutual CHAP) need auth_username and auth_password as well".into(),
            ))
        }
        _ => {
            return Err(bad(
                "mutual CHAP needs both reverse_auth_username and reverse_auth_password".into(),
            ))
        }
    };
    Ok(Logins {
        username,
        password,
        reverse,
    })
}

/// Plans the boot of a node from its targets and connectors.
///
/// The initiator IQN is the node's **first** `iqn` connector — the one the
/// Cinder connector uses too (Ironic takes the last one here and the first for
/// Cinder; with several IQN connectors that would log in with a name the
/// storage did not authorise).
pub fn plan(targets: &[Target], connectors: &[Connector]) -> Result<IscsiBoot, RenderError> {
    let boot = targets
        .iter()
        .find(|t| t.boot_index == 0)
        .ok_or(RenderError::NoBootTarget)?;
    if boot.volume_type != "iscsi" {
        return Err(RenderError::NotIscsi(
            boot.uuid.to_string(),
            boot.volume_type.clone(),
        ));
    }
    let logins = credentials(boot)?;
    let mut others: Vec<&Target> = targets
        .iter()
        .filter(|t| t.boot_index != 0 && t.volume_type.contains("iscsi"))
        .collect();
    others.sort_by_key(|t| t.boot_index);
    let extra = others
        .into_iter()
        .map(|t| {
            let l = credentials(t)?;
            Ok(SanVolume {
                uri: iscsi_uri(t)?,
                username: l.username,
                password: l.password,
                reverse: l.reverse,
            })
        })
        .collect::<Result<Vec<_>, RenderError>>()?;
    // An empty IQN connector is skipped, as Ironic's template skips it.
    let initiator_iqn = connectors
        .iter()
        .find(|c| c.kind == "iqn" && !c.connector_id.is_empty())
        .map(|c| c.connector_id.clone());
    if let Some(iqn) = &initiator_iqn {
        script_value("the initiator IQN", iqn).map_err(|problem| RenderError::BadProperties {
            target: boot.uuid.to_string(),
            problem,
        })?;
    }
    Ok(IscsiBoot {
        initiator_iqn,
        boot: SanVolume {
            uri: iscsi_uri(boot)?,
            username: logins.username,
            password: logins.password,
            reverse: logins.reverse,
        },
        extra,
    })
}

impl IscsiBoot {
    /// The same plan with every password replaced by `******`: what the log
    /// may fingerprint (the renderer's script of it) without giving an offline
    /// guesser anything to test a password against.
    pub fn without_secrets(&self) -> IscsiBoot {
        let mask = |v: &SanVolume| SanVolume {
            password: v.password.as_ref().map(|_| "******".to_string()),
            reverse: v
                .reverse
                .as_ref()
                .map(|(u, _)| (u.clone(), "******".to_string())),
            ..v.clone()
        };
        IscsiBoot {
            initiator_iqn: self.initiator_iqn.clone(),
            boot: mask(&self.boot),
            extra: self.extra.iter().map(mask).collect(),
        }
    }
}
