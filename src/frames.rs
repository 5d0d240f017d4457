//! The frames every request arrives and leaves in, read and written directly: a delivery's
//! `basic.deliver` method and content header, and a reply's `basic.publish` method and
//! content header, body frames and the delivery's `basic.ack`.
//!
//! Why: these are fixed layouts of a few numbers and short strings (AMQP 0-9-1, section
//! 4.2), and `amq-protocol`'s parsers and generators, `nom` and `cookie_factory`
//! combinators with a context at every step, spent about 4 100 instructions a request on
//! them (callgrind, in the serve process). Anything else goes to `amq-protocol`: a frame the
//! reader does not take as it is (another method, a header whose properties carry a table, a
//! frame that is not well formed) answers `None`, so every error stays its error, and a
//! content header whose properties are other than a content type and a correlation id (a
//! targeted reply's `Deliver-To-PID` header, say) is not written here. The tests compare both
//! directions with `amq-protocol`, byte for byte and value for value.

use amq_protocol::frame::{AMQPContentHeader, AMQPFrame};
use amq_protocol::protocol::{AMQPClass, BasicProperties, basic};
use amq_protocol::types::ShortString;

/// A frame's header: type (1 byte), channel (2), payload size (4); then the payload and
/// the frame-end octet.
pub const FRAME_HEADER: usize = 7;
/// The octet that ends every frame.
pub const FRAME_END: u8 = 0xCE;
/// The frame type of a method frame.
pub const METHOD_FRAME: u8 = 1;
/// The frame type of a content header frame.
pub const HEADER_FRAME: u8 = 2;
/// The frame type of a body frame.
pub const BODY_FRAME: u8 = 3;
const BASIC: u16 = 60;
const PUBLISH: u16 = 40;
const DELIVER: u16 = 60;
const ACK: u16 = 80;
/// The property flags of `content-type` and `correlation-id` (bits 15 and 10).
const CONTENT_TYPE: u16 = 1 << 15;
const CORRELATION_ID: u16 = 1 << 10;
/// The header flags of the properties read here; bit 13 (`headers`, a table) and bits 1 and
/// 0 (unused, and "more flags follow") are not.
const READ_HERE: u16 = 0b1101_1111_1111_1100;

/// A whole frame (type, channel, size, payload and end octet, as the caller checked them)
/// as `amq-protocol` reads it, when it is a `basic.deliver` or a content header read here.
pub fn read(frame: &[u8]) -> Option<AMQPFrame> {
    let (&kind, rest) = frame.split_first()?;
    let (channel, rest) = rest.split_first_chunk::<2>()?;
    let (size, rest) = rest.split_first_chunk::<4>()?;
    let (&end, payload) = rest.split_last()?;
    if end != FRAME_END || u32::from_be_bytes(*size) as usize != payload.len() {
        return None;
    }
    let channel = u16::from_be_bytes(*channel);
    let mut r = Reader(payload);
    let read = match kind {
        METHOD_FRAME => {
            if (r.u16()?, r.u16()?) != (BASIC, DELIVER) {
                return None;
            }
            let consumer_tag = r.short_string()?;
            let delivery_tag = r.u64()?;
            let redelivered = match r.u8()? {
                0 => false,
                1 => true,
                _ => return None,
            };
            AMQPFrame::Method(
                channel,
                AMQPClass::Basic(basic::AMQPMethod::Deliver(basic::Deliver {
                    consumer_tag,
                    delivery_tag,
                    redelivered,
                    exchange: r.short_string()?,
                    routing_key: r.short_string()?,
                })),
            )
        }
        HEADER_FRAME => {
            let class_id = r.u16()?;
            let _weight = r.u16()?;
            let body_size = r.u64()?;
            let properties = r.properties()?;
            AMQPFrame::Header(
                channel,
                AMQPContentHeader {
                    class_id,
                    body_size,
                    properties,
                },
            )
        }
        _ => return None,
    };
    // The payload read to its end, as `amq-protocol` requires.
    r.0.is_empty().then_some(read)
}

/// What is left of a payload.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (bytes, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*bytes)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|[b]| b)
    }

    fn u16(&mut self) -> Option<u16> {
        self.take().map(u16::from_be_bytes)
    }

    fn u64(&mut self) -> Option<u64> {
        self.take().map(u64::from_be_bytes)
    }

    fn short_string(&mut self) -> Option<ShortString> {
        let len = usize::from(self.u8()?);
        let bytes = self.0.get(..len)?;
        self.0 = &self.0[len..];
        Some(std::str::from_utf8(bytes).ok()?.into())
    }

    /// The properties, in the order of their flags, from the highest bit down.
    fn properties(&mut self) -> Option<BasicProperties> {
        let flags = self.u16()?;
        if flags & !READ_HERE != 0 {
            return None;
        }
        let set = |bit: u16| flags & (1 << bit) != 0;
        let mut p = BasicProperties::default();
        if set(15) {
            p = p.with_content_type(self.short_string()?);
        }
        if set(14) {
            p = p.with_content_encoding(self.short_string()?);
        }
        if set(12) {
            p = p.with_delivery_mode(self.u8()?);
        }
        if set(11) {
            p = p.with_priority(self.u8()?);
        }
        if set(10) {
            p = p.with_correlation_id(self.short_string()?);
        }
        if set(9) {
            p = p.with_reply_to(self.short_string()?);
        }
        if set(8) {
            p = p.with_expiration(self.short_string()?);
        }
        if set(7) {
            p = p.with_message_id(self.short_string()?);
        }
        if set(6) {
            p = p.with_timestamp(self.u64()?);
        }
        if set(5) {
            p = p.with_type(self.short_string()?);
        }
        if set(4) {
            p = p.with_user_id(self.short_string()?);
        }
        if set(3) {
            p = p.with_app_id(self.short_string()?);
        }
        if set(2) {
            p = p.with_cluster_id(self.short_string()?);
        }
        Some(p)
    }
}

/// `basic.publish` to `exchange` with `routing_key`, neither mandatory nor immediate.
pub fn publish_method(
    out: &mut Vec<u8>,
    channel: u16,
    exchange: &ShortString,
    routing_key: &ShortString,
) {
    write_frame(out, METHOD_FRAME, channel, |out| {
        out.extend_from_slice(&BASIC.to_be_bytes());
        out.extend_from_slice(&PUBLISH.to_be_bytes());
        // The reserved `ticket`.
        out.extend_from_slice(&0u16.to_be_bytes());
        write_short_string(out, exchange);
        write_short_string(out, routing_key);
        // mandatory, immediate: both off.
        out.push(0);
    });
}

/// `basic.ack` of delivery `tag`, alone (not `multiple`).
pub fn ack(out: &mut Vec<u8>, channel: u16, tag: u64) {
    write_frame(out, METHOD_FRAME, channel, |out| {
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
    write_frame(out, HEADER_FRAME, channel, |out| {
        out.extend_from_slice(&BASIC.to_be_bytes());
        // The unused `weight`.
        out.extend_from_slice(&0u16.to_be_bytes());
        out.extend_from_slice(&body_size.to_be_bytes());
        let flags = content_type.as_ref().map_or(0, |_| CONTENT_TYPE)
            | correlation_id.as_ref().map_or(0, |_| CORRELATION_ID);
        out.extend_from_slice(&flags.to_be_bytes());
        for value in [content_type, correlation_id].into_iter().flatten() {
            write_short_string(out, value);
        }
    });
    true
}

/// `body` as body frames of at most `frame_max` bytes each (the payload is that less the
/// frame's own 8 bytes), copied straight from the body rather than into frame values.
pub fn body(out: &mut Vec<u8>, channel: u16, frame_max: usize, body: &[u8]) {
    let room = frame_max.saturating_sub(FRAME_HEADER + 1).max(1);
    for chunk in body.chunks(room) {
        write_frame(out, BODY_FRAME, channel, |out| out.extend_from_slice(chunk));
    }
}

/// A frame of `kind` on `channel`: its payload written by `payload`, its size filled in
/// after.
fn write_frame(out: &mut Vec<u8>, kind: u8, channel: u16, payload: impl FnOnce(&mut Vec<u8>)) {
    out.push(kind);
    out.extend_from_slice(&channel.to_be_bytes());
    let size_at = out.len();
    out.extend_from_slice(&[0; 4]);
    payload(out);
    // A payload here is a few short strings and numbers, or a body frame's chunk of at most
    // `frame_max` bytes: far below 4 GiB.
    let size = (out.len() - size_at - 4) as u32;
    out[size_at..size_at + 4].copy_from_slice(&size.to_be_bytes());
    out.push(FRAME_END);
}

/// A short string: its length in one byte, then its bytes (a `ShortString` is at most 255).
fn write_short_string(out: &mut Vec<u8>, s: &ShortString) {
    let s = s.as_str().as_bytes();
    out.push(s.len() as u8);
    out.extend_from_slice(s);
}

#[cfg(test)]
mod tests {
    use super::*;
    use amq_protocol::frame::{WriteContext, gen_frame, parse_frame};
    use amq_protocol::types::{AMQPValue, FieldTable};
    use proptest::prelude::*;

    fn bytes_of(frame: &AMQPFrame) -> Vec<u8> {
        gen_frame(frame)(WriteContext::from(Vec::new()))
            .map(|ctx| ctx.write)
            .unwrap()
    }

    /// Ours, when it reads the frame, is what `amq-protocol` reads.
    fn as_amq_protocol(bytes: &[u8]) -> Option<AMQPFrame> {
        let ours = read(bytes);
        if let Some(ours) = &ours {
            let theirs = parse_frame(bytes).map(|(_, f)| f);
            assert_eq!(Some(ours), theirs.as_ref().ok(), "{bytes:?}");
        }
        ours
    }

    fn text() -> impl Strategy<Value = String> {
        prop_oneof!["[a-z0-9./_-]{0,40}", ".{0,20}", "x{255}"]
    }

    fn short(s: &str) -> ShortString {
        s.into()
    }

    fn deliver() -> impl Strategy<Value = AMQPFrame> {
        (
            any::<u16>(),
            text(),
            any::<u64>(),
            any::<bool>(),
            text(),
            text(),
        )
            .prop_map(|(channel, tag, delivery_tag, redelivered, exchange, key)| {
                AMQPFrame::Method(
                    channel,
                    AMQPClass::Basic(basic::AMQPMethod::Deliver(basic::Deliver {
                        consumer_tag: short(&tag),
                        delivery_tag,
                        redelivered,
                        exchange: short(&exchange),
                        routing_key: short(&key),
                    })),
                )
            })
    }

    fn header() -> impl Strategy<Value = AMQPFrame> {
        let opt = || prop::option::of(text());
        (
            (
                any::<u16>(),
                any::<u64>(),
                opt(),
                opt(),
                any::<Option<u8>>(),
                any::<Option<u8>>(),
            ),
            (
                opt(),
                opt(),
                opt(),
                opt(),
                any::<Option<u64>>(),
                opt(),
                opt(),
                opt(),
                opt(),
            ),
        )
            .prop_map(
                |((channel, body_size, ct, ce, dm, pr), (co, rt, ex, mi, ts, ty, us, ap, cl))| {
                    let mut p = BasicProperties::default();
                    let s = |v: String| -> ShortString { short(&v) };
                    if let Some(v) = ct {
                        p = p.with_content_type(s(v));
                    }
                    if let Some(v) = ce {
                        p = p.with_content_encoding(s(v));
                    }
                    if let Some(v) = dm {
                        p = p.with_delivery_mode(v);
                    }
                    if let Some(v) = pr {
                        p = p.with_priority(v);
                    }
                    if let Some(v) = co {
                        p = p.with_correlation_id(s(v));
                    }
                    if let Some(v) = rt {
                        p = p.with_reply_to(s(v));
                    }
                    if let Some(v) = ex {
                        p = p.with_expiration(s(v));
                    }
                    if let Some(v) = mi {
                        p = p.with_message_id(s(v));
                    }
                    if let Some(v) = ts {
                        p = p.with_timestamp(v);
                    }
                    if let Some(v) = ty {
                        p = p.with_type(s(v));
                    }
                    if let Some(v) = us {
                        p = p.with_user_id(s(v));
                    }
                    if let Some(v) = ap {
                        p = p.with_app_id(s(v));
                    }
                    if let Some(v) = cl {
                        p = p.with_cluster_id(s(v));
                    }
                    AMQPFrame::Header(
                        channel,
                        AMQPContentHeader {
                            class_id: 60,
                            body_size,
                            properties: p,
                        },
                    )
                },
            )
    }

    proptest! {
        #[test]
        fn a_delivery_s_frames_are_read_as_amq_protocol_reads_them(
            frame in prop_oneof![deliver(), header()],
        ) {
            let bytes = bytes_of(&frame);
            prop_assert_eq!(as_amq_protocol(&bytes), Some(frame));
        }

        #[test]
        fn a_changed_byte_or_a_cut_is_read_as_amq_protocol_reads_it_or_left_to_it(
            frame in prop_oneof![deliver(), header()],
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
            cut in 0usize..12,
        ) {
            let mut bytes = bytes_of(&frame);
            let at = at.index(bytes.len());
            bytes[at] = byte;
            as_amq_protocol(&bytes);
            // A shorter payload with the size and end octet fixed up to match.
            let mut bytes = bytes_of(&frame);
            let payload = bytes.len() - 8;
            let cut = cut.min(payload);
            bytes.truncate(bytes.len() - 1 - cut);
            bytes.push(0xCE);
            bytes[3..7].copy_from_slice(&((payload - cut) as u32).to_be_bytes());
            as_amq_protocol(&bytes);
        }
    }

    #[test]
    fn a_header_with_a_table_other_methods_and_heartbeats_are_left_to_amq_protocol() {
        let mut headers = FieldTable::default();
        headers.insert("x".into(), AMQPValue::LongString("y".into()));
        let with_table = AMQPFrame::Header(
            1,
            AMQPContentHeader {
                class_id: 60,
                body_size: 3,
                properties: BasicProperties::default().with_headers(headers),
            },
        );
        let ack = AMQPFrame::Method(
            1,
            AMQPClass::Basic(basic::AMQPMethod::Ack(basic::Ack {
                delivery_tag: 1,
                multiple: false,
            })),
        );
        for frame in [with_table, ack, AMQPFrame::Heartbeat] {
            assert_eq!(read(&bytes_of(&frame)), None, "{frame:?}");
        }
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
            assert_eq!(ours, bytes_of(&frame), "{exchange:?} {key:?}");
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
            assert_eq!(ours, bytes_of(&frame));
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
                bytes_of(&AMQPFrame::Header(1, header)),
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
