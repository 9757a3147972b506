//! Enrolment, provisioning verbs, power, deletion, and the deploy/undeploy
//! outcomes the process manager reports.

use super::commands::{EnrollNode, ProvisionRequest};
use super::events::{NodeEnrolled, NodeEvent, Transition};
use super::Node;
use crate::domain::bmc_access::Protocol;
use crate::domain::error::DomainError;
use crate::domain::hardware::HardwareCatalog;
use crate::domain::node_name::NodeName;
use crate::domain::state::{
    power_target_result, target_of, transition, FsmEvent, ProvisionState, POWER_OFF,
};

/// Keys of `EnrollNode::fields` that are not simple fields: a node created in
/// maintenance (`true`) and a node created already associated with an instance
/// (a UUID string). Each becomes its own event in the enrolment's commit.
pub const ENROLL_MAINTENANCE: &str = "maintenance";
pub const ENROLL_INSTANCE_UUID: &str = "instance_uuid";

impl Node {
    pub(super) fn enroll(
        &self,
        cmd: EnrollNode,
        catalog: &HardwareCatalog,
    ) -> Result<Vec<NodeEvent>, DomainError> {
        if self.exists {
            return Err(DomainError::Conflict(format!(
                "A node with UUID {} already exists.",
                cmd.uuid
            )));
        }
        if self.has_leftovers() {
            return Err(DomainError::Conflict(format!(
                "Node {} was deleted and its volumes or boot configuration are still being cleaned up; enrol it again once that is done.",
                self.id()
            )));
        }
        if let Some(name) = &cmd.name {
            if NodeName::parse(name).is_err() {
                return Err(DomainError::Invalid(format!(
                    "Cannot create node with invalid name '{name}'"
                )));
            }
        }
        if !matches!(
            cmd.initial_state,
            ProvisionState::Enroll | ProvisionState::Available
        ) {
            return Err(DomainError::Invalid(
                "A node starts in enroll or available.".into(),
            ));
        }
        // Ironic lets a node be created already in maintenance or already
        // associated with an instance; those are not simple fields but their
        // own events, recorded in the same commit as the enrolment.
        let mut cmd = cmd;
        let maintenance = match cmd.fields.remove(ENROLL_MAINTENANCE) {
            None | Some(serde_json::Value::Null) | Some(serde_json::Value::Bool(false)) => false,
            Some(serde_json::Value::Bool(true)) => true,
            Some(other) => {
                return Err(DomainError::Invalid(format!(
                    "Invalid value for maintenance: {other}"
                )))
            }
        };
        let instance_uuid = match cmd.fields.remove(ENROLL_INSTANCE_UUID) {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(u)) if uuid::Uuid::parse_str(&u).is_ok() => Some(u),
            Some(other) => {
                return Err(DomainError::Invalid(format!(
                    "Expected a UUID but received {other}."
                )))
            }
        };
        for key in cmd.fields.keys() {
            if !Node::SIMPLE_FIELDS.contains(&key.as_str()) {
                return Err(DomainError::Invalid(format!("Unknown node field '{key}'.")));
            }
        }
        for kind in cmd.interfaces.keys() {
            if !crate::domain::hardware::INTERFACE_KINDS.contains(&kind.as_str()) {
                return Err(DomainError::Invalid(format!(
                    "Unknown interface kind '{kind}'."
                )));
            }
        }
        let interfaces = catalog.resolve_all(&cmd.driver, &cmd.interfaces)?;
        let mut events = vec![NodeEvent::NodeEnrolled(NodeEnrolled {
            uuid: cmd.uuid,
            name: cmd.name,
            driver: cmd.driver,
            interfaces,
            properties: cmd.properties,
            instance_info: cmd.instance_info,
            driver_info: cmd.driver_info,
            extra: cmd.extra,
            fields: cmd.fields,
            provision_state: cmd.initial_state,
        })];
        if maintenance {
            events.push(NodeEvent::MaintenanceSet { reason: None });
        }
        if instance_uuid.is_some() {
            events.push(NodeEvent::InstanceAssociated {
                from: None,
                to: instance_uuid,
            });
        }
        Ok(events)
    }

    /// One FSM step from the current state, or Ironic's `InvalidStateRequested`
    /// naming `action`.
    fn step(&self, event: FsmEvent, action: &str) -> Result<Transition, DomainError> {
        self.step_from(self.state(), self.target_provision_state, event, action)
    }

    fn step_from(
        &self,
        from: ProvisionState,
        target: Option<ProvisionState>,
        event: FsmEvent,
        action: &str,
    ) -> Result<Transition, DomainError> {
        let to = transition(from, event, target)
            .ok_or_else(|| DomainError::invalid_state(action, &self.id(), from.as_str()))?;
        // Entering a transient state from a stable one sets a fresh target.
        let carried = if from.is_stable() { None } else { target };
        // A manual clean returns to manageable; every other cleaning (provide,
        // undeploy) ends in available.
        let target = match (from, event) {
            (ProvisionState::Manageable, FsmEvent::Clean) => Some(ProvisionState::Manageable),
            _ => target_of(to, carried),
        };
        Ok(Transition {
            event,
            from,
            to,
            target,
        })
    }

    /// Follows a transition with the engine's own `done` (verification,
    /// inspection, cleaning and adoption finish at once on the hardware types
    /// ironledger models).
    fn then_done(&self, first: Transition, action: &str) -> Result<Vec<NodeEvent>, DomainError> {
        let done = self.step_from(first.to, first.target, FsmEvent::Done, action)?;
        Ok(vec![
            NodeEvent::ProvisionStateChanged(first),
            NodeEvent::ProvisionStateChanged(done),
        ])
    }

    pub(super) fn provision(&self, req: &ProvisionRequest) -> Result<Vec<NodeEvent>, DomainError> {
        let verb = req.verb.as_str();
        let event = FsmEvent::from_verb(verb)
            .ok_or_else(|| DomainError::invalid_state(verb, &self.id(), self.state().as_str()))?;
        // Ironic's order (`docs/ironic-behaviour.md` §6.5): maintenance, then the state
        // machine, then misuse of the request's parameters.
        if self.maintenance && matches!(event, FsmEvent::Deploy | FsmEvent::Rebuild) {
            return Err(DomainError::Invalid(format!(
                "The provisioning operation can't be performed on node {} because it's in maintenance mode.",
                self.id()
            )));
        }
        // `deleting -clean-> cleaning` is the engine's own step once tear-down is
        // done (FinishUndeploy); an operator's `clean` is only for manageable
        // nodes (§6.4), and must not skip the tear-down.
        if event == FsmEvent::Clean && self.state() == ProvisionState::Deleting {
            return Err(DomainError::invalid_state(
                verb,
                &self.id(),
                self.state().as_str(),
            ));
        }
        let t = self.step(event, verb)?;
        // A retired node is on its way out: it is not handed out again.
        if event == FsmEvent::Provide && self.is_retired() {
            return Err(DomainError::Invalid(format!(
                "The providing operation can't be performed on node {} because it is retired.",
                self.id()
            )));
        }
        if req.configdrive.is_some() && !matches!(event, FsmEvent::Deploy | FsmEvent::Rebuild) {
            return Err(DomainError::Invalid(
                "Adding a config drive is only supported when setting provision state to active, rebuild".into(),
            ));
        }
        match (&req.clean_steps, event) {
            (None, FsmEvent::Clean) => {
                return Err(DomainError::Invalid(
                    "\"clean_steps\" is required when setting target provision state to clean"
                        .into(),
                ))
            }
            (Some(_), e) if e != FsmEvent::Clean => {
                return Err(DomainError::Invalid(
                    "\"clean_steps\" is only valid when setting target provision state to clean"
                        .into(),
                ))
            }
            _ => {}
        }
        if req.deploy_steps.is_some() && !matches!(event, FsmEvent::Deploy | FsmEvent::Rebuild) {
            return Err(DomainError::Invalid(
                "\"deploy_steps\" is only valid when setting target provision state to active or rebuild".into(),
            ));
        }
        // The conductor's own checks come after the API's: a protected node
        // cannot be rebuilt or torn down (Ironic's `NodeProtected`, 403).
        if self.is_protected() && matches!(event, FsmEvent::Rebuild | FsmEvent::Delete) {
            return Err(DomainError::node_protected(&self.id()));
        }
        // A BMC node's power change holds the node, as Ironic's lock does for
        // the whole change: the deploy would act on the same BMC meanwhile.
        if self.power_request.is_some()
            && matches!(
                event,
                FsmEvent::Deploy | FsmEvent::Rebuild | FsmEvent::Delete
            )
        {
            return Err(DomainError::Conflict(power_locked(&self.id())));
        }
        // Ironic's conductor validates power and deploy before it accepts a
        // deploy: what cannot boot is refused now, not failed later.
        if matches!(event, FsmEvent::Deploy | FsmEvent::Rebuild) {
            if let Some(reason) = crate::domain::interface_validation::deploy_refusal(self) {
                return Err(DomainError::Invalid(format!(
                    "Failed to validate deploy or power info for node {}: {reason}",
                    self.id()
                )));
            }
        }
        match event {
            FsmEvent::Deploy | FsmEvent::Rebuild => Ok(vec![NodeEvent::DeployRequested {
                transition: t,
                rebuild: event == FsmEvent::Rebuild,
            }]),
            FsmEvent::Delete => Ok(vec![NodeEvent::UndeployRequested(t)]),
            // Verification, cleaning, inspection and adoption have no work to do
            // on the hardware types ironledger models: they finish at once.
            FsmEvent::Manage if t.to == ProvisionState::Verifying => self.then_done(t, verb),
            FsmEvent::Provide | FsmEvent::Clean | FsmEvent::Inspect => self.then_done(t, verb),
            // Adoption takes the node over as it runs: the process manager
            // writes its boot configuration (a volume boot needs its iPXE
            // script), then finishes it.
            FsmEvent::Adopt => Ok(vec![NodeEvent::ProvisionStateChanged(t)]),
            _ => Ok(vec![NodeEvent::ProvisionStateChanged(t)]),
        }
    }

    /// The checks every power change passes (Ironic's API and conductor):
    /// a known target, and not while cleaning. Returns the state the node
    /// ends in.
    fn check_power(&self, target: &str) -> Result<&'static str, DomainError> {
        let to = power_target_result(target).ok_or_else(|| {
            DomainError::Invalid(format!(
                "Invalid power target '{target}'; expected one of 'power on', 'power off', 'rebooting', 'soft rebooting', 'soft power off'."
            ))
        })?;
        if matches!(
            self.state(),
            ProvisionState::Cleaning | ProvisionState::CleanWait
        ) {
            return Err(DomainError::invalid_state(
                target,
                &self.id(),
                self.state().as_str(),
            ));
        }
        Ok(to)
    }

    /// Records a power state directly: nodes without a BMC (the process
    /// manager's own power steps, and `fake-hardware` / `manual-management`
    /// through [`Self::request_power`]).
    pub(super) fn set_power(
        &self,
        target: &str,
        at: Option<String>,
    ) -> Result<Vec<NodeEvent>, DomainError> {
        let to = self.check_power(target)?;
        if Protocol::of_interface(self.interface("power")).is_some() {
            // A BMC node's power state is what its BMC reports: recorded by
            // `RecordPowerState` once the BMC confirms, never set blind.
            return Err(DomainError::Invalid(format!(
                "Node {} has a BMC: its power state is recorded from the BMC, not set.",
                self.id()
            )));
        }
        Ok(vec![NodeEvent::PowerStateChanged {
            from: self.power_state.clone(),
            to: to.to_string(),
            at,
        }])
    }

    /// A power state the node's BMC confirmed during a deploy or undeploy
    /// step. Recorded once: the same state again (a step redone after a
    /// crash) records nothing.
    pub(super) fn record_power(
        &self,
        power_state: &str,
        at: String,
    ) -> Result<Vec<NodeEvent>, DomainError> {
        super::decide_sync::valid_power(power_state)?;
        // A deploy's first step is recorded even when the node was off
        // already: it is what tells a resumed deploy the step is done.
        let deploy_off = self.state() == ProvisionState::Deploying
            && power_state == POWER_OFF
            && !self.deploy_powered_off;
        if self.power_state.as_deref() == Some(power_state) && !deploy_off {
            return Ok(vec![]);
        }
        Ok(vec![NodeEvent::PowerStateChanged {
            from: self.power_state.clone(),
            to: power_state.to_string(),
            at: Some(at),
        }])
    }

    /// A boot device the node's BMC accepted (or, without a BMC, the one the
    /// operator set). The same setting again records nothing. Refused while
    /// a power change holds the node (Ironic's node lock, 409).
    pub(super) fn record_boot_device(
        &self,
        device: String,
        persistent: bool,
        mode: Option<String>,
    ) -> Result<Vec<NodeEvent>, DomainError> {
        if self.power_request.is_some() {
            return Err(DomainError::Conflict(power_locked(&self.id())));
        }
        let setting = super::BootDeviceSetting {
            device,
            persistent,
            mode,
        };
        if self.boot_device.as_ref() == Some(&setting) {
            return Ok(vec![]);
        }
        Ok(vec![NodeEvent::BootDeviceSet {
            device: setting.device,
            persistent: setting.persistent,
            mode: setting.mode,
        }])
    }

    /// `PUT …/states/power`. A node whose power interface drives a BMC gets
    /// a request the process manager carries out; one power change at a time
    /// (Ironic holds the node's lock for the whole change, so a second one
    /// is its `NodeLocked`, 409). Other nodes record the state at once.
    pub(super) fn request_power(
        &self,
        target: &str,
        timeout: Option<u64>,
        at: Option<String>,
    ) -> Result<Vec<NodeEvent>, DomainError> {
        let to = self.check_power(target)?;
        if Protocol::of_interface(self.interface("power")).is_none() {
            return self.set_power(target, at);
        }
        if self.power_request.is_some() {
            return Err(DomainError::Conflict(power_locked(&self.id())));
        }
        // A deploy or undeploy drives the same BMC: it holds the node until
        // it is done, as Ironic's lock does.
        if matches!(
            self.state(),
            ProvisionState::Deploying | ProvisionState::Deleting
        ) {
            return Err(DomainError::Conflict(format!(
                "Node {} is locked by a {} in progress, please retry after the current operation is completed.",
                self.id(),
                if self.state() == ProvisionState::Deploying { "deploy" } else { "undeploy" }
            )));
        }
        Ok(vec![NodeEvent::PowerChangeRequested {
            action: target.to_string(),
            target: to.to_string(),
            timeout,
        }])
    }

    /// The BMC reached the target: recorded once (a repeated report of a
    /// request already closed records nothing).
    pub(super) fn finish_power(&self, power_state: String, at: String) -> Vec<NodeEvent> {
        if self.power_request.is_none() {
            return vec![];
        }
        vec![NodeEvent::PowerChangeDone {
            from: self.power_state.clone(),
            to: power_state,
            at,
        }]
    }

    pub(super) fn fail_power(&self, error: String, power_state: Option<String>) -> Vec<NodeEvent> {
        if self.power_request.is_none() {
            return vec![];
        }
        vec![NodeEvent::PowerChangeFailed {
            last_error: error,
            power_state,
        }]
    }

    pub(super) fn delete(&self) -> Result<Vec<NodeEvent>, DomainError> {
        // As Ironic's `destroy_node`: maintenance lets a hopelessly broken node
        // go even while associated; protection never does.
        if let Some(instance) = self.instance_uuid.as_ref().filter(|_| !self.maintenance) {
            return Err(DomainError::Conflict(format!(
                "Node {} is associated with instance {instance}.",
                self.id()
            )));
        }
        if self.is_protected() {
            return Err(DomainError::node_protected(&self.id()));
        }
        if let Some(m) = self.moves_out.first() {
            return Err(DomainError::Conflict(format!(
                "Node {} is moving {} {} to node {}; delete it once the move has ended.",
                self.id(),
                m.before.kind_name(),
                m.before.uuid(),
                m.to
            )));
        }
        if !self.state().node_delete_allowed() && !self.maintenance {
            return Err(DomainError::Conflict(format!(
                "Can not delete node \"{}\" while it is in provision state \"{}\". Valid provision states to perform deletion are: \"('manageable', 'enroll', 'adopt failed', 'available')\", or set the node into maintenance mode",
                self.id(),
                self.state()
            )));
        }
        Ok(vec![NodeEvent::NodeDeleted {
            ports: self.ports.clone(),
            connectors: self.connectors.clone(),
            targets: self.targets.clone(),
        }])
    }

    pub(super) fn finish_deploy(&self) -> Result<Vec<NodeEvent>, DomainError> {
        self.require_state(ProvisionState::Deploying, "deploy done")?;
        Ok(vec![NodeEvent::Deployed(
            self.step(FsmEvent::Done, "deploy done")?,
        )])
    }

    pub(super) fn finish_adopt(&self) -> Result<Vec<NodeEvent>, DomainError> {
        self.require_state(ProvisionState::Adopting, "adopt done")?;
        Ok(vec![NodeEvent::ProvisionStateChanged(
            self.step(FsmEvent::Done, "adopt done")?,
        )])
    }

    pub(super) fn fail_adopt(&self, error: String) -> Result<Vec<NodeEvent>, DomainError> {
        self.require_state(ProvisionState::Adopting, "adopt failed")?;
        Ok(vec![NodeEvent::AdoptFailed {
            transition: self.step(FsmEvent::Fail, "adopt failed")?,
            last_error: format!(
                "Error while attempting to adopt node {}: {error}.",
                self.id()
            ),
        }])
    }

    pub(super) fn fail_deploy(&self, error: String) -> Result<Vec<NodeEvent>, DomainError> {
        let t = self.step(FsmEvent::Fail, "deploy failed")?;
        if t.to != ProvisionState::DeployFailed {
            return Err(DomainError::invalid_state(
                "deploy failed",
                &self.id(),
                self.state().as_str(),
            ));
        }
        Ok(vec![NodeEvent::DeployFailed {
            transition: t,
            last_error: error,
        }])
    }

    pub(super) fn purge_targets(&self) -> Result<Vec<NodeEvent>, DomainError> {
        self.require_state(ProvisionState::Deleting, "purge targets")?;
        if self.targets.is_empty() {
            return Ok(vec![]);
        }
        Ok(vec![NodeEvent::TargetsPurged {
            targets: self.targets.clone(),
        }])
    }

    pub(super) fn finish_undeploy(&self) -> Result<Vec<NodeEvent>, DomainError> {
        self.require_state(ProvisionState::Deleting, "undeploy done")?;
        let to_cleaning = self.step(FsmEvent::Clean, "undeploy done")?;
        let done = self.step_from(
            to_cleaning.to,
            to_cleaning.target,
            FsmEvent::Done,
            "clean done",
        )?;
        let mut events = Vec::new();
        // Said out loud so the instance's claim is released with it.
        if self.instance_uuid.is_some() {
            events.push(NodeEvent::InstanceAssociated {
                from: self.instance_uuid.clone(),
                to: None,
            });
        }
        events.push(NodeEvent::Undeployed(to_cleaning));
        events.push(NodeEvent::ProvisionStateChanged(done));
        Ok(events)
    }

    pub(super) fn fail_undeploy(&self, error: String) -> Result<Vec<NodeEvent>, DomainError> {
        self.require_state(ProvisionState::Deleting, "undeploy failed")?;
        let t = self.step(FsmEvent::Fail, "undeploy failed")?;
        Ok(vec![NodeEvent::UndeployFailed {
            transition: t,
            last_error: format!("Failed to tear down: {error}"),
        }])
    }

    fn require_state(&self, state: ProvisionState, action: &str) -> Result<(), DomainError> {
        if self.state() == state {
            Ok(())
        } else {
            Err(DomainError::invalid_state(
                action,
                &self.id(),
                self.state().as_str(),
            ))
        }
    }
}

/// A second power change while one is pending, when the API's own check
/// (which names the host, as Ironic's `NodeLocked`) lost a race.
fn power_locked(node: &str) -> String {
    format!("Node {node} is locked by a pending power change, please retry after the current operation is completed.")
}
