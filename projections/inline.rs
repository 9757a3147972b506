//! The read models an append writes in its own transaction.
//!
//! Every model ironledger keeps (`nodes`, `ports`, `connectors`, `targets`,
//! `node_history`) is a fold of one node's own stream: an event of node A never
//! changes a document of node B. So the documents a command's events change
//! can be computed from the documents the node's previous commit left and
//! written with the events, in one transaction (an *inline* projection): the
//! command's answer reads its own write, with no worker round to wait for.
//!
//! [`InlineModels`] is that fold, handed to the store as a
//! [`crate::store::Fold`]. It runs the very same [`Projection::apply`] the
//! feed-driven projector and the rebuilds run, over the events as stored, so
//! a model written inline equals a replay of the feed (`verify` checks it,
//! `tests/store/rebuild_equals_live.rs` too). Which models are inline at a given
//! moment is the store's business (their checkpoint says so): see
//! [`crate::store::INLINE`] and `docs/architecture.md`.

use super::{all, Docs, Projection, ProjectionError};
use crate::store::{DocChange, Fold, LogStore, RecordedEvent, StoreError};
use async_trait::async_trait;
use std::sync::Arc;

/// Every projection, folded inline.
pub struct InlineModels {
    projections: Vec<Arc<dyn Projection>>,
    names: Vec<&'static str>,
}

impl InlineModels {
    /// All of ironledger's read models (they are all folds of one stream).
    pub fn all() -> Self {
        let projections = all();
        let names = projections.iter().map(|p| p.name()).collect();
        InlineModels { projections, names }
    }
}

#[async_trait]
impl Fold for InlineModels {
    fn models(&self) -> &[&'static str] {
        &self.names
    }

    async fn fold(
        &self,
        store: &dyn LogStore,
        events: &[RecordedEvent],
    ) -> Result<Vec<Vec<DocChange>>, StoreError> {
        let mut changes = Vec::with_capacity(self.projections.len());
        for p in &self.projections {
            let mut docs = Docs::new(store, p.name());
            for event in events {
                p.apply(event, &mut docs).await.map_err(|e| match e {
                    ProjectionError::Store(e) => e,
                    // A command whose events its own read models cannot
                    // fold is refused, nothing written: the feed-driven
                    // projector would have to record it as a failure, and
                    // a read model that misses an event is wrong.
                    e => StoreError::Corrupt(format!("{} cannot fold the command: {e}", p.name())),
                })?;
            }
            changes.push(docs.into_changes());
        }
        Ok(changes)
    }
}
