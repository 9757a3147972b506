//! Ironic's provisioning state machine and power states.
//!
//! States serialize to Ironic's exact strings (`"wait call-back"`, `"deploy failed"`),
//! so events and read models carry what an operator sees in `baremetal node show`.
//! The transition table is the one Ironic's conductor uses for the states
//! ironledger models; [`transition`] is the only place that knows it.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A node's provision state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ProvisionState {
    #[serde(rename = "enroll")]
    Enroll,
    #[serde(rename = "verifying")]
    Verifying,
    #[serde(rename = "manageable")]
    Manageable,
    #[serde(rename = "inspecting")]
    Inspecting,
    #[serde(rename = "inspect wait")]
    InspectWait,
    #[serde(rename = "inspect failed")]
    InspectFailed,
    #[serde(rename = "cleaning")]
    Cleaning,
    #[serde(rename = "clean wait")]
    CleanWait,
    #[serde(rename = "clean failed")]
    CleanFailed,
    #[serde(rename = "clean hold")]
    CleanHold,
    #[serde(rename = "available")]
    Available,
    #[serde(rename = "deploying")]
    Deploying,
    #[serde(rename = "wait call-back")]
    WaitCallBack,
    #[serde(rename = "deploy failed")]
    DeployFailed,
    #[serde(rename = "deploy hold")]
    DeployHold,
    #[serde(rename = "active")]
    Active,
    #[serde(rename = "deleting")]
    Deleting,
    #[serde(rename = "error")]
    Error,
    #[serde(rename = "adopting")]
    Adopting,
    #[serde(rename = "adopt failed")]
    AdoptFailed,
}

impl ProvisionState {
    /// Every provision state, in the order of the enum (`_every_state_is_listed`
    /// below stops compiling when a state is added and not listed here).
    pub const ALL: [ProvisionState; 20] = {
        use ProvisionState::*;
        [
            Enroll,
            Verifying,
            Manageable,
            Inspecting,
            InspectWait,
            InspectFailed,
            Cleaning,
            CleanWait,
            CleanFailed,
            CleanHold,
            Available,
            Deploying,
            WaitCallBack,
            DeployFailed,
            DeployHold,
            Active,
            Deleting,
            Error,
            Adopting,
            AdoptFailed,
        ]
    };

    #[allow(dead_code)]
    fn _every_state_is_listed(self) {
        use ProvisionState::*;
        match self {
            Enroll | Verifying | Manageable | Inspecting | InspectWait | InspectFailed
            | Cleaning | CleanWait | CleanFailed | CleanHold | Available | Deploying
            | WaitCallBack | DeployFailed | DeployHold | Active | Deleting | Error | Adopting
            | AdoptFailed => {}
        }
    }

    /// Ironic's wire name.
    pub fn as_str(self) -> &'static str {
        use ProvisionState::*;
        match self {
            Enroll => "enroll",
            Verifying => "verifying",
            Manageable => "manageable",
            Inspecting => "inspecting",
            InspectWait => "inspect wait",
            InspectFailed => "inspect failed",
            Cleaning => "cleaning",
            CleanWait => "clean wait",
            CleanFailed => "clean failed",
            CleanHold => "clean hold",
            Available => "available",
            Deploying => "deploying",
            WaitCallBack => "wait call-back",
            DeployFailed => "deploy failed",
            DeployHold => "deploy hold",
            Active => "active",
            Deleting => "deleting",
            Error => "error",
            Adopting => "adopting",
            AdoptFailed => "adopt failed",
        }
    }

    /// Stable states do not move without a request (Ironic's `STABLE_STATES`).
    pub fn is_stable(self) -> bool {
        use ProvisionState::*;
        matches!(self, Enroll | Manageable | Available | Active | Error)
    }

    /// States in which a node may be patched while a target state is set
    /// (Ironic's `UPDATE_ALLOWED_STATES`, restricted to the states modelled here).
    pub fn update_allowed(self) -> bool {
        use ProvisionState::*;
        matches!(
            self,
            DeployFailed
                | Inspecting
                | InspectFailed
                | InspectWait
                | CleanFailed
                | Error
                | Verifying
                | AdoptFailed
        )
    }

    /// States in which a node's interfaces (including `storage_interface`) may change.
    pub fn interface_change_allowed(self) -> bool {
        use ProvisionState::*;
        matches!(
            self,
            Enroll | Inspecting | InspectWait | Manageable | Available
        )
    }

    /// States in which volume connectors and targets may be deleted regardless of
    /// power state (Ironic's `DELETE_ALLOWED_STATES` for volume resources).
    pub fn volume_delete_allowed(self) -> bool {
        use ProvisionState::*;
        matches!(self, Manageable | Enroll | AdoptFailed)
    }

    /// States in which the node itself may be deleted (Ironic's
    /// `DELETE_ALLOWED_STATES` plus `available`, as with the default
    /// `[conductor] allow_deleting_available_nodes = True`).
    pub fn node_delete_allowed(self) -> bool {
        use ProvisionState::*;
        matches!(self, Manageable | Enroll | AdoptFailed | Available)
    }
}

impl fmt::Display for ProvisionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event of the state machine: the verbs operators send, and the outcomes
/// (`done`, `fail`, …) the engine itself reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsmEvent {
    Manage,
    Provide,
    Inspect,
    Clean,
    Deploy,
    Rebuild,
    Delete,
    Abort,
    Adopt,
    Done,
    Fail,
    Wait,
    Resume,
}

impl FsmEvent {
    pub fn as_str(self) -> &'static str {
        use FsmEvent::*;
        match self {
            Manage => "manage",
            Provide => "provide",
            Inspect => "inspect",
            Clean => "clean",
            Deploy => "deploy",
            Rebuild => "rebuild",
            Delete => "delete",
            Abort => "abort",
            Adopt => "adopt",
            Done => "done",
            Fail => "fail",
            Wait => "wait",
            Resume => "resume",
        }
    }
}

impl FsmEvent {
    /// The event a provision verb (`PUT …/states/provision {"target": …}`)
    /// names, if ironledger models it: `active`/`deploy` and
    /// `deleted`/`undeploy` are aliases.
    /// Every verb [`FsmEvent::from_verb`] knows (`PUT …/states/provision`
    /// `target`): any other is refused, so the API documents these.
    pub const VERBS: &'static [&'static str] = &[
        "manage", "provide", "active", "deploy", "rebuild", "deleted", "undeploy", "abort",
        "inspect", "clean", "adopt",
    ];

    pub fn from_verb(verb: &str) -> Option<FsmEvent> {
        use FsmEvent::*;
        Some(match verb {
            "manage" => Manage,
            "provide" => Provide,
            "active" | "deploy" => Deploy,
            "rebuild" => Rebuild,
            "deleted" | "undeploy" => Delete,
            "abort" => Abort,
            "inspect" => Inspect,
            "clean" => Clean,
            "adopt" => Adopt,
            _ => return None,
        })
    }
}

/// Where a state goes on an event, or `None` when the machine refuses it.
///
/// `target` is the state the node is heading for (`target_provision_state`); it
/// decides where `cleaning` ends (`available` after provide or undeploy,
/// `manageable` after a manual clean).
pub fn transition(
    from: ProvisionState,
    event: FsmEvent,
    target: Option<ProvisionState>,
) -> Option<ProvisionState> {
    use FsmEvent as E;
    use ProvisionState::*;
    let to = match (from, event) {
        (Enroll, E::Manage) => Verifying,
        (Verifying, E::Done) => Manageable,
        (Verifying, E::Fail) => Enroll,

        (Manageable, E::Provide) => Cleaning,
        (Manageable, E::Clean) => Cleaning,
        (Manageable, E::Inspect) => Inspecting,
        (Manageable, E::Adopt) => Adopting,
        (Available, E::Manage) => Manageable,

        (Inspecting, E::Done) => Manageable,
        (Inspecting, E::Fail) => InspectFailed,
        (Inspecting, E::Wait) => InspectWait,
        (InspectWait, E::Done) => Manageable,
        (InspectWait, E::Fail) => InspectFailed,
        (InspectWait, E::Abort) => InspectFailed,
        (InspectFailed, E::Manage) => Manageable,
        (InspectFailed, E::Inspect) => Inspecting,

        (Cleaning, E::Done) => match target {
            Some(Manageable) => Manageable,
            _ => Available,
        },
        (Cleaning, E::Fail) => CleanFailed,
        (Cleaning, E::Wait) => CleanWait,
        (Cleaning, E::Manage) => Manageable,
        (CleanWait, E::Resume) => Cleaning,
        (CleanWait, E::Fail) => CleanFailed,
        (CleanWait, E::Abort) => CleanFailed,
        (CleanHold, E::Abort) => CleanFailed,
        (CleanFailed, E::Manage) => Manageable,

        (Available, E::Deploy) => Deploying,
        (DeployFailed, E::Deploy) => Deploying,
        (Active, E::Rebuild) | (DeployFailed, E::Rebuild) | (Error, E::Rebuild) => Deploying,
        (Deploying, E::Done) => Active,
        (Deploying, E::Fail) => DeployFailed,
        (Deploying, E::Wait) => WaitCallBack,
        (WaitCallBack, E::Resume) => Deploying,
        (WaitCallBack, E::Fail) => DeployFailed,
        (WaitCallBack, E::Abort) => DeployFailed,
        (DeployHold, E::Abort) => DeployFailed,

        (Active, E::Delete)
        | (WaitCallBack, E::Delete)
        | (DeployFailed, E::Delete)
        | (Error, E::Delete) => Deleting,
        (Deleting, E::Clean) => Cleaning,
        (Deleting, E::Fail) => Error,

        (Adopting, E::Done) => Active,
        (Adopting, E::Fail) => AdoptFailed,
        (AdoptFailed, E::Adopt) => Adopting,
        (AdoptFailed, E::Manage) => Manageable,
        _ => return None,
    };
    Some(to)
}

/// The `target_provision_state` a node shows while in `state`, given the target
/// it had: `None` once a stable state is reached.
pub fn target_of(
    state: ProvisionState,
    previous_target: Option<ProvisionState>,
) -> Option<ProvisionState> {
    use ProvisionState::*;
    match state {
        s if s.is_stable() => None,
        Verifying | Inspecting | InspectWait | InspectFailed => Some(Manageable),
        Deploying | WaitCallBack | DeployFailed | DeployHold | Adopting | AdoptFailed => {
            Some(Active)
        }
        Cleaning | CleanWait | CleanFailed | CleanHold => match previous_target {
            Some(Manageable) => Some(Manageable),
            _ => Some(Available),
        },
        Deleting => Some(Available),
        _ => None,
    }
}

/// Power states a node reports (`null` until first known).
pub const POWER_ON: &str = "power on";
pub const POWER_OFF: &str = "power off";

/// Power targets the `states/power` endpoint accepts, with the state each ends in.
/// Every power target [`power_target_result`] knows (`PUT …/states/power`).
pub const POWER_TARGETS: &[&str] = &[
    "power on",
    "power off",
    "rebooting",
    "soft rebooting",
    "soft power off",
];

pub fn power_target_result(target: &str) -> Option<&'static str> {
    match target {
        "power on" => Some(POWER_ON),
        "power off" => Some(POWER_OFF),
        "rebooting" => Some(POWER_ON),
        "soft rebooting" => Some(POWER_ON),
        "soft power off" => Some(POWER_OFF),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listed_verbs_and_power_targets_are_the_known_ones() {
        for v in FsmEvent::VERBS {
            assert!(FsmEvent::from_verb(v).is_some(), "{v}");
        }
        for t in POWER_TARGETS {
            assert!(power_target_result(t).is_some(), "{t}");
        }
        // And nothing else is known (Ironic's verbs ironledger does not model).
        for v in ["rescue", "unrescue", "service", "unhold", "bogus"] {
            assert!(FsmEvent::from_verb(v).is_none(), "{v}");
        }
        assert!(power_target_result("power cycle").is_none());
    }

    #[test]
    fn wire_names_round_trip() {
        for s in [
            ProvisionState::WaitCallBack,
            ProvisionState::DeployFailed,
            ProvisionState::Enroll,
            ProvisionState::AdoptFailed,
        ] {
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.as_str()));
            assert_eq!(serde_json::from_str::<ProvisionState>(&json).unwrap(), s);
        }
    }

    #[test]
    fn cleaning_ends_where_the_target_says() {
        use ProvisionState::*;
        assert_eq!(
            transition(Cleaning, FsmEvent::Done, Some(Available)),
            Some(Available)
        );
        assert_eq!(
            transition(Cleaning, FsmEvent::Done, Some(Manageable)),
            Some(Manageable)
        );
    }

    #[test]
    fn happy_path_of_the_guide() {
        use FsmEvent as E;
        use ProvisionState::*;
        let path = [
            (Enroll, E::Manage, Verifying),
            (Verifying, E::Done, Manageable),
            (Manageable, E::Provide, Cleaning),
            (Cleaning, E::Done, Available),
            (Available, E::Deploy, Deploying),
            (Deploying, E::Wait, WaitCallBack),
            (WaitCallBack, E::Resume, Deploying),
            (Deploying, E::Done, Active),
            (Active, E::Delete, Deleting),
            (Deleting, E::Clean, Cleaning),
            (Cleaning, E::Done, Available),
        ];
        let mut target = None;
        for (from, ev, to) in path {
            assert_eq!(
                transition(from, ev, target),
                Some(to),
                "{from} -{}->",
                ev.as_str()
            );
            target = target_of(to, target);
        }
    }

    #[test]
    fn refused_transitions() {
        use FsmEvent as E;
        use ProvisionState::*;
        assert_eq!(transition(Enroll, E::Deploy, None), None);
        assert_eq!(transition(Active, E::Deploy, None), None);
        assert_eq!(transition(Available, E::Delete, None), None);
        assert_eq!(transition(Manageable, E::Deploy, None), None);
        assert_eq!(transition(Deploying, E::Abort, None), None);
    }
}
