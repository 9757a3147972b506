//! Which values of a node's events are secrets.
//!
//! A key names a secret when its lower-case name contains one of [`SENSITIVE`]
//! (oslo's `mask_dict_password` list, which Ironic applies to API output), or
//! when it is one of the keys [`FIELD_SECRETS`] names for one field of a node
//! (Ironic masks those by name: `instance_info.image_url`,
//! `driver_info.snmp_auth_key`, …). The API masks such values
//! (`api::masking`, `api::nodes::render`); the store keeps them encrypted
//! (`crate::secrets`). Both use these two lists, so nothing is masked in
//! answers yet stored in clear.
//!
//! [`secret_scopes`] says where in an event's payload secrets may sit: the
//! parts of a node that the API masks (volume target `properties`, node
//! `instance_info`, `driver_info`, `driver_internal_info`). Node `properties`
//! and every `extra` are shown unmasked by Ironic, so they are not sealed
//! either: sealing them would show ciphertext through the API.

use serde_json::Value;

/// Substrings that make a key name a secret (oslo.utils' list).
pub const SENSITIVE: &[&str] = &[
    "adminpass",
    "admin_pass",
    "password",
    "admin_password",
    "auth_token",
    "new_pass",
    "auth_password",
    "secret_uuid",
    "secret",
    "sys_pswd",
    "token",
    "configdrive",
    "chappassword",
    "encrypted_key",
    "private_key",
    "fernetkey",
    "sslkey",
    "passphrase",
];

/// Whether a key names a secret.
pub fn is_sensitive(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    SENSITIVE.iter().any(|s| k.contains(s))
}

/// Keys that are secrets in one field of a node although their names hold
/// none of [`SENSITIVE`]: Ironic's node controller masks their whole value
/// when it is set (truthy), whatever its type.
pub const FIELD_SECRETS: &[(&str, &[&str])] = &[
    ("instance_info", &["configdrive", "image_url"]),
    ("driver_info", &["snmp_auth_key", "snmp_priv_key"]),
];

/// Whether `value`, under `key` at the top of the node field `field`, is one
/// of the [`FIELD_SECRETS`] (and set, as Ironic masks it only then).
pub fn is_field_secret(field: &str, key: &str, value: &Value) -> bool {
    FIELD_SECRETS
        .iter()
        .any(|(f, keys)| *f == field && keys.contains(&key))
        && super::oslo::truthy(value)
}

/// Where secrets may sit in an event's payload: the path to an object, and
/// the node field that object is (for [`FIELD_SECRETS`]; `None` for a
/// volume target's `properties`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope {
    pub path: &'static [&'static str],
    pub field: Option<&'static str>,
}

/// The places in a node event's payload (externally tagged:
/// `{"TargetCreated": {...}}`) under which values of sensitive keys are secrets,
/// as paths of object keys; `*` stands for every element of an array.
///
/// Every event that carries a volume target carries its `properties` (with the
/// CHAP credentials Cinder or the operator gave): `TargetCreated`,
/// `TargetUpdated`, `TargetDeleted`, `TargetsPurged`, `NodeDeleted`,
/// `ChildMoveStarted` (when the record is a target),
/// `VolumesAttached`.
pub fn secret_scopes(event_type: &str) -> &'static [Scope] {
    match event_type {
        "TargetCreated" => &[Scope {
            path: &["TargetCreated", "target", "properties"],
            field: None,
        }],
        "TargetUpdated" => &[
            Scope {
                path: &["TargetUpdated", "before", "properties"],
                field: None,
            },
            Scope {
                path: &["TargetUpdated", "after", "properties"],
                field: None,
            },
        ],
        "TargetDeleted" => &[Scope {
            path: &["TargetDeleted", "target", "properties"],
            field: None,
        }],
        // A moving record is carried whole; only a target has secrets.
        "ChildMoveStarted" => &[
            Scope {
                path: &["ChildMoveStarted", "before", "Target", "properties"],
                field: None,
            },
            Scope {
                path: &["ChildMoveStarted", "after", "Target", "properties"],
                field: None,
            },
        ],
        "TargetsPurged" => &[Scope {
            path: &["TargetsPurged", "targets", "*", "properties"],
            field: None,
        }],
        "NodeDeleted" => &[Scope {
            path: &["NodeDeleted", "targets", "*", "properties"],
            field: None,
        }],
        "VolumesAttached" => &[Scope {
            path: &["VolumesAttached", "attachments", "*", "properties"],
            field: None,
        }],
        "NodeEnrolled" => &[
            Scope {
                path: &["NodeEnrolled", "instance_info"],
                field: Some("instance_info"),
            },
            Scope {
                path: &["NodeEnrolled", "driver_info"],
                field: Some("driver_info"),
            },
        ],
        "InstanceInfoUpdated" => &[
            Scope {
                path: &["InstanceInfoUpdated", "before"],
                field: Some("instance_info"),
            },
            Scope {
                path: &["InstanceInfoUpdated", "after"],
                field: Some("instance_info"),
            },
        ],
        "DriverInfoUpdated" => &[Scope {
            path: &["DriverInfoUpdated", "after"],
            field: Some("driver_info"),
        }],
        "DriverInternalInfoUpdated" => &[Scope {
            path: &["DriverInternalInfoUpdated", "changes"],
            field: Some("driver_internal_info"),
        }],
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chap_keys_are_sensitive() {
        for k in [
            "auth_password",
            "discovery_auth_password",
            "Password",
            "ipmi_password",
            "configdrive",
        ] {
            assert!(is_sensitive(k), "{k}");
        }
        for k in ["auth_username", "target_iqn", "target_lun", "auth_method"] {
            assert!(!is_sensitive(k), "{k}");
        }
    }

    #[test]
    fn every_target_carrying_event_has_a_scope() {
        for t in [
            "TargetCreated",
            "TargetUpdated",
            "TargetDeleted",
            "TargetsPurged",
            "NodeDeleted",
            "VolumesAttached",
        ] {
            assert!(!secret_scopes(t).is_empty(), "{t}");
        }
        assert!(secret_scopes("PortAdded").is_empty());
    }

    #[test]
    fn field_secrets_are_secret_in_their_field_only_and_when_set() {
        use serde_json::json;
        assert!(is_field_secret(
            "instance_info",
            "image_url",
            &json!("http://x")
        ));
        assert!(is_field_secret("driver_info", "snmp_priv_key", &json!("k")));
        assert!(!is_field_secret("instance_info", "image_url", &json!("")));
        assert!(!is_field_secret(
            "driver_info",
            "image_url",
            &json!("http://x")
        ));
        assert!(!is_field_secret("extra", "snmp_auth_key", &json!("k")));
    }
}
