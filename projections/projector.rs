//! Feeds projections from the global feed, exactly once per event.

use super::{Docs, Projection};
use crate::store::{LogStore, StoreError};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::Mutex;

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot decode the event at position {position}: {message}")]
    Decode { position: u64, message: String },
    #[error("unknown projection '{0}'")]
    Unknown(String),
}

/// Drives a set of projections over one store.
pub struct Projector {
    store: Arc<dyn LogStore>,
    projections: Vec<Arc<dyn Projection>>,
    batch: u32,
    /// One catch-up at a time in this process; other processes are kept honest
    /// by the checkpoint compare-and-set.
    running: Mutex<()>,
}

impl Projector {
    pub fn new(store: Arc<dyn LogStore>, projections: Vec<Arc<dyn Projection>>) -> Self {
        Projector {
            store,
            projections,
            batch: 500,
            running: Mutex::new(()),
        }
    }

    pub fn store(&self) -> &Arc<dyn LogStore> {
        &self.store
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.projections.iter().map(|p| p.name()).collect()
    }

    fn find(&self, name: &str) -> Result<Arc<dyn Projection>, ProjectionError> {
        self.projections
            .iter()
            .find(|p| p.name() == name)
            .cloned()
            .ok_or_else(|| ProjectionError::Unknown(name.to_string()))
    }

    /// Numbers newly committed events, then brings every projection up to the
    /// head of the feed. Returns the number of events applied.
    pub async fn catch_up(&self) -> Result<u64, ProjectionError> {
        let _one = self.running.lock().await;
        self.store.sequence().await?;
        let mut applied = 0;
        for p in &self.projections {
            applied += self.run(p.as_ref(), p.name(), None).await?;
        }
        Ok(applied)
    }

    /// The lowest checkpoint of all projections.
    pub async fn low_water_mark(&self) -> Result<u64, ProjectionError> {
        let mut low = u64::MAX;
        for p in &self.projections {
            low = low.min(self.store.checkpoint(p.name()).await?);
        }
        Ok(if low == u64::MAX { 0 } else { low })
    }

    /// Every projection's checkpoint.
    pub async fn checkpoints(&self) -> Result<BTreeMap<&'static str, u64>, ProjectionError> {
        let mut out = BTreeMap::new();
        for p in &self.projections {
            out.insert(p.name(), self.store.checkpoint(p.name()).await?);
        }
        Ok(out)
    }

    /// Applies the feed to `model` with projection `p`, from the model's
    /// checkpoint up to `until` (or the head). A batch whose checkpoint moved
    /// under it (another process got there first) is discarded and re-read.
    async fn run(
        &self,
        p: &dyn Projection,
        model: &str,
        until: Option<u64>,
    ) -> Result<u64, ProjectionError> {
        let mut applied = 0;
        loop {
            let from = self.store.checkpoint(model).await?;
            if until.is_some_and(|u| from >= u) {
                return Ok(applied);
            }
            let mut events = self.store.read_feed(from, self.batch).await?;
            if let Some(u) = until {
                events.retain(|e| e.position <= u);
            }
            let Some(last) = events.last().map(|e| e.position) else {
                return Ok(applied);
            };
            let mut docs = Docs::new(self.store.as_ref(), model);
            for event in &events {
                p.apply(event, &mut docs).await?;
            }
            if self
                .store
                .commit_model(model, from, last, &docs.into_changes())
                .await?
            {
                applied += events.len() as u64;
                tracing::debug!(model, from, to = last, "projection advanced");
            }
        }
    }

    /// Rebuilds a projection from the whole log: replays it into a scratch model
    /// while the live one keeps serving, then swaps the two atomically and
    /// catches up the events that arrived meanwhile.
    pub async fn rebuild(&self, name: &str) -> Result<u64, ProjectionError> {
        let p = self.find(name)?;
        let scratch = format!("{name}~rebuild");
        self.store.drop_model(&scratch).await?;
        self.store.sequence().await?;
        let replayed = self.run(p.as_ref(), &scratch, None).await?;
        {
            let _one = self.running.lock().await;
            self.run(p.as_ref(), &scratch, None).await?;
            self.store.swap_model(name, &scratch).await?;
        }
        tracing::info!(projection = name, events = replayed, "projection rebuilt");
        Ok(replayed)
    }

    /// Replays the log up to `until` into model `scratch` (dropping what it held)
    /// with projection `name`: the building block of rebuild checks.
    pub async fn replay_into(
        &self,
        name: &str,
        scratch: &str,
        until: u64,
    ) -> Result<u64, ProjectionError> {
        let p = self.find(name)?;
        self.store.drop_model(scratch).await?;
        self.run(p.as_ref(), scratch, Some(until)).await
    }
}
