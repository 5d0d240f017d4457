//! CouchDB as the document store, through `couch_rs`.
//!
//! Two of `couch_rs`'s conveniences are wrong for a reader, so this module does not use them:
//! - `Client::db` creates the database when it is missing. A lookup must never create a
//!   database, so databases are addressed with `Database::new`-free raw paths instead.
//! - Its bulk reads drop missing keys and lose the link between a key and its row. A missing
//!   document must be seen as missing, so `_all_docs` and the `attributes/owned` view are
//!   read with `Client::req` (plain HTTP with `couch_rs`'s auth and timeout) and parsed here.
//!
//! Only CouchDB 3 behaviour is relied on: `POST /{db}/_all_docs?include_docs=true` with
//! `keys`, and `POST /{db}/_design/attributes/_view/owned?include_docs=true` with `keys`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use couch_rs::Client;
use couch_rs::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::document::Document;
use crate::documents::{Docs, DocumentStore, Owned, StoreError};

/// How long the worker stops sending credentials that CouchDB refused with 401. CouchDB 3
/// locks an account after 5 failed logins in 5 minutes (`[chttpd_auth_lockout]`), even for
/// the right password afterwards; one attempt per two minutes stays well under that.
pub const LOGIN_RETRY_AFTER: Duration = Duration::from_secs(120);

/// CouchDB's last refusal of our credentials.
#[derive(Debug, Clone)]
struct Refusal {
    /// When we last sent the refused credentials.
    at: Instant,
    /// CouchDB's status and reason, as the error message says them.
    message: String,
}

/// CouchDB's metrics: every read's latency by kind, and the reads that failed by why.
#[derive(Debug, Clone)]
pub struct CouchMetrics {
    /// Seconds per request, by `op`: `all_docs`, `owned_view`, `check`.
    pub seconds: prometheus_client::metrics::family::Family<
        crate::stats::Labels,
        prometheus_client::metrics::histogram::Histogram,
        fn() -> prometheus_client::metrics::histogram::Histogram,
    >,
    /// Failed requests by `kind`: `not_reachable` (no answer, a timeout, or an answer
    /// that is not CouchDB's success), `refused` (401/403).
    pub errors: prometheus_client::metrics::family::Family<
        crate::stats::Labels,
        prometheus_client::metrics::counter::Counter,
    >,
}

fn couch_histogram() -> prometheus_client::metrics::histogram::Histogram {
    prometheus_client::metrics::histogram::Histogram::new(crate::stats::LATENCY_BOUNDS)
}

impl Default for CouchMetrics {
    fn default() -> Self {
        let m = Self {
            seconds: prometheus_client::metrics::family::Family::new_with_constructor(
                couch_histogram,
            ),
            errors: Default::default(),
        };
        for op in ["all_docs", "owned_view", "check"] {
            let _ = m.seconds.get_or_create(&vec![("op", op)]);
        }
        for kind in ["not_reachable", "refused"] {
            let _ = m.errors.get_or_create(&vec![("kind", kind)]);
        }
        m
    }
}

impl CouchMetrics {
    /// Registers them (names without the `kz_endpoint_` prefix).
    pub fn register(&self, r: &mut prometheus_client::registry::Registry) {
        r.register(
            "couchdb_request_duration_seconds",
            "CouchDB request latency, by operation",
            self.seconds.clone(),
        );
        r.register(
            "couchdb_errors",
            "CouchDB requests that failed, by kind",
            self.errors.clone(),
        );
    }

    fn record<T>(&self, op: &'static str, started: Instant, r: &Result<T, StoreError>) {
        self.seconds
            .get_or_create(&vec![("op", op)])
            .observe(started.elapsed().as_secs_f64());
        let kind = match r {
            // A missing database is an answer, not a fault of the server.
            Ok(_) | Err(StoreError::NoDatabase(_)) => return,
            Err(StoreError::Refused(_)) => "refused",
            Err(_) => "not_reachable",
        };
        self.errors.get_or_create(&vec![("kind", kind)]).inc();
    }
}

/// A CouchDB server.
#[derive(Clone)]
pub struct CouchStore {
    client: Client,
    metrics: CouchMetrics,
    /// Whether the URL carried credentials (only then can a 401 count towards a lockout).
    credentials: bool,
    refused: Arc<Mutex<Option<Refusal>>>,
}

impl std::fmt::Debug for CouchStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CouchStore")
    }
}

/// A URL's credentials are taken out of it (couch_rs sends the URL as a `Referer` header).
fn split_credentials(url: &str) -> anyhow::Result<(String, Option<String>, Option<String>)> {
    let mut parsed = url::Url::parse(url).map_err(|e| anyhow::anyhow!("bad CouchDB URL: {e}"))?;
    let user = (!parsed.username().is_empty()).then(|| percent_decode(parsed.username()));
    let pass = parsed.password().map(percent_decode);
    let _ = parsed.set_username("");
    let _ = parsed.set_password(None);
    Ok((parsed.to_string(), user, pass))
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

impl CouchStore {
    /// A store for the server at `url` (`http://user:pass@host:5984`). Every request gives up
    /// after `timeout` (rounded up to whole seconds, couch_rs's unit).
    pub fn new(url: &str, timeout: Duration) -> anyhow::Result<Self> {
        let (base, user, pass) = split_credentials(url)?;
        let secs = timeout.as_millis().div_ceil(1000).max(1) as u64;
        let credentials = user.is_some();
        let client = Client::new_with_timeout(&base, user.as_deref(), pass.as_deref(), Some(secs))
            .map_err(|e| anyhow::anyhow!("CouchDB client: {e}"))?;
        Ok(Self {
            client,
            metrics: CouchMetrics::default(),
            credentials,
            refused: Arc::new(Mutex::new(None)),
        })
    }

    /// Whether the server answers and lets us read (for readiness): a real read of the
    /// `system_config` database, since CouchDB 3 answers `/_up` to anyone. A missing
    /// `system_config` (404) still shows that the server answers and accepts us.
    pub async fn check(&self) -> Result<(), String> {
        let started = Instant::now();
        let r = self.check_untimed().await;
        let as_store = r.as_ref().map(|_| ()).map_err(|why| {
            if self
                .refused
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_some()
            {
                StoreError::Refused(why.clone())
            } else {
                StoreError::NotReachable(why.clone())
            }
        });
        self.metrics.record("check", started, &as_store);
        r
    }

    async fn check_untimed(&self) -> Result<(), String> {
        self.may_send().map_err(|e| e.to_string())?;
        let resp = self
            .client
            .req(Method::GET, "/system_config", None)
            .send()
            .await
            .map_err(|e| format!("CouchDB not reachable: {}", describe(&e)))?;
        let status = resp.status();
        if status.is_success() || status == StatusCode::NOT_FOUND {
            self.accepted();
            return Ok(());
        }
        let reason = couch_reason(resp.json().await.ok());
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(self.refusal(status, "system_config", &reason).to_string());
        }
        Err(format!(
            "CouchDB answered {status} for system_config{reason}"
        ))
    }

    /// `Err` while CouchDB's last 401 is recent: the same credentials are not sent again
    /// until [`LOGIN_RETRY_AFTER`] has passed, and then by one request only.
    fn may_send(&self) -> Result<(), StoreError> {
        let mut refused = self.refused.lock().unwrap_or_else(|e| e.into_inner());
        match refused.as_mut() {
            Some(r) if r.at.elapsed() < LOGIN_RETRY_AFTER => Err(StoreError::Refused(format!(
                "{}; not retried for {} s after a refusal, to stay clear of CouchDB's account lockout",
                r.message,
                LOGIN_RETRY_AFTER.as_secs()
            ))),
            Some(r) => {
                // This request is the retry; the others wait for its outcome.
                r.at = Instant::now();
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// A request went through: whatever was refused before is accepted now.
    fn accepted(&self) {
        let mut refused = self.refused.lock().unwrap_or_else(|e| e.into_inner());
        if refused.take().is_some() {
            tracing::info!("CouchDB accepts our credentials again");
        }
    }

    /// CouchDB refused a read of `what` with `status` (401 or 403).
    fn refusal(&self, status: StatusCode, what: &str, reason: &str) -> StoreError {
        let message = format!("CouchDB answered {status} for {what}{reason}");
        // Only a 401 to credentials is a failed login; a 403 (no access to this database)
        // or a 401 without credentials counts towards no lockout.
        if status == StatusCode::UNAUTHORIZED && self.credentials {
            let mut refused = self.refused.lock().unwrap_or_else(|e| e.into_inner());
            if refused.is_none() {
                tracing::warn!(reason = %message, retry_after_s = LOGIN_RETRY_AFTER.as_secs(), "CouchDB refused our credentials");
            }
            *refused = Some(Refusal {
                at: Instant::now(),
                message: message.clone(),
            });
        }
        StoreError::Refused(message)
    }

    /// Every document of database `db` (for `kz-endpoint check`; design documents left
    /// out), in id order. A database that does not exist is an error here.
    pub async fn all_docs(&self, db: &str) -> Result<Vec<Value>, StoreError> {
        self.may_send()?;
        let mut opts = HashMap::new();
        opts.insert("include_docs".to_owned(), "true".to_owned());
        let url_path = format!("/{}/_all_docs", encode_db(db));
        let (status, body) = self
            .send_json(Method::GET, &url_path, Some(&opts), None)
            .await?;
        let value = self.answer(status, body, "_all_docs", db)?;
        Ok(value
            .get("rows")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|r| r.get("doc").cloned())
            .filter(|d| {
                !d.get("_id")
                    .and_then(Value::as_str)
                    .is_some_and(|id| id.starts_with("_design/"))
            })
            .collect())
    }

    /// The store's metrics.
    pub fn metrics(&self) -> &CouchMetrics {
        &self.metrics
    }

    /// POSTs `body` to `path` (below the encoded database name). Timed and counted in
    /// [`CouchMetrics`].
    async fn post(&self, db: &str, path: &str, body: Value) -> Result<Value, StoreError> {
        let op = if path.starts_with("_design") {
            "owned_view"
        } else {
            "all_docs"
        };
        let started = Instant::now();
        let r = self.post_untimed(db, path, body).await;
        self.metrics.record(op, started, &r);
        r
    }

    async fn post_untimed(&self, db: &str, path: &str, body: Value) -> Result<Value, StoreError> {
        self.may_send()?;
        let mut opts = HashMap::new();
        opts.insert("include_docs".to_owned(), "true".to_owned());
        let url_path = format!("/{}/{path}", encode_db(db));
        let (status, answer) = self
            .send_json(Method::POST, &url_path, Some(&opts), Some(&body))
            .await?;
        if status == StatusCode::NOT_FOUND {
            self.accepted();
            let body: Option<Value> = answer.ok();
            let reason = body
                .as_ref()
                .and_then(|b| b.get("reason"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            // CouchDB 3 says "Database does not exist."; PouchDB-server "no_db_file". The
            // account is not in this server, which the build must say (not "no document").
            if path == "_all_docs" || reason == "Database does not exist." || reason == "no_db_file"
            {
                return Err(StoreError::NoDatabase(db.to_owned()));
            }
            // The database is there and the design document or its view is not: every user
            // would ring nothing, so it is a fault of the store, not an empty answer.
            return Err(StoreError::NotReachable(format!(
                "CouchDB has no {path} in {db}{}: install Kazoo's design documents \
                 (deploy/couchdb-setup.sh)",
                couch_reason(body)
            )));
        }
        self.answer(status, answer, path, path)
    }

    /// Sends one request and reads its answer: the status and the body as JSON (or why it
    /// is not JSON). Only a request that got no HTTP answer at all is an error here.
    async fn send_json(
        &self,
        method: Method,
        url_path: &str,
        opts: Option<&HashMap<String, String>>,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Result<Value, String>), StoreError> {
        let mut req = self.client.req(method, url_path, opts);
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| StoreError::NotReachable(describe(&e)))?;
        let status = resp.status();
        Ok((status, resp.json().await.map_err(|e| describe(&e))))
    }

    /// The body of a successful answer; a refusal (401, 403) or any other failure as the
    /// store's error. `path` names the request in a refusal, `what` in any other failure.
    fn answer(
        &self,
        status: StatusCode,
        body: Result<Value, String>,
        path: &str,
        what: &str,
    ) -> Result<Value, StoreError> {
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            let reason = couch_reason(body.ok());
            return Err(self.refusal(status, path, &reason));
        }
        if !status.is_success() {
            let reason = couch_reason(body.ok());
            return Err(StoreError::NotReachable(format!(
                "CouchDB answered {status} for {what}{reason}"
            )));
        }
        self.accepted();
        body.map_err(StoreError::NotReachable)
    }
}

/// A database name in a URL path: Kazoo's encoded names (`account%2F…`) are already
/// escaped; a raw `/` is escaped too.
fn encode_db(db: &str) -> String {
    db.replace('/', "%2F")
}

/// CouchDB's `{"error": …, "reason": …}` of an error answer, as `: error (reason)`, or
/// nothing. At most 300 bytes of it are kept.
fn couch_reason(body: Option<Value>) -> String {
    let Some(body) = body else {
        return String::new();
    };
    let field = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or_default();
    let text = match (field("error"), field("reason")) {
        ("", "") => return String::new(),
        (e, "") => e.to_owned(),
        ("", r) => r.to_owned(),
        (e, r) => format!("{e}: {r}"),
    };
    let mut end = text.len().min(300);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!(" ({})", &text[..end])
}

fn describe(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

fn rows(v: &Value) -> impl Iterator<Item = &Value> {
    v.get("rows")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

impl DocumentStore for CouchStore {
    async fn open_docs(&self, db: &str, ids: &[String]) -> Result<Docs, StoreError> {
        let mut out: Docs = ids.iter().map(|id| (id.clone(), None)).collect();
        let resp = self.post(db, "_all_docs", json!({"keys": ids})).await?;
        for row in rows(&resp) {
            // Missing keys come back as {"key": …, "error": "not_found"}; deleted documents
            // with "doc": null. Both stay absent.
            let (Some(key), Some(doc)) = (row.get("key").and_then(Value::as_str), row.get("doc"))
            else {
                continue;
            };
            if doc.is_object() {
                out.insert(key.to_owned(), Some(Arc::new(Document::new(doc.clone()))));
            }
        }
        Ok(out)
    }

    async fn owned_devices(&self, db: &str, user_ids: &[String]) -> Result<Owned, StoreError> {
        let mut out: Owned = user_ids.iter().map(|u| (u.clone(), Vec::new())).collect();
        let keys: Vec<Value> = user_ids.iter().map(|u| json!([u, "device"])).collect();
        let resp = self
            .post(db, "_design/attributes/_view/owned", json!({"keys": keys}))
            .await?;
        for row in rows(&resp) {
            let owner = row.pointer("/key/0").and_then(Value::as_str);
            let doc = row.get("doc").filter(|d| d.is_object());
            if let (Some(owner), Some(doc)) = (owner, doc)
                && let Some(list) = out.get_mut(owner)
            {
                list.push(Arc::new(Document::new(doc.clone())));
            }
        }
        // View rows for one key come in document-id order; keep that order per user.
        for list in out.values_mut() {
            list.sort_by(|a, b| {
                a.get("_id")
                    .and_then(Value::as_str)
                    .cmp(&b.get("_id").and_then(Value::as_str))
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_leave_the_url() {
        let (base, user, pass) = split_credentials("http://admin:p%40ss@127.0.0.1:5984/").unwrap();
        assert_eq!(base, "http://127.0.0.1:5984/");
        assert_eq!(user.as_deref(), Some("admin"));
        assert_eq!(pass.as_deref(), Some("p@ss"));
        let (_, user, pass) = split_credentials("http://127.0.0.1:5984").unwrap();
        assert!(user.is_none() && pass.is_none());
    }

    #[test]
    fn database_names_are_escaped_once() {
        assert_eq!(
            encode_db("account%2F4a%2F68%2F63"),
            "account%2F4a%2F68%2F63"
        );
        assert_eq!(encode_db("account/4a/68/63"), "account%2F4a%2F68%2F63");
    }
}
