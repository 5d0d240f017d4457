//! Runs the worker's whole request path but the broker in a loop, for profiling: the message
//! bytes read and validated, the documents served by the cache (warm, as in the load tool's
//! warm scenario), the registrar unknown (no ecallmgr), the resolver's engine runs, the
//! reply serialised. What the worker spends per request beyond this is AMQP and the runtime.
//! Usage: cargo run --release --example request_profile -- [iterations] [--log]
//! (`valgrind --tool=callgrind` it with N and with 1: the difference over N - 1 is one
//! request.) With `--log`, each request is also logged as the worker logs it (its span, its
//! `built` line, the text format to stderr, at `info`): the difference is what logging
//! costs a request.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::time::Duration;

use kz_endpoint::build_api::Identity;
use kz_endpoint::cache::{CachedStore, DocCache};
use kz_endpoint::documents::MemoryStore;
use kz_endpoint::handler::{handle_read, read_request};
use kz_endpoint::registrar::GivenRegistrations;
use kz_endpoint::resolver::Limits;
use kz_endpoint_testkit::synthetic;
use tracing::Instrument;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let log = std::env::args().any(|a| a == "--log");
    if log {
        kz_endpoint::log_format::init_text(tracing_subscriber::EnvFilter::new("info"), false);
    }
    let account = synthetic::account("be0c4000000000000000000000000001", 10);
    let store = CachedStore {
        store: MemoryStore::new(account.docs.clone()),
        cache: Arc::new(DocCache::new(10_000, Duration::from_secs(3600))),
    };
    let registrar = GivenRegistrations::new([], true);
    let identity = Identity::new("kz-endpoint@profile");
    let limits = Limits::default();
    let message = serde_json::to_vec(&account.request(&account.device)).expect("a request");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let one = || {
        rt.block_on(async {
            // As the worker reads and handles a message (src/worker.rs).
            let body = read_request(&message, Some("application/json")).expect("a request");
            if !log {
                let envelope = kz_endpoint::build_api::Envelope::of_json(&body);
                let answered =
                    handle_read(&body, envelope, &store, &registrar, &identity, &limits).await;
                return std::hint::black_box(answered.reply.bytes().len());
            }
            // The worker's own span, and its line (src/worker.rs).
            let envelope = kz_endpoint::build_api::Envelope::of_json(&body);
            let span = kz_endpoint::worker::request_span(&envelope);
            let started = std::time::Instant::now();
            async {
                let answered =
                    handle_read(&body, envelope, &store, &registrar, &identity, &limits).await;
                let legs = answered.result.as_ref().map_or(0, Vec::len);
                let ms = started.elapsed().as_secs_f64() * 1000.0;
                tracing::info!(legs, ms, "built");
                std::hint::black_box(answered.reply.bytes().len())
            }
            .instrument(span)
            .await
        })
    };
    // The first request fills the cache, as the load tool's warm-up does.
    let bytes = one();
    let started = std::time::Instant::now();
    for _ in 1..n {
        one();
    }
    let per = started.elapsed() / n.max(2).saturating_sub(1) as u32;
    println!("request: {per:?} per request ({bytes} bytes of reply)");
}
