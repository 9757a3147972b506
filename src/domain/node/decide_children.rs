//! Ports, volume connectors and volume targets (`docs/ironic-behaviour.md` §4.3,
//! §7.5–§7.8).
//!
//! Creation has no state check (Ironic writes the row directly); updates need the
//! node powered off; deletion needs `manageable`/`enroll`/`adopt failed` or power
//! off. Maintenance changes none of this.

use super::commands::{NewConnector, NewPort, NewTarget};
use super::entities::{Connector, Port, Target, PORT_FIELDS};
use super::events::NodeEvent;
use super::target_rules;
use super::Node;
use crate::domain::error::DomainError;
use crate::domain::mac_address::MacAddress;
use crate::domain::patch::{self, PatchOp};
use crate::domain::state::ProvisionState;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use uuid::Uuid;

const CONNECTOR_FIELDS: &[&str] = &["connector_id", "extra", "node_uuid", "type"];
const TARGET_FIELDS: &[&str] = &[
    "boot_index",
    "extra",
    "node_uuid",
    "properties",
    "volume_id",
    "volume_type",
];

/// A record's document with `ops` applied. No operations leave it as it is:
/// a move that changes only `node_uuid`, or an update the API has nothing to
/// send for but whose node rules still apply.
fn patched_doc(
    doc: Value,
    ops: &[PatchOp],
    fields: &[&str],
) -> Result<Map<String, Value>, DomainError> {
    let doc = doc.as_object().expect("object");
    if ops.is_empty() {
        return Ok(doc.clone());
    }
    patch::apply(doc, ops, fields)
}

/// Reads an object field of a patched document: `null` means empty.
fn object_field(doc: &Map<String, Value>, field: &str) -> Result<Map<String, Value>, DomainError> {
    match doc.get(field) {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m.clone()),
        Some(other) => Err(DomainError::Invalid(format!(
            "Invalid {field}: {other} is not of type 'object'"
        ))),
    }
}

/// Reads a port's `local_link_connection` from a patched document: an object
/// of text values (`null` means empty), its `switch_id` in lower case (a MAC
/// address or an OpenFlow datapath ID, both case-insensitive).
fn link_field(doc: &Map<String, Value>) -> Result<BTreeMap<String, String>, DomainError> {
    object_field(doc, "local_link_connection")?
        .into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k, s)),
            other => Err(DomainError::Invalid(format!(
                "Invalid local_link_connection: {other} is not of type 'string'"
            ))),
        })
        .collect::<Result<_, _>>()
        .map(lower_switch_id)
}

/// Reads an optional boolean field of a patched document (`null` or absent:
/// `default`).
fn bool_field(doc: &Map<String, Value>, field: &str, default: bool) -> Result<bool, DomainError> {
    match doc.get(field) {
        Some(Value::Bool(b)) => Ok(*b),
        None | Some(Value::Null) => Ok(default),
        Some(other) => Err(DomainError::Invalid(format!(
            "Invalid {field}: {other} is not of type 'boolean'"
        ))),
    }
}

/// Reads an optional string field of a patched document.
fn optional_string_field(
    doc: &Map<String, Value>,
    field: &str,
) -> Result<Option<String>, DomainError> {
    match doc.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(DomainError::Invalid(format!(
            "Invalid {field}: {other} is not of type 'string'"
        ))),
    }
}

/// A port's physical network is none or a name, never empty (Ironic's rule).
fn check_physical_network(network: &Option<String>) -> Result<(), DomainError> {
    if network.as_deref() == Some("") {
        return Err(DomainError::Invalid(
            "A non-empty value is required when setting physical_network".into(),
        ));
    }
    Ok(())
}

/// A link with its `switch_id` in lower case (MACs and datapath IDs are
/// case-insensitive; Ironic stores them in lower case).
fn lower_switch_id(mut link: BTreeMap<String, String>) -> BTreeMap<String, String> {
    if let Some(id) = link.get_mut("switch_id") {
        *id = id.to_ascii_lowercase();
    }
    link
}

/// Reads a required string field of a patched document.
fn string_field(doc: &Map<String, Value>, field: &str) -> Result<String, DomainError> {
    match doc.get(field) {
        Some(Value::String(s)) => Ok(s.clone()),
        None | Some(Value::Null) => Err(DomainError::Invalid(format!(
            "'{field}' is a required property"
        ))),
        Some(other) => Err(DomainError::Invalid(format!(
            "Invalid {field}: {other} is not of type 'string'"
        ))),
    }
}

impl Node {
    /// Re-homing a child to another node is not a change of this aggregate: the
    /// engine moves it as a removal here and an addition there. A patch that
    /// reaches the aggregate must leave `node_uuid` alone.
    fn check_same_node(&self, doc: &Map<String, Value>) -> Result<(), DomainError> {
        match doc.get("node_uuid") {
            Some(Value::String(s)) if Uuid::parse_str(s).ok() == self.uuid => Ok(()),
            Some(Value::String(s)) if Uuid::parse_str(s).is_err() => {
                Err(DomainError::Invalid(format!("Expected a UUID for node_uuid, but received {s}.")))
            }
            Some(Value::String(s)) => Err(DomainError::Conflict(format!(
                "Moving a resource to node {s} must be requested as a move, not a patch of node {}.",
                self.id()
            ))),
            _ => Err(DomainError::Invalid("'node_uuid' is a required property".into())),
        }
    }

    pub(super) fn require_power_off(&self, action: &str) -> Result<(), DomainError> {
        if self.powered_off() {
            Ok(())
        } else {
            Err(DomainError::invalid_state(
                action,
                &self.id(),
                self.power_state.as_deref().unwrap_or("None"),
            ))
        }
    }

    pub(super) fn require_volume_delete_allowed(&self, action: &str) -> Result<(), DomainError> {
        if self.state().volume_delete_allowed() || self.powered_off() {
            Ok(())
        } else {
            Err(DomainError::invalid_state(
                action,
                &self.id(),
                self.power_state.as_deref().unwrap_or("None"),
            ))
        }
    }

    // ---- ports ---------------------------------------------------------------

    fn port(&self, uuid: Uuid) -> Result<&Port, DomainError> {
        self.ports
            .iter()
            .find(|p| p.uuid == uuid)
            .ok_or_else(|| DomainError::NotFound(format!("Port {uuid} could not be found.")))
    }

    pub(super) fn check_port_unique(
        &self,
        address: &str,
        except: Option<Uuid>,
    ) -> Result<(), DomainError> {
        if self
            .ports
            .iter()
            .any(|p| p.address == address && Some(p.uuid) != except)
        {
            return Err(DomainError::Conflict(format!(
                "A port with MAC address {address} already exists."
            )));
        }
        Ok(())
    }

    pub(super) fn add_port(&self, p: NewPort) -> Result<Vec<NodeEvent>, DomainError> {
        let address = MacAddress::parse(&p.address)
            .map(MacAddress::into_string)
            .ok_or_else(|| {
                DomainError::Invalid(format!(
                    "Expected a MAC address but received {}.",
                    p.address
                ))
            })?;
        if self.ports.iter().any(|x| x.uuid == p.uuid) {
            return Err(DomainError::Conflict(format!(
                "A port with UUID {} already exists.",
                p.uuid
            )));
        }
        self.check_port_unique(&address, None)?;
        check_physical_network(&p.physical_network)?;
        Ok(vec![NodeEvent::PortAdded {
            port: Port {
                uuid: p.uuid,
                address,
                pxe_enabled: p.pxe_enabled,
                extra: p.extra,
                local_link_connection: lower_switch_id(p.local_link_connection),
                physical_network: p.physical_network,
                is_smartnic: p.is_smartnic,
            },
        }])
    }

    pub(super) fn patch_port(
        &self,
        uuid: Uuid,
        ops: &[PatchOp],
    ) -> Result<Vec<NodeEvent>, DomainError> {
        let (before, after) = self.patched_port(uuid, ops)?;
        // Ironic counts a field as changed once a patch sets it, even to the
        // value it had.
        let touched = |field: &str| {
            let path = format!("/{field}");
            ops.iter()
                .any(|o| o.path == path || o.path.starts_with(&format!("{path}/")))
        };
        let connectivity_touched = after.pxe_enabled != before.pxe_enabled
            || after.local_link_connection != before.local_link_connection
            || after.physical_network != before.physical_network
            || ["pxe_enabled", "local_link_connection", "physical_network"]
                .into_iter()
                .any(touched);
        self.check_port_update_state(&before, &after, connectivity_touched)?;
        self.check_port_unique(&after.address, Some(uuid))?;
        if after == before {
            return Ok(vec![]);
        }
        Ok(vec![NodeEvent::PortUpdated { before, after }])
    }

    /// Port `uuid` as it is and with `ops` applied, checked as a record (its
    /// values, not the node's rules): what an update and a move share.
    pub(super) fn patched_port(
        &self,
        uuid: Uuid,
        ops: &[PatchOp],
    ) -> Result<(Port, Port), DomainError> {
        let before = self.port(uuid)?.clone();
        let doc = json!({
            "address": before.address, "pxe_enabled": before.pxe_enabled,
            "extra": before.extra, "node_uuid": self.id(),
            "local_link_connection": before.local_link_connection,
            "physical_network": before.physical_network,
            "is_smartnic": before.is_smartnic,
        });
        let out = patched_doc(doc, ops, PORT_FIELDS)?;
        self.check_same_node(&out)?;
        let raw = string_field(&out, "address")?;
        let address = MacAddress::parse(&raw)
            .map(MacAddress::into_string)
            .ok_or_else(|| {
                DomainError::Invalid(format!("Expected a MAC address but received {raw}."))
            })?;
        let after = Port {
            uuid,
            address,
            pxe_enabled: bool_field(&out, "pxe_enabled", true)?,
            extra: object_field(&out, "extra")?,
            local_link_connection: link_field(&out)?,
            physical_network: optional_string_field(&out, "physical_network")?,
            is_smartnic: bool_field(&out, "is_smartnic", false)?,
        };
        check_physical_network(&after.physical_network)?;
        Ok((before, after))
    }

    /// Ironic's conductor rules for a port update (`update_port`), both 409
    /// `InvalidState` and both lifted by maintenance: the MAC of a deployed node
    /// (active, or with an instance) stays, since its boot config is keyed by
    /// it; the connectivity attributes (`pxe_enabled`, `local_link_connection`,
    /// `physical_network`: how the node reaches its networks) change only in
    /// enroll, inspecting, inspect wait or manageable. Ironic lists the attributes from
    /// a Python set, in no fixed order; this is one of its orders.
    fn check_port_update_state(
        &self,
        before: &Port,
        after: &Port,
        connectivity_touched: bool,
    ) -> Result<(), DomainError> {
        if self.maintenance {
            return Ok(());
        }
        let deployed = self.state() == ProvisionState::Active || self.instance_uuid.is_some();
        if after.address != before.address && deployed {
            return Err(DomainError::Conflict(format!(
                "Cannot update hardware address for port {} as node {} is active or has instance UUID assigned",
                after.uuid,
                self.id()
            )));
        }
        const CONNECTIVITY_STATES: [ProvisionState; 4] = [
            ProvisionState::Enroll,
            ProvisionState::Inspecting,
            ProvisionState::InspectWait,
            ProvisionState::Manageable,
        ];
        if connectivity_touched && !CONNECTIVITY_STATES.contains(&self.state()) {
            return Err(DomainError::Conflict(format!(
                "Port {} can not have any connectivity attributes (portgroup_id, pxe_enabled, local_link_connection, physical_network) updated unless node {} is in a enroll, inspecting, inspect wait, manageable state or in maintenance mode. The current state is {}.",
                after.uuid,
                self.id(),
                self.state()
            )));
        }
        Ok(())
    }

    pub(super) fn remove_port(&self, uuid: Uuid) -> Result<Vec<NodeEvent>, DomainError> {
        let port = self.port(uuid)?.clone();
        Ok(vec![NodeEvent::PortRemoved { port }])
    }

    // ---- volume connectors -----------------------------------------------------

    fn connector(&self, uuid: Uuid) -> Result<&Connector, DomainError> {
        self.connectors
            .iter()
            .find(|c| c.uuid == uuid)
            .ok_or_else(|| {
                DomainError::NotFound(format!("Volume connector {uuid} could not be found."))
            })
    }

    pub(super) fn check_connector_unique(&self, c: &Connector) -> Result<(), DomainError> {
        if self
            .connectors
            .iter()
            .any(|x| x.uuid != c.uuid && x.kind == c.kind && x.connector_id == c.connector_id)
        {
            return Err(DomainError::Conflict(format!(
                "A volume connector with type {} and connector ID {} already exists.",
                c.kind, c.connector_id
            )));
        }
        Ok(())
    }

    pub(super) fn add_connector(&self, c: NewConnector) -> Result<Vec<NodeEvent>, DomainError> {
        if self.connectors.iter().any(|x| x.uuid == c.uuid) {
            return Err(DomainError::Conflict(format!(
                "A volume connector with UUID {} already exists.",
                c.uuid
            )));
        }
        let connector = Connector {
            uuid: c.uuid,
            kind: c.kind,
            connector_id: c.connector_id,
            extra: c.extra,
        };
        self.check_connector_unique(&connector)?;
        Ok(vec![NodeEvent::ConnectorAdded { connector }])
    }

    pub(super) fn patch_connector(
        &self,
        uuid: Uuid,
        ops: &[PatchOp],
    ) -> Result<Vec<NodeEvent>, DomainError> {
        let (before, after) = self.patched_connector(uuid, ops)?;
        self.require_power_off("volume connector update")?;
        self.check_connector_unique(&after)?;
        if after == before {
            return Ok(vec![]);
        }
        Ok(vec![NodeEvent::ConnectorUpdated { before, after }])
    }

    /// Connector `uuid` as it is and with `ops` applied.
    pub(super) fn patched_connector(
        &self,
        uuid: Uuid,
        ops: &[PatchOp],
    ) -> Result<(Connector, Connector), DomainError> {
        let before = self.connector(uuid)?.clone();
        let doc = json!({
            "type": before.kind, "connector_id": before.connector_id,
            "extra": before.extra, "node_uuid": self.id(),
        });
        let out = patched_doc(doc, ops, CONNECTOR_FIELDS)?;
        self.check_same_node(&out)?;
        let after = Connector {
            uuid,
            kind: string_field(&out, "type")?,
            connector_id: string_field(&out, "connector_id")?,
            extra: object_field(&out, "extra")?,
        };
        Ok((before, after))
    }

    pub(super) fn remove_connector(&self, uuid: Uuid) -> Result<Vec<NodeEvent>, DomainError> {
        let connector = self.connector(uuid)?.clone();
        self.require_volume_delete_allowed("volume connector deletion")?;
        Ok(vec![NodeEvent::ConnectorRemoved { connector }])
    }

    // ---- volume targets -------------------------------------------------------

    fn target(&self, uuid: Uuid) -> Result<&Target, DomainError> {
        self.targets.iter().find(|t| t.uuid == uuid).ok_or_else(|| {
            DomainError::NotFound(format!("Volume target {uuid} could not be found."))
        })
    }

    pub(super) fn check_boot_index_free(
        &self,
        boot_index: i64,
        except: Uuid,
    ) -> Result<(), DomainError> {
        if self
            .targets
            .iter()
            .any(|t| t.uuid != except && t.boot_index == boot_index)
        {
            return Err(DomainError::Conflict(format!(
                "A volume target with boot index '{boot_index}' for the same node already exists."
            )));
        }
        Ok(())
    }

    pub(super) fn create_target(&self, t: NewTarget) -> Result<Vec<NodeEvent>, DomainError> {
        if self.targets.iter().any(|x| x.uuid == t.uuid) {
            return Err(DomainError::Conflict(format!(
                "A volume target with UUID {} already exists.",
                t.uuid
            )));
        }
        target_rules::check_properties(&t.properties)?;
        self.check_boot_index_free(t.boot_index, t.uuid)?;
        let target = Target {
            uuid: t.uuid,
            volume_type: t.volume_type,
            boot_index: t.boot_index,
            volume_id: t.volume_id,
            properties: t.properties,
            extra: t.extra,
        };
        Ok(vec![NodeEvent::TargetCreated { target }])
    }

    pub(super) fn patch_target(
        &self,
        uuid: Uuid,
        ops: &[PatchOp],
    ) -> Result<Vec<NodeEvent>, DomainError> {
        let (before, after) = self.patched_target(uuid, ops)?;
        self.require_power_off("volume target update")?;
        self.check_boot_index_free(after.boot_index, uuid)?;
        if after == before {
            return Ok(vec![]);
        }
        Ok(vec![NodeEvent::TargetUpdated { before, after }])
    }

    /// Target `uuid` as it is and with `ops` applied.
    pub(super) fn patched_target(
        &self,
        uuid: Uuid,
        ops: &[PatchOp],
    ) -> Result<(Target, Target), DomainError> {
        let before = self.target(uuid)?.clone();
        let doc = json!({
            "volume_type": before.volume_type, "boot_index": before.boot_index,
            "volume_id": before.volume_id, "properties": before.properties,
            "extra": before.extra, "node_uuid": self.id(),
        });
        let out = patched_doc(doc, ops, TARGET_FIELDS)?;
        self.check_same_node(&out)?;
        let boot_index = match out.get("boot_index") {
            None | Some(Value::Null) => {
                return Err(DomainError::Invalid(
                    "'boot_index' is a required property".into(),
                ))
            }
            Some(v) => target_rules::boot_index(v)?,
        };
        let after = Target {
            uuid,
            volume_type: string_field(&out, "volume_type")?,
            boot_index,
            volume_id: string_field(&out, "volume_id")?,
            properties: object_field(&out, "properties")?,
            extra: object_field(&out, "extra")?,
        };
        target_rules::check_properties(&after.properties)?;
        Ok((before, after))
    }

    pub(super) fn delete_target(&self, uuid: Uuid) -> Result<Vec<NodeEvent>, DomainError> {
        let target = self.target(uuid)?.clone();
        self.require_volume_delete_allowed("volume target deletion")?;
        Ok(vec![NodeEvent::TargetDeleted { target }])
    }
}
