//! What the process manager reports about side effects: volumes attached and
//! detached in Cinder, the boot script written and removed.
//!
//! Each report is recorded once: repeating it (a step redone after a crash)
//! records nothing, so the log shows each effect exactly once.

use super::events::{NodeEvent, VolumeAttachment};
use super::Node;
use crate::domain::error::DomainError;
use crate::domain::state::ProvisionState;

impl Node {
    pub(super) fn record_attachments(
        &self,
        attachments: Vec<VolumeAttachment>,
    ) -> Result<Vec<NodeEvent>, DomainError> {
        if self.state() != ProvisionState::Deploying {
            return Err(DomainError::invalid_state(
                "volume attach",
                &self.id(),
                self.state().as_str(),
            ));
        }
        for a in &attachments {
            if !self.targets.iter().any(|t| t.uuid == a.target) {
                return Err(DomainError::NotFound(format!(
                    "Volume target {} could not be found.",
                    a.target
                )));
            }
        }
        // A repeated report (a step redone after a crash) changes nothing.
        let new: Vec<VolumeAttachment> = attachments
            .into_iter()
            .filter(|a| {
                !self.attached_volumes.contains(&a.volume_id)
                    || self
                        .targets
                        .iter()
                        .any(|t| t.uuid == a.target && t.properties != a.properties)
            })
            .collect();
        Ok(if new.is_empty() {
            vec![]
        } else {
            vec![NodeEvent::VolumesAttached { attachments: new }]
        })
    }

    pub(super) fn record_attach_intent(
        &self,
        volume_ids: Vec<String>,
        owner: Option<String>,
    ) -> Result<Vec<NodeEvent>, DomainError> {
        if self.state() != ProvisionState::Deploying {
            return Err(DomainError::invalid_state(
                "volume attach",
                &self.id(),
                self.state().as_str(),
            ));
        }
        let new: Vec<String> = volume_ids
            .into_iter()
            .filter(|v| !self.attached_volumes.contains(v))
            .collect();
        Ok(if new.is_empty() {
            vec![]
        } else {
            vec![NodeEvent::VolumesAttaching {
                volume_ids: new,
                owner,
            }]
        })
    }

    pub(super) fn record_detachments(
        &self,
        volume_ids: Vec<String>,
    ) -> Result<Vec<NodeEvent>, DomainError> {
        let gone: Vec<String> = volume_ids
            .into_iter()
            .filter(|v| self.attached_volumes.contains(v))
            .collect();
        Ok(if gone.is_empty() {
            vec![]
        } else {
            vec![NodeEvent::VolumesDetached { volume_ids: gone }]
        })
    }

    pub(super) fn record_boot_config(
        &self,
        digest: String,
        macs: Vec<String>,
    ) -> Result<Vec<NodeEvent>, DomainError> {
        // A deployed node's script stays; only the MACs pointing at it follow
        // its ports.
        let relink = self.state() == ProvisionState::Active
            && self
                .boot_config
                .as_ref()
                .is_some_and(|b| b.digest == digest);
        if !matches!(
            self.state(),
            ProvisionState::Deploying | ProvisionState::Adopting
        ) && !relink
        {
            return Err(DomainError::invalid_state(
                "write boot configuration",
                &self.id(),
                self.state().as_str(),
            ));
        }
        if self
            .boot_config
            .as_ref()
            .is_some_and(|b| b.digest == digest && b.macs == macs)
        {
            return Ok(vec![]);
        }
        Ok(vec![NodeEvent::BootConfigWritten { digest, macs }])
    }

    pub(super) fn record_boot_config_removed(&self) -> Result<Vec<NodeEvent>, DomainError> {
        Ok(if self.boot_config.is_some() {
            vec![NodeEvent::BootConfigRemoved]
        } else {
            vec![]
        })
    }
}
