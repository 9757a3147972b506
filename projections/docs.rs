//! A projection's view of its documents during one batch.

use super::ProjectionError;
use crate::store::{DocChange, Keys, LogStore};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// A model's documents as they stand at one checkpoint, as far as known:
/// id → body (`None`: known not to exist). Filled from what a batch read and
/// wrote, and used by the next batch instead of asking the store again.
pub(crate) type Known = HashMap<String, Option<Value>>;

/// A buffered document and the values of its index columns.
type Row = (Value, Keys);

/// Reads through to the store, buffers writes; the projector commits the
/// buffered changes together with the checkpoint.
pub struct Docs<'a> {
    store: &'a dyn LogStore,
    model: &'a str,
    cache: HashMap<String, Option<Value>>,
    /// Buffered writes: the document and its index keys, or `None` (deleted).
    dirty: BTreeMap<String, Option<Row>>,
    /// What the current event's writes replaced in `dirty` (`None`: the id
    /// had no buffered write), so that an event that fails half-way can be
    /// taken back (see [`Docs::begin_event`]).
    undo: Vec<(String, Option<Option<Row>>)>,
}

impl<'a> Docs<'a> {
    pub fn new(store: &'a dyn LogStore, model: &'a str) -> Self {
        Docs {
            store,
            model,
            cache: HashMap::new(),
            dirty: BTreeMap::new(),
            undo: Vec::new(),
        }
    }

    /// The current body of a document (including this batch's writes).
    pub async fn get(&mut self, id: &str) -> Result<Option<Value>, ProjectionError> {
        if let Some(v) = self.dirty.get(id) {
            return Ok(v.as_ref().map(|(body, _)| body.clone()));
        }
        if let Some(v) = self.cache.get(id) {
            return Ok(v.clone());
        }
        let v = self.store.doc_get(self.model, id).await?;
        self.cache.insert(id.to_string(), v.clone());
        Ok(v)
    }

    /// Starts from documents known to be current (see [`Known`]), so that only
    /// the others are read from the store.
    pub(crate) fn with_known(store: &'a dyn LogStore, model: &'a str, known: Known) -> Self {
        Docs {
            store,
            model,
            cache: known,
            dirty: BTreeMap::new(),
            undo: Vec::new(),
        }
    }

    /// Writes a document of a model without a typed table.
    pub fn put(&mut self, id: &str, body: Value) {
        self.put_row(id, body, Keys::new());
    }

    /// Writes a document with the values of its table's index columns (see
    /// [`crate::store::rows`]).
    pub fn put_row(&mut self, id: &str, body: Value, keys: Keys) {
        let before = self.dirty.insert(id.to_string(), Some((body, keys)));
        self.undo.push((id.to_string(), before));
    }

    pub fn delete(&mut self, id: &str) {
        let before = self.dirty.insert(id.to_string(), None);
        self.undo.push((id.to_string(), before));
    }

    /// Marks the start of one event's writes: [`Docs::undo_event`] takes back
    /// everything written after this, so that an event the projection cannot
    /// apply leaves no half of itself behind.
    pub(crate) fn begin_event(&mut self) {
        self.undo.clear();
    }

    /// Takes back the writes since [`Docs::begin_event`].
    pub(crate) fn undo_event(&mut self) {
        while let Some((id, before)) = self.undo.pop() {
            match before {
                Some(body) => self.dirty.insert(id, body),
                None => self.dirty.remove(&id),
            };
        }
    }

    /// The buffered writes, in id order, and everything this overlay knows of
    /// the model once they are applied (what it read, overlaid with what it wrote).
    pub(crate) fn finish(self) -> (Vec<DocChange>, Known) {
        let mut known = self.cache;
        let changes = self
            .dirty
            .into_iter()
            .map(|(id, row)| {
                known.insert(id.clone(), row.as_ref().map(|(body, _)| body.clone()));
                match row {
                    Some((body, keys)) => DocChange::Put { id, body, keys },
                    None => DocChange::Delete { id },
                }
            })
            .collect();
        (changes, known)
    }

    /// The buffered writes, in id order.
    pub fn into_changes(self) -> Vec<DocChange> {
        self.dirty
            .into_iter()
            .map(|(id, row)| match row {
                Some((body, keys)) => DocChange::Put { id, body, keys },
                None => DocChange::Delete { id },
            })
            .collect()
    }
}
