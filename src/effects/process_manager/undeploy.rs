//! Undeploy and compensation: power off, the script removed, volumes
//! detached, targets purged; and what a failed deploy or a deleted node left
//! in Cinder or on disk undone.

use super::*;

impl ProcessManager {
    pub(super) async fn undeploy(&self, id: Uuid, node: &Node) -> Result<(), StepError> {
        let node_id = id.to_string();
        // The machine stops before its boot configuration and volumes go.
        match Self::bmc_of(node)? {
            Some(bmc) => {
                self.bmc_power(id, bmc.as_ref(), PowerAction::PowerOff)
                    .await?
            }
            None => self.set_power(id, node, POWER_OFF).await?,
        }
        self.root.remove_node(&node_id).map_err(|e| {
            StepError::Fatal(format!("Removing the boot configuration failed: {e}"))
        })?;
        crash_point("undeploy:after-remove");
        self.command(id, NodeCommand::RecordBootConfigRemoved)
            .await?;

        if node.interface("storage") == "cinder" && !node.targets.is_empty() {
            let cinder = self.cinder()?;
            // Detach retries come from [cinder] action_retries inside detach_volumes.
            let volume_ids = volumes_of(node);
            detach_volumes(
                cinder,
                &node_id,
                attachment_owner(node),
                &volume_ids,
                &node.connectors,
                DetachMode::Undeploy,
            )
            .instrument(tracing::info_span!("step", step = "Detaching volumes"))
            .await
            .map_err(|e| StepError::Fatal(format!("Detaching volumes failed: {}", e.message)))?;
            crash_point("undeploy:after-detach");
            self.release_volumes(id, volumes_of(node)).await?;
        }
        crash_point("undeploy:before-purge");
        self.command(id, NodeCommand::PurgeTargets).await?;
        self.command(id, NodeCommand::FinishUndeploy).await?;
        tracing::info!(node = %id, "undeployed");
        Ok(())
    }

    /// Records that these volumes of the node are detached (node and volume
    /// aggregates).
    pub(super) async fn release_volumes(
        &self,
        id: Uuid,
        ids: Vec<String>,
    ) -> Result<(), StepError> {
        if ids.is_empty() {
            return Ok(());
        }
        for v in &ids {
            self.engine
                .volume(
                    v,
                    VolumeCommand::Detach {
                        node: id.to_string(),
                    },
                    &meta(),
                )
                .await?;
        }
        self.command(id, NodeCommand::RecordDetachments { volume_ids: ids })
            .await?;
        Ok(())
    }

    /// Undoes what a failed deploy left: the script and the attached volumes.
    pub(super) async fn clean_leftovers(&self, id: Uuid, node: &Node) -> Result<(), StepError> {
        let node_id = id.to_string();
        if node.boot_config.is_some() || self.root.has_node(&node_id) {
            self.root
                .remove_node(&node_id)
                .map_err(|e| StepError::Retry(e.to_string()))?;
            self.command(id, NodeCommand::RecordBootConfigRemoved)
                .await?;
        }
        if !node.attached_volumes.is_empty() {
            let cinder = self
                .cinder
                .as_ref()
                .ok_or_else(|| StepError::Retry("no Cinder configured".into()))?;
            // The intent may name volumes whose targets changed since: detach
            // by volume id.
            let volume_ids: Vec<String> = node.attached_volumes.iter().cloned().collect();
            let detached = detach_volumes(
                cinder,
                &node_id,
                attachment_owner(node),
                &volume_ids,
                &node.connectors,
                DetachMode::Compensation,
            )
            .await
            .map_err(|e| StepError::Retry(e.message))?;
            let refused = volume_ids.len() - detached.len();
            self.release_volumes(id, detached).await?;
            if refused > 0 {
                // Kept in the intent: the sweep asks Cinder again.
                return Err(StepError::Retry(format!(
                    "Cinder refused to detach {refused} volume(s) of the node"
                )));
            }
        }
        Ok(())
    }
}
