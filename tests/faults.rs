//! Fault tests: the worker under the failures a Kazoo cluster sees, against the real
//! RabbitMQ and the CouchDB-API server (`make test` starts both; without them these fail).
//!
//! Every scenario is bounded in messages and time, and prints one `faults:` line with its
//! figures (`cargo test --test faults -- --nocapture` shows them; docs/reliability.md quotes
//! one run). Figures are reported, never asserted as speed targets: the bounds asserted are
//! behaviour (a reply comes, within a limit that proves there is no hang).

mod live;
use live::*;

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use kz_endpoint::amqp::{TARGETED, json_properties, random_hex};
use kz_endpoint::cache::DocCache;
use kz_endpoint::couchdb::CouchStore;
use kz_endpoint::documents::{Docs, DocumentStore, Owned, StoreError};
use kz_endpoint::worker::ServingStore;
use lapin::options::QueueDeleteOptions;
use lapin::{BasicProperties, Channel, Connection};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

// -------------------------------------------------------------------------------------------
// Helpers
// -------------------------------------------------------------------------------------------

/// A reply queue of our own that collects every reply with its arrival time, and a channel
/// to publish requests on: callflow under load.
struct Load {
    _conn: Connection,
    ch: Channel,
    queue: String,
    replies: Arc<Mutex<Vec<(Instant, Value)>>>,
    task: JoinHandle<()>,
}

impl Load {
    async fn new() -> Self {
        let (conn, ch) = channel().await;
        let (queue, mut consumer) = own_queue(&ch, &[(TARGETED, "$self")]).await;
        let replies = Arc::new(Mutex::new(Vec::new()));
        let sink = replies.clone();
        let task = tokio::spawn(async move {
            while let Some(Ok(d)) = consumer.next().await {
                let body = serde_json::from_slice(&d.data).unwrap_or(Value::Null);
                sink.lock().unwrap().push((Instant::now(), body));
            }
        });
        Self {
            _conn: conn,
            ch,
            queue,
            replies,
            task,
        }
    }

    /// Publishes `req` with `Msg-ID` `msg_id` and our queue as `Server-ID`.
    async fn send(&self, routing_key: &str, mut req: Value, msg_id: &str) -> Instant {
        req["Msg-ID"] = json!(msg_id);
        req["Server-ID"] = json!(self.queue);
        self.raw(
            routing_key,
            serde_json::to_vec(&req).unwrap(),
            json_properties(),
        )
        .await
    }

    /// Publishes raw bytes on `kapps`.
    async fn raw(&self, routing_key: &str, body: Vec<u8>, props: BasicProperties) -> Instant {
        let at = Instant::now();
        publish_raw(&self.ch, routing_key, &body, props).await;
        at
    }

    /// Waits while more than `window` of the `sent` requests are unanswered: the request
    /// queue holds at most 100 messages for at most 3 s (Kazoo's queue arguments), so a
    /// load that outruns the workers loses the oldest, by design. Callflow does the same
    /// pacing by its own timeouts.
    async fn pace(&self, sent: usize, window: usize) {
        for _ in 0..2000 {
            if sent.saturating_sub(self.count()) <= window {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!(
            "{} of {sent} answered: the worker stopped answering",
            self.count()
        );
    }

    fn count(&self) -> usize {
        self.replies.lock().unwrap().len()
    }

    /// Waits until at least `n` replies came, for at most `limit`.
    async fn wait_count(&self, n: usize, limit: Duration) -> bool {
        let until = Instant::now() + limit;
        while Instant::now() < until {
            if self.count() >= n {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.count() >= n
    }

    /// Waits until every one of `ids` has a reply, for at most `limit`.
    async fn wait_all(&self, ids: &[String], limit: Duration) -> bool {
        let until = Instant::now() + limit;
        loop {
            let by = self.by_msg_id();
            if ids.iter().all(|id| by.contains_key(id)) {
                return true;
            }
            if Instant::now() > until {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The replies by `Msg-ID`, each with its arrival times.
    fn by_msg_id(&self) -> HashMap<String, Vec<(Instant, Value)>> {
        let mut by: HashMap<String, Vec<(Instant, Value)>> = HashMap::new();
        for (at, r) in self.replies.lock().unwrap().iter() {
            let id = r["Msg-ID"].as_str().unwrap_or("").to_owned();
            by.entry(id).or_default().push((*at, r.clone()));
        }
        by
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The 50th and 100th percentile of `d`, in milliseconds.
fn p50_max(mut d: Vec<Duration>) -> (f64, f64) {
    d.sort();
    let ms = |x: Duration| x.as_secs_f64() * 1000.0;
    if d.is_empty() {
        return (0.0, 0.0);
    }
    (ms(d[d.len() / 2]), ms(d[d.len() - 1]))
}

/// A free loopback port.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `kz-endpoint serve` process for `acct` on CouchDB, on queue `queue`, with its stderr in
/// a file (returned).
fn spawn_serve(acct: &Account, queue: &str, node: &str, extra: &[&str]) -> (Child, String) {
    let log = std::env::temp_dir().join(format!("kz-faults-{node}.log"));
    let child = Command::new(env!("CARGO_BIN_EXE_kz-endpoint"))
        .args([
            "serve",
            "--couch-url",
            &couch_url(),
            "--amqp-url",
            &amqp_url(),
        ])
        .args([
            "--node",
            node,
            "--queue",
            queue,
            "--binding",
            &acct.routing_key(),
        ])
        .args(["--http-listen", &format!("127.0.0.1:{}", free_port())])
        .args(extra)
        .env_remove("KZ_FIXTUREDB")
        .env_remove("KZ_BINDINGS")
        .env("RUST_LOG", "warn,kz_endpoint=info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("kz-endpoint serve");
    (child, log.display().to_string())
}

/// Waits until `queue` has `consumers` consumers.
async fn wait_consumers(queue: &str, consumers: u32) {
    let (conn, _ch) = channel().await;
    for _ in 0..500 {
        // A passive declare of a missing queue closes its channel: a new channel each time.
        let ch = conn.create_channel().await.unwrap();
        if let Ok(q) = queue_state(&ch, queue).await
            && q.consumer_count() >= consumers
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{queue} never had {consumers} consumers");
}

/// Messages waiting in `queue` (0 when it no longer exists).
async fn queue_depth(queue: &str) -> u32 {
    let (_c, ch) = channel().await;
    match queue_state(&ch, queue).await {
        Ok(q) => q.message_count(),
        Err(_) => 0,
    }
}

fn remove_logs(logs: &[String]) {
    for l in logs {
        let _ = std::fs::remove_file(l);
    }
}

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {sig}");
}

/// Device `n` with SIP credentials and a failover number: its build asks the registrar.
fn credentialed(acct: &Account, n: u32) -> Value {
    acct.device(
        n,
        json!({"call_failover": {"enabled": true, "number": format!("+1555000{n:04}")}}),
    )
}

// -------------------------------------------------------------------------------------------
// Broker and worker failures
// -------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_connection_closed_under_load_is_reestablished() {
    let acct = Account::create().await;
    acct.put(acct.device(1, json!({"sip": {"ip": "10.0.0.1"}})))
        .await;
    let w = start_worker(&acct, couch_store(None), None).await;
    let load = Load::new().await;
    let rk = acct.routing_key();
    let req = acct.request(&tid("device", 1));
    let mut sent = Vec::new();
    let mut back_at = None;
    let mut seen_reconnects = 0;
    for i in 0..300 {
        if i == 100 {
            assert_eq!(close_connections_named(w.worker.node()), 1);
        }
        // "Back" is the last reconnection: RabbitMQ may delete the old connection's
        // auto-delete queue just after the new session consumed it, which cancels that
        // consumer and costs one more reconnection.
        let reconnects = w.worker.stats.reconnects.load(Ordering::Relaxed);
        if reconnects != seen_reconnects {
            seen_reconnects = reconnects;
            back_at = None;
        }
        if i > 100 && back_at.is_none() && reconnects >= 1 && w.worker.is_consuming() {
            back_at = Some(i);
        }
        let id = format!("m-{i}");
        load.send(&rk, req.clone(), &id).await;
        sent.push(id);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    wait_for("the reconnection", || {
        w.worker.stats.reconnects.load(Ordering::Relaxed) >= 1 && w.worker.is_consuming()
    })
    .await;
    // Once the worker is back and stays back (no reconnection for 500 ms), everything
    // published is answered.
    let _ = back_at;
    let mut stable = (
        w.worker.stats.reconnects.load(Ordering::Relaxed),
        Instant::now(),
    );
    while stable.1.elapsed() < Duration::from_millis(500) {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let r = w.worker.stats.reconnects.load(Ordering::Relaxed);
        if r != stable.0 || !w.worker.is_consuming() {
            stable = (r, Instant::now());
        }
    }
    let reconnects = stable.0;
    let first_after = sent.len();
    // In batches of ten, each answered before the next: the queue's own limits (Kazoo's
    // 100 messages, 3 s TTL) must not be what drops a request on a slow, shared machine.
    for batch in (300..400).step_by(10) {
        let ids: Vec<String> = (batch..batch + 10).map(|i| format!("m-{i}")).collect();
        for id in &ids {
            load.send(&rk, req.clone(), id).await;
            sent.push(id.clone());
        }
        if !load.wait_all(&ids, Duration::from_secs(20)).await {
            let by = load.by_msg_id();
            let missing: Vec<&String> = ids.iter().filter(|id| !by.contains_key(*id)).collect();
            panic!(
                "{} of the batch from m-{batch}, published after the reconnection, not answered: {missing:?}",
                missing.len(),
            );
        }
    }
    let after: Vec<String> = sent[first_after..].to_vec();
    let by = load.by_msg_id();
    for id in &after {
        assert_eq!(summary(&by[id][0].1), ["SIP:d1"], "{id}");
    }
    let before = sent[..100].iter().filter(|id| by.contains_key(*id)).count();
    let outage = sent[100..first_after]
        .iter()
        .filter(|id| by.contains_key(*id))
        .count();
    println!(
        "faults: broker connection closed under load: {} published; before the close {before}/100 answered; between the close and a stable reconnection {outage}/{} answered (the auto-delete queue is gone while disconnected, by design); {reconnects} reconnection(s); published after it {}/{} answered",
        sent.len(),
        first_after - 100,
        after.len(),
        after.len()
    );
    w.stop().await.unwrap();
    acct.drop_db().await;
}

/// Two `serve` processes on one queue, the registrar silent so every build holds its slot
/// for the registrar deadline (so each worker always has requests unacknowledged).
async fn two_workers(acct: &Account, queue: &str) -> ((Child, String), (Child, String), Ecallmgr) {
    let devices: Vec<(String, Answer)> = (1..=20)
        .map(|n| (format!("d{n}"), Answer::Silent))
        .collect();
    let answers: Vec<(&str, Answer)> = devices.iter().map(|(u, a)| (u.as_str(), *a)).collect();
    let ecm = ecallmgr(&acct.realm, &answers).await;
    let flags = ["--registrar-deadline-ms", "200", "--prefetch", "10"];
    let a = spawn_serve(
        acct,
        queue,
        &format!("kz-faults-a-{}", random_hex(6)),
        &flags,
    );
    let b = spawn_serve(
        acct,
        queue,
        &format!("kz-faults-b-{}", random_hex(6)),
        &flags,
    );
    wait_consumers(queue, 2).await;
    // Both learn of the ecallmgr node from its heartbeats (every 200 ms).
    tokio::time::sleep(Duration::from_millis(600)).await;
    (a, b, ecm)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_load_leaves_nothing_unanswered() {
    let acct = Account::create().await;
    for n in 1..=20 {
        acct.put(credentialed(&acct, n)).await;
    }
    let queue = format!("kz-test-builder-{}", random_hex(8));
    let ((mut a, a_log), (mut b, b_log), _ecm) = two_workers(&acct, &queue).await;
    let logs = [a_log, b_log];
    let load = Load::new().await;
    let rk = acct.routing_key();
    let ids: Vec<String> = (0..200).map(|i| format!("k-{i}")).collect();
    let mut killed_at = None;
    for (i, id) in ids.iter().enumerate() {
        let n = (i % 20) as u32 + 1;
        load.pace(i, 40).await;
        load.send(&rk, acct.request(&tid("device", n)), id).await;
        // Kill A once the load is well under way, with its window full.
        if i == 80 {
            signal(&a, "-KILL");
            killed_at = Some(Instant::now());
        }
    }
    let killed_at = killed_at.unwrap();
    let _ = a.wait();
    assert!(
        load.wait_all(&ids, Duration::from_secs(30)).await,
        "requests were lost with the killed worker"
    );
    let by = load.by_msg_id();
    for (i, id) in ids.iter().enumerate() {
        let n = (i % 20) as u32 + 1;
        let expected = format!("SIP:d{n}+F:+1555000{n:04}");
        assert_eq!(summary(&by[id][0].1), [expected], "{id}");
    }
    let nodes = |prefix: &str| {
        by.values()
            .flatten()
            .filter(|(_, r)| r["Node"].as_str().unwrap_or("").starts_with(prefix))
            .count()
    };
    let b_after = by
        .values()
        .flatten()
        .filter(|(at, r)| {
            *at > killed_at && r["Node"].as_str().unwrap_or("").starts_with("kz-faults-b")
        })
        .count();
    let duplicates: usize = by.values().map(|v| v.len() - 1).sum();
    println!(
        "faults: SIGKILL of one of two workers mid-load: {}/{} answered (A {}, B {}, B after the kill {b_after}), {duplicates} answered twice (replied, not yet acknowledged when killed)",
        by.len(),
        ids.len(),
        nodes("kz-faults-a"),
        nodes("kz-faults-b")
    );
    signal(&b, "-TERM");
    assert_eq!(b.wait().unwrap().code(), Some(0));
    remove_logs(&logs);
    acct.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_answers_every_request_in_flight() {
    let acct = Account::create().await;
    for n in 1..=20 {
        acct.put(credentialed(&acct, n)).await;
    }
    let queue = format!("kz-test-builder-{}", random_hex(8));
    let ((a, a_log), (mut b, b_log), _ecm) = two_workers(&acct, &queue).await;
    let logs = [a_log.clone(), b_log];
    let load = Load::new().await;
    let rk = acct.routing_key();
    let ids: Vec<String> = (0..200).map(|i| format!("t-{i}")).collect();
    let mut a = Some(a);
    let mut exit = None;
    let mut termed_at = None;
    for (i, id) in ids.iter().enumerate() {
        let n = (i % 20) as u32 + 1;
        load.pace(i, 40).await;
        load.send(&rk, acct.request(&tid("device", n)), id).await;
        if i == 80 {
            let mut child = a.take().unwrap();
            signal(&child, "-TERM");
            termed_at = Some(Instant::now());
            exit = Some(std::thread::spawn(move || (child.wait(), Instant::now())));
        }
    }
    let termed_at = termed_at.unwrap();
    let (status, exited) = exit.unwrap().join().unwrap();
    let status = status.unwrap();
    let exited_in = exited.duration_since(termed_at);
    let log = std::fs::read_to_string(&a_log).unwrap();
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(log.contains("stopped"), "{log}");
    assert!(
        load.wait_all(&ids, Duration::from_secs(30)).await,
        "a request was not answered"
    );
    let by = load.by_msg_id();
    // A's window was full when SIGTERM came; those builds finished and were answered by A
    // after the signal (each waits the registrar deadline).
    let a_after = by
        .values()
        .flatten()
        .filter(|(at, r)| {
            *at > termed_at && r["Node"].as_str().unwrap_or("").starts_with("kz-faults-a")
        })
        .count();
    assert!(
        a_after > 0,
        "A answered nothing after SIGTERM: its in-flight requests were dropped"
    );
    let duplicates: usize = by.values().map(|v| v.len() - 1).sum();
    assert_eq!(
        duplicates, 0,
        "a request answered twice: an in-flight one was requeued"
    );
    println!(
        "faults: SIGTERM under load: {}/{} answered once each; A answered {a_after} in flight after the signal and exited 0 in {} ms",
        by.len(),
        ids.len(),
        exited_in.as_millis()
    );
    signal(&b, "-TERM");
    assert_eq!(b.wait().unwrap().code(), Some(0));
    remove_logs(&logs);
    acct.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_registrar_costs_only_its_deadline() {
    let acct = Account::create().await;
    for n in 1..=10 {
        acct.put(credentialed(&acct, n)).await;
    }
    let users: Vec<String> = (1..=10).map(|n| format!("d{n}")).collect();
    let answers: Vec<(&str, Answer)> = users.iter().map(|u| (u.as_str(), Answer::Silent)).collect();
    let _ecm = ecallmgr(&acct.realm, &answers).await;
    let deadline = Duration::from_millis(300);
    let w = start_worker(&acct, couch_store(None), None).await;
    wait_for("the ecallmgr heartbeat", || w.worker.ecallmgr_nodes() > 0).await;
    let load = Load::new().await;
    let mut sent = HashMap::new();
    for i in 0..40u32 {
        let n = i % 10 + 1;
        let id = format!("s-{i}");
        let at = load
            .send(&acct.routing_key(), acct.request(&tid("device", n)), &id)
            .await;
        sent.insert(id, (n, at));
    }
    let ids: Vec<String> = sent.keys().cloned().collect();
    assert!(load.wait_all(&ids, Duration::from_secs(20)).await);
    let by = load.by_msg_id();
    let mut latencies = Vec::new();
    for (id, (n, at)) in &sent {
        let (arrived, reply) = &by[id][0];
        // Registration unknown: the SIP leg, carrying the failover for ecallmgr.
        assert_eq!(
            summary(reply),
            [format!("SIP:d{n}+F:+1555000{n:04}")],
            "{id}"
        );
        latencies.push(arrived.duration_since(*at));
    }
    // 40 builds, 10 at a time, each waiting the deadline: four rounds of it at most, with
    // generous slack for a shared machine. A registrar wait without a deadline would hang.
    let (p50, max) = p50_max(latencies);
    assert!(max < 4.0 * 300.0 + 5000.0, "slowest reply {max} ms");
    assert_eq!(w.worker.stats.unknown.load(Ordering::Relaxed), 40);
    println!(
        "faults: silent registrar ({} ms deadline): 40/40 answered with the unknown-state legs, p50 {p50:.0} ms, max {max:.0} ms from publish (10 in flight)",
        deadline.as_millis()
    );
    w.stop().await.unwrap();
    acct.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_consumer_cancelled_by_the_broker_is_not_ready_then_recovers() {
    let acct = Account::create().await;
    acct.put(acct.device(1, json!({"sip": {"ip": "10.0.0.1"}})))
        .await;
    let w = start_worker(&acct, couch_store(None), None).await;
    assert_eq!(w.worker.readiness().await, Ok(()));
    // The queue deleted under the worker: RabbitMQ cancels its consumer.
    let (_c, ch) = channel().await;
    ch.queue_delete(w.queue.as_str().into(), QueueDeleteOptions::default())
        .await
        .unwrap();
    let mut saw = None;
    for _ in 0..500 {
        if let Err(why) = w.worker.readiness().await {
            saw = Some(why);
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let why = saw.expect("readiness never failed after the consumer was cancelled");
    assert!(why.starts_with("not consuming build requests"), "{why}");
    wait_for("the worker to consume again", || w.worker.is_consuming()).await;
    let mut cf = Callflow::new().await;
    let r = cf.request(&acct, acct.request(&tid("device", 1))).await;
    assert_eq!(summary(&r), ["SIP:d1"]);
    w.stop().await.unwrap();
    acct.drop_db().await;
}

// -------------------------------------------------------------------------------------------
// CouchDB failures
// -------------------------------------------------------------------------------------------

/// CouchDB with no cache in front, so every build reads it.
struct Uncached(CouchStore);

impl DocumentStore for Uncached {
    async fn open_docs(&self, db: &str, ids: &[String]) -> Result<Docs, StoreError> {
        self.0.open_docs(db, ids).await
    }
    async fn owned_devices(&self, db: &str, users: &[String]) -> Result<Owned, StoreError> {
        self.0.owned_devices(db, users).await
    }
}

impl ServingStore for Uncached {
    async fn check(&self) -> Result<(), String> {
        self.0.check().await
    }
}

/// A CouchDB-API server of this test's own, on `port` (0: a free one).
fn start_couch(port: u16) -> (Child, u16) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/testenv/couchdb/server.js");
    let mut child = Command::new("node")
        .args([script, &port.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("node testenv/couchdb/server.js");
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    let port = line
        .trim()
        .strip_prefix("listening ")
        .unwrap_or_else(|| panic!("the CouchDB-API server did not start: {line:?}"))
        .parse()
        .unwrap();
    (child, port)
}

/// A burst of `n` requests for device 1; the replies and the slowest reply's latency.
async fn burst(load: &Load, acct: &Account, tag: &str, n: usize) -> (Vec<Value>, Duration) {
    let mut sent = Vec::new();
    for i in 0..n {
        let id = format!("{tag}-{i}");
        let at = load
            .send(&acct.routing_key(), acct.request(&tid("device", 1)), &id)
            .await;
        sent.push((id, at));
    }
    let ids: Vec<String> = sent.iter().map(|(id, _)| id.clone()).collect();
    assert!(
        load.wait_all(&ids, Duration::from_secs(20)).await,
        "{tag}: not every request was answered"
    );
    let by = load.by_msg_id();
    let mut slowest = Duration::ZERO;
    let replies = sent
        .iter()
        .map(|(id, at)| {
            let (arrived, r) = &by[id][0];
            slowest = slowest.max(arrived.duration_since(*at));
            r.clone()
        })
        .collect();
    (replies, slowest)
}

fn all_built(replies: &[Value]) {
    for r in replies {
        assert_eq!(summary(r), ["SIP:d1"], "{r}");
    }
}

fn all_unreachable(replies: &[Value]) {
    for r in replies {
        assert_eq!(r["Error-Code"], "db_not_reachable", "{r}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn couchdb_stopped_and_frozen_mid_load_then_back() {
    let (mut couch, port) = start_couch(0);
    let url = format!("http://127.0.0.1:{port}");
    let account_id = random_hex(32);
    let acct = Account::create_at(&url, &account_id).await;
    let device = acct.device(1, json!({"sip": {"ip": "10.0.0.1"}}));
    acct.put(device.clone()).await;
    let store = Uncached(CouchStore::new(&url, Duration::from_millis(1000)).unwrap());
    let w = start_worker_with(&acct, store, None, |_| {}).await;
    let load = Load::new().await;

    let (r, _) = burst(&load, &acct, "up", 20).await;
    all_built(&r);

    // Frozen: the server accepts connections and never answers.
    signal(&couch, "-STOP");
    let (r, frozen_slowest) = burst(&load, &acct, "frozen", 20).await;
    all_unreachable(&r);
    // About a second (the CouchDB timeout), queued behind each other 10 at a time.
    assert!(
        frozen_slowest < Duration::from_secs(10),
        "{frozen_slowest:?}"
    );
    assert!(w.worker.readiness().await.is_err());
    signal(&couch, "-CONT");
    let (r, _) = burst(&load, &acct, "thawed", 20).await;
    all_built(&r);
    assert_eq!(w.worker.readiness().await, Ok(()));

    // Stopped: nothing listens.
    signal(&couch, "-KILL");
    let _ = couch.wait();
    let (r, stopped_slowest) = burst(&load, &acct, "stopped", 20).await;
    all_unreachable(&r);
    let why = w.worker.readiness().await.unwrap_err();
    assert!(why.contains("CouchDB not reachable"), "{why}");

    // Back (a fresh server on the same port, the account restored): served again, with no
    // restart of the worker.
    let (mut couch, _) = start_couch(port);
    let acct = Account::create_at(&url, &account_id).await;
    acct.put(device).await;
    let (r, _) = burst(&load, &acct, "restarted", 20).await;
    all_built(&r);
    assert_eq!(w.worker.readiness().await, Ok(()));
    println!(
        "faults: CouchDB frozen (SIGSTOP): 20/20 db_not_reachable, slowest {} ms from publish (1000 ms timeout, 10 in flight); stopped: 20/20 db_not_reachable, slowest {} ms; recovered after SIGCONT and after a restart, no worker restart",
        frozen_slowest.as_millis(),
        stopped_slowest.as_millis()
    );
    w.stop().await.unwrap();
    let _ = couch.kill();
    let _ = couch.wait();
}

/// A stand-in for a CouchDB that refuses us: every request gets `status` with CouchDB's
/// JSON error body. Counts the requests it gets.
async fn refusing_couch(
    status: u16,
    error: &'static str,
    reason: &'static str,
) -> (String, Arc<AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://admin:wrong@{}", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let mut have = Vec::new();
                loop {
                    let Ok(n) = sock.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    have.extend_from_slice(&buf[..n]);
                    // One request per head (+ its body, by Content-Length).
                    while let Some(end) = have.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&have[..end]).to_lowercase();
                        let len: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap_or(0);
                        if have.len() < end + 4 + len {
                            break;
                        }
                        have.drain(..end + 4 + len);
                        counter.fetch_add(1, Ordering::SeqCst);
                        let body = format!(r#"{{"error":"{error}","reason":"{reason}"}}"#);
                        let text = if status == 401 {
                            "Unauthorized"
                        } else {
                            "Forbidden"
                        };
                        let resp = format!(
                            "HTTP/1.1 {status} {text}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if sock.write_all(resp.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (url, hits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_are_not_ready_and_not_retried_into_a_lockout() {
    let acct = Account::create().await;
    // A wrong password, as CouchDB 3 answers it.
    let (url, hits) = refusing_couch(401, "unauthorized", "Name or password is incorrect.").await;
    let store = Uncached(CouchStore::new(&url, Duration::from_millis(1000)).unwrap());
    let w = start_worker_with(&acct, store, None, |_| {}).await;
    let why = w.worker.readiness().await.unwrap_err();
    assert_eq!(
        why,
        "document store: document store refused the read: CouchDB answered 401 Unauthorized for system_config (unauthorized: Name or password is incorrect.)"
    );
    let mut cf = Callflow::new().await;
    for _ in 0..5 {
        let r = cf.request(&acct, acct.request(&tid("device", 1))).await;
        assert_eq!(r["Error-Code"], "db_not_reachable");
        let msg = r["Error-Message"].as_str().unwrap();
        assert!(msg.contains("Name or password is incorrect."), "{msg}");
        assert!(msg.contains("not retried for 120 s"), "{msg}");
    }
    assert!(w.worker.readiness().await.is_err());
    // One failed login reached the server: the readiness probe's. Nothing after it, so the
    // worker alone never takes the account to CouchDB's lockout (5 failures in 5 minutes).
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    w.stop().await.unwrap();

    // The lockout itself is a 403 (so is an account without access to the database): no
    // login fails by it and a locked account's lock is not extended by reads, so every
    // read is tried, and CouchDB's reason is kept.
    let (url, hits) = refusing_couch(
        403,
        "forbidden",
        "Account is temporarily locked due to multiple authentication failures",
    )
    .await;
    let store = Uncached(CouchStore::new(&url, Duration::from_millis(1000)).unwrap());
    let w = start_worker_with(&acct, store, None, |_| {}).await;
    let before = hits.load(Ordering::SeqCst);
    let why = w.worker.readiness().await.unwrap_err();
    assert_eq!(
        why,
        "document store: document store refused the read: CouchDB answered 403 Forbidden for system_config (forbidden: Account is temporarily locked due to multiple authentication failures)"
    );
    for _ in 0..3 {
        let r = cf.request(&acct, acct.request(&tid("device", 1))).await;
        assert_eq!(r["Error-Code"], "db_not_reachable");
        assert!(
            r["Error-Message"]
                .as_str()
                .unwrap()
                .contains("temporarily locked")
        );
    }
    // The probe and every build reached the server (a build reads more than once).
    assert!(hits.load(Ordering::SeqCst) >= before + 4);
    w.stop().await.unwrap();
    acct.drop_db().await;
}

// -------------------------------------------------------------------------------------------
// Tasks that die, and a window that never drains
// -------------------------------------------------------------------------------------------

/// The poison id: reading it panics (a stand-in for a bug in the build).
const POISON: &str = "badbadbadbadbadbadbadbadbadbad00";
/// Reading this id takes this store 1.5 s (a build that holds its slot).
const SLOW: &str = "51057051057051057051057051057000";

/// The test server's CouchDB, except that reading [`POISON`] panics and [`SLOW`] is slow.
struct Faulty(CouchStore);

impl DocumentStore for Faulty {
    async fn open_docs(&self, db: &str, ids: &[String]) -> Result<Docs, StoreError> {
        if ids.iter().any(|i| i == POISON) {
            panic!("deliberate panic: the build of {POISON}");
        }
        if ids.iter().any(|i| i == SLOW) {
            tokio::time::sleep(Duration::from_millis(1500)).await;
        }
        self.0.open_docs(db, ids).await
    }
    async fn owned_devices(&self, db: &str, users: &[String]) -> Result<Owned, StoreError> {
        self.0.owned_devices(db, users).await
    }
}

impl ServingStore for Faulty {
    fn cache(&self) -> Option<&Arc<DocCache>> {
        None
    }
    async fn check(&self) -> Result<(), String> {
        self.0.check().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_build_is_answered_settled_and_does_not_stall_the_worker() {
    let acct = Account::create().await;
    acct.put(acct.device(1, json!({"sip": {"ip": "10.0.0.1"}})))
        .await;
    let store = Faulty(CouchStore::new(&couch_url(), Duration::from_millis(1000)).unwrap());
    let w = start_worker_with(&acct, store, None, |c| c.prefetch = 2).await;
    let load = Load::new().await;
    // Ten times the prefetch window: every one answered with internal.
    let ids: Vec<String> = (0..20).map(|i| format!("p-{i}")).collect();
    for id in &ids {
        load.send(&acct.routing_key(), acct.request(POISON), id)
            .await;
    }
    // And as many without a reply address: rejected, not redelivered for ever.
    for _ in 0..20 {
        let mut req = acct.request(POISON);
        req["Msg-ID"] = json!(random_hex(8));
        load.raw(
            &acct.routing_key(),
            serde_json::to_vec(&req).unwrap(),
            json_properties(),
        )
        .await;
    }
    assert!(load.wait_all(&ids, Duration::from_secs(20)).await);
    for (_, r) in load.by_msg_id().values().flatten() {
        assert_eq!(r["Event-Name"], "build_error");
        assert_eq!(r["Error-Code"], "internal");
        assert!(
            r["Error-Message"]
                .as_str()
                .unwrap()
                .starts_with("the build failed unexpectedly"),
            "{r}"
        );
    }
    wait_for("every delivery settled", || w.worker.in_flight() == 0).await;
    assert_eq!(queue_depth(&w.queue).await, 0);
    // The unanswerable ones were never built, so only the 20 with an address panicked.
    assert_eq!(w.worker.stats.task_failures.load(Ordering::Relaxed), 20);
    assert_eq!(w.worker.stats.unanswerable.load(Ordering::Relaxed), 20);
    assert_eq!(w.worker.stats.error_count("internal"), 20);
    // Still serving, and ready.
    let mut cf = Callflow::new().await;
    let r = cf.request(&acct, acct.request(&tid("device", 1))).await;
    assert_eq!(summary(&r), ["SIP:d1"]);
    assert_eq!(w.worker.readiness().await, Ok(()));
    println!(
        "faults: deliberate panics: 20/20 answered internal, 20 without address settled; prefetch 2, queue drained, worker ready"
    );
    w.stop().await.unwrap();
    acct.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_full_with_no_completion_is_not_ready() {
    let acct = Account::create().await;
    let store = Faulty(CouchStore::new(&couch_url(), Duration::from_millis(1000)).unwrap());
    let w = start_worker_with(&acct, store, None, |c| {
        c.prefetch = 2;
        c.stall_after = Duration::from_millis(300);
    })
    .await;
    let load = Load::new().await;
    let ids: Vec<String> = (0..2).map(|i| format!("slow-{i}")).collect();
    for id in &ids {
        load.send(&acct.routing_key(), acct.request(SLOW), id).await;
    }
    wait_for("the window to fill", || w.worker.in_flight() == 2).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let why = w.worker.readiness().await.unwrap_err();
    assert!(
        why.starts_with("stalled: all 2 request slots busy with no request finished for "),
        "{why}"
    );
    assert!(load.wait_all(&ids, Duration::from_secs(10)).await);
    wait_for("the window to drain", || w.worker.in_flight() == 0).await;
    assert_eq!(w.worker.readiness().await, Ok(()));
    w.stop().await.unwrap();
    acct.drop_db().await;
}

// -------------------------------------------------------------------------------------------
// Values AMQP cannot carry
// -------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registrar_key_too_long_for_amqp_is_an_unknown_registration() {
    let acct = Account::create().await;
    // 200 bytes of username: encoded with the realm, the routing key passes 255 bytes.
    let long = "u".repeat(120) + &".x".repeat(40);
    acct.put(acct.device(
        1,
        json!({"sip": {"username": long}, "call_failover": {"enabled": true, "number": "+15550001111"}}),
    ))
    .await;
    acct.put(credentialed(&acct, 2)).await;
    let _ecm = ecallmgr(&acct.realm, &[("d2", Answer::Registered)]).await;
    let w = start_worker(&acct, couch_store(None), None).await;
    wait_for("the ecallmgr heartbeat", || w.worker.ecallmgr_nodes() > 0).await;
    let mut cf = Callflow::new().await;
    let r = cf.request(&acct, acct.request(&tid("device", 1))).await;
    assert_eq!(summary(&r), [format!("SIP:{long}+F:+15550001111")]);
    // The build after it is untouched.
    let r = cf.request(&acct, acct.request(&tid("device", 2))).await;
    assert_eq!(summary(&r), ["SIP:d2"]);
    w.stop().await.unwrap();
    acct.drop_db().await;
}

// -------------------------------------------------------------------------------------------
// A corpus of bad input
// -------------------------------------------------------------------------------------------

/// One corpus message: the body, its properties, and whether it has a usable reply address.
struct Bad {
    body: Vec<u8>,
    props: BasicProperties,
    answered: bool,
}

/// Every field of a request set to `v` (top level and in `Call`), one message each.
fn each_field(req: &Value, v: &Value, out: &mut Vec<Value>) {
    for key in req.as_object().unwrap().keys() {
        let mut r = req.clone();
        r[key.as_str()] = v.clone();
        out.push(r);
    }
    for key in req["Call"].as_object().unwrap().keys() {
        let mut r = req.clone();
        r["Call"][key.as_str()] = v.clone();
        out.push(r);
    }
    for key in ["source", "can_call_self", "timeout", "delay", "endpoints"] {
        let mut r = req.clone();
        r["Properties"][key] = v.clone();
        out.push(r);
    }
}

/// A few thousand bad messages for `acct`, each with a reply address to `queue` (its
/// `Server-ID`, or an AMQP `reply_to` for a body that is not JSON) unless said otherwise.
fn corpus(acct: &Account, queue: &str) -> Vec<Bad> {
    let base = {
        let mut r = acct.request(&tid("device", 1));
        r["Msg-ID"] = json!("corpus");
        r["Server-ID"] = json!(queue);
        r
    };
    let json_props = json_properties;
    let reply_to = || json_properties().with_reply_to(queue.into());
    let mut out = Vec::new();
    let mut push = |body: Vec<u8>, props: BasicProperties, answered: bool| {
        out.push(Bad {
            body,
            props,
            answered,
        })
    };
    // Not JSON, invalid UTF-8, truncated, not an object, deep nesting; through reply_to.
    let not_json: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"not json".to_vec(),
        vec![0xff, 0xfe, 0xfd, 0x00, 0x80],
        b"{\"Msg-ID\": \"\xff\xfe\"}".to_vec(),
        serde_json::to_vec(&base).unwrap()[..40].to_vec(),
        b"[1,2,3]".to_vec(),
        b"\"a string\"".to_vec(),
        b"null".to_vec(),
        b"12345".to_vec(),
        "[".repeat(100_000).into_bytes(),
        format!("{}1{}", "{\"a\":".repeat(5000), "}".repeat(5000)).into_bytes(),
    ];
    for (i, b) in not_json.iter().enumerate() {
        push(b.clone(), reply_to(), true);
        // Without a reply address: settled, nothing sent.
        push(b.clone(), json_props(), false);
        // Garbage bytes after a valid body.
        let mut tail = serde_json::to_vec(&base).unwrap();
        tail.extend_from_slice(&b[..b.len().min(10 + i)]);
        push(
            tail,
            json_props(),
            i == 0 || b.iter().all(|c| c.is_ascii_whitespace()),
        );
    }
    // Random bytes.
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    for len in (0..1500).map(|i| i * 3) {
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng as u8
            })
            .collect();
        push(bytes, reply_to(), true);
    }
    // Oversized: refused unread.
    for n in [1024 * 1024 + 1, 2 * 1024 * 1024] {
        let mut big = base.clone();
        big["Padding"] = json!("x".repeat(n));
        push(serde_json::to_vec(&big).unwrap(), reply_to(), true);
        push(serde_json::to_vec(&big).unwrap(), json_props(), false);
    }
    // Wrong or no content type.
    for ct in [Some("text/plain"), Some("application/xml"), Some(""), None] {
        let props = match ct {
            Some(t) => BasicProperties::default().with_content_type(t.into()),
            None => BasicProperties::default(),
        };
        push(serde_json::to_vec(&base).unwrap(), props, true);
    }
    // Every field missing.
    for key in base.as_object().unwrap().keys() {
        let mut r = base.clone();
        r.as_object_mut().unwrap().remove(key);
        let answered = key != "Server-ID";
        push(serde_json::to_vec(&r).unwrap(), json_props(), answered);
    }
    // Every field mistyped, or an over-long string (past AMQP's 255 bytes, and long).
    let mut mutated = Vec::new();
    for v in [
        json!(null),
        json!(42),
        json!(-1.5e300),
        json!(true),
        json!([]),
        json!([1, "a", null]),
        json!({}),
        json!({"nested": {"deeper": [1, 2, 3]}}),
        json!(""),
        json!("x".repeat(256)),
        json!("é".repeat(300)),
        json!("y".repeat(70_000)),
        json!("not-an-id"),
        json!("0000000000000000000000000000000G"),
        json!("pid://<0.1.0>/"),
        json!("\u{0000}\u{ffff}\u{1F4DE}"),
        json!(i64::MIN),
        json!(u64::MAX),
        json!("-1"),
        json!("1e400"),
        json!({"Msg-ID": "inner", "Server-ID": "elsewhere"}),
        json!(["x".repeat(300)]),
        json!(format!("pid://<0.1.0>/{}", "q".repeat(300))),
    ] {
        each_field(&base, &v, &mut mutated);
    }
    // Ring-group members, each field of a member wrong.
    for m in [
        json!([{}]),
        json!([{"id": 5}]),
        json!([{"id": "x".repeat(300)}]),
        json!([{"id": tid("device", 1), "endpoint_type": "trunk"}]),
        json!([{"id": tid("device", 1), "delay": "soon"}]),
        json!([{"id": tid("device", 1), "timeout": {"a": 1}}]),
        json!([null, 1, "a"]),
        json!(
            (0..5000)
                .map(|_| json!({"id": tid("device", 1)}))
                .collect::<Vec<_>>()
        ),
    ] {
        let mut r = base.clone();
        r.as_object_mut().unwrap().remove("Endpoint-ID");
        r["Properties"]["endpoints"] = m;
        mutated.push(r);
    }
    for r in mutated {
        // Answered when the Server-ID is still a usable address.
        let answered = match &r["Server-ID"] {
            Value::String(s) => {
                let q = s
                    .strip_prefix("pid://")
                    .and_then(|p| p.rsplit_once('/'))
                    .map(|(_, q)| q)
                    .unwrap_or(s);
                !q.is_empty() && q.len() <= 255 && q == queue
            }
            _ => false,
        };
        // A Server-ID that is another usable queue name is a reply to someone else.
        let elsewhere = matches!(&r["Server-ID"], Value::String(s) if s != queue && !s.is_empty() && s.len() <= 255 && !s.starts_with("pid://"));
        if elsewhere {
            continue;
        }
        push(serde_json::to_vec(&r).unwrap(), json_props(), answered);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corpus_of_bad_input_is_answered_or_settled_and_the_queue_drains() {
    let acct = Account::create().await;
    acct.put(acct.device(1, json!({"sip": {"ip": "10.0.0.1"}})))
        .await;
    let w = start_worker(&acct, couch_store(None), None).await;
    let load = Load::new().await;
    let bad = corpus(&acct, &load.queue);
    let expected = bad.iter().filter(|b| b.answered).count();
    let unanswered = bad.len() - expected;
    let started = Instant::now();
    let settled = || load.count() + w.worker.stats.unanswerable.load(Ordering::Relaxed) as usize;
    for (i, b) in bad.iter().enumerate() {
        // At most 50 outstanding: the request queue keeps 100 (see Load::pace).
        for _ in 0..4000 {
            if i - settled().min(i) <= 50 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        load.raw(&acct.routing_key(), b.body.clone(), b.props.clone())
            .await;
    }
    assert!(
        load.wait_count(expected, Duration::from_secs(60)).await,
        "{} of {expected} answered",
        load.count()
    );
    wait_for("every delivery settled", || {
        w.worker.in_flight() == 0
            && w.worker.stats.unanswerable.load(Ordering::Relaxed) as usize == unanswered
    })
    .await;
    let took = started.elapsed();
    // Nothing more comes: no message was answered twice or when it should not have been.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(load.count(), expected);
    assert_eq!(queue_depth(&w.queue).await, 0);
    let replies = load.replies.lock().unwrap().clone();
    let mut codes: HashMap<String, usize> = HashMap::new();
    for (_, r) in &replies {
        let outcome = match r["Event-Name"].as_str() {
            Some("build_error") => r["Error-Code"].as_str().unwrap().to_owned(),
            Some("build_resp") => "build_resp".to_owned(),
            other => panic!("not a build reply: {other:?} {r}"),
        };
        assert_ne!(r["Msg-ID"], "", "{r}");
        *codes.entry(outcome).or_default() += 1;
    }
    assert_eq!(w.worker.stats.task_failures.load(Ordering::Relaxed), 0);
    // Alive, and right.
    let mut cf = Callflow::new().await;
    let r = cf.request(&acct, acct.request(&tid("device", 1))).await;
    assert_eq!(summary(&r), ["SIP:d1"]);
    let mut codes: Vec<_> = codes.into_iter().collect();
    codes.sort();
    println!(
        "faults: bad-input corpus: {} messages in {} ms; {expected} answered ({codes:?}), {unanswered} settled without a reply; queue drained, no task failed",
        bad.len(),
        took.as_millis()
    );
    w.stop().await.unwrap();
    acct.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_too_large_for_a_message_is_answered_with_internal() {
    let acct = Account::create().await;
    // 100 kB of metaflows on the account, copied onto each of 90 legs: a 9 MB reply, which
    // RabbitMQ 4 would take the channel for.
    let numbers: serde_json::Map<String, Value> = (0..1000)
        .map(|i| (format!("{i:04}"), json!({"module": "x".repeat(80)})))
        .collect();
    acct.put(json!({
        "_id": acct.id, "pvt_type": "account", "name": "Test account", "realm": acct.realm,
        "metaflows": {"numbers": numbers}
    }))
    .await;
    let mut members = serde_json::Map::new();
    for n in 1..=90 {
        acct.put(acct.device(n, json!({"sip": {"ip": "10.0.0.1"}})))
            .await;
        members.insert(tid("device", n), json!({"type": "device"}));
    }
    acct.put(
        json!({"_id": tid("group", 1), "pvt_type": "group", "name": "All", "endpoints": members}),
    )
    .await;
    let w = start_worker(&acct, couch_store(None), None).await;
    let mut cf = Callflow::new().await;
    let r = cf.request(&acct, acct.request(&tid("group", 1))).await;
    assert_eq!(r["Error-Code"], "internal", "{}", r["Event-Name"]);
    let msg = r["Error-Message"].as_str().unwrap();
    assert!(
        msg.starts_with("the reply would be ")
            && msg.ends_with("over the 8388608-byte limit of a message"),
        "{msg}"
    );
    // The channel is intact: the next reply goes out.
    let r = cf.request(&acct, acct.request(&tid("device", 1))).await;
    assert_eq!(summary(&r), ["SIP:d1"]);
    assert_eq!(w.worker.stats.reconnects.load(Ordering::Relaxed), 0);
    w.stop().await.unwrap();
    acct.drop_db().await;
}
