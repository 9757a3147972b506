//! Uniqueness that spans nodes, expressed as claims.
//!
//! Some values must be unique across *all* nodes: a node's name, a port's MAC,
//! a volume connector's `(type, connector_id)`, and the UUIDs of ports,
//! connectors and targets. One node aggregate cannot see the others, so each event
//! that takes or gives up such a value declares a claim change; the store applies
//! those changes in the same transaction as the events, and refuses the whole
//! append if another node holds the claim. Two nodes racing for one IQN: exactly
//! one commit succeeds.

use super::node::entities::connector_key;
use super::node::events::NodeEvent;

pub const NODE_NAME: &str = "node_name";
pub const PORT_ADDRESS: &str = "port_address";
pub const PORT_UUID: &str = "port_uuid";
pub const CONNECTOR: &str = "connector";
pub const CONNECTOR_UUID: &str = "connector_uuid";
pub const TARGET_UUID: &str = "target_uuid";
/// A node's `instance_uuid`: one instance, one node (Nova relies on it).
pub const INSTANCE: &str = "instance";

/// A claim change, independent of any store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    Acquire(&'static str, String),
    Release(&'static str, String),
    ReleaseAll,
    /// Whatever the node holds in this scope.
    ReleaseScope(&'static str),
}

/// The claim changes one node event makes, in order (releases before acquires
/// on updates, so renaming A→B→A within one commit works).
pub fn node_event_claims(event: &NodeEvent) -> Vec<Claim> {
    use Claim::*;
    use NodeEvent as E;
    match event {
        E::NodeEnrolled(e) => e
            .name
            .iter()
            .map(|n| Acquire(NODE_NAME, n.clone()))
            .collect(),
        E::NodeRenamed { from, to } => {
            let mut v: Vec<Claim> = from.iter().map(|n| Release(NODE_NAME, n.clone())).collect();
            v.extend(to.iter().map(|n| Acquire(NODE_NAME, n.clone())));
            v
        }
        E::PortAdded { port } => vec![
            Acquire(PORT_UUID, port.uuid.to_string()),
            Acquire(PORT_ADDRESS, port.address.clone()),
        ],
        E::PortUpdated { before, after } if before.address != after.address => vec![
            Release(PORT_ADDRESS, before.address.clone()),
            Acquire(PORT_ADDRESS, after.address.clone()),
        ],
        E::PortRemoved { port } => vec![
            Release(PORT_UUID, port.uuid.to_string()),
            Release(PORT_ADDRESS, port.address.clone()),
        ],
        E::ConnectorAdded { connector } => vec![
            Acquire(CONNECTOR_UUID, connector.uuid.to_string()),
            Acquire(CONNECTOR, connector.unique_key()),
        ],
        E::ConnectorUpdated { before, after } if before.unique_key() != after.unique_key() => vec![
            Release(CONNECTOR, before.unique_key()),
            Acquire(CONNECTOR, after.unique_key()),
        ],
        E::ConnectorRemoved { connector } => vec![
            Release(CONNECTOR_UUID, connector.uuid.to_string()),
            Release(CONNECTOR, connector.unique_key()),
        ],
        E::TargetCreated { target } => vec![Acquire(TARGET_UUID, target.uuid.to_string())],
        E::TargetDeleted { target } => vec![Release(TARGET_UUID, target.uuid.to_string())],
        E::TargetsPurged { targets } => targets
            .iter()
            .map(|t| Release(TARGET_UUID, t.uuid.to_string()))
            .collect(),
        E::InstanceAssociated { from, to } => {
            let mut v: Vec<Claim> = from.iter().map(|i| Release(INSTANCE, i.clone())).collect();
            v.extend(to.iter().map(|i| Acquire(INSTANCE, i.clone())));
            v
        }
        // The undeploy clears the instance. New logs also say so with an
        // `InstanceAssociated`; older ones only have this event.
        E::Undeployed(_) => vec![ReleaseScope(INSTANCE)],
        E::NodeDeleted { .. } => vec![ReleaseAll],
        _ => vec![],
    }
}

/// The message (Ironic's wording) for a claim another node holds, when node
/// `claimant` asked for it.
pub fn conflict_message(scope: &str, key: &str, claimant: &str) -> String {
    match scope {
        INSTANCE => format!(
            "Instance {key} is already associated with a node, it cannot be associated with this other node {claimant}"
        ),
        NODE_NAME => format!("A node with name {key} already exists."),
        PORT_ADDRESS => format!("A port with MAC address {key} already exists."),
        PORT_UUID => format!("A port with UUID {key} already exists."),
        CONNECTOR => {
            let (kind, id) = key.split_once('\n').unwrap_or((key, ""));
            format!("A volume connector with type {kind} and connector ID {id} already exists.")
        }
        CONNECTOR_UUID => format!("A volume connector with UUID {key} already exists."),
        TARGET_UUID => format!("A volume target with UUID {key} already exists."),
        _ => format!("{scope} {key} is already in use."),
    }
}

/// The claim key of a connector, for lookups by the API.
pub fn connector_claim_key(kind: &str, connector_id: &str) -> String {
    connector_key(kind, connector_id)
}
