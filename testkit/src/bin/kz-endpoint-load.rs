//! kz-endpoint-load: drives a worker through RabbitMQ exactly as callflow would, and in the same
//! run a no-op echo consumer on the same broker, so every figure is a ratio to the path's own
//! physical limit. See docs/performance.md.

// The same allocator as the kz-endpoint binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use futures_util::StreamExt;
use kz_endpoint::amqp::{encode, publish_targeted, random_hex};
use kz_endpoint::build_api::parse_request;
use kz_endpoint::cache::{CachedStore, DocCache};
use kz_endpoint::client::Client;
use kz_endpoint::couchdb::CouchStore;
use kz_endpoint::documents::{Docs, DocumentStore, Owned, StoreError};
use kz_endpoint::ids::account_db;
use kz_endpoint::registrar::GivenRegistrations;
use kz_endpoint_testkit::ecallmgr::{Answer, Ecallmgr};
use kz_endpoint_testkit::worker_process::{ServeOptions, Usage, WorkerProcess, process_usage};
use kz_endpoint_testkit::{echo, raw_echo, synthetic};
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use serde_json::{Value, json};

/// Load tool for kz-endpoint: measures build throughput and latency through RabbitMQ against
/// a no-op echo consumer on the same broker, in one run.
///
/// It creates a synthetic account in CouchDB, starts the real `kz-endpoint serve` binary as a
/// process of its own and an echo consumer, also a process of its own (the CPU time, the
/// kernel's share of it, and the context switches of each are reported per request), then sends
/// N device build requests with K in flight to each, exactly as Kazoo's callflow sends them
/// (build_req on kapps, replies on a targeted queue); and, at one in flight, the round trip
/// against the echo consumer's. Scenarios: warm cache and cold cache (every build reads CouchDB), each
/// with and without a registrar answering; then the warm worker paced at half its measured
/// maximum, for latency under load, and the echo consumer paced at the same rate beside it.
/// It also reports CouchDB requests per cold build and the resident memory of 100k cached
/// documents. Nothing is asserted: it prints numbers.
#[derive(Debug, Parser)]
#[command(name = "kz-endpoint-load", version)]
struct Args {
    /// The broker.
    #[arg(
        long,
        env = "KZ_AMQP_URL",
        hide_env_values = true,
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    amqp_url: String,
    /// A CouchDB (or CouchDB-API) server: http://user:pass@host:5984.
    #[arg(long, env = "KZ_COUCH_URL", hide_env_values = true)]
    couch_url: String,
    /// Requests per scenario (at least 1).
    #[arg(long, default_value_t = 5000, value_parser = at_least_one)]
    requests: usize,
    /// Requests in flight (at least 1).
    #[arg(long, default_value_t = 32, value_parser = at_least_one)]
    in_flight: usize,
    /// Requests of each scenario at one in flight. The CPU figure is read from `/proc` in
    /// 10 ms ticks: 5 000 requests make its step 2 µs a request (at least 1).
    #[arg(long, default_value_t = 5000, value_parser = at_least_one)]
    one_in_flight_requests: usize,
    /// Worker prefetch (and the echo consumer's).
    #[arg(long, default_value_t = 32)]
    prefetch: u16,
    /// Documents for the memory figure.
    #[arg(long, default_value_t = 100_000)]
    cached_documents: usize,
    /// Devices of the user in the CouchDB-requests figure.
    #[arg(long, default_value_t = 10)]
    user_devices: usize,
    /// The `kz-endpoint` binary to measure, started as `kz-endpoint serve` in a process of its
    /// own [default: the one beside this tool, target/PROFILE/kz-endpoint, PROFILE being the one it was built with].
    #[arg(long, value_name = "PATH")]
    worker_binary: Option<std::path::PathBuf>,
    /// Only the warm-cache scenarios without a registrar (32 in flight, paced, 1 in flight):
    /// a shorter run, for comparing two builds or profiling the worker.
    #[arg(long)]
    warm_only: bool,
    /// Run as the echo consumer of routing key KEY, in a process of its own (the tool starts
    /// itself so, so that the echo consumer's CPU time is measured as the worker's is).
    #[arg(long, hide = true, value_name = "KEY")]
    serve_echo: Option<String>,
    /// With `--serve-echo`: the echo consumer that speaks AMQP itself on one thread
    /// (`raw_echo`), instead of the one on lapin.
    #[arg(long, hide = true, requires = "serve_echo")]
    raw_echo: bool,
}

#[derive(Debug, Clone)]
struct Run {
    name: String,
    throughput: f64,
    p50: Duration,
    p99: Duration,
    p999: Duration,
    errors: usize,
    /// The consuming process's CPU time (user + system) per request: the worker's or the
    /// echo consumer's.
    cpu_per_request: Option<Duration>,
    /// Of [`Run::cpu_per_request`], the kernel's share (see [`Usage::system`]).
    system_per_request: Option<Duration>,
    /// The consuming process's context switches per request (all its threads).
    switches_per_request: Option<f64>,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// Sends `n` requests, `k` in flight (or paced at `rate` per second), and measures.
async fn drive(
    client: Arc<Client>,
    name: &str,
    template: &Value,
    routing_key: &str,
    n: usize,
    k: usize,
    rate: Option<f64>,
) -> Run {
    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..k {
        let (client, next, template, key) = (
            client.clone(),
            next.clone(),
            template.clone(),
            routing_key.to_owned(),
        );
        tasks.spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    break;
                }
                if let Some(rate) = rate {
                    let due = started + Duration::from_secs_f64(i as f64 / rate);
                    tokio::time::sleep_until(due.into()).await;
                }
                let t = Instant::now();
                let mut req = template.clone();
                req["Msg-ID"] = json!(format!("load-{i}-{}", random_hex(6)));
                match client
                    .request_with_key(req, &key, Duration::from_secs(10))
                    .await
                {
                    Ok(r) if r["Event-Name"] == "build_resp" => lat.push(t.elapsed()),
                    _ => errors += 1,
                }
            }
            (lat, errors)
        });
    }
    let mut lat = Vec::with_capacity(n);
    let mut errors = 0;
    while let Some(r) = tasks.join_next().await {
        let (l, e) = r.expect("a load task");
        lat.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed();
    lat.sort();
    Run {
        name: name.to_owned(),
        throughput: lat.len() as f64 / elapsed.as_secs_f64(),
        p50: percentile(&lat, 0.50),
        p99: percentile(&lat, 0.99),
        p999: percentile(&lat, 0.999),
        errors,
        cpu_per_request: None,
        system_per_request: None,
        switches_per_request: None,
    }
}

/// The no-op echo consumer: the cheapest request/reply worker possible on this broker with
/// the worker's AMQP client.
async fn start_echo(
    amqp_url: &str,
    key: &str,
    prefetch: u16,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let conn = Connection::connect(amqp_url, ConnectionProperties::default()).await?;
    let ch = conn.create_channel().await?;
    let q = echo::declare_queue(&ch, key).await?;
    ch.basic_qos(prefetch, BasicQosOptions::default()).await?;
    let mut consumer = ch
        .basic_consume(
            q.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok(tokio::spawn(async move {
        let _conn = conn;
        while let Some(Ok(d)) = consumer.next().await {
            let ch = ch.clone();
            tokio::spawn(async move {
                if let Some((server_id, reply)) = echo::reply(&d.data) {
                    let _ = publish_targeted(&ch, &server_id, &reply).await;
                }
                let _ = d.acker.ack(BasicAckOptions::default()).await;
            });
        }
    }))
}

/// A registrar for the bench realm: every query answered "registered", plus heartbeats.
async fn start_registrar(amqp_url: &str, realm: &str) -> anyhow::Result<Ecallmgr> {
    Ok(Ecallmgr::start(
        amqp_url,
        realm,
        &[],
        Answer::Registered,
        Duration::from_secs(1),
    )
    .await?)
}

/// Loads the synthetic account into CouchDB with `_bulk_docs`.
async fn load_account(
    couch_url: &str,
    account: &synthetic::Account,
) -> anyhow::Result<couch_rs::Client> {
    let base = url::Url::parse(couch_url)?;
    let (user, pass) = (
        base.username().to_owned(),
        base.password().map(str::to_owned),
    );
    let mut plain = base.clone();
    let _ = plain.set_username("");
    let _ = plain.set_password(None);
    let client = couch_rs::Client::new_with_timeout(
        plain.as_str(),
        (!user.is_empty()).then_some(user.as_str()),
        pass.as_deref(),
        Some(30),
    )?;
    let db = account_db(&account.id);
    let r = client
        .req(couch_rs::http::Method::PUT, &format!("/{db}"), None)
        .send()
        .await?;
    if !r.status().is_success() {
        bail!("creating {db}: {}", r.status());
    }
    let mut docs = account.docs.clone();
    docs.push(serde_json::from_str(include_str!(
        "../../../fixtures/couchdb/attributes.json"
    ))?);
    let r = client
        .req(
            couch_rs::http::Method::POST,
            &format!("/{db}/_bulk_docs"),
            None,
        )
        .json(&json!({"docs": docs}))
        .send()
        .await?;
    if !r.status().is_success() {
        bail!("loading {db}: {}", r.status());
    }
    Ok(client)
}

/// Starts `kz-endpoint serve` for one scenario, bound to the account's build requests only.
fn start_worker(
    args: &Args,
    account: &synthetic::Account,
    binary: &std::path::Path,
    cold: bool,
) -> anyhow::Result<WorkerProcess> {
    WorkerProcess::start(&ServeOptions {
        binary: binary.to_owned(),
        amqp_url: args.amqp_url.clone(),
        couch_url: args.couch_url.clone(),
        queue: format!("kz-load-builder-{}", random_hex(8)),
        binding: format!("endpoint.build.{}", encode(&account.id)),
        prefetch: args.prefetch,
        cache_ttl_secs: if cold { 0 } else { 3600 },
    })
}

/// Sends a scenario's requests and measures what the consuming process used as well
/// (`usage`: what that process has used so far).
async fn measured(
    usage: impl Fn() -> anyhow::Result<Usage>,
    run: impl std::future::Future<Output = Run>,
    n: usize,
) -> anyhow::Result<Run> {
    let before = usage()?;
    let mut r = run.await;
    let used = usage()?.since(before);
    r.cpu_per_request = Some(used.cpu / n.max(1) as u32);
    r.system_per_request = Some(used.system / n.max(1) as u32);
    r.switches_per_request = Some(used.context_switches as f64 / n.max(1) as f64);
    Ok(r)
}

/// The echo consumer, running as a process of its own (this tool, started with
/// `--serve-echo`); killed when dropped.
struct EchoProcess(std::process::Child);

impl EchoProcess {
    /// Starts it and waits until it consumes.
    fn start(args: &Args, key: &str, raw: bool) -> anyhow::Result<Self> {
        use std::io::BufRead;
        let mut child = std::process::Command::new(std::env::current_exe()?)
            .args(["--serve-echo", key])
            .args(raw.then_some("--raw-echo"))
            .args(["--amqp-url", &args.amqp_url])
            .args(["--couch-url", "unused"])
            .args(["--prefetch", &args.prefetch.to_string()])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .context("starting the echo consumer")?;
        let mut line = String::new();
        let out = child.stdout.take().context("the echo consumer's output")?;
        std::io::BufReader::new(out).read_line(&mut line)?;
        let echo = Self(child);
        if line.trim() != "ready" {
            bail!("the echo consumer did not start: {line:?}");
        }
        Ok(echo)
    }

    fn usage(&self) -> anyhow::Result<Usage> {
        process_usage(self.0.id())
    }
}

impl Drop for EchoProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `--serve-echo`: the echo consumer until killed, on one thread as the worker's default.
fn serve_echo(args: &Args, key: &str) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async {
            if args.raw_echo {
                // The queue is declared and bound over lapin, which is then closed: only
                // consuming and answering are measured.
                let conn =
                    Connection::connect(&args.amqp_url, ConnectionProperties::default()).await?;
                let ch = conn.create_channel().await?;
                let q = echo::declare_queue(&ch, key).await?;
                conn.close(0, "".into()).await?;
                return raw_echo::serve(&args.amqp_url, &q, args.prefetch, || println!("ready"))
                    .await;
            }
            let consumer = start_echo(&args.amqp_url, key, args.prefetch).await?;
            println!("ready");
            consumer.await?;
            Ok(())
        })
}

/// A store whose every document is freshly built (as documents arrive from CouchDB), for
/// the memory figure.
struct Generated(String);

impl DocumentStore for Generated {
    async fn open_docs(&self, _db: &str, ids: &[String]) -> Result<Docs, StoreError> {
        Ok(ids
            .iter()
            .map(|id| {
                let username = format!("m{}", &id[24..]);
                (
                    id.clone(),
                    Some(Arc::new(
                        synthetic::device_doc(&self.0, id, &username, Some("u0")).into(),
                    )),
                )
            })
            .collect())
    }
    async fn owned_devices(&self, _db: &str, _users: &[String]) -> Result<Owned, StoreError> {
        Ok(Owned::default())
    }
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

/// A per-request CPU figure in whole microseconds, or `-` for a scenario not measured so.
fn micros(d: Option<Duration>) -> String {
    d.map(|c| format!("{:.0} us", c.as_secs_f64() * 1e6))
        .unwrap_or_else(|| "-".into())
}

/// A count of at least 1: a scenario of no requests would divide by zero in its figures.
fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(key) = &args.serve_echo {
        return serve_echo(&args, key);
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async {
            // Stopped by a signal, the run's future is dropped, and with it the worker and
            // echo processes it started (their `Drop` kills them): a load run interrupted by
            // Ctrl-C or `kill` leaves no `kz-endpoint serve` consuming behind it.
            tokio::select! {
                done = load(args) => done,
                signal = interrupted() => bail!("stopped by {signal}; the processes it started are stopped"),
            }
        })
}

/// The first SIGINT or SIGTERM, by name.
async fn interrupted() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => tokio::select! {
            _ = int.recv() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        },
        // No handler could be installed: the default action (the process ends) stands.
        _ => std::future::pending().await,
    }
}

async fn load(args: Args) -> anyhow::Result<()> {
    let account = synthetic::account(&random_hex(32), args.user_devices);
    let couch = load_account(&args.couch_url, &account)
        .await
        .context("loading the bench account")?;
    // Resident memory of the document cache, measured first: memory that later scenarios
    // free and the allocator keeps would otherwise absorb part of the growth.
    let cache = Arc::new(DocCache::new(
        args.cached_documents,
        Duration::from_secs(3600),
    ));
    let gen_store = CachedStore {
        store: Generated(account.id.clone()),
        cache: cache.clone(),
    };
    let before = rss_bytes();
    let ids: Vec<String> = (0..args.cached_documents)
        .map(|i| synthetic::id("c", i))
        .collect();
    // Under the account's real database name, as the worker caches them (the key's
    // database part is 48 bytes).
    let gen_db = account_db(&account.id);
    for chunk in ids.chunks(1000) {
        gen_store.open_docs(&gen_db, chunk).await?;
    }
    let after = rss_bytes();
    let memory = format!(
        "Resident memory: {:.1} MB before, {:.1} MB with {} cached documents ({:.1} MB for the cache, {:.0} bytes per document; the cache counts {:.0})",
        before as f64 / 1e6,
        after as f64 / 1e6,
        cache.len(),
        (after.saturating_sub(before)) as f64 / 1e6,
        (after.saturating_sub(before)) as f64 / cache.len().max(1) as f64,
        cache.bytes() as f64 / cache.len().max(1) as f64
    );

    let db = account_db(&account.id);
    let template = account.request(&account.device);
    let client = Arc::new(Client::connect(&args.amqp_url).await?);
    let echo_key = format!("endpoint.echo.{}", random_hex(8));
    let echo = EchoProcess::start(&args, &echo_key, false)?;
    let raw_key = format!("endpoint.echo.{}", random_hex(8));
    let raw_echo = EchoProcess::start(&args, &raw_key, true)?;
    let build_key = format!("endpoint.build.{}", encode(&account.id));
    let (n, k) = (args.requests, args.in_flight);
    println!(
        "kz-endpoint-load: {n} device builds per scenario, {k} in flight, prefetch {}",
        args.prefetch
    );

    // Warm-up of the broker path.
    drive(
        client.clone(),
        "warm-up",
        &template,
        &echo_key,
        n / 10 + 1,
        k,
        None,
    )
    .await;
    // This machine is shared: each worker scenario is compared with echo runs just before and
    // just after it, so drift in the machine's load cancels out of the ratio.
    let echo_ref = |a: &Run, b: &Run| (a.throughput + b.throughput) / 2.0;
    let mut runs: Vec<(Run, f64)> = Vec::new();
    let echo_run = || {
        measured(
            || echo.usage(),
            drive(
                client.clone(),
                "echo (no-op consumer)",
                &template,
                &echo_key,
                n,
                k,
                None,
            ),
            n,
        )
    };
    let binary = match &args.worker_binary {
        Some(b) => b.clone(),
        None => WorkerProcess::default_binary()?,
    };
    for (cold, registrar) in [(false, false), (false, true), (true, false), (true, true)] {
        if args.warm_only && (cold || registrar) {
            continue;
        }
        let worker = start_worker(&args, &account, &binary, cold)?;
        let reg_tasks = if registrar {
            let t = start_registrar(&args.amqp_url, &account.realm).await?;
            for _ in 0..300 {
                let known = worker
                    .metrics()
                    .is_ok_and(|m| m.lines().any(|l| l == "kz_endpoint_ecallmgr_nodes 1"));
                if known {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Some(t)
        } else {
            None
        };
        let name = format!(
            "worker {} cache, {}",
            if cold { "cold" } else { "warm" },
            if registrar {
                "registrar answering"
            } else {
                "no registrar"
            }
        );
        drive(
            client.clone(),
            "warm-up",
            &template,
            &build_key,
            n / 10 + 1,
            k,
            None,
        )
        .await;
        let before = echo_run().await?;
        let run = drive(client.clone(), &name, &template, &build_key, n, k, None);
        let run = measured(|| worker.usage(), run, n).await?;
        let after = echo_run().await?;
        let reference = echo_ref(&before, &after);
        if runs.is_empty() {
            runs.push((before.clone(), reference));
        }
        if !cold && !registrar {
            // Half the measured maximum, for the worker and then for the echo consumer: the
            // echo's row is the tail that the broker, the load tool and this machine's cores
            // give any consumer at that rate, beside the worker's (the target is on the
            // worker's p99, and this row says how much of it is the machine's).
            let half_rate = Some(run.throughput / 2.0);
            let paced = |name, key| drive(client.clone(), name, &template, key, n, k, half_rate);
            let half = paced(
                "worker warm cache, no registrar, paced at 50% of its maximum",
                &build_key,
            );
            let half = measured(|| worker.usage(), half, n).await?;
            let echo_half = paced("echo, paced at the same rate", &echo_key);
            let echo_half = measured(|| echo.usage(), echo_half, n).await?;
            runs.push((run, reference));
            runs.push((half, reference));
            runs.push((echo_half, reference));
            // One in flight: the round trip against the echo consumer's, in the same run.
            let m = args.one_in_flight_requests;
            let echo_one = drive(
                client.clone(),
                "echo, 1 in flight",
                &template,
                &echo_key,
                m,
                1,
                None,
            );
            let echo_one = measured(|| echo.usage(), echo_one, m).await?;
            let one = drive(
                client.clone(),
                "worker warm cache, no registrar, 1 in flight",
                &template,
                &build_key,
                m,
                1,
                None,
            );
            let one = measured(|| worker.usage(), one, m).await?;
            let one_ref = echo_one.throughput;
            runs.push((echo_one, one_ref));
            runs.push((one, one_ref));
            // The floor: an echo consumer with no client library, on one thread
            // (`raw_echo`), at 32 and at 1 in flight; each row is its own reference.
            drive(
                client.clone(),
                "warm-up",
                &template,
                &raw_key,
                n / 10 + 1,
                k,
                None,
            )
            .await;
            for (name, count, in_flight) in [
                ("echo without a client library (raw AMQP, one thread)", n, k),
                ("echo without a client library, 1 in flight", m, 1),
            ] {
                let raw = drive(
                    client.clone(),
                    name,
                    &template,
                    &raw_key,
                    count,
                    in_flight,
                    None,
                );
                let raw = measured(|| raw_echo.usage(), raw, count).await?;
                let reference = raw.throughput;
                runs.push((raw, reference));
            }
        } else {
            runs.push((run, reference));
        }
        // The stand-in registrar stops when dropped, the worker process is killed.
        drop(reg_tasks);
        drop(worker);
    }
    drop(echo);
    drop(raw_echo);

    println!();
    println!(
        "{:<62} {:>9} {:>8} {:>8} {:>8} {:>9} {:>7} {:>6} {:>10} {:>10} {:>9}",
        "scenario",
        "builds/s",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "echo ref",
        "vs echo",
        "errors",
        "CPU/req",
        "of it sys",
        "switch/req"
    );
    for (r, reference) in &runs {
        println!(
            "{:<62} {:>9.0} {:>8} {:>8} {:>8} {:>9.0} {:>6.0}% {:>6} {:>10} {:>10} {:>9}",
            r.name,
            r.throughput,
            ms(r.p50),
            ms(r.p99),
            ms(r.p999),
            reference,
            100.0 * r.throughput / reference,
            r.errors,
            micros(r.cpu_per_request),
            micros(r.system_per_request),
            r.switches_per_request
                .map(|c| format!("{c:.1}"))
                .unwrap_or_else(|| "-".into())
        );
    }

    // CouchDB requests per cold build.
    let store = CouchStore::new(&args.couch_url, Duration::from_secs(2))?;
    let registrar = GivenRegistrations::new(account.registrations(), false);
    println!();
    for (what, target) in [("device", &account.device), ("user", &account.user)] {
        let req = parse_request(account.request(target).as_object().expect("object"))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let res =
            kz_endpoint::resolver::resolve(&req, &store, &registrar, &Default::default()).await;
        let legs = res.result.map(|l| l.len()).unwrap_or(0);
        let label = if what == "user" {
            format!("user with {} devices", args.user_devices)
        } else {
            "device".to_owned()
        };
        println!(
            "CouchDB requests per cold build, {label}: {} ({} engine rounds, {legs} legs)",
            res.store_reads, res.engine_runs
        );
    }

    println!("{memory}");

    let _ = couch
        .req(couch_rs::http::Method::DELETE, &format!("/{db}"), None)
        .send()
        .await;
    Ok(())
}
