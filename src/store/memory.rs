//! An in-process [`LogStore`] for tests and throwaway runs.
//!
//! Everything lives behind one `std::sync::Mutex`. That is the whole concurrency
//! story, and it is enough: every operation is a short, synchronous critical
//! section (the lock is never held across an `.await`), so appends are totally
//! ordered by the lock and each one either applies completely or not at all.
//! Because appends are serialized, positions can be handed out at append time
//! and are automatically dense and in commit order; [`LogStore::sequence`] has
//! nothing to do.
//!
//! An append that folds inline read models ([`LogStore::append_folded`])
//! must read documents between numbering its events and writing them, which
//! cannot happen under that lock; appends also take turns on an async
//! `writer` lock, held across the fold, so that the positions it numbered
//! with are still free when it writes.
//!
//! The semantics (conflicts, claims, compare-and-set checkpoints, ordering of
//! `doc_list`) are the same as the SQL backends', and the shared test suite in
//! `tests/store/store_suite.rs` holds all three to it.

use super::is_inline;
use super::{
    distinct_models, folded_commits, recorded, rows, ApplyFailure, ClaimConflict, ClaimOp,
    DocChange, Fold, Key, KeyState, Keys, LogStore, ModelCommit, PageQuery, RecordedEvent,
    StoreError, INLINE,
};
use async_trait::async_trait;
use chrono::Utc;
use cqrs_es::persist::SerializedEvent;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

/// The in-memory backend. Cheap to create; nothing survives the process.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    /// Appends take turns on it (see the module docs).
    writer: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct Inner {
    /// The log in position order: `events[i].position == i + 1`.
    events: Vec<RecordedEvent>,
    /// (aggregate type, aggregate id) → sequence → index into `events`.
    /// A BTreeMap so that `load` comes out in sequence order for free.
    streams: HashMap<(String, String), BTreeMap<u64, usize>>,
    /// (scope, key) → owner.
    claims: HashMap<ClaimKey, String>,
    /// model → id → document and its index keys. BTreeMaps give `doc_list`
    /// its id order.
    models: BTreeMap<String, BTreeMap<String, (Value, Keys)>>,
    checkpoints: HashMap<String, u64>,
    /// model → position → failure.
    failures: BTreeMap<String, BTreeMap<u64, ApplyFailure>>,
    /// Idempotency key → (fingerprint, taken at in ms, answer).
    idempotency: HashMap<String, (String, i64, Option<Value>)>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the lock, shrugging off poisoning: a panic in another task cannot
    /// leave `Inner` half-updated, because every mutation below validates (or
    /// undoes) before it applies changes that cannot fail.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One page of a typed model, by a scan (the memory store serves tests,
    /// where models are small; the SQL backends answer the same query from
    /// their indexes): `(id, document, ord)`.
    fn page(
        &self,
        model: &str,
        query: &PageQuery<'_>,
    ) -> Result<Vec<(String, Value, Keys)>, StoreError> {
        rows::page_table(model, query)?;
        let inner = self.lock();
        let Some(docs) = inner.models.get(model) else {
            return Ok(vec![]);
        };
        let mut hits: Vec<(&String, &(Value, Keys))> = docs
            .iter()
            .filter(|(_, (_, keys))| {
                query.conds.iter().all(|c| c.holds(keys)) && query.is_after(keys)
            })
            .collect();
        hits.sort_by(|a, b| {
            let (value, ord) = rows::cursor_of(&b.1 .1, query.sort);
            query.order(&a.1 .1, &value, ord)
        });
        Ok(hits
            .into_iter()
            .take(query.limit as usize)
            .map(|(k, (v, keys))| (k.clone(), v.clone(), keys.clone()))
            .collect())
    }
}

type ClaimKey = (String, String);

/// Applies `ops` to the claims table in order, the same way the SQL backends do.
/// On a conflict, every change already made is undone (from an undo log, so that
/// an append costs O(its own claims), not O(all claims)) and the table is as before.
fn apply_claims(
    claims: &mut HashMap<ClaimKey, String>,
    ops: &[ClaimOp],
) -> Result<(), ClaimConflict> {
    // (key, previous holder) for every change, in the order made.
    let mut undo: Vec<(ClaimKey, Option<String>)> = vec![];
    for op in ops {
        match op {
            ClaimOp::Acquire { scope, key, owner } => {
                let k = (scope.clone(), key.clone());
                match claims.get(&k) {
                    Some(holder) if holder != owner => {
                        let conflict = ClaimConflict {
                            scope: scope.clone(),
                            key: key.clone(),
                            owner: holder.clone(),
                        };
                        for (k, previous) in undo.into_iter().rev() {
                            match previous {
                                Some(holder) => claims.insert(k, holder),
                                None => claims.remove(&k),
                            };
                        }
                        return Err(conflict);
                    }
                    Some(_) => {}
                    None => {
                        claims.insert(k.clone(), owner.clone());
                        undo.push((k, None));
                    }
                }
            }
            ClaimOp::Release { scope, key, owner } => {
                let k = (scope.clone(), key.clone());
                if claims.get(&k) == Some(owner) {
                    let previous = claims.remove(&k);
                    undo.push((k, previous));
                }
            }
            ClaimOp::ReleaseAll { owner, scope } => {
                let keys: Vec<ClaimKey> = claims
                    .iter()
                    .filter(|((s, _), holder)| {
                        *holder == owner && scope.as_ref().is_none_or(|scope| s == scope)
                    })
                    .map(|(k, _)| k.clone())
                    .collect();
                for k in keys {
                    let previous = claims.remove(&k);
                    undo.push((k, previous));
                }
            }
        }
    }
    Ok(())
}

fn to_serialized(e: &RecordedEvent) -> SerializedEvent {
    SerializedEvent {
        aggregate_id: e.aggregate_id.clone(),
        sequence: e.sequence as usize,
        aggregate_type: e.aggregate_type.clone(),
        event_type: e.event_type.clone(),
        event_version: e.event_version.clone(),
        payload: e.payload.clone(),
        metadata: e.metadata.clone(),
    }
}

#[async_trait]
impl LogStore for MemoryStore {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn load(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, StoreError> {
        let inner = self.lock();
        let key = (aggregate_type.to_string(), aggregate_id.to_string());
        Ok(inner
            .streams
            .get(&key)
            .map(|stream| {
                stream
                    .values()
                    .map(|&i| to_serialized(&inner.events[i]))
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn append(
        &self,
        events: &[SerializedEvent],
        claims: &[ClaimOp],
    ) -> Result<(), StoreError> {
        let _turn = self.writer.lock().await;
        let mut inner = self.lock();
        let head = inner.events.len() as u64;
        let unfolded = !events.is_empty();
        let events = recorded(events, |i| numbered(head, i), Utc::now());
        write_events(&mut inner, events, claims)?;
        if unfolded {
            hand_back_to_the_feed(&mut inner, head);
        }
        Ok(())
    }

    async fn append_folded(
        &self,
        events: &[SerializedEvent],
        claims: &[ClaimOp],
        fold: &dyn Fold,
    ) -> Result<bool, StoreError> {
        let _turn = self.writer.lock().await;
        let head = self.lock().events.len() as u64;
        let events = recorded(events, |i| numbered(head, i), Utc::now());
        let changes = fold.fold(self, &events).await?;
        let mut inner = self.lock();
        write_events(&mut inner, events, claims)?;
        let models = fold.models();
        let commits = folded_commits(models, &changes, |m| {
            inner.checkpoints.get(m).copied().is_some_and(is_inline)
        });
        for c in &commits {
            write_changes(&mut inner, c.model, c.changes);
        }
        Ok(commits.len() == models.len())
    }

    async fn go_inline(&self, models: &[&str], at: u64) -> Result<bool, StoreError> {
        let _turn = self.writer.lock().await;
        let mut inner = self.lock();
        let ready = inner.events.len() as u64 == at
            && models.iter().all(|m| {
                inner.checkpoints.get(*m).copied().unwrap_or(0) == at
                    && inner.failures.get(*m).is_none_or(|f| f.is_empty())
            });
        if ready {
            for m in models {
                inner.checkpoints.insert(m.to_string(), INLINE);
            }
        }
        Ok(ready)
    }

    async fn claim_owner(&self, scope: &str, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .lock()
            .claims
            .get(&(scope.to_string(), key.to_string()))
            .cloned())
    }

    async fn sequence(&self) -> Result<(), StoreError> {
        // Positions are given at append time, under the lock.
        Ok(())
    }

    async fn read_feed(&self, after: u64, limit: u32) -> Result<Vec<RecordedEvent>, StoreError> {
        let inner = self.lock();
        // Position p lives at index p - 1, so events after `after` start at index `after`.
        let start = usize::try_from(after)
            .unwrap_or(usize::MAX)
            .min(inner.events.len());
        Ok(inner.events[start..]
            .iter()
            .take(limit as usize)
            .cloned()
            .collect())
    }

    async fn head(&self) -> Result<u64, StoreError> {
        Ok(self.lock().events.len() as u64)
    }

    async fn aggregate_position(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<(u64, bool), StoreError> {
        let inner = self.lock();
        let key = (aggregate_type.to_string(), aggregate_id.to_string());
        let max = inner
            .streams
            .get(&key)
            .and_then(|s| s.values().map(|&i| inner.events[i].position).max())
            .unwrap_or(0);
        Ok((max, false))
    }

    async fn doc_get(&self, model: &str, id: &str) -> Result<Option<Value>, StoreError> {
        Ok(self
            .lock()
            .models
            .get(model)
            .and_then(|docs| docs.get(id))
            .map(|(body, _)| body.clone()))
    }

    async fn doc_list(&self, model: &str) -> Result<Vec<(String, Value)>, StoreError> {
        Ok(self
            .lock()
            .models
            .get(model)
            .map(|docs| {
                docs.iter()
                    .map(|(k, (v, _))| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn doc_scan(
        &self,
        model: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<(String, Value)>, StoreError> {
        use std::ops::Bound;
        let inner = self.lock();
        let Some(docs) = inner.models.get(model) else {
            return Ok(vec![]);
        };
        let from = match after {
            Some(a) => Bound::Excluded(a.to_string()),
            None => Bound::Unbounded,
        };
        Ok(docs
            .range::<String, _>((from, Bound::Unbounded))
            .take(limit as usize)
            .map(|(k, (v, _))| (k.clone(), v.clone()))
            .collect())
    }

    async fn doc_page(
        &self,
        model: &str,
        query: &PageQuery<'_>,
    ) -> Result<Vec<(String, Value)>, StoreError> {
        Ok(self
            .page(model, query)?
            .into_iter()
            .map(|(id, body, _)| (id, body))
            .collect())
    }

    async fn row_keys(
        &self,
        model: &str,
        query: &PageQuery<'_>,
        columns: &[&'static str],
    ) -> Result<Vec<(String, Vec<Key>)>, StoreError> {
        rows::page_table(model, query)?.check(columns)?;
        Ok(self
            .page(model, query)?
            .into_iter()
            .map(|(id, _, keys)| {
                let values = columns
                    .iter()
                    .map(|c| rows::key_of(&keys, c).clone())
                    .collect();
                (id, values)
            })
            .collect())
    }

    async fn count_by(
        &self,
        model: &str,
        column: &'static str,
    ) -> Result<Vec<(Option<String>, u64)>, StoreError> {
        let all = PageQuery {
            conds: &[],
            sort: None,
            desc: false,
            after: None,
            limit: u32::MAX,
        };
        let mut counts: std::collections::BTreeMap<Option<String>, u64> = Default::default();
        for (_, keys) in self.row_keys(model, &all, &[column]).await? {
            let value = match keys.into_iter().next() {
                Some(Key::Text(t)) => Some(t),
                _ => None,
            };
            *counts.entry(value).or_default() += 1;
        }
        Ok(counts.into_iter().collect())
    }

    async fn take_idempotency_key(
        &self,
        key: &str,
        fingerprint: &str,
        now_ms: i64,
        expired_before_ms: i64,
    ) -> Result<KeyState, StoreError> {
        let mut inner = self.lock();
        inner
            .idempotency
            .retain(|_, (_, taken, _)| *taken >= expired_before_ms);
        match inner.idempotency.get(key) {
            Some((held, since, answer)) => Ok(super::held_key_state(
                fingerprint,
                held,
                *since,
                answer.clone(),
            )),
            None => {
                inner
                    .idempotency
                    .insert(key.to_string(), (fingerprint.to_string(), now_ms, None));
                Ok(KeyState::Taken)
            }
        }
    }

    async fn settle_idempotency_key(
        &self,
        key: &str,
        answer: Option<&Value>,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        match answer {
            Some(a) => {
                if let Some(entry) = inner.idempotency.get_mut(key) {
                    entry.2 = Some(a.clone());
                }
            }
            None => {
                inner.idempotency.remove(key);
            }
        }
        Ok(())
    }

    async fn doc_prefix(
        &self,
        model: &str,
        prefix: &str,
        limit: Option<u32>,
    ) -> Result<Vec<(String, Value)>, StoreError> {
        let inner = self.lock();
        let Some(docs) = inner.models.get(model) else {
            return Ok(vec![]);
        };
        Ok(docs
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .take(limit.map_or(usize::MAX, |l| l as usize))
            .map(|(k, (v, _))| (k.clone(), v.clone()))
            .collect())
    }

    async fn checkpoint(&self, model: &str) -> Result<u64, StoreError> {
        Ok(self.lock().checkpoints.get(model).copied().unwrap_or(0))
    }

    async fn checkpoints(&self, models: &[&str]) -> Result<Vec<u64>, StoreError> {
        let inner = self.lock();
        Ok(models
            .iter()
            .map(|m| inner.checkpoints.get(*m).copied().unwrap_or(0))
            .collect())
    }

    async fn commit_models(&self, commits: &[ModelCommit<'_>]) -> Result<bool, StoreError> {
        distinct_models(commits)?;
        let mut inner = self.lock();
        // Check every compare-and-set before writing anything: all or nothing.
        if commits
            .iter()
            .any(|c| inner.checkpoints.get(c.model).copied().unwrap_or(0) != c.from)
        {
            return Ok(false);
        }
        for c in commits {
            inner.checkpoints.insert(c.model.to_string(), c.to);
            write_changes(&mut inner, c.model, c.changes);
            if !c.failures.is_empty() {
                let failures = inner.failures.entry(c.model.to_string()).or_default();
                for f in c.failures {
                    let f = ApplyFailure {
                        model: c.model.to_string(),
                        ..f.clone()
                    };
                    failures.insert(f.position, f);
                }
            }
        }
        Ok(true)
    }

    async fn drop_model(&self, model: &str) -> Result<(), StoreError> {
        let mut inner = self.lock();
        inner.models.remove(model);
        inner.checkpoints.remove(model);
        inner.failures.remove(model);
        Ok(())
    }

    async fn failures(&self, models: &[&str]) -> Result<Vec<ApplyFailure>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .failures
            .iter()
            .filter(|(m, _)| models.is_empty() || models.contains(&m.as_str()))
            .flat_map(|(_, f)| f.values().cloned())
            .collect())
    }

    async fn record_failure(&self, failure: &ApplyFailure) -> Result<(), StoreError> {
        self.lock()
            .failures
            .entry(failure.model.clone())
            .or_default()
            .insert(failure.position, failure.clone());
        Ok(())
    }

    async fn clear_failures(
        &self,
        model: &str,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if let Some(failures) = inner.failures.get_mut(model) {
            failures.retain(|_, f| {
                f.aggregate_type != aggregate_type || f.aggregate_id != aggregate_id
            });
            if failures.is_empty() {
                inner.failures.remove(model);
            }
        }
        Ok(())
    }

    async fn swap_model(&self, live: &str, scratch: &str) -> Result<bool, StoreError> {
        if live == scratch {
            return Ok(true);
        }
        let mut inner = self.lock();
        let at = |m: &str| inner.checkpoints.get(m).map(|&p| p as i64);
        let at_head = at(scratch) == Some(inner.events.len() as i64);
        let failures = inner.failures.get(scratch).is_some_and(|f| !f.is_empty());
        let Some(p) = super::swap_outcome(at(live), at(scratch), at_head, failures) else {
            return Ok(false);
        };
        let docs = inner.models.remove(scratch).unwrap_or_default();
        inner.models.insert(live.to_string(), docs);
        inner.checkpoints.remove(scratch);
        inner.checkpoints.insert(live.to_string(), p);
        let mut failures = inner.failures.remove(scratch).unwrap_or_default();
        for f in failures.values_mut() {
            f.model = live.to_string();
        }
        inner.failures.remove(live);
        if !failures.is_empty() {
            inner.failures.insert(live.to_string(), failures);
        }
        Ok(true)
    }

    async fn load_recorded(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let inner = self.lock();
        let key = (aggregate_type.to_string(), aggregate_id.to_string());
        Ok(inner
            .streams
            .get(&key)
            .map(|stream| stream.values().map(|&i| inner.events[i].clone()).collect())
            .unwrap_or_default())
    }

    async fn claims_in_scope(
        &self,
        scope: &str,
        owner: Option<&str>,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let inner = self.lock();
        let mut out: Vec<(String, String)> = inner
            .claims
            .iter()
            .filter(|((s, _), o)| s == scope && owner.is_none_or(|w| w == o.as_str()))
            .map(|((_, k), o)| (k.clone(), o.clone()))
            .collect();
        out.sort();
        Ok(out)
    }

    async fn import_events(
        &self,
        events: &[RecordedEvent],
        claims: &[ClaimOp],
    ) -> Result<(), StoreError> {
        let _turn = self.writer.lock().await;
        let mut inner = self.lock();
        super::check_continues(inner.events.len() as u64, events)?;
        // An imported event's id is its position here, as for any append.
        let events: Vec<RecordedEvent> = events
            .iter()
            .map(|e| RecordedEvent {
                event_id: e.position,
                ..e.clone()
            })
            .collect();
        let head = inner.events.len() as u64;
        let unfolded = !events.is_empty();
        write_events(&mut inner, events, claims)?;
        if unfolded {
            hand_back_to_the_feed(&mut inner, head);
        }
        Ok(())
    }
}

/// The `i`-th event of an append after `head`: its position, which is also
/// its id.
fn numbered(head: u64, i: usize) -> (u64, u64) {
    let p = head + 1 + i as u64;
    (p, p)
}

/// Checks an append's events and claims, then writes them (all or nothing).
fn write_events(
    inner: &mut Inner,
    events: Vec<RecordedEvent>,
    claims: &[ClaimOp],
) -> Result<(), StoreError> {
    // Validate everything before touching anything: all-or-nothing.
    let mut taken = std::collections::HashSet::new();
    for e in &events {
        let key = (e.aggregate_type.clone(), e.aggregate_id.clone());
        let exists = inner
            .streams
            .get(&key)
            .is_some_and(|s| s.contains_key(&e.sequence));
        if exists || !taken.insert((key, e.sequence)) {
            return Err(StoreError::Conflict);
        }
    }
    apply_claims(&mut inner.claims, claims)?;

    // Nothing below can fail.
    for e in events {
        let index = inner.events.len();
        inner
            .streams
            .entry((e.aggregate_type.clone(), e.aggregate_id.clone()))
            .or_default()
            .insert(e.sequence, index);
        inner.events.push(e);
    }
    Ok(())
}

/// Makes the inline models fed again from `head`, for events that nothing
/// folded (see `LogStore::append`).
fn hand_back_to_the_feed(inner: &mut Inner, head: u64) {
    for checkpoint in inner.checkpoints.values_mut() {
        if is_inline(*checkpoint) {
            *checkpoint = head;
        }
    }
}

/// Writes one model's document changes.
fn write_changes(inner: &mut Inner, model: &str, changes: &[DocChange]) {
    let docs = inner.models.entry(model.to_string()).or_default();
    for change in changes {
        match change {
            DocChange::Put { id, body, keys } => {
                docs.insert(id.clone(), (body.clone(), keys.clone()));
            }
            DocChange::Delete { id } => {
                docs.remove(id);
            }
        }
    }
    if docs.is_empty() {
        inner.models.remove(model);
    }
}
