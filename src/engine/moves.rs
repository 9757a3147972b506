//! Moving a child record (port, volume connector, volume target) to another
//! node: the three commands of the move saga (`domain::node::decide_move`),
//! run in order, and finished later from the log if a process stops between
//! them.
//!
//! The request that asks for a move is answered only when the move has
//! ended. Before anything is written, both nodes' current states are asked
//! whether the move can succeed (the record's patch applies, the node it
//! leaves lets it go, the node it joins takes it), so a move refused for a
//! reason either node knows is refused with nothing recorded. What only the
//! database knows (a uniqueness claim another node took meanwhile) is found
//! in step 2, and the record goes back.

use super::{Engine, EngineError, Meta};
use crate::crash_points::crash_point;
use crate::domain::node::commands::MoveResult;
use crate::domain::node::entities::ChildKind;
use crate::domain::patch::PatchOp;
use crate::domain::{DomainError, NodeCommand};
use uuid::Uuid;

/// How a move ended, as the engine saw it.
#[derive(Debug)]
pub enum MoveEnd {
    /// It had ended before (another process finished it).
    AlreadyEnded,
    /// The record is on the node it moved to.
    Landed,
    /// That node refused it with this error; the record is back.
    Restored(DomainError),
    /// Neither node holds it: why.
    Lost(String),
}

impl Engine {
    /// Moves record `uuid` of `kind` from node `from` to node `to`, applying
    /// `ops` (the domain's share of the client's patch) on the way. `Ok` when
    /// the record is on `to`; the other node's refusal when it stayed on
    /// `from`; [`EngineError::MoveLost`] when neither node holds it now.
    pub async fn move_child(
        &self,
        kind: ChildKind,
        uuid: Uuid,
        from: Uuid,
        to: Uuid,
        ops: Vec<PatchOp>,
        meta: &Meta,
    ) -> Result<(), EngineError> {
        let joins = self.load_node(to).await?;
        joins.check_adopt_kind(kind)?;
        let (_, after) = self
            .load_node(from)
            .await?
            .moving_record(kind, uuid, &ops)?;
        joins.check_adopt(&after)?;
        self.node(
            from,
            NodeCommand::StartMove {
                kind,
                uuid,
                to,
                ops,
            },
            meta,
        )
        .await?;
        crash_point("move:after-start");
        match self.finish_move(from, uuid, meta).await? {
            MoveEnd::Landed => Ok(()),
            // Another process ended it first: the record says how.
            MoveEnd::AlreadyEnded if self.load_node(to).await?.holds_record(uuid) => Ok(()),
            MoveEnd::AlreadyEnded => Err(EngineError::Conflict(format!(
                "Moving {uuid} to node {to} was ended by another process without it landing there; node {from}'s history says how."
            ))),
            MoveEnd::Restored(refusal) => Err(EngineError::Domain(refusal)),
            MoveEnd::Lost(reason) => Err(EngineError::MoveLost(format!(
                "Moving {uuid} to node {to} failed and it could not be put back on node {from}: {reason}. The record as it was is in node {from}'s history."
            ))),
        }
    }

    /// Steps 2 and 3 of the move of `uuid` off node `from`, if it has not
    /// ended: what `move_child` does after the intent, and what the process
    /// manager does for a move whose process stopped.
    pub async fn finish_move(
        &self,
        from: Uuid,
        uuid: Uuid,
        meta: &Meta,
    ) -> Result<MoveEnd, EngineError> {
        let node = self.load_node(from).await?;
        let Some(pending) = node.moves_out.iter().find(|m| m.before.uuid() == uuid) else {
            return Ok(MoveEnd::AlreadyEnded);
        };
        let adopt = NodeCommand::AdoptChild {
            from,
            record: pending.after.clone(),
        };
        let refusal = match self.node(pending.to, adopt, meta).await {
            Ok(()) => None,
            Err(EngineError::Domain(refusal)) => Some(refusal),
            // The store failed: nothing is decided; try again later.
            Err(e) => return Err(e),
        };
        crash_point("move:after-adopt");
        let Some(refusal) = refusal else {
            self.end_move(from, uuid, MoveResult::Landed, meta).await?;
            return Ok(MoveEnd::Landed);
        };
        let reason = refusal.to_string();
        match self
            .end_move(from, uuid, MoveResult::Refused(reason.clone()), meta)
            .await
        {
            Ok(()) => {}
            // Putting the record back collided with a claim another node
            // took meanwhile: the move ends without it.
            Err(EngineError::Domain(e)) => {
                let why = format!("{reason}; putting it back failed: {e}");
                self.end_move(from, uuid, MoveResult::Lost(why), meta)
                    .await?;
            }
            Err(e) => return Err(e),
        }
        // The node decided whether the record could come back.
        let node = self.load_node(from).await?;
        if node.holds_record(uuid) {
            Ok(MoveEnd::Restored(refusal))
        } else {
            Ok(MoveEnd::Lost(format!("{reason}; it could not be put back")))
        }
    }

    async fn end_move(
        &self,
        from: Uuid,
        uuid: Uuid,
        result: MoveResult,
        meta: &Meta,
    ) -> Result<(), EngineError> {
        self.node(from, NodeCommand::EndMove { uuid, result }, meta)
            .await
    }
}
