//! The child records a node owns: ports, volume connectors and volume targets.
//!
//! They live inside the `Node` aggregate because every rule about them is a rule
//! about their node (boot index unique per node, updates only while powered off,
//! deletion only in some states). Uniqueness *across* nodes (a connector's
//! `(type, connector_id)`, a port's MAC, every UUID) is kept by claims written in
//! the same transaction as the events (see `domain::claims`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use uuid::Uuid;

/// A network port of a node; its MAC gives the per-MAC iPXE entry point.
///
/// The network fields (`local_link_connection`, `physical_network`,
/// `is_smartnic`) are what Nova, Neutron and LLDP inspection record about
/// where the port is cabled; ironledger keeps and shows them (its network
/// interfaces, `noop` and `flat`, do not act on them). They are left out of an
/// event when empty, so the events of ports recorded before they were modelled
/// read back unchanged.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Port {
    pub uuid: Uuid,
    /// Lower-case, colon-separated MAC address.
    pub address: String,
    pub pxe_enabled: bool,
    #[serde(default)]
    pub extra: Map<String, Value>,
    /// The switch port this port is cabled to (`switch_id`, `port_id`,
    /// `switch_info`), or for a Smart NIC its `hostname` and `port_id`, or
    /// `network_type: unmanaged`. Every value is text; `switch_id` is in lower
    /// case.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub local_link_connection: BTreeMap<String, String>,
    /// The physical network the port is on (Neutron's `physnet`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub physical_network: Option<String>,
    /// A Smart NIC port (its link names the NIC's own host).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_smartnic: bool,
}

/// The fields of a port a patch may change (`node_uuid` only to the node it
/// is on: a move to another node is a removal and an addition).
pub const PORT_FIELDS: &[&str] = &[
    "address",
    "extra",
    "is_smartnic",
    "local_link_connection",
    "node_uuid",
    "physical_network",
    "pxe_enabled",
];

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

/// The three kinds of child record a node owns, for commands that name one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChildKind {
    Port,
    Connector,
    Target,
}

/// One child record of any kind, as a move carries it from node to node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ChildRecord {
    Port(Port),
    Connector(Connector),
    Target(Target),
}

impl ChildRecord {
    pub fn uuid(&self) -> Uuid {
        match self {
            ChildRecord::Port(p) => p.uuid,
            ChildRecord::Connector(c) => c.uuid,
            ChildRecord::Target(t) => t.uuid,
        }
    }

    pub fn kind(&self) -> ChildKind {
        match self {
            ChildRecord::Port(_) => ChildKind::Port,
            ChildRecord::Connector(_) => ChildKind::Connector,
            ChildRecord::Target(_) => ChildKind::Target,
        }
    }

    /// How the API and the history name the kind (`port`, `volume connector`).
    pub fn kind_name(&self) -> &'static str {
        match self {
            ChildRecord::Port(_) => "port",
            ChildRecord::Connector(_) => "volume connector",
            ChildRecord::Target(_) => "volume target",
        }
    }
}

/// A move of a child record to another node that has begun and not ended
/// (see `decide_move`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingMove {
    /// The node the record moves to.
    pub to: Uuid,
    /// The record as it was here, put back if `to` refuses it.
    pub before: ChildRecord,
    /// The record as it lands on `to` (the patch applied).
    pub after: ChildRecord,
}

/// How a move ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MoveOutcome {
    /// The record is on the node it moved to.
    Landed,
    /// That node refused it (`reason`); it is back on this node.
    Restored { reason: String },
    /// Neither node could take it; the record as it was is in the
    /// `ChildMoveStarted` event that began the move.
    Lost { reason: String },
}
