//! Deploy and adoption: storage validated, volumes attached in Cinder, the
//! iPXE script written, the node powered on through its BMC; and the MAC links
//! of a deployed node rewritten when its ports change.

use super::*;

impl ProcessManager {
    pub(super) async fn deploy(&self, id: Uuid, node: &Node) -> Result<(), StepError> {
        let node_id = id.to_string();
        // Refused at the request since the rule exists; a deploy accepted
        // before it (an older log) still fails here, before touching anything.
        if let Some(reason) = interface_validation::deploy_refusal(node) {
            return Err(StepError::Fatal(reason));
        }
        if let Some((_, note)) = node.note_boot_volume() {
            self.command(id, note).await?;
        }
        let bmc = Self::bmc_of(node)?;
        match &bmc {
            // Once per deploy: a deploy resumed after the node was powered
            // on at its end must not power it off again.
            Some(bmc) if !node.deploy_powered_off => {
                self.bmc_power(id, bmc.as_ref(), PowerAction::PowerOff)
                    .await?
            }
            Some(_) => {}
            None => self.set_power(id, node, POWER_OFF).await?,
        }
        crash_point("deploy:before-attach");

        if node.interface("storage") == "cinder" {
            let cinder = self.cinder()?;
            // The intent first: if anything below fails or this process dies,
            // the node knows which volumes may be attached and detaches them.
            let volume_ids = node.targets.iter().map(|t| t.volume_id.clone()).collect();
            self.command(
                id,
                NodeCommand::RecordAttachIntent {
                    volume_ids,
                    owner: node.instance_uuid.clone(),
                },
            )
            .await?;
            crash_point("deploy:after-intent");
            let attached = self
                .retrying("Attaching volumes", || {
                    attach_volumes(
                        cinder,
                        &node_id,
                        node.instance_uuid.as_deref(),
                        &node.targets,
                        &node.connectors,
                    )
                })
                .await?;
            crash_point("deploy:after-attach");
            for a in &attached {
                // The log says who holds each volume; a volume Cinder let two
                // nodes use without multi-attach would be refused here.
                if let Err(e) = self
                    .engine
                    .volume(
                        &a.volume_id,
                        VolumeCommand::Attach {
                            volume_id: a.volume_id.clone(),
                            node: node_id.clone(),
                            multiattach: a.multiattach,
                        },
                        &meta(),
                    )
                    .await
                {
                    return Err(StepError::Fatal(format!(
                        "Volume {} cannot be attached: {e}",
                        a.volume_id
                    )));
                }
            }
            let attachments: Vec<VolumeAttachment> = attached
                .into_iter()
                .filter_map(|a| {
                    let target = node.targets.iter().find(|t| t.volume_id == a.volume_id)?;
                    Some(VolumeAttachment {
                        volume_id: a.volume_id,
                        target: target.uuid,
                        driver_volume_type: a.driver_volume_type,
                        properties: a
                            .data
                            .and_then(|d| d.as_object().cloned())
                            .unwrap_or_default(),
                        multiattach: a.multiattach,
                    })
                })
                .collect();
            self.command(id, NodeCommand::RecordAttachments { attachments })
                .await?;
            crash_point("deploy:after-record-attach");
        }

        // Render from the node as it is now (targets carry Cinder's data).
        let node = self.engine.load_node(id).await?;
        self.write_boot_config(id, &node).await?;
        crash_point("deploy:after-record-write");

        match &bmc {
            Some(bmc) => {
                // The node was powered off above: powering it on boots it
                // (Ironic's reboot of an off node is the same power on).
                self.bmc_network_boot(id, &node, bmc.as_ref()).await?;
                self.bmc_power(id, bmc.as_ref(), PowerAction::PowerOn)
                    .await?;
            }
            None => self.set_power(id, &node, POWER_ON).await?,
        }
        self.command(id, NodeCommand::FinishDeploy).await?;
        tracing::info!(node = %id, "deployed");
        Ok(())
    }

    /// Renders, checks and writes the node's iPXE script and MAC links, and
    /// records it (`BootConfigWritten`).
    pub(super) async fn write_boot_config(&self, id: Uuid, node: &Node) -> Result<(), StepError> {
        let node_id = id.to_string();
        let plan = ipxe::plan(&node.targets, &node.connectors)
            .map_err(|e| StepError::Fatal(e.to_string()))?;
        let script = ipxe::render_config_with(&node_id, &plan, self.config.san_retries);
        ipxe_syntax::check(&script)
            .map_err(|e| StepError::Fatal(format!("Generated iPXE script is invalid: {e}")))?;
        let macs = node.pxe_macs();
        self.root
            .write_node(&node_id, &script, &macs)
            .map_err(|e| StepError::Fatal(format!("Writing the boot configuration failed: {e}")))?;
        crash_point("deploy:after-write");
        self.command(
            id,
            NodeCommand::RecordBootConfig {
                digest: digest(&ipxe::render_config_with(
                    &node_id,
                    &plan.without_secrets(),
                    self.config.san_retries,
                )),
                macs,
            },
        )
        .await?;
        Ok(())
    }

    /// Takes over a running node (`adopt`): nothing is attached or powered —
    /// the machine already runs from its volume — but a boot-from-volume node
    /// gets its iPXE script, so that its next network boot finds it (Ironic's
    /// `prepare_instance` does the same). A node without a boot volume target
    /// is simply taken over.
    pub(super) async fn adopt(&self, id: Uuid, node: &Node) -> Result<(), StepError> {
        if node.targets.iter().any(|t| t.boot_index == 0) {
            if let Some((_, note)) = node.note_boot_volume() {
                self.command(id, note).await?;
            }
            self.write_boot_config(id, node).await?;
        }
        self.command(id, NodeCommand::FinishAdopt).await?;
        tracing::info!(node = %id, "adopted");
        Ok(())
    }

    /// Makes the MAC links of a deployed node follow its PXE-enabled ports.
    pub(super) async fn relink(&self, id: Uuid, node: &Node) -> Result<(), StepError> {
        let Some(boot) = &node.boot_config else {
            return Ok(());
        };
        let macs = node.pxe_macs();
        self.root
            .link_node(&id.to_string(), &macs)
            .map_err(|e| StepError::Retry(format!("relinking MACs: {e}")))?;
        self.command(
            id,
            NodeCommand::RecordBootConfig {
                digest: boot.digest.clone(),
                macs,
            },
        )
        .await?;
        tracing::info!(node = %id, "MAC links follow the node's ports");
        Ok(())
    }
}

/// A short, stable digest of a script (FNV-1a, 64 bits): enough to tell two
/// versions apart in the log. It is taken of the script with its passwords
/// masked, so the log holds nothing to test a guessed password against.
pub(super) fn digest(script: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in script.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}
