//! An echo consumer that speaks AMQP 0-9-1 itself, with no client library: the floor of what
//! answering a request costs a consumer process on this broker.
//!
//! Why it exists: the load tool's echo consumer runs on lapin, as the worker does, and lapin
//! always runs its own I/O thread, so every message crosses between threads several times on
//! its way in and out (a delivery, a publish, an acknowledgement). The CPU time of that echo
//! consumer is therefore lapin's floor, not the broker's. This one reads, answers and
//! acknowledges on the thread that runs it: it parses every complete frame a read brought,
//! and writes the replies and acknowledgements of the whole batch with one write (a reply's
//! frames before its acknowledgement, so the broker never sees the ack first). What it
//! spends per request is what any consumer must spend: the system calls, the frame parsing and
//! the same JSON work as the lapin echo consumer.
//!
//! It is a measuring instrument, not a client: it asks for no heartbeats, recovers nothing and
//! ends at the first error or at the broker closing the connection or the channel.

use amq_protocol::frame::{AMQPContentHeader, AMQPFrame, WriteContext, gen_frame, parse_frame};
use amq_protocol::protocol::{AMQPClass, basic, channel, connection};
use amq_protocol::types::FieldTable;
use amq_protocol::uri::AMQPUri;
use anyhow::bail;
use kz_endpoint::amqp::{ReplyAddress, TARGETED, json_properties};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The one channel this consumer opens.
const CHANNEL: u16 = 1;
/// A frame's header: type (1 byte), channel (2), payload size (4); then the payload and
/// the frame-end octet.
const FRAME_HEADER: usize = 7;

/// One connection: the socket, what has been read of it and not yet parsed, and what is to
/// be written.
struct Conn {
    stream: TcpStream,
    input: Vec<u8>,
    parsed: usize,
    output: Vec<u8>,
    frame_max: usize,
}

impl Conn {
    /// The next complete frame already read, if any.
    fn next_frame(&mut self) -> anyhow::Result<Option<AMQPFrame>> {
        let rest = &self.input[self.parsed..];
        if rest.len() < FRAME_HEADER {
            return Ok(None);
        }
        let size = u32::from_be_bytes([rest[3], rest[4], rest[5], rest[6]]) as usize;
        let len = FRAME_HEADER + size + 1;
        if rest.len() < len {
            return Ok(None);
        }
        let (_, frame) =
            parse_frame(&rest[..len]).map_err(|e| anyhow::anyhow!("a frame: {e:?}"))?;
        self.parsed += len;
        Ok(Some(frame))
    }

    /// Reads what the socket has (at least one byte), keeping what is not parsed yet.
    async fn read_more(&mut self) -> anyhow::Result<()> {
        self.input.drain(..self.parsed);
        self.parsed = 0;
        self.input.reserve(64 * 1024);
        if self.stream.read_buf(&mut self.input).await? == 0 {
            bail!("the broker closed the connection");
        }
        Ok(())
    }

    /// The next frame, reading as needed.
    async fn recv(&mut self) -> anyhow::Result<AMQPFrame> {
        loop {
            if let Some(frame) = self.next_frame()? {
                return Ok(frame);
            }
            self.read_more().await?;
        }
    }

    /// Queues a frame for the next write.
    fn push(&mut self, frame: &AMQPFrame) -> anyhow::Result<()> {
        let out = std::mem::take(&mut self.output);
        let ctx = gen_frame(frame)(WriteContext::from(out))
            .map_err(|e| anyhow::anyhow!("encoding a frame: {e:?}"))?;
        self.output = ctx.write;
        Ok(())
    }

    fn method(&mut self, channel: u16, method: AMQPClass) -> anyhow::Result<()> {
        self.push(&AMQPFrame::Method(channel, method))
    }

    /// Writes what is queued.
    async fn flush(&mut self) -> anyhow::Result<()> {
        if !self.output.is_empty() {
            self.stream.write_all(&self.output).await?;
            self.output.clear();
        }
        Ok(())
    }

    /// Writes what is queued, then reads the broker's next frame, which must be a method.
    async fn next_method(&mut self) -> anyhow::Result<AMQPClass> {
        self.flush().await?;
        match self.recv().await? {
            AMQPFrame::Method(_, method) => Ok(method),
            other => bail!("unexpected frame {other}"),
        }
    }

    /// Writes what is queued, then reads the broker's next method, which `is_expected` must
    /// accept.
    async fn expect(&mut self, is_expected: impl Fn(&AMQPClass) -> bool) -> anyhow::Result<()> {
        match self.next_method().await? {
            m if is_expected(&m) => Ok(()),
            m => bail!("unexpected {m:?}"),
        }
    }

    /// Sends `method` on `channel` and waits for its answer, which `is_answer` accepts.
    async fn rpc(
        &mut self,
        channel: u16,
        method: AMQPClass,
        is_answer: impl Fn(&AMQPClass) -> bool,
    ) -> anyhow::Result<()> {
        self.method(channel, method)?;
        self.expect(is_answer).await
    }

    /// Queues a publish of `body` to the `targeted` exchange: method, header, body frames.
    fn publish_targeted(&mut self, routing_key: &str, body: Vec<u8>) -> anyhow::Result<()> {
        self.method(
            CHANNEL,
            AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
                exchange: TARGETED.into(),
                routing_key: routing_key.into(),
                mandatory: false,
                immediate: false,
            })),
        )?;
        self.push(&AMQPFrame::Header(
            CHANNEL,
            AMQPContentHeader {
                class_id: 60,
                body_size: body.len() as u64,
                properties: json_properties(),
            },
        ))?;
        // A body frame carries at most frame_max less the frame's own 8 bytes.
        for chunk in body.chunks(self.frame_max.saturating_sub(FRAME_HEADER + 1).max(1)) {
            self.push(&AMQPFrame::Body(CHANNEL, chunk.to_vec()))?;
        }
        Ok(())
    }
}

/// Connects, opens a channel and consumes `queue` (declared and bound already) with
/// `prefetch` messages unacknowledged at most. Returns once consuming.
async fn consume(amqp_url: &str, queue: &str, prefetch: u16) -> anyhow::Result<Conn> {
    let uri: AMQPUri = amqp_url
        .parse()
        .map_err(|e| anyhow::anyhow!("the AMQP URL: {e}"))?;
    let stream = TcpStream::connect((uri.authority.host.as_str(), uri.authority.port)).await?;
    stream.set_nodelay(true)?;
    let mut conn = Conn {
        stream,
        input: Vec::new(),
        parsed: 0,
        output: b"AMQP\x00\x00\x09\x01".to_vec(),
        frame_max: 4096,
    };
    conn.expect(|m| matches!(m, AMQPClass::Connection(connection::AMQPMethod::Start(_))))
        .await?;
    let user = &uri.authority.userinfo;
    conn.method(
        0,
        AMQPClass::Connection(connection::AMQPMethod::StartOk(connection::StartOk {
            client_properties: FieldTable::default(),
            mechanism: "PLAIN".into(),
            response: format!("\0{}\0{}", user.username, user.password).into(),
            locale: "en_US".into(),
        })),
    )?;
    let tune = match conn.next_method().await? {
        AMQPClass::Connection(connection::AMQPMethod::Tune(t)) => t,
        m => bail!("unexpected {m:?}"),
    };
    // The broker's frame_max, or (0: no limit) RabbitMQ's default.
    conn.frame_max = match tune.frame_max {
        0 => 131_072,
        n => n as usize,
    };
    conn.method(
        0,
        AMQPClass::Connection(connection::AMQPMethod::TuneOk(connection::TuneOk {
            channel_max: 1,
            frame_max: conn.frame_max as u32,
            heartbeat: 0,
        })),
    )?;
    conn.rpc(
        0,
        AMQPClass::Connection(connection::AMQPMethod::Open(connection::Open {
            virtual_host: uri.vhost.as_str().into(),
        })),
        |m| matches!(m, AMQPClass::Connection(connection::AMQPMethod::OpenOk(_))),
    )
    .await?;
    conn.rpc(
        CHANNEL,
        AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {})),
        |m| matches!(m, AMQPClass::Channel(channel::AMQPMethod::OpenOk(_))),
    )
    .await?;
    conn.rpc(
        CHANNEL,
        AMQPClass::Basic(basic::AMQPMethod::Qos(basic::Qos {
            prefetch_count: prefetch,
            global: false,
        })),
        |m| matches!(m, AMQPClass::Basic(basic::AMQPMethod::QosOk(_))),
    )
    .await?;
    conn.rpc(
        CHANNEL,
        AMQPClass::Basic(basic::AMQPMethod::Consume(basic::Consume {
            queue: queue.into(),
            ..Default::default()
        })),
        |m| matches!(m, AMQPClass::Basic(basic::AMQPMethod::ConsumeOk(_))),
    )
    .await?;
    Ok(conn)
}

/// The message being received: its delivery tag, its body's size and the body so far.
struct Incoming {
    tag: u64,
    size: Option<u64>,
    body: Vec<u8>,
}

/// Consumes `queue` and answers every request as the lapin echo consumer does (an empty
/// `build_resp` to its `Server-ID`, then the acknowledgement), until an error. `ready` is
/// called once consuming.
pub async fn serve(
    amqp_url: &str,
    queue: &str,
    prefetch: u16,
    ready: impl FnOnce(),
) -> anyhow::Result<()> {
    let mut conn = consume(amqp_url, queue, prefetch).await?;
    ready();
    let mut incoming: Option<Incoming> = None;
    loop {
        while let Some(frame) = conn.next_frame()? {
            match frame {
                AMQPFrame::Method(_, AMQPClass::Basic(basic::AMQPMethod::Deliver(d))) => {
                    incoming = Some(Incoming {
                        tag: d.delivery_tag,
                        size: None,
                        body: Vec::new(),
                    });
                }
                AMQPFrame::Header(_, h) => {
                    if let Some(m) = incoming.as_mut() {
                        m.size = Some(h.body_size);
                    }
                }
                AMQPFrame::Body(_, data) => {
                    if let Some(m) = incoming.as_mut() {
                        m.body.extend_from_slice(&data);
                    }
                }
                AMQPFrame::Method(_, AMQPClass::Connection(connection::AMQPMethod::Close(c))) => {
                    bail!("the broker closed the connection: {}", c.reply_text)
                }
                AMQPFrame::Method(_, AMQPClass::Channel(channel::AMQPMethod::Close(c))) => {
                    bail!("the broker closed the channel: {}", c.reply_text)
                }
                _ => {}
            }
            let complete = incoming
                .as_ref()
                .is_some_and(|m| m.size.is_some_and(|s| m.body.len() as u64 >= s));
            if complete && let Some(m) = incoming.take() {
                answer(&mut conn, m)?;
            }
        }
        conn.flush().await?;
        conn.read_more().await?;
    }
}

/// Queues the reply to one request, then its acknowledgement.
fn answer(conn: &mut Conn, m: Incoming) -> anyhow::Result<()> {
    if let Some((server_id, reply)) = crate::echo::reply(&m.body)
        && let Ok(Some(ReplyAddress::Targeted { routing_key, .. })) =
            ReplyAddress::of(None, None, Some(&server_id))
    {
        conn.publish_targeted(&routing_key, serde_json::to_vec(&reply)?)?;
    }
    conn.method(
        CHANNEL,
        AMQPClass::Basic(basic::AMQPMethod::Ack(basic::Ack {
            delivery_tag: m.tag,
            multiple: false,
        })),
    )
}
