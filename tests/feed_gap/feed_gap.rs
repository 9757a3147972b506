//! The PostgreSQL feed never skips an event that commits "late".
//!
//! A `bigserial` is taken at INSERT but becomes visible at COMMIT, so a reader
//! that trusts it can see id 6 before id 5 exists for it, advance its checkpoint to
//! 6, and lose 5 forever. These tests provoke exactly that interleaving with raw
//! transactions (using the store's own INSERT) and check that the store's feed
//! withholds the younger event until the older transaction has finished, then
//! delivers both, once each, densely numbered.

use crate::common;

use common::{event, settle};
use ironledger::store::postgres::INSERT_EVENT_SQL;
use ironledger::store::{LogStore, RecordedEvent};
use serde_json::json;
use sqlx::postgres::PgPool;
use sqlx::{Postgres, Transaction};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Inserts one event inside `tx`, exactly as `PostgresStore::append` does.
async fn insert(tx: &mut Transaction<'static, Postgres>, id: &str, sequence: i64) {
    sqlx::query(INSERT_EVENT_SQL)
        .bind("node")
        .bind(id)
        .bind(sequence)
        .bind("Happened")
        .bind("1.0")
        .bind(json!({ "Happened": { "id": id, "sequence": sequence } }))
        .bind(json!({}))
        .execute(&mut **tx)
        .await
        .expect("insert event");
}

async fn event_id(executor: impl sqlx::PgExecutor<'_>, id: &str) -> i64 {
    sqlx::query_scalar("SELECT event_id FROM events WHERE aggregate_id = $1")
        .bind(id)
        .fetch_one(executor)
        .await
        .expect("event_id")
}

fn ids(events: &[RecordedEvent]) -> Vec<(u64, &str)> {
    events
        .iter()
        .map(|e| (e.position, e.aggregate_id.as_str()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_commit_is_delivered_not_skipped() {
    let t = common::postgres().await;
    let store = t.store.clone();
    let pool = t.pg_pool.clone().unwrap();

    // A consumer that has already read one event: its checkpoint is 1.
    store
        .append(&[event("node", "first", 1, json!({}))], &[])
        .await
        .unwrap();
    settle(&*store, 1).await;
    let checkpoint = store
        .read_feed(0, 10)
        .await
        .unwrap()
        .last()
        .unwrap()
        .position;
    assert_eq!(checkpoint, 1);

    // T1 inserts first, so it takes the lower event_id (and transaction id) ...
    let mut t1 = pool.begin().await.unwrap();
    insert(&mut t1, "older", 1).await;
    let older_id = event_id(&mut *t1, "older").await;
    // ... T2 inserts after it, but commits first.
    let mut t2 = pool.begin().await.unwrap();
    insert(&mut t2, "younger", 1).await;
    t2.commit().await.unwrap();
    let younger_id = event_id(&pool, "younger").await;
    assert!(
        older_id < younger_id,
        "the scenario needs T1 to insert first"
    );

    // This is the trap a bigserial feed falls into: outside T1, the newest
    // visible id is T2's, and T1's lower id is not visible yet. A reader going
    // by event_id would take T2's event now and skip T1's forever.
    let visible: Vec<i64> =
        sqlx::query_scalar("SELECT event_id FROM events WHERE event_id > $1 ORDER BY event_id")
            .bind(older_id - 1)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(visible, vec![younger_id]);

    // The store does not number T2's event while T1, which is older, may still
    // commit: T1's transaction id is below T2's and T1 is running, so the snapshot's
    // xmin is at most T1's id, and T2's id is not below it.
    for _ in 0..3 {
        store.sequence().await.unwrap();
        assert!(
            store.read_feed(checkpoint, 10).await.unwrap().is_empty(),
            "the younger event was delivered while an older transaction was open"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(store.head().await.unwrap(), 1);
    assert_eq!(
        store.aggregate_position("node", "younger").await.unwrap(),
        (0, true),
        "committed, waiting for a position"
    );

    // T1 commits: now both are numbered, older first, densely after the checkpoint.
    t1.commit().await.unwrap();
    settle(&*store, 3).await;
    let delivered = store.read_feed(checkpoint, 10).await.unwrap();
    assert_eq!(ids(&delivered), vec![(2, "older"), (3, "younger")]);
    assert!(store.read_feed(3, 10).await.unwrap().is_empty());
    assert_eq!(
        ids(&store.read_feed(0, 10).await.unwrap()),
        vec![(1, "first"), (2, "older"), (3, "younger")]
    );
    assert_eq!(
        store.aggregate_position("node", "younger").await.unwrap(),
        (3, false)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolled_back_events_never_appear() {
    let t = common::postgres().await;
    let store = t.store.clone();
    let pool = t.pg_pool.clone().unwrap();

    let mut aborted = pool.begin().await.unwrap();
    insert(&mut aborted, "aborted", 1).await;
    store
        .append(&[event("node", "kept", 1, json!({}))], &[])
        .await
        .unwrap();
    aborted.rollback().await.unwrap();

    settle(&*store, 1).await;
    assert_eq!(
        ids(&store.read_feed(0, 10).await.unwrap()),
        vec![(1, "kept")]
    );
}

/// Many writers, some holding their transactions open for a while (so commits
/// overtake each other), some rolling back, plus two competing sequencers, while a
/// reader follows the feed from its checkpoint. The reader must see every
/// committed event exactly once, at consecutive positions, and nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_reader_sees_everything_once() {
    const WRITERS: usize = 6;
    const COMMITS: usize = 40;

    let t = common::postgres().await;
    let store: Arc<dyn LogStore> = t.store.clone();
    let pool: PgPool = t.pg_pool.clone().unwrap();
    let writing = Arc::new(AtomicBool::new(true));

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (store, pool) = (store.clone(), pool.clone());
            tokio::spawn(async move {
                let mut committed: Vec<(String, u64)> = vec![];
                for c in 0..COMMITS {
                    let id = format!("w{w}-c{c}");
                    let roll: u8 = rand::random();
                    match roll % 4 {
                        // Through the store: 1-3 events in one commit.
                        0 | 1 => {
                            let n = 1 + (roll as usize / 4) % 3;
                            let events: Vec<_> =
                                (1..=n).map(|s| event("node", &id, s, json!({}))).collect();
                            store.append(&events, &[]).await.unwrap();
                            committed.extend((1..=n as u64).map(|s| (id.clone(), s)));
                        }
                        // A raw transaction that stays open a little after inserting.
                        2 => {
                            let mut tx = pool.begin().await.unwrap();
                            insert(&mut tx, &id, 1).await;
                            tokio::time::sleep(Duration::from_millis(u64::from(roll % 7))).await;
                            insert(&mut tx, &id, 2).await;
                            tx.commit().await.unwrap();
                            committed.extend([(id.clone(), 1), (id.clone(), 2)]);
                        }
                        // One that gives up: its events must never be delivered.
                        _ => {
                            let mut tx = pool.begin().await.unwrap();
                            insert(&mut tx, &id, 1).await;
                            tokio::time::sleep(Duration::from_millis(u64::from(roll % 5))).await;
                            tx.rollback().await.unwrap();
                        }
                    }
                }
                committed
            })
        })
        .collect();

    // A second sequencer, as another ironledger process would run: sequencers
    // must serialize on the advisory lock, or they would hand out a position twice.
    let rival = {
        let (store, writing) = (store.clone(), writing.clone());
        tokio::spawn(async move {
            while writing.load(Ordering::Relaxed) {
                store.sequence().await.unwrap();
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
        })
    };

    // The number of committed events, once the writers are done.
    let target = Arc::new(AtomicU64::new(u64::MAX));
    let reader = {
        let (store, target) = (store.clone(), target.clone());
        tokio::spawn(async move {
            let mut checkpoint = 0u64;
            let mut seen: HashSet<(String, u64)> = HashSet::new();
            let deadline = Instant::now() + Duration::from_secs(120);
            while checkpoint != target.load(Ordering::Acquire) {
                assert!(Instant::now() < deadline, "reader stuck at {checkpoint}");
                store.sequence().await.unwrap();
                let page = store.read_feed(checkpoint, 17).await.unwrap();
                for e in &page {
                    assert_eq!(e.position, checkpoint + 1, "positions must be dense");
                    checkpoint = e.position;
                    assert!(
                        seen.insert((e.aggregate_id.clone(), e.sequence)),
                        "delivered twice: {} #{}",
                        e.aggregate_id,
                        e.sequence
                    );
                }
                if page.is_empty() {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            (checkpoint, seen)
        })
    };

    let mut committed = HashSet::new();
    for w in writers {
        committed.extend(w.await.unwrap());
    }
    writing.store(false, Ordering::Release);
    rival.await.unwrap();
    target.store(committed.len() as u64, Ordering::Release);
    let (checkpoint, seen) = reader.await.unwrap();

    assert_eq!(checkpoint, committed.len() as u64);
    assert_eq!(
        seen, committed,
        "the reader must see exactly the committed events"
    );
    // Nothing beyond them (rolled-back events) is ever numbered.
    store.sequence().await.unwrap();
    assert_eq!(store.head().await.unwrap(), committed.len() as u64);
    assert!(store.read_feed(checkpoint, 10).await.unwrap().is_empty());
    let unsequenced: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE position IS NULL")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(unsequenced, 0);

    // Positions are exactly the events' rank in (tx_id, event_id) order: each was
    // numbered only once everything ranked before it was final. (A sequencer
    // without the xmin rule numbers by visibility, and fails this whenever a
    // commit overtakes an older transaction.)
    let misplaced: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT position, \
                row_number() OVER (ORDER BY tx_id, event_id) AS rank FROM events) r \
          WHERE position <> rank",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(misplaced, 0);
}

/// An append that takes over a claim key waits for whoever holds it *before*
/// writing anything, so that it gets its transaction id — the feed's order —
/// only after the holder has committed: a replay then never sees "B takes
/// MAC X" before "A lets X go". The test holds the key's lock in a raw
/// transaction (as a deleting node's append does), and watches the engine's
/// append wait on it with no transaction id yet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_taker_waits_before_it_writes() {
    use ironledger::domain::node::commands::{EnrollNode, NewPort};
    use ironledger::domain::{NodeCommand, NodeServices};
    use ironledger::engine::{Engine, Meta};
    use ironledger::store::postgres::claim_lock_key;
    use uuid::Uuid;

    let t = common::postgres().await;
    let pool = t.pg_pool.clone().unwrap();
    let engine = Arc::new(Engine::on(
        ironledger::store::Opened {
            store: t.store.clone(),
            pg_pool: t.pg_pool.clone(),
        },
        NodeServices::default(),
    ));
    let meta = Meta::actor("test");
    let b = Uuid::new_v4();
    engine
        .node(
            b,
            NodeCommand::Enroll(EnrollNode::new(b, "fake-hardware")),
            &meta,
        )
        .await
        .unwrap();
    let mac = "52:54:00:aa:00:01";

    let mut holder = pool.begin().await.unwrap();
    let (class, key) = claim_lock_key("port_address", mac);
    sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
        .bind(class)
        .bind(key)
        .execute(&mut *holder)
        .await
        .unwrap();

    let taker = {
        let engine = engine.clone();
        tokio::spawn(async move {
            let port = NewPort {
                uuid: Uuid::new_v4(),
                address: mac.into(),
                pxe_enabled: true,
                extra: serde_json::Map::new(),
                ..Default::default()
            };
            engine
                .node(b, NodeCommand::AddPort(port), &Meta::actor("test"))
                .await
        })
    };
    // The taker's backend waits on the claim's lock, and has no transaction
    // id yet: nothing of it is written.
    let mut waiting = false;
    for _ in 0..100 {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
             WHERE l.locktype = 'advisory' AND NOT l.granted \
               AND l.classid::int4 = $1 AND l.objid::int4 = $2 AND a.backend_xid IS NULL",
        )
        .bind(class)
        .bind(key)
        .fetch_one(&pool)
        .await
        .unwrap();
        if n == 1 {
            waiting = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(waiting, "the append waits on the claim key before writing");
    assert!(!taker.is_finished());
    holder.commit().await.unwrap();
    taker
        .await
        .unwrap()
        .expect("the port is added once the key is free");
}
