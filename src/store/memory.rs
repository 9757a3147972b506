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
//! The semantics (conflicts, claims, compare-and-set checkpoints, ordering of
//! `doc_list`) are the same as the SQL backends', and the shared test suite in
//! `tests/store_suite.rs` holds all three to it.

use super::{
    distinct_models, rows, ApplyFailure, ClaimConflict, ClaimOp, DocChange, Keys, LogStore,
    ModelCommit, PageQuery, RecordedEvent, StoreError,
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
    ) -> Result<Vec<(String, Value, i64)>, StoreError> {
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
            .map(|(k, (v, keys))| (k.clone(), v.clone(), rows::cursor_of(keys, query.sort).1))
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
        let mut inner = self.lock();

        // Validate everything before touching anything: all-or-nothing.
        let mut taken = std::collections::HashSet::new();
        for e in events {
            let key = (e.aggregate_type.clone(), e.aggregate_id.clone());
            let seq = e.sequence as u64;
            let exists = inner
                .streams
                .get(&key)
                .is_some_and(|s| s.contains_key(&seq));
            if exists || !taken.insert((key, seq)) {
                return Err(StoreError::Conflict);
            }
        }
        apply_claims(&mut inner.claims, claims)?;

        // Nothing below can fail.
        let now = Utc::now();
        for e in events {
            let index = inner.events.len();
            inner.events.push(RecordedEvent {
                position: index as u64 + 1,
                aggregate_type: e.aggregate_type.clone(),
                aggregate_id: e.aggregate_id.clone(),
                sequence: e.sequence as u64,
                event_type: e.event_type.clone(),
                event_version: e.event_version.clone(),
                payload: e.payload.clone(),
                metadata: e.metadata.clone(),
                recorded_at: now,
            });
            inner
                .streams
                .entry((e.aggregate_type.clone(), e.aggregate_id.clone()))
                .or_default()
                .insert(e.sequence as u64, index);
        }
        Ok(())
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

    async fn row_ids(
        &self,
        model: &str,
        query: &PageQuery<'_>,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(self
            .page(model, query)?
            .into_iter()
            .map(|(id, _, ord)| (id, ord))
            .collect())
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
            let docs = inner.models.entry(c.model.to_string()).or_default();
            for change in c.changes {
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
                inner.models.remove(c.model);
            }
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
        if !super::swap_allowed(at(live), at(scratch)) {
            return Ok(false);
        }
        let docs = inner.models.remove(scratch).unwrap_or_default();
        inner.models.insert(live.to_string(), docs);
        let p = inner.checkpoints.remove(scratch).expect("checked");
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
        let mut inner = self.lock();
        super::check_continues(inner.events.len() as u64, events)?;
        let mut taken = std::collections::HashSet::new();
        for e in events {
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
        for e in events {
            let index = inner.events.len();
            inner.events.push(e.clone());
            inner
                .streams
                .entry((e.aggregate_type.clone(), e.aggregate_id.clone()))
                .or_default()
                .insert(e.sequence, index);
        }
        Ok(())
    }
}
