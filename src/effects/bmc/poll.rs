//! Waiting for a power change. BMCs accept a reset at once and apply it later
//! (sushy-tools' fake driver after 1–11 s, real servers after their own
//! firmware's pace), so "the BMC said 204" is not "the node is on": the
//! caller polls the power state until the target or a deadline.

use super::{Bmc, BmcError, BmcErrorKind, PowerAction, PowerState};
use std::time::Duration;
use tokio::time::Instant;

/// How long to wait and how often to look (Ironic's `[conductor]
/// power_state_change_timeout`, default 60 s, and its polling interval).
#[derive(Debug, Clone, Copy)]
pub struct PowerWait {
    pub timeout: Duration,
    pub interval: Duration,
}

impl Default for PowerWait {
    fn default() -> Self {
        PowerWait {
            timeout: Duration::from_secs(60),
            interval: Duration::from_secs(1),
        }
    }
}

/// Polls until the BMC reports `target`. A failed read is retried while it is
/// transient and the deadline is not reached; a permanent one ends the wait.
pub async fn wait_for_power(
    bmc: &dyn Bmc,
    what: &str,
    target: PowerState,
    wait: PowerWait,
) -> Result<(), BmcError> {
    let deadline = Instant::now() + wait.timeout;
    loop {
        let last = match bmc.power_state().await {
            Ok(state) if state == target => return Ok(()),
            Ok(state) => Ok(state),
            Err(e) if e.transient => Err(e),
            Err(e) => return Err(e),
        };
        if Instant::now() + wait.interval > deadline {
            let seen = match last {
                Ok(s) => format!("the BMC still reports {s}"),
                Err(e) => format!("the last power state read failed: {}", e.reason),
            };
            return Err(BmcError::new(
                what.to_string(),
                BmcErrorKind::Timeout,
                format!(
                    "the node did not reach {target} within {} s; {seen}",
                    wait.timeout.as_secs()
                ),
            ));
        }
        tokio::time::sleep(wait.interval).await;
    }
}

/// Asks for `action` and waits until the node is in the action's target state.
pub async fn set_power_and_wait(
    bmc: &dyn Bmc,
    action: PowerAction,
    wait: PowerWait,
) -> Result<(), BmcError> {
    bmc.set_power(action).await?;
    wait_for_power(bmc, &format!("Waiting for {action}"), action.target(), wait).await
}

/// Carries out a power request as Ironic's conductor does
/// (`node_power_action`): reads the power state first and, for `power on`,
/// `power off` and `soft power off`, asks nothing when the node is already
/// there; a reboot of a running node is a hard off, wait for off, on, wait
/// for on (an off node is just powered on). Returns the state the BMC
/// reports at the end.
pub async fn power_action(
    bmc: &dyn Bmc,
    action: PowerAction,
    wait: PowerWait,
) -> Result<PowerState, BmcError> {
    let target = action.target();
    let now = bmc.power_state().await?;
    match action {
        PowerAction::PowerOn | PowerAction::PowerOff | PowerAction::SoftPowerOff
            if now == target =>
        {
            return Ok(now)
        }
        PowerAction::Reboot if now == PowerState::On => {
            set_power_and_wait(bmc, PowerAction::PowerOff, wait).await?;
            set_power_and_wait(bmc, PowerAction::PowerOn, wait).await?;
        }
        PowerAction::Reboot => set_power_and_wait(bmc, PowerAction::PowerOn, wait).await?,
        _ => set_power_and_wait(bmc, action, wait).await?,
    }
    Ok(target)
}
