//! What can be asked of a node.
//!
//! Operators' requests (`Enroll`, `Patch…`, `Provision`, …) and the outcomes the
//! engine's process manager reports (`FinishDeploy`, `FailDeploy`, …) are both
//! commands: every change to a node goes through the same rules and ends up in
//! the same log.

use super::entities::{ChildKind, ChildRecord};
use crate::domain::patch::PatchOp;
use crate::domain::state::ProvisionState;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnrollNode {
    pub uuid: Uuid,
    pub name: Option<String>,
    pub driver: String,
    /// Requested interfaces by kind (`"storage"` → `Some("cinder")`); missing or
    /// `None` means "the default".
    #[serde(default)]
    pub interfaces: BTreeMap<String, Option<String>>,
    #[serde(default)]
    pub properties: Map<String, Value>,
    #[serde(default)]
    pub instance_info: Map<String, Value>,
    #[serde(default)]
    pub driver_info: Map<String, Value>,
    #[serde(default)]
    pub extra: Map<String, Value>,
    /// Other simple fields (see `Node::SIMPLE_FIELDS`).
    #[serde(default)]
    pub fields: BTreeMap<String, Value>,
    /// `enroll` for API ≥ 1.11, `available` for older clients.
    pub initial_state: ProvisionState,
}

impl EnrollNode {
    /// A node of `driver` with nothing else set: default interfaces, empty
    /// dictionaries, starting in `enroll` (API ≥ 1.11).
    pub fn new(uuid: Uuid, driver: &str) -> Self {
        EnrollNode {
            uuid,
            name: None,
            driver: driver.to_string(),
            interfaces: BTreeMap::new(),
            properties: Map::new(),
            instance_info: Map::new(),
            driver_info: Map::new(),
            extra: Map::new(),
            fields: BTreeMap::new(),
            initial_state: ProvisionState::Enroll,
        }
    }
}

/// What the node a record moved to did with it, as `EndMove` reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MoveResult {
    /// It took the record.
    Landed,
    /// It refused the record, for this reason: put it back here if possible.
    Refused(String),
    /// It refused the record and putting it back here failed as well.
    Lost(String),
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NewPort {
    pub uuid: Uuid,
    pub address: String,
    pub pxe_enabled: bool,
    #[serde(default)]
    pub extra: Map<String, Value>,
    #[serde(default)]
    pub local_link_connection: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub physical_network: Option<String>,
    #[serde(default)]
    pub is_smartnic: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewConnector {
    pub uuid: Uuid,
    pub kind: String,
    pub connector_id: String,
    #[serde(default)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewTarget {
    pub uuid: Uuid,
    pub volume_type: String,
    pub boot_index: i64,
    pub volume_id: String,
    #[serde(default)]
    pub properties: Map<String, Value>,
    #[serde(default)]
    pub extra: Map<String, Value>,
}

/// `PUT /v1/nodes/{node}/states/provision`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProvisionRequest {
    /// The verb as the client sent it: `manage`, `provide`, `active`/`deploy`,
    /// `deleted`/`undeploy`, `rebuild`, `abort`, `inspect`, `clean`, `adopt`.
    pub verb: String,
    #[serde(default)]
    pub configdrive: Option<Value>,
    #[serde(default)]
    pub clean_steps: Option<Value>,
    #[serde(default)]
    pub deploy_steps: Option<Value>,
}

impl ProvisionRequest {
    pub fn verb(verb: &str) -> Self {
        ProvisionRequest {
            verb: verb.to_string(),
            configdrive: None,
            clean_steps: None,
            deploy_steps: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum NodeCommand {
    Enroll(EnrollNode),
    /// JSON patch of the node's fields, applied to its current state.
    Patch {
        ops: Vec<PatchOp>,
    },
    SetMaintenance {
        reason: Option<String>,
    },
    UnsetMaintenance,
    SetPowerState {
        target: String,
        /// When (ISO 8601, as Ironic writes it): the node's
        /// `driver_internal_info.last_power_state_change`, given by the
        /// caller (the domain has no clock).
        #[serde(default)]
        at: Option<String>,
    },
    /// `PUT …/states/power` as the API takes it: on a node whose power
    /// interface drives a BMC, a request the process manager carries out
    /// (`PowerChangeRequested`); on any other node, the same as
    /// [`NodeCommand::SetPowerState`].
    RequestPower {
        target: String,
        /// Seconds the change may take (`timeout`); `None`: the default.
        timeout: Option<u64>,
        /// When the request came (ISO 8601), for a node without a BMC whose
        /// power state is recorded at once: its `last_power_state_change`.
        #[serde(default)]
        at: Option<String>,
    },
    Provision(ProvisionRequest),
    Delete,

    // Outcomes reported by the process manager.
    FinishDeploy,
    FailDeploy {
        error: String,
    },
    /// Adoption done (its boot configuration, if any, written): `active`.
    FinishAdopt,
    FailAdopt {
        error: String,
    },
    PurgeTargets,
    FinishUndeploy,
    FailUndeploy {
        error: String,
    },
    SetDriverInternalInfo {
        changes: BTreeMap<String, Option<Value>>,
    },
    /// The process manager is about to attach these volumes (deploying only).
    RecordAttachIntent {
        volume_ids: Vec<String>,
        /// The instance UUID the attachments are made for (`None`: the node's).
        owner: Option<String>,
    },
    /// Cinder attached these volumes (deploying only).
    RecordAttachments {
        attachments: Vec<crate::domain::node::events::VolumeAttachment>,
    },
    /// Cinder detached these volumes.
    RecordDetachments {
        volume_ids: Vec<String>,
    },
    /// The boot script was written (deploying only).
    RecordBootConfig {
        digest: String,
        macs: Vec<String>,
    },
    /// The boot script was removed.
    RecordBootConfigRemoved,
    /// The BMC reports the pending power request's target state (`at`: when,
    /// ISO 8601, for `driver_internal_info.last_power_state_change`).
    FinishPower {
        power_state: String,
        at: String,
    },
    /// The pending power request failed: `error` names the BMC action;
    /// `power_state` is what the BMC last reported, if it could be read.
    FailPower {
        error: String,
        power_state: Option<String>,
    },
    /// The node's BMC confirmed a power state the process manager asked for
    /// as a step of a deploy or undeploy (`at`: when, ISO 8601).
    RecordPowerState {
        power_state: String,
        at: String,
    },
    /// The node's BMC accepted this boot device (or, on a node without a BMC,
    /// the operator set it).
    RecordBootDevice {
        device: String,
        persistent: bool,
        mode: Option<String>,
    },

    AddPort(NewPort),
    PatchPort {
        uuid: Uuid,
        ops: Vec<PatchOp>,
    },
    RemovePort {
        uuid: Uuid,
    },

    AddConnector(NewConnector),
    PatchConnector {
        uuid: Uuid,
        ops: Vec<PatchOp>,
    },
    RemoveConnector {
        uuid: Uuid,
    },

    CreateTarget(NewTarget),
    PatchTarget {
        uuid: Uuid,
        ops: Vec<PatchOp>,
    },
    DeleteTarget {
        uuid: Uuid,
    },

    // Moving a child record to another node: three commands on two nodes,
    // run by `Engine::move_child` (see `decide_move`).
    /// On the node the record leaves: apply `ops` (without `node_uuid`) to
    /// record `uuid` of `kind`, record the intent to move it to `to`, and
    /// remove it here.
    StartMove {
        kind: ChildKind,
        uuid: Uuid,
        to: Uuid,
        ops: Vec<PatchOp>,
    },
    /// On the node the record moves to: take it (nothing, if it is here
    /// already: a move finished again after a crash).
    AdoptChild {
        from: Uuid,
        record: ChildRecord,
    },
    /// On the node the record left: end the pending move of `uuid`.
    EndMove {
        uuid: Uuid,
        result: MoveResult,
    },

    // Findings of the periodic power-state sync (`effects::power_sync`).
    /// The sync read `power_state` from the node's BMC at `at` (ISO 8601):
    /// recorded when nothing was, or when it differs and the sync does not
    /// force the recorded state back.
    SyncPowerState {
        power_state: String,
        at: String,
    },
    /// The sync found the BMC in `found` at `seen_at` and had it restore the
    /// recorded state, confirmed at `at`.
    RecordPowerRestored {
        found: String,
        seen_at: String,
        at: String,
    },
    /// The sync found the BMC in `found` at `seen_at`, and restoring the
    /// recorded state failed with `error` (names the BMC action).
    RecordPowerRestoreFailed {
        found: String,
        seen_at: String,
        error: String,
    },
    /// The sync's retries are spent: `power_state` is what the BMC reports
    /// (`None`: unreadable, `error` says why).
    FailPowerSync {
        power_state: Option<String>,
        error: Option<String>,
        at: String,
    },
    /// The BMC of a node in maintenance for a power failure reports
    /// `power_state` again (at `at`).
    RecoverPowerFailure {
        power_state: String,
        at: String,
    },
}

impl NodeCommand {
    /// The command's name (its variant), for logs and metrics: never its
    /// arguments, which may hold secrets.
    pub fn name(&self) -> &'static str {
        match self {
            NodeCommand::Enroll(_) => "Enroll",
            NodeCommand::Patch { .. } => "Patch",
            NodeCommand::SetMaintenance { .. } => "SetMaintenance",
            NodeCommand::UnsetMaintenance => "UnsetMaintenance",
            NodeCommand::SetPowerState { .. } => "SetPowerState",
            NodeCommand::RequestPower { .. } => "RequestPower",
            NodeCommand::Provision(_) => "Provision",
            NodeCommand::Delete => "Delete",
            NodeCommand::FinishDeploy => "FinishDeploy",
            NodeCommand::FailDeploy { .. } => "FailDeploy",
            NodeCommand::FinishAdopt => "FinishAdopt",
            NodeCommand::FailAdopt { .. } => "FailAdopt",
            NodeCommand::PurgeTargets => "PurgeTargets",
            NodeCommand::FinishUndeploy => "FinishUndeploy",
            NodeCommand::FailUndeploy { .. } => "FailUndeploy",
            NodeCommand::SetDriverInternalInfo { .. } => "SetDriverInternalInfo",
            NodeCommand::RecordAttachIntent { .. } => "RecordAttachIntent",
            NodeCommand::RecordAttachments { .. } => "RecordAttachments",
            NodeCommand::RecordDetachments { .. } => "RecordDetachments",
            NodeCommand::RecordBootConfig { .. } => "RecordBootConfig",
            NodeCommand::RecordBootConfigRemoved => "RecordBootConfigRemoved",
            NodeCommand::FinishPower { .. } => "FinishPower",
            NodeCommand::FailPower { .. } => "FailPower",
            NodeCommand::RecordPowerState { .. } => "RecordPowerState",
            NodeCommand::RecordBootDevice { .. } => "RecordBootDevice",
            NodeCommand::AddPort(_) => "AddPort",
            NodeCommand::PatchPort { .. } => "PatchPort",
            NodeCommand::RemovePort { .. } => "RemovePort",
            NodeCommand::AddConnector(_) => "AddConnector",
            NodeCommand::PatchConnector { .. } => "PatchConnector",
            NodeCommand::RemoveConnector { .. } => "RemoveConnector",
            NodeCommand::CreateTarget(_) => "CreateTarget",
            NodeCommand::PatchTarget { .. } => "PatchTarget",
            NodeCommand::DeleteTarget { .. } => "DeleteTarget",
            NodeCommand::StartMove { .. } => "StartMove",
            NodeCommand::AdoptChild { .. } => "AdoptChild",
            NodeCommand::EndMove { .. } => "EndMove",
            NodeCommand::SyncPowerState { .. } => "SyncPowerState",
            NodeCommand::RecordPowerRestored { .. } => "RecordPowerRestored",
            NodeCommand::RecordPowerRestoreFailed { .. } => "RecordPowerRestoreFailed",
            NodeCommand::FailPowerSync { .. } => "FailPowerSync",
            NodeCommand::RecoverPowerFailure { .. } => "RecoverPowerFailure",
        }
    }
}
