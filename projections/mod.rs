//! Read models built from the ordered feed.
//!
//! Each [`Projection`] folds events into documents of one model (`nodes`,
//! `ports`, `connectors`, `targets`, `node_history`). Every one of them is a
//! fold of one node's own stream, so the engine's appends write them in their
//! own transaction ([`InlineModels`]: *inline* models, read-your-writes with no
//! wait). A model that is not inline (new, dropped, being rebuilt) is fed by the
//! [`Projector`] from the store's global feed: it reads a batch once, from the
//! lowest checkpoint, applies each event to every model that has not seen it,
//! and writes all the models' documents and new checkpoints in one transaction,
//! only if every checkpoint is still where the batch started; once a model
//! stands at the head it goes inline. Every event reaches a model exactly once,
//! even with several ironledger processes on one database (see
//! `docs/architecture.md`, "Inline and feed-driven models").
//!
//! Models can be dropped and rebuilt from the log at any time; a rebuild is
//! written under a scratch name and swapped in, and it must equal the live model
//! (see `tests/store/rebuild_equals_live.rs`).

mod catch_up;
pub mod children;
mod docs;
mod history;
mod inline;
pub mod nodes;
mod projector;
pub mod replay;

pub use children::ChildProjection;
pub use docs::Docs;
pub use history::{describe as describe_event, history_of, HistoryProjection};
pub use inline::InlineModels;
pub use nodes::{NodeFilter, NodeRow, NodeSummary, NodesProjection, PowerRound};
pub use projector::{ProjectionError, Projector};

use crate::store::RecordedEvent;
use async_trait::async_trait;
use std::sync::Arc;

/// A read model: a name, and how one event changes its documents.
#[async_trait]
pub trait Projection: Send + Sync {
    /// The model's name: its documents and checkpoint are stored under it.
    fn name(&self) -> &'static str;

    /// The document `apply` will read for `event`, if it can tell without
    /// reading anything: the feed's appliers fetch those of a whole batch in
    /// one query ([`Docs::prefetch`]) instead of one query per event.
    fn reads(&self, _event: &RecordedEvent) -> Option<String> {
        None
    }

    /// Applies one event. `docs` reads through to the store and buffers writes.
    async fn apply(
        &self,
        event: &RecordedEvent,
        docs: &mut Docs<'_>,
    ) -> Result<(), ProjectionError>;
}

/// Every projection ironledger keeps.
pub fn all() -> Vec<Arc<dyn Projection>> {
    vec![
        Arc::new(NodesProjection),
        Arc::new(ChildProjection::ports()),
        Arc::new(ChildProjection::connectors()),
        Arc::new(ChildProjection::targets()),
        Arc::new(HistoryProjection),
    ]
}

/// Decodes a node event from the feed.
pub(crate) fn node_event(
    event: &RecordedEvent,
) -> Result<Option<crate::domain::NodeEvent>, ProjectionError> {
    if event.aggregate_type != "Node" {
        return Ok(None);
    }
    if let Some(why) = event.unreadable() {
        return Err(ProjectionError::Decode {
            position: event.position,
            message: why.to_string(),
        });
    }
    // Older schema versions are upcast first (see `domain::upcast`).
    crate::domain::upcast::node_event(&event.event_type, &event.event_version, &event.payload)
        .map(Some)
        .map_err(|e| ProjectionError::Decode {
            position: event.position,
            message: e.to_string(),
        })
}

/// The RFC 3339 form timestamps take in read models (Ironic's, with a UTC offset).
pub(crate) fn timestamp(event: &RecordedEvent) -> serde_json::Value {
    serde_json::Value::String(
        event
            .recorded_at
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, false),
    )
}
