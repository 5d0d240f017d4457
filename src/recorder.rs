//! Recording from the live worker (`serve --record DIR`): every request it answers written as
//! a capture ([`crate::capture`]), secrets redacted, for replay.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::broker_connection::Delivery;
use serde_json::Value;

use crate::capture::{Capture, Message, Properties, VERSION, redact};
use crate::handler::Answered;

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
    pub fn capture(delivery: &Delivery, handled: &Answered) -> Capture {
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
        if delivery.oversized() {
            message.body_size = Some(delivery.body_size as usize);
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
                    .filter_map(|(id, d)| d.as_ref().map(|d| (id, d.json().clone())))
                    .collect();
                // The `system_config` categories read, by their ids (`kazoo_endpoint`, ...).
                docs.extend(
                    r.inputs
                        .system_config
                        .iter()
                        .filter_map(|(id, d)| d.as_ref().map(|d| (id, d.json().clone()))),
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
        let reply = message.has_reply_address().then(|| handled.reply.json());
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
    pub async fn record(&self, delivery: &Delivery, handled: &Answered, dated: Option<i64>) {
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
