//! The `Volume` aggregate: one Cinder volume and the nodes it is attached to.
//!
//! Cinder itself refuses to reserve an in-use volume that does not allow
//! multi-attach, but only once the request reaches it; recording attachments as
//! events lets ironledger refuse a second node before any side effect, and lets
//! the audit log say which node held a volume when.

use super::error::DomainError;
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Volume {
    pub volume_id: Option<String>,
    pub multiattach: bool,
    /// Node UUIDs the volume is attached to.
    pub attached_to: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum VolumeCommand {
    /// Record that `node` attaches the volume. `multiattach` is what Cinder
    /// reports for the volume.
    Attach {
        volume_id: String,
        node: String,
        multiattach: bool,
    },
    Detach {
        node: String,
    },
}

impl VolumeCommand {
    /// The command's name (its variant), for logs and metrics: never its
    /// arguments, which may hold secrets.
    pub fn name(&self) -> &'static str {
        match self {
            VolumeCommand::Attach { .. } => "Attach",
            VolumeCommand::Detach { .. } => "Detach",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum VolumeEvent {
    VolumeAttached {
        volume_id: String,
        node: String,
        multiattach: bool,
    },
    VolumeDetached {
        node: String,
    },
}

impl DomainEvent for VolumeEvent {
    fn event_type(&self) -> String {
        match self {
            VolumeEvent::VolumeAttached { .. } => "VolumeAttached",
            VolumeEvent::VolumeDetached { .. } => "VolumeDetached",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

impl Volume {
    /// Decides the events a command produces. Pure. Attaching twice to the same
    /// node, or detaching a node that is not attached, records nothing: the
    /// process manager may repeat a step after a crash.
    pub fn decide(&self, command: VolumeCommand) -> Result<Vec<VolumeEvent>, DomainError> {
        match command {
            VolumeCommand::Attach {
                volume_id,
                node,
                multiattach,
            } => {
                if self.attached_to.contains(&node) {
                    return Ok(vec![]);
                }
                if let Some(other) = self.attached_to.iter().next() {
                    if !(multiattach && self.multiattach) {
                        return Err(DomainError::Conflict(format!(
                            "Volume {volume_id} is in-use by node {other} and does not allow multi-attach."
                        )));
                    }
                }
                Ok(vec![VolumeEvent::VolumeAttached {
                    volume_id,
                    node,
                    multiattach,
                }])
            }
            VolumeCommand::Detach { node } => {
                if self.attached_to.contains(&node) {
                    Ok(vec![VolumeEvent::VolumeDetached { node }])
                } else {
                    Ok(vec![])
                }
            }
        }
    }
}

impl Aggregate for Volume {
    const TYPE: &'static str = "Volume";
    type Command = VolumeCommand;
    type Event = VolumeEvent;
    type Error = DomainError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        for event in self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            VolumeEvent::VolumeAttached {
                volume_id,
                node,
                multiattach,
            } => {
                self.volume_id = Some(volume_id);
                self.multiattach = multiattach;
                self.attached_to.insert(node);
            }
            VolumeEvent::VolumeDetached { node } => {
                self.attached_to.remove(&node);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    fn attached(node: &str, multi: bool) -> VolumeEvent {
        VolumeEvent::VolumeAttached {
            volume_id: "v1".into(),
            node: node.into(),
            multiattach: multi,
        }
    }
    fn attach(node: &str, multi: bool) -> VolumeCommand {
        VolumeCommand::Attach {
            volume_id: "v1".into(),
            node: node.into(),
            multiattach: multi,
        }
    }

    #[tokio::test]
    async fn first_attach_is_recorded() {
        TestFramework::<Volume>::with(())
            .given_no_previous_events()
            .when_async(attach("n1", false))
            .await
            .then_expect_events(vec![attached("n1", false)]);
    }

    #[tokio::test]
    async fn in_use_non_multiattach_volume_is_refused_for_a_second_node() {
        TestFramework::<Volume>::with(())
            .given(vec![attached("n1", false)])
            .when_async(attach("n2", false))
            .await
            .then_expect_error(DomainError::Conflict(
                "Volume v1 is in-use by node n1 and does not allow multi-attach.".into(),
            ));
    }

    #[tokio::test]
    async fn multiattach_volume_takes_a_second_node() {
        TestFramework::<Volume>::with(())
            .given(vec![attached("n1", true)])
            .when_async(attach("n2", true))
            .await
            .then_expect_events(vec![attached("n2", true)]);
    }

    #[tokio::test]
    async fn repeated_attach_and_detach_are_idempotent() {
        TestFramework::<Volume>::with(())
            .given(vec![attached("n1", false)])
            .when_async(attach("n1", false))
            .await
            .then_expect_events(vec![]);
        TestFramework::<Volume>::with(())
            .given_no_previous_events()
            .when_async(VolumeCommand::Detach { node: "n1".into() })
            .await
            .then_expect_events(vec![]);
    }

    #[tokio::test]
    async fn detached_volume_is_free_again() {
        TestFramework::<Volume>::with(())
            .given(vec![
                attached("n1", false),
                VolumeEvent::VolumeDetached { node: "n1".into() },
            ])
            .when_async(attach("n2", false))
            .await
            .then_expect_events(vec![attached("n2", false)]);
    }
}
