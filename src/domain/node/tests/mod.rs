//! Unit tests of the `Node` aggregate, run through cqrs-es's `TestFramework`.
//!
//! `apply` holds no rules, so fixtures build histories directly: a node "in
//! state X" is an enrolment followed by one `ProvisionStateChanged` to X, with
//! the target Ironic shows in X (`docs/ironic-behaviour.md` §6.3). Expected outcomes are
//! written out by hand from `docs/ironic-behaviour.md`, never computed with the domain's
//! own tables, so a wrong table fails a test instead of agreeing with itself.
//!
//! - `lifecycle`: enrolment, provision verbs × states, process-manager
//!   outcomes, power, maintenance, deletion.
//! - `update`: `PATCH /v1/nodes/{node}`.
//! - `children`: ports, volume connectors and volume targets (§4.3, §7.5–§7.8).
//! - `claims`: cross-node uniqueness claims of each event.

mod children;
mod claims;
mod lifecycle;
mod moves;
mod sync;
mod update;

use super::commands::{NodeCommand, ProvisionRequest};
use super::entities::{Connector, Port, Target};
use super::events::{NodeEnrolled, NodeEvent, Transition};
use super::{Node, NodeServices};
use crate::domain::error::DomainError;
use crate::domain::hardware::HardwareCatalog;
use crate::domain::patch::PatchOp;
use crate::domain::state::{FsmEvent, ProvisionState};
use cqrs_es::test::TestFramework;
use cqrs_es::Aggregate;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use uuid::Uuid;

/// The node every test works on.
pub(super) const NODE: Uuid = Uuid::from_u128(0x1d6e_a5c1_0000_4000_8000_0000_0000_0001);
/// Some other node (for re-homing patches).
pub(super) const OTHER_NODE: Uuid = Uuid::from_u128(0x1d6e_a5c1_0000_4000_8000_0000_0000_0002);
/// An instance (Nova server) UUID.
pub(super) const INSTANCE: &str = "8b0b4bb5-6f9c-4c2a-9d0e-6f1f6a9a0b11";

/// Every provision state ironledger models (the domain's own list).
pub(super) const ALL_STATES: [ProvisionState; 20] = ProvisionState::ALL;

/// The target a node shows while in `state` (`docs/ironic-behaviour.md` §6.3; cleaning
/// states as after provide/undeploy).
pub(super) fn usual_target(state: ProvisionState) -> Option<ProvisionState> {
    use ProvisionState::*;
    match state {
        Enroll | Manageable | Available | Active | Error => None,
        Verifying | Inspecting | InspectWait | InspectFailed => Some(Manageable),
        Deploying | WaitCallBack | DeployFailed | DeployHold | Adopting | AdoptFailed => {
            Some(Active)
        }
        Cleaning | CleanWait | CleanFailed | CleanHold | Deleting => Some(Available),
    }
}

// ---- services ------------------------------------------------------------------

pub(super) fn services() -> NodeServices {
    NodeServices::default()
}

/// The default catalog with the `external` storage interface enabled, as a
/// boot-from-volume deployment configures it.
pub(super) fn bfv_catalog() -> HardwareCatalog {
    let mut catalog = HardwareCatalog::default();
    catalog
        .interfaces
        .get_mut("storage")
        .expect("storage kind")
        .enabled
        .push("external".into());
    catalog
}

pub(super) fn bfv_services() -> NodeServices {
    NodeServices {
        catalog: bfv_catalog(),
    }
}

// ---- running commands ----------------------------------------------------------

/// Runs a command against a history and returns what the aggregate decided.
pub(super) async fn run_with(
    services: NodeServices,
    given: Vec<NodeEvent>,
    command: NodeCommand,
) -> Result<Vec<NodeEvent>, DomainError> {
    TestFramework::<Node>::with(services)
        .given(given)
        .when_async(command)
        .await
        .inspect_result()
}

pub(super) async fn run(
    given: Vec<NodeEvent>,
    command: NodeCommand,
) -> Result<Vec<NodeEvent>, DomainError> {
    run_with(services(), given, command).await
}

/// Runs a command and returns the history extended with its events; panics if
/// the command is refused.
pub(super) async fn accept(mut given: Vec<NodeEvent>, command: NodeCommand) -> Vec<NodeEvent> {
    let label = format!("{command:?}");
    let events = run_with(bfv_services(), given.clone(), command)
        .await
        .unwrap_or_else(|e| panic!("{label} was refused: {e}"));
    given.extend(events);
    given
}

/// The node a history folds into.
pub(super) fn replay(events: &[NodeEvent]) -> Node {
    let mut node = Node::default();
    for e in events {
        node.apply(e.clone());
    }
    node
}

/// Ironic's `InvalidStateRequested` text for this node, written out in full.
pub(super) fn invalid_state(action: &str, state: &str) -> DomainError {
    DomainError::InvalidStateRequested(format!(
        "The requested action \"{action}\" can not be performed on node \"{NODE}\" while it is in state \"{state}\"."
    ))
}

// ---- histories -----------------------------------------------------------------

/// What `fake-hardware` resolves to with the default catalog and nothing asked.
pub(super) fn fake_hardware_interfaces() -> BTreeMap<String, String> {
    [
        ("bios", "fake"),
        ("boot", "ipxe"),
        ("console", "fake"),
        ("deploy", "direct"),
        ("firmware", "fake"),
        ("inspect", "fake"),
        ("management", "fake"),
        ("network", "flat"),
        ("power", "fake"),
        ("raid", "fake"),
        ("rescue", "fake"),
        ("storage", "noop"),
        ("vendor", "fake"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

pub(super) fn enrolled_event() -> NodeEnrolled {
    NodeEnrolled {
        uuid: NODE,
        name: Some("node-1".into()),
        driver: "fake-hardware".into(),
        interfaces: fake_hardware_interfaces(),
        properties: Map::new(),
        instance_info: Map::new(),
        driver_info: Map::new(),
        extra: Map::new(),
        fields: BTreeMap::new(),
        provision_state: ProvisionState::Enroll,
    }
}

pub(super) fn enrolled() -> NodeEvent {
    NodeEvent::NodeEnrolled(enrolled_event())
}

pub(super) fn enrolled_with(change: impl FnOnce(&mut NodeEnrolled)) -> NodeEvent {
    let mut e = enrolled_event();
    change(&mut e);
    NodeEvent::NodeEnrolled(e)
}

pub(super) fn tr(
    event: FsmEvent,
    from: ProvisionState,
    to: ProvisionState,
    target: Option<ProvisionState>,
) -> Transition {
    Transition {
        event,
        from,
        to,
        target,
    }
}

pub(super) fn psc(
    event: FsmEvent,
    from: ProvisionState,
    to: ProvisionState,
    target: Option<ProvisionState>,
) -> NodeEvent {
    NodeEvent::ProvisionStateChanged(tr(event, from, to, target))
}

/// Moves an enrolled node straight to `state` (with its usual target).
pub(super) fn moved_to(state: ProvisionState) -> NodeEvent {
    psc(
        FsmEvent::Manage,
        ProvisionState::Enroll,
        state,
        usual_target(state),
    )
}

/// An enrolled node in `state`.
pub(super) fn in_state(state: ProvisionState) -> Vec<NodeEvent> {
    let mut events = vec![enrolled()];
    if state != ProvisionState::Enroll {
        events.push(moved_to(state));
    }
    events
}

/// An enrolled node that can boot from a volume, as the guide sets one up:
/// `external` storage, the `iscsi_boot` capability, a PXE port, an IQN
/// connector and a boot-index-0 iSCSI target (a deploy of a node without
/// them is refused at the request).
pub(super) fn bootable() -> Vec<NodeEvent> {
    vec![
        enrolled_with(|e| {
            e.interfaces.insert("storage".into(), "external".into());
            e.properties
                .insert("capabilities".into(), "iscsi_boot:True".into());
        }),
        port_added(port(1)),
        connector_added(connector(1)),
        target_created(Target {
            properties: obj(serde_json::json!({
                "target_iqn": "iqn.2010-10.org.openstack:volume-1",
                "target_portal": "192.0.2.10:3260",
                "target_lun": 0,
            })),
            ..target(1, 0)
        }),
    ]
}

/// A [`bootable`] node in `state` (with its usual target).
pub(super) fn bootable_in(state: ProvisionState) -> Vec<NodeEvent> {
    let mut events = bootable();
    if state != ProvisionState::Enroll {
        events.push(moved_to(state));
    }
    events
}

/// `history` plus `extra`.
pub(super) fn and(
    mut history: Vec<NodeEvent>,
    extra: impl IntoIterator<Item = NodeEvent>,
) -> Vec<NodeEvent> {
    history.extend(extra);
    history
}

pub(super) fn powered(to: &str) -> NodeEvent {
    NodeEvent::PowerStateChanged {
        from: None,
        to: to.into(),
        at: None,
    }
}

pub(super) fn maintenance_on() -> NodeEvent {
    NodeEvent::MaintenanceSet {
        reason: Some("hands off".into()),
    }
}

pub(super) fn associated() -> NodeEvent {
    NodeEvent::InstanceAssociated {
        from: None,
        to: Some(INSTANCE.into()),
    }
}

// ---- children ------------------------------------------------------------------

pub(super) fn connector_uuid(n: u128) -> Uuid {
    Uuid::from_u128(0xc0_0000_0000_4000_8000_0000_0000_0000 + n)
}

pub(super) fn target_uuid(n: u128) -> Uuid {
    Uuid::from_u128(0x7a_0000_0000_4000_8000_0000_0000_0000 + n)
}

pub(super) fn port_uuid(n: u128) -> Uuid {
    Uuid::from_u128(0x90_0000_0000_4000_8000_0000_0000_0000 + n)
}

pub(super) fn iqn(n: u128) -> String {
    format!("iqn.2024-01.org.example:node{n}")
}

pub(super) fn connector(n: u128) -> Connector {
    Connector {
        uuid: connector_uuid(n),
        kind: "iqn".into(),
        connector_id: iqn(n),
        extra: Map::new(),
    }
}

pub(super) fn target(n: u128, boot_index: i64) -> Target {
    Target {
        uuid: target_uuid(n),
        volume_type: "iscsi".into(),
        boot_index,
        volume_id: format!("vol-{n}"),
        properties: Map::new(),
        extra: Map::new(),
    }
}

pub(super) fn port(n: u128) -> Port {
    Port {
        uuid: port_uuid(n),
        address: format!("52:54:00:00:00:{n:02x}"),
        pxe_enabled: true,
        extra: Map::new(),
        ..Default::default()
    }
}

pub(super) fn connector_added(c: Connector) -> NodeEvent {
    NodeEvent::ConnectorAdded { connector: c }
}

pub(super) fn target_created(t: Target) -> NodeEvent {
    NodeEvent::TargetCreated { target: t }
}

pub(super) fn port_added(p: Port) -> NodeEvent {
    NodeEvent::PortAdded { port: p }
}

// ---- commands ------------------------------------------------------------------

pub(super) fn provision(verb: &str) -> NodeCommand {
    let mut req = ProvisionRequest::verb(verb);
    if verb == "clean" {
        req.clean_steps =
            Some(serde_json::json!([{"interface": "deploy", "step": "erase_devices"}]));
    }
    NodeCommand::Provision(req)
}

pub(super) fn op(op: &str, path: &str, value: Option<Value>) -> PatchOp {
    PatchOp {
        op: op.into(),
        path: path.into(),
        value,
    }
}

pub(super) fn replace(path: &str, value: Value) -> PatchOp {
    op("replace", path, Some(value))
}

pub(super) fn add(path: &str, value: Value) -> PatchOp {
    op("add", path, Some(value))
}

pub(super) fn remove(path: &str) -> PatchOp {
    op("remove", path, None)
}

/// A JSON object from a `json!({...})` literal.
pub(super) fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}
