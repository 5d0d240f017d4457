//! The worker's broker connection against the real RabbitMQ (`make test` starts it; without
//! it these fail), checked on the wire: messages of several frames each way, oversized
//! bodies not kept, acknowledgements that free the prefetch window, the broker cancelling
//! the consumer, heartbeats both ways, shutdown, the declarations of the setup and the
//! events queue consumed beside the requests.

mod live;
use live::*;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use kz_endpoint::amqp::{
    KAPPS, TARGETED, exchange_declarations, json_properties, queue_args, queue_binding,
    queue_declaration, random_hex,
};
use kz_endpoint::broker_connection::{
    BrokerConnection, ConnectionError, Consume, Delivery, Event, Outbox,
};
use kz_endpoint::handler::MAX_BODY;
use lapin::options::QueueDeleteOptions;
use lapin::types::FieldTable;
use tokio::net::{TcpListener, TcpStream};

async fn open(url: &str, queue: &str, prefetch: u16) -> (BrokerConnection, Outbox) {
    let tag = format!("{queue}-requests");
    BrokerConnection::open(&Consume {
        amqp_url: url,
        connection_name: &tag,
        queue,
        consumer_tag: &tag,
        prefetch,
        ..Default::default()
    })
    .await
    .unwrap_or_else(|e| panic!("opening the broker connection on {url}: {e}"))
}

/// [`open`] with a set-up and an events queue; the consumer tag is the queue's name plus
/// `-tag`.
async fn open_with_events(
    queue: &str,
    setup: &[amq_protocol::protocol::AMQPClass],
    prefetch: u16,
    events: &str,
) -> (BrokerConnection, Outbox) {
    let tag = format!("{queue}-tag");
    BrokerConnection::open(&Consume {
        amqp_url: &amqp_url(),
        connection_name: &tag,
        setup,
        queue,
        consumer_tag: &tag,
        prefetch,
        events_queue: Some(events),
    })
    .await
    .expect("opened, with its declarations and its events queue")
}

/// Publishes `body` to `queue` through `targeted`, as a registrar's answer comes.
async fn publish_targeted_raw(ch: &lapin::Channel, queue: &str, body: &[u8]) {
    ch.basic_publish(
        TARGETED.into(),
        queue.into(),
        Default::default(),
        body,
        json_properties(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
}

/// Deletes a test's queue, whatever is left on it (it may be gone already).
async fn delete_queue(ch: &lapin::Channel, queue: &str) {
    let _ = ch
        .queue_delete(queue.into(), QueueDeleteOptions::default())
        .await;
}

/// The next delivery, within `within`.
async fn next_delivery(conn: &mut BrokerConnection, within: Duration) -> Delivery {
    match tokio::time::timeout(within, conn.next()).await {
        Ok(Ok(Event::Delivery(d))) => *d,
        other => panic!("expected a delivery, got {other:?}"),
    }
}

/// The body of message `i`, `n` bytes: a pattern that differs from message to message and
/// from frame to frame.
fn pattern(i: usize, n: usize) -> Vec<u8> {
    (0..n)
        .map(|b| ((b % 251) as u8).wrapping_add(i as u8))
        .collect()
}

#[tokio::test]
async fn messages_of_many_frames_each_way_and_acks_that_free_the_window() {
    let (_c, ch) = channel().await;
    let queue = kapps_queue(&ch, "kz-test-rc").await;
    let (reply_queue, mut replies) = own_queue(&ch, &[(TARGETED, "$self")]).await;
    let prefetch = 3;
    let (mut conn, outbox) = open(&amqp_url(), &queue, prefetch).await;
    // Bodies of one frame, of several (RabbitMQ's frame_max is 128 KiB), and empty; more
    // messages than the prefetch, so that the later ones come only if the acks went out.
    let sizes = [10, 300_000, 0, 131_064, 131_065, 5, 1_000_000];
    for (i, n) in sizes.iter().enumerate() {
        let body = pattern(i, *n);
        let props = json_properties().with_correlation_id(format!("c-{i}").into());
        publish_raw(&ch, &queue, &body, props).await;
    }
    for (i, n) in sizes.iter().enumerate() {
        let d = next_delivery(&mut conn, Duration::from_secs(10)).await;
        let expected = pattern(i, *n);
        assert_eq!(d.body_size, *n as u64, "message {i}");
        assert!(d.data == expected, "message {i}: the body differs");
        assert!(!d.oversized());
        assert!(!d.redelivered);
        assert_eq!(d.exchange.as_str(), "kapps");
        assert_eq!(d.routing_key.as_str(), queue);
        assert_eq!(
            d.properties.correlation_id().as_ref().map(|c| c.as_str()),
            Some(format!("c-{i}").as_str())
        );
        assert_eq!(
            d.properties.content_type().as_ref().map(|c| c.as_str()),
            Some("application/json")
        );
        // The reply is the body reversed, in as many frames as it takes, then the ack.
        let reply: Vec<u8> = d.data.iter().rev().copied().collect();
        outbox
            .publish(TARGETED, &reply_queue, json_properties(), &reply)
            .unwrap();
        outbox.ack(d.delivery_tag).unwrap();
    }
    for (i, n) in sizes.iter().enumerate() {
        let got = tokio::time::timeout(Duration::from_secs(10), replies.next())
            .await
            .expect("a reply")
            .unwrap()
            .unwrap();
        let mut expected = pattern(i, *n);
        expected.reverse();
        assert!(got.data == expected, "reply {i}: the body differs");
    }
    // Everything acknowledged: nothing left on the queue, nothing redelivered.
    conn.close().await;
    let q = queue_state(&ch, &queue).await;
    // (The auto-delete queue may be gone with its consumer: then nothing was left either.)
    if let Ok(q) = q {
        assert_eq!(q.message_count(), 0);
        ch.queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn an_oversized_body_is_counted_not_kept_and_the_next_message_is_whole() {
    let (_c, ch) = channel().await;
    let queue = kapps_queue(&ch, "kz-test-rc").await;
    let (mut conn, outbox) = open(&amqp_url(), &queue, 10).await;
    let big = vec![b'x'; MAX_BODY + 1];
    publish_raw(&ch, &queue, &big, json_properties()).await;
    publish_raw(&ch, &queue, b"{\"after\":true}", json_properties()).await;
    let d = next_delivery(&mut conn, Duration::from_secs(10)).await;
    assert!(d.oversized());
    assert_eq!(d.body_size, (MAX_BODY + 1) as u64);
    assert!(d.data.is_empty());
    assert_eq!(d.data.capacity(), 0, "no room was even reserved for it");
    outbox.reject(d.delivery_tag).unwrap();
    let d = next_delivery(&mut conn, Duration::from_secs(10)).await;
    assert_eq!(d.data, b"{\"after\":true}");
    outbox.ack(d.delivery_tag).unwrap();
    conn.close().await;
    delete_queue(&ch, &queue).await;
}

#[tokio::test]
async fn the_broker_cancelling_the_consumer_ends_the_connection_and_refuses_later_replies() {
    let (_c, ch) = channel().await;
    let queue = kapps_queue(&ch, "kz-test-rc").await;
    let (mut conn, outbox) = open(&amqp_url(), &queue, 10).await;
    ch.queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await
        .unwrap();
    match tokio::time::timeout(Duration::from_secs(10), conn.next()).await {
        Ok(Err(ConnectionError::Cancelled("request"))) => {}
        other => panic!("expected the cancel, got {other:?}"),
    }
    let refused = outbox.ack(1).unwrap_err();
    assert_eq!(
        refused.to_string(),
        "the broker connection is closed: the request consumer was cancelled"
    );
    conn.close().await;
}

#[tokio::test]
async fn cancelling_hands_out_what_was_on_its_way_then_confirms() {
    let (_c, ch) = channel().await;
    let queue = kapps_queue(&ch, "kz-test-rc").await;
    let (mut conn, outbox) = open(&amqp_url(), &queue, 10).await;
    for i in 0..3 {
        publish_raw(&ch, &queue, format!("{i}").as_bytes(), json_properties()).await;
    }
    // All three are delivered (the prefetch allows ten) before the cancel is even asked.
    tokio::time::sleep(Duration::from_millis(200)).await;
    outbox.cancel(&format!("{queue}-requests")).unwrap();
    let mut got = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), conn.next()).await {
            Ok(Ok(Event::Delivery(d))) => {
                got.push(String::from_utf8(d.data).unwrap());
                outbox.ack(d.delivery_tag).unwrap();
            }
            Ok(Ok(Event::CancelOk)) => break,
            other => panic!("expected deliveries then the cancel-ok, got {other:?}"),
        }
    }
    assert_eq!(got, ["0", "1", "2"]);
    conn.close().await;
    delete_queue(&ch, &queue).await;
}

/// A TCP relay to the broker that can be frozen: while frozen it forwards nothing either way,
/// as a broker that hangs (or a network that drops everything) would.
async fn freezable_relay() -> (String, Arc<AtomicBool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let frozen = Arc::new(AtomicBool::new(false));
    let f = frozen.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let broker = TcpStream::connect(broker_addr()).await.unwrap();
            let (cr, cw) = client.into_split();
            let (br, bw) = broker.into_split();
            for (mut from, mut to) in [(cr, bw), (br, cw)] {
                let f = f.clone();
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let mut buf = vec![0u8; 65536];
                    loop {
                        let n = match from.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        while f.load(Ordering::Relaxed) {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        if to.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        }
    });
    let url = amqp_url_at("amqp", &format!("127.0.0.1:{port}"), "?heartbeat=1");
    (url, frozen)
}

#[tokio::test]
async fn heartbeats_keep_an_idle_connection_and_a_silent_broker_is_given_up() {
    let (_c, ch) = channel().await;
    let queue = kapps_queue(&ch, "kz-test-rc").await;
    let (url, frozen) = freezable_relay().await;
    let (mut conn, outbox) = open(&url, &queue, 10).await;
    // Idle for three heartbeat intervals: both sides' heartbeats keep it open (RabbitMQ
    // closes a connection it hears nothing from for two).
    let idle = tokio::time::timeout(Duration::from_secs(3), conn.next()).await;
    assert!(idle.is_err(), "nothing should have happened: {idle:?}");
    publish_raw(&ch, &queue, b"{}", json_properties()).await;
    let d = next_delivery(&mut conn, Duration::from_secs(5)).await;
    outbox.ack(d.delivery_tag).unwrap();
    // The broker goes silent: given up after two intervals of nothing.
    frozen.store(true, Ordering::Relaxed);
    let started = Instant::now();
    match tokio::time::timeout(Duration::from_secs(10), conn.next()).await {
        Ok(Err(ConnectionError::Silent(d))) => assert_eq!(d, Duration::from_secs(2)),
        other => panic!("expected the silence to end it, got {other:?}"),
    }
    let took = started.elapsed();
    println!("broker connection: a silent broker given up after {took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    frozen.store(false, Ordering::Relaxed);
    conn.finish().await;
    delete_queue(&ch, &queue).await;
}

#[tokio::test]
async fn refused_credentials_say_so() {
    let url = amqp_url().replacen("guest:guest", "guest:wrong", 1);
    assert_ne!(url, amqp_url(), "the test URL carries guest:guest");
    let e = BrokerConnection::open(&Consume {
        amqp_url: &url,
        connection_name: "kz-test-refused",
        queue: "kz-test-none",
        consumer_tag: "kz-test-none",
        prefetch: 1,
        ..Default::default()
    })
    .await
    .unwrap_err();
    let text = e.to_string();
    assert!(
        text.starts_with("the broker closed the connection: 403 ACCESS_REFUSED"),
        "{text}"
    );
    assert!(!text.contains("wrong"), "the password is not in {text}");
}

#[tokio::test]
async fn the_setup_declares_and_the_events_queue_is_consumed_beside_the_requests() {
    let (_c, ch) = channel().await;
    let own = format!("kz-test-own-{}", random_hex(12));
    let requests = format!("kz-test-rc-{}", random_hex(12));
    let key = format!("kz.test.{}", random_hex(8));
    let setup = {
        let mut s = exchange_declarations();
        s.push(queue_declaration(&requests, false, FieldTable::default()).unwrap());
        s.push(queue_binding(&requests, KAPPS, &key).unwrap());
        s.push(queue_declaration(&own, true, queue_args(60_000, 10)).unwrap());
        s.push(queue_binding(&own, TARGETED, &own).unwrap());
        s
    };
    let (mut conn, outbox) = open_with_events(&requests, &setup, 5, &own).await;
    // Each queue's message arrives as its kind: a request to settle, an event not to.
    publish_raw(&ch, &key, b"{\"a\":\"request\"}", json_properties()).await;
    publish_targeted_raw(&ch, &own, b"{\"an\":\"event\"}").await;
    let (mut request, mut event) = (None, None);
    while request.is_none() || event.is_none() {
        match tokio::time::timeout(Duration::from_secs(10), conn.next()).await {
            Ok(Ok(Event::Delivery(d))) => request = Some(d),
            Ok(Ok(Event::Message(m))) => event = Some(m),
            other => panic!("expected a request and an event, got {other:?}"),
        }
    }
    let (request, event) = (request.unwrap(), event.unwrap());
    assert_eq!(request.data, b"{\"a\":\"request\"}");
    assert_eq!(request.routing_key.as_str(), key);
    assert_eq!(event.data, b"{\"an\":\"event\"}");
    assert_eq!(event.exchange.as_str(), TARGETED);
    assert_eq!(event.routing_key.as_str(), own);
    outbox.ack(request.delivery_tag).unwrap();
    // The events queue is exclusive to the connection: another cannot consume it.
    let taken = ch
        .basic_consume(
            own.as_str().into(),
            "".into(),
            Default::default(),
            FieldTable::default(),
        )
        .await;
    assert!(
        taken.is_err(),
        "an exclusive queue was consumed by another connection"
    );
    // Deleting the request queue cancels its consumer, which ends the connection.
    let (_c2, ch2) = channel().await;
    ch2.queue_delete(requests.as_str().into(), QueueDeleteOptions::default())
        .await
        .unwrap();
    match tokio::time::timeout(Duration::from_secs(10), conn.next()).await {
        Ok(Err(ConnectionError::Cancelled("request"))) => {}
        other => panic!("expected the request consumer's cancel, got {other:?}"),
    }
    conn.close().await;
    // The events queue, exclusive, went with the connection.
    let gone = queue_state(&ch2, &own).await;
    assert!(gone.is_err(), "the events queue outlived its connection");
}

#[tokio::test]
async fn a_refused_declaration_fails_the_open_and_says_which() {
    let (_c, ch) = channel().await;
    // An exchange of another type than the setup declares it with: RabbitMQ closes the
    // channel with 406.
    let exchange = format!("kz-test-x-{}", random_hex(12));
    ch.exchange_declare(
        exchange.as_str().into(),
        lapin::ExchangeKind::Fanout,
        lapin::options::ExchangeDeclareOptions {
            auto_delete: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap();
    let setup = [amq_protocol::protocol::AMQPClass::Exchange(
        amq_protocol::protocol::exchange::AMQPMethod::Declare(
            amq_protocol::protocol::exchange::Declare {
                exchange: exchange.as_str().into(),
                kind: "topic".into(),
                auto_delete: true,
                ..Default::default()
            },
        ),
    )];
    let e = BrokerConnection::open(&Consume {
        amqp_url: &amqp_url(),
        connection_name: "kz-test-refused-declaration",
        setup: &setup,
        queue: "kz-test-none",
        consumer_tag: "kz-test-none",
        prefetch: 1,
        ..Default::default()
    })
    .await
    .unwrap_err();
    assert!(e.is_set_up_failure(), "{e}");
    let text = e.to_string();
    assert!(
        text.starts_with(
            "setting up the channel: the broker closed the channel: 406 PRECONDITION_FAILED"
        ),
        "{text}"
    );
    assert!(text.contains(&exchange), "{text}");
    let _ = ch
        .exchange_delete(exchange.as_str().into(), Default::default())
        .await;
}

#[tokio::test]
async fn a_backlog_waiting_at_open_is_delivered_whole_beside_the_events() {
    let (_c, ch) = channel().await;
    let queue = kapps_queue(&ch, "kz-test-rc").await;
    for i in 0..5u8 {
        publish_raw(&ch, &queue, &[b'0' + i], json_properties()).await;
    }
    let own = format!("kz-test-own-{}", random_hex(12));
    let setup = [
        queue_declaration(&own, true, FieldTable::default()).unwrap(),
        queue_binding(&own, TARGETED, &own).unwrap(),
    ];
    // The request consumer's `consume-ok` and the backlog's deliveries may come in one read,
    // before the events consumer is even asked for.
    let (mut conn, outbox) = open_with_events(&queue, &setup, 10, &own).await;
    let mut bodies = Vec::new();
    for _ in 0..5 {
        let d = next_delivery(&mut conn, Duration::from_secs(10)).await;
        bodies.push(d.data[0]);
        outbox.ack(d.delivery_tag).unwrap();
    }
    assert_eq!(bodies, b"01234");
    publish_targeted_raw(&ch, &own, b"{}").await;
    match tokio::time::timeout(Duration::from_secs(10), conn.next()).await {
        Ok(Ok(Event::Message(m))) => assert_eq!(m.data, b"{}"),
        other => panic!("expected the event, got {other:?}"),
    }
    conn.close().await;
    delete_queue(&ch, &queue).await;
}

#[tokio::test]
async fn an_events_queue_that_does_not_exist_ends_the_connection_at_once() {
    let (_c, ch) = channel().await;
    let queue = kapps_queue(&ch, "kz-test-rc").await;
    let tag = format!("{queue}-tag");
    let missing = format!("kz-test-missing-{}", random_hex(12));
    // The events consume is not confirmed (`nowait`): its refusal is the channel's close,
    // the first thing `next` reports.
    let (mut conn, _outbox) = BrokerConnection::open(&Consume {
        amqp_url: &amqp_url(),
        connection_name: &tag,
        queue: &queue,
        consumer_tag: &tag,
        prefetch: 1,
        events_queue: Some(&missing),
        ..Default::default()
    })
    .await
    .expect("opened: the events consume is not awaited");
    match tokio::time::timeout(Duration::from_secs(10), conn.next()).await {
        Ok(Err(ConnectionError::Closed {
            what: "channel",
            code: 404,
            text,
        })) => assert!(text.contains(&missing), "{text}"),
        other => panic!("expected the channel's close, got {other:?}"),
    }
    conn.close().await;
    delete_queue(&ch, &queue).await;
}
