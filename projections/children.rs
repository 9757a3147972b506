//! `ports`, `connectors` and `targets`: one document per child record, keyed by
//! its UUID, so the global `/v1/volume/connectors/{uuid}` style lookups and lists
//! need no scan of nodes.
//!
//! The three models fold the same way — a record added, updated, removed, or
//! removed with its node — so one [`ChildProjection`] serves them all; each
//! differs only in how it reads its records out of a node event
//! ([`ChildProjection::changes`]).

use super::{node_event, timestamp, Docs, Projection, ProjectionError};
use crate::domain::NodeEvent;
use crate::store::{rows, Cond, Key, Keys, LogStore, PageQuery, RecordedEvent, StoreError};
use async_trait::async_trait;
use serde::Serialize;
use serde_json::{json, Map, Value};
use uuid::Uuid;

/// What one event does to a child model.
enum Change {
    /// The record as it now is; `created` when it is new.
    Upsert {
        uuid: Uuid,
        record: Value,
        created: bool,
    },
    Delete(Uuid),
    /// Only the `properties` changed (Cinder's connection data on a target).
    Properties {
        uuid: Uuid,
        properties: Map<String, Value>,
    },
}

fn upsert<T: Serialize>(uuid: Uuid, record: &T, created: bool) -> Change {
    Change::Upsert {
        uuid,
        record: serde_json::to_value(record).expect("a record serializes"),
        created,
    }
}

/// The ports model's name.
pub const PORTS: &str = "ports";
/// The volume connectors model's name.
pub const CONNECTORS: &str = "connectors";
/// The volume targets model's name.
pub const TARGETS: &str = "targets";

/// A child model: its name, and how it reads node events.
pub struct ChildProjection {
    name: &'static str,
    changes: fn(NodeEvent) -> Vec<Change>,
}

/// The common index columns of every child table: `(column, record field)`.
const COMMON: &[(&str, &str)] = &[
    ("ord", "created_position"),
    ("node_uuid", "node_uuid"),
    ("created_at", "created_at"),
    ("updated_at", "updated_at"),
];

/// An index column's value from a scalar JSON field.
pub(crate) fn json_key(v: &Value) -> Key {
    match v {
        Value::String(s) => Key::text(s.clone()),
        Value::Number(n) => n.as_i64().map_or(Key::Null, Key::Int),
        Value::Bool(b) => Key::bool(*b),
        _ => Key::Null,
    }
}

/// The values of a child document's index columns: the common ones and the
/// model's own.
pub fn row_keys(model: &str, doc: &Value) -> Keys {
    let indexed = match model {
        PORTS => PORT_COLUMNS,
        CONNECTORS => CONNECTOR_COLUMNS,
        TARGETS => TARGET_COLUMNS,
        _ => &[],
    };
    COMMON
        .iter()
        .chain(indexed)
        .map(|(col, field)| (*col, json_key(&doc[*field])))
        .collect()
}

const PORT_COLUMNS: &[(&str, &str)] = &[("address", "address")];
const CONNECTOR_COLUMNS: &[(&str, &str)] = &[("type", "type"), ("connector_id", "connector_id")];
const TARGET_COLUMNS: &[(&str, &str)] = &[
    ("volume_type", "volume_type"),
    ("volume_id", "volume_id"),
    ("boot_index", "boot_index"),
];

impl ChildProjection {
    pub fn ports() -> Self {
        ChildProjection {
            name: PORTS,
            changes: |ev| match ev {
                NodeEvent::PortAdded { port } => vec![upsert(port.uuid, &port, true)],
                NodeEvent::PortUpdated { after, .. } => vec![upsert(after.uuid, &after, false)],
                NodeEvent::PortRemoved { port } => vec![Change::Delete(port.uuid)],
                NodeEvent::NodeDeleted { ports, .. } => {
                    ports.iter().map(|p| Change::Delete(p.uuid)).collect()
                }
                _ => vec![],
            },
        }
    }

    pub fn connectors() -> Self {
        ChildProjection {
            name: CONNECTORS,
            changes: |ev| match ev {
                NodeEvent::ConnectorAdded { connector } => {
                    vec![upsert(connector.uuid, &connector, true)]
                }
                NodeEvent::ConnectorUpdated { after, .. } => {
                    vec![upsert(after.uuid, &after, false)]
                }
                NodeEvent::ConnectorRemoved { connector } => vec![Change::Delete(connector.uuid)],
                NodeEvent::NodeDeleted { connectors, .. } => {
                    connectors.iter().map(|c| Change::Delete(c.uuid)).collect()
                }
                _ => vec![],
            },
        }
    }

    pub fn targets() -> Self {
        ChildProjection {
            name: TARGETS,
            changes: |ev| match ev {
                NodeEvent::TargetCreated { target } => vec![upsert(target.uuid, &target, true)],
                NodeEvent::TargetUpdated { after, .. } => vec![upsert(after.uuid, &after, false)],
                NodeEvent::TargetDeleted { target } => vec![Change::Delete(target.uuid)],
                NodeEvent::TargetsPurged { targets } | NodeEvent::NodeDeleted { targets, .. } => {
                    targets.iter().map(|t| Change::Delete(t.uuid)).collect()
                }
                // Cinder's connection data replaces the attached targets' properties.
                NodeEvent::VolumesAttached { attachments } => attachments
                    .into_iter()
                    .map(|a| Change::Properties {
                        uuid: a.target,
                        properties: a.properties,
                    })
                    .collect(),
                _ => vec![],
            },
        }
    }
}

impl ChildProjection {
    fn keys(&self, doc: &Value) -> Keys {
        row_keys(self.name, doc)
    }
}

#[async_trait]
impl Projection for ChildProjection {
    fn name(&self) -> &'static str {
        self.name
    }

    async fn apply(
        &self,
        event: &RecordedEvent,
        docs: &mut Docs<'_>,
    ) -> Result<(), ProjectionError> {
        let Some(ev) = node_event(event)? else {
            return Ok(());
        };
        let now = timestamp(event);
        for change in (self.changes)(ev) {
            match change {
                Change::Upsert {
                    uuid,
                    mut record,
                    created,
                } => {
                    let id = uuid.to_string();
                    record["node_uuid"] = Value::String(event.aggregate_id.clone());
                    if created {
                        record["created_at"] = now.clone();
                        record["updated_at"] = Value::Null;
                        // Creation order: Ironic's default sort key (`id`).
                        record["created_position"] = json!(event.event_id);
                    } else {
                        // An update keeps when (and in which order) the record was created.
                        let previous = docs.get(&id).await?;
                        let keep = |k: &str| {
                            previous
                                .as_ref()
                                .map(|p| p[k].clone())
                                .unwrap_or(Value::Null)
                        };
                        record["created_at"] = keep("created_at");
                        record["created_position"] = keep("created_position");
                        record["updated_at"] = now.clone();
                    }
                    let keys = self.keys(&record);
                    docs.put_row(&id, record, keys);
                }
                Change::Delete(uuid) => docs.delete(&uuid.to_string()),
                Change::Properties { uuid, properties } => {
                    let id = uuid.to_string();
                    if let Some(mut doc) = docs.get(&id).await? {
                        doc["properties"] = Value::Object(properties);
                        doc["updated_at"] = now.clone();
                        let keys = self.keys(&doc);
                        docs.put_row(&id, doc, keys);
                    }
                }
            }
        }
        Ok(())
    }
}

/// The column an API sort key of `model` is answered from (`id`: creation
/// order, `None`), for the keys that have one; other keys have no column.
pub fn sort_column(model: &str, sort_key: &str) -> Option<Option<&'static str>> {
    let own: &[(&'static str, &str)] = match model {
        PORTS => PORT_COLUMNS,
        CONNECTORS => CONNECTOR_COLUMNS,
        TARGETS => TARGET_COLUMNS,
        _ => &[],
    };
    if sort_key == "id" {
        return Some(None);
    }
    COMMON
        .iter()
        .chain(own)
        .filter(|(col, _)| *col != "ord" && *col != "node_uuid")
        .find(|(_, field)| *field == sort_key)
        .map(|(col, _)| Some(*col))
}

/// Which records of a child model a list wants.
#[derive(Debug, Clone, Default)]
pub struct ChildFilter {
    /// Those of one node.
    pub node_uuid: Option<String>,
    /// Ports with this MAC address.
    pub address: Option<String>,
}

/// Up to `limit` records of `model` passing `filter`, ordered by `sort` (a
/// column from [`sort_column`]; `None`: creation order) then creation order,
/// after `marker`'s place in that order: one index range.
pub async fn page(
    store: &dyn LogStore,
    model: &str,
    filter: &ChildFilter,
    sort: Option<&'static str>,
    desc: bool,
    marker: Option<&Value>,
    limit: u32,
) -> Result<Vec<Value>, StoreError> {
    let mut conds = vec![];
    if let Some(n) = &filter.node_uuid {
        conds.push(Cond::Eq("node_uuid", Key::text(n.clone())));
    }
    if let Some(a) = &filter.address {
        conds.push(Cond::Eq("address", Key::text(a.clone())));
    }
    let after = marker.map(|m| rows::cursor_of(&row_keys(model, m), sort));
    let query = PageQuery {
        conds: &conds,
        sort,
        desc,
        after,
        limit,
    };
    Ok(store
        .doc_page(model, &query)
        .await?
        .into_iter()
        .map(|(_, doc)| doc)
        .collect())
}

/// One record by UUID.
pub async fn get(
    store: &dyn LogStore,
    model: &str,
    uuid: &str,
) -> Result<Option<Value>, StoreError> {
    store.doc_get(model, uuid).await
}

/// Records read per page by [`every`].
const READ_PAGE: u32 = 1000;

/// Every record of `model` passing `filter`, in creation order, read page by
/// page: for the lists that must sort in the process (a sort key without a
/// column), which cost the records that pass the filter.
pub async fn every(
    store: &dyn LogStore,
    model: &str,
    filter: &ChildFilter,
) -> Result<Vec<Value>, StoreError> {
    let mut docs: Vec<Value> = vec![];
    loop {
        let batch = page(store, model, filter, None, false, docs.last(), READ_PAGE).await?;
        let full = batch.len() == READ_PAGE as usize;
        docs.extend(batch);
        if !full {
            return Ok(docs);
        }
    }
}
