//! Masking of secrets in API output (oslo's `mask_dict_password`, as Ironic
//! applies it to volume target `properties` and node `instance_info`).
//!
//! Any key whose lower-case name contains one of the sensitive substrings has
//! its value replaced by `******`, recursively; stored values are unchanged.

use serde_json::Value;

pub const MASK: &str = "******";

use crate::domain::secrets::SENSITIVE;

/// Whether a key names a secret (the list is the domain's: the store encrypts
/// the same values, see `crate::secrets`).
pub use crate::domain::secrets::is_sensitive;

/// A copy of `value` with every secret masked.
pub fn mask(value: &Value) -> Value {
    match value {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let shown = if is_sensitive(k) && !v.is_object() {
                        Value::String(MASK.into())
                    } else {
                        mask(v)
                    };
                    (k.clone(), shown)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(mask).collect()),
        Value::String(s) => Value::String(mask_inline(s)),
        other => other.clone(),
    }
}

/// Scrubs inline `password=...`-style secrets inside a string value.
pub fn mask_inline(s: &str) -> String {
    let lower = s.to_ascii_lowercase();
    if !SENSITIVE
        .iter()
        .any(|k| lower.contains(&format!("{k}=")) || lower.contains(&format!("{k}\":")))
    {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    for (i, part) in s.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        match part.split_once('=') {
            Some((k, _)) if is_sensitive(k) => {
                out.push_str(k);
                out.push('=');
                out.push_str(MASK);
            }
            _ => out.push_str(part),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn masks_chap_secrets_recursively() {
        let props = json!({
            "auth_method": "CHAP", "auth_username": "u", "auth_password": "s3cret",
            "discovery_auth_password": "d", "nested": {"Password": "x", "ok": 1},
            "target_iqn": "iqn.x", "note": "login password=hunter2 user=a"
        });
        let m = mask(&props);
        assert_eq!(m["auth_password"], MASK);
        assert_eq!(m["discovery_auth_password"], MASK);
        assert_eq!(m["nested"]["Password"], MASK);
        assert_eq!(m["nested"]["ok"], 1);
        assert_eq!(m["auth_username"], "u");
        assert_eq!(m["target_iqn"], "iqn.x");
        assert_eq!(m["note"], "login password=****** user=a");
        assert!(!m.to_string().contains("s3cret"));
        assert!(!m.to_string().contains("hunter2"));
    }
}
