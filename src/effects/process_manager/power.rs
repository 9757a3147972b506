//! Power requests of nodes with a BMC (`redfish`, `ipmi`): the change asked
//! of the BMC, polled until it reports the target, recorded as done or failed.

use super::*;

impl ProcessManager {
    pub(super) async fn set_power(
        &self,
        id: Uuid,
        node: &Node,
        target: &str,
    ) -> Result<(), StepError> {
        if node.power_state.as_deref() != Some(target) {
            self.command(
                id,
                NodeCommand::SetPowerState {
                    target: target.to_string(),
                    at: Some(crate::effects::now_iso()),
                },
            )
            .await?;
        }
        Ok(())
    }

    /// Carries out the node's pending power request through its BMC and
    /// records the outcome (`FinishPower` / `FailPower`). Resumed from the
    /// log after a crash: the request is still pending, so it is done again
    /// from the start (reading the BMC first, so a change that had completed
    /// is not repeated — except a reboot, which reboots once more).
    pub(super) async fn power(&self, id: Uuid, node: &Node) {
        let Some(req) = node.power_request.clone() else {
            return;
        };
        let outcome = self.drive_power(id, node, &req).await;
        let cmd = match outcome {
            Ok(state) => NodeCommand::FinishPower {
                power_state: state.as_str().to_string(),
                at: crate::effects::now_iso(),
            },
            Err((error, last_seen)) => {
                tracing::warn!(node = %id, action = %req.action, error, "power change failed");
                NodeCommand::FailPower {
                    error,
                    power_state: last_seen,
                }
            }
        };
        crash_point("power:before-record");
        if let Err(e) = self.command(id, cmd).await {
            // The request stays pending; the sweep does it again.
            tracing::warn!(node = %id, error = %e, "could not record the power change");
            self.back_off(id);
        } else {
            tracing::info!(node = %id, action = %req.action, "power change recorded");
        }
    }

    /// The BMC calls of a power request. On failure: `last_error` (Ironic's
    /// "Failed to change power state to '…' by '…'. Error: …", the error
    /// naming the BMC action that failed;
    /// the clients' errors never carry a password) and the power state the
    /// BMC last reported, if it could be read.
    pub(super) async fn drive_power(
        &self,
        id: Uuid,
        node: &Node,
        req: &crate::domain::node::PowerRequest,
    ) -> Result<crate::effects::bmc::PowerState, (String, Option<String>)> {
        let fail = |why: String| {
            format!(
                "Failed to change power state to '{}' by '{}'. Error: {why}",
                req.target, req.action
            )
        };
        let action = PowerAction::parse(&req.action)
            .ok_or_else(|| (fail("unknown power action".into()), None))?;
        let bmc = match Self::bmc_of(node) {
            Ok(Some(bmc)) => bmc,
            Ok(None) => {
                return Err((
                    fail("the node's power interface drives no BMC".into()),
                    None,
                ))
            }
            Err(e) => return Err((fail(e.to_string()), None)),
        };
        let mut wait = self.config.power_wait;
        if let Some(t) = req.timeout {
            wait.timeout = Duration::from_secs(t);
        }
        let result = self
            .bmc_retrying(id, || {
                crash_point("power:before-bmc");
                power_action(bmc.as_ref(), action, wait)
            })
            .await;
        let err = match result {
            Ok(state) => return Ok(state),
            Err(e) => e,
        };
        let seen = bmc.power_state().await.ok().map(|s| s.as_str().to_string());
        Err((fail(err.to_string()), seen))
    }
}
