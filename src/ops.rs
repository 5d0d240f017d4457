//! The operations listener: `/healthz` (the process is alive), `/readyz` (consuming build
//! requests and the document store reachable) and `/metrics` (OpenMetrics text, which
//! Prometheus reads; the series are listed in docs/operations.md), over the [`Observed`]
//! port.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use crate::shutdown::Shutdown;

/// What the operations listener reads from the service it watches: its readiness and a
/// snapshot of its metrics. A port, so that this adapter knows nothing of the worker's
/// internals (the worker implements it, `crate::worker`).
pub trait Observed: Send + Sync + 'static {
    /// `Ok` when the service can do its job; otherwise why not, for `/readyz`.
    fn readiness(&self) -> impl std::future::Future<Output = Result<(), String>> + Send;

    /// Registers the service's metrics, as they are at this moment, into `registry` (names
    /// without the `kz_endpoint_` prefix).
    fn register_metrics(&self, registry: &mut Registry);
}

impl<T: Observed> Observed for Arc<T> {
    fn readiness(&self) -> impl std::future::Future<Output = Result<(), String>> + Send {
        (**self).readiness()
    }

    fn register_metrics(&self, registry: &mut Registry) {
        (**self).register_metrics(registry)
    }
}

/// Serves the operations endpoints on `listener` until `shutdown` fires.
pub async fn serve<O: Observed>(
    listener: TcpListener,
    observed: Arc<O>,
    mut shutdown: Shutdown,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz::<O>))
        .route("/metrics", get(metrics::<O>))
        .with_state(observed);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.wait().await })
        .await
}

async fn readyz<O: Observed>(State(observed): State<Arc<O>>) -> impl IntoResponse {
    match observed.readiness().await {
        Ok(()) => (StatusCode::OK, "ready\n".to_owned()),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        ),
    }
}

async fn metrics<O: Observed>(State(observed): State<Arc<O>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        render(&*observed),
    )
}

/// The metrics page in the OpenMetrics text format (Prometheus reads it), encoded by
/// `prometheus-client`: the service's metrics, the build's version, and the process's.
pub fn render<O: Observed>(observed: &O) -> String {
    use prometheus_client::metrics::info::Info;
    let mut root = Registry::default();
    root.register_collector(Box::new(crate::stats::ProcessCollector));
    let r = root.sub_registry_with_prefix("kz_endpoint");
    r.register(
        "build",
        "The running build",
        Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
    );
    observed.register_metrics(r);
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
