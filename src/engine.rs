//! The engine: aggregates on a store, with the guarantees the API promises.
//!
//! - Commands run on cqrs-es's `CqrsFramework` in pure event-sourcing mode.
//! - Commands on one aggregate take turns inside the process (a lock per
//!   aggregate, `crate::locks`), so writers here never race each other.
//! - A command that lost an optimistic-concurrency race (to another process)
//!   is retried (bounded, with jitter): the aggregate re-decides on the fresh
//!   state, so a retry is always safe; when retries run out the caller gets a
//!   conflict (409).
//! - A uniqueness claim held by another node becomes Ironic's 409 message.
//! - Read-your-writes: when `execute` returns, the read models hold the
//!   command's events, so a following read sees them. They are written in the
//!   append's own transaction (inline: see `projections::InlineModels`); a
//!   model that is not inline at that moment (dropped, just rebuilt, not yet
//!   caught up) is applied by the projector's worker, and the command then
//!   waits for it (see `projections::Projector`).

mod moves;

pub use moves::MoveEnd;

use crate::domain::claims::{self, Claim};
use crate::domain::{
    DomainError, Node, NodeCommand, NodeEvent, NodeServices, Volume, VolumeCommand,
};
use crate::locks::KeyedLocks;
use crate::projections::{self, ProjectionError, Projector};
use crate::store::bridge::{claim_conflict, unreadable};
use crate::store::{
    event_store, ClaimFn, ClaimOp, DatabaseUrl, LogStore, Opened, Store, StoreError,
};
use cqrs_es::persist::SerializedEvent;
use cqrs_es::{Aggregate, AggregateError, CqrsFramework};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;
use uuid::Uuid;

/// How many times a command that lost a concurrency race is re-run.
const MAX_ATTEMPTS: u32 = 12;
/// How long `execute` waits for the projections to apply its events.
const READ_YOUR_WRITES_TIMEOUT: Duration = Duration::from_secs(10);

/// Who asked for a command, and why: stored with every event it records.
#[derive(Debug, Clone, Default)]
pub struct Meta {
    /// The authenticated user, or `anonymous` under noauth.
    pub actor: String,
    /// A free-text reason (`--reason`, maintenance reason, …).
    pub reason: Option<String>,
    /// The request id the API answered with, to correlate logs and events.
    pub request_id: Option<String>,
    pub project: Option<String>,
    /// The write's `Idempotency-Key`, when it had one (see
    /// `crate::api::idempotency`).
    pub idempotency_key: Option<String>,
}

impl Meta {
    pub fn actor(actor: &str) -> Self {
        Meta {
            actor: actor.to_string(),
            ..Meta::default()
        }
    }

    /// The event metadata: who, why, when (the moment the command ran) and on
    /// which host.
    fn to_map(&self) -> HashMap<String, String> {
        let mut m = HashMap::new();
        m.insert("actor".into(), self.actor.clone());
        m.insert(
            "occurred_at".into(),
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        );
        m.insert("host".into(), host_name());
        if let Some(r) = &self.reason {
            m.insert("reason".into(), r.clone());
        }
        if let Some(r) = &self.request_id {
            m.insert("request_id".into(), r.clone());
        }
        if let Some(p) = &self.project {
            m.insert("project".into(), p.clone());
        }
        if let Some(k) = &self.idempotency_key {
            m.insert("idempotency_key".into(), k.clone());
        }
        m
    }
}

/// The name of the machine this process runs on (`HOSTNAME`, else
/// `/etc/hostname`): the default of `[DEFAULT] host`.
pub fn machine_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|s| s.trim().to_string())
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "ironledger".to_string())
}

static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Names this process as `serve` was configured to (`[DEFAULT] host`), for
/// the `host` of the events it records (the history's `conductor`, as
/// Ironic's is its `host` option). Set once; later calls change nothing.
pub fn set_host_name(host: &str) {
    let _ = HOST.set(host.to_string());
}

/// The conductor name of this process: `[DEFAULT] host` once `serve` has
/// set it, else the machine's name.
pub fn host_name() -> String {
    HOST.get().cloned().unwrap_or_else(machine_name)
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The domain refused the command (400/404/409 as the variant says).
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// Concurrent writers kept winning the race; the client may retry.
    #[error("{0}")]
    Conflict(String),
    #[error("storage failure: {0}")]
    Store(#[source] StoreError),
    /// A stored secret cannot be opened (see `crate::secrets`).
    #[error("storage failure: {0}")]
    Secrets(#[source] crate::secrets::SecretsError),
    /// cqrs-es failed to load or commit for a reason of its own.
    #[error("storage failure: {0}")]
    Persistence(#[source] AggregateError<DomainError>),
    /// A stored event (or document) cannot be read as what it should be:
    /// no retry can help; see `store::ApplyFailure`.
    #[error("unreadable event: {0}")]
    Unreadable(String),
    #[error("projection failure: {0}")]
    Projection(#[from] ProjectionError),
    /// A record moving to another node is on neither node now (see
    /// [`Engine::move_child`]).
    #[error("{0}")]
    MoveLost(String),
}

impl From<StoreError> for EngineError {
    fn from(e: StoreError) -> Self {
        crate::metrics::metrics().store_error(e.kind());
        match e {
            StoreError::Corrupt(_) => EngineError::Unreadable(e.to_string()),
            e => EngineError::Store(e),
        }
    }
}

/// Computes the claims of stored events for the store (injected, so the store
/// never needs to know the domain).
pub fn claim_fn() -> ClaimFn {
    Arc::new(|event: &SerializedEvent| {
        if event.aggregate_type != Node::TYPE {
            return vec![];
        }
        let Ok(ev) = crate::domain::upcast::node_event(
            &event.event_type,
            &event.event_version,
            &event.payload,
        ) else {
            return vec![];
        };
        let owner = event.aggregate_id.clone();
        claims::node_event_claims(&ev)
            .into_iter()
            .map(|c| match c {
                Claim::Acquire(scope, key) => ClaimOp::Acquire {
                    scope: scope.into(),
                    key,
                    owner: owner.clone(),
                },
                Claim::Release(scope, key) => ClaimOp::Release {
                    scope: scope.into(),
                    key,
                    owner: owner.clone(),
                },
                Claim::ReleaseAll => ClaimOp::ReleaseAll {
                    owner: owner.clone(),
                    scope: None,
                },
                Claim::ReleaseScope(scope) => ClaimOp::ReleaseAll {
                    owner: owner.clone(),
                    scope: Some(scope.into()),
                },
            })
            .collect()
    })
}

pub struct Engine {
    store: Arc<dyn LogStore>,
    nodes: CqrsFramework<Node, Store<Node>>,
    volumes: CqrsFramework<Volume, Store<Volume>>,
    /// The repository both frameworks append through (a handle: it counts
    /// the appends that could not write every read model inline).
    repo: crate::store::Repo,
    projector: Arc<Projector>,
    /// One lock per aggregate (`<type>/<id>`) held while a command on it runs.
    writers: KeyedLocks,
    /// Set when secrets are encrypted at rest (`serve` always sets it).
    keyring: Option<Arc<crate::secrets::Keyring>>,
}

impl Engine {
    /// Opens the store `url` names and builds the engine on it.
    pub async fn open(url: &DatabaseUrl, services: NodeServices) -> Result<Self, EngineError> {
        let opened = crate::store::open(url).await?;
        Ok(Self::on(opened, services))
    }

    /// Builds the engine on an opened store (secrets are stored as given: see
    /// [`Engine::with_keyring`]).
    pub fn on(opened: Opened, services: NodeServices) -> Self {
        Self::build(opened, services, None)
    }

    /// Builds the engine on an opened store, encrypting secrets at rest with
    /// `keyring` (see `crate::secrets`): events are sealed when appended and
    /// opened when the write model loads them.
    pub fn with_keyring(
        opened: Opened,
        services: NodeServices,
        keyring: Arc<crate::secrets::Keyring>,
    ) -> Self {
        Self::build(opened, services, Some(keyring))
    }

    fn build(
        opened: Opened,
        services: NodeServices,
        keyring: Option<Arc<crate::secrets::Keyring>>,
    ) -> Self {
        let mut repo = opened
            .repo(claim_fn())
            .with_fold(Arc::new(projections::InlineModels::all()));
        if let Some(k) = &keyring {
            repo = repo.with_sealing(k.clone());
        }
        // Events stored in older schema versions are upcast when loaded.
        let nodes = CqrsFramework::new(
            event_store::<Node>(repo.clone())
                .with_upcasters(crate::domain::upcast::node_upcasters()),
            vec![],
            services,
        );
        let volumes = CqrsFramework::new(event_store::<Volume>(repo.clone()), vec![], ());
        let projector =
            Arc::new(Projector::new(opened.store.clone(), projections::all()).with_inline());
        // Start following the feed now if we can; otherwise the first command
        // starts the worker (it needs a Tokio runtime).
        if tokio::runtime::Handle::try_current().is_ok() {
            projector.spawn_worker();
        }
        Engine {
            store: opened.store,
            nodes,
            volumes,
            repo,
            projector,
            writers: KeyedLocks::new(),
            keyring,
        }
    }

    /// The keyring secrets are encrypted with, if any.
    pub fn keyring(&self) -> Option<&Arc<crate::secrets::Keyring>> {
        self.keyring.as_ref()
    }

    pub fn store(&self) -> &Arc<dyn LogStore> {
        &self.store
    }

    /// Events this engine appended since it was built.
    pub fn events_appended(&self) -> u64 {
        self.repo.appended()
    }

    pub fn projector(&self) -> &Arc<Projector> {
        &self.projector
    }

    /// Runs a node command; when it returns Ok, reads see its effects.
    pub async fn node(
        &self,
        id: Uuid,
        command: NodeCommand,
        meta: &Meta,
    ) -> Result<(), EngineError> {
        let id = id.to_string();
        let name = command.name();
        let span =
            tracing::info_span!("command", aggregate = Node::TYPE, node = %id, command = name);
        let run = async {
            let meta = meta.to_map();
            let unfolded = self.repo.unfolded();
            {
                let _turn = self.writers.lock(&format!("{}/{id}", Node::TYPE)).await;
                retrying(&id, || {
                    self.nodes
                        .execute_with_metadata(&id, command.clone(), meta.clone())
                })
                .await?;
            }
            // Waiting for the read models needs no turn: the next writer goes on.
            self.wait_projected(Node::TYPE, &id, unfolded).await
        };
        self.measured(Node::TYPE, name, run).instrument(span).await
    }

    /// Runs a command's future, counts it in `/metrics` by its outcome, and
    /// logs it (recorded at info, refused or conflicting at debug, failed as
    /// a warning) in the command's span, so the line names the node and the
    /// request.
    async fn measured(
        &self,
        aggregate: &str,
        name: &'static str,
        run: impl std::future::Future<Output = Result<(), EngineError>>,
    ) -> Result<(), EngineError> {
        let start = std::time::Instant::now();
        let result = run.await;
        let outcome = match &result {
            Ok(()) => "ok",
            Err(EngineError::Conflict(_)) | Err(EngineError::Domain(DomainError::Conflict(_))) => {
                "conflict"
            }
            Err(EngineError::Domain(_)) => "refused",
            Err(_) => "error",
        };
        let took = start.elapsed();
        let ms = crate::telemetry::millis(took);
        match &result {
            Ok(()) => tracing::info!(outcome, ms, "command recorded"),
            Err(e) if outcome == "error" => {
                tracing::warn!(outcome, ms, error = %e, "command failed")
            }
            Err(e) => tracing::debug!(outcome, ms, error = %e, "command not recorded"),
        }
        crate::metrics::metrics().command(aggregate, name, outcome, took);
        result
    }

    /// Runs a volume command; when it returns Ok, reads see its effects.
    pub async fn volume(
        &self,
        volume_id: &str,
        command: VolumeCommand,
        meta: &Meta,
    ) -> Result<(), EngineError> {
        let name = command.name();
        let span = tracing::info_span!(
            "command",
            aggregate = Volume::TYPE,
            volume = volume_id,
            command = name
        );
        let run = async {
            let meta = meta.to_map();
            let unfolded = self.repo.unfolded();
            {
                let _turn = self
                    .writers
                    .lock(&format!("{}/{volume_id}", Volume::TYPE))
                    .await;
                retrying(volume_id, || {
                    self.volumes
                        .execute_with_metadata(volume_id, command.clone(), meta.clone())
                })
                .await?;
            }
            self.wait_projected(Volume::TYPE, volume_id, unfolded).await
        };
        self.measured(Volume::TYPE, name, run)
            .instrument(span)
            .await
    }

    /// The current state of a node, straight from its events (the write model),
    /// with its secrets decrypted (the process manager renders them into the
    /// iPXE script; nothing else should need them).
    pub async fn load_node(&self, id: Uuid) -> Result<Node, EngineError> {
        Ok(self.load_node_traced(id).await?.0)
    }

    /// [`load_node`](Self::load_node), and the request id of the latest
    /// event that carries one: the operator's request the node's current
    /// work follows from (the process manager's own events carry it on).
    pub async fn load_node_traced(&self, id: Uuid) -> Result<(Node, Option<String>), EngineError> {
        let mut events = self.store.load(Node::TYPE, &id.to_string()).await?;
        if let Some(keyring) = &self.keyring {
            let mut payloads: Vec<&mut serde_json::Value> =
                events.iter_mut().map(|e| &mut e.payload).collect();
            keyring
                .open_payloads(&id.to_string(), &mut payloads)
                .await
                .map_err(EngineError::Secrets)?;
        }
        let cause = events.iter().rev().find_map(|e| {
            e.metadata
                .get("request_id")
                .and_then(|r| r.as_str())
                .map(String::from)
        });
        let mut node = Node::default();
        for e in events {
            let ev: NodeEvent =
                crate::domain::upcast::node_event(&e.event_type, &e.event_version, &e.payload)
                    .map_err(|err| {
                        EngineError::Unreadable(format!(
                            "{} #{} of node {id}: {err}",
                            e.event_type, e.sequence
                        ))
                    })?;
            node.apply(ev);
        }
        Ok((node, cause))
    }

    /// Waits until every projection has applied the aggregate's latest event.
    ///
    /// Usually there is nothing to wait for: the append wrote every read model
    /// inline, which the repository's count of appends that could not
    /// (`unfolded`, as it was before the command) shows unchanged. The worker
    /// is kicked all the same: on PostgreSQL it gives the events their
    /// positions, which the process manager follows.
    ///
    /// The projector's worker does the work: we kick it and wait for the rounds
    /// it publishes (no polling, no sleeping), so concurrent commands share
    /// rounds instead of queueing for catch-ups of their own. If the read models
    /// still lag after [`READ_YOUR_WRITES_TIMEOUT`] (a long transaction elsewhere
    /// holds back sequencing), or the projector's round failed (a busy store,
    /// an event it cannot decode), the command has committed all the same: say
    /// so in the log, don't fail it — a 500 would make the client retry a
    /// create that succeeded and get a 409.
    async fn wait_projected(
        &self,
        aggregate_type: &str,
        id: &str,
        unfolded: u64,
    ) -> Result<(), EngineError> {
        if self.repo.unfolded() == unfolded {
            self.projector.spawn_worker();
            self.projector.kick();
            return Ok(());
        }
        // Some model was not inline: a drop or swap this process may not
        // know of yet; the round must look at the checkpoints.
        self.projector.distrust();
        let applied = match self
            .projector
            .wait_for_aggregate(aggregate_type, id, READ_YOUR_WRITES_TIMEOUT)
            .await
        {
            Ok(applied) => applied,
            Err(e) => {
                tracing::error!(aggregate_type, id, error = %e, "the command committed but the read models could not apply it");
                return Ok(());
            }
        };
        if !applied {
            tracing::warn!(
                aggregate_type,
                id,
                "read models lag behind a committed command"
            );
        }
        Ok(())
    }
}

/// Runs `attempt` until it does not lose a concurrency race, at most
/// [`MAX_ATTEMPTS`] times, and maps cqrs-es errors to engine errors.
async fn retrying<F, Fut>(claimant: &str, mut attempt: F) -> Result<(), EngineError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), AggregateError<DomainError>>>,
{
    for n in 1..=MAX_ATTEMPTS {
        match attempt().await {
            Ok(()) => return Ok(()),
            Err(AggregateError::AggregateConflict) => {
                // Jittered, growing pause so racing writers spread out.
                let jitter: u64 = rand::random::<u64>() % (2 * n as u64 + 1);
                tokio::time::sleep(Duration::from_millis(n as u64 + jitter)).await;
            }
            Err(AggregateError::UserError(e)) => return Err(EngineError::Domain(e)),
            Err(e) => {
                if let Some(u) = unreadable(&e) {
                    // Refused at the request: a log nobody can read is worse
                    // than a command that did not happen.
                    return Err(EngineError::Domain(DomainError::Invalid(format!(
                        "The request cannot be recorded: {u}."
                    ))));
                }
                if let Some(c) = claim_conflict(&e) {
                    return Err(EngineError::Domain(DomainError::Conflict(
                        claims::conflict_message(&c.scope, &c.key, claimant),
                    )));
                }
                crate::metrics::metrics().store_error("database");
                return Err(EngineError::Persistence(e));
            }
        }
    }
    Err(EngineError::Conflict(
        "The resource was changed concurrently too many times; please retry.".to_string(),
    ))
}
