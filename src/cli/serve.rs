//! `kz-endpoint serve`: the worker, wired to its store, the broker and the operations
//! listener.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use kz_endpoint::cache::{CachedStore, DocCache};
use kz_endpoint::couchdb::CouchStore;
use kz_endpoint::fixturedb::FixtureDb;
use kz_endpoint::recorder::Recorder;
use kz_endpoint::resolver::Limits;
use kz_endpoint::worker::{Store, Worker, WorkerConfig};
use kz_endpoint::{ops, shutdown};

use super::{
    AmqpArgs, CouchTimeoutArgs, DEFAULT_HTTP_LISTEN, LogArgs, NodeArgs, StoreArgs, StoreChoice,
    usage,
};

/// Documents the cache keeps at most, unless told otherwise.
const DEFAULT_CACHE_CAPACITY: usize = 100_000;
/// Seconds a cached document is trusted without a change event, unless told otherwise.
const DEFAULT_CACHE_TTL_SECS: u64 = 300;
/// Memory the document cache may take, in MB, unless told otherwise.
const DEFAULT_CACHE_MEMORY_MB: u64 = 64;
/// Threads that run requests, unless told otherwise.
const DEFAULT_WORKER_THREADS: u16 = 1;

/// Run the worker: take build requests from RabbitMQ, read documents from CouchDB (or a
/// fixture folder), ask the registrars, reply on the requester's queue.
///
/// Every flag has an environment fallback (shown with each). SIGTERM or SIGINT stops
/// consuming, finishes and acknowledges the requests in flight, and exits 0.
///
/// Exit status: 0 after a signal; 2 for a bad setting (no store, a missing fixture
/// folder, a name AMQP cannot carry); 1 when the operations listener cannot start.
#[derive(Debug, clap::Args)]
pub(super) struct Args {
    #[command(flatten)]
    amqp: AmqpArgs,
    #[command(flatten)]
    store: StoreArgs,
    /// The shared request queue (workers on the same queue compete for requests).
    #[arg(long, env = "KZ_QUEUE", hide_env_values = true,
        default_value = WorkerConfig::DEFAULT_QUEUE)]
    queue: String,
    /// A routing key binding the request queue to the kapps exchange (repeatable, or
    /// comma-separated; e.g. endpoint.build.<account id> to shard by account).
    #[arg(long = "binding", env = "KZ_BINDINGS", hide_env_values = true, value_delimiter = ',',
        default_value = WorkerConfig::DEFAULT_BINDING)]
    bindings: Vec<String>,
    /// Requests in flight at most (AMQP prefetch).
    #[arg(long, env = "KZ_PREFETCH", hide_env_values = true,
        default_value_t = WorkerConfig::DEFAULT_PREFETCH)]
    prefetch: u16,
    /// How long a build waits for registrars, in milliseconds.
    #[arg(long, env = "KZ_REGISTRAR_DEADLINE_MS", hide_env_values = true,
        default_value_t = WorkerConfig::DEFAULT_REGISTRAR_DEADLINE_MS)]
    registrar_deadline_ms: u64,
    /// How long the request window may stay full with no request finished before /readyz
    /// reports the worker stalled, in milliseconds [default: 4 x the registrar deadline,
    /// at least 2000].
    // The default is `WorkerConfig::default_stall_after` (a test checks this text).
    #[arg(long, env = "KZ_STALL_AFTER_MS", hide_env_values = true)]
    stall_after_ms: Option<u64>,
    /// Documents one build may read (every nesting level of groups and users counts its
    /// documents); a build that needs more gets Error-Code internal naming this limit.
    #[arg(long, env = "KZ_MAX_DOCUMENTS", hide_env_values = true,
        default_value_t = Limits::DEFAULT_MAX_DOCUMENTS)]
    max_documents: usize,
    /// Legs one build may return; a build that would return more gets Error-Code internal
    /// naming this limit.
    #[arg(long, env = "KZ_MAX_LEGS", hide_env_values = true,
        default_value_t = Limits::DEFAULT_MAX_LEGS)]
    max_legs: usize,
    #[command(flatten)]
    couch_timeout: CouchTimeoutArgs,
    /// Documents kept in the cache at most.
    #[arg(long, env = "KZ_CACHE_CAPACITY", hide_env_values = true,
        default_value_t = DEFAULT_CACHE_CAPACITY)]
    cache_capacity: usize,
    /// Seconds a cached document is trusted without a change event.
    #[arg(long, env = "KZ_CACHE_TTL_SECS", hide_env_values = true,
        default_value_t = DEFAULT_CACHE_TTL_SECS)]
    cache_ttl_secs: u64,
    /// Memory the document cache may take, in MB (its entries as it counts them, see the
    /// kz_endpoint_cache_bytes metric); the least recently used documents are dropped first.
    /// The cache is bounded by this and by --cache-capacity, whichever is reached first.
    #[arg(long, env = "KZ_CACHE_MEMORY_MB", hide_env_values = true,
        default_value_t = DEFAULT_CACHE_MEMORY_MB,
        value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    cache_memory_mb: u64,
    /// Threads that run requests. With 1, one thread runs every request and the broker
    /// connection: a warm build takes microseconds, and no message crosses between threads,
    /// which costs less CPU per request than a pool. More, for a worker that needs more than
    /// one core (many cold builds, large groups).
    #[arg(long, env = "KZ_WORKER_THREADS", hide_env_values = true,
        default_value_t = DEFAULT_WORKER_THREADS,
        value_parser = clap::value_parser!(u16).range(1..=1024))]
    worker_threads: u16,
    #[command(flatten)]
    node: NodeArgs,
    #[command(flatten)]
    log: LogArgs,
    /// Where the operations listener serves /healthz, /readyz and /metrics.
    #[arg(long, env = "KZ_HTTP_LISTEN", hide_env_values = true,
        default_value = DEFAULT_HTTP_LISTEN)]
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

pub(super) fn run(args: Args) -> anyhow::Result<ExitCode> {
    args.log.init();
    let rt = match args.worker_threads {
        1 => tokio::runtime::Builder::new_current_thread(),
        n => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(usize::from(n));
            b
        }
    }
    .enable_all()
    .build()
    .context("starting the runtime")?;
    // With several threads, the worker runs on the runtime's threads, not on this one: a
    // task spawned from a runtime thread (one per request) starts on the same thread, where
    // one spawned from outside must wake a runtime thread first.
    rt.block_on(async { tokio::spawn(serve(args)).await })
        .context("the worker task failed")??;
    Ok(ExitCode::SUCCESS)
}

/// The settings the flags give the worker.
fn worker_config(args: &Args) -> WorkerConfig {
    let mut config = WorkerConfig::new(args.amqp.amqp_url.clone(), args.node.node.clone());
    config.queue = args.queue.clone();
    config.bindings = args.bindings.clone();
    config.prefetch = args.prefetch;
    config.registrar_deadline = Duration::from_millis(args.registrar_deadline_ms);
    config.stall_after = match args.stall_after_ms {
        Some(ms) => Duration::from_millis(ms),
        None => WorkerConfig::default_stall_after(config.registrar_deadline),
    };
    config.limits = Limits {
        max_documents: args.max_documents,
        max_legs: args.max_legs,
    };
    config
}

async fn serve(args: Args) -> anyhow::Result<()> {
    let store = match args.store.choice()? {
        StoreChoice::Couch(url) => Store::Couch(CachedStore {
            store: CouchStore::new(url, args.couch_timeout.timeout()).map_err(usage)?,
            cache: Arc::new(
                DocCache::new(
                    args.cache_capacity,
                    Duration::from_secs(args.cache_ttl_secs),
                )
                .with_memory_limit(
                    usize::try_from(args.cache_memory_mb.saturating_mul(1 << 20))
                        .unwrap_or(usize::MAX),
                ),
            ),
        }),
        StoreChoice::Fixture(dir) => Store::Fixture(FixtureDb::open(dir).map_err(usage)?),
    };
    let config = worker_config(&args);
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
    // The start-up line keeps the target it always had (the binary's crate name).
    tracing::info!(
        target: "kz_endpoint",
        version = %env!("CARGO_PKG_VERSION"),
        broker = %kz_endpoint::report::redact_url(&config.amqp_url),
        store = %args.store.describe(),
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

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_stall_default_in_the_help_is_the_one_applied() {
        let help = super::super::Cli::command()
            .find_subcommand_mut("serve")
            .unwrap()
            .render_long_help()
            .to_string();
        let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
        let said = format!(
            "[default: {} x the registrar deadline, at least {}]",
            WorkerConfig::STALL_AFTER_DEADLINES,
            WorkerConfig::MIN_STALL_AFTER_MS
        );
        assert!(help.contains(&said), "serve --help lacks {said:?}:\n{help}");
        let deadline = |ms| WorkerConfig::default_stall_after(Duration::from_millis(ms));
        assert_eq!(deadline(100), Duration::from_millis(2000));
        assert_eq!(deadline(1000), Duration::from_millis(4000));
    }

    #[test]
    fn the_flag_defaults_are_the_worker_defaults() {
        // Parsed with the environment fallbacks off, so that a KZ_* variable of the test's
        // environment does not count.
        let mut serve = super::super::Cli::command()
            .find_subcommand("serve")
            .unwrap()
            .clone();
        let ids: Vec<_> = serve.get_arguments().map(|a| a.get_id().clone()).collect();
        for id in ids {
            serve = serve.mut_arg(id, |a| a.env(None));
        }
        let matches = serve.get_matches_from(["serve", "--fixturedb", "x"]);
        let args = <Args as clap::FromArgMatches>::from_arg_matches(&matches).unwrap();
        let given = worker_config(&args);
        let defaults = WorkerConfig::new(WorkerConfig::DEFAULT_AMQP_URL, args.node.node.clone());
        assert_eq!(format!("{given:?}"), format!("{defaults:?}"));
    }
}
