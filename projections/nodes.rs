//! `nodes`: one document per node, the node's current state as the aggregate
//! itself folds it, plus the timestamps Ironic shows.
//!
//! Folding with the aggregate's own `apply` means the read model cannot drift
//! from the write model's idea of a node.
//!
//! This module owns the model: its name, its row ([`NodeRow`]), the values
//! of its index columns ([`NodeRow::keys`], the columns of `node_rows` in
//! `schema/*/0006_read_tables.sql`) and the queries that read it ([`get`],
//! [`page`], [`needing_work`], [`power_rounds`]). Nobody else names the
//! model or decodes its documents.

use super::{node_event, timestamp, Docs, Projection, ProjectionError};
use crate::domain::{Node, NodeEvent};
use crate::store::{rows, Cond, Key, Keys, LogStore, PageQuery, RecordedEvent, StoreError};
use async_trait::async_trait;
use cqrs_es::Aggregate;
use serde::Deserialize;
use serde_json::{json, Value};

pub struct NodesProjection;

pub const MODEL: &str = "nodes";

/// A node as the read model holds it: the aggregate's state and the document
/// it was read from (timestamps `created_at`, `updated_at`,
/// `provision_updated_at`; `created_position`, the default order).
#[derive(Debug, Clone)]
pub struct NodeRow {
    pub node: Node,
    pub doc: Value,
}

impl NodeRow {
    pub fn from_doc(doc: Value) -> Result<Self, StoreError> {
        // Decoded from the document in place (no copy of its state first).
        let node = Node::deserialize(&doc["state"])
            .map_err(|e| StoreError::Corrupt(format!("corrupt node document: {e}")))?;
        Ok(NodeRow { node, doc })
    }

    pub fn uuid(&self) -> uuid::Uuid {
        self.node.uuid.expect("an enrolled node has a uuid")
    }

    /// Creation order (Ironic's `id`).
    pub fn ord(&self) -> i64 {
        self.doc["created_position"].as_i64().unwrap_or(0)
    }

    /// The values of the row's index columns.
    pub fn keys(&self) -> Keys {
        keys(&self.node, &self.doc)
    }
}

/// The index columns of a node: what the API filters, sorts and pages on,
/// and which background work it needs.
fn keys(node: &Node, doc: &Value) -> Keys {
    let field = |k: &str| Key::opt_text(node.fields.get(k).and_then(Value::as_str));
    let stamp = |k: &str| Key::opt_text(doc[k].as_str());
    vec![
        (
            "ord",
            Key::Int(doc["created_position"].as_i64().unwrap_or(0)),
        ),
        ("uuid", Key::opt_text(node.uuid.map(|u| u.to_string()))),
        ("name", Key::opt_text(node.name.clone())),
        (
            "provision_state",
            Key::opt_text(node.provision_state.map(|p| p.as_str())),
        ),
        ("power_state", Key::opt_text(node.power_state.clone())),
        ("driver", Key::text(node.driver.clone())),
        ("maintenance", Key::bool(node.maintenance)),
        ("instance_uuid", Key::opt_text(node.instance_uuid.clone())),
        ("resource_class", field("resource_class")),
        // Ironic compares conductor groups case-insensitively.
        (
            "conductor_group",
            Key::text(
                node.fields
                    .get("conductor_group")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_lowercase(),
            ),
        ),
        ("owner", field("owner")),
        ("lessee", field("lessee")),
        ("retired", Key::bool(node.is_retired())),
        ("fault", Key::opt_text(node.fault.clone())),
        ("description", field("description")),
        ("created_at", stamp("created_at")),
        ("updated_at", stamp("updated_at")),
        ("provision_updated_at", stamp("provision_updated_at")),
        ("needs_work", Key::bool(node.needs_work())),
        (
            "power_sync",
            if node.power_syncable() {
                Key::text(PowerRound::Sync.key())
            } else if node.power_failure_recoverable() {
                Key::text(PowerRound::Recovery.key())
            } else {
                Key::Null
            },
        ),
    ]
}

/// The column an API sort key is answered from, for the keys whose column
/// holds the value the API shows (`id`: creation order, `None`). Other sort
/// keys have no column: [`page`] cannot order by them.
pub fn sort_column(sort_key: &str) -> Option<Option<&'static str>> {
    Some(Some(match sort_key {
        "id" => return Some(None),
        "uuid" => "uuid",
        "name" => "name",
        "provision_state" => "provision_state",
        "power_state" => "power_state",
        "driver" => "driver",
        "maintenance" => "maintenance",
        "instance_uuid" => "instance_uuid",
        "resource_class" => "resource_class",
        "owner" => "owner",
        "lessee" => "lessee",
        "retired" => "retired",
        "fault" => "fault",
        "description" => "description",
        "created_at" => "created_at",
        "updated_at" => "updated_at",
        "provision_updated_at" => "provision_updated_at",
        _ => return None,
    }))
}

/// The filters of a node list, each a column of `node_rows`.
#[derive(Debug, Clone, Default)]
pub struct NodeFilter {
    pub instance_uuid: Option<String>,
    pub associated: Option<bool>,
    pub maintenance: Option<bool>,
    pub retired: Option<bool>,
    pub provision_state: Option<String>,
    pub driver: Option<String>,
    pub resource_class: Option<String>,
    pub fault: Option<String>,
    /// Compared case-insensitively.
    pub conductor_group: Option<String>,
    pub owner: Option<String>,
    pub lessee: Option<String>,
    /// Owner or lessee.
    pub project: Option<String>,
    pub description_contains: Option<String>,
}

impl NodeFilter {
    fn conds(&self) -> Vec<Cond> {
        let mut c = vec![];
        let text = |s: &Option<String>| s.as_ref().map(|v| Key::text(v.clone()));
        let mut eq = |col: &'static str, v: Option<Key>| {
            if let Some(v) = v {
                c.push(Cond::Eq(col, v));
            }
        };
        eq("instance_uuid", text(&self.instance_uuid));
        eq("maintenance", self.maintenance.map(Key::bool));
        eq("retired", self.retired.map(Key::bool));
        eq("provision_state", text(&self.provision_state));
        eq("driver", text(&self.driver));
        eq("resource_class", text(&self.resource_class));
        eq("fault", text(&self.fault));
        eq(
            "conductor_group",
            self.conductor_group
                .as_ref()
                .map(|g| Key::text(g.to_lowercase())),
        );
        eq("owner", text(&self.owner));
        eq("lessee", text(&self.lessee));
        match self.associated {
            Some(true) => c.push(Cond::NotNull("instance_uuid")),
            Some(false) => c.push(Cond::IsNull("instance_uuid")),
            None => {}
        }
        if let Some(p) = &self.project {
            c.push(Cond::Any(vec![
                Cond::Eq("owner", Key::text(p.clone())),
                Cond::Eq("lessee", Key::text(p.clone())),
            ]));
        }
        if let Some(d) = &self.description_contains {
            c.push(Cond::Contains("description", d.clone()));
        }
        c
    }
}

/// One node by UUID.
pub async fn get(store: &dyn LogStore, uuid: &str) -> Result<Option<NodeRow>, StoreError> {
    store
        .doc_get(MODEL, uuid)
        .await?
        .map(NodeRow::from_doc)
        .transpose()
}

/// Up to `limit` nodes passing `filter`, ordered by `sort` (a column from
/// [`sort_column`]; `None`: creation order) then creation order, after
/// `marker`'s place in that order: one range of an index, so the page costs
/// what it returns.
pub async fn page(
    store: &dyn LogStore,
    filter: &NodeFilter,
    sort: Option<&'static str>,
    desc: bool,
    marker: Option<&NodeRow>,
    limit: u32,
) -> Result<Vec<NodeRow>, StoreError> {
    let conds = filter.conds();
    store
        .doc_page(MODEL, &page_query(&conds, sort, desc, marker, limit))
        .await?
        .into_iter()
        .map(|(_, doc)| NodeRow::from_doc(doc))
        .collect()
}

/// The same page as [`page`], as [`NodeSummary`]s: only the columns, no
/// document read or decoded, so a page of the API's default list costs its
/// rows' index values, not their documents.
pub async fn summaries(
    store: &dyn LogStore,
    filter: &NodeFilter,
    sort: Option<&'static str>,
    desc: bool,
    marker: Option<&NodeRow>,
    limit: u32,
) -> Result<Vec<NodeSummary>, StoreError> {
    let conds = filter.conds();
    let query = page_query(&conds, sort, desc, marker, limit);
    Ok(store
        .row_keys(MODEL, &query, SUMMARY_COLUMNS)
        .await?
        .into_iter()
        .map(|(_, keys)| NodeSummary { keys })
        .collect())
}

fn page_query<'a>(
    conds: &'a [Cond],
    sort: Option<&'static str>,
    desc: bool,
    marker: Option<&NodeRow>,
    limit: u32,
) -> PageQuery<'a> {
    PageQuery {
        conds,
        sort,
        desc,
        after: marker.map(|m| rows::cursor_of(&m.keys(), sort)),
        limit,
    }
}

/// The columns a [`NodeSummary`] holds, in its order. Each is named as the
/// API field it holds, so this is also the list of fields a summary answers.
pub const SUMMARY_COLUMNS: &[&str] = &[
    "uuid",
    "name",
    "instance_uuid",
    "power_state",
    "provision_state",
    "maintenance",
];

/// A node as its row's columns hold it: what the API's default list shows
/// (Ironic's `uuid`, `name`, `instance_uuid`, `power_state`,
/// `provision_state`, `maintenance`), read by [`summaries`].
#[derive(Debug, Clone)]
pub struct NodeSummary {
    /// The values of [`SUMMARY_COLUMNS`].
    keys: Vec<Key>,
}

impl NodeSummary {
    fn text(&self, i: usize) -> Option<&str> {
        match &self.keys[i] {
            Key::Text(s) => Some(s),
            _ => None,
        }
    }

    /// An enrolled node always has one (the column is written from it).
    pub fn uuid(&self) -> &str {
        self.text(0).unwrap_or_default()
    }

    pub fn name(&self) -> Option<&str> {
        self.text(1)
    }

    pub fn instance_uuid(&self) -> Option<&str> {
        self.text(2)
    }

    pub fn power_state(&self) -> Option<&str> {
        self.text(3)
    }

    pub fn provision_state(&self) -> Option<&str> {
        self.text(4)
    }

    pub fn maintenance(&self) -> bool {
        self.keys[5] == Key::Int(1)
    }
}

/// The UUIDs of the nodes the process manager has work for
/// ([`Node::needs_work`]), in creation order, read page by page from the
/// `needs_work` index: the sweep costs the nodes in work, not the fleet.
pub async fn needing_work(store: &dyn LogStore) -> Result<Vec<String>, StoreError> {
    ids_where(store, Cond::Eq("needs_work", Key::Int(1))).await
}

/// The two periodic power rounds, and the nodes each looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerRound {
    /// [`Node::power_syncable`].
    Sync,
    /// [`Node::power_failure_recoverable`].
    Recovery,
}

impl PowerRound {
    fn key(self) -> &'static str {
        match self {
            PowerRound::Sync => "sync",
            PowerRound::Recovery => "recover",
        }
    }
}

/// The UUIDs of the nodes a power round looks at, in creation order, read
/// page by page from the `power_sync` index.
pub async fn power_rounds(
    store: &dyn LogStore,
    round: PowerRound,
) -> Result<Vec<String>, StoreError> {
    ids_where(store, Cond::Eq("power_sync", Key::text(round.key()))).await
}

/// Ids read per page by [`ids_where`] and [`every`].
const READ_PAGE: u32 = 1000;

/// The ids of every node passing `cond`, from the index alone, page by page.
async fn ids_where(store: &dyn LogStore, cond: Cond) -> Result<Vec<String>, StoreError> {
    let conds = [cond];
    let mut ids = vec![];
    let mut after = None;
    loop {
        let query = PageQuery {
            conds: &conds,
            sort: None,
            desc: false,
            after: after.map(|a| (Key::Null, a)),
            limit: READ_PAGE,
        };
        let page = store.row_ids(MODEL, &query).await?;
        let full = page.len() == READ_PAGE as usize;
        after = page.last().map(|(_, ord)| *ord);
        ids.extend(page.into_iter().map(|(id, _)| id));
        if !full {
            return Ok(ids);
        }
    }
}

/// Every node passing `filter`, in creation order, read page by page: for
/// the lists that must sort in the process (a sort key without a column),
/// which cost the nodes that pass the filter.
pub async fn every(store: &dyn LogStore, filter: &NodeFilter) -> Result<Vec<NodeRow>, StoreError> {
    let mut rows: Vec<NodeRow> = vec![];
    loop {
        let batch = page(store, filter, None, false, rows.last(), READ_PAGE).await?;
        let full = batch.len() == READ_PAGE as usize;
        rows.extend(batch);
        if !full {
            return Ok(rows);
        }
    }
}

#[async_trait]
impl Projection for NodesProjection {
    fn name(&self) -> &'static str {
        MODEL
    }

    fn reads(&self, event: &RecordedEvent) -> Option<String> {
        (event.aggregate_type == "Node").then(|| event.aggregate_id.clone())
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
        let (mut node, mut doc) = match docs.get_ref(id).await? {
            Some(old) => {
                let node =
                    Node::deserialize(&old["state"]).map_err(|e| ProjectionError::Decode {
                        position: event.position,
                        message: format!("nodes document {id}: {e}"),
                    })?;
                // The new document keeps the old one's timestamps and order;
                // its state is written anew below (not copied first).
                let kept = old
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(k, _)| k.as_str() != "state")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                (node, Value::Object(kept))
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
            doc["created_position"] = json!(event.event_id);
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
        let keys = keys(&node, &doc);
        docs.put_row(id, doc, keys);
        Ok(())
    }
}
