//! The embedded document store: a folder in Kazoo's own fixturedb layout,
//! `<root>/<database name>/docs/<id>.json`, database names exactly as Kazoo writes them
//! (`account%2Fab%2Fcd%2Fef…`, `accounts`).
//!
//! It lets the whole product run with no servers: the CLI, `make run`, replay and the tests.
//! A database is read into memory the first time it is used; views are computed from the
//! documents, as CouchDB would compute them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::document::Document;
use crate::documents::{
    Doc, Docs, DocumentStore, Owned, StoreError, is_device_doc, owned_view_owners,
};

/// One database, loaded.
#[derive(Debug, Default)]
struct Database {
    docs: HashMap<String, Doc>,
    /// `attributes/owned` rows with type `device`: owner id to device ids, ascending.
    owned_devices: HashMap<String, Vec<String>>,
}

/// A fixture folder that cannot serve: it is not there.
#[derive(Debug, thiserror::Error)]
pub enum MissingFolder {
    /// Nothing at that path.
    #[error("fixture folder {} does not exist", .0.display())]
    Missing(PathBuf),
    /// A file, not a folder.
    #[error("fixture folder {} is not a folder", .0.display())]
    NotAFolder(PathBuf),
}

/// A fixture folder serving as a document store.
#[derive(Debug)]
pub struct FixtureDb {
    root: PathBuf,
    loaded: Mutex<HashMap<String, Arc<Database>>>,
}

impl FixtureDb {
    /// A store over the folder `root`. Nothing is read until a database is used.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            loaded: Mutex::new(HashMap::new()),
        }
    }

    /// A store over the folder `root`, which must exist: a missing folder is an error here,
    /// where a missing database inside it is only an absent account.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, MissingFolder> {
        let root = root.into();
        match std::fs::metadata(&root) {
            Ok(m) if m.is_dir() => Ok(Self::new(root)),
            Ok(_) => Err(MissingFolder::NotAFolder(root)),
            Err(_) => Err(MissingFolder::Missing(root)),
        }
    }

    /// Whether the folder holds database `db` (Kazoo's encoded name, e.g.
    /// `account%2Fab%2Fcd%2Fef…`).
    pub fn has_database(&self, db: &str) -> bool {
        !db.is_empty() && !db.contains('/') && !db.contains("..") && self.root.join(db).is_dir()
    }

    /// Every document of database `db` (for `kz-endpoint check`), in id order.
    pub fn all_docs(&self, db: &str) -> Result<Vec<Value>, StoreError> {
        let d = self.database(db)?;
        let mut docs: Vec<(&String, &Doc)> = d.docs.iter().collect();
        docs.sort_by(|a, b| a.0.cmp(b.0));
        Ok(docs.into_iter().map(|(_, d)| d.json().clone()).collect())
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn database(&self, db: &str) -> Result<Arc<Database>, StoreError> {
        // Database names come from validated ids, but refuse anything that could leave the root.
        if db.is_empty() || db.contains('/') || db.contains("..") {
            return Ok(Arc::default());
        }
        let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(d) = loaded.get(db) {
            return Ok(d.clone());
        }
        let d = Arc::new(load(&self.root.join(db).join("docs"), db)?);
        loaded.insert(db.to_owned(), d.clone());
        Ok(d)
    }
}

fn load(dir: &Path, db: &str) -> Result<Database, StoreError> {
    let mut out = Database::default();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(StoreError::NoDatabase(db.to_owned()));
        }
        Err(e) => return Err(StoreError::NotReachable(format!("{}: {e}", dir.display()))),
    };
    for entry in entries {
        let entry = entry.map_err(|e| StoreError::NotReachable(e.to_string()))?;
        let p = entry.path();
        if p.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let corrupt = |reason: String| StoreError::Corrupt {
            db: db.to_owned(),
            id: p.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(&p).map_err(|e| corrupt(e.to_string()))?;
        let doc: Value = serde_json::from_str(&text).map_err(|e| corrupt(e.to_string()))?;
        // The document id is its `_id`; the file name is only a fallback.
        let id = match doc.get("_id").and_then(Value::as_str) {
            Some(id) => id.to_owned(),
            None => p
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_owned(),
        };
        if is_device_doc(&doc) {
            for owner in owned_view_owners(&doc) {
                out.owned_devices
                    .entry(owner.to_owned())
                    .or_default()
                    .push(id.clone());
            }
        }
        out.docs.insert(id, Arc::new(Document::new(doc)));
    }
    for ids in out.owned_devices.values_mut() {
        ids.sort();
    }
    Ok(out)
}

impl DocumentStore for FixtureDb {
    async fn open_docs(&self, db: &str, ids: &[String]) -> Result<Docs, StoreError> {
        let d = self.database(db)?;
        Ok(ids
            .iter()
            .map(|id| (id.clone(), d.docs.get(id).cloned()))
            .collect())
    }

    async fn owned_devices(&self, db: &str, user_ids: &[String]) -> Result<Owned, StoreError> {
        let d = self.database(db)?;
        Ok(user_ids
            .iter()
            .map(|u| {
                let devices = d
                    .owned_devices
                    .get(u)
                    .map(|ids| {
                        ids.iter()
                            .filter_map(|id| d.docs.get(id).cloned())
                            .collect()
                    })
                    .unwrap_or_default();
                (u.clone(), devices)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database folder that is not there is "no such database", apart from a document
    /// that is not there (`None`).
    #[tokio::test]
    async fn a_missing_database_is_not_a_missing_document() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/db");
        let store = FixtureDb::new(root);
        let ids = vec!["nosuchdocument00000000000000000".to_owned()];
        let db = "account%2F4a%2F68%2F6300000000000000000000000009";
        match store.open_docs(db, &ids).await {
            Err(StoreError::NoDatabase(d)) => assert_eq!(d, db),
            other => panic!("{other:?}"),
        }
        let real = "account%2F4a%2F68%2F6300000000000000000000000001";
        let docs = store.open_docs(real, &ids).await.unwrap();
        assert_eq!(docs.get(&ids[0]), Some(&None));
    }
}
