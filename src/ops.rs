//! The operations listener: `/healthz` (the process is alive), `/readyz` (consuming build
//! requests and the document store reachable) and `/metrics` (Prometheus text format).

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;

use crate::shutdown::Shutdown;
use crate::worker::{ServingStore, Worker};

/// Serves the operations endpoints on `listener` until `shutdown` fires.
pub async fn serve<S: ServingStore>(
    listener: TcpListener,
    worker: Arc<Worker<S>>,
    mut shutdown: Shutdown,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz::<S>))
        .route("/metrics", get(metrics::<S>))
        .with_state(worker);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.wait().await })
        .await
}

async fn readyz<S: ServingStore>(State(worker): State<Arc<Worker<S>>>) -> impl IntoResponse {
    match worker.readiness().await {
        Ok(()) => (StatusCode::OK, "ready\n".to_owned()),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        ),
    }
}

async fn metrics<S: ServingStore>(State(worker): State<Arc<Worker<S>>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        render(&worker),
    )
}

fn counter(out: &mut String, name: &str, help: &str, samples: &[(&str, u64)]) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
    for (labels, v) in samples {
        let _ = writeln!(out, "{name}{labels} {v}");
    }
}

fn gauge(out: &mut String, name: &str, help: &str, v: u64) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
}

/// The metrics of a worker in the Prometheus text format.
pub fn render<S: ServingStore>(worker: &Worker<S>) -> String {
    let s = &worker.stats;
    let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    let mut out = String::new();
    let built = load(&s.built);
    let errors = s.errors();
    let mut requests = vec![("{outcome=\"build_resp\"}".to_owned(), built)];
    for (code, n) in &errors {
        requests.push((format!("{{outcome=\"build_error\",code=\"{code}\"}}"), *n));
    }
    let requests: Vec<(&str, u64)> = requests.iter().map(|(l, v)| (l.as_str(), *v)).collect();
    counter(
        &mut out,
        "kz_endpoint_requests_total",
        "Build requests answered, by outcome and error code.",
        &requests,
    );
    counter(
        &mut out,
        "kz_endpoint_invalid_inputs_total",
        "Messages that were not a valid build request.",
        &[("", load(&s.invalid_inputs))],
    );
    counter(
        &mut out,
        "kz_endpoint_unanswerable_total",
        "Messages acknowledged without a reply (no reply address).",
        &[("", load(&s.unanswerable))],
    );
    s.build_seconds.render(
        "kz_endpoint_build_duration_seconds",
        "Time from a request's arrival to its reply.",
        &mut out,
    );
    s.legs_per_build.render(
        "kz_endpoint_legs_per_build",
        "Legs returned per successful build.",
        &mut out,
    );
    counter(
        &mut out,
        "kz_endpoint_registrations_total",
        "Registration lookups by outcome.",
        &[
            ("{state=\"registered\"}", load(&s.registered)),
            ("{state=\"unregistered\"}", load(&s.unregistered)),
            ("{state=\"unknown\"}", load(&s.unknown)),
        ],
    );
    s.registrar_seconds.render(
        "kz_endpoint_registrar_duration_seconds",
        "Time a build waited for the registrars.",
        &mut out,
    );
    counter(
        &mut out,
        "kz_endpoint_task_failures_total",
        "Request tasks that failed unexpectedly (a panic); their deliveries were settled.",
        &[("", load(&s.task_failures))],
    );
    gauge(
        &mut out,
        "kz_endpoint_requests_in_flight",
        "Requests taken and not settled yet.",
        worker.in_flight() as u64,
    );
    counter(
        &mut out,
        "kz_endpoint_amqp_reconnects_total",
        "Broker connections re-established after a loss.",
        &[("", load(&s.reconnects))],
    );
    gauge(
        &mut out,
        "kz_endpoint_amqp_consuming",
        "1 while build requests are being consumed.",
        u64::from(worker.is_consuming()),
    );
    gauge(
        &mut out,
        "kz_endpoint_ecallmgr_nodes",
        "Live ecallmgr nodes known from the nodes heartbeats.",
        worker.ecallmgr_nodes() as u64,
    );
    if let Some(cache) = worker.store().cache() {
        let c = &cache.stats;
        counter(
            &mut out,
            "kz_endpoint_cache_hits_total",
            "Document lookups served from the cache.",
            &[("", load(&c.hits))],
        );
        counter(
            &mut out,
            "kz_endpoint_cache_misses_total",
            "Document lookups sent to CouchDB.",
            &[("", load(&c.misses))],
        );
        counter(
            &mut out,
            "kz_endpoint_cache_evictions_total",
            "Cache entries dropped by change events, expiry or a reconnection.",
            &[("", load(&c.evictions))],
        );
        gauge(
            &mut out,
            "kz_endpoint_cache_documents",
            "Documents in the cache.",
            cache.len() as u64,
        );
    }
    out
}

/// `GET http://addr/path` with a plain HTTP/1.0 request: the status code and the body. Used by
/// the `healthcheck` command (the runtime image has no curl).
pub async fn http_get(addr: &str, path: &str) -> std::io::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let req = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).await?;
    let text = String::from_utf8_lossy(&buf);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}
