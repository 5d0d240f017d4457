//! Registration lookups over AMQP: `reg_query` to the `registrar` exchange, answered by
//! every ecallmgr on the requester's targeted queue (`kazoo-wire-format.md` section 4).
//!
//! Like Kazoo's `call_collect`, a lookup waits for one answer per live ecallmgr node (from
//! [`NodeTracker`]) and stops early at the first registration found. All the devices of one
//! build are asked concurrently under one deadline; with no ecallmgr known the answer is
//! "unknown" at once, never a wait for a registrar that does not exist.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use lapin::types::MAX_SHORT_STRING_LENGTH;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{RegKey, Registrar, Registration};
use crate::amqp::{REGISTRAR, encode, json_properties, random_hex};
use crate::broker_connection::Outbox;
use crate::build_api::{APP_NAME, APP_VERSION};
use crate::correlator::{Correlator, Waiting};
use crate::nodes::NodeTracker;
use crate::stats::{NotAsked, RegistrarMetrics};

/// One registrar's answer to one query.
#[derive(Debug, Clone)]
struct Answer {
    node: String,
    registered: bool,
}

/// Queries waiting for answers, by `Msg-ID`.
#[derive(Debug, Default)]
pub struct PendingQueries {
    waiting: Arc<Correlator<Answer>>,
}

impl PendingQueries {
    /// Routes a `directory` reply (`reg_query_resp` / `reg_query_error`) to its query.
    /// Returns false when nobody waits for it (late, or not ours).
    pub fn deliver(&self, msg: &Value) -> bool {
        let registered = match msg.get("Event-Name").and_then(Value::as_str) {
            Some("reg_query_resp") => msg
                .get("Fields")
                .and_then(Value::as_array)
                .is_some_and(|f| !f.is_empty()),
            Some("reg_query_error") => false,
            _ => return false,
        };
        let Some(msg_id) = msg.get("Msg-ID").and_then(Value::as_str) else {
            return false;
        };
        let node = msg
            .get("Node")
            .and_then(Value::as_str)
            .unwrap_or("unnamed node")
            .to_owned();
        self.waiting.deliver(msg_id, Answer { node, registered })
    }

    fn register(&self, msg_id: &str) -> (Waiting<Answer>, mpsc::UnboundedReceiver<Answer>) {
        self.waiting.register(msg_id)
    }
}

/// A registrar that asks ecallmgr over AMQP.
#[derive(Clone)]
pub struct AmqpRegistrar {
    /// Where queries are published: the worker's connection, the one the answers come in on.
    pub outbox: Outbox,
    /// Our queue on the `targeted` exchange (the queries' `Server-ID`).
    pub reply_queue: String,
    /// Our `Node`.
    pub node: String,
    /// How long a build waits for registrars, at most.
    pub deadline: Duration,
    /// Live ecallmgr nodes.
    pub nodes: Arc<NodeTracker>,
    /// Where answers are routed.
    pub pending: Arc<PendingQueries>,
    /// What was asked, and what was not (shared with the worker's [`crate::stats::Stats`]).
    pub metrics: RegistrarMetrics,
}

impl AmqpRegistrar {
    async fn query(&self, key: &RegKey, expected: usize, deadline: Instant) -> Registration {
        let routing_key = format!(
            "registration.query.{}.{}",
            encode(&key.realm),
            encode(&key.username)
        );
        if routing_key.len() > MAX_SHORT_STRING_LENGTH {
            // AMQP cannot carry the key: no registrar can be asked, so the state is unknown
            // (product rules, section 2) and the build goes on.
            tracing::warn!(
                registration = %key,
                key_bytes = routing_key.len(),
                "registration not asked: its routing key is over AMQP's 255-byte limit"
            );
            self.metrics.not_asked(NotAsked::KeyTooLong, 1);
            return Registration::Unknown;
        }
        let msg_id = random_hex(32);
        let (_waiting, mut answers) = self.pending.register(&msg_id);
        let body = json!({
            "App-Name": APP_NAME, "App-Version": APP_VERSION,
            "Event-Category": "directory", "Event-Name": "reg_query",
            "Msg-ID": msg_id, "Node": self.node, "Server-ID": self.reply_queue,
            "Realm": key.realm, "Username": key.username,
            "Fields": ["Contact", "Authorizing-ID", "Expires"]
        });
        // Serialising a `Value` cannot fail: its keys are strings.
        let payload = serde_json::to_vec(&body).unwrap_or_default();
        if let Err(e) = self
            .outbox
            .publish(REGISTRAR, &routing_key, json_properties(), &payload)
        {
            tracing::warn!(error = %e, registration = %key, "reg_query publish failed");
            self.metrics.not_asked(NotAsked::PublishFailed, 1);
            return Registration::Unknown;
        }
        let mut answered = HashSet::new();
        let mut timed_out = true;
        while let Ok(Some(answer)) = tokio::time::timeout_at(deadline, answers.recv()).await {
            if answer.registered {
                self.metrics.asked(Registration::Registered);
                return Registration::Registered;
            }
            answered.insert(answer.node);
            if answered.len() >= expected {
                timed_out = false;
                break;
            }
        }
        if timed_out {
            self.metrics.timeouts.inc();
        }
        let state = if answered.is_empty() {
            Registration::Unknown
        } else {
            Registration::Unregistered
        };
        self.metrics.asked(state);
        state
    }
}

impl Registrar for AmqpRegistrar {
    async fn lookup(&self, keys: &[RegKey]) -> HashMap<RegKey, Registration> {
        let expected = self.nodes.ecallmgr_count(std::time::Instant::now());
        if expected == 0 {
            self.metrics
                .not_asked(NotAsked::NoEcallmgr, keys.len() as u64);
            return keys
                .iter()
                .map(|k| (k.clone(), Registration::Unknown))
                .collect();
        }
        let deadline = Instant::now() + self.deadline;
        let answers =
            futures_util::future::join_all(keys.iter().map(|k| self.query(k, expected, deadline)))
                .await;
        keys.iter().cloned().zip(answers).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliver_routes_by_msg_id() {
        let pending = Arc::new(PendingQueries::default());
        let (guard, mut rx) = pending.register("m1");
        assert!(pending.deliver(&json!({
            "Event-Name": "reg_query_resp", "Msg-ID": "m1", "Node": "ecallmgr@a",
            "Fields": [{"Contact": "sip:x"}]
        })));
        assert!(!pending.deliver(&json!({"Event-Name": "reg_query_error", "Msg-ID": "m2"})));
        let a = rx.try_recv().unwrap();
        assert!(a.registered);
        assert_eq!(a.node, "ecallmgr@a");
        drop(guard);
        assert!(!pending.deliver(&json!({"Event-Name": "reg_query_error", "Msg-ID": "m1"})));
    }
}
