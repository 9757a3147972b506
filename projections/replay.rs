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
//! - [`Replayer::verify`] replays up to the live model's checkpoint (an
//!   inline model's: the head of the log) and compares document by document,
//!   both models read page by page in id order, so memory stays bounded
//!   whatever the fleet. Documents of nodes that moved on while the check ran
//!   are counted apart, not reported as differences.

use super::projector::{apply_or_record, quarantined, Quarantined};
use super::{all, Docs, Projection, ProjectionError};
use crate::store::{is_inline, LogStore, ModelCommit};
use serde_json::Value;
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
    /// The position both were compared at.
    pub at: u64,
    /// Documents compared.
    pub documents: usize,
    /// In the replay, not in the live model.
    pub missing: Vec<(String, Value)>,
    /// In the live model, not in the replay.
    pub extra: Vec<(String, Value)>,
    /// In both, different: (id, live, replayed).
    pub changed: Vec<(String, Value, Value)>,
    /// Differences beyond the first [`DIFFS_KEPT`], counted, not kept.
    pub unlisted: usize,
    /// Documents not compared because their node had events after `at` by
    /// the time they were read (the live model moved on during the check).
    pub moved: usize,
}

impl ModelDiff {
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.extra.is_empty() && self.changed.is_empty()
    }

    /// Every difference found, kept or not.
    pub fn total(&self) -> usize {
        self.missing.len() + self.extra.len() + self.changed.len() + self.unlisted
    }
}

/// How many differences a check keeps (to list them); the rest are counted.
pub const DIFFS_KEPT: usize = 1000;

/// Documents read per page when a check compares two models.
const COMPARE_PAGE: u32 = 500;

/// The node a read-model document belongs to: its `node_uuid` (ports,
/// connectors, targets, history entries), else the id's first part (a node's
/// own document; `<node>/<entry>`), or what follows `state/` (a node's history
/// state).
fn node_of(id: &str, doc: &Value) -> String {
    if let Some(node) = doc.get("node_uuid").and_then(Value::as_str) {
        return node.to_string();
    }
    let id = id.strip_prefix("state/").unwrap_or(id);
    id.split('/').next().unwrap_or(id).to_string()
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
                // `serve` applied newer events to the live model meanwhile
                // (or, inline, committed some after the scratch model's
                // head, maybe still waiting for positions): take them too,
                // then swap.
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
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
    /// (for an inline model, which holds every commit: up to the head of the
    /// log) and compares the two, document by document, reading both a page at
    /// a time in id order. A running `serve` causes no false differences: a
    /// document that differs because its node had events after that position
    /// by the time it was compared is counted in [`ModelDiff::moved`].
    pub async fn verify(
        &self,
        name: &str,
        progress: &mut dyn FnMut(ReplayProgress),
    ) -> Result<ModelDiff, ProjectionError> {
        let p = projection(name)?;
        self.store.sequence().await?;
        let live_at = self.store.checkpoint(name).await?;
        let at = if is_inline(live_at) {
            self.store.head().await?
        } else {
            live_at
        };
        let scratch = verify_scratch(name);
        self.store.drop_model(&scratch).await?;
        let result = async {
            self.advance(p.as_ref(), &scratch, at, None, progress)
                .await?;
            let reached = self.store.checkpoint(&scratch).await?;
            if reached != at {
                return Err(ProjectionError::Worker(format!(
                    "the replay of {name} stopped at {reached}, before {at}"
                )));
            }
            self.compare(name, &scratch, at).await
        }
        .await;
        self.store.drop_model(&scratch).await?;
        result
    }

    /// Compares live model `name` with `scratch` (the log replayed up to
    /// `at`): a merge of the two in id order, one page of each at a time.
    async fn compare(
        &self,
        name: &str,
        scratch: &str,
        at: u64,
    ) -> Result<ModelDiff, ProjectionError> {
        let mut diff = ModelDiff {
            model: name.to_string(),
            at,
            ..ModelDiff::default()
        };
        let mut live = Pages::new(self.store.as_ref(), name);
        let mut replayed = Pages::new(self.store.as_ref(), scratch);
        loop {
            let (l, r) = (live.peek().await?, replayed.peek().await?);
            let (got, want) = match (l, r) {
                (None, None) => return Ok(diff),
                (Some((li, _)), Some((ri, _))) if li == ri => (live.next(), replayed.next()),
                (Some((li, _)), Some((ri, _))) if li < ri => (live.next(), None),
                (Some(_), None) => (live.next(), None),
                _ => (None, replayed.next()),
            };
            diff.documents += 1;
            if let (Some((_, a)), Some((_, b))) = (&got, &want) {
                if a == b {
                    continue;
                }
            }
            let (id, doc) = got.as_ref().or(want.as_ref()).expect("one side has it");
            if self.moved_on(&node_of(id, doc), at).await? {
                diff.moved += 1;
                continue;
            }
            if diff.missing.len() + diff.extra.len() + diff.changed.len() >= DIFFS_KEPT {
                diff.unlisted += 1;
                continue;
            }
            match (got, want) {
                (Some((id, a)), Some((_, b))) => diff.changed.push((id, a, b)),
                (Some(extra), None) => diff.extra.push(extra),
                (None, Some(missing)) => diff.missing.push(missing),
                (None, None) => unreachable!("one side has it"),
            }
        }
    }

    /// Whether `node` has events after position `at` (numbered or not yet):
    /// its live documents may be ahead of a replay up to `at`.
    async fn moved_on(&self, node: &str, at: u64) -> Result<bool, ProjectionError> {
        let (position, pending) = self.store.aggregate_position("Node", node).await?;
        Ok(pending || position > at)
    }
}

/// One model read page by page in id order ([`LogStore::doc_scan`]): at most
/// a page of it in memory.
struct Pages<'a> {
    store: &'a dyn LogStore,
    model: &'a str,
    page: std::collections::VecDeque<(String, Value)>,
    /// The last id read; `None` before the first page.
    after: Option<String>,
    done: bool,
}

impl<'a> Pages<'a> {
    fn new(store: &'a dyn LogStore, model: &'a str) -> Self {
        Pages {
            store,
            model,
            page: Default::default(),
            after: None,
            done: false,
        }
    }

    /// The next document, reading a page when the last one is used up.
    async fn peek(&mut self) -> Result<Option<&(String, Value)>, ProjectionError> {
        if self.page.is_empty() && !self.done {
            let page = self
                .store
                .doc_scan(self.model, self.after.as_deref(), COMPARE_PAGE)
                .await?;
            self.done = page.len() < COMPARE_PAGE as usize;
            self.after = page.last().map(|(id, _)| id.clone());
            self.page = page.into();
        }
        Ok(self.page.front())
    }

    /// Takes the document [`peek`](Self::peek) showed.
    fn next(&mut self) -> Option<(String, Value)> {
        self.page.pop_front()
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
