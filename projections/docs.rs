//! A projection's view of its documents during one batch.

use super::ProjectionError;
use crate::store::{DocChange, LogStore};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// Reads through to the store, buffers writes; the projector commits the
/// buffered changes together with the checkpoint.
pub struct Docs<'a> {
    store: &'a dyn LogStore,
    model: &'a str,
    cache: HashMap<String, Option<Value>>,
    dirty: BTreeMap<String, Option<Value>>,
}

impl<'a> Docs<'a> {
    pub fn new(store: &'a dyn LogStore, model: &'a str) -> Self {
        Docs {
            store,
            model,
            cache: HashMap::new(),
            dirty: BTreeMap::new(),
        }
    }

    /// The current body of a document (including this batch's writes).
    pub async fn get(&mut self, id: &str) -> Result<Option<Value>, ProjectionError> {
        if let Some(v) = self.dirty.get(id) {
            return Ok(v.clone());
        }
        if let Some(v) = self.cache.get(id) {
            return Ok(v.clone());
        }
        let v = self.store.doc_get(self.model, id).await?;
        self.cache.insert(id.to_string(), v.clone());
        Ok(v)
    }

    pub fn put(&mut self, id: &str, body: Value) {
        self.dirty.insert(id.to_string(), Some(body));
    }

    pub fn delete(&mut self, id: &str) {
        self.dirty.insert(id.to_string(), None);
    }

    /// The buffered writes, in id order.
    pub fn into_changes(self) -> Vec<DocChange> {
        self.dirty
            .into_iter()
            .map(|(id, body)| match body {
                Some(body) => DocChange::Put { id, body },
                None => DocChange::Delete { id },
            })
            .collect()
    }
}
