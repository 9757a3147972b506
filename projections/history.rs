//! `node_history`: one entry per node event, in the shape of Ironic's node
//! history (API 1.78+): severity, event text, event type, who, the provision
//! state after the event, and how long the node had been in its previous state.
//!
//! Entries are keyed `<node uuid>/<event id, zero-padded>` so that a node's
//! history is a contiguous, chronological range (an event's id, unlike its
//! position, is known in the transaction that appends it: the model is
//! inline); each entry also has a stable
//! UUID derived from the event's identity, so a rebuild reproduces it exactly.
//! A small per-node document (`state/<node uuid>`) remembers the provision state
//! and when it last changed.

use super::{node_event, timestamp, Docs, Projection, ProjectionError};
use crate::domain::node::entities::MoveOutcome;
use crate::domain::NodeEvent;
use crate::store::{Key, RecordedEvent};
use async_trait::async_trait;
use serde_json::{json, Value};
use uuid::Uuid;

pub struct HistoryProjection;

pub const MODEL: &str = "node_history";

/// Namespace for history entry UUIDs (v5 of `<node>/<sequence>`).
const HISTORY_NS: Uuid = Uuid::from_u128(0x6c1e_5d3a_90b2_4f7e_8a41_2b9c_0d7e_f113);

/// The key of a node's history entry.
pub fn entry_key(node: &str, event_id: u64) -> String {
    format!("{node}/{event_id:020}")
}

/// A node's history entries, oldest first: the range `<node>/` of the model
/// (the node's state document, `state/<node>`, is outside it), read through
/// the `(model, id)` index, so it costs this node's entries whatever the
/// fleet's history holds.
pub async fn history_of(
    store: &dyn crate::store::LogStore,
    node: &str,
) -> Result<Vec<Value>, crate::store::StoreError> {
    Ok(store
        .doc_prefix(MODEL, &format!("{node}/"), None)
        .await?
        .into_iter()
        .map(|(_, doc)| doc)
        .collect())
}

/// The key of a node's state document.
pub fn state_key(node: &str) -> String {
    format!("state/{node}")
}

/// Ironic's event type, severity and a human sentence for one event.
pub fn describe(ev: &NodeEvent) -> (&'static str, &'static str, String) {
    use NodeEvent::*;
    match ev {
        NodeEnrolled(e) => (
            "provisioning",
            "INFO",
            format!(
                "Node enrolled with driver {} in {}.",
                e.driver, e.provision_state
            ),
        ),
        NodeRenamed { from, to } => (
            "update",
            "INFO",
            format!("Name changed from {from:?} to {to:?}."),
        ),
        NodeUpdated { changes } => {
            let keys: Vec<&str> = changes.keys().map(String::as_str).collect();
            (
                "update",
                "INFO",
                format!("Fields updated: {}.", keys.join(", ")),
            )
        }
        InterfaceSet {
            interface,
            from,
            to,
        } => (
            "update",
            "INFO",
            format!("{interface}_interface changed from {from} to {to}."),
        ),
        StorageInterfaceSet { from, to } => (
            "update",
            "INFO",
            format!("storage_interface changed from {from} to {to}."),
        ),
        PropertiesUpdated { .. } => ("update", "INFO", "Properties updated.".into()),
        InstanceInfoUpdated { .. } => ("update", "INFO", "Instance info updated.".into()),
        DriverInfoUpdated { .. } => ("update", "INFO", "Driver info updated.".into()),
        DriverInternalInfoUpdated { changes } => {
            let keys: Vec<&str> = changes.keys().map(String::as_str).collect();
            (
                "provisioning",
                "INFO",
                format!("Driver internal info updated: {}.", keys.join(", ")),
            )
        }
        InstanceAssociated { to, .. } => (
            "update",
            "INFO",
            match to {
                Some(i) => format!("Instance {i} associated."),
                None => "Instance disassociated.".into(),
            },
        ),
        MaintenanceSet { reason } => (
            "maintenance",
            "INFO",
            match reason {
                Some(r) => format!("Maintenance mode set: {r}"),
                None => "Maintenance mode set.".into(),
            },
        ),
        MaintenanceUnset => ("maintenance", "INFO", "Maintenance mode unset.".into()),
        PowerStateChanged { from, to, at } => (
            "power",
            "INFO",
            match (at, from.as_deref() == Some(to.as_str())) {
                (Some(_), true) => format!("The BMC confirmed the node is in {to}."),
                (Some(_), false) => format!(
                    "Power state changed from {} to {to} by the node's BMC.",
                    from.as_deref().unwrap_or("None")
                ),
                (None, _) => format!(
                    "Power state changed from {} to {to}.",
                    from.as_deref().unwrap_or("None")
                ),
            },
        ),
        BootDeviceSet {
            device,
            persistent,
            mode,
        } => (
            "management",
            "INFO",
            format!(
                "Boot device set to {device}{}{}.",
                if *persistent { " (persistent)" } else { "" },
                mode.as_deref()
                    .map(|m| format!(", boot mode {m}"))
                    .unwrap_or_default()
            ),
        ),
        PowerChangeRequested { action, .. } => (
            "power",
            "INFO",
            format!("Power change to {action} requested."),
        ),
        PowerChangeDone { from, to, .. } => (
            "power",
            "INFO",
            format!(
                "Power state changed from {} to {to}.",
                from.as_deref().unwrap_or("None")
            ),
        ),
        PowerChangeFailed { last_error, .. } => ("power", "ERROR", last_error.clone()),
        PortAdded { port } => (
            "update",
            "INFO",
            format!("Port {} ({}) added.", port.uuid, port.address),
        ),
        PortUpdated { after, .. } => (
            "update",
            "INFO",
            format!("Port {} ({}) updated.", after.uuid, after.address),
        ),
        PortRemoved { port } => (
            "update",
            "INFO",
            format!("Port {} ({}) removed.", port.uuid, port.address),
        ),
        ConnectorAdded { connector: c } => (
            "volume",
            "INFO",
            format!(
                "Volume connector {} ({} {}) added.",
                c.uuid, c.kind, c.connector_id
            ),
        ),
        ConnectorUpdated { after: c, .. } => (
            "volume",
            "INFO",
            format!(
                "Volume connector {} ({} {}) updated.",
                c.uuid, c.kind, c.connector_id
            ),
        ),
        ConnectorRemoved { connector: c } => (
            "volume",
            "INFO",
            format!(
                "Volume connector {} ({} {}) removed.",
                c.uuid, c.kind, c.connector_id
            ),
        ),
        TargetCreated { target: t } => (
            "volume",
            "INFO",
            format!(
                "Volume target {} (volume {}, boot index {}) created.",
                t.uuid, t.volume_id, t.boot_index
            ),
        ),
        TargetUpdated { after: t, .. } => (
            "volume",
            "INFO",
            format!(
                "Volume target {} (volume {}, boot index {}) updated.",
                t.uuid, t.volume_id, t.boot_index
            ),
        ),
        TargetDeleted { target: t } => (
            "volume",
            "INFO",
            format!("Volume target {} (volume {}) deleted.", t.uuid, t.volume_id),
        ),
        ProvisionStateChanged(t) => (
            "provisioning",
            "INFO",
            format!(
                "Provision state changed from {} to {} ({}).",
                t.from,
                t.to,
                t.event.as_str()
            ),
        ),
        DeployRequested {
            transition: t,
            rebuild,
        } => (
            "provisioning",
            "INFO",
            format!(
                "{} requested: {} -> {}.",
                if *rebuild { "Rebuild" } else { "Deploy" },
                t.from,
                t.to
            ),
        ),
        Deployed(t) => (
            "provisioning",
            "INFO",
            format!("Deploy finished: {} -> {}.", t.from, t.to),
        ),
        DeployFailed { last_error, .. } | AdoptFailed { last_error, .. } => {
            ("provisioning", "ERROR", last_error.clone())
        }
        UndeployRequested(t) => (
            "unprovision",
            "INFO",
            format!("Undeploy requested: {} -> {}.", t.from, t.to),
        ),
        ChildMoveStarted { to, before, .. } => (
            "update",
            "INFO",
            format!(
                "Moving {} {} to node {to}.",
                before.kind_name(),
                before.uuid()
            ),
        ),
        ChildMoveEnded {
            uuid,
            to,
            outcome: MoveOutcome::Landed,
        } => ("update", "INFO", format!("{uuid} moved to node {to}.")),
        ChildMoveEnded {
            uuid,
            to,
            outcome: MoveOutcome::Restored { reason },
        } => (
            "update",
            "WARNING",
            format!("{uuid} did not move to node {to} and is back on this node: {reason}"),
        ),
        ChildMoveEnded {
            uuid,
            to,
            outcome: MoveOutcome::Lost { reason },
        } => (
            "update",
            "ERROR",
            format!("{uuid} could not move to node {to} nor stay on this node: {reason}. The record as it was is in this node's ChildMoveStarted event."),
        ),
        TargetsPurged { targets } => (
            "unprovision",
            "INFO",
            format!("{} volume target(s) purged.", targets.len()),
        ),
        Undeployed(t) => (
            "unprovision",
            "INFO",
            format!("Tear down finished: {} -> {}.", t.from, t.to),
        ),
        UndeployFailed { last_error, .. } => ("unprovision", "ERROR", last_error.clone()),
        NodeDeleted { .. } => ("provisioning", "INFO", "Node deleted.".into()),
        VolumesAttached { attachments } => {
            let ids: Vec<&str> = attachments.iter().map(|a| a.volume_id.as_str()).collect();
            (
                "provisioning",
                "INFO",
                format!("Volume(s) attached: {}.", ids.join(", ")),
            )
        }
        VolumesAttaching { volume_ids, .. } => (
            "provisioning",
            "INFO",
            format!("Attaching volume(s): {}.", volume_ids.join(", ")),
        ),
        VolumesDetached { volume_ids } => (
            "unprovision",
            "INFO",
            format!("Volume(s) detached: {}.", volume_ids.join(", ")),
        ),
        BootConfigWritten { macs, .. } => (
            "provisioning",
            "INFO",
            format!("Boot configuration written for {}.", macs.join(", ")),
        ),
        BootConfigRemoved => ("unprovision", "INFO", "Boot configuration removed.".into()),
        // The power-state sync: Ironic's event type for it is `monitoring`.
        PowerStateSynced { from: None, to, .. } => (
            "monitoring",
            "INFO",
            format!("Power state sync: no power state was known; the BMC reports {to}, recorded."),
        ),
        PowerStateSynced {
            from: Some(from),
            to,
            at,
        } => (
            "monitoring",
            "WARNING",
            format!("Power state changed out of band from {from} to {to}, seen at {at}; recorded."),
        ),
        PowerStateRestored {
            found,
            to,
            seen_at,
            at,
        } => (
            "monitoring",
            "WARNING",
            format!("Power state changed out of band from {to} to {found}, seen at {seen_at}; restored to {to} at {at}."),
        ),
        PowerStateRestoreFailed {
            found,
            wanted,
            seen_at,
            last_error,
        } => (
            "monitoring",
            "ERROR",
            format!("Power state changed out of band from {wanted} to {found}, seen at {seen_at}; not restored: {last_error}"),
        ),
        PowerSyncFailed { reason, .. } => ("monitoring", "ERROR", reason.clone()),
        PowerFailureRecovered { power_state, .. } => (
            "monitoring",
            "INFO",
            format!("Node recovered from power failure with actual power state '{power_state}': maintenance mode unset."),
        ),
    }
}

/// The power state a node is in after `ev`, for the events that set one.
fn power_after(ev: &NodeEvent) -> Option<&str> {
    use NodeEvent::*;
    match ev {
        PowerStateChanged { to, .. }
        | PowerChangeDone { to, .. }
        | PowerStateSynced { to, .. }
        | PowerStateRestored { to, .. } => Some(to),
        PowerStateRestoreFailed { found, .. } => Some(found),
        PowerFailureRecovered { power_state, .. } => Some(power_state),
        _ => None,
    }
}

#[async_trait]
impl Projection for HistoryProjection {
    fn name(&self) -> &'static str {
        MODEL
    }

    fn reads(&self, event: &RecordedEvent) -> Option<String> {
        (event.aggregate_type == "Node").then(|| state_key(&event.aggregate_id))
    }

    async fn apply(
        &self,
        event: &RecordedEvent,
        docs: &mut Docs<'_>,
    ) -> Result<(), ProjectionError> {
        let Some(ev) = node_event(event)? else {
            return Ok(());
        };
        let node = event.aggregate_id.as_str();
        let now = timestamp(event);
        let skey = state_key(node);
        let mut state = docs.get(&skey).await?.unwrap_or_else(|| json!({}));
        if let NodeEvent::NodeEnrolled(e) = &ev {
            state = json!({"provision_state": e.provision_state, "target_provision_state": null, "since": now});
        }
        let since = state["since"]
            .as_str()
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok());
        let duration = since.map(|s| {
            (event.recorded_at - s.with_timezone(&chrono::Utc)).num_milliseconds() as f64 / 1000.0
        });
        if let Some(t) = ev.transition() {
            state["provision_state"] = json!(t.to);
            state["target_provision_state"] = json!(t.target);
            state["since"] = now.clone();
        }
        if let Some(power) = power_after(&ev) {
            state["power_state"] = json!(power);
        }
        let (event_type, severity, text) = describe(&ev);
        let meta = |k: &str| event.metadata.get(k).cloned().unwrap_or(Value::Null);
        let uuid = Uuid::new_v5(&HISTORY_NS, format!("{node}/{}", event.sequence).as_bytes());
        let keys = vec![
            ("ord", Key::Int(event.event_id as i64)),
            ("node_uuid", Key::text(node)),
        ];
        docs.put_row(
            &entry_key(node, event.event_id),
            json!({
                "uuid": uuid,
                "node_uuid": node,
                "created_at": now,
                "severity": severity,
                "event": text,
                "event_type": event_type,
                "event_name": event.event_type,
                "conductor": meta("host"),
                "user": meta("actor"),
                "project": meta("project"),
                "reason": meta("reason"),
                // Not in Ironic's API; the timeline page and the feed show it.
                "request_id": meta("request_id"),
                "state": state["provision_state"],
                "target_provision_state": state["target_provision_state"],
                // Not in Ironic's API either: the power state after the
                // event, for the timeline page's power band.
                "power_state": state["power_state"],
                "duration_seconds": duration,
                "sequence": event.sequence,
            }),
            keys,
        );
        // The state document is in no node's range of entries: no keys.
        docs.put(&skey, state);
        Ok(())
    }
}
