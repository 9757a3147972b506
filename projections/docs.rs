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

    /// The current body of a document, borrowed: for a projection that reads
    /// a large document to write a new one, so that it copies only what it
    /// keeps.
    pub async fn get_ref(&mut self, id: &str) -> Result<Option<&Value>, ProjectionError> {
        if !self.dirty.contains_key(id) && !self.cache.contains_key(id) {
            let v = self.store.doc_get(self.model, id).await?;
            self.cache.insert(id.to_string(), v);
        }
        if let Some(v) = self.dirty.get(id) {
            return Ok(v.as_ref().map(|(body, _)| body));
        }
        Ok(self.cache.get(id).and_then(Option::as_ref))
    }

    /// Reads the documents of `ids` not known yet in one query, so that the
    /// [`get`](Self::get)s of a batch that follow need none (ids not found
    /// are remembered as absent).
    pub(crate) async fn prefetch(&mut self, ids: Vec<String>) -> Result<(), ProjectionError> {
        let mut wanted: Vec<String> = ids
            .into_iter()
            .filter(|id| !self.dirty.contains_key(id) && !self.cache.contains_key(id))
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        if wanted.is_empty() {
            return Ok(());
        }
        let found = self.store.doc_get_many(self.model, &wanted).await?;
        for id in wanted {
            self.cache.insert(id, None);
        }
        for (id, doc) in found {
            self.cache.insert(id, Some(doc));
        }
        Ok(())
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

    /// The buffered writes, in id order, and what this overlay knows of the
    /// model once they are applied: the documents it read, as this batch left
    /// them. (Documents only written, such as history entries, are not kept:
    /// nothing has read them so far, and copying them costs more than reading
    /// the rare one that is read again.)
    pub(crate) fn finish(self) -> (Vec<DocChange>, Known) {
        let mut known = self.cache;
        let changes = self
            .dirty
            .into_iter()
            .map(|(id, row)| {
                if let Some(seen) = known.get_mut(&id) {
                    *seen = row.as_ref().map(|(body, _)| body.clone());
                }
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
