//! The frames every request arrives in, read directly: the `basic.deliver` method and the
//! content header.
//!
//! Why: `amq-protocol`'s parsers are `nom` combinators with a context at every step; reading
//! those two frames took about 5 000 instructions a request (callgrind, in the serve
//! process), for a few numbers and short strings at fixed places (AMQP 0-9-1, section 4.2).
//! Anything these readers do not take as it is (another method, a header whose properties
//! carry a table, a frame that is not well formed) answers `None`, and the caller hands the
//! frame to `amq-protocol`, so every error stays its error. What is read here is what
//! `amq-protocol` reads from the same bytes; the tests compare the two.

use amq_protocol::frame::{AMQPContentHeader, AMQPFrame};
use amq_protocol::protocol::{AMQPClass, BasicProperties, basic};
use amq_protocol::types::ShortString;

const METHOD_FRAME: u8 = 1;
const HEADER_FRAME: u8 = 2;
const BASIC: u16 = 60;
const DELIVER: u16 = 60;
const FRAME_END: u8 = 0xCE;
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
}
