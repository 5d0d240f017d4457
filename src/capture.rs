//! The capture file format (`docs/fixtures.md`): one AMQP request as received (properties and
//! body), the documents its build read (or a fixture database folder), the registrar's
//! answers, and the reply that was published. Written by the live worker's recorder
//! ([`crate::recorder`]), read by replay ([`crate::replay`]); the format itself knows nothing
//! of either, so it can be read and written without the request handler.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::registrar::Registration;

/// The format version written in every capture.
pub const VERSION: u32 = 1;

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
}
