//! Moves of ports, connectors and targets to another node that the process
//! which began them did not end (see `Engine::finish_move`).

use super::*;

impl ProcessManager {
    /// Ends the moves of child records off this node that the process which
    /// began them did not (it stopped between the move's commands): each is
    /// landed on its node or put back (`Engine::finish_move`).
    pub(super) async fn finish_moves(&self, id: Uuid, node: &Node) -> Result<(), StepError> {
        // Moves their requests ended leave their entry behind; a move still
        // open after this long has been finished or tried here, and is seen
        // anew.
        self.moves_seen
            .lock()
            .expect("moves seen")
            .retain(|_, t| t.elapsed() < MOVE_GRACE * 10);
        for pending in &node.moves_out {
            let uuid = pending.before.uuid();
            let first_seen = *self
                .moves_seen
                .lock()
                .expect("moves seen")
                .entry(uuid)
                .or_insert_with(Instant::now);
            if first_seen.elapsed() < MOVE_GRACE {
                continue;
            }
            let end = self.engine.finish_move(id, uuid, &meta()).await?;
            self.moves_seen.lock().expect("moves seen").remove(&uuid);
            tracing::info!(node = %id, record = %uuid, to = %pending.to, ?end, "finished a record's move");
        }
        Ok(())
    }
}
