//! The `Node` aggregate: one bare-metal node and everything it owns.
//!
//! `handle` only decides: each command is checked against the current state by a
//! pure function in one of the `decide_*` modules, which returns the events to
//! record (or a [`DomainError`]). `apply` only folds events into state; it holds
//! no rules, because stored events are facts that must always replay.

pub mod commands;
mod decide_children;
mod decide_effects;
mod decide_lifecycle;
mod decide_move;
mod decide_sync;
mod decide_update;
pub mod entities;
pub mod events;
pub mod target_rules;
pub use decide_sync::POWER_FAILURE;
#[cfg(test)]
mod tests;

use crate::domain::error::DomainError;
use crate::domain::hardware::HardwareCatalog;
use crate::domain::state::{ProvisionState, POWER_OFF};
use commands::NodeCommand;
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use entities::{Connector, PendingMove, Port, Target};
use events::NodeEvent;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

/// What the node aggregate needs to decide: the configured hardware types and
/// interfaces. Plain data; no I/O.
#[derive(Debug, Clone, Default)]
pub struct NodeServices {
    pub catalog: HardwareCatalog,
}

/// A power change asked of a node's BMC (`PowerChangeRequested`), pending
/// until the process manager records its outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PowerRequest {
    /// Ironic's power target as asked (`power on`, `rebooting`, …).
    pub action: String,
    /// The state the node ends in: what `target_power_state` shows.
    pub target: String,
    pub timeout: Option<u64>,
}

/// The current state of one node, rebuilt from its events.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Enrolled and not deleted.
    pub exists: bool,
    pub uuid: Option<Uuid>,
    pub name: Option<String>,
    pub driver: String,
    pub interfaces: BTreeMap<String, String>,
    pub properties: Map<String, Value>,
    pub instance_info: Map<String, Value>,
    pub driver_info: Map<String, Value>,
    pub driver_internal_info: Map<String, Value>,
    pub extra: Map<String, Value>,
    pub fields: BTreeMap<String, Value>,
    pub instance_uuid: Option<String>,
    pub power_state: Option<String>,
    /// A power change asked of the node's BMC and not done yet.
    #[serde(default)]
    pub power_request: Option<PowerRequest>,
    pub provision_state: Option<ProvisionState>,
    pub target_provision_state: Option<ProvisionState>,
    pub maintenance: bool,
    pub maintenance_reason: Option<String>,
    pub last_error: Option<String>,
    /// In creation order (Ironic walks connectors and targets in DB order).
    pub ports: Vec<Port>,
    pub connectors: Vec<Connector>,
    pub targets: Vec<Target>,
    /// Volumes that may be attached to the node in Cinder: from the intent to
    /// attach (`VolumesAttaching`) until `VolumesDetached`.
    #[serde(default)]
    pub attached_volumes: BTreeSet<String>,
    /// The instance UUID Cinder knows the attached volumes by, if not the
    /// node's own UUID (see `VolumesAttaching`).
    #[serde(default)]
    pub attachment_owner: Option<String>,
    /// The iPXE script written for the node, if any.
    #[serde(default)]
    pub boot_config: Option<BootConfig>,
    /// The boot device last set through the node's BMC (or recorded for a
    /// node without one), if any.
    #[serde(default)]
    pub boot_device: Option<BootDeviceSetting>,
    /// The current deploy has had its BMC confirm the node off (its first
    /// step): a deploy resumed after a crash does not power the node off
    /// again once it has powered it on.
    #[serde(default)]
    pub deploy_powered_off: bool,
    /// Why the conductor put the node in maintenance (Ironic's `fault`, API
    /// 1.42): `power failure` when the power-state sync gave up on it.
    /// Cleared with maintenance.
    #[serde(default)]
    pub fault: Option<String>,
    /// Child records that began moving to another node and have not ended
    /// (`ChildMoveStarted` without its `ChildMoveEnded`): the process manager
    /// finishes them if the process that began them stopped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub moves_out: Vec<PendingMove>,
}

/// A boot device as last set: what `GET …/management/boot_device` answers for
/// nodes without a BMC, and what a deploy's boot-device step compares with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootDeviceSetting {
    pub device: String,
    pub persistent: bool,
    #[serde(default)]
    pub mode: Option<String>,
}

impl Node {
    /// Simple node fields ironledger stores as given (with light type checks).
    pub const SIMPLE_FIELDS: &'static [&'static str] = &[
        "description",
        "resource_class",
        "owner",
        "lessee",
        "chassis_uuid",
        "conductor_group",
        "automated_clean",
        "protected",
        "protected_reason",
        "retired",
        "retired_reason",
        "network_data",
        "shard",
        "parent_node",
        "disable_power_off",
    ];

    /// Volumes Cinder may hold for the node, or an iPXE script of it, that the
    /// process manager has not undone yet.
    pub fn has_leftovers(&self) -> bool {
        !self.attached_volumes.is_empty() || self.boot_config.is_some()
    }

    /// Leftovers to undo now: those of a deleted node, or of a node at rest
    /// that is not deployed (a failed deploy; an undeploy that ended in
    /// `error` is left to the operator).
    pub fn leftovers_to_undo(&self) -> bool {
        self.has_leftovers()
            && (!self.exists
                || !matches!(
                    self.state(),
                    ProvisionState::Active | ProvisionState::Deploying | ProvisionState::Error
                ))
    }

    /// The command that notes the boot volume target (boot index 0) in
    /// `driver_internal_info.boot_from_volume`, as a deploy does first;
    /// `None` when it is noted already or the node has no boot target.
    pub fn note_boot_volume(&self) -> Option<(Uuid, NodeCommand)> {
        let boot = self.targets.iter().find(|t| t.boot_index == 0)?.uuid;
        let noted = self
            .driver_internal_info
            .get("boot_from_volume")
            .and_then(|v| v.as_str());
        if noted == Some(boot.to_string().as_str()) {
            return None;
        }
        let changes = std::collections::BTreeMap::from([(
            "boot_from_volume".to_string(),
            Some(serde_json::json!(boot.to_string())),
        )]);
        Some((boot, NodeCommand::SetDriverInternalInfo { changes }))
    }

    /// The MACs the node's iPXE script is reached by: its PXE-enabled ports'.
    pub fn pxe_macs(&self) -> Vec<String> {
        self.ports
            .iter()
            .filter(|p| p.pxe_enabled)
            .map(|p| p.address.clone())
            .collect()
    }

    /// A deployed node whose MAC links no longer match its ports (a port
    /// added, removed, or its `pxe_enabled` or MAC changed in maintenance).
    pub fn links_stale(&self) -> bool {
        self.exists
            && self.state() == ProvisionState::Active
            && self
                .boot_config
                .as_ref()
                .is_some_and(|b| b.macs != self.pxe_macs())
    }

    /// Whether the process manager has something to do for the node: a
    /// deploy, undeploy or adoption under way, a power change pending,
    /// leftovers to undo or links to rewrite. The `nodes` read model indexes
    /// it, so the manager's sweep reads only these nodes.
    pub fn needs_work(&self) -> bool {
        (self.exists
            && (self.power_request.is_some()
                || matches!(
                    self.state(),
                    ProvisionState::Deploying | ProvisionState::Deleting | ProvisionState::Adopting
                )))
            || self.leftovers_to_undo()
            || self.links_stale()
            || !self.moves_out.is_empty()
    }

    /// The node's UUID as a string (empty before enrolment).
    pub fn id(&self) -> String {
        self.uuid.map(|u| u.to_string()).unwrap_or_default()
    }

    pub fn state(&self) -> ProvisionState {
        self.provision_state.unwrap_or(ProvisionState::Enroll)
    }

    /// `protected` is set: no undeploy, rebuild or deletion.
    pub fn is_protected(&self) -> bool {
        self.fields.get("protected") == Some(&Value::Bool(true))
    }

    /// `retired` is set.
    pub fn is_retired(&self) -> bool {
        self.fields.get("retired") == Some(&Value::Bool(true))
    }

    pub fn powered_off(&self) -> bool {
        self.power_state.as_deref() == Some(POWER_OFF)
    }

    /// The interface of a kind (`"storage"` → `"cinder"`).
    pub fn interface(&self, kind: &str) -> &str {
        self.interfaces.get(kind).map(String::as_str).unwrap_or("")
    }

    fn require_exists(&self) -> Result<(), DomainError> {
        if self.exists {
            Ok(())
        } else {
            Err(DomainError::NotFound(match self.uuid {
                Some(u) => format!("Node {u} could not be found."),
                None => "Node could not be found.".to_string(),
            }))
        }
    }

    /// Decides the events a command produces. Pure.
    pub fn decide(
        &self,
        command: NodeCommand,
        services: &NodeServices,
    ) -> Result<Vec<NodeEvent>, DomainError> {
        // A deleted node only takes the process manager's reports that its
        // leftovers (volumes, script) are gone.
        if !matches!(
            command,
            NodeCommand::Enroll(_)
                | NodeCommand::RecordDetachments { .. }
                | NodeCommand::RecordBootConfigRemoved
        ) {
            self.require_exists()?;
        }
        match command {
            NodeCommand::Enroll(cmd) => self.enroll(cmd, &services.catalog),
            NodeCommand::Patch { ops } => self.patch(&ops, &services.catalog),
            NodeCommand::SetMaintenance { reason } => {
                Ok(vec![NodeEvent::MaintenanceSet { reason }])
            }
            NodeCommand::UnsetMaintenance => Ok(if self.maintenance {
                vec![NodeEvent::MaintenanceUnset]
            } else {
                vec![]
            }),
            NodeCommand::SetPowerState { target, at } => self.set_power(&target, at),
            NodeCommand::RecordPowerState { power_state, at } => {
                self.record_power(&power_state, at)
            }
            NodeCommand::RecordBootDevice {
                device,
                persistent,
                mode,
            } => self.record_boot_device(device, persistent, mode),
            NodeCommand::RequestPower {
                target,
                timeout,
                at,
            } => self.request_power(&target, timeout, at),
            NodeCommand::FinishPower { power_state, at } => Ok(self.finish_power(power_state, at)),
            NodeCommand::FailPower { error, power_state } => {
                Ok(self.fail_power(error, power_state))
            }
            NodeCommand::Provision(req) => self.provision(&req),
            NodeCommand::Delete => self.delete(),
            NodeCommand::FinishDeploy => self.finish_deploy(),
            NodeCommand::FinishAdopt => self.finish_adopt(),
            NodeCommand::FailAdopt { error } => self.fail_adopt(error),
            NodeCommand::FailDeploy { error } => self.fail_deploy(error),
            NodeCommand::PurgeTargets => self.purge_targets(),
            NodeCommand::FinishUndeploy => self.finish_undeploy(),
            NodeCommand::FailUndeploy { error } => self.fail_undeploy(error),
            NodeCommand::SetDriverInternalInfo { changes } => {
                Ok(vec![NodeEvent::DriverInternalInfoUpdated { changes }])
            }
            NodeCommand::RecordAttachIntent { volume_ids, owner } => {
                self.record_attach_intent(volume_ids, owner)
            }
            NodeCommand::RecordAttachments { attachments } => self.record_attachments(attachments),
            NodeCommand::RecordDetachments { volume_ids } => self.record_detachments(volume_ids),
            NodeCommand::RecordBootConfig { digest, macs } => self.record_boot_config(digest, macs),
            NodeCommand::RecordBootConfigRemoved => self.record_boot_config_removed(),
            NodeCommand::AddPort(p) => self.add_port(p),
            NodeCommand::PatchPort { uuid, ops } => self.patch_port(uuid, &ops),
            NodeCommand::RemovePort { uuid } => self.remove_port(uuid),
            NodeCommand::AddConnector(c) => self.add_connector(c),
            NodeCommand::PatchConnector { uuid, ops } => self.patch_connector(uuid, &ops),
            NodeCommand::RemoveConnector { uuid } => self.remove_connector(uuid),
            NodeCommand::CreateTarget(t) => self.create_target(t),
            NodeCommand::PatchTarget { uuid, ops } => self.patch_target(uuid, &ops),
            NodeCommand::DeleteTarget { uuid } => self.delete_target(uuid),
            NodeCommand::StartMove {
                kind,
                uuid,
                to,
                ops,
            } => self.start_move(kind, uuid, to, &ops),
            NodeCommand::AdoptChild { from: _, record } => self.adopt_child(record),
            NodeCommand::EndMove { uuid, result } => self.end_move(uuid, result),
            NodeCommand::SyncPowerState { power_state, at } => self.sync_power(power_state, at),
            NodeCommand::RecordPowerRestored { found, seen_at, at } => {
                self.sync_power_restored(found, seen_at, at)
            }
            NodeCommand::RecordPowerRestoreFailed {
                found,
                seen_at,
                error,
            } => self.sync_power_restore_failed(found, seen_at, error),
            NodeCommand::FailPowerSync {
                power_state,
                error,
                at,
            } => self.fail_power_sync(power_state, error, at),
            NodeCommand::RecoverPowerFailure { power_state, at } => {
                self.recover_power_failure(power_state, at)
            }
        }
    }

    /// `driver_internal_info.last_power_state_change`.
    fn stamp_power_change(&mut self, at: String) {
        self.driver_internal_info
            .insert("last_power_state_change".into(), Value::String(at));
    }

    fn set_transition(&mut self, t: &events::Transition) {
        self.provision_state = Some(t.to);
        self.target_provision_state = t.target;
    }
}

impl Aggregate for Node {
    const TYPE: &'static str = "Node";
    type Command = NodeCommand;
    type Event = NodeEvent;
    type Error = DomainError;
    type Services = NodeServices;

    async fn handle(
        &mut self,
        command: Self::Command,
        services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        for event in self.decide(command, services)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        use NodeEvent::*;
        match event {
            NodeEnrolled(e) => {
                *self = Node {
                    exists: true,
                    uuid: Some(e.uuid),
                    name: e.name,
                    driver: e.driver,
                    interfaces: e.interfaces,
                    properties: e.properties,
                    instance_info: e.instance_info,
                    driver_info: e.driver_info,
                    extra: e.extra,
                    fields: e.fields,
                    provision_state: Some(e.provision_state),
                    ..Node::default()
                };
            }
            NodeRenamed { to, .. } => self.name = to,
            NodeUpdated { changes } => {
                for (k, v) in changes {
                    if k == "driver" {
                        self.driver = v.as_str().unwrap_or_default().to_string();
                    } else if k == "extra" {
                        self.extra = v.as_object().cloned().unwrap_or_default();
                    } else if v.is_null() {
                        self.fields.remove(&k);
                    } else {
                        self.fields.insert(k, v);
                    }
                }
            }
            InterfaceSet { interface, to, .. } => {
                self.interfaces.insert(interface, to);
            }
            StorageInterfaceSet { to, .. } => {
                self.interfaces.insert("storage".into(), to);
            }
            PropertiesUpdated { after, .. } => self.properties = after,
            InstanceInfoUpdated { after, .. } => self.instance_info = after,
            DriverInfoUpdated { after } => self.driver_info = after,
            DriverInternalInfoUpdated { changes } => {
                for (k, v) in changes {
                    match v {
                        Some(v) => self.driver_internal_info.insert(k, v),
                        None => self.driver_internal_info.remove(&k),
                    };
                }
            }
            InstanceAssociated { to, .. } => self.instance_uuid = to,
            MaintenanceSet { reason } => {
                self.maintenance = true;
                self.maintenance_reason = reason;
            }
            MaintenanceUnset => {
                self.maintenance = false;
                self.maintenance_reason = None;
                // Ironic clears the fault with maintenance.
                self.fault = None;
            }
            PowerStateChanged { to, at, .. } => {
                // A deploy's BMC step (a node without a BMC records its
                // power state with a time too, but has no such step).
                if at.is_some()
                    && to == POWER_OFF
                    && self.state() == ProvisionState::Deploying
                    && crate::domain::bmc_access::Protocol::of_interface(self.interface("power"))
                        .is_some()
                {
                    self.deploy_powered_off = true;
                }
                self.power_state = Some(to);
                if let Some(at) = at {
                    self.driver_internal_info
                        .insert("last_power_state_change".into(), Value::String(at));
                }
            }
            BootDeviceSet {
                device,
                persistent,
                mode,
            } => {
                self.boot_device = Some(BootDeviceSetting {
                    device,
                    persistent,
                    mode,
                })
            }
            PowerChangeRequested {
                action,
                target,
                timeout,
            } => {
                self.power_request = Some(PowerRequest {
                    action,
                    target,
                    timeout,
                });
                self.last_error = None;
            }
            PowerChangeDone { to, at, .. } => {
                self.power_state = Some(to);
                self.power_request = None;
                self.driver_internal_info
                    .insert("last_power_state_change".into(), Value::String(at));
            }
            PowerChangeFailed {
                last_error,
                power_state,
            } => {
                self.power_request = None;
                self.last_error = Some(last_error);
                if power_state.is_some() {
                    self.power_state = power_state;
                }
            }
            PortAdded { port } => self.ports.push(port),
            PortUpdated { after, .. } => replace_by_uuid(&mut self.ports, after, |p| p.uuid),
            PortRemoved { port } => self.ports.retain(|p| p.uuid != port.uuid),
            ChildMoveStarted { to, before, after } => {
                self.moves_out.push(PendingMove { to, before, after })
            }
            ChildMoveEnded { uuid, .. } => self.moves_out.retain(|m| m.before.uuid() != uuid),
            ConnectorAdded { connector } => self.connectors.push(connector),
            ConnectorUpdated { after, .. } => {
                replace_by_uuid(&mut self.connectors, after, |c| c.uuid)
            }
            ConnectorRemoved { connector } => self.connectors.retain(|c| c.uuid != connector.uuid),
            TargetCreated { target } => self.targets.push(target),
            TargetUpdated { after, .. } => replace_by_uuid(&mut self.targets, after, |t| t.uuid),
            TargetDeleted { target } => self.targets.retain(|t| t.uuid != target.uuid),
            ProvisionStateChanged(t) => self.set_transition(&t),
            DeployRequested { transition, .. } => {
                self.set_transition(&transition);
                self.last_error = None;
                self.deploy_powered_off = false;
            }
            Deployed(t) => self.set_transition(&t),
            DeployFailed {
                transition,
                last_error: error,
            }
            | UndeployFailed {
                transition,
                last_error: error,
            }
            | AdoptFailed {
                transition,
                last_error: error,
            } => {
                self.set_transition(&transition);
                self.last_error = Some(error);
            }
            UndeployRequested(t) => {
                self.set_transition(&t);
                self.last_error = None;
            }
            TargetsPurged { targets } => {
                self.targets
                    .retain(|t| !targets.iter().any(|p| p.uuid == t.uuid));
                self.driver_internal_info.remove("boot_from_volume");
                self.driver_internal_info.remove("boot_from_volume_deploy");
            }
            Undeployed(t) => {
                self.set_transition(&t);
                self.instance_info.clear();
                self.instance_uuid = None;
                self.driver_internal_info.remove("boot_from_volume");
                self.driver_internal_info.remove("boot_from_volume_deploy");
            }
            NodeDeleted { .. } => {
                // What the process manager still has to undo outlives the node:
                // volumes Cinder may hold for it (with the connectors and
                // instance that name it there) and its iPXE script.
                let leftovers = !self.attached_volumes.is_empty();
                *self = Node {
                    uuid: self.uuid,
                    attached_volumes: std::mem::take(&mut self.attached_volumes),
                    boot_config: self.boot_config.take(),
                    connectors: if leftovers {
                        std::mem::take(&mut self.connectors)
                    } else {
                        vec![]
                    },
                    attachment_owner: self.attachment_owner.take(),
                    instance_uuid: if leftovers {
                        self.instance_uuid.take()
                    } else {
                        None
                    },
                    ..Node::default()
                };
            }
            VolumesAttached { attachments } => {
                for a in attachments {
                    if let Some(t) = self.targets.iter_mut().find(|t| t.uuid == a.target) {
                        t.properties = a.properties;
                    }
                    self.attached_volumes.insert(a.volume_id);
                }
            }
            VolumesAttaching { volume_ids, owner } => {
                self.attached_volumes.extend(volume_ids);
                if owner.is_some() {
                    self.attachment_owner = owner;
                }
            }
            VolumesDetached { volume_ids } => {
                for v in volume_ids {
                    self.attached_volumes.remove(&v);
                }
                if self.attached_volumes.is_empty() {
                    self.attachment_owner = None;
                }
            }
            BootConfigWritten { digest, macs } => {
                self.boot_config = Some(BootConfig { digest, macs })
            }
            BootConfigRemoved => self.boot_config = None,
            PowerStateSynced { from, to, at } => {
                if from.is_some() {
                    self.stamp_power_change(at);
                }
                self.power_state = Some(to);
            }
            PowerStateRestored { to, at, .. } => {
                self.power_state = Some(to);
                self.stamp_power_change(at);
            }
            PowerStateRestoreFailed { last_error, .. } => self.last_error = Some(last_error),
            PowerSyncFailed {
                from,
                power_state,
                reason,
                fault,
                at,
            } => {
                if from.is_some() && power_state.is_some() && from != power_state {
                    self.stamp_power_change(at);
                }
                self.power_state = power_state;
                self.maintenance = true;
                self.maintenance_reason = Some(reason.clone());
                self.fault = Some(fault);
                self.last_error = Some(reason);
            }
            PowerFailureRecovered {
                from,
                power_state,
                at,
            } => {
                if from.is_some() && from.as_deref() != Some(power_state.as_str()) {
                    self.stamp_power_change(at);
                }
                self.power_state = Some(power_state);
                self.maintenance = false;
                self.maintenance_reason = None;
                self.fault = None;
            }
        }
    }
}

/// The iPXE script written for a node: a digest of its content and the MACs
/// that lead to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootConfig {
    pub digest: String,
    pub macs: Vec<String>,
}

fn replace_by_uuid<T>(items: &mut [T], new: T, key: impl Fn(&T) -> Uuid) {
    let id = key(&new);
    if let Some(slot) = items.iter_mut().find(|i| key(i) == id) {
        *slot = new;
    }
}
