//! Helpers for tests against the real servers: RabbitMQ and the CouchDB-API server that
//! `make test` starts (`testenv/with-servers.sh`). A test that cannot reach them fails.
//!
//! Every test uses its own account (a random id, so its own database and routing keys), its
//! own queues, and removes its database when done.
#![allow(dead_code)]

/// The engine tests' helpers (for their leg summary).
#[path = "../common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::Duration;

use couch_rs::http::Method;
use futures_util::StreamExt;
use kz_endpoint::amqp::{
    KAPPS, TARGETED, declare_exchanges, encode, json_properties, private_queue, random_hex,
};
use kz_endpoint::cache::{CachedStore, DocCache};
use kz_endpoint::couchdb::CouchStore;
use kz_endpoint::ids::account_db;
use kz_endpoint::kz_json::{Object, merge_right_wins};
use kz_endpoint::shutdown::{self, Trigger};
use kz_endpoint::worker::{ServingStore, Store, Worker, WorkerConfig};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, Consumer};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

/// The broker the tests use.
pub fn amqp_url() -> String {
    std::env::var("KZ_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// The parts of [`amqp_url`]: its credentials (`user:pass`), its `host:port` and its vhost
/// (as written in the URL).
fn amqp_url_parts() -> (String, String, String) {
    let url = amqp_url();
    let rest = url.split_once("://").map_or(url.as_str(), |(_, rest)| rest);
    let (creds, rest) = rest.split_once('@').expect("an AMQP URL with credentials");
    let (addr, vhost) = rest.split_once('/').unwrap_or((rest, "%2f"));
    (creds.to_owned(), addr.to_owned(), vhost.to_owned())
}

/// The broker's `host:port`, for a relay in front of it.
pub fn broker_addr() -> String {
    amqp_url_parts().1
}

/// [`amqp_url`] with `scheme` and `addr` (`host:port`) in place of its own, and `query`
/// appended (`""` for none).
pub fn amqp_url_at(scheme: &str, addr: &str, query: &str) -> String {
    let (creds, _, vhost) = amqp_url_parts();
    format!("{scheme}://{creds}@{addr}/{vhost}{query}")
}

/// The CouchDB-API server the tests use; set by `make test`.
pub fn couch_url() -> String {
    std::env::var("KZ_TEST_COUCH_URL").unwrap_or_else(|_| {
        panic!("KZ_TEST_COUCH_URL is not set: run the tests with `make test`, which starts the CouchDB-API server")
    })
}

/// A test account: its id, database, realm and documents.
pub struct Account {
    pub id: String,
    pub db: String,
    pub realm: String,
    client: couch_rs::Client,
}

/// A 32-character id of this account's test: `prefix` plus `n`, zero-padded.
pub fn tid(prefix: &str, n: u32) -> String {
    format!("{prefix}{n:0>width$}", width = 32 - prefix.len())
}

impl Account {
    /// A new account with its database, the `attributes` design document and the account
    /// document.
    pub async fn create() -> Self {
        Self::create_at(&couch_url(), &random_hex(32)).await
    }

    /// [`Account::create`] with account id `id`, on the CouchDB-API server at `url`.
    pub async fn create_at(url: &str, id: &str) -> Self {
        let id = id.to_owned();
        let realm = format!("{}.test.example.com", &id[..8]);
        let client = couch_rs::Client::new_with_timeout(url, None, None, Some(5)).unwrap();
        let acct = Self {
            db: account_db(&id),
            id,
            realm,
            client,
        };
        let r = acct
            .client
            .req(Method::PUT, &format!("/{}", acct.db), None)
            .send()
            .await;
        let r = r.unwrap_or_else(|e| panic!("CouchDB-API server not reachable at {url}: {e}"));
        assert!(
            r.status().is_success(),
            "creating {}: {}",
            acct.db,
            r.status()
        );
        let design: Value =
            serde_json::from_str(include_str!("../../fixtures/couchdb/attributes.json")).unwrap();
        acct.put(design).await;
        acct.put(json!({
            "_id": acct.id, "pvt_type": "account", "name": "Test account", "realm": acct.realm,
            "caller_id": {"external": {"number": "+14155550000", "name": "Test"}}
        }))
        .await;
        acct
    }

    /// Stores (or replaces) a document.
    pub async fn put(&self, mut doc: Value) {
        let id = doc["_id"].as_str().expect("_id").to_owned();
        let path = format!("/{}/{}", self.db, id.replace('/', "%2F"));
        let current = self
            .client
            .req(Method::GET, &path, None)
            .send()
            .await
            .unwrap();
        if current.status().is_success() {
            let cur: Value = current.json().await.unwrap();
            doc["_rev"] = cur["_rev"].clone();
        }
        let r = self
            .client
            .req(Method::PUT, &path, None)
            .json(&doc)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "storing {id}: {}", r.status());
    }

    /// Removes the database.
    pub async fn drop_db(&self) {
        let _ = self
            .client
            .req(Method::DELETE, &format!("/{}", self.db), None)
            .send()
            .await;
    }

    /// Device `n` of this account: SIP username `d<n>`, `extra` merged over it.
    pub fn device(&self, n: u32, extra: Value) -> Value {
        merge_right_wins(
            &json!({
                "_id": tid("device", n), "pvt_type": "device", "pvt_account_id": self.id,
                "name": format!("Desk {n}"), "device_type": "sip_device", "enabled": true,
                "sip": {"username": format!("d{n}"), "password": format!("secret-{n}")}
            }),
            &extra,
        )
    }

    /// User `n` of this account.
    pub fn user(&self, n: u32, extra: Value) -> Value {
        merge_right_wins(
            &json!({
                "_id": tid("user", n), "pvt_type": "user", "pvt_account_id": self.id,
                "first_name": "User", "last_name": format!("{n}"), "enabled": true
            }),
            &extra,
        )
    }

    /// A `build_req` for `endpoint_id` (reply address filled in by [`Callflow::request`]).
    pub fn request(&self, endpoint_id: &str) -> Value {
        json!({
            "Event-Category": "endpoint", "Event-Name": "build_req",
            "App-Name": "callflow", "App-Version": "4.0.0",
            "Account-ID": self.id, "Call-ID": random_hex(16), "Endpoint-ID": endpoint_id,
            "Properties": {"source": "cf_device"},
            "Call": {"Account-ID": self.id, "Caller-ID-Name": "Carol", "Caller-ID-Number": "1000",
                     "Request-User": "1001", "Request-Realm": self.realm, "Resource-Type": "audio"}
        })
    }

    /// The routing key callflow publishes this account's requests with.
    pub fn routing_key(&self) -> String {
        format!("endpoint.build.{}", encode(&self.id))
    }
}

/// An AMQP connection with one channel and Kazoo's exchanges declared.
pub async fn channel() -> (Connection, Channel) {
    let conn = Connection::connect(&amqp_url(), ConnectionProperties::default())
        .await
        .unwrap_or_else(|e| panic!("RabbitMQ not reachable at {}: {e}", amqp_url()));
    let ch = conn.create_channel().await.unwrap();
    declare_exchanges(&ch).await.unwrap();
    (conn, ch)
}

/// A private queue bound to `bindings` (`"$self"`: the queue's own name), consumed without
/// acks.
pub async fn own_queue(ch: &Channel, bindings: &[(&str, &str)]) -> (String, Consumer) {
    let q = format!("kz-test-{}", random_hex(12));
    let bindings: Vec<(&str, Option<&str>)> = bindings
        .iter()
        .map(|(e, k)| (*e, (*k != "$self").then_some(*k)))
        .collect();
    let consumer = private_queue(ch, &q, FieldTable::default(), &bindings)
        .await
        .unwrap();
    (q, consumer)
}

/// `queue`'s state (its messages and consumers), by a passive declare; an error when it does
/// not exist, which also closes `ch`.
pub async fn queue_state(ch: &Channel, queue: &str) -> lapin::Result<lapin::Queue> {
    ch.queue_declare(
        queue.into(),
        lapin::options::QueueDeclareOptions {
            passive: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
}

/// A queue of the test's own, auto-delete, named `<prefix>-<random>` and bound to `kapps`
/// with its name as the routing key (so [`publish_raw`] to that name reaches it alone).
pub async fn kapps_queue(ch: &Channel, prefix: &str) -> String {
    let q = format!("{prefix}-{}", random_hex(12));
    ch.queue_declare(
        q.as_str().into(),
        lapin::options::QueueDeclareOptions {
            auto_delete: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch.queue_bind(
        q.as_str().into(),
        KAPPS.into(),
        q.as_str().into(),
        Default::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    q
}

/// Publishes raw bytes on `kapps` (a test's publish must not fail: it panics).
pub async fn publish_raw(ch: &Channel, routing_key: &str, body: &[u8], props: BasicProperties) {
    ch.basic_publish(
        KAPPS.into(),
        routing_key.into(),
        Default::default(),
        body,
        props,
    )
    .await
    .unwrap()
    .await
    .unwrap();
}

/// Plays Kazoo's callflow: publishes `build_req` on `kapps`, waits for the reply on its own
/// queue bound to `targeted`.
pub struct Callflow {
    _conn: Connection,
    pub ch: Channel,
    pub queue: String,
    consumer: Consumer,
}

impl Callflow {
    pub async fn new() -> Self {
        let (conn, ch) = channel().await;
        let (queue, consumer) = own_queue(&ch, &[(TARGETED, "$self")]).await;
        Self {
            _conn: conn,
            ch,
            queue,
            consumer,
        }
    }

    /// Sends `req` for `account` and returns the reply with the same `Msg-ID`.
    pub async fn request(&mut self, account: &Account, mut req: Value) -> Value {
        let msg_id = random_hex(16);
        req["Msg-ID"] = json!(msg_id);
        req["Server-ID"] = json!(self.queue);
        self.publish(
            &account.routing_key(),
            serde_json::to_vec(&req).unwrap(),
            json_properties(),
        )
        .await;
        self.reply_to(&msg_id).await
    }

    /// Publishes raw bytes on `kapps`.
    pub async fn publish(&self, routing_key: &str, body: Vec<u8>, props: BasicProperties) {
        publish_raw(&self.ch, routing_key, &body, props).await;
    }

    /// The next reply with `msg_id` (others are skipped), or a panic after 10 s.
    pub async fn reply_to(&mut self, msg_id: &str) -> Value {
        loop {
            let (body, _) = self
                .next(Duration::from_secs(10))
                .await
                .expect("a reply within 10 s");
            if body["Msg-ID"] == msg_id {
                return body;
            }
        }
    }

    /// The next message on the queue, with its properties.
    pub async fn next(&mut self, wait: Duration) -> Option<(Value, BasicProperties)> {
        let d = tokio::time::timeout(wait, self.consumer.next())
            .await
            .ok()??
            .ok()?;
        assert_eq!(
            d.properties.content_type().as_ref().map(|s| s.as_str()),
            Some("application/json")
        );
        Some((
            serde_json::from_slice(&d.data).expect("JSON reply"),
            d.properties.clone(),
        ))
    }
}

pub use kz_endpoint_testkit::ecallmgr::{Answer, Ecallmgr};

/// A stand-in ecallmgr for `realm` on the test broker: usernames not in `answers` get
/// `reg_query_error`; it advertises itself every 200 ms, so a worker started later learns of
/// it quickly.
pub async fn ecallmgr(realm: &str, answers: &[(&str, Answer)]) -> Ecallmgr {
    Ecallmgr::start(
        &amqp_url(),
        realm,
        answers,
        Answer::Error,
        Duration::from_millis(200),
    )
    .await
    .expect("the stand-in ecallmgr connects to the test broker")
}

/// A worker running in this process.
pub struct Running<S = Store> {
    pub worker: Arc<Worker<S>>,
    pub trigger: Trigger,
    pub handle: JoinHandle<anyhow::Result<()>>,
    pub queue: String,
}

impl<S: ServingStore> Running<S> {
    /// Stops the worker the way SIGTERM does and waits for it.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.trigger.fire();
        tokio::time::timeout(Duration::from_secs(10), self.handle)
            .await
            .expect("worker stops")
            .unwrap()
    }
}

/// A CouchDB store for the test server (cache in front), or one at `url`.
pub fn couch_store(url: Option<&str>) -> Store {
    Store::Couch(CachedStore {
        store: CouchStore::new(url.unwrap_or(&couch_url()), Duration::from_millis(1000)).unwrap(),
        cache: Arc::new(DocCache::new(1000, Duration::from_secs(300))),
    })
}

/// Starts a worker for `account` on a queue of its own (or `queue`), and waits until it
/// consumes.
pub async fn start_worker(account: &Account, store: Store, queue: Option<&str>) -> Running {
    start_worker_with(account, store, queue, |_| {}).await
}

/// [`start_worker`], with the configuration adjusted by `tweak`, over any store.
pub async fn start_worker_with<S: ServingStore>(
    account: &Account,
    store: S,
    queue: Option<&str>,
    tweak: impl FnOnce(&mut WorkerConfig),
) -> Running<S> {
    let queue = queue
        .map(str::to_owned)
        .unwrap_or_else(|| format!("kz-test-builder-{}", random_hex(8)));
    let mut config = WorkerConfig::new(amqp_url(), format!("kz-endpoint-test@{}", random_hex(6)));
    config.queue = queue.clone();
    config.bindings = vec![account.routing_key()];
    config.registrar_deadline = Duration::from_millis(300);
    config.backoff = (Duration::from_millis(50), Duration::from_millis(500));
    tweak(&mut config);
    let worker = Worker::new(config, store);
    let (trigger, shutdown) = shutdown::channel();
    let handle = tokio::spawn(worker.clone().run(shutdown));
    wait_for("the worker to consume", || worker.is_consuming()).await;
    Running {
        worker,
        trigger,
        handle,
        queue,
    }
}

/// Polls `cond` every 10 ms for up to 10 s.
pub async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

/// One word per leg, as in the engine tests.
pub fn summary(reply: &Value) -> Vec<String> {
    let legs: Vec<Object> = reply["Endpoints"]
        .as_array()
        .map(|a| a.iter().filter_map(|l| l.as_object().cloned()).collect())
        .unwrap_or_default();
    common::summary(&legs)
}

/// Closes, from the RabbitMQ side, every connection whose name contains `prefix` (a worker's
/// node name: its connection).
pub fn close_connections_named(prefix: &str) -> usize {
    close_connections_where(|name| name.contains(prefix))
}

/// Closes, from the RabbitMQ side, every connection whose `connection_name` `pick` accepts.
pub fn close_connections_where(pick: impl Fn(&str) -> bool) -> usize {
    let ctl = if std::path::Path::new("/usr/sbin/rabbitmqctl").exists() {
        "/usr/sbin/rabbitmqctl"
    } else {
        "rabbitmqctl"
    };
    let out = std::process::Command::new(ctl)
        .args([
            "list_connections",
            "-q",
            "--no-table-headers",
            "pid",
            "client_properties",
        ])
        .output()
        .expect("rabbitmqctl");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut closed = 0;
    for line in text.lines() {
        // `{"connection_name","NAME"}` in the client properties.
        let Some(name) = line
            .split("{\"connection_name\",\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
        else {
            continue;
        };
        if !pick(name) {
            continue;
        }
        let pid = line.split_whitespace().next().unwrap();
        let status = std::process::Command::new(ctl)
            .args(["close_connection", pid, "test: dropped on purpose"])
            .status()
            .expect("rabbitmqctl close_connection");
        assert!(status.success());
        closed += 1;
    }
    closed
}
