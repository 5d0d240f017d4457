//! What the load tool's two echo consumers share, the one on lapin (in the load tool) and
//! the one without a client library ([`crate::raw_echo`]): their queue and their answer, so
//! that the two differ only in the AMQP client under them.

use kz_endpoint::amqp::{KAPPS, declare_exchanges, queue_args, random_hex};
use lapin::options::{QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use serde_json::{Value, json};

/// Declares an echo consumer's queue (auto-delete, with the worker's queue arguments) and
/// binds it to `key` on `kapps`; returns its name.
pub async fn declare_queue(ch: &lapin::Channel, key: &str) -> anyhow::Result<String> {
    declare_exchanges(ch).await?;
    let q = format!("kz-load-echo-{}", random_hex(8));
    ch.queue_declare(
        q.as_str().into(),
        QueueDeclareOptions {
            auto_delete: true,
            ..Default::default()
        },
        queue_args(3_000, i16::MAX),
    )
    .await?;
    ch.queue_bind(
        q.as_str().into(),
        KAPPS.into(),
        key.into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await?;
    Ok(q)
}

/// The answer to a request body: the `Server-ID` it goes to, and an empty `build_resp` with
/// the request's `Msg-ID`. `None` for a body without both.
pub fn reply(body: &[u8]) -> Option<(String, Value)> {
    #[derive(serde::Deserialize)]
    struct Env {
        #[serde(rename = "Msg-ID")]
        msg_id: String,
        #[serde(rename = "Server-ID")]
        server_id: String,
    }
    let env = serde_json::from_slice::<Env>(body).ok()?;
    let reply = json!({"Event-Category": "endpoint", "Event-Name": "build_resp", "Msg-ID": env.msg_id, "Endpoints": []});
    Some((env.server_id, reply))
}
