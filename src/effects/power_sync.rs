//! The periodic power-state sync of BMC nodes (`redfish` / `ipmitool` power
//! interfaces): Ironic's `_sync_power_states` and `_power_failure_recovery`
//! periodic tasks.
//!
//! Every `[conductor] sync_power_state_interval` one round reads each node's
//! power state from its BMC and compares it with the recorded one; the rules
//! of what that means are the node's (`domain::node::decide_sync`), this
//! module only does the I/O and keeps the counts:
//!
//! | BMC says | recorded | what is done |
//! |---|---|---|
//! | X | none | X recorded (`PowerStateSynced`, from none) |
//! | X | X | nothing; the node's failure count is reset |
//! | Y | X, force off | Y recorded as a change made out of band (`PowerStateSynced`) |
//! | Y | X, force on | the BMC is asked for X (`PowerStateRestored`, or `PowerStateRestoreFailed`) |
//! | unreadable | any | counted |
//!
//! A node that fails more than `power_state_sync_max_retries` rounds in a row
//! (unreadable, or a state that will not stay restored) is put in maintenance
//! with Ironic's reason and the `power failure` fault (`PowerSyncFailed`).
//! The failure counts live in this process's memory, as Ironic's do: a
//! restart starts them from zero.
//!
//! Every `power_failure_recovery_interval`, nodes in maintenance with that
//! fault are read again; one whose BMC answers leaves maintenance
//! (`PowerFailureRecovered`).
//!
//! Skipped, as in Ironic: nodes in maintenance, in a state the sync leaves
//! alone (`Node::power_sync_excluded_state`), with a power change pending,
//! and nodes whose lease another worker holds. The sync takes the same
//! per-node lease as the process manager (`node/<uuid>`), under a holder
//! name of its own, renews it while a restore waits for the BMC, and gives
//! it up after each node: a deploy or power request of the process manager
//! and a sync never drive one BMC at the same time.

use super::bmc::poll::{power_action, PowerWait};
use super::bmc::{access, PowerAction};
use super::now_iso;
use crate::config::PowerSyncConfig;
use crate::domain::state::POWER_ON;
use crate::domain::{DomainError, Node, NodeCommand, NodeServices};
use crate::engine::{Engine, EngineError, Meta};
use crate::projections::nodes::{self, PowerRound};
use futures::StreamExt;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::Instrument;
use uuid::Uuid;

/// How the sync runs.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// `[conductor]`'s sync options (intervals, force, max retries).
    pub sync: PowerSyncConfig,
    /// How long a node's lease lasts without renewal (`[conductor]
    /// lease_seconds`, as the process manager's).
    pub lease_ttl: Duration,
    /// How long a restore may wait for the BMC to reach the recorded state
    /// (`[conductor] power_state_change_timeout`).
    pub power_wait: PowerWait,
    /// Nodes synced at once (Ironic's `sync_power_state_workers`, 8).
    pub workers: usize,
}

impl SyncConfig {
    pub fn new(sync: PowerSyncConfig) -> Self {
        SyncConfig {
            sync,
            lease_ttl: Duration::from_secs(15),
            power_wait: PowerWait::default(),
            workers: 8,
        }
    }
}

/// What one round did, for the round's log line and for tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoundReport {
    /// Nodes whose BMC was read.
    pub checked: usize,
    /// Nodes left alone because another worker held their lease.
    pub locked: usize,
    /// Nodes whose findings were recorded (a state recorded or restored, a
    /// failure, a recovery).
    pub recorded: usize,
}

/// What the sync of one node came to.
enum Outcome {
    /// Not looked at (lease held elsewhere).
    Locked,
    /// Not looked at (its state changed since the round listed it).
    Skipped,
    /// The BMC was read (or tried); `recorded`: something was recorded.
    Checked { recorded: bool },
}

pub struct PowerSync {
    engine: Arc<Engine>,
    config: SyncConfig,
    /// This sync's name in node leases: not the process manager's, so that
    /// one never mistakes the other's lease for its own.
    holder: String,
    /// Failed syncs in a row, per node (Ironic's `power_state_sync_count`).
    failures: Mutex<HashMap<Uuid, u32>>,
}

fn meta(purpose: &str) -> Meta {
    Meta {
        actor: "ironledger-conductor".into(),
        reason: Some(purpose.into()),
        ..Meta::default()
    }
}

/// The two periodic rounds: the sync, and the recovery of nodes it put in
/// maintenance for a power failure.
#[derive(Debug, Clone, Copy)]
enum Round {
    Sync,
    Recovery,
}

impl PowerSync {
    pub fn new(engine: Arc<Engine>, config: SyncConfig) -> Arc<Self> {
        let holder = format!(
            "power-sync:{}:{}:{}",
            crate::engine::host_name(),
            std::process::id(),
            Uuid::new_v4().simple()
        );
        Arc::new(PowerSync {
            engine,
            config,
            holder,
            failures: Mutex::default(),
        })
    }

    /// Failed syncs in a row of a node, as this process counts them.
    pub fn failures(&self, id: Uuid) -> u32 {
        self.failures
            .lock()
            .expect("failure counts")
            .get(&id)
            .copied()
            .unwrap_or(0)
    }

    /// Starts the sync and the power-failure recovery, each every its own
    /// interval (the first round one interval after the start, as Ironic's
    /// periodic tasks). A disabled one (interval 0) is not started.
    pub fn spawn(self: &Arc<Self>) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = Vec::new();
        if let Some(every) = self.config.sync.interval {
            let sync = self.clone();
            tasks.push(tokio::spawn(async move {
                let mut round = 0u64;
                loop {
                    tokio::time::sleep(every).await;
                    round += 1;
                    let started = Instant::now();
                    match sync.sync_round().await {
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "power state sync round failed"),
                    }
                    let took = started.elapsed();
                    if took > every * 3 {
                        tracing::warn!(
                            round,
                            took_s = took.as_secs(),
                            "the power state sync took more than 3x [conductor] sync_power_state_interval"
                        );
                    }
                }
            }));
        }
        if let Some(every) = self.config.sync.recovery_interval {
            let sync = self.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    if let Err(e) = sync.recovery_round().await {
                        tracing::warn!(error = %e, "power failure recovery round failed");
                    }
                }
            }));
        }
        tasks
    }

    /// The nodes `round` looks at, most-failing first (Ironic syncs the nodes
    /// that do not answer first, to fail them fast), read page by page from
    /// the read model's `power_sync` index. The read model is only the list:
    /// each node is read again from its events under its lease before
    /// anything is done.
    async fn candidates(&self, round: PowerRound) -> Result<Vec<Uuid>, EngineError> {
        let mut ids: Vec<Uuid> = nodes::power_rounds(self.engine.store().as_ref(), round)
            .await?
            .iter()
            .filter_map(|id| Uuid::parse_str(id).ok())
            .collect();
        let mut failures = self.failures.lock().expect("failure counts");
        if round == PowerRound::Sync {
            // Nodes the sync no longer looks at (deleted, in maintenance)
            // lose their counts (Ironic keeps them; nothing needs them).
            let looked_at: std::collections::HashSet<&Uuid> = ids.iter().collect();
            failures.retain(|id, _| looked_at.contains(id));
        }
        ids.sort_by_key(|id| std::cmp::Reverse(failures.get(id).copied().unwrap_or(0)));
        Ok(ids)
    }

    /// One round of the sync over every node it looks at.
    pub async fn sync_round(&self) -> Result<RoundReport, EngineError> {
        self.round(Round::Sync).await
    }

    /// One round of the power-failure recovery.
    pub async fn recovery_round(&self) -> Result<RoundReport, EngineError> {
        self.round(Round::Recovery).await
    }

    /// The nodes `kind` looks at, each worked under its lease, in one span.
    async fn round(&self, kind: Round) -> Result<RoundReport, EngineError> {
        let (span, nodes_of, done) = match kind {
            Round::Sync => (
                tracing::info_span!("power_state_sync"),
                PowerRound::Sync,
                "power state sync round done",
            ),
            Round::Recovery => (
                tracing::info_span!("power_failure_recovery"),
                PowerRound::Recovery,
                "power failure recovery round done",
            ),
        };
        async {
            let ids = self.candidates(nodes_of).await?;
            let report = self
                .each(ids, |id| async move {
                    self.leased(id, |node| async move {
                        match kind {
                            Round::Sync => self.sync_node(id, node).await,
                            Round::Recovery => self.recover_node(id, node).await,
                        }
                    })
                    .await
                })
                .await;
            tracing::info!(
                checked = report.checked,
                locked = report.locked,
                recorded = report.recorded,
                "{done}"
            );
            Ok(report)
        }
        .instrument(span)
        .await
    }

    /// Runs `work` over `ids`, `workers` at a time, and sums the outcomes.
    async fn each<'a, F, Fut>(&'a self, ids: Vec<Uuid>, work: F) -> RoundReport
    where
        F: Fn(Uuid) -> Fut + 'a,
        Fut: Future<Output = Outcome> + 'a,
    {
        let report = Mutex::new(RoundReport::default());
        futures::stream::iter(ids)
            .for_each_concurrent(self.config.workers.max(1), |id| {
                let fut = work(id);
                let report = &report;
                async move {
                    let outcome = fut.await;
                    let mut r = report.lock().expect("report");
                    match outcome {
                        Outcome::Locked => r.locked += 1,
                        Outcome::Skipped => {}
                        Outcome::Checked { recorded } => {
                            r.checked += 1;
                            r.recorded += usize::from(recorded);
                        }
                    }
                }
            })
            .await;
        report.into_inner().expect("report")
    }

    /// Takes the node's lease (or leaves the node alone if another worker
    /// has it), reads the node from its events and runs `work` on it while
    /// renewing the lease; gives the lease up after.
    async fn leased<F, Fut>(&self, id: Uuid, work: F) -> Outcome
    where
        F: FnOnce(Node) -> Fut,
        Fut: Future<Output = Outcome>,
    {
        let lease = format!("node/{id}");
        let store = self.engine.store().clone();
        let ttl = self.config.lease_ttl;
        match store.try_lease(&lease, &self.holder, ttl).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::debug!(node = %id, "node is held by another worker; skipped");
                return Outcome::Locked;
            }
            Err(e) => {
                tracing::warn!(node = %id, error = %e, "cannot take the node's lease");
                return Outcome::Locked;
            }
        }
        let renew = {
            let (store, lease, holder) = (store.clone(), lease.clone(), self.holder.clone());
            async move {
                loop {
                    tokio::time::sleep(ttl / 3).await;
                    if !matches!(store.try_lease(&lease, &holder, ttl).await, Ok(true)) {
                        return;
                    }
                }
            }
        };
        let outcome = async {
            match self.engine.load_node(id).await {
                Ok(node) => work(node).await,
                Err(e) => {
                    tracing::warn!(node = %id, error = %e, "cannot load the node");
                    Outcome::Skipped
                }
            }
        };
        // Given up however this ends, a cancelled round (shutdown) included.
        let held = Held {
            store: store.clone(),
            lease,
            holder: self.holder.clone(),
            armed: true,
        };
        let outcome = tokio::select! {
            o = outcome => o,
            () = renew => {
                tracing::error!(node = %id, "lost the node's lease while syncing its power state; stopped");
                Outcome::Skipped
            }
        };
        held.release().await;
        outcome
    }

    /// Records one finding of `node` (as read under its lease); `false` when
    /// it records nothing (the node changed meanwhile) or could not be
    /// recorded (logged).
    async fn record(&self, id: Uuid, node: &Node, cmd: NodeCommand, purpose: &str) -> bool {
        // The decision is pure: what it would record on the node as read
        // under the lease is what the engine records.
        let records = node
            .decide(cmd.clone(), &NodeServices::default())
            .is_ok_and(|events| !events.is_empty());
        match self.engine.node(id, cmd, &meta(purpose)).await {
            Ok(()) => records,
            Err(EngineError::Domain(DomainError::NotFound(_))) => false,
            Err(e) => {
                tracing::warn!(node = %id, error = %e, "could not record the power state sync's finding");
                false
            }
        }
    }

    fn set_failures(&self, id: Uuid, count: u32) {
        let mut failures = self.failures.lock().expect("failure counts");
        if count == 0 {
            failures.remove(&id);
        } else {
            failures.insert(id, count);
        }
    }

    /// Ironic's `do_sync_power_state` for one node, under its lease.
    async fn sync_node(&self, id: Uuid, node: Node) -> Outcome {
        if !node.power_syncable() {
            return Outcome::Skipped;
        }
        let max = self.config.sync.max_retries;
        let count = self.failures(id) + 1;
        const PURPOSE: &str = "power state sync";
        let bmc = match access::for_node(&node) {
            Ok(Some(bmc)) => Ok(bmc),
            // A node that never had a power state and whose driver_info
            // does not validate is not synced (Ironic's check).
            Ok(None) => return Outcome::Skipped,
            Err(_) if node.power_state.is_none() => {
                self.set_failures(id, 0);
                return Outcome::Skipped;
            }
            Err(e) => Err(e),
        };
        let read = match bmc {
            Ok(bmc) => bmc
                .power_state()
                .await
                .map(|s| (bmc, s))
                .map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        let seen_at = now_iso();
        let (bmc, found) = match read {
            Ok(read) => read,
            Err(error) => {
                self.set_failures(id, count);
                if count > max {
                    tracing::error!(node = %id, attempts = count, error, "power state sync: the BMC did not answer; node put in maintenance");
                    let recorded = self
                        .record(
                            id,
                            &node,
                            NodeCommand::FailPowerSync {
                                power_state: None,
                                error: Some(error),
                                at: seen_at,
                            },
                            PURPOSE,
                        )
                        .await;
                    return Outcome::Checked { recorded };
                }
                tracing::warn!(node = %id, attempt = count, retries = max, error, "power state sync: could not get the power state");
                return Outcome::Checked { recorded: false };
            }
        };
        let found_s = found.as_str().to_string();
        let recorded_state = node.power_state.clone();
        match recorded_state.as_deref() {
            Some(r) if r == found_s => {
                self.set_failures(id, 0);
                return Outcome::Checked { recorded: false };
            }
            None => {
                tracing::info!(node = %id, power_state = %found, "power state sync: no previous known state; recording the BMC's");
                self.set_failures(id, 0);
                let recorded = self
                    .record(
                        id,
                        &node,
                        NodeCommand::SyncPowerState {
                            power_state: found_s,
                            at: seen_at,
                        },
                        PURPOSE,
                    )
                    .await;
                return Outcome::Checked { recorded };
            }
            Some(_) => {}
        }
        let wanted = recorded_state.unwrap_or_default();
        self.set_failures(id, count);
        if count > max {
            tracing::error!(node = %id, attempts = count, power_state = %found, expected = wanted, "power state sync: max retries exceeded; node put in maintenance");
            let recorded = self
                .record(
                    id,
                    &node,
                    NodeCommand::FailPowerSync {
                        power_state: Some(found_s),
                        error: None,
                        at: seen_at,
                    },
                    PURPOSE,
                )
                .await;
            return Outcome::Checked { recorded };
        }
        let cmd = if self.config.sync.force && node.power_sync_may_force() {
            tracing::warn!(node = %id, actual = %found, expected = wanted, attempt = count, "power state sync: the node is not in its recorded state; changing it back");
            let action = if wanted == POWER_ON {
                PowerAction::PowerOn
            } else {
                PowerAction::PowerOff
            };
            match power_action(bmc.as_ref(), action, self.config.power_wait).await {
                Ok(_) => NodeCommand::RecordPowerRestored {
                    found: found_s,
                    seen_at,
                    at: now_iso(),
                },
                Err(e) => {
                    tracing::error!(node = %id, state = wanted, attempt = count, retries = max, error = %e, "power state sync: failed to change the power state back");
                    NodeCommand::RecordPowerRestoreFailed {
                        found: found_s,
                        seen_at,
                        error: e.to_string(),
                    }
                }
            }
        } else {
            tracing::warn!(node = %id, actual = %found, expected = wanted, "power state sync: the node's power was changed out of band; recording it");
            NodeCommand::SyncPowerState {
                power_state: found_s,
                at: seen_at,
            }
        };
        let recorded = self.record(id, &node, cmd, PURPOSE).await;
        Outcome::Checked { recorded }
    }

    /// Ironic's power-failure recovery for one node, under its lease.
    async fn recover_node(&self, id: Uuid, node: Node) -> Outcome {
        if !node.power_failure_recoverable() {
            return Outcome::Skipped;
        }
        // driver_info is validated again: it may have been fixed meanwhile.
        let read = match access::for_node(&node) {
            Ok(Some(bmc)) => bmc.power_state().await.map_err(|e| e.to_string()),
            Ok(None) => return Outcome::Skipped,
            Err(e) => Err(e),
        };
        match read {
            Ok(state) => {
                tracing::info!(node = %id, power_state = %state, "node recovered from power failure");
                self.set_failures(id, 0);
                let recorded = self
                    .record(
                        id,
                        &node,
                        NodeCommand::RecoverPowerFailure {
                            power_state: state.as_str().to_string(),
                            at: now_iso(),
                        },
                        "power failure recovery",
                    )
                    .await;
                Outcome::Checked { recorded }
            }
            Err(error) => {
                tracing::debug!(node = %id, error, "power failure recovery: the BMC still does not answer");
                Outcome::Checked { recorded: false }
            }
        }
    }
}

/// A node lease the sync holds: released when dropped (from a task of its
/// own, as releasing is a store call), so that no way out of a node's sync
/// keeps the node from the process manager until the lease expires.
struct Held {
    store: Arc<dyn crate::store::LogStore>,
    lease: String,
    holder: String,
    /// Not released yet.
    armed: bool,
}

impl Held {
    async fn release(mut self) {
        self.armed = false;
        let _ = self.store.release_lease(&self.lease, &self.holder).await;
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let (store, lease, holder) = (
            self.store.clone(),
            std::mem::take(&mut self.lease),
            std::mem::take(&mut self.holder),
        );
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = store.release_lease(&lease, &holder).await {
                    tracing::warn!(lease, error = %e, "could not give the node's lease up");
                }
            });
        }
    }
}
