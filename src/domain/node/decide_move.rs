//! Moving a port, volume connector or volume target to another node.
//!
//! A patch that changes a record's `node_uuid` moves it from one aggregate to
//! another, and no single commit can change two aggregates. So a move is a
//! small saga of three commands, each one commit on one node, driven by
//! `Engine::move_child` and, if the process stops half-way, finished by the
//! process manager:
//!
//! 1. `StartMove` on the node the record leaves: the patch is applied to the
//!    record as it is *now*, and `ChildMoveStarted` (the intent: where to, the
//!    record before and after) is recorded together with the record's removal.
//!    From here the node lists the move in [`Node::moves_out`], and
//!    `needs_work` is true until it ends.
//! 2. `AdoptChild` on the node it moves to: the record is added with the
//!    same checks as a new one (and the power rule of an update). A repeat
//!    after a crash finds it already there and records nothing.
//! 3. `EndMove` on the node it left: `Landed`, or, if the other node refused
//!    it, the record is put back (`Restored`); if it cannot be put back
//!    either, the move ends `Lost` and the record as it was stays readable in
//!    step 1's event.
//!
//! The record's uniqueness claims (UUID, MAC, connector id) are released in
//! step 1 and taken again in step 2, as a removal and an addition take them.

use super::commands::{MoveResult, NewConnector, NewPort, NewTarget};
use super::entities::{ChildKind, ChildRecord, MoveOutcome};
use super::events::NodeEvent;
use super::Node;
use crate::domain::error::DomainError;
use crate::domain::patch::PatchOp;
use uuid::Uuid;

impl Node {
    /// Record `uuid` of `kind` as it is here and as it would land elsewhere
    /// with `ops` applied (operations on `node_uuid` excluded), with the rules
    /// of taking it away from this node: Ironic's deletion rule for
    /// connectors and targets (the move is a removal here).
    pub fn moving_record(
        &self,
        kind: ChildKind,
        uuid: Uuid,
        ops: &[PatchOp],
    ) -> Result<(ChildRecord, ChildRecord), DomainError> {
        let ops: Vec<PatchOp> = ops
            .iter()
            .filter(|o| o.root() != "node_uuid")
            .cloned()
            .collect();
        Ok(match kind {
            ChildKind::Port => {
                let (before, after) = self.patched_port(uuid, &ops)?;
                (ChildRecord::Port(before), ChildRecord::Port(after))
            }
            ChildKind::Connector => {
                let (before, after) = self.patched_connector(uuid, &ops)?;
                self.require_volume_delete_allowed("volume connector deletion")?;
                (
                    ChildRecord::Connector(before),
                    ChildRecord::Connector(after),
                )
            }
            ChildKind::Target => {
                let (before, after) = self.patched_target(uuid, &ops)?;
                self.require_volume_delete_allowed("volume target deletion")?;
                (ChildRecord::Target(before), ChildRecord::Target(after))
            }
        })
    }

    /// Whether this node would take `record` moving in: it exists, a volume
    /// record finds it powered off (Ironic's conductor checks the power state
    /// of the node a connector or target moves to), and the record passes
    /// the checks of a new one here.
    pub fn check_adopt(&self, record: &ChildRecord) -> Result<(), DomainError> {
        self.check_adopt_kind(record.kind())?;
        self.add_record(record.clone()).map(drop)
    }

    /// The part of [`check_adopt`](Self::check_adopt) that needs no record:
    /// the node exists and its power state lets a record of `kind` in. Ironic
    /// checks it before anything of the node the record leaves.
    pub fn check_adopt_kind(&self, kind: ChildKind) -> Result<(), DomainError> {
        if !self.exists {
            return Err(DomainError::NotFound(format!(
                "Node {} could not be found.",
                self.id()
            )));
        }
        match kind {
            ChildKind::Port => Ok(()),
            ChildKind::Connector => self.require_power_off("volume connector update"),
            ChildKind::Target => self.require_power_off("volume target update"),
        }
    }

    /// The events of adding `record` as a new record of this node.
    fn add_record(&self, record: ChildRecord) -> Result<Vec<NodeEvent>, DomainError> {
        match record {
            ChildRecord::Port(p) => self.add_port(NewPort {
                uuid: p.uuid,
                address: p.address,
                pxe_enabled: p.pxe_enabled,
                extra: p.extra,
                local_link_connection: p.local_link_connection,
                physical_network: p.physical_network,
                is_smartnic: p.is_smartnic,
            }),
            ChildRecord::Connector(c) => self.add_connector(NewConnector {
                uuid: c.uuid,
                kind: c.kind,
                connector_id: c.connector_id,
                extra: c.extra,
            }),
            ChildRecord::Target(t) => self.create_target(NewTarget {
                uuid: t.uuid,
                volume_type: t.volume_type,
                boot_index: t.boot_index,
                volume_id: t.volume_id,
                properties: t.properties,
                extra: t.extra,
            }),
        }
    }

    /// Whether one of this node's ports, connectors or targets is `uuid`.
    pub fn holds_record(&self, uuid: Uuid) -> bool {
        self.ports.iter().any(|p| p.uuid == uuid)
            || self.connectors.iter().any(|c| c.uuid == uuid)
            || self.targets.iter().any(|t| t.uuid == uuid)
    }

    /// Step 1: the intent and the removal, in one commit.
    pub(super) fn start_move(
        &self,
        kind: ChildKind,
        uuid: Uuid,
        to: Uuid,
        ops: &[PatchOp],
    ) -> Result<Vec<NodeEvent>, DomainError> {
        if Some(to) == self.uuid {
            return Err(DomainError::Invalid(format!(
                "A record of node {to} cannot move to the node it is on."
            )));
        }
        let (before, after) = self.moving_record(kind, uuid, ops)?;
        let removal = match &before {
            ChildRecord::Port(port) => NodeEvent::PortRemoved { port: port.clone() },
            ChildRecord::Connector(connector) => NodeEvent::ConnectorRemoved {
                connector: connector.clone(),
            },
            ChildRecord::Target(target) => NodeEvent::TargetDeleted {
                target: target.clone(),
            },
        };
        Ok(vec![
            NodeEvent::ChildMoveStarted { to, before, after },
            removal,
        ])
    }

    /// Step 2, on the node the record moves to.
    pub(super) fn adopt_child(&self, record: ChildRecord) -> Result<Vec<NodeEvent>, DomainError> {
        if self.exists && self.holds_record(record.uuid()) {
            return Ok(vec![]);
        }
        self.check_adopt(&record)?;
        self.add_record(record)
    }

    /// Step 3, on the node the record left; nothing if the move has ended.
    pub(super) fn end_move(
        &self,
        uuid: Uuid,
        result: MoveResult,
    ) -> Result<Vec<NodeEvent>, DomainError> {
        let Some(pending) = self.moves_out.iter().find(|m| m.before.uuid() == uuid) else {
            return Ok(vec![]);
        };
        let to = pending.to;
        let ended = |outcome| NodeEvent::ChildMoveEnded { uuid, to, outcome };
        Ok(match result {
            MoveResult::Landed => vec![ended(MoveOutcome::Landed)],
            MoveResult::Refused(reason) => match self.add_record(pending.before.clone()) {
                Ok(mut events) => {
                    events.push(ended(MoveOutcome::Restored { reason }));
                    events
                }
                Err(e) => vec![ended(MoveOutcome::Lost {
                    reason: format!("{reason}; putting it back failed: {e}"),
                })],
            },
            MoveResult::Lost(reason) => vec![ended(MoveOutcome::Lost { reason })],
        })
    }
}
