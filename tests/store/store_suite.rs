//! One behavioural suite for every [`LogStore`] backend.
//!
//! Each test below is written once against `&TestStore` (an `Arc<dyn LogStore>`
//! plus fixtures) and instantiated by `suite!` for memory, SQLite and PostgreSQL,
//! so the backends cannot drift apart: whatever the engine and the projections
//! may assume of one, they may assume of all.

use crate::common;

use common::{event, settle, TestStore};
use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::SerializedEvent;
use cqrs_es::{Aggregate, AggregateError, CqrsFramework, DomainEvent, EventStore};
use ironledger::store::bridge::{claim_conflict, event_store, unreadable};
use ironledger::store::{
    is_inline, rows, ApplyFailure, ClaimConflict, ClaimFn, ClaimOp, Cond, DocChange, Fold, Key,
    Keys, LogStore, ModelCommit, PageQuery, RecordedEvent, StoreError,
};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::Barrier;

/// Generates, for every backend, a module with one `#[tokio::test]` per test fn.
macro_rules! backend {
    ($backend:ident: $($test:ident),*) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let store = crate::common::$backend().await;
                    super::$test(&store).await;
                }
            )*
        }
    };
}

macro_rules! suite {
    ($($test:ident),* $(,)?) => {
        backend!(memory: $($test),*);
        backend!(sqlite: $($test),*);
        backend!(postgres: $($test),*);
    };
}

suite!(
    append_and_load_in_order,
    conflict_on_taken_sequence_writes_nothing,
    feed_is_dense_and_in_commit_order,
    head_and_aggregate_position,
    claims_acquire_reacquire_conflict_release,
    claims_release_all,
    claim_race_has_one_winner,
    sequence_race_has_one_winner,
    commit_model_compare_and_set,
    commit_model_race_has_one_winner,
    checkpoints_reads_many_models,
    commit_models_is_all_or_nothing,
    commit_models_race_has_one_winner,
    drop_model_removes_docs_and_checkpoint,
    swap_model_replaces_live,
    doc_list_is_in_byte_order,
    doc_prefix_is_one_range,
    doc_get_many_reads_what_exists,
    json_round_trips,
    deep_json_reads_back,
    failures_are_kept_with_their_model,
    extreme_numbers_round_trip,
    recorded_at_is_set,
    bridge_commands_persist_and_reload,
    bridge_concurrent_commands_conflict,
    bridge_claims_reject_duplicates,
    bridge_refuses_an_event_that_does_not_read_back,
    every_typed_column_is_written_and_queried,
    keyset_pages_walk_the_whole_order,
    page_conditions_filter,
    scratch_models_swap_and_drop_with_their_keys,
    doc_scan_pages_by_id,
    bad_keys_are_refused_with_nothing_written,
    appends_fold_only_inline_models,
    go_inline_only_at_the_head,
    an_inline_model_is_swapped_only_at_the_head,
    a_fold_that_fails_refuses_the_append,
    an_import_hands_inline_models_to_the_feed,
    idempotency_keys_hold_answer_and_expire,
    idempotency_key_race_has_one_winner,
);

fn acquire(scope: &str, key: &str, owner: &str) -> ClaimOp {
    ClaimOp::Acquire {
        scope: scope.into(),
        key: key.into(),
        owner: owner.into(),
    }
}

fn release(scope: &str, key: &str, owner: &str) -> ClaimOp {
    ClaimOp::Release {
        scope: scope.into(),
        key: key.into(),
        owner: owner.into(),
    }
}

fn put(id: &str, body: serde_json::Value) -> DocChange {
    DocChange::put(id, body)
}

// ---- write side ---------------------------------------------------------------

async fn append_and_load_in_order(t: &TestStore) {
    let s = &t.store;
    assert!(s.load("node", "n1").await.unwrap().is_empty());

    let first = vec![
        event("node", "n1", 1, json!({"i": 1})),
        event("node", "n1", 2, json!({"i": 2})),
    ];
    s.append(&first, &[]).await.unwrap();
    s.append(&[event("node", "n2", 1, json!({"i": 10}))], &[])
        .await
        .unwrap();
    s.append(&[event("node", "n1", 3, json!({"i": 3}))], &[])
        .await
        .unwrap();
    // Same id, other aggregate type: a separate stream.
    s.append(&[event("volume", "n1", 1, json!({"v": 1}))], &[])
        .await
        .unwrap();

    let loaded = s.load("node", "n1").await.unwrap();
    let want: Vec<SerializedEvent> = (1..=3)
        .map(|i| event("node", "n1", i, json!({ "i": i })))
        .collect();
    assert_eq!(loaded, want);
    assert_eq!(s.load("node", "n2").await.unwrap().len(), 1);
    assert_eq!(
        s.load("volume", "n1").await.unwrap(),
        vec![event("volume", "n1", 1, json!({"v": 1}))]
    );
}

async fn conflict_on_taken_sequence_writes_nothing(t: &TestStore) {
    let s = &t.store;
    s.append(&[event("node", "n1", 1, json!({}))], &[])
        .await
        .unwrap();
    settle(&**s, 1).await;

    // Sequence 2 is free but 1 is taken: the whole commit fails, and its claim too.
    let err = s
        .append(
            &[
                event("node", "n1", 2, json!({"lost": true})),
                event("node", "n1", 1, json!({"lost": true})),
            ],
            &[acquire("name", "lost", "n1")],
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict), "{err:?}");
    // A single taken sequence is refused too.
    let err = s
        .append(&[event("node", "n1", 1, json!({"lost": true}))], &[])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict), "{err:?}");

    assert_eq!(s.load("node", "n1").await.unwrap().len(), 1);
    assert_eq!(s.claim_owner("name", "lost").await.unwrap(), None);
    s.sequence().await.unwrap();
    assert_eq!(s.head().await.unwrap(), 1);
    // The store still works, and positions stay dense after the failed commits.
    s.append(&[event("node", "n1", 2, json!({}))], &[])
        .await
        .unwrap();
    settle(&**s, 2).await;
    let feed = s.read_feed(0, 10).await.unwrap();
    assert_eq!(
        feed.iter().map(|e| e.position).collect::<Vec<_>>(),
        vec![1, 2]
    );
}

// ---- the feed -------------------------------------------------------------------

async fn feed_is_dense_and_in_commit_order(t: &TestStore) {
    let s = &t.store;
    assert!(s.read_feed(0, 10).await.unwrap().is_empty());

    // Commits across aggregates, some with several events.
    let commits: Vec<Vec<SerializedEvent>> = vec![
        vec![
            event("node", "a", 1, json!({"k": "a1"})),
            event("node", "a", 2, json!({"k": "a2"})),
        ],
        vec![event("node", "b", 1, json!({"k": "b1"}))],
        vec![event("volume", "v", 1, json!({"k": "v1"}))],
        vec![event("node", "a", 3, json!({"k": "a3"}))],
        vec![
            event("node", "c", 1, json!({"k": "c1"})),
            event("node", "c", 2, json!({"k": "c2"})),
        ],
    ];
    let mut expected = vec![];
    for commit in &commits {
        s.append(commit, &[]).await.unwrap();
        expected.extend(commit.iter().map(|e| e.payload.clone()));
    }
    settle(&**s, 7).await;

    let all = s.read_feed(0, 100).await.unwrap();
    assert_eq!(
        all.iter().map(|e| e.position).collect::<Vec<_>>(),
        (1..=7).collect::<Vec<u64>>()
    );
    assert_eq!(
        all.iter().map(|e| e.payload.clone()).collect::<Vec<_>>(),
        expected
    );
    assert_eq!(all[3].aggregate_type, "volume");
    assert_eq!((all[4].aggregate_id.as_str(), all[4].sequence), ("a", 3));

    // Reading from a checkpoint, in pages.
    let page = s.read_feed(2, 3).await.unwrap();
    assert_eq!(
        page.iter().map(|e| e.position).collect::<Vec<_>>(),
        vec![3, 4, 5]
    );
    let rest = s.read_feed(5, 10).await.unwrap();
    assert_eq!(
        rest.iter().map(|e| e.position).collect::<Vec<_>>(),
        vec![6, 7]
    );
    assert!(s.read_feed(7, 10).await.unwrap().is_empty());
    assert!(s.read_feed(1000, 10).await.unwrap().is_empty());
    assert!(s.read_feed(u64::MAX, 10).await.unwrap().is_empty());
    assert!(s.read_feed(0, 0).await.unwrap().is_empty());

    // Paging through with a checkpoint yields everything exactly once.
    let mut checkpoint = 0;
    let mut seen = vec![];
    loop {
        let page = s.read_feed(checkpoint, 2).await.unwrap();
        let Some(last) = page.last() else { break };
        checkpoint = last.position;
        seen.extend(page);
    }
    assert_eq!(seen, all);
}

async fn head_and_aggregate_position(t: &TestStore) {
    let s = &t.store;
    assert_eq!(s.head().await.unwrap(), 0);
    assert_eq!(s.aggregate_position("node", "a").await.unwrap(), (0, false));

    s.append(
        &[
            event("node", "a", 1, json!({})),
            event("node", "a", 2, json!({})),
        ],
        &[],
    )
    .await
    .unwrap();
    s.append(&[event("node", "b", 1, json!({}))], &[])
        .await
        .unwrap();
    if s.backend() == "postgres" {
        // Committed but not yet numbered: visible to aggregate_position, so a
        // caller waiting to read its own writes knows to wait for the sequencer.
        let (_, pending) = s.aggregate_position("node", "b").await.unwrap();
        assert!(pending, "postgres numbers events only in sequence()");
    }
    settle(&**s, 3).await;
    assert_eq!(s.head().await.unwrap(), 3);
    assert_eq!(s.aggregate_position("node", "a").await.unwrap(), (2, false));
    assert_eq!(s.aggregate_position("node", "b").await.unwrap(), (3, false));
    assert_eq!(s.aggregate_position("node", "c").await.unwrap(), (0, false));

    s.append(&[event("node", "a", 3, json!({}))], &[])
        .await
        .unwrap();
    settle(&**s, 4).await;
    assert_eq!(s.aggregate_position("node", "a").await.unwrap(), (4, false));
}

// ---- claims ---------------------------------------------------------------------

async fn claims_acquire_reacquire_conflict_release(t: &TestStore) {
    let s = &t.store;
    assert_eq!(s.claim_owner("name", "web-1").await.unwrap(), None);

    s.append(
        &[event("node", "n1", 1, json!({}))],
        &[acquire("name", "web-1", "n1")],
    )
    .await
    .unwrap();
    assert_eq!(
        s.claim_owner("name", "web-1").await.unwrap().as_deref(),
        Some("n1")
    );

    // The same owner again: a no-op, not an error.
    s.append(
        &[event("node", "n1", 2, json!({}))],
        &[acquire("name", "web-1", "n1")],
    )
    .await
    .unwrap();

    // Another owner: the whole append fails, naming the holder; nothing is written.
    let err = s
        .append(
            &[event("node", "n2", 1, json!({}))],
            &[
                acquire("mac", "aa:bb", "n2"),
                acquire("name", "web-1", "n2"),
            ],
        )
        .await
        .unwrap_err();
    match err {
        StoreError::Claim(c) => assert_eq!(
            c,
            ClaimConflict {
                scope: "name".into(),
                key: "web-1".into(),
                owner: "n1".into()
            }
        ),
        other => panic!("expected a claim conflict, got {other:?}"),
    }
    assert!(s.load("node", "n2").await.unwrap().is_empty());
    assert_eq!(s.claim_owner("mac", "aa:bb").await.unwrap(), None);
    settle(&**s, 2).await;

    // Same key in another scope is independent.
    s.append(
        &[event("node", "n2", 1, json!({}))],
        &[acquire("hostname", "web-1", "n2")],
    )
    .await
    .unwrap();

    // Release by a non-owner does nothing; by the owner frees the key.
    s.append(&[], &[release("name", "web-1", "n2")])
        .await
        .unwrap();
    assert_eq!(
        s.claim_owner("name", "web-1").await.unwrap().as_deref(),
        Some("n1")
    );
    s.append(
        &[event("node", "n1", 3, json!({}))],
        &[release("name", "web-1", "n1")],
    )
    .await
    .unwrap();
    assert_eq!(s.claim_owner("name", "web-1").await.unwrap(), None);

    // Rename in one commit: n2 releases its hostname key and takes the freed name.
    s.append(
        &[event("node", "n2", 2, json!({}))],
        &[
            release("hostname", "web-1", "n2"),
            acquire("name", "web-1", "n2"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        s.claim_owner("name", "web-1").await.unwrap().as_deref(),
        Some("n2")
    );
    assert_eq!(s.claim_owner("hostname", "web-1").await.unwrap(), None);
}

async fn claims_release_all(t: &TestStore) {
    let s = &t.store;
    s.append(
        &[event("node", "n1", 1, json!({}))],
        &[
            acquire("name", "a", "n1"),
            acquire("mac", "m1", "n1"),
            acquire("mac", "m2", "n1"),
        ],
    )
    .await
    .unwrap();
    s.append(
        &[event("node", "n2", 1, json!({}))],
        &[acquire("mac", "m3", "n2")],
    )
    .await
    .unwrap();

    // One scope only: the name stays.
    s.append(
        &[event("node", "n1", 2, json!({}))],
        &[ClaimOp::ReleaseAll {
            owner: "n1".into(),
            scope: Some("mac".into()),
        }],
    )
    .await
    .unwrap();
    for key in ["m1", "m2"] {
        assert_eq!(s.claim_owner("mac", key).await.unwrap(), None, "{key}");
    }
    assert_eq!(
        s.claim_owner("name", "a").await.unwrap().as_deref(),
        Some("n1")
    );
    s.append(
        &[event("node", "n1", 3, json!({}))],
        &[
            acquire("mac", "m1", "n1"),
            ClaimOp::ReleaseAll {
                owner: "n1".into(),
                scope: None,
            },
        ],
    )
    .await
    .unwrap();
    for (scope, key) in [("name", "a"), ("mac", "m1"), ("mac", "m2")] {
        assert_eq!(s.claim_owner(scope, key).await.unwrap(), None, "{key}");
    }
    assert_eq!(
        s.claim_owner("mac", "m3").await.unwrap().as_deref(),
        Some("n2")
    );
    // The freed keys can be taken by someone else.
    s.append(
        &[event("node", "n3", 1, json!({}))],
        &[acquire("name", "a", "n3")],
    )
    .await
    .unwrap();
}

/// 16 different aggregates race for one claim: exactly one commits.
async fn claim_race_has_one_winner(t: &TestStore) {
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let s = t.store.clone();
            tokio::spawn(async move {
                let owner = format!("n{i}");
                s.append(
                    &[event("node", &owner, 1, json!({}))],
                    &[acquire("name", "contested", &owner)],
                )
                .await
            })
        })
        .collect();
    let mut winners = vec![];
    for (i, task) in tasks.into_iter().enumerate() {
        match task.await.unwrap() {
            Ok(()) => winners.push(format!("n{i}")),
            Err(StoreError::Claim(c)) => assert_eq!(c.key, "contested"),
            Err(other) => panic!("unexpected error: {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    assert_eq!(
        t.store.claim_owner("name", "contested").await.unwrap(),
        Some(winners[0].clone())
    );
    settle(&*t.store, 1).await;
    let feed = t.store.read_feed(0, 100).await.unwrap();
    assert_eq!(feed.len(), 1);
    assert_eq!(feed[0].aggregate_id, winners[0]);
}

/// 16 writers append sequence 1 to one aggregate: exactly one commits.
async fn sequence_race_has_one_winner(t: &TestStore) {
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let s = t.store.clone();
            tokio::spawn(async move {
                s.append(&[event("node", "hot", 1, json!({ "writer": i }))], &[])
                    .await
            })
        })
        .collect();
    let mut ok = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => ok += 1,
            Err(StoreError::Conflict) => {}
            Err(other) => panic!("unexpected error: {other:?}"),
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(t.store.load("node", "hot").await.unwrap().len(), 1);
    settle(&*t.store, 1).await;
}

// ---- read models ----------------------------------------------------------------

async fn commit_model_compare_and_set(t: &TestStore) {
    let s = &t.store;
    assert_eq!(s.checkpoint("nodes").await.unwrap(), 0);
    assert_eq!(s.doc_get("nodes", "n1").await.unwrap(), None);

    assert!(s
        .commit_model("nodes", 0, 3, &[put("n1", json!({"v": 1}))])
        .await
        .unwrap());
    assert_eq!(s.checkpoint("nodes").await.unwrap(), 3);
    assert_eq!(
        s.doc_get("nodes", "n1").await.unwrap(),
        Some(json!({"v": 1}))
    );

    // A stale `from` (another projector got there first): refused, nothing written.
    for stale in [0, 2, 5] {
        assert!(!s
            .commit_model(
                "nodes",
                stale,
                9,
                &[put("n1", json!({"v": 666})), put("x", json!(1))]
            )
            .await
            .unwrap());
    }
    assert_eq!(s.checkpoint("nodes").await.unwrap(), 3);
    assert_eq!(
        s.doc_get("nodes", "n1").await.unwrap(),
        Some(json!({"v": 1}))
    );
    assert_eq!(s.doc_get("nodes", "x").await.unwrap(), None);

    // Changes apply in order: the last change to an id wins.
    assert!(s
        .commit_model(
            "nodes",
            3,
            5,
            &[
                put("n2", json!({"v": 2})),
                put("n1", json!({"v": 11})),
                DocChange::Delete { id: "n2".into() },
                put("n3", json!({"v": 3})),
                DocChange::Delete { id: "n3".into() },
                put("n3", json!({"v": 33})),
                DocChange::Delete {
                    id: "never-existed".into()
                },
            ],
        )
        .await
        .unwrap());
    assert_eq!(s.checkpoint("nodes").await.unwrap(), 5);
    assert_eq!(
        s.doc_list("nodes").await.unwrap(),
        vec![
            ("n1".to_string(), json!({"v": 11})),
            ("n3".to_string(), json!({"v": 33}))
        ]
    );

    // Moving the checkpoint with no changes is fine; models are independent.
    assert!(s.commit_model("nodes", 5, 6, &[]).await.unwrap());
    assert_eq!(s.checkpoint("nodes").await.unwrap(), 6);
    assert_eq!(s.checkpoint("targets").await.unwrap(), 0);
    assert!(s.doc_list("targets").await.unwrap().is_empty());
    assert!(s
        .commit_model("targets", 0, 1, &[put("n1", json!("t"))])
        .await
        .unwrap());
    assert_eq!(
        s.doc_get("nodes", "n1").await.unwrap(),
        Some(json!({"v": 11}))
    );
    assert_eq!(s.doc_get("targets", "n1").await.unwrap(), Some(json!("t")));
}

/// 16 projectors commit the same batch from the same checkpoint: one wins.
async fn commit_model_race_has_one_winner(t: &TestStore) {
    for round in 0..2u64 {
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let s = t.store.clone();
                tokio::spawn(async move {
                    s.commit_model("race", round, round + 1, &[put("doc", json!({"by": i}))])
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut wins = 0;
        for task in tasks {
            wins += task.await.unwrap() as usize;
        }
        assert_eq!(wins, 1, "round {round}");
        assert_eq!(t.store.checkpoint("race").await.unwrap(), round + 1);
    }
}

async fn checkpoints_reads_many_models(t: &TestStore) {
    let s = &t.store;
    assert!(s.checkpoints(&[]).await.unwrap().is_empty());
    assert_eq!(s.checkpoints(&["a", "b"]).await.unwrap(), vec![0, 0]);
    assert!(s.commit_model("a", 0, 3, &[]).await.unwrap());
    assert!(s.commit_model("b", 0, 5, &[]).await.unwrap());
    // In the order asked, 0 for a model without a checkpoint.
    assert_eq!(
        s.checkpoints(&["b", "missing", "a"]).await.unwrap(),
        vec![5, 0, 3]
    );
}

fn model_commit<'a>(
    model: &'a str,
    from: u64,
    to: u64,
    changes: &'a [DocChange],
) -> ModelCommit<'a> {
    ModelCommit {
        model,
        from,
        to,
        changes,
        failures: &[],
    }
}

/// Several models commit together or not at all: one stale `from` refuses the
/// whole commit and writes nothing for any model.
async fn commit_models_is_all_or_nothing(t: &TestStore) {
    let s = &t.store;
    assert!(s.commit_models(&[]).await.unwrap());
    assert!(s
        .commit_model("nodes", 0, 3, &[put("n1", json!({"v": 1}))])
        .await
        .unwrap());

    let nodes = [put("n1", json!({"v": 2})), put("n2", json!({"v": 2}))];
    let ports = [put("p1", json!("port"))];
    let history = [put("h1", json!("entry"))];
    // Stale `from` on one model (ports is at 0, not 1; history has no row at all
    // and is not at 2); every other compare-and-set holds.
    for stale in [
        [
            model_commit("nodes", 3, 7, &nodes),
            model_commit("ports", 1, 7, &ports),
            model_commit("history", 0, 7, &history),
        ],
        [
            model_commit("nodes", 3, 7, &nodes),
            model_commit("ports", 0, 7, &ports),
            model_commit("history", 2, 7, &history),
        ],
        [
            model_commit("ports", 0, 7, &ports),
            model_commit("history", 0, 7, &history),
            model_commit("nodes", 4, 7, &nodes),
        ],
    ] {
        assert!(!s.commit_models(&stale).await.unwrap());
        assert_eq!(
            s.checkpoints(&["nodes", "ports", "history"]).await.unwrap(),
            vec![3, 0, 0]
        );
        assert_eq!(
            s.doc_list("nodes").await.unwrap(),
            vec![("n1".to_string(), json!({"v": 1}))]
        );
        assert!(s.doc_list("ports").await.unwrap().is_empty());
        assert!(s.doc_list("history").await.unwrap().is_empty());
    }

    // A model named twice is refused outright.
    assert!(s
        .commit_models(&[
            model_commit("ports", 0, 7, &ports),
            model_commit("ports", 0, 7, &ports),
        ])
        .await
        .is_err());
    assert_eq!(s.checkpoint("ports").await.unwrap(), 0);

    // All hold: every model moves and gets its documents. Models may move from
    // different checkpoints to different ones.
    assert!(s
        .commit_models(&[
            model_commit("nodes", 3, 7, &nodes),
            model_commit("ports", 0, 7, &ports),
            model_commit("history", 0, 6, &history),
        ])
        .await
        .unwrap());
    assert_eq!(
        s.checkpoints(&["nodes", "ports", "history"]).await.unwrap(),
        vec![7, 7, 6]
    );
    assert_eq!(
        s.doc_list("nodes").await.unwrap(),
        vec![
            ("n1".to_string(), json!({"v": 2})),
            ("n2".to_string(), json!({"v": 2}))
        ]
    );
    assert_eq!(s.doc_get("ports", "p1").await.unwrap(), Some(json!("port")));
    assert_eq!(
        s.doc_get("history", "h1").await.unwrap(),
        Some(json!("entry"))
    );

    // Deletes and puts across models, the last change per document winning;
    // the same id in two models is two documents.
    let nodes = [
        DocChange::Delete { id: "n1".into() },
        put("p1", json!("a node")),
        put("n2", json!({"v": 3})),
        DocChange::Delete { id: "n2".into() },
    ];
    let ports = [
        DocChange::Delete { id: "p1".into() },
        put("p1", json!("port again")),
        DocChange::Delete {
            id: "absent".into(),
        },
    ];
    assert!(s
        .commit_models(&[
            model_commit("ports", 7, 9, &ports),
            model_commit("nodes", 7, 9, &nodes),
        ])
        .await
        .unwrap());
    assert_eq!(
        s.doc_list("nodes").await.unwrap(),
        vec![("p1".to_string(), json!("a node"))]
    );
    assert_eq!(
        s.doc_list("ports").await.unwrap(),
        vec![("p1".to_string(), json!("port again"))]
    );
    assert_eq!(s.checkpoint("history").await.unwrap(), 6);
}

/// 16 projectors commit the same two models from the same checkpoints, naming
/// them in either order: per round exactly one wins, and its documents land in
/// both models together (never one model from one committer and the other from
/// another).
async fn commit_models_race_has_one_winner(t: &TestStore) {
    // Round 0 starts from models without checkpoint rows (the insert path).
    for round in 0..3u64 {
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let s = t.store.clone();
                tokio::spawn(async move {
                    let doc = [put("doc", json!({"by": i}))];
                    let (a, b) = if i % 2 == 0 { ("x", "y") } else { ("y", "x") };
                    s.commit_models(&[
                        model_commit(a, round, round + 1, &doc),
                        model_commit(b, round, round + 1, &doc),
                    ])
                    .await
                    .unwrap()
                })
            })
            .collect();
        let mut wins = 0;
        for task in tasks {
            wins += task.await.unwrap() as usize;
        }
        assert_eq!(wins, 1, "round {round}");
        assert_eq!(
            t.store.checkpoints(&["x", "y"]).await.unwrap(),
            vec![round + 1, round + 1]
        );
        assert_eq!(
            t.store.doc_get("x", "doc").await.unwrap(),
            t.store.doc_get("y", "doc").await.unwrap(),
            "round {round}: one winner writes both models"
        );
    }
}

async fn drop_model_removes_docs_and_checkpoint(t: &TestStore) {
    let s = &t.store;
    s.commit_model("nodes", 0, 4, &[put("a", json!(1)), put("b", json!(2))])
        .await
        .unwrap();
    s.commit_model("other", 0, 2, &[put("a", json!("keep"))])
        .await
        .unwrap();

    s.drop_model("nodes").await.unwrap();
    assert!(s.doc_list("nodes").await.unwrap().is_empty());
    assert_eq!(s.checkpoint("nodes").await.unwrap(), 0);
    assert_eq!(s.doc_get("other", "a").await.unwrap(), Some(json!("keep")));
    assert_eq!(s.checkpoint("other").await.unwrap(), 2);
    // Dropping a model that does not exist is fine; a dropped model starts over at 0.
    s.drop_model("nope").await.unwrap();
    assert!(s
        .commit_model("nodes", 0, 1, &[put("c", json!(3))])
        .await
        .unwrap());
    assert_eq!(
        s.doc_list("nodes").await.unwrap(),
        vec![("c".to_string(), json!(3))]
    );
}

async fn swap_model_replaces_live(t: &TestStore) {
    let s = &t.store;
    s.commit_model(
        "nodes",
        0,
        10,
        &[put("old", json!(0)), put("both", json!("live"))],
    )
    .await
    .unwrap();
    s.commit_model(
        "nodes~rebuild",
        0,
        12,
        &[put("both", json!("scratch")), put("new", json!(1))],
    )
    .await
    .unwrap();

    assert!(s.swap_model("nodes", "nodes~rebuild").await.unwrap());
    assert_eq!(
        s.doc_list("nodes").await.unwrap(),
        vec![
            ("both".to_string(), json!("scratch")),
            ("new".to_string(), json!(1)),
        ]
    );
    assert_eq!(s.checkpoint("nodes").await.unwrap(), 12);
    assert!(s.doc_list("nodes~rebuild").await.unwrap().is_empty());
    assert_eq!(s.checkpoint("nodes~rebuild").await.unwrap(), 0);

    // The live projector carries on from the swapped-in checkpoint.
    assert!(!s.commit_model("nodes", 10, 11, &[]).await.unwrap());
    assert!(s.commit_model("nodes", 12, 13, &[]).await.unwrap());

    // A scratch model that is not there (another rebuild swapped it in
    // first) changes nothing: the live model is not emptied.
    assert!(!s.swap_model("nodes", "nodes~rebuild").await.unwrap());
    assert_eq!(s.checkpoint("nodes").await.unwrap(), 13);
    assert_eq!(s.doc_list("nodes").await.unwrap().len(), 2);

    // A scratch model behind the live one is not swapped in (reads would go
    // back in time); caught up, it is.
    s.commit_model("nodes~rebuild", 0, 12, &[put("x", json!(2))])
        .await
        .unwrap();
    assert!(!s.swap_model("nodes", "nodes~rebuild").await.unwrap());
    assert_eq!(s.checkpoint("nodes").await.unwrap(), 13);
    assert_eq!(s.checkpoint("nodes~rebuild").await.unwrap(), 12);
    s.commit_model("nodes~rebuild", 12, 13, &[]).await.unwrap();
    assert!(s.swap_model("nodes", "nodes~rebuild").await.unwrap());
    assert_eq!(
        s.doc_list("nodes").await.unwrap(),
        vec![("x".to_string(), json!(2))]
    );

    // A scratch model with a checkpoint but no documents empties the live one.
    s.commit_model("empty", 0, 13, &[]).await.unwrap();
    assert!(s.swap_model("nodes", "empty").await.unwrap());
    assert!(s.doc_list("nodes").await.unwrap().is_empty());
    assert_eq!(s.checkpoint("nodes").await.unwrap(), 13);

    // A model swapped with itself is left alone.
    s.commit_model("self", 0, 1, &[put("a", json!(1))])
        .await
        .unwrap();
    assert!(s.swap_model("self", "self").await.unwrap());
    assert_eq!(s.doc_get("self", "a").await.unwrap(), Some(json!(1)));
    assert_eq!(s.checkpoint("self").await.unwrap(), 1);
}

async fn doc_list_is_in_byte_order(t: &TestStore) {
    let s = &t.store;
    let ids = [
        "b", "a10", "A", "a2", "a", "_x", "Z", "ä", "a-1", "a 1", "10", "9",
    ];
    let changes: Vec<_> = ids.iter().map(|id| put(id, json!(id))).collect();
    s.commit_model("m", 0, 1, &changes).await.unwrap();
    let listed: Vec<String> = s
        .doc_list("m")
        .await
        .unwrap()
        .into_iter()
        .map(|(id, body)| {
            assert_eq!(body, json!(id));
            id
        })
        .collect();
    let mut want: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    want.sort(); // Rust's String order is byte order.
    assert_eq!(listed, want);
}

/// `doc_prefix` gives exactly the documents whose id starts with the
/// prefix, in byte order, bounded by `limit`; neighbours on either side
/// (the same prefix without its `/`, the next byte after it, another model)
/// are left out.
async fn doc_prefix_is_one_range(t: &TestStore) {
    let s = &t.store;
    let ids = [
        "n1/0002", "n1/0001", "n1/ä", "n1", "n10/0001", "n1.x", "n10", "n0/9", "state/n1", "n1/",
    ];
    let changes: Vec<_> = ids.iter().map(|id| put(id, json!(id))).collect();
    s.commit_model("m", 0, 1, &changes).await.unwrap();
    s.commit_model("other", 0, 1, &[put("n1/0003", json!(0))])
        .await
        .unwrap();
    let ids_of = |docs: Vec<(String, serde_json::Value)>| -> Vec<String> {
        docs.into_iter()
            .map(|(id, body)| {
                assert_eq!(body, json!(id));
                id
            })
            .collect()
    };
    assert_eq!(
        ids_of(s.doc_prefix("m", "n1/", None).await.unwrap()),
        ["n1/", "n1/0001", "n1/0002", "n1/ä"]
    );
    assert_eq!(
        ids_of(s.doc_prefix("m", "n1/", Some(2)).await.unwrap()),
        ["n1/", "n1/0001"]
    );
    assert_eq!(
        ids_of(s.doc_prefix("m", "n1", None).await.unwrap()),
        ["n1", "n1.x", "n1/", "n1/0001", "n1/0002", "n1/ä", "n10", "n10/0001"]
    );
    assert!(s.doc_prefix("m", "n2/", None).await.unwrap().is_empty());
    assert!(s.doc_prefix("none", "n1/", None).await.unwrap().is_empty());
}

/// Several documents by id in one read: those that exist, of that model
/// only, in a model with a typed table (`nodes`) and one without.
async fn doc_get_many_reads_what_exists(t: &TestStore) {
    let s = &t.store;
    for model in ["nodes", "m"] {
        let changes: Vec<_> = ["a", "b", "c"]
            .iter()
            .map(|id| put(id, json!({"id": id, "model": model})))
            .collect();
        assert!(s.commit_model(model, 0, 1, &changes).await.unwrap());
    }
    assert!(s
        .commit_model("other", 0, 1, &[put("d", json!(1))])
        .await
        .unwrap());
    for model in ["nodes", "m"] {
        let ids: Vec<String> = ["c", "a", "missing", "d", "a"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let mut found = s.doc_get_many(model, &ids).await.unwrap();
        found.sort_by(|x, y| x.0.cmp(&y.0));
        found.dedup_by(|x, y| x.0 == y.0);
        assert_eq!(
            found,
            [
                ("a".to_string(), json!({"id": "a", "model": model})),
                ("c".to_string(), json!({"id": "c", "model": model})),
            ],
            "{model}"
        );
        assert!(s.doc_get_many(model, &[]).await.unwrap().is_empty());
    }
}

async fn json_round_trips(t: &TestStore) {
    let s = &t.store;
    let payload = json!({
        "NodeEnrolled": {
            "name": "web-1 ☃ \"quoted\" \\ back\nslash",
            "properties": {"capabilities": "iscsi_boot:True", "cpus": 8, "memory_mb": 65536},
            "nested": [1, 2.5, -3, null, true, false, [], {}, {"deep": [{"x": "y"}]}],
            "big": 9007199254740993u64,
            "empty": "",
        }
    });
    let metadata = json!({"user": "admin", "request_id": "req-1", "time": "2026-11-25T10:00:00Z"});
    let e = SerializedEvent {
        aggregate_id: "node/ünïcode id".into(),
        sequence: 1,
        aggregate_type: "node".into(),
        event_type: "NodeEnrolled".into(),
        event_version: "2.1".into(),
        payload: payload.clone(),
        metadata: metadata.clone(),
    };
    s.append(std::slice::from_ref(&e), &[]).await.unwrap();
    assert_eq!(
        s.load("node", "node/ünïcode id").await.unwrap(),
        vec![e.clone()]
    );
    settle(&**s, 1).await;
    let feed = s.read_feed(0, 1).await.unwrap();
    assert_eq!(feed[0].payload, payload);
    assert_eq!(feed[0].metadata, metadata);
    assert_eq!(feed[0].event_type, "NodeEnrolled");
    assert_eq!(feed[0].event_version, "2.1");
    assert_eq!(feed[0].aggregate_id, "node/ünïcode id");

    s.commit_model("m", 0, 1, &[put("doc ☃", payload.clone())])
        .await
        .unwrap();
    assert_eq!(s.doc_get("m", "doc ☃").await.unwrap(), Some(payload));
}

/// Stored JSON reads back however deeply it nests: well past serde_json's
/// 128-level parser limit, which a stored event's envelope (`{"NodeEnrolled":
/// {"extra": …}}`) pushed a client's body over, making the log unreadable.
async fn deep_json_reads_back(t: &TestStore) {
    let s = &t.store;
    let mut deep = json!("bottom");
    for _ in 0..200 {
        deep = json!([deep]);
    }
    let e = event(
        "node",
        "deep",
        1,
        json!({"NodeEnrolled": {"extra": {"x": deep}}}),
    );
    let payload = e.payload.clone();
    s.append(std::slice::from_ref(&e), &[]).await.unwrap();
    assert_eq!(s.load("node", "deep").await.unwrap(), vec![e]);
    settle(&**s, 1).await;
    assert_eq!(s.read_feed(0, 10).await.unwrap()[0].payload, payload);
    assert_eq!(
        s.load_recorded("node", "deep").await.unwrap()[0].payload,
        payload
    );

    s.commit_model("m", 0, 1, &[put("deep", payload.clone())])
        .await
        .unwrap();
    assert_eq!(s.doc_get("m", "deep").await.unwrap(), Some(payload.clone()));
    assert_eq!(
        s.doc_list("m").await.unwrap(),
        vec![("deep".into(), payload)]
    );
}

fn apply_failure(model: &str, position: u64, aggregate_id: &str) -> ApplyFailure {
    ApplyFailure {
        model: model.into(),
        position,
        aggregate_type: "node".into(),
        aggregate_id: aggregate_id.into(),
        event_type: "NodeEnrolled".into(),
        error: format!("cannot decode the event at position {position}"),
        failed_at: chrono::Utc::now(),
    }
}

/// Failures are written with the checkpoint that moves past them (all or
/// nothing), replaced by a swap, gone with a drop; recorded and cleared by
/// aggregate outside a checkpoint move.
async fn failures_are_kept_with_their_model(t: &TestStore) {
    let s = &t.store;
    assert!(s.failures(&[]).await.unwrap().is_empty());
    let live = [apply_failure("live", 1, "a"), apply_failure("live", 2, "a")];
    let commit = |model, from, to, failures| ModelCommit {
        model,
        from,
        to,
        changes: &[],
        failures,
    };
    // A refused compare-and-set records nothing.
    assert!(!s
        .commit_models(&[commit("live", 5, 6, &live[..])])
        .await
        .unwrap());
    assert!(s.failures(&["live"]).await.unwrap().is_empty());
    assert!(s
        .commit_models(&[commit("live", 0, 2, &live[..]), commit("other", 0, 2, &[])])
        .await
        .unwrap());
    let listed = s.failures(&["live"]).await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|f| (f.model.as_str(), f.position))
            .collect::<Vec<_>>(),
        vec![("live", 1), ("live", 2)]
    );
    assert_eq!(listed[0].error, live[0].error);
    assert_eq!(listed[0].aggregate_id, "a");
    // Microseconds survive the store.
    let micros = |f: &ApplyFailure| f.failed_at.timestamp_micros();
    assert_eq!(micros(&listed[0]), micros(&live[0]));
    assert!(s.failures(&["other"]).await.unwrap().is_empty());
    assert_eq!(s.failures(&[]).await.unwrap().len(), 2);

    // A rebuilt model brings its own failures (here: one, elsewhere).
    let scratch = [apply_failure("live~rebuild", 2, "b")];
    assert!(s
        .commit_models(&[commit("live~rebuild", 0, 2, &scratch[..])])
        .await
        .unwrap());
    assert!(s.swap_model("live", "live~rebuild").await.unwrap());
    let listed = s.failures(&["live"]).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].model.as_str(), listed[0].aggregate_id.as_str()),
        ("live", "b")
    );
    assert!(s.failures(&["live~rebuild"]).await.unwrap().is_empty());

    // Outside a checkpoint move: recorded (replacing the same position), cleared.
    let mut pm = apply_failure("pm", 7, "c");
    s.record_failure(&pm).await.unwrap();
    pm.error = "still unreadable".into();
    s.record_failure(&pm).await.unwrap();
    let listed = s.failures(&["pm"]).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].error, "still unreadable");
    s.clear_failures("pm", "node", "other").await.unwrap();
    assert_eq!(s.failures(&["pm"]).await.unwrap().len(), 1);
    s.clear_failures("pm", "node", "c").await.unwrap();
    assert!(s.failures(&["pm"]).await.unwrap().is_empty());

    s.drop_model("live").await.unwrap();
    assert!(s.failures(&[]).await.unwrap().is_empty());
}

/// Numbers at the ends of f64's range come back as they went in. PostgreSQL's
/// `jsonb` keeps numbers as decimals and writes `-1.7976931348623157e308` out
/// as 309 digits; read without exact float parsing that overflowed ("number
/// out of range"), so one such value in a target's `extra` (found by the
/// OpenAPI fuzzer) was committed and then stopped the process manager and
/// every reader of the log.
async fn extreme_numbers_round_trip(t: &TestStore) {
    let s = &t.store;
    let payload = json!({"Happened": {"extra": {
        "max": f64::MAX, "min": f64::MIN, "tiny": f64::MIN_POSITIVE,
        "subnormal": 5e-324, "e308": 1e308, "neg_tiny": -7.276728457457684e-83,
    }}});
    let mut e = event("node", "n1", 1, json!(null));
    e.payload = payload.clone();
    s.append(std::slice::from_ref(&e), &[]).await.unwrap();
    assert_eq!(s.load("node", "n1").await.unwrap(), vec![e]);
    settle(&**s, 1).await;
    assert_eq!(s.read_feed(0, 1).await.unwrap()[0].payload, payload);
    s.commit_model("m", 0, 1, &[put("d", payload.clone())])
        .await
        .unwrap();
    assert_eq!(s.doc_get("m", "d").await.unwrap(), Some(payload));
}

async fn recorded_at_is_set(t: &TestStore) {
    let s = &t.store;
    let before = chrono::Utc::now();
    for i in 1..=3 {
        s.append(&[event("node", "n", i, json!({}))], &[])
            .await
            .unwrap();
    }
    let after = chrono::Utc::now();
    settle(&**s, 3).await;
    let feed = s.read_feed(0, 10).await.unwrap();
    let slack = chrono::Duration::seconds(5);
    for e in &feed {
        assert!(
            e.recorded_at >= before - slack && e.recorded_at <= after + slack,
            "{} not in [{before}, {after}]",
            e.recorded_at
        );
    }
    // Sequential commits: recorded in order, with sub-second precision kept.
    assert!(feed
        .windows(2)
        .all(|w| w[0].recorded_at <= w[1].recorded_at));
    assert!(feed
        .iter()
        .any(|e| e.recorded_at.timestamp_subsec_micros() != 0));
}

// ---- typed read-model tables (store::rows) ----------------------------------------

fn keyed(id: &str, body: serde_json::Value, keys: Keys) -> DocChange {
    DocChange::Put {
        id: id.into(),
        body,
        keys,
    }
}

/// A page query with only the parts a test cares about.
fn query<'a>(conds: &'a [Cond], sort: Option<&'static str>, desc: bool) -> PageQuery<'a> {
    PageQuery {
        conds,
        sort,
        desc,
        after: None,
        limit: 100,
    }
}

async fn page_ids(t: &TestStore, model: &str, q: &PageQuery<'_>) -> Vec<String> {
    let docs = t.store.doc_page(model, q).await.unwrap();
    let rows = t.store.row_ids(model, q).await.unwrap();
    let ids: Vec<String> = docs.iter().map(|(id, _)| id.clone()).collect();
    // row_ids answers the same rows, with their ord from the document.
    assert_eq!(
        rows,
        docs.iter()
            .map(|(id, body)| (id.clone(), body["ord"].as_i64().unwrap()))
            .collect::<Vec<_>>(),
        "{model} {q:?}"
    );
    ids
}

/// Every column of every typed table is written through `commit_models` and
/// read back through conditions and sorts: the check that `rows::TABLES`
/// (and `rows::INT_COLUMNS`) matches the schema of each SQL backend.
async fn every_typed_column_is_written_and_queried(t: &TestStore) {
    let s = &t.store;
    for table in rows::TABLES {
        // "a" and "b" have every column; the integers and the text of "b"
        // sort first (9 < 10: a text column would sort "10" first); "c" has
        // only its ord.
        let value = |col: &'static str, doc: &str| match (rows::is_int(col), doc) {
            (true, "a") => Key::Int(10),
            (true, _) => Key::Int(9),
            (false, "a") => Key::text(format!("{col}-b")),
            (false, _) => Key::text(format!("{col}-a")),
        };
        let all =
            |doc: &str| -> Keys { table.columns.iter().map(|c| (*c, value(c, doc))).collect() };
        let changes = [
            keyed("a", json!({"doc": "a", "ord": 10}), all("a")),
            keyed("b", json!({"doc": "b", "ord": 9}), all("b")),
            keyed(
                "c",
                json!({"doc": "c", "ord": 3}),
                vec![("ord", Key::Int(3))],
            ),
        ];
        assert!(s.commit_model(table.model, 0, 1, &changes).await.unwrap());
        assert_eq!(
            s.doc_get(table.model, "a").await.unwrap(),
            Some(json!({"doc": "a", "ord": 10}))
        );
        // row_keys hands back each column's value as it was written, typed
        // (integers as integers), and NULL where a row has none.
        let keys = s
            .row_keys(table.model, &query(&[], None, false), table.columns)
            .await
            .unwrap();
        let want = |doc: &str| -> Vec<Key> {
            table
                .columns
                .iter()
                .map(|&c| match (doc, c) {
                    ("c", "ord") => Key::Int(3),
                    ("c", _) => Key::Null,
                    _ => value(c, doc),
                })
                .collect()
        };
        assert_eq!(
            keys,
            [
                ("c".to_string(), want("c")),
                ("b".to_string(), want("b")),
                ("a".to_string(), want("a")),
            ],
            "{}",
            table.table
        );
        for &col in table.columns {
            let what = format!("{}.{col}", table.table);
            let eq = [Cond::Eq(col, value(col, "a"))];
            assert_eq!(
                page_ids(t, table.model, &query(&eq, None, false)).await,
                ["a"],
                "{what}"
            );
            let null = [Cond::IsNull(col)];
            let not_null = [Cond::NotNull(col)];
            let (nulls, values): (&[&str], &[&str]) = match col {
                "ord" => (&[], &["c", "b", "a"]),
                _ => (&["c"], &["b", "a"]),
            };
            assert_eq!(
                page_ids(t, table.model, &query(&null, None, false)).await,
                nulls,
                "{what}"
            );
            assert_eq!(
                page_ids(t, table.model, &query(&not_null, None, false)).await,
                values,
                "{what}"
            );
            // Sorted by the column: NULLs first, then 9 before 10 ("…-a"
            // before "…-b"); the other way round descending.
            let asc: Vec<&str> = nulls.iter().chain(values).copied().collect();
            assert_eq!(
                page_ids(t, table.model, &query(&[], Some(col), false)).await,
                asc,
                "{what}"
            );
            let desc: Vec<&str> = asc.iter().rev().copied().collect();
            assert_eq!(
                page_ids(t, table.model, &query(&[], Some(col), true)).await,
                desc,
                "{what}"
            );
            if !rows::is_int(col) {
                let part = [Cond::Contains(col, "-a".into())];
                assert_eq!(
                    page_ids(t, table.model, &query(&part, None, false)).await,
                    ["b"],
                    "{what}"
                );
            }
        }
        // Rewriting a document without a key makes that column NULL.
        assert!(s
            .commit_model(
                table.model,
                1,
                2,
                &[keyed(
                    "a",
                    json!({"doc": "a", "ord": 10}),
                    vec![("ord", Key::Int(10))]
                )]
            )
            .await
            .unwrap());
        let col = table.columns[1];
        let null = [Cond::IsNull(col)];
        assert_eq!(
            page_ids(t, table.model, &query(&null, None, false)).await,
            ["c", "a"],
            "{}.{col}",
            table.table
        );
        // Rows whose writes change different columns, in one commit: each
        // row gets its new values and keeps the others.
        let col = table.columns[1];
        let mut b_keys = all("b");
        b_keys[1].1 = value(col, "a");
        let c_keys = vec![("ord", Key::Int(3)), (col, value(col, "b"))];
        assert!(s
            .commit_model(
                table.model,
                2,
                3,
                &[
                    keyed("b", json!({"doc": "b2", "ord": 9}), b_keys.clone()),
                    keyed("c", json!({"doc": "c2", "ord": 3}), c_keys.clone()),
                ]
            )
            .await
            .unwrap());
        let keys = s
            .row_keys(table.model, &query(&[], None, false), table.columns)
            .await
            .unwrap();
        let in_order = |given: &Keys| -> Vec<Key> {
            table
                .columns
                .iter()
                .map(|c| {
                    given
                        .iter()
                        .find(|(k, _)| k == c)
                        .map_or(Key::Null, |(_, v)| v.clone())
                })
                .collect()
        };
        assert_eq!(
            keys,
            [
                ("c".to_string(), in_order(&c_keys)),
                ("b".to_string(), in_order(&b_keys)),
                ("a".to_string(), in_order(&vec![("ord", Key::Int(10))])),
            ],
            "{}",
            table.table
        );
        assert_eq!(
            s.doc_get(table.model, "b").await.unwrap(),
            Some(json!({"doc": "b2", "ord": 9}))
        );
        // Deletes reach the typed table.
        assert!(s
            .commit_model(table.model, 3, 4, &[DocChange::Delete { id: "c".into() }])
            .await
            .unwrap());
        assert_eq!(
            page_ids(t, table.model, &query(&[], None, false)).await,
            ["b", "a"]
        );
        assert_eq!(s.doc_get(table.model, "c").await.unwrap(), None);
    }
}

/// One row of the paging test: its nullable, duplicated sort value and its
/// ord (unique, not in id order).
fn paging_rows() -> Vec<(String, Option<String>, i64, &'static str)> {
    (0..50)
        .map(|i: i64| {
            let name = match i % 5 {
                0 => None,
                _ => Some(format!("n{}", (i * 7) % 6)),
            };
            let driver = if i % 3 == 0 { "ipmi" } else { "redfish" };
            (format!("node-{i:02}"), name, (i * 37) % 50 + 1, driver)
        })
        .collect()
}

/// Walks a query page by page (limit 7) through the keyset cursor, by
/// `doc_page` and by `row_ids`, and checks both against `want` (ids).
async fn walk(
    t: &TestStore,
    conds: &[Cond],
    sort: Option<&'static str>,
    desc: bool,
    want: &[String],
) {
    let mut q = PageQuery {
        conds,
        sort,
        desc,
        after: None,
        limit: 7,
    };
    let mut seen = vec![];
    loop {
        let page = t.store.doc_page("nodes", &q).await.unwrap();
        let ids = t.store.row_ids("nodes", &q).await.unwrap();
        assert_eq!(
            ids,
            page.iter()
                .map(|(id, b)| (id.clone(), b["ord"].as_i64().unwrap()))
                .collect::<Vec<_>>()
        );
        assert!(page.len() <= 7);
        let Some((_, last)) = page.last() else { break };
        let value = match sort {
            Some(col) => Key::opt_text(last[col].as_str()),
            None => Key::Null,
        };
        q.after = Some((value, last["ord"].as_i64().unwrap()));
        seen.extend(page.into_iter().map(|(id, _)| id));
        assert!(seen.len() <= want.len(), "the walk does not end");
    }
    assert_eq!(seen, want, "sort {sort:?} desc {desc} conds {conds:?}");
}

/// Keyset paging over a nullable sort column with NULLs and duplicates, both
/// ways, with and without a condition, and by `ord` alone: the pages put
/// together are the order computed here (NULLs first ascending, last
/// descending, ties by ord).
async fn keyset_pages_walk_the_whole_order(t: &TestStore) {
    let rows = paging_rows();
    let changes: Vec<DocChange> = rows
        .iter()
        .map(|(id, name, ord, driver)| {
            keyed(
                id,
                json!({"name": name, "ord": ord, "driver": driver}),
                vec![
                    ("ord", Key::Int(*ord)),
                    ("name", Key::opt_text(name.clone())),
                    ("driver", Key::text(*driver)),
                ],
            )
        })
        .collect();
    assert!(t.store.commit_model("nodes", 0, 1, &changes).await.unwrap());
    // Noise the model condition must keep out.
    t.store
        .commit_model("nodes~other", 0, 1, &changes[..10])
        .await
        .unwrap();

    let ipmi = [Cond::Eq("driver", Key::text("ipmi"))];
    for conds in [&[][..], &ipmi[..]] {
        let mut chosen: Vec<_> = rows
            .iter()
            .filter(|r| conds.is_empty() || r.3 == "ipmi")
            .collect();
        // Option orders None first, String by bytes: SQL's ascending order.
        chosen.sort_by(|a, b| (&a.1, a.2).cmp(&(&b.1, b.2)));
        let asc: Vec<String> = chosen.iter().map(|r| r.0.clone()).collect();
        let desc: Vec<String> = asc.iter().rev().cloned().collect();
        walk(t, conds, Some("name"), false, &asc).await;
        walk(t, conds, Some("name"), true, &desc).await;

        chosen.sort_by_key(|r| r.2);
        let by_ord: Vec<String> = chosen.iter().map(|r| r.0.clone()).collect();
        let back: Vec<String> = by_ord.iter().rev().cloned().collect();
        walk(t, conds, None, false, &by_ord).await;
        walk(t, conds, None, true, &back).await;
    }
}

/// Each kind of condition, alone and together.
async fn page_conditions_filter(t: &TestStore) {
    let node =
        |id: &str, ord: i64, owner: Option<&str>, lessee: Option<&str>, desc: Option<&str>| {
            keyed(
                id,
                json!({"ord": ord}),
                vec![
                    ("ord", Key::Int(ord)),
                    ("owner", Key::opt_text(owner)),
                    ("lessee", Key::opt_text(lessee)),
                    ("description", Key::opt_text(desc)),
                    ("maintenance", Key::bool(ord % 2 == 0)),
                ],
            )
        };
    let changes = [
        node("n1", 1, Some("p1"), None, Some("Rack 12, row B")),
        node("n2", 2, Some("p2"), Some("p1"), Some("rack 3")),
        node("n3", 3, None, Some("p3"), None),
        node("n4", 4, None, None, Some("")),
    ];
    assert!(t.store.commit_model("nodes", 0, 1, &changes).await.unwrap());
    let ids =
        |conds: Vec<Cond>| async move { page_ids(t, "nodes", &query(&conds, None, false)).await };
    assert_eq!(ids(vec![Cond::Eq("owner", Key::text("p1"))]).await, ["n1"]);
    // Eq with NULL matches nothing, not the NULLs.
    assert!(ids(vec![Cond::Eq("owner", Key::Null)]).await.is_empty());
    assert_eq!(ids(vec![Cond::IsNull("owner")]).await, ["n3", "n4"]);
    assert_eq!(ids(vec![Cond::NotNull("lessee")]).await, ["n2", "n3"]);
    // Case-sensitive containment; the empty text is contained in every text.
    assert_eq!(
        ids(vec![Cond::Contains("description", "Rack".into())]).await,
        ["n1"]
    );
    assert_eq!(
        ids(vec![Cond::Contains("description", "ack".into())]).await,
        ["n1", "n2"]
    );
    assert_eq!(
        ids(vec![Cond::Contains("description", "".into())]).await,
        ["n1", "n2", "n4"]
    );
    let project = |p: &str| {
        Cond::Any(vec![
            Cond::Eq("owner", Key::text(p)),
            Cond::Eq("lessee", Key::text(p)),
        ])
    };
    assert_eq!(ids(vec![project("p1")]).await, ["n1", "n2"]);
    assert_eq!(ids(vec![project("p3")]).await, ["n3"]);
    assert!(ids(vec![Cond::Any(vec![])]).await.is_empty());
    // Conditions are a conjunction.
    assert_eq!(
        ids(vec![
            project("p1"),
            Cond::Eq("maintenance", Key::bool(true))
        ])
        .await,
        ["n2"]
    );
    assert_eq!(
        ids(vec![
            Cond::Any(vec![
                Cond::IsNull("owner"),
                Cond::Contains("description", "12".into())
            ]),
            Cond::Eq("maintenance", Key::bool(false)),
        ])
        .await,
        ["n1", "n3"]
    );
    // A model without a typed table, or a column its table lacks, is refused.
    assert!(t
        .store
        .doc_page("process_manager", &query(&[], None, false))
        .await
        .is_err());
    let bad = [Cond::IsNull("address")];
    assert!(t
        .store
        .row_ids("nodes", &query(&bad, None, false))
        .await
        .is_err());
}

/// A rebuild's scratch model lives in the typed table: queried apart from the
/// live one, swapped in with its keys, dropped with them.
async fn scratch_models_swap_and_drop_with_their_keys(t: &TestStore) {
    let s = &t.store;
    let state = |id: &str, ord: i64, state: &str| {
        keyed(
            id,
            json!({"ord": ord, "state": state}),
            vec![
                ("ord", Key::Int(ord)),
                ("provision_state", Key::text(state)),
            ],
        )
    };
    s.commit_model(
        "nodes",
        0,
        5,
        &[state("old", 1, "active"), state("both", 2, "active")],
    )
    .await
    .unwrap();
    s.commit_model(
        "nodes~rebuild",
        0,
        6,
        &[state("both", 2, "available"), state("new", 3, "active")],
    )
    .await
    .unwrap();
    let active = [Cond::Eq("provision_state", Key::text("active"))];
    assert_eq!(
        page_ids(t, "nodes", &query(&active, None, false)).await,
        ["old", "both"]
    );
    assert_eq!(
        page_ids(t, "nodes~rebuild", &query(&active, None, false)).await,
        ["new"]
    );

    assert!(s.swap_model("nodes", "nodes~rebuild").await.unwrap());
    assert_eq!(
        page_ids(t, "nodes", &query(&active, None, false)).await,
        ["new"]
    );
    let available = [Cond::Eq("provision_state", Key::text("available"))];
    assert_eq!(
        page_ids(t, "nodes", &query(&available, None, false)).await,
        ["both"]
    );
    assert_eq!(
        page_ids(t, "nodes", &query(&[], Some("provision_state"), true)).await,
        ["both", "new"]
    );
    assert!(page_ids(t, "nodes~rebuild", &query(&[], None, false))
        .await
        .is_empty());
    assert_eq!(s.doc_get("nodes", "old").await.unwrap(), None);
    assert_eq!(s.checkpoint("nodes").await.unwrap(), 6);

    // A scratch model from the generic table: its documents move, without keys.
    s.commit_model("plain", 0, 7, &[put("p", json!({"ord": 0}))])
        .await
        .unwrap();
    assert!(s.swap_model("nodes", "plain").await.unwrap());
    assert_eq!(
        s.doc_list("nodes").await.unwrap(),
        vec![("p".to_string(), json!({"ord": 0}))]
    );
    assert_eq!(page_ids(t, "nodes", &query(&[], None, false)).await, ["p"]);
    assert!(s.doc_list("plain").await.unwrap().is_empty());

    s.commit_model("nodes~x", 0, 1, &[state("x", 1, "active")])
        .await
        .unwrap();
    s.drop_model("nodes").await.unwrap();
    assert!(page_ids(t, "nodes", &query(&[], None, false))
        .await
        .is_empty());
    assert!(s.doc_list("nodes").await.unwrap().is_empty());
    // Dropping one model of a table leaves the others.
    assert_eq!(
        page_ids(t, "nodes~x", &query(&active, None, false)).await,
        ["x"]
    );
    s.drop_model("nodes~x").await.unwrap();
    assert!(page_ids(t, "nodes~x", &query(&[], None, false))
        .await
        .is_empty());
}

/// `doc_scan` reads a model page by page in id order, typed or generic, from
/// the very first id (the empty one too).
async fn doc_scan_pages_by_id(t: &TestStore) {
    let s = &t.store;
    let mut ids: Vec<String> = (0..23).map(|i| format!("id-{:02}", (i * 7) % 23)).collect();
    ids.push(String::new());
    for model in ["ports", "generic"] {
        let changes: Vec<DocChange> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let keys = match model {
                    "ports" => vec![("ord", Key::Int(i as i64))],
                    _ => vec![],
                };
                keyed(id, json!(id), keys)
            })
            .collect();
        assert!(s.commit_model(model, 0, 1, &changes).await.unwrap());
        s.commit_model(&format!("{model}~other"), 0, 1, &changes[..3])
            .await
            .unwrap();
        let mut seen: Vec<String> = vec![];
        let mut after: Option<String> = None;
        loop {
            let page = s.doc_scan(model, after.as_deref(), 4).await.unwrap();
            assert!(page.len() <= 4);
            let Some((last, _)) = page.last() else { break };
            after = Some(last.clone());
            for (id, body) in page {
                assert_eq!(body, json!(id));
                seen.push(id);
            }
        }
        let mut want = ids.clone();
        want.sort();
        assert_eq!(seen, want, "{model}");
        assert_eq!(
            s.doc_list(model)
                .await
                .unwrap()
                .into_iter()
                .map(|(id, _)| id)
                .collect::<Vec<_>>(),
            want
        );
    }
}

/// Keys naming a column the model's table lacks (or of the wrong type, or on
/// a model without a table) fail the whole commit: nothing is written.
async fn bad_keys_are_refused_with_nothing_written(t: &TestStore) {
    let s = &t.store;
    let good = [keyed("n1", json!({"ord": 1}), vec![("ord", Key::Int(1))])];
    let bad_commits: [(&str, Keys); 4] = [
        (
            "ports",
            vec![("ord", Key::Int(1)), ("no_such_column", Key::Null)],
        ),
        ("ports", vec![("name; DROP TABLE events", Key::Null)]),
        ("ports", vec![("ord", Key::text("1"))]),
        ("generic", vec![("ord", Key::Int(1))]),
    ];
    for (model, keys) in bad_commits {
        let bad = [keyed("p1", json!(2), keys.clone())];
        let result = s
            .commit_models(&[
                ModelCommit {
                    model: "nodes",
                    from: 0,
                    to: 1,
                    changes: &good,
                    failures: &[],
                },
                ModelCommit {
                    model,
                    from: 0,
                    to: 1,
                    changes: &bad,
                    failures: &[],
                },
            ])
            .await;
        assert!(result.is_err(), "{model} {keys:?}");
        assert_eq!(s.checkpoints(&["nodes", model]).await.unwrap(), [0, 0]);
        assert!(s.doc_list("nodes").await.unwrap().is_empty());
        assert!(s.doc_list(model).await.unwrap().is_empty());
    }
    // The schema is still whole, and a good commit goes through.
    assert!(s.commit_model("nodes", 0, 1, &good).await.unwrap());
    assert_eq!(
        page_ids(t, "nodes", &query(&[], None, false)).await.len(),
        1
    );
}

// ---- the cqrs-es bridge ---------------------------------------------------------

/// A tiny aggregate: a counter with a unique name.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Counter {
    name: Option<String>,
    count: u64,
}

enum CounterCommand {
    Name(String),
    Add(u64),
    /// Records a [`CounterEvent::Lopsided`].
    Lopside,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum CounterEvent {
    Named {
        name: String,
    },
    Added {
        n: u64,
    },
    /// An event whose stored form its own type cannot read back.
    Lopsided {
        l: Lopsided,
    },
}

/// Written as a number, read only from a string: a domain bug the bridge
/// must catch before it reaches the log.
#[derive(Debug, Clone, PartialEq)]
struct Lopsided;

impl Serialize for Lopsided {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(1)
    }
}

impl<'de> Deserialize<'de> for Lopsided {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|_| Lopsided)
    }
}

impl DomainEvent for CounterEvent {
    fn event_type(&self) -> String {
        match self {
            Self::Named { .. } => "Named",
            Self::Added { .. } => "Added",
            Self::Lopsided { .. } => "Lopsided",
        }
        .to_string()
    }
    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct CounterError(String);

#[derive(Default)]
struct CounterServices {
    /// When set, every command waits here after loading and before committing,
    /// so that all racers load the same state: a deterministic optimistic race.
    barrier: Option<Arc<Barrier>>,
}

impl Aggregate for Counter {
    const TYPE: &'static str = "counter";
    type Command = CounterCommand;
    type Event = CounterEvent;
    type Error = CounterError;
    type Services = CounterServices;

    async fn handle(
        &mut self,
        command: CounterCommand,
        services: &CounterServices,
        sink: &EventSink<Self>,
    ) -> Result<(), CounterError> {
        if let Some(barrier) = &services.barrier {
            barrier.wait().await;
        }
        match command {
            CounterCommand::Name(name) => {
                if self.name.is_some() {
                    return Err(CounterError("already named".into()));
                }
                sink.write(CounterEvent::Named { name }, self).await;
            }
            CounterCommand::Add(n) => sink.write(CounterEvent::Added { n }, self).await,
            CounterCommand::Lopside => {
                sink.write(CounterEvent::Lopsided { l: Lopsided }, self)
                    .await
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: CounterEvent) {
        match event {
            CounterEvent::Named { name } => self.name = Some(name),
            CounterEvent::Added { n } => self.count += n,
            CounterEvent::Lopsided { .. } => {}
        }
    }
}

/// Counter names are unique: a `Named` event claims ("counter-name", name).
fn counter_claims() -> ClaimFn {
    Arc::new(|e: &SerializedEvent| match e.event_type.as_str() {
        "Named" => vec![ClaimOp::Acquire {
            scope: "counter-name".into(),
            key: e.payload["Named"]["name"]
                .as_str()
                .unwrap_or_default()
                .into(),
            owner: e.aggregate_id.clone(),
        }],
        _ => vec![],
    })
}

fn framework(
    t: &TestStore,
    services: CounterServices,
) -> CqrsFramework<Counter, ironledger::store::Store<Counter>> {
    CqrsFramework::new(event_store(t.repo(counter_claims())), vec![], services)
}

async fn bridge_commands_persist_and_reload(t: &TestStore) {
    let cqrs = framework(t, CounterServices::default());
    cqrs.execute("c1", CounterCommand::Name("first".into()))
        .await
        .unwrap();
    cqrs.execute("c1", CounterCommand::Add(2)).await.unwrap();
    let metadata = HashMap::from([("user".to_string(), "alice".to_string())]);
    cqrs.execute_with_metadata("c1", CounterCommand::Add(3), metadata)
        .await
        .unwrap();
    // A rejected command writes nothing.
    let err = cqrs
        .execute("c1", CounterCommand::Name("second".into()))
        .await
        .unwrap_err();
    assert!(matches!(err, AggregateError::UserError(_)), "{err:?}");

    // Reload through a fresh store.
    let store = event_store::<Counter>(t.repo(counter_claims()));
    let context = store.load_aggregate("c1").await.unwrap();
    assert_eq!(context.aggregate.name.as_deref(), Some("first"));
    assert_eq!(context.aggregate.count, 5);
    let events = store.load_events("c1").await.unwrap();
    assert_eq!(
        events.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(events[2].payload, CounterEvent::Added { n: 3 });
    assert_eq!(events[2].metadata["user"], "alice");

    // And the same events are in the feed, as the projections will see them.
    settle(&*t.store, 3).await;
    let feed = t.store.read_feed(0, 10).await.unwrap();
    assert_eq!(feed[0].aggregate_type, "counter");
    assert_eq!(feed[0].event_type, "Named");
    assert_eq!(feed[0].payload, json!({"Named": {"name": "first"}}));
    assert_eq!(
        t.store.claim_owner("counter-name", "first").await.unwrap(),
        Some("c1".into())
    );
}

async fn bridge_concurrent_commands_conflict(t: &TestStore) {
    const RACERS: usize = 16;
    let cqrs = Arc::new(framework(
        t,
        CounterServices {
            barrier: Some(Arc::new(Barrier::new(RACERS))),
        },
    ));
    let tasks: Vec<_> = (0..RACERS)
        .map(|_| {
            let cqrs = cqrs.clone();
            tokio::spawn(async move { cqrs.execute("hot", CounterCommand::Add(1)).await })
        })
        .collect();
    let (mut ok, mut conflicts) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => ok += 1,
            Err(AggregateError::AggregateConflict) => conflicts += 1,
            Err(other) => panic!("unexpected error: {other:?}"),
        }
    }
    assert_eq!((ok, conflicts), (1, RACERS - 1));
    let store = event_store::<Counter>(t.repo(counter_claims()));
    assert_eq!(
        store.load_aggregate("hot").await.unwrap().aggregate.count,
        1
    );
}

/// An event that would not read back is never appended: the command fails
/// with [`unreadable`] and the log is as before.
async fn bridge_refuses_an_event_that_does_not_read_back(t: &TestStore) {
    let cqrs = framework(t, CounterServices::default());
    cqrs.execute("c1", CounterCommand::Name("first".into()))
        .await
        .unwrap();
    let err = cqrs
        .execute("c1", CounterCommand::Lopside)
        .await
        .unwrap_err();
    let why = unreadable(&err).unwrap_or_else(|| panic!("not refused as unreadable: {err:?}"));
    assert_eq!(why.event_type, "Lopsided");
    assert_eq!(t.store.load("counter", "c1").await.unwrap().len(), 1);
    settle(&*t.store, 1).await;
    assert_eq!(t.store.head().await.unwrap(), 1);
    // The aggregate still works.
    cqrs.execute("c1", CounterCommand::Add(1)).await.unwrap();
}

async fn bridge_claims_reject_duplicates(t: &TestStore) {
    let cqrs = framework(t, CounterServices::default());
    cqrs.execute("c1", CounterCommand::Name("taken".into()))
        .await
        .unwrap();
    let err = cqrs
        .execute("c2", CounterCommand::Name("taken".into()))
        .await
        .unwrap_err();
    let conflict = claim_conflict(&err).unwrap_or_else(|| panic!("not a claim conflict: {err:?}"));
    assert_eq!(conflict.owner, "c1");
    assert_eq!(conflict.key, "taken");
    assert!(t.store.load("counter", "c2").await.unwrap().is_empty());
    // c2 can take another name.
    cqrs.execute("c2", CounterCommand::Name("free".into()))
        .await
        .unwrap();
}

// ---- migrating a database written before the typed tables ---------------------

/// Rows a database of the previous schema may hold: documents, checkpoints
/// and failures of typed models (live and scratch) and of an untyped one.
/// Plain SQL both dialects read.
const BEFORE_TYPED_TABLES: &str = "\
    INSERT INTO read_models (model, id, body) VALUES \
      ('nodes', 'n1', '{\"name\": \"web\"}'), ('nodes~rebuild', 'n1', '{}'), \
      ('ports', 'p1', '{}'), ('node_history', 'n1/1', '{}'), \
      ('process_manager', 'state', '{\"kept\": true}'), ('nodesque', 'x', '{}'); \
    INSERT INTO checkpoints (model, position) VALUES \
      ('nodes', 5), ('nodes~rebuild', 4), ('ports', 5), ('node_history', 5), \
      ('process_manager', 5), ('nodesque', 5); \
    INSERT INTO projection_failures \
      (model, position, aggregate_type, aggregate_id, event_type, error, failed_at) VALUES \
      ('nodes', 3, 'node', 'n1', 'E', 'bad', '2026-11-25T10:00:00.000000Z'), \
      ('process_manager', 3, 'node', 'n1', 'E', 'bad', '2026-11-25T10:00:00.000000Z');";

/// After the migration: the typed models are gone, checkpoints and failures
/// with them (the projector rebuilds them from the log); the others are kept.
async fn typed_models_were_reset(s: &dyn ironledger::store::LogStore) {
    for model in ["nodes", "nodes~rebuild", "ports", "node_history"] {
        assert!(s.doc_list(model).await.unwrap().is_empty(), "{model}");
        assert_eq!(s.checkpoint(model).await.unwrap(), 0, "{model}");
    }
    assert_eq!(
        s.doc_get("process_manager", "state").await.unwrap(),
        Some(json!({"kept": true}))
    );
    assert_eq!(s.doc_list("nodesque").await.unwrap().len(), 1);
    assert_eq!(
        s.checkpoints(&["process_manager", "nodesque"])
            .await
            .unwrap(),
        [5, 5]
    );
    let failures = s.failures(&[]).await.unwrap();
    assert_eq!(
        failures
            .iter()
            .map(|f| f.model.as_str())
            .collect::<Vec<_>>(),
        ["process_manager"]
    );
    // And the typed tables take keyed rows.
    assert!(s
        .commit_model(
            "nodes",
            0,
            1,
            &[keyed("n1", json!({}), vec![("name", Key::text("web"))])]
        )
        .await
        .unwrap());
    let by_name = [Cond::Eq("name", Key::text("web"))];
    assert_eq!(
        s.doc_page("nodes", &query(&by_name, None, false))
            .await
            .unwrap()
            .len(),
        1
    );
}

// ---- every page a single index range -------------------------------------------

/// One page shape per index column of every typed table, both directions,
/// with and without a cursor and as a condition: the statements whose plans
/// the backend-specific tests below check (each must read an index in its
/// order, never sort the model). `description` has no index (it is only ever
/// searched by containment).
struct PlanCase {
    what: String,
    table: &'static rows::Table,
    conds: Vec<Cond>,
    sort: Option<&'static str>,
    desc: bool,
    after: Option<(Key, i64)>,
}

impl PlanCase {
    fn all() -> Vec<PlanCase> {
        let mut out = vec![];
        for table in rows::TABLES {
            for &col in table.columns.iter().filter(|c| **c != "description") {
                let v = if rows::is_int(col) {
                    Key::Int(1)
                } else {
                    Key::text("x")
                };
                let shapes = [
                    (vec![], Some(col), false, None),
                    (vec![], Some(col), true, None),
                    (vec![], Some(col), false, Some((v.clone(), 5))),
                    (vec![], Some(col), true, Some((Key::Null, 5))),
                    // The two-range keysets.
                    (vec![], Some(col), false, Some((Key::Null, 5))),
                    (vec![], Some(col), true, Some((v.clone(), 5))),
                    (
                        vec![Cond::Eq(col, v.clone())],
                        None,
                        false,
                        Some((Key::Null, 5)),
                    ),
                    (vec![Cond::Eq(col, v.clone())], None, true, None),
                ];
                for (conds, sort, desc, after) in shapes {
                    out.push(PlanCase {
                        what: format!(
                            "{}: {conds:?} sort {sort:?} desc {desc} after {after:?}",
                            table.table
                        ),
                        table,
                        conds,
                        sort,
                        desc,
                        after,
                    });
                }
            }
        }
        out
    }

    fn sql(&self, dialect: rows::Dialect) -> rows::Sql {
        let q = PageQuery {
            conds: &self.conds,
            sort: self.sort,
            desc: self.desc,
            after: self.after.clone(),
            limit: 10,
        };
        rows::page_select(self.table, self.table.model, &["id", "body"], &q, dialect)
    }
}

// ---- backend-specific ----------------------------------------------------------

mod postgres_only {
    use crate::common::{self, event, settle};
    use ironledger::store::Key;
    use ironledger::store::{open, DatabaseUrl, PostgresStore};
    use serde_json::json;

    /// Several processes starting at once on an empty database: each migration
    /// runs exactly once and every start succeeds.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_migrations_apply_once() {
        let (pool, _schema) = common::postgres_schema(8).await;
        let starts: Vec<_> = (0..4)
            .map(|_| tokio::spawn(PostgresStore::from_pool(pool.clone())))
            .collect();
        for start in starts {
            start.await.unwrap().expect("migrate");
        }
        let versions: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM schema_migrations ORDER BY version")
                .fetch_all(&pool)
                .await
                .unwrap();
        // One version per file in schema/postgres, numbered from 1.
        let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/schema/postgres"))
            .unwrap()
            .filter(|f| {
                f.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|e| e == "sql")
            })
            .count() as i64;
        assert_eq!(versions, (1..=files).collect::<Vec<i64>>());
        // And again later: nothing to do.
        PostgresStore::from_pool(pool.clone()).await.unwrap();
    }

    /// `open` with a `[database] connection` URL, as the service starts.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn open_from_url() {
        let (_pool, schema) = common::postgres_schema(1).await;
        let base = common::test_url();
        let sep = if base.contains('?') { '&' } else { '?' };
        // SQLAlchemy spelling, pointed at the test's schema.
        let url = format!(
            "{}{sep}options[search_path]={}",
            base.replacen("postgres://", "postgresql+psycopg2://", 1),
            schema.0
        );
        let url = DatabaseUrl::parse(&url).unwrap();
        let opened = open(&url).await.expect("open PostgreSQL");
        assert_eq!(opened.store.backend(), "postgres");
        assert!(opened.pg_pool.is_some());
        opened
            .store
            .append(&[event("node", "n", 1, json!({}))], &[])
            .await
            .unwrap();
        settle(&*opened.store, 1).await;
        assert_eq!(opened.store.read_feed(0, 10).await.unwrap().len(), 1);
    }

    /// A database of the previous schema: the migration to the typed tables
    /// drops the typed models' documents and resets their checkpoints.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn typed_tables_migration_resets_the_typed_models() {
        let (pool, _schema) = common::postgres_schema(2).await;
        let mut script = String::from(
            "CREATE TABLE schema_migrations (version bigint PRIMARY KEY, \
             name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now());",
        );
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/postgres");
        for (version, name) in [
            "0001_events",
            "0002_claims",
            "0003_read_models",
            "0004_leases",
            "0005_projection_failures",
        ]
        .iter()
        .enumerate()
        {
            script.push_str(&std::fs::read_to_string(format!("{dir}/{name}.sql")).unwrap());
            script.push_str(&format!(
                ";INSERT INTO schema_migrations (version, name) VALUES ({}, '{name}');",
                version + 1
            ));
        }
        script.push_str(super::BEFORE_TYPED_TABLES);
        sqlx::raw_sql(&script).execute(&pool).await.unwrap();
        let store = PostgresStore::from_pool(pool.clone()).await.unwrap();
        super::typed_models_were_reset(&store).await;
    }

    /// Every page shape is an index scan in the query's order: with sorting
    /// priced out, no plan sorts (see `PlanCase`).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_page_reads_an_index_in_order() {
        let t = common::postgres().await;
        let pool = t.pg_pool.clone().unwrap();
        let mut conn = pool.acquire().await.unwrap();
        sqlx::query("SET enable_sort = off")
            .execute(&mut *conn)
            .await
            .unwrap();
        sqlx::query("SET enable_seqscan = off")
            .execute(&mut *conn)
            .await
            .unwrap();
        for case in super::PlanCase::all() {
            let sql = case.sql(ironledger::store::rows::Dialect::Postgres);
            let explain = format!("EXPLAIN {}", sql.text);
            let mut q = sqlx::query_scalar::<_, String>(&explain);
            for k in &sql.binds {
                q = match k {
                    Key::Null => q.bind(None::<i64>),
                    Key::Int(i) => q.bind(*i),
                    Key::Text(s) => q.bind(s.clone()),
                };
            }
            let plan = q.fetch_all(&mut *conn).await.unwrap();
            let scans: Vec<&String> = plan
                .iter()
                .filter(|l| l.contains("Scan") && !l.contains("Subquery Scan"))
                .collect();
            let text = plan.join("\n");
            assert!(
                !scans.is_empty() && scans.iter().all(|l| l.contains("Index Scan")),
                "{}\n{text}",
                case.what
            );
            // Only the union of two ranges sorts (at most 2 × limit rows).
            let sorts = plan.iter().filter(|l| l.contains("Sort  ")).count();
            let union = text.contains("Append");
            assert_eq!(sorts, usize::from(union), "{}\n{text}", case.what);
        }
    }

    /// An unreachable server is an error, not a panic or a hang.
    #[tokio::test]
    async fn unreachable_server_is_an_error() {
        let url = DatabaseUrl::parse("postgresql://nobody:secret@127.0.0.1:1/none").unwrap();
        let err = match open(&url).await {
            Ok(_) => panic!("connected to a closed port"),
            Err(err) => err.to_string(),
        };
        assert!(err.contains("cannot connect"), "{err}");
        assert!(!err.contains("secret"), "{err}");
    }
}

mod sqlite_only {
    use crate::common::event;
    use ironledger::store::{open, DatabaseUrl, DocChange, Key, LogStore, SqliteStore};
    use serde_json::json;
    use sqlx::{Connection, Row};
    use std::sync::Arc;

    /// Everything acknowledged is still there after the store is closed and
    /// reopened (and the migrations are not applied twice).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reopen_keeps_everything() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/dir/ironledger.db");
        let url = DatabaseUrl::parse(&format!("sqlite:///{}", path.display())).unwrap();
        assert_eq!(url, DatabaseUrl::Sqlite(path.clone()));
        {
            let opened = open(&url).await.unwrap();
            let s = &opened.store;
            assert_eq!(s.backend(), "sqlite");
            s.append(
                &[
                    event("node", "n", 1, json!({})),
                    event("node", "n", 2, json!({})),
                ],
                &[ironledger::store::ClaimOp::Acquire {
                    scope: "name".into(),
                    key: "web".into(),
                    owner: "n".into(),
                }],
            )
            .await
            .unwrap();
            assert!(s
                .commit_model(
                    "nodes",
                    0,
                    2,
                    &[DocChange::put("n", json!({"name": "web"}))]
                )
                .await
                .unwrap());
        }
        let s = SqliteStore::connect(path.to_str().unwrap()).await.unwrap();
        assert_eq!(s.load("node", "n").await.unwrap().len(), 2);
        assert_eq!(
            s.claim_owner("name", "web").await.unwrap().as_deref(),
            Some("n")
        );
        assert_eq!(s.checkpoint("nodes").await.unwrap(), 2);
        assert_eq!(
            s.doc_get("nodes", "n").await.unwrap(),
            Some(json!({"name": "web"}))
        );
        s.append(&[event("node", "n", 3, json!({}))], &[])
            .await
            .unwrap();
        let feed = s.read_feed(0, 10).await.unwrap();
        assert_eq!(
            feed.iter().map(|e| e.position).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
    }

    /// Two stores on one file (two processes, as far as SQLite can tell) writing at
    /// once: writers wait for each other instead of failing with "database is
    /// locked", and positions stay dense.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_stores_on_one_file_serialize() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shared.db");
        let a: Arc<dyn LogStore> = Arc::new(SqliteStore::open(&path).await.unwrap());
        let b: Arc<dyn LogStore> = Arc::new(SqliteStore::open(&path).await.unwrap());
        let tasks: Vec<_> = (0..40)
            .map(|i| {
                let s = if i % 2 == 0 { a.clone() } else { b.clone() };
                tokio::spawn(async move {
                    let id = format!("n{i}");
                    s.append(
                        &[
                            event("node", &id, 1, json!({})),
                            event("node", &id, 2, json!({})),
                        ],
                        &[],
                    )
                    .await
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().expect("append");
        }
        let feed = a.read_feed(0, 1000).await.unwrap();
        assert_eq!(
            feed.iter().map(|e| e.position).collect::<Vec<_>>(),
            (1..=80).collect::<Vec<u64>>()
        );
        // A commit's events are contiguous: nobody got in between.
        for pair in feed.chunks(2) {
            assert_eq!(pair[0].aggregate_id, pair[1].aggregate_id);
            assert_eq!((pair[0].sequence, pair[1].sequence), (1, 2));
        }
        assert_eq!(b.head().await.unwrap(), 80);
    }

    /// A database of the previous schema: the migration to the typed tables
    /// drops the typed models' documents and resets their checkpoints.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn typed_tables_migration_resets_the_typed_models() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            let options = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(&path)
                .create_if_missing(true);
            let mut conn = sqlx::SqliteConnection::connect_with(&options)
                .await
                .unwrap();
            let mut script = String::from(
                "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, \
                 name TEXT NOT NULL, applied_at TEXT NOT NULL) STRICT;",
            );
            let schema = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/sqlite");
            for (version, name) in [
                "0001_events",
                "0002_claims",
                "0003_read_models",
                "0004_projection_failures",
            ]
            .iter()
            .enumerate()
            {
                script.push_str(&std::fs::read_to_string(format!("{schema}/{name}.sql")).unwrap());
                script.push_str(&format!(
                    ";INSERT INTO schema_migrations VALUES ({}, '{name}', 'then');",
                    version + 1
                ));
            }
            script.push_str(super::BEFORE_TYPED_TABLES);
            sqlx::raw_sql(&script).execute(&mut conn).await.unwrap();
            conn.close().await.unwrap();
        }
        let store = SqliteStore::open(&path).await.unwrap();
        super::typed_models_were_reset(&store).await;
    }

    /// Every page shape is one search of an index in the query's order
    /// (`ORDER BY col ASC NULLS FIRST, ord ASC NULLS FIRST` is the index's
    /// order, its DESC NULLS LAST the reverse): no temporary b-tree, but for
    /// the union of two ranges, whose at most 2 × limit rows are sorted.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_page_reads_an_index_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plans.db");
        let _store = SqliteStore::open(&path).await.unwrap();
        let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&path);
        let mut conn = sqlx::SqliteConnection::connect_with(&options)
            .await
            .unwrap();
        for case in super::PlanCase::all() {
            let sql = case.sql(ironledger::store::rows::Dialect::Sqlite);
            let explain = format!("EXPLAIN QUERY PLAN {}", sql.text);
            let mut q = sqlx::query(&explain);
            for k in &sql.binds {
                q = match k {
                    Key::Null => q.bind(None::<i64>),
                    Key::Int(i) => q.bind(*i),
                    Key::Text(s) => q.bind(s.clone()),
                };
            }
            let plan: Vec<String> = q
                .fetch_all(&mut conn)
                .await
                .unwrap()
                .iter()
                .map(|r| r.get::<String, _>(3))
                .collect();
            let searches: Vec<&String> = plan.iter().filter(|l| l.starts_with("SEARCH")).collect();
            assert!(
                !searches.is_empty() && searches.iter().all(|l| l.contains("USING INDEX")),
                "{}\n{plan:#?}",
                case.what
            );
            let sorts = plan.iter().filter(|l| l.contains("TEMP B-TREE")).count();
            let union = plan.iter().any(|l| l == "UNION ALL");
            assert_eq!(sorts, usize::from(union), "{}\n{plan:#?}", case.what);
        }
    }

    #[tokio::test]
    async fn memory_urls_open_the_memory_store() {
        for url in ["memory", "sqlite://", "sqlite:///:memory:"] {
            let opened = open(&DatabaseUrl::parse(url).unwrap()).await.unwrap();
            assert_eq!(opened.store.backend(), "memory", "{url}");
            assert!(opened.pg_pool.is_none());
        }
    }
}

// ---- inline models ----------------------------------------------------------

/// A fold for the tests: model `inline_a` keeps, per aggregate, how many
/// events it saw and the id and time of the last, read from its previous
/// document (so a fold that read a stale document would show); `inline_b`
/// one document per event.
struct CountingFold {
    fail: bool,
}

#[async_trait::async_trait]
impl Fold for CountingFold {
    fn models(&self) -> &[&'static str] {
        &["inline_a", "inline_b"]
    }

    async fn fold(
        &self,
        store: &dyn LogStore,
        events: &[RecordedEvent],
    ) -> Result<Vec<Vec<DocChange>>, StoreError> {
        if self.fail {
            return Err(StoreError::Corrupt("this fold refuses".into()));
        }
        let (mut a, mut b) = (vec![], vec![]);
        for e in events {
            let seen = store
                .doc_get("inline_a", &e.aggregate_id)
                .await?
                .map_or(0, |d| d["seen"].as_u64().unwrap());
            let seen = seen + a.len() as u64 + 1;
            a.push(put(
                &e.aggregate_id,
                json!({"seen": seen, "event_id": e.event_id, "at": e.recorded_at}),
            ));
            b.push(put(
                &format!("{}/{}", e.aggregate_id, e.sequence),
                json!(e.event_id),
            ));
        }
        // One document per aggregate in `a`: the last change wins.
        Ok(vec![a, b])
    }
}

/// Moves `models` from the feed's checkpoint `from` to `to` writing nothing
/// (as a projector that found nothing to change would).
async fn feed_to(s: &dyn LogStore, models: &[&str], from: u64, to: u64) {
    let commits: Vec<ModelCommit<'_>> = models
        .iter()
        .map(|m| ModelCommit {
            model: m,
            from,
            to,
            changes: &[],
            failures: &[],
        })
        .collect();
    assert!(s.commit_models(&commits).await.unwrap());
}

/// An append folds a model only while it is inline, in its own transaction,
/// with the very id and time the feed then shows; a model that is not inline
/// is left to the feed and the append says so. A plain append hands inline
/// models back to the feed at the head they stood at.
async fn appends_fold_only_inline_models(t: &TestStore) {
    let s = t.store.as_ref();
    let fold = CountingFold { fail: false };
    // Not inline yet: the events are stored, no document is written.
    let folded = s
        .append_folded(&[event("node", "n1", 1, json!({}))], &[], &fold)
        .await
        .unwrap();
    assert!(!folded);
    assert_eq!(s.doc_get("inline_a", "n1").await.unwrap(), None);
    settle(s, 1).await;
    // The feed applied it (here: by hand), then the models go inline.
    feed_to(s, &["inline_a", "inline_b"], 0, 1).await;
    s.commit_model("inline_a", 1, 1, &[put("n1", json!({"seen": 1}))])
        .await
        .unwrap();
    assert!(s.go_inline(&["inline_a", "inline_b"], 1).await.unwrap());
    assert!(is_inline(s.checkpoint("inline_a").await.unwrap()));

    let folded = s
        .append_folded(
            &[
                event("node", "n1", 2, json!({})),
                event("node", "n1", 3, json!({})),
            ],
            &[],
            &fold,
        )
        .await
        .unwrap();
    assert!(folded);
    let doc = s.doc_get("inline_a", "n1").await.unwrap().unwrap();
    assert_eq!(doc["seen"], json!(3), "folded on the previous document");
    settle(s, 3).await;
    let feed = s.read_feed(0, 10).await.unwrap();
    let last = feed.last().unwrap();
    assert_eq!(doc["event_id"], json!(last.event_id), "the feed's id");
    assert_eq!(doc["at"], json!(last.recorded_at), "the feed's time");
    assert!(feed.windows(2).all(|w| w[0].event_id < w[1].event_id));
    assert_eq!(
        s.doc_get("inline_b", "n1/2").await.unwrap(),
        Some(json!(feed[1].event_id))
    );
    // A failed append (a taken sequence) writes no document either.
    assert!(matches!(
        s.append_folded(&[event("node", "n1", 3, json!({}))], &[], &fold)
            .await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        s.doc_get("inline_a", "n1").await.unwrap().unwrap()["seen"],
        json!(3)
    );

    // A plain append folds nothing: the models go back to the feed, at the
    // head they stood at, so the projector applies the new event.
    s.append(&[event("node", "n2", 1, json!({}))], &[])
        .await
        .unwrap();
    assert_eq!(s.checkpoint("inline_a").await.unwrap(), 3);
    assert_eq!(s.checkpoint("inline_b").await.unwrap(), 3);
    assert_eq!(s.doc_get("inline_a", "n2").await.unwrap(), None);
    assert!(!s
        .append_folded(&[event("node", "n2", 2, json!({}))], &[], &fold)
        .await
        .unwrap());
}

/// `go_inline` holds only at the head: every model at the checkpoint given,
/// which is the head of the log with nothing waiting, and no recorded failure.
async fn go_inline_only_at_the_head(t: &TestStore) {
    let s = t.store.as_ref();
    // An empty log: at its head.
    assert!(s.go_inline(&["inline_a"], 0).await.unwrap());
    assert!(is_inline(s.checkpoint("inline_a").await.unwrap()));
    s.append(&[event("node", "n1", 1, json!({}))], &[])
        .await
        .unwrap();
    s.append(&[event("node", "n1", 2, json!({}))], &[])
        .await
        .unwrap();
    settle(s, 2).await;
    // Handed back to the feed at 0 by the first plain append.
    assert_eq!(s.checkpoint("inline_a").await.unwrap(), 0);
    assert!(
        !s.go_inline(&["inline_a"], 0).await.unwrap(),
        "behind the head"
    );
    feed_to(s, &["inline_a", "inline_b"], 0, 1).await;
    assert!(
        !s.go_inline(&["inline_a"], 1).await.unwrap(),
        "behind the head"
    );
    feed_to(s, &["inline_a"], 1, 2).await;
    assert!(
        !s.go_inline(&["inline_a", "inline_b"], 2).await.unwrap(),
        "one model is behind: none goes inline"
    );
    assert_eq!(s.checkpoint("inline_a").await.unwrap(), 2);
    feed_to(s, &["inline_b"], 1, 2).await;
    s.record_failure(&ApplyFailure {
        model: "inline_b".into(),
        position: 2,
        aggregate_type: "node".into(),
        aggregate_id: "n1".into(),
        event_type: "Happened".into(),
        error: "bad".into(),
        failed_at: chrono::Utc::now(),
    })
    .await
    .unwrap();
    assert!(
        !s.go_inline(&["inline_a", "inline_b"], 2).await.unwrap(),
        "a model with a recorded failure stays fed"
    );
    assert!(s.go_inline(&["inline_a"], 2).await.unwrap());
    assert!(is_inline(s.checkpoint("inline_a").await.unwrap()));
    assert_eq!(s.checkpoint("inline_b").await.unwrap(), 2);
}

/// An inline model holds every commit, so a scratch model replaces it only at
/// the head (never taking reads back in time), and the result is inline.
async fn an_inline_model_is_swapped_only_at_the_head(t: &TestStore) {
    let s = t.store.as_ref();
    let fold = CountingFold { fail: false };
    assert!(s.go_inline(&["inline_a", "inline_b"], 0).await.unwrap());
    for seq in 1..=3 {
        assert!(s
            .append_folded(&[event("node", "n1", seq, json!({}))], &[], &fold)
            .await
            .unwrap());
    }
    settle(s, 3).await;
    s.commit_model("inline_a~rebuild", 0, 2, &[put("n1", json!({"seen": 2}))])
        .await
        .unwrap();
    assert!(!s.swap_model("inline_a", "inline_a~rebuild").await.unwrap());
    assert_eq!(
        s.doc_get("inline_a", "n1").await.unwrap().unwrap()["seen"],
        json!(3)
    );
    s.commit_model(
        "inline_a~rebuild",
        2,
        3,
        &[put("n1", json!({"seen": 3, "rebuilt": true}))],
    )
    .await
    .unwrap();
    assert!(s.swap_model("inline_a", "inline_a~rebuild").await.unwrap());
    assert_eq!(
        s.doc_get("inline_a", "n1").await.unwrap().unwrap()["rebuilt"],
        json!(true)
    );
    assert!(is_inline(s.checkpoint("inline_a").await.unwrap()));
    // And the appends fold into the swapped-in model.
    assert!(s
        .append_folded(&[event("node", "n1", 4, json!({}))], &[], &fold)
        .await
        .unwrap());
    assert_eq!(
        s.doc_get("inline_a", "n1").await.unwrap().unwrap()["seen"],
        json!(4)
    );
}

/// A fold that fails refuses the whole append: no event, no claim, no
/// document.
async fn a_fold_that_fails_refuses_the_append(t: &TestStore) {
    let s = t.store.as_ref();
    assert!(s.go_inline(&["inline_a", "inline_b"], 0).await.unwrap());
    let got = s
        .append_folded(
            &[event("node", "n1", 1, json!({}))],
            &[acquire("name", "x", "n1")],
            &CountingFold { fail: true },
        )
        .await;
    assert!(matches!(got, Err(StoreError::Corrupt(_))), "{got:?}");
    assert!(s.load("node", "n1").await.unwrap().is_empty());
    assert_eq!(s.claim_owner("name", "x").await.unwrap(), None);
    assert!(s.doc_list("inline_a").await.unwrap().is_empty());
}

/// Imported events are folded by no one: like a plain append, an import
/// hands inline models back to the feed at the head they stood at.
async fn an_import_hands_inline_models_to_the_feed(t: &TestStore) {
    let s = t.store.as_ref();
    assert!(s.go_inline(&["inline_a"], 0).await.unwrap());
    let imported = RecordedEvent {
        position: 1,
        aggregate_type: "node".into(),
        aggregate_id: "n1".into(),
        sequence: 1,
        event_id: 0,
        event_type: "Happened".into(),
        event_version: "1.0".into(),
        payload: json!({"Happened": {}}),
        metadata: json!({}),
        recorded_at: chrono::Utc::now(),
    };
    s.import_events(&[imported], &[]).await.unwrap();
    assert_eq!(s.checkpoint("inline_a").await.unwrap(), 0);
    assert_eq!(s.read_feed(0, 10).await.unwrap().len(), 1);
}

/// An idempotency key is taken once; a repeat sees it pending, then answered;
/// another request with it is a mismatch; a key let go, or older than the
/// window, is taken afresh.
async fn idempotency_keys_hold_answer_and_expire(t: &TestStore) {
    use ironledger::store::KeyState;
    let s = t.store.as_ref();
    let take = |key: &'static str, fp: &'static str, now: i64| async move {
        s.take_idempotency_key(key, fp, now, now - 1000)
            .await
            .unwrap()
    };
    assert_eq!(take("alice\nk1", "fp-a", 10_000).await, KeyState::Taken);
    assert_eq!(
        take("alice\nk1", "fp-a", 10_001).await,
        KeyState::Pending { since_ms: 10_000 }
    );
    assert_eq!(take("alice\nk1", "fp-b", 10_002).await, KeyState::Mismatch);
    // Another caller's equal key is another key.
    assert_eq!(take("bob\nk1", "fp-b", 10_002).await, KeyState::Taken);
    let answer = json!({"status": 201, "headers": [["location", "x"]], "body": "{}"});
    s.settle_idempotency_key("alice\nk1", Some(&answer))
        .await
        .unwrap();
    assert_eq!(
        take("alice\nk1", "fp-a", 10_500).await,
        KeyState::Answered(answer)
    );
    assert_eq!(take("alice\nk1", "fp-b", 10_500).await, KeyState::Mismatch);
    // Past the window (taken at 10 000, forgotten once 1 000 ms older).
    assert_eq!(take("alice\nk1", "fp-b", 11_001).await, KeyState::Taken);
    // Let go (a server error): the next one runs.
    s.settle_idempotency_key("alice\nk1", None).await.unwrap();
    assert_eq!(take("alice\nk1", "fp-c", 11_002).await, KeyState::Taken);
}

/// Of many requests taking one key at once, exactly one gets it.
async fn idempotency_key_race_has_one_winner(t: &TestStore) {
    use ironledger::store::KeyState;
    let barrier = Arc::new(Barrier::new(8));
    let mut tasks = vec![];
    for _ in 0..8 {
        let store = t.store.clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            store
                .take_idempotency_key("carol\nrace", "fp", 5_000, 0)
                .await
                .unwrap()
        }));
    }
    let mut taken = 0;
    for task in tasks {
        match task.await.unwrap() {
            KeyState::Taken => taken += 1,
            KeyState::Pending { since_ms } => assert_eq!(since_ms, 5_000),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(taken, 1);
}
