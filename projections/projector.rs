//! Feeds projections from the global feed, exactly once per event.
//!
//! # One batch, every model, one transaction
//!
//! Each round applies the feed with the loop every applier shares
//! ([`super::catch_up::advance`]): a batch is read **once**, from the lowest
//! checkpoint of all projections, applied to every projection whose checkpoint
//! is below each event, and committed for all of them in one transaction
//! ([`LogStore::commit_models`]), only if every checkpoint is still where the
//! batch started. So each event is applied to each model exactly once, even
//! with several ironledger processes on one database: a process that loses the
//! race writes nothing, re-reads the checkpoints and tries again.
//!
//! # One worker per process
//!
//! Commands do not run catch-ups themselves (which made them queue on one lock
//! and sleep while older transactions held back sequencing). A single worker
//! task per projector ([`Projector::spawn_worker`]) does the work:
//!
//! - a command, once committed, **kicks** the worker ([`Projector::kick`]) and
//!   gets a ticket; the worker starts a round (sequence, then apply up to the
//!   head) and, when it ends, publishes that it has served every ticket handed
//!   out before the round started, plus the low-water mark it left behind
//!   ([`Progress`], on a [`watch`] channel for observers), and wakes exactly the
//!   waiters whose tickets it served. Kicks that arrive during a round collapse
//!   into the next one, so under load one round (one commit) serves many commands;
//! - while committed events are still held back by an older transaction (see
//!   [`crate::store::postgres`]), the worker keeps looking on its own, briefly
//!   pausing between looks unless kicked; otherwise it waits for a kick or for
//!   the poll interval, which picks up events other processes wrote.
//!
//! Waiters ([`Projector::wait_for_aggregate`]) never sleep on a timer: they wait
//! for the round that serves them. Usually that round says that everything
//! committed before it started is applied, and the waiter is done without a
//! single query of its own.
//!
//! The worker holds only a weak reference to its projector: when the last engine
//! using it is dropped, the worker stops.

use super::catch_up::{self, Cursor, Reach, Target};
use super::Projection;
use crate::store::is_inline;
use crate::store::{ApplyFailure, LogStore, StoreError, INLINE};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::{oneshot, watch, Mutex, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How often the worker looks for events other processes wrote when nobody
/// kicks it.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// The longest pause between two looks while committed events are held back by
/// an older transaction (in-process transactions kick the worker when they
/// commit, so this only bounds the delay caused by other processes).
const HELD_BACK_MAX_PAUSE: Duration = Duration::from_millis(20);

/// How long the worker rests after a failed round before it polls again (a kick
/// still wakes it at once).
const ERROR_PAUSE: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot decode the event at position {position}: {message}")]
    Decode { position: u64, message: String },
    #[error("unknown projection '{0}'")]
    Unknown(String),
    /// Two rebuilds of one model ran at once and the other swapped first.
    #[error("another rebuild of '{0}' finished first; this one changed nothing")]
    RebuiltElsewhere(String),
    /// The worker's round that should have applied a command's events failed
    /// (the worker logged the cause and keeps going).
    #[error("projection worker failed: {0}")]
    Worker(String),
}

impl ProjectionError {
    /// Whether the error lies in the event (or the model's document it meets)
    /// rather than in reaching the store: trying again cannot help, so the
    /// projector records it and goes on without the event (see
    /// [`ApplyFailure`]). Anything else is retried.
    pub fn is_poison(&self) -> bool {
        matches!(
            self,
            ProjectionError::Decode { .. } | ProjectionError::Store(StoreError::Corrupt(_))
        )
    }
}

/// What the worker has done so far, as published on its [`watch`] channel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// Rounds finished (by the worker or by an explicit catch-up).
    pub rounds: u64,
    /// Every ticket up to this one has been served: a round that started after
    /// the ticket was handed out has finished.
    pub served: u64,
    /// A lower bound of the lowest checkpoint of all projections, as of the last
    /// round (the database stays authoritative: see [`Projector::low_water_mark`]).
    pub low_water_mark: u64,
    /// Whether committed events were still held back by an older transaction.
    pub waiting: bool,
    /// Whether the worker round that set `served` left every event committed
    /// before it started sequenced and applied: nothing was held back and it
    /// did not fail. A waiter whose ticket it served is done without asking
    /// the store anything.
    pub complete: bool,
    /// Why the last round failed, if it did.
    pub error: Option<String>,
}

/// The result of one round.
struct Round {
    /// Events newly sequenced or applied: the round made progress.
    progressed: bool,
    /// Committed events are still held back by an older transaction.
    waiting: bool,
}

/// Drives a set of projections over one store.
pub struct Projector {
    store: Arc<dyn LogStore>,
    projections: Vec<Arc<dyn Projection>>,
    batch: u32,
    /// Whether models that reach the head of the log are made inline (see
    /// [`Projector::with_inline`]).
    inline: bool,
    /// Set by [`Projector::distrust`]: the next round re-reads the checkpoints.
    distrusted: std::sync::atomic::AtomicBool,
    /// One catch-up at a time in this process (other processes are kept honest
    /// by the compare-and-set). Guards where the live projections stand, as far
    /// as this process knows.
    running: Mutex<Cursor>,
    signals: Arc<Signals>,
    /// The worker task, once started. Kept so that a worker whose runtime went
    /// away (an engine that outlives the runtime it was built in) is replaced
    /// instead of leaving every command waiting for it.
    worker: std::sync::Mutex<Option<JoinHandle<()>>>,
}

/// What the worker and the waiters share; outlives the projector while the
/// worker runs.
struct Signals {
    /// Tickets handed out so far.
    requested: AtomicU64,
    /// Wakes the worker. `notify_one` keeps a permit when the worker is busy, so
    /// a kick during a round is never lost.
    kick: Notify,
    progress: watch::Sender<Progress>,
    /// Waiters to wake when their ticket is served (ticket 0: at the next
    /// publication). A `watch` wakes every receiver on every round; when rounds
    /// are short and many commands wait, most of those wake-ups find nothing
    /// and crowd out the worker, so waiters are woken one by one instead.
    waiters: std::sync::Mutex<Vec<(u64, oneshot::Sender<Progress>)>>,
}

impl Signals {
    fn waiters(&self) -> std::sync::MutexGuard<'_, Vec<(u64, oneshot::Sender<Progress>)>> {
        self.waiters.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Projector {
    pub fn new(store: Arc<dyn LogStore>, projections: Vec<Arc<dyn Projection>>) -> Self {
        Projector {
            store,
            projections,
            batch: 500,
            inline: false,
            distrusted: std::sync::atomic::AtomicBool::new(false),
            running: Mutex::new(Cursor::default()),
            signals: Arc::new(Signals {
                requested: AtomicU64::new(0),
                kick: Notify::new(),
                progress: watch::Sender::new(Progress::default()),
                waiters: std::sync::Mutex::new(Vec::new()),
            }),
            worker: std::sync::Mutex::new(None),
        }
    }

    /// This projector, making every model that stands at the head of the log
    /// **inline** ([`LogStore::go_inline`]): from then on the appends write it
    /// (the engine's repository folds [`super::InlineModels`]) and this
    /// projector leaves it alone, until a drop or a swap hands it back to the
    /// feed. Only for a projector whose store is written by folding appends:
    /// a model made inline misses the events of plain ones.
    pub fn with_inline(mut self) -> Self {
        self.inline = true;
        self
    }

    pub fn store(&self) -> &Arc<dyn LogStore> {
        &self.store
    }

    /// Makes the next round read the checkpoints from the store instead of
    /// trusting what this process last saw. The engine calls it when an
    /// append found a model that was not inline: a drop or a swap made
    /// elsewhere that no compare-and-set of ours would reveal (a round that
    /// believes every model inline reads nothing).
    pub fn distrust(&self) {
        self.distrusted.store(true, Ordering::SeqCst);
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.projections.iter().map(|p| p.name()).collect()
    }

    fn find(&self, name: &str) -> Result<Arc<dyn Projection>, ProjectionError> {
        self.projections
            .iter()
            .find(|p| p.name() == name)
            .cloned()
            .ok_or_else(|| ProjectionError::Unknown(name.to_string()))
    }

    fn live_targets(&self) -> Vec<Target<'_>> {
        self.projections
            .iter()
            .map(|p| (p.as_ref(), p.name()))
            .collect()
    }

    /// Numbers newly committed events, then brings every projection up to the
    /// head of the feed. Returns the number of feed events applied (each counted
    /// once, however many projections it went to). Reads the checkpoints from
    /// the database rather than trusting what this process last saw.
    pub async fn catch_up(&self) -> Result<u64, ProjectionError> {
        let mut cursor = self.running.lock().await;
        cursor.checkpoints = None;
        let sequenced = self.store.sequence_report().await?;
        let mut result = self.advance(&self.live_targets(), &mut cursor, None).await;
        if result.is_ok() && !sequenced.waiting {
            if let Err(e) = self.settle_inline(&mut cursor).await {
                result = Err(e);
            }
        }
        let low = cursor.low();
        self.publish(|p| {
            p.rounds += 1;
            p.waiting = sequenced.waiting;
            if let Some(low) = low {
                p.low_water_mark = low;
            }
        });
        result
    }

    /// The lowest checkpoint of all projections, read from the database.
    pub async fn low_water_mark(&self) -> Result<u64, ProjectionError> {
        let names = self.names();
        let checkpoints = self.store.checkpoints(&names).await?;
        Ok(checkpoints.into_iter().min().unwrap_or(0))
    }

    /// Every projection's checkpoint, read from the database in one query.
    pub async fn checkpoints(&self) -> Result<BTreeMap<&'static str, u64>, ProjectionError> {
        let names = self.names();
        let checkpoints = self.store.checkpoints(&names).await?;
        Ok(names.into_iter().zip(checkpoints).collect())
    }

    /// The worker's published progress.
    pub fn progress(&self) -> watch::Receiver<Progress> {
        self.signals.progress.subscribe()
    }

    /// Asks the worker for a round and returns a ticket: once
    /// `Progress::served >= ticket`, a round that started after this call has
    /// finished. Call it after committing, so that the round sees the commit.
    pub fn kick(&self) -> u64 {
        // SeqCst pairs with the worker's load at the start of a round: a round
        // that sees this ticket runs after the commit that preceded the kick.
        let ticket = self.signals.requested.fetch_add(1, Ordering::SeqCst) + 1;
        self.signals.kick.notify_one();
        ticket
    }

    /// Publishes progress, then wakes the waiters it serves. (A waiter registers
    /// before it looks at the published value, so it cannot miss this.)
    fn publish(&self, update: impl FnOnce(&mut Progress)) {
        self.signals.progress.send_modify(update);
        let now = self.signals.progress.borrow().clone();
        let mut waiters = self.signals.waiters();
        let mut i = 0;
        while i < waiters.len() {
            if waiters[i].0 <= now.served {
                let (_, waiter) = waiters.swap_remove(i);
                // A waiter that gave up (timed out) has dropped its receiver.
                let _ = waiter.send(now.clone());
            } else {
                i += 1;
            }
        }
    }

    /// The first published progress that satisfies `wanted` (the current one if
    /// it does). The waiter is woken by the publication that serves `ticket`
    /// (0: by the next publication at all), not by every round.
    async fn next_progress(&self, ticket: u64, wanted: impl Fn(&Progress) -> bool) -> Progress {
        loop {
            let (tx, rx) = oneshot::channel();
            {
                let mut waiters = self.signals.waiters();
                // Forget waiters that gave up (timed out) while nothing was published.
                waiters.retain(|(_, w)| !w.is_closed());
                waiters.push((ticket, tx));
            }
            // Registered first, looked second: a publication in between wakes us.
            let current = self.signals.progress.borrow().clone();
            if wanted(&current) {
                return current;
            }
            if let Ok(published) = rx.await {
                if wanted(&published) {
                    return published;
                }
            }
        }
    }

    /// Applies the feed to `targets` up to `until` (or the head) with the one
    /// loop every applier of the feed shares ([`catch_up::advance`]).
    async fn advance(
        &self,
        targets: &[Target<'_>],
        cursor: &mut Cursor,
        until: Option<u64>,
    ) -> Result<u64, ProjectionError> {
        let reach = Reach {
            until,
            budget: None,
        };
        catch_up::advance(
            self.store.as_ref(),
            self.batch,
            targets,
            cursor,
            reach,
            &mut |_| {},
        )
        .await
    }

    /// The events the projections could not apply, as recorded (see
    /// [`ApplyFailure`]), for every live model.
    pub async fn failures(&self) -> Result<Vec<ApplyFailure>, ProjectionError> {
        Ok(self.store.failures(&self.names()).await?)
    }

    /// Makes the models that stand at the head of the log inline, if this
    /// projector does that ([`Projector::with_inline`]): the fed ones with no
    /// quarantined aggregate, once they all stand at the head (a model with a
    /// recorded failure stays fed until a rebuild clears it: folding an
    /// aggregate it skips would make a wrong document look right; the others
    /// go inline without it). The store checks it all again under the lock
    /// that excludes appends.
    async fn settle_inline(&self, cursor: &mut Cursor) -> Result<(), ProjectionError> {
        if !self.inline {
            return Ok(());
        }
        let Some(checkpoints) = cursor.checkpoints.clone() else {
            return Ok(());
        };
        let names = self.names();
        let clean = |i: usize| cursor.quarantined.get(i).is_some_and(|q| q.is_empty());
        let fed: Vec<usize> = (0..checkpoints.len())
            .filter(|&i| !is_inline(checkpoints[i]) && clean(i))
            .collect();
        let Some(&first) = fed.first() else {
            return Ok(());
        };
        let at = checkpoints[first];
        if !fed.iter().all(|&i| checkpoints[i] == at) || self.store.head().await? != at {
            return Ok(());
        }
        let models: Vec<&str> = fed.iter().map(|&i| names[i]).collect();
        if self.store.go_inline(&models, at).await? {
            tracing::info!(models = ?models, at, "read models are inline from here on");
            let mut now = checkpoints;
            for &i in &fed {
                now[i] = INLINE;
            }
            cursor.checkpoints = Some(now);
        }
        Ok(())
    }

    /// Rebuilds a projection from the whole log: replays it into a scratch model
    /// while the live one keeps serving, then swaps the two atomically and
    /// catches up the events that arrived meanwhile.
    pub async fn rebuild(&self, name: &str) -> Result<u64, ProjectionError> {
        let p = self.find(name)?;
        let scratch = format!("{name}~rebuild");
        let target: [Target<'_>; 1] = [(p.as_ref(), &scratch)];
        // A scratch model with a checkpoint is an interrupted rebuild: its
        // documents are the log applied up to that checkpoint (committed
        // together), so resume it instead of starting over.
        if self.store.checkpoint(&scratch).await? == 0 {
            self.store.drop_model(&scratch).await?;
        }
        self.store.sequence().await?;
        let mut scratch_cursor = Cursor::default();
        let replayed = self.advance(&target, &mut scratch_cursor, None).await?;
        {
            let mut live = self.running.lock().await;
            loop {
                // An inline live model is only replaced by a scratch model at
                // the head, with nothing waiting for a position.
                self.store.sequence().await?;
                self.advance(&target, &mut scratch_cursor, None).await?;
                if self.store.head().await? == 0 {
                    // An empty log: the rebuilt model is empty.
                    self.store.drop_model(name).await?;
                    break;
                }
                if self.store.checkpoint(&scratch).await? == 0 {
                    // The log was empty a moment ago and is not any more:
                    // nothing replayed yet.
                    continue;
                }
                if self.store.swap_model(name, &scratch).await? {
                    break;
                }
                if self.store.checkpoint(&scratch).await? == 0 {
                    return Err(ProjectionError::RebuiltElsewhere(name.to_string()));
                }
                // Another process's projector moved the live model on, or (inline)
                // commands committed after the scratch model's head: catch up.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            // The live model was replaced: its checkpoint moved under the
            // cursor's guess, and the documents it remembers are the old
            // model's, possibly at the very same checkpoint (a rebuild that
            // repaired a corrupted document must not be undone by them).
            live.checkpoints = None;
            live.docs.clear();
        }
        tracing::info!(projection = name, events = replayed, "projection rebuilt");
        Ok(replayed)
    }

    /// Replays the log up to `until` into model `scratch` (dropping what it held)
    /// with projection `name`: the building block of rebuild checks.
    pub async fn replay_into(
        &self,
        name: &str,
        scratch: &str,
        until: u64,
    ) -> Result<u64, ProjectionError> {
        let p = self.find(name)?;
        self.store.drop_model(scratch).await?;
        self.advance(
            &[(p.as_ref(), scratch)],
            &mut Cursor::default(),
            Some(until),
        )
        .await
    }

    // ---- the worker ---------------------------------------------------------

    /// Starts this projector's worker task unless it is running (later calls do
    /// nothing). Needs a Tokio runtime. The engine starts it when it is built
    /// inside a runtime, and otherwise on the first command.
    pub fn spawn_worker(self: &Arc<Self>) {
        let mut worker = self.worker.lock().unwrap_or_else(|e| e.into_inner());
        if worker.as_ref().is_some_and(|w| !w.is_finished()) {
            return;
        }
        let weak = Arc::downgrade(self);
        let signals = self.signals.clone();
        *worker = Some(tokio::spawn(work(weak, signals)));
    }

    /// One worker round: number what can be numbered, apply everything up to
    /// the head, and publish the outcome as serving every ticket up to `serving`
    /// (handed out before the round started). `trust_known` uses the checkpoints
    /// this process last saw as the starting point (right after a local commit
    /// they are exact unless another process is projecting too); when polling for
    /// other processes' events the database is asked.
    async fn round(&self, serving: u64, trust_known: bool) -> Result<Round, ProjectionError> {
        let mut cursor = self.running.lock().await;
        if !trust_known || self.distrusted.swap(false, Ordering::SeqCst) {
            cursor.checkpoints = None;
            // The documents remembered are dropped too: a rebuild run by
            // another process may have swapped in a repaired model at the very
            // checkpoint they are tagged with, which nothing else reveals.
            cursor.docs.clear();
        }
        let result: Result<Round, ProjectionError> = async {
            let sequenced = self.store.sequence_report().await?;
            let applied = self
                .advance(&self.live_targets(), &mut cursor, None)
                .await?;
            if !sequenced.waiting {
                self.settle_inline(&mut cursor).await?;
            }
            Ok(Round {
                progressed: sequenced.numbered > 0 || applied > 0,
                waiting: sequenced.waiting,
            })
        }
        .await;
        let low = cursor.low();
        // One publication per round (every one wakes every waiter), made under
        // the lock so that rounds and catch-ups publish in the order they ran.
        self.publish(|p| {
            p.rounds += 1;
            p.served = p.served.max(serving);
            if let Some(low) = low {
                p.low_water_mark = low;
            }
            match &result {
                Ok(round) => {
                    p.waiting = round.waiting;
                    p.complete = !round.waiting;
                    p.error = None;
                }
                Err(e) => {
                    p.complete = false;
                    p.error = Some(e.to_string());
                }
            }
        });
        result
    }

    /// Waits until every event the aggregate has committed so far is sequenced
    /// and applied by every projection (read-your-writes for a command that just
    /// committed). Returns false if `timeout` passed first: the events are
    /// committed, only the read models lag (a long transaction elsewhere holds
    /// back sequencing). Fails if a round meant to apply the events failed.
    pub async fn wait_for_aggregate(
        self: &Arc<Self>,
        aggregate_type: &str,
        aggregate_id: &str,
        timeout: Duration,
    ) -> Result<bool, ProjectionError> {
        self.spawn_worker();
        let deadline = Instant::now() + timeout;
        let ticket = self.kick();
        // The aggregate's last position, once it has one.
        let mut target: Option<u64> = None;
        let mut after_round: Option<u64> = None;
        loop {
            // The first round that started after our kick, then each next one.
            let r = after_round;
            let next = self.next_progress(if r.is_none() { ticket } else { 0 }, move |p| {
                p.served >= ticket && r.is_none_or(|r| p.rounds > r)
            });
            let Ok(seen) = tokio::time::timeout_at(deadline, next).await else {
                return Ok(false);
            };
            if let Some(error) = seen.error {
                return Err(ProjectionError::Worker(error));
            }
            if seen.complete {
                // The round that served us started after our commit, numbered
                // everything committed by then and applied it up to the head.
                return Ok(true);
            }
            if target.is_none() {
                let (position, pending) = self
                    .store
                    .aggregate_position(aggregate_type, aggregate_id)
                    .await?;
                if !pending {
                    target = Some(position);
                }
            }
            if let Some(target) = target {
                if seen.low_water_mark >= target {
                    return Ok(true);
                }
                // Sequenced, yet not applied: another process numbered our events
                // after the round read the feed. Nothing else would wake the
                // worker before its poll interval, so ask for another round.
                self.kick();
            }
            // Otherwise our events are still held back by an older transaction;
            // the worker keeps looking by itself while that is so.
            after_round = Some(seen.rounds);
        }
    }
}

/// The worker loop (see the module docs).
async fn work(projector: Weak<Projector>, signals: Arc<Signals>) {
    // The first round reads the checkpoints from the database.
    let mut trust_known = false;
    let mut held_back_pause = Duration::from_millis(1);
    loop {
        let Some(p) = projector.upgrade() else {
            return;
        };
        let serving = signals.requested.load(Ordering::SeqCst);
        let result = p.round(serving, trust_known).await;
        drop(p);
        let wait = match &result {
            Ok(round) if round.waiting => {
                // Events are held back. Look again at once if the round got
                // anywhere, else pause briefly (growing), unless kicked.
                if round.progressed {
                    held_back_pause = Duration::from_millis(1);
                    Duration::ZERO
                } else {
                    let pause = held_back_pause;
                    held_back_pause = (held_back_pause * 2).min(HELD_BACK_MAX_PAUSE);
                    pause
                }
            }
            Ok(_) => {
                held_back_pause = Duration::from_millis(1);
                POLL_INTERVAL
            }
            Err(e) => {
                tracing::error!(error = %e, "projection round failed");
                ERROR_PAUSE
            }
        };
        if wait.is_zero() {
            trust_known = true;
            continue;
        }
        tokio::select! {
            _ = signals.kick.notified() => trust_known = true,
            _ = tokio::time::sleep(wait) => trust_known = false,
        }
    }
}

impl Drop for Projector {
    fn drop(&mut self) {
        // Wake the worker so that it notices at once that we are gone.
        self.signals.kick.notify_one();
    }
}
