//! Captured AMQP requests: the format (`docs/fixtures.md`), recording from the live worker,
//! and replay through the same request handler the worker uses.
//!
//! A capture holds the message as received (properties and body), the documents the build
//! read (or a fixture database folder), the registrar's answers, and the reply that was
//! published. Replaying serves the documents and answers in place of CouchDB and RabbitMQ and
//! compares the new reply with the captured one, so "why did this phone ring?" can be asked
//! offline and an upgrade can be proven to change nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use lapin::message::Delivery;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::build_api::Identity;
use crate::documents::MemoryStore;
use crate::engine::explain;
use crate::fixturedb::FixtureDb;
use crate::handler::{Handled, handle_message};
use crate::registrar::{GivenRegistrations, RegKey, Registration};

/// The format version written in every capture.
pub const VERSION: u32 = 1;

/// Reply fields that legitimately differ between the capture and the replay.
pub const IGNORED_REPLY_FIELDS: [&str; 5] = [
    "Node",
    "App-Name",
    "App-Version",
    "Error-Message",
    "Explain",
];

/// Keys whose values are credentials: never written to a capture.
const SECRET_KEYS: [&str; 9] = [
    "password",
    "auth_password",
    "pvt_api_key",
    "api_key",
    "pin",
    "pvt_md5_auth",
    "pvt_sha1_auth",
    "credentials",
    "secret",
];

/// One captured request.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Capture {
    /// The format version ([`VERSION`]).
    pub kz_capture: u32,
    /// What the capture shows, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The AMQP message as received.
    pub message: Message,
    /// A fixture database folder serving the documents, relative to the capture file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixturedb: Option<String>,
    /// The documents the build read (used instead of `fixturedb` when present).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub documents: Vec<Value>,
    /// The registrar's answers: `username@realm` → `registered` / `unregistered` / `unknown`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub registrations: BTreeMap<String, String>,
    /// The state of every device not listed in `registrations`.
    #[serde(default = "unregistered")]
    pub other_registrations: String,
    /// The reply that was published; `null` when the message had no reply address.
    pub reply: Option<Value>,
}

fn unregistered() -> String {
    "unregistered".into()
}

/// The message part of a capture.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Message {
    /// The exchange it was published to.
    pub exchange: String,
    /// Its routing key.
    pub routing_key: String,
    /// The AMQP properties that matter to the worker.
    #[serde(default)]
    pub properties: Properties,
    /// The body, when it was JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// The body as text, when it was not JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_text: Option<String>,
    /// The size of a body too large to keep (it was refused unread).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_size: Option<usize>,
}

/// AMQP properties of a captured message.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Properties {
    /// `content_type`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// `reply_to`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    /// `correlation_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
}

impl Message {
    /// The body bytes as the worker received them (a refused oversized body is rebuilt as
    /// that many spaces: it is refused before it is read).
    pub fn bytes(&self) -> Vec<u8> {
        if let Some(size) = self.body_size {
            return vec![b' '; size];
        }
        match (&self.body, &self.body_text) {
            (Some(b), _) => serde_json::to_vec(b).expect("JSON serialises"),
            (None, Some(t)) => t.as_bytes().to_vec(),
            (None, None) => Vec::new(),
        }
    }

    /// Whether the message has a reply address.
    pub fn has_reply_address(&self) -> bool {
        self.properties.reply_to.is_some()
            || self
                .body
                .as_ref()
                .and_then(|b| b.get("Server-ID"))
                .is_some_and(Value::is_string)
    }
}

/// Replaces every credential in `v` (at any depth) with `"[redacted]"`.
pub fn redact(v: &mut Value) {
    match v {
        Value::Object(o) => {
            for (k, val) in o.iter_mut() {
                if SECRET_KEYS.contains(&k.to_ascii_lowercase().as_str()) && !val.is_object() {
                    *val = json!("[redacted]");
                } else {
                    redact(val);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(redact),
        _ => {}
    }
}

/// Why a capture could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The file could not be read or written.
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    /// The file is not a capture.
    #[error("{0}: not a capture: {1}")]
    Format(PathBuf, String),
}

/// Reads a capture file.
pub fn load(path: &Path) -> Result<Capture, CaptureError> {
    let text = std::fs::read_to_string(path).map_err(|e| CaptureError::Io(path.into(), e))?;
    let c: Capture = serde_json::from_str(&text)
        .map_err(|e| CaptureError::Format(path.into(), e.to_string()))?;
    if c.kz_capture != VERSION {
        return Err(CaptureError::Format(
            path.into(),
            format!(
                "format version {} (this build reads {VERSION})",
                c.kz_capture
            ),
        ));
    }
    if Registration::parse(&c.other_registrations).is_none() {
        return Err(CaptureError::Format(
            path.into(),
            format!("other_registrations {:?}", c.other_registrations),
        ));
    }
    Ok(c)
}

/// Writes a capture file (pretty-printed, ending in a newline).
pub fn save(path: &Path, c: &Capture) -> Result<(), CaptureError> {
    let mut text = serde_json::to_string_pretty(c).expect("a capture serialises");
    text.push('\n');
    std::fs::write(path, text).map_err(|e| CaptureError::Io(path.into(), e))
}

/// The registrar of a capture: its answers, every other device in the default state.
pub fn registrar_of(c: &Capture) -> Result<GivenRegistrations, String> {
    let mut states = Vec::new();
    for (k, v) in &c.registrations {
        let key =
            RegKey::parse(k).ok_or_else(|| format!("registration key {k:?} is not user@realm"))?;
        let state = Registration::parse(v).ok_or_else(|| format!("registration state {v:?}"))?;
        states.push((key, state));
    }
    let others_unknown = Registration::parse(&c.other_registrations) == Some(Registration::Unknown);
    Ok(GivenRegistrations::with_states(states, others_unknown))
}

/// Runs a capture's message through the request handler, with its documents and registrar
/// answers. `dir` is the folder of the capture file (for a relative `fixturedb`).
pub async fn run(c: &Capture, dir: &Path, identity: &Identity) -> Result<Handled, String> {
    let registrar = registrar_of(c)?;
    let bytes = c.message.bytes();
    let ct = c.message.properties.content_type.as_deref();
    Ok(match (&c.fixturedb, c.documents.is_empty()) {
        (Some(folder), true) => {
            let store = FixtureDb::open(dir.join(folder)).map_err(|e| {
                format!(
                    "{e} (the capture's \"fixturedb\": {folder:?}, relative to the capture file)"
                )
            })?;
            handle_message(&bytes, ct, &store, &registrar, identity).await
        }
        _ => {
            let store = MemoryStore::new(c.documents.iter().cloned());
            handle_message(&bytes, ct, &store, &registrar, identity).await
        }
    })
}

/// The reply a replay would publish: `None` when the message has no reply address.
pub fn published_reply(c: &Capture, handled: &Handled) -> Option<Value> {
    c.message.has_reply_address().then(|| handled.reply.clone())
}

/// Compares a replayed reply with the captured one. Returns the differences, one line each
/// (empty when they match), ignoring [`IGNORED_REPLY_FIELDS`].
pub fn compare(expected: Option<&Value>, actual: Option<&Value>) -> Vec<String> {
    let mut out = Vec::new();
    match (expected, actual) {
        (None, None) => {}
        (Some(_), None) => {
            out.push("expected a reply, but the message has no reply address".into())
        }
        (None, Some(_)) => out.push("expected no reply, but one would be published".into()),
        (Some(e), Some(a)) => {
            let strip = |v: &Value| -> Value {
                let mut v = v.clone();
                if let Some(o) = v.as_object_mut() {
                    for k in IGNORED_REPLY_FIELDS {
                        o.remove(k);
                    }
                }
                v
            };
            let (stripped_e, stripped_a) = (strip(e), strip(a));
            diff_reply(&stripped_e, &stripped_a, &mut out);
            // The error message is not compared (its wording may change), but when the replies
            // differ it says why the new one failed.
            let message = |v: &Value| v.get("Error-Message").cloned();
            if !out.is_empty() && message(e) != message(a) {
                out.push(format!(
                    "Error-Message (not compared): expected {}, got {}",
                    show(message(e).as_ref()),
                    show(message(a).as_ref())
                ));
            }
        }
    }
    out
}

fn show(v: Option<&Value>) -> String {
    match v {
        None => "(absent)".into(),
        Some(v) => v.to_string(),
    }
}

fn diff_reply(e: &Value, a: &Value, out: &mut Vec<String>) {
    let (Some(eo), Some(ao)) = (e.as_object(), a.as_object()) else {
        if e != a {
            out.push(format!("reply: expected {e}, got {a}"));
        }
        return;
    };
    for key in eo.keys().chain(ao.keys().filter(|k| !eo.contains_key(*k))) {
        let (ev, av) = (eo.get(key), ao.get(key));
        if ev == av {
            continue;
        }
        if key == "Endpoints" {
            match (ev, av) {
                (Some(Value::Array(el)), Some(Value::Array(al))) => diff_legs(el, al, out),
                _ => out.push(format!(
                    "Endpoints: expected {}, got {}",
                    show_legs(ev),
                    show_legs(av)
                )),
            }
            continue;
        }
        out.push(format!("{key}: expected {}, got {}", show(ev), show(av)));
    }
}

/// A leg list in words (`2 leg(s): SIP leg to … + forward leg to …`), not as JSON.
fn show_legs(v: Option<&Value>) -> String {
    match v {
        Some(Value::Array(legs)) if legs.is_empty() => "no leg".into(),
        Some(Value::Array(legs)) => format!(
            "{} leg(s): {}",
            legs.len(),
            legs.iter().map(leg_name).collect::<Vec<_>>().join(" + ")
        ),
        other => show(other),
    }
}

fn leg_name(v: &Value) -> String {
    v.as_object()
        .map(explain::leg)
        .unwrap_or_else(|| v.to_string())
}

fn diff_legs(expected: &[Value], actual: &[Value], out: &mut Vec<String>) {
    if expected.len() != actual.len() {
        out.push(format!(
            "expected {} leg(s), got {}",
            expected.len(),
            actual.len()
        ));
    }
    for i in 0..expected.len().max(actual.len()) {
        match (expected.get(i), actual.get(i)) {
            (Some(e), Some(a)) if e == a => {}
            (Some(e), Some(a)) => {
                let (en, an) = (leg_name(e), leg_name(a));
                if en == an {
                    out.push(format!("leg {}: {en}", i + 1));
                } else {
                    out.push(format!("leg {}: expected {en}, got {an}", i + 1));
                }
                diff_fields(&format!("  leg {}", i + 1), e, a, out);
            }
            (Some(e), None) => out.push(format!("leg {}: missing: {}", i + 1, leg_name(e))),
            (None, Some(a)) => out.push(format!("leg {}: unexpected: {}", i + 1, leg_name(a))),
            (None, None) => {}
        }
    }
}

fn diff_fields(at: &str, e: &Value, a: &Value, out: &mut Vec<String>) {
    match (e, a) {
        (Value::Object(eo), Value::Object(ao)) => {
            for key in eo.keys().chain(ao.keys().filter(|k| !eo.contains_key(*k))) {
                let (ev, av) = (eo.get(key), ao.get(key));
                if ev == av {
                    continue;
                }
                match (ev, av) {
                    (Some(ev @ Value::Object(_)), Some(av @ Value::Object(_))) => {
                        diff_fields(&format!("{at} {key}"), ev, av, out)
                    }
                    _ => out.push(format!(
                        "{at} {key}: expected {}, got {}",
                        show(ev),
                        show(av)
                    )),
                }
            }
        }
        _ if e != a => out.push(format!("{at}: expected {e}, got {a}")),
        _ => {}
    }
}

/// The `.json` files under `path` (a file, or a folder searched recursively), sorted.
pub fn files(path: &Path) -> Result<Vec<PathBuf>, CaptureError> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    let entries = std::fs::read_dir(path).map_err(|e| CaptureError::Io(path.into(), e))?;
    for entry in entries {
        let p = entry.map_err(|e| CaptureError::Io(path.into(), e))?.path();
        if p.is_dir() {
            out.extend(files(&p)?);
        } else if p.extension().and_then(|e| e.to_str()) == Some("json") {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

/// The outcome of replaying one capture.
#[derive(Debug)]
pub struct Replayed {
    /// The capture file.
    pub path: PathBuf,
    /// Differences from the captured reply (empty: it matches); or why it could not run.
    pub differences: Vec<String>,
    /// The capture, when it could be read, and the reply the replay produced.
    pub capture: Option<(Capture, Option<Value>)>,
}

/// Replays one capture file.
pub async fn replay_file(path: &Path, identity: &Identity) -> Replayed {
    let capture = match load(path) {
        Ok(c) => c,
        Err(e) => {
            return Replayed {
                path: path.into(),
                differences: vec![e.to_string()],
                capture: None,
            };
        }
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    match run(&capture, dir, identity).await {
        Ok(handled) => {
            let reply = published_reply(&capture, &handled);
            let differences = compare(capture.reply.as_ref(), reply.as_ref());
            Replayed {
                path: path.into(),
                differences,
                capture: Some((capture, reply)),
            }
        }
        // Not run (its fixture folder is missing, …): nothing to compare, nothing to update.
        Err(e) => Replayed {
            path: path.into(),
            differences: vec![e],
            capture: None,
        },
    }
}

/// Writes captures of the requests the live worker answers (`serve --record DIR`).
#[derive(Debug, Clone)]
pub struct Recorder {
    dir: PathBuf,
}

impl Recorder {
    /// A recorder writing into `dir` (created when missing).
    pub fn new(dir: impl Into<PathBuf>) -> std::io::Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        Ok(Self { dir })
    }

    /// The capture of one handled delivery, secrets redacted.
    pub fn capture(delivery: &Delivery, handled: &Handled) -> Capture {
        let p = &delivery.properties;
        let mut message = Message {
            exchange: delivery.exchange.to_string(),
            routing_key: delivery.routing_key.to_string(),
            properties: Properties {
                content_type: p.content_type().as_ref().map(|s| s.to_string()),
                reply_to: p.reply_to().as_ref().map(|s| s.to_string()),
                correlation_id: p.correlation_id().as_ref().map(|s| s.to_string()),
            },
            ..Default::default()
        };
        if delivery.data.len() > crate::handler::MAX_BODY {
            message.body_size = Some(delivery.data.len());
        } else {
            match serde_json::from_slice::<Value>(&delivery.data) {
                Ok(mut v) => {
                    redact(&mut v);
                    message.body = Some(v);
                }
                Err(_) => {
                    message.body_text = Some(String::from_utf8_lossy(&delivery.data).into_owned())
                }
            }
        }
        let (mut documents, registrations) = match &handled.resolution {
            Some(r) => {
                let mut docs: Vec<(&String, Value)> = r
                    .inputs
                    .docs
                    .iter()
                    .filter_map(|(id, d)| d.as_ref().map(|d| (id, (**d).clone())))
                    .collect();
                // The `system_config` categories read, by their ids (`kazoo_endpoint`, ...).
                docs.extend(
                    r.inputs
                        .system_config
                        .iter()
                        .filter_map(|(id, d)| d.as_ref().map(|d| (id, (**d).clone()))),
                );
                docs.sort_by(|a, b| a.0.cmp(b.0));
                let regs = r
                    .inputs
                    .registrations
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.as_str().to_owned()))
                    .collect();
                (docs.into_iter().map(|(_, d)| d).collect::<Vec<_>>(), regs)
            }
            None => (Vec::new(), BTreeMap::new()),
        };
        documents.iter_mut().for_each(redact);
        let reply = message.has_reply_address().then(|| handled.reply.clone());
        Capture {
            kz_capture: VERSION,
            description: None,
            message,
            fixturedb: None,
            documents,
            registrations,
            // Every device the build asked about is listed; the rest were never asked.
            other_registrations: "unknown".into(),
            reply,
        }
    }

    /// Writes the capture of one handled delivery. A failure is logged, never fatal.
    pub async fn record(&self, delivery: &Delivery, handled: &Handled, dated: Option<i64>) {
        let mut capture = Self::capture(delivery, handled);
        // The worker dated a request that carried no `Timestamp`: the capture carries the
        // date the build used, so that its replay builds the same reply.
        if let (Some(ts), Some(Value::Object(body))) = (dated, capture.message.body.as_mut()) {
            body.entry("Timestamp").or_insert(ts.into());
        }
        let msg_id: String = handled
            .envelope
            .msg_id
            .as_deref()
            .unwrap_or("no-msg-id")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .take(64)
            .collect();
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let name = format!("{millis}-{msg_id}-{}.json", crate::amqp::random_hex(4));
        let mut text = serde_json::to_string_pretty(&capture).expect("a capture serialises");
        text.push('\n');
        if let Err(e) = tokio::fs::write(self.dir.join(&name), text).await {
            tracing::warn!(error = %e, file = %name, "capture not written");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_at_any_depth() {
        let mut v = json!({"sip": {"username": "u", "password": "p"}, "hotdesk": {"pin": "1234"},
                           "list": [{"Password": "x"}], "pvt_api_key": "k"});
        redact(&mut v);
        assert_eq!(v["sip"], json!({"username": "u", "password": "[redacted]"}));
        assert_eq!(v["hotdesk"]["pin"], "[redacted]");
        assert_eq!(v["list"][0]["Password"], "[redacted]");
        assert_eq!(v["pvt_api_key"], "[redacted]");
    }

    #[test]
    fn a_reply_turned_error_shows_the_legs_in_words_and_the_message() {
        let e = json!({"Event-Name": "build_resp", "Msg-ID": "m", "Endpoints": [
            {"Invite-Format": "username", "To-Username": "d1", "To-Realm": "r"},
            {"Invite-Format": "loopback", "Route": "+1555", "Custom-Channel-Vars": {}}]});
        let a = json!({"Event-Name": "build_error", "Msg-ID": "m", "Error-Code": "not_found",
                       "Error-Message": "no document d1 in account a"});
        assert_eq!(
            compare(Some(&e), Some(&a)),
            [
                "Event-Name: expected \"build_resp\", got \"build_error\"",
                "Endpoints: expected 2 leg(s): SIP leg to d1@r + forward leg to +1555, got (absent)",
                "Error-Code: expected (absent), got \"not_found\"",
                "Error-Message (not compared): expected (absent), got \"no document d1 in account a\"",
            ]
        );
    }

    #[test]
    fn compare_ignores_node_and_reports_legs() {
        let e = json!({"Node": "a", "Msg-ID": "m", "Endpoints": [
            {"Invite-Format": "loopback", "Route": "+1", "Custom-Channel-Vars": {"Is-Failover": true}}]});
        let a = json!({"Node": "b", "Msg-ID": "m", "Endpoints": [
            {"Invite-Format": "username", "To-Username": "d1", "To-Realm": "r", "Custom-Channel-Vars": {}}]});
        assert!(
            compare(
                Some(&e),
                Some(&json!({"Node": "z", "Msg-ID": "m", "Endpoints": e["Endpoints"]}))
            )
            .is_empty()
        );
        let d = compare(Some(&e), Some(&a));
        assert_eq!(
            d[0],
            "leg 1: expected failover leg to +1, got SIP leg to d1@r"
        );
        assert!(
            d.iter().any(
                |l| l == "  leg 1 Custom-Channel-Vars Is-Failover: expected true, got (absent)"
            ),
            "{d:?}"
        );
    }
}
