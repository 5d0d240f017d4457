//! The document cache in front of CouchDB.
//!
//! Bounded (least recently used entries go first), evicted by Kazoo's document-change events
//! ([`crate::conf_events`]), with a time-to-live as a safety net, and cleared whenever the
//! AMQP connection is lost (events may have been missed meanwhile). Documents are cached
//! raw; the attribute merge runs on every build, so an edited owner or account takes effect
//! as soon as its own document is evicted.
//!
//! A read that started before an eviction does not store its (possibly stale) result.
//!
//! Documents are kept as LZ4-compressed JSON and parsed on each hit: a parsed document costs
//! about ten times its JSON size in memory (every key and value its own allocation), and
//! unpacking one takes microseconds where a CouchDB round trip takes milliseconds.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lru::LruCache;
use serde_json::Value;

use crate::conf_events::Change;
use crate::document::Document;
use crate::documents::{Doc, Docs, DocumentStore, Owned, StoreError};

/// An entry's key: its database's name, shared by every entry of that database (an account
/// database's name is 48 bytes, more than the document id beside it), and the document id.
type Key = (Arc<str>, String);

/// A key as a lookup holds it: a database name and a document id, borrowed. A hit (the
/// common case) then allocates no key and clones no shared name: [`Key`] borrows as this, and
/// both hash and compare as the pair of strings.
trait KeyView {
    fn db(&self) -> &str;
    fn id(&self) -> &str;
}

impl KeyView for Key {
    fn db(&self) -> &str {
        &self.0
    }
    fn id(&self) -> &str {
        &self.1
    }
}

impl KeyView for (&str, &str) {
    fn db(&self) -> &str {
        self.0
    }
    fn id(&self) -> &str {
        self.1
    }
}

/// As the tuple [`Key`] hashes: each string in turn.
impl std::hash::Hash for dyn KeyView + '_ {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.db().hash(h);
        self.id().hash(h);
    }
}

impl PartialEq for dyn KeyView + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.db() == other.db() && self.id() == other.id()
    }
}

impl Eq for dyn KeyView + '_ {}

impl<'a> std::borrow::Borrow<dyn KeyView + 'a> for Key {
    fn borrow(&self) -> &(dyn KeyView + 'a) {
        self
    }
}

/// What an entry's value takes in memory, beyond its key and the map's own bookkeeping.
trait Weight {
    fn weight(&self) -> usize;
}

impl Weight for (Instant, Box<[u8]>) {
    fn weight(&self) -> usize {
        self.1.len()
    }
}

impl Weight for (Instant, Vec<String>) {
    fn weight(&self) -> usize {
        self.1.iter().map(|s| s.len() + ENTRY_STRING).sum::<usize>()
    }
}

/// A string's own bookkeeping (its pointer, length and capacity).
const ENTRY_STRING: usize = 24;

/// An entry's bookkeeping beyond its value's bytes: the map's node and table slot, the key's
/// shared name and id, the value's box and time, and the allocator's rounding. Set from the
/// load tool's memory figure: 100 000 cached synthetic documents grew the process by 349
/// bytes each (405 less the list of their ids), and the cache counts 349 with this.
const ENTRY_OVERHEAD: usize = 170;

/// An entry's cost in memory, as the cache counts it (its database's name is counted once,
/// in [`Names`]).
fn cost<T: Weight>(key: &Key, value: &T) -> usize {
    key.1.len() + value.weight() + ENTRY_OVERHEAD
}

/// The database names the cache's keys share.
#[derive(Default)]
struct Names {
    names: crate::engine::HashSet<Arc<str>>,
    /// What the names take, as the cache counts it.
    bytes: usize,
    /// How many names there were after the last pruning.
    pruned_at: usize,
}

/// A shared name's bookkeeping: the set's slot and the shared allocation's counts.
const NAME_OVERHEAD: usize = 48;

impl Names {
    /// The shared name `db`, when an entry of it may be cached.
    fn get(&self, db: &str) -> Option<Arc<str>> {
        self.names.get(db).cloned()
    }

    /// The shared name `db`, made when it is new. Names no entry uses any more are dropped
    /// whenever the set has doubled since they last were.
    fn intern(&mut self, db: &str) -> Arc<str> {
        if let Some(n) = self.names.get(db) {
            return n.clone();
        }
        if self.names.len() >= 2 * self.pruned_at + 64 {
            self.names.retain(|n| Arc::strong_count(n) > 1);
            self.bytes = self.names.iter().map(|n| n.len() + NAME_OVERHEAD).sum();
            self.pruned_at = self.names.len();
        }
        let n: Arc<str> = Arc::from(db);
        self.bytes += n.len() + NAME_OVERHEAD;
        self.names.insert(n.clone());
        n
    }

    fn clear(&mut self) {
        *self = Self::default();
    }
}

/// An LRU map that counts what its entries take in memory, so the cache is bounded by
/// memory as well as by count.
struct Weighed<T> {
    map: LruCache<Key, T>,
    bytes: usize,
}

impl<T: Weight> Weighed<T> {
    fn new(cap: NonZeroUsize) -> Self {
        Self {
            map: LruCache::new(cap),
            bytes: 0,
        }
    }

    fn len(&self) -> usize {
        self.map.len()
    }

    fn get(&mut self, key: &dyn KeyView) -> Option<&T> {
        self.map.get(key)
    }

    fn peek(&self, key: &dyn KeyView) -> Option<&T> {
        self.map.peek(key)
    }

    fn pop(&mut self, key: &dyn KeyView) -> Option<T> {
        let (k, v) = self.map.pop_entry(key)?;
        self.bytes -= cost(&k, &v);
        Some(v)
    }

    fn pop_lru(&mut self) -> Option<Key> {
        let (k, v) = self.map.pop_lru()?;
        self.bytes -= cost(&k, &v);
        Some(k)
    }

    /// Puts an entry; true when a full map pushed out another one.
    fn push(&mut self, key: Key, value: T) -> bool {
        self.bytes += cost(&key, &value);
        match self.map.push(key.clone(), value) {
            Some((old, v)) => {
                self.bytes -= cost(&old, &v);
                old != key
            }
            None => false,
        }
    }

    fn clear(&mut self) {
        self.map.clear();
        self.bytes = 0;
    }

    /// Drops every entry of database `db`; how many there were.
    fn drop_db(&mut self, db: &str) -> u64 {
        let keys = keys_of(&self.map, db);
        for k in &keys {
            self.pop(k);
        }
        keys.len() as u64
    }
}

struct Inner {
    docs: Weighed<(Instant, Box<[u8]>)>,
    /// Owned-device lists as document ids; their documents are in `docs`.
    owned: Weighed<(Instant, Vec<String>)>,
    /// What `docs` and `owned` may take in memory at most.
    max_bytes: usize,
    /// Databases the store said do not exist, and when. A cluster without a
    /// `system_config` database (every key then has Kazoo's default) is read on every build;
    /// remembering the answer spares a CouchDB round trip per build.
    missing_dbs: LruCache<String, Instant>,
    /// The most recently read documents, parsed: a hit here costs no decoding. Served only
    /// while the same key is fresh in `docs`, and dropped whenever that entry changes.
    hot: LruCache<Key, Doc>,
    /// The database names the keys share.
    names: Names,
    /// Bumped by every eviction: a read that saw another epoch stores nothing.
    epoch: u64,
}

impl Inner {
    /// Caches `doc` (`None`: known not to exist) as read at `now`; a parsed copy of an older
    /// version is dropped with it.
    fn put_doc(
        &mut self,
        stats: &CacheStats,
        db: &str,
        id: &str,
        now: Instant,
        doc: Option<&Value>,
    ) {
        let key = (self.names.intern(db), id.to_owned());
        self.hot.pop(&key);
        let packed = doc.map_or_else(|| Box::from([]), pack);
        if self.docs.push(key, (now, packed)) {
            stats.evicted(&stats.evicted_capacity, 1);
        }
        self.within_memory(stats);
    }

    /// Caches an owned-device list.
    fn put_owned(&mut self, stats: &CacheStats, key: Key, now: Instant, ids: Vec<String>) {
        if self.owned.push(key, (now, ids)) {
            stats.evicted(&stats.evicted_capacity, 1);
        }
        self.within_memory(stats);
    }

    /// The memory the cached documents, lists and shared names take, as the cache counts it.
    fn bytes(&self) -> usize {
        self.docs.bytes + self.owned.bytes + self.names.bytes
    }

    /// Drops the least recently used documents (then lists) until the cache is within its
    /// memory.
    fn within_memory(&mut self, stats: &CacheStats) {
        while self.bytes() > self.max_bytes {
            let dropped = match self.docs.pop_lru() {
                Some(key) => {
                    self.hot.pop(&key);
                    true
                }
                None => self.owned.pop_lru().is_some(),
            };
            if !dropped {
                break;
            }
            stats.evicted(&stats.evicted_capacity, 1);
        }
    }
}

/// How many documents are also kept parsed. Decoding a cached document (LZ4, then JSON into
/// hashed maps) was half of a warm request's handling; a parsed document costs about ten
/// times its compressed size, so only the hot ones are kept that way (about 6 MB for these).
const HOT_DOCUMENTS: usize = 1024;

/// How many missing databases are remembered: requests for accounts that do not exist must
/// not grow the cache without bound.
const MISSING_DBS: usize = 1024;

/// Cache counters.
#[derive(Debug, Default)]
pub struct CacheStats {
    /// Lookups served from the cache.
    pub hits: AtomicU64,
    /// Lookups that went to the store.
    pub misses: AtomicU64,
    /// Entries removed by change events, expiry, capacity or a reset (the sum of the
    /// reasons below).
    pub evictions: AtomicU64,
    /// Entries removed by Kazoo's document-change events.
    pub evicted_changed: AtomicU64,
    /// Entries dropped when read past their time to live.
    pub evicted_expired: AtomicU64,
    /// Entries pushed out by newer ones when the cache was full.
    pub evicted_capacity: AtomicU64,
    /// Entries dropped by a reset (the broker connection, and with it the change events,
    /// was lost).
    pub evicted_reset: AtomicU64,
}

impl CacheStats {
    fn evicted(&self, reason: &AtomicU64, n: u64) {
        reason.fetch_add(n, Ordering::Relaxed);
        self.evictions.fetch_add(n, Ordering::Relaxed);
    }
}

/// The cache's metrics for `/metrics`: hits, misses, evictions by reason, size.
pub struct CacheCollector(pub std::sync::Arc<DocCache>);

impl std::fmt::Debug for CacheCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CacheCollector")
    }
}

impl prometheus_client::collector::Collector for CacheCollector {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::{EncodeMetric, MetricEncoder};
        use prometheus_client::metrics::counter::ConstCounter;
        use prometheus_client::metrics::gauge::ConstGauge;
        let s = &self.0.stats;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        for (name, help, v) in [
            (
                "cache_hits",
                "Document lookups served from the cache",
                load(&s.hits),
            ),
            (
                "cache_misses",
                "Document lookups sent to CouchDB",
                load(&s.misses),
            ),
        ] {
            let c = ConstCounter::new(v);
            c.encode(encoder.encode_descriptor(name, help, None, c.metric_type())?)?;
        }
        let mut family = encoder.encode_descriptor(
            "cache_evictions",
            "Cache entries dropped, by reason",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for (reason, v) in [
            ("change_event", load(&s.evicted_changed)),
            ("expired", load(&s.evicted_expired)),
            ("capacity", load(&s.evicted_capacity)),
            ("reset", load(&s.evicted_reset)),
        ] {
            let labels = [("reason", reason)];
            let m: MetricEncoder<'_> = family.encode_family(&labels)?;
            ConstCounter::new(v).encode(m)?;
        }
        for (name, help, v) in [
            ("cache_documents", "Documents in the cache", self.0.len()),
            (
                "cache_bytes",
                "Memory the cached documents take, as the cache counts it (bounded by --cache-memory-mb)",
                self.0.bytes(),
            ),
        ] {
            let g = ConstGauge::new(v as i64);
            g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)?;
        }
        Ok(())
    }
}

/// The cache itself.
pub struct DocCache {
    inner: Mutex<Inner>,
    ttl: Duration,
    /// Counters.
    pub stats: CacheStats,
}

impl DocCache {
    /// A cache of at most `capacity` documents (and as many owned-device lists), each kept
    /// at most `ttl`, with no bound on memory but that ([`DocCache::with_memory_limit`]).
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        let cap = NonZeroUsize::new(capacity.max(1)).expect("non-zero");
        Self {
            inner: Mutex::new(Inner {
                docs: Weighed::new(cap),
                owned: Weighed::new(cap),
                max_bytes: usize::MAX,
                missing_dbs: LruCache::new(NonZeroUsize::new(MISSING_DBS).expect("non-zero")),
                hot: LruCache::new(NonZeroUsize::new(HOT_DOCUMENTS).expect("non-zero")),
                names: Names::default(),
                epoch: 0,
            }),
            ttl,
            stats: CacheStats::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The same cache, bounded to `bytes` of memory as well (its entries as it counts them:
    /// the compressed documents, their keys and their bookkeeping): the least recently used
    /// are dropped first.
    pub fn with_memory_limit(self, bytes: usize) -> Self {
        self.lock().max_bytes = bytes;
        self
    }

    /// The memory the cached documents and lists take, as the cache counts it.
    pub fn bytes(&self) -> usize {
        self.lock().bytes()
    }

    /// How many documents are cached.
    pub fn len(&self) -> usize {
        self.lock().docs.len()
    }

    /// Nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets what a change makes stale.
    pub fn apply(&self, change: &Change) {
        let mut inner = self.lock();
        inner.epoch += 1;
        let mut evicted = 0;
        match change {
            Change::Doc { db, id, doc_type } => {
                // A document changed in it: the database exists.
                evicted += u64::from(inner.missing_dbs.pop(db).is_some());
                if let Some(name) = inner.names.get(db) {
                    let key = (name, id.clone());
                    inner.hot.pop(&key);
                    evicted += u64::from(inner.docs.pop(&key).is_some());
                }
                // A device edit can change who owns what; a user edit its own list.
                if doc_type.as_deref() != Some("account") {
                    evicted += inner.owned.drop_db(db);
                }
            }
            Change::Database { db } => {
                evicted += u64::from(inner.missing_dbs.pop(db).is_some());
                drop_db(&mut inner.hot, db);
                evicted += inner.docs.drop_db(db);
                evicted += inner.owned.drop_db(db);
            }
        }
        self.stats.evicted(&self.stats.evicted_changed, evicted);
    }

    /// Forgets everything (the connection that carries change events was lost).
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.epoch += 1;
        let n = inner.docs.len() + inner.owned.len() + inner.missing_dbs.len();
        inner.docs.clear();
        inner.owned.clear();
        inner.missing_dbs.clear();
        inner.hot.clear();
        inner.names.clear();
        self.stats.evicted(&self.stats.evicted_reset, n as u64);
    }

    /// Reads the entry under `key` with `read` when it has not expired (an expired one is
    /// dropped).
    fn fresh<T, R>(
        &self,
        cache: &mut Weighed<(Instant, T)>,
        key: &dyn KeyView,
        now: Instant,
        read: impl FnOnce(&T) -> Option<R>,
    ) -> Option<R>
    where
        (Instant, T): Weight,
    {
        match cache.get(key) {
            Some((at, v)) if now.duration_since(*at) < self.ttl => read(v),
            Some(_) => {
                cache.pop(key);
                self.stats.evicted(&self.stats.evicted_expired, 1);
                None
            }
            None => None,
        }
    }

    /// Splits `keys` into hits (read with `hit`) and misses, counts both, and returns the
    /// epoch the lookup saw.
    fn lookup<T>(
        &self,
        keys: &[String],
        mut hit: impl FnMut(&mut Inner, &str) -> Option<T>,
    ) -> (crate::engine::HashMap<String, T>, Vec<String>, u64) {
        let mut found =
            crate::engine::HashMap::with_capacity_and_hasher(keys.len(), Default::default());
        let mut missing = Vec::new();
        let mut inner = self.lock();
        for k in keys {
            match hit(&mut inner, k) {
                Some(v) => {
                    found.insert(k.clone(), v);
                }
                None => missing.push(k.clone()),
            }
        }
        let hits = (keys.len() - missing.len()) as u64;
        self.stats.hits.fetch_add(hits, Ordering::Relaxed);
        self.stats
            .misses
            .fetch_add(missing.len() as u64, Ordering::Relaxed);
        (found, missing, inner.epoch)
    }

    /// The store said recently that `db` does not exist.
    fn db_missing(&self, db: &str, now: Instant) -> bool {
        let mut inner = self.lock();
        match inner.missing_dbs.get(db) {
            Some(at) if now.duration_since(*at) < self.ttl => true,
            Some(_) => {
                inner.missing_dbs.pop(db);
                false
            }
            None => false,
        }
    }

    /// A cached document, parsed, when it is there and fresh: `Some(None)` when it is known
    /// not to exist.
    fn doc(&self, inner: &mut Inner, db: &str, id: &str, now: Instant) -> Option<Option<Doc>> {
        let key: &dyn KeyView = &(db, id);
        let Inner {
            docs, hot, names, ..
        } = inner;
        let absent = self.fresh(docs, key, now, |b| Some(b.is_empty()))?;
        if absent {
            return Some(None);
        }
        if let Some(d) = hot.get(key) {
            return Some(Some(d.clone()));
        }
        let d = docs.peek(key).and_then(|(_, b)| unpack(b))?;
        // An entry of `docs` holds its database's shared name.
        hot.put((names.get(db)?, id.to_owned()), d.clone());
        Some(Some(d))
    }
}

/// A cached document, parsed.
fn unpack(bytes: &[u8]) -> Option<Doc> {
    let json = lz4_flex::block::decompress_size_prepended_with_dict(bytes, DICTIONARY).ok()?;
    // Read as text: the cache wrote it from a parsed document, so it is UTF-8, and
    // `serde_json` then does not check each string again.
    let text = std::str::from_utf8(&json).ok()?;
    serde_json::from_str::<Value>(text)
        .ok()
        .map(|v| std::sync::Arc::new(Document::new(v)))
}

/// A document in its cached form: its JSON, LZ4-compressed; nothing for a document known not
/// to exist.
///
/// Absent documents are cached too: every build reads the account's `configs_*` documents
/// and the `system_config` categories, which most clusters never create, and re-reading them
/// made each warm build a CouchDB round trip. A creation is a change event like an edit
/// (the bindings cover every action on the types the builder reads), so it evicts the entry.
///
/// Devices, users, accounts and groups are cached without the fields the builder never reads
/// ([`UNREAD`], and the SIP password, [`UNREAD_SIP`]): the cache is then smaller, a hit parses
/// less, and the cache holds no SIP password. `tests/cache.rs` checks that every bundled
/// capture builds the same replies through the cache as without it.
///
/// Each document is compressed against [`DICTIONARY`]: one document is too short for LZ4 to
/// find much to repeat in it, but Crossbar stores every device, user and account with the
/// same field names and defaults, which the dictionary holds.
fn pack(doc: &Value) -> Box<[u8]> {
    let json = serde_json::to_vec(&Slim(doc)).expect("a JSON value serialises");
    lz4_flex::block::compress_prepend_size_with_dict(&json, DICTIONARY).into_boxed_slice()
}

/// The field names and default values of Kazoo's device, user and account documents (from
/// their JSON schemas), in the shape Crossbar stores them: what cached documents are
/// compressed against (the cache lives in one process, so writer and reader always agree).
const DICTIONARY: &[u8] = include_bytes!("cache_dictionary.json");

/// Top-level fields of the documents the builder reads that it never looks at: bookkeeping,
/// provisioning, voicemail, notifications, billing and Crossbar's own records (and the
/// account's API key, a credential the cache has no business holding). Checked against
/// Kazoo's own documents by `tests/kazoo_v4.rs`, which builds through the cache.
const UNREAD: [&str; 43] = [
    "_rev",
    "_attachments",
    "pvt_created",
    "pvt_modified",
    "pvt_vsn",
    "pvt_account_db",
    "pvt_auth_account_id",
    "pvt_auth_user_id",
    "pvt_document_hash",
    "pvt_is_authenticated",
    "pvt_request_id",
    "pvt_api_key",
    "pvt_alphanum_name",
    "pvt_notification_preference",
    "pvt_reseller",
    "pvt_reseller_id",
    "pvt_superduper_admin",
    "pvt_whitelabel_domain",
    "pvt_wnm_allow_additions",
    "created",
    "provision",
    "mac_address",
    "contact_list",
    "call_restriction",
    "dial_plan",
    "blacklists",
    "preflow",
    "topup",
    "notifications",
    "notification_preference",
    "descendants_count",
    "is_reseller",
    "suppress_unregister_notifications",
    "register_overwrite_notify",
    "mwi_unsolicited_updates",
    "vm_to_email_enabled",
    "priv_level",
    "timezone",
    "email",
    "pronounced_name",
    "user_type",
    "require_password_update",
    "verified",
];

/// Fields of `sip` the builder never looks at.
const UNREAD_SIP: [&str; 3] = ["password", "expire_seconds", "registration_expiration"];

/// The document types whose unread fields are left out of the cache.
const SLIMMED_TYPES: [&str; 4] = ["device", "user", "account", "group"];

/// An object without some of its fields.
struct Without<'a>(&'a serde_json::Map<String, Value>, &'static [&'static str]);

impl serde::Serialize for Without<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        for (k, v) in self.0 {
            if !self.1.contains(&k.as_str()) {
                m.serialize_entry(k, v)?;
            }
        }
        m.end()
    }
}

/// A document as it is cached (see [`pack`]).
struct Slim<'a>(&'a Value);

impl serde::Serialize for Slim<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let slimmed = match self.0 {
            Value::Object(o) => o
                .get("pvt_type")
                .and_then(Value::as_str)
                .is_some_and(|t| SLIMMED_TYPES.contains(&t))
                .then_some(o),
            _ => None,
        };
        let Some(o) = slimmed else {
            return self.0.serialize(s);
        };
        let mut m = s.serialize_map(None)?;
        for (k, v) in o {
            if UNREAD.contains(&k.as_str()) {
                continue;
            }
            match (k.as_str(), v) {
                ("sip", Value::Object(sip)) => m.serialize_entry(k, &Without(sip, &UNREAD_SIP))?,
                _ => m.serialize_entry(k, v)?,
            }
        }
        m.end()
    }
}

/// The keys of database `db`'s entries.
fn keys_of<V>(cache: &LruCache<Key, V>, db: &str) -> Vec<Key> {
    cache
        .iter()
        .filter(|((d, _), _)| &**d == db)
        .map(|(k, _)| k.clone())
        .collect()
}

fn drop_db<V>(cache: &mut LruCache<Key, V>, db: &str) -> u64 {
    let keys = keys_of(cache, db);
    for k in &keys {
        cache.pop(k);
    }
    keys.len() as u64
}

/// A store with the cache in front of it.
pub struct CachedStore<S> {
    /// The store behind the cache.
    pub store: S,
    /// The cache.
    pub cache: std::sync::Arc<DocCache>,
}

impl<S: DocumentStore + Sync> DocumentStore for CachedStore<S> {
    async fn open_docs(&self, db: &str, ids: &[String]) -> Result<Docs, StoreError> {
        let now = Instant::now();
        let cache = &self.cache;
        if cache.db_missing(db, now) {
            cache
                .stats
                .hits
                .fetch_add(ids.len() as u64, Ordering::Relaxed);
            return Err(StoreError::NoDatabase(db.to_owned()));
        }
        let (found, missing, epoch) = cache.lookup(ids, |inner, id| cache.doc(inner, db, id, now));
        let mut out: Docs = found;
        if missing.is_empty() {
            return Ok(out);
        }
        // Boxed: a miss goes to the store behind (an HTTP request, whose future is
        // kilobytes), and a hit, the common case, should not carry that future's space in
        // every request's task, to be copied each time one is spawned.
        let fetched = match Box::pin(self.store.open_docs(db, &missing)).await {
            Err(StoreError::NoDatabase(d)) => {
                let mut inner = cache.lock();
                if inner.epoch == epoch {
                    inner.missing_dbs.put(db.to_owned(), now);
                }
                return Err(StoreError::NoDatabase(d));
            }
            other => other?,
        };
        let mut inner = cache.lock();
        let store = inner.epoch == epoch;
        for (id, doc) in fetched {
            if store {
                inner.put_doc(
                    &cache.stats,
                    db,
                    &id,
                    now,
                    doc.as_deref().map(Document::json),
                );
            }
            out.insert(id, doc);
        }
        Ok(out)
    }

    async fn owned_devices(&self, db: &str, user_ids: &[String]) -> Result<Owned, StoreError> {
        let now = Instant::now();
        let cache = &self.cache;
        // A list is a hit only when every one of its documents still is.
        let (mut out, missing, epoch) = cache.lookup(user_ids, |inner, user| {
            let key: &dyn KeyView = &(db, user);
            let ids = cache.fresh(&mut inner.owned, key, now, |ids| Some(ids.clone()))?;
            ids.iter()
                .map(|id| cache.doc(inner, db, id, now).flatten())
                .collect::<Option<Vec<Doc>>>()
        });
        if missing.is_empty() {
            return Ok(out);
        }
        // Boxed, as in `open_docs`.
        let fetched = Box::pin(self.store.owned_devices(db, &missing)).await?;
        let mut inner = cache.lock();
        let store = inner.epoch == epoch;
        for (u, list) in fetched {
            if store {
                let mut ids = Vec::with_capacity(list.len());
                for d in &list {
                    if let Some(id) = d.get("_id").and_then(Value::as_str) {
                        inner.put_doc(&cache.stats, db, id, now, Some(d));
                        ids.push(id.to_owned());
                    }
                }
                let key = (inner.names.intern(db), u.clone());
                inner.put_owned(&cache.stats, key, now, ids);
            }
            out.insert(u, list);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::documents::MemoryStore;
    use serde_json::json;

    fn block<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn hits_after_a_miss_and_evicts_on_change() {
        let store = CachedStore {
            store: MemoryStore::new([json!({"_id": "d1", "pvt_type": "device", "owner_id": "u1"})]),
            cache: std::sync::Arc::new(DocCache::new(10, Duration::from_secs(60))),
        };
        let ids = vec!["d1".to_owned(), "nope".to_owned()];
        let first = block(store.open_docs("db", &ids)).unwrap();
        assert!(first["d1"].is_some() && first["nope"].is_none());
        let second = block(store.open_docs("db", &ids)).unwrap();
        // Both were hits the second time: a missing document is cached as missing.
        assert!(second["d1"].is_some() && second["nope"].is_none());
        assert_eq!(store.cache.stats.hits.load(Ordering::Relaxed), 2);
        assert_eq!(store.cache.stats.misses.load(Ordering::Relaxed), 2);
        // Its creation is a change event: the next read asks the store again.
        store.cache.apply(&Change::Doc {
            db: "db".into(),
            id: "nope".into(),
            doc_type: Some("device".into()),
        });
        block(store.open_docs("db", &["nope".to_owned()])).unwrap();
        assert_eq!(store.cache.stats.misses.load(Ordering::Relaxed), 3);
        let owned = block(store.owned_devices("db", &["u1".to_owned()])).unwrap();
        assert_eq!(owned["u1"].len(), 1);
        store.cache.apply(&Change::Doc {
            db: "db".into(),
            id: "d1".into(),
            doc_type: Some("device".into()),
        });
        // "nope" evicted once, then d1 and the owned list; "nope" is cached again as missing.
        assert_eq!(store.cache.len(), 1);
        assert_eq!(store.cache.stats.evictions.load(Ordering::Relaxed), 3);
    }

    /// A store without any database, counting what it is asked.
    struct NoDatabases(std::sync::atomic::AtomicUsize);

    impl DocumentStore for NoDatabases {
        async fn open_docs(&self, db: &str, _ids: &[String]) -> Result<Docs, StoreError> {
            self.0.fetch_add(1, Ordering::Relaxed);
            Err(StoreError::NoDatabase(db.to_owned()))
        }

        async fn owned_devices(&self, db: &str, _ids: &[String]) -> Result<Owned, StoreError> {
            Err(StoreError::NoDatabase(db.to_owned()))
        }
    }

    #[test]
    fn a_missing_database_is_remembered_until_it_is_created() {
        let store = CachedStore {
            store: NoDatabases(Default::default()),
            cache: std::sync::Arc::new(DocCache::new(10, Duration::from_secs(60))),
        };
        let ids = vec!["kazoo_endpoint".to_owned()];
        for _ in 0..3 {
            match block(store.open_docs("system_config", &ids)) {
                Err(StoreError::NoDatabase(db)) => assert_eq!(db, "system_config"),
                other => panic!("expected NoDatabase, got {other:?}"),
            }
        }
        // Asked once; the other two answers came from the cache, and were the same.
        assert_eq!(store.store.0.load(Ordering::Relaxed), 1);
        store.cache.apply(&Change::Database {
            db: "system_config".into(),
        });
        let _ = block(store.open_docs("system_config", &ids));
        assert_eq!(store.store.0.load(Ordering::Relaxed), 2);
        // A document event in it says it exists, too.
        store.cache.apply(&Change::Doc {
            db: "system_config".into(),
            id: "kazoo_endpoint".into(),
            doc_type: None,
        });
        let _ = block(store.open_docs("system_config", &ids));
        assert_eq!(store.store.0.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn the_cache_is_bounded_by_memory_and_counts_it_exactly() {
        let docs: Vec<Value> = (0..50)
            .map(|i| json!({"_id": format!("d{i:02}"), "pvt_type": "device", "name": format!("device {i}")}))
            .collect();
        let unbounded = DocCache::new(1000, Duration::from_secs(60));
        let store = CachedStore {
            store: MemoryStore::new(docs.clone()),
            cache: std::sync::Arc::new(unbounded),
        };
        let ids: Vec<String> = (0..50).map(|i| format!("d{i:02}")).collect();
        block(store.open_docs("db", &ids)).unwrap();
        let all = store.cache.bytes();
        assert_eq!(store.cache.len(), 50);
        // Room for half of them: the oldest are dropped, and the count says so.
        let bounded = CachedStore {
            store: MemoryStore::new(docs),
            cache: std::sync::Arc::new(
                DocCache::new(1000, Duration::from_secs(60)).with_memory_limit(all / 2),
            ),
        };
        for id in &ids {
            block(bounded.open_docs("db", std::slice::from_ref(id))).unwrap();
        }
        let kept = bounded.cache.len();
        // 24, not 25: half the memory of all 50 also pays for the shared database name.
        assert_eq!(kept, 24, "{kept} of 50 kept");
        assert!(bounded.cache.bytes() <= all / 2);
        assert_eq!(
            bounded.cache.stats.evicted_capacity.load(Ordering::Relaxed),
            50 - kept as u64
        );
        // The newest are the ones kept.
        let (_, missing, _) = bounded.cache.lookup(&ids, |inner, id| {
            bounded.cache.doc(inner, "db", id, Instant::now())
        });
        assert_eq!(missing, ids[..50 - kept].to_vec());
        // Dropping entries gives their memory back, to the byte, but for the database's
        // shared name (dropped once no entry uses it and the names have doubled).
        bounded.cache.apply(&Change::Database { db: "db".into() });
        assert_eq!(bounded.cache.bytes(), "db".len() + NAME_OVERHEAD);
        block(store.open_docs("db", &ids[..1])).unwrap();
        store.cache.clear();
        assert_eq!(store.cache.bytes(), 0);
    }

    /// A store of one document whose content the test changes.
    struct Editable(std::sync::Mutex<Value>);

    impl DocumentStore for Editable {
        async fn open_docs(&self, _db: &str, ids: &[String]) -> Result<Docs, StoreError> {
            let doc = std::sync::Arc::new(Document::new(self.0.lock().unwrap().clone()));
            Ok(ids
                .iter()
                .map(|id| (id.clone(), Some(doc.clone())))
                .collect())
        }

        async fn owned_devices(&self, _db: &str, _ids: &[String]) -> Result<Owned, StoreError> {
            Ok(Owned::default())
        }
    }

    #[test]
    fn a_parsed_hot_document_is_never_served_after_its_change() {
        let store = CachedStore {
            store: Editable(std::sync::Mutex::new(
                json!({"_id": "d1", "pvt_type": "device", "name": "v1"}),
            )),
            cache: std::sync::Arc::new(DocCache::new(10, Duration::from_secs(60))),
        };
        let ids = vec!["d1".to_owned()];
        let name = |docs: &Docs| docs["d1"].as_ref().unwrap()["name"].clone();
        // A miss, a hit that parses and keeps it, a hit from the parsed copy.
        for _ in 0..3 {
            assert_eq!(name(&block(store.open_docs("db", &ids)).unwrap()), "v1");
        }
        *store.store.0.lock().unwrap() = json!({"_id": "d1", "pvt_type": "device", "name": "v2"});
        store.cache.apply(&Change::Doc {
            db: "db".into(),
            id: "d1".into(),
            doc_type: Some("device".into()),
        });
        for _ in 0..3 {
            assert_eq!(name(&block(store.open_docs("db", &ids)).unwrap()), "v2");
        }
        // The same after the connection that carries change events is lost.
        *store.store.0.lock().unwrap() = json!({"_id": "d1", "pvt_type": "device", "name": "v3"});
        store.cache.clear();
        assert_eq!(name(&block(store.open_docs("db", &ids)).unwrap()), "v3");
        assert_eq!(name(&block(store.open_docs("db", &ids)).unwrap()), "v3");
    }

    #[test]
    fn expired_entries_are_not_served() {
        let store = CachedStore {
            store: MemoryStore::new([json!({"_id": "d1"})]),
            cache: std::sync::Arc::new(DocCache::new(10, Duration::ZERO)),
        };
        let ids = vec!["d1".to_owned()];
        block(store.open_docs("db", &ids)).unwrap();
        block(store.open_docs("db", &ids)).unwrap();
        assert_eq!(store.cache.stats.hits.load(Ordering::Relaxed), 0);
    }
}
