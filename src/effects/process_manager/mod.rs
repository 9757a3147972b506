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
//! | a port, connector or target moving off the node for longer than a request takes (its process stopped) | add it to the node it moves to → `ChildMoveEnded` (or put it back) — `Engine::finish_move` |
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
//!
//! | file | what |
//! |---|---|
//! | this one | the manager, its configuration, the dispatch of a node's work by its state, the step helpers (retries, failing a node) |
//! | `scheduler` | when nodes are worked: the feed, the sweep, leases, back-off |
//! | `deploy` | deploy, adoption, rewriting a deployed node's MAC links |
//! | `undeploy` | undeploy, and undoing what a failed deploy or a deleted node left |
//! | `power` | power requests of BMC nodes |
//! | `bmc_steps` | the BMC steps of deploy and undeploy |
//! | `moves` | moves of records to another node that their process did not end |

mod bmc_steps;
mod deploy;
mod moves;
mod power;
mod scheduler;
mod undeploy;

use super::bmc::poll::{power_action, PowerWait};
use super::bmc::PowerAction;
use super::cinder::{CinderClient, CinderConfig, CinderError};
use super::crash_point;
use super::http_root::HttpRoot;
use super::ipxe;
use super::ipxe_syntax;
use super::storage::{attach_volumes, detach_volumes, DetachMode};
use crate::domain::interface_validation;
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
#[derive(Debug, thiserror::Error)]
enum StepError {
    /// The node cannot be deployed / undeployed: fail it with this message.
    #[error("{0}")]
    Fatal(String),
    /// Something outside is not ready (Cinder away, a BMC slow): try the
    /// node again on a later round.
    #[error("{0}")]
    Retry(String),
    /// The engine failed or something else changed the node meanwhile: try
    /// again on a later round; the engine's error is kept as the cause.
    #[error(transparent)]
    Engine(#[from] EngineError),
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
    /// Moves of child records off a node, and when this process first saw
    /// each: one is finished here only once it has stood for
    /// [`MOVE_GRACE`], so a move whose request is still running it is left
    /// to that request.
    moves_seen: std::sync::Mutex<std::collections::HashMap<Uuid, Instant>>,
}

/// How long a move of a child record may stand before the process manager
/// takes it for abandoned (its process stopped) and finishes it. A request
/// finishes its own move within milliseconds.
const MOVE_GRACE: Duration = Duration::from_secs(5);

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
            moves_seen: Default::default(),
        }))
    }

    pub fn http_root(&self) -> &HttpRoot {
        &self.root
    }

    /// Wakes the manager (a command just requested a deploy or undeploy).
    pub fn kick(&self) {
        self.kick.notify_one();
    }

    async fn work_node(&self, id: Uuid, node: Node) -> Result<(), EngineError> {
        let outcome = match node.state() {
            _ if !node.moves_out.is_empty() => self.finish_moves(id, &node).await,
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
            Err(e @ (StepError::Retry(_) | StepError::Engine(_))) => {
                let why = e.to_string();
                let wait = self.back_off(id);
                tracing::warn!(node = %id, why, retry_in_s = wait.as_secs(), "node will be retried");
                Ok(())
            }
            Err(StepError::Fatal(why)) => self.fail(id, &why).await,
        }
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
