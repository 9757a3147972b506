//! Which values of a node's events are secrets.
//!
//! A key names a secret when its lower-case name contains one of [`SENSITIVE`]
//! (oslo's `mask_dict_password` list, which Ironic applies to API output). The
//! API masks such values (`api::masking`); the store keeps them encrypted
//! (`crate::secrets`). Both use this one list.
//!
//! [`secret_scopes`] says where in an event's payload secrets may sit: the
//! parts of a node that the API masks (volume target `properties`, node
//! `instance_info`, `driver_info`, `driver_internal_info`). Node `properties`
//! and every `extra` are shown unmasked by Ironic, so they are not sealed
//! either: sealing them would show ciphertext through the API.

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

/// The places in a node event's payload (externally tagged:
/// `{"TargetCreated": {...}}`) under which values of sensitive keys are secrets,
/// as paths of object keys; `*` stands for every element of an array.
///
/// Every event that carries a volume target carries its `properties` (with the
/// CHAP credentials Cinder or the operator gave): `TargetCreated`,
/// `TargetUpdated`, `TargetDeleted`, `TargetsPurged`, `NodeDeleted`,
/// `VolumesAttached`.
pub fn secret_scopes(event_type: &str) -> &'static [&'static [&'static str]] {
    match event_type {
        "TargetCreated" => &[&["TargetCreated", "target", "properties"]],
        "TargetUpdated" => &[
            &["TargetUpdated", "before", "properties"],
            &["TargetUpdated", "after", "properties"],
        ],
        "TargetDeleted" => &[&["TargetDeleted", "target", "properties"]],
        "TargetsPurged" => &[&["TargetsPurged", "targets", "*", "properties"]],
        "NodeDeleted" => &[&["NodeDeleted", "targets", "*", "properties"]],
        "VolumesAttached" => &[&["VolumesAttached", "attachments", "*", "properties"]],
        "NodeEnrolled" => &[
            &["NodeEnrolled", "instance_info"],
            &["NodeEnrolled", "driver_info"],
        ],
        "InstanceInfoUpdated" => &[
            &["InstanceInfoUpdated", "before"],
            &["InstanceInfoUpdated", "after"],
        ],
        "DriverInfoUpdated" => &[&["DriverInfoUpdated", "after"]],
        "DriverInternalInfoUpdated" => &[&["DriverInternalInfoUpdated", "changes"]],
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
}
