//! `PATCH /v1/nodes/{node}` (`docs/ironic-behaviour.md` §5.2).

use super::*;
use crate::api::error::HttpStatus; // status codes are the API's
use serde_json::json;
use ProvisionState::*;

fn patch(ops: Vec<PatchOp>) -> NodeCommand {
    NodeCommand::Patch { ops }
}

/// The node patch allow-list, sorted as the message lists it.
const ALLOWED: &str = "automated_clean, bios_interface, boot_interface, chassis_uuid, \
conductor_group, console_interface, deploy_interface, description, disable_power_off, driver, \
driver_info, extra, firmware_interface, inspect_interface, instance_info, instance_uuid, lessee, \
maintenance, management_interface, name, network_data, network_interface, owner, parent_node, \
power_interface, properties, protected, protected_reason, raid_interface, rescue_interface, \
resource_class, retired, retired_reason, shard, storage_interface, vendor_interface";

fn cannot_patch(path: &str) -> DomainError {
    DomainError::Invalid(format!(
        "Cannot patch {path}. Only the following can be updated: {ALLOWED}."
    ))
}

fn in_progress() -> DomainError {
    DomainError::Conflict(format!(
        "Node {NODE} can not be updated while a state transition is in progress."
    ))
}

fn interface_refused(field: &str, state: &str) -> DomainError {
    DomainError::Conflict(format!(
        "Node {NODE} can not have {field} updated unless it is in one of allowed (enroll, inspecting, inspect wait, manageable, available) states or in maintenance mode. Current state is '{state}'."
    ))
}

fn storage_set(from: &str, to: &str) -> NodeEvent {
    NodeEvent::StorageInterfaceSet {
        from: from.into(),
        to: to.into(),
    }
}

fn updated(field: &str, value: Value) -> NodeEvent {
    NodeEvent::NodeUpdated {
        changes: [(field.to_string(), value)].into_iter().collect(),
    }
}

/// States with a target that are not in UPDATE_ALLOWED_STATES: every patch is
/// refused there (409).
const IN_PROGRESS: [ProvisionState; 8] = [
    Deploying,
    WaitCallBack,
    DeployHold,
    Adopting,
    Cleaning,
    CleanWait,
    CleanHold,
    Deleting,
];

/// States in which interfaces may change without maintenance.
const INTERFACE_STATES: [ProvisionState; 5] =
    [Enroll, Inspecting, InspectWait, Manageable, Available];

// ---- allow-list and patch shape ------------------------------------------------

#[tokio::test]
async fn only_allow_listed_fields_can_be_patched() {
    for path in [
        "/uuid",
        "/provision_state",
        "/target_provision_state",
        "/power_state",
        "/last_error",
        "/maintenance_reason",
        "/driver_internal_info",
        "/driver_internal_info/boot_from_volume",
        "/traits",
        "/foo",
    ] {
        TestFramework::<Node>::with(services())
            .given(in_state(Available))
            .when_async(patch(vec![replace(path, json!("x"))]))
            .await
            .then_expect_error(cannot_patch(path));
    }
}

#[tokio::test]
async fn adding_at_the_root_is_refused_unless_the_field_exists() {
    // Unknown root attribute: the allow-list answers first (as in Ironic).
    TestFramework::<Node>::with(services())
        .given(in_state(Available))
        .when_async(patch(vec![add("/foo", json!(1))]))
        .await
        .then_expect_error(cannot_patch("/foo"));
    // Every allow-listed field exists on a node (null when unset), so `add`
    // of one acts as a replace.
    TestFramework::<Node>::with(services())
        .given(in_state(Available))
        .when_async(patch(vec![add("/description", json!("rack 4"))]))
        .await
        .then_expect_events(vec![updated("description", json!("rack 4"))]);
}

#[tokio::test]
async fn malformed_patches_are_refused() {
    for ops in [
        vec![],
        vec![op("move", "/name", None)],
        vec![op("test", "/name", Some(json!("node-1")))],
        vec![replace("name", json!("x"))],
        vec![
            replace("/name", json!("x")),
            op("copy", "/description", None),
        ],
        vec![remove("/instance_info/image_source")],
        vec![add("/properties/a/b", json!(1))],
    ] {
        let got = run(in_state(Available), patch(ops.clone())).await;
        assert!(
            matches!(got, Err(DomainError::Invalid(_))),
            "{ops:?}: {got:?}"
        );
    }
}

// ---- interfaces ----------------------------------------------------------------

#[tokio::test]
async fn storage_interface_changes_only_in_some_states() {
    for state in ALL_STATES {
        let got = run(
            in_state(state),
            patch(vec![replace("/storage_interface", json!("cinder"))]),
        )
        .await;
        let expected = if IN_PROGRESS.contains(&state) {
            Err(in_progress())
        } else if INTERFACE_STATES.contains(&state) {
            Ok(vec![storage_set("noop", "cinder")])
        } else {
            Err(interface_refused("storage_interface", state.as_str()))
        };
        assert_eq!(got, expected, "{state}");
    }
}

#[tokio::test]
async fn storage_interface_changes_in_any_settled_state_in_maintenance() {
    for state in ALL_STATES {
        let got = run(
            and(in_state(state), [maintenance_on()]),
            patch(vec![replace("/storage_interface", json!("cinder"))]),
        )
        .await;
        let expected = if IN_PROGRESS.contains(&state) {
            Err(in_progress())
        } else {
            Ok(vec![storage_set("noop", "cinder")])
        };
        assert_eq!(got, expected, "{state} in maintenance");
    }
}

#[tokio::test]
async fn interface_refusal_names_the_field() {
    TestFramework::<Node>::with(services())
        .given(in_state(Active))
        .when_async(patch(vec![replace("/boot_interface", json!("pxe"))]))
        .await
        .then_expect_error(interface_refused("boot_interface", "active"));
    TestFramework::<Node>::with(services())
        .given(in_state(Manageable))
        .when_async(patch(vec![replace("/boot_interface", json!("pxe"))]))
        .await
        .then_expect_events(vec![NodeEvent::InterfaceSet {
            interface: "boot".into(),
            from: "ipxe".into(),
            to: "pxe".into(),
        }]);
}

#[tokio::test]
async fn unknown_or_disabled_storage_interfaces_are_refused() {
    TestFramework::<Node>::with(services())
        .given(in_state(Manageable))
        .when_async(patch(vec![replace("/storage_interface", json!("external"))]))
        .await
        .then_expect_error(DomainError::Invalid(
            "Could not find the following interface in the 'ironic.hardware.interfaces.storage' entrypoint: external. Valid interfaces are ['cinder', 'noop'].".into(),
        ));
    let got = run(
        in_state(Manageable),
        patch(vec![replace("/storage_interface", json!("bogus"))]),
    )
    .await;
    assert_eq!(got.unwrap_err().status(), 400);
    let got = run(
        in_state(Manageable),
        patch(vec![replace("/storage_interface", json!(7))]),
    )
    .await;
    assert_eq!(got.unwrap_err().status(), 400);
    TestFramework::<Node>::with(bfv_services())
        .given(in_state(Manageable))
        .when_async(patch(vec![replace(
            "/storage_interface",
            json!("external"),
        )]))
        .await
        .then_expect_events(vec![storage_set("noop", "external")]);
}

#[tokio::test]
async fn the_interface_check_comes_after_the_name_check() {
    // An unusable name is a 400 even where a change would be a 409.
    let got = run(
        in_state(Active),
        patch(vec![replace("/storage_interface", json!("bogus"))]),
    )
    .await;
    assert_eq!(got.unwrap_err().status(), 400);
}

#[tokio::test]
async fn removing_an_interface_resets_it_to_the_default() {
    let cinder = enrolled_with(|e| {
        e.interfaces.insert("storage".into(), "cinder".into());
        e.interfaces.insert("boot".into(), "pxe".into());
    });
    let history = vec![cinder, moved_to(Available)];
    TestFramework::<Node>::with(services())
        .given(history.clone())
        .when_async(patch(vec![remove("/storage_interface")]))
        .await
        .then_expect_events(vec![storage_set("cinder", "noop")]);
    TestFramework::<Node>::with(services())
        .given(history.clone())
        .when_async(patch(vec![replace("/storage_interface", Value::Null)]))
        .await
        .then_expect_events(vec![storage_set("cinder", "noop")]);
    TestFramework::<Node>::with(services())
        .given(history)
        .when_async(patch(vec![remove("/boot_interface")]))
        .await
        .then_expect_events(vec![NodeEvent::InterfaceSet {
            interface: "boot".into(),
            from: "pxe".into(),
            to: "ipxe".into(),
        }]);
    // Removing an interface that already is the default changes nothing.
    TestFramework::<Node>::with(services())
        .given(in_state(Available))
        .when_async(patch(vec![remove("/storage_interface")]))
        .await
        .then_expect_events(vec![]);
}

#[tokio::test]
async fn a_storage_interface_change_is_folded_into_the_node() {
    let history = in_state(Available);
    let events = run(
        history.clone(),
        patch(vec![replace("/storage_interface", json!("cinder"))]),
    )
    .await
    .unwrap();
    assert_eq!(replay(&and(history, events)).interface("storage"), "cinder");
}

// ---- driver and simple fields --------------------------------------------------

#[tokio::test]
async fn the_driver_must_exist_and_cannot_be_removed() {
    TestFramework::<Node>::with(services())
        .given(in_state(Enroll))
        .when_async(patch(vec![replace("/driver", json!("idrac"))]))
        .await
        .then_expect_error(DomainError::Invalid(
            "Could not find the following driver(s) or hardware type(s): idrac.".into(),
        ));
    TestFramework::<Node>::with(services())
        .given(in_state(Enroll))
        .when_async(patch(vec![remove("/driver")]))
        .await
        .then_expect_error(DomainError::Invalid(
            "'driver' is a required property".into(),
        ));
}

#[tokio::test]
async fn a_driver_change_re_resolves_unsupported_interfaces() {
    let history = in_state(Enroll);
    let events = run(
        history.clone(),
        patch(vec![replace("/driver", json!("manual-management"))]),
    )
    .await
    .unwrap();
    assert_eq!(
        events.last(),
        Some(&updated("driver", json!("manual-management")))
    );
    let node = replay(&and(history, events));
    assert_eq!(node.driver, "manual-management");
    assert_eq!(node.interface("bios"), "no-bios");
    assert_eq!(node.interface("boot"), "ipxe");
    assert_eq!(node.interface("management"), "noop");
    assert_eq!(node.interface("storage"), "noop");
}

#[tokio::test]
async fn simple_fields_are_set_type_checked_and_unset() {
    TestFramework::<Node>::with(services())
        .given(in_state(Available))
        .when_async(patch(vec![
            replace("/description", json!("rack 4")),
            replace("/automated_clean", json!(false)),
        ]))
        .await
        .then_expect_events(vec![NodeEvent::NodeUpdated {
            changes: [
                ("automated_clean".to_string(), json!(false)),
                ("description".to_string(), json!("rack 4")),
            ]
            .into_iter()
            .collect(),
        }]);
    TestFramework::<Node>::with(services())
        .given(in_state(Available))
        .when_async(patch(vec![replace("/automated_clean", json!("yes"))]))
        .await
        .then_expect_error(DomainError::Invalid(
            "Invalid value for automated_clean: \"yes\"".into(),
        ));
    let with_description = and(
        in_state(Available),
        [updated("description", json!("rack 4"))],
    );
    let events = run(
        with_description.clone(),
        patch(vec![remove("/description")]),
    )
    .await
    .unwrap();
    assert_eq!(events, vec![updated("description", Value::Null)]);
    assert!(!replay(&and(with_description, events))
        .fields
        .contains_key("description"));
}

#[tokio::test]
async fn extra_and_driver_info_are_recorded_whole() {
    TestFramework::<Node>::with(services())
        .given(in_state(Available))
        .when_async(patch(vec![add("/extra/team", json!("storage"))]))
        .await
        .then_expect_events(vec![updated("extra", json!({"team": "storage"}))]);
    TestFramework::<Node>::with(services())
        .given(in_state(Available))
        .when_async(patch(vec![add("/driver_info/deploy_kernel", json!("k"))]))
        .await
        .then_expect_events(vec![NodeEvent::DriverInfoUpdated {
            after: obj(json!({"deploy_kernel": "k"})),
        }]);
}

// ---- properties, instance_info, name, instance_uuid ----------------------------

#[tokio::test]
async fn capabilities_are_added_to_properties() {
    let history = and(
        in_state(Available),
        [NodeEvent::PropertiesUpdated {
            before: Map::new(),
            after: obj(json!({"cpus": 4})),
        }],
    );
    let events = run(
        history.clone(),
        patch(vec![add(
            "/properties/capabilities",
            json!("iscsi_boot:True"),
        )]),
    )
    .await
    .unwrap();
    assert_eq!(
        events,
        vec![NodeEvent::PropertiesUpdated {
            before: obj(json!({"cpus": 4})),
            after: obj(json!({"cpus": 4, "capabilities": "iscsi_boot:True"})),
        }]
    );
    let node = replay(&and(history, events));
    assert_eq!(
        node.properties.get("capabilities"),
        Some(&json!("iscsi_boot:True"))
    );
}

#[tokio::test]
async fn image_source_is_removed_from_instance_info() {
    let before = obj(json!({"image_source": "http://img/x.qcow2", "root_gb": 10}));
    let history = and(
        in_state(Available),
        [NodeEvent::InstanceInfoUpdated {
            before: Map::new(),
            after: before.clone(),
        }],
    );
    let events = run(
        history.clone(),
        patch(vec![remove("/instance_info/image_source")]),
    )
    .await
    .unwrap();
    assert_eq!(
        events,
        vec![NodeEvent::InstanceInfoUpdated {
            before,
            after: obj(json!({"root_gb": 10})),
        }]
    );
    let node = replay(&and(history, events));
    assert!(!node.instance_info.contains_key("image_source"));
}

#[tokio::test]
async fn renaming_records_the_old_and_new_names() {
    TestFramework::<Node>::with(services())
        .given(in_state(Active))
        .when_async(patch(vec![replace("/name", json!("bfv-01"))]))
        .await
        .then_expect_events(vec![NodeEvent::NodeRenamed {
            from: Some("node-1".into()),
            to: Some("bfv-01".into()),
        }]);
    TestFramework::<Node>::with(services())
        .given(in_state(Active))
        .when_async(patch(vec![remove("/name")]))
        .await
        .then_expect_events(vec![NodeEvent::NodeRenamed {
            from: Some("node-1".into()),
            to: None,
        }]);
    for bad in ["bad name", "4a1f9a3e-8e4b-4a47-a2b4-8d9b1c6f6b11", ""] {
        assert_eq!(
            run(in_state(Active), patch(vec![replace("/name", json!(bad))])).await,
            Err(DomainError::Invalid(format!(
                "Cannot update node with invalid name '{bad}'"
            )))
        );
    }
    let history = and(
        in_state(Active),
        [NodeEvent::NodeRenamed {
            from: Some("node-1".into()),
            to: Some("bfv-01".into()),
        }],
    );
    assert_eq!(replay(&history).name.as_deref(), Some("bfv-01"));
}

#[tokio::test]
async fn instance_uuid_must_be_a_uuid() {
    TestFramework::<Node>::with(services())
        .given(in_state(Available))
        .when_async(patch(vec![replace("/instance_uuid", json!("not-a-uuid"))]))
        .await
        .then_expect_error(DomainError::Invalid(
            "Expected a UUID but received not-a-uuid.".into(),
        ));
    TestFramework::<Node>::with(services())
        .given(in_state(Available))
        .when_async(patch(vec![add("/instance_uuid", json!(INSTANCE))]))
        .await
        .then_expect_events(vec![associated()]);
    TestFramework::<Node>::with(services())
        .given(and(in_state(Active), [associated()]))
        .when_async(patch(vec![remove("/instance_uuid")]))
        .await
        .then_expect_events(vec![NodeEvent::InstanceAssociated {
            from: Some(INSTANCE.into()),
            to: None,
        }]);
}

#[tokio::test]
async fn an_instance_is_never_swapped_for_another() {
    // Ironic's NodeAssociated (409): clear it first, then set the new one.
    let other = "11111111-2222-3333-4444-555555555555";
    TestFramework::<Node>::with(services())
        .given(and(in_state(Active), [associated()]))
        .when_async(patch(vec![replace("/instance_uuid", json!(other))]))
        .await
        .then_expect_error(DomainError::Conflict(format!(
            "Node {NODE} is associated with instance {INSTANCE}."
        )));
    TestFramework::<Node>::with(services())
        .given(and(in_state(Available), [associated()]))
        .when_async(patch(vec![add("/instance_uuid", json!(other))]))
        .await
        .then_expect_error(DomainError::Conflict(format!(
            "Node {NODE} is associated with instance {INSTANCE}."
        )));
}

// ---- transitions in progress ---------------------------------------------------

#[tokio::test]
async fn no_patch_while_a_transition_is_in_progress() {
    for state in ALL_STATES {
        let got = run(in_state(state), patch(vec![add("/extra/note", json!("x"))])).await;
        if IN_PROGRESS.contains(&state) {
            assert_eq!(got, Err(in_progress()), "{state}");
        } else {
            assert_eq!(
                got,
                Ok(vec![updated("extra", json!({"note": "x"}))]),
                "{state}"
            );
        }
    }
}

#[tokio::test]
async fn deploying_refuses_and_deploy_failed_allows() {
    let with_image = |state| {
        and(
            in_state(state),
            [NodeEvent::InstanceInfoUpdated {
                before: Map::new(),
                after: obj(json!({"image_source": "img"})),
            }],
        )
    };
    TestFramework::<Node>::with(services())
        .given(with_image(Deploying))
        .when_async(patch(vec![remove("/instance_info/image_source")]))
        .await
        .then_expect_error(in_progress());
    TestFramework::<Node>::with(services())
        .given(with_image(DeployFailed))
        .when_async(patch(vec![remove("/instance_info/image_source")]))
        .await
        .then_expect_events(vec![NodeEvent::InstanceInfoUpdated {
            before: obj(json!({"image_source": "img"})),
            after: Map::new(),
        }]);
}

#[tokio::test]
async fn in_maintenance_instance_uuid_can_be_removed_mid_transition() {
    let history = and(in_state(Deploying), [associated(), maintenance_on()]);
    TestFramework::<Node>::with(services())
        .given(history.clone())
        .when_async(patch(vec![remove("/instance_uuid")]))
        .await
        .then_expect_events(vec![NodeEvent::InstanceAssociated {
            from: Some(INSTANCE.into()),
            to: None,
        }]);
    // Only that removal, and only in maintenance.
    TestFramework::<Node>::with(services())
        .given(history)
        .when_async(patch(vec![
            remove("/instance_uuid"),
            add("/extra/x", json!(1)),
        ]))
        .await
        .then_expect_error(in_progress());
    TestFramework::<Node>::with(services())
        .given(and(in_state(Deploying), [associated()]))
        .when_async(patch(vec![remove("/instance_uuid")]))
        .await
        .then_expect_error(in_progress());
}

// ---- maintenance via patch -----------------------------------------------------

#[tokio::test]
async fn maintenance_can_be_patched() {
    TestFramework::<Node>::with(services())
        .given(in_state(Active))
        .when_async(patch(vec![replace("/maintenance", json!(true))]))
        .await
        .then_expect_events(vec![NodeEvent::MaintenanceSet { reason: None }]);
    TestFramework::<Node>::with(services())
        .given(in_state(Active))
        .when_async(patch(vec![replace("/maintenance", json!("True"))]))
        .await
        .then_expect_events(vec![NodeEvent::MaintenanceSet { reason: None }]);
    TestFramework::<Node>::with(services())
        .given(and(in_state(Active), [maintenance_on()]))
        .when_async(patch(vec![replace("/maintenance", json!(false))]))
        .await
        .then_expect_events(vec![NodeEvent::MaintenanceUnset]);
    TestFramework::<Node>::with(services())
        .given(in_state(Active))
        .when_async(patch(vec![replace("/maintenance", json!("maybe"))]))
        .await
        .then_expect_error(DomainError::Invalid(
            "Invalid value for maintenance: \"maybe\"".into(),
        ));
    TestFramework::<Node>::with(services())
        .given(in_state(Deploying))
        .when_async(patch(vec![replace("/maintenance", json!(true))]))
        .await
        .then_expect_error(in_progress());
}

#[tokio::test]
async fn maintenance_patched_on_lets_the_same_patch_change_an_interface() {
    TestFramework::<Node>::with(services())
        .given(in_state(Active))
        .when_async(patch(vec![
            replace("/maintenance", json!(true)),
            replace("/storage_interface", json!("cinder")),
        ]))
        .await
        .then_expect_events(vec![
            NodeEvent::MaintenanceSet { reason: None },
            storage_set("noop", "cinder"),
        ]);
    TestFramework::<Node>::with(services())
        .given(and(in_state(Active), [maintenance_on()]))
        .when_async(patch(vec![
            replace("/maintenance", json!(false)),
            replace("/storage_interface", json!("cinder")),
        ]))
        .await
        .then_expect_error(interface_refused("storage_interface", "active"));
}

// ---- whole patches -------------------------------------------------------------

#[tokio::test]
async fn a_patch_that_changes_nothing_records_nothing() {
    let history = and(
        in_state(Available),
        [NodeEvent::PropertiesUpdated {
            before: Map::new(),
            after: obj(json!({"capabilities": "iscsi_boot:True"})),
        }],
    );
    for ops in [
        vec![replace("/name", json!("node-1"))],
        vec![replace("/storage_interface", json!("noop"))],
        vec![add("/properties/capabilities", json!("iscsi_boot:True"))],
        vec![replace("/maintenance", json!(false))],
        vec![replace("/driver", json!("fake-hardware"))],
        vec![remove("/instance_uuid")],
        vec![add("/extra/x", json!(1)), remove("/extra/x")],
    ] {
        assert_eq!(
            run(history.clone(), patch(ops.clone())).await,
            Ok(vec![]),
            "{ops:?}"
        );
    }
}

#[tokio::test]
async fn one_patch_records_one_event_per_kind_of_change() {
    TestFramework::<Node>::with(services())
        .given(in_state(Available))
        .when_async(patch(vec![
            add("/instance_info/root_gb", json!(10)),
            replace("/name", json!("bfv-01")),
            add("/driver_info/deploy_kernel", json!("k")),
            replace("/instance_uuid", json!(INSTANCE)),
            replace("/description", json!("d")),
            add("/extra/x", json!(1)),
            add("/properties/capabilities", json!("iscsi_boot:True")),
            replace("/storage_interface", json!("cinder")),
        ]))
        .await
        .then_expect_events(vec![
            NodeEvent::NodeRenamed {
                from: Some("node-1".into()),
                to: Some("bfv-01".into()),
            },
            storage_set("noop", "cinder"),
            updated("description", json!("d")),
            NodeEvent::PropertiesUpdated {
                before: Map::new(),
                after: obj(json!({"capabilities": "iscsi_boot:True"})),
            },
            NodeEvent::InstanceInfoUpdated {
                before: Map::new(),
                after: obj(json!({"root_gb": 10})),
            },
            NodeEvent::DriverInfoUpdated {
                after: obj(json!({"deploy_kernel": "k"})),
            },
            updated("extra", json!({"x": 1})),
            associated(),
        ]);
}

#[tokio::test]
async fn one_bad_operation_refuses_the_whole_patch() {
    TestFramework::<Node>::with(services())
        .given(in_state(Available))
        .when_async(patch(vec![
            replace("/name", json!("bfv-01")),
            replace("/instance_uuid", json!("nope")),
        ]))
        .await
        .then_expect_error(DomainError::Invalid(
            "Expected a UUID but received nope.".into(),
        ));
}

// ---- protected / retired (Ironic's conductor `_check_update_protected/_retired`) --

fn with_fields(state: ProvisionState, fields: &[(&str, Value)]) -> Vec<NodeEvent> {
    let changes: BTreeMap<String, Value> = fields
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    and(in_state(state), [NodeEvent::NodeUpdated { changes }])
}

#[tokio::test]
async fn protected_can_only_be_set_on_active_nodes() {
    let got = run(
        in_state(Active),
        patch(vec![replace("/protected", json!(true))]),
    )
    .await;
    assert_eq!(got, Ok(vec![updated("protected", json!(true))]));
    for state in [Manageable, Available, Enroll, DeployFailed] {
        let got = run(
            in_state(state),
            patch(vec![replace("/protected", json!(true))]),
        )
        .await;
        assert_eq!(
            got,
            Err(DomainError::Conflict(format!(
                "Node {NODE} can only be made protected in provision states 'active' or 'rescue', the current state is '{state}'"
            ))),
            "{state}"
        );
    }
}

#[tokio::test]
async fn a_reason_needs_its_flag_and_clearing_the_flag_clears_the_reason() {
    let got = run(
        in_state(Active),
        patch(vec![replace("/protected_reason", json!("why"))]),
    )
    .await;
    assert_eq!(
        got,
        Err(DomainError::Invalid(
            "The protected_reason field can only be set when protected is True".into()
        ))
    );
    let got = run(
        in_state(Active),
        patch(vec![replace("/retired_reason", json!("old"))]),
    )
    .await;
    assert_eq!(
        got,
        Err(DomainError::Invalid(
            "The retired_reason field can only be set when retired is True".into()
        ))
    );
    let on = with_fields(
        Active,
        &[
            ("protected", json!(true)),
            ("protected_reason", json!("prod")),
        ],
    );
    let events = run(on.clone(), patch(vec![replace("/protected", json!(false))]))
        .await
        .unwrap();
    let node = replay(&and(on, events));
    assert!(!node.is_protected());
    assert_eq!(node.fields.get("protected_reason"), None);
    // Both at once: the flag wins, as in Ironic.
    let got = run(
        in_state(Active),
        patch(vec![
            replace("/protected", json!(true)),
            replace("/protected_reason", json!("prod")),
        ]),
    )
    .await
    .unwrap();
    let node = replay(&and(in_state(Active), got));
    assert!(node.is_protected());
    assert_eq!(node.fields["protected_reason"], json!("prod"));
}

#[tokio::test]
async fn retired_cannot_be_set_on_available_nodes() {
    let got = run(
        in_state(Available),
        patch(vec![replace("/retired", json!(true))]),
    )
    .await;
    assert_eq!(
        got,
        Err(DomainError::Conflict(format!(
            "Node {NODE} can not have 'retired' set in provision state 'available', the current state is 'available'"
        )))
    );
    let events = run(
        in_state(Manageable),
        patch(vec![
            replace("/retired", json!(true)),
            replace("/retired_reason", json!("eol")),
        ]),
    )
    .await
    .unwrap();
    let node = replay(&and(in_state(Manageable), events.clone()));
    assert!(node.is_retired());
    assert_eq!(node.fields["retired_reason"], json!("eol"));
    // A retired node is not provided again.
    assert_eq!(
        run(
            and(in_state(Manageable), events),
            NodeCommand::Provision(ProvisionRequest::verb("provide"))
        )
        .await,
        Err(DomainError::Invalid(format!(
            "The providing operation can't be performed on node {NODE} because it is retired."
        )))
    );
}
