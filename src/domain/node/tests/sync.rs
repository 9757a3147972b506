//! The periodic power-state sync's findings (`decide_sync`): Ironic's
//! `do_sync_power_state`, its max-retries handler and `_power_failure_recovery`.
//! Texts are written out from Ironic's source (ironic/conductor/manager.py).

use super::*;
use crate::domain::node::POWER_FAILURE;
use ProvisionState::*;

const AT: &str = "2026-12-02T04:00:00.000001";
const LATER: &str = "2026-12-02T04:00:07.000002";

/// A `redfish` node in `state`, with `power` recorded through its BMC.
fn bmc_node(state: ProvisionState, power: Option<&str>) -> Vec<NodeEvent> {
    let mut events = vec![enrolled_with(|e| {
        e.driver = "redfish".into();
        e.interfaces.insert("power".into(), "redfish".into());
        e.provision_state = Enroll;
    })];
    if state != Enroll {
        events.push(moved_to(state));
    }
    if let Some(p) = power {
        events.push(NodeEvent::PowerStateSynced {
            from: None,
            to: p.into(),
            at: "2026-12-01T00:00:00.000000".into(),
        });
    }
    events
}

fn sync(power_state: &str) -> NodeCommand {
    NodeCommand::SyncPowerState {
        power_state: power_state.into(),
        at: AT.into(),
    }
}

fn last_change(node: &Node) -> Option<&str> {
    node.driver_internal_info
        .get("last_power_state_change")
        .and_then(Value::as_str)
}

#[tokio::test]
async fn a_first_reading_is_recorded_without_a_change_time() {
    let given = bmc_node(Available, None);
    let events = run(given.clone(), sync("power off")).await.unwrap();
    assert_eq!(
        events,
        vec![NodeEvent::PowerStateSynced {
            from: None,
            to: "power off".into(),
            at: AT.into(),
        }]
    );
    let node = replay(&and(given, events));
    assert_eq!(node.power_state.as_deref(), Some("power off"));
    assert_eq!(last_change(&node), None, "nothing changed: it became known");
}

#[tokio::test]
async fn the_recorded_state_read_again_records_nothing() {
    assert_eq!(
        run(bmc_node(Active, Some("power on")), sync("power on")).await,
        Ok(vec![])
    );
}

#[tokio::test]
async fn a_change_made_out_of_band_is_recorded_with_when_it_was_seen() {
    let given = bmc_node(Active, Some("power on"));
    let events = run(given.clone(), sync("power off")).await.unwrap();
    assert_eq!(
        events,
        vec![NodeEvent::PowerStateSynced {
            from: Some("power on".into()),
            to: "power off".into(),
            at: AT.into(),
        }]
    );
    let node = replay(&and(given, events));
    assert_eq!(node.power_state.as_deref(), Some("power off"));
    assert_eq!(last_change(&node), Some(AT));
}

#[tokio::test]
async fn a_restored_state_keeps_the_record_and_says_what_was_found() {
    let given = bmc_node(Active, Some("power on"));
    let events = run(
        given.clone(),
        NodeCommand::RecordPowerRestored {
            found: "power off".into(),
            seen_at: AT.into(),
            at: LATER.into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(
        events,
        vec![NodeEvent::PowerStateRestored {
            found: "power off".into(),
            to: "power on".into(),
            seen_at: AT.into(),
            at: LATER.into(),
        }]
    );
    let node = replay(&and(given, events));
    assert_eq!(node.power_state.as_deref(), Some("power on"));
    assert_eq!(last_change(&node), Some(LATER));
    assert_eq!(node.last_error, None);
}

#[tokio::test]
async fn a_restore_that_failed_sets_last_error_in_ironics_words() {
    let given = bmc_node(Available, Some("power off"));
    let events = run(
        given.clone(),
        NodeCommand::RecordPowerRestoreFailed {
            found: "power on".into(),
            seen_at: AT.into(),
            error: "Redfish power off of http://bmc failed: no answer".into(),
        },
    )
    .await
    .unwrap();
    let node = replay(&and(given, events.clone()));
    assert_eq!(
        node.last_error.as_deref(),
        Some("Failed to change power state to 'power off' by 'power off': Redfish power off of http://bmc failed: no answer")
    );
    assert_eq!(node.power_state.as_deref(), Some("power off"));
    assert!(!node.maintenance);
    assert!(matches!(
        &events[..],
        [NodeEvent::PowerStateRestoreFailed { found, wanted, .. }] if found == "power on" && wanted == "power off"
    ));
}

#[tokio::test]
async fn spent_retries_of_an_unreadable_bmc_mean_maintenance_with_ironics_reason() {
    let given = bmc_node(Active, Some("power on"));
    let events = run(
        given.clone(),
        NodeCommand::FailPowerSync {
            power_state: None,
            error: Some("Redfish power state of http://bmc failed: connection refused".into()),
            at: AT.into(),
        },
    )
    .await
    .unwrap();
    let reason = format!(
        "During sync_power_state, max retries exceeded for node {NODE}, node state None does not match expected state 'power on'. Updating DB state to 'None' Switching node to maintenance mode. Error: Redfish power state of http://bmc failed: connection refused"
    );
    assert_eq!(
        events,
        vec![NodeEvent::PowerSyncFailed {
            from: Some("power on".into()),
            power_state: None,
            reason: reason.clone(),
            fault: "power failure".into(),
            at: AT.into(),
        }]
    );
    let node = replay(&and(given, events));
    assert!(node.maintenance);
    assert_eq!(node.maintenance_reason.as_deref(), Some(reason.as_str()));
    assert_eq!(node.last_error.as_deref(), Some(reason.as_str()));
    assert_eq!(node.fault.as_deref(), Some(POWER_FAILURE));
    assert_eq!(node.power_state, None, "Ironic records the unknown state");
    assert_eq!(node.provision_state, Some(Active), "provisioning untouched");
}

#[tokio::test]
async fn spent_retries_of_a_state_that_will_not_stay_record_the_bmcs_state() {
    let given = bmc_node(Active, Some("power on"));
    let events = run(
        given.clone(),
        NodeCommand::FailPowerSync {
            power_state: Some("power off".into()),
            error: None,
            at: AT.into(),
        },
    )
    .await
    .unwrap();
    let node = replay(&and(given, events));
    assert_eq!(
        node.maintenance_reason.as_deref(),
        Some(format!("During sync_power_state, max retries exceeded for node {NODE}, node state power off does not match expected state 'power on'. Updating DB state to 'power off' Switching node to maintenance mode.").as_str())
    );
    assert_eq!(node.power_state.as_deref(), Some("power off"));
    assert_eq!(last_change(&node), Some(AT));
}

#[tokio::test]
async fn the_sync_records_nothing_on_nodes_it_leaves_alone() {
    let findings = || {
        vec![
            sync("power off"),
            NodeCommand::RecordPowerRestored {
                found: "power off".into(),
                seen_at: AT.into(),
                at: LATER.into(),
            },
            NodeCommand::RecordPowerRestoreFailed {
                found: "power off".into(),
                seen_at: AT.into(),
                error: "x".into(),
            },
            NodeCommand::FailPowerSync {
                power_state: None,
                error: Some("x".into()),
                at: AT.into(),
            },
        ]
    };
    let mut alone = vec![
        (
            "maintenance",
            and(bmc_node(Active, Some("power on")), [maintenance_on()]),
        ),
        (
            "power request",
            and(
                bmc_node(Active, Some("power on")),
                [NodeEvent::PowerChangeRequested {
                    action: "power off".into(),
                    target: "power off".into(),
                    timeout: None,
                }],
            ),
        ),
    ];
    // Ironic's SYNC_EXCLUDED_STATES, and the states ironledger's process
    // manager drives the BMC in.
    for state in [
        WaitCallBack,
        CleanWait,
        Enroll,
        AdoptFailed,
        Deploying,
        Deleting,
        Adopting,
        Cleaning,
    ] {
        alone.push(("excluded state", bmc_node(state, Some("power on"))));
    }
    for (why, given) in alone {
        assert!(!replay(&given).power_syncable(), "{why}");
        for cmd in findings() {
            assert_eq!(
                run(given.clone(), cmd.clone()).await,
                Ok(vec![]),
                "{why}: {cmd:?}"
            );
        }
    }
    // Every other state is synced.
    for state in ALL_STATES {
        let node = replay(&bmc_node(state, Some("power on")));
        let excluded = matches!(
            state,
            WaitCallBack
                | CleanWait
                | Enroll
                | AdoptFailed
                | Deploying
                | Deleting
                | Adopting
                | Cleaning
        );
        assert_eq!(node.power_syncable(), !excluded, "{state:?}");
    }
}

#[tokio::test]
async fn a_node_without_a_bmc_is_not_synced() {
    let given = and(in_state(Available), [powered("power on")]);
    assert!(!replay(&given).power_syncable());
    assert!(matches!(
        run(given, sync("power off")).await,
        Err(DomainError::Invalid(_))
    ));
}

#[tokio::test]
async fn an_unknown_power_state_is_refused() {
    assert!(matches!(
        run(bmc_node(Available, None), sync("error")).await,
        Err(DomainError::Invalid(_))
    ));
}

#[tokio::test]
async fn disable_power_off_means_the_state_is_not_forced() {
    let mut given = bmc_node(Active, Some("power on"));
    assert!(replay(&given).power_sync_may_force());
    given.push(NodeEvent::NodeUpdated {
        changes: [("disable_power_off".to_string(), Value::Bool(true))].into(),
    });
    assert!(!replay(&given).power_sync_may_force());
}

/// A node put in maintenance by the sync.
fn power_failed() -> Vec<NodeEvent> {
    and(
        bmc_node(Active, Some("power on")),
        [NodeEvent::PowerSyncFailed {
            from: Some("power on".into()),
            power_state: None,
            reason: "During sync_power_state, max retries exceeded …".into(),
            fault: POWER_FAILURE.into(),
            at: AT.into(),
        }],
    )
}

#[tokio::test]
async fn recovery_clears_maintenance_reason_and_fault() {
    let given = power_failed();
    assert!(replay(&given).power_failure_recoverable());
    let events = run(
        given.clone(),
        NodeCommand::RecoverPowerFailure {
            power_state: "power on".into(),
            at: LATER.into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(
        events,
        vec![NodeEvent::PowerFailureRecovered {
            from: None,
            power_state: "power on".into(),
            at: LATER.into(),
        }]
    );
    let node = replay(&and(given, events));
    assert!(!node.maintenance);
    assert_eq!(node.maintenance_reason, None);
    assert_eq!(node.fault, None);
    assert_eq!(node.power_state.as_deref(), Some("power on"));
    assert!(node.power_syncable(), "synced again from now on");
}

#[tokio::test]
async fn recovery_leaves_maintenance_an_operator_set_alone() {
    let recover = NodeCommand::RecoverPowerFailure {
        power_state: "power on".into(),
        at: LATER.into(),
    };
    let operator = and(bmc_node(Active, Some("power on")), [maintenance_on()]);
    assert!(!replay(&operator).power_failure_recoverable());
    assert_eq!(run(operator, recover.clone()).await, Ok(vec![]));
    // Nor a node in enroll (Ironic's condition).
    let failed = power_failed().last().unwrap().clone();
    let enroll = and(bmc_node(Enroll, Some("power on")), [failed]);
    assert!(!replay(&enroll).power_failure_recoverable());
    assert_eq!(run(enroll, recover).await, Ok(vec![]));
}

#[tokio::test]
async fn unsetting_maintenance_clears_the_fault() {
    let node = replay(&and(power_failed(), [NodeEvent::MaintenanceUnset]));
    assert_eq!(node.fault, None);
    assert!(!node.maintenance);
}
