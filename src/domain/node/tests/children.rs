//! Ports, volume connectors and volume targets (`docs/ironic-behaviour.md`
//! §4.3, §7.5–§7.8):
//! creation has no state check, updates need the node powered off, deletion
//! needs manageable/enroll/adopt failed or power off, and maintenance changes
//! none of it.

use super::*;
use crate::domain::node::commands::{NewConnector, NewPort, NewTarget};
use serde_json::json;
use ProvisionState::*;

fn new_connector(n: u128) -> NewConnector {
    let c = connector(n);
    NewConnector {
        uuid: c.uuid,
        kind: c.kind,
        connector_id: c.connector_id,
        extra: c.extra,
    }
}

fn new_target(n: u128, boot_index: i64) -> NewTarget {
    let t = target(n, boot_index);
    NewTarget {
        uuid: t.uuid,
        volume_type: t.volume_type,
        boot_index: t.boot_index,
        volume_id: t.volume_id,
        properties: t.properties,
        extra: t.extra,
    }
}

fn new_port(n: u128, address: &str) -> NewPort {
    NewPort {
        uuid: port_uuid(n),
        address: address.into(),
        pxe_enabled: true,
        extra: Map::new(),
        ..Default::default()
    }
}

/// The power states a node can report, `None` (unknown) included.
const POWERS: [Option<&str>; 3] = [None, Some("power on"), Some("power off")];

/// A node in `state` with the given power state, optionally in maintenance,
/// owning `children`.
fn node(
    state: ProvisionState,
    power: Option<&str>,
    maintenance: bool,
    children: impl IntoIterator<Item = NodeEvent>,
) -> Vec<NodeEvent> {
    let mut h = in_state(state);
    if let Some(p) = power {
        h.push(powered(p));
    }
    if maintenance {
        h.push(maintenance_on());
    }
    h.extend(children);
    h
}

fn off(children: impl IntoIterator<Item = NodeEvent>) -> Vec<NodeEvent> {
    node(Active, Some("power off"), false, children)
}

fn on(children: impl IntoIterator<Item = NodeEvent>) -> Vec<NodeEvent> {
    node(Active, Some("power on"), false, children)
}

fn shown(power: Option<&str>) -> &str {
    power.unwrap_or("None")
}

// ---- ports ---------------------------------------------------------------------

#[tokio::test]
async fn a_port_is_added_with_its_mac_normalised() {
    TestFramework::<Node>::with(services())
        .given(on([]))
        .when_async(NodeCommand::AddPort(new_port(1, "52-54-00-AB-CD-01")))
        .await
        .then_expect_events(vec![port_added(Port {
            uuid: port_uuid(1),
            address: "52:54:00:ab:cd:01".into(),
            pxe_enabled: true,
            extra: Map::new(),
            ..Default::default()
        })]);
}

#[tokio::test]
async fn an_invalid_mac_is_refused() {
    for mac in [
        "zz",
        "52:54:00:ab:cd",
        "52:54:00:ab:cd:0g",
        "5254.00ab.cd01",
        "",
    ] {
        assert_eq!(
            run(in_state(Enroll), NodeCommand::AddPort(new_port(1, mac))).await,
            Err(DomainError::Invalid(format!(
                "Expected a MAC address but received {mac}."
            )))
        );
    }
}

#[tokio::test]
async fn a_duplicate_mac_or_uuid_on_the_node_is_a_conflict() {
    let history = and(in_state(Enroll), [port_added(port(1))]);
    TestFramework::<Node>::with(services())
        .given(history.clone())
        .when_async(NodeCommand::AddPort(new_port(2, "52:54:00:00:00:01")))
        .await
        .then_expect_error(DomainError::Conflict(
            "A port with MAC address 52:54:00:00:00:01 already exists.".into(),
        ));
    // The comparison is on the normalised form.
    TestFramework::<Node>::with(services())
        .given(history.clone())
        .when_async(NodeCommand::AddPort(new_port(2, "52-54-00-00-00-01")))
        .await
        .then_expect_error(DomainError::Conflict(
            "A port with MAC address 52:54:00:00:00:01 already exists.".into(),
        ));
    TestFramework::<Node>::with(services())
        .given(history)
        .when_async(NodeCommand::AddPort(new_port(1, "52:54:00:00:00:09")))
        .await
        .then_expect_error(DomainError::Conflict(format!(
            "A port with UUID {} already exists.",
            port_uuid(1)
        )));
}

#[tokio::test]
async fn a_port_is_patched() {
    let history = and(
        in_state(Manageable),
        [port_added(port(1)), port_added(port(2))],
    );
    let events = run(
        history.clone(),
        NodeCommand::PatchPort {
            uuid: port_uuid(1),
            ops: vec![
                replace("/address", json!("52:54:00:AA:BB:CC")),
                replace("/pxe_enabled", json!(false)),
                add("/extra/switch", json!("sw1")),
            ],
        },
    )
    .await
    .unwrap();
    let after = Port {
        uuid: port_uuid(1),
        address: "52:54:00:aa:bb:cc".into(),
        pxe_enabled: false,
        extra: obj(json!({"switch": "sw1"})),
        ..Default::default()
    };
    assert_eq!(
        events,
        vec![NodeEvent::PortUpdated {
            before: port(1),
            after: after.clone(),
        }]
    );
    assert_eq!(replay(&and(history, events)).ports, vec![after, port(2)]);
}

#[tokio::test]
async fn port_patches_are_checked() {
    let history = and(
        in_state(Manageable),
        [port_added(port(1)), port_added(port(2))],
    );
    let patch_port = |ops: Vec<PatchOp>| NodeCommand::PatchPort {
        uuid: port_uuid(1),
        ops,
    };
    let cases: Vec<(Vec<PatchOp>, DomainError)> = vec![
        (
            vec![replace("/address", json!("52:54:00:00:00:02"))],
            DomainError::Conflict("A port with MAC address 52:54:00:00:00:02 already exists.".into()),
        ),
        (
            vec![replace("/address", json!("nope"))],
            DomainError::Invalid("Expected a MAC address but received nope.".into()),
        ),
        (
            vec![replace("/pxe_enabled", json!("yes"))],
            DomainError::Invalid("Invalid pxe_enabled: \"yes\" is not of type 'boolean'".into()),
        ),
        (
            vec![replace("/node_uuid", json!("abc"))],
            DomainError::Invalid("Expected a UUID for node_uuid, but received abc.".into()),
        ),
        (
            vec![replace("/uuid", json!(port_uuid(9).to_string()))],
            DomainError::Invalid(
                "Cannot patch /uuid. Only the following can be updated: address, extra, is_smartnic, local_link_connection, node_uuid, physical_network, pxe_enabled."
                    .into(),
            ),
        ),
        (
            vec![remove("/address")],
            DomainError::Invalid("'address' is a required property".into()),
        ),
    ];
    for (ops, expected) in cases {
        assert_eq!(
            run(history.clone(), patch_port(ops.clone())).await,
            Err(expected),
            "{ops:?}"
        );
    }
    assert_eq!(
        run(
            history.clone(),
            patch_port(vec![replace("/address", json!("52:54:00:00:00:01"))])
        )
        .await,
        Ok(vec![])
    );
    assert_eq!(
        run(
            history,
            NodeCommand::PatchPort {
                uuid: port_uuid(7),
                ops: vec![add("/extra/a", json!(1))],
            }
        )
        .await,
        Err(DomainError::NotFound(format!(
            "Port {} could not be found.",
            port_uuid(7)
        )))
    );
}

/// Ironic's `update_port`: no new MAC while deployed, no `pxe_enabled` change
/// outside enroll/inspecting/inspect wait/manageable; maintenance lifts both.
#[tokio::test]
async fn port_updates_follow_the_node_state() {
    let mac = |state: ProvisionState, maintenance: bool| {
        node(state, Some("power on"), maintenance, [port_added(port(1))])
    };
    let new_mac = NodeCommand::PatchPort {
        uuid: port_uuid(1),
        ops: vec![replace("/address", json!("52:54:00:aa:bb:cc"))],
    };
    let no_pxe = NodeCommand::PatchPort {
        uuid: port_uuid(1),
        ops: vec![replace("/pxe_enabled", json!(false))],
    };
    let mac_refused = DomainError::Conflict(format!(
        "Cannot update hardware address for port {} as node {NODE} is active or has instance UUID assigned",
        port_uuid(1)
    ));
    let pxe_refused = |state: &str| {
        DomainError::Conflict(format!(
            "Port {} can not have any connectivity attributes (portgroup_id, pxe_enabled, local_link_connection, physical_network) updated unless node {NODE} is in a enroll, inspecting, inspect wait, manageable state or in maintenance mode. The current state is {state}.",
            port_uuid(1)
        ))
    };
    for state in ALL_STATES {
        let mac_result = run(mac(state, false), new_mac.clone()).await;
        if state == Active {
            assert_eq!(mac_result, Err(mac_refused.clone()), "{state}");
        } else {
            assert!(mac_result.is_ok(), "{state}: {mac_result:?}");
        }
        let pxe_result = run(mac(state, false), no_pxe.clone()).await;
        if [Enroll, Inspecting, InspectWait, Manageable].contains(&state) {
            assert!(pxe_result.is_ok(), "{state}: {pxe_result:?}");
        } else {
            assert_eq!(pxe_result, Err(pxe_refused(state.as_str())), "{state}");
        }
        // Setting it to the value it has counts as a change (Ironic's
        // objects mark a field changed when it is set).
        let same_pxe = NodeCommand::PatchPort {
            uuid: port_uuid(1),
            ops: vec![replace("/pxe_enabled", json!(true))],
        };
        assert_eq!(
            run(mac(state, false), same_pxe).await.is_ok(),
            pxe_result.is_ok(),
            "{state}"
        );
        // Maintenance lifts both rules.
        assert!(
            run(mac(state, true), new_mac.clone()).await.is_ok(),
            "{state}"
        );
        assert!(
            run(mac(state, true), no_pxe.clone()).await.is_ok(),
            "{state}"
        );
    }
    // An instance counts as deployed, whatever the state.
    let with_instance = and(
        mac(Manageable, false),
        [NodeEvent::InstanceAssociated {
            from: None,
            to: Some(INSTANCE.into()),
        }],
    );
    assert_eq!(
        run(with_instance, new_mac.clone()).await,
        Err(mac_refused.clone())
    );
    // extra may change in any state.
    let extra = NodeCommand::PatchPort {
        uuid: port_uuid(1),
        ops: vec![add("/extra/a", json!(1))],
    };
    assert!(run(mac(Active, false), extra).await.is_ok());
}

/// The link and the physical network are connectivity attributes like
/// `pxe_enabled`; `is_smartnic` is not. A link's `switch_id` is kept in lower
/// case however it is given.
#[tokio::test]
async fn port_network_fields_are_kept_and_gated() {
    let link = json!({"switch_id": "AA:BB:CC:DD:EE:FF", "port_id": "Eth1/1"});
    let events = run(
        in_state(Manageable),
        NodeCommand::AddPort(NewPort {
            local_link_connection: [("switch_id", "00000000ABCDEF01"), ("port_id", "p")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            physical_network: Some("physnet1".into()),
            is_smartnic: true,
            ..new_port(1, "52:54:00:00:00:01")
        }),
    )
    .await
    .expect("added");
    let NodeEvent::PortAdded { port: added } = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(added.local_link_connection["switch_id"], "00000000abcdef01");
    assert_eq!(added.physical_network.as_deref(), Some("physnet1"));
    assert!(added.is_smartnic);

    let patch = |ops: Vec<PatchOp>| NodeCommand::PatchPort {
        uuid: port_uuid(1),
        ops,
    };
    let set_link = patch(vec![replace("/local_link_connection", link.clone())]);
    let set_net = patch(vec![add("/physical_network", json!("physnet2"))]);
    let sub_path = patch(vec![add(
        "/local_link_connection/switch_info",
        json!("sw1"),
    )]);
    let smartnic = patch(vec![replace("/is_smartnic", json!(true))]);
    for state in [Manageable, Available, Active] {
        let history = || node(state, Some("power off"), false, [port_added(port(1))]);
        let gated = state != Manageable;
        for cmd in [&set_link, &set_net, &sub_path] {
            let result = run(history(), cmd.clone()).await;
            assert_eq!(result.is_err(), gated, "{state} {cmd:?}: {result:?}");
        }
        assert!(run(history(), smartnic.clone()).await.is_ok(), "{state}");
    }
    let events = run(
        node(Manageable, Some("power off"), false, [port_added(port(1))]),
        set_link,
    )
    .await
    .expect("patched");
    let NodeEvent::PortUpdated { after, .. } = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(
        after.local_link_connection["switch_id"],
        "aa:bb:cc:dd:ee:ff"
    );
    // Text only, and a physical network is never empty.
    let empty_network = run(
        in_state(Manageable),
        NodeCommand::AddPort(NewPort {
            physical_network: Some(String::new()),
            ..new_port(2, "52:54:00:00:00:02")
        }),
    )
    .await;
    assert!(
        matches!(empty_network, Err(DomainError::Invalid(_))),
        "{empty_network:?}"
    );
    for bad in [
        vec![add("/local_link_connection/port_id", json!(5))],
        vec![replace("/physical_network", json!(""))],
    ] {
        let result = run(
            node(Manageable, Some("power off"), false, [port_added(port(1))]),
            patch(bad.clone()),
        )
        .await;
        assert!(
            matches!(result, Err(DomainError::Invalid(_))),
            "{bad:?}: {result:?}"
        );
    }
}

/// A port recorded before the network fields were modelled reads back with
/// them empty, and a port without them is recorded as it was then.
#[test]
fn ports_recorded_before_the_network_fields_read_back() {
    let old = json!({"uuid": port_uuid(1), "address": "52:54:00:00:00:01", "pxe_enabled": true, "extra": {}});
    let read: Port = serde_json::from_value(old.clone()).expect("reads");
    assert!(read.local_link_connection.is_empty());
    assert_eq!(read.physical_network, None);
    assert!(!read.is_smartnic);
    assert_eq!(serde_json::to_value(&read).expect("writes"), old);
}

#[tokio::test]
async fn a_port_is_removed() {
    let history = and(in_state(Active), [port_added(port(1)), port_added(port(2))]);
    let events = run(
        history.clone(),
        NodeCommand::RemovePort { uuid: port_uuid(1) },
    )
    .await
    .unwrap();
    assert_eq!(events, vec![NodeEvent::PortRemoved { port: port(1) }]);
    assert_eq!(replay(&and(history.clone(), events)).ports, vec![port(2)]);
    assert_eq!(
        run(history, NodeCommand::RemovePort { uuid: port_uuid(3) }).await,
        Err(DomainError::NotFound(format!(
            "Port {} could not be found.",
            port_uuid(3)
        )))
    );
}

// ---- connectors: create --------------------------------------------------------

#[tokio::test]
async fn a_connector_is_added_in_any_state_and_power() {
    for state in ALL_STATES {
        for power in POWERS {
            for maintenance in [false, true] {
                assert_eq!(
                    run(
                        node(state, power, maintenance, []),
                        NodeCommand::AddConnector(new_connector(1))
                    )
                    .await,
                    Ok(vec![connector_added(connector(1))]),
                    "{state} {power:?} maintenance={maintenance}"
                );
            }
        }
    }
}

#[tokio::test]
async fn a_duplicate_connector_key_on_the_node_is_a_conflict() {
    let mut same_key = new_connector(2);
    same_key.connector_id = iqn(1);
    TestFramework::<Node>::with(services())
        .given(on([connector_added(connector(1))]))
        .when_async(NodeCommand::AddConnector(same_key))
        .await
        .then_expect_error(DomainError::Conflict(format!(
            "A volume connector with type iqn and connector ID {} already exists.",
            iqn(1)
        )));
    // Same id, other type: a different key.
    let mut other_type = new_connector(2);
    other_type.connector_id = iqn(1);
    other_type.kind = "ip".into();
    assert!(run(
        on([connector_added(connector(1))]),
        NodeCommand::AddConnector(other_type)
    )
    .await
    .is_ok());
}

#[tokio::test]
async fn a_duplicate_connector_uuid_is_a_conflict() {
    let mut same_uuid = new_connector(1);
    same_uuid.connector_id = iqn(5);
    TestFramework::<Node>::with(services())
        .given(on([connector_added(connector(1))]))
        .when_async(NodeCommand::AddConnector(same_uuid))
        .await
        .then_expect_error(DomainError::Conflict(format!(
            "A volume connector with UUID {} already exists.",
            connector_uuid(1)
        )));
}

// ---- connectors: update --------------------------------------------------------

fn patch_connector(ops: Vec<PatchOp>) -> NodeCommand {
    NodeCommand::PatchConnector {
        uuid: connector_uuid(1),
        ops,
    }
}

#[tokio::test]
async fn a_connector_is_patched_when_powered_off() {
    let history = off([connector_added(connector(1))]);
    let events = run(
        history.clone(),
        patch_connector(vec![
            replace("/connector_id", json!(iqn(9))),
            add("/extra/port", json!(3260)),
        ]),
    )
    .await
    .unwrap();
    let after = Connector {
        uuid: connector_uuid(1),
        kind: "iqn".into(),
        connector_id: iqn(9),
        extra: obj(json!({"port": 3260})),
    };
    assert_eq!(
        events,
        vec![NodeEvent::ConnectorUpdated {
            before: connector(1),
            after: after.clone(),
        }]
    );
    assert_eq!(replay(&and(history, events)).connectors, vec![after]);
}

#[tokio::test]
async fn a_connector_is_patched_only_when_powered_off_whatever_the_state() {
    for state in ALL_STATES {
        for power in POWERS {
            for maintenance in [false, true] {
                let got = run(
                    node(state, power, maintenance, [connector_added(connector(1))]),
                    patch_connector(vec![replace("/type", json!("ip"))]),
                )
                .await;
                let label = format!("{state} {power:?} maintenance={maintenance}");
                if power == Some("power off") {
                    assert!(
                        matches!(got.as_deref(), Ok([NodeEvent::ConnectorUpdated { .. }])),
                        "{label}: {got:?}"
                    );
                } else {
                    assert_eq!(
                        got,
                        Err(invalid_state("volume connector update", shown(power))),
                        "{label}"
                    );
                }
            }
        }
    }
}

#[tokio::test]
async fn a_null_power_state_fails_the_update_with_none() {
    TestFramework::<Node>::with(services())
        .given(node(Available, None, false, [connector_added(connector(1))]))
        .when_async(patch_connector(vec![add("/extra/a", json!(1))]))
        .await
        .then_expect_error(DomainError::InvalidStateRequested(format!(
            "The requested action \"volume connector update\" can not be performed on node \"{NODE}\" while it is in state \"None\"."
        )));
}

#[tokio::test]
async fn patching_onto_another_connectors_key_is_a_conflict() {
    let history = off([connector_added(connector(1)), connector_added(connector(2))]);
    TestFramework::<Node>::with(services())
        .given(history.clone())
        .when_async(patch_connector(vec![replace(
            "/connector_id",
            json!(iqn(2)),
        )]))
        .await
        .then_expect_error(DomainError::Conflict(format!(
            "A volume connector with type iqn and connector ID {} already exists.",
            iqn(2)
        )));
    // Its own key is fine.
    TestFramework::<Node>::with(services())
        .given(history)
        .when_async(patch_connector(vec![replace(
            "/connector_id",
            json!(iqn(1)),
        )]))
        .await
        .then_expect_events(vec![]);
}

#[tokio::test]
async fn a_connector_patch_is_validated_before_the_power_check() {
    // The API validates the patch (400) before the conductor checks power.
    let history = on([connector_added(connector(1))]);
    let cases: Vec<(Vec<PatchOp>, DomainError)> = vec![
        (
            vec![replace("/node_uuid", json!("not-a-uuid"))],
            DomainError::Invalid("Expected a UUID for node_uuid, but received not-a-uuid.".into()),
        ),
        (
            vec![replace("/uuid", json!(connector_uuid(9).to_string()))],
            DomainError::Invalid(
                "Cannot patch /uuid. Only the following can be updated: connector_id, extra, node_uuid, type."
                    .into(),
            ),
        ),
        (
            vec![replace("/type", json!(5))],
            DomainError::Invalid("Invalid type: 5 is not of type 'string'".into()),
        ),
        (
            vec![remove("/connector_id")],
            DomainError::Invalid("'connector_id' is a required property".into()),
        ),
        (
            vec![remove("/node_uuid")],
            DomainError::Invalid("'node_uuid' is a required property".into()),
        ),
        (
            vec![add("/foo", json!(1))],
            DomainError::Invalid(
                "Cannot patch /foo. Only the following can be updated: connector_id, extra, node_uuid, type."
                    .into(),
            ),
        ),
    ];
    for (ops, expected) in cases {
        assert_eq!(
            run(history.clone(), patch_connector(ops.clone())).await,
            Err(expected),
            "{ops:?}"
        );
    }
}

#[tokio::test]
async fn moving_a_connector_to_another_node_is_not_a_patch() {
    TestFramework::<Node>::with(services())
        .given(off([connector_added(connector(1))]))
        .when_async(patch_connector(vec![replace(
            "/node_uuid",
            json!(OTHER_NODE.to_string()),
        )]))
        .await
        .then_expect_error(DomainError::Conflict(format!(
            "Moving a resource to node {OTHER_NODE} must be requested as a move, not a patch of node {NODE}."
        )));
    // Naming its own node is a no-op.
    TestFramework::<Node>::with(services())
        .given(off([connector_added(connector(1))]))
        .when_async(patch_connector(vec![replace(
            "/node_uuid",
            json!(NODE.to_string()),
        )]))
        .await
        .then_expect_events(vec![]);
}

#[tokio::test]
async fn an_unknown_connector_is_not_found() {
    let missing = connector_uuid(8);
    let expected = DomainError::NotFound(format!("Volume connector {missing} could not be found."));
    assert_eq!(
        run(
            off([]),
            NodeCommand::PatchConnector {
                uuid: missing,
                ops: vec![add("/extra/a", json!(1))],
            }
        )
        .await,
        Err(expected.clone())
    );
    assert_eq!(
        run(off([]), NodeCommand::RemoveConnector { uuid: missing }).await,
        Err(expected)
    );
}

// ---- connectors and targets: delete --------------------------------------------

#[tokio::test]
async fn a_connector_is_deleted_only_in_some_states_or_powered_off() {
    for state in ALL_STATES {
        for power in POWERS {
            for maintenance in [false, true] {
                let got = run(
                    node(state, power, maintenance, [connector_added(connector(1))]),
                    NodeCommand::RemoveConnector {
                        uuid: connector_uuid(1),
                    },
                )
                .await;
                let label = format!("{state} {power:?} maintenance={maintenance}");
                if matches!(state, Manageable | Enroll | AdoptFailed) || power == Some("power off")
                {
                    assert_eq!(
                        got,
                        Ok(vec![NodeEvent::ConnectorRemoved {
                            connector: connector(1)
                        }]),
                        "{label}"
                    );
                } else {
                    assert_eq!(
                        got,
                        Err(invalid_state("volume connector deletion", shown(power))),
                        "{label}"
                    );
                }
            }
        }
    }
}

#[tokio::test]
async fn a_removed_connector_is_gone_from_the_node() {
    let history = off([connector_added(connector(1)), connector_added(connector(2))]);
    let events = run(
        history.clone(),
        NodeCommand::RemoveConnector {
            uuid: connector_uuid(1),
        },
    )
    .await
    .unwrap();
    assert_eq!(replay(&and(history, events)).connectors, vec![connector(2)]);
}

#[tokio::test]
async fn a_target_is_deleted_only_in_some_states_or_powered_off() {
    for state in ALL_STATES {
        for power in POWERS {
            for maintenance in [false, true] {
                let got = run(
                    node(state, power, maintenance, [target_created(target(1, 0))]),
                    NodeCommand::DeleteTarget {
                        uuid: target_uuid(1),
                    },
                )
                .await;
                let label = format!("{state} {power:?} maintenance={maintenance}");
                if matches!(state, Manageable | Enroll | AdoptFailed) || power == Some("power off")
                {
                    assert_eq!(
                        got,
                        Ok(vec![NodeEvent::TargetDeleted {
                            target: target(1, 0)
                        }]),
                        "{label}"
                    );
                } else {
                    assert_eq!(
                        got,
                        Err(invalid_state("volume target deletion", shown(power))),
                        "{label}"
                    );
                }
            }
        }
    }
}

#[tokio::test]
async fn deletion_messages_use_the_power_state() {
    TestFramework::<Node>::with(services())
        .given(on([target_created(target(1, 0))]))
        .when_async(NodeCommand::DeleteTarget {
            uuid: target_uuid(1),
        })
        .await
        .then_expect_error(DomainError::InvalidStateRequested(format!(
            "The requested action \"volume target deletion\" can not be performed on node \"{NODE}\" while it is in state \"power on\"."
        )));
    TestFramework::<Node>::with(services())
        .given(on([connector_added(connector(1))]))
        .when_async(NodeCommand::RemoveConnector {
            uuid: connector_uuid(1),
        })
        .await
        .then_expect_error(DomainError::InvalidStateRequested(format!(
            "The requested action \"volume connector deletion\" can not be performed on node \"{NODE}\" while it is in state \"power on\"."
        )));
}

// ---- targets: create -----------------------------------------------------------

#[tokio::test]
async fn a_target_is_created_in_any_state_and_power() {
    for state in ALL_STATES {
        for power in POWERS {
            assert_eq!(
                run(
                    node(state, power, false, []),
                    NodeCommand::CreateTarget(new_target(1, 0))
                )
                .await,
                Ok(vec![target_created(target(1, 0))]),
                "{state} {power:?}"
            );
        }
    }
}

#[tokio::test]
async fn boot_index_is_unique_per_node_on_create() {
    let history = on([target_created(target(1, 0))]);
    TestFramework::<Node>::with(services())
        .given(history.clone())
        .when_async(NodeCommand::CreateTarget(new_target(2, 0)))
        .await
        .then_expect_error(DomainError::Conflict(
            "A volume target with boot index '0' for the same node already exists.".into(),
        ));
    TestFramework::<Node>::with(services())
        .given(history.clone())
        .when_async(NodeCommand::CreateTarget(new_target(2, 1)))
        .await
        .then_expect_events(vec![target_created(target(2, 1))]);
    TestFramework::<Node>::with(services())
        .given(history.clone())
        .when_async(NodeCommand::CreateTarget(new_target(2, -1)))
        .await
        .then_expect_events(vec![target_created(target(2, -1))]);
    TestFramework::<Node>::with(services())
        .given(and(history, [target_created(target(2, -1))]))
        .when_async(NodeCommand::CreateTarget(new_target(3, -1)))
        .await
        .then_expect_error(DomainError::Conflict(
            "A volume target with boot index '-1' for the same node already exists.".into(),
        ));
}

#[tokio::test]
async fn a_duplicate_target_uuid_is_a_conflict() {
    TestFramework::<Node>::with(services())
        .given(on([target_created(target(1, 0))]))
        .when_async(NodeCommand::CreateTarget(new_target(1, 5)))
        .await
        .then_expect_error(DomainError::Conflict(format!(
            "A volume target with UUID {} already exists.",
            target_uuid(1)
        )));
}

#[tokio::test]
async fn a_boot_index_freed_by_deletion_can_be_reused() {
    let history = off([
        target_created(target(1, 0)),
        NodeEvent::TargetDeleted {
            target: target(1, 0),
        },
    ]);
    assert!(run(history, NodeCommand::CreateTarget(new_target(2, 0)))
        .await
        .is_ok());
}

// ---- targets: update -----------------------------------------------------------

fn patch_target(ops: Vec<PatchOp>) -> NodeCommand {
    NodeCommand::PatchTarget {
        uuid: target_uuid(1),
        ops,
    }
}

#[tokio::test]
async fn a_target_is_patched_when_powered_off() {
    let history = off([target_created(target(1, 0))]);
    let events = run(
        history.clone(),
        patch_target(vec![
            replace("/boot_index", json!(-3)),
            replace("/volume_id", json!("vol-9")),
            add("/properties/target_lun", json!(0)),
            replace("/volume_type", json!("fibre_channel")),
        ]),
    )
    .await
    .unwrap();
    let after = Target {
        uuid: target_uuid(1),
        volume_type: "fibre_channel".into(),
        boot_index: -3,
        volume_id: "vol-9".into(),
        properties: obj(json!({"target_lun": 0})),
        extra: Map::new(),
    };
    assert_eq!(
        events,
        vec![NodeEvent::TargetUpdated {
            before: target(1, 0),
            after: after.clone(),
        }]
    );
    assert_eq!(replay(&and(history, events)).targets, vec![after]);
}

#[tokio::test]
async fn a_target_is_patched_only_when_powered_off_whatever_the_state() {
    for state in ALL_STATES {
        for power in POWERS {
            for maintenance in [false, true] {
                let got = run(
                    node(state, power, maintenance, [target_created(target(1, 0))]),
                    patch_target(vec![add("/extra/a", json!(1))]),
                )
                .await;
                let label = format!("{state} {power:?} maintenance={maintenance}");
                if power == Some("power off") {
                    assert!(
                        matches!(got.as_deref(), Ok([NodeEvent::TargetUpdated { .. }])),
                        "{label}: {got:?}"
                    );
                } else {
                    assert_eq!(
                        got,
                        Err(invalid_state("volume target update", shown(power))),
                        "{label}"
                    );
                }
            }
        }
    }
}

#[tokio::test]
async fn boot_index_is_unique_per_node_on_patch() {
    let history = off([target_created(target(1, 0)), target_created(target(2, 1))]);
    TestFramework::<Node>::with(services())
        .given(history.clone())
        .when_async(patch_target(vec![replace("/boot_index", json!(1))]))
        .await
        .then_expect_error(DomainError::Conflict(
            "A volume target with boot index '1' for the same node already exists.".into(),
        ));
    // Keeping its own index is no conflict.
    TestFramework::<Node>::with(services())
        .given(history.clone())
        .when_async(patch_target(vec![replace("/boot_index", json!(0))]))
        .await
        .then_expect_events(vec![]);
    // Power is checked before uniqueness (the conductor saves last).
    TestFramework::<Node>::with(services())
        .given(on([
            target_created(target(1, 0)),
            target_created(target(2, 1)),
        ]))
        .when_async(patch_target(vec![replace("/boot_index", json!(1))]))
        .await
        .then_expect_error(invalid_state("volume target update", "power on"));
}

#[tokio::test]
async fn boot_index_must_be_an_integer() {
    let history = off([target_created(target(1, 0))]);
    for (value, shown) in [
        (json!("1"), "\"1\""),
        (json!(1.5), "1.5"),
        (json!(true), "true"),
        (json!([1]), "[1]"),
    ] {
        assert_eq!(
            run(
                history.clone(),
                patch_target(vec![replace("/boot_index", value)])
            )
            .await,
            Err(DomainError::Invalid(format!(
                "Invalid boot_index: {shown} is not of type 'integer'"
            )))
        );
    }
    assert_eq!(
        run(history, patch_target(vec![remove("/boot_index")])).await,
        Err(DomainError::Invalid(
            "'boot_index' is a required property".into()
        ))
    );
}

#[tokio::test]
async fn target_patches_are_checked() {
    let history = off([target_created(target(1, 0))]);
    let cases: Vec<(Vec<PatchOp>, DomainError)> = vec![
        (
            vec![replace("/uuid", json!(target_uuid(9).to_string()))],
            DomainError::Invalid(
                "Cannot patch /uuid. Only the following can be updated: boot_index, extra, node_uuid, properties, volume_id, volume_type."
                    .into(),
            ),
        ),
        (
            vec![replace("/node_uuid", json!("xyz"))],
            DomainError::Invalid("Expected a UUID for node_uuid, but received xyz.".into()),
        ),
        (
            vec![replace("/node_uuid", json!(OTHER_NODE.to_string()))],
            DomainError::Conflict(format!(
                "Moving a resource to node {OTHER_NODE} must be requested as a move, not a patch of node {NODE}."
            )),
        ),
        (
            vec![replace("/properties", json!("x"))],
            DomainError::Invalid("Invalid properties: \"x\" is not of type 'object'".into()),
        ),
        (
            vec![remove("/volume_id")],
            DomainError::Invalid("'volume_id' is a required property".into()),
        ),
    ];
    for (ops, expected) in cases {
        assert_eq!(
            run(history.clone(), patch_target(ops.clone())).await,
            Err(expected),
            "{ops:?}"
        );
    }
    assert_eq!(
        run(
            history,
            NodeCommand::PatchTarget {
                uuid: target_uuid(4),
                ops: vec![add("/extra/a", json!(1))],
            }
        )
        .await,
        Err(DomainError::NotFound(format!(
            "Volume target {} could not be found.",
            target_uuid(4)
        )))
    );
}
