//! The saga steps that act on a node's BMC (`redfish` / `ipmitool` power
//! interfaces): power off before the volumes are attached, boot from the
//! network persistently once the script is written, power on; power off
//! first on undeploy, and power off when a failed deploy is undone.
//!
//! Each step is one BMC round (read the state, act only if it differs, wait
//! for the BMC to report the target — BMCs apply a reset asynchronously) and
//! one recorded event (`PowerStateChanged` with the time the BMC confirmed,
//! `BootDeviceSet`). So a step redone after a crash asks the BMC nothing it
//! already did and records nothing twice; the one exception, a crash after
//! the BMC acted and before the record, is redone as a read that finds the
//! state already reached. A BMC that does not answer is asked again
//! (`step_attempts`, `step_backoff`); one that refuses, or never reaches the
//! state within `power_wait`, fails the step with an error that names the
//! BMC action (and never a password: the clients never format one).

use super::{ProcessManager, StepError};
use crate::domain::boot_mode;
use crate::domain::state::{POWER_OFF, POWER_ON};
use crate::domain::{Node, NodeCommand};
use crate::effects::bmc::poll::power_action;
use crate::effects::bmc::{Bmc, BmcError, BootDevice, PowerAction, PowerState};
use crate::effects::{crash_point, now_iso};
use std::future::Future;
use tracing::Instrument;
use uuid::Uuid;

impl ProcessManager {
    /// The node's BMC, `None` for a node without one. `driver_info` that
    /// cannot be read fails the step with the text `node validate` gives.
    pub(super) fn bmc_of(node: &Node) -> Result<Option<Box<dyn Bmc>>, StepError> {
        crate::effects::bmc::access::for_node(node).map_err(StepError::Fatal)
    }

    /// Runs one BMC call, again while it fails transiently (up to
    /// `step_attempts`, the pause doubling from `step_backoff`).
    pub(super) async fn bmc_retrying<T, F, Fut>(&self, id: Uuid, mut f: F) -> Result<T, BmcError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, BmcError>>,
    {
        let mut pause = self.config.step_backoff;
        let attempts = self.config.step_attempts.max(1);
        let mut attempt = 1;
        loop {
            match f().await {
                Err(e) if e.transient && attempt < attempts => {
                    tracing::warn!(node = %id, attempt, error = %e, "transient BMC failure; retrying");
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Brings the node to `action`'s target through its BMC and records the
    /// state the BMC confirmed. `action` is `power on` or `power off`: asked
    /// only when the BMC reports another state.
    pub(super) async fn bmc_power(
        &self,
        id: Uuid,
        bmc: &dyn Bmc,
        action: PowerAction,
    ) -> Result<(), StepError> {
        let target = action.target();
        let wait = self.config.power_wait;
        let span = tracing::info_span!("step", step = %action);
        async {
            crash_point(&format!("bmc:before-{}", step_name(target)));
            let reached = self
                .bmc_retrying(id, || power_action(bmc, action, wait))
                .await
                .map_err(|e| {
                    StepError::Fatal(format!(
                        "Failed to change power state to '{target}' by '{action}'. Error: {e}"
                    ))
                })?;
            crash_point(&format!("bmc:after-{}", step_name(target)));
            self.command(
                id,
                NodeCommand::RecordPowerState {
                    power_state: reached.as_str().to_string(),
                    at: now_iso(),
                },
            )
            .await?;
            tracing::info!(node = %id, power_state = %reached, "BMC confirmed the power state");
            Ok(())
        }
        .instrument(span)
        .await
    }

    /// Sets the node to boot from the network on every boot, in the boot mode
    /// the node asks for (if any), and records it.
    pub(super) async fn bmc_network_boot(
        &self,
        id: Uuid,
        node: &Node,
        bmc: &dyn Bmc,
    ) -> Result<(), StepError> {
        let mode = boot_mode::requested(&node.instance_info, &node.properties)
            .map_err(StepError::Fatal)?;
        let span = tracing::info_span!("step", step = "set boot device");
        async {
            crash_point("bmc:before-boot-device");
            self.bmc_retrying(id, || bmc.set_boot_device(BootDevice::Pxe, true, mode))
                .await
                .map_err(|e| {
                    StepError::Fatal(format!(
                        "Failed to set boot device to 'pxe' (persistent) for node {id}. Error: {e}"
                    ))
                })?;
            crash_point("bmc:after-boot-device");
            self.command(
                id,
                NodeCommand::RecordBootDevice {
                    device: BootDevice::Pxe.as_str().to_string(),
                    persistent: true,
                    mode: mode.map(|m| m.as_str().to_string()),
                },
            )
            .await?;
            tracing::info!(node = %id, mode = mode.map(|m| m.as_str()), "BMC boots the node from the network, persistently");
            Ok(())
        }
        .instrument(span)
        .await
    }

    /// Compensation of a failed deploy on a BMC node: the machine must not
    /// run from volumes about to be detached, so it is powered off first. A
    /// BMC that cannot do it is logged, not fatal: the deploy has failed
    /// already, and the volumes still have to go.
    pub(super) async fn bmc_power_off_for_cleanup(&self, id: Uuid, node: &Node) {
        let bmc = match Self::bmc_of(node) {
            Ok(Some(bmc)) => bmc,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(node = %id, error = ?e, "cannot reach the BMC to power off a failed deploy");
                return;
            }
        };
        if let Err(e) = self
            .bmc_power(id, bmc.as_ref(), PowerAction::PowerOff)
            .await
        {
            tracing::warn!(node = %id, error = ?e, "could not power off the node of a failed deploy");
        }
    }
}

fn step_name(target: PowerState) -> &'static str {
    match target.as_str() {
        POWER_ON => "power-on",
        POWER_OFF => "power-off",
        _ => "power",
    }
}
