//! The live worker: `build_req` from RabbitMQ in, replies out.
//!
//! A broker session is one connection ([`crate::broker_connection`]), on the thread that
//! handles the requests. It declares what Kazoo would (the exchanges, the shared request
//! queue and our own), then consumes two queues on its one channel:
//! - the shared request queue (bound to `kapps` with `endpoint.build.*`), with manual
//!   acknowledgement, so several workers compete for requests; replies and acknowledgements
//!   go out on the same channel, each acknowledgement behind its reply;
//! - a private queue for everything addressed to this worker (registrar answers on
//!   `targeted`, node heartbeats on `nodes`, document-change events on `configuration`),
//!   without acknowledgements, as a Kazoo listener consumes its own. The registrar's queries
//!   go out on the connection too, so a build that asks the registrar never leaves the
//!   thread either.
//!
//! Losing the connection ends the session: a new one is established with backoff, the
//! topology declared again and consumption resumed; the document cache is dropped
//! meanwhile, because change events may have been missed. On shutdown the worker cancels
//! its request consumer, finishes and acknowledges what it has in flight (and what was
//! already on its way), and returns.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use amq_protocol::protocol::AMQPClass;
use futures_util::FutureExt;
use serde_json::Value;
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::amqp::{
    CONFIGURATION, KAPPS, NODES, PublishError, ReplyAddress, TARGETED, exchange_declarations,
    queue_args, queue_binding, queue_declaration, random_hex, short_string,
};
use crate::broker_connection::{BrokerConnection, Consume, Delivery, Event, Outbox};
use crate::build_api::{BuildError, ErrorCode, Identity, reply_body};
use crate::cache::{CachedStore, DocCache};
use crate::conf_events;
use crate::couchdb::CouchStore;
use crate::documents::{Docs, DocumentStore, Owned, StoreError};
use crate::fixturedb::FixtureDb;
use crate::handler::{Answered, handle_read, oversized, read_request};
use crate::message_json::Json;
use crate::nodes::NodeTracker;
use crate::progress::{InFlight, Progress};
use crate::recorder::Recorder;
use crate::registrar::amqp::{AmqpRegistrar, PendingQueries};
use crate::resolver::Limits;
use crate::settlement::Settlement;
use crate::shutdown::Shutdown;
use crate::stats::Stats;

/// Where documents come from.
pub enum Store {
    /// CouchDB, with the cache in front.
    Couch(CachedStore<CouchStore>),
    /// A fixture folder (the embedded default).
    Fixture(FixtureDb),
}

/// A document store the worker can serve from: the documents, plus what readiness and the
/// change events need of it. The worker is generic over it so that tests can put a store
/// of their own (one that fails on purpose) behind the real consumer.
pub trait ServingStore: DocumentStore + Send + Sync + 'static {
    /// The cache change events evict from, when there is one.
    fn cache(&self) -> Option<&Arc<DocCache>> {
        None
    }

    /// Whether the store answers and serves us: `Err` says why not.
    fn check(&self) -> impl Future<Output = Result<(), String>> + Send;

    /// Adds the store's own metrics (names without the `kz_endpoint_` prefix).
    fn register_metrics(&self, _registry: &mut prometheus_client::registry::Registry) {}
}

impl Store {
    /// The cache, when there is one.
    pub fn cache(&self) -> Option<&Arc<DocCache>> {
        match self {
            Store::Couch(c) => Some(&c.cache),
            Store::Fixture(_) => None,
        }
    }
}

impl ServingStore for Store {
    fn cache(&self) -> Option<&Arc<DocCache>> {
        Store::cache(self)
    }

    fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        if let Store::Couch(c) = self {
            c.store.metrics().register(registry);
            registry.register_collector(Box::new(crate::cache::CacheCollector(c.cache.clone())));
        }
    }

    async fn check(&self) -> Result<(), String> {
        match self {
            Store::Couch(c) => c.store.check().await,
            Store::Fixture(f) if f.root().is_dir() => Ok(()),
            Store::Fixture(f) => Err(format!(
                "the fixture folder {} does not exist",
                f.root().display()
            )),
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
    /// How long the request window may stay full with no completion before readiness
    /// fails (a stalled worker).
    pub stall_after: Duration,
    /// What one build may cost.
    pub limits: Limits,
}

impl WorkerConfig {
    // Every `serve` default lives here, once: `WorkerConfig::new` and the command line
    // (`kz-endpoint serve`, whose `--help` shows them) both read these.

    /// The broker unless told otherwise (RabbitMQ's own default account).
    pub const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
    /// The shared request queue's default name.
    pub const DEFAULT_QUEUE: &str = "endpoint_builder";
    /// The default binding: every account's build requests.
    pub const DEFAULT_BINDING: &str = "endpoint.build.*";
    /// The default prefetch.
    pub const DEFAULT_PREFETCH: u16 = 10;
    /// The default registrar deadline, in milliseconds.
    pub const DEFAULT_REGISTRAR_DEADLINE_MS: u64 = 500;
    /// The default stall threshold is this many registrar deadlines...
    pub const STALL_AFTER_DEADLINES: u32 = 4;
    /// ... and at least this many milliseconds.
    pub const MIN_STALL_AFTER_MS: u64 = 2000;
    /// The first wait before reconnecting, in milliseconds (doubled up to the longest).
    pub const DEFAULT_BACKOFF_FIRST_MS: u64 = 100;
    /// The longest wait between reconnection attempts, in milliseconds.
    pub const DEFAULT_BACKOFF_MAX_MS: u64 = 5000;

    /// The defaults for `amqp_url` and `node`.
    pub fn new(amqp_url: impl Into<String>, node: impl Into<String>) -> Self {
        let registrar_deadline = Duration::from_millis(Self::DEFAULT_REGISTRAR_DEADLINE_MS);
        Self {
            amqp_url: amqp_url.into(),
            queue: Self::DEFAULT_QUEUE.into(),
            bindings: vec![Self::DEFAULT_BINDING.into()],
            prefetch: Self::DEFAULT_PREFETCH,
            registrar_deadline,
            node: node.into(),
            backoff: (
                Duration::from_millis(Self::DEFAULT_BACKOFF_FIRST_MS),
                Duration::from_millis(Self::DEFAULT_BACKOFF_MAX_MS),
            ),
            stall_after: Self::default_stall_after(registrar_deadline),
            limits: Limits::default(),
        }
    }

    /// The stall threshold unless told otherwise: a full window may wait for registrars a
    /// few times over before it counts as stalled.
    pub fn default_stall_after(registrar_deadline: Duration) -> Duration {
        registrar_deadline
            .saturating_mul(Self::STALL_AFTER_DEADLINES)
            .max(Duration::from_millis(Self::MIN_STALL_AFTER_MS))
    }

    /// Checks the names AMQP carries as short strings (queue, bindings, our node name in the
    /// queue and connection names), so a bad setting is an error at start, not a panic.
    pub fn validate(&self) -> anyhow::Result<()> {
        // Our own queue and connection are `<node>-<8 hex>`; the request consumer's tag is
        // that plus `-requests`, and the events consumer's that plus `-events`.
        short_string(
            "--node (plus 25 bytes)",
            &format!("{}-01234567-requests-events", self.node),
        )?;
        short_string("--queue", &format!("{}-01234567-requests", self.queue))?;
        for b in &self.bindings {
            short_string("a --binding", b)?;
        }
        anyhow::ensure!(self.prefetch > 0, "--prefetch must be at least 1");
        Ok(())
    }
}

/// How long shutdown waits for the broker to confirm the request consumer's cancel.
const CANCEL_TIMEOUT: Duration = Duration::from_secs(5);

/// The worker and its shared state.
pub struct Worker<S = Store> {
    config: WorkerConfig,
    store: S,
    identity: Identity,
    nodes: Arc<NodeTracker>,
    consuming: AtomicBool,
    progress: Progress,
    recorder: Option<Recorder>,
    /// Counters.
    pub stats: Stats,
}

/// What the request tasks of one broker session share: the registrar, and the connection's
/// sending side (replies, settlements and the registrar's queries all go out on it).
struct SessionChannels {
    registrar: AmqpRegistrar,
    outbox: Outbox,
}

/// How a connection's session ended.
enum SessionEnd {
    Shutdown,
    /// The broker could not be reached, or refused the connection (the login, the vhost),
    /// or opening took too long.
    Unreachable(String),
    /// Logged in, but declaring or consuming the queues failed (the broker refused a
    /// declaration or the request consumer, or the connection went meanwhile).
    SetupFailed(String),
    /// The connection was up and consuming, and went.
    Lost(String),
}

impl<S: ServingStore> Worker<S> {
    /// A worker reading documents from `store`.
    pub fn new(config: WorkerConfig, store: S) -> Arc<Self> {
        Arc::new(Self {
            identity: Identity::new(config.node.clone()),
            config,
            store,
            nodes: Arc::new(NodeTracker::new()),
            consuming: AtomicBool::new(false),
            progress: Progress::default(),
            recorder: None,
            stats: Stats::default(),
        })
    }

    /// A worker that also writes a capture of every request it answers (`serve --record`).
    pub fn with_recorder(config: WorkerConfig, store: S, recorder: Recorder) -> Arc<Self> {
        let mut w = Arc::into_inner(Self::new(config, store)).expect("a fresh worker");
        w.recorder = Some(recorder);
        Arc::new(w)
    }

    /// Ready to serve: consuming requests, making progress, and the document store answers
    /// and serves us.
    pub async fn readiness(&self) -> Result<(), String> {
        if !self.is_consuming() {
            return Err(
                "not consuming build requests (broker connection down, or the consumer was cancelled)"
                    .into(),
            );
        }
        if let Some(d) = self
            .progress
            .stalled(self.config.stall_after, Instant::now())
        {
            return Err(format!(
                "stalled: all {} request slots busy with no request finished for {} ms",
                self.config.prefetch,
                d.as_millis()
            ));
        }
        self.store
            .check()
            .await
            .map_err(|why| format!("document store: {why}"))
    }

    /// Requests taken and not settled yet.
    pub fn in_flight(&self) -> usize {
        self.progress.in_flight()
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
    pub fn store(&self) -> &S {
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
            let broker = crate::report::url_host(&self.config.amqp_url);
            let retry_in_ms = backoff.as_millis() as u64;
            match end {
                SessionEnd::Shutdown => return Ok(()),
                SessionEnd::Unreachable(why) => {
                    tracing::warn!(%broker, error = %why, retry_in_ms, "broker not reachable")
                }
                SessionEnd::SetupFailed(why) => {
                    tracing::warn!(%broker, error = %why, retry_in_ms, "broker set-up failed")
                }
                SessionEnd::Lost(why) => {
                    tracing::warn!(%broker, error = %why, retry_in_ms, "broker connection lost")
                }
            }
            if let Some(cache) = self.store.cache() {
                cache.clear();
            }
            if started.elapsed() > max * 2 {
                backoff = min;
            }
            tokio::select! {
                _ = shutdown.wait() => return Ok(()),
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(max);
            self.stats.reconnects.0.inc();
        }
    }

    /// One connection: connect, declare, consume until the connection goes or `shutdown`.
    async fn session(self: &Arc<Self>, shutdown: &Shutdown) -> SessionEnd {
        let name = format!("{}-{}", self.config.node, random_hex(8));
        // Our own queue (registrar answers, heartbeats, change events) is named after the
        // connection, as a Kazoo listener's is after its process.
        let own_queue = name.clone();
        let setup = match self.declarations(&own_queue) {
            Ok(setup) => setup,
            Err(e) => return SessionEnd::SetupFailed(e.to_string()),
        };
        let consumer_tag = format!("{name}-requests");
        let opened = BrokerConnection::open(&Consume {
            amqp_url: &self.config.amqp_url,
            connection_name: &name,
            setup: &setup,
            queue: &self.config.queue,
            consumer_tag: &consumer_tag,
            prefetch: self.config.prefetch,
            events_queue: Some(&own_queue),
        })
        .await;
        match opened {
            Ok((requests, outbox)) => {
                self.consume(requests, outbox, consumer_tag, own_queue, shutdown)
                    .await
            }
            Err(e) if e.is_set_up_failure() => SessionEnd::SetupFailed(e.to_string()),
            Err(e) => SessionEnd::Unreachable(e.to_string()),
        }
    }

    /// What a session declares before it consumes, as Kazoo declares it: the exchanges; the
    /// shared request queue and its `kapps` bindings; our own queue, bound to `targeted` by
    /// its name, to `nodes` and to the change events on `configuration`.
    fn declarations(&self, own_queue: &str) -> Result<Vec<AMQPClass>, PublishError> {
        let queue = self.config.queue.as_str();
        let mut setup = exchange_declarations();
        setup.push(queue_declaration(queue, false, queue_args(3_000, 100))?);
        for key in &self.config.bindings {
            setup.push(queue_binding(queue, KAPPS, key)?);
        }
        setup.push(queue_declaration(
            own_queue,
            true,
            queue_args(60_000, 10_000),
        )?);
        setup.push(queue_binding(own_queue, TARGETED, own_queue)?);
        setup.push(queue_binding(own_queue, NODES, "")?);
        for key in conf_events::BINDINGS {
            setup.push(queue_binding(own_queue, CONFIGURATION, key)?);
        }
        Ok(setup)
    }

    async fn consume(
        self: &Arc<Self>,
        mut requests: BrokerConnection,
        outbox: Outbox,
        consumer_tag: String,
        own_queue: String,
        shutdown: &Shutdown,
    ) -> SessionEnd {
        let mut shutdown = shutdown.clone();
        self.progress.reset();
        self.consuming.store(true, Ordering::Relaxed);
        tracing::info!(
            broker = %crate::report::url_host(&self.config.amqp_url),
            queue = %self.config.queue,
            bindings = %self.config.bindings.join(","),
            prefetch = self.config.prefetch,
            node = %self.config.node,
            "consuming build requests"
        );

        let pending = Arc::new(PendingQueries::default());
        let registrar = AmqpRegistrar {
            outbox: outbox.clone(),
            reply_queue: own_queue,
            node: self.config.node.clone(),
            deadline: self.config.registrar_deadline,
            nodes: self.nodes.clone(),
            pending: pending.clone(),
            metrics: self.stats.registrar.clone(),
        };
        // What every request task of this session shares, behind one `Arc`: a task takes
        // one reference count, not a copy of the outbox and of the registrar's names.
        let session = Arc::new(SessionChannels {
            registrar,
            outbox: outbox.clone(),
        });
        let mut inflight = JoinSet::new();
        let end = loop {
            tokio::select! {
                _ = shutdown.wait() => break SessionEnd::Shutdown,
                d = requests.next() => match d {
                    Ok(Event::Delivery(delivery)) => self.spawn_request(&mut inflight, delivery, &session),
                    Ok(Event::Message(message)) => self.on_event(&message, &pending),
                    // Not asked for: nothing to do.
                    Ok(Event::CancelOk) => {}
                    Err(e) => break SessionEnd::Lost(e.to_string()),
                },
                Some(done) = inflight.join_next(), if !inflight.is_empty() => self.joined(done),
            }
        };
        if let SessionEnd::Lost(_) = end {
            // The requests in flight are given back, not rejected: closed to them first, the
            // connection refuses their guards' rejections, and the broker requeues their
            // deliveries as it closes.
            outbox.close_to_requests("the broker session ended");
            inflight.abort_all();
            // Answer the broker's close, if that is what ended it, and hang up.
            requests.close().await;
            return end;
        }
        // Shutdown: take no more requests, finish (and acknowledge) the ones in flight. The
        // deliveries already on their way until the broker confirms the cancel are handled
        // too. Builds may still wait on registrar answers, which come on the same
        // connection: it is read until the last build is done.
        if let Err(e) = outbox.cancel(&consumer_tag) {
            tracing::warn!(error = %e, "cancelling the request consumer failed");
        }
        self.consuming.store(false, Ordering::Relaxed);
        let mut cancelled = false;
        // A broker that never confirms (one under a resource alarm stops reading from a
        // connection that publishes) does not hold the shutdown: after this, the requests in
        // flight are finished without waiting for it.
        let confirm_by = tokio::time::sleep(CANCEL_TIMEOUT);
        tokio::pin!(confirm_by);
        while !(cancelled && inflight.is_empty()) {
            tokio::select! {
                _ = &mut confirm_by, if !cancelled => {
                    tracing::warn!(timeout_ms = CANCEL_TIMEOUT.as_millis() as u64, "the broker did not confirm the consumer's cancel");
                    cancelled = true;
                }
                d = requests.next() => match d {
                    Ok(Event::Delivery(delivery)) if !cancelled => self.spawn_request(&mut inflight, delivery, &session),
                    // After a cancel that was never confirmed: left unsettled, so the broker
                    // requeues it as the connection closes.
                    Ok(Event::Delivery(_)) => {}
                    Ok(Event::Message(message)) => self.on_event(&message, &pending),
                    Ok(Event::CancelOk) => cancelled = true,
                    // The connection went: what is in flight cannot be settled any more (the
                    // broker requeues it), but it still ends as it may.
                    Err(e) => {
                        tracing::warn!(error = %e, "the broker connection went during shutdown");
                        break;
                    }
                },
                Some(done) = inflight.join_next(), if !inflight.is_empty() => self.joined(done),
            }
        }
        while let Some(done) = inflight.join_next().await {
            self.joined(done);
        }
        requests.close().await;
        tracing::info!("stopped");
        SessionEnd::Shutdown
    }

    /// Starts the task of one request.
    fn spawn_request(
        self: &Arc<Self>,
        inflight: &mut JoinSet<()>,
        delivery: Box<Delivery>,
        session: &Arc<SessionChannels>,
    ) {
        let (me, session) = (self.clone(), session.clone());
        // Boxed: the request's future (the delivery, its reply, the settlement) is over a
        // kilobyte, and tokio moves a task's future as it spawns it, stores it and replaces
        // it by its output; a box makes each of those moves a pointer's.
        inflight.spawn(Box::pin(
            async move { me.on_request(delivery, &session).await },
        ));
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

    /// A request task ended. Its delivery is settled already (the task settles it, or its
    /// [`Settlement`] guard does when the task dies); a task that died is logged and counted.
    fn joined(&self, done: Result<(), tokio::task::JoinError>) {
        if let Err(e) = done
            && e.is_panic()
        {
            self.stats.task_failures.0.inc();
            let panic = e.into_panic();
            tracing::error!(error = %panic_text(&*panic), "a request task panicked after handling; its delivery was settled");
        }
    }

    /// One build request: read, build, reply, acknowledge. Every path settles the delivery:
    /// acknowledged after its reply is published (or when it has no usable reply address),
    /// requeued once when the broker fails the reply, rejected when the task dies.
    async fn on_request(&self, delivery: Box<Delivery>, session: &SessionChannels) {
        let started = Instant::now();
        let _in_flight = InFlight::start(&self.progress, usize::from(self.config.prefetch));
        let settlement = Settlement::new(session.outbox.clone(), delivery.delivery_tag);
        let (registrar, outbox) = (&session.registrar, &session.outbox);
        let content_type = delivery
            .properties
            .content_type()
            .as_ref()
            .map(|s| s.as_str());
        let read = std::panic::catch_unwind(AssertUnwindSafe(|| {
            if delivery.oversized() {
                // Not kept: refused by its size.
                Err(oversized(delivery.body_size))
            } else {
                read_request(&delivery.data, content_type)
            }
        }));
        let mut read = match read {
            Ok(read) => read,
            Err(panic) => {
                self.stats.task_failures.0.inc();
                tracing::error!(error = %panic_text(&*panic), "reading a message panicked; rejected");
                let _ = settlement.reject();
                return;
            }
        };
        // A request that does not say when it was sent is dated by its AMQP `timestamp`, else
        // by its arrival: an endpoint recording's month (the MODB its recording is filed in)
        // comes from it, and the engine has no clock. The capture records the date used.
        let dated = match &mut read {
            Ok(body) if !body.contains_key("Timestamp") => {
                let ts = delivery
                    .properties
                    .timestamp()
                    .map(|t| t as i64)
                    .unwrap_or_else(unix_now);
                body.push("Timestamp", Json::Number(ts.into()));
                Some(ts)
            }
            _ => None,
        };
        let envelope = match &read {
            Ok(body) => crate::build_api::Envelope::of_json(body),
            Err(refused) => refused.envelope.clone(),
        };
        let span = request_span(&envelope);
        // (Not `move`: the body borrows the delivery's bytes, which this task keeps.)
        async {
            let props = &delivery.properties;
            let reply_to = props.reply_to().as_ref().map(|s| s.as_str());
            let address = ReplyAddress::of(
                reply_to,
                props.correlation_id().as_ref(),
                envelope.server_id.as_deref(),
            );
            let address = match address {
                Ok(Some(a)) => a,
                unusable => {
                    // Nobody to answer: no build either (it would be work for no one).
                    self.stats.unanswerable.0.inc();
                    if read.is_err() {
                        self.stats.invalid_inputs.0.inc();
                    }
                    match unusable {
                        Err(e) => tracing::warn!(error = %e, "not answered: the reply address cannot be published to"),
                        _ => tracing::warn!("not answered: the message has no reply address"),
                    }
                    if let Err(e) = settlement.ack() {
                        tracing::warn!(error = %e, "acknowledgement failed");
                    }
                    return;
                }
            };
            let handled = match read {
                Ok(body) => {
                    // Boxed: the build's future is kilobytes, and this task's own future is
                    // copied as it is spawned and wrapped; a box keeps those copies small.
                    let build = Box::pin(handle_read(
                        &body,
                        envelope,
                        &self.store,
                        registrar,
                        &self.identity,
                        &self.config.limits,
                    ));
                    match AssertUnwindSafe(build).catch_unwind().await {
                        Ok(handled) => handled,
                        Err(panic) => {
                            self.stats.task_failures.0.inc();
                            tracing::error!(error = %panic_text(&*panic), "the build panicked; answered with internal");
                            // (The envelope went to the build: read again, on this rare path.)
                            self.failed_build(crate::build_api::Envelope::of_json(&body))
                        }
                    }
                }
                Err(refused) => (*refused).handled(&self.identity),
            };
            // Counted before the reply goes out, so whoever reads the reply also sees it
            // counted.
            // (Registrations are counted by the registrar, as it asks.)
            if let Some(r) = &handled.resolution
                && r.registrar_lookups > 0
            {
                self.stats.registrar.seconds.observe(r.registrar_time.as_secs_f64());
            }
            if let Some(r) = &handled.resolution {
                self.stats.record_unapplied(&r.unapplied);
            }
            self.stats.record(&handled.result);
            let invalid = matches!(&handled.result, Err(e) if e.code == ErrorCode::InvalidRequest);
            if invalid {
                self.stats.invalid_inputs.0.inc();
            }
            let mut published = address.queue(outbox, handled.reply.bytes());
            if let Err(PublishError::TooLarge { len }) = &published {
                // Too big to send: say so in a reply that fits.
                tracing::warn!(bytes = len, "reply too large; answered with internal");
                let result = Err(BuildError::new(
                    ErrorCode::Internal,
                    format!(
                        "the reply would be {len} bytes, over the {}-byte limit of a message",
                        crate::amqp::MAX_MESSAGE
                    ),
                ));
                // (Counted as built already; the log line above tells this rare case apart.)
                let reply = reply_body(&self.identity, &handled.envelope, &result, &[]);
                published = address.queue(outbox, reply.bytes());
            }
            let settled = match published {
                Ok(()) => settlement.ack(),
                Err(e @ (PublishError::TooLong { .. } | PublishError::TooLarge { .. })) => {
                    // The address was checked on arrival; nothing else in a reply is a short
                    // string. Should it happen anyway, retrying cannot help.
                    tracing::error!(error = %e, "reply not publishable; acknowledged");
                    settlement.ack()
                }
                Err(e @ (PublishError::Broker(_) | PublishError::Connection(_))) => {
                    // The broker connection is closing or gone (its reader ends the
                    // session): the broker requeues the delivery, if it is not settled here.
                    tracing::warn!(error = %e, redelivered = delivery.redelivered, "reply not published");
                    settlement.retry_once(delivery.redelivered)
                }
            };
            // The reply and the settlement are queued: let the connection's writer send them
            // (with whatever other requests queued meanwhile) before this task's bookkeeping
            // and log line, which the requester need not wait for. (Without this, at one
            // request in flight the log line's write came before the reply's.)
            behind_queued_tasks().await;
            // The reply is out (or given up on) and the delivery settled: that is the
            // request's duration.
            self.stats.build_seconds.observe(started.elapsed().as_secs_f64());
            if let Err(e) = settled {
                tracing::warn!(error = %e, "settling the delivery failed");
            }
            if let Some(recorder) = &self.recorder {
                recorder.record(&delivery, &handled, dated).await;
            }
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            match &handled.result {
                Ok(legs) => tracing::info!(legs = legs.len(), ms, "built"),
                Err(e) if invalid => {
                    tracing::warn!(error = %e.message, "invalid request")
                }
                Err(e) => tracing::info!(code = %e.code, error = %e.message, ms, "not built"),
            }
        }
        .instrument(span)
        .await
    }

    /// The answer to a request whose build failed unexpectedly.
    fn failed_build(&self, envelope: crate::build_api::Envelope) -> Answered {
        let result = Err(BuildError::new(
            ErrorCode::Internal,
            "the build failed unexpectedly (a fault of kz-endpoint, logged); the request was not built",
        ));
        let reply = reply_body(&self.identity, &envelope, &result, &[]);
        Answered {
            envelope,
            result,
            reply,
            resolution: None,
        }
    }
}

/// A request's context, for every line logged while it is handled (the registrar's warnings
/// included): the span `build`. A field the message does not carry is left out, not "" (an
/// envelope has no empty fields: `Envelope::of` reads an empty string as absent). The fields
/// are given at creation, all at once: recording them one by one formats the span's fields
/// again for each. (Public for `examples/request_profile.rs`, which measures this span.)
pub fn request_span(envelope: &crate::build_api::Envelope) -> tracing::Span {
    tracing::info_span!(
        "build",
        msg_id = envelope.msg_id.as_deref(),
        account = envelope.account_id.as_deref(),
        endpoint = envelope.endpoint_id.as_deref(),
        call_id = envelope.call_id.as_deref(),
    )
}

/// The message of a panic payload.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

impl<S: ServingStore> crate::ops::Observed for Worker<S> {
    async fn readiness(&self) -> Result<(), String> {
        Worker::readiness(self).await
    }

    /// The counters and histograms, the worker's state as gauges, and the store's metrics.
    fn register_metrics(&self, r: &mut prometheus_client::registry::Registry) {
        use prometheus_client::metrics::gauge::Gauge;
        let gauge = |v: i64| {
            let g = Gauge::<i64>::default();
            g.set(v);
            g
        };
        self.stats.register(r);
        r.register(
            "requests_in_flight",
            "Requests taken and not settled yet",
            gauge(self.in_flight() as i64),
        );
        r.register(
            "amqp_consuming",
            "1 while build requests are being consumed",
            gauge(i64::from(self.is_consuming())),
        );
        r.register(
            "ecallmgr_nodes",
            "Live ecallmgr nodes known from the nodes heartbeats",
            gauge(self.ecallmgr_nodes() as i64),
        );
        self.store.register_metrics(r);
    }
}

/// Lets the tasks already queued on this thread run before the calling task goes on: the
/// connection's writer, woken by the reply just queued, sends it first.
///
/// Why not `tokio::task::yield_now`: a task that yields so is run again only after the
/// runtime has polled its I/O driver, one `epoll_wait` system call per request, which finds
/// nothing at one request in flight. A task that wakes itself instead is put at the back of
/// the run queue, behind the writer; at 32 in flight the writer still runs after the tasks
/// queued before it, so their replies still go out in one write.
async fn behind_queued_tasks() {
    let mut woken = false;
    std::future::poll_fn(|cx| {
        if std::mem::replace(&mut woken, true) {
            return std::task::Poll::Ready(());
        }
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    })
    .await
}

/// The wall clock, Unix seconds (0 before 1970).
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
