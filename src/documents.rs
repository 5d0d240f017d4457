//! Kazoo's documents and where they come from.
//!
//! The engine reads an account's device, user, group and account documents, and the
//! `attributes/owned` view that lists the devices a user owns. [`DocumentStore`] is the small
//! trait every source implements: the embedded fixture folder ([`crate::fixturedb`]) and
//! CouchDB. Reads are batched: one call fetches every document of one expansion level.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use serde_json::Value;

use crate::document::Document;
use crate::kz_json::{is_true, path};

/// A document as read from a store. Shared, because the same document (an owner, the account)
/// serves many legs and many builds.
pub type Doc = Arc<Document>;

/// A store failure. A missing document or database is not an error: it is reported as absent.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store could not be reached, or did not answer in time.
    #[error("document store not reachable: {0}")]
    NotReachable(String),
    /// The store answered but refused us (CouchDB's 401 or 403: wrong, missing or locked
    /// credentials, or no access to the database); the message keeps CouchDB's reason.
    #[error("document store refused the read: {0}")]
    Refused(String),
    /// The database does not exist in this store: the account is not there (a wrong
    /// `--couch-url` or `--fixturedb` shows as this, not as "no document" for every id).
    #[error("no database {0} in the document store")]
    NoDatabase(String),
    /// The store answered with something that is not a document.
    #[error("bad document {id} in {db}: {reason}")]
    Corrupt {
        /// Database name.
        db: String,
        /// Document id.
        id: String,
        /// What was wrong.
        reason: String,
    },
}

/// The documents of one database, by id; `None` where the document does not exist. (With
/// the engine's hasher: every document a build reads passes through one of these.)
pub type Docs = crate::engine::HashMap<String, Option<Doc>>;

/// Owned devices by user id, each list in ascending document id.
pub type Owned = crate::engine::HashMap<String, Vec<Doc>>;

/// A source of Kazoo documents.
pub trait DocumentStore {
    /// Opens the documents `ids` of database `db` (Kazoo's encoded name) in one read.
    /// Every id asked for is in the answer: `None` when it does not exist.
    fn open_docs(
        &self,
        db: &str,
        ids: &[String],
    ) -> impl Future<Output = Result<Docs, StoreError>> + Send;

    /// For each user id, the device documents of view `attributes/owned` with key
    /// `[user_id, "device"]`, in view order (ascending document id), in one read.
    fn owned_devices(
        &self,
        db: &str,
        user_ids: &[String],
    ) -> impl Future<Output = Result<Owned, StoreError>> + Send;
}

/// The keys the `attributes/owned` view emits for a document: one `[hotdesk_user, pvt_type]`
/// per hotdesk user when there are any, otherwise `[owner_id, pvt_type]`; nothing for a
/// soft-deleted document. Only the owner ids are returned; the type is the document's.
pub fn owned_view_owners(doc: &Value) -> Vec<&str> {
    if is_true(doc.get("pvt_deleted")) {
        return Vec::new();
    }
    if let Some(users) = path(doc, &["hotdesk", "users"]).and_then(Value::as_object)
        && !users.is_empty()
    {
        return users.keys().map(String::as_str).collect();
    }
    // The view's JavaScript tests `doc.owner_id` for truthiness: any non-empty string.
    match doc.get("owner_id") {
        Some(Value::String(s)) if !s.is_empty() => vec![s.as_str()],
        _ => Vec::new(),
    }
}

/// True when the document is a device in the sense of the owned view's key.
pub fn is_device_doc(doc: &Value) -> bool {
    doc.get("pvt_type").and_then(Value::as_str) == Some("device")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn owned_view_follows_hotdesk() {
        assert_eq!(owned_view_owners(&json!({"owner_id": "u0"})), vec!["u0"]);
        assert_eq!(
            owned_view_owners(&json!({"owner_id": "u0", "hotdesk": {"users": {"u2": {}}}})),
            vec!["u2"]
        );
        assert_eq!(
            owned_view_owners(&json!({"owner_id": "u0", "hotdesk": {"users": {}}})),
            vec!["u0"]
        );
        assert!(owned_view_owners(&json!({"owner_id": "u0", "pvt_deleted": true})).is_empty());
        assert!(owned_view_owners(&json!({"owner_id": ""})).is_empty());
    }
}

/// An in-memory store over a list of documents, all of one account database: captured
/// documents served in place of CouchDB (replay, tests).
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    docs: HashMap<String, Doc>,
}

impl MemoryStore {
    /// A store holding `docs` (keyed by their `_id`; documents without one are ignored).
    pub fn new(docs: impl IntoIterator<Item = Value>) -> Self {
        let mut store = Self::default();
        for d in docs {
            store.insert(d);
        }
        store
    }

    /// Adds or replaces a document.
    pub fn insert(&mut self, doc: Value) {
        if let Some(id) = doc.get("_id").and_then(Value::as_str) {
            self.docs
                .insert(id.to_owned(), Arc::new(Document::new(doc)));
        }
    }
}

impl DocumentStore for MemoryStore {
    async fn open_docs(&self, _db: &str, ids: &[String]) -> Result<Docs, StoreError> {
        Ok(ids
            .iter()
            .map(|id| (id.clone(), self.docs.get(id).cloned()))
            .collect())
    }

    async fn owned_devices(&self, _db: &str, user_ids: &[String]) -> Result<Owned, StoreError> {
        let mut out: Owned = user_ids.iter().map(|u| (u.clone(), Vec::new())).collect();
        let mut ids: Vec<&String> = self.docs.keys().collect();
        ids.sort();
        for id in ids {
            let doc = &self.docs[id];
            if !is_device_doc(doc) {
                continue;
            }
            for owner in owned_view_owners(doc) {
                if let Some(list) = out.get_mut(owner) {
                    list.push(doc.clone());
                }
            }
        }
        Ok(out)
    }
}
