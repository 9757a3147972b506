//! When nodes are worked: following the feed, sweeping every node that
//! `needs_work`, one task per node under its lease, and backing off a node
//! whose last try failed.

use super::*;

impl ProcessManager {
    /// Runs forever: follow the feed, sweep now and then.
    pub fn spawn(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let pm = self.clone();
        tokio::spawn(async move {
            let mut last_sweep: Option<Instant> = None;
            // Rounds failing in a row (the store away): each waits twice as
            // long as the last, up to ROUND_ERROR_PAUSE_MAX, so an outage is
            // a few log lines, not five a second.
            let mut failing = 0u32;
            loop {
                let sweep = last_sweep.is_none_or(|t| t.elapsed() >= pm.config.sweep);
                if sweep {
                    last_sweep = Some(Instant::now());
                }
                let pause = match pm.round(sweep).await {
                    Ok(_) => {
                        failing = 0;
                        pm.config.poll
                    }
                    Err(e) => {
                        failing = failing.saturating_add(1);
                        let pause = pm
                            .config
                            .poll
                            .saturating_mul(1 << failing.min(6))
                            .min(ROUND_ERROR_PAUSE_MAX);
                        tracing::warn!(error = %e, failing, retry_in_ms = pause.as_millis() as u64, "process manager round failed");
                        pause
                    }
                };
                let _ = tokio::time::timeout(pause, pm.kick.notified()).await;
            }
        })
    }

    /// One round: the nodes the feed mentions since the checkpoint (and every
    /// node when sweeping) are handed to workers if they need it. Returns the
    /// number of nodes handed out.
    ///
    /// Each node is worked in a task of its own and the round does not wait
    /// for it: a node waiting on Cinder must not hold up the others, nor the
    /// next rounds. A node already being worked by this process is skipped.
    pub async fn round(self: &Arc<Self>, sweep: bool) -> Result<usize, EngineError> {
        let store = self.engine.store().clone();
        let from = store.checkpoint(CHECKPOINT).await?;
        let events = store.read_feed(from, 1000).await?;
        let fresh: BTreeSet<String> = events
            .iter()
            .filter(|e| e.aggregate_type == "Node")
            .map(|e| e.aggregate_id.clone())
            .collect();
        let mut candidates = fresh.clone();
        // Deleted nodes are gone from `nodes`; those whose leftovers are not
        // undone yet are kept in this manager's own model, for the sweep.
        let mut orphans = self.deleted_with_leftovers(&events).await;
        if sweep {
            candidates.extend(nodes::needing_work(store.as_ref()).await?);
            if store.doc_get(CHECKPOINT, SEEDED).await?.is_none() {
                // Once per database: deleted nodes whose deletion this
                // manager's checkpoint had passed before it kept such records
                // (an upgrade) are found by reading the whole log.
                orphans.extend(self.deleted_with_leftovers_until(from).await?);
                orphans.push(DocChange::put(SEEDED, serde_json::json!({})));
            }
            for (id, _) in store.doc_list(CHECKPOINT).await? {
                if id == SEEDED {
                    continue;
                }
                let done = match Uuid::parse_str(&id) {
                    Ok(uuid) => match self.engine.load_node(uuid).await {
                        Ok(node) => !node.has_leftovers(),
                        Err(err) => {
                            tracing::warn!(node = %uuid, error = %err, "cannot load a deleted node");
                            false
                        }
                    },
                    Err(_) => true,
                };
                if done {
                    orphans.push(DocChange::Delete { id });
                } else {
                    candidates.insert(id);
                }
            }
        }
        // One change per document (the last one said).
        let mut seen = std::collections::HashSet::new();
        orphans.reverse();
        orphans.retain(|c| {
            seen.insert(match c {
                DocChange::Put { id, .. } | DocChange::Delete { id } => id.clone(),
            })
        });
        let to = events.last().map(|e| e.position).unwrap_or(from);
        if to != from || !orphans.is_empty() {
            // Moving the checkpoint is safe even for nodes another process holds
            // or a worker of ours is still on: the sweep finds them again.
            store.commit_model(CHECKPOINT, from, to, &orphans).await?;
        }
        let mut handed = 0;
        let now = Instant::now();
        self.report(now);
        for (id, uuid) in candidates
            .iter()
            .filter_map(|id| Some((id, Uuid::parse_str(id).ok()?)))
        {
            let resting = self
                .backoff
                .lock()
                .expect("backoff")
                .get(&uuid)
                .is_some_and(|(next, _)| *next > now);
            if resting && !fresh.contains(id) {
                continue;
            }
            if !self.busy.lock().expect("busy set").insert(uuid) {
                continue;
            }
            handed += 1;
            let pm = self.clone();
            tokio::spawn(async move {
                // Frees the node for later rounds however the task ends (a
                // panic included).
                struct Done(Arc<ProcessManager>, Uuid);
                impl Drop for Done {
                    fn drop(&mut self) {
                        if let Ok(mut busy) = self.0.busy.lock() {
                            busy.remove(&self.1);
                        }
                    }
                }
                let _done = Done(pm.clone(), uuid);
                // One node's trouble (an undecodable event, a store hiccup)
                // stays with that node.
                match pm.work(uuid).await {
                    Ok(_) => pm.readable_again(uuid).await,
                    Err(EngineError::Unreadable(why)) => pm.unreadable_node(uuid, &why).await,
                    Err(e) => tracing::warn!(node = %uuid, error = %e, "working the node failed"),
                }
            });
        }
        Ok(handed)
    }

    /// Tells `/metrics` the nodes in work and backing off now.
    pub(super) fn report(&self, now: Instant) {
        let in_work = self.busy.lock().map_or(0, |b| b.len());
        let (resting, longest) = self.backoff.lock().map_or((0, Duration::ZERO), |b| {
            b.values()
                .filter(|(next, _)| *next > now)
                .fold((0, Duration::ZERO), |(n, longest), (next, _)| {
                    (n + 1, longest.max(*next - now))
                })
        });
        crate::metrics::metrics().process_manager(in_work, resting, longest);
    }

    /// A node whose events cannot be read (see `store::ApplyFailure`): no
    /// retry can help until ironledger or the log is fixed. The node is left
    /// alone like a failing one (the sweep backs off; an operator's command on
    /// it still has it looked at at once), and the failure is recorded, with
    /// the position of the first event that does not read, for `/health` and
    /// `ironledger failures`.
    pub(super) async fn unreadable_node(&self, id: Uuid, why: &str) {
        let wait = self.back_off(id);
        tracing::error!(node = %id, error = why, retry_in_s = wait.as_secs(), "cannot read the node's events; recorded, node left alone");
        let store = self.engine.store();
        let events = store
            .load_recorded("Node", &id.to_string())
            .await
            .unwrap_or_default();
        let culprit = events
            .iter()
            .find(|e| {
                crate::domain::upcast::node_event(&e.event_type, &e.event_version, &e.payload)
                    .is_err()
            })
            .or(events.last());
        let failure = ApplyFailure {
            model: CHECKPOINT.into(),
            position: culprit.map_or(1, |e| e.position),
            aggregate_type: "Node".into(),
            aggregate_id: id.to_string(),
            event_type: culprit.map_or_else(String::new, |e| e.event_type.clone()),
            error: why.to_string(),
            failed_at: chrono::Utc::now(),
        };
        let mut known = self.unreadable.lock().await;
        match store.record_failure(&failure).await {
            Ok(()) => {
                if let Some(known) = known.as_mut() {
                    known.insert(id);
                }
            }
            Err(e) => tracing::warn!(node = %id, error = %e, "could not record the failure"),
        }
    }

    /// A node that reads again (after an upgrade, or a repaired log) loses
    /// the failures this manager recorded for it.
    pub(super) async fn readable_again(&self, id: Uuid) {
        let store = self.engine.store();
        let mut known = self.unreadable.lock().await;
        if known.is_none() {
            match store.failures(&[CHECKPOINT]).await {
                Ok(failures) => {
                    *known = Some(
                        failures
                            .iter()
                            .filter_map(|f| Uuid::parse_str(&f.aggregate_id).ok())
                            .collect(),
                    )
                }
                Err(_) => return, // asked again next time
            }
        }
        let Some(set) = known.as_mut() else { return };
        if set.contains(&id)
            && store
                .clear_failures(CHECKPOINT, "Node", &id.to_string())
                .await
                .is_ok()
        {
            set.remove(&id);
            tracing::info!(node = %id, "the node's events read again; its failure record is cleared");
        }
    }

    /// Records (for this manager's model) of the nodes `events` delete that
    /// still have leftovers. A node that cannot be loaded (a store hiccup, an
    /// event it cannot read) must not stop the round for every other node:
    /// it is logged, kept, and tried again by the sweep.
    pub(super) async fn deleted_with_leftovers(&self, events: &[RecordedEvent]) -> Vec<DocChange> {
        let mut found = Vec::new();
        for e in events.iter().filter(|e| e.event_type == "NodeDeleted") {
            let Ok(uuid) = Uuid::parse_str(&e.aggregate_id) else {
                continue;
            };
            let keep = match self.engine.load_node(uuid).await {
                Ok(node) => node.has_leftovers(),
                Err(err) => {
                    tracing::warn!(node = %uuid, error = %err, "cannot load a deleted node");
                    true
                }
            };
            if keep {
                found.push(DocChange::put(&e.aggregate_id, serde_json::json!({})));
            }
        }
        found
    }

    /// [`Self::deleted_with_leftovers`] over the whole log up to `until`.
    pub(super) async fn deleted_with_leftovers_until(
        &self,
        until: u64,
    ) -> Result<Vec<DocChange>, EngineError> {
        let store = self.engine.store().clone();
        let mut found = Vec::new();
        let mut after = 0;
        while after < until {
            let mut page = store.read_feed(after, 1000).await?;
            let Some(last) = page.last().map(|e| e.position) else {
                break;
            };
            page.retain(|e| e.position <= until);
            found.extend(self.deleted_with_leftovers(&page).await);
            after = last;
        }
        Ok(found)
    }

    /// Works one node if it needs it and its lease is free. Returns whether it
    /// did anything.
    pub async fn work(&self, id: Uuid) -> Result<bool, EngineError> {
        let node = self.engine.load_node(id).await?;
        if !node.needs_work() {
            return Ok(false);
        }
        let lease = format!("node/{id}");
        let store = self.engine.store().clone();
        if !store
            .try_lease(&lease, &self.holder, self.config.lease_ttl)
            .await?
        {
            return Ok(false);
        }
        // Renew the lease while working, so a long Cinder call does not let
        // another process take the node over. If it cannot be renewed (the
        // database is away, this process stalled), another process may hold
        // the node by now: stop at once, as a crash would — every step is
        // idempotent and the holder carries on from the log.
        let (store2, lease2, holder, ttl) = (
            store.clone(),
            lease.clone(),
            self.holder.clone(),
            self.config.lease_ttl,
        );
        let lost = async move {
            loop {
                tokio::time::sleep(ttl / 3).await;
                if !matches!(store2.try_lease(&lease2, &holder, ttl).await, Ok(true)) {
                    return;
                }
            }
        };
        let result = tokio::select! {
            r = self.work_leased(id) => r,
            () = lost => {
                tracing::error!(node = %id, "lost the node's lease while working; stopped");
                Ok(())
            }
        };
        let _ = store.release_lease(&lease, &self.holder).await;
        result.map(|_| true)
    }

    pub(super) async fn work_leased(&self, id: Uuid) -> Result<(), EngineError> {
        // Re-read under the lease: another process may have finished the node.
        let (node, cause) = self.engine.load_node_traced(id).await?;
        // Every line logged while working the node names it and the request
        // that asked for the work.
        let span = tracing::info_span!(
            "work",
            node = %id,
            state = node.state().as_str(),
            request_id = tracing::field::Empty
        );
        if let Some(c) = &cause {
            span.record("request_id", c.as_str());
        }
        CAUSE
            .scope(cause, self.work_node(id, node).instrument(span))
            .await
    }

    /// Notes one more failed try of a node and returns how long the sweep
    /// leaves it alone: the sweep interval, doubling with each failure, at
    /// most ten minutes. (News about the node in the feed — an operator's
    /// command — still has it worked at once.)
    pub(super) fn back_off(&self, id: Uuid) -> Duration {
        let mut backoff = self.backoff.lock().expect("backoff");
        let failures = backoff.get(&id).map_or(0, |(_, n)| *n) + 1;
        let wait = backoff_wait(self.config.sweep, failures);
        backoff.insert(id, (Instant::now() + wait, failures));
        wait
    }
}

/// How long the sweep leaves a node alone after `failures` failed tries in a
/// row: one sweep interval, doubling, at most ten minutes.
pub(super) fn backoff_wait(sweep: Duration, failures: u32) -> Duration {
    let factor = 2u32.saturating_pow(failures.saturating_sub(1)).min(1 << 16);
    (sweep * factor).min(Duration::from_secs(600))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_node_is_tried_less_and_less_often() {
        let sweep = Duration::from_secs(5);
        let waits: Vec<u64> = (1..=10).map(|n| backoff_wait(sweep, n).as_secs()).collect();
        assert_eq!(waits, [5, 10, 20, 40, 80, 160, 320, 600, 600, 600]);
        assert_eq!(backoff_wait(sweep, u32::MAX), Duration::from_secs(600));
    }
}
