//! The worker's AMQP connection: deliveries in, replies and settlements out, on the thread
//! that handles the requests; and the worker's own queue (registrar answers, heartbeats,
//! change events) and the registrar's queries on the same channel.
//!
//! Why the worker does not speak to the broker through lapin, as its CLI client and tests
//! do: lapin always runs its own I/O thread. Every request then crosses between threads four
//! times (the delivery, the reply, the acknowledgement, and the wake-ups between them), and
//! on the load tool's figures that costs a consumer about 24 µs of CPU per request at 32 in
//! flight and 60 µs at one, more than the whole build (`docs/performance.md`, fifth and sixth
//! parts). This connection speaks AMQP 0-9-1 itself, with amq-protocol's frame codec (the
//! crate lapin is built on): the session's loop reads and parses deliveries on its own
//! task, and a request's reply and settlement are frames appended to one ordered buffer,
//! which a writer task on the same runtime writes out, every frame queued meanwhile in one
//! write.
//!
//! What it has to get right, and where:
//! - **a reply before its acknowledgement**: both go on the consuming channel, in the order
//!   they were queued, and a channel's frames are processed by the broker in order, so the
//!   broker routes the reply before it sees the acknowledgement ([`Outbox`]);
//! - **a publish's frames never interleaved** with another's: each is appended whole, under
//!   the buffer's lock, and split into body frames of the negotiated size;
//! - **a broker that goes silent**: heartbeats are negotiated; the writer sends one when it
//!   has written nothing for half the interval, and the reader gives the connection up when
//!   it has heard nothing for two ([`BrokerConnection::next`]);
//! - **the broker ending things**: closing the connection or the channel, or cancelling
//!   either consumer (its queue deleted; `consumer_cancel_notify` is asked for) ends the
//!   session, after the broker's close is answered;
//! - **oversized messages**: a body over [`MAX_BODY`] is counted, not kept, and delivered
//!   without its bytes, to be refused by size;
//! - **shutdown**: the consumer is cancelled, the deliveries that were already on their way
//!   are still handed out until the broker confirms, and the connection is closed only
//!   after every settlement was written ([`BrokerConnection::close`]);
//! - **the set-up**: the declarations the worker asks for are made one by one, each
//!   confirmed before the next, so a refused one names itself ([`Consume::setup`]), and a
//!   failed set-up closes the connection properly; the worker's own queue is consumed last,
//!   without acknowledgements ([`Event::Message`]).
//!
//! One consequence of one connection: the worker's own queue shares the socket and the
//! reader with the requests, so a burst of change events (at most the queue's 10 000) is
//! read before the requests behind it (each one a JSON parse, and for a change event a
//! cache eviction), where lapin's connection used to keep them apart.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use amq_protocol::frame::{AMQPContentHeader, AMQPFrame, WriteContext, gen_frame, parse_frame};
use amq_protocol::protocol::{AMQPClass, BasicProperties, basic, channel, connection};
use amq_protocol::types::{AMQPValue, FieldTable, ShortString};
use amq_protocol::uri::{AMQPScheme, AMQPUri};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::amqp::{PublishError, publishable, short_string};
use crate::frames::{self, BODY_FRAME, FRAME_END, FRAME_HEADER};
use crate::handler::MAX_BODY;

/// The connection's reading half: a TCP socket's, or a TLS session's over one.
type ReadSide = Box<dyn AsyncRead + Send + Unpin>;
/// The connection's writing half.
type WriteSide = Box<dyn AsyncWrite + Send + Unpin>;

/// The one channel the connection opens.
const CHANNEL: u16 = 1;
/// The largest frame we accept and send (RabbitMQ's default `frame_max`).
const FRAME_MAX: u32 = 131_072;
/// The heartbeat asked for when neither the URL nor the broker says one (RabbitMQ's
/// default), in seconds.
const DEFAULT_HEARTBEAT_SECS: u16 = 60;
/// How long connecting, the handshake, the declarations and the consume may take together.
const OPEN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a closing connection waits for the broker's `close-ok`.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Why the connection ended or could not be opened. Every variant says what happened in
/// words an operator reads in the log (never the password).
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConnectionError {
    /// The URL is not an AMQP URL this connection can use.
    #[error("the AMQP URL: {0}")]
    Url(String),
    /// The TLS session could not be set up (`amqps://`): the certificate, the name, the
    /// trust store.
    #[error("TLS: {0}")]
    Tls(String),
    /// The socket failed (refused, reset, closed).
    #[error("{0}")]
    Io(String),
    /// The broker closed the connection or the channel, or refused a step of the
    /// handshake.
    #[error("the broker closed the {what}: {code} {text}")]
    Closed {
        /// `connection` or `channel`.
        what: &'static str,
        /// AMQP's reply code (320 CONNECTION_FORCED, 403 ACCESS_REFUSED, 404 NOT_FOUND...).
        code: u16,
        /// The broker's reason.
        text: String,
    },
    /// The broker cancelled a consumer, the request consumer or the events consumer (its
    /// queue was deleted).
    #[error("the {0} consumer was cancelled by the broker")]
    Cancelled(&'static str),
    /// Nothing heard for two heartbeat intervals.
    #[error("the broker sent nothing for {0:?} (two heartbeat intervals)")]
    Silent(Duration),
    /// The broker sent something AMQP does not allow here.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// Logged in, the broker refused a step of the set-up (a declaration, the prefetch, the
    /// consume: it closes the channel for that) or the connection went meanwhile.
    #[error("setting up the channel: {0}")]
    SetUp(Box<ConnectionError>),
    /// A queue name or consumer tag that AMQP cannot carry.
    #[error("{0}")]
    Name(String),
    /// Opening took longer than `OPEN_TIMEOUT` (30 s).
    #[error("opening the broker connection took over {0:?}")]
    Timeout(Duration),
}

impl ConnectionError {
    /// Connected and logged in, the set-up failed ([`ConnectionError::SetUp`]), where a
    /// broker not reached, a refused login or a refused vhost fail before it.
    pub fn is_set_up_failure(&self) -> bool {
        matches!(self, Self::SetUp(_))
    }
}

/// `s` as the short string AMQP carries a name in, or [`ConnectionError::Name`].
fn name(what: &'static str, s: &str) -> Result<ShortString, ConnectionError> {
    short_string(what, s).map_err(|e| ConnectionError::Name(e.to_string()))
}

fn io(e: std::io::Error) -> ConnectionError {
    ConnectionError::Io(e.to_string())
}

/// One message delivered: a request, or a message on the events queue.
#[derive(Debug, Clone, Default)]
pub struct Delivery {
    /// The tag it is settled by.
    pub delivery_tag: u64,
    /// The broker delivered it before (to us or to another consumer).
    pub redelivered: bool,
    /// The exchange it was published to.
    pub exchange: ShortString,
    /// Its routing key.
    pub routing_key: ShortString,
    /// Its AMQP properties.
    pub properties: BasicProperties,
    /// Its body; empty when the body is over [`MAX_BODY`], which is not kept.
    pub data: Vec<u8>,
    /// The body's size as the broker announced it.
    pub body_size: u64,
}

impl Delivery {
    /// True when the body was too large to keep ([`Delivery::data`] is then empty).
    pub fn oversized(&self) -> bool {
        self.body_size > MAX_BODY as u64
    }
}

/// What the reader hands out.
///
/// A delivery is boxed from its first frame on: its properties alone are hundreds of bytes,
/// and it passes through the frame parser's results, the session's loop and the request
/// task's future, each a copy of the whole when it is held by value (about 1 300 instructions
/// a request in `memcpy`, by callgrind, against one allocation).
#[derive(Debug)]
pub enum Event {
    /// A request, to be settled.
    Delivery(Box<Delivery>),
    /// A message on the events queue ([`Consume::events_queue`]): consumed without
    /// acknowledgements, so there is nothing to settle.
    Message(Box<Delivery>),
    /// The broker confirmed our cancelling of the consumer: nothing more will be delivered.
    CancelOk,
}

/// The state the reader, the writer and every request task share.
#[derive(Debug)]
struct Shared {
    state: Mutex<Output>,
    /// Something was queued (or the connection is finishing): the writer has work.
    wake: Notify,
    /// The writer failed: the reader gives up too.
    lost: Notify,
    /// The largest frame, negotiated.
    frame_max: usize,
}

/// What is queued for writing.
#[derive(Debug, Default)]
struct Output {
    bytes: Vec<u8>,
    /// Why nothing more can be queued: the writer failed, or the connection is closing.
    closed: Option<String>,
    /// The writer writes what is queued and stops.
    finishing: bool,
}

/// The sending side of the connection, cheap to clone: a request task publishes its reply
/// and settles its delivery through it. Queueing never waits; the writer task writes.
#[derive(Debug, Clone)]
pub struct Outbox {
    shared: Arc<Shared>,
}

impl Outbox {
    /// Appends frames to the output under the lock, unless the connection is closed.
    fn queue(
        &self,
        encode: impl FnOnce(&mut Vec<u8>, usize) -> Result<(), String>,
    ) -> Result<(), PublishError> {
        let mut out = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(why) = &out.closed {
            return Err(PublishError::Connection(why.clone()));
        }
        let first = out.bytes.is_empty();
        if let Err(e) = encode(&mut out.bytes, self.shared.frame_max) {
            // The output, other requests' replies and settlements with it, is gone: the
            // connection is given up, and the broker requeues what it leaves unsettled.
            let why = format!("encoding a frame: {e}");
            give_up(out, &self.shared, &why);
            return Err(PublishError::Connection(why));
        }
        drop(out);
        // One wake per batch: frames queued after it ride along with the same write.
        if first {
            self.shared.wake.notify_one();
        }
        Ok(())
    }

    fn method(&self, method: AMQPClass) -> Result<(), PublishError> {
        self.queue(|out, _| push_frame(out, &AMQPFrame::Method(CHANNEL, method)))
    }

    /// Publishes `body` to `exchange` with `routing_key`: its method, header and body frames,
    /// appended together.
    pub fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        properties: BasicProperties,
        body: &[u8],
    ) -> Result<(), PublishError> {
        let (exchange, routing_key) = publishable(exchange, routing_key, body.len())?;
        self.queue(|out, frame_max| {
            let body_size = body.len() as u64;
            frames::publish_method(out, CHANNEL, &exchange, &routing_key);
            if !frames::content_header(out, CHANNEL, body_size, &properties) {
                push_frame(
                    out,
                    &AMQPFrame::Header(
                        CHANNEL,
                        AMQPContentHeader {
                            class_id: 60,
                            body_size,
                            properties,
                        },
                    ),
                )?;
            }
            frames::body(out, CHANNEL, frame_max, body);
            Ok(())
        })
    }

    /// Acknowledges delivery `tag`.
    pub fn ack(&self, tag: u64) -> Result<(), PublishError> {
        self.queue(|out, _| {
            frames::ack(out, CHANNEL, tag);
            Ok(())
        })
    }

    /// Hands delivery `tag` back to the queue.
    pub fn requeue(&self, tag: u64) -> Result<(), PublishError> {
        self.method(AMQPClass::Basic(basic::AMQPMethod::Nack(basic::Nack {
            delivery_tag: tag,
            multiple: false,
            requeue: true,
        })))
    }

    /// Rejects delivery `tag` for good (not requeued).
    pub fn reject(&self, tag: u64) -> Result<(), PublishError> {
        self.method(AMQPClass::Basic(basic::AMQPMethod::Reject(basic::Reject {
            delivery_tag: tag,
            requeue: false,
        })))
    }

    /// Asks the broker to stop delivering to consumer `tag`; [`Event::CancelOk`] follows.
    pub fn cancel(&self, tag: &str) -> Result<(), PublishError> {
        let consumer_tag = short_string("the consumer tag", tag)?;
        self.method(AMQPClass::Basic(basic::AMQPMethod::Cancel(basic::Cancel {
            consumer_tag,
            nowait: false,
        })))
    }

    /// Queues a connection-level method (channel 0), even when the outbox is closed to
    /// requests: the answers that end a connection.
    fn control(&self, channel: u16, method: AMQPClass) {
        let mut out = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        if out.finishing {
            return;
        }
        if let Err(e) = push_frame(&mut out.bytes, &AMQPFrame::Method(channel, method)) {
            // As in `queue`: the output is gone, so is the connection.
            give_up(out, &self.shared, &format!("encoding a frame: {e}"));
            return;
        }
        drop(out);
        self.shared.wake.notify_one();
    }

    /// Closes the outbox to requests (`why` is what a later publish or settlement is told)
    /// and has the writer write what is queued and stop.
    fn finish(&self, why: &str) {
        let mut out = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        out.closed.get_or_insert_with(|| why.to_owned());
        out.finishing = true;
        drop(out);
        self.shared.wake.notify_one();
    }

    /// Closes the outbox to requests, keeping the connection's own methods possible: what is
    /// settled or published after this is refused (and the broker requeues, as the
    /// connection closes, every delivery left unsettled).
    pub fn close_to_requests(&self, why: &str) {
        let mut out = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        out.closed.get_or_insert_with(|| why.to_owned());
    }
}

/// Gives the connection up, the output lost: nothing more is queued, the reader ends the
/// session.
fn give_up(mut out: std::sync::MutexGuard<'_, Output>, shared: &Shared, why: &str) {
    out.closed = Some(why.to_owned());
    out.bytes.clear();
    drop(out);
    shared.lost.notify_one();
}

/// Encodes `frame` onto the end of `out`. On an error, what `out` held is gone (the encoder
/// takes the buffer and does not give it back), so a caller whose buffer holds other frames
/// must give the connection up ([`Outbox::queue`]).
fn push_frame(out: &mut Vec<u8>, frame: &AMQPFrame) -> Result<(), String> {
    let buf = std::mem::take(out);
    match gen_frame(frame)(WriteContext::from(buf)) {
        Ok(ctx) => {
            *out = ctx.write;
            Ok(())
        }
        Err(e) => Err(format!("{e:?}")),
    }
}

/// The message being received: its delivery method, then its header, then its body.
#[derive(Debug)]
struct Incoming {
    delivery: Box<Delivery>,
    /// It came to the events consumer, not the request consumer.
    event: bool,
    /// The header has come.
    sized: bool,
    /// Body bytes received (kept or not).
    received: u64,
}

/// The receiving side of the broker connection, owned by the session's loop.
pub struct BrokerConnection {
    read: ReadSide,
    frames: Frames,
    outbox: Outbox,
    writer: tokio::task::JoinHandle<()>,
    /// Give up after hearing nothing for two heartbeat intervals, if at all.
    silence: Option<IdleTimer>,
    heard: Instant,
}

/// Waits for a period without activity: the reader's silence (nothing heard for two
/// heartbeat intervals), the writer's heartbeat (nothing written for half of one).
///
/// One timer, judged only when it fires and then moved on to a period after the latest
/// activity. A read or a write then never touches the runtime's timer wheel: a timer made
/// afresh for every read and every write was registered and removed again each time, about
/// 1 100 instructions a request (callgrind).
#[derive(Debug)]
struct IdleTimer {
    period: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
}

impl IdleTimer {
    fn new(period: Duration) -> Self {
        Self {
            period,
            timer: Box::pin(tokio::time::sleep_until(Instant::now() + period)),
        }
    }

    /// Returns once `period` has passed since `last` (the last activity). After it returns,
    /// the next wait with a later `last` moves the timer on.
    fn idle_since(&mut self, last: Instant) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(move |cx| {
            loop {
                std::task::ready!(self.timer.as_mut().poll(cx));
                let due = last + self.period;
                if Instant::now() >= due {
                    return std::task::Poll::Ready(());
                }
                self.timer.as_mut().reset(due);
            }
        })
    }
}

/// The frames read and not handled yet, and the message being received: the parsing half
/// of the reader, apart from the socket so that it can be tested on bytes.
#[derive(Debug)]
struct Frames {
    input: Vec<u8>,
    parsed: usize,
    incoming: Option<Incoming>,
    /// The largest frame accepted.
    frame_max: usize,
    /// The broker closed the connection (and was answered): nothing more is to be said.
    ended: bool,
    /// The events consumer's tag, once it consumes.
    events_tag: Option<ShortString>,
}

impl Frames {
    fn new(frame_max: usize) -> Self {
        Self {
            input: Vec::new(),
            parsed: 0,
            incoming: None,
            frame_max,
            ended: false,
            events_tag: None,
        }
    }

    /// Whether `consumer_tag` is the events consumer's.
    fn is_events(&self, consumer_tag: &ShortString) -> bool {
        self.events_tag.as_ref() == Some(consumer_tag)
    }

    /// Where the next read goes: what was handled is dropped first.
    fn room(&mut self) -> &mut Vec<u8> {
        if self.parsed > 0 {
            self.input.drain(..self.parsed);
            self.parsed = 0;
        }
        self.input.reserve(64 * 1024);
        &mut self.input
    }

    /// The payload size and the whole length of the next frame, when it is all read. Its size
    /// is checked as soon as its header is there, so that a size from a broken stream cannot
    /// make us buffer without end.
    fn next_frame(&self) -> Result<Option<(usize, usize)>, ConnectionError> {
        let rest = &self.input[self.parsed..];
        if rest.len() < FRAME_HEADER {
            return Ok(None);
        }
        let size = u32::from_be_bytes([rest[3], rest[4], rest[5], rest[6]]) as usize;
        let len = size.saturating_add(FRAME_HEADER + 1);
        if len > self.frame_max {
            return Err(ConnectionError::Protocol(format!(
                "a frame of {len} bytes, over the negotiated {}",
                self.frame_max
            )));
        }
        if rest.len() < len {
            return Ok(None);
        }
        if rest[len - 1] != FRAME_END {
            return Err(ConnectionError::Protocol(
                "a frame without its end octet".into(),
            ));
        }
        Ok(Some((size, len)))
    }

    /// Handles the complete frames already read until one makes an event.
    fn take_event(&mut self, outbox: &Outbox) -> Result<Option<Event>, ConnectionError> {
        loop {
            let Some((size, len)) = self.next_frame()? else {
                return Ok(None);
            };
            let rest = &self.input[self.parsed..];
            let event = if rest[0] == BODY_FRAME {
                // A body frame's payload goes straight into the message (or is only
                // counted), not through a frame value of its own.
                let payload = FRAME_HEADER..FRAME_HEADER + size;
                let event = self.body(payload.start + self.parsed..payload.end + self.parsed)?;
                self.parsed += len;
                event
            } else {
                let bytes = &rest[..len];
                // A delivery's method and header are read directly; anything else, and
                // anything those readers do not take, by amq-protocol.
                let frame = match frames::read(bytes) {
                    Some(frame) => frame,
                    None => parse_frame(bytes).map(|(_, f)| f).map_err(|e| {
                        ConnectionError::Protocol(format!("an unreadable frame: {e:?}"))
                    })?,
                };
                self.parsed += len;
                self.frame(frame, outbox)?
            };
            if event.is_some() {
                return Ok(event);
            }
        }
    }

    /// A body frame, its payload at `at` in the input.
    fn body(&mut self, at: std::ops::Range<usize>) -> Result<Option<Event>, ConnectionError> {
        let Some(m) = self.incoming.as_mut().filter(|m| m.sized) else {
            return Err(ConnectionError::Protocol(
                "a body frame outside a message".into(),
            ));
        };
        m.received += at.len() as u64;
        if m.received > m.delivery.body_size {
            return Err(ConnectionError::Protocol(format!(
                "a body longer than the {} bytes its header announced",
                m.delivery.body_size
            )));
        }
        if !m.delivery.oversized() {
            m.delivery.data.extend_from_slice(&self.input[at]);
        }
        Ok(self.complete())
    }

    /// The message being received, when its body is all there.
    fn complete(&mut self) -> Option<Event> {
        let done = self
            .incoming
            .as_ref()
            .is_some_and(|m| m.sized && m.received >= m.delivery.body_size);
        if done {
            self.incoming.take().map(|m| match m.event {
                true => Event::Message(m.delivery),
                false => Event::Delivery(m.delivery),
            })
        } else {
            None
        }
    }

    /// Any frame but a body frame.
    fn frame(
        &mut self,
        frame: AMQPFrame,
        outbox: &Outbox,
    ) -> Result<Option<Event>, ConnectionError> {
        match frame {
            AMQPFrame::Heartbeat | AMQPFrame::InvalidHeartbeat(_) => Ok(None),
            AMQPFrame::Method(_, AMQPClass::Basic(basic::AMQPMethod::Deliver(d))) => {
                if self.incoming.is_some() {
                    return Err(ConnectionError::Protocol(
                        "a delivery before the previous one's body".into(),
                    ));
                }
                let event = self.is_events(&d.consumer_tag);
                self.incoming = Some(Incoming {
                    event,
                    delivery: Box::new(Delivery {
                        delivery_tag: d.delivery_tag,
                        redelivered: d.redelivered,
                        exchange: d.exchange,
                        routing_key: d.routing_key,
                        ..Default::default()
                    }),
                    sized: false,
                    received: 0,
                });
                Ok(None)
            }
            AMQPFrame::Header(_, h) => {
                let Some(m) = self.incoming.as_mut().filter(|m| !m.sized) else {
                    return Err(ConnectionError::Protocol(
                        "a content header outside a message".into(),
                    ));
                };
                m.sized = true;
                m.delivery.body_size = h.body_size;
                m.delivery.properties = h.properties;
                if !m.delivery.oversized() {
                    m.delivery.data.reserve_exact(h.body_size as usize);
                }
                Ok(self.complete())
            }
            AMQPFrame::Method(_, AMQPClass::Basic(basic::AMQPMethod::CancelOk(_))) => {
                Ok(Some(Event::CancelOk))
            }
            AMQPFrame::Method(_, AMQPClass::Basic(basic::AMQPMethod::Cancel(c))) => {
                // The broker cancelled a consumer (its queue was deleted): answer if asked,
                // and end.
                let which = match self.is_events(&c.consumer_tag) {
                    true => "events",
                    false => "request",
                };
                outbox.close_to_requests(&format!("the {which} consumer was cancelled"));
                if !c.nowait {
                    outbox.control(
                        CHANNEL,
                        AMQPClass::Basic(basic::AMQPMethod::CancelOk(basic::CancelOk {
                            consumer_tag: c.consumer_tag,
                        })),
                    );
                }
                Err(ConnectionError::Cancelled(which))
            }
            AMQPFrame::Method(_, AMQPClass::Channel(channel::AMQPMethod::Close(c))) => {
                outbox.close_to_requests("the broker closed the channel");
                outbox.control(
                    CHANNEL,
                    AMQPClass::Channel(channel::AMQPMethod::CloseOk(channel::CloseOk {})),
                );
                Err(ConnectionError::Closed {
                    what: "channel",
                    code: c.reply_code,
                    text: c.reply_text.to_string(),
                })
            }
            AMQPFrame::Method(_, AMQPClass::Connection(connection::AMQPMethod::Close(c))) => {
                outbox.close_to_requests("the broker closed the connection");
                self.ended = true;
                outbox.control(
                    0,
                    AMQPClass::Connection(connection::AMQPMethod::CloseOk(connection::CloseOk {})),
                );
                Err(ConnectionError::Closed {
                    what: "connection",
                    code: c.reply_code,
                    text: c.reply_text.to_string(),
                })
            }
            AMQPFrame::Method(_, AMQPClass::Connection(connection::AMQPMethod::CloseOk(_))) => {
                Err(ConnectionError::Closed {
                    what: "connection",
                    code: 200,
                    text: "closed as asked".into(),
                })
            }
            AMQPFrame::Method(_, AMQPClass::Channel(channel::AMQPMethod::Flow(f))) => {
                outbox.control(
                    CHANNEL,
                    AMQPClass::Channel(channel::AMQPMethod::FlowOk(channel::FlowOk {
                        active: f.active,
                    })),
                );
                Ok(None)
            }
            other => {
                tracing::debug!(frame = %other, "broker connection: frame ignored");
                Ok(None)
            }
        }
    }
}

impl std::fmt::Debug for BrokerConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerConnection")
            .field("frames", &self.frames)
            .field("silence", &self.silence.as_ref().map(|s| s.period))
            .finish_non_exhaustive()
    }
}

/// What [`BrokerConnection::open`] needs.
#[derive(Debug, Clone, Default)]
pub struct Consume<'a> {
    /// `amqp://user:pass@host:port/vhost`, optionally `?heartbeat=N&frame_max=N`.
    pub amqp_url: &'a str,
    /// The connection's name, as the broker's management shows it.
    pub connection_name: &'a str,
    /// Declarations to make on the channel before consuming, in order, each confirmed by
    /// the broker before the next (`exchange.declare`, `queue.declare`, `queue.bind`: see
    /// [`crate::amqp::exchange_declarations`], [`crate::amqp::queue_declaration`] and
    /// [`crate::amqp::queue_binding`]). A refused one fails the open.
    pub setup: &'a [AMQPClass],
    /// The queue to consume, with acknowledgements (declared already, or by `setup`).
    pub queue: &'a str,
    /// The consumer tag.
    pub consumer_tag: &'a str,
    /// Unacknowledged deliveries at most (0, the default, is AMQP's "no limit").
    pub prefetch: u16,
    /// A queue of our own (exclusive, so declared by `setup` on this connection) to consume
    /// too, without acknowledgements: its messages come as [`Event::Message`]. Its consumer
    /// tag is the request consumer's with `-events` appended.
    pub events_queue: Option<&'a str>,
}

/// Whether `answer` is the broker's confirmation of `sent`, a step of opening.
fn confirms(sent: &AMQPClass, answer: &AMQPClass) -> bool {
    use amq_protocol::protocol::{exchange, queue};
    matches!(
        (sent, answer),
        (
            AMQPClass::Channel(channel::AMQPMethod::Open(_)),
            AMQPClass::Channel(channel::AMQPMethod::OpenOk(_))
        ) | (
            AMQPClass::Exchange(exchange::AMQPMethod::Declare(_)),
            AMQPClass::Exchange(exchange::AMQPMethod::DeclareOk(_))
        ) | (
            AMQPClass::Queue(queue::AMQPMethod::Declare(_)),
            AMQPClass::Queue(queue::AMQPMethod::DeclareOk(_))
        ) | (
            AMQPClass::Queue(queue::AMQPMethod::Bind(_)),
            AMQPClass::Queue(queue::AMQPMethod::BindOk(_))
        ) | (
            AMQPClass::Basic(basic::AMQPMethod::Qos(_)),
            AMQPClass::Basic(basic::AMQPMethod::QosOk(_))
        ) | (
            AMQPClass::Basic(basic::AMQPMethod::Consume(_)),
            AMQPClass::Basic(basic::AMQPMethod::ConsumeOk(_))
        )
    )
}

impl BrokerConnection {
    /// Connects, opens the channel, declares what [`Consume::setup`] lists and starts
    /// consuming. Returns once the broker confirmed the request consumer (the events
    /// consumer is asked for unconfirmed; a refusal of it comes as the channel's close).
    pub async fn open(c: &Consume<'_>) -> Result<(Self, Outbox), ConnectionError> {
        match tokio::time::timeout(OPEN_TIMEOUT, Self::handshake(c)).await {
            Ok(r) => r,
            Err(_) => Err(ConnectionError::Timeout(OPEN_TIMEOUT)),
        }
    }

    async fn handshake(c: &Consume<'_>) -> Result<(Self, Outbox), ConnectionError> {
        let uri: AMQPUri = c.amqp_url.parse().map_err(ConnectionError::Url)?;
        let host = uri.authority.host.as_str();
        let tcp = TcpStream::connect((host, uri.authority.port))
            .await
            .map_err(io)?;
        tcp.set_nodelay(true).map_err(io)?;
        let (read, mut write): (ReadSide, WriteSide) = match uri.scheme {
            AMQPScheme::AMQP => {
                let (r, w) = tcp.into_split();
                (Box::new(r), Box::new(w))
            }
            AMQPScheme::AMQPS => {
                let (r, w) = tokio::io::split(tls(host, tcp).await?);
                (Box::new(r), Box::new(w))
            }
        };
        let mut hs = Handshake {
            read,
            frames: Frames::new(FRAME_MAX as usize),
        };
        write_out(&mut write, b"AMQP\x00\x00\x09\x01").await?;
        let start = match hs.method().await? {
            AMQPClass::Connection(connection::AMQPMethod::Start(s)) => s,
            m => return Err(unexpected(&m)),
        };
        if !start
            .mechanisms
            .to_string()
            .split(' ')
            .any(|m| m == "PLAIN")
        {
            return Err(ConnectionError::Protocol(
                "the broker does not offer PLAIN authentication".into(),
            ));
        }
        let user = &uri.authority.userinfo;
        send(
            &mut write,
            0,
            [AMQPClass::Connection(connection::AMQPMethod::StartOk(
                connection::StartOk {
                    client_properties: client_properties(c.connection_name),
                    mechanism: "PLAIN".into(),
                    response: format!("\0{}\0{}", user.username, user.password).into(),
                    locale: "en_US".into(),
                },
            ))],
        )
        .await?;
        let tune = match hs.method().await? {
            AMQPClass::Connection(connection::AMQPMethod::Tune(t)) => t,
            m => return Err(unexpected(&m)),
        };
        // The smaller of what each side allows (0: no limit).
        let frame_max = [tune.frame_max, uri.query.frame_max.unwrap_or(0), FRAME_MAX]
            .into_iter()
            .filter(|&n| n > 0)
            .min()
            .unwrap_or(FRAME_MAX);
        hs.frames.frame_max = frame_max as usize;
        let heartbeat = match (uri.query.heartbeat, tune.heartbeat) {
            (Some(ours), _) => ours,
            (None, 0) => DEFAULT_HEARTBEAT_SECS,
            (None, theirs) => theirs,
        };
        send(
            &mut write,
            0,
            [
                AMQPClass::Connection(connection::AMQPMethod::TuneOk(connection::TuneOk {
                    channel_max: 1,
                    frame_max,
                    heartbeat,
                })),
                AMQPClass::Connection(connection::AMQPMethod::Open(connection::Open {
                    virtual_host: uri.vhost.as_str().into(),
                })),
            ],
        )
        .await?;
        hs.expect(|m| matches!(m, AMQPClass::Connection(connection::AMQPMethod::OpenOk(_))))
            .await?;
        // Connected and logged in: from here on, what fails is the set-up, and the
        // connection is closed as it should be rather than dropped.
        if let Err(e) = Self::set_up(c, &mut hs, &mut write).await {
            hs.hang_up(&mut write).await;
            return Err(ConnectionError::SetUp(Box::new(e)));
        }
        let interval = (heartbeat > 0).then(|| Duration::from_secs(u64::from(heartbeat)));
        let shared = Arc::new(Shared {
            state: Mutex::new(Output::default()),
            wake: Notify::new(),
            lost: Notify::new(),
            frame_max: frame_max as usize,
        });
        let writer = tokio::spawn(write_loop(write, shared.clone(), interval));
        let outbox = Outbox { shared };
        let Handshake { read, frames } = hs;
        let conn = Self {
            read,
            frames,
            outbox: outbox.clone(),
            writer,
            silence: interval.map(|i| IdleTimer::new(i * 2)),
            heard: Instant::now(),
        };
        Ok((conn, outbox))
    }

    /// The channel's set-up, after the login: the channel opened, the declarations, the
    /// prefetch, the request consumer, then the events consumer.
    async fn set_up(
        c: &Consume<'_>,
        hs: &mut Handshake,
        write: &mut WriteSide,
    ) -> Result<(), ConnectionError> {
        let consumer_tag = name("the consumer tag", c.consumer_tag)?;
        let queue = name("the queue name", c.queue)?;
        let consume = |queue, consumer_tag, no_ack, nowait| {
            AMQPClass::Basic(basic::AMQPMethod::Consume(basic::Consume {
                queue,
                consumer_tag,
                no_local: false,
                no_ack,
                // Only we read our own queue, as a Kazoo listener reads its own.
                exclusive: no_ack,
                nowait,
                arguments: FieldTable::default(),
            }))
        };
        let steps = std::iter::once(AMQPClass::Channel(channel::AMQPMethod::Open(
            channel::Open {},
        )))
        .chain(c.setup.iter().cloned())
        .chain([
            AMQPClass::Basic(basic::AMQPMethod::Qos(basic::Qos {
                prefetch_count: c.prefetch,
                global: false,
            })),
            consume(queue, consumer_tag.clone(), false, false),
        ]);
        for method in steps {
            send(write, CHANNEL, [method.clone()]).await?;
            hs.expect(|m| confirms(&method, m)).await?;
        }
        // The events consumer last, unconfirmed (`nowait`): once requests may be delivered,
        // the next frame need not be its `consume-ok`. Should the broker refuse it, it
        // closes the channel after `open` returned, which ends the session like any other
        // close (a lost connection, not a failed set-up).
        if let Some(events) = c.events_queue {
            let tag = name("the consumer tag", &format!("{}-events", c.consumer_tag))?;
            let events = name("the queue name", events)?;
            send(write, CHANNEL, [consume(events, tag.clone(), true, true)]).await?;
            hs.frames.events_tag = Some(tag);
        }
        Ok(())
    }

    /// The next delivery or event. Cancel-safe: what was read stays in the connection, so
    /// the session's `select!` may drop this future and call it again.
    pub async fn next(&mut self) -> Result<Event, ConnectionError> {
        loop {
            if let Some(event) = self.frames.take_event(&self.outbox)? {
                return Ok(event);
            }
            self.read_more().await?;
        }
    }

    /// Reads what the socket has, keeping what is not parsed yet; fails when the broker
    /// closed the socket, the writer failed, or the broker went silent.
    async fn read_more(&mut self) -> Result<(), ConnectionError> {
        let input = self.frames.room();
        let heard = self.heard;
        let silent = async {
            match self.silence.as_mut() {
                Some(silence) => {
                    silence.idle_since(heard).await;
                    silence.period
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            // What has arrived is read before the silence is judged.
            biased;
            n = self.read.read_buf(input) => match n {
                Ok(0) => Err(ConnectionError::Io("the broker closed the connection".into())),
                Ok(_) => {
                    self.heard = Instant::now();
                    Ok(())
                }
                Err(e) => Err(io(e)),
            },
            _ = self.outbox.shared.lost.notified() => {
                let out = self.outbox.shared.state.lock().unwrap_or_else(|e| e.into_inner());
                Err(ConnectionError::Io(out.closed.clone().unwrap_or_else(|| "the writer stopped".into())))
            }
            period = silent => Err(ConnectionError::Silent(period)),
        }
    }

    /// Ends the connection after everything queued is written: `connection.close`, the
    /// broker's `close-ok` (or `CLOSE_TIMEOUT`, 2 s), then the writer's last write.
    pub async fn close(mut self) {
        if self.frames.ended {
            // The broker closed it, and was answered.
            return self.finish().await;
        }
        self.outbox.close_to_requests("the connection is closing");
        // Nothing was read while the worker finished its requests: the silence counts from
        // now, not from the last read.
        self.heard = Instant::now();
        self.outbox.control(
            0,
            AMQPClass::Connection(connection::AMQPMethod::Close(connection::Close {
                reply_code: 200,
                reply_text: "shutdown".into(),
                class_id: 0,
                method_id: 0,
            })),
        );
        // Whatever still arrives is dropped unsettled (the broker requeues it); the close-ok
        // ends it as an error like any other end.
        let closed = async { while self.next().await.is_ok() {} };
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, closed).await;
        self.finish().await;
    }

    /// Lets the writer write what is queued (the answer to a broker's close, say) and stop.
    pub async fn finish(mut self) {
        self.outbox.finish("the connection is closed");
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, &mut self.writer).await;
        // (Dropping `self` stops a writer still stuck on a socket that does not drain.)
    }
}

impl Drop for BrokerConnection {
    /// The writer goes with the connection, whatever ended it: a writer left running would
    /// keep the socket open and beat for a consumer that is gone, holding its deliveries.
    fn drop(&mut self) {
        self.outbox.finish("the connection is closed");
        self.writer.abort();
    }
}

/// A TLS session with `host` over `tcp` (`amqps://`), the broker's certificate checked
/// against the system's trust store (as lapin and the CouchDB client check theirs).
async fn tls(
    host: &str,
    tcp: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, ConnectionError> {
    use rustls_platform_verifier::ConfigVerifierExt;
    use tokio_rustls::rustls::ClientConfig;
    use tokio_rustls::rustls::pki_types::ServerName;
    let config = ClientConfig::with_platform_verifier()
        .map_err(|e| ConnectionError::Tls(format!("the system's trust store: {e}")))?;
    let name = ServerName::try_from(host.to_owned())
        .map_err(|e| ConnectionError::Tls(format!("the host name {host}: {e}")))?;
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| ConnectionError::Tls(e.to_string()))
}

/// The client properties: the connection's name, and the capabilities that make the broker
/// tell us when it cancels the consumer, and why it refuses a login (rather than hanging up).
fn client_properties(name: &str) -> FieldTable {
    let mut capabilities = FieldTable::default();
    for c in [
        "consumer_cancel_notify",
        "basic.nack",
        "authentication_failure_close",
    ] {
        capabilities.insert(c.into(), AMQPValue::Boolean(true));
    }
    let mut p = FieldTable::default();
    p.insert("connection_name".into(), AMQPValue::LongString(name.into()));
    p.insert(
        "product".into(),
        AMQPValue::LongString("kz-endpoint".into()),
    );
    p.insert(
        "version".into(),
        AMQPValue::LongString(env!("CARGO_PKG_VERSION").into()),
    );
    p.insert("capabilities".into(), AMQPValue::FieldTable(capabilities));
    p
}

fn unexpected(m: &AMQPClass) -> ConnectionError {
    match m {
        AMQPClass::Connection(connection::AMQPMethod::Close(c)) => ConnectionError::Closed {
            what: "connection",
            code: c.reply_code,
            text: c.reply_text.to_string(),
        },
        AMQPClass::Channel(channel::AMQPMethod::Close(c)) => ConnectionError::Closed {
            what: "channel",
            code: c.reply_code,
            text: c.reply_text.to_string(),
        },
        m => ConnectionError::Protocol(format!("unexpected {m:?} while opening")),
    }
}

/// Writes `methods` on `channel`, in one write: a step of opening.
async fn send(
    write: &mut WriteSide,
    channel: u16,
    methods: impl IntoIterator<Item = AMQPClass>,
) -> Result<(), ConnectionError> {
    let mut out = Vec::new();
    for method in methods {
        push_frame(&mut out, &AMQPFrame::Method(channel, method))
            .map_err(ConnectionError::Protocol)?;
    }
    write_out(write, &out).await
}

/// Writes `bytes` and flushes them (a TLS stream may hold what it encrypted until then).
async fn write_out(write: &mut WriteSide, bytes: &[u8]) -> Result<(), ConnectionError> {
    write.write_all(bytes).await.map_err(io)?;
    write.flush().await.map_err(io)
}

/// The reading side while opening: one method at a time.
struct Handshake {
    read: ReadSide,
    frames: Frames,
}

impl Handshake {
    /// The broker's next method (heartbeats skipped).
    async fn method(&mut self) -> Result<AMQPClass, ConnectionError> {
        loop {
            let f = &mut self.frames;
            if let Some((_, len)) = f.next_frame()? {
                let rest = &f.input[f.parsed..];
                let frame = parse_frame(&rest[..len]).map(|(_, f)| f).map_err(|e| {
                    ConnectionError::Protocol(format!("an unreadable frame: {e:?}"))
                })?;
                f.parsed += len;
                match frame {
                    AMQPFrame::Method(_, m) => return Ok(m),
                    AMQPFrame::Heartbeat => continue,
                    other => {
                        return Err(ConnectionError::Protocol(format!(
                            "unexpected {other} while opening"
                        )));
                    }
                }
            }
            match self.read.read_buf(f.room()).await {
                // RabbitMQ hangs up on a refused login, with no close first.
                Ok(0) => {
                    return Err(ConnectionError::Io(
                        "the broker closed the connection while opening (refused credentials or vhost?)"
                            .into(),
                    ));
                }
                Ok(_) => {}
                Err(e) => return Err(io(e)),
            }
        }
    }

    /// Closes the connection politely after a failed set-up: `connection.close`, then the
    /// broker's `close-ok` (what else comes is dropped), for at most [`CLOSE_TIMEOUT`].
    async fn hang_up(&mut self, write: &mut WriteSide) {
        let close = AMQPClass::Connection(connection::AMQPMethod::Close(connection::Close {
            reply_code: 200,
            reply_text: "set-up failed".into(),
            class_id: 0,
            method_id: 0,
        }));
        if send(write, 0, [close]).await.is_err() {
            return;
        }
        let closed = async {
            loop {
                match self.method().await {
                    Ok(AMQPClass::Connection(connection::AMQPMethod::CloseOk(_))) | Err(_) => {
                        return;
                    }
                    Ok(_) => {}
                }
            }
        };
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, closed).await;
    }

    async fn expect(
        &mut self,
        is_answer: impl Fn(&AMQPClass) -> bool,
    ) -> Result<(), ConnectionError> {
        match self.method().await? {
            m if is_answer(&m) => Ok(()),
            m => Err(unexpected(&m)),
        }
    }
}

/// The writer task: writes whatever is queued, every batch in one write; sends a heartbeat
/// when nothing was written for half the interval; stops when finished or when a write
/// fails (then the outbox is closed and the reader told).
async fn write_loop(mut write: WriteSide, shared: Arc<Shared>, heartbeat: Option<Duration>) {
    const HEARTBEAT: [u8; 8] = [8, 0, 0, 0, 0, 0, 0, FRAME_END];
    let mut batch = Vec::new();
    let mut written = Instant::now();
    let mut beat = heartbeat.map(|h| IdleTimer::new(h / 2));
    loop {
        let finishing = {
            let mut out = shared.state.lock().unwrap_or_else(|e| e.into_inner());
            std::mem::swap(&mut out.bytes, &mut batch);
            out.finishing
        };
        if !batch.is_empty() {
            if let Err(e) = write_out(&mut write, &batch).await {
                let mut out = shared.state.lock().unwrap_or_else(|e| e.into_inner());
                out.closed
                    .get_or_insert_with(|| format!("writing to the broker: {e}"));
                drop(out);
                shared.lost.notify_one();
                return;
            }
            batch.clear();
            written = Instant::now();
        }
        if finishing {
            let _ = write.shutdown().await;
            return;
        }
        let beat = async {
            match beat.as_mut() {
                Some(beat) => beat.idle_since(written).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shared.wake.notified() => {}
            () = beat => {
                let mut out = shared.state.lock().unwrap_or_else(|e| e.into_inner());
                out.bytes.extend_from_slice(&HEARTBEAT);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(bytes: &[u8]) -> Vec<AMQPFrame> {
        let mut at = 0;
        let mut out = Vec::new();
        while at < bytes.len() {
            let size = u32::from_be_bytes(bytes[at + 3..at + 7].try_into().unwrap()) as usize;
            let len = FRAME_HEADER + size + 1;
            out.push(parse_frame(&bytes[at..at + len]).unwrap().1);
            at += len;
        }
        out
    }

    fn outbox() -> Outbox {
        Outbox {
            shared: Arc::new(Shared {
                state: Mutex::new(Output::default()),
                wake: Notify::new(),
                lost: Notify::new(),
                frame_max: 4096,
            }),
        }
    }

    /// A delivery's frames as the broker sends them: method, header, body frames.
    fn delivery_bytes(tag: u64, announced: u64, body: &[u8], frame_max: usize) -> Vec<u8> {
        consumer_delivery_bytes("t", tag, announced, body, frame_max)
    }

    /// The same, to the consumer `consumer`.
    fn consumer_delivery_bytes(
        consumer: &str,
        tag: u64,
        announced: u64,
        body: &[u8],
        frame_max: usize,
    ) -> Vec<u8> {
        let mut out = Vec::new();
        let deliver = AMQPClass::Basic(basic::AMQPMethod::Deliver(basic::Deliver {
            consumer_tag: consumer.into(),
            delivery_tag: tag,
            redelivered: false,
            exchange: "kapps".into(),
            routing_key: "endpoint.build.x".into(),
        }));
        push_frame(&mut out, &AMQPFrame::Method(CHANNEL, deliver)).unwrap();
        let header = AMQPContentHeader {
            class_id: 60,
            body_size: announced,
            properties: BasicProperties::default(),
        };
        push_frame(&mut out, &AMQPFrame::Header(CHANNEL, header)).unwrap();
        frames::body(&mut out, CHANNEL, frame_max, body);
        out
    }

    #[test]
    fn a_delivery_read_a_byte_at_a_time_is_the_same_delivery() {
        let body: Vec<u8> = (0..10_000u32).map(|b| b as u8).collect();
        let mut bytes = delivery_bytes(7, body.len() as u64, &body, 4096);
        bytes.extend(delivery_bytes(8, 0, &[], 4096));
        let (mut frames, outbox) = (Frames::new(4096), outbox());
        let mut got = Vec::new();
        for b in bytes {
            frames.room().push(b);
            while let Some(Event::Delivery(d)) = frames.take_event(&outbox).unwrap() {
                got.push(d);
            }
        }
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].delivery_tag, got[0].body_size), (7, 10_000));
        assert!(got[0].data == body);
        assert_eq!(got[0].routing_key.as_str(), "endpoint.build.x");
        assert_eq!((got[1].delivery_tag, got[1].data.len()), (8, 0));
    }

    #[test]
    fn deliveries_to_the_events_consumer_are_messages_and_the_rest_requests() {
        let (mut frames, outbox) = (Frames::new(4096), outbox());
        frames.events_tag = Some("w-requests-events".into());
        let bytes = [
            consumer_delivery_bytes("w-requests", 1, 3, b"req", 4096),
            consumer_delivery_bytes("w-requests-events", 2, 3, b"evt", 4096),
            consumer_delivery_bytes("w-requests", 3, 4, b"req2", 4096),
        ]
        .concat();
        frames.room().extend_from_slice(&bytes);
        let mut got = Vec::new();
        while let Some(event) = frames.take_event(&outbox).unwrap() {
            got.push(match event {
                Event::Delivery(d) => ("request", d.delivery_tag, d.data),
                Event::Message(m) => ("event", m.delivery_tag, m.data),
                Event::CancelOk => panic!("no cancel was asked for"),
            });
        }
        assert_eq!(
            got,
            [
                ("request", 1, b"req".to_vec()),
                ("event", 2, b"evt".to_vec()),
                ("request", 3, b"req2".to_vec()),
            ]
        );
    }

    #[test]
    fn the_broker_cancelling_the_events_consumer_is_answered_and_ends_it() {
        let (mut input, outbox) = (Frames::new(4096), outbox());
        input.events_tag = Some("w-requests-events".into());
        let cancel = AMQPClass::Basic(basic::AMQPMethod::Cancel(basic::Cancel {
            consumer_tag: "w-requests-events".into(),
            nowait: false,
        }));
        push_frame(input.room(), &AMQPFrame::Method(CHANNEL, cancel)).unwrap();
        let e = input.take_event(&outbox).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the events consumer was cancelled by the broker"
        );
        // The broker is told, and nothing more is queued for requests.
        let queued = outbox.shared.state.lock().unwrap().bytes.clone();
        assert_eq!(
            frames(&queued),
            [AMQPFrame::Method(
                CHANNEL,
                AMQPClass::Basic(basic::AMQPMethod::CancelOk(basic::CancelOk {
                    consumer_tag: "w-requests-events".into(),
                }))
            )]
        );
        assert_eq!(
            outbox.ack(1).unwrap_err().to_string(),
            "the broker connection is closed: the events consumer was cancelled"
        );
    }

    #[test]
    fn a_frame_over_the_negotiated_size_is_refused_before_it_is_all_there() {
        let (mut frames, outbox) = (Frames::new(4096), outbox());
        // A body frame's header announcing 1 GB: refused from its 7 bytes alone.
        frames
            .room()
            .extend_from_slice(&[BODY_FRAME, 0, 1, 0x40, 0, 0, 0]);
        let e = frames.take_event(&outbox).unwrap_err();
        assert_eq!(
            e.to_string(),
            "protocol error: a frame of 1073741832 bytes, over the negotiated 4096"
        );
    }

    #[test]
    fn a_body_longer_than_announced_is_a_protocol_error() {
        let (mut frames, outbox) = (Frames::new(4096), outbox());
        frames.room().extend(delivery_bytes(1, 3, b"four", 4096));
        let e = frames.take_event(&outbox).unwrap_err();
        assert_eq!(
            e.to_string(),
            "protocol error: a body longer than the 3 bytes its header announced"
        );
    }

    #[test]
    fn an_oversized_body_is_counted_and_not_kept() {
        let (mut frames, outbox) = (Frames::new(131_072), outbox());
        let body = vec![b'x'; MAX_BODY + 10];
        frames
            .room()
            .extend(delivery_bytes(1, body.len() as u64, &body, 131_072));
        let Some(Event::Delivery(d)) = frames.take_event(&outbox).unwrap() else {
            panic!("a delivery");
        };
        assert!(d.oversized());
        assert_eq!(
            (d.body_size, d.data.capacity()),
            ((MAX_BODY + 10) as u64, 0)
        );
    }

    #[test]
    fn a_body_is_split_into_frames_of_the_negotiated_size() {
        let body: Vec<u8> = (0..25u8).collect();
        let mut out = Vec::new();
        // Frames of 18 bytes: 10 of payload each.
        frames::body(&mut out, CHANNEL, 18, &body);
        let parsed = frames(&out);
        assert_eq!(
            parsed,
            [
                AMQPFrame::Body(CHANNEL, (0..10).collect()),
                AMQPFrame::Body(CHANNEL, (10..20).collect()),
                AMQPFrame::Body(CHANNEL, (20..25).collect()),
            ]
        );
        assert!(out.len() <= 3 * 18);
    }
}
