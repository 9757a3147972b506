//! Enrolment, the provision verbs from every state, the outcomes the process
//! manager reports, power, maintenance and deletion.

use super::*;
use crate::api::error::HttpStatus; // status codes are the API's
use crate::domain::node::commands::EnrollNode;
use serde_json::json;
use FsmEvent as E;
use ProvisionState::*;

fn enroll_cmd() -> EnrollNode {
    EnrollNode {
        uuid: NODE,
        name: Some("node-1".into()),
        driver: "fake-hardware".into(),
        interfaces: BTreeMap::new(),
        properties: Map::new(),
        instance_info: Map::new(),
        driver_info: Map::new(),
        extra: Map::new(),
        fields: BTreeMap::new(),
        initial_state: Enroll,
    }
}

fn enroll_asking(kind: &str, name: &str) -> NodeCommand {
    let mut cmd = enroll_cmd();
    cmd.interfaces.insert(kind.into(), Some(name.into()));
    NodeCommand::Enroll(cmd)
}

// ---- enrolment -----------------------------------------------------------------

#[tokio::test]
async fn enroll_resolves_every_interface_and_storage_defaults_to_noop() {
    TestFramework::<Node>::with(services())
        .given_no_previous_events()
        .when_async(NodeCommand::Enroll(enroll_cmd()))
        .await
        .then_expect_events(vec![enrolled()]);
}

#[tokio::test]
async fn enroll_resolves_the_defaults_of_manual_management() {
    let mut cmd = enroll_cmd();
    cmd.driver = "manual-management".into();
    let expected: BTreeMap<String, String> = [
        ("bios", "no-bios"),
        ("boot", "ipxe"),
        ("console", "no-console"),
        ("deploy", "direct"),
        ("firmware", "no-firmware"),
        ("inspect", "no-inspect"),
        ("management", "noop"),
        ("network", "flat"),
        ("power", "fake"),
        ("raid", "no-raid"),
        ("rescue", "no-rescue"),
        ("storage", "noop"),
        ("vendor", "no-vendor"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    TestFramework::<Node>::with(services())
        .given_no_previous_events()
        .when_async(NodeCommand::Enroll(cmd))
        .await
        .then_expect_events(vec![enrolled_with(|e| {
            e.driver = "manual-management".into();
            e.interfaces = expected;
        })]);
}

#[tokio::test]
async fn enroll_with_a_null_interface_takes_the_default() {
    let mut cmd = enroll_cmd();
    cmd.interfaces.insert("storage".into(), None);
    TestFramework::<Node>::with(services())
        .given_no_previous_events()
        .when_async(NodeCommand::Enroll(cmd))
        .await
        .then_expect_events(vec![enrolled()]);
}

#[tokio::test]
async fn enroll_accepts_cinder_storage() {
    TestFramework::<Node>::with(services())
        .given_no_previous_events()
        .when_async(enroll_asking("storage", "cinder"))
        .await
        .then_expect_events(vec![enrolled_with(|e| {
            e.interfaces.insert("storage".into(), "cinder".into());
        })]);
}

#[tokio::test]
async fn enroll_refuses_external_storage_unless_the_catalog_enables_it() {
    TestFramework::<Node>::with(services())
        .given_no_previous_events()
        .when_async(enroll_asking("storage", "external"))
        .await
        .then_expect_error(DomainError::Invalid(
            "Could not find the following interface in the 'ironic.hardware.interfaces.storage' entrypoint: external. Valid interfaces are ['cinder', 'noop'].".into(),
        ));
    TestFramework::<Node>::with(bfv_services())
        .given_no_previous_events()
        .when_async(enroll_asking("storage", "external"))
        .await
        .then_expect_events(vec![enrolled_with(|e| {
            e.interfaces.insert("storage".into(), "external".into());
        })]);
}

#[tokio::test]
async fn enroll_refuses_an_enabled_interface_the_hardware_type_does_not_support() {
    let mut cmd = enroll_cmd();
    cmd.driver = "manual-management".into();
    cmd.interfaces.insert("boot".into(), Some("fake".into()));
    TestFramework::<Node>::with(services())
        .given_no_previous_events()
        .when_async(NodeCommand::Enroll(cmd))
        .await
        .then_expect_error(DomainError::Invalid(
            "Interface fake is not supported by hardware type manual-management: the supported boot interfaces are ['ipxe', 'pxe', 'ipxe-http'].".into(),
        ));
}

#[tokio::test]
async fn enroll_refuses_an_unknown_interface_name_or_kind() {
    let err = run(vec![], enroll_asking("storage", "bogus"))
        .await
        .unwrap_err();
    assert_eq!(err.status(), 400);
    assert!(err.to_string().starts_with(
        "Could not find the following interface in the 'ironic.hardware.interfaces.storage' entrypoint: bogus."
    ));
    TestFramework::<Node>::with(services())
        .given_no_previous_events()
        .when_async(enroll_asking("flux", "capacitor"))
        .await
        .then_expect_error(DomainError::Invalid(
            "Unknown interface kind 'flux'.".into(),
        ));
}

#[tokio::test]
async fn enroll_refuses_an_unknown_driver() {
    let mut cmd = enroll_cmd();
    cmd.driver = "idrac".into();
    TestFramework::<Node>::with(services())
        .given_no_previous_events()
        .when_async(NodeCommand::Enroll(cmd))
        .await
        .then_expect_error(DomainError::Invalid(
            "Could not find the following driver(s) or hardware type(s): idrac.".into(),
        ));
}

#[tokio::test]
async fn enroll_refuses_invalid_names() {
    let too_long = "n".repeat(256);
    for name in [
        "",
        "node 1",
        "node/1",
        "nöde",
        "node@1",
        "4a1f9a3e-8e4b-4a47-a2b4-8d9b1c6f6b11",
        too_long.as_str(),
    ] {
        let mut cmd = enroll_cmd();
        cmd.name = Some(name.into());
        assert_eq!(
            run(vec![], NodeCommand::Enroll(cmd)).await,
            Err(DomainError::Invalid(format!(
                "Cannot create node with invalid name '{name}'"
            ))),
            "{name:?}"
        );
    }
}

#[tokio::test]
async fn enroll_accepts_unreserved_names_and_no_name() {
    let longest = "n".repeat(255);
    for name in [Some("node-1._~X9"), Some(longest.as_str()), None] {
        let mut cmd = enroll_cmd();
        cmd.name = name.map(str::to_string);
        let events = run(vec![], NodeCommand::Enroll(cmd)).await.unwrap();
        assert_eq!(
            events,
            vec![enrolled_with(|e| e.name = name.map(str::to_string))]
        );
    }
}

#[tokio::test]
async fn enroll_keeps_the_simple_fields_and_refuses_unknown_ones() {
    let mut cmd = enroll_cmd();
    cmd.fields.insert("description".into(), json!("rack 4"));
    cmd.fields.insert("resource_class".into(), json!("bfv"));
    cmd.properties = obj(json!({"capabilities": "iscsi_boot:True"}));
    cmd.instance_info = obj(json!({"root_gb": 10}));
    cmd.driver_info = obj(json!({"deploy_kernel": "k"}));
    cmd.extra = obj(json!({"team": "storage"}));
    TestFramework::<Node>::with(services())
        .given_no_previous_events()
        .when_async(NodeCommand::Enroll(cmd.clone()))
        .await
        .then_expect_events(vec![enrolled_with(|e| {
            e.fields = cmd.fields.clone();
            e.properties = cmd.properties.clone();
            e.instance_info = cmd.instance_info.clone();
            e.driver_info = cmd.driver_info.clone();
            e.extra = cmd.extra.clone();
        })]);

    let mut bad = enroll_cmd();
    bad.fields.insert("provision_state".into(), json!("active"));
    TestFramework::<Node>::with(services())
        .given_no_previous_events()
        .when_async(NodeCommand::Enroll(bad))
        .await
        .then_expect_error(DomainError::Invalid(
            "Unknown node field 'provision_state'.".into(),
        ));
}

#[tokio::test]
async fn enroll_twice_is_a_conflict() {
    TestFramework::<Node>::with(services())
        .given(vec![enrolled()])
        .when_async(NodeCommand::Enroll(enroll_cmd()))
        .await
        .then_expect_error(DomainError::Conflict(format!(
            "A node with UUID {NODE} already exists."
        )));
}

#[tokio::test]
async fn enroll_after_deletion_starts_afresh() {
    let history = vec![
        enrolled(),
        connector_added(connector(1)),
        maintenance_on(),
        powered("power on"),
        NodeEvent::NodeDeleted {
            ports: vec![],
            connectors: vec![connector(1)],
            targets: vec![],
        },
    ];
    let events = run(history.clone(), NodeCommand::Enroll(enroll_cmd()))
        .await
        .unwrap();
    assert_eq!(events, vec![enrolled()]);
    let node = replay(&and(history, events));
    assert!(node.exists);
    assert!(node.connectors.is_empty());
    assert!(!node.maintenance);
    assert_eq!(node.power_state, None);
    assert_eq!(node.provision_state, Some(Enroll));
}

#[tokio::test]
async fn a_node_starts_in_enroll_or_available() {
    let node = replay(&[enrolled()]);
    assert!(node.exists);
    assert_eq!(node.uuid, Some(NODE));
    assert_eq!(node.provision_state, Some(Enroll));
    assert_eq!(node.target_provision_state, None);
    assert_eq!(node.power_state, None);

    let mut cmd = enroll_cmd();
    cmd.initial_state = Available;
    let events = run(vec![], NodeCommand::Enroll(cmd)).await.unwrap();
    assert_eq!(
        events,
        vec![enrolled_with(|e| e.provision_state = Available)]
    );
    let node = replay(&events);
    assert_eq!(node.provision_state, Some(Available));
    assert_eq!(node.target_provision_state, None);

    for state in [Manageable, Active, Deploying] {
        let mut cmd = enroll_cmd();
        cmd.initial_state = state;
        assert_eq!(
            run(vec![], NodeCommand::Enroll(cmd)).await,
            Err(DomainError::Invalid(
                "A node starts in enroll or available.".into()
            ))
        );
    }
}

#[tokio::test]
async fn commands_on_a_missing_or_deleted_node_are_not_found() {
    let deleted = vec![
        enrolled(),
        NodeEvent::NodeDeleted {
            ports: vec![],
            connectors: vec![],
            targets: vec![],
        },
    ];
    for cmd in [
        provision("manage"),
        NodeCommand::Delete,
        NodeCommand::SetMaintenance { reason: None },
        NodeCommand::SetPowerState {
            at: None,
            target: "power on".into(),
        },
        NodeCommand::FinishDeploy,
        NodeCommand::RemoveConnector {
            uuid: connector_uuid(1),
        },
    ] {
        assert_eq!(
            run(vec![], cmd.clone()).await,
            Err(DomainError::NotFound("Node could not be found.".into())),
            "{cmd:?}"
        );
        assert_eq!(
            run(deleted.clone(), cmd.clone()).await,
            Err(DomainError::NotFound(format!(
                "Node {NODE} could not be found."
            ))),
            "{cmd:?}"
        );
    }
}

// ---- provision verbs -----------------------------------------------------------

/// Every verb the provision endpoint may receive, including the ones
/// ironledger does not model (rescue, unhold, service, …) and nonsense.
const VERBS: [&str; 17] = [
    "manage", "provide", "active", "deploy", "rebuild", "deleted", "undeploy", "inspect", "clean",
    "abort", "adopt", "rescue", "unrescue", "unhold", "service", "done", "bogus",
];

fn deploy_requested(event: FsmEvent, from: ProvisionState, rebuild: bool) -> NodeEvent {
    NodeEvent::DeployRequested {
        transition: tr(event, from, Deploying, Some(Active)),
        rebuild,
    }
}

fn undeploy_requested(from: ProvisionState) -> NodeEvent {
    NodeEvent::UndeployRequested(tr(E::Delete, from, Deleting, Some(Available)))
}

/// `docs/ironic-behaviour.md` §6.4's verbs table and §6.3's targets, restricted to the
/// states ironledger models: the events a verb records from a state (with its
/// usual target), or `None` where Ironic answers `InvalidStateRequested`.
fn expected_provision(state: ProvisionState, verb: &str) -> Option<Vec<NodeEvent>> {
    let events = match (verb, state) {
        // manage: enroll verifies first; verification finishes at once.
        ("manage", Enroll) => vec![
            psc(E::Manage, Enroll, Verifying, Some(Manageable)),
            psc(E::Done, Verifying, Manageable, None),
        ],
        ("manage", Available | CleanFailed | InspectFailed | AdoptFailed | Cleaning) => {
            vec![psc(E::Manage, state, Manageable, None)]
        }
        // provide: cleaning (heading for available), then available.
        ("provide", Manageable) => vec![
            psc(E::Provide, Manageable, Cleaning, Some(Available)),
            psc(E::Done, Cleaning, Available, None),
        ],
        ("active" | "deploy", Available | DeployFailed) => {
            vec![deploy_requested(E::Deploy, state, false)]
        }
        ("rebuild", Active | DeployFailed | Error) => {
            vec![deploy_requested(E::Rebuild, state, true)]
        }
        ("deleted" | "undeploy", Active | WaitCallBack | DeployFailed | Error) => {
            vec![undeploy_requested(state)]
        }
        ("inspect", Manageable | InspectFailed) => vec![
            psc(E::Inspect, state, Inspecting, Some(Manageable)),
            psc(E::Done, Inspecting, Manageable, None),
        ],
        // A manual clean returns to manageable.
        ("clean", Manageable) => vec![
            psc(E::Clean, Manageable, Cleaning, Some(Manageable)),
            psc(E::Done, Cleaning, Manageable, None),
        ],
        ("abort", CleanWait | CleanHold) => {
            vec![psc(E::Abort, state, CleanFailed, Some(Available))]
        }
        ("abort", InspectWait) => vec![psc(E::Abort, InspectWait, InspectFailed, Some(Manageable))],
        ("abort", WaitCallBack | DeployHold) => {
            vec![psc(
                E::Abort,
                state,
                ProvisionState::DeployFailed,
                Some(Active),
            )]
        }
        ("adopt", Manageable | AdoptFailed) => {
            vec![psc(E::Adopt, state, Adopting, Some(Active))]
        }
        _ => return None,
    };
    Some(events)
}

#[tokio::test]
async fn every_verb_from_every_state() {
    let mut legal = 0;
    for state in ALL_STATES {
        for verb in VERBS {
            let expected = match expected_provision(state, verb) {
                Some(events) => {
                    legal += 1;
                    Ok(events)
                }
                None => Err(invalid_state(verb, state.as_str())),
            };
            let got = run(bootable_in(state), provision(verb)).await;
            assert_eq!(got, expected, "{verb:?} from {state}");
            if let Ok(events) = got {
                // The last event leaves the node where it says, target and all.
                let last = events
                    .last()
                    .and_then(NodeEvent::transition)
                    .cloned()
                    .unwrap();
                let node = replay(&and(bootable_in(state), events));
                assert_eq!(node.provision_state, Some(last.to), "{verb:?} from {state}");
                assert_eq!(
                    node.target_provision_state, last.target,
                    "{verb:?} from {state}"
                );
            }
        }
    }
    // Guards the table itself against accidental shrinking.
    assert_eq!(legal, 32);
}

#[tokio::test]
async fn refusals_use_ironics_text() {
    TestFramework::<Node>::with(services())
        .given(in_state(Active))
        .when_async(provision("provide"))
        .await
        .then_expect_error(DomainError::InvalidStateRequested(format!(
            "The requested action \"provide\" can not be performed on node \"{NODE}\" while it is in state \"active\"."
        )));
    TestFramework::<Node>::with(services())
        .given(in_state(WaitCallBack))
        .when_async(provision("frobnicate"))
        .await
        .then_expect_error(DomainError::InvalidStateRequested(format!(
            "The requested action \"frobnicate\" can not be performed on node \"{NODE}\" while it is in state \"wait call-back\"."
        )));
}

#[tokio::test]
async fn manage_from_enroll_verifies_then_lands_in_manageable() {
    let events = run(in_state(Enroll), provision("manage")).await.unwrap();
    assert_eq!(
        events,
        vec![
            psc(E::Manage, Enroll, Verifying, Some(Manageable)),
            psc(E::Done, Verifying, Manageable, None),
        ]
    );
    let node = replay(&and(in_state(Enroll), events));
    assert_eq!(node.state(), Manageable);
    assert_eq!(node.target_provision_state, None);
}

#[tokio::test]
async fn provide_cleans_then_lands_in_available() {
    TestFramework::<Node>::with(services())
        .given(in_state(Manageable))
        .when_async(provision("provide"))
        .await
        .then_expect_events(vec![
            psc(E::Provide, Manageable, Cleaning, Some(Available)),
            psc(E::Done, Cleaning, Available, None),
        ]);
}

#[tokio::test]
async fn clean_requires_clean_steps_and_returns_to_manageable() {
    TestFramework::<Node>::with(services())
        .given(in_state(Manageable))
        .when_async(NodeCommand::Provision(ProvisionRequest::verb("clean")))
        .await
        .then_expect_error(DomainError::Invalid(
            "\"clean_steps\" is required when setting target provision state to clean".into(),
        ));
    TestFramework::<Node>::with(services())
        .given(in_state(Manageable))
        .when_async(provision("clean"))
        .await
        .then_expect_events(vec![
            psc(E::Clean, Manageable, Cleaning, Some(Manageable)),
            psc(E::Done, Cleaning, Manageable, None),
        ]);
}

#[tokio::test]
async fn an_operators_clean_cannot_skip_the_tear_down() {
    // deleting -clean-> cleaning is the engine's step after tear-down
    // (FinishUndeploy); the `clean` verb is for manageable nodes only.
    let history = and(
        in_state(Deleting),
        [target_created(target(1, 0)), associated()],
    );
    TestFramework::<Node>::with(services())
        .given(history)
        .when_async(provision("clean"))
        .await
        .then_expect_error(invalid_state("clean", "deleting"));
}

#[tokio::test]
async fn inspect_and_adopt_finish_at_once() {
    for from in [Manageable, InspectFailed] {
        TestFramework::<Node>::with(services())
            .given(in_state(from))
            .when_async(provision("inspect"))
            .await
            .then_expect_events(vec![
                psc(E::Inspect, from, Inspecting, Some(Manageable)),
                psc(E::Done, Inspecting, Manageable, None),
            ]);
    }
    for from in [Manageable, AdoptFailed] {
        TestFramework::<Node>::with(services())
            .given(in_state(from))
            .when_async(provision("adopt"))
            .await
            .then_expect_events(vec![psc(E::Adopt, from, Adopting, Some(Active))]);
    }
}

/// Adoption waits in `adopting` for the process manager (which writes a
/// volume boot's script), then ends in `active`, or in `adopt failed` with
/// Ironic's text.
#[tokio::test]
async fn adoption_is_finished_or_failed_by_the_process_manager() {
    let adopting = and(
        in_state(Manageable),
        [psc(E::Adopt, Manageable, Adopting, Some(Active))],
    );
    TestFramework::<Node>::with(services())
        .given(adopting.clone())
        .when_async(NodeCommand::FinishAdopt)
        .await
        .then_expect_events(vec![psc(E::Done, Adopting, Active, None)]);
    TestFramework::<Node>::with(services())
        .given(adopting)
        .when_async(NodeCommand::FailAdopt {
            error: "volume target x: target_iqn is missing".into(),
        })
        .await
        .then_expect_events(vec![NodeEvent::AdoptFailed {
            transition: tr(E::Fail, Adopting, AdoptFailed, Some(Active)),
            last_error: format!(
                "Error while attempting to adopt node {NODE}: volume target x: target_iqn is missing."
            ),
        }]);
    for state in [Manageable, Active, AdoptFailed] {
        TestFramework::<Node>::with(services())
            .given(in_state(state))
            .when_async(NodeCommand::FinishAdopt)
            .await
            .then_expect_error(invalid_state("adopt done", state.as_str()));
    }
}

#[tokio::test]
async fn manage_from_a_manual_clean_keeps_its_target_semantics() {
    // A node caught in a manual clean (target manageable) can be managed back.
    let history = vec![
        enrolled(),
        psc(E::Clean, Manageable, Cleaning, Some(Manageable)),
    ];
    TestFramework::<Node>::with(services())
        .given(history)
        .when_async(provision("manage"))
        .await
        .then_expect_events(vec![psc(E::Manage, Cleaning, Manageable, None)]);
}

#[tokio::test]
async fn deploy_and_active_request_a_deploy_and_rebuild_flags_it() {
    for verb in ["active", "deploy"] {
        TestFramework::<Node>::with(services())
            .given(bootable_in(Available))
            .when_async(provision(verb))
            .await
            .then_expect_events(vec![NodeEvent::DeployRequested {
                transition: tr(E::Deploy, Available, Deploying, Some(Active)),
                rebuild: false,
            }]);
    }
    TestFramework::<Node>::with(services())
        .given(bootable_in(Active))
        .when_async(provision("rebuild"))
        .await
        .then_expect_events(vec![NodeEvent::DeployRequested {
            transition: tr(E::Rebuild, Active, Deploying, Some(Active)),
            rebuild: true,
        }]);
}

#[tokio::test]
async fn deleted_and_undeploy_request_an_undeploy() {
    for verb in ["deleted", "undeploy"] {
        TestFramework::<Node>::with(services())
            .given(in_state(Active))
            .when_async(provision(verb))
            .await
            .then_expect_events(vec![NodeEvent::UndeployRequested(tr(
                E::Delete,
                Active,
                Deleting,
                Some(Available),
            ))]);
    }
}

#[tokio::test]
async fn abort_from_wait_call_back_fails_the_deploy() {
    let events = run(in_state(WaitCallBack), provision("abort"))
        .await
        .unwrap();
    assert_eq!(
        events,
        vec![psc(E::Abort, WaitCallBack, DeployFailed, Some(Active))]
    );
    let node = replay(&and(in_state(WaitCallBack), events));
    assert_eq!(node.state(), DeployFailed);
    assert_eq!(node.target_provision_state, Some(Active));
}

#[tokio::test]
async fn a_new_deploy_clears_the_last_error() {
    let history = and(
        bootable_in(Deploying),
        [NodeEvent::DeployFailed {
            transition: tr(E::Fail, Deploying, DeployFailed, Some(Active)),
            last_error: "boom".into(),
        }],
    );
    assert_eq!(replay(&history).last_error.as_deref(), Some("boom"));
    let events = run(history.clone(), provision("active")).await.unwrap();
    assert_eq!(
        events,
        vec![deploy_requested(E::Deploy, DeployFailed, false)]
    );
    assert_eq!(replay(&and(history, events)).last_error, None);
}

fn with_params(
    verb: &str,
    configdrive: Option<Value>,
    clean: Option<Value>,
    deploy: Option<Value>,
) -> NodeCommand {
    NodeCommand::Provision(ProvisionRequest {
        verb: verb.into(),
        configdrive,
        clean_steps: clean,
        deploy_steps: deploy,
    })
}

const CONFIGDRIVE_MISUSE: &str =
    "Adding a config drive is only supported when setting provision state to active, rebuild";
const CLEAN_STEPS_MISUSE: &str =
    "\"clean_steps\" is only valid when setting target provision state to clean";
const DEPLOY_STEPS_MISUSE: &str =
    "\"deploy_steps\" is only valid when setting target provision state to active or rebuild";

#[tokio::test]
async fn configdrive_is_only_for_active_and_rebuild() {
    let cd = || Some(json!("H4sIAAAAAAAA"));
    for (state, verb) in [
        (Enroll, "manage"),
        (Manageable, "provide"),
        (Active, "deleted"),
    ] {
        assert_eq!(
            run(bootable_in(state), with_params(verb, cd(), None, None)).await,
            Err(DomainError::Invalid(CONFIGDRIVE_MISUSE.into())),
            "{verb}"
        );
    }
    for (state, verb) in [
        (Available, "active"),
        (Available, "deploy"),
        (Active, "rebuild"),
    ] {
        assert!(
            run(bootable_in(state), with_params(verb, cd(), None, None))
                .await
                .is_ok(),
            "{verb}"
        );
    }
}

#[tokio::test]
async fn clean_steps_are_only_for_clean() {
    let steps = || Some(json!([{"interface": "deploy", "step": "erase_devices"}]));
    for (state, verb) in [
        (Manageable, "provide"),
        (Available, "active"),
        (Enroll, "manage"),
    ] {
        assert_eq!(
            run(in_state(state), with_params(verb, None, steps(), None)).await,
            Err(DomainError::Invalid(CLEAN_STEPS_MISUSE.into())),
            "{verb}"
        );
    }
}

#[tokio::test]
async fn deploy_steps_are_only_for_active_and_rebuild() {
    let steps =
        || Some(json!([{"interface": "deploy", "step": "deploy", "priority": 100, "args": {}}]));
    for (state, verb) in [(Manageable, "provide"), (Active, "undeploy")] {
        assert_eq!(
            run(bootable_in(state), with_params(verb, None, None, steps())).await,
            Err(DomainError::Invalid(DEPLOY_STEPS_MISUSE.into())),
            "{verb}"
        );
    }
    for (state, verb) in [(Available, "active"), (Active, "rebuild")] {
        assert!(
            run(bootable_in(state), with_params(verb, None, None, steps()))
                .await
                .is_ok()
        );
    }
}

#[tokio::test]
async fn the_state_machine_is_checked_before_the_parameters() {
    // `docs/ironic-behaviour.md` §6.5: FSM (step 3) before parameter misuse (step 4).
    assert_eq!(
        run(
            in_state(Active),
            NodeCommand::Provision(ProvisionRequest::verb("clean"))
        )
        .await,
        Err(invalid_state("clean", "active"))
    );
    assert_eq!(
        run(
            in_state(Active),
            with_params("manage", Some(json!("cd")), None, None)
        )
        .await,
        Err(invalid_state("manage", "active"))
    );
    assert_eq!(
        run(
            in_state(Enroll),
            with_params("provide", None, Some(json!([])), None)
        )
        .await,
        Err(invalid_state("provide", "enroll"))
    );
}

fn in_maintenance() -> String {
    format!("The provisioning operation can't be performed on node {NODE} because it's in maintenance mode.")
}

#[tokio::test]
async fn deploy_and_rebuild_are_refused_in_maintenance() {
    for (state, verb) in [
        (Available, "active"),
        (Available, "deploy"),
        (DeployFailed, "active"),
        (Active, "rebuild"),
        (Error, "rebuild"),
        // Maintenance is checked before the state machine (§6.5 step 2).
        (Enroll, "active"),
        (Manageable, "rebuild"),
    ] {
        assert_eq!(
            run(and(in_state(state), [maintenance_on()]), provision(verb)).await,
            Err(DomainError::Invalid(in_maintenance())),
            "{verb} from {state}"
        );
    }
    // … and before parameter misuse.
    assert_eq!(
        run(
            and(in_state(Available), [maintenance_on()]),
            with_params("active", None, Some(json!([])), None)
        )
        .await,
        Err(DomainError::Invalid(in_maintenance()))
    );
}

#[tokio::test]
async fn other_verbs_work_in_maintenance() {
    for (state, verb) in [
        (Enroll, "manage"),
        (Manageable, "provide"),
        (Active, "deleted"),
        (WaitCallBack, "abort"),
        (Available, "manage"),
    ] {
        let plain = run(in_state(state), provision(verb)).await.unwrap();
        let in_maint = run(and(in_state(state), [maintenance_on()]), provision(verb))
            .await
            .unwrap();
        assert_eq!(plain, in_maint, "{verb} from {state}");
    }
}

// ---- process-manager outcomes --------------------------------------------------

#[tokio::test]
async fn finish_deploy_only_from_deploying() {
    for state in ALL_STATES {
        let got = run(in_state(state), NodeCommand::FinishDeploy).await;
        if state == Deploying {
            assert_eq!(
                got,
                Ok(vec![NodeEvent::Deployed(tr(
                    E::Done,
                    Deploying,
                    Active,
                    None
                ))])
            );
        } else {
            assert_eq!(
                got,
                Err(invalid_state("deploy done", state.as_str())),
                "{state}"
            );
        }
    }
}

#[tokio::test]
async fn fail_deploy_from_deploying_or_wait_call_back_sets_last_error() {
    for state in ALL_STATES {
        let cmd = NodeCommand::FailDeploy {
            error: "Agent did not call back".into(),
        };
        let got = run(in_state(state), cmd).await;
        if matches!(state, Deploying | WaitCallBack) {
            let events = got.unwrap();
            assert_eq!(
                events,
                vec![NodeEvent::DeployFailed {
                    transition: tr(E::Fail, state, DeployFailed, Some(Active)),
                    last_error: "Agent did not call back".into(),
                }]
            );
            let node = replay(&and(in_state(state), events));
            assert_eq!(node.state(), DeployFailed);
            assert_eq!(node.target_provision_state, Some(Active));
            assert_eq!(node.last_error.as_deref(), Some("Agent did not call back"));
        } else {
            assert_eq!(
                got,
                Err(invalid_state("deploy failed", state.as_str())),
                "{state}"
            );
        }
    }
}

fn deleting_with_instance() -> Vec<NodeEvent> {
    let mut dii = BTreeMap::new();
    dii.insert(
        "boot_from_volume".to_string(),
        Some(json!(target_uuid(1).to_string())),
    );
    dii.insert(
        "boot_from_volume_deploy".to_string(),
        Some(json!(target_uuid(1).to_string())),
    );
    dii.insert("agent_url".to_string(), Some(json!("http://10.0.0.5:9999")));
    vec![
        enrolled(),
        connector_added(connector(1)),
        connector_added(wwpn_connector()),
        target_created(target(1, 0)),
        target_created(target(2, 1)),
        NodeEvent::InstanceInfoUpdated {
            before: Map::new(),
            after: obj(json!({"image_source": "img", "root_gb": 10})),
        },
        associated(),
        NodeEvent::DriverInternalInfoUpdated { changes: dii },
        psc(E::Deploy, Available, Active, None),
        undeploy_requested(Active),
    ]
}

/// A second connector of another type, for "connectors are kept" checks.
fn wwpn_connector() -> Connector {
    Connector {
        uuid: connector_uuid(2),
        kind: "wwpn".into(),
        connector_id: "21:00:00:24:ff:4c:c7:a0".into(),
        extra: Map::new(),
    }
}

#[tokio::test]
async fn purge_targets_removes_every_target_and_keeps_connectors() {
    let history = deleting_with_instance();
    let events = run(history.clone(), NodeCommand::PurgeTargets)
        .await
        .unwrap();
    assert_eq!(
        events,
        vec![NodeEvent::TargetsPurged {
            targets: vec![target(1, 0), target(2, 1)],
        }]
    );
    let node = replay(&and(history, events));
    assert!(node.targets.is_empty());
    assert_eq!(node.connectors, vec![connector(1), wwpn_connector()]);
    assert!(!node.driver_internal_info.contains_key("boot_from_volume"));
    assert!(!node
        .driver_internal_info
        .contains_key("boot_from_volume_deploy"));
    assert!(node.driver_internal_info.contains_key("agent_url"));
    assert_eq!(node.state(), Deleting);
}

#[tokio::test]
async fn purge_targets_records_nothing_when_there_are_none() {
    TestFramework::<Node>::with(services())
        .given(and(in_state(Deleting), [connector_added(connector(1))]))
        .when_async(NodeCommand::PurgeTargets)
        .await
        .then_expect_events(vec![]);
}

#[tokio::test]
async fn undeploy_outcomes_only_from_deleting() {
    for state in ALL_STATES.into_iter().filter(|s| *s != Deleting) {
        let history = and(in_state(state), [target_created(target(1, 0))]);
        assert_eq!(
            run(history.clone(), NodeCommand::PurgeTargets).await,
            Err(invalid_state("purge targets", state.as_str())),
            "{state}"
        );
        assert_eq!(
            run(history.clone(), NodeCommand::FinishUndeploy).await,
            Err(invalid_state("undeploy done", state.as_str())),
            "{state}"
        );
        assert_eq!(
            run(history, NodeCommand::FailUndeploy { error: "x".into() }).await,
            Err(invalid_state("undeploy failed", state.as_str())),
            "{state}"
        );
    }
}

#[tokio::test]
async fn finish_undeploy_cleans_then_lands_in_available_and_clears_the_instance() {
    let history = and(
        deleting_with_instance(),
        [NodeEvent::TargetsPurged {
            targets: vec![target(1, 0), target(2, 1)],
        }],
    );
    let events = run(history.clone(), NodeCommand::FinishUndeploy)
        .await
        .unwrap();
    assert_eq!(
        events,
        vec![
            NodeEvent::InstanceAssociated {
                from: Some(INSTANCE.into()),
                to: None
            },
            NodeEvent::Undeployed(tr(E::Clean, Deleting, Cleaning, Some(Available))),
            psc(E::Done, Cleaning, Available, None),
        ]
    );
    let node = replay(&and(history, events));
    assert_eq!(node.state(), Available);
    assert_eq!(node.target_provision_state, None);
    assert!(node.instance_info.is_empty());
    assert_eq!(node.instance_uuid, None);
    assert!(!node.driver_internal_info.contains_key("boot_from_volume"));
    assert!(!node
        .driver_internal_info
        .contains_key("boot_from_volume_deploy"));
    assert_eq!(node.connectors.len(), 2);
    assert!(node.targets.is_empty());
}

#[tokio::test]
async fn undeployed_alone_clears_the_boot_from_volume_keys() {
    // Even when PurgeTargets had nothing to do (no TargetsPurged event).
    let history = deleting_with_instance()
        .into_iter()
        .filter(|e| !matches!(e, NodeEvent::TargetCreated { .. }))
        .collect::<Vec<_>>();
    let events = run(history.clone(), NodeCommand::FinishUndeploy)
        .await
        .unwrap();
    let node = replay(&and(history, events));
    assert!(!node.driver_internal_info.contains_key("boot_from_volume"));
    assert!(!node
        .driver_internal_info
        .contains_key("boot_from_volume_deploy"));
    assert_eq!(
        node.driver_internal_info.get("agent_url"),
        Some(&json!("http://10.0.0.5:9999"))
    );
}

#[tokio::test]
async fn fail_undeploy_puts_the_node_in_error() {
    let history = deleting_with_instance();
    let events = run(
        history.clone(),
        NodeCommand::FailUndeploy {
            error: "cinder detach timed out".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(
        events,
        vec![NodeEvent::UndeployFailed {
            transition: tr(E::Fail, Deleting, Error, None),
            last_error: "Failed to tear down: cinder detach timed out".into(),
        }]
    );
    let node = replay(&and(history, events));
    assert_eq!(node.state(), Error);
    assert_eq!(node.target_provision_state, None);
    assert_eq!(
        node.last_error.as_deref(),
        Some("Failed to tear down: cinder detach timed out")
    );
    // From error, the operator may undeploy again (which clears last_error).
    let again = run(replay_history_in_error(), provision("undeploy"))
        .await
        .unwrap();
    assert_eq!(again, vec![undeploy_requested(Error)]);
}

fn replay_history_in_error() -> Vec<NodeEvent> {
    and(
        deleting_with_instance(),
        [NodeEvent::UndeployFailed {
            transition: tr(E::Fail, Deleting, Error, None),
            last_error: "Failed to tear down: x".into(),
        }],
    )
}

#[tokio::test]
async fn undeploy_requested_clears_the_last_error() {
    let history = replay_history_in_error();
    let events = run(history.clone(), provision("deleted")).await.unwrap();
    assert_eq!(replay(&and(history, events)).last_error, None);
}

#[tokio::test]
async fn driver_internal_info_keys_are_set_and_removed() {
    let mut set = BTreeMap::new();
    set.insert("boot_from_volume".to_string(), Some(json!("t-1")));
    set.insert("agent_url".to_string(), Some(json!("http://a")));
    let history = in_state(Deploying);
    let events = run(
        history.clone(),
        NodeCommand::SetDriverInternalInfo {
            changes: set.clone(),
        },
    )
    .await
    .unwrap();
    assert_eq!(
        events,
        vec![NodeEvent::DriverInternalInfoUpdated { changes: set }]
    );
    let history = and(history, events);
    let mut unset = BTreeMap::new();
    unset.insert("agent_url".to_string(), None);
    let history = and(
        history,
        [NodeEvent::DriverInternalInfoUpdated { changes: unset }],
    );
    let node = replay(&history);
    assert_eq!(
        node.driver_internal_info,
        obj(json!({"boot_from_volume": "t-1"}))
    );
}

#[tokio::test]
async fn a_whole_boot_from_volume_life() {
    let mut cmd = enroll_cmd();
    cmd.interfaces
        .insert("storage".into(), Some("external".into()));
    let h = accept(vec![], NodeCommand::Enroll(cmd)).await;
    let h = accept(
        h,
        NodeCommand::AddConnector(crate::domain::node::commands::NewConnector {
            uuid: connector_uuid(1),
            kind: "iqn".into(),
            connector_id: iqn(1),
            extra: Map::new(),
        }),
    )
    .await;
    let h = accept(
        h,
        NodeCommand::AddPort(crate::domain::node::commands::NewPort {
            uuid: port_uuid(1),
            address: "52:54:00:12:34:56".into(),
            pxe_enabled: true,
            extra: Map::new(),
            ..Default::default()
        }),
    )
    .await;
    let h = accept(h, provision("manage")).await;
    let h = accept(h, provision("provide")).await;
    let h = accept(
        h,
        NodeCommand::Patch {
            ops: vec![
                add("/properties/capabilities", json!("iscsi_boot:True")),
                add("/instance_info/root_gb", json!(10)),
                replace("/instance_uuid", json!(INSTANCE)),
            ],
        },
    )
    .await;
    let h = accept(
        h,
        NodeCommand::CreateTarget(crate::domain::node::commands::NewTarget {
            uuid: target_uuid(1),
            volume_type: "iscsi".into(),
            boot_index: 0,
            volume_id: "vol-1".into(),
            properties: obj(json!({
                "target_iqn": "iqn.2010-10.org.openstack:volume-1",
                "target_portal": "192.0.2.10:3260",
                "target_lun": 0,
            })),
            extra: Map::new(),
        }),
    )
    .await;
    let h = accept(h, provision("active")).await;
    let mut bfv = BTreeMap::new();
    bfv.insert(
        "boot_from_volume".to_string(),
        Some(json!(target_uuid(1).to_string())),
    );
    let h = accept(h, NodeCommand::SetDriverInternalInfo { changes: bfv }).await;
    let h = accept(
        h,
        NodeCommand::SetPowerState {
            at: None,
            target: "power on".into(),
        },
    )
    .await;
    let h = accept(h, NodeCommand::FinishDeploy).await;
    let node = replay(&h);
    assert_eq!(node.state(), Active);
    assert_eq!(node.interface("storage"), "external");
    assert_eq!(node.instance_uuid.as_deref(), Some(INSTANCE));

    let h = accept(h, provision("deleted")).await;
    let h = accept(h, NodeCommand::PurgeTargets).await;
    let h = accept(h, NodeCommand::FinishUndeploy).await;
    let node = replay(&h);
    assert_eq!(node.state(), Available);
    assert_eq!(node.target_provision_state, None);
    assert_eq!(node.connectors, vec![connector(1)]);
    assert!(node.targets.is_empty());
    assert!(node.instance_info.is_empty());
    assert_eq!(node.instance_uuid, None);
    assert!(node.driver_internal_info.is_empty());
    // Properties (capabilities) survive undeploy.
    assert_eq!(
        node.properties,
        obj(json!({"capabilities": "iscsi_boot:True"}))
    );
    // And the node can be deleted now.
    let h = accept(h, NodeCommand::Delete).await;
    assert!(!replay(&h).exists);
}

// ---- power ---------------------------------------------------------------------

#[tokio::test]
async fn every_power_target_and_where_it_ends() {
    for (target, to) in [
        ("power on", "power on"),
        ("power off", "power off"),
        ("rebooting", "power on"),
        ("soft rebooting", "power on"),
        ("soft power off", "power off"),
    ] {
        TestFramework::<Node>::with(services())
            .given(in_state(Available))
            .when_async(NodeCommand::SetPowerState {
                at: None,
                target: target.into(),
            })
            .await
            .then_expect_events(vec![NodeEvent::PowerStateChanged {
                from: None,
                to: to.into(),
                at: None,
            }]);
        TestFramework::<Node>::with(services())
            .given(and(in_state(Active), [powered("power on")]))
            .when_async(NodeCommand::SetPowerState {
                at: None,
                target: target.into(),
            })
            .await
            .then_expect_events(vec![NodeEvent::PowerStateChanged {
                from: Some("power on".into()),
                to: to.into(),
                at: None,
            }]);
    }
}

#[tokio::test]
async fn an_invalid_power_target_is_refused() {
    for target in ["on", "Power On", "", "reboot"] {
        assert_eq!(
            run(in_state(Available), NodeCommand::SetPowerState { at: None, target: target.into() }).await,
            Err(DomainError::Invalid(format!(
                "Invalid power target '{target}'; expected one of 'power on', 'power off', 'rebooting', 'soft rebooting', 'soft power off'."
            )))
        );
    }
}

#[tokio::test]
async fn power_is_refused_while_cleaning_and_allowed_elsewhere() {
    for state in ALL_STATES {
        for target in ["power on", "power off", "rebooting"] {
            let got = run(
                in_state(state),
                NodeCommand::SetPowerState {
                    at: None,
                    target: target.into(),
                },
            )
            .await;
            if matches!(state, Cleaning | CleanWait) {
                assert_eq!(got, Err(invalid_state(target, state.as_str())), "{state}");
            } else {
                assert!(got.is_ok(), "{target} in {state}: {got:?}");
            }
        }
    }
    let node = replay(&and(in_state(Available), [powered("power off")]));
    assert_eq!(node.power_state.as_deref(), Some("power off"));
    assert!(node.powered_off());
}

// ---- maintenance ---------------------------------------------------------------

#[tokio::test]
async fn maintenance_set_and_unset() {
    let events = run(
        in_state(Active),
        NodeCommand::SetMaintenance {
            reason: Some("disk swap".into()),
        },
    )
    .await
    .unwrap();
    assert_eq!(
        events,
        vec![NodeEvent::MaintenanceSet {
            reason: Some("disk swap".into())
        }]
    );
    let history = and(in_state(Active), events);
    let node = replay(&history);
    assert!(node.maintenance);
    assert_eq!(node.maintenance_reason.as_deref(), Some("disk swap"));

    let events = run(history.clone(), NodeCommand::UnsetMaintenance)
        .await
        .unwrap();
    assert_eq!(events, vec![NodeEvent::MaintenanceUnset]);
    let node = replay(&and(history, events));
    assert!(!node.maintenance);
    assert_eq!(node.maintenance_reason, None);
}

#[tokio::test]
async fn maintenance_without_reason_and_unset_when_not_set() {
    TestFramework::<Node>::with(services())
        .given(in_state(Deploying))
        .when_async(NodeCommand::SetMaintenance { reason: None })
        .await
        .then_expect_events(vec![NodeEvent::MaintenanceSet { reason: None }]);
    TestFramework::<Node>::with(services())
        .given(in_state(Available))
        .when_async(NodeCommand::UnsetMaintenance)
        .await
        .then_expect_events(vec![]);
}

// ---- deletion ------------------------------------------------------------------

fn cannot_delete(state: &str) -> DomainError {
    DomainError::Conflict(format!(
        "Can not delete node \"{NODE}\" while it is in provision state \"{state}\". Valid provision states to perform deletion are: \"('manageable', 'enroll', 'adopt failed', 'available')\", or set the node into maintenance mode"
    ))
}

fn nothing_deleted() -> NodeEvent {
    NodeEvent::NodeDeleted {
        ports: vec![],
        connectors: vec![],
        targets: vec![],
    }
}

#[tokio::test]
async fn delete_is_allowed_only_in_some_states_unless_in_maintenance() {
    for state in ALL_STATES {
        let got = run(in_state(state), NodeCommand::Delete).await;
        if matches!(state, Available | Manageable | Enroll | AdoptFailed) {
            assert_eq!(got, Ok(vec![nothing_deleted()]), "{state}");
        } else {
            assert_eq!(got, Err(cannot_delete(state.as_str())), "{state}");
            assert_eq!(got.unwrap_err().status(), 409);
        }
        assert_eq!(
            run(
                and(in_state(state), [maintenance_on()]),
                NodeCommand::Delete
            )
            .await,
            Ok(vec![nothing_deleted()]),
            "{state} in maintenance"
        );
    }
}

#[tokio::test]
async fn delete_is_refused_while_an_instance_is_associated() {
    let expected = DomainError::Conflict(format!(
        "Node {NODE} is associated with instance {INSTANCE}."
    ));
    TestFramework::<Node>::with(services())
        .given(and(in_state(Available), [associated()]))
        .when_async(NodeCommand::Delete)
        .await
        .then_expect_error(expected);
}

/// Ironic's `destroy_node` skips the association check in maintenance, so a
/// hopelessly broken node can always be removed.
#[tokio::test]
async fn delete_in_maintenance_ignores_the_instance() {
    TestFramework::<Node>::with(services())
        .given(and(in_state(Active), [associated(), maintenance_on()]))
        .when_async(NodeCommand::Delete)
        .await
        .then_expect_events(vec![nothing_deleted()]);
}

fn protected_on() -> NodeEvent {
    let mut changes = BTreeMap::new();
    changes.insert("protected".to_string(), json!(true));
    NodeEvent::NodeUpdated { changes }
}

fn protected_error() -> DomainError {
    DomainError::Forbidden(format!(
        "Node {NODE} is protected and cannot be undeployed, rebuilt or deleted"
    ))
}

#[tokio::test]
async fn a_protected_node_cannot_be_deleted_even_in_maintenance() {
    for extra in [vec![protected_on()], vec![protected_on(), maintenance_on()]] {
        let got = run(and(in_state(Manageable), extra), NodeCommand::Delete).await;
        assert_eq!(got, Err(protected_error()));
        assert_eq!(got.unwrap_err().status(), 403);
    }
}

#[tokio::test]
async fn a_protected_node_cannot_be_rebuilt_or_undeployed_but_may_be_deployed() {
    let active = and(bootable_in(Active), [protected_on()]);
    assert_eq!(
        run(active.clone(), provision("rebuild")).await,
        Err(protected_error())
    );
    for verb in ["deleted", "undeploy"] {
        assert_eq!(
            run(active.clone(), provision(verb)).await,
            Err(protected_error()),
            "{verb}"
        );
    }
    // The state machine is asked first: an illegal verb stays a 400.
    assert_eq!(
        run(
            and(bootable_in(Available), [protected_on()]),
            provision("deleted")
        )
        .await,
        Err(invalid_state("deleted", "available"))
    );
    assert!(run(
        and(bootable_in(DeployFailed), [protected_on()]),
        provision("active")
    )
    .await
    .is_ok());
}

#[tokio::test]
async fn enroll_can_start_in_maintenance_and_associated() {
    let mut cmd = enroll_cmd();
    cmd.fields.insert("maintenance".into(), json!(true));
    cmd.fields.insert("instance_uuid".into(), json!(INSTANCE));
    TestFramework::<Node>::with(services())
        .given_no_previous_events()
        .when_async(NodeCommand::Enroll(cmd))
        .await
        .then_expect_events(vec![
            enrolled(),
            NodeEvent::MaintenanceSet { reason: None },
            NodeEvent::InstanceAssociated {
                from: None,
                to: Some(INSTANCE.into()),
            },
        ]);
    let mut cmd = enroll_cmd();
    cmd.fields.insert("maintenance".into(), json!(false));
    cmd.fields.insert("instance_uuid".into(), Value::Null);
    TestFramework::<Node>::with(services())
        .given_no_previous_events()
        .when_async(NodeCommand::Enroll(cmd))
        .await
        .then_expect_events(vec![enrolled()]);
}

#[tokio::test]
async fn enroll_refuses_a_bad_maintenance_or_instance() {
    for (key, value) in [
        ("maintenance", json!("yes")),
        ("instance_uuid", json!("not-a-uuid")),
        ("instance_uuid", json!(5)),
    ] {
        let mut cmd = enroll_cmd();
        cmd.fields.insert(key.into(), value);
        let got = run(vec![], NodeCommand::Enroll(cmd)).await;
        assert_eq!(got.unwrap_err().status(), 400, "{key}");
    }
}

#[tokio::test]
async fn node_deleted_carries_everything_the_node_owned() {
    let history = and(
        in_state(Manageable),
        [
            port_added(port(1)),
            port_added(port(2)),
            connector_added(connector(1)),
            target_created(target(1, 0)),
            target_created(target(2, 1)),
            powered("power on"),
        ],
    );
    let events = run(history.clone(), NodeCommand::Delete).await.unwrap();
    assert_eq!(
        events,
        vec![NodeEvent::NodeDeleted {
            ports: vec![port(1), port(2)],
            connectors: vec![connector(1)],
            targets: vec![target(1, 0), target(2, 1)],
        }]
    );
    let node = replay(&and(history, events));
    assert!(!node.exists);
    assert_eq!(node.uuid, Some(NODE));
    assert!(node.ports.is_empty() && node.connectors.is_empty() && node.targets.is_empty());
}

/// A node whose power interface drives a BMC (`redfish`).
fn bmc_node() -> Vec<NodeEvent> {
    vec![enrolled_with(|e| {
        e.driver = "redfish".into();
        e.interfaces.insert("power".into(), "redfish".into());
        e.provision_state = Available;
    })]
}

#[tokio::test]
async fn power_of_a_node_without_bmc_is_recorded_at_once() {
    assert_eq!(
        run(
            in_state(Available),
            NodeCommand::RequestPower {
                at: None,
                target: "rebooting".into(),
                timeout: Some(5),
            }
        )
        .await,
        Ok(vec![NodeEvent::PowerStateChanged {
            from: None,
            to: "power on".into(),
            at: None,
        }])
    );
}

#[tokio::test]
async fn power_of_a_bmc_node_is_a_request_one_at_a_time() {
    let request = NodeCommand::RequestPower {
        at: None,
        target: "rebooting".into(),
        timeout: Some(5),
    };
    let asked = run(bmc_node(), request.clone()).await.unwrap();
    assert_eq!(
        asked,
        vec![NodeEvent::PowerChangeRequested {
            action: "rebooting".into(),
            target: "power on".into(),
            timeout: Some(5),
        }]
    );
    let pending = and(bmc_node(), asked);
    assert_eq!(
        replay(&pending).power_request.map(|r| r.target),
        Some("power on".into())
    );
    assert!(matches!(
        run(pending.clone(), request).await,
        Err(DomainError::Conflict(_))
    ));
    // The outcome is recorded once; a repeated report records nothing.
    let done = run(
        pending.clone(),
        NodeCommand::FinishPower {
            power_state: "power on".into(),
            at: "2026-12-02T00:00:00.000000".into(),
        },
    )
    .await
    .unwrap();
    let after = replay(&and(pending.clone(), done.clone()));
    assert_eq!(after.power_state.as_deref(), Some("power on"));
    assert_eq!(after.power_request, None);
    assert_eq!(
        after.driver_internal_info["last_power_state_change"],
        "2026-12-02T00:00:00.000000"
    );
    let again = run(
        and(pending.clone(), done),
        NodeCommand::FailPower {
            error: "x".into(),
            power_state: None,
        },
    )
    .await;
    assert_eq!(again, Ok(vec![]));
    // A failure clears the request and keeps what the BMC last reported.
    let failed = run(
        pending.clone(),
        NodeCommand::FailPower {
            error: "Failed to change power state".into(),
            power_state: Some("power off".into()),
        },
    )
    .await
    .unwrap();
    let after = replay(&and(pending, failed));
    assert_eq!(after.power_request, None);
    assert_eq!(after.power_state.as_deref(), Some("power off"));
    assert_eq!(
        after.last_error.as_deref(),
        Some("Failed to change power state")
    );
}

/// A BMC node in `deploying`, from `available`.
fn bmc_node_deploying() -> Vec<NodeEvent> {
    and(
        bmc_node(),
        [NodeEvent::DeployRequested {
            transition: Transition {
                event: FsmEvent::Deploy,
                from: Available,
                to: Deploying,
                target: Some(Active),
            },
            rebuild: false,
        }],
    )
}

fn record_power(state: &str) -> NodeCommand {
    NodeCommand::RecordPowerState {
        power_state: state.into(),
        at: "2026-12-02T04:00:00.000000".into(),
    }
}

#[tokio::test]
async fn a_deploys_first_power_off_is_recorded_once_even_when_the_node_was_off() {
    let off = and(bmc_node_deploying(), [powered("power off")]);
    // Off already: the confirmation is still recorded, once, and marks the
    // step done so a resumed deploy does not power the node off again.
    let confirmed = run(off.clone(), record_power("power off")).await.unwrap();
    assert_eq!(
        confirmed,
        vec![NodeEvent::PowerStateChanged {
            from: Some("power off".into()),
            to: "power off".into(),
            at: Some("2026-12-02T04:00:00.000000".into()),
        }]
    );
    let done = and(off, confirmed);
    assert!(replay(&done).deploy_powered_off);
    assert_eq!(
        run(done.clone(), record_power("power off")).await,
        Ok(vec![])
    );
    // Power on: recorded with its time; again, nothing.
    let on = run(done.clone(), record_power("power on")).await.unwrap();
    let after = replay(&and(done.clone(), on.clone()));
    assert_eq!(after.power_state.as_deref(), Some("power on"));
    assert!(after.deploy_powered_off, "still done for this deploy");
    assert_eq!(
        after.driver_internal_info["last_power_state_change"],
        "2026-12-02T04:00:00.000000"
    );
    assert_eq!(
        run(and(done, on), record_power("power on")).await,
        Ok(vec![])
    );
    assert!(matches!(
        run(bmc_node_deploying(), record_power("on")).await,
        Err(DomainError::Invalid(_))
    ));
}

#[tokio::test]
async fn a_new_deploy_starts_with_its_power_off_step_undone() {
    let mut history = and(bmc_node_deploying(), [powered("power off")]);
    history.extend(
        run(history.clone(), record_power("power off"))
            .await
            .unwrap(),
    );
    assert!(replay(&history).deploy_powered_off);
    // A failed deploy, then a new one.
    history.push(NodeEvent::DeployFailed {
        transition: Transition {
            event: FsmEvent::Fail,
            from: Deploying,
            to: DeployFailed,
            target: Some(Active),
        },
        last_error: "x".into(),
    });
    history.push(NodeEvent::DeployRequested {
        transition: Transition {
            event: FsmEvent::Deploy,
            from: DeployFailed,
            to: Deploying,
            target: Some(Active),
        },
        rebuild: false,
    });
    assert!(!replay(&history).deploy_powered_off);
}

#[tokio::test]
async fn a_bmc_nodes_power_state_is_recorded_from_the_bmc_never_set() {
    assert!(matches!(
        run(
            bmc_node(),
            NodeCommand::SetPowerState {
                at: None,
                target: "power on".into()
            }
        )
        .await,
        Err(DomainError::Invalid(_))
    ));
}

#[tokio::test]
async fn a_boot_device_is_recorded_once_and_not_during_a_power_change() {
    let set = NodeCommand::RecordBootDevice {
        device: "pxe".into(),
        persistent: true,
        mode: None,
    };
    let events = run(bmc_node(), set.clone()).await.unwrap();
    assert_eq!(
        events,
        vec![NodeEvent::BootDeviceSet {
            device: "pxe".into(),
            persistent: true,
            mode: None
        }]
    );
    let history = and(bmc_node(), events);
    assert_eq!(
        replay(&history).boot_device.map(|b| b.device),
        Some("pxe".into())
    );
    assert_eq!(run(history.clone(), set.clone()).await, Ok(vec![]));
    let once = NodeCommand::RecordBootDevice {
        device: "pxe".into(),
        persistent: false,
        mode: None,
    };
    assert_eq!(run(history, once).await.unwrap().len(), 1);
    let pending = and(
        bmc_node(),
        [NodeEvent::PowerChangeRequested {
            action: "power on".into(),
            target: "power on".into(),
            timeout: None,
        }],
    );
    assert!(matches!(
        run(pending, set).await,
        Err(DomainError::Conflict(_))
    ));
}

#[tokio::test]
async fn a_power_change_and_a_deploy_hold_each_other_off() {
    let power = NodeCommand::RequestPower {
        at: None,
        target: "power off".into(),
        timeout: None,
    };
    assert!(matches!(
        run(bmc_node_deploying(), power).await,
        Err(DomainError::Conflict(_))
    ));
    let pending = and(
        bmc_node(),
        [NodeEvent::PowerChangeRequested {
            action: "power on".into(),
            target: "power on".into(),
            timeout: None,
        }],
    );
    for verb in ["active", "deploy"] {
        assert!(matches!(
            run(
                pending.clone(),
                NodeCommand::Provision(ProvisionRequest::verb(verb))
            )
            .await,
            Err(DomainError::Conflict(_))
        ));
    }
    // A node without a BMC records its power at once, deploying or not.
    assert!(run(
        in_state(Deploying),
        NodeCommand::RequestPower {
            at: None,
            target: "power off".into(),
            timeout: None
        }
    )
    .await
    .is_ok());
}

/// A deploy (or rebuild) that cannot boot is refused when it is asked for,
/// with Ironic's conductor text, and writes nothing: no port, the `noop`
/// storage interface, no boot-index-0 target, no capability for the volume.
#[tokio::test]
async fn a_deploy_that_cannot_boot_is_refused_at_the_request() {
    let refused = |reason: String| {
        Err(DomainError::Invalid(format!(
            "Failed to validate deploy or power info for node {NODE}: {reason}"
        )))
    };
    let without = |drop: &dyn Fn(&NodeEvent) -> bool| -> Vec<NodeEvent> {
        bootable_in(Available)
            .into_iter()
            .filter(|e| !drop(e))
            .collect()
    };
    // Bootable: accepted.
    assert!(run(bootable_in(Available), provision("active"))
        .await
        .is_ok());

    let no_port = without(&|e| matches!(e, NodeEvent::PortAdded { .. }));
    let no_port_text = format!("Node {NODE} does not have any port associated with it");
    assert_eq!(
        run(no_port.clone(), provision("active")).await,
        refused(no_port_text.clone())
    );
    assert_eq!(
        run(no_port, provision("deploy")).await,
        refused(no_port_text.clone())
    );
    // A rebuild of an active node is validated the same way.
    let active_no_port: Vec<NodeEvent> = bootable_in(Active)
        .into_iter()
        .filter(|e| !matches!(e, NodeEvent::PortAdded { .. }))
        .collect();
    assert_eq!(
        run(active_no_port, provision("rebuild")).await,
        refused(no_port_text)
    );

    let mut noop = bootable_in(Available);
    noop[0] = enrolled_with(|e| {
        e.properties
            .insert("capabilities".into(), "iscsi_boot:True".into());
    });
    let Err(DomainError::Invalid(text)) = run(noop, provision("active")).await else {
        panic!("a noop storage interface must be refused");
    };
    assert!(
        text.starts_with(&format!(
            "Failed to validate deploy or power info for node {NODE}: Node {NODE} has the noop storage interface"
        )),
        "{text}"
    );

    let no_boot_target = and(
        without(&|e| matches!(e, NodeEvent::TargetCreated { .. })),
        [target_created(target(2, 1))],
    );
    let Err(DomainError::Invalid(text)) = run(no_boot_target, provision("active")).await else {
        panic!("no boot target must be refused");
    };
    assert!(text.contains("no volume target has boot index 0"), "{text}");

    // External storage: the operator's target properties must make a boot
    // script (Cinder fills them in for `cinder` storage, later).
    let no_iqn = and(
        without(&|e| matches!(e, NodeEvent::TargetCreated { .. })),
        [target_created(target(3, 0))],
    );
    let Err(DomainError::Invalid(text)) = run(no_iqn, provision("active")).await else {
        panic!("a target without its IQN must be refused");
    };
    assert!(
        text.contains("The boot script cannot be written: volume target")
            && text.contains("target_iqn is missing"),
        "{text}"
    );

    let mut no_capability = bootable_in(Available);
    no_capability[0] = enrolled_with(|e| {
        e.interfaces.insert("storage".into(), "external".into());
    });
    assert_eq!(
        run(no_capability, provision("active")).await,
        refused(format!(
            "Node {NODE} has an iSCSI boot volume defined and no iSCSI boot support available."
        ))
    );
}
