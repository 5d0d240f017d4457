//! Kazoo's AMQP conventions (`kazoo-wire-format.md` sections 1, 2 and 8): exchanges declared
//! exactly as Kazoo declares them, routing-key escaping, targeted replies (including the
//! `pid://` form), and JSON publishing.
//!
//! An exchange declared with other flags than Kazoo's makes RabbitMQ close the channel with
//! `406 PRECONDITION_FAILED`; a publish without `content_type: application/json` crashes
//! Kazoo's consumer. Both are kept in one place here.

use amq_protocol::protocol::{AMQPClass, exchange, queue};
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
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

/// The name AMQP gives an exchange type.
fn kind_name(kind: &ExchangeKind) -> &str {
    match kind {
        ExchangeKind::Custom(c) => c,
        ExchangeKind::Direct => "direct",
        ExchangeKind::Fanout => "fanout",
        ExchangeKind::Headers => "headers",
        ExchangeKind::Topic => "topic",
    }
}

/// [`EXCHANGES`] as the `exchange.declare` methods of a connection that speaks AMQP itself
/// (the worker's, [`crate::broker_connection`]), with the same flags as
/// [`declare_exchanges`].
pub fn exchange_declarations() -> Vec<AMQPClass> {
    EXCHANGES
        .iter()
        .map(|(name, kind)| {
            AMQPClass::Exchange(exchange::AMQPMethod::Declare(exchange::Declare {
                exchange: (*name).into(),
                kind: kind_name(kind).into(),
                ..Default::default()
            }))
        })
        .collect()
}

/// The `queue.declare` of an auto-delete queue (`exclusive` to the connection, or shared by
/// every worker), with `args`.
pub fn queue_declaration(
    name: &str,
    exclusive: bool,
    args: FieldTable,
) -> Result<AMQPClass, PublishError> {
    Ok(AMQPClass::Queue(queue::AMQPMethod::Declare(
        queue::Declare {
            queue: short_string("the queue name", name)?,
            exclusive,
            auto_delete: true,
            arguments: args,
            ..Default::default()
        },
    )))
}

/// The `queue.bind` of `queue` to `exchange` with `routing_key`.
pub fn queue_binding(
    queue: &str,
    exchange: &str,
    routing_key: &str,
) -> Result<AMQPClass, PublishError> {
    Ok(AMQPClass::Queue(queue::AMQPMethod::Bind(queue::Bind {
        queue: short_string("the queue name", queue)?,
        exchange: short_string("the exchange name", exchange)?,
        routing_key: short_string("the routing key", routing_key)?,
        ..Default::default()
    })))
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

/// Why a publish did not happen.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// A value that AMQP carries as a short string (exchange, routing key, …) is longer than
    /// the 255 bytes AMQP allows. Nothing was sent; no retry can help.
    #[error("{what} is {len} bytes long, over AMQP's 255-byte limit for short strings")]
    TooLong {
        /// Which value.
        what: &'static str,
        /// Its length in bytes.
        len: usize,
    },
    /// The body is larger than [`MAX_MESSAGE`]: RabbitMQ would close the channel for it
    /// (its `max_message_size` is 16 MiB by default since 4.0), taking every later reply
    /// with it. Nothing was sent.
    #[error("the message is {len} bytes, over the {MAX_MESSAGE}-byte limit")]
    TooLarge {
        /// Its length in bytes.
        len: usize,
    },
    /// The broker refused the publish, or the connection failed.
    #[error(transparent)]
    Broker(#[from] lapin::Error),
    /// The broker connection is closed (or closing): nothing more goes out on it.
    #[error("the broker connection is closed: {0}")]
    Connection(String),
}

/// The largest message the worker publishes: half of RabbitMQ 4's default
/// `max_message_size`, so a reply never costs the channel.
pub const MAX_MESSAGE: usize = 8 * 1024 * 1024;

/// `s` as an AMQP short string, or [`PublishError::TooLong`]. lapin's own conversion panics
/// on a string over 255 bytes, so every value that can come from a message or a document
/// goes through here first.
pub fn short_string(what: &'static str, s: &str) -> Result<ShortString, PublishError> {
    ShortString::try_new(s).map_err(|_| PublishError::TooLong { what, len: s.len() })
}

/// The exchange and routing key of a publish of `len` bytes as short strings, or why it
/// cannot be published: what every publish checks first, whichever connection it goes on.
pub fn publishable(
    exchange: &str,
    routing_key: &str,
    len: usize,
) -> Result<(ShortString, ShortString), PublishError> {
    let exchange = short_string("the exchange name", exchange)?;
    let routing_key = short_string("the routing key", routing_key)?;
    if len > MAX_MESSAGE {
        return Err(PublishError::TooLarge { len });
    }
    Ok((exchange, routing_key))
}

/// Publishes a JSON body.
pub async fn publish_json(
    channel: &Channel,
    exchange: &str,
    routing_key: &str,
    body: &Value,
    properties: BasicProperties,
) -> Result<(), PublishError> {
    // Serialising a `Value` cannot fail: its keys are strings and its numbers finite.
    let payload = serde_json::to_vec(body).unwrap_or_default();
    publish_bytes(channel, exchange, routing_key, &payload, properties).await
}

/// Publishes a JSON body that is serialised already.
pub async fn publish_bytes(
    channel: &Channel,
    exchange: &str,
    routing_key: &str,
    payload: &[u8],
    properties: BasicProperties,
) -> Result<(), PublishError> {
    let (exchange, routing_key) = publishable(exchange, routing_key, payload.len())?;
    channel
        .basic_publish(
            exchange,
            routing_key,
            BasicPublishOptions::default(),
            payload,
            properties,
        )
        .await?
        .await?;
    Ok(())
}

/// Where a reply goes: checked once, when the request arrives, so that an address AMQP
/// cannot carry is known before any work is done for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyAddress {
    /// The AMQP `reply_to` queue, through the default exchange, with the request's
    /// `correlation_id` echoed.
    ReplyTo {
        /// The queue.
        queue: String,
        /// The request's correlation id.
        correlation_id: Option<ShortString>,
    },
    /// Kazoo's `Server-ID` on the `targeted` exchange (`pid://` honoured).
    Targeted {
        /// The routing key: the queue part of the server id.
        routing_key: String,
        /// The `Deliver-To-PID` header, for a `pid://` server id.
        pid: Option<String>,
    },
}

impl ReplyAddress {
    /// The reply address of a request: the AMQP `reply_to` when the message has one, else
    /// the body's `Server-ID`. `Ok(None)`: the request has no reply address (an empty one
    /// counts as none). `Err`: it has one that AMQP cannot carry.
    pub fn of(
        reply_to: Option<&str>,
        correlation_id: Option<&ShortString>,
        server_id: Option<&str>,
    ) -> Result<Option<Self>, PublishError> {
        if let Some(queue) = reply_to.filter(|q| !q.is_empty()) {
            short_string("the reply_to queue", queue)?;
            return Ok(Some(Self::ReplyTo {
                queue: queue.to_owned(),
                correlation_id: correlation_id.cloned(),
            }));
        }
        let Some(server_id) = server_id.filter(|s| !s.is_empty()) else {
            return Ok(None);
        };
        let (routing_key, pid) = targeted_route(server_id);
        if routing_key.is_empty() {
            return Ok(None);
        }
        short_string("the Server-ID's queue name", &routing_key)?;
        Ok(Some(Self::Targeted { routing_key, pid }))
    }

    /// The exchange, routing key and properties a reply to this address is published with.
    pub fn route(&self) -> (&'static str, &str, BasicProperties) {
        match self {
            Self::ReplyTo {
                queue,
                correlation_id,
            } => {
                let mut p = json_properties();
                if let Some(c) = correlation_id {
                    p = p.with_correlation_id(c.clone());
                }
                ("", queue, p)
            }
            Self::Targeted { routing_key, pid } => {
                let mut props = json_properties();
                if let Some(pid) = pid {
                    let mut headers = FieldTable::default();
                    headers.insert(
                        "Deliver-To-PID".into(),
                        AMQPValue::LongString(pid.as_str().into()),
                    );
                    props = props.with_headers(headers);
                }
                (TARGETED, routing_key, props)
            }
        }
    }

    /// Publishes `body` (JSON text) to this address on a lapin channel.
    pub async fn publish(&self, channel: &Channel, body: &[u8]) -> Result<(), PublishError> {
        let (exchange, routing_key, properties) = self.route();
        publish_bytes(channel, exchange, routing_key, body, properties).await
    }

    /// Queues `body` (JSON text) to this address on the broker connection.
    pub fn queue(
        &self,
        outbox: &crate::broker_connection::Outbox,
        body: &[u8],
    ) -> Result<(), PublishError> {
        let (exchange, routing_key, properties) = self.route();
        outbox.publish(exchange, routing_key, properties, body)
    }
}

/// Publishes a reply to a Kazoo `Server-ID` on the `targeted` exchange.
pub async fn publish_targeted(
    channel: &Channel,
    server_id: &str,
    body: &Value,
) -> Result<(), PublishError> {
    match ReplyAddress::of(None, None, Some(server_id))? {
        Some(address) => {
            let payload = serde_json::to_vec(body).unwrap_or_default();
            address.publish(channel, &payload).await
        }
        None => Ok(()),
    }
}

/// A random lowercase hex string of `n` characters (message ids, queue suffixes).
pub fn random_hex(n: usize) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    (0..n)
        .map(|_| char::from(HEX[fastrand::usize(0..16)]))
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
    fn reply_addresses_are_checked_before_use() {
        let long = "q".repeat(256);
        assert!(matches!(
            ReplyAddress::of(None, None, Some(&long)),
            Err(PublishError::TooLong { len: 256, .. })
        ));
        assert!(matches!(
            ReplyAddress::of(Some(&long), None, Some("q1")),
            Err(PublishError::TooLong { .. })
        ));
        // A pid:// id whose queue part fits is fine, however long the pid.
        let pid = format!("pid://<{}>/q1", "0".repeat(300));
        assert!(matches!(
            ReplyAddress::of(None, None, Some(&pid)),
            Ok(Some(ReplyAddress::Targeted { .. }))
        ));
        assert_eq!(ReplyAddress::of(None, None, Some("")).unwrap(), None);
        assert_eq!(ReplyAddress::of(Some(""), None, None).unwrap(), None);
        assert_eq!(
            ReplyAddress::of(None, None, Some("pid://<0.1.0>/")).unwrap(),
            None
        );
        assert!(ReplyAddress::of(None, None, Some(&"q".repeat(255))).is_ok());
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
