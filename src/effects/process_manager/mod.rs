//! The process manager: drives deploy and undeploy of boot-from-volume nodes
//! from the event log.
//!
//! It is *level-triggered*: it does not remember what it was doing, it looks at
//! each node's state in the log and does what that state still needs:
//!
//! | node | what is done, step by step (each recorded as an event) |
//! |---|---|
//! | `deploying` | validate storage → power off (through the BMC for `redfish`/`ipmi` nodes, once per deploy) → attach volumes in Cinder (`VolumesAttached`) → write the iPXE script (`BootConfigWritten`) → BMC nodes: network boot, persistently (`BootDeviceSet`) → power on (BMC nodes: until the BMC reports on) → `Deployed` |
//! | `deleting` | power off (BMC nodes: until the BMC reports off) → remove the iPXE script (`BootConfigRemoved`) → detach volumes (`VolumesDetached`) → purge targets (`TargetsPurged`) → `Undeployed` → `available` |
//! | any other state but `active`, with volumes or a script left over (a failed deploy) | detach and remove them (compensation; a BMC node is powered off first), retried until Cinder answers |
//! | a power request pending (`redfish`/`ipmi` node; any provision state) | read the BMC → reset unless already there → poll until the target or the timeout → `PowerChangeDone` / `PowerChangeFailed` |
//!
//! Every step is idempotent: Cinder is asked whether the volume is already
//! attached to the node, the script is rewritten only if its content differs,
//! and the node ignores a report it already has. So a crash at any point is
//! recovered by doing the node's state again: nothing is lost (the log says
//! where the node is) and nothing shows twice.
//!
//! It learns about nodes from the ordered feed (its own checkpoint,
//! `process_manager`), and sweeps all nodes every few seconds so a node whose
//! worker died is picked up again. With several ironledger processes on one
//! database, a node is worked by the holder of its lease only; a lease expires
//! when its holder stops renewing it (crash), and another process takes over.

mod bmc_steps;

use super::bmc::poll::{power_action, PowerWait};
use super::bmc::PowerAction;
use super::cinder::{CinderClient, CinderConfig, CinderError};
use super::crash_point;
use super::http_root::HttpRoot;
use super::ipxe;
use super::ipxe_syntax;
use super::storage::{attach_volumes, detach_volumes, DetachMode};
use crate::domain::interface_validation as validation;
use crate::domain::node::events::VolumeAttachment;
use crate::domain::state::{ProvisionState, POWER_OFF, POWER_ON};
use crate::domain::{Node, NodeCommand, VolumeCommand};
use crate::engine::{Engine, EngineError, Meta};
use crate::projections::nodes;
use crate::store::{ApplyFailure, DocChange, RecordedEvent};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tracing::Instrument;
use uuid::Uuid;

/// The longest pause between two rounds that fail in a row.
const ROUND_ERROR_PAUSE_MAX: Duration = Duration::from_secs(5);

/// The process manager's checkpoint in the feed.
pub const CHECKPOINT: &str = "process_manager";

/// The document of the process manager's model saying that deleted nodes
/// from before it kept track of them have been looked for.
const SEEDED: &str = "~seeded";

#[derive(Debug, Clone)]
pub struct PmConfig {
    /// `[cinder]`; `None` when no endpoint is configured (cinder nodes then fail
    /// to deploy with a clear message).
    pub cinder: Option<CinderConfig>,
    /// `[deploy] http_root`.
    pub http_root: PathBuf,
    /// `[deploy] san_boot_retries`: how the node scripts retry a SAN boot.
    pub san_retries: ipxe::SanRetries,
    /// How long a node's lease lasts without renewal.
    pub lease_ttl: Duration,
    /// How often the feed is polled when nothing kicks the manager.
    pub poll: Duration,
    /// How often every node is swept (recovery of nodes whose worker died).
    pub sweep: Duration,
    /// Attempts of a step that fails transiently (Cinder unreachable, 5xx).
    pub step_attempts: u32,
    /// First pause between attempts (doubles each time).
    pub step_backoff: Duration,
    /// How long a BMC power change may take when the request names no
    /// `timeout`, and how often the power state is read meanwhile
    /// (Ironic's `[conductor] power_state_change_timeout`, 60 s).
    pub power_wait: PowerWait,
}

impl PmConfig {
    pub fn new(http_root: PathBuf, cinder: Option<CinderConfig>) -> Self {
        PmConfig {
            cinder,
            http_root,
            san_retries: ipxe::DEFAULT_SAN_RETRIES,
            lease_ttl: Duration::from_secs(15),
            poll: Duration::from_millis(200),
            sweep: Duration::from_secs(5),
            step_attempts: 3,
            step_backoff: Duration::from_millis(500),
            power_wait: PowerWait::default(),
        }
    }
}

/// Why a step did not succeed.
#[derive(Debug)]
enum StepError {
    /// The node cannot be deployed / undeployed: fail it with this message.
    Fatal(String),
    /// Something else changed the node meanwhile (or the store failed): try the
    /// node again on a later round.
    Retry(String),
}

impl From<EngineError> for StepError {
    fn from(e: EngineError) -> Self {
        StepError::Retry(e.to_string())
    }
}

pub struct ProcessManager {
    engine: Arc<Engine>,
    cinder: Option<CinderClient>,
    root: HttpRoot,
    config: PmConfig,
    /// This process's name in leases.
    holder: String,
    kick: Notify,
    /// Nodes a task of this process is working on.
    busy: std::sync::Mutex<std::collections::HashSet<Uuid>>,
    /// Nodes whose last try could not finish (Cinder away or refusing): when
    /// the sweep may try again, and how many tries failed in a row.
    backoff: std::sync::Mutex<std::collections::HashMap<Uuid, (Instant, u32)>>,
    /// Nodes with a recorded failure of this manager (an event it cannot
    /// read), so that the record is cleared once the node reads again;
    /// `None` until read from the store.
    unreadable: tokio::sync::Mutex<Option<std::collections::HashSet<Uuid>>>,
}

tokio::task_local! {
    /// The id of the request that set the node being worked on in motion
    /// (its deploy, undeploy or power request), so that the events this
    /// work records carry it too (see [`Engine::load_node_traced`]).
    static CAUSE: Option<String>;
}

/// The metadata of the process manager's commands: the conductor as actor,
/// and the request id of the operator's request the work follows from.
fn meta() -> Meta {
    let mut meta = Meta::actor("ironledger-conductor");
    meta.request_id = CAUSE.try_with(Clone::clone).ok().flatten();
    meta
}

impl ProcessManager {
    pub fn new(engine: Arc<Engine>, config: PmConfig) -> Result<Arc<Self>, CinderError> {
        let cinder = config.cinder.clone().map(CinderClient::new).transpose()?;
        let root = HttpRoot::new(config.http_root.clone());
        if let Err(e) = root.prepare() {
            tracing::error!(root = %config.http_root.display(), error = %e, "cannot prepare the HTTP boot root");
        }
        let holder = format!(
            "{}:{}:{}",
            crate::engine::host_name(),
            std::process::id(),
            Uuid::new_v4().simple()
        );
        Ok(Arc::new(ProcessManager {
            engine,
            cinder,
            root,
            config,
            holder,
            kick: Notify::new(),
            busy: Default::default(),
            backoff: Default::default(),
            unreadable: Default::default(),
        }))
    }

    pub fn http_root(&self) -> &HttpRoot {
        &self.root
    }

    /// Wakes the manager (a command just requested a deploy or undeploy).
    pub fn kick(&self) {
        self.kick.notify_one();
    }

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
    fn report(&self, now: Instant) {
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
    async fn unreadable_node(&self, id: Uuid, why: &str) {
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
    async fn readable_again(&self, id: Uuid) {
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
    async fn deleted_with_leftovers(&self, events: &[RecordedEvent]) -> Vec<DocChange> {
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
    async fn deleted_with_leftovers_until(
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

    async fn work_leased(&self, id: Uuid) -> Result<(), EngineError> {
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

    async fn work_node(&self, id: Uuid, node: Node) -> Result<(), EngineError> {
        let outcome = match node.state() {
            _ if !node.exists => self.clean_leftovers(id, &node).await,
            _ if node.power_request.is_some() => {
                self.power(id, &node).await;
                Ok(())
            }
            ProvisionState::Active if node.links_stale() => self.relink(id, &node).await,
            ProvisionState::Deploying => self.deploy(id, &node).await,
            ProvisionState::Adopting => self.adopt(id, &node).await,
            ProvisionState::Deleting => self.undeploy(id, &node).await,
            _ if node.leftovers_to_undo() => self.clean_leftovers(id, &node).await,
            _ => Ok(()),
        };
        match outcome {
            Ok(()) => {
                self.backoff.lock().expect("backoff").remove(&id);
                Ok(())
            }
            Err(StepError::Retry(why)) => {
                let wait = self.back_off(id);
                tracing::warn!(node = %id, why, retry_in_s = wait.as_secs(), "node will be retried");
                Ok(())
            }
            Err(StepError::Fatal(why)) => self.fail(id, &why).await,
        }
    }

    /// Notes one more failed try of a node and returns how long the sweep
    /// leaves it alone: the sweep interval, doubling with each failure, at
    /// most ten minutes. (News about the node in the feed — an operator's
    /// command — still has it worked at once.)
    fn back_off(&self, id: Uuid) -> Duration {
        let mut backoff = self.backoff.lock().expect("backoff");
        let failures = backoff.get(&id).map_or(0, |(_, n)| *n) + 1;
        let wait = backoff_wait(self.config.sweep, failures);
        backoff.insert(id, (Instant::now() + wait, failures));
        wait
    }

    /// Fails the node's deploy or undeploy with `why`, after undoing what a
    /// failed deploy left behind.
    async fn fail(&self, id: Uuid, why: &str) -> Result<(), EngineError> {
        let node = self.engine.load_node(id).await?;
        tracing::warn!(node = %id, state = %node.state(), error = why, "step failed");
        let kind = match node.state() {
            ProvisionState::Deploying => "deploy",
            ProvisionState::Deleting => "undeploy",
            ProvisionState::Adopting => "adopt",
            _ => "other",
        };
        crate::metrics::metrics().pm_failure(kind);
        match node.state() {
            ProvisionState::Deploying => {
                if node.has_leftovers() {
                    self.bmc_power_off_for_cleanup(id, &node).await;
                }
                let node = self.engine.load_node(id).await?;
                if let Err(e) = self.clean_leftovers(id, &node).await {
                    // Left for the sweep: it retries until Cinder answers.
                    tracing::warn!(node = %id, error = ?e, "compensation incomplete; will retry");
                }
                self.command(
                    id,
                    NodeCommand::FailDeploy {
                        error: why.to_string(),
                    },
                )
                .await
            }
            ProvisionState::Deleting => {
                self.command(
                    id,
                    NodeCommand::FailUndeploy {
                        error: why.to_string(),
                    },
                )
                .await
            }
            ProvisionState::Adopting => {
                if let Err(e) = self.root.remove_node(&id.to_string()) {
                    tracing::warn!(node = %id, error = %e, "could not remove a partial boot configuration");
                }
                self.command(
                    id,
                    NodeCommand::FailAdopt {
                        error: why.to_string(),
                    },
                )
                .await
            }
            _ => Ok(()),
        }
    }

    async fn command(&self, id: Uuid, cmd: NodeCommand) -> Result<(), EngineError> {
        self.engine.node(id, cmd, &meta()).await
    }

    /// Runs `f` up to `step_attempts` times while it fails transiently.
    async fn retrying<T, F, Fut>(&self, what: &str, mut f: F) -> Result<T, StepError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, CinderError>>,
    {
        // One span per step, so that its lines (and its retries) say which.
        let span = tracing::info_span!("step", step = what);
        async {
            let mut pause = self.config.step_backoff;
            for attempt in 1..=self.config.step_attempts.max(1) {
                match f().await {
                    Ok(v) => {
                        tracing::info!(attempt, "step done");
                        return Ok(v);
                    }
                    Err(e) if e.transient && attempt < self.config.step_attempts => {
                        crate::metrics::metrics().pm_retry();
                        tracing::warn!(what, attempt, error = %e, "transient failure; retrying");
                        tokio::time::sleep(pause).await;
                        pause *= 2;
                    }
                    Err(e) => {
                        return Err(StepError::Fatal(format!("{what} failed: {}", e.message)))
                    }
                }
            }
            unreachable!("the loop returns")
        }
        .instrument(span)
        .await
    }

    fn cinder(&self) -> Result<&CinderClient, StepError> {
        self.cinder.as_ref().ok_or_else(|| {
            StepError::Fatal(
                "The cinder storage interface needs a Block Storage endpoint: set [cinder] endpoint_override.".into(),
            )
        })
    }

    async fn set_power(&self, id: Uuid, node: &Node, target: &str) -> Result<(), StepError> {
        if node.power_state.as_deref() != Some(target) {
            self.command(
                id,
                NodeCommand::SetPowerState {
                    target: target.to_string(),
                    at: Some(super::now_iso()),
                },
            )
            .await?;
        }
        Ok(())
    }

    /// Carries out the node's pending power request through its BMC and
    /// records the outcome (`FinishPower` / `FailPower`). Resumed from the
    /// log after a crash: the request is still pending, so it is done again
    /// from the start (reading the BMC first, so a change that had completed
    /// is not repeated — except a reboot, which reboots once more).
    async fn power(&self, id: Uuid, node: &Node) {
        let Some(req) = node.power_request.clone() else {
            return;
        };
        let outcome = self.drive_power(id, node, &req).await;
        let cmd = match outcome {
            Ok(state) => NodeCommand::FinishPower {
                power_state: state.as_str().to_string(),
                at: super::now_iso(),
            },
            Err((error, last_seen)) => {
                tracing::warn!(node = %id, action = %req.action, error, "power change failed");
                NodeCommand::FailPower {
                    error,
                    power_state: last_seen,
                }
            }
        };
        crash_point("power:before-record");
        if let Err(e) = self.command(id, cmd).await {
            // The request stays pending; the sweep does it again.
            tracing::warn!(node = %id, error = %e, "could not record the power change");
            self.back_off(id);
        } else {
            tracing::info!(node = %id, action = %req.action, "power change recorded");
        }
    }

    /// The BMC calls of a power request. On failure: `last_error` (Ironic's
    /// "Failed to change power state to '…' by '…'. Error: …", the error
    /// naming the BMC action that failed;
    /// the clients' errors never carry a password) and the power state the
    /// BMC last reported, if it could be read.
    async fn drive_power(
        &self,
        id: Uuid,
        node: &Node,
        req: &crate::domain::node::PowerRequest,
    ) -> Result<super::bmc::PowerState, (String, Option<String>)> {
        let fail = |why: String| {
            format!(
                "Failed to change power state to '{}' by '{}'. Error: {why}",
                req.target, req.action
            )
        };
        let action = PowerAction::parse(&req.action)
            .ok_or_else(|| (fail("unknown power action".into()), None))?;
        let bmc = match Self::bmc_of(node) {
            Ok(Some(bmc)) => bmc,
            Ok(None) => {
                return Err((
                    fail("the node's power interface drives no BMC".into()),
                    None,
                ))
            }
            Err(StepError::Fatal(e) | StepError::Retry(e)) => return Err((fail(e), None)),
        };
        let mut wait = self.config.power_wait;
        if let Some(t) = req.timeout {
            wait.timeout = Duration::from_secs(t);
        }
        let result = self
            .bmc_retrying(id, || {
                crash_point("power:before-bmc");
                power_action(bmc.as_ref(), action, wait)
            })
            .await;
        let err = match result {
            Ok(state) => return Ok(state),
            Err(e) => e,
        };
        let seen = bmc.power_state().await.ok().map(|s| s.as_str().to_string());
        Err((fail(err.to_string()), seen))
    }

    async fn deploy(&self, id: Uuid, node: &Node) -> Result<(), StepError> {
        let node_id = id.to_string();
        // Refused at the request since the rule exists; a deploy accepted
        // before it (an older log) still fails here, before touching anything.
        if let Some(reason) = validation::deploy_refusal(node) {
            return Err(StepError::Fatal(reason));
        }
        if let Some((_, note)) = node.note_boot_volume() {
            self.command(id, note).await?;
        }
        let bmc = Self::bmc_of(node)?;
        match &bmc {
            // Once per deploy: a deploy resumed after the node was powered
            // on at its end must not power it off again.
            Some(bmc) if !node.deploy_powered_off => {
                self.bmc_power(id, bmc.as_ref(), PowerAction::PowerOff)
                    .await?
            }
            Some(_) => {}
            None => self.set_power(id, node, POWER_OFF).await?,
        }
        crash_point("deploy:before-attach");

        if node.interface("storage") == "cinder" {
            let cinder = self.cinder()?;
            // The intent first: if anything below fails or this process dies,
            // the node knows which volumes may be attached and detaches them.
            let volume_ids = node.targets.iter().map(|t| t.volume_id.clone()).collect();
            self.command(
                id,
                NodeCommand::RecordAttachIntent {
                    volume_ids,
                    owner: node.instance_uuid.clone(),
                },
            )
            .await?;
            crash_point("deploy:after-intent");
            let attached = self
                .retrying("Attaching volumes", || {
                    attach_volumes(
                        cinder,
                        &node_id,
                        node.instance_uuid.as_deref(),
                        &node.targets,
                        &node.connectors,
                    )
                })
                .await?;
            crash_point("deploy:after-attach");
            for a in &attached {
                // The log says who holds each volume; a volume Cinder let two
                // nodes use without multi-attach would be refused here.
                if let Err(e) = self
                    .engine
                    .volume(
                        &a.volume_id,
                        VolumeCommand::Attach {
                            volume_id: a.volume_id.clone(),
                            node: node_id.clone(),
                            multiattach: a.multiattach,
                        },
                        &meta(),
                    )
                    .await
                {
                    return Err(StepError::Fatal(format!(
                        "Volume {} cannot be attached: {e}",
                        a.volume_id
                    )));
                }
            }
            let attachments: Vec<VolumeAttachment> = attached
                .into_iter()
                .filter_map(|a| {
                    let target = node.targets.iter().find(|t| t.volume_id == a.volume_id)?;
                    Some(VolumeAttachment {
                        volume_id: a.volume_id,
                        target: target.uuid,
                        driver_volume_type: a.driver_volume_type,
                        properties: a
                            .data
                            .and_then(|d| d.as_object().cloned())
                            .unwrap_or_default(),
                        multiattach: a.multiattach,
                    })
                })
                .collect();
            self.command(id, NodeCommand::RecordAttachments { attachments })
                .await?;
            crash_point("deploy:after-record-attach");
        }

        // Render from the node as it is now (targets carry Cinder's data).
        let node = self.engine.load_node(id).await?;
        self.write_boot_config(id, &node).await?;
        crash_point("deploy:after-record-write");

        match &bmc {
            Some(bmc) => {
                // The node was powered off above: powering it on boots it
                // (Ironic's reboot of an off node is the same power on).
                self.bmc_network_boot(id, &node, bmc.as_ref()).await?;
                self.bmc_power(id, bmc.as_ref(), PowerAction::PowerOn)
                    .await?;
            }
            None => self.set_power(id, &node, POWER_ON).await?,
        }
        self.command(id, NodeCommand::FinishDeploy).await?;
        tracing::info!(node = %id, "deployed");
        Ok(())
    }

    /// Renders, checks and writes the node's iPXE script and MAC links, and
    /// records it (`BootConfigWritten`).
    async fn write_boot_config(&self, id: Uuid, node: &Node) -> Result<(), StepError> {
        let node_id = id.to_string();
        let plan = ipxe::plan(&node.targets, &node.connectors)
            .map_err(|e| StepError::Fatal(e.to_string()))?;
        let script = ipxe::render_config_with(&node_id, &plan, self.config.san_retries);
        ipxe_syntax::check(&script)
            .map_err(|e| StepError::Fatal(format!("Generated iPXE script is invalid: {e}")))?;
        let macs = node.pxe_macs();
        self.root
            .write_node(&node_id, &script, &macs)
            .map_err(|e| StepError::Fatal(format!("Writing the boot configuration failed: {e}")))?;
        crash_point("deploy:after-write");
        self.command(
            id,
            NodeCommand::RecordBootConfig {
                digest: digest(&ipxe::render_config_with(
                    &node_id,
                    &plan.without_secrets(),
                    self.config.san_retries,
                )),
                macs,
            },
        )
        .await?;
        Ok(())
    }

    /// Takes over a running node (`adopt`): nothing is attached or powered —
    /// the machine already runs from its volume — but a boot-from-volume node
    /// gets its iPXE script, so that its next network boot finds it (Ironic's
    /// `prepare_instance` does the same). A node without a boot volume target
    /// is simply taken over.
    async fn adopt(&self, id: Uuid, node: &Node) -> Result<(), StepError> {
        if node.targets.iter().any(|t| t.boot_index == 0) {
            if let Some((_, note)) = node.note_boot_volume() {
                self.command(id, note).await?;
            }
            self.write_boot_config(id, node).await?;
        }
        self.command(id, NodeCommand::FinishAdopt).await?;
        tracing::info!(node = %id, "adopted");
        Ok(())
    }

    async fn undeploy(&self, id: Uuid, node: &Node) -> Result<(), StepError> {
        let node_id = id.to_string();
        // The machine stops before its boot configuration and volumes go.
        match Self::bmc_of(node)? {
            Some(bmc) => {
                self.bmc_power(id, bmc.as_ref(), PowerAction::PowerOff)
                    .await?
            }
            None => self.set_power(id, node, POWER_OFF).await?,
        }
        self.root.remove_node(&node_id).map_err(|e| {
            StepError::Fatal(format!("Removing the boot configuration failed: {e}"))
        })?;
        crash_point("undeploy:after-remove");
        self.command(id, NodeCommand::RecordBootConfigRemoved)
            .await?;

        if node.interface("storage") == "cinder" && !node.targets.is_empty() {
            let cinder = self.cinder()?;
            // Detach retries come from [cinder] action_retries inside detach_volumes.
            let volume_ids = volumes_of(node);
            detach_volumes(
                cinder,
                &node_id,
                attachment_owner(node),
                &volume_ids,
                &node.connectors,
                DetachMode::Undeploy,
            )
            .instrument(tracing::info_span!("step", step = "Detaching volumes"))
            .await
            .map_err(|e| StepError::Fatal(format!("Detaching volumes failed: {}", e.message)))?;
            crash_point("undeploy:after-detach");
            self.release_volumes(id, volumes_of(node)).await?;
        }
        crash_point("undeploy:before-purge");
        self.command(id, NodeCommand::PurgeTargets).await?;
        self.command(id, NodeCommand::FinishUndeploy).await?;
        tracing::info!(node = %id, "undeployed");
        Ok(())
    }

    /// Makes the MAC links of a deployed node follow its PXE-enabled ports.
    async fn relink(&self, id: Uuid, node: &Node) -> Result<(), StepError> {
        let Some(boot) = &node.boot_config else {
            return Ok(());
        };
        let macs = node.pxe_macs();
        self.root
            .link_node(&id.to_string(), &macs)
            .map_err(|e| StepError::Retry(format!("relinking MACs: {e}")))?;
        self.command(
            id,
            NodeCommand::RecordBootConfig {
                digest: boot.digest.clone(),
                macs,
            },
        )
        .await?;
        tracing::info!(node = %id, "MAC links follow the node's ports");
        Ok(())
    }

    /// Records that these volumes of the node are detached (node and volume
    /// aggregates).
    async fn release_volumes(&self, id: Uuid, ids: Vec<String>) -> Result<(), StepError> {
        if ids.is_empty() {
            return Ok(());
        }
        for v in &ids {
            self.engine
                .volume(
                    v,
                    VolumeCommand::Detach {
                        node: id.to_string(),
                    },
                    &meta(),
                )
                .await?;
        }
        self.command(id, NodeCommand::RecordDetachments { volume_ids: ids })
            .await?;
        Ok(())
    }

    /// Undoes what a failed deploy left: the script and the attached volumes.
    async fn clean_leftovers(&self, id: Uuid, node: &Node) -> Result<(), StepError> {
        let node_id = id.to_string();
        if node.boot_config.is_some() || self.root.has_node(&node_id) {
            self.root
                .remove_node(&node_id)
                .map_err(|e| StepError::Retry(e.to_string()))?;
            self.command(id, NodeCommand::RecordBootConfigRemoved)
                .await?;
        }
        if !node.attached_volumes.is_empty() {
            let cinder = self
                .cinder
                .as_ref()
                .ok_or_else(|| StepError::Retry("no Cinder configured".into()))?;
            // The intent may name volumes whose targets changed since: detach
            // by volume id.
            let volume_ids: Vec<String> = node.attached_volumes.iter().cloned().collect();
            let detached = detach_volumes(
                cinder,
                &node_id,
                attachment_owner(node),
                &volume_ids,
                &node.connectors,
                DetachMode::Compensation,
            )
            .await
            .map_err(|e| StepError::Retry(e.message))?;
            let refused = volume_ids.len() - detached.len();
            self.release_volumes(id, detached).await?;
            if refused > 0 {
                // Kept in the intent: the sweep asks Cinder again.
                return Err(StepError::Retry(format!(
                    "Cinder refused to detach {refused} volume(s) of the node"
                )));
            }
        }
        Ok(())
    }
}

/// The instance Cinder knows the node's attachments by: the one recorded when
/// they were made, else the current one (the node UUID is always tried too).
fn attachment_owner(node: &Node) -> Option<&str> {
    node.attachment_owner
        .as_deref()
        .or(node.instance_uuid.as_deref())
}

/// Every volume the node may hold in Cinder: its targets' volumes and those
/// named by an attach intent, once each.
fn volumes_of(node: &Node) -> Vec<String> {
    node.targets
        .iter()
        .map(|t| t.volume_id.clone())
        .chain(node.attached_volumes.iter().cloned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// How long the sweep leaves a node alone after `failures` failed tries in a
/// row: one sweep interval, doubling, at most ten minutes.
fn backoff_wait(sweep: Duration, failures: u32) -> Duration {
    let factor = 2u32.saturating_pow(failures.saturating_sub(1)).min(1 << 16);
    (sweep * factor).min(Duration::from_secs(600))
}

/// A short, stable digest of a script (FNV-1a, 64 bits): enough to tell two
/// versions apart in the log. It is taken of the script with its passwords
/// masked, so the log holds nothing to test a guessed password against.
fn digest(script: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in script.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
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
