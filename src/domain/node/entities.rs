//! The child records a node owns: ports, volume connectors and volume targets.
//!
//! They live inside the `Node` aggregate because every rule about them is a rule
//! about their node (boot index unique per node, updates only while powered off,
//! deletion only in some states). Uniqueness *across* nodes (a connector's
//! `(type, connector_id)`, a port's MAC, every UUID) is kept by claims written in
//! the same transaction as the events (see `domain::claims`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

/// A network port of a node; its MAC gives the per-MAC iPXE entry point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Port {
    pub uuid: Uuid,
    /// Lower-case, colon-separated MAC address.
    pub address: String,
    pub pxe_enabled: bool,
    #[serde(default)]
    pub extra: Map<String, Value>,
}

/// A volume connector: how the node presents itself to storage (an initiator IQN,
/// an IP, a WWPN/WWNN, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Connector {
    pub uuid: Uuid,
    #[serde(rename = "type")]
    pub kind: String,
    pub connector_id: String,
    #[serde(default)]
    pub extra: Map<String, Value>,
}

impl Connector {
    /// The key that must be unique across all nodes.
    pub fn unique_key(&self) -> String {
        connector_key(&self.kind, &self.connector_id)
    }
}

/// The claim key of a connector's `(type, connector_id)`.
pub fn connector_key(kind: &str, connector_id: &str) -> String {
    format!("{kind}\n{connector_id}")
}

/// A volume target: a volume the node uses, with its boot index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Target {
    pub uuid: Uuid,
    pub volume_type: String,
    pub boot_index: i64,
    pub volume_id: String,
    #[serde(default)]
    pub properties: Map<String, Value>,
    #[serde(default)]
    pub extra: Map<String, Value>,
}

/// Normalises a MAC address to Ironic's form (lower case, `:`-separated), or
/// `None` if it is not a 6-octet MAC.
pub fn normalize_mac(raw: &str) -> Option<String> {
    let parts: Vec<&str> = raw.split([':', '-']).collect();
    if parts.len() != 6
        || parts
            .iter()
            .any(|p| p.len() != 2 || !p.chars().all(|c| c.is_ascii_hexdigit()))
    {
        return None;
    }
    Some(parts.join(":").to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_normalise() {
        assert_eq!(
            normalize_mac("52:54:00:AB:cd:01").as_deref(),
            Some("52:54:00:ab:cd:01")
        );
        assert_eq!(
            normalize_mac("52-54-00-ab-cd-01").as_deref(),
            Some("52:54:00:ab:cd:01")
        );
        assert_eq!(normalize_mac("52:54:00:ab:cd"), None);
        assert_eq!(normalize_mac("52:54:00:ab:cd:0g"), None);
    }
}
