//! Moving a port, connector or target to another node: the three steps of
//! `decide_move`, each on its own aggregate, and what the node that a record
//! leaves keeps until the move has ended.

use super::*;
use crate::domain::node::commands::MoveResult;
use crate::domain::node::entities::{ChildKind, ChildRecord, MoveOutcome, PendingMove};
use serde_json::json;
use ProvisionState::*;

/// The node records move to in these tests.
fn other() -> Uuid {
    OTHER_NODE
}

fn start(kind: ChildKind, uuid: Uuid, ops: Vec<PatchOp>) -> NodeCommand {
    NodeCommand::StartMove {
        kind,
        uuid,
        to: other(),
        ops,
    }
}

fn off_with(children: impl IntoIterator<Item = NodeEvent>) -> Vec<NodeEvent> {
    and(
        in_state(Manageable),
        [powered("power off")].into_iter().chain(children),
    )
}

/// A powered-off node whose port 1 has begun moving to the other node.
async fn port_move_started() -> Vec<NodeEvent> {
    accept(
        off_with([port_added(port(1))]),
        start(ChildKind::Port, port_uuid(1), vec![]),
    )
    .await
}

#[tokio::test]
async fn starting_a_move_records_the_intent_with_the_removal() {
    let given = off_with([port_added(port(1))]);
    let events = run(
        given.clone(),
        start(
            ChildKind::Port,
            port_uuid(1),
            vec![
                replace("/node_uuid", json!(other().to_string())),
                replace("/extra", json!({"rack": "b"})),
            ],
        ),
    )
    .await
    .unwrap();
    let after = Port {
        extra: obj(json!({"rack": "b"})),
        ..port(1)
    };
    assert_eq!(
        events,
        vec![
            NodeEvent::ChildMoveStarted {
                to: other(),
                before: ChildRecord::Port(port(1)),
                after: ChildRecord::Port(after.clone()),
            },
            NodeEvent::PortRemoved { port: port(1) },
        ]
    );
    let node = replay(&and(given, events));
    assert!(node.ports.is_empty());
    assert_eq!(
        node.moves_out,
        vec![PendingMove {
            to: other(),
            before: ChildRecord::Port(port(1)),
            after: ChildRecord::Port(after),
        }]
    );
    assert!(node.needs_work(), "a move under way is work to finish");
}

#[tokio::test]
async fn a_move_takes_the_leaving_nodes_deletion_rule() {
    // A connector leaves a powered-on active node only as it could be deleted.
    let given = and(
        in_state(Active),
        [powered("power on"), connector_added(connector(1))],
    );
    assert_eq!(
        run(
            given,
            start(ChildKind::Connector, connector_uuid(1), vec![])
        )
        .await,
        Err(invalid_state("volume connector deletion", "power on"))
    );
}

#[tokio::test]
async fn an_unknown_record_cannot_move() {
    assert_eq!(
        run(
            off_with([]),
            start(ChildKind::Target, target_uuid(9), vec![])
        )
        .await,
        Err(DomainError::NotFound(format!(
            "Volume target {} could not be found.",
            target_uuid(9)
        )))
    );
}

#[tokio::test]
async fn the_joining_node_adopts_once() {
    let record = ChildRecord::Target(target(1, 0));
    let adopt = || NodeCommand::AdoptChild {
        from: other(),
        record: record.clone(),
    };
    let given = off_with([]);
    let events = run(given.clone(), adopt()).await.unwrap();
    assert_eq!(events, vec![target_created(target(1, 0))]);
    // Finished again after a crash: already there, nothing recorded.
    assert_eq!(run(and(given, events), adopt()).await, Ok(vec![]));
}

#[tokio::test]
async fn the_joining_node_applies_its_rules() {
    // Powered on: a volume record may not join (Ironic's update rule).
    let record = ChildRecord::Target(target(1, 0));
    let adopt = NodeCommand::AdoptChild {
        from: other(),
        record,
    };
    assert_eq!(
        run(and(in_state(Active), [powered("power on")]), adopt.clone()).await,
        Err(invalid_state("volume target update", "power on"))
    );
    // Its boot index 0 is taken here.
    assert_eq!(
        run(off_with([target_created(target(2, 0))]), adopt).await,
        Err(DomainError::Conflict(
            "A volume target with boot index '0' for the same node already exists.".into()
        ))
    );
}

#[tokio::test]
async fn a_refused_move_puts_the_record_back() {
    let started = port_move_started().await;
    let events = run(
        started.clone(),
        NodeCommand::EndMove {
            uuid: port_uuid(1),
            result: MoveResult::Refused("no".into()),
        },
    )
    .await
    .unwrap();
    assert_eq!(
        events,
        vec![
            port_added(port(1)),
            NodeEvent::ChildMoveEnded {
                uuid: port_uuid(1),
                to: other(),
                outcome: MoveOutcome::Restored {
                    reason: "no".into()
                },
            },
        ]
    );
    let node = replay(&and(started, events));
    assert_eq!(node.ports, vec![port(1)]);
    assert!(node.moves_out.is_empty());
}

#[tokio::test]
async fn a_move_ends_once() {
    let started = port_move_started().await;
    let end = || NodeCommand::EndMove {
        uuid: port_uuid(1),
        result: MoveResult::Landed,
    };
    let ended = accept(started, end()).await;
    assert_eq!(
        ended.last(),
        Some(&NodeEvent::ChildMoveEnded {
            uuid: port_uuid(1),
            to: other(),
            outcome: MoveOutcome::Landed,
        })
    );
    assert!(!replay(&ended).needs_work());
    assert_eq!(run(ended, end()).await, Ok(vec![]));
}

#[tokio::test]
async fn a_record_that_cannot_come_back_is_lost_not_duplicated() {
    // While the port was away, another port took its MAC on this node.
    let started = port_move_started().await;
    let taken = and(
        started,
        [port_added(Port {
            uuid: port_uuid(2),
            ..port(1)
        })],
    );
    let events = run(
        taken,
        NodeCommand::EndMove {
            uuid: port_uuid(1),
            result: MoveResult::Refused("no".into()),
        },
    )
    .await
    .unwrap();
    assert_eq!(
        events,
        vec![NodeEvent::ChildMoveEnded {
            uuid: port_uuid(1),
            to: other(),
            outcome: MoveOutcome::Lost {
                reason: "no; putting it back failed: A port with MAC address 52:54:00:00:00:01 already exists.".into()
            },
        }]
    );
}

#[tokio::test]
async fn a_node_is_not_deleted_while_a_record_moves_off_it() {
    let started = port_move_started().await;
    assert_eq!(
        run(started, NodeCommand::Delete).await,
        Err(DomainError::Conflict(format!(
            "Node {NODE} is moving port {} to node {}; delete it once the move has ended.",
            port_uuid(1),
            other()
        )))
    );
}
