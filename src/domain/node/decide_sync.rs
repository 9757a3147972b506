//! What the periodic power-state sync finds on a BMC node, and what it
//! records: Ironic's `do_sync_power_state`,
//! `handle_sync_power_state_max_retries_exceeded` and
//! `_power_failure_recovery` (ironic/conductor/manager.py), as rules on the
//! node. The sync itself (`effects::power_sync`) reads the BMC, keeps the
//! failure counts and asks the BMC to restore a state; every finding comes
//! here as a command.
//!
//! Each command re-checks what the sync checked before acting, as Ironic
//! repeats its checks once it holds the exclusive lock: a node that went
//! into maintenance, into a state the sync leaves alone, or got a power
//! request meanwhile records nothing (an empty decision, not an error — the
//! sync simply found nothing to do).

use super::events::NodeEvent;
use super::Node;
use crate::domain::bmc_access::Protocol;
use crate::domain::error::DomainError;
use crate::domain::state::{ProvisionState, POWER_OFF, POWER_ON};

/// Ironic's fault for a node the sync gave up on (`ironic.common.faults`).
pub const POWER_FAILURE: &str = "power failure";

/// Python's `str()` of an optional power state, as Ironic's texts print it.
fn py(state: Option<&str>) -> &str {
    state.unwrap_or("None")
}

/// Ironic's maintenance reason (and `last_error`) when the sync's retries are
/// spent: `actual` is what the BMC reports (`None` when it could not be
/// read), `error` why the last read failed.
pub fn max_retries_reason(
    node: &str,
    actual: Option<&str>,
    recorded: Option<&str>,
    error: Option<&str>,
) -> String {
    let actual = py(actual);
    let mut msg = format!(
        "During sync_power_state, max retries exceeded for node {node}, node state {actual} does not match expected state '{}'. Updating DB state to '{actual}' Switching node to maintenance mode.",
        py(recorded)
    );
    if let Some(e) = error {
        msg.push_str(&format!(" Error: {e}"));
    }
    msg
}

/// Ironic's `node_power_action` text when the BMC could not put the state
/// back (it is called with the recorded state as the new state).
pub fn restore_failed_error(state: &str, error: &str) -> String {
    format!("Failed to change power state to '{state}' by '{state}': {error}")
}

/// A power state a BMC can report: `power on` or `power off`.
pub(super) fn valid_power(state: &str) -> Result<(), DomainError> {
    if matches!(state, POWER_ON | POWER_OFF) {
        Ok(())
    } else {
        Err(DomainError::Invalid(format!(
            "Invalid power state '{state}'."
        )))
    }
}

impl Node {
    /// The node's power interface drives a BMC the sync can read.
    pub fn has_bmc(&self) -> bool {
        Protocol::of_interface(self.interface("power")).is_some()
    }

    /// Provision states the sync leaves alone: Ironic's
    /// `SYNC_EXCLUDED_STATES` (`deploy wait` — here `wait call-back` —,
    /// `clean wait`, `enroll`, `adopt failed`), and the states in which
    /// ironledger's process manager drives the BMC itself (`deploying`,
    /// `deleting`, `adopting`, `cleaning`: in Ironic those hold the node's
    /// lock, so its sync skips them too).
    pub fn power_sync_excluded_state(&self) -> bool {
        use ProvisionState::*;
        matches!(
            self.state(),
            WaitCallBack
                | CleanWait
                | Enroll
                | AdoptFailed
                | Deploying
                | Deleting
                | Adopting
                | Cleaning
        )
    }

    /// Whether the periodic sync looks at this node at all: a BMC node, not
    /// in maintenance, in no excluded state, with no power change pending.
    pub fn power_syncable(&self) -> bool {
        self.exists
            && self.has_bmc()
            && !self.maintenance
            && !self.power_sync_excluded_state()
            && self.power_request.is_none()
    }

    /// Whether the sync may ask the BMC to put the recorded state back:
    /// Ironic never forces a node whose `disable_power_off` is set (it falls
    /// back to recording what it found).
    pub fn power_sync_may_force(&self) -> bool {
        self.fields.get("disable_power_off") != Some(&serde_json::Value::Bool(true))
    }

    /// Whether the power-failure recovery looks at this node: in maintenance
    /// with Ironic's `power failure` fault, not in `enroll`, no power change
    /// pending (Ironic's `_power_failure_recovery` conditions).
    pub fn power_failure_recoverable(&self) -> bool {
        self.exists
            && self.has_bmc()
            && self.maintenance
            && self.fault.as_deref() == Some(POWER_FAILURE)
            && self.state() != ProvisionState::Enroll
            && self.power_request.is_none()
    }

    fn require_bmc(&self) -> Result<(), DomainError> {
        if self.has_bmc() {
            Ok(())
        } else {
            Err(DomainError::Invalid(format!(
                "Node {} has no BMC: its power state is not synced.",
                self.id()
            )))
        }
    }

    /// The sync read `power_state` from the BMC at `at`. Nothing recorded
    /// yet: the state is recorded. The same as recorded: nothing. Another
    /// state: recorded as a change made out of band (the sync asks this only
    /// when it does not force the state back).
    pub(super) fn sync_power(
        &self,
        power_state: String,
        at: String,
    ) -> Result<Vec<NodeEvent>, DomainError> {
        self.require_bmc()?;
        valid_power(&power_state)?;
        if !self.power_syncable() || self.power_state.as_deref() == Some(power_state.as_str()) {
            return Ok(vec![]);
        }
        Ok(vec![NodeEvent::PowerStateSynced {
            from: self.power_state.clone(),
            to: power_state,
            at,
        }])
    }

    /// The recorded state a restore of `found` puts back: `None` (nothing to
    /// record) when the node has no recorded state, is no longer synced, or
    /// is back in the recorded state — the checks both outcomes of a
    /// restore make under the node's lock.
    fn restorable(&self, found: &str) -> Result<Option<String>, DomainError> {
        self.require_bmc()?;
        valid_power(found)?;
        Ok(self
            .power_state
            .clone()
            .filter(|recorded| self.power_syncable() && recorded != found))
    }

    /// The sync found the BMC in `found` (at `seen_at`) and had it put the
    /// recorded state back (confirmed at `at`).
    pub(super) fn sync_power_restored(
        &self,
        found: String,
        seen_at: String,
        at: String,
    ) -> Result<Vec<NodeEvent>, DomainError> {
        let Some(recorded) = self.restorable(&found)? else {
            return Ok(vec![]);
        };
        Ok(vec![NodeEvent::PowerStateRestored {
            found,
            to: recorded,
            seen_at,
            at,
        }])
    }

    /// The sync found the BMC in `found` (at `seen_at`) and could not put
    /// the recorded state back: `last_error` in Ironic's words.
    pub(super) fn sync_power_restore_failed(
        &self,
        found: String,
        seen_at: String,
        error: String,
    ) -> Result<Vec<NodeEvent>, DomainError> {
        let Some(recorded) = self.restorable(&found)? else {
            return Ok(vec![]);
        };
        Ok(vec![NodeEvent::PowerStateRestoreFailed {
            last_error: restore_failed_error(&recorded, &error),
            found,
            wanted: recorded,
            seen_at,
        }])
    }

    /// The sync's retries are spent (`power_state_sync_max_retries`): the
    /// recorded power state becomes what the BMC reports (`None`: it could
    /// not be read, as Ironic records it), and the node goes into
    /// maintenance with Ironic's reason and the `power failure` fault.
    pub(super) fn fail_power_sync(
        &self,
        power_state: Option<String>,
        error: Option<String>,
        at: String,
    ) -> Result<Vec<NodeEvent>, DomainError> {
        self.require_bmc()?;
        if let Some(s) = &power_state {
            valid_power(s)?;
        }
        if !self.power_syncable() {
            return Ok(vec![]);
        }
        let reason = max_retries_reason(
            &self.id(),
            power_state.as_deref(),
            self.power_state.as_deref(),
            error.as_deref(),
        );
        Ok(vec![NodeEvent::PowerSyncFailed {
            from: self.power_state.clone(),
            power_state,
            reason,
            fault: POWER_FAILURE.to_string(),
            at,
        }])
    }

    /// The BMC of a node in maintenance for a power failure answers again
    /// (`power_state`, read at `at`): maintenance, its reason and the fault
    /// are cleared and the state recorded, as Ironic's recovery does.
    pub(super) fn recover_power_failure(
        &self,
        power_state: String,
        at: String,
    ) -> Result<Vec<NodeEvent>, DomainError> {
        self.require_bmc()?;
        valid_power(&power_state)?;
        if !self.power_failure_recoverable() {
            return Ok(vec![]);
        }
        Ok(vec![NodeEvent::PowerFailureRecovered {
            from: self.power_state.clone(),
            power_state,
            at,
        }])
    }
}
