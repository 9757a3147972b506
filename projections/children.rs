//! `ports`, `connectors` and `targets`: one document per child record, keyed by
//! its UUID, so the global `/v1/volume/connectors/{uuid}` style lookups and lists
//! need no scan of nodes.

use super::{node_event, timestamp, Docs, Projection, ProjectionError};
use crate::domain::node::entities::{Connector, Port, Target};
use crate::domain::NodeEvent;
use crate::store::RecordedEvent;
use async_trait::async_trait;
use serde::Serialize;
use serde_json::{json, Value};

/// Writes a child's document, keeping its `created_at`.
async fn upsert<T: Serialize>(
    docs: &mut Docs<'_>,
    event: &RecordedEvent,
    uuid: &str,
    record: &T,
    created: bool,
) -> Result<(), ProjectionError> {
    let now = timestamp(event);
    let mut body = serde_json::to_value(record).expect("a record serializes");
    body["node_uuid"] = Value::String(event.aggregate_id.clone());
    if created {
        body["created_at"] = now;
        body["updated_at"] = Value::Null;
        // Creation order: Ironic's default sort key (`id`).
        body["created_position"] = json!(event.position);
    } else {
        let previous = docs.get(uuid).await?;
        let keep = |k: &str| {
            previous
                .as_ref()
                .map(|p| p[k].clone())
                .unwrap_or(Value::Null)
        };
        body["created_at"] = keep("created_at");
        body["created_position"] = keep("created_position");
        body["updated_at"] = now;
    }
    body["position"] = json!(event.position);
    docs.put(uuid, body);
    Ok(())
}

pub struct PortsProjection;

#[async_trait]
impl Projection for PortsProjection {
    fn name(&self) -> &'static str {
        "ports"
    }

    async fn apply(
        &self,
        event: &RecordedEvent,
        docs: &mut Docs<'_>,
    ) -> Result<(), ProjectionError> {
        match node_event(event)? {
            Some(NodeEvent::PortAdded { port }) => {
                upsert(docs, event, &port.uuid.to_string(), &port, true).await
            }
            Some(NodeEvent::PortUpdated { after, .. }) => {
                upsert::<Port>(docs, event, &after.uuid.to_string(), &after, false).await
            }
            Some(NodeEvent::PortRemoved { port }) => {
                docs.delete(&port.uuid.to_string());
                Ok(())
            }
            Some(NodeEvent::NodeDeleted { ports, .. }) => {
                ports.iter().for_each(|p| docs.delete(&p.uuid.to_string()));
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

pub struct ConnectorsProjection;

#[async_trait]
impl Projection for ConnectorsProjection {
    fn name(&self) -> &'static str {
        "connectors"
    }

    async fn apply(
        &self,
        event: &RecordedEvent,
        docs: &mut Docs<'_>,
    ) -> Result<(), ProjectionError> {
        match node_event(event)? {
            Some(NodeEvent::ConnectorAdded { connector }) => {
                upsert(docs, event, &connector.uuid.to_string(), &connector, true).await
            }
            Some(NodeEvent::ConnectorUpdated { after, .. }) => {
                upsert::<Connector>(docs, event, &after.uuid.to_string(), &after, false).await
            }
            Some(NodeEvent::ConnectorRemoved { connector }) => {
                docs.delete(&connector.uuid.to_string());
                Ok(())
            }
            Some(NodeEvent::NodeDeleted { connectors, .. }) => {
                connectors
                    .iter()
                    .for_each(|c| docs.delete(&c.uuid.to_string()));
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

pub struct TargetsProjection;

#[async_trait]
impl Projection for TargetsProjection {
    fn name(&self) -> &'static str {
        "targets"
    }

    async fn apply(
        &self,
        event: &RecordedEvent,
        docs: &mut Docs<'_>,
    ) -> Result<(), ProjectionError> {
        match node_event(event)? {
            Some(NodeEvent::TargetCreated { target }) => {
                upsert(docs, event, &target.uuid.to_string(), &target, true).await
            }
            Some(NodeEvent::TargetUpdated { after, .. }) => {
                upsert::<Target>(docs, event, &after.uuid.to_string(), &after, false).await
            }
            Some(NodeEvent::TargetDeleted { target }) => {
                docs.delete(&target.uuid.to_string());
                Ok(())
            }
            Some(NodeEvent::TargetsPurged { targets })
            | Some(NodeEvent::NodeDeleted { targets, .. }) => {
                targets
                    .iter()
                    .for_each(|t| docs.delete(&t.uuid.to_string()));
                Ok(())
            }
            // Cinder's connection data replaces the attached targets' properties.
            Some(NodeEvent::VolumesAttached { attachments }) => {
                for a in attachments {
                    let id = a.target.to_string();
                    if let Some(mut doc) = docs.get(&id).await? {
                        doc["properties"] = Value::Object(a.properties);
                        doc["updated_at"] = timestamp(event);
                        doc["position"] = json!(event.position);
                        docs.put(&id, doc);
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}
