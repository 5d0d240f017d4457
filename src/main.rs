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
#[command(name = "kz-endpoint", version, about, long_about = None, max_term_width = 100)]
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
    /// `not_found` (an account that is not in the folder: `not_found` naming its database).
    ///
    /// Exit status: 0 with a reply; 2 when the input is not a JSON object or the fixture
    /// folder does not exist (a one-line message on stderr).
    Build(OfflineArgs),
    /// Explain one request offline: why each endpoint rang or did not.
    ///
    /// The same inputs as `build`. Prints one line per endpoint considered (device, user,
    /// group member) with the facts that decided (enabled, DND, registered / unregistered /
    /// unknown, forward active or not and why, substitute, failover source) and the rule that
    /// produced or withheld each leg, then a `result:` line and a `registrations:` line
    /// naming every USERNAME@REALM the build looked up (what --registered takes). The live
    /// worker adds the same lines as an `Explain` list to the reply of a request carrying
    /// `"Explain": true`.
    ///
    /// Exit status: 0; 2 when the input is not a JSON object or the fixture folder does not
    /// exist.
    Explain(OfflineArgs),
    /// Replay captured requests and compare the replies with the captured ones.
    ///
    /// Each PATH is a capture file or a folder of them (searched recursively). Every capture
    /// runs through the same request handler the live worker uses, with its documents and
    /// registrar answers served in place of CouchDB and RabbitMQ. Prints one line per capture
    /// (PASS or FAIL, with a readable diff of the legs) and a summary `N passed, M failed`.
    /// Node, App-Name, App-Version, Error-Message and Explain are not compared. The format is
    /// in docs/fixtures.md.
    ///
    /// Exit status: 0 when every capture matches; 1 when one does not, or cannot be read
    /// (its FAIL line says why: not a capture, its fixture folder missing, …).
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
    ///
    /// Exit status: 0 after a signal; 2 for a bad setting (no store, a missing fixture
    /// folder, a name AMQP cannot carry); 1 when the operations listener cannot start.
    Serve(ServeArgs),
    /// Send one build request to running workers and print the reply.
    ///
    /// Reads a `build_req` JSON object on stdin, publishes it on the kapps exchange with
    /// routing key endpoint.build.<Account-ID>, exactly as Kazoo's callflow does, with this
    /// command's own reply queue as Server-ID, and prints the reply. The publish is
    /// mandatory: when no queue is bound to that routing key (no worker running), the broker
    /// returns it and the command says so at once.
    ///
    /// Exit status: 0 with a reply; 1 when no worker is bound, no reply comes in time, or the
    /// broker is not reachable; 2 when the input is not a JSON object.
    Request {
        /// The broker.
        #[arg(
            long,
            env = "KZ_AMQP_URL",
        hide_env_values = true,
            default_value = DEFAULT_AMQP_URL
        )]
        amqp_url: String,
        /// How long to wait for the reply, in milliseconds.
        #[arg(
            long,
            env = "KZ_REQUEST_TIMEOUT_MS",
            hide_env_values = true,
            default_value_t = 3000
        )]
        timeout_ms: u64,
    },
    /// Check an account's configuration: what a call to each device, user and group rings
    /// today, and every setting that loses calls or surprises people.
    ///
    /// Reads every document of the account (from CouchDB or a fixture folder), builds each
    /// device, user and group as a call to it would (with every registration unknown, as
    /// when no registrar answers), and lists per endpoint what it rings and what is wrong:
    /// an invite format ecallmgr drops, SIP credentials with no realm, a forward to the
    /// device's own number, a group that contains itself, a user with no devices and no
    /// forward, a failover equal to the forward, features kz-endpoint does not apply.
    ///
    /// Exit status: 0 when nothing loses calls; 1 when a finding loses calls; 2 when the
    /// store or the account cannot be read.
    Check(CheckArgs),
    /// Check a running worker's /healthz, for container health checks.
    ///
    /// Exit status: 0 when the worker answers 200; 1 otherwise (the reason on stderr).
    Healthcheck {
        /// The worker's operations listener.
        #[arg(long, env = "KZ_HTTP_LISTEN",
        hide_env_values = true, default_value = DEFAULT_HTTP_LISTEN)]
        http_listen: String,
        /// Check /readyz instead of /healthz.
        #[arg(long)]
        ready: bool,
    },
}

/// The broker every command uses unless told otherwise (RabbitMQ's own default account).
const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
/// Where the worker's operations listener serves.
const DEFAULT_HTTP_LISTEN: &str = "127.0.0.1:9090";

/// The `check` flags.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("store").required(true).multiple(true)))]
struct CheckArgs {
    /// CouchDB (Apache CouchDB 3), with credentials: http://user:pass@host:5984
    #[arg(
        long,
        value_name = "URL",
        env = "KZ_COUCH_URL",
        hide_env_values = true,
        group = "store"
    )]
    couch_url: Option<String>,
    /// A fixture database folder, read when no CouchDB URL is given
    #[arg(
        long,
        value_name = "DIR",
        env = "KZ_FIXTUREDB",
        hide_env_values = true,
        group = "store"
    )]
    fixturedb: Option<PathBuf>,
    /// The account to check (its 32-character id)
    #[arg(long, value_name = "ID")]
    account: String,
    /// The report's format
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    format: ReportFormat,
    /// CouchDB request timeout, in milliseconds (rounded up to whole seconds)
    #[arg(long, env = "KZ_COUCH_TIMEOUT_MS", hide_env_values = true, default_value_t = DEFAULT_COUCH_TIMEOUT_MS)]
    couch_timeout_ms: u64,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ReportFormat {
    /// A table for people.
    Table,
    /// One JSON object.
    Json,
}

/// CouchDB's request timeout unless told otherwise.
const DEFAULT_COUCH_TIMEOUT_MS: u64 = 1000;

/// The inputs of an offline build.
#[derive(Debug, clap::Args)]
struct OfflineArgs {
    /// The fixture database folder (Kazoo's fixturedb layout).
    #[arg(long, value_name = "DIR", env = "KZ_FIXTUREDB", hide_env_values = true)]
    fixturedb: PathBuf,
    /// A registered device, as SIP USERNAME@REALM (repeatable).
    #[arg(long = "registered", value_name = "USERNAME@REALM", value_parser = parse_reg_key)]
    registered: Vec<RegKey>,
    /// Devices not named with --registered are in an unknown state (no registrar
    /// answered) instead of unregistered.
    #[arg(long)]
    registration_unknown: bool,
    /// The `Node` to put on replies [default: kz-endpoint@<hostname>].
    #[arg(long, env = "KZ_NODE",
        hide_env_values = true, default_value_t = default_node(), hide_default_value = true)]
    node: String,
}

/// The `serve` flags (each with an environment fallback).
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("store").required(true).multiple(true)))]
struct ServeArgs {
    /// The RabbitMQ broker of the Kazoo cluster.
    #[arg(
        long,
        env = "KZ_AMQP_URL",
        hide_env_values = true,
        hide_env_values = true,
        default_value = DEFAULT_AMQP_URL
    )]
    amqp_url: String,
    /// CouchDB (Apache CouchDB 3), with credentials: http://user:pass@host:5984. One of
    /// --couch-url and --fixturedb is required; with both, CouchDB serves.
    #[arg(
        long,
        value_name = "URL",
        env = "KZ_COUCH_URL",
        hide_env_values = true,
        group = "store"
    )]
    couch_url: Option<String>,
    /// A fixture database folder, the embedded store used when no CouchDB URL is given.
    #[arg(
        long,
        value_name = "DIR",
        env = "KZ_FIXTUREDB",
        hide_env_values = true,
        group = "store"
    )]
    fixturedb: Option<PathBuf>,
    /// The shared request queue (workers on the same queue compete for requests).
    #[arg(long, env = "KZ_QUEUE",
        hide_env_values = true, default_value = WorkerConfig::DEFAULT_QUEUE)]
    queue: String,
    /// A routing key binding the request queue to the kapps exchange (repeatable, or
    /// comma-separated; e.g. endpoint.build.<account id> to shard by account).
    #[arg(
        long = "binding",
        env = "KZ_BINDINGS",
        hide_env_values = true,
        value_delimiter = ',',
        default_value = WorkerConfig::DEFAULT_BINDING
    )]
    bindings: Vec<String>,
    /// Requests in flight at most (AMQP prefetch).
    #[arg(long, env = "KZ_PREFETCH",
        hide_env_values = true, default_value_t = WorkerConfig::DEFAULT_PREFETCH)]
    prefetch: u16,
    /// How long a build waits for registrars, in milliseconds.
    #[arg(long, env = "KZ_REGISTRAR_DEADLINE_MS",
        hide_env_values = true, default_value_t = WorkerConfig::DEFAULT_REGISTRAR_DEADLINE_MS)]
    registrar_deadline_ms: u64,
    /// How long the request window may stay full with no request finished before /readyz
    /// reports the worker stalled, in milliseconds [default: 4 x the registrar deadline,
    /// at least 2000].
    #[arg(long, env = "KZ_STALL_AFTER_MS", hide_env_values = true)]
    stall_after_ms: Option<u64>,
    /// Documents one build may read (every nesting level of groups and users counts its
    /// documents); a build that needs more gets Error-Code internal naming this limit.
    #[arg(long, env = "KZ_MAX_DOCUMENTS",
        hide_env_values = true, default_value_t = Limits::DEFAULT_MAX_DOCUMENTS)]
    max_documents: usize,
    /// Legs one build may return; a build that would return more gets Error-Code internal
    /// naming this limit.
    #[arg(long, env = "KZ_MAX_LEGS",
        hide_env_values = true, default_value_t = Limits::DEFAULT_MAX_LEGS)]
    max_legs: usize,
    /// CouchDB request timeout, in milliseconds (rounded up to whole seconds).
    #[arg(
        long,
        env = "KZ_COUCH_TIMEOUT_MS",
        hide_env_values = true,
        default_value_t = 1000
    )]
    couch_timeout_ms: u64,
    /// Documents kept in the cache at most.
    #[arg(
        long,
        env = "KZ_CACHE_CAPACITY",
        hide_env_values = true,
        default_value_t = 100_000
    )]
    cache_capacity: usize,
    /// Seconds a cached document is trusted without a change event.
    #[arg(
        long,
        env = "KZ_CACHE_TTL_SECS",
        hide_env_values = true,
        default_value_t = 300
    )]
    cache_ttl_secs: u64,
    /// Our node name on the wire (`Node`) [default: kz-endpoint@<hostname>].
    #[arg(long, env = "KZ_NODE",
        hide_env_values = true, default_value_t = default_node(), hide_default_value = true)]
    node: String,
    /// The log format (logs go to stderr, filtered by RUST_LOG, default `info`).
    #[arg(long, env = "KZ_LOG_FORMAT",
        hide_env_values = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Where the operations listener serves /healthz, /readyz and /metrics.
    #[arg(long, env = "KZ_HTTP_LISTEN",
        hide_env_values = true, default_value = DEFAULT_HTTP_LISTEN)]
    http_listen: String,
    /// Write a capture of every request answered into this folder (secrets redacted);
    /// `kz-endpoint replay` replays them.
    #[arg(
        long,
        value_name = "DIR",
        env = "KZ_RECORD_DIR",
        hide_env_values = true
    )]
    record: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    /// Human-readable lines (coloured only on a terminal).
    Text,
    /// One JSON object per line.
    Json,
}

/// A mistake in what the command was given (a missing folder, a bad setting): exit status 2,
/// like the usage errors clap reports.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct UsageError(String);

fn usage(e: impl std::fmt::Display) -> anyhow::Error {
    UsageError(e.to_string()).into()
}

/// Logging to stderr; the level comes from RUST_LOG (default `info`). Colour only when
/// stderr is a terminal and NO_COLOR is not set (a file, a pipe or journald get plain text).
/// JSON lines carry the request's context once, as `span`.
fn init_logging(format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}

/// What `serve` says about its store in its start-up line (never a password).
fn store_description(args: &ServeArgs) -> String {
    match (&args.couch_url, &args.fixturedb) {
        (Some(url), _) => format!("couchdb {}", kz_endpoint::report::redact_url(url)),
        (None, Some(dir)) => format!("fixture folder {}", dir.display()),
        (None, None) => "none".into(),
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let store = match (&args.couch_url, &args.fixturedb) {
        (Some(url), _) => Store::Couch(CachedStore {
            store: CouchStore::new(url, Duration::from_millis(args.couch_timeout_ms))
                .map_err(usage)?,
            cache: Arc::new(DocCache::new(
                args.cache_capacity,
                Duration::from_secs(args.cache_ttl_secs),
            )),
        }),
        (None, Some(dir)) => Store::Fixture(FixtureDb::open(dir).map_err(usage)?),
        // clap's `store` group makes one of them required.
        (None, None) => return Err(usage("one of --couch-url and --fixturedb is required")),
    };
    let store_text = store_description(&args);
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
    config.validate().map_err(usage)?;
    let worker = match &args.record {
        Some(dir) => {
            let recorder = Recorder::new(dir)
                .with_context(|| format!("creating the capture folder {}", dir.display()))?;
            Worker::with_recorder(config.clone(), store, recorder)
        }
        None => Worker::new(config.clone(), store),
    };
    let (trigger, shutdown) = shutdown::channel();
    let listener = tokio::net::TcpListener::bind(&args.http_listen)
        .await
        .with_context(|| format!("binding the operations listener on {}", args.http_listen))?;
    let http = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| args.http_listen.clone());
    tracing::info!(
        version = %env!("CARGO_PKG_VERSION"),
        broker = %kz_endpoint::report::redact_url(&config.amqp_url),
        store = %store_text,
        queue = %config.queue,
        bindings = %config.bindings.join(","),
        prefetch = config.prefetch,
        registrar_deadline_ms = config.registrar_deadline.as_millis() as u64,
        node = %config.node,
        http = %http,
        record = args.record.as_ref().map(|d| d.display().to_string()),
        "starting"
    );
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

/// True when `e` comes from writing to a closed pipe (`... | head`): the reader has all it
/// wanted, and the command ends quietly.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kz-endpoint: {}", kz_endpoint::report::anyhow_chain(&e));
            if e.downcast_ref::<UsageError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
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
        Command::Check(args) => check(args),
    }
}

/// `check`: one account's configuration.
fn check(args: CheckArgs) -> anyhow::Result<ExitCode> {
    if !kz_endpoint::ids::is_valid_id(&args.account) {
        return Err(usage(format!(
            "--account {:?} is not an account id (32 lowercase letters or digits)",
            args.account
        )));
    }
    let db = kz_endpoint::ids::account_db(&args.account);
    let rt = runtime()?;
    let report = match (&args.couch_url, &args.fixturedb) {
        (Some(url), _) => {
            let store = CouchStore::new(url, Duration::from_millis(args.couch_timeout_ms))
                .map_err(usage)?;
            let docs = rt
                .block_on(store.all_docs(&db))
                .map_err(|e| usage(format!("reading {db}: {e}")))?;
            rt.block_on(kz_endpoint::check::check(&args.account, &docs, &store))
        }
        (None, Some(dir)) => {
            let store = FixtureDb::open(dir).map_err(usage)?;
            if !store.has_database(&db) {
                return Err(usage(format!(
                    "no database {db} in the fixture folder {}",
                    dir.display()
                )));
            }
            let docs = store.all_docs(&db).map_err(usage)?;
            rt.block_on(kz_endpoint::check::check(&args.account, &docs, &store))
        }
        (None, None) => return Err(usage("one of --couch-url and --fixturedb is required")),
    };
    if report.endpoints.is_empty() {
        return Err(usage(format!(
            "no device, user or group in {db}: is --account right?"
        )));
    }
    let written = (|| -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        match args.format {
            ReportFormat::Table => write!(out, "{}", report.table())?,
            ReportFormat::Json => {
                serde_json::to_writer_pretty(&mut out, &report)?;
                writeln!(out)?;
            }
        }
        out.flush()
    })();
    // A reader that stopped early (`| head`) still gets the verdict as the exit status.
    match written {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        other => other?,
    }
    Ok(if report.loses_calls > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")
}

/// Reads one request object from stdin; `Err(code)`: it is not one (said on stderr).
fn read_request() -> anyhow::Result<Result<kz_endpoint::kz_json::Object, ExitCode>> {
    let mut input = Vec::new();
    std::io::stdin()
        .read_to_end(&mut input)
        .context("reading stdin")?;
    Ok(match parse_body(&input) {
        Ok(body) => Ok(body),
        Err(e) => {
            eprintln!("kz-endpoint: {}", e.message);
            Err(ExitCode::from(2))
        }
    })
}

/// `build` and `explain`: one request from stdin, against a fixture folder.
fn offline(args: OfflineArgs, explain: bool) -> anyhow::Result<ExitCode> {
    let store = FixtureDb::open(&args.fixturedb).map_err(usage)?;
    let mut body = match read_request()? {
        Ok(body) => body,
        Err(code) => return Ok(code),
    };
    if explain {
        body.insert("Explain".into(), serde_json::Value::Bool(true));
    }
    let registrar = GivenRegistrations::new(args.registered.clone(), args.registration_unknown);
    let identity = Identity::new(args.node);
    let handled = match missing_account(&store, &body) {
        Some(db) => {
            let envelope = kz_endpoint::build_api::Envelope::of(&body);
            let result = Err(kz_endpoint::build_api::BuildError::new(
                kz_endpoint::build_api::ErrorCode::NotFound,
                format!(
                    "no database {db} in the fixture folder {} (the account is not in it)",
                    store.root().display()
                ),
            ));
            let reply = kz_endpoint::build_api::reply_body(&identity, &envelope, &result, &[]);
            kz_endpoint::handler::Handled {
                envelope,
                result,
                reply,
                resolution: None,
            }
        }
        None => runtime()?.block_on(handle(&body, &store, &registrar, &identity)),
    };
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
        if let Some(r) = &handled.resolution {
            writeln!(
                out,
                "{}",
                registrations_line(r, &args.registered, args.registration_unknown)
            )?;
        }
    } else {
        serde_json::to_writer(&mut out, &handled.reply)?;
        writeln!(out)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// The account database a valid request names, when the fixture folder does not hold it.
fn missing_account(store: &FixtureDb, body: &kz_endpoint::kz_json::Object) -> Option<String> {
    let req = kz_endpoint::build_api::parse_request(body).ok()?;
    let db = kz_endpoint::ids::account_db(&req.account_id);
    (!store.has_database(&db)).then_some(db)
}

/// The offline explanation's last line: every registration the build looked up, and the
/// state it was given, so that the engineer knows what `--registered` takes.
fn registrations_line(
    r: &kz_endpoint::resolver::Resolution,
    registered: &[RegKey],
    unknown: bool,
) -> String {
    use kz_endpoint::registrar::Registration;
    let others = if unknown {
        "unknown (--registration-unknown)"
    } else {
        "unregistered"
    };
    if r.inputs.registrations.is_empty() {
        return "registrations: none looked up".into();
    }
    let mut keys: Vec<_> = r.inputs.registrations.iter().collect();
    keys.sort_by_key(|(k, _)| k.to_string());
    let listed = keys
        .iter()
        .map(|(k, state)| {
            let why = match state {
                Registration::Registered => "registered (--registered)",
                _ if registered.contains(k) => "registered (--registered)",
                Registration::Unregistered => "unregistered (not named with --registered)",
                Registration::Unknown => "unknown (--registration-unknown)",
            };
            format!("{k} {why}")
        })
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "registrations: {listed}; every device not named with --registered USERNAME@REALM is {others}"
    )
}

/// `replay`: every capture under `paths`.
fn replay(paths: &[PathBuf], update: bool) -> anyhow::Result<ExitCode> {
    let mut files = Vec::new();
    for p in paths {
        files.extend(capture::files(p).map_err(usage)?);
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
    out.flush()?;
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `request`: one build request through the broker.
fn request(amqp_url: &str, timeout_ms: u64) -> anyhow::Result<ExitCode> {
    let body = match read_request()? {
        Ok(body) => body,
        Err(code) => return Ok(code),
    };
    let reply = runtime()?.block_on(async {
        let client = Client::connect_checked(amqp_url).await?;
        client
            .request(
                serde_json::Value::Object(body),
                Duration::from_millis(timeout_ms),
            )
            .await
    });
    match reply {
        Ok(r) => {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{r}")?;
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!(
                "kz-endpoint: broker {}: {}",
                kz_endpoint::report::url_host(amqp_url),
                kz_endpoint::report::error_chain(&e)
            );
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
    let rt = runtime()?;
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
