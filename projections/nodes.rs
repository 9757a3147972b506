//! `nodes`: one document per node, the node's current state as the aggregate
//! itself folds it, plus the timestamps Ironic shows.
//!
//! Folding with the aggregate's own `apply` means the read model cannot drift
//! from the write model's idea of a node.

use super::{node_event, timestamp, Docs, Projection, ProjectionError};
use crate::domain::{Node, NodeEvent};
use crate::store::RecordedEvent;
use async_trait::async_trait;
use cqrs_es::Aggregate;
use serde_json::{json, Value};

pub struct NodesProjection;

pub const MODEL: &str = "nodes";

#[async_trait]
impl Projection for NodesProjection {
    fn name(&self) -> &'static str {
        MODEL
    }

    async fn apply(
        &self,
        event: &RecordedEvent,
        docs: &mut Docs<'_>,
    ) -> Result<(), ProjectionError> {
        let Some(ev) = node_event(event)? else {
            return Ok(());
        };
        let id = event.aggregate_id.as_str();
        if let NodeEvent::NodeDeleted { .. } = ev {
            docs.delete(id);
            return Ok(());
        }
        let now = timestamp(event);
        let (mut node, mut doc) = match docs.get(id).await? {
            Some(doc) => {
                let node: Node = serde_json::from_value(doc["state"].clone()).map_err(|e| {
                    ProjectionError::Decode {
                        position: event.position,
                        message: format!("nodes document {id}: {e}"),
                    }
                })?;
                (node, doc)
            }
            // The process manager's reports on a deleted node's leftovers
            // come after `NodeDeleted`: the node stays gone from this model.
            None if !matches!(ev, NodeEvent::NodeEnrolled(_)) => return Ok(()),
            None => (
                Node::default(),
                json!({"created_at": now, "updated_at": Value::Null, "provision_updated_at": Value::Null}),
            ),
        };
        let enrolled = matches!(ev, NodeEvent::NodeEnrolled(_));
        let moved = ev.transition().is_some();
        node.apply(ev);
        if enrolled {
            // Creation order: Ironic's default sort key (`id`).
            doc["created_position"] = json!(event.position);
            doc["created_at"] = now.clone();
            doc["updated_at"] = Value::Null;
            doc["provision_updated_at"] = now.clone();
        } else {
            doc["updated_at"] = now.clone();
        }
        if moved {
            doc["provision_updated_at"] = now;
        }
        doc["state"] = serde_json::to_value(&node).expect("a node serializes");
        doc["position"] = json!(event.position);
        docs.put(id, doc);
        Ok(())
    }
}
