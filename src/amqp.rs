//! Kazoo's AMQP conventions (`kazoo-wire-format.md` sections 1, 2 and 8): exchanges declared
//! exactly as Kazoo declares them, routing-key escaping, targeted replies (including the
//! `pid://` form), and JSON publishing.
//!
//! An exchange declared with other flags than Kazoo's makes RabbitMQ close the channel with
//! `406 PRECONDITION_FAILED`; a publish without `content_type: application/json` crashes
//! Kazoo's consumer. Both are kept in one place here.

use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Consumer, ExchangeKind};
use serde_json::Value;

/// Inter-app requests (`endpoint.build.*` among them).
pub const KAPPS: &str = "kapps";
/// Replies, routed by the requester's queue name.
pub const TARGETED: &str = "targeted";
/// Registration queries.
pub const REGISTRAR: &str = "registrar";
/// Node heartbeats.
pub const NODES: &str = "nodes";
/// Document and database change events.
pub const CONFIGURATION: &str = "configuration";

/// The exchanges the worker uses, with Kazoo's types.
pub const EXCHANGES: [(&str, ExchangeKind); 5] = [
    (KAPPS, ExchangeKind::Topic),
    (TARGETED, ExchangeKind::Direct),
    (REGISTRAR, ExchangeKind::Topic),
    (NODES, ExchangeKind::Fanout),
    (CONFIGURATION, ExchangeKind::Topic),
];

/// Declares [`EXCHANGES`] as Kazoo does: not passive, not durable, not auto-delete, not
/// internal, no arguments.
pub async fn declare_exchanges(channel: &Channel) -> lapin::Result<()> {
    for (name, kind) in EXCHANGES {
        channel
            .exchange_declare(
                name.into(),
                kind,
                ExchangeDeclareOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    Ok(())
}

/// Queue arguments in Kazoo's types: `x-message-ttl` as a signed 32-bit integer (`I`) and
/// `x-max-length` as a signed 16-bit integer (`s`).
pub fn queue_args(ttl_ms: i32, max_length: i16) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert("x-message-ttl".into(), AMQPValue::LongInt(ttl_ms));
    args.insert("x-max-length".into(), AMQPValue::ShortInt(max_length));
    args
}

/// Declares a queue of our own (exclusive, auto-delete, with `args`), binds it to each
/// `(exchange, routing key)` of `bindings` (the routing key `None` meaning the queue's own
/// name: the `targeted` reply binding), and consumes it without acknowledgements, the way a
/// Kazoo listener consumes its own queue.
pub async fn private_queue(
    channel: &Channel,
    name: &str,
    args: FieldTable,
    bindings: &[(&str, Option<&str>)],
) -> lapin::Result<Consumer> {
    channel
        .queue_declare(
            name.into(),
            QueueDeclareOptions {
                auto_delete: true,
                exclusive: true,
                ..Default::default()
            },
            args,
        )
        .await?;
    for (exchange, key) in bindings {
        channel
            .queue_bind(
                name.into(),
                (*exchange).into(),
                key.unwrap_or(name).into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    channel
        .basic_consume(
            name.into(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                exclusive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
}

/// `kz_amqp_util:encode/1`: escapes one routing-key segment. `*` and `#` alone are kept;
/// `[A-Za-z0-9-~_]` pass, a space becomes `+`, every other byte `%XX` (uppercase hex).
pub fn encode(segment: &str) -> String {
    if segment == "*" || segment == "#" {
        return segment.to_owned();
    }
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'~' | b'_' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Where a targeted reply goes: the routing key, and the `Deliver-To-PID` header value for
/// a `pid://<pid>/<queue>` server id (the pid is everything up to the last `/`).
pub fn targeted_route(server_id: &str) -> (String, Option<String>) {
    match server_id
        .strip_prefix("pid://")
        .and_then(|rest| rest.rsplit_once('/'))
    {
        Some((pid, queue)) => (queue.to_owned(), Some(pid.to_owned())),
        None => (server_id.to_owned(), None),
    }
}

/// Properties every publish carries.
pub fn json_properties() -> BasicProperties {
    BasicProperties::default().with_content_type("application/json".into())
}

/// Publishes a JSON body.
pub async fn publish_json(
    channel: &Channel,
    exchange: &str,
    routing_key: &str,
    body: &Value,
    properties: BasicProperties,
) -> lapin::Result<()> {
    let payload = serde_json::to_vec(body).expect("a JSON value serialises");
    channel
        .basic_publish(
            exchange.into(),
            routing_key.into(),
            BasicPublishOptions::default(),
            &payload,
            properties,
        )
        .await?
        .await?;
    Ok(())
}

/// Publishes a reply to a Kazoo `Server-ID` on the `targeted` exchange.
pub async fn publish_targeted(
    channel: &Channel,
    server_id: &str,
    body: &Value,
) -> lapin::Result<()> {
    let (routing_key, pid) = targeted_route(server_id);
    let mut props = json_properties();
    if let Some(pid) = pid {
        let mut headers = FieldTable::default();
        headers.insert("Deliver-To-PID".into(), AMQPValue::LongString(pid.into()));
        props = props.with_headers(headers);
    }
    publish_json(channel, TARGETED, &routing_key, body, props).await
}

/// A random lowercase hex string of `n` characters (message ids, queue suffixes).
pub fn random_hex(n: usize) -> String {
    (0..n)
        .map(|_| char::from_digit(fastrand::u32(0..16), 16).expect("hex digit"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_key_escaping_vectors() {
        for (input, output) in [
            ("#", "#"),
            ("*", "*"),
            ("key", "key"),
            ("routing.key", "routing%2Ekey"),
            ("long.routing.key", "long%2Erouting%2Ekey"),
            ("test&.192. 168. 5. 5#", "test%26%2E192%2E+168%2E+5%2E+5%23"),
            ("acme.sip.example.com", "acme%2Esip%2Eexample%2Ecom"),
            ("user@host", "user%40host"),
            ("é", "%C3%A9"),
        ] {
            assert_eq!(encode(input), output, "{input}");
        }
    }

    #[test]
    fn pid_server_ids_split_at_the_last_slash() {
        assert_eq!(
            targeted_route("pid://<0.3351.0>/ecallmgr@fs1.example.com-<0.3350.0>-9c1e44a0"),
            (
                "ecallmgr@fs1.example.com-<0.3350.0>-9c1e44a0".to_owned(),
                Some("<0.3351.0>".to_owned())
            )
        );
        assert_eq!(
            targeted_route("plain-queue"),
            ("plain-queue".to_owned(), None)
        );
    }

    #[test]
    fn random_hex_is_hex() {
        let h = random_hex(16);
        assert_eq!(h.len(), 16);
        assert!(
            h.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
    }
}
