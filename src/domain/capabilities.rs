//! The node capabilities string, `"k1:v1,k2:v2"`, as Ironic reads it.
//!
//! Entries are split on `,` then on the first `:`; keys and values are trimmed.
//! An entry that is not exactly `key:value` with both parts non-empty is ignored
//! (Ironic's lenient `get_node_capability`). Truth is read like oslo's
//! `bool_from_string`.

use serde_json::{Map, Value};

/// Parsed capabilities, in the order they were written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities(Vec<(String, String)>);

impl Capabilities {
    pub fn parse(raw: &str) -> Self {
        let entries = raw
            .split(',')
            .filter_map(|entry| {
                let (k, v) = entry.split_once(':')?;
                let (k, v) = (k.trim(), v.trim());
                if k.is_empty() || v.is_empty() || v.contains(':') {
                    return None;
                }
                Some((k.to_string(), v.to_string()))
            })
            .collect();
        Capabilities(entries)
    }

    /// Reads `properties.capabilities` of a node (a string; anything else is empty).
    pub fn from_properties(properties: &Map<String, Value>) -> Self {
        match properties.get("capabilities") {
            Some(Value::String(s)) => Self::parse(s),
            _ => Self::default(),
        }
    }

    /// The value of a capability, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the key is present at all (Ironic's deploy-time check looks only at the key).
    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Whether the capability is set to a true value.
    pub fn is_true(&self, key: &str) -> bool {
        self.get(key).is_some_and(bool_from_string)
    }
}

use super::oslo::bool_from_string;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_guide_string() {
        let c = Capabilities::parse("iscsi_boot:True");
        assert!(c.is_true("iscsi_boot"));
        assert!(c.has("iscsi_boot"));
        assert!(!c.has("fibre_channel_boot"));
    }

    #[test]
    fn trims_and_ignores_malformed_entries() {
        let c = Capabilities::parse(" boot_mode : uefi ,broken, :x,y:, iscsi_boot:no,a:b:c");
        assert_eq!(c.get("boot_mode"), Some("uefi"));
        assert_eq!(c.get("broken"), None);
        assert_eq!(c.get("y"), None);
        assert_eq!(c.get("a"), None);
        assert!(c.has("iscsi_boot"));
        assert!(!c.is_true("iscsi_boot"));
    }

    #[test]
    fn truth_values() {
        for t in ["1", "t", "TRUE", "On", "y", "yes"] {
            assert!(bool_from_string(t), "{t}");
        }
        for f in ["0", "false", "off", "no", "", "maybe"] {
            assert!(!bool_from_string(f), "{f}");
        }
    }
}
