//! The document cache changes no build: every bundled capture (`fixtures/amqp/`) answers the
//! same reply, byte for byte, straight from its documents, through a cold cache and through a
//! warm one (where every document comes back from the cache's slimmed, compressed form).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use kz_endpoint::build_api::Identity;
use kz_endpoint::cache::{CachedStore, DocCache};
use kz_endpoint::capture;
use kz_endpoint::documents::{DocumentStore, MemoryStore};
use kz_endpoint::fixturedb::FixtureDb;
use kz_endpoint::handler::handle_message;
use kz_endpoint::replay::registrar_of;

async fn reply_bytes<S: DocumentStore + Sync>(c: &capture::Capture, store: &S) -> Vec<u8> {
    let registrar = registrar_of(c).expect("the capture's registrar");
    let bytes = c.message.bytes();
    let ct = c.message.properties.content_type.as_deref();
    let handled = handle_message(&bytes, ct, store, &registrar, &Identity::new("t@h")).await;
    handled.reply.bytes().to_vec()
}

async fn check<S: DocumentStore + Sync>(c: &capture::Capture, store: S, what: &str) -> usize {
    let direct = reply_bytes(c, &store).await;
    let cached = CachedStore {
        store,
        cache: Arc::new(DocCache::new(1000, Duration::from_secs(3600))),
    };
    let cold = reply_bytes(c, &cached).await;
    let warm = reply_bytes(c, &cached).await;
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    assert_eq!(text(&cold), text(&direct), "{what}: cold cache");
    assert_eq!(text(&warm), text(&direct), "{what}: warm cache");
    cached
        .cache
        .stats
        .hits
        .load(std::sync::atomic::Ordering::Relaxed) as usize
}

#[test]
fn every_capture_builds_the_same_through_the_cache() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/amqp");
    let files = capture::files(&root).expect("the bundled captures");
    assert!(files.len() >= 48, "{} captures", files.len());
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut hits = 0;
    for file in &files {
        let c = capture::load(file).expect("a capture");
        let what = file.display().to_string();
        hits += rt.block_on(async {
            match (&c.fixturedb, c.documents.is_empty()) {
                (Some(folder), true) => {
                    let dir = file.parent().expect("a folder");
                    let store = FixtureDb::open(dir.join(folder)).expect("the fixture folder");
                    check(&c, store, &what).await
                }
                _ => check(&c, MemoryStore::new(c.documents.iter().cloned()), &what).await,
            }
        });
    }
    // The warm runs did read from the cache.
    assert!(
        hits > files.len(),
        "{hits} cache hits over {} captures",
        files.len()
    );
}
