//! The operations listener: `/healthz` (the process is alive), `/readyz` (consuming build
//! requests and the document store reachable) and `/metrics` (OpenMetrics text, which
//! Prometheus reads; the series are listed in docs/operations.md).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::registry::Registry;
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
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        render(&worker),
    )
}

/// The metrics of a worker in the OpenMetrics text format (Prometheus reads it), encoded by
/// `prometheus-client`: the worker's counters and histograms, its state as gauges, the
/// store's metrics, the build's version, and the process's.
pub fn render<S: ServingStore>(worker: &Worker<S>) -> String {
    use prometheus_client::metrics::gauge::Gauge;
    use prometheus_client::metrics::info::Info;
    let mut root = Registry::default();
    root.register_collector(Box::new(crate::stats::ProcessCollector));
    let r = root.sub_registry_with_prefix("kz_endpoint");
    r.register(
        "build",
        "The running build",
        Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
    );
    worker.stats.register(r);
    let gauge = |v: i64| {
        let g = Gauge::<i64>::default();
        g.set(v);
        g
    };
    r.register(
        "requests_in_flight",
        "Requests taken and not settled yet",
        gauge(worker.in_flight() as i64),
    );
    r.register(
        "amqp_consuming",
        "1 while build requests are being consumed",
        gauge(i64::from(worker.is_consuming())),
    );
    r.register(
        "ecallmgr_nodes",
        "Live ecallmgr nodes known from the nodes heartbeats",
        gauge(worker.ecallmgr_nodes() as i64),
    );
    worker.store().register_metrics(r);
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &root);
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
