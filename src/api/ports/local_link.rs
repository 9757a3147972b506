//! A port's `local_link_connection`, checked as Ironic checks it.
//!
//! The link says where the port is cabled. Ironic accepts one of four shapes
//! (any of them, JSON schema `anyOf`), every value text, no other keys:
//!
//! | shape       | required keys                                      |
//! |-------------|----------------------------------------------------|
//! | switch port | `port_id`, `switch_id` (+ `switch_info`)           |
//! | Smart NIC   | `port_id`, `hostname`                              |
//! | unmanaged   | `network_type: "unmanaged"` alone                  |
//! | OVN VTEP    | `port_id`, `vtep-logical-switch`, `vtep-physical-switch` |
//!
//! or the empty object. `network_type` is `managed` or `unmanaged`; the two
//! `vtep-*` keys come together. `switch_id` must then be a MAC address or a
//! 16-hex-digit OpenFlow datapath ID, stored in lower case.
//!
//! A refusal is worded as jsonschema words it and as Ironic picks the "root
//! cause" among the errors of the four shapes (the deepest error first, else
//! the first of the shallowest), so scripts that match Ironic's text keep
//! working. Compared with Ironic 39 for every case in `tests/api/api_ports.rs`.

use crate::api::pyfmt::{additional_properties, repr, repr_str, required, type_error};
use serde_json::{Map, Value};

/// Every key a link may have, in the order Ironic's schema lists them.
const KEYS: &[&str] = &[
    "port_id",
    "switch_id",
    "hostname",
    "switch_info",
    "network_type",
    "vtep-logical-switch",
    "vtep-physical-switch",
];

/// The keys Ironic shows only from API 1.90 (OVN VTEP switches); below it, a
/// link holding them is shown empty.
pub const VTEP_KEYS: &[&str] = &["vtep-logical-switch", "vtep-physical-switch"];

/// One shape of a link: its required keys and the `network_type`s it takes.
/// `open: false` is the empty-object shape (no key allowed at all).
struct Shape {
    required: &'static [&'static str],
    network_types: &'static [&'static str],
    open: bool,
}

const MANAGED_OR_NOT: &[&str] = &["managed", "unmanaged"];

/// Ironic's `LOCAL_LINK_CONN_SCHEMA`, in its order (the order decides which
/// error is reported when several shapes fail alike).
const SHAPES: [Shape; 5] = [
    Shape {
        required: &["port_id", "switch_id"],
        network_types: MANAGED_OR_NOT,
        open: true,
    },
    Shape {
        required: &["port_id", "hostname"],
        network_types: MANAGED_OR_NOT,
        open: true,
    },
    Shape {
        required: &["network_type"],
        network_types: &["unmanaged"],
        open: true,
    },
    Shape {
        required: &["port_id", "vtep-logical-switch", "vtep-physical-switch"],
        network_types: MANAGED_OR_NOT,
        open: true,
    },
    Shape {
        required: &[],
        network_types: &[],
        open: false,
    },
];

/// A jsonschema error, with what its relevance is ranked by: the key it is
/// about (`None`: the link itself) and whether the value failed a type check.
struct SchemaError {
    key: Option<&'static str>,
    type_mismatch: bool,
    message: String,
}

impl SchemaError {
    fn on_link(message: String) -> Self {
        SchemaError {
            key: None,
            type_mismatch: false,
            message,
        }
    }

    /// jsonschema's relevance: deeper first, then (for siblings) the later
    /// key, then a value that does not even have the expected type.
    fn relevance(&self) -> (i32, &str, bool) {
        (
            -(self.key.is_some() as i32),
            self.key.unwrap_or(""),
            self.type_mismatch,
        )
    }
}

/// The errors of one shape, in the order jsonschema finds them: each key's
/// type (and `network_type`'s value), unexpected keys, the `vtep-*` pair,
/// missing keys.
fn errors(link: &Map<String, Value>, shape: &Shape) -> Vec<SchemaError> {
    let mut out = vec![];
    if !shape.open {
        let extras: Vec<&str> = link.keys().map(String::as_str).collect();
        if !extras.is_empty() {
            out.push(SchemaError::on_link(additional_properties(&extras)));
        }
        return out;
    }
    for &key in KEYS {
        let Some(v) = link.get(key) else { continue };
        if !v.is_string() {
            out.push(SchemaError {
                key: Some(key),
                type_mismatch: true,
                message: type_error(v, &["string"]),
            });
        }
        if key == "network_type" && !shape.network_types.iter().any(|t| v.as_str() == Some(t)) {
            let names: Vec<String> = shape.network_types.iter().map(|t| repr_str(t)).collect();
            out.push(SchemaError {
                key: Some(key),
                type_mismatch: !v.is_string(),
                message: format!("{} is not one of [{}]", repr(v), names.join(", ")),
            });
        }
    }
    let extras: Vec<&str> = link
        .keys()
        .map(String::as_str)
        .filter(|k| !KEYS.contains(k))
        .collect();
    if !extras.is_empty() {
        out.push(SchemaError::on_link(additional_properties(&extras)));
    }
    let [logical, physical] = [VTEP_KEYS[0], VTEP_KEYS[1]];
    for (has, needs) in [(logical, physical), (physical, logical)] {
        if link.contains_key(has) && !link.contains_key(needs) {
            out.push(SchemaError::on_link(format!(
                "{} is a dependency of {}",
                repr_str(needs),
                repr_str(has)
            )));
        }
    }
    for key in shape.required {
        if !link.contains_key(*key) {
            out.push(SchemaError::on_link(required(key)));
        }
    }
    out
}

/// Checks a link against Ironic's shapes, then its `switch_id`; the refusal
/// in Ironic's words. `{}` passes (so does no link at all: callers skip it).
pub fn check(link: &Map<String, Value>) -> Result<(), String> {
    let per_shape: Vec<Vec<SchemaError>> = SHAPES.iter().map(|s| errors(link, s)).collect();
    if per_shape.iter().any(Vec::is_empty) {
        return check_switch_id(link);
    }
    let all: Vec<SchemaError> = per_shape.into_iter().flatten().collect();
    let prefix = "Schema error for local_link_connection: ";
    // jsonschema reports one of the shapes' errors in place of "none of the
    // shapes" when a single one is less relevant than all the others (the
    // deepest, e.g. a bad `network_type`).
    let mut ranked: Vec<&SchemaError> = all.iter().collect();
    ranked.sort_by(|a, b| a.relevance().cmp(&b.relevance()));
    if ranked.len() == 1 || ranked[0].relevance() != ranked[1].relevance() {
        return Err(format!("{prefix}{}", ranked[0].message));
    }
    // Otherwise Ironic names a "possible root cause": the first of the most
    // relevant errors.
    let cause = all.iter().fold(&all[0], |best, e| {
        if e.relevance() > best.relevance() {
            e
        } else {
            best
        }
    });
    Err(format!(
        "{prefix}{} is not valid under any of the given schemas. Possible root cause: {}",
        repr(&Value::Object(link.clone())),
        cause.message
    ))
}

/// Ironic's `local_link_normalize`: a `switch_id` is a MAC address
/// (colon-separated) or an OpenFlow datapath ID (16 hex digits).
fn check_switch_id(link: &Map<String, Value>) -> Result<(), String> {
    let Some(id) = link.get("switch_id").and_then(Value::as_str) else {
        return Ok(());
    };
    let datapath = id.len() == 16 && id.chars().all(|c| c.is_ascii_hexdigit());
    if super::normalize_mac(id).is_some() || datapath {
        Ok(())
    } else {
        Err(format!(
            "Expected a MAC address or OpenFlow datapath ID but received {id}."
        ))
    }
}

/// Whether a Smart NIC port's link names the NIC's host (`port_id` and
/// `hostname`, as Ironic requires when a port is created with
/// `is_smartnic: true`). No link at all passes, as in Ironic.
pub fn fits_smart_nic(link: Option<&Value>) -> bool {
    match link {
        None | Some(Value::Null) => true,
        Some(Value::Object(m)) => errors(m, &SHAPES[1]).is_empty(),
        Some(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check_json(v: Value) -> Result<(), String> {
        check(v.as_object().expect("an object"))
    }

    #[test]
    fn each_shape_passes() {
        for ok in [
            json!({}),
            json!({"switch_id": "AA:bb:cc:dd:ee:ff", "port_id": "Eth1/1", "switch_info": "sw1"}),
            json!({"switch_id": "00000000ABCDEF01", "port_id": "x"}),
            json!({"hostname": "bf1", "port_id": "rep0-0"}),
            json!({"network_type": "unmanaged"}),
            json!({"port_id": "p", "vtep-logical-switch": "a", "vtep-physical-switch": "b"}),
        ] {
            assert_eq!(check_json(ok.clone()), Ok(()), "{ok}");
        }
    }

    /// The texts Ironic 39 answered for the same links (a link is shown with
    /// its keys sorted, where Ironic keeps the client's order).
    #[test]
    fn refusals_name_ironics_root_cause() {
        let cases = [
            (
                json!({"switch_id": "aa:bb:cc:dd:ee:ff", "port_id": "Eth1/1", "foo": "x"}),
                "Schema error for local_link_connection: {'foo': 'x', 'port_id': 'Eth1/1', 'switch_id': 'aa:bb:cc:dd:ee:ff'} is not valid under any of the given schemas. Possible root cause: Additional properties are not allowed ('foo' was unexpected)",
            ),
            (
                json!({"switch_id": "aa:bb:cc:dd:ee:ff"}),
                "Schema error for local_link_connection: {'switch_id': 'aa:bb:cc:dd:ee:ff'} is not valid under any of the given schemas. Possible root cause: 'port_id' is a required property",
            ),
            (
                json!({"switch_id": "aa:bb:cc:dd:ee:ff", "port_id": 5}),
                "Schema error for local_link_connection: {'port_id': 5, 'switch_id': 'aa:bb:cc:dd:ee:ff'} is not valid under any of the given schemas. Possible root cause: 'hostname' is a required property",
            ),
            (
                json!({"network_type": "managed"}),
                "Schema error for local_link_connection: 'managed' is not one of ['unmanaged']",
            ),
            (
                json!({"network_type": "x", "port_id": "a", "switch_id": "aa:bb:cc:dd:ee:ff"}),
                "Schema error for local_link_connection: {'network_type': 'x', 'port_id': 'a', 'switch_id': 'aa:bb:cc:dd:ee:ff'} is not valid under any of the given schemas. Possible root cause: 'hostname' is a required property",
            ),
            (
                json!({"hostname": "h"}),
                "Schema error for local_link_connection: {'hostname': 'h'} is not valid under any of the given schemas. Possible root cause: 'port_id' is a required property",
            ),
            (
                json!({"switch_id": "nope", "port_id": "x"}),
                "Expected a MAC address or OpenFlow datapath ID but received nope.",
            ),
        ];
        for (link, want) in cases {
            assert_eq!(check_json(link.clone()).unwrap_err(), want, "{link}");
        }
    }

    #[test]
    fn smart_nic_links_name_the_host() {
        assert!(fits_smart_nic(None));
        assert!(fits_smart_nic(Some(
            &json!({"hostname": "h", "port_id": "p"})
        )));
        assert!(!fits_smart_nic(Some(&json!({}))));
        assert!(!fits_smart_nic(Some(
            &json!({"switch_id": "aa:bb:cc:dd:ee:ff", "port_id": "p"})
        )));
    }
}
