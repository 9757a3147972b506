//! The one loop that applies the feed to read models: the live projector's
//! rounds, `rebuild` and `verify` all go through [`advance`].
//!
//! Each batch is read from the feed **once**, from the lowest checkpoint of the
//! targets, and each event goes to every target whose checkpoint is below it
//! (targets may stand at different checkpoints: a rebuild resumed for one
//! model, a model swapped in by a rebuild). The documents of all targets and
//! their checkpoint moves are then committed in one transaction
//! ([`LogStore::commit_models`]), all or nothing, only if every checkpoint is
//! still where the batch started: each event reaches each model exactly once,
//! whoever else is applying the feed. A batch that loses that race writes
//! nothing; the checkpoints are read again and the batch is done over.
//!
//! Documents read and written by a batch are remembered for the next one
//! ([`Cursor`]), so a replay reads each document from the store at most once
//! while it stays in the window, instead of once per batch.

use super::docs::Known;
use super::replay::ReplayProgress;
use super::{Docs, Projection, ProjectionError};
use crate::store::{is_inline, ApplyFailure, DocChange, LogStore, ModelCommit, RecordedEvent};
use std::collections::HashSet;

/// One feed-applying target: a projection and the model it writes.
pub(crate) type Target<'a> = (&'a dyn Projection, &'a str);

/// An aggregate a model skips: `(aggregate type, aggregate id)`.
pub(crate) type Quarantined = HashSet<(String, String)>;

/// Most documents remembered per model between batches; beyond that the
/// memory is given back and documents are read from the store again.
const KNOWN_DOCS_CAP: usize = 4096;

/// Where a set of targets stands, as far as this process knows, so that the
/// next batch need not ask the store.
///
/// Both parts are guesses that the compare-and-set checks, never trusted
/// blindly. The checkpoints are where the next batch starts; if another process
/// moved one meanwhile, the commit is refused, the batch discarded and the
/// checkpoints re-read: a wrong guess costs one wasted batch, not correctness.
/// The documents are what the last batches read and wrote, each model's tagged
/// with the checkpoint it is valid at. A model's documents are a pure function
/// of the log up to its checkpoint (whoever wrote them: that is what
/// `tests/store/rebuild_equals_live.rs` checks), so documents tagged with the
/// checkpoint a batch starts from are exactly what the store holds whenever
/// that batch's compare-and-set succeeds; when it fails, nothing is written.
#[derive(Default)]
pub(crate) struct Cursor {
    /// Each target's checkpoint; `None`: ask the store (at first, after a lost
    /// compare-and-set or an error, after a rebuild, and when polling for other
    /// processes' work).
    pub(crate) checkpoints: Option<Vec<u64>>,
    /// Each target's documents, and the checkpoint they are valid at.
    pub(crate) docs: Vec<(u64, Known)>,
    /// Each target's quarantined aggregates (those with a recorded failure),
    /// valid exactly when `checkpoints` is: failures are only recorded with a
    /// checkpoint move. Read again whenever the checkpoints are.
    pub(crate) quarantined: Vec<Quarantined>,
}

impl Cursor {
    /// The lowest checkpoint of the targets, if known.
    pub(crate) fn low(&self) -> Option<u64> {
        self.checkpoints
            .as_ref()
            .and_then(|c| c.iter().min().copied())
    }
}

/// How far one [`advance`] goes: up to the head of the feed (as a short batch
/// finds it), or less.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Reach {
    /// Stop at this position.
    pub until: Option<u64>,
    /// Stop once this many events have been applied.
    pub budget: Option<u64>,
}

/// Applies the feed to the `targets` (projection, model) from their
/// checkpoints as far as `reach` allows, `batch` events per read and per
/// transaction (see the module docs); `progress` is told after each committed
/// batch. Returns the number of feed events applied (each counted once,
/// however many targets it went to).
///
/// `cursor` says where to start (see [`Cursor`]) and is left where the
/// targets got to; after an error it says to ask the store next time (a
/// failed commit may or may not have landed).
pub(crate) async fn advance(
    store: &dyn LogStore,
    batch: u32,
    targets: &[Target<'_>],
    cursor: &mut Cursor,
    reach: Reach,
    progress: &mut (dyn FnMut(ReplayProgress) + Send),
) -> Result<u64, ProjectionError> {
    let result = advance_inner(store, batch.max(1), targets, cursor, reach, progress).await;
    if result.is_err() {
        cursor.checkpoints = None;
    }
    result
}

async fn advance_inner(
    store: &dyn LogStore,
    batch: u32,
    targets: &[Target<'_>],
    cursor: &mut Cursor,
    reach: Reach,
    progress: &mut (dyn FnMut(ReplayProgress) + Send),
) -> Result<u64, ProjectionError> {
    let models: Vec<&str> = targets.iter().map(|(_, model)| *model).collect();
    if cursor.docs.len() != targets.len() {
        *cursor = Cursor::default();
        cursor.docs.resize_with(targets.len(), Default::default);
    }
    if cursor.quarantined.len() != targets.len() {
        // Unknown: read again with the checkpoints.
        cursor.checkpoints = None;
    }
    let mut applied = 0u64;
    loop {
        let from = match cursor.checkpoints.take() {
            Some(from) if from.len() == targets.len() => from,
            _ => {
                let from = store.checkpoints(&models).await?;
                cursor.quarantined = quarantined(store, &models).await?;
                from
            }
        };
        let Some(low) = from.iter().min().copied() else {
            return Ok(applied);
        };
        cursor.checkpoints = Some(from.clone());
        if is_inline(low) {
            // The appends write them all: nothing to read from the feed.
            // (Whether that still holds is checked by the polls, and after
            // an append that found a model not inline: see `Projector::distrust`.)
            return Ok(applied);
        }
        let room = reach.budget.map_or(u64::MAX, |b| b.saturating_sub(applied));
        let left = reach.until.map_or(u64::MAX, |u| u.saturating_sub(low));
        let limit = u64::from(batch).min(room).min(left) as u32;
        if limit == 0 {
            return Ok(applied);
        }
        let events = store.read_feed(low, limit).await?;
        // A short batch reached the head (as of this read): no need to read
        // again just to find nothing.
        let at_head = events.len() < limit as usize;
        let mut events = events;
        if let Some(u) = reach.until {
            events.retain(|e| e.position <= u);
        }
        let Some(last) = events.last().map(|e| e.position) else {
            return Ok(applied);
        };

        // Each model's overlay starts from its remembered documents if they
        // are valid at the checkpoint this batch starts from.
        let mut docs: Vec<Docs<'_>> = Vec::with_capacity(targets.len());
        for (i, model) in models.iter().enumerate() {
            let (at, known) = std::mem::take(&mut cursor.docs[i]);
            let known = if at == from[i] { known } else { Known::new() };
            docs.push(Docs::with_known(store, model, known));
        }
        // What the batch will read, in one query per model.
        for (i, (projection, _)) in targets.iter().enumerate() {
            let ids: Vec<String> = events
                .iter()
                .filter(|e| e.position > from[i])
                .filter_map(|e| projection.reads(e))
                .collect();
            docs[i].prefetch(ids).await?;
        }
        let mut quarantine = cursor.quarantined.clone();
        let mut failures: Vec<Vec<ApplyFailure>> = vec![Vec::new(); targets.len()];
        for event in &events {
            for (i, (projection, model)) in targets.iter().enumerate() {
                if event.position <= from[i] {
                    continue;
                }
                apply_or_record(
                    *projection,
                    model,
                    event,
                    &mut docs[i],
                    &mut quarantine[i],
                    &mut failures[i],
                )
                .await?;
            }
        }
        let (changes, views): (Vec<Vec<DocChange>>, Vec<Known>) =
            docs.into_iter().map(Docs::finish).unzip();
        let commits: Vec<ModelCommit<'_>> = (0..targets.len())
            .filter(|&i| from[i] < last)
            .map(|i| ModelCommit {
                model: models[i],
                from: from[i],
                to: last,
                changes: &changes[i],
                failures: &failures[i],
            })
            .collect();
        if store.commit_models(&commits).await? {
            applied += events.len() as u64;
            tracing::debug!(
                from = low,
                to = last,
                models = commits.len(),
                "projections advanced"
            );
            let reached: Vec<u64> = from.iter().map(|&f| f.max(last)).collect();
            for (i, mut view) in views.into_iter().enumerate() {
                if view.len() > KNOWN_DOCS_CAP {
                    view = Known::new();
                }
                cursor.docs[i] = (reached[i], view);
            }
            progress(ReplayProgress {
                position: reached.iter().min().copied().unwrap_or(last),
                until: reach.until.unwrap_or(last),
                applied,
            });
            cursor.checkpoints = Some(reached);
            cursor.quarantined = quarantine;
            if at_head {
                return Ok(applied);
            }
        } else {
            tracing::debug!(
                from = low,
                to = last,
                "lost a projection race; re-reading checkpoints"
            );
            // The documents stay tagged with the checkpoints they are valid at;
            // those of models that moved meanwhile will not match any more.
            cursor.checkpoints = None;
        }
    }
}

/// Applies one event to one model, or records why it could not (see
/// [`ApplyFailure`]): the one rule for every applier of the feed (the live
/// projector, rebuilds and checks).
///
/// An event whose aggregate already failed in this model is skipped (and
/// recorded): applying it to a state that misses an earlier event would make
/// a wrong document look right. An event that fails with a poison error
/// ([`ProjectionError::is_poison`]) leaves no half of itself in `docs`, puts
/// its aggregate in `quarantine` and is recorded. Any other error (the store)
/// is returned: the batch is retried.
pub(crate) async fn apply_or_record(
    projection: &dyn Projection,
    model: &str,
    event: &RecordedEvent,
    docs: &mut Docs<'_>,
    quarantine: &mut Quarantined,
    failures: &mut Vec<ApplyFailure>,
) -> Result<(), ProjectionError> {
    let skipped = !quarantine.is_empty()
        && quarantine.contains(&(event.aggregate_type.clone(), event.aggregate_id.clone()));
    if skipped {
        failures.push(failure(
            model,
            event,
            "skipped: an earlier event of this aggregate could not be applied".into(),
        ));
        return Ok(());
    }
    docs.begin_event();
    match projection.apply(event, docs).await {
        Ok(()) => Ok(()),
        Err(e) if e.is_poison() => {
            docs.undo_event();
            tracing::error!(
                model,
                position = event.position,
                aggregate_type = %event.aggregate_type,
                aggregate_id = %event.aggregate_id,
                event_type = %event.event_type,
                error = %e,
                "read model cannot apply an event; recorded, skipping the aggregate in this model"
            );
            quarantine.insert((event.aggregate_type.clone(), event.aggregate_id.clone()));
            failures.push(failure(model, event, e.to_string()));
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// The aggregates each of `models` skips, from its recorded failures.
pub(crate) async fn quarantined(
    store: &dyn LogStore,
    models: &[&str],
) -> Result<Vec<Quarantined>, ProjectionError> {
    let mut sets = vec![Quarantined::new(); models.len()];
    for f in store.failures(models).await? {
        if let Some(i) = models.iter().position(|m| *m == f.model) {
            sets[i].insert((f.aggregate_type, f.aggregate_id));
        }
    }
    Ok(sets)
}

/// The record of `event` not applied to `model`, and why.
fn failure(model: &str, event: &RecordedEvent, error: String) -> ApplyFailure {
    ApplyFailure {
        model: model.to_string(),
        position: event.position,
        aggregate_type: event.aggregate_type.clone(),
        aggregate_id: event.aggregate_id.clone(),
        event_type: event.event_type.clone(),
        error,
        failed_at: chrono::Utc::now(),
    }
}
