//! The projector on each backend: one batch applied to every projection at
//! once, exactly once across processes, projections standing at different
//! checkpoints, models going inline once they reach the head (and back to the
//! feed when dropped), and read-your-writes both ways: inline (nothing to wait
//! for, even while an older transaction holds back sequencing on PostgreSQL)
//! and through the worker for a model that is not inline.

use crate::common;

use ironledger::domain::node::commands::{EnrollNode, NewPort};
use ironledger::domain::patch::PatchOp;
use ironledger::domain::{NodeCommand, NodeServices};
use ironledger::engine::{Engine, Meta};
use ironledger::store::{is_inline, Opened};
use serde_json::{json, Map};
use std::sync::Arc;
use uuid::Uuid;

fn engine_on(t: &common::TestStore) -> Arc<Engine> {
    let opened = Opened {
        store: t.store.clone(),
        pg_pool: t.pg_pool.clone(),
    };
    Arc::new(Engine::on(opened, NodeServices::default()))
}

fn enroll(uuid: Uuid) -> NodeCommand {
    NodeCommand::Enroll(EnrollNode::new(uuid, "fake-hardware"))
}

fn patch_extra(key: &str, value: u64) -> NodeCommand {
    NodeCommand::Patch {
        ops: vec![PatchOp {
            op: "add".into(),
            path: format!("/extra/{key}"),
            value: Some(json!(value)),
        }],
    }
}

fn port(mac_suffix: u64) -> NodeCommand {
    NodeCommand::AddPort(NewPort {
        uuid: Uuid::new_v4(),
        address: format!(
            "52:54:00:00:{:02x}:{:02x}",
            mac_suffix / 256,
            mac_suffix % 256
        ),
        pxe_enabled: true,
        extra: Map::new(),
        ..Default::default()
    })
}

/// The node's `extra` as the `nodes` read model shows it.
async fn read_extra(t: &common::TestStore, node: Uuid) -> serde_json::Value {
    let doc = t
        .store
        .doc_get("nodes", &node.to_string())
        .await
        .unwrap()
        .expect("node readable");
    doc["state"]["extra"].clone()
}

/// Every live model equals a replay of the whole log into a scratch model.
async fn assert_models_equal_replay(t: &common::TestStore, engine: &Engine) {
    common::numbered(t.store.as_ref()).await;
    let head = t.store.head().await.unwrap();
    // Inline models stand above every position.
    assert!(engine.projector().low_water_mark().await.unwrap() >= head);
    for name in engine.projector().names() {
        let scratch = format!("{name}~check");
        engine
            .projector()
            .replay_into(name, &scratch, head)
            .await
            .unwrap();
        let live = t.store.doc_list(name).await.unwrap();
        let replayed = t.store.doc_list(&scratch).await.unwrap();
        assert_eq!(live.len(), replayed.len(), "{name}: document count");
        for ((id, l), (_, r)) in live.iter().zip(&replayed) {
            assert!(
                l == r,
                "{name}: live model differs from a replay at {id}: {:?}",
                ironledger::projections::replay::field_differences(l, r)
            );
        }
        t.store.drop_model(&scratch).await.unwrap();
    }
}

/// Two engines on one store stand for two ironledger processes: each has its own
/// projector, worker and remembered checkpoints and documents. Writers alternate
/// between them; every command is readable at once through the engine that ran
/// it, and in the end every model equals a replay (no event applied twice or
/// skipped, whichever process won each batch).
async fn two_processes_project_exactly_once(t: common::TestStore) {
    let engines = [engine_on(&t), engine_on(&t)];
    let writers = 4;
    let per_writer = 30u64;
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let engines = engines.clone();
            let t_store = t.store.clone();
            tokio::spawn(async move {
                let nodes: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
                for (i, n) in nodes.iter().enumerate() {
                    engines[i % 2]
                        .node(*n, enroll(*n), &Meta::actor("a"))
                        .await
                        .unwrap();
                }
                for i in 0..per_writer {
                    let node = nodes[i as usize % nodes.len()];
                    let engine = &engines[(i as usize + w) % 2];
                    let command = if i % 5 == 0 {
                        port(w as u64 * 1000 + i)
                    } else {
                        patch_extra("k", i)
                    };
                    let patched = matches!(command, NodeCommand::Patch { .. });
                    engine.node(node, command, &Meta::actor("a")).await.unwrap();
                    if patched {
                        let doc = t_store
                            .doc_get("nodes", &node.to_string())
                            .await
                            .unwrap()
                            .expect("node readable");
                        assert_eq!(doc["state"]["extra"]["k"], json!(i), "read-your-writes");
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    for engine in &engines {
        engine.projector().catch_up().await.unwrap();
    }
    assert_models_equal_replay(&t, &engines[0]).await;
}

/// Projections may stand at different checkpoints (here: one model dropped,
/// as if it were about to be rebuilt, while the others are current). A
/// catch-up reads the feed once from the lowest checkpoint and applies each
/// event only to the projections below it: the dropped model is rebuilt from
/// scratch, the others get only the new events (once).
async fn projections_at_different_checkpoints(t: common::TestStore) {
    let engine = engine_on(&t);
    let node = Uuid::new_v4();
    engine
        .node(node, enroll(node), &Meta::actor("a"))
        .await
        .unwrap();
    for i in 0..5 {
        engine
            .node(node, patch_extra(&format!("k{i}"), i), &Meta::actor("a"))
            .await
            .unwrap();
    }
    engine.node(node, port(1), &Meta::actor("a")).await.unwrap();
    let before = t.store.head().await.unwrap();
    // The worker's first round found the empty log at its head: the appends
    // have written every model since.
    assert!(is_inline(t.store.checkpoint("ports").await.unwrap()));

    t.store.drop_model("node_history").await.unwrap();
    t.store.drop_model("ports").await.unwrap();
    engine
        .node(node, patch_extra("after", 1), &Meta::actor("a"))
        .await
        .unwrap();
    engine.node(node, port(2), &Meta::actor("a")).await.unwrap();
    engine.projector().catch_up().await.unwrap();

    let head = t.store.head().await.unwrap();
    assert!(head > before);
    // The dropped models were fed from the log up to its head, then went
    // inline again.
    let checkpoints = engine.projector().checkpoints().await.unwrap();
    assert!(
        checkpoints.values().all(|&c| is_inline(c)),
        "{checkpoints:?}"
    );
    assert_eq!(t.store.doc_list("ports").await.unwrap().len(), 2);
    assert_eq!(read_extra(&t, node).await["after"], json!(1));
    assert_models_equal_replay(&t, &engine).await;
}

/// A process remembers the documents of its last batches, tagged with the
/// checkpoint they are valid at. When another process has moved a model on
/// meanwhile, those documents are stale and must not be used, even though this
/// process's next commit would pass the compare-and-set (it re-read the
/// checkpoints first, as when polling).
async fn remembered_documents_follow_other_processes(t: common::TestStore) {
    let [a, b] = [engine_on(&t), engine_on(&t)];
    let node = Uuid::new_v4();
    a.node(node, enroll(node), &Meta::actor("a")).await.unwrap();
    a.node(node, patch_extra("one", 1), &Meta::actor("a"))
        .await
        .unwrap();
    // B moves the models on (a change A's next event does not repeat); A's
    // worker is not kicked and may not have polled.
    b.node(
        node,
        NodeCommand::SetMaintenance {
            reason: Some("by b".into()),
        },
        &Meta::actor("b"),
    )
    .await
    .unwrap();
    // A re-reads the checkpoints (nothing left to apply) ...
    a.projector().catch_up().await.unwrap();
    // ... and then applies its own next command on top of B's.
    a.node(node, patch_extra("two", 2), &Meta::actor("a"))
        .await
        .unwrap();
    let doc = t
        .store
        .doc_get("nodes", &node.to_string())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(doc["state"]["maintenance"], json!(true), "B's change kept");
    assert_eq!(doc["state"]["extra"], json!({"one": 1, "two": 2}));
    b.projector().catch_up().await.unwrap();
    assert_models_equal_replay(&t, &a).await;
}

/// Models taken off inline while two processes write — rebuilt (swapped)
/// and dropped — are fed from the log and go inline again. However the swaps
/// and drops fall between the appends' folds, the transitions and the feed,
/// every event reaches every model exactly once, and every command reads its
/// own write (a rebuilt model never goes back in time; a dropped one is empty
/// until the feed has refilled it).
async fn models_swapped_and_dropped_while_writing_stay_exact(t: common::TestStore) {
    let engines = [engine_on(&t), engine_on(&t)];
    let churn = {
        let (store, engine) = (t.store.clone(), engines[1].clone());
        tokio::spawn(async move {
            let models = ["nodes", "ports", "node_history", "targets", "connectors"];
            for i in 0..10 {
                tokio::time::sleep(std::time::Duration::from_millis(15)).await;
                let model = models[i % models.len()];
                if i % 2 == 0 {
                    engine.projector().rebuild(model).await.unwrap();
                } else {
                    store.drop_model(model).await.unwrap();
                }
            }
        })
    };
    let tasks: Vec<_> = (0..4)
        .map(|w| {
            let engines = engines.clone();
            let store = t.store.clone();
            tokio::spawn(async move {
                let node = Uuid::new_v4();
                engines[w % 2]
                    .node(node, enroll(node), &Meta::actor("a"))
                    .await
                    .unwrap();
                for i in 0..25u64 {
                    let engine = &engines[(i as usize + w) % 2];
                    if i % 6 == 0 {
                        engine
                            .node(node, port(w as u64 * 100 + i), &Meta::actor("a"))
                            .await
                            .unwrap();
                        continue;
                    }
                    engine
                        .node(node, patch_extra("k", i), &Meta::actor("a"))
                        .await
                        .unwrap();
                    let doc = store.doc_get("nodes", &node.to_string()).await.unwrap();
                    if let Some(doc) = doc {
                        assert_eq!(doc["state"]["extra"]["k"], json!(i), "read-your-writes");
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    churn.await.unwrap();
    for engine in &engines {
        engine.projector().catch_up().await.unwrap();
    }
    let checkpoints = engines[0].projector().checkpoints().await.unwrap();
    assert!(
        checkpoints.values().all(|&c| is_inline(c)),
        "{checkpoints:?}"
    );
    assert_models_equal_replay(&t, &engines[0]).await;
}

macro_rules! on_every_backend {
    ($($test:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(crate::common::memory().await).await
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(crate::common::sqlite().await).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(crate::common::postgres().await).await
                }
            )*
        }
    };
}

on_every_backend!(
    two_processes_project_exactly_once,
    projections_at_different_checkpoints,
    remembered_documents_follow_other_processes,
    models_swapped_and_dropped_while_writing_stay_exact,
);

/// Opens a PostgreSQL transaction that inserts an event of another aggregate
/// and stays open: it holds back the numbering of everything committed after it.
async fn older_transaction(t: &common::TestStore) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let pool = t.pg_pool.clone().unwrap();
    let mut older = pool.begin().await.unwrap();
    sqlx::query(ironledger::store::postgres::INSERT_EVENT_SQL)
        .bind("Elsewhere")
        .bind("x")
        .bind(1i64)
        .bind("Happened")
        .bind("1.0")
        .bind(json!({"Happened": {}}))
        .bind(json!({}))
        .execute(&mut *older)
        .await
        .unwrap();
    older
}

/// PostgreSQL: while an older transaction holds back the numbering of events,
/// a command still answers at once and reads its own write: its read models
/// were written inline, in its own transaction, though its events have no
/// position yet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_inline_command_does_not_wait_for_an_older_transaction() {
    let t = common::postgres().await;
    let engine = engine_on(&t);
    let node = Uuid::new_v4();
    engine
        .node(node, enroll(node), &Meta::actor("a"))
        .await
        .unwrap();
    engine.projector().catch_up().await.unwrap();
    let older = older_transaction(&t).await;
    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        engine.node(node, patch_extra("held", 7), &Meta::actor("a")),
    )
    .await
    .expect("an inline command waits for nobody")
    .unwrap();
    assert_eq!(read_extra(&t, node).await["held"], json!(7));
    let history = t
        .store
        .doc_prefix("node_history", &format!("{node}/"), None)
        .await
        .unwrap();
    assert_eq!(history.len(), 2, "the history entry is there too");
    let (_, pending) = t
        .store
        .aggregate_position("Node", &node.to_string())
        .await
        .unwrap();
    assert!(pending, "its events still wait for a position");
    older.commit().await.unwrap();
    engine.projector().catch_up().await.unwrap();
    assert_models_equal_replay(&t, &engine).await;
}

/// PostgreSQL: a model that is not inline (here: dropped) is applied from the
/// feed, so while an older transaction holds back numbering, a command must not
/// return before the worker applied its events (the worker keeps looking while
/// events are held back, though nobody in this process will kick it when the
/// other transaction ends), and returns once that transaction has committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_waiter_outlasts_an_older_transaction() {
    let t = common::postgres().await;
    let engine = engine_on(&t);
    let node = Uuid::new_v4();
    engine
        .node(node, enroll(node), &Meta::actor("a"))
        .await
        .unwrap();
    // The older transaction first: while it holds back numbering, the dropped
    // model cannot catch up and go inline again before the command.
    let older = older_transaction(&t).await;
    t.store.drop_model("node_history").await.unwrap();

    let command = {
        let engine = engine.clone();
        tokio::spawn(async move {
            engine
                .node(node, patch_extra("held", 7), &Meta::actor("a"))
                .await
        })
    };
    // Once the command's events are committed they cannot be numbered while
    // `older` is open; the command must keep waiting through the worker's
    // rounds (its own timeout is far longer than this test's pauses).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !t
        .store
        .aggregate_position("Node", &node.to_string())
        .await
        .unwrap()
        .1
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the command never committed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !command.is_finished(),
        "returned before its events were applied"
    );

    older.commit().await.unwrap();
    command.await.unwrap().unwrap();
    assert_eq!(read_extra(&t, node).await["held"], json!(7));
    let history = t
        .store
        .doc_prefix("node_history", &format!("{node}/"), None)
        .await
        .unwrap();
    assert_eq!(history.len(), 2, "the dropped model was fed both events");
}
