//! How a node's BMC is reached: its `driver_info`, read once, as Ironic reads
//! it, into a typed value.
//!
//! Ironic's `redfish` and `ipmitool` power and management interfaces each
//! parse `driver_info` on every call (`redfish/utils.py parse_driver_info`,
//! `ipmitool.py _parse_driver_info`) and fail with the same texts in `node
//! validate` and in a deploy. Here that reading is one pure function per
//! protocol, [`parse`], and what it yields, [`BmcAccess`], is all the BMC
//! clients (`effects::bmc`) are built from: the rule lives in the domain, the
//! protocol detail in effects.
//!
//! The only fact about the world the reading needs is whether a
//! `redfish_verify_ca` string names an existing file or directory (Ironic
//! takes an existing path as a CA bundle before it tries the string as a
//! boolean); the caller passes it in as [`PathExists`], so this module does no
//! I/O.

use super::oslo::{self, bool_word};
use serde_json::{Map, Value};
use std::fmt;

/// Whether a path names an existing file or directory (the caller's I/O).
pub type PathExists = fn(&str) -> bool;

/// The BMC protocols ironledger's hardware types speak, by the name of the
/// power (and management) interface that uses them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Power/management interface `redfish`.
    Redfish,
    /// Power/management interface `ipmitool`.
    Ipmi,
}

impl Protocol {
    /// The protocol an interface name speaks, if any.
    pub fn of_interface(name: &str) -> Option<Protocol> {
        match name {
            "redfish" => Some(Protocol::Redfish),
            "ipmitool" => Some(Protocol::Ipmi),
            _ => None,
        }
    }
}

/// A BMC password: readable through [`Password::expose`] only, printed as
/// `******`, so a `BmcAccess` may be logged or put in an error without
/// leaking it.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub fn new(s: impl Into<String>) -> Self {
        Password(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("******")
    }
}

/// `redfish_verify_ca`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyCa {
    Yes,
    No,
    /// An existing CA bundle file or directory of certificates.
    Bundle(String),
}

/// `redfish_auth_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedfishAuth {
    Basic,
    Session,
    Auto,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedfishAccess {
    /// `scheme://authority` of `redfish_address` (`https://` when the address
    /// names no scheme).
    pub address: String,
    /// `redfish_system_id`, percent-quoted as Ironic quotes it.
    pub system_id: Option<String>,
    pub username: Option<String>,
    pub password: Option<Password>,
    pub verify_ca: VerifyCa,
    pub auth_type: RedfishAuth,
}

/// `ipmi_priv_level`, Ironic's `VALID_PRIV_LEVELS`.
pub const IPMI_PRIV_LEVELS: [&str; 4] = ["ADMINISTRATOR", "CALLBACK", "OPERATOR", "USER"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpmiAccess {
    pub address: String,
    /// `ipmi_port`; the BMC's standard port (623) when `None`.
    pub port: Option<u16>,
    pub username: Option<String>,
    pub password: Option<Password>,
    /// One of [`IPMI_PRIV_LEVELS`].
    pub priv_level: String,
    /// `"2.0"` (lanplus) or `"1.5"` (lan).
    pub protocol_version: String,
    pub cipher_suite: Option<u8>,
}

/// A node's BMC, as its `driver_info` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BmcAccess {
    Redfish(RedfishAccess),
    Ipmi(IpmiAccess),
}

/// Reads `driver_info` for `protocol`, as Ironic's interfaces do; the error
/// is Ironic's text (`node` is the node's UUID, which the texts name).
pub fn parse(
    protocol: Protocol,
    node: &str,
    info: &Map<String, Value>,
    path_exists: PathExists,
) -> Result<BmcAccess, String> {
    match protocol {
        Protocol::Redfish => parse_redfish(node, info, path_exists).map(BmcAccess::Redfish),
        Protocol::Ipmi => parse_ipmi(node, info).map(BmcAccess::Ipmi),
    }
}

/// Python's `str()` of a JSON value, as Ironic's texts interpolate values.
fn py_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => "None".into(),
        other => other.to_string(),
    }
}

fn set(info: &Map<String, Value>, key: &str) -> bool {
    info.get(key).is_some_and(oslo::truthy)
}

fn optional_string(info: &Map<String, Value>, key: &str) -> Option<String> {
    match info.get(key) {
        None | Some(Value::Null) => None,
        Some(v) => Some(py_str(v)),
    }
}

/// Python's `urllib.parse.quote` (safe `/`).
fn quote(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"_.-~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn parse_redfish(
    node: &str,
    info: &Map<String, Value>,
    path_exists: PathExists,
) -> Result<RedfishAccess, String> {
    if !set(info, "redfish_address") {
        return Err(format!(
            "Missing the following Redfish properties in node {node} driver_info: ['redfish_address']"
        ));
    }
    let given = &info["redfish_address"];
    let invalid = |address: &str| {
        format!(
            "Invalid Redfish address {address} set in driver_info/redfish_address on node {node}"
        )
    };
    let Value::String(raw) = given else {
        return Err(invalid(&py_str(given)));
    };
    // Ironic puts `https://` in front of anything without a scheme and an
    // authority, then requires both.
    let with_scheme = if raw.contains("://") {
        raw.clone()
    } else {
        format!("https://{raw}")
    };
    let url = url::Url::parse(&with_scheme).map_err(|_| invalid(&with_scheme))?;
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| invalid(&with_scheme))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(&with_scheme));
    }
    if !url.username().is_empty() || url.password().is_some() {
        // Ironic would pass them on in the URL; ironledger keeps every
        // credential in the fields that are masked and sealed.
        return Err(format!(
            "Invalid Redfish address set in driver_info/redfish_address on node {node}: credentials go in redfish_username and redfish_password, not in the address"
        ));
    }
    let address = match url.port() {
        Some(p) => format!("{}://{host}:{p}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    };
    // Ironic takes a path as the service root (`root_prefix`); ironledger's
    // client always starts at the standard root, so any other is refused
    // rather than ignored.
    if !matches!(url.path(), "" | "/" | "/redfish/v1" | "/redfish/v1/") {
        return Err(format!(
            "Invalid Redfish address {with_scheme} set in driver_info/redfish_address on node {node}: ironledger uses the service root /redfish/v1/ and does not support the path {}",
            url.path()
        ));
    }

    let system_id = match info.get("redfish_system_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(quote(s)),
        Some(other) => {
            return Err(format!(
                "Invalid value \"{}\" set in driver_info/redfish_system_id on node {node}. The value should be a path (string) to the resource that the driver will interact with. For example: /redfish/v1/Systems/1",
                py_str(other)
            ))
        }
    };

    let bad_verify = |v: &Value| {
        format!(
            "Invalid value type set in driver_info/redfish_verify_ca on node {node}. The value should be a Boolean or the path to a file/directory, not \"{}\"",
            py_str(v)
        )
    };
    let verify_ca = match info.get("redfish_verify_ca") {
        None => VerifyCa::Yes,
        Some(Value::Bool(true)) => VerifyCa::Yes,
        Some(Value::Bool(false)) => VerifyCa::No,
        Some(Value::String(s)) if path_exists(s) => VerifyCa::Bundle(s.clone()),
        Some(v @ Value::String(s)) => match bool_word(s) {
            Some(true) => VerifyCa::Yes,
            Some(false) => VerifyCa::No,
            None => return Err(bad_verify(v)),
        },
        Some(other) => return Err(bad_verify(other)),
    };

    // `[redfish] auth_type` defaults to `auto` in Ironic.
    let auth_type = match info.get("redfish_auth_type") {
        None => RedfishAuth::Auto,
        Some(Value::String(s)) if s == "basic" => RedfishAuth::Basic,
        Some(Value::String(s)) if s == "session" => RedfishAuth::Session,
        Some(Value::String(s)) if s == "auto" => RedfishAuth::Auto,
        Some(other) => {
            return Err(format!(
                "Invalid value \"{}\" set in driver_info/redfish_auth_type on node {node}. The value should be one of \"basic\", \"session\" or \"auto\".",
                py_str(other)
            ))
        }
    };

    Ok(RedfishAccess {
        address,
        system_id,
        username: optional_string(info, "redfish_username"),
        password: optional_string(info, "redfish_password").map(Password::new),
        verify_ca,
        auth_type,
    })
}

/// oslo's `netutils.is_valid_port` through Ironic's `validate_network_port`.
fn network_port(v: &Value, name: &str) -> Result<u16, String> {
    let n: Option<i64> = match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f.trunc() as i64)),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        Value::Bool(b) => Some(*b as i64),
        _ => None,
    };
    n.and_then(|n| u16::try_from(n).ok())
        .ok_or_else(|| format!("{name} \"{}\" is not a valid port.", py_str(v)))
}

fn parse_ipmi(_node: &str, info: &Map<String, Value>) -> Result<IpmiAccess, String> {
    if !set(info, "ipmi_address") {
        return Err(
            "Missing the following IPMI credentials in node's driver_info: ['ipmi_address']."
                .into(),
        );
    }
    let address = py_str(&info["ipmi_address"]);
    let protocol_version = info
        .get("ipmi_protocol_version")
        .map(py_str)
        .unwrap_or_else(|| "2.0".into());
    if !matches!(protocol_version.as_str(), "2.0" | "1.5") {
        return Err(format!(
            "Invalid IPMI protocol version value {protocol_version}, the valid value can be one of 2.0, 1.5"
        ));
    }
    let port = match info.get("ipmi_port") {
        None | Some(Value::Null) => None,
        Some(v) => Some(network_port(v, "ipmi_port")?),
    };
    match info.get("ipmi_bridging").map(py_str).as_deref() {
        None | Some("no") => {}
        Some(b @ ("single" | "dual")) => {
            return Err(format!(
                "Value for ipmi_bridging is provided as {b}, but ironledger does not bridge IPMI requests; use \"no\""
            ))
        }
        Some(b) => {
            return Err(format!(
                "Invalid value for ipmi_bridging: {b}, the valid value can be one of: ['single', 'dual', 'no']"
            ))
        }
    }
    let priv_level = info
        .get("ipmi_priv_level")
        .map(py_str)
        .unwrap_or_else(|| "ADMINISTRATOR".into());
    if !IPMI_PRIV_LEVELS.contains(&priv_level.as_str()) {
        return Err(format!(
            "Invalid privilege level value:{priv_level}, the valid value can be one of {}",
            IPMI_PRIV_LEVELS.join(", ")
        ));
    }
    if let Some(kg) = info.get("ipmi_hex_kg_key").filter(|v| oslo::truthy(v)) {
        if !py_str(kg).len().is_multiple_of(2) {
            return Err("Number of ipmi_hex_kg_key characters is not even".into());
        }
        return Err(
            "ipmi_hex_kg_key is not supported by ironledger yet; remove it from driver_info".into(),
        );
    }
    let cipher_suite = match info.get("ipmi_cipher_suite") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let n = match v {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.trim().parse::<i64>().ok(),
                _ => None,
            };
            let suite = n
                .and_then(|n| u8::try_from(n).ok())
                .ok_or_else(|| format!("Invalid cipher suite {}, expected a number", py_str(v)))?;
            if protocol_version == "1.5" {
                return Err("Cipher suites cannot be used with IPMI 1.5".into());
            }
            Some(suite)
        }
    };
    Ok(IpmiAccess {
        address,
        port,
        username: optional_string(info, "ipmi_username").filter(|u| !u.is_empty()),
        password: optional_string(info, "ipmi_password")
            .filter(|p| !p.is_empty())
            .map(Password::new),
        priv_level,
        protocol_version,
        cipher_suite,
    })
}

impl IpmiAccess {
    /// The IPMI power interface's own check of `ipmi_address` (Ironic's
    /// `_validate_ipmi_address`): an IP address, or a host name as Ironic's
    /// `is_hostname_safe` accepts it (lower case, RFC 952/1123 labels).
    pub fn check_address(&self, node: &str) -> Result<(), String> {
        let a = self.address.as_str();
        if a.parse::<std::net::IpAddr>().is_ok() || hostname_safe(a) {
            return Ok(());
        }
        Err(format!(
            "Invalid IPMI address \"{a}\" for node {node}. Must be a valid IP address or hostname."
        ))
    }
}

fn hostname_safe(h: &str) -> bool {
    if h.is_empty() || h.len() > 255 {
        return false;
    }
    let h = h.strip_suffix('.').unwrap_or(h);
    let mut labels = h.split('.');
    let host = labels.next().unwrap_or("");
    let lower = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let host_ok = (1..=63).contains(&host.len())
        && host.chars().all(|c| lower(c) || c == '-')
        && host.starts_with(lower)
        && host.ends_with(lower);
    host_ok
        && labels.all(|l| {
            (1..=63).contains(&l.len())
                && l.chars().all(|c| lower(c) || c == '-' || c == '_')
                && l.ends_with(lower)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NODE: &str = "1be26c0b-03f2-4d2e-ae87-c02d7f33c123";

    fn no_paths(_: &str) -> bool {
        false
    }

    fn info(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn redfish(v: Value) -> Result<RedfishAccess, String> {
        match parse(Protocol::Redfish, NODE, &info(v), no_paths)? {
            BmcAccess::Redfish(r) => Ok(r),
            other => panic!("{other:?}"),
        }
    }

    fn ipmi(v: Value) -> Result<IpmiAccess, String> {
        match parse(Protocol::Ipmi, NODE, &info(v), no_paths)? {
            BmcAccess::Ipmi(i) => Ok(i),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn redfish_full_and_defaults() {
        let r = redfish(json!({
            "redfish_address": "http://10.0.0.5:8000",
            "redfish_system_id": "/redfish/v1/Systems/my node",
            "redfish_username": "admin",
            "redfish_password": "pw",
            "redfish_verify_ca": "no",
            "redfish_auth_type": "session",
        }))
        .unwrap();
        assert_eq!(r.address, "http://10.0.0.5:8000");
        assert_eq!(
            r.system_id.as_deref(),
            Some("/redfish/v1/Systems/my%20node")
        );
        assert_eq!(r.username.as_deref(), Some("admin"));
        assert_eq!(r.password.as_ref().unwrap().expose(), "pw");
        assert_eq!(r.verify_ca, VerifyCa::No);
        assert_eq!(r.auth_type, RedfishAuth::Session);
        assert!(!format!("{r:?}").contains("pw\""), "{r:?}");

        let d = redfish(json!({"redfish_address": "bmc.example.com/redfish/v1/"})).unwrap();
        assert_eq!(d.address, "https://bmc.example.com");
        assert!(redfish(json!({"redfish_address": "https://h/custom/root"}))
            .unwrap_err()
            .contains("does not support the path /custom/root"));
        assert_eq!(d.system_id, None);
        assert_eq!(d.password, None);
        assert_eq!(d.verify_ca, VerifyCa::Yes);
        assert_eq!(d.auth_type, RedfishAuth::Auto);
    }

    #[test]
    fn redfish_verify_ca_is_a_bool_word_or_an_existing_path() {
        for (v, want) in [
            (json!(true), VerifyCa::Yes),
            (json!(false), VerifyCa::No),
            (json!("True"), VerifyCa::Yes),
            (json!("off"), VerifyCa::No),
        ] {
            let r = redfish(json!({"redfish_address": "h", "redfish_verify_ca": v})).unwrap();
            assert_eq!(r.verify_ca, want);
        }
        let exists = |p: &str| p == "/etc/ca.pem";
        let m = info(json!({"redfish_address": "h", "redfish_verify_ca": "/etc/ca.pem"}));
        assert_eq!(
            parse(Protocol::Redfish, NODE, &m, exists).unwrap(),
            BmcAccess::Redfish(RedfishAccess {
                address: "https://h".into(),
                system_id: None,
                username: None,
                password: None,
                verify_ca: VerifyCa::Bundle("/etc/ca.pem".into()),
                auth_type: RedfishAuth::Auto,
            })
        );
        for (v, shown) in [
            (json!("/etc/none.pem"), "/etc/none.pem"),
            (json!(3), "3"),
            (json!("maybe"), "maybe"),
        ] {
            assert_eq!(
                redfish(json!({"redfish_address": "h", "redfish_verify_ca": v})).unwrap_err(),
                format!("Invalid value type set in driver_info/redfish_verify_ca on node {NODE}. The value should be a Boolean or the path to a file/directory, not \"{shown}\"")
            );
        }
    }

    #[test]
    fn redfish_errors_are_ironics() {
        let missing = format!(
            "Missing the following Redfish properties in node {NODE} driver_info: ['redfish_address']"
        );
        assert_eq!(redfish(json!({})).unwrap_err(), missing);
        assert_eq!(
            redfish(json!({"redfish_address": ""})).unwrap_err(),
            missing
        );
        assert_eq!(
            redfish(json!({"redfish_address": "http://"})).unwrap_err(),
            format!(
                "Invalid Redfish address http:// set in driver_info/redfish_address on node {NODE}"
            )
        );
        assert_eq!(
            redfish(json!({"redfish_address": "a b"})).unwrap_err(),
            format!("Invalid Redfish address https://a b set in driver_info/redfish_address on node {NODE}")
        );
        assert_eq!(
            redfish(json!({"redfish_address": 12})).unwrap_err(),
            format!("Invalid Redfish address 12 set in driver_info/redfish_address on node {NODE}")
        );
        assert!(redfish(json!({"redfish_address": "https://u:p@h"}))
            .unwrap_err()
            .contains("credentials go in redfish_username and redfish_password"));
        assert_eq!(
            redfish(json!({"redfish_address": "h", "redfish_system_id": 5})).unwrap_err(),
            format!("Invalid value \"5\" set in driver_info/redfish_system_id on node {NODE}. The value should be a path (string) to the resource that the driver will interact with. For example: /redfish/v1/Systems/1")
        );
        assert_eq!(
            redfish(json!({"redfish_address": "h", "redfish_auth_type": "digest"})).unwrap_err(),
            format!("Invalid value \"digest\" set in driver_info/redfish_auth_type on node {NODE}. The value should be one of \"basic\", \"session\" or \"auto\".")
        );
    }

    #[test]
    fn ipmi_full_and_defaults() {
        let i = ipmi(json!({
            "ipmi_address": "10.0.0.9", "ipmi_port": "6230", "ipmi_username": "admin",
            "ipmi_password": "pw", "ipmi_priv_level": "OPERATOR",
            "ipmi_protocol_version": "2.0", "ipmi_cipher_suite": 17,
        }))
        .unwrap();
        assert_eq!(i.address, "10.0.0.9");
        assert_eq!(i.port, Some(6230));
        assert_eq!(i.username.as_deref(), Some("admin"));
        assert_eq!(i.password.as_ref().unwrap().expose(), "pw");
        assert_eq!(i.priv_level, "OPERATOR");
        assert_eq!(i.cipher_suite, Some(17));
        let d = ipmi(json!({"ipmi_address": "bmc-1.example.com", "ipmi_port": 623})).unwrap();
        assert_eq!(d.port, Some(623));
        assert_eq!(d.priv_level, "ADMINISTRATOR");
        assert_eq!(d.protocol_version, "2.0");
        assert_eq!(d.username, None);
        assert_eq!(d.password, None);
        assert_eq!(d.cipher_suite, None);
        assert_eq!(d.check_address(NODE), Ok(()));
        assert_eq!(
            ipmi(json!({"ipmi_address": "h", "ipmi_protocol_version": 1.5}))
                .unwrap()
                .protocol_version,
            "1.5"
        );
    }

    #[test]
    fn ipmi_errors_are_ironics() {
        let cases: Vec<(Value, String)> = vec![
            (json!({}), "Missing the following IPMI credentials in node's driver_info: ['ipmi_address'].".into()),
            (json!({"ipmi_address": ""}), "Missing the following IPMI credentials in node's driver_info: ['ipmi_address'].".into()),
            (json!({"ipmi_address": "h", "ipmi_protocol_version": "3"}),
             "Invalid IPMI protocol version value 3, the valid value can be one of 2.0, 1.5".into()),
            (json!({"ipmi_address": "h", "ipmi_port": "abc"}), "ipmi_port \"abc\" is not a valid port.".into()),
            (json!({"ipmi_address": "h", "ipmi_port": 70000}), "ipmi_port \"70000\" is not a valid port.".into()),
            (json!({"ipmi_address": "h", "ipmi_bridging": "triple"}),
             "Invalid value for ipmi_bridging: triple, the valid value can be one of: ['single', 'dual', 'no']".into()),
            (json!({"ipmi_address": "h", "ipmi_priv_level": "ROOT"}),
             "Invalid privilege level value:ROOT, the valid value can be one of ADMINISTRATOR, CALLBACK, OPERATOR, USER".into()),
            (json!({"ipmi_address": "h", "ipmi_hex_kg_key": "abc"}), "Number of ipmi_hex_kg_key characters is not even".into()),
            (json!({"ipmi_address": "h", "ipmi_cipher_suite": "three"}), "Invalid cipher suite three, expected a number".into()),
            (json!({"ipmi_address": "h", "ipmi_cipher_suite": 3, "ipmi_protocol_version": "1.5"}),
             "Cipher suites cannot be used with IPMI 1.5".into()),
        ];
        for (v, want) in cases {
            assert_eq!(ipmi(v.clone()).unwrap_err(), want, "{v}");
        }
        assert!(
            ipmi(json!({"ipmi_address": "h", "ipmi_bridging": "single"}))
                .unwrap_err()
                .contains("ironledger does not bridge")
        );
        for bad in ["BMC.example.com", "bad host", "-x", "a..b"] {
            assert_eq!(
                ipmi(json!({ "ipmi_address": bad }))
                    .unwrap()
                    .check_address(NODE)
                    .unwrap_err(),
                format!("Invalid IPMI address \"{bad}\" for node {NODE}. Must be a valid IP address or hostname.")
            );
        }
        for good in ["::1", "192.0.2.1", "bmc", "bmc-1.rack_2.example.com."] {
            assert_eq!(
                ipmi(json!({ "ipmi_address": good }))
                    .unwrap()
                    .check_address(NODE),
                Ok(()),
                "{good}"
            );
        }
    }
}
