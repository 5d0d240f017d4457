//! The command line: the arguments of every subcommand and what each one runs.
//!
//! One file per command (its help text, its flags, its body); this file holds the list of
//! commands, the argument groups several of them share, and the helpers they all use. Every
//! default a flag shows is a named constant read by both the flag and the code it configures
//! (the `serve` ones are `WorkerConfig`'s).
//!
//! Errors: a command returns `anyhow::Result`; a [`UsageError`] (a missing folder, a bad
//! setting) exits 2 like clap's own usage errors, anything else 1.

mod build;
mod check;
mod explain;
mod healthcheck;
mod replay;
mod request;
mod serve;

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

use kz_endpoint::registrar::RegKey;
use kz_endpoint::worker::WorkerConfig;

/// Kazoo endpoint builder: decides which call legs to start when a device, user or group is
/// dialled, and answers in Kazoo's wire format.
#[derive(Debug, Parser)]
#[command(name = "kz-endpoint", version, about, long_about = None, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands; each one's help text is on its arguments, in its own file.
#[derive(Debug, Subcommand)]
enum Command {
    Build(build::Args),
    Explain(explain::Args),
    Replay(replay::Args),
    Serve(serve::Args),
    Request(request::Args),
    Check(check::Args),
    Healthcheck(healthcheck::Args),
}

impl Cli {
    /// Runs the command and turns its outcome into the exit status (the error, if any, on
    /// stderr).
    pub fn run(self) -> ExitCode {
        let result = match self.command {
            Command::Build(args) => build::run(args),
            Command::Explain(args) => explain::run(args),
            Command::Replay(args) => replay::run(args),
            Command::Serve(args) => serve::run(args),
            Command::Request(args) => request::run(args),
            Command::Check(args) => check::run(args),
            Command::Healthcheck(args) => healthcheck::run(args),
        };
        match result {
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
}

/// CouchDB's request timeout unless told otherwise, in milliseconds.
const DEFAULT_COUCH_TIMEOUT_MS: u64 = 1000;
/// Where the worker's operations listener serves unless told otherwise (`serve` listens
/// there, `healthcheck` asks there).
const DEFAULT_HTTP_LISTEN: &str = "127.0.0.1:9090";

/// Where documents come from: CouchDB, or a fixture folder (`serve`, `check`).
#[derive(Debug, clap::Args)]
#[group(id = "store", required = true, multiple = true)]
struct StoreArgs {
    /// CouchDB (Apache CouchDB 3), with credentials: http://user:pass@host:5984. One of
    /// --couch-url and --fixturedb is required; with both, CouchDB serves.
    #[arg(long, value_name = "URL", env = "KZ_COUCH_URL", hide_env_values = true)]
    couch_url: Option<String>,
    /// A fixture database folder, the embedded store used when no CouchDB URL is given.
    #[arg(long, value_name = "DIR", env = "KZ_FIXTUREDB", hide_env_values = true)]
    fixturedb: Option<PathBuf>,
}

/// The store [`StoreArgs`] names.
enum StoreChoice<'a> {
    Couch(&'a str),
    Fixture(&'a std::path::Path),
}

impl StoreArgs {
    /// CouchDB when its URL is given, else the fixture folder.
    fn choice(&self) -> anyhow::Result<StoreChoice<'_>> {
        match (&self.couch_url, &self.fixturedb) {
            (Some(url), _) => Ok(StoreChoice::Couch(url)),
            (None, Some(dir)) => Ok(StoreChoice::Fixture(dir)),
            // clap's `store` group makes one of them required.
            (None, None) => Err(usage("one of --couch-url and --fixturedb is required")),
        }
    }

    /// What a log line may say about the store (never a password).
    fn describe(&self) -> String {
        match self.choice() {
            Ok(StoreChoice::Couch(url)) => {
                format!("couchdb {}", kz_endpoint::report::redact_url(url))
            }
            Ok(StoreChoice::Fixture(dir)) => format!("fixture folder {}", dir.display()),
            Err(_) => "none".into(),
        }
    }
}

/// CouchDB's request timeout (`serve`, `check`).
#[derive(Debug, clap::Args)]
struct CouchTimeoutArgs {
    /// CouchDB request timeout, in milliseconds (rounded up to whole seconds).
    #[arg(long, env = "KZ_COUCH_TIMEOUT_MS", hide_env_values = true,
        default_value_t = DEFAULT_COUCH_TIMEOUT_MS)]
    couch_timeout_ms: u64,
}

impl CouchTimeoutArgs {
    fn timeout(&self) -> Duration {
        Duration::from_millis(self.couch_timeout_ms)
    }
}

/// The broker (`serve`, `request`).
#[derive(Debug, clap::Args)]
struct AmqpArgs {
    /// The RabbitMQ broker of the Kazoo cluster: `amqp://` or `amqps://` (the broker's
    /// certificate checked against the system's trust store); `?heartbeat=N` sets the
    /// heartbeat in seconds (otherwise the broker's, 60 on RabbitMQ).
    #[arg(long, env = "KZ_AMQP_URL", hide_env_values = true,
        default_value = WorkerConfig::DEFAULT_AMQP_URL)]
    amqp_url: String,
}

/// Our `Node` (`serve`, `build`, `explain`).
#[derive(Debug, clap::Args)]
struct NodeArgs {
    /// Our node name on the wire (`Node`) [default: kz-endpoint@<hostname>].
    #[arg(long, env = "KZ_NODE", hide_env_values = true, default_value_t = default_node(),
        hide_default_value = true)]
    node: String,
}

/// The registration state an offline build is given, in place of the registrars.
#[derive(Debug, clap::Args)]
struct RegistrationArgs {
    /// A registered device, as SIP USERNAME@REALM (repeatable).
    #[arg(long = "registered", value_name = "USERNAME@REALM", value_parser = parse_reg_key)]
    registered: Vec<RegKey>,
    /// Devices not named with --registered are in an unknown state (no registrar
    /// answered) instead of unregistered.
    #[arg(long)]
    registration_unknown: bool,
}

/// The inputs of an offline build (`build`, `explain`).
#[derive(Debug, clap::Args)]
struct OfflineArgs {
    /// The fixture database folder (Kazoo's fixturedb layout).
    #[arg(long, value_name = "DIR", env = "KZ_FIXTUREDB", hide_env_values = true)]
    fixturedb: PathBuf,
    #[command(flatten)]
    registrations: RegistrationArgs,
    #[command(flatten)]
    node: NodeArgs,
}

/// Logging (`serve`): to stderr, filtered by RUST_LOG (default `info`).
#[derive(Debug, clap::Args)]
struct LogArgs {
    /// The log format (logs go to stderr, filtered by RUST_LOG, default `info`).
    #[arg(long, env = "KZ_LOG_FORMAT", hide_env_values = true, value_enum,
        default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    /// Human-readable lines (coloured only on a terminal).
    Text,
    /// One JSON object per line.
    Json,
}

impl LogArgs {
    /// Starts logging to stderr; the level comes from RUST_LOG (default `info`). Colour only
    /// when stderr is a terminal and NO_COLOR is not set (a file, a pipe or journald get
    /// plain text). JSON lines carry the request's context once, as `span`.
    fn init(&self) {
        use std::io::IsTerminal;
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        let ansi = std::io::stderr().is_terminal()
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        match self.log_format {
            LogFormat::Text => kz_endpoint::log_format::init_text(filter, ansi),
            LogFormat::Json => kz_endpoint::log_format::init_json(filter),
        }
    }
}

fn parse_reg_key(s: &str) -> Result<RegKey, String> {
    RegKey::parse(s).ok_or_else(|| format!("`{s}` is not USERNAME@REALM"))
}

/// `kz-endpoint@<hostname>`.
fn default_node() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!("kz-endpoint@{host}")
}

/// A mistake in what the command was given (a missing folder, a bad setting): exit status 2,
/// like the usage errors clap reports.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct UsageError(String);

fn usage(e: impl std::fmt::Display) -> anyhow::Error {
    UsageError(e.to_string()).into()
}

/// True when `e` comes from writing to a closed pipe (`... | head`): the reader has all it
/// wanted, and the command ends quietly.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The runtime of the one-shot commands (`serve` has its own, multi-threaded).
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
    Ok(match kz_endpoint::handler::parse_body(&input) {
        Ok(body) => Ok(body),
        Err(e) => {
            eprintln!("kz-endpoint: {}", e.message);
            Err(ExitCode::from(2))
        }
    })
}
