//! Replays for the audit tools: resumable rebuilds and verification.
//!
//! Both replay the feed into a **scratch model** (`<name>~rebuild`,
//! `<name>~verify`) with the projection's own `apply`, batch by batch, each
//! batch committed with the scratch checkpoint (compare-and-set, like the
//! projector). The live model keeps serving the API meanwhile.
//!
//! - [`Replayer::rebuild`] resumes a scratch model left by an interrupted
//!   rebuild (its documents are exactly the log applied up to its checkpoint,
//!   since both are committed in one transaction), catches it up to the head
//!   of the feed and then swaps it in atomically ([`LogStore::swap_model`]).
//!   A running `serve` notices the moved checkpoint (its next compare-and-set
//!   fails), re-reads it and carries on from there.
//! - [`Replayer::verify`] replays up to the live model's checkpoint and
//!   compares document by document.

use super::projector::{apply_or_record, quarantined, Quarantined};
use super::{all, Docs, Projection, ProjectionError};
use crate::store::{LogStore, ModelCommit};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Where a replay stands, reported after each committed batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayProgress {
    /// The scratch model's checkpoint.
    pub position: u64,
    /// Where the replay is going (the head of the feed, or the live checkpoint).
    pub until: u64,
    /// Events applied by this run (not counting what a resumed run found done).
    pub applied: u64,
}

/// How a rebuild ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebuildOutcome {
    /// The scratch model caught up and replaced the live one.
    Swapped {
        /// Where the scratch model started (0, or where an interrupted run left it).
        resumed_from: u64,
        /// Events applied by this run.
        applied: u64,
        /// The checkpoint the new live model has.
        at: u64,
    },
    /// Stopped on request after `applied` events; run again to resume at `at`.
    Interrupted { applied: u64, at: u64 },
}

/// How a live model differs from a fresh replay of the log.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelDiff {
    pub model: String,
    /// The checkpoint both were compared at.
    pub at: u64,
    /// Documents compared.
    pub documents: usize,
    /// In the replay, not in the live model.
    pub missing: Vec<(String, Value)>,
    /// In the live model, not in the replay.
    pub extra: Vec<(String, Value)>,
    /// In both, different: (id, live, replayed).
    pub changed: Vec<(String, Value, Value)>,
}

impl ModelDiff {
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.extra.is_empty() && self.changed.is_empty()
    }
}

/// The scratch model a rebuild of `name` writes.
pub fn rebuild_scratch(name: &str) -> String {
    format!("{name}~rebuild")
}

/// The scratch model a verification of `name` writes.
pub fn verify_scratch(name: &str) -> String {
    format!("{name}~verify")
}

/// Every projection ironledger keeps, by name.
pub fn projection(name: &str) -> Result<Arc<dyn Projection>, ProjectionError> {
    all()
        .into_iter()
        .find(|p| p.name() == name)
        .ok_or_else(|| ProjectionError::Unknown(name.to_string()))
}

/// Replays the feed into scratch models of one store.
pub struct Replayer {
    store: Arc<dyn LogStore>,
    batch: u32,
}

impl Replayer {
    pub fn new(store: Arc<dyn LogStore>) -> Self {
        Replayer { store, batch: 500 }
    }

    /// Events per batch (and per commit).
    pub fn with_batch(mut self, batch: u32) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// The aggregates `model` skips (see [`apply_or_record`]).
    async fn quarantine(&self, model: &str) -> Result<Quarantined, ProjectionError> {
        Ok(quarantined(self.store.as_ref(), &[model])
            .await?
            .pop()
            .unwrap_or_default())
    }

    /// Applies the feed to `model` with `projection`, from the model's
    /// checkpoint up to position `until`, one committed batch at a time;
    /// `progress` is told after each batch. Stops early once `budget` events
    /// have been applied. Returns the number of events applied.
    pub async fn advance(
        &self,
        projection: &dyn Projection,
        model: &str,
        until: u64,
        budget: Option<u64>,
        progress: &mut dyn FnMut(ReplayProgress),
    ) -> Result<u64, ProjectionError> {
        let mut applied = 0u64;
        let mut from = self.store.checkpoint(model).await?;
        let mut quarantine = self.quarantine(model).await?;
        while from < until {
            let room = budget
                .map(|b| b.saturating_sub(applied))
                .unwrap_or(u64::MAX);
            if room == 0 {
                break;
            }
            let limit = (until - from).min(room).min(u64::from(self.batch)) as u32;
            let events = self.store.read_feed(from, limit).await?;
            let events: Vec<_> = events.into_iter().filter(|e| e.position <= until).collect();
            let Some(last) = events.last().map(|e| e.position) else {
                break;
            };
            let mut docs = Docs::new(self.store.as_ref(), model);
            let mut batch_quarantine = quarantine.clone();
            let mut failures = vec![];
            for event in &events {
                apply_or_record(
                    projection,
                    model,
                    event,
                    &mut docs,
                    &mut batch_quarantine,
                    &mut failures,
                )
                .await?;
            }
            let changes = docs.into_changes();
            let commit = ModelCommit {
                model,
                from,
                to: last,
                changes: &changes,
                failures: &failures,
            };
            if self.store.commit_models(&[commit]).await? {
                applied += events.len() as u64;
                from = last;
                quarantine = batch_quarantine;
                progress(ReplayProgress {
                    position: from,
                    until,
                    applied,
                });
            } else {
                // Someone else moved the scratch checkpoint (a second rebuild of
                // the same model): re-read it and go on from there.
                from = self.store.checkpoint(model).await?;
                quarantine = self.quarantine(model).await?;
            }
        }
        Ok(applied)
    }

    /// Rebuilds model `name` from the log through its scratch model, resuming
    /// where an interrupted run left the scratch model, then swaps it in.
    /// With `budget`, stops after that many events (the scratch model stays
    /// for the next run: this is how an interruption is tested).
    pub async fn rebuild(
        &self,
        name: &str,
        budget: Option<u64>,
        progress: &mut dyn FnMut(ReplayProgress),
    ) -> Result<RebuildOutcome, ProjectionError> {
        let p = projection(name)?;
        let scratch = rebuild_scratch(name);
        let resumed_from = self.store.checkpoint(&scratch).await?;
        if resumed_from == 0 {
            // Nothing to resume: start from an empty model.
            self.store.drop_model(&scratch).await?;
        }
        let mut applied = 0;
        loop {
            self.store.sequence().await?;
            let head = self.store.head().await?;
            let left = budget.map(|b| b.saturating_sub(applied));
            applied += self
                .advance(p.as_ref(), &scratch, head, left, progress)
                .await?;
            let at = self.store.checkpoint(&scratch).await?;
            if at < head {
                return Ok(RebuildOutcome::Interrupted { applied, at });
            }
            // Caught up with the head as it was; if more events came in
            // meanwhile, take them too before switching.
            self.store.sequence().await?;
            if self.store.head().await? > at {
                continue;
            }
            if at == 0 {
                // An empty log: the rebuilt model is empty, and the scratch
                // model never got a checkpoint to swap in.
                self.store.drop_model(name).await?;
                return Ok(RebuildOutcome::Swapped {
                    resumed_from,
                    applied,
                    at,
                });
            }
            if !self.store.swap_model(name, &scratch).await? {
                if self.store.checkpoint(&scratch).await? == 0 {
                    return Err(ProjectionError::RebuiltElsewhere(name.to_string()));
                }
                // `serve` applied newer events to the live model meanwhile:
                // take them too, then swap.
                continue;
            }
            return Ok(RebuildOutcome::Swapped {
                resumed_from,
                applied,
                at,
            });
        }
    }

    /// Replays the log into `<name>~verify` up to the live model's checkpoint
    /// and compares the two, document by document. The live model is read
    /// consistently (its checkpoint did not move while its documents were
    /// read), so a running `serve` does not cause false differences.
    pub async fn verify(
        &self,
        name: &str,
        progress: &mut dyn FnMut(ReplayProgress),
    ) -> Result<ModelDiff, ProjectionError> {
        let p = projection(name)?;
        let (at, live) = self.consistent_read(name).await?;
        let scratch = verify_scratch(name);
        self.store.drop_model(&scratch).await?;
        let result = async {
            self.advance(p.as_ref(), &scratch, at, None, progress)
                .await?;
            let reached = self.store.checkpoint(&scratch).await?;
            if reached != at {
                return Err(ProjectionError::Worker(format!(
                    "the replay of {name} stopped at {reached}, before the live checkpoint {at}"
                )));
            }
            Ok(self.store.doc_list(&scratch).await?)
        }
        .await;
        self.store.drop_model(&scratch).await?;
        let replayed: BTreeMap<String, Value> = result?.into_iter().collect();
        let live: BTreeMap<String, Value> = live.into_iter().collect();
        let mut diff = ModelDiff {
            model: name.to_string(),
            at,
            documents: live.len().max(replayed.len()),
            ..ModelDiff::default()
        };
        for (id, want) in &replayed {
            match live.get(id) {
                None => diff.missing.push((id.clone(), want.clone())),
                Some(got) if got != want => {
                    diff.changed.push((id.clone(), got.clone(), want.clone()))
                }
                Some(_) => {}
            }
        }
        for (id, got) in &live {
            if !replayed.contains_key(id) {
                diff.extra.push((id.clone(), got.clone()));
            }
        }
        Ok(diff)
    }

    /// A model's documents and the checkpoint they belong to.
    async fn consistent_read(
        &self,
        name: &str,
    ) -> Result<(u64, Vec<(String, Value)>), ProjectionError> {
        for _ in 0..50 {
            let before = self.store.checkpoint(name).await?;
            let docs = self.store.doc_list(name).await?;
            if self.store.checkpoint(name).await? == before {
                return Ok((before, docs));
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        Err(ProjectionError::Worker(format!(
            "model {name} kept moving while it was read; try again"
        )))
    }
}

/// The fields in which two JSON documents differ, as `path: live → replayed`
/// lines (for `ironledger verify`'s listing).
pub fn field_differences(live: &Value, replayed: &Value) -> Vec<String> {
    let mut out = vec![];
    walk("", live, replayed, &mut out);
    out
}

fn walk(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let p = format!("{path}/{k}");
                match (x.get(k), y.get(k)) {
                    (Some(u), Some(v)) => walk(&p, u, v, out),
                    (Some(u), None) => out.push(format!("{p}: {u} → (absent)")),
                    (None, Some(v)) => out.push(format!("{p}: (absent) → {v}")),
                    (None, None) => {}
                }
            }
        }
        _ if a != b => out.push(format!(
            "{}: {a} → {b}",
            if path.is_empty() { "/" } else { path }
        )),
        _ => {}
    }
}
