//! The live worker: `build_req` from RabbitMQ in, replies out.
//!
//! One broker connection carries three things:
//! - the shared request queue (bound to `kapps` with `endpoint.build.*`), consumed with
//!   manual acknowledgement, so several workers compete for requests and a message is
//!   acknowledged only after its reply is published;
//! - a private queue for everything addressed to this worker: registrar answers (on
//!   `targeted`), node heartbeats (`nodes`) and document-change events (`configuration`);
//! - publishes: replies and registration queries.
//!
//! A lost connection is re-established with backoff, the topology declared again and
//! consumption resumed; the document cache is dropped meanwhile, because change events may
//! have been missed. On shutdown the worker stops consuming, finishes and acknowledges what
//! it has in flight, and returns.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicQosOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties};
use serde_json::Value;
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::amqp::{
    CONFIGURATION, KAPPS, NODES, TARGETED, declare_exchanges, json_properties, private_queue,
    publish_json, publish_targeted, queue_args, random_hex,
};
use crate::build_api::{ErrorCode, Identity};
use crate::cache::{CachedStore, DocCache};
use crate::capture::Recorder;
use crate::conf_events;
use crate::couchdb::CouchStore;
use crate::documents::{Docs, DocumentStore, Owned, StoreError};
use crate::fixturedb::FixtureDb;
use crate::handler::handle_message;
use crate::nodes::NodeTracker;
use crate::registrar::amqp::{AmqpRegistrar, PendingQueries};
use crate::shutdown::Shutdown;
use crate::stats::Stats;

/// Where documents come from.
pub enum Store {
    /// CouchDB, with the cache in front.
    Couch(CachedStore<CouchStore>),
    /// A fixture folder (the embedded default).
    Fixture(FixtureDb),
}

impl Store {
    /// The cache, when there is one.
    pub fn cache(&self) -> Option<&Arc<DocCache>> {
        match self {
            Store::Couch(c) => Some(&c.cache),
            Store::Fixture(_) => None,
        }
    }

    /// Whether the store answers.
    pub async fn reachable(&self) -> bool {
        match self {
            Store::Couch(c) => c.store.ping().await,
            Store::Fixture(f) => f.root().is_dir(),
        }
    }
}

impl DocumentStore for Store {
    async fn open_docs(&self, db: &str, ids: &[String]) -> Result<Docs, StoreError> {
        match self {
            Store::Couch(s) => s.open_docs(db, ids).await,
            Store::Fixture(s) => s.open_docs(db, ids).await,
        }
    }

    async fn owned_devices(&self, db: &str, user_ids: &[String]) -> Result<Owned, StoreError> {
        match self {
            Store::Couch(s) => s.owned_devices(db, user_ids).await,
            Store::Fixture(s) => s.owned_devices(db, user_ids).await,
        }
    }
}

/// How the worker joins the broker.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// `amqp://user:pass@host:port/vhost`.
    pub amqp_url: String,
    /// The shared request queue.
    pub queue: String,
    /// Routing keys binding the request queue to `kapps`.
    pub bindings: Vec<String>,
    /// Unacknowledged requests in flight at most.
    pub prefetch: u16,
    /// How long a build waits for registrars.
    pub registrar_deadline: Duration,
    /// Our `Node`.
    pub node: String,
    /// First and longest wait between reconnection attempts.
    pub backoff: (Duration, Duration),
}

impl WorkerConfig {
    /// The defaults for `amqp_url` and `node`.
    pub fn new(amqp_url: impl Into<String>, node: impl Into<String>) -> Self {
        Self {
            amqp_url: amqp_url.into(),
            queue: "endpoint_builder".into(),
            bindings: vec!["endpoint.build.*".into()],
            prefetch: 10,
            registrar_deadline: Duration::from_millis(500),
            node: node.into(),
            backoff: (Duration::from_millis(100), Duration::from_secs(5)),
        }
    }
}

/// The worker and its shared state.
pub struct Worker {
    config: WorkerConfig,
    store: Store,
    identity: Identity,
    nodes: Arc<NodeTracker>,
    consuming: AtomicBool,
    recorder: Option<Recorder>,
    /// Counters.
    pub stats: Stats,
}

/// How a connection's session ended.
enum SessionEnd {
    Shutdown,
    Lost(String),
}

impl Worker {
    /// A worker reading documents from `store`.
    pub fn new(config: WorkerConfig, store: Store) -> Arc<Self> {
        Arc::new(Self {
            identity: Identity::new(config.node.clone()),
            config,
            store,
            nodes: Arc::new(NodeTracker::new()),
            consuming: AtomicBool::new(false),
            recorder: None,
            stats: Stats::default(),
        })
    }

    /// A worker that also writes a capture of every request it answers (`serve --record`).
    pub fn with_recorder(config: WorkerConfig, store: Store, recorder: Recorder) -> Arc<Self> {
        let mut w = Arc::into_inner(Self::new(config, store)).expect("a fresh worker");
        w.recorder = Some(recorder);
        Arc::new(w)
    }

    /// Ready to serve: consuming requests, and the document store answers.
    pub async fn readiness(&self) -> Result<(), &'static str> {
        if !self.is_consuming() {
            return Err("not consuming build requests (broker connection down)");
        }
        if !self.store.reachable().await {
            return Err("the document store is not reachable");
        }
        Ok(())
    }

    /// True while the request queue is being consumed.
    pub fn is_consuming(&self) -> bool {
        self.consuming.load(Ordering::Relaxed)
    }

    /// The live ecallmgr nodes this worker knows of.
    pub fn ecallmgr_nodes(&self) -> usize {
        self.nodes.ecallmgr_count(Instant::now())
    }

    /// Our node name (also the prefix of our broker connection's name).
    pub fn node(&self) -> &str {
        &self.config.node
    }

    /// The document store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Runs until `shutdown` fires, reconnecting whenever the broker connection is lost.
    pub async fn run(self: Arc<Self>, mut shutdown: Shutdown) -> anyhow::Result<()> {
        let (min, max) = self.config.backoff;
        let mut backoff = min;
        loop {
            let started = Instant::now();
            let end = self.session(&shutdown).await;
            self.consuming.store(false, Ordering::Relaxed);
            let reason = match end {
                Ok(SessionEnd::Shutdown) => return Ok(()),
                Ok(SessionEnd::Lost(why)) => why,
                Err(e) => format!("{e:#}"),
            };
            if let Some(cache) = self.store.cache() {
                cache.clear();
            }
            if started.elapsed() > max * 2 {
                backoff = min;
            }
            tracing::warn!(reason = %reason, retry_in_ms = backoff.as_millis() as u64, "broker connection lost");
            tokio::select! {
                _ = shutdown.wait() => return Ok(()),
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(max);
            self.stats.reconnects.fetch_add(1, Ordering::Relaxed);
        }
    }

    async fn session(self: &Arc<Self>, shutdown: &Shutdown) -> anyhow::Result<SessionEnd> {
        let mut shutdown = shutdown.clone();
        let name = format!("{}-{}", self.config.node, random_hex(8));
        let conn = Connection::connect(
            &self.config.amqp_url,
            ConnectionProperties::default().with_connection_name(name.clone().into()),
        )
        .await?;
        let publish = conn.create_channel().await?;
        declare_exchanges(&publish).await?;

        // Our own queue: registrar answers, heartbeats, change events.
        let events = conn.create_channel().await?;
        let own_queue = name.clone();
        let mut own_bindings = vec![(TARGETED, None), (NODES, Some(""))];
        own_bindings.extend(
            conf_events::BINDINGS
                .iter()
                .map(|b| (CONFIGURATION, Some(*b))),
        );
        let mut own_consumer = private_queue(
            &events,
            &own_queue,
            queue_args(60_000, 10_000),
            &own_bindings,
        )
        .await?;

        // The shared request queue.
        let requests = conn.create_channel().await?;
        requests
            .basic_qos(self.config.prefetch, BasicQosOptions::default())
            .await?;
        requests
            .queue_declare(
                self.config.queue.as_str().into(),
                QueueDeclareOptions {
                    auto_delete: true,
                    ..Default::default()
                },
                queue_args(3_000, 100),
            )
            .await?;
        for key in &self.config.bindings {
            requests
                .queue_bind(
                    self.config.queue.as_str().into(),
                    KAPPS.into(),
                    key.as_str().into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await?;
        }
        let consumer_tag = format!("{name}-requests");
        let mut request_consumer = requests
            .basic_consume(
                self.config.queue.as_str().into(),
                consumer_tag.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        self.consuming.store(true, Ordering::Relaxed);
        tracing::info!(queue = %self.config.queue, node = %self.config.node, "consuming build requests");

        let pending = Arc::new(PendingQueries::default());
        let registrar = AmqpRegistrar {
            channel: publish.clone(),
            reply_queue: own_queue.clone(),
            node: self.config.node.clone(),
            deadline: self.config.registrar_deadline,
            nodes: self.nodes.clone(),
            pending: pending.clone(),
        };
        let mut inflight = JoinSet::new();
        let end = loop {
            tokio::select! {
                _ = shutdown.wait() => break SessionEnd::Shutdown,
                d = request_consumer.next() => match d {
                    Some(Ok(delivery)) => {
                        let (me, registrar, publish) = (self.clone(), registrar.clone(), publish.clone());
                        inflight.spawn(async move { me.on_request(delivery, &registrar, &publish).await });
                    }
                    Some(Err(e)) => break SessionEnd::Lost(e.to_string()),
                    None => break SessionEnd::Lost("the request consumer was cancelled".into()),
                },
                e = own_consumer.next() => match e {
                    Some(Ok(delivery)) => self.on_event(&delivery, &pending),
                    Some(Err(e)) => break SessionEnd::Lost(e.to_string()),
                    None => break SessionEnd::Lost("the event consumer was cancelled".into()),
                },
                Some(_) = inflight.join_next(), if !inflight.is_empty() => {}
            }
        };
        if let SessionEnd::Lost(_) = end {
            inflight.abort_all();
            return Ok(end);
        }
        // Shutdown: take no more requests, finish (and acknowledge) the ones in flight. They
        // may still wait on registrar answers, so keep reading our own queue meanwhile.
        let _ = requests
            .basic_cancel(consumer_tag.as_str().into(), BasicCancelOptions::default())
            .await;
        self.consuming.store(false, Ordering::Relaxed);
        while !inflight.is_empty() {
            tokio::select! {
                _ = inflight.join_next() => {}
                e = own_consumer.next() => match e {
                    Some(Ok(delivery)) => self.on_event(&delivery, &pending),
                    _ => break,
                },
            }
        }
        while inflight.join_next().await.is_some() {}
        let _ = conn.close(200, "shutdown".into()).await;
        tracing::info!("stopped");
        Ok(SessionEnd::Shutdown)
    }

    /// Something on our own queue: a registrar answer, a heartbeat or a change event.
    fn on_event(&self, delivery: &Delivery, pending: &PendingQueries) {
        let Ok(msg) = serde_json::from_slice::<Value>(&delivery.data) else {
            tracing::debug!(exchange = %delivery.exchange, "unreadable event ignored");
            return;
        };
        match msg.get("Event-Category").and_then(Value::as_str) {
            Some("directory") => {
                pending.deliver(&msg);
            }
            Some("nodes") => self.nodes.observe(&msg, Instant::now()),
            Some("configuration") => {
                if let (Some(change), Some(cache)) = (conf_events::parse(&msg), self.store.cache())
                {
                    tracing::debug!(?change, "document change");
                    cache.apply(&change);
                }
            }
            _ => {}
        }
    }

    /// One build request: validate, build, reply, acknowledge.
    async fn on_request(&self, delivery: Delivery, registrar: &AmqpRegistrar, publish: &Channel) {
        let props = &delivery.properties;
        let reply_to = props
            .reply_to()
            .as_ref()
            .map(|s| s.to_string())
            .filter(|s| !s.is_empty());
        let correlation_id = props.correlation_id().clone();
        let content_type = props.content_type().as_ref().map(|s| s.to_string());
        let started = Instant::now();
        let handled = handle_message(
            &delivery.data,
            content_type.as_deref(),
            &self.store,
            registrar,
            &self.identity,
        )
        .await;
        let envelope = &handled.envelope;
        let span = tracing::info_span!(
            "build",
            msg_id = envelope.msg_id.as_deref().unwrap_or(""),
            account = envelope.account_id.as_deref().unwrap_or(""),
            endpoint = envelope.endpoint_id.as_deref().unwrap_or(""),
            call_id = envelope.call_id.as_deref().unwrap_or(""),
        );
        async move {
            // Counted before the reply goes out, so whoever reads the reply also sees it
            // counted.
            if let Some(r) = &handled.resolution {
                self.stats.record_registrations(r.inputs.registrations.values());
                if r.registrar_lookups > 0 {
                    self.stats.registrar_seconds.observe(r.registrar_time.as_secs_f64());
                }
            }
            self.stats.record(&handled.result);
            self.stats.build_seconds.observe(started.elapsed().as_secs_f64());
            let invalid = matches!(&handled.result, Err(e) if e.code == ErrorCode::InvalidRequest);
            if invalid {
                self.stats.invalid_inputs.fetch_add(1, Ordering::Relaxed);
            }
            let published = if let Some(queue) = &reply_to {
                let mut p = json_properties();
                if let Some(c) = correlation_id {
                    p = p.with_correlation_id(c);
                }
                Some(publish_json(publish, "", queue, &handled.reply, p).await)
            } else if let Some(server_id) = &handled.envelope.server_id {
                Some(publish_targeted(publish, server_id, &handled.reply).await)
            } else {
                self.stats.unanswerable.fetch_add(1, Ordering::Relaxed);
                None
            };
            if let Some(Err(e)) = &published {
                // Not acknowledged: the broker hands it out again once we are back.
                tracing::warn!(error = %e, "reply not published");
                return;
            }
            if let Err(e) = delivery.acker.ack(BasicAckOptions::default()).await {
                tracing::warn!(error = %e, "acknowledgement failed");
            }
            if let Some(recorder) = &self.recorder {
                recorder.record(&delivery, &handled).await;
            }
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            match &handled.result {
                Ok(legs) => tracing::info!(legs = legs.len(), ms, "built"),
                Err(e) if invalid => {
                    tracing::warn!(error = %e.message, answered = published.is_some(), "invalid request")
                }
                Err(e) => tracing::info!(code = %e.code, error = %e.message, ms, "not built"),
            }
        }
        .instrument(span)
        .await
    }
}
