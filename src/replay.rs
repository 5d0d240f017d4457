//! Replay: a capture's message run through the same request handler the worker uses, with
//! the capture's documents and registrar answers in place of CouchDB and RabbitMQ, and the new
//! reply compared with the captured one. So "why did this phone ring?" can be asked offline,
//! and an upgrade can be proven to change nothing.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::build_api::Identity;
use crate::capture::{Capture, load};
use crate::documents::MemoryStore;
use crate::fixturedb::FixtureDb;
use crate::handler::{Answered, handle_message};
use crate::registrar::{GivenRegistrations, RegKey, Registration};

/// Reply fields that legitimately differ between the capture and the replay.
pub const IGNORED_REPLY_FIELDS: [&str; 5] = [
    "Node",
    "App-Name",
    "App-Version",
    "Error-Message",
    "Explain",
];

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
pub async fn run(c: &Capture, dir: &Path, identity: &Identity) -> Result<Answered, String> {
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
pub fn published_reply(c: &Capture, handled: &Answered) -> Option<Value> {
    c.message.has_reply_address().then(|| handled.reply.json())
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
        .map(crate::leg::describe_json)
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
