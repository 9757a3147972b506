//! The facts recorded about a node, in the past tense.
//!
//! Each event is stored as serde JSON, externally tagged (`{"ConnectorAdded": {…}}`),
//! with its type name and a schema version in their own columns. Who asked and
//! why travel in the event metadata (see `engine::Meta`), when in the store's
//! `recorded_at`. Updates carry the record before and after, so the log alone
//! answers "what changed" and uniqueness claims can be released exactly.
//!
//! Changing an event's shape means bumping its version and adding an upcaster;
//! never edit the meaning of a stored version.

use super::entities::{ChildRecord, Connector, MoveOutcome, Port, Target};
use crate::domain::state::{FsmEvent, ProvisionState};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use uuid::Uuid;

/// A node as enrolled: every field it starts with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeEnrolled {
    pub uuid: Uuid,
    pub name: Option<String>,
    pub driver: String,
    /// Every interface, resolved to a concrete name (`storage` → `noop`, …).
    pub interfaces: BTreeMap<String, String>,
    pub properties: Map<String, Value>,
    pub instance_info: Map<String, Value>,
    pub driver_info: Map<String, Value>,
    pub extra: Map<String, Value>,
    /// Other simple fields (`description`, `resource_class`, `owner`, …).
    pub fields: BTreeMap<String, Value>,
    /// `enroll` (API ≥ 1.11) or `available` (older clients).
    pub provision_state: ProvisionState,
}

/// A provision-state move: which FSM event, from where, to where, and the
/// target the node shows afterwards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub event: FsmEvent,
    pub from: ProvisionState,
    pub to: ProvisionState,
    pub target: Option<ProvisionState>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum NodeEvent {
    NodeEnrolled(NodeEnrolled),
    /// `name` changed (names are unique across nodes).
    NodeRenamed {
        from: Option<String>,
        to: Option<String>,
    },
    /// Simple fields changed: field → new value (`null` = unset).
    NodeUpdated {
        changes: BTreeMap<String, Value>,
    },
    /// An interface other than storage changed (`boot`, `deploy`, …).
    InterfaceSet {
        interface: String,
        from: String,
        to: String,
    },
    StorageInterfaceSet {
        from: String,
        to: String,
    },
    PropertiesUpdated {
        before: Map<String, Value>,
        after: Map<String, Value>,
    },
    InstanceInfoUpdated {
        before: Map<String, Value>,
        after: Map<String, Value>,
    },
    DriverInfoUpdated {
        after: Map<String, Value>,
    },
    /// Keys of `driver_internal_info` set (`Some`) or removed (`None`).
    DriverInternalInfoUpdated {
        changes: BTreeMap<String, Option<Value>>,
    },
    InstanceAssociated {
        from: Option<String>,
        to: Option<String>,
    },
    MaintenanceSet {
        reason: Option<String>,
    },
    MaintenanceUnset,
    PowerStateChanged {
        from: Option<String>,
        to: String,
        /// When (ISO 8601): `driver_internal_info.last_power_state_change`.
        /// For a change the process manager made through the node's BMC,
        /// when the BMC confirmed it; for a node without a BMC, when the
        /// change was asked for. `None` in events written before it was
        /// recorded for every node.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        at: Option<String>,
    },
    /// The node's BMC accepted a boot device (`PUT …/management/boot_device`,
    /// or a deploy's "network boot, persistently" step).
    BootDeviceSet {
        /// Ironic's name (`pxe`, `disk`, …).
        device: String,
        persistent: bool,
        /// The boot mode set with it (`bios` / `uefi`), if one was asked.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mode: Option<String>,
    },
    /// A power change of a BMC node asked for: the node shows
    /// `target_power_state` until the process manager records the outcome.
    PowerChangeRequested {
        /// Ironic's power target as asked (`rebooting`, `soft power off`, …).
        action: String,
        /// The state the node ends in (`power on` / `power off`).
        target: String,
        /// Seconds the change may take; `None`: the default.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout: Option<u64>,
    },
    /// The BMC reached the requested state: `power_state` set,
    /// `target_power_state` cleared.
    PowerChangeDone {
        from: Option<String>,
        to: String,
        /// When (ISO 8601): `driver_internal_info.last_power_state_change`.
        at: String,
    },
    /// The power request failed: `last_error` set, `target_power_state`
    /// cleared, `power_state` as the BMC last reported it (unchanged if it
    /// could not be read).
    PowerChangeFailed {
        last_error: String,
        power_state: Option<String>,
    },

    PortAdded {
        port: Port,
    },
    PortUpdated {
        before: Port,
        after: Port,
    },
    PortRemoved {
        port: Port,
    },

    ConnectorAdded {
        connector: Connector,
    },
    ConnectorUpdated {
        before: Connector,
        after: Connector,
    },
    ConnectorRemoved {
        connector: Connector,
    },

    TargetCreated {
        target: Target,
    },
    TargetUpdated {
        before: Target,
        after: Target,
    },
    TargetDeleted {
        target: Target,
    },

    /// A child record (port, connector or target) began moving to node `to`.
    /// The intent, recorded in the same commit as the record's removal here
    /// (the next event), so that a crash before it lands on `to` leaves a move
    /// to finish (`Node::moves_out`), never a record on neither node.
    ChildMoveStarted {
        to: Uuid,
        before: ChildRecord,
        after: ChildRecord,
    },
    /// The move of record `uuid` to `to` ended (see [`MoveOutcome`]); when the
    /// record came back, its re-addition is the previous event of the commit.
    ChildMoveEnded {
        uuid: Uuid,
        to: Uuid,
        outcome: MoveOutcome,
    },

    /// A move of the state machine that has no more specific event.
    ProvisionStateChanged(Transition),
    /// Deploy (or rebuild) asked for: the node is now `deploying`.
    DeployRequested {
        transition: Transition,
        rebuild: bool,
    },
    /// The deploy finished: the node is `active`.
    Deployed(Transition),
    /// The deploy could not finish: the node is `deploy failed`, `last_error` set.
    ///
    /// Version 1.1 (1.0 called `last_error` `error`; `upcast` renames it).
    DeployFailed {
        transition: Transition,
        last_error: String,
    },
    /// Adoption could not finish (its boot configuration could not be
    /// written): the node is `adopt failed`, `last_error` set.
    AdoptFailed {
        transition: Transition,
        last_error: String,
    },
    /// Undeploy asked for: the node is now `deleting`.
    UndeployRequested(Transition),
    /// Every volume target of the node was removed by undeploy (connectors stay).
    TargetsPurged {
        targets: Vec<Target>,
    },
    /// Tear-down finished: the node moves on to cleaning; instance data cleared.
    Undeployed(Transition),
    /// Tear-down could not finish: the node is in `error`, `last_error` set.
    ///
    /// Version 1.1 (1.0 called `last_error` `error`; `upcast` renames it).
    UndeployFailed {
        transition: Transition,
        last_error: String,
    },
    /// The node and everything it owned are gone.
    NodeDeleted {
        ports: Vec<Port>,
        connectors: Vec<Connector>,
        targets: Vec<Target>,
    },
    /// Cinder attached volumes to the node; each target's `properties` became the
    /// connection data Cinder returned (`target_iqn`, `target_portal`,
    /// `target_lun`, CHAP, …), as Ironic writes it back.
    VolumesAttached {
        attachments: Vec<VolumeAttachment>,
    },
    /// About to ask Cinder to attach these volumes: from here until
    /// `VolumesDetached`, they may be attached, and a failed deploy detaches
    /// them (an intent recorded before the side effect, so a crash in the middle
    /// of it never leaves an attachment nobody knows about).
    VolumesAttaching {
        volume_ids: Vec<String>,
        /// The instance UUID the volumes are attached for in Cinder (the
        /// attachment's `server_id`), when the node had one: detaching must
        /// name the same even if `instance_uuid` was cleared since. Absent in
        /// events written before it existed (then the node UUID was used, or
        /// the current instance).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        owner: Option<String>,
    },
    /// Cinder detached the volumes from the node.
    VolumesDetached {
        volume_ids: Vec<String>,
    },
    /// The node's iPXE script was written under the HTTP boot root, reachable
    /// through the listed MACs; `digest` identifies its content.
    BootConfigWritten {
        digest: String,
        macs: Vec<String>,
    },
    /// The node's iPXE script and MAC links were removed.
    BootConfigRemoved,

    // The periodic power-state sync (`effects::power_sync`, rules in
    // `decide_sync`).
    /// The sync read the node's BMC and recorded the state it reports:
    /// `from` is what was recorded before — `None` when nothing was (the
    /// first state known), else the node was changed out of band from
    /// `from` to `to`, seen at `at` (ISO 8601; then also
    /// `driver_internal_info.last_power_state_change`).
    PowerStateSynced {
        from: Option<String>,
        to: String,
        at: String,
    },
    /// The sync found the node changed out of band to `found` (seen at
    /// `seen_at`) and had the BMC restore the recorded `to`, confirmed at
    /// `at` (`[conductor] force_power_state_during_sync`). The recorded power
    /// state stays `to`; `last_power_state_change` is `at`.
    PowerStateRestored {
        found: String,
        to: String,
        seen_at: String,
        at: String,
    },
    /// The sync found the node changed out of band to `found` (seen at
    /// `seen_at`) and the BMC did not restore `wanted`: `last_error` set;
    /// the recorded state stays `wanted` (the sync tries again).
    PowerStateRestoreFailed {
        found: String,
        wanted: String,
        seen_at: String,
        last_error: String,
    },
    /// The sync gave up after `[conductor] power_state_sync_max_retries`: the
    /// recorded power state becomes what the BMC reports (`None`: it could
    /// not be read), and the node is in maintenance with `reason` (also its
    /// `last_error`) and `fault` (`power failure`), as Ironic does it.
    PowerSyncFailed {
        from: Option<String>,
        power_state: Option<String>,
        reason: String,
        fault: String,
        at: String,
    },
    /// The BMC of a node in maintenance for a power failure answered again:
    /// maintenance, its reason and the fault cleared; the power state as
    /// the BMC reported it at `at`.
    PowerFailureRecovered {
        from: Option<String>,
        power_state: String,
        at: String,
    },
}

/// One volume attached by Cinder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VolumeAttachment {
    pub volume_id: String,
    /// The target whose properties were replaced.
    pub target: Uuid,
    pub driver_volume_type: Option<String>,
    pub properties: Map<String, Value>,
    pub multiattach: bool,
}

impl NodeEvent {
    /// The schema version of most events (see [`NodeEvent::version`]).
    pub const VERSION: &'static str = "1.0";

    /// The schema version this event is written in. An event whose shape
    /// changes gets a higher version here and an upcaster in
    /// `domain::upcast` that rewrites older payloads when they are read.
    pub fn version(&self) -> &'static str {
        match self {
            NodeEvent::DeployFailed { .. } | NodeEvent::UndeployFailed { .. } => "1.1",
            _ => Self::VERSION,
        }
    }

    /// The variant name, as stored in the `event_type` column.
    pub fn name(&self) -> &'static str {
        use NodeEvent::*;
        match self {
            NodeEnrolled(_) => "NodeEnrolled",
            NodeRenamed { .. } => "NodeRenamed",
            NodeUpdated { .. } => "NodeUpdated",
            InterfaceSet { .. } => "InterfaceSet",
            StorageInterfaceSet { .. } => "StorageInterfaceSet",
            PropertiesUpdated { .. } => "PropertiesUpdated",
            InstanceInfoUpdated { .. } => "InstanceInfoUpdated",
            DriverInfoUpdated { .. } => "DriverInfoUpdated",
            DriverInternalInfoUpdated { .. } => "DriverInternalInfoUpdated",
            InstanceAssociated { .. } => "InstanceAssociated",
            MaintenanceSet { .. } => "MaintenanceSet",
            MaintenanceUnset => "MaintenanceUnset",
            PowerStateChanged { .. } => "PowerStateChanged",
            PowerChangeRequested { .. } => "PowerChangeRequested",
            BootDeviceSet { .. } => "BootDeviceSet",
            PowerChangeDone { .. } => "PowerChangeDone",
            PowerChangeFailed { .. } => "PowerChangeFailed",
            PortAdded { .. } => "PortAdded",
            PortUpdated { .. } => "PortUpdated",
            PortRemoved { .. } => "PortRemoved",
            ConnectorAdded { .. } => "ConnectorAdded",
            ConnectorUpdated { .. } => "ConnectorUpdated",
            ConnectorRemoved { .. } => "ConnectorRemoved",
            TargetCreated { .. } => "TargetCreated",
            TargetUpdated { .. } => "TargetUpdated",
            TargetDeleted { .. } => "TargetDeleted",
            ProvisionStateChanged(_) => "ProvisionStateChanged",
            DeployRequested { .. } => "DeployRequested",
            Deployed(_) => "Deployed",
            DeployFailed { .. } => "DeployFailed",
            AdoptFailed { .. } => "AdoptFailed",
            UndeployRequested(_) => "UndeployRequested",
            TargetsPurged { .. } => "TargetsPurged",
            ChildMoveStarted { .. } => "ChildMoveStarted",
            ChildMoveEnded { .. } => "ChildMoveEnded",
            Undeployed(_) => "Undeployed",
            UndeployFailed { .. } => "UndeployFailed",
            NodeDeleted { .. } => "NodeDeleted",
            VolumesAttached { .. } => "VolumesAttached",
            VolumesAttaching { .. } => "VolumesAttaching",
            VolumesDetached { .. } => "VolumesDetached",
            BootConfigWritten { .. } => "BootConfigWritten",
            BootConfigRemoved => "BootConfigRemoved",
            PowerStateSynced { .. } => "PowerStateSynced",
            PowerStateRestored { .. } => "PowerStateRestored",
            PowerStateRestoreFailed { .. } => "PowerStateRestoreFailed",
            PowerSyncFailed { .. } => "PowerSyncFailed",
            PowerFailureRecovered { .. } => "PowerFailureRecovered",
        }
    }

    /// The provision-state move this event records, if any.
    pub fn transition(&self) -> Option<&Transition> {
        use NodeEvent::*;
        match self {
            ProvisionStateChanged(t) | Deployed(t) | UndeployRequested(t) | Undeployed(t) => {
                Some(t)
            }
            DeployRequested { transition, .. }
            | DeployFailed { transition, .. }
            | AdoptFailed { transition, .. }
            | UndeployFailed { transition, .. } => Some(transition),
            _ => None,
        }
    }
}

impl DomainEvent for NodeEvent {
    fn event_type(&self) -> String {
        self.name().to_string()
    }

    fn event_version(&self) -> String {
        self.version().to_string()
    }
}
