//! Document-change events on the `configuration` exchange (`kapi_conf` `doc_update`,
//! `kazoo-wire-format.md` section 5): what a cache must forget.

use serde_json::Value;

/// What changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A document was created, edited or deleted.
    Doc {
        /// The database, in Kazoo's encoded form (`account%2F…`).
        db: String,
        /// The document id.
        id: String,
        /// The document's `pvt_type`, when given.
        doc_type: Option<String>,
    },
    /// A whole database was deleted (or otherwise changed as a database).
    Database {
        /// The database name.
        db: String,
    },
}

/// The routing keys to bind on `configuration` for the documents the builder reads.
pub const BINDINGS: [&str; 8] = [
    "*.*.device.*",
    "*.*.user.*",
    "*.*.account.*",
    "*.*.group.*",
    // An account's `configs_<category>` documents (`kazoo_endpoint`, `privacy`, ...).
    "*.*.account_config.*",
    // Every `system_config` document, whatever its type.
    "*.system_config.#",
    "db_deleted.#",
    // A database that was missing (remembered by the cache) exists from now on.
    "db_created.#",
];

/// Reads a `configuration` event; `None` for anything that is not a valid document or
/// database change.
pub fn parse(msg: &Value) -> Option<Change> {
    if msg.get("Event-Category").and_then(Value::as_str) != Some("configuration") {
        return None;
    }
    let name = msg.get("Event-Name").and_then(Value::as_str)?;
    let id = msg.get("ID").and_then(Value::as_str)?;
    let db = msg.get("Database").and_then(Value::as_str)?;
    let doc_type = msg.get("Type").and_then(Value::as_str);
    if name.starts_with("db_") || doc_type == Some("database") {
        return Some(Change::Database { db: db.to_owned() });
    }
    if !name.starts_with("doc_") {
        return None;
    }
    Some(Change::Doc {
        db: db.to_owned(),
        id: id.to_owned(),
        doc_type: doc_type.map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_doc_and_db_events() {
        let m = json!({"Event-Category": "configuration", "Event-Name": "doc_edited",
            "ID": "d1", "Database": "account%2F4a%2F68%2F63", "Type": "device"});
        assert_eq!(
            parse(&m),
            Some(Change::Doc {
                db: "account%2F4a%2F68%2F63".into(),
                id: "d1".into(),
                doc_type: Some("device".into())
            })
        );
        let m = json!({"Event-Category": "configuration", "Event-Name": "db_deleted",
            "ID": "account%2F4a", "Database": "account%2F4a", "Type": "database"});
        assert_eq!(
            parse(&m),
            Some(Change::Database {
                db: "account%2F4a".into()
            })
        );
        assert_eq!(
            parse(&json!({"Event-Category": "configuration", "Event-Name": "doc_edited"})),
            None
        );
        assert_eq!(parse(&json!({"Event-Category": "nodes"})), None);
    }
}
