//! The frames the worker writes for every request, encoded directly: a reply's
//! `basic.publish` method and content header, and a delivery's `basic.ack`.
//!
//! Why: these are fixed layouts of a few fields (AMQP 0-9-1, section 4.2), and
//! `amq-protocol`'s generators, built from `cookie_factory` combinators, spent about 4 700
//! instructions a request on them (callgrind, in the serve process), as much as the request
//! task's own settling and publishing code. A content header whose properties are other than
//! the replies' own (a content type, a correlation id) is not written here: the caller hands
//! it to `amq-protocol` (a targeted reply with a `Deliver-To-PID` header, say). The tests
//! compare every frame written here with `amq-protocol`'s, byte for byte.

use amq_protocol::protocol::BasicProperties;
use amq_protocol::types::ShortString;

const METHOD_FRAME: u8 = 1;
const HEADER_FRAME: u8 = 2;
const FRAME_END: u8 = 0xCE;
const BASIC: u16 = 60;
const PUBLISH: u16 = 40;
const ACK: u16 = 80;
/// The property flags of `content-type` and `correlation-id` (bits 15 and 10).
const CONTENT_TYPE: u16 = 1 << 15;
const CORRELATION_ID: u16 = 1 << 10;

/// `basic.publish` to `exchange` with `routing_key`, neither mandatory nor immediate.
pub fn publish_method(
    out: &mut Vec<u8>,
    channel: u16,
    exchange: &ShortString,
    routing_key: &ShortString,
) {
    frame(out, METHOD_FRAME, channel, |out| {
        out.extend_from_slice(&BASIC.to_be_bytes());
        out.extend_from_slice(&PUBLISH.to_be_bytes());
        // The reserved `ticket`.
        out.extend_from_slice(&0u16.to_be_bytes());
        short_string(out, exchange);
        short_string(out, routing_key);
        // mandatory, immediate: both off.
        out.push(0);
    });
}

/// `basic.ack` of delivery `tag`, alone (not `multiple`).
pub fn ack(out: &mut Vec<u8>, channel: u16, tag: u64) {
    frame(out, METHOD_FRAME, channel, |out| {
        out.extend_from_slice(&BASIC.to_be_bytes());
        out.extend_from_slice(&ACK.to_be_bytes());
        out.extend_from_slice(&tag.to_be_bytes());
        out.push(0);
    });
}

/// The content header of a `basic` message of `body_size` bytes, when its properties are at
/// most a content type and a correlation id: `false`, and nothing written, otherwise.
pub fn content_header(
    out: &mut Vec<u8>,
    channel: u16,
    body_size: u64,
    properties: &BasicProperties,
) -> bool {
    let p = properties;
    let others = p.content_encoding().is_some()
        || p.headers().is_some()
        || p.delivery_mode().is_some()
        || p.priority().is_some()
        || p.reply_to().is_some()
        || p.expiration().is_some()
        || p.message_id().is_some()
        || p.timestamp().is_some()
        || p.kind().is_some()
        || p.user_id().is_some()
        || p.app_id().is_some()
        || p.cluster_id().is_some();
    if others {
        return false;
    }
    let (content_type, correlation_id) = (p.content_type(), p.correlation_id());
    frame(out, HEADER_FRAME, channel, |out| {
        out.extend_from_slice(&BASIC.to_be_bytes());
        // The unused `weight`.
        out.extend_from_slice(&0u16.to_be_bytes());
        out.extend_from_slice(&body_size.to_be_bytes());
        let flags = content_type.as_ref().map_or(0, |_| CONTENT_TYPE)
            | correlation_id.as_ref().map_or(0, |_| CORRELATION_ID);
        out.extend_from_slice(&flags.to_be_bytes());
        for value in [content_type, correlation_id].into_iter().flatten() {
            short_string(out, value);
        }
    });
    true
}

/// A frame of `kind` on `channel`: its payload written by `payload`, its size filled in
/// after.
fn frame(out: &mut Vec<u8>, kind: u8, channel: u16, payload: impl FnOnce(&mut Vec<u8>)) {
    out.push(kind);
    out.extend_from_slice(&channel.to_be_bytes());
    let size_at = out.len();
    out.extend_from_slice(&[0; 4]);
    payload(out);
    // A payload here is a few short strings and numbers: far below 4 GiB.
    let size = (out.len() - size_at - 4) as u32;
    out[size_at..size_at + 4].copy_from_slice(&size.to_be_bytes());
    out.push(FRAME_END);
}

/// A short string: its length in one byte, then its bytes (a `ShortString` is at most 255).
fn short_string(out: &mut Vec<u8>, s: &ShortString) {
    let s = s.as_str().as_bytes();
    out.push(s.len() as u8);
    out.extend_from_slice(s);
}

#[cfg(test)]
mod tests {
    use super::*;
    use amq_protocol::frame::{AMQPContentHeader, AMQPFrame, WriteContext, gen_frame};
    use amq_protocol::protocol::{AMQPClass, basic};
    use amq_protocol::types::{AMQPValue, FieldTable};

    fn theirs(frame: &AMQPFrame) -> Vec<u8> {
        gen_frame(frame)(WriteContext::from(Vec::new()))
            .map(|ctx| ctx.write)
            .unwrap()
    }

    fn short(s: &str) -> ShortString {
        ShortString::try_new(s).unwrap()
    }

    #[test]
    fn publish_methods_are_amq_protocol_s() {
        let long = "k".repeat(255);
        for (exchange, key) in [("", ""), ("targeted", "q1"), ("", long.as_str())] {
            let mut ours = Vec::new();
            publish_method(&mut ours, 1, &short(exchange), &short(key));
            let publish = basic::Publish {
                exchange: short(exchange),
                routing_key: short(key),
                mandatory: false,
                immediate: false,
            };
            let frame = AMQPFrame::Method(1, AMQPClass::Basic(basic::AMQPMethod::Publish(publish)));
            assert_eq!(ours, theirs(&frame), "{exchange:?} {key:?}");
        }
    }

    #[test]
    fn acks_are_amq_protocol_s() {
        for (channel, tag) in [(1, 1), (7, u64::from(u32::MAX) + 5), (u16::MAX, u64::MAX)] {
            let mut ours = Vec::new();
            ack(&mut ours, channel, tag);
            let ack = basic::Ack {
                delivery_tag: tag,
                multiple: false,
            };
            let frame = AMQPFrame::Method(channel, AMQPClass::Basic(basic::AMQPMethod::Ack(ack)));
            assert_eq!(ours, theirs(&frame));
        }
    }

    #[test]
    fn content_headers_of_a_type_and_a_correlation_id_are_amq_protocol_s() {
        let long = "c".repeat(255);
        let json = || BasicProperties::default().with_content_type(short("application/json"));
        for (properties, body_size) in [
            (BasicProperties::default(), 0),
            (json(), 2_048),
            (json().with_correlation_id(short("")), u64::MAX),
            (json().with_correlation_id(short(&long)), 1),
            (
                BasicProperties::default().with_correlation_id(short("c1")),
                9,
            ),
        ] {
            let mut ours = Vec::new();
            assert!(content_header(&mut ours, 1, body_size, &properties));
            let header = AMQPContentHeader {
                class_id: 60,
                body_size,
                properties: properties.clone(),
            };
            assert_eq!(
                ours,
                theirs(&AMQPFrame::Header(1, header)),
                "{properties:?}"
            );
        }
    }

    #[test]
    fn other_properties_are_left_to_amq_protocol() {
        let mut headers = FieldTable::default();
        headers.insert(
            "Deliver-To-PID".into(),
            AMQPValue::LongString("<0.1.0>".into()),
        );
        for properties in [
            BasicProperties::default().with_headers(headers),
            BasicProperties::default().with_reply_to(short("q")),
            BasicProperties::default().with_message_id(short("m")),
            BasicProperties::default().with_timestamp(1),
            BasicProperties::default().with_delivery_mode(2),
            BasicProperties::default().with_app_id(short("a")),
        ] {
            let mut ours = Vec::new();
            assert!(
                !content_header(&mut ours, 1, 3, &properties),
                "{properties:?}"
            );
            assert!(ours.is_empty());
        }
    }
}
