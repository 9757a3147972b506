//! Runs cqrs-es aggregates on any [`LogStore`].
//!
//! [`Repo`] implements cqrs-es's `PersistedEventRepository`, the seam cqrs-es
//! offers for custom backends, so the domain uses the stock `CqrsFramework` and
//! `PersistedEventStore`. Two things happen here that cqrs-es knows nothing about:
//!
//! - **Claims.** Before appending, every event is shown to the injected
//!   [`ClaimFn`]; the resulting claim operations go into the same transaction as
//!   the events. A claim held by another owner comes back from cqrs-es as
//!   `AggregateError::UnexpectedError` wrapping a [`ClaimConflict`], which the
//!   engine recovers with `downcast_ref`.
//! - **One reader, and nothing appended that it cannot read.** Aggregate
//!   streams are loaded through [`LogStore::load`] on every backend, so they
//!   are decoded by the one decoder of stored data ([`super::json`]).
//!   (postgres-es's own repository is not used to read: its sqlx decoding
//!   stops at serde_json's 128 levels of nesting, and one event it could not
//!   read would make its node unloadable.) Before appending, every event is
//!   written out as the stores write it and read back through that decoder
//!   and the aggregate's own event type ([`check_readable`]); an event that
//!   does not read back as itself is never committed, and the command fails
//!   with an [`Unreadable`] error instead.
//! - **Secrets at rest.** A repository built [`with_sealing`](Repo::with_sealing)
//!   hands the events to a [`Sealing`] before appending them (which encrypts
//!   secrets and may add claims: a new data key) and after loading them (which
//!   decrypts them for the write model). See `crate::secrets`.
//! - **Inline read models.** A repository built [`with_fold`](Repo::with_fold)
//!   appends with [`LogStore::append_folded`]: the read models that are folds
//!   of one node's own stream are written in the append's transaction, as
//!   stored (sealed), exactly as a replay of the feed would write them.
//!
//! Snapshots are never used: cqrs-es 0.5 applies events twice when it builds one
//! (see `docs/ironic-behaviour.md` §13.1), so [`event_store`] builds a pure
//! event-sourced store and `get_snapshot` always answers `None`.

use super::{ClaimConflict, ClaimFn, ClaimOp, Fold, LogStore, StoreError};
use cqrs_es::persist::{
    PersistedEventRepository, PersistedEventStore, PersistenceError, ReplayStream, SerializedEvent,
    SerializedSnapshot,
};
use cqrs_es::{Aggregate, AggregateError};
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// How many events `stream_all_events` reads from the feed per query, and the
/// buffer of the channel it streams them through.
const STREAM_PAGE: u32 = 500;

/// A cqrs-es event repository over a [`LogStore`].
pub struct Repo {
    store: Arc<dyn LogStore>,
    claims: ClaimFn,
    /// Encrypts secrets on the way in, decrypts them on the way out.
    sealing: Option<Arc<dyn Sealing>>,
    /// The inline read models every append writes with its events.
    fold: Option<Arc<dyn Fold>>,
    /// Appends (by this repository and its clones) that found some inline
    /// model not inline, so that a reader must wait for the feed (see
    /// [`Repo::unfolded`]).
    unfolded: Arc<AtomicU64>,
    /// Events appended through this repository (`/metrics`).
    appended: Arc<AtomicU64>,
}

/// Encryption of secrets in events at rest, as the repository applies it
/// (implemented by `crate::secrets::Keyring`; the store knows no keys).
#[async_trait::async_trait]
pub trait Sealing: Send + Sync {
    /// The events as they are to be stored (secrets encrypted), and claim
    /// operations to apply with them (e.g. a new data key), which go first.
    async fn seal(
        &self,
        events: &[SerializedEvent],
    ) -> Result<(Vec<SerializedEvent>, Vec<ClaimOp>), StoreError>;

    /// Stored events with their secrets decrypted where the keys still exist.
    async fn open(&self, events: Vec<SerializedEvent>) -> Result<Vec<SerializedEvent>, StoreError>;
}

/// The cqrs-es event store the engine builds its `CqrsFramework`s on.
pub type Store<A> = PersistedEventStore<Repo, A>;

/// A pure event-sourced cqrs-es store over `repo` (no snapshots, see module docs).
pub fn event_store<A: Aggregate>(repo: Repo) -> Store<A> {
    PersistedEventStore::new_event_store(repo)
}

impl Repo {
    /// A repository that reads and writes through `store` only.
    pub fn new(store: Arc<dyn LogStore>, claims: ClaimFn) -> Self {
        Self {
            store,
            claims,
            sealing: None,
            fold: None,
            unfolded: Arc::new(AtomicU64::new(0)),
            appended: Arc::new(AtomicU64::new(0)),
        }
    }

    /// This repository, writing `fold`'s inline read models in every append's
    /// own transaction (see [`LogStore::append_folded`]).
    pub fn with_fold(mut self, fold: Arc<dyn Fold>) -> Self {
        self.fold = Some(fold);
        self
    }

    /// How many appends so far could not write every inline model (some model
    /// was not inline: after a drop, a swap, or before it first caught up with
    /// the feed). A command that sees this count unchanged across its run
    /// reads its own write without waiting for the projector.
    pub fn unfolded(&self) -> u64 {
        self.unfolded.load(Ordering::SeqCst)
    }

    /// How many events were appended through this repository so far.
    pub fn appended(&self) -> u64 {
        self.appended.load(Ordering::Relaxed)
    }

    /// Appends through the fold, if there is one, and counts what it missed.
    async fn append(
        &self,
        events: &[SerializedEvent],
        claims: &[ClaimOp],
    ) -> Result<(), StoreError> {
        let Some(fold) = &self.fold else {
            self.unfolded.fetch_add(1, Ordering::SeqCst);
            self.store.append(events, claims).await?;
            self.appended
                .fetch_add(events.len() as u64, Ordering::Relaxed);
            return Ok(());
        };
        if !self
            .store
            .append_folded(events, claims, fold.as_ref())
            .await?
        {
            self.unfolded.fetch_add(1, Ordering::SeqCst);
        }
        self.appended
            .fetch_add(events.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// This repository, encrypting secrets before appending and decrypting them
    /// after loading (see [`Sealing`]).
    pub fn with_sealing(mut self, sealing: Arc<dyn Sealing>) -> Self {
        self.sealing = Some(sealing);
        self
    }

    /// Decrypts loaded events if this repository seals.
    async fn opened(
        &self,
        events: Vec<SerializedEvent>,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        match &self.sealing {
            Some(s) => s.open(events).await.map_err(persistence_error),
            None => Ok(events),
        }
    }

    /// The store this repository writes to.
    pub fn store(&self) -> &Arc<dyn LogStore> {
        &self.store
    }
}

/// Cheap: clones handles. Handy because each `PersistedEventStore` (one per
/// aggregate type) takes its repository by value.
impl Clone for Repo {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            claims: self.claims.clone(),
            sealing: self.sealing.clone(),
            fold: self.fold.clone(),
            appended: self.appended.clone(),
            unfolded: self.unfolded.clone(),
        }
    }
}

/// A command's event that would not read back as itself (see
/// [`check_readable`]): nothing was appended. Travels through cqrs-es as
/// `AggregateError::UnexpectedError`, like [`ClaimConflict`]; the engine
/// recovers it with [`unreadable`] and refuses the request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("its {event_type} event would not read back ({why}); nothing was recorded")]
pub struct Unreadable {
    pub event_type: String,
    pub why: String,
}

/// Checks that every event of a commit reads back exactly as the readers
/// will read it: its stored form (`stored`: sealed, if secrets are sealed)
/// through the one decoder of stored data, and its payload as the aggregate's
/// event type `A::Event` (`plain`: before sealing, as the write model sees it
/// once opened).
pub fn check_readable<A: Aggregate>(
    plain: &[SerializedEvent],
    stored: &[SerializedEvent],
) -> Result<(), Unreadable> {
    let refuse = |e: &SerializedEvent, why: String| Unreadable {
        event_type: e.event_type.clone(),
        why,
    };
    for e in stored {
        super::json::round_trips(&e.payload).map_err(|why| refuse(e, format!("payload: {why}")))?;
        super::json::round_trips(&e.metadata)
            .map_err(|why| refuse(e, format!("metadata: {why}")))?;
    }
    for e in plain {
        let text = super::json::encode(&e.payload);
        super::json::decode_as::<A::Event>(text.as_bytes())
            .map_err(|why| refuse(e, why.to_string()))?;
    }
    Ok(())
}

/// Finds the [`Unreadable`] inside an error cqrs-es returned, if that is what
/// it was.
pub fn unreadable<E: std::error::Error>(err: &AggregateError<E>) -> Option<&Unreadable> {
    match err {
        AggregateError::UnexpectedError(inner) => inner.downcast_ref::<Unreadable>(),
        _ => None,
    }
}

/// How store failures surface through cqrs-es (`AggregateError` is built from these).
pub fn persistence_error(err: StoreError) -> PersistenceError {
    match err {
        StoreError::Conflict => PersistenceError::OptimisticLockError,
        StoreError::Claim(c) => PersistenceError::UnknownError(Box::new(c)),
        StoreError::Database(m) => PersistenceError::ConnectionError(m.into()),
        StoreError::Driver(e) => PersistenceError::ConnectionError(Box::new(e)),
        StoreError::Corrupt(m) => PersistenceError::DeserializationError(m.into()),
    }
}

/// Finds the [`ClaimConflict`] inside an error cqrs-es returned, if that is what
/// it was (the engine turns it into a 409). cqrs-es has no variant for it, so it
/// travels as `UnexpectedError` (see [`persistence_error`]).
pub fn claim_conflict<E: std::error::Error>(err: &AggregateError<E>) -> Option<&ClaimConflict> {
    match err {
        AggregateError::UnexpectedError(inner) => inner.downcast_ref::<ClaimConflict>(),
        _ => None,
    }
}

/// Feeds already-loaded events into a cqrs-es replay stream. The channel is sized
/// to hold them all, so no task is needed to drain it.
async fn replay_of(events: Vec<SerializedEvent>) -> Result<ReplayStream, PersistenceError> {
    let (mut feed, stream) = ReplayStream::new(events.len().max(1));
    for event in events {
        feed.push(Ok(event)).await?;
    }
    Ok(stream)
}

impl PersistedEventRepository for Repo {
    async fn get_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let events = self
            .store
            .load(A::TYPE, aggregate_id)
            .await
            .map_err(persistence_error)?;
        self.opened(events).await
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let mut events = self
            .store
            .load(A::TYPE, aggregate_id)
            .await
            .map_err(persistence_error)?;
        events.retain(|e| e.sequence > last_sequence);
        self.opened(events).await
    }

    async fn get_snapshot<A: Aggregate>(
        &self,
        _aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        // Pure event sourcing: see the module docs.
        Ok(None)
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        _snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        let unreadable = |u: Unreadable| PersistenceError::UnknownError(Box::new(u));
        let mut claims: Vec<_> = events.iter().flat_map(|e| (self.claims)(e)).collect();
        if let Some(sealing) = &self.sealing {
            let (sealed, mut first) = sealing.seal(events).await.map_err(persistence_error)?;
            check_readable::<A>(events, &sealed).map_err(unreadable)?;
            first.append(&mut claims);
            return self
                .append(&sealed, &first)
                .await
                .map_err(persistence_error);
        }
        check_readable::<A>(events, events).map_err(unreadable)?;
        self.append(events, &claims)
            .await
            .map_err(persistence_error)
    }

    async fn stream_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<ReplayStream, PersistenceError> {
        // Decrypted like `get_events` (this path is not used by the engine).
        replay_of(self.get_events::<A>(aggregate_id).await?).await
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        // The feed holds every numbered event, in commit order (better than
        // postgres-es's per-aggregate sequence order). Page through it in a
        // task, keeping this aggregate type.
        let store = self.store.clone();
        let (mut feed, stream) = ReplayStream::new(STREAM_PAGE as usize);
        tokio::spawn(async move {
            let mut after = 0;
            loop {
                let page = match store.read_feed(after, STREAM_PAGE).await {
                    Ok(page) => page,
                    Err(err) => {
                        // Reported to the consumer, unlike postgres-es, which ends
                        // the stream silently on a database error.
                        let _ = feed.push(Err(persistence_error(err))).await;
                        return;
                    }
                };
                let Some(last) = page.last() else { return };
                after = last.position;
                for e in page.into_iter().filter(|e| e.aggregate_type == A::TYPE) {
                    let event = SerializedEvent {
                        aggregate_id: e.aggregate_id,
                        sequence: e.sequence as usize,
                        aggregate_type: e.aggregate_type,
                        event_type: e.event_type,
                        event_version: e.event_version,
                        payload: e.payload,
                        metadata: e.metadata,
                    };
                    if feed.push(Ok(event)).await.is_err() {
                        return; // the consumer went away
                    }
                }
            }
        });
        Ok(stream)
    }
}
