//! Cross-node uniqueness claims (`domain::claims::node_event_claims`).

use super::*;
use crate::domain::claims::{
    conflict_message, node_event_claims, Claim, CONNECTOR, CONNECTOR_UUID, INSTANCE, NODE_NAME,
    PORT_ADDRESS, PORT_UUID, TARGET_UUID,
};
use crate::domain::node::commands::{NewConnector, NewPort, NewTarget};
use serde_json::json;
use Claim::*;
use FsmEvent as E;
use ProvisionState::*;

fn key(c: &Connector) -> String {
    format!("{}\n{}", c.kind, c.connector_id)
}

#[test]
fn enrolment_claims_the_name_if_any() {
    assert_eq!(
        node_event_claims(&enrolled()),
        vec![Acquire(NODE_NAME, "node-1".into())]
    );
    assert_eq!(node_event_claims(&enrolled_with(|e| e.name = None)), vec![]);
}

#[test]
fn renaming_releases_then_acquires() {
    let renamed = |from: Option<&str>, to: Option<&str>| NodeEvent::NodeRenamed {
        from: from.map(str::to_string),
        to: to.map(str::to_string),
    };
    assert_eq!(
        node_event_claims(&renamed(Some("a"), Some("b"))),
        vec![
            Release(NODE_NAME, "a".into()),
            Acquire(NODE_NAME, "b".into())
        ]
    );
    assert_eq!(
        node_event_claims(&renamed(None, Some("b"))),
        vec![Acquire(NODE_NAME, "b".into())]
    );
    assert_eq!(
        node_event_claims(&renamed(Some("a"), None)),
        vec![Release(NODE_NAME, "a".into())]
    );
}

#[test]
fn ports_claim_their_uuid_and_mac() {
    let p = port(1);
    assert_eq!(
        node_event_claims(&port_added(p.clone())),
        vec![
            Acquire(PORT_UUID, port_uuid(1).to_string()),
            Acquire(PORT_ADDRESS, "52:54:00:00:00:01".into()),
        ]
    );
    let mut moved = p.clone();
    moved.address = "52:54:00:00:00:99".into();
    assert_eq!(
        node_event_claims(&NodeEvent::PortUpdated {
            before: p.clone(),
            after: moved,
        }),
        vec![
            Release(PORT_ADDRESS, "52:54:00:00:00:01".into()),
            Acquire(PORT_ADDRESS, "52:54:00:00:00:99".into()),
        ]
    );
    let mut same_mac = p.clone();
    same_mac.pxe_enabled = false;
    same_mac.extra = obj(json!({"a": 1}));
    assert_eq!(
        node_event_claims(&NodeEvent::PortUpdated {
            before: p.clone(),
            after: same_mac,
        }),
        vec![]
    );
    assert_eq!(
        node_event_claims(&NodeEvent::PortRemoved { port: p }),
        vec![
            Release(PORT_UUID, port_uuid(1).to_string()),
            Release(PORT_ADDRESS, "52:54:00:00:00:01".into()),
        ]
    );
}

#[test]
fn connectors_claim_their_uuid_and_type_and_id() {
    let c = connector(1);
    assert_eq!(
        node_event_claims(&connector_added(c.clone())),
        vec![
            Acquire(CONNECTOR_UUID, connector_uuid(1).to_string()),
            Acquire(CONNECTOR, format!("iqn\n{}", iqn(1))),
        ]
    );
    let changes: [fn(&mut Connector); 2] = [|c| c.connector_id = iqn(2), |c| c.kind = "ip".into()];
    for change in changes {
        let mut after = c.clone();
        change(&mut after);
        assert_eq!(
            node_event_claims(&NodeEvent::ConnectorUpdated {
                before: c.clone(),
                after: after.clone(),
            }),
            vec![Release(CONNECTOR, key(&c)), Acquire(CONNECTOR, key(&after))]
        );
    }
    let mut extra_only = c.clone();
    extra_only.extra = obj(json!({"a": 1}));
    assert_eq!(
        node_event_claims(&NodeEvent::ConnectorUpdated {
            before: c.clone(),
            after: extra_only,
        }),
        vec![]
    );
    assert_eq!(
        node_event_claims(&NodeEvent::ConnectorRemoved {
            connector: c.clone()
        }),
        vec![
            Release(CONNECTOR_UUID, connector_uuid(1).to_string()),
            Release(CONNECTOR, key(&c)),
        ]
    );
}

#[test]
fn targets_claim_their_uuid() {
    let t = target(1, 0);
    assert_eq!(
        node_event_claims(&target_created(t.clone())),
        vec![Acquire(TARGET_UUID, target_uuid(1).to_string())]
    );
    let mut after = t.clone();
    after.boot_index = 3;
    after.volume_id = "vol-9".into();
    assert_eq!(
        node_event_claims(&NodeEvent::TargetUpdated {
            before: t.clone(),
            after,
        }),
        vec![]
    );
    assert_eq!(
        node_event_claims(&NodeEvent::TargetDeleted { target: t.clone() }),
        vec![Release(TARGET_UUID, target_uuid(1).to_string())]
    );
    assert_eq!(
        node_event_claims(&NodeEvent::TargetsPurged {
            targets: vec![t, target(2, 1)],
        }),
        vec![
            Release(TARGET_UUID, target_uuid(1).to_string()),
            Release(TARGET_UUID, target_uuid(2).to_string()),
        ]
    );
    assert_eq!(
        node_event_claims(&NodeEvent::TargetsPurged { targets: vec![] }),
        vec![]
    );
}

#[test]
fn node_deletion_releases_everything() {
    assert_eq!(
        node_event_claims(&NodeEvent::NodeDeleted {
            ports: vec![port(1)],
            connectors: vec![connector(1)],
            targets: vec![target(1, 0)],
        }),
        vec![ReleaseAll]
    );
    assert_eq!(
        node_event_claims(&NodeEvent::NodeDeleted {
            ports: vec![],
            connectors: vec![],
            targets: vec![],
        }),
        vec![ReleaseAll]
    );
}

#[test]
fn events_that_touch_no_unique_value_claim_nothing() {
    let t = tr(E::Deploy, Available, Deploying, Some(Active));
    let events = vec![
        NodeEvent::NodeUpdated {
            changes: [("description".to_string(), json!("d"))]
                .into_iter()
                .collect(),
        },
        NodeEvent::InterfaceSet {
            interface: "boot".into(),
            from: "ipxe".into(),
            to: "pxe".into(),
        },
        NodeEvent::StorageInterfaceSet {
            from: "noop".into(),
            to: "cinder".into(),
        },
        NodeEvent::PropertiesUpdated {
            before: Map::new(),
            after: obj(json!({"capabilities": "iscsi_boot:True"})),
        },
        NodeEvent::InstanceInfoUpdated {
            before: Map::new(),
            after: Map::new(),
        },
        NodeEvent::DriverInfoUpdated { after: Map::new() },
        NodeEvent::DriverInternalInfoUpdated {
            changes: BTreeMap::new(),
        },
        maintenance_on(),
        NodeEvent::MaintenanceUnset,
        powered("power on"),
        NodeEvent::ProvisionStateChanged(t.clone()),
        NodeEvent::DeployRequested {
            transition: t.clone(),
            rebuild: false,
        },
        NodeEvent::Deployed(t.clone()),
        NodeEvent::DeployFailed {
            transition: t.clone(),
            last_error: "e".into(),
        },
        NodeEvent::UndeployRequested(t.clone()),
        NodeEvent::UndeployFailed {
            transition: t,
            last_error: "e".into(),
        },
    ];
    for e in events {
        assert_eq!(node_event_claims(&e), vec![], "{}", e.name());
    }
}

/// One instance, one node: associating claims the instance UUID, clearing
/// releases it (the undeploy clears it out loud for that reason).
#[test]
fn an_instance_is_claimed_while_associated() {
    let i = "8b0b4bb5-6f9c-4c2a-9d0e-6f1f6a9a0b11".to_string();
    assert_eq!(
        node_event_claims(&associated()),
        vec![Claim::Acquire(INSTANCE, i.clone())]
    );
    assert_eq!(
        node_event_claims(&NodeEvent::InstanceAssociated {
            from: Some(i.clone()),
            to: None
        }),
        vec![Claim::Release(INSTANCE, i.clone())]
    );
    // An undeploy clears the instance; logs written before the undeploy
    // said so with an `InstanceAssociated` only have this event.
    let t = tr(E::Clean, Deleting, Cleaning, Some(Available));
    assert_eq!(
        node_event_claims(&NodeEvent::Undeployed(t)),
        vec![Claim::ReleaseScope(INSTANCE)]
    );
    assert_eq!(
        conflict_message(INSTANCE, &i, "n-2"),
        format!("Instance {i} is already associated with a node, it cannot be associated with this other node n-2")
    );
}

/// The aggregate's own duplicate messages are the ones the store gives for a
/// claim held by another node, so a client cannot tell which caught it.
#[tokio::test]
async fn in_node_conflicts_read_like_cross_node_claims() {
    let history = and(
        in_state(Available),
        [
            port_added(port(1)),
            connector_added(connector(1)),
            target_created(target(1, 0)),
        ],
    );
    let cases: Vec<(NodeCommand, &str, String)> = vec![
        (
            NodeCommand::AddPort(NewPort {
                uuid: port_uuid(2),
                address: "52:54:00:00:00:01".into(),
                pxe_enabled: true,
                extra: Map::new(),
                ..Default::default()
            }),
            PORT_ADDRESS,
            "52:54:00:00:00:01".into(),
        ),
        (
            NodeCommand::AddPort(NewPort {
                uuid: port_uuid(1),
                address: "52:54:00:00:00:02".into(),
                pxe_enabled: true,
                extra: Map::new(),
                ..Default::default()
            }),
            PORT_UUID,
            port_uuid(1).to_string(),
        ),
        (
            NodeCommand::AddConnector(NewConnector {
                uuid: connector_uuid(2),
                kind: "iqn".into(),
                connector_id: iqn(1),
                extra: Map::new(),
            }),
            CONNECTOR,
            key(&connector(1)),
        ),
        (
            NodeCommand::AddConnector(NewConnector {
                uuid: connector_uuid(1),
                kind: "iqn".into(),
                connector_id: iqn(2),
                extra: Map::new(),
            }),
            CONNECTOR_UUID,
            connector_uuid(1).to_string(),
        ),
        (
            NodeCommand::CreateTarget(NewTarget {
                uuid: target_uuid(1),
                volume_type: "iscsi".into(),
                boot_index: 4,
                volume_id: "v".into(),
                properties: Map::new(),
                extra: Map::new(),
            }),
            TARGET_UUID,
            target_uuid(1).to_string(),
        ),
    ];
    for (cmd, scope, k) in cases {
        assert_eq!(
            run(history.clone(), cmd).await,
            Err(DomainError::Conflict(conflict_message(
                scope,
                &k,
                &NODE.to_string()
            ))),
            "{scope}"
        );
    }
}

/// Claims of what the aggregate actually decides, end to end.
#[tokio::test]
async fn decided_events_carry_the_right_claims() {
    let renamed = run(
        in_state(Available),
        NodeCommand::Patch {
            ops: vec![replace("/name", json!("bfv-01"))],
        },
    )
    .await
    .unwrap();
    let claims: Vec<Claim> = renamed.iter().flat_map(node_event_claims).collect();
    assert_eq!(
        claims,
        vec![
            Release(NODE_NAME, "node-1".into()),
            Acquire(NODE_NAME, "bfv-01".into()),
        ]
    );

    let moved = run(
        and(
            in_state(Available),
            [powered("power off"), connector_added(connector(1))],
        ),
        NodeCommand::PatchConnector {
            uuid: connector_uuid(1),
            ops: vec![replace("/connector_id", json!(iqn(2)))],
        },
    )
    .await
    .unwrap();
    let claims: Vec<Claim> = moved.iter().flat_map(node_event_claims).collect();
    assert_eq!(
        claims,
        vec![
            Release(CONNECTOR, format!("iqn\n{}", iqn(1))),
            Acquire(CONNECTOR, format!("iqn\n{}", iqn(2))),
        ]
    );

    let purged = run(
        and(
            in_state(Deleting),
            [target_created(target(1, 0)), target_created(target(2, 1))],
        ),
        NodeCommand::PurgeTargets,
    )
    .await
    .unwrap();
    let claims: Vec<Claim> = purged.iter().flat_map(node_event_claims).collect();
    assert_eq!(
        claims,
        vec![
            Release(TARGET_UUID, target_uuid(1).to_string()),
            Release(TARGET_UUID, target_uuid(2).to_string()),
        ]
    );
}
