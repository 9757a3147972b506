//! Replays for the audit tools: resumable rebuilds and verification.
//!
//! Both replay the feed into **scratch models** (`<name>~rebuild`,
//! `<name>~verify`) with each projection's own `apply`, every model asked
//! for in one pass over the log: each batch is read once, applied to every
//! scratch model that has not seen it and committed with their checkpoints
//! in one transaction (compare-and-set, the loop the live projector uses:
//! [`super::catch_up`]). The live models keep serving the API meanwhile.
//!
//! - [`Replayer::rebuild`] resumes scratch models left by an interrupted
//!   rebuild (their documents are exactly the log applied up to their
//!   checkpoints, since both are committed in one transaction), catches them
//!   up to the head of the feed and then swaps each in atomically
//!   ([`LogStore::swap_model`]). A running `serve` notices the moved
//!   checkpoint (its next compare-and-set fails), re-reads it and carries on
//!   from there.
//! - [`Replayer::verify`] replays up to each live model's checkpoint (an
//!   inline model's: the head of the log) and compares document by document,
//!   both models read page by page in id order, so memory stays bounded
//!   whatever the fleet. Documents of nodes that moved on while the check ran
//!   are counted apart, not reported as differences.

use super::catch_up::{self, Cursor, Reach, Target};
use super::{all, Projection, ProjectionError};
use crate::store::{is_inline, LogStore};
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

/// How a rebuild ended for one model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebuildOutcome {
    /// The scratch model caught up and replaced the live one, which now
    /// stands at `at`.
    Swapped { at: u64 },
    /// Stopped on request; run again to resume at `at`.
    Interrupted { at: u64 },
}

/// One model of a rebuild.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelRebuild {
    pub name: String,
    /// Where its scratch model started (0, or where an interrupted run left it).
    pub resumed_from: u64,
    pub outcome: RebuildOutcome,
}

/// What a rebuild did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebuildReport {
    /// Feed events applied by this run, each read once for all the models
    /// (not counting what a resumed run found done).
    pub applied: u64,
    /// The models, in the order asked.
    pub models: Vec<ModelRebuild>,
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
        Replayer { store, batch: 2000 }
    }

    /// Events per batch (and per commit).
    pub fn with_batch(mut self, batch: u32) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// Applies the feed to `targets` (scratch models) from their checkpoints
    /// up to `until`, every model in one pass over the log: each batch read
    /// once, applied to each model that has not seen it, committed for all of
    /// them at once ([`catch_up::advance`]). Stops early once `budget` events
    /// have been applied.
    async fn advance(
        &self,
        targets: &[Target<'_>],
        cursor: &mut Cursor,
        until: u64,
        budget: Option<u64>,
        progress: &mut (dyn FnMut(ReplayProgress) + Send),
    ) -> Result<u64, ProjectionError> {
        let reach = Reach {
            until: Some(until),
            budget,
        };
        catch_up::advance(
            self.store.as_ref(),
            self.batch,
            targets,
            cursor,
            reach,
            progress,
        )
        .await
    }

    /// Rebuilds the models `names` from the log, all in one pass over it,
    /// through their scratch models (each resumed where an interrupted run
    /// left it), then swaps each in once it stands at the head. With
    /// `budget`, stops after that many events (the scratch models stay for the
    /// next run: this is how an interruption is tested).
    pub async fn rebuild(
        &self,
        names: &[String],
        budget: Option<u64>,
        progress: &mut (dyn FnMut(ReplayProgress) + Send),
    ) -> Result<RebuildReport, ProjectionError> {
        let projections = names
            .iter()
            .map(|n| projection(n))
            .collect::<Result<Vec<_>, _>>()?;
        let scratches: Vec<String> = names.iter().map(|n| rebuild_scratch(n)).collect();
        let mut models = Vec::with_capacity(names.len());
        for (name, scratch) in names.iter().zip(&scratches) {
            let resumed_from = self.store.checkpoint(scratch).await?;
            if resumed_from == 0 {
                // Nothing to resume: start from an empty model.
                self.store.drop_model(scratch).await?;
            }
            models.push(ModelRebuild {
                name: name.clone(),
                resumed_from,
                outcome: RebuildOutcome::Interrupted { at: resumed_from },
            });
        }
        // The models not swapped in yet.
        let mut pending: Vec<usize> = (0..names.len()).collect();
        let mut cursor = Cursor::default();
        let mut applied = 0;
        while !pending.is_empty() {
            self.store.sequence().await?;
            let head = self.store.head().await?;
            let targets: Vec<Target<'_>> = pending
                .iter()
                .map(|&i| (projections[i].as_ref(), scratches[i].as_str()))
                .collect();
            let left = budget.map(|b| b.saturating_sub(applied));
            applied += self
                .advance(&targets, &mut cursor, head, left, progress)
                .await?;
            let pending_scratches: Vec<&str> = pending.iter().map(|&i| &*scratches[i]).collect();
            let reached = self.store.checkpoints(&pending_scratches).await?;
            for (&i, &at) in pending.iter().zip(&reached) {
                models[i].outcome = RebuildOutcome::Interrupted { at };
            }
            if reached.iter().any(|&at| at < head) {
                // The budget ran out before the head.
                return Ok(RebuildReport { applied, models });
            }
            // Caught up with the head as it was; if more events came in
            // meanwhile, take them too before switching.
            self.store.sequence().await?;
            if self.store.head().await? > head {
                continue;
            }
            let mut refused = vec![];
            for &i in &pending {
                let name = &names[i];
                if head == 0 {
                    // An empty log: the rebuilt model is empty, and the scratch
                    // model never got a checkpoint to swap in.
                    self.store.drop_model(name).await?;
                } else if !self.store.swap_model(name, &scratches[i]).await? {
                    if self.store.checkpoint(&scratches[i]).await? == 0 {
                        return Err(ProjectionError::RebuiltElsewhere(name.clone()));
                    }
                    // `serve` applied newer events to the live model meanwhile
                    // (or, inline, committed some after the scratch model's
                    // head, maybe still waiting for positions): take them
                    // too, then swap.
                    refused.push(i);
                    continue;
                }
                models[i].outcome = RebuildOutcome::Swapped { at: head };
            }
            if !refused.is_empty() {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                // Fewer targets: the cursor starts over (from the checkpoints).
                cursor = Cursor::default();
            }
            pending = refused;
        }
        Ok(RebuildReport { applied, models })
    }

    /// Replays the log into `<name>~verify` for each of `names`, in one pass
    /// over the log for all models that are checked at the same position, up
    /// to the live model's checkpoint (for an inline model, which holds every
    /// commit: up to the head of the log), and compares each with its live
    /// model document by document, reading both a page at a time in id order.
    /// A running `serve` causes no false differences: a document that differs
    /// because its node had events after that position by the time it was
    /// compared is counted in [`ModelDiff::moved`].
    pub async fn verify(
        &self,
        names: &[String],
        progress: &mut (dyn FnMut(ReplayProgress) + Send),
    ) -> Result<Vec<ModelDiff>, ProjectionError> {
        let projections = names
            .iter()
            .map(|n| projection(n))
            .collect::<Result<Vec<_>, _>>()?;
        let scratches: Vec<String> = names.iter().map(|n| verify_scratch(n)).collect();
        self.store.sequence().await?;
        let head = self.store.head().await?;
        // The position each model is checked at, and the models checked at each.
        let mut ats = Vec::with_capacity(names.len());
        let mut groups: std::collections::BTreeMap<u64, Vec<usize>> = Default::default();
        for (i, name) in names.iter().enumerate() {
            let live_at = self.store.checkpoint(name).await?;
            let at = if is_inline(live_at) { head } else { live_at };
            ats.push(at);
            groups.entry(at).or_default().push(i);
        }
        for scratch in &scratches {
            self.store.drop_model(scratch).await?;
        }
        let result = async {
            for (&at, group) in &groups {
                let targets: Vec<Target<'_>> = group
                    .iter()
                    .map(|&i| (projections[i].as_ref(), scratches[i].as_str()))
                    .collect();
                self.advance(&targets, &mut Cursor::default(), at, None, progress)
                    .await?;
                for &i in group {
                    let reached = self.store.checkpoint(&scratches[i]).await?;
                    if reached != at {
                        return Err(ProjectionError::Worker(format!(
                            "the replay of {} stopped at {reached}, before {at}",
                            names[i]
                        )));
                    }
                }
            }
            let mut diffs = Vec::with_capacity(names.len());
            for (i, name) in names.iter().enumerate() {
                diffs.push(self.compare(name, &scratches[i], ats[i]).await?);
            }
            Ok(diffs)
        }
        .await;
        for scratch in &scratches {
            self.store.drop_model(scratch).await?;
        }
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
