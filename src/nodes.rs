//! The live ecallmgr nodes, learnt from the `nodes` exchange heartbeats (`kapi_nodes`
//! `advertise`), as Kazoo's `kz_nodes` learns them.
//!
//! Every ecallmgr answers every registration query, so knowing how many there are lets a
//! lookup stop as soon as each has answered, and with none known, not wait at all.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::kz_json::as_integer;

/// A heartbeat without `Expires` is trusted for this long.
const DEFAULT_EXPIRES: Duration = Duration::from_secs(15);

/// The longest `Expires` believed, in milliseconds.
const MAX_EXPIRES_MS: u64 = 3_600_000;
/// Nodes remembered at most: a flood of invented node names cannot grow the map for ever.
const MAX_NODES: usize = 10_000;

/// Known nodes and when each is considered gone.
#[derive(Debug, Default)]
pub struct NodeTracker {
    nodes: Mutex<HashMap<String, Seen>>,
}

#[derive(Debug, Clone)]
struct Seen {
    until: Instant,
    ecallmgr: bool,
}

impl NodeTracker {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a `nodes`/`advertise` message. A node counts until its `Expires` (ms) × 1.25
    /// has passed since this heartbeat, as `kz_nodes` counts it.
    pub fn observe(&self, msg: &Value, now: Instant) {
        if msg.get("Event-Name").and_then(Value::as_str) != Some("advertise") {
            return;
        }
        let Some(node) = msg
            .get("Node")
            .and_then(Value::as_str)
            .filter(|n| n.contains('@'))
        else {
            return;
        };
        // Kazoo's nodes advertise every few seconds; an `Expires` beyond an hour is not a
        // heartbeat interval, and is capped so a bogus one cannot keep a node alive forever.
        let expires = as_integer(msg.get("Expires"))
            .filter(|ms| *ms > 0)
            .map(|ms| Duration::from_millis((ms as u64).min(MAX_EXPIRES_MS) * 5 / 4))
            .unwrap_or(DEFAULT_EXPIRES);
        let ecallmgr = match msg.get("WhApps") {
            Some(Value::Object(apps)) => apps.contains_key("ecallmgr"),
            Some(Value::Array(apps)) => apps.iter().any(|a| a.as_str() == Some("ecallmgr")),
            _ => false,
        };
        let mut nodes = self.nodes.lock().unwrap_or_else(|e| e.into_inner());
        if nodes.len() >= MAX_NODES && !nodes.contains_key(node) {
            nodes.retain(|_, s| s.until > now);
            if nodes.len() >= MAX_NODES {
                return;
            }
        }
        nodes.insert(
            node.to_owned(),
            Seen {
                until: now + expires,
                ecallmgr,
            },
        );
    }

    /// How many ecallmgr nodes are alive at `now`.
    pub fn ecallmgr_count(&self, now: Instant) -> usize {
        let mut nodes = self.nodes.lock().unwrap_or_else(|e| e.into_inner());
        nodes.retain(|_, s| s.until > now);
        nodes.values().filter(|s| s.ecallmgr).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn counts_live_ecallmgr_nodes() {
        let t = NodeTracker::new();
        let now = Instant::now();
        t.observe(
            &json!({"Event-Name": "advertise", "Node": "ecallmgr@fs1", "Expires": 10000,
                    "WhApps": {"ecallmgr": {"Roles": []}}}),
            now,
        );
        t.observe(
            &json!({"Event-Name": "advertise", "Node": "ecallmgr@fs2", "Expires": "4000",
                    "WhApps": ["ecallmgr"]}),
            now,
        );
        t.observe(
            &json!({"Event-Name": "advertise", "Node": "kazoo_apps@a1", "Expires": 10000,
                    "WhApps": {"callflow": {}}}),
            now,
        );
        t.observe(
            &json!({"Event-Name": "advertise", "Node": "nonode", "WhApps": ["ecallmgr"]}),
            now,
        );
        assert_eq!(t.ecallmgr_count(now), 2);
        // fs2 expires after 4 s × 1.25 = 5 s; fs1 after 12.5 s.
        assert_eq!(t.ecallmgr_count(now + Duration::from_secs(6)), 1);
        assert_eq!(t.ecallmgr_count(now + Duration::from_secs(13)), 0);
        // A bogus Expires neither overflows nor keeps a node alive past the cap.
        t.observe(
            &json!({"Event-Name": "advertise", "Node": "ecallmgr@fs3", "Expires": 9e18,
                    "WhApps": ["ecallmgr"]}),
            now,
        );
        assert_eq!(t.ecallmgr_count(now + Duration::from_secs(3600)), 1);
        assert_eq!(t.ecallmgr_count(now + Duration::from_secs(4501)), 0);
    }
}
