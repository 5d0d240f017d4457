//! The `kz-endpoint` command.

// mimalloc: the engine allocates many small JSON objects; glibc's malloc is twice as slow
// at that (see docs/performance.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

use kz_endpoint::build_api::Identity;
use kz_endpoint::cache::{CachedStore, DocCache};
use kz_endpoint::capture::{self, Recorder};
use kz_endpoint::client::Client;
use kz_endpoint::couchdb::CouchStore;
use kz_endpoint::fixturedb::FixtureDb;
use kz_endpoint::handler::{handle, parse_body};
use kz_endpoint::registrar::{GivenRegistrations, RegKey};
use kz_endpoint::resolver::Limits;
use kz_endpoint::worker::{Store, Worker, WorkerConfig};
use kz_endpoint::{ops, shutdown};

/// Kazoo endpoint builder: decides which call legs to start when a device, user or group is
/// dialled, and answers in Kazoo's wire format.
#[derive(Debug, Parser)]
#[command(name = "kz-endpoint", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build one request offline.
    ///
    /// Reads one `build_req` JSON object on stdin and prints one reply object (`build_resp`
    /// with the `Endpoints` list, or `build_error` with `Error-Code` and `Error-Message`) on
    /// stdout, with exit status 0. Documents come from a folder in Kazoo's fixturedb layout
    /// (`DIR/<database>/docs/<id>.json`, e.g. `DIR/account%2Fab%2Fcd%2Fef…/docs/…`).
    ///
    /// Registration state: the credentialed devices named with --registered are registered;
    /// every other one is unregistered, or unknown with --registration-unknown.
    ///
    /// A request that is JSON but invalid (missing Account-ID, an id that is not 32 lowercase
    /// letters or digits, neither Endpoint-ID nor Properties.endpoints, …) gets a
    /// `build_error` with Error-Code `invalid_request` naming the field; an unknown id gets
    /// `not_found`. Input that is not a JSON object: a one-line message on stderr, exit 2.
    #[command(verbatim_doc_comment)]
    Build(OfflineArgs),
    /// Explain one request offline: why each endpoint rang or did not.
    ///
    /// The same inputs as `build`. Prints one line per endpoint considered (device, user,
    /// group member) with the facts that decided (enabled, DND, registered / unregistered /
    /// unknown, forward active or not and why, substitute, failover source) and the rule that
    /// produced or withheld each leg, then a `result:` line. Exit status 0; 2 for input that
    /// is not a JSON object. (The live worker adds the same lines as an `Explain` list to the
    /// reply of a request carrying `"Explain": true`.)
    Explain(OfflineArgs),
    /// Replay captured requests and compare the replies with the captured ones.
    ///
    /// Each PATH is a capture file or a folder of them (searched recursively). Every capture
    /// runs through the same request handler the live worker uses, with its documents and
    /// registrar answers served in place of CouchDB and RabbitMQ. Prints one line per capture
    /// (PASS or FAIL, with a readable diff of the legs) and a summary `N passed, M failed`.
    /// Exit status 1 when any capture does not match. Node, App-Name, App-Version,
    /// Error-Message and Explain are not compared. The format is in docs/fixtures.md.
    Replay {
        /// Capture files or folders.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// Rewrite each capture's reply with the new one (after a deliberate change).
        #[arg(long)]
        update: bool,
    },
    /// Run the worker: take build requests from RabbitMQ, read documents from CouchDB (or a
    /// fixture folder), ask the registrars, reply on the requester's queue.
    ///
    /// Every flag has an environment fallback (shown with each). SIGTERM or SIGINT stops
    /// consuming, finishes and acknowledges the requests in flight, and exits 0.
    Serve(ServeArgs),
    /// Send one build request to running workers and print the reply.
    ///
    /// Reads a `build_req` JSON object on stdin, publishes it on the kapps exchange with
    /// routing key endpoint.build.<Account-ID>, exactly as Kazoo's callflow does, with this
    /// command's own reply queue as Server-ID, and prints the reply. Exit status 1 when no
    /// reply comes in time.
    Request {
        /// The broker.
        #[arg(
            long,
            env = "KZ_AMQP_URL",
            default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
        )]
        amqp_url: String,
        /// How long to wait for the reply, in milliseconds.
        #[arg(long, default_value_t = 3000)]
        timeout_ms: u64,
    },
    /// Check a running worker's /healthz (for container health checks): exit 0 when alive.
    Healthcheck {
        /// The worker's operations listener.
        #[arg(long, env = "KZ_HTTP_LISTEN", default_value = "127.0.0.1:9090")]
        http_listen: String,
        /// Check /readyz instead of /healthz.
        #[arg(long)]
        ready: bool,
    },
}

/// The inputs of an offline build.
#[derive(Debug, clap::Args)]
struct OfflineArgs {
    /// The fixture database folder.
    #[arg(long, value_name = "DIR", env = "KZ_FIXTUREDB")]
    fixturedb: PathBuf,
    /// A registered device, as SIP USERNAME@REALM (repeatable).
    #[arg(long = "registered", value_name = "USERNAME@REALM", value_parser = parse_reg_key)]
    registered: Vec<RegKey>,
    /// Devices not named with --registered are in an unknown state (no registrar
    /// answered) instead of unregistered.
    #[arg(long)]
    registration_unknown: bool,
    /// The `Node` to put on replies.
    #[arg(long, env = "KZ_NODE", default_value_t = default_node())]
    node: String,
}

/// The `serve` flags (each with an environment fallback).
#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// The RabbitMQ broker of the Kazoo cluster.
    #[arg(
        long,
        env = "KZ_AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    amqp_url: String,
    /// CouchDB (Apache CouchDB 3), with credentials: http://user:pass@host:5984.
    /// Without it, documents come from --fixturedb.
    #[arg(long, env = "KZ_COUCH_URL", hide_env_values = true)]
    couch_url: Option<String>,
    /// A fixture database folder, the embedded store used when no CouchDB URL is given.
    #[arg(
        long,
        value_name = "DIR",
        env = "KZ_FIXTUREDB",
        required_unless_present = "couch_url"
    )]
    fixturedb: Option<PathBuf>,
    /// The shared request queue (workers on the same queue compete for requests).
    #[arg(long, env = "KZ_QUEUE", default_value = "endpoint_builder")]
    queue: String,
    /// Routing key binding the request queue to the kapps exchange (repeatable; e.g.
    /// endpoint.build.<account id> to shard by account).
    #[arg(
        long = "binding",
        env = "KZ_BINDINGS",
        value_delimiter = ',',
        default_value = "endpoint.build.*"
    )]
    bindings: Vec<String>,
    /// Requests in flight at most (AMQP prefetch).
    #[arg(long, env = "KZ_PREFETCH", default_value_t = 10)]
    prefetch: u16,
    /// How long a build waits for registrars, in milliseconds.
    #[arg(long, env = "KZ_REGISTRAR_DEADLINE_MS", default_value_t = 500)]
    registrar_deadline_ms: u64,
    /// How long the request window may stay full with no request finished before /readyz
    /// reports the worker stalled, in milliseconds [default: 4 x the registrar deadline,
    /// at least 2000].
    #[arg(long, env = "KZ_STALL_AFTER_MS")]
    stall_after_ms: Option<u64>,
    /// Documents one build may read (every nesting level of groups and users counts its
    /// documents); a build that needs more gets Error-Code internal naming this limit.
    #[arg(long, env = "KZ_MAX_DOCUMENTS", default_value_t = Limits::DEFAULT_MAX_DOCUMENTS)]
    max_documents: usize,
    /// Legs one build may return; a build that would return more gets Error-Code internal
    /// naming this limit.
    #[arg(long, env = "KZ_MAX_LEGS", default_value_t = Limits::DEFAULT_MAX_LEGS)]
    max_legs: usize,
    /// CouchDB request timeout, in milliseconds (rounded up to whole seconds).
    #[arg(long, env = "KZ_COUCH_TIMEOUT_MS", default_value_t = 1000)]
    couch_timeout_ms: u64,
    /// Documents kept in the cache at most.
    #[arg(long, env = "KZ_CACHE_CAPACITY", default_value_t = 100_000)]
    cache_capacity: usize,
    /// Seconds a cached document is trusted without a change event.
    #[arg(long, env = "KZ_CACHE_TTL_SECS", default_value_t = 300)]
    cache_ttl_secs: u64,
    /// Our node name on the wire (`Node`).
    #[arg(long, env = "KZ_NODE", default_value_t = default_node())]
    node: String,
    /// Log format.
    #[arg(long, env = "KZ_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Where the operations listener serves /healthz, /readyz and /metrics.
    #[arg(long, env = "KZ_HTTP_LISTEN", default_value = "127.0.0.1:9090")]
    http_listen: String,
    /// Write a capture of every request answered into this folder (secrets redacted);
    /// `kz-endpoint replay` replays them.
    #[arg(long, value_name = "DIR", env = "KZ_RECORD_DIR")]
    record: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Logging to stderr; the level comes from RUST_LOG (default `info`).
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let store = match &args.couch_url {
        Some(url) => Store::Couch(CachedStore {
            store: CouchStore::new(url, Duration::from_millis(args.couch_timeout_ms))?,
            cache: Arc::new(DocCache::new(
                args.cache_capacity,
                Duration::from_secs(args.cache_ttl_secs),
            )),
        }),
        None => Store::Fixture(FixtureDb::new(
            args.fixturedb
                .clone()
                .context("--fixturedb or --couch-url is required")?,
        )),
    };
    let mut config = WorkerConfig::new(args.amqp_url.clone(), args.node.clone());
    config.queue = args.queue;
    config.bindings = args.bindings;
    config.prefetch = args.prefetch;
    config.registrar_deadline = Duration::from_millis(args.registrar_deadline_ms);
    config.stall_after = Duration::from_millis(
        args.stall_after_ms
            .unwrap_or_else(|| args.registrar_deadline_ms.saturating_mul(4).max(2000)),
    );
    config.limits = Limits {
        max_documents: args.max_documents,
        max_legs: args.max_legs,
    };
    config.validate()?;
    let worker = match &args.record {
        Some(dir) => {
            let recorder = Recorder::new(dir)
                .with_context(|| format!("creating the capture folder {}", dir.display()))?;
            Worker::with_recorder(config, store, recorder)
        }
        None => Worker::new(config, store),
    };
    let (trigger, shutdown) = shutdown::channel();
    let listener = tokio::net::TcpListener::bind(&args.http_listen)
        .await
        .with_context(|| format!("binding the operations listener on {}", args.http_listen))?;
    tracing::info!(address = %args.http_listen, "operations listener: /healthz /readyz /metrics");
    let ops = tokio::spawn(ops::serve(listener, worker.clone(), shutdown.clone()));
    tokio::spawn(shutdown::on_signals(trigger));
    worker.run(shutdown).await?;
    ops.await??;
    Ok(())
}

fn parse_reg_key(s: &str) -> Result<RegKey, String> {
    RegKey::parse(s).ok_or_else(|| format!("`{s}` is not USERNAME@REALM"))
}

fn default_node() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!("kz-endpoint@{host}")
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("kz-endpoint: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => {
            init_logging(args.log_format);
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the runtime")?;
            rt.block_on(serve(args))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Build(args) => offline(args, false),
        Command::Explain(args) => offline(args, true),
        Command::Replay { paths, update } => replay(&paths, update),
        Command::Request {
            amqp_url,
            timeout_ms,
        } => request(&amqp_url, timeout_ms),
        Command::Healthcheck { http_listen, ready } => healthcheck(&http_listen, ready),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")
}

/// `build` and `explain`: one request from stdin, against a fixture folder.
fn offline(args: OfflineArgs, explain: bool) -> anyhow::Result<ExitCode> {
    let mut input = Vec::new();
    std::io::stdin()
        .read_to_end(&mut input)
        .context("reading stdin")?;
    let mut body = match parse_body(&input) {
        Ok(body) => body,
        Err(e) => {
            eprintln!("kz-endpoint: {}", e.message);
            return Ok(ExitCode::from(2));
        }
    };
    if explain {
        body.insert("Explain".into(), serde_json::Value::Bool(true));
    }
    let store = FixtureDb::new(args.fixturedb);
    let registrar = GivenRegistrations::new(args.registered, args.registration_unknown);
    let identity = Identity::new(args.node);
    let handled = runtime()?.block_on(handle(&body, &store, &registrar, &identity));
    let mut out = std::io::stdout().lock();
    if explain {
        let lines = handled.reply.get("Explain").and_then(|v| v.as_array());
        for line in lines.into_iter().flatten() {
            writeln!(out, "{}", line.as_str().unwrap_or_default())?;
        }
        if let Err(e) = &handled.result
            && handled.resolution.is_none()
        {
            writeln!(out, "result: {} ({})", e.code, e.message)?;
        }
    } else {
        serde_json::to_writer(&mut out, &handled.reply)?;
        writeln!(out)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `replay`: every capture under `paths`.
fn replay(paths: &[PathBuf], update: bool) -> anyhow::Result<ExitCode> {
    let mut files = Vec::new();
    for p in paths {
        files.extend(capture::files(p)?);
    }
    let identity = Identity::new(default_node());
    let rt = runtime()?;
    let (mut passed, mut failed) = (0, 0);
    let mut out = std::io::stdout().lock();
    for file in &files {
        let r = rt.block_on(capture::replay_file(file, &identity));
        if r.differences.is_empty() {
            passed += 1;
            writeln!(out, "PASS {}", file.display())?;
            continue;
        }
        if update && let Some((mut c, reply)) = r.capture {
            c.reply = reply;
            capture::save(file, &c)?;
            passed += 1;
            writeln!(out, "UPDATED {}", file.display())?;
            continue;
        }
        failed += 1;
        writeln!(out, "FAIL {}", file.display())?;
        for d in &r.differences {
            writeln!(out, "    {d}")?;
        }
    }
    writeln!(out, "{passed} passed, {failed} failed")?;
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `request`: one build request through the broker.
fn request(amqp_url: &str, timeout_ms: u64) -> anyhow::Result<ExitCode> {
    let mut input = Vec::new();
    std::io::stdin()
        .read_to_end(&mut input)
        .context("reading stdin")?;
    let body = match parse_body(&input) {
        Ok(body) => body,
        Err(e) => {
            eprintln!("kz-endpoint: {}", e.message);
            return Ok(ExitCode::from(2));
        }
    };
    let reply = runtime()?.block_on(async {
        let client = Client::connect(amqp_url).await?;
        client
            .request(
                serde_json::Value::Object(body),
                Duration::from_millis(timeout_ms),
            )
            .await
    });
    match reply {
        Ok(r) => {
            println!("{r}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("kz-endpoint: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

/// `healthcheck`: GET /healthz (or /readyz) of a running worker.
fn healthcheck(listen: &str, ready: bool) -> anyhow::Result<ExitCode> {
    // A wildcard listen address is reached on the loopback.
    let addr = listen
        .replace("0.0.0.0", "127.0.0.1")
        .replace("[::]", "[::1]");
    let path = if ready { "/readyz" } else { "/healthz" };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(3), ops::http_get(&addr, path)).await
    });
    match result {
        Ok(Ok((200, _))) => Ok(ExitCode::SUCCESS),
        Ok(Ok((status, body))) => {
            eprintln!("kz-endpoint: {path} answered {status}: {}", body.trim());
            Ok(ExitCode::from(1))
        }
        Ok(Err(e)) => {
            eprintln!("kz-endpoint: {addr}{path}: {e}");
            Ok(ExitCode::from(1))
        }
        Err(_) => {
            eprintln!("kz-endpoint: {addr}{path}: no answer in 3 s");
            Ok(ExitCode::from(1))
        }
    }
}
